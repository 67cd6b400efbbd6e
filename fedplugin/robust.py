"""Byzantine-robust rules that choose which workers to trust: Multi-Krum and Bulyan.

Both score each update by Krum's measure (Blanchard et al., NeurIPS 2017): the
sum of its squared distances to its ``n - f - 2`` nearest other updates, all
parameters flattened together; a poisoned update lies far from the others
and scores high. Weights are ignored, as by :class:`~fedplugin.Krum`.

Their guarantees need enough updates in **every** round, so they refuse with
a ``ValueError`` when there are too few: ``n > 2f + 2`` for Multi-Krum,
``n >= 4f + 3`` for Bulyan. The number of updates is only known when a round
is combined; the error then ends the ``fit`` before the round's model is
stored, and the coordinator rolls back to the model the fit started from.
Every round must get that many updates, the last one of a ``fit`` included:
a round to which fewer workers contributed (less data than workers) fails.

Examples
--------
>>> import numpy as np
>>> honest = [{"w": np.array([v, -v])} for v in (1.0, 1.0, 1.0, 1.0, 1.1, 0.9)]
>>> poisoned = [{"w": np.array([40.0, 40.0])}]
>>> MultiKrum(f=1)(honest + poisoned, [1] * 7)["w"].round(3).tolist()  # the mean of n - f = 6
[1.0, -1.0]
>>> Bulyan(f=1)(honest + poisoned, [1] * 7)["w"].round(3).tolist()
[1.0, -1.0]
>>> Bulyan(f=1)(honest, [1] * 6)
Traceback (most recent call last):
...
ValueError: Bulyan(f=1) needs n >= 4f + 3 = 7 updates per round; got n=6: ...
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .aggregation import Aggregator, Params, _check_updates, _stack


def krum_scores(flat: np.ndarray, f: int) -> np.ndarray:
    """Krum's score of each row of ``flat``: summed squared distances to its ``n - f - 2`` nearest rows.

    At least one neighbour counts, so a score exists for any ``n >= 2``.
    """
    n = len(flat)
    neighbours = max(1, n - f - 2)
    scores = np.empty(n)
    for i in range(n):  # one row of distances at a time: memory n * d, not n * n * d
        distances = ((flat - flat[i]) ** 2).sum(axis=1)
        scores[i] = np.sort(np.delete(distances, i))[:neighbours].sum()
    return scores


def multi_krum(updates: Sequence[Params], weights: Sequence[float] | None = None, *, f: int = 1, m: int | None = None) -> Params:
    """Mean of the ``m`` updates with the lowest Krum scores (Multi-Krum).

    Blanchard et al., "Machine Learning with Adversaries: Byzantine Tolerant
    Gradient Descent", NeurIPS 2017. ``m=None`` keeps ``n - f`` updates; ``m=1``
    is Krum. Weights are ignored.

    Raises
    ------
    ValueError
        If ``n <= 2f + 2`` or ``m > n``.
    """
    _check_updates(updates, np.ones(len(updates)))
    n = len(updates)
    if n <= 2 * f + 2:
        raise _too_few("MultiKrum", f, n, f"n > 2f + 2 = {2 * f + 2}")
    m = n - f if m is None else m
    if m > n:
        raise ValueError(f"MultiKrum(m={m}) averages more updates than the round has (n={n}); expected m <= n")
    chosen = np.argsort(krum_scores(_flatten(updates), f), kind="stable")[:m]
    return {name: _stack(updates, name)[chosen].mean(axis=0) for name in updates[0]}


def bulyan(updates: Sequence[Params], weights: Sequence[float] | None = None, *, f: int = 1) -> Params:
    """Bulyan: pick ``n - 2f`` updates by repeated Krum, then a trimmed mean around their median.

    El Mhamdi et al., "The Hidden Vulnerability of Distributed Learning in
    Byzantium", ICML 2018. Krum picks the best update of those left, ``n - 2f``
    times; then, per coordinate, the ``n - 4f`` picked values closest to their
    median are averaged. Weights are ignored.

    Raises
    ------
    ValueError
        If ``n < 4f + 3``.
    """
    _check_updates(updates, np.ones(len(updates)))
    n = len(updates)
    if n < 4 * f + 3:
        raise _too_few("Bulyan", f, n, f"n >= 4f + 3 = {4 * f + 3}")
    flat = _flatten(updates)
    left, picked = list(range(n)), []
    while len(picked) < n - 2 * f:
        best = left[int(np.argmin(krum_scores(flat[left], f)))]
        picked.append(best)
        left.remove(best)
    keep = n - 4 * f
    result = {}
    for name in updates[0]:
        values = _stack(updates, name)[sorted(picked)]
        closest = np.argsort(np.abs(values - np.median(values, axis=0)), axis=0, kind="stable")[:keep]
        result[name] = np.take_along_axis(values, closest, axis=0).mean(axis=0)
    return result


def _flatten(updates: Sequence[Params]) -> np.ndarray:
    names = list(updates[0])
    return np.stack([np.concatenate([np.ravel(np.asarray(u[name], dtype=np.float64)) for name in names]) for u in updates])


def _too_few(rule: str, f: int, n: int, condition: str) -> ValueError:
    return ValueError(
        f"{rule}(f={f}) needs {condition} updates per round; got n={n}: use more workers, "
        f"a smaller f, or make sure every round gets an update from enough workers"
    )


def _check_f(f: object) -> int:
    if isinstance(f, bool) or not isinstance(f, int) or f < 0:
        raise ValueError(f"f={f!r} must be an int >= 0 (the number of faulty workers tolerated)")
    return f


class MultiKrum(Aggregator):
    """Multi-Krum (Blanchard et al., NeurIPS 2017): the mean of the ``m`` most central updates.

    Parameters
    ----------
    f : int, default 1
        How many workers may be faulty or malicious. Every round needs more
        than ``2f + 2`` updates.
    m : int or None, default None
        How many updates to average; ``None`` means ``n - f``.
    """

    def __init__(self, f: int = 1, m: int | None = None) -> None:
        self.f = _check_f(f)
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise ValueError(f"m={m!r} must be an int >= 1 or None (n - f)")
        self.m = m

    def __call__(self, updates: Sequence[Params], weights: Sequence[float]) -> Params:
        return multi_krum(updates, weights, f=self.f, m=self.m)


class Bulyan(Aggregator):
    """Bulyan (El Mhamdi et al., ICML 2018) over Krum.

    Parameters
    ----------
    f : int, default 1
        How many workers may be faulty or malicious. Every round needs at
        least ``4f + 3`` updates.
    """

    def __init__(self, f: int = 1) -> None:
        self.f = _check_f(f)

    def __call__(self, updates: Sequence[Params], weights: Sequence[float]) -> Params:
        return bulyan(updates, weights, f=self.f)
