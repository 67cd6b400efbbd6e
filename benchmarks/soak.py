"""Soak benchmark: memory over many rounds of a stream, on the client, the scheduler and every worker.

Run ``.venv/bin/python benchmarks/soak.py`` (100,000 rounds by default; ``--rounds``
for fewer). A ``LocalCluster(n_workers=2, threads_per_worker=1)`` trains a
default ``SGDClassifier`` with ``fit_stream`` on 500-row numpy batches of a
linear concept, blocks of 500 rows, ``EveryNBatches(2)``: one round per 1,000
samples. The scheduler runs in the client's process (as with every
``LocalCluster``), so "client" below is client and scheduler together.

While the stream runs, a thread samples the resident memory (RSS) of the client
process and of every worker every ``--sample-seconds``. After ``--warmup``
(a fraction of the rounds) the growth per round is the slope of a least-squares
line through the samples, in KB per round. Goal (issue 13): below 0.1 KB per
round everywhere, with the sample accounting exact. A table goes to stdout,
everything to ``benchmarks/results/soak.json``.

Dask keeps logs of its own, each bounded by a setting but large by default: the
workers' profiler history (an hour), their log records (10,000 each), the
scheduler's transition log. They grow until full, so a run shorter than it
takes to fill them sees them grow. ``--small-dask-logs`` shrinks them (and
turns the profiler off) to measure what fedplugin itself keeps.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from distributed import Client, LocalCluster
from sklearn.linear_model import SGDClassifier

HERE = Path(__file__).resolve().parent
N_FEATURES = 10
GOAL_KB_PER_ROUND = 0.1


def stream(n_batches: int, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``n_batches`` batches of a fixed linear concept, made on the fly (constant memory)."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=N_FEATURES)
    for _ in range(n_batches):
        X = rng.normal(size=(size, N_FEATURES))
        yield X, (X @ w > 0).astype(np.int64)


def rss() -> int:
    return psutil.Process().memory_info().rss


class Sampler(threading.Thread):
    """Every ``period`` seconds: (rounds so far, client RSS, {worker: RSS})."""

    def __init__(self, client: Client, coord: Any, period: float) -> None:
        super().__init__(daemon=True)
        self.client, self.coord, self.period = client, coord, period
        self.samples: list[tuple[int, int, dict[str, int]]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.period):
            self.samples.append((self.coord.rounds, rss(), self.client.run(rss)))


def slope_kb_per_round(rounds: list[int], values: list[int]) -> float:
    if len(set(rounds)) < 2:
        return float("nan")
    return float(np.polyfit(rounds, values, 1)[0]) / 1024


#: Dask settings of ``--small-dask-logs``, as environment variables so worker processes see them.
SMALL_DASK_LOGS = {
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    "DASK_DISTRIBUTED__ADMIN__LOG_LENGTH": "100",
    "DASK_DISTRIBUTED__ADMIN__LOW_LEVEL_LOG_LENGTH": "100",
    "DASK_DISTRIBUTED__DIAGNOSTICS__COMPUTATIONS__MAX_HISTORY": "10",
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from fedplugin import EveryNBatches
    from fedplugin.session import federated_session

    n_batches = args.rounds * 2
    if args.small_dask_logs:
        import os

        import dask

        os.environ.update(SMALL_DASK_LOGS)
        dask.config.refresh()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        options = dict(sync=EveryNBatches(2), block_size=args.batch, progress=False, history_limit=args.history_limit)
        with federated_session(client, SGDClassifier(random_state=0), classes=[0, 1], **options) as coord:
            sampler = Sampler(client, coord, args.sample_seconds)
            start_rss, start_workers = rss(), client.run(rss)
            sampler.start()
            start = time.perf_counter()
            coord.fit_stream(stream(n_batches, args.batch))
            seconds = time.perf_counter() - start
            sampler.done.set()
            sampler.join()
            total = coord.history[-1].total_samples
            assert total == n_batches * args.batch, f"trained {total} samples; expected {n_batches * args.batch}"
            rounds = coord.rounds
    after = [s for s in sampler.samples if s[0] >= args.warmup * args.rounds]
    xs = [s[0] for s in after]
    result = {
        "rounds": rounds, "samples": total, "seconds": seconds, "rounds_per_second": rounds / seconds,
        "history_limit": args.history_limit, "warmup_rounds": int(args.warmup * args.rounds),
        "small_dask_logs": args.small_dask_logs,
        "client": {"start_mb": start_rss / 2**20, "end_mb": sampler.samples[-1][1] / 2**20 if sampler.samples else None,
                   "kb_per_round": slope_kb_per_round(xs, [s[1] for s in after])},
        "workers": {},
        "samples_taken": len(sampler.samples),
        "trace": [(s[0], s[1], s[2]) for s in sampler.samples],
    }
    for worker in start_workers:
        values = [s[2].get(worker) for s in after]
        keep = [(x, v) for x, v in zip(xs, values) if v is not None]
        result["workers"][worker] = {
            "start_mb": start_workers[worker] / 2**20,
            "end_mb": keep[-1][1] / 2**20 if keep else None,
            "kb_per_round": slope_kb_per_round([x for x, _ in keep], [v for _, v in keep]),
        }
    return result


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['rounds']} rounds, {result['samples']:,} samples (exact), {result['seconds']:.0f} s "
        f"({result['rounds_per_second']:.0f} rounds/s); Dask's logs "
        f"{'small' if result['small_dask_logs'] else 'as configured'}; growth after round {result['warmup_rounds']}:",
        f"{'process':<28}{'start MB':>10}{'end MB':>10}{'KB/round':>10}  goal < {GOAL_KB_PER_ROUND}",
    ]
    rows = [("client + scheduler", result["client"])] + [(f"worker {w}", v) for w, v in result["workers"].items()]
    for name, row in rows:
        met = "met" if row["kb_per_round"] < GOAL_KB_PER_ROUND else "NOT MET"
        lines.append(f"{name:<28}{row['start_mb']:>10.1f}{row['end_mb'] or float('nan'):>10.1f}{row['kb_per_round']:>10.3f}  {met}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the rounds before growth is measured")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--history-limit", type=int, default=1000)
    parser.add_argument("--small-dask-logs", action="store_true", help="shrink Dask's own logs (see above)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "soak.json")
    args = parser.parse_args(argv)
    result = run(args)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
