"""Which workers train in a round: all of them, or a sample (Flower's ``fraction_fit``).

With many workers, training only some of them per round cuts the cost of a
round (fewer updates to pull and combine) and, across devices that come and
go, is how federated learning is usually run (McMahan et al., AISTATS 2017,
"client fraction" C). :class:`WorkerSample` picks them reproducibly: the same
seed and round give the same choice among the same workers. Blocks of workers
left out wait in their queues for a later round (or are taken by a sampled
worker whose queue is empty), so every block is still trained exactly once
per epoch.

Examples
--------
>>> sample = WorkerSample(0.5, seed=0)
>>> workers = ["tcp://a", "tcp://b", "tcp://c", "tcp://d"]
>>> sample.choose(workers, round_base=7)
['tcp://a', 'tcp://c']
>>> sample.choose(workers, round_base=7) == sample.choose(workers, round_base=7)
True
>>> WorkerSample(3).choose(workers, round_base=0)
['tcp://b', 'tcp://c', 'tcp://d']
>>> WorkerSample(1.5)
Traceback (most recent call last):
...
ValueError: workers=1.5 is neither a fraction in (0, 1] nor a number of workers >= 1
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .checks import check_number


class WorkerSample:
    """Train a fraction, or a number, of the workers in each round.

    Parameters
    ----------
    workers : float in (0, 1] or int >= 1
        A float is the fraction of the workers (rounded up, at least one); an
        int the number of workers (all of them if there are fewer).
    seed : int, default 0
        Seeds the choice: round ``b`` (the round based on global version ``b``)
        draws from ``numpy.random.default_rng([seed, b])`` over the sorted
        worker addresses.
    """

    def __init__(self, workers: float | int, *, seed: int = 0) -> None:
        count = isinstance(workers, numbers.Integral) and not isinstance(workers, bool) and workers >= 1
        fraction = isinstance(workers, numbers.Real) and not isinstance(workers, numbers.Integral) and 0 < workers <= 1
        if not (fraction or count):
            raise ValueError(f"workers={workers!r} is neither a fraction in (0, 1] nor a number of workers >= 1")
        check_number(seed, "seed", numbers.Integral, min_val=0)
        self.workers = int(workers) if count else float(workers)
        self.seed = int(seed)

    def size(self, n_workers: int) -> int:
        """How many of ``n_workers`` train in a round."""
        if isinstance(self.workers, float):
            return max(1, math.ceil(round(self.workers * n_workers, 9)))  # 0.07 * 100 is 7.000000000000001
        return min(int(self.workers), n_workers)

    def choose(self, workers: list[str], round_base: int) -> list[str]:
        """The workers that train in round ``round_base``, sorted."""
        ordered = sorted(workers)
        size = self.size(len(ordered))
        if size >= len(ordered):
            return ordered
        rng = np.random.default_rng([self.seed, max(round_base, 0)])
        return sorted(ordered[i] for i in rng.choice(len(ordered), size=size, replace=False))

    def __repr__(self) -> str:
        return f"WorkerSample({self.workers!r}, seed={self.seed})"


def as_sample(value: Any) -> WorkerSample | None:
    """``None`` (every worker), a :class:`WorkerSample`, or a fraction / count made into one."""
    if value is None or isinstance(value, WorkerSample):
        return value
    try:
        return WorkerSample(value)
    except ValueError:
        raise ValueError(
            f"workers_per_round={value!r} is neither a fraction in (0, 1] nor a number of workers >= 1"
        ) from None


__all__ = ["WorkerSample", "as_sample"]
