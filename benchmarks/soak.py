"""Soak benchmark: memory over many rounds of a stream, on the client, the scheduler and every worker.

Run ``.venv/bin/python benchmarks/soak.py`` (100,000 rounds by default; ``--rounds``
for fewer). A cluster of two single-threaded workers trains a default
``SGDClassifier`` with ``fit_stream`` on 500-row numpy batches of a linear
concept, blocks of 500 rows, ``EveryNBatches(2)``: one round per 1,000 samples.
The scheduler and the workers run in processes of their own
(``SubprocessCluster``), so the client, the scheduler and each worker are
measured apart (``--local-cluster``: a ``LocalCluster``, whose scheduler lives in
the client's process).

While the stream runs, a thread samples the resident memory (RSS) of every
process every ``--sample-seconds``. After ``--warmup`` (a fraction of the
rounds) the growth per round is the slope of a least-squares line through the
samples, in KB per round. Goal (issue 13): below 0.1 KB per round everywhere,
with the sample accounting exact: the rounds' samples, summed by a callback as
each round is recorded, equal the last round's ``total_samples`` and the rows
the stream produced. The sizes of Dask's and fedplugin's records in each
process (tasks, task groups, spans, event topics, logs, client futures,
per-round snapshots, ...) are counted after the warm-up and at the end: none may
grow. A table goes to stdout, everything to ``benchmarks/results/soak.json``.

Dask keeps logs of its own, each bounded by a setting but large by default: the
workers' profiler history (an hour), their log records (10,000 each), the
scheduler's transition log. They grow until full, so a run shorter than it
takes to fill them sees them grow. ``--small-dask-logs`` shrinks them (and
turns the profiler off) to measure what fedplugin itself keeps.
``--fill-dask-caches`` fills Dask's ``key_split`` cache (100,000 keys, no
setting) in every process before the stream, and turns it over until its
table has its final size, so that a short run sees the state of a long one.
"""

from __future__ import annotations

import argparse
import json
import os
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


def rss(**_: Any) -> int:
    return psutil.Process().memory_info().rss


def _sizes(obj: Any, names: list[str]) -> dict[str, int]:
    return {name: len(getattr(obj, name)) for name in names if hasattr(obj, name)}


def scheduler_records(dask_scheduler: Any = None) -> dict[str, int]:
    """Sizes of the scheduler's records that could grow with the number of rounds."""
    from dask.utils import key_split

    s = dask_scheduler
    sizes = _sizes(s, ["tasks", "task_groups", "task_prefixes", "clients", "transition_log", "computations",
                      "replies", "log", "plugins", "unknown_durations", "handlers"])
    sizes["spans"] = len(s.extensions["spans"].spans)
    topics = s._broker._topics  # private: distributed has no public count of events
    sizes["event topics"], sizes["events"] = len(topics), sum(len(t.events) for t in topics.values())
    sizes["key_split cache"] = key_split.cache_info().currsize
    return sizes


def worker_records(dask_worker: Any = None) -> dict[str, int]:
    """Sizes of a worker's records (Dask's and fedplugin's) that could grow with the number of rounds."""
    from dask.utils import key_split

    w = dask_worker
    sizes = _sizes(w.state, ["tasks", "data", "log", "stimulus_log", "ready"])
    sizes.update(_sizes(w, ["transfer_incoming_log", "transfer_outgoing_log", "plugins", "digests_total", "handlers"]))
    sizes["key_split cache"] = key_split.cache_info().currsize
    for name, plugin in w.plugins.items():
        if hasattr(plugin, "train"):  # fedplugin's per-round records
            state = plugin.rounds
            sizes["fedplugin snapshots"] = len(state.snapshots)
            sizes["fedplugin incoming"] = len(state.incoming)
            sizes["fedplugin outbox"] = len(state.outbox.sent) + len(state.outbox.anchors)
            sizes["fedplugin tokens"] = len(plugin.stop_tokens) + len(plugin.abort_tokens)
    return sizes


def client_records(client: Client, coord: Any) -> dict[str, int]:
    """Sizes of the client's and the coordinator's records."""
    from dask.utils import key_split

    return {"futures": len(client.futures), "refcount": len(client.refcount), "history": len(coord.history),
            "signals": len(getattr(coord, "signals", ())), "key_split cache": key_split.cache_info().currsize}


class Sampler(threading.Thread):
    """Every ``period`` seconds: (rounds so far, {process: RSS}); records once ``coord.rounds >= mark``."""

    def __init__(self, client: Client, coord: Any, period: float, mark: int, separate: bool) -> None:
        super().__init__(daemon=True)
        self.client, self.coord, self.period, self.mark, self.separate = client, coord, period, mark, separate
        self.samples: list[tuple[int, dict[str, int]]] = []
        self.records: dict[str, dict[str, dict[str, int]]] = {}
        self.done = threading.Event()

    def memory(self) -> dict[str, int]:
        memory = {"client": rss()}
        if self.separate:
            memory["scheduler"] = self.client.run_on_scheduler(rss)
        memory.update({f"worker {w}": v for w, v in self.client.run(rss).items()})
        return memory

    def count_records(self) -> dict[str, dict[str, int]]:
        counts = {"client": client_records(self.client, self.coord),
                  "scheduler": self.client.run_on_scheduler(scheduler_records)}
        counts.update({f"worker {w}": v for w, v in self.client.run(worker_records).items()})
        return counts

    def run(self) -> None:
        while not self.done.wait(self.period):
            self.samples.append((self.coord.rounds, self.memory()))
            if "warm" not in self.records and self.coord.rounds >= self.mark:
                self.records["warm"] = self.count_records()


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


def fill_key_split_cache(**_: Any) -> int:
    """Fill this process's ``dask.utils.key_split`` LRU cache, as after ~90,000 rounds.

    Every task and scattered block has a new key, and ``key_split`` caches each
    (100,000 at most): the cache fills after ~25,000 rounds on the scheduler and
    ~50,000 on a worker. Once full, each new key replaces the oldest, which
    leaves a dead slot in the cache's dict; ~75,000 replacements later the dict
    is rebuilt at twice its size (+3.9 MB, measured), and at that size from
    then on. Passing 250,000 keys through it reaches that final state, so a
    short run measures what else grows.
    """
    from dask.utils import key_split

    maxsize = key_split.cache_info().maxsize or 0
    for i in range(maxsize * 5 // 2):
        key_split(f"soak-filler-{i:032x}")
    return key_split.cache_info().currsize


def cluster_for(args: argparse.Namespace) -> Any:
    if args.local_cluster:
        return LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)
    from distributed.deploy.subprocess import SubprocessCluster  # experimental in distributed

    return SubprocessCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)


def train(args: argparse.Namespace) -> tuple[Sampler, dict[str, Any]]:
    """Run the stream while sampling; return the sampler and the accounting."""
    from fedplugin import EveryNBatches
    from fedplugin.session import federated_session

    n_batches = args.rounds * 2
    counted = {"samples": 0, "rounds": 0}

    def count(record: Any) -> None:
        counted["samples"] += record.samples
        counted["rounds"] += 1

    with cluster_for(args) as cluster, Client(cluster) as client:
        options = dict(sync=EveryNBatches(2), block_size=args.batch, progress=False,
                       history_limit=args.history_limit, callbacks=[count])
        if args.fill_dask_caches:
            client.wait_for_workers(args.workers)
            fill_key_split_cache()
            client.run_on_scheduler(fill_key_split_cache)
            client.run(fill_key_split_cache)
        with federated_session(client, SGDClassifier(random_state=0), classes=[0, 1], **options) as coord:
            sampler = Sampler(client, coord, args.sample_seconds, int(args.warmup * args.rounds), not args.local_cluster)
            sampler.start()
            start = time.perf_counter()
            coord.fit_stream(stream(n_batches, args.batch))
            seconds = time.perf_counter() - start
            sampler.done.set()
            sampler.join()
            sampler.records["end"] = sampler.count_records()
            accounting = {"rows": n_batches * args.batch, "total_samples": coord.history[-1].total_samples,
                          "sum_of_rounds": counted["samples"], "rounds": coord.rounds, "rounds_recorded": counted["rounds"],
                          "seconds": seconds}
    exact = accounting["rows"] == accounting["total_samples"] == accounting["sum_of_rounds"]
    assert exact and accounting["rounds"] == accounting["rounds_recorded"], f"sample accounting is not exact: {accounting}"
    return sampler, accounting


def summarize(sampler: Sampler, accounting: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    warm = int(args.warmup * args.rounds)
    after = [s for s in sampler.samples if s[0] >= warm]
    processes: dict[str, Any] = {}
    for name in sampler.samples[0][1]:
        points = [(r, m[name]) for r, m in after if name in m]
        xs, ys = [r for r, _ in points], [v for _, v in points]
        quarters = [points[i * len(points) // 4:(i + 1) * len(points) // 4] for i in range(4)]
        windows = [w for w in quarters if w]
        processes[name] = {
            "start_mb": sampler.samples[0][1][name] / 2**20, "end_mb": ys[-1] / 2**20 if ys else None,
            "kb_per_round": slope_kb_per_round(xs, ys),
            "windows": [(w[0][0], w[-1][0], slope_kb_per_round([r for r, _ in w], [v for _, v in w])) for w in windows],
        }
    grew = {
        process: {k: (v, sampler.records["end"][process].get(k)) for k, v in counts.items()
                  if sampler.records["end"][process].get(k, v) > v}
        for process, counts in sampler.records.get("warm", {}).items()
    }
    return {
        **accounting, "samples_exact": True, "rounds_per_second": accounting["rounds"] / accounting["seconds"],
        "history_limit": args.history_limit, "warmup_rounds": warm, "small_dask_logs": args.small_dask_logs,
        "filled_dask_caches": args.fill_dask_caches,
        "scheduler_in_client": args.local_cluster, "processes": processes, "records": sampler.records,
        "records_grown": grew, "samples_taken": len(sampler.samples), "trace": sampler.samples,
    }


def table(result: dict[str, Any]) -> str:
    client = "client + scheduler" if result["scheduler_in_client"] else "client"
    lines = [
        f"{result['rounds']} rounds, {result['total_samples']:,} samples (exact), {result['seconds']:.0f} s "
        f"({result['rounds_per_second']:.0f} rounds/s); Dask's logs "
        f"{'small' if result['small_dask_logs'] else 'as configured'}"
        f"{'; key_split caches filled first' if result.get('filled_dask_caches') else ''}; growth after round {result['warmup_rounds']}:",
        f"{'process':<28}{'start MB':>10}{'end MB':>10}{'KB/round':>10}  goal < {GOAL_KB_PER_ROUND}",
    ]
    for name, row in result["processes"].items():
        met = "met" if row["kb_per_round"] < GOAL_KB_PER_ROUND else "NOT MET"
        label = client if name == "client" else name
        lines.append(f"{label:<28}{row['start_mb']:>10.1f}{row['end_mb'] or float('nan'):>10.1f}{row['kb_per_round']:>10.3f}  {met}")
    grown = {p: g for p, g in result["records_grown"].items() if g}
    lines.append(f"records grown after the warm-up: {grown or 'none'}")
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
    parser.add_argument("--fill-dask-caches", action="store_true",
                        help="fill Dask's key_split cache in every process first, to the size it keeps after ~90,000 rounds")
    parser.add_argument("--local-cluster", action="store_true", help="LocalCluster: the scheduler in the client's process")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "soak.json")
    args = parser.parse_args(argv)
    if args.small_dask_logs:
        import dask

        os.environ.update(SMALL_DASK_LOGS)  # before the cluster starts: its processes inherit them
        dask.config.refresh()
    sampler, accounting = train(args)
    result = summarize(sampler, accounting, args)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
