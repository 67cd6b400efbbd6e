"""Called after every round: your callbacks, and early stopping.

``Coordinator(..., callbacks=[...])`` calls each callback with the round's
:class:`~fedplugin.Round` record as soon as the round is recorded: log it to
MLflow or TensorBoard, append it to a CSV file, watch a metric. A callback that
raises stops the fit, which is then rolled back like any failed fit.

:class:`EarlyStopping` is such a callback, with scikit-learn's names: the fit
stops once the monitored score has not improved by at least ``tol`` for
``n_iter_no_change`` rounds in a row. ``Coordinator(early_stopping=True,
n_iter_no_change=..., tol=..., validation_data=(X_val, y_val))`` adds one.

Examples
--------
>>> from fedplugin.history import Round
>>> def scored(i, score):
...     return Round(i, "count", 100, 100 * i, 1, 0, 0, 2, ("a", "b"), (), 0.1, 0, 0, i,
...                  metrics={"online_score": score})
>>> stopping = EarlyStopping(n_iter_no_change=2, tol=0.01, monitor="online_score")
>>> for i, score in enumerate([0.70, 0.80, 0.805, 0.81, 0.809], start=1):
...     stopping(scored(i, score))
...     print(i, stopping.stop)
1 False
2 False
3 False
4 True
5 True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

from .checks import check_number

#: The scores :class:`EarlyStopping` can watch, in ``Round.metrics``.
MONITORS = ("validation_score", "online_score")


class EarlyStopping:
    """Stop a fit when a score stops improving (scikit-learn's ``n_iter_no_change`` and ``tol``).

    Parameters
    ----------
    n_iter_no_change : int, default 5
        Rounds without an improvement of at least ``tol`` before stopping.
    tol : float, default 1e-3
        The smallest rise of the score over the best so far that counts as
        an improvement.
    monitor : {"validation_score", "online_score"}
        Which of ``Round.metrics`` to watch: the global model's score on
        ``validation_data`` after each round, or the test-then-train score
        (``Coordinator(scoring=...)``).

    Attributes
    ----------
    best : float
        The best score seen (``-inf`` before the first).
    stop : bool
        True once the fit should stop.
    """

    def __init__(self, n_iter_no_change: int = 5, tol: float = 1e-3, *, monitor: str = "validation_score") -> None:
        check_number(n_iter_no_change, "n_iter_no_change", numbers.Integral, min_val=1)
        check_number(tol, "tol", min_val=0)
        if monitor not in MONITORS:
            raise ValueError(f"monitor={monitor!r} is not supported; expected one of {list(MONITORS)}")
        self.n_iter_no_change, self.tol, self.monitor = int(n_iter_no_change), float(tol), monitor
        self.reset()

    def reset(self) -> None:
        """Forget the scores seen: a new fit starts watching afresh (as scikit-learn's ``fit`` does)."""
        self.best = -math.inf
        self.rounds_without_improvement = 0

    @property
    def stop(self) -> bool:
        return self.rounds_without_improvement >= self.n_iter_no_change

    def __call__(self, record: Any) -> None:
        score = record.metrics.get(self.monitor)
        if score is None or not math.isfinite(score):
            return  # a round with no score (no samples): neither better nor worse
        if score > self.best + self.tol:
            self.rounds_without_improvement = 0
        else:
            self.rounds_without_improvement += 1
        self.best = max(self.best, score)

    def __repr__(self) -> str:
        return f"EarlyStopping(n_iter_no_change={self.n_iter_no_change}, tol={self.tol}, monitor={self.monitor!r})"


def as_callbacks(callbacks: Iterable[Callable[[Any], Any]] | None) -> list[Callable[[Any], Any]]:
    """A list of callables, or a clear error naming what is not one."""
    if callbacks is None:
        return []
    if callable(callbacks) or isinstance(callbacks, (str, bytes)):
        raise TypeError(f"callbacks={callbacks!r} must be a list of callables, e.g. callbacks=[print]")
    callbacks = list(callbacks)
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(f"callbacks holds {callback!r}, which is not callable; expected callback(round_record)")
    return callbacks


def early_stopping_callbacks(early_stopping: bool, n_iter_no_change: int, tol: float, validation: Any, scoring: Any) -> list[EarlyStopping]:
    """The :class:`EarlyStopping` callback ``early_stopping=True`` asks for (none for ``False``)."""
    if not early_stopping:
        return []
    if validation is None and scoring is None:
        raise ValueError(
            "early_stopping=True needs a score to watch: pass validation_data=(X_val, y_val), "
            "or scoring='accuracy' (or another scorer) for the test-then-train score"
        )
    monitor = "validation_score" if validation is not None else "online_score"
    return [EarlyStopping(n_iter_no_change, tol, monitor=monitor)]


__all__ = ["EarlyStopping", "MONITORS", "as_callbacks"]
