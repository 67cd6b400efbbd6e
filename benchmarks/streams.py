"""Stream benchmark: ``fit_stream`` against single-process ``partial_fit`` over the same batches.

Run ``.venv/bin/python benchmarks/streams.py``. The stream is 200,000 x 10 rows
of a linear concept (``y = X @ w > 0`` with 5 % label noise, seeded), cut into
numpy batches of 1,000 rows (and, in a second set of runs, 100 rows). Each
method reads the same batches from a generator:

* single-process ``SGDClassifier().partial_fit`` over every batch, in order;
* ``Coordinator.fit_stream`` on a ``LocalCluster(n_workers=2, threads_per_worker=1)``,
  with ``EveryNBatches(4)``, ``EveryNBatches(40)`` and one round at the end,
  overlapped (the default) and strictly synchronous (``overlap=False``).

Small batches are coalesced into blocks of ``--block-size`` rows (default
4,096), so ``EveryNBatches(4)`` is a round every 4 blocks. Each configuration
runs ``--repeats`` times, interleaved with the single-process baseline; the
median is reported, with held-out accuracy on 20,000 fresh rows of the same
concept (and its range over the repeats), and the CPU time the fit used in
this process (the client and ``LocalCluster``'s scheduler) and in the workers.
A table goes to stdout, everything to ``benchmarks/results/streams.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client, LocalCluster
from sklearn.linear_model import SGDClassifier

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # breakdown, also when imported from elsewhere

import breakdown  # noqa: E402
N_ROWS, N_FEATURES = 200_000, 10
GOALS = {"EveryNBatches(4)": 1.2, "EveryNBatches(40)": 1.4}


def concept(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=N_FEATURES)


def make_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    y = (X @ concept() > 0).astype(np.int64)
    flip = rng.random(n) < 0.05
    y[flip] = 1 - y[flip]
    return X, y


def batches(X: np.ndarray, y: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(y), size):
        yield X[start:start + size], y[start:start + size]


def run_single(X: np.ndarray, y: np.ndarray, size: int, test: tuple) -> tuple[float, float]:
    model = SGDClassifier(random_state=0)
    start = time.perf_counter()
    for X_batch, y_batch in batches(X, y, size):
        model.partial_fit(X_batch, y_batch, classes=[0, 1])
    return time.perf_counter() - start, float(model.score(*test))


def run_stream(client: Client, X: np.ndarray, y: np.ndarray, size: int, sync: Any, overlap: bool,
               block_size: int, test: tuple) -> dict[str, Any]:
    from fedplugin.session import federated_session

    options = dict(sync=sync, overlap=overlap, block_size=block_size, progress=False)
    with federated_session(client, SGDClassifier(random_state=0), classes=[0, 1], check_workers=False, **options) as coord:
        with breakdown.cpu_used(client) as cpu:
            start = time.perf_counter()
            coord.fit_stream(batches(X, y, size))
            seconds = time.perf_counter() - start
        history = coord.history
        assert sum(r.samples for r in history) == len(y), "every sample exactly once"
        return {
            "seconds": seconds,
            "accuracy": float(coord.score(*test)),
            "rounds": len(history),
            "client_bytes_per_round": statistics.median(r.client_bytes for r in history),
            # CPU seconds during the fit (see breakdown.cpu_used): training, handing over, combining.
            "client_and_scheduler_cpu_s": cpu["here"],
            "workers_cpu_s": cpu["workers"],
        }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--block-size", type=int, default=4096)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "streams.json")
    args = parser.parse_args(argv)
    X, y = make_rows(N_ROWS, seed=1)
    test = make_rows(20_000, seed=2)
    configs = [("EveryNBatches(4)", 4), ("EveryNBatches(40)", 40), ("one round at the end", 10**9)]
    rows: list[dict[str, Any]] = []
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as client:
        from fedplugin import EveryNBatches

        run_stream(client, X[:20_000], y[:20_000], 1000, EveryNBatches(4), True, args.block_size, test)  # warm-up
        for size in (1000, 100):
            single = [run_single(X, y, size, test) for _ in range(args.repeats)]
            single_s = statistics.median(s for s, _ in single)
            for label, n in configs:
                for overlap in (True, False):
                    runs = [run_stream(client, X, y, size, EveryNBatches(n), overlap, args.block_size, test)
                            for _ in range(args.repeats)]
                    seconds = statistics.median(r["seconds"] for r in runs)
                    rows.append({
                        "batch_rows": size, "sync": label, "overlap": overlap, "seconds": seconds,
                        "samples_per_s": N_ROWS / seconds, "x_single": single_s / seconds,
                        "accuracy": statistics.median(r["accuracy"] for r in runs),
                        "single_accuracy": statistics.median(a for _, a in single),
                        "single_samples_per_s": N_ROWS / single_s, "rounds": runs[0]["rounds"],
                        "client_bytes_per_round": runs[0]["client_bytes_per_round"],
                        "accuracy_range": [min(r["accuracy"] for r in runs), max(r["accuracy"] for r in runs)],
                        "client_and_scheduler_cpu_s": statistics.median(r["client_and_scheduler_cpu_s"] for r in runs),
                        "workers_cpu_s": statistics.median(r["workers_cpu_s"] for r in runs),
                        "single_seconds": single_s,
                    })
                    print(_line(rows[-1]), flush=True)
    report = {"block_size": args.block_size, "rows": rows, "goals": _goals(rows)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(_table(rows))
    for goal in report["goals"]:
        print(f"goal {goal['sync']} (1,000-row batches, overlap) >= {goal['target']}x: "
              f"{goal['value']:.2f}x {'MET' if goal['met'] else 'NOT MET'}")
    return report


def _goals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        if row["batch_rows"] == 1000 and row["overlap"] and row["sync"] in GOALS:
            target = GOALS[row["sync"]]
            out.append({"sync": row["sync"], "target": target, "value": row["x_single"], "met": row["x_single"] >= target})
    return out


def _line(row: dict[str, Any]) -> str:
    return (f"  {row['batch_rows']:>5}-row batches, {row['sync']:<21} overlap={row['overlap']!s:<5} "
            f"{row['samples_per_s']:>12,.0f} samples/s  {row['x_single']:.2f}x single  acc {row['accuracy']:.4f}")


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| batch rows | sync | overlap | rounds | samples/s | x single-process | accuracy [range] (single) "
        "| client bytes/round | CPU s: client+scheduler / workers (single-process time) |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        low, high = r["accuracy_range"]
        lines.append(
            f"| {r['batch_rows']:,} | {r['sync']} | {r['overlap']} | {r['rounds']} | {r['samples_per_s']:,.0f} | "
            f"{r['x_single']:.2f} | {r['accuracy']:.4f} [{low:.3f}-{high:.3f}] ({r['single_accuracy']:.4f}) | "
            f"{r['client_bytes_per_round']:,.0f} | {r['client_and_scheduler_cpu_s']:.2f} / {r['workers_cpu_s']:.2f} "
            f"({r['single_seconds']:.2f}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
