"""Which worker trains which block: per-worker queues of ``(epoch, block index)``.

Resident blocks stay on the worker that holds them; lazy ones are dealt out in
turn. A worker whose queue runs dry takes blocks from the tail of the longest
queue, so every core keeps working; the queues of departed workers are dealt
to the remaining ones.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Iterable

from .blocks import TrainingData


def initial_queues(data: TrainingData, epochs: int, workers: list[str]) -> dict[str, deque]:
    """Each worker's queue of ``(epoch, block index)``: resident blocks stay home."""
    queues: dict[str, deque] = {w: deque() for w in workers}
    homeless = itertools.cycle(workers)
    owner = {}
    for block in data.blocks:
        owner[block.index] = block.home if block.home in queues else next(homeless)
    for epoch in range(epochs):
        for block in data.blocks:
            queues[owner[block.index]].append((epoch, block.index))
    return queues


def rebalance(queues: dict[str, deque], workers: list[str]) -> None:
    """Hand the queues of departed workers to the remaining ones; add new workers."""
    for worker in workers:
        queues.setdefault(worker, deque())
    gone = [w for w in queues if w not in workers]
    orphans = [item for w in gone for item in queues.pop(w)]
    if orphans:
        requeue(queues, workers, orphans)


def requeue(queues: dict[str, deque], workers: list[str], items: Iterable) -> Counter:
    """Deal ``items`` to the front of the workers' queues, in turn; return how many each got."""
    dealt: Counter = Counter()
    for worker, item in zip(itertools.cycle(workers), sorted(items, reverse=True)):
        queues.setdefault(worker, deque()).appendleft(item)
        dealt[worker] += 1
    return dealt


def shares_of(budget: int | None, workers: list[str], remaining: int) -> dict[str, float]:
    """Blocks each worker trains this round: ``budget`` (at most what remains) split evenly."""
    if budget is None:
        return {w: float("inf") for w in workers}
    base, extra = divmod(min(budget, remaining), len(workers))
    return {w: base + (i < extra) for i, w in enumerate(workers)}


def take(queues: dict[str, deque], worker: str, limit: float) -> list:
    """Up to ``limit`` items for ``worker``: its own first; only if it has none, steal.

    A worker with an empty queue takes half of the longest queue (at least one
    item) from its tail, so an idle core gets work while the blocks mostly stay
    where they live, and no worker can empty the others' queues before they
    start.
    """
    own = queues.setdefault(worker, deque())
    if own:
        return [own.popleft() for _ in range(int(min(limit, len(own))))]
    donor = max(queues, key=lambda w: len(queues[w]))
    available = len(queues[donor])
    count = int(min(limit, max(1, available // 2), available))
    return [queues[donor].pop() for _ in range(count)][::-1]
