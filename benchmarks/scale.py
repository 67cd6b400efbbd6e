"""Scale benchmark: round cost against the number of workers and the model size.

Run ``.venv/bin/python benchmarks/scale.py`` (``--workers 2 8 16``). For each
number of workers a ``LocalCluster(n_workers=n, threads_per_worker=1)`` trains
two models on a persisted dask array of 64-row blocks, with
``EveryNBatches(n)``, so each round every worker trains one block:

* ``small``: ``SGDClassifier``, 100 features, 2 classes (808 bytes of parameters);
* ``large``: ``SGDClassifier``, 10,000 features, 100 classes (8 MB of parameters).

Measured per configuration, with ``overlap=True``, ``"auto"`` (the default) and ``False``:
round wall time (fit time / rounds), bytes through the client per round
(``Round.client_bytes``), parameter bytes moved worker to worker, the time the
worker that combines a round spends (``Round.combine_seconds``), and each
worker's idle time per round (fit time minus its time in training tasks, as
each worker's plugin counts it), and the CPU time per round of this process
(the client and ``LocalCluster``'s scheduler) and of the workers. ``--pulls tree flat`` measures each configuration twice:
with the reduction tree for the pull (the default: with more than 8 workers,
``fedplugin.exchange.FAN_IN``) and with a flat pull (the fan-in set above the
number of workers on every worker). A table goes to stdout, everything to
``benchmarks/results/scale.json``, with a projection of the combining cost
to 64 and 512 workers, and the training floor: the least wall time a round
can take on this machine, ``n`` workers x the CPU time of one block's
``partial_fit`` (measured here) / the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, wait
from sklearn.linear_model import SGDClassifier

from fedplugin.exchange import FAN_IN
from fedplugin.reduction import groups_of
from fedplugin.wording import plural

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # breakdown, also when imported from elsewhere

import breakdown  # noqa: E402
BLOCK_ROWS = 64
MODELS = {"small": (100, 2), "large": (10_000, 100)}
OVERLAPS = {"True": True, "auto": "auto", "False": False}
GOALS = {"client_bytes_per_round": 64_000, "large_8_round_ms": 300, "small_2_idle_ms": 5}


def data(client: Client, n_blocks: int, n_features: int, n_classes: int) -> tuple[Any, Any]:
    rows = n_blocks * BLOCK_ROWS
    X = da.random.RandomState(0).normal(size=(rows, n_features), chunks=(BLOCK_ROWS, n_features))
    y = da.random.RandomState(1).randint(0, n_classes, size=rows, chunks=BLOCK_ROWS)
    X, y = client.persist([X, y])
    wait([X, y])
    return X, y


def block_cpu_ms(n_features: int, n_classes: int, repeats: int = 10) -> float:
    """CPU milliseconds of one 64-row ``partial_fit`` on this model, in this process (median).

    With ``n`` workers training one block each per round on ``cores`` cores,
    ``n * block_cpu_ms / cores`` is the least wall time a round can take
    here, whatever the rounds cost: the training floor.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(BLOCK_ROWS * (repeats + 1), n_features))
    y = rng.integers(0, n_classes, size=len(X))
    model = SGDClassifier(random_state=0)  # as measure() trains it
    model.partial_fit(X[:BLOCK_ROWS], y[:BLOCK_ROWS], classes=np.arange(n_classes))
    times = []
    for i in range(1, repeats + 1):
        start = time.process_time()
        model.partial_fit(X[i * BLOCK_ROWS:(i + 1) * BLOCK_ROWS], y[i * BLOCK_ROWS:(i + 1) * BLOCK_ROWS])
        times.append(time.process_time() - start)
    return 1000 * statistics.median(times)


def _noop() -> None:
    return None


def task_round_trip_ms(client: Client, repeats: int = 50) -> float:
    """Median milliseconds from ``client.submit`` of a task that does nothing to its result.

    The least a round that launches a task per worker and reads its report
    can cost on this cluster, before any training or combining. Measured as
    a fit sends messages (``fedplugin.messaging.prompt_messages``).
    """
    from fedplugin.messaging import prompt_messages

    times = []
    with prompt_messages(client):
        for i in range(repeats + 10):  # the first ten warm up
            start = time.perf_counter()
            client.submit(_noop, pure=False).result()
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[10:])


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def set_fan_in(fan_in: int, **_: Any) -> int:
    """On a worker: the fan-in its rounds' reduction trees use (above the number of workers: a flat pull)."""
    from fedplugin import exchange

    exchange.FAN_IN = fan_in
    return fan_in


def measure(client: Client, X: Any, y: Any, n_workers: int, n_classes: int, overlap: Any) -> dict[str, Any]:
    from fedplugin import EveryNBatches
    from fedplugin.session import federated_session

    estimator = SGDClassifier(random_state=0)
    options = dict(sync=EveryNBatches(n_workers), overlap=overlap, progress=False)
    with federated_session(client, estimator, classes=list(range(n_classes)), check_workers=False, **options) as coord:
        with breakdown.cpu_used(client) as cpu:
            start = time.perf_counter()
            coord.fit(X, y)
            seconds = time.perf_counter() - start
        history = coord.history
        # Time spent training blocks, as each worker's plugin counts it (a
        # task that waits for a round's model is not training).
        busy = {w: s["training_seconds"] for w, s in coord.worker_states().items()}
    rounds = len(history)
    idle = [(seconds - b) / rounds for b in busy.values()]
    return {
        "rounds": rounds,
        "round_ms": 1000 * seconds / rounds,
        "client_bytes_per_round": statistics.median(r.client_bytes for r in history),
        "worker_bytes_per_round": statistics.median(r.bytes_up + r.bytes_down for r in history),
        "combine_ms": 1000 * statistics.median(r.combine_seconds for r in history),
        "pull_ms": 1000 * statistics.median(r.pull_seconds for r in history),
        "compute_ms": 1000 * statistics.median(r.compute_seconds for r in history),
        "push_ms": 1000 * statistics.median(r.push_seconds for r in history),
        "idle_ms_per_round_mean": 1000 * statistics.mean(idle),
        "idle_ms_per_round_max": 1000 * max(idle),
        "samples": sum(r.samples for r in history),
        # CPU per round: this process (the client, and LocalCluster's scheduler in its
        # event loop) and all the workers together (training included).
        "client_cpu_ms_per_round": 1000 * cpu["here"] / rounds,
        "workers_cpu_ms_per_round": 1000 * cpu["workers"] / rounds,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 8, 16])
    parser.add_argument("--rounds", type=int, default=20, help="rounds per fit (small model)")
    parser.add_argument("--large-rounds", type=int, default=6, help="rounds per fit (large model)")
    parser.add_argument("--overlap", nargs="+", choices=["True", "auto", "False"], default=["True", "auto", "False"])
    parser.add_argument("--pulls", nargs="+", choices=["tree", "flat"], default=["tree"],
                        help="flat: no reduction tree (for a comparison in the same run)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "scale.json")
    args = parser.parse_args(argv)
    rows = []
    block_ms = {model: block_cpu_ms(*shape) for model, shape in MODELS.items()}
    round_trips: dict[int, float] = {}
    for n in args.workers:
        with LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as client:
            client.wait_for_workers(n)
            round_trips[n] = task_round_trip_ms(client)
            for model, (n_features, n_classes) in MODELS.items():
                rounds = args.rounds if model == "small" else args.large_rounds
                X, y = data(client, n * rounds, n_features, n_classes)
                measure(client, X[: n * BLOCK_ROWS], y[: n * BLOCK_ROWS], n, n_classes, True)  # warm-up
                for overlap, pull in [(o, p) for o in args.overlap for p in args.pulls]:
                    client.run(set_fan_in, FAN_IN if pull == "tree" else n + 1)
                    row = {"workers": n, "model": model, "overlap": OVERLAPS[overlap], "pull": pull,
                           **measure(client, X, y, n, n_classes, OVERLAPS[overlap]),
                           "training_floor_ms": n * block_ms[model] / cores()}
                    assert row["samples"] == n * rounds * BLOCK_ROWS, "every sample exactly once"
                    rows.append(row)
                    print(_line(row), flush=True)
                del X, y
    report = {"rows": rows, "cores": cores(), "block_cpu_ms": block_ms, "task_round_trip_ms": round_trips, "projection": _projection(rows), "goals": _goals(rows)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(_table(rows))
    for key, value in report["projection"].items():
        print(f"projection {key}: {value}")
    print("projection: pull and average cost per item the combining worker receives (reduction tree of fan-in "
          f"{FAN_IN}), push cost per fan-out level; see _projection")
    print(f"training floor: one 64-row partial_fit takes {block_ms['small']:.2f} ms (small) and {block_ms['large']:.1f} ms "
          f"(large) of CPU here; n workers training one block each on {cores()} cores need n x that / {cores()} per round")
    print("a task that does nothing, submit to result: " + ", ".join(f"{ms:.1f} ms at {n} workers" for n, ms in round_trips.items()))
    for goal in report["goals"]:
        print(f"goal {goal['what']} {goal['target']}: {goal['value']:,.1f} {'MET' if goal['met'] else 'NOT MET'}"
              + (f" (training floor here: {goal['floor']:,.1f})" if "floor" in goal else ""))
    return report


def _projection(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The combining cost at 64 and 512 workers, from per-hop costs measured at the most workers.

    The pull is a reduction tree of fan-in 8 (``fedplugin.exchange.FAN_IN``;
    these models' rule, the default ``WeightedMean``, splits): the combining
    worker reduces its own group at every level and receives the other
    groups' means, which their heads compute meanwhile, so a round costs one
    pull and average per item it receives (``_pulled_along(n)``: ``n`` up to
    9 workers, 22 at 512), each ``(pull_ms + compute_ms) / _pulled_along(n)``;
    the push is a fan-out tree of 8, so it costs ``push_ms / levels(n)`` per
    level. Measured synchronously (``overlap=False``): overlapped rounds share
    the cores with training. On a 2-core machine with many worker processes
    these per-hop costs include CPU contention: a projection, not a
    measurement.
    """
    out = {}
    for model in MODELS:
        synchronous = [r for r in rows if r["model"] == model and r["overlap"] is False and r.get("pull", "tree") == "tree"]
        if not synchronous:
            continue
        r = max(synchronous, key=lambda row: row["workers"])
        n = r["workers"]
        per_item = (r["pull_ms"] + r["compute_ms"]) / _pulled_along(n)
        per_level = r["push_ms"] / _levels(n)
        out[model] = {
            "measured_at_workers": n,
            "pull_and_compute_ms_per_item": per_item,
            "push_ms_per_tree_level": per_level,
            **{f"combine_ms_{m}": _pulled_along(m) * per_item + _levels(m) * per_level for m in (64, 512)},
        }
    return out


def _pulled_along(n: int, fan_in: int = FAN_IN) -> int:
    """Updates and partial means the combining worker receives in a round of ``n`` workers.

    It reduces its own group at every level of the tree (``groups_of``) and
    receives the other groups' means: 9 at 16 workers, 15 at 64, 22 at 512.
    """
    groups = groups_of(list(range(n)), fan_in)
    if len(groups) == 1:
        return n
    return len(groups) - 1 + _pulled_along(len(groups[0]), fan_in)


def _levels(n: int) -> int:
    """Levels of a fan-out-8 tree that reaches ``n - 1`` other workers."""
    levels, reached = 0, 1
    while reached < n:
        reached *= 9  # each holder sends to 8 more
        levels += 1
    return max(levels, 1)


def _goals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    goals = []
    worst = max(r["client_bytes_per_round"] for r in rows)
    goals.append({"what": "bytes through the client per round, every size", "target": "<= 64 KB",
                  "value": worst, "met": worst <= GOALS["client_bytes_per_round"]})
    for r in rows:
        if r["pull"] != "tree":
            continue  # the goals are the default's
        if r["overlap"] is True and r["model"] == "large" and r["workers"] == 8:
            goals.append({"what": "round wall time, 8 workers x 8 MB (ms)", "target": "<= 300",
                          "value": r["round_ms"], "met": r["round_ms"] <= GOALS["large_8_round_ms"],
                          "floor": r["training_floor_ms"]})
        if r["overlap"] is True and r["model"] == "small" and r["workers"] == 2:
            goals.append({"what": "worker idle per round, 2 workers x 100 features (ms)", "target": "< 5",
                          "value": r["idle_ms_per_round_max"], "met": r["idle_ms_per_round_max"] < GOALS["small_2_idle_ms"]})
    return goals


def _line(r: dict[str, Any]) -> str:
    return (f"  {r['workers']:>2} {plural(r['workers'], 'worker'):<7} {r['model']:<5} overlap={r['overlap']!s:<5} "
            f"pull={r['pull']:<4} round {r['round_ms']:8.1f} ms  "
            f"client {r['client_bytes_per_round']:>8,.0f} B  combine {r['combine_ms']:6.1f} ms "
            f"(pull {r['pull_ms']:.1f}, compute {r['compute_ms']:.1f}, push {r['push_ms']:.1f})  "
            f"idle {r['idle_ms_per_round_mean']:6.1f} ms (max {r['idle_ms_per_round_max']:.1f})")


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| workers | model | overlap | pull | round ms | client bytes/round | worker-to-worker bytes/round "
             "| combine ms (pull / compute / push) | idle ms/round (max) | CPU ms/round: client+scheduler / workers "
             "| training floor ms/round |",
             "| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['workers']} | {r['model']} | {r['overlap']} | {r['pull']} | {r['round_ms']:.1f} | {r['client_bytes_per_round']:,.0f} | "
                     f"{r['worker_bytes_per_round']:,.0f} | {r['combine_ms']:.1f} ({r['pull_ms']:.1f} / {r['compute_ms']:.1f} / "
                     f"{r['push_ms']:.1f}) | {r['idle_ms_per_round_mean']:.1f} ({r['idle_ms_per_round_max']:.1f}) | "
                     f"{r['client_cpu_ms_per_round']:.1f} / {r['workers_cpu_ms_per_round']:.1f} | {r['training_floor_ms']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
