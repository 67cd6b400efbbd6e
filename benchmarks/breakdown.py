"""Where the time goes: the ceiling of 2 processes, and fedplugin's compute against its overhead.

* :func:`raw_run`: raw ``partial_fit`` inside workers, one task per worker over
  all the blocks resident on it, no synchronization and no per-block
  bookkeeping; with every worker at once it is the most any data-parallel
  method can get from these processes on this machine;
* :func:`profiled_fit`: one fedplugin fit recorded with ``get_task_stream``:
  each worker's time inside training tasks against the wall time, the gaps
  between rounds and the time spent waiting for the slower worker;
* :func:`synchronize_cost`: ``Coordinator.synchronize()`` on its own, the cost
  of one round's gather, aggregate and publish without any training;
* :func:`cpu_used`: the CPU a block of code used, here and in the workers.

Also helpers to find where the persisted blocks live.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import cloudpickle
import dask
from dask.core import flatten
from distributed import Client, Future, get_task_stream
from sklearn.linear_model import SGDClassifier

from fedplugin.wording import count

# Worker processes cannot import this module from benchmarks/; ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CLASSES = [0, 1]


def raw_partial_fit(xs: list[Any], ys: list[Any]) -> dict[str, float]:
    """Task: train a fresh model on the given blocks; return samples and start/stop clock.

    ``time.perf_counter`` is the system-wide monotonic clock on Linux, so the
    times of tasks in different processes can be compared.
    """
    model = SGDClassifier(random_state=0)
    start = time.perf_counter()
    for X, y in zip(xs, ys, strict=True):
        model.partial_fit(X, y, classes=CLASSES)
    return {"samples": sum(len(y) for y in ys), "start": start, "stop": time.perf_counter()}


def block_futures(array: Any) -> list[Future]:
    """Return the futures of a persisted dask array's blocks, in block order."""
    graph = dict(array.__dask_graph__())
    return [graph[key] for key in flatten(array.__dask_keys__())]


def placement(client: Client, X: Any, y: Any) -> dict[str, Any]:
    """Where the persisted blocks live: X blocks per worker, replicas, X and y blocks on the same worker."""
    x_holders, y_holders = client.who_has(block_futures(X)), client.who_has(block_futures(y))
    x_sets = [set(x_holders[f.key]) for f in block_futures(X)]
    y_sets = [set(y_holders[f.key]) for f in block_futures(y)]
    per_worker: dict[str, int] = defaultdict(int)
    for holders in x_sets:
        for worker in holders:
            per_worker[worker] += 1
    return {
        "x_blocks_per_worker": sorted(per_worker.values()),
        "x_blocks_replicated": sum(len(h) > 1 for h in x_sets),
        "x_y_colocated": sum(bool(hx & hy) for hx, hy in zip(x_sets, y_sets, strict=True)),
        "blocks": len(x_sets),
    }


def resident_blocks(client: Client, X: Any, y: Any) -> dict[str, tuple[list[Future], list[Future]]]:
    """Group the futures of the persisted blocks of ``X`` and ``y`` by a worker holding ``X``'s.

    A block held by several workers goes to the one with the fewest blocks so far.
    """
    pairs = list(zip(block_futures(X), block_futures(y), strict=True))
    holders = client.who_has([fx for fx, _ in pairs])
    groups: dict[str, tuple[list[Future], list[Future]]] = {}
    for fx, fy in pairs:
        home = min(sorted(holders[fx.key]), key=lambda w: len(groups.get(w, ([], []))[0]))
        xs, ys = groups.setdefault(home, ([], []))
        xs.append(fx)
        ys.append(fy)
    return groups


def raw_run(
    client: Client, groups: dict[str, tuple[list[Future], list[Future]]], workers: list[str]
) -> tuple[int, float]:
    """Run :func:`raw_partial_fit` on ``workers`` at once, each over its resident blocks.

    Returns
    -------
    samples : int
        Rows trained, all workers together.
    seconds : float
        From the first task's start to the last one's stop, inside the tasks
        (dispatch and result transfer excluded).
    """
    futures = [
        client.submit(raw_partial_fit, *groups[w], workers=[w], allow_other_workers=False, pure=False) for w in workers
    ]
    tasks = client.gather(futures)
    span = max(t["stop"] for t in tasks) - min(t["start"] for t in tasks)
    return sum(t["samples"] for t in tasks), span


def profiled_fit(client: Client, coord: Any, X: Any, y: Any) -> dict[str, Any]:
    """One fedplugin fit with the task stream recorded: where its wall time goes.

    Rounds are told apart by their barrier: a training task whose compute
    starts after every earlier task has stopped opens a new round. Times from
    the task stream are wall-clock (``time.time``) on this one machine.

    Returns
    -------
    dict
        ``wall_s``; ``before_first_task_s`` (set-up and first dispatch) and
        ``after_last_task_s`` (last aggregate and publish); per round, the
        ``round_span_s`` from first compute start to last compute stop and the
        ``gap_after_round_s`` until the next round computes (results back,
        aggregate, publish, next dispatch); ``straggler_wait_s``, the mean time a
        worker waited for the slowest one per round; compute seconds per worker
        and the resulting ``utilization``.
    """
    with get_task_stream(client) as stream:
        start = time.time()
        coord.fit(X, y)
        stop = time.time()
    intervals = sorted(
        (s["start"], s["stop"], task["worker"])
        for task in stream.data
        if str(task["key"]).startswith("fedplugin-train")
        for s in task["startstops"]
        if s["action"] == "compute"
    )
    rounds = _split_rounds(intervals)
    compute: dict[str, float] = defaultdict(float)
    for begin, end, worker in intervals:
        compute[worker] += end - begin
    wall = stop - start
    return {
        "wall_s": wall,
        "samples_per_s": int(X.shape[0]) / wall,
        "rounds": len(coord.history),
        "train_tasks": len(intervals),
        "before_first_task_s": intervals[0][0] - start,
        "after_last_task_s": stop - max(end for _, end, _ in intervals),
        "round_span_s": [max(e for _, e, _ in r) - r[0][0] for r in rounds],
        "gap_after_round_s": [b[0][0] - max(e for _, e, _ in a) for a, b in itertools.pairwise(rounds)],
        "straggler_wait_s": statistics.mean(_straggler_wait(r) for r in rounds),
        "compute_s_per_worker": dict(compute),
        "utilization": sum(compute.values()) / (len(compute) * wall),
        "in_task_samples_per_s_per_worker": int(X.shape[0]) / sum(compute.values()),
    }


def _split_rounds(intervals: list[tuple[float, float, str]]) -> list[list[tuple[float, float, str]]]:
    """Group compute intervals (sorted by start) into rounds, cutting where all earlier ones stopped."""
    rounds: list[list[tuple[float, float, str]]] = []
    latest_stop = float("-inf")
    for interval in intervals:
        if interval[0] >= latest_stop:
            rounds.append([])
        rounds[-1].append(interval)
        latest_stop = max(latest_stop, interval[1])
    return rounds


def _straggler_wait(intervals: list[tuple[float, float, str]]) -> float:
    """Mean over workers of the time between a worker's last stop and the round's last stop."""
    last: dict[str, float] = {}
    for _, end, worker in intervals:
        last[worker] = max(last.get(worker, end), end)
    return statistics.mean(max(last.values()) - end for end in last.values())


def synchronize_cost(coord: Any, times: int = 5) -> float:
    """Median seconds of a manual ``synchronize()``: a round with no training in it."""
    return statistics.median(_seconds(coord.synchronize) for _ in range(times))


def generation_rate(X: Any, y: Any, n_blocks: int = 10) -> float:
    """Samples/s of computing lazy blocks of ``X``, ``y`` on one thread, as the old tasks do."""
    blocks = [dask.optimize(X.blocks[i], y.blocks[i]) for i in range(min(n_blocks, X.numblocks[0]))]
    start = time.perf_counter()
    rows = sum(len(dask.compute(Xb, yb, scheduler="sync")[1]) for Xb, yb in blocks)
    return rows / (time.perf_counter() - start)


def measure(client: Client, coord: Any, X: Any, y: Any) -> dict[str, Any]:
    """Profile one fit of the fresh Coordinator ``coord``, then time ``synchronize()``."""
    fit = profiled_fit(client, coord, X, y)
    sync = synchronize_cost(coord)
    return {"fedplugin_fit": fit, "synchronize_s": sync}


def format_summary(profile: dict[str, Any]) -> str:
    """Describe the breakdown in a few lines, for the console."""
    fit = profile["fedplugin_fit"]
    per_worker = ", ".join(f"{s:.2f}" for s in fit["compute_s_per_worker"].values())
    gaps = fit["gap_after_round_s"]
    return "\n".join(
        [
            (
                f"profiled fedplugin fit: {fit['wall_s']:.2f} s wall ({fit['samples_per_s']:,.0f} samples/s), "
                f"{count(fit['rounds'], 'round')}, {count(fit['train_tasks'], 'training task')}"
            ),
            (
                f"  inside training tasks per worker: {per_worker} s -> utilization {fit['utilization']:.0%}, "
                f"{fit['in_task_samples_per_s_per_worker']:,.0f} samples/s per worker"
            ),
            (
                f"  before the first task {1000 * fit['before_first_task_s']:.0f} ms, after the last "
                f"{1000 * fit['after_last_task_s']:.0f} ms; between rounds "
                f"{1000 * (statistics.median(gaps) if gaps else 0.0):.0f} ms (median); "
                f"waiting for the slower worker {1000 * fit['straggler_wait_s']:.0f} ms per round"
            ),
            f"one synchronize() with no training: {1000 * profile['synchronize_s']:.0f} ms",
        ]
    )


def _seconds(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


@contextmanager
def cpu_used(client: Client) -> Iterator[dict[str, float]]:
    """CPU seconds used inside the ``with`` block, filled in at its end.

    ``"here"``: this process (the client, and a ``LocalCluster``'s scheduler
    in its event loop); ``"workers"``: all the workers together.
    """
    used: dict[str, float] = {}
    workers, here = client.run(time.process_time), time.process_time()
    yield used
    used["here"] = time.process_time() - here
    used["workers"] = sum(now - workers[w] for w, now in client.run(time.process_time).items())
