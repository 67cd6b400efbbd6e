"""Change detectors over a stream of scores: Page-Hinkley and ADWIN.

A detector sees one value at a time (:meth:`ChangeDetector.update`) and
answers whether the mean of the values has just changed. :class:`~fedplugin.OnChange`
feeds one to each worker with the test-then-train score of every block, and
ends the round when it fires. Both detectors here look for a *drop* by default
(``direction="down"``): a model that gets better is no reason to synchronize.

They are small, pure Python and picklable, so that their state can live in
:class:`~fedplugin.LocalStats` ``memory`` on each worker. River
(``river.drift``) has the same two detectors, but as a compiled dependency
of its own; ``tests/test_change_detectors.py`` checks that both agree with it.

Examples
--------
>>> import numpy as np
>>> scores = np.r_[np.full(20, 0.9), np.full(5, 0.3)]   # a concept change at block 20
>>> detector = PageHinkley()
>>> [i for i, score in enumerate(scores) if detector.update(score)]
[20]
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .checks import check_number

DIRECTIONS = ("down", "up", "both")


class ChangeDetector:
    """Base class: a detector of a change in the mean of a stream of values.

    Subclasses implement :meth:`update`; :meth:`update_block` is what
    :class:`~fedplugin.OnChange` calls with a block's score and rows.
    """

    def update(self, value: float) -> bool:
        """Take in ``value``; return True if a change is detected now."""
        raise NotImplementedError

    def update_block(self, score: float, rows: int) -> bool:
        """Take in one block's ``score`` (over ``rows`` rows): one value per block by default."""
        return self.update(score)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class PageHinkley(ChangeDetector):
    """The Page-Hinkley test: a cumulative sum of deviations from the running mean.

    Page, "Continuous Inspection Schemes", Biometrika 41, 1954; in the form
    of Mouss et al., "Test of Page-Hinckley, an Approach for Fault Detection
    in an Agro-Alimentary Production System", Asian Control Conference, 2004.
    To watch for a drop, it sums ``mean_t - x_t - delta`` over the values
    ``x_t`` (``mean_t`` is the mean of the values so far) and fires when
    the sum exceeds its smallest value so far by more than ``threshold``;
    then it starts afresh. ``delta`` is the drop per value it tolerates, so
    noise makes the sum drift down, away from the threshold.

    With the test-then-train score of a block as the value, the units of
    ``threshold`` and ``delta`` are the score's: the defaults suit a score
    between 0 and 1 such as the accuracy, whose block-to-block noise is a
    point or a few: a drop of some 16 points fires in its first block, a
    smaller one once its blocks, less ``delta`` (1 point) each, add up to
    ``threshold`` (15 points). Measured on 54 seeded single-process streams
    (36 distinct stationary parts of 48 blocks of 250 to 4,096 rows, then
    the labels flipped or the concept half rotated: a drop of 0.19 to 0.87;
    ``SGDClassifier`` with the default, constant and ``"pa1"`` learning
    rates): every change fired in its first block, and 2 of the 1,728
    stationary blocks fired, both with the default ``"optimal"`` learning
    rate and blocks of 250 rows.

    Parameters
    ----------
    threshold : float > 0, default 0.15
        The cumulative drop that fires (Page's ``lambda``).
    delta : float >= 0, default 0.01
        The drop per value tolerated.
    min_values : int >= 1, default 5
        Values seen (since the start, or the last change) before it may fire.
    direction : {"down", "up", "both"}, default "down"
        Fire on a drop, a rise, or either.

    Examples
    --------
    >>> detector = PageHinkley()
    >>> [detector.update(x) for x in (0.9, 0.91, 0.89, 0.9, 0.9, 0.88, 0.7)]
    [False, False, False, False, False, False, True]
    """

    def __init__(self, threshold: float = 0.15, delta: float = 0.01, min_values: int = 5, direction: str = "down"):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < math.inf:
            raise ValueError(f"threshold={threshold!r} must be a finite number > 0 (in the score's units)")
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 <= delta < math.inf:
            raise ValueError(f"delta={delta!r} must be a finite number >= 0 (in the score's units)")
        check_number(min_values, "min_values", numbers.Integral, min_val=1)
        _check_direction(direction)
        self.threshold, self.delta, self.min_values, self.direction = float(threshold), float(delta), min_values, direction
        self._reset()

    def _reset(self) -> None:
        self._n, self._mean = 0, 0.0
        self._rise, self._least_rise = 0.0, 0.0  # sum of (x - mean - delta): an increase pulls it up
        self._drop, self._most_drop = 0.0, 0.0  # sum of (x - mean + delta): a drop pulls it down

    def update(self, value: float) -> bool:
        value = _check_finite(value)
        self._n += 1
        self._mean += (value - self._mean) / self._n
        deviation = value - self._mean
        self._rise += deviation - self.delta
        self._drop += deviation + self.delta
        self._least_rise = min(self._least_rise, self._rise)
        self._most_drop = max(self._most_drop, self._drop)
        if self._n < self.min_values:
            return False
        up = self._rise - self._least_rise > self.threshold
        down = self._most_drop - self._drop > self.threshold
        fired = {"down": down, "up": up, "both": up or down}[self.direction]
        if fired:
            self._reset()
        return fired


class ADWIN(ChangeDetector):
    """ADWIN: an adaptive window whose two parts differ in mean once the stream changed.

    Bifet and Gavaldà, "Learning from Time-Changing Data with Adaptive
    Windowing", SIAM International Conference on Data Mining, 2007 (ADWIN2:
    the window kept in an exponential histogram of buckets). After each
    value, ADWIN compares the means of the older and the newer part of its
    window at every bucket boundary; where they differ by more than

        ``eps = sqrt(2 v m ln(2 ln(n) / delta)) + 2/3 m ln(2 ln(n) / delta)``

    (``v`` the variance of the window's ``n`` values, ``m = 1/n_old +
    1/n_new``: the bound of the paper, with MOA's and river's ``delta``
    correction), it drops the older part. ``delta`` is a false alarm rate:
    nothing to tune to the scale of the values, which must lie in ``[0, 1]``.

    It fires when it dropped a part in ``direction``, and then starts
    afresh (as river's does), so a change fires once.

    :meth:`update_block` takes a block's score as ``rows`` values with that
    mean and the largest spread values in ``[0, 1]`` can have (``rows *
    score * (1 - score)``): exact for the accuracy, whose rows are each
    right (1) or wrong (0). The bound then counts rows, not blocks: a change
    that costs a few points over one block of a few hundred rows fires. It
    also takes the rows of a block as independent given the model, so it
    reports a drop of the *model's* accuracy that the model caused itself:
    ``SGDClassifier()``'s default ``"optimal"`` learning rate swings the
    accuracy by a few points from block to block, and on the streams
    :class:`PageHinkley` was measured on ADWIN fired 2 to 8 times in 48
    stationary blocks of 1,000 or 4,096 rows (none with constant or
    ``"pa1"`` learning rates, where it saw every change in its first block).
    Prefer :class:`PageHinkley` with that learning rate.

    Parameters
    ----------
    delta : float in (0, 1), default 0.002
        Confidence: the smaller, the fewer false alarms and the later a change is seen.
    max_buckets : int >= 2, default 5
        Buckets of one size kept before the two oldest merge.
    min_window : int >= 1, default 5
        Values each part of the window needs before it is compared.
    direction : {"down", "up", "both"}, default "down"
        Fire when the newer part's mean is lower, higher, or either.

    Examples
    --------
    >>> detector = ADWIN()
    >>> [detector.update_block(x, rows=500) for x in (0.9, 0.91, 0.89, 0.9, 0.9, 0.8)]
    [False, False, False, False, False, True]
    >>> detector.width     # rows in the window: it started afresh
    0
    """

    def __init__(self, delta: float = 0.002, max_buckets: int = 5, min_window: int = 5, direction: str = "down"):
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 < delta < 1:
            raise ValueError(f"delta={delta!r} must be a number in (0, 1) (a false alarm rate)")
        check_number(max_buckets, "max_buckets", numbers.Integral, min_val=2)
        check_number(min_window, "min_window", numbers.Integral, min_val=1)
        _check_direction(direction)
        self.delta, self.max_buckets, self.min_window, self.direction = float(delta), max_buckets, min_window, direction
        # Buckets, oldest first, each [count, total, sum of squared deviations, level]:
        # level k holds 2**k inserts, at most max_buckets of them.
        self._buckets: list[list[Any]] = []

    @property
    def width(self) -> int:
        """Values in the window."""
        return sum(bucket[0] for bucket in self._buckets)

    @property
    def mean(self) -> float:
        """Mean of the values in the window (0.0 while it is empty)."""
        count, total, _ = _merged(self._buckets)
        return total / count if count else 0.0

    def update(self, value: float, count: int = 1) -> bool:
        """Take in ``count`` values in ``[0, 1]`` whose mean is ``value``; True if a change is detected."""
        value = _check_finite(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"ADWIN got {value!r}; expected values in [0, 1] such as an accuracy (use PageHinkley for other scores)")
        check_number(count, "count", numbers.Integral, min_val=1)
        self._buckets.append([count, count * value, count * value * (1.0 - value), 0])
        self._compress()
        return self._cut()

    def update_block(self, score: float, rows: int) -> bool:
        return self.update(score, count=rows)

    def _compress(self) -> None:
        """Merge the two oldest buckets of any level that holds more than ``max_buckets``."""
        level = 0
        while True:
            at_level = [i for i, bucket in enumerate(self._buckets) if bucket[3] == level]
            if len(at_level) <= self.max_buckets:
                return
            first, second = at_level[0], at_level[1]
            merged = _merged([self._buckets[first], self._buckets[second]])
            self._buckets[second] = [*merged, level + 1]
            del self._buckets[first]
            level += 1

    def _cut(self) -> bool:
        """Drop the oldest buckets while some split of the window differs in mean; True if a drop was in ``direction``."""
        fired = False
        while len(self._buckets) > 1:
            newer_lower = self._split()
            if newer_lower is None:
                break
            fired = fired or {"down": newer_lower, "up": not newer_lower, "both": True}[self.direction]
            del self._buckets[0]
        if fired:  # start afresh, as river does: no burst of alarms while the window still straddles the change
            self._buckets = []
        return fired

    def _split(self) -> bool | None:
        """At the first boundary, oldest first, whose two parts differ: is the newer part's mean lower?"""
        n, total, squares = _merged(self._buckets)
        if n < 2 * self.min_window:
            return None
        variance, log_term = squares / n, math.log(2.0 * math.log(n) / self.delta)
        n_old, total_old = 0, 0.0
        for bucket in self._buckets[:-1]:
            n_old, total_old = n_old + bucket[0], total_old + bucket[1]
            n_new = n - n_old
            if n_old < self.min_window or n_new < self.min_window:
                continue
            gap = total_old / n_old - (total - total_old) / n_new
            m = 1.0 / n_old + 1.0 / n_new
            if abs(gap) > math.sqrt(2.0 * variance * m * log_term) + 2.0 / 3.0 * m * log_term:
                return gap > 0
        return None


def _merged(buckets: list[list[Any]]) -> tuple[int, float, float]:
    """Count, total and sum of squared deviations of ``buckets`` together (Chan et al.'s pairwise update)."""
    count, total, squares = 0, 0.0, 0.0
    for n, t, s, *_ in buckets:
        if count:
            gap = total / count - t / n
            squares += s + gap * gap * count * n / (count + n)
        else:
            squares = s
        count, total = count + n, total + t
    return count, total, squares


def _check_finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"value={value!r} is not a finite number; expected a score")
    return float(value)


def _check_direction(direction: Any) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r} is not supported; expected one of {DIRECTIONS}")
