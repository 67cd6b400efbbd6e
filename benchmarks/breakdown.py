"""Where the time goes: the ceiling of 2 processes, and fedplugin's compute against its overhead.

Three measurements, on the benchmark's cluster and persisted data:

* raw ``partial_fit`` inside a worker, one task per worker over all the blocks
  resident on it, no synchronization: first one worker alone, then both at
  once. This is the most any data-parallel method can get from these two
  processes on this machine;
* one fedplugin fit recorded with ``get_task_stream``: each worker's time
  inside training tasks, against the wall time, the rounds and the set-up
  before the first round;
* ``Coordinator.synchronize()`` on its own: the cost of one round's gather,
  aggregate and publish without any training.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from typing import Any

import cloudpickle
import dask
from dask.core import flatten
from distributed import Client, Future, get_task_stream
from sklearn.linear_model import SGDClassifier

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
    for X, y in zip(xs, ys):
        model.partial_fit(X, y, classes=CLASSES)
    return {"samples": sum(len(y) for y in ys), "start": start, "stop": time.perf_counter()}


def resident_blocks(client: Client, X: Any, y: Any) -> dict[str, tuple[list[Future], list[Future]]]:
    """The futures of the persisted blocks of ``X`` and ``y``, grouped by the worker holding them."""
    x_graph, y_graph = dict(X.__dask_graph__()), dict(y.__dask_graph__())
    pairs = [(x_graph[kx], y_graph[ky]) for kx, ky in zip(flatten(X.__dask_keys__()), flatten(y.__dask_keys__()))]
    homes = client.who_has([fx for fx, _ in pairs])
    groups: dict[str, tuple[list[Future], list[Future]]] = defaultdict(lambda: ([], []))
    for fx, fy in pairs:
        xs, ys = groups[sorted(homes[fx.key])[0]]
        xs.append(fx)
        ys.append(fy)
    return dict(groups)


def raw_scaling(client: Client, X: Any, y: Any, repeats: int = 3) -> dict[str, Any]:
    """Samples/s of raw ``partial_fit`` in one worker alone, then in all workers at once (medians)."""
    groups = resident_blocks(client, X, y)

    def run(workers: list[str]) -> list[dict[str, float]]:
        futures = [
            client.submit(raw_partial_fit, *groups[w], workers=[w], allow_other_workers=False, pure=False)
            for w in workers
        ]
        return client.gather(futures)

    def rate(tasks: list[dict[str, float]]) -> float:
        span = max(t["stop"] for t in tasks) - min(t["start"] for t in tasks)
        return sum(t["samples"] for t in tasks) / span

    workers = sorted(groups)
    run(workers)  # warm-up: first calls in a process pay for imports and page faults
    one = statistics.median(rate(run(workers[:1])) for _ in range(repeats))
    many = statistics.median(rate(run(workers)) for _ in range(repeats))
    return {
        "blocks_per_worker": {w: len(groups[w][0]) for w in workers},
        "one_worker_samples_per_s": one,
        "all_workers_samples_per_s": many,
        "scaling": many / one,
    }


def profiled_fit(client: Client, coord: Any, X: Any, y: Any) -> dict[str, Any]:
    """One fedplugin fit with the task stream recorded: compute per worker against wall time."""
    with get_task_stream(client) as stream:
        start = time.perf_counter()
        coord.fit(X, y)
        wall = time.perf_counter() - start
    compute: dict[str, float] = defaultdict(float)
    tasks = 0
    for task in stream.data:
        if str(task["key"]).startswith("fedplugin-train"):
            tasks += 1
            compute[task["worker"]] += sum(s["stop"] - s["start"] for s in task["startstops"] if s["action"] == "compute")
    rounds = [r.seconds for r in coord.history]
    samples = int(X.shape[0])
    return {
        "wall_s": wall,
        "samples_per_s": samples / wall,
        "setup_s": wall - sum(rounds),
        "rounds": len(rounds),
        "round_s": rounds,
        "train_tasks": tasks,
        "compute_s_per_worker": dict(compute),
        "utilization": sum(compute.values()) / (len(compute) * wall) if compute else 0.0,
        "in_task_samples_per_s_per_worker": samples / sum(compute.values()) if compute else 0.0,
    }


def synchronize_cost(coord: Any, times: int = 5) -> float:
    """Median seconds of a manual ``synchronize()``: a round with no training in it."""
    return statistics.median(_seconds(coord.synchronize) for _ in range(times))


def generation_rate(X: Any, y: Any, n_blocks: int = 10) -> float:
    """Samples/s of computing lazy blocks of ``X``, ``y`` on one thread, as the old tasks do."""
    blocks = [dask.optimize(X.blocks[i], y.blocks[i]) for i in range(min(n_blocks, X.numblocks[0]))]
    start = time.perf_counter()
    rows = sum(len(dask.compute(Xb, yb, scheduler="sync")[1]) for Xb, yb in blocks)
    return rows / (time.perf_counter() - start)


def measure(client: Client, X: Any, y: Any, coord: Any) -> dict[str, Any]:
    """All three measurements; ``coord`` is a fresh Coordinator (its plugin is unregistered after)."""
    scaling = raw_scaling(client, X, y)
    fit = profiled_fit(client, coord, X, y)
    sync = synchronize_cost(coord)
    client.unregister_worker_plugin(coord.name)
    return {"raw_partial_fit": scaling, "fedplugin_fit": fit, "synchronize_s": sync}


def format_summary(profile: dict[str, Any]) -> str:
    """A few lines describing the breakdown for the console."""
    raw, fit = profile["raw_partial_fit"], profile["fedplugin_fit"]
    per_worker = ", ".join(f"{s:.2f}" for s in fit["compute_s_per_worker"].values())
    return "\n".join(
        [
            f"raw partial_fit in workers: 1 worker {raw['one_worker_samples_per_s']:,.0f} samples/s, "
            f"2 at once {raw['all_workers_samples_per_s']:,.0f} samples/s (x{raw['scaling']:.2f})",
            f"profiled fedplugin fit: {fit['wall_s']:.2f} s wall ({fit['samples_per_s']:,.0f} samples/s), "
            f"set-up before round 1 {fit['setup_s']:.2f} s, {fit['rounds']} rounds, "
            f"{fit['train_tasks']} training tasks",
            f"  time inside training tasks per worker: {per_worker} s -> utilization {fit['utilization']:.0%}; "
            f"in-task rate {fit['in_task_samples_per_s_per_worker']:,.0f} samples/s per worker",
            f"one synchronize() with no training: {1000 * profile['synchronize_s']:.0f} ms",
        ]
    )


def _seconds(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
