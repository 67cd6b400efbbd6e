"""Throughput benchmark: fedplugin against single-process, Incremental and the old Worker subclass.

Run ``.venv/bin/python benchmarks/throughput.py`` (``make bench``). One run makes
one data set, ``dask_ml.datasets.make_classification`` with 1,000,000 x 100
samples in chunks of 4,096 rows, 10 % held out on a block boundary, and trains
``SGDClassifier(random_state=0)`` on it four ways:

1. single-process ``partial_fit`` over the training blocks in order, in memory;
2. ``dask_ml.wrappers.Incremental`` on the persisted dask arrays (one pass);
3. fedplugin (``EveryNBatches(50)``, ``WeightedMean()``) on the same persisted arrays;
4. the old approach, a ``distributed.Worker`` subclass with one task per batch
   (see ``legacy_worker.py``), on its own cluster, as it needs ``worker_class=``.

Methods 1-3 share a ``LocalCluster(n_workers=2, threads_per_worker=1)`` and are
repeated ``--repeats`` times, interleaved; the median time is reported. A table
goes to stdout and everything measured to ``benchmarks/results/throughput.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client, LocalCluster, wait
from sklearn.linear_model import SGDClassifier

from fedplugin.wording import count

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # legacy_worker and breakdown, also when imported from elsewhere

import breakdown
import legacy_worker

N_WORKERS = 2
BLOCK_SIZE = 4096
N_FEATURES = 100
SYNC_EVERY = 50
CLASSES = [0, 1]
#: The project's goals for fedplugin (issue 9): share of the two-bare-process
#: ceiling measured in the same run, speed-up over Incremental, and accuracy no
#: more than 0.5 points below single-process (being more accurate is fine).
GOAL_OF_CEILING = 0.9
GOAL_VS_INCREMENTAL = 5.0
GOAL_ACCURACY_POINTS = 0.5


@dataclass
class Data:
    """The benchmark's data: lazy and persisted dask arrays, numpy copies, the held-out set."""

    X_lazy: Any
    y_lazy: Any
    X_train: Any
    y_train: Any
    X_train_np: np.ndarray
    y_train_np: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_train(self) -> int:
        """Training rows."""
        return int(self.X_train.shape[0])


@dataclass
class Result:
    """Repeated measurements of one method: seconds and held-out accuracy per repeat."""

    method: str
    samples: int
    seconds: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, seconds: float, accuracy: float | None = None) -> None:
        """Record one repeat (``accuracy`` is ``None`` where no model is kept)."""
        self.seconds.append(seconds)
        if accuracy is not None:
            self.accuracy.append(accuracy)

    @property
    def samples_per_s(self) -> float:
        """Samples per second at the median time."""
        return self.samples / statistics.median(self.seconds)

    @property
    def median_accuracy(self) -> float | None:
        """Held-out accuracy, median over the repeats (``None`` without a model)."""
        return statistics.median(self.accuracy) if self.accuracy else None

    def to_dict(self) -> dict[str, Any]:
        """Every field, plus the medians, for the JSON report."""
        return {**asdict(self), "samples_per_s": self.samples_per_s, "median_accuracy": self.median_accuracy}


# --------------------------------------------------------------------------- data
def make_problem(n_samples: int) -> tuple[Any, Any, Any, Any]:
    """Make the lazy data set, split into train and held-out parts on a block boundary.

    Returns
    -------
    X_train, y_train, X_test, y_test : dask.array.Array
    """
    from dask_ml.datasets import make_classification

    X, y = make_classification(
        n_samples=n_samples,
        n_features=N_FEATURES,
        n_informative=50,
        n_redundant=10,
        flip_y=0.05,
        chunks=BLOCK_SIZE,
        random_state=0,
    )
    n_train = int(n_samples * 0.9) // BLOCK_SIZE * BLOCK_SIZE
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def load_data(client: Client, n_samples: int) -> Data:
    """Persist the training part on the cluster; bring numpy copies to the client."""
    X_lazy, y_lazy, X_test, y_test = make_problem(n_samples)
    # Under load a worker can register late; data persisted before that all lands on the other one.
    client.wait_for_workers(N_WORKERS)
    X_train, y_train = client.persist([X_lazy, y_lazy])
    wait([X_train, y_train])
    # Gather the blocks themselves: computing the persisted arrays would concatenate them on
    # one worker, and the active memory manager then drops the other copies, moving every
    # X block to one worker and every y block to the other.
    X_np = np.concatenate(client.gather(breakdown.block_futures(X_train)))
    y_np = np.concatenate(client.gather(breakdown.block_futures(y_train)))
    X_test_np, y_test_np = client.compute([X_test, y_test], sync=True)
    return Data(X_lazy, y_lazy, X_train, y_train, X_np, y_np, X_test_np, y_test_np)


def held_out_accuracy(model: Any, data: Data) -> float:
    """Accuracy of a fitted classifier on the held-out rows."""
    return float(model.score(data.X_test, data.y_test))


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``call()``; return its result and the seconds it took."""
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


# ------------------------------------------------------------------------ methods
def run_single_process(data: Data) -> tuple[float, float]:
    """``partial_fit`` over the in-memory blocks in order; time only the loop."""
    model = SGDClassifier(random_state=0)
    X, y = data.X_train_np, data.y_train_np

    def loop() -> None:
        for row in range(0, len(y), BLOCK_SIZE):
            model.partial_fit(X[row : row + BLOCK_SIZE], y[row : row + BLOCK_SIZE], classes=CLASSES)

    _, seconds = timed(loop)
    return seconds, held_out_accuracy(model, data)


def run_incremental(data: Data) -> tuple[float, float]:
    """``dask_ml.wrappers.Incremental`` with its defaults, one ``fit`` on the persisted arrays."""
    from dask_ml.wrappers import Incremental

    inc = Incremental(SGDClassifier(random_state=0))
    _, seconds = timed(lambda: inc.fit(data.X_train, data.y_train, classes=CLASSES))
    return seconds, held_out_accuracy(inc.estimator_, data)


def fedplugin_session(client: Client, name: str, sync_every: int = SYNC_EVERY) -> Any:
    """A fresh plugin under ``name`` and its Coordinator, cleaned up on exit.

    Every repeat needs its own name: the scheduler's model store keeps the
    global model of a name, so a reused name would continue training it.
    """
    from fedplugin import EveryNBatches, WeightedMean
    from fedplugin.session import federated_session

    return federated_session(
        client, SGDClassifier(random_state=0), classes=CLASSES, name=name, check_workers=False,
        sync=EveryNBatches(sync_every), aggregator=WeightedMean(), progress=False,
    )


def run_fedplugin(client: Client, data: Data, name: str) -> tuple[float, float, float, float]:
    """Fit a fresh model (first fit), then fit it again (second fit, epoch 2).

    Returns
    -------
    first_seconds, first_accuracy, second_seconds, second_accuracy : float
    """
    with fedplugin_session(client, name) as coord:
        _, first = timed(lambda: coord.fit(data.X_train, data.y_train))
        first_accuracy = held_out_accuracy(coord.global_model(), data)
        _, second = timed(lambda: coord.fit(data.X_train, data.y_train))
        second_accuracy = held_out_accuracy(coord.global_model(), data)
    return first, first_accuracy, second, second_accuracy


def run_legacy(data: Data, n_samples: int) -> tuple[Result, dict[str, Any]]:
    """Train the old Worker-subclass way on the first ``n_samples`` training rows, on its own cluster."""
    n_blocks = max(1, min(n_samples, data.n_train) // BLOCK_SIZE)
    rows = n_blocks * BLOCK_SIZE
    X, y = data.X_lazy[:rows], data.y_lazy[:rows]
    with (
        LocalCluster(
            worker_class=legacy_worker.ModelWorker, n_workers=N_WORKERS, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        run, seconds = timed(lambda: legacy_worker.train(client, X, y, sync_every=SYNC_EVERY))
        processes = cluster.processes
    result = Result(
        f"old Worker subclass (own cluster), {count(n_blocks, 'task')}",
        rows,
        note="own cluster (worker_class=): threads in the client process, no nannies; "
        "each task generates its lazy block",
    )
    result.add(seconds, held_out_accuracy(run.model, data))
    return result, {
        "worker_processes": processes,
        "batches": run.batches,
        "in_flight_at_sync": run.in_flight_at_sync,
        "block_generation_samples_per_s": breakdown.generation_rate(X, y),
    }


def run_fedplugin_one_round(client: Client, data: Data, name: str) -> tuple[float, float]:
    """Fit a fresh model that synchronizes once, at the end (``EveryNBatches(all blocks)``)."""
    with fedplugin_session(client, name, sync_every=data.X_train.numblocks[0]) as coord:
        _, seconds = timed(lambda: coord.fit(data.X_train, data.y_train))
        accuracy = held_out_accuracy(coord.global_model(), data)
    return seconds, accuracy


def new_results(data: Data, groups: dict[str, Any]) -> dict[str, Result]:
    """Empty results for the methods run on the benchmark's cluster, in table order."""
    n = data.n_train
    first = min(groups)
    return {
        "single": Result("single-process partial_fit", n),
        "incremental": Result("dask-ml Incremental", n),
        "fedplugin": Result("fedplugin, first fit", n, note="fresh model; the one compared"),
        "fedplugin_second": Result(
            "fedplugin, second fit (epoch 2)", n, note="same coordinator again; accuracy after 2 epochs"
        ),
        "fedplugin_one_round": Result(
            "fedplugin, one round at the end", n, note="EveryNBatches(all blocks): prices the intermediate rounds"
        ),
        "raw_one": Result(
            "raw partial_fit, 1 worker alone",
            len(groups[first][0]) * BLOCK_SIZE,
            note="one task over the blocks resident on it; time inside the task; no model kept",
        ),
        "raw_all": Result(
            "raw partial_fit, 2 workers at once",
            n,
            note="ceiling: no Dask round trips, no synchronization; time inside the tasks; no model kept",
        ),
    }


def run_cluster_methods(client: Client, data: Data, repeats: int) -> tuple[dict[str, Result], list[dict[str, Any]]]:
    """Every method that runs on the benchmark's cluster, ``repeats`` times, interleaved.

    Returns
    -------
    results : dict of str to Result
    placements : list of dict
        Where the blocks lived before each fedplugin fit (Dask moves and drops
        replicas between runs, and fedplugin trains blocks where they live).
    """
    groups = breakdown.resident_blocks(client, data.X_train, data.y_train)
    workers = sorted(groups)
    breakdown.raw_run(client, groups, workers)  # warm-up: first calls pay for imports and page faults
    results, placements = new_results(data, groups), []
    for repeat in range(repeats):
        results["single"].add(*run_single_process(data))
        results["incremental"].add(*run_incremental(data))
        placements.append(breakdown.placement(client, data.X_train, data.y_train))
        first_s, first_acc, second_s, second_acc = run_fedplugin(client, data, f"bench-{repeat}")
        results["fedplugin"].add(first_s, first_acc)
        results["fedplugin_second"].add(second_s, second_acc)
        results["fedplugin_one_round"].add(*run_fedplugin_one_round(client, data, f"bench-one-round-{repeat}"))
        results["raw_one"].add(breakdown.raw_run(client, groups, workers[:1])[1])
        results["raw_all"].add(breakdown.raw_run(client, groups, workers)[1])
        print(
            f"  repeat {repeat + 1}/{repeats}: "
            + ", ".join(f"{key} {result.seconds[-1]:.2f} s" for key, result in results.items()),
            flush=True,
        )
    return results, placements


# ------------------------------------------------------------------------ report
def goals(results: dict[str, Result]) -> dict[str, dict[str, Any]]:
    """Each project goal: the measured value, the target and whether it is met."""
    fed, single, inc, ceiling = results["fedplugin"], results["single"], results["incremental"], results["raw_all"]
    of_ceiling = fed.samples_per_s / ceiling.samples_per_s
    vs_inc = fed.samples_per_s / inc.samples_per_s
    gap = 100 * (fed.median_accuracy - single.median_accuracy)
    return {
        "share_of_ceiling": {"value": of_ceiling, "target": f">= {GOAL_OF_CEILING}", "met": of_ceiling >= GOAL_OF_CEILING},
        "speedup_vs_single": {"value": fed.samples_per_s / single.samples_per_s, "target": "(reported)", "met": True},
        "speedup_vs_incremental": {
            "value": vs_inc,
            "target": f">= {GOAL_VS_INCREMENTAL}",
            "met": vs_inc >= GOAL_VS_INCREMENTAL,
        },
        "accuracy_points_vs_single": {
            "value": gap,
            "target": f">= -{GOAL_ACCURACY_POINTS} (more accurate is fine)",
            "met": gap >= -GOAL_ACCURACY_POINTS,
        },
    }


def format_table(results: dict[str, Result]) -> str:
    """Format the results as a Markdown table, with ratios to single-process and Incremental."""
    single, inc = results["single"].samples_per_s, results["incremental"].samples_per_s
    lines = [
        "| method | rows trained | runs | samples/s (median) | held-out accuracy | x single | x Incremental |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results.values():
        rate = result.samples_per_s
        lines.append(
            f"| {result.method} | {result.samples:,} | {len(result.seconds)} | {rate:,.0f} | "
            f"{'-' if result.median_accuracy is None else f'{result.median_accuracy:.4f}'} | "
            f"{rate / single:.2f} | {rate / inc:.2f} |"
        )
    return "\n".join(lines)


def format_goals(checks: dict[str, dict[str, Any]]) -> str:
    """One line per goal: measured value, target, MET or NOT MET."""
    labels = {
        "share_of_ceiling": "fedplugin / two bare processes (the ceiling) samples/s",
        "speedup_vs_single": "fedplugin / single-process samples/s",
        "speedup_vs_incremental": "fedplugin / Incremental samples/s",
        "accuracy_points_vs_single": "fedplugin - single-process accuracy (points)",
    }
    return "\n".join(
        f"- {labels[name]}: {c['value']:{'+.2f' if name.startswith('accuracy') else '.2f'}}, "
        f"goal {c['target']}: {'MET' if c['met'] else 'NOT MET'}"
        for name, c in checks.items()
    )


def environment() -> dict[str, Any]:
    """Date, source state, machine and library versions, for the report."""
    import dask
    import dask_ml
    import distributed
    import sklearn

    import fedplugin

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], check=False, cwd=HERE.parent, capture_output=True, text=True
        ).stdout.strip()

    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "HEAD"),
        "fedplugin_uncommitted_changes": git("status", "--porcelain", "fedplugin").splitlines(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "dask": dask.__version__,
            "distributed": distributed.__version__,
            "scikit-learn": sklearn.__version__,
            "dask-ml": dask_ml.__version__,
            "fedplugin": fedplugin.__version__,
        },
    }


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write ``report`` to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=float) + "\n")


# --------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the options; ``--quick`` changes the defaults of the others."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, help="rows in all, before the 10 %% hold-out (default 1,000,000)")
    parser.add_argument(
        "--legacy-samples", type=int, help="training rows for the old Worker-subclass method (default: all)"
    )
    parser.add_argument("--repeats", type=int, help="repeats of the cluster methods (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200,000 rows, one repeat")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "throughput.json", help="JSON file to write")
    args = parser.parse_args(argv)
    args.samples = args.samples or (200_000 if args.quick else 1_000_000)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.legacy_samples = args.legacy_samples or args.samples
    if args.samples < 10 * BLOCK_SIZE or args.repeats < 1 or args.legacy_samples < BLOCK_SIZE:
        parser.error(f"need --samples >= {10 * BLOCK_SIZE}, --legacy-samples >= {BLOCK_SIZE}, --repeats >= 1")
    return args


def run(args: argparse.Namespace) -> tuple[dict[str, Result], dict[str, Any]]:
    """Run every method on one data set.

    Returns
    -------
    results : dict of str to Result
        The measurements, by method.
    report : dict
        Everything measured, with the machine and versions (the JSON file).
    """
    load_at_start = os.getloadavg()
    print(f"data: {args.samples:,} x {N_FEATURES}, blocks of {BLOCK_SIZE:,}, 10 % held out", flush=True)
    with (
        LocalCluster(n_workers=N_WORKERS, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        data = load_data(client, args.samples)
        placement = breakdown.placement(client, data.X_train, data.y_train)
        print(
            f"cluster: {N_WORKERS} worker processes with nannies; X blocks per worker "
            f"{placement['x_blocks_per_worker']}, {placement['x_y_colocated']}/{placement['blocks']} "
            f"X/y blocks on the same worker; {count(args.repeats, 'repeat')}",
            flush=True,
        )
        results, placements = run_cluster_methods(client, data, args.repeats)
        print("breakdown of fedplugin's time ...", flush=True)
        with fedplugin_session(client, "bench-profile") as coord:
            profile = breakdown.measure(client, coord, data.X_train, data.y_train)
    print("old Worker-subclass approach, own cluster ...", flush=True)
    results["legacy"], legacy_details = run_legacy(data, args.legacy_samples)
    return results, {
        **environment(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "config": {
            "samples": args.samples,
            "train_rows": data.n_train,
            "test_rows": len(data.y_test),
            "legacy_rows": results["legacy"].samples,
            "features": N_FEATURES,
            "block_size": BLOCK_SIZE,
            "sync_every": SYNC_EVERY,
            "repeats": args.repeats,
        },
        "results": {key: result.to_dict() for key, result in results.items()},
        "goals": goals(results),
        "placement_after_persist": placement,
        "placement_before_fedplugin": placements,
        "legacy": legacy_details,
        "breakdown": profile,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, the goals and the breakdown, write the JSON report."""
    args = parse_args(argv)
    results, report = run(args)
    ceiling = results["raw_all"].samples_per_s / results["single"].samples_per_s
    print("\n" + format_table(results) + "\n\n" + format_goals(report["goals"]))
    print(f"- ceiling in this run: raw partial_fit in 2 workers at once = {ceiling:.2f} x single-process")
    print("\n" + breakdown.format_summary(report["breakdown"]))
    write_json(report, args.output)
    print(f"\nwritten: {args.output}")
    return report


if __name__ == "__main__":
    main()
