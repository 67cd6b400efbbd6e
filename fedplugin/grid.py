"""Grids and results of a federated search: expanding a grid, ranking, ``cv_results_``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator
from sklearn.model_selection import ParameterGrid

from .adapters import adapter_for, fresh_copy
from .checks import check_number
from .candidates import PA_LEARNING_RATES
from .history import Round
from .wording import count


def passive_aggressive_grid(
    C: Iterable[float], loss: Iterable[str] = ("hinge", "squared_hinge")
) -> dict[str, list]:
    """The grid of ``SGDClassifier(loss="hinge", penalty=None)`` equivalent to a passive-aggressive grid.

    ``PassiveAggressiveClassifier(C=C, loss="hinge")`` is
    ``SGDClassifier(loss="hinge", penalty=None, learning_rate="pa1", eta0=C)``
    and ``loss="squared_hinge"`` is the same with ``learning_rate="pa2"``.

    Parameters
    ----------
    C : iterable of float
        Values of the passive-aggressive ``C`` (maximum step size for PA-I,
        step regularization for PA-II); each must be > 0.
    loss : iterable of {"hinge", "squared_hinge"}
        Passive-aggressive losses: PA-I and PA-II.

    Returns
    -------
    dict
        ``{"eta0": [...], "learning_rate": [...]}``, for
        ``FederatedSearch`` or ``GridSearchCV`` over
        ``SGDClassifier(loss="hinge", penalty=None)``.

    Examples
    --------
    >>> passive_aggressive_grid([0.1, 1.0])
    {'eta0': [0.1, 1.0], 'learning_rate': ['pa1', 'pa2']}
    >>> passive_aggressive_grid([1.0], loss=["log_loss"])
    Traceback (most recent call last):
    ...
    ValueError: loss='log_loss' has no passive-aggressive equivalent; expected one of ['hinge', 'squared_hinge']
    """
    C, loss = list(C), list(loss)
    for value in C:
        check_number(value, "C", min_val=0, include_boundaries="neither")  # a maximum step size
    for value in loss:
        if value not in PA_LEARNING_RATES:
            raise ValueError(
                f"loss={value!r} has no passive-aggressive equivalent; expected one of {sorted(PA_LEARNING_RATES)}"
            )
    return {"eta0": C, "learning_rate": [PA_LEARNING_RATES[value] for value in loss]}

# -------------------------------------------------------------------- the search
def expand_grid(param_grid: Any) -> list[dict[str, Any]]:
    """The candidates of ``param_grid`` (a dict or list of dicts, as for ``GridSearchCV``).

    Raises
    ------
    ValueError, TypeError
        If the grid is malformed or holds no candidate.

    Examples
    --------
    >>> expand_grid({"alpha": [0.1, 1.0], "penalty": ["l2"]})
    [{'alpha': 0.1, 'penalty': 'l2'}, {'alpha': 1.0, 'penalty': 'l2'}]
    >>> expand_grid([])
    Traceback (most recent call last):
    ...
    ValueError: param_grid=[] holds no candidate; expected a dict or a non-empty list of dicts ...
    """
    candidates = list(ParameterGrid(param_grid))
    if not candidates:
        raise ValueError(
            f"param_grid={param_grid!r} holds no candidate; expected a dict or a non-empty list of "
            "dicts of parameter name -> non-empty list of values"
        )
    return candidates


def build_candidates(estimator: BaseEstimator, candidate_params: Sequence[Mapping[str, Any]]) -> list[BaseEstimator]:
    """One unfitted copy of ``estimator`` per parameter setting, each checked by its adapter.

    Raises
    ------
    ValueError
        For an unknown parameter name (scikit-learn's message lists the valid
        ones) or a setting fedplugin cannot federate (e.g. ``average=True``).
    """
    candidates = []
    for index, params in enumerate(candidate_params):
        candidate = fresh_copy(estimator).set_params(**params)
        try:
            adapter_for(candidate)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"candidate {index} {dict(params)}: {exc}") from exc
        candidates.append(candidate)
    return candidates


def _in_memory(data: Any) -> Any:
    """``data`` as a numpy array (dask collections are computed, pandas converted)."""
    if dask.is_dask_collection(data):
        data = data.compute()
    if hasattr(data, "to_numpy"):
        data = data.to_numpy()
    return np.asarray(data)


def failures_message(
    candidate_params: Sequence[Mapping[str, Any]], failed: np.ndarray, errors: Mapping[int, str], error_score: Any
) -> str:
    """What the ``FitFailedWarning`` of a search with ``failed`` candidates says, naming each and why."""
    reasons = [
        f"{candidate_params[index]}: {errors.get(index, 'failed while training on a worker (see its log)')}"
        for index in np.flatnonzero(failed)
    ]
    return (
        f"{int(failed.sum())} of {count(len(failed), 'candidate')} failed to train and scored "
        f"error_score={error_score!r} (error_score='raise' raises instead): " + "; ".join(reasons)
    )


def rank_scores(scores: np.ndarray) -> np.ndarray:
    """Ranks as ``GridSearchCV`` gives them: 1 is best, ties share the lowest rank, ``nan`` comes last.

    Examples
    --------
    >>> rank_scores(np.array([0.5, 0.9, np.nan, 0.9])).tolist()
    [3, 1, 4, 1]
    """
    filled = np.where(np.isnan(scores), -np.inf, scores)
    return rankdata(-filled, method="min").astype(np.int32)


def cv_results(
    candidate_params: Sequence[Mapping[str, Any]], scores: np.ndarray, score_times: np.ndarray
) -> dict[str, Any]:
    """A ``GridSearchCV``-style results dict, ready for ``pandas.DataFrame``.

    Keys: ``params``, ``param_<name>`` (masked arrays: masked where a
    candidate of a list-of-dicts grid lacks the parameter),
    ``mean_test_score``, ``rank_test_score`` and ``mean_score_time``. There is
    one split (the held-out set, or the progressive validation), so there
    are no ``std_`` or ``split<k>_`` entries.
    """
    n = len(candidate_params)
    results: dict[str, Any] = {"params": [dict(params) for params in candidate_params]}
    for name in sorted({name for params in candidate_params for name in params}):
        column = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
        for index, params in enumerate(candidate_params):
            if name in params:
                column[index] = params[name]
        results[f"param_{name}"] = column
    results["mean_test_score"] = np.asarray(scores, dtype=np.float64)
    results["rank_test_score"] = rank_scores(results["mean_test_score"])
    results["mean_score_time"] = np.asarray(score_times, dtype=np.float64)
    return results


@dataclass
class SearchResult:
    """What one :meth:`FederatedSearch.fit` found."""

    cv_results: dict[str, Any]
    best_index: int
    best_estimator: BaseEstimator
    history: list[Round] = field(default_factory=list)
    fit_seconds: float = 0.0
