"""Cut a dask collection into parts that are trained where they live.

A part already in cluster memory (the collection was persisted) is a
``Future``: the training task is pinned to a worker holding it. A lazy part is
a :class:`LazyPart`, computed inside the training task, one block at a time,
with only the graph it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dask
from dask.core import flatten
from dask.delayed import Delayed
from dask.local import get_sync
from dask.optimization import cull
from distributed import Client, Future, wait


@dataclass(frozen=True)
class LazyPart:
    """A lazy piece of a dask collection, computed inside the task that trains it."""

    delayed: Any

    def load(self) -> Any:
        (value,) = compute_here(self.delayed)
        return value


def compute_here(*delayed: Any) -> tuple[Any, ...]:
    """Compute ``delayed`` in this thread (inside the task that trains them), in one computation.

    The synchronous scheduler is passed as a function, not as ``"sync"``:
    Dask before 2025 warns about a named single-machine scheduler while a
    distributed client (the worker's) is active, and running here is the point.
    """
    return dask.compute(*delayed, scheduler=get_sync)


def collection_parts(client: Client, collection: Any, split: Callable[[Any], list[Any]]) -> list[Any]:
    """Each part of ``collection`` as a Future when it is in cluster memory, else a LazyPart.

    ``split`` cuts the collection into one Delayed per block.
    """
    graph = collection.__dask_graph__()
    keys = list(flatten(collection.__dask_keys__()))
    if all(isinstance(graph.get(key), Future) for key in keys):
        return [Future(key, client) for key in keys]  # persisted: no graph to optimise
    delayed_parts = split(collection)
    if _needs_cluster(dict(graph)):
        # Derived from persisted data: computing it inside a task would need
        # the cluster, so materialise it once, where dask places it.
        persisted = client.persist(collection)
        wait(persisted)
        return collection_parts(client, persisted, split)
    # Every part shares the whole collection's graph: keep only what each block
    # needs, so a task does not carry (and pickle) the graph of every block.
    full = dict(delayed_parts[0].__dask_graph__()) if delayed_parts else {}
    return [LazyPart(Delayed(part.key, cull(full, [part.key])[0])) for part in delayed_parts]


def _needs_cluster(graph: dict[Any, Any]) -> bool:
    """True when ``graph`` holds futures, or tasks needing keys it lacks (data the scheduler holds).

    A persisted collection's ``to_delayed()`` drops its futures and keeps their keys.
    """
    return any(
        isinstance(value, Future) or any(key not in graph for key in getattr(value, "dependencies", ()))
        for value in graph.values()
    )


def array_parts(array: Any) -> list[Any]:
    return list(array.to_delayed().ravel())


def frame_parts(frame: Any) -> list[Any]:
    return list(frame.to_delayed())
