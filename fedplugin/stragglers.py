"""Rounds that do not wait for the slowest worker: a quorum, a deadline, FedBuff.

By default a round closes when every worker that trained in it is done.
``Coordinator(..., stragglers=Quorum(...))`` lets it close earlier:

* ``Quorum(min_workers=k)`` closes a round as soon as ``k`` of its workers are
  done (an int, or a fraction of the round's workers);
* ``Quorum(deadline=t)`` closes it ``t`` seconds after it became the oldest
  open round, with the workers done by then (at least ``min_workers``, by
  default one), or earlier if all are done;
* :class:`FedBuff` (Nguyen et al., "Federated Learning with Buffered
  Asynchronous Aggregation", AISTATS 2022) is ``Quorum(min_workers=K)``: the
  global model advances every ``K`` updates, from whichever workers deliver
  them.

A worker still training when its round closes is *late*: its task goes on,
its blocks count in the next round that is open when it reports, and its
progress is never dropped. The new global model tells the late workers that
their progress is not in it (``GlobalModel.late``), so they keep it and hand
it over to a later round (:mod:`fedplugin.round_state`). There it is weighted
by its staleness ``tau`` (rounds between the global model it started from and
the one it joins): its difference from the global model is scaled by
``(1 + tau) ** -staleness_exponent`` (FedBuff's polynomial weight). Every
sample is trained exactly once, as in synchronous rounds. Rounds opened while
a worker is late leave it out, so its queue does not pile up; the others take
its share of the blocks (tasks queued for it before it became late still run).

A round's workers are those that trained in it or are training for it. A
round ended by its workers (``EverySeconds``, ``DriftThreshold``, ...) takes
the quorum into account only once one of them has ended it.

Examples
--------
>>> Quorum(min_workers=0.75).needed(4)
3
>>> Quorum(deadline=2.0).ready(done=1, workers=4, waited=2.5)
True
>>> FedBuff(buffer_size=2)
FedBuff(buffer_size=2, staleness_exponent=0.5)
>>> round(staleness_weight(3, 0.5), 3)
0.5
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np

from .checks import check_number

#: FedBuff's ``1 / sqrt(1 + tau)``: the default discount of a late update ``tau`` rounds old.
STALENESS_EXPONENT = 0.5


class Quorum:
    """Close a round once enough of its workers are done, or at a deadline.

    Parameters
    ----------
    min_workers : int or float, optional
        Workers that must be done before a round may close: an int >= 1, or a
        fraction in (0, 1] of the round's workers (rounded up; ``1.0`` is all
        of them, ``1`` is one).
        Without a ``deadline`` the round closes as soon as that many are done.
        Default: all of them without a deadline, one with a deadline.
    deadline : float, optional
        Seconds after a round became the oldest open round: then it closes
        with the workers done so far (at least ``min_workers``).
    staleness_exponent : float, default 0.5
        A late update that joins a round ``tau`` rounds after the global model
        it started from is scaled by ``(1 + tau) ** -staleness_exponent``;
        0 weighs it like a fresh one.

    Raises
    ------
    ValueError
        If neither ``min_workers`` nor ``deadline`` is given, or one is out of range.
    """

    def __init__(
        self,
        min_workers: int | float | None = None,
        deadline: float | None = None,
        staleness_exponent: float = STALENESS_EXPONENT,
    ) -> None:
        if min_workers is None and deadline is None:
            raise ValueError("Quorum() needs min_workers=, deadline= or both; without them every round waits for all")
        _check_min_workers(min_workers)
        if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, Real) or not deadline > 0):
            raise ValueError(f"deadline={deadline!r} must be a number of seconds > 0")
        check_number(staleness_exponent, "staleness_exponent", min_val=0)
        self.min_workers = min_workers
        self.deadline = None if deadline is None else float(deadline)
        self.staleness_exponent = float(staleness_exponent)

    def needed(self, workers: int) -> int:
        """Workers that must be done, of the ``workers`` planned for a round (at least one)."""
        if self.min_workers is None:
            return 1 if self.deadline is not None else max(workers, 1)
        if isinstance(self.min_workers, Integral):
            return max(1, min(int(self.min_workers), workers))
        return max(1, math.ceil(self.min_workers * workers - 1e-9))

    def ready(self, done: int, workers: int, waited: float) -> bool:
        """May a round close with ``done`` of its ``workers`` done, ``waited`` seconds after it became the oldest?"""
        if done >= workers:
            return True
        if done < self.needed(workers):
            return False
        return self.deadline is None or waited >= self.deadline

    def __repr__(self) -> str:
        return (
            f"Quorum(min_workers={self.min_workers!r}, deadline={self.deadline!r}, "
            f"staleness_exponent={self.staleness_exponent!r})"
        )


class FedBuff(Quorum):
    """Buffered asynchronous aggregation: the global model advances every ``buffer_size`` updates.

    Parameters
    ----------
    buffer_size : int
        Updates (workers done) that close a round, ``K`` in the paper.
    staleness_exponent : float, default 0.5
        Late updates are scaled by ``(1 + tau) ** -staleness_exponent``, the
        paper's ``1 / sqrt(1 + tau)`` by default.

    Notes
    -----
    Combine it with a server learning rate as in the paper with
    ``aggregator=FedAvg(server_lr=...)``.
    """

    def __init__(self, buffer_size: int, staleness_exponent: float = STALENESS_EXPONENT) -> None:
        check_number(buffer_size, "buffer_size", Integral, min_val=1)
        super().__init__(min_workers=int(buffer_size), staleness_exponent=staleness_exponent)

    def __repr__(self) -> str:
        return f"FedBuff(buffer_size={self.min_workers!r}, staleness_exponent={self.staleness_exponent!r})"


def _check_min_workers(value: Any) -> None:
    if value is None:
        return
    number = not isinstance(value, bool) and isinstance(value, Real)
    if not number or not (value >= 1 if isinstance(value, Integral) else 0 < value <= 1):
        raise ValueError(f"min_workers={value!r} must be an int >= 1 or a fraction in (0, 1]")


def as_stragglers(value: Quorum | None, overlap: bool | str = "auto") -> Quorum | None:
    """Check a coordinator's ``stragglers=`` argument, and that its ``overlap=`` allows it."""
    if value is not None and not isinstance(value, Quorum):
        raise TypeError(f"stragglers={value!r} is not supported; expected None, Quorum(...) or FedBuff(...)")
    if value is not None and overlap is False:
        raise ValueError(f"stragglers={value!r} needs overlap=True or 'auto': late workers train on while a round closes")
    return value


def staleness_weight(staleness: int, exponent: float) -> float:
    """FedBuff's weight of an update ``staleness`` rounds old: ``(1 + staleness) ** -exponent``."""
    return float((1.0 + max(staleness, 0)) ** -exponent)


def discount_stale(
    params: dict[str, np.ndarray], reference: dict[str, np.ndarray], staleness: int, exponent: float
) -> dict[str, np.ndarray]:
    """``reference + w * (params - reference)`` with ``w = staleness_weight(staleness, exponent)``.

    Examples
    --------
    >>> out = discount_stale({"coef_": np.array([3.0])}, {"coef_": np.array([1.0])}, 3, 0.5)
    >>> out["coef_"].tolist()
    [2.0]
    """
    weight = staleness_weight(staleness, exponent)
    if staleness <= 0 or weight == 1.0:
        return params
    return {name: reference[name] + weight * (np.asarray(value, dtype=np.float64) - reference[name]) for name, value in params.items()}


__all__ = ["FedBuff", "Quorum", "as_stragglers", "discount_stale", "staleness_weight"]
