"""Federated model selection: train every candidate of a parameter grid at once.

A grid search usually trains each candidate on its own, reading the data once
per candidate (and per fold). :class:`FederatedSearch` reads each block once:
every worker holds *all* the candidates, and each block that reaches it
updates every one of them before the next block is read. Under the hood the
candidates travel as one composite estimator, :class:`CandidateSet`, whose
:class:`CandidateSetAdapter` flattens their parameters into one dict with
prefixed names (``"c3/coef_"``), so the :class:`~fedplugin.Coordinator` runs
it like any other model: same block placement, rounds, history and restarts,
and every candidate is synchronized in every round.

After training, the candidates are scored on a held-out set, or, when none is
given, by progressive validation (each block scores every candidate *before*
the candidate trains on it), and the search exposes ``best_params_``,
``best_estimator_``, ``best_score_`` and ``cv_results_`` like scikit-learn's
``GridSearchCV``.

Notes
-----
scikit-learn 1.8 deprecated ``PassiveAggressiveClassifier`` (removal in 1.10).
Its exact equivalent (the same ``coef_`` after ``partial_fit`` and after
``fit``, checked with scikit-learn 1.9) is an ``SGDClassifier`` that always
uses the hinge loss and lets ``learning_rate`` pick the algorithm:

* ``PassiveAggressiveClassifier(C=C, loss="hinge")`` (PA-I) is
  ``SGDClassifier(loss="hinge", penalty=None, learning_rate="pa1", eta0=C)``;
* ``PassiveAggressiveClassifier(C=C, loss="squared_hinge")`` (PA-II) is
  ``SGDClassifier(loss="hinge", penalty=None, learning_rate="pa2", eta0=C)``.

:func:`passive_aggressive_grid` turns a ``C`` x ``loss`` grid into the
``eta0`` x ``learning_rate`` grid of that ``SGDClassifier``.

Examples
--------
Without a cluster, a :class:`CandidateSet` trains several estimators on the
same blocks, reading each block once:

>>> from sklearn.datasets import make_classification
>>> from sklearn.linear_model import SGDClassifier
>>> X, y = make_classification(n_samples=2000, n_features=5, flip_y=0.2, random_state=0)
>>> candidates = [
...     SGDClassifier(loss="hinge", penalty=None, learning_rate="pa1", eta0=C, random_state=0)
...     for C in (1e-4, 10.0)
... ]
>>> model = CandidateSet(candidates)
>>> for start in range(0, 1500, 500):
...     model = model.partial_fit(X[start:start + 500], y[start:start + 500], classes=[0, 1])
>>> [round(estimator.score(X[1500:], y[1500:]), 2) for estimator in model.estimators_]
[0.85, 0.68]
"""

from __future__ import annotations

import copy
import logging
import numbers
import time
from typing import Any

import numpy as np
from dask import is_dask_collection
from distributed import Client
from sklearn.base import BaseEstimator
from sklearn.exceptions import FitFailedWarning, NotFittedError

from .adapters import adapter_for
from .aggregation import WeightedMean, as_aggregator
from .history import Round
from .checks import check_number
from .candidate_adapter import CandidateSetAdapter, PerCandidate
from .candidates import (
    PA_LEARNING_RATES,
    CandidateSet,
    _check_error_score,
    apply_scorer,
    as_scorer,
    check_scorer_applies,
    split_params,
)
from .grid import (
    SearchResult, _in_memory, build_candidates, cv_results, expand_grid, failures_message, passive_aggressive_grid, rank_scores
)
from .feature_names import check_feature_names, feature_names, refuse_other_names, with_feature_names
from .session import client_or_default, federated_session
from .user_warning import warn_user

logger = logging.getLogger("fedplugin")

class FederatedSearch(BaseEstimator):
    """Grid search that trains every candidate at once, federatedly, reading each block once.

    Every worker of the cluster holds all the candidates of ``param_grid`` and
    updates each of them from every block it trains; each synchronization
    round combines every candidate across workers (see
    :class:`~fedplugin.candidate_adapter.CandidateSetAdapter`). After training, the candidates are scored
    and the best one is kept as a plain fitted scikit-learn estimator.

    Unlike ``GridSearchCV`` there are no folds and no refit: each candidate
    is trained once, on all of ``X``, and scored on the held-out ``X_val``,
    ``y_val`` given to :meth:`fit`; without one, on progressive validation
    (each block scores every candidate before the candidate trains on it;
    with ``epochs > 1`` the later epochs score blocks the candidates have
    already seen).

    Like scikit-learn's estimators, the constructor only stores its arguments;
    they are checked by :meth:`fit`, and ``clone``, ``get_params`` and
    ``set_params`` work.

    Parameters
    ----------
    estimator : scikit-learn estimator with ``partial_fit``
        The estimator whose settings are searched, of a family fedplugin
        supports (see :mod:`fedplugin.adapters`). For the deprecated
        ``PassiveAggressiveClassifier`` use
        ``SGDClassifier(loss="hinge", penalty=None)`` with
        :func:`passive_aggressive_grid`.
    param_grid : dict or list of dicts
        Parameter names to lists of values, as for ``GridSearchCV``.
    client : distributed.Client, optional
        Client of the cluster to train on; default the current client
        (``distributed.get_client()``).
    sync : SyncPolicy or int, optional
        When to synchronize, as for :class:`~fedplugin.Coordinator`
        (default ``EveryNBatches(50)``). Prefer a count or time policy:
        drift-based ones measure the distance summed over every candidate's
        parameters and, with progressive validation, over the running score
        sums too, which grow with every block and so end nearly every round.
    aggregator : callable or mapping, optional
        How to combine the workers' copies of each candidate, as for
        :class:`~fedplugin.Coordinator` (default ``WeightedMean()``). The rule
        sees one candidate at a time under its plain parameter names, so
        ``{"coef_": Median(), "intercept_": Mean()}`` works.
    scoring : None, str or callable, optional
        How candidates are compared: ``None`` uses the estimator's ``score``
        (accuracy or R²), a string any name of
        ``sklearn.metrics.get_scorer_names()``, a callable
        ``scorer(estimator, X, y)``. Greater is better.
    block_size : int, default 4096
        Rows per block for in-memory input.
    epochs : int, default 1
        Passes over the data.
    name : str, optional
        Name of the worker plugin used during ``fit`` (default: a fresh
        unique name); it is unregistered when ``fit`` ends, so it must not be
        the name of another fedplugin model in use.
    error_score : 'raise' or float, default np.nan
        Score of a candidate that fails to train (``partial_fit`` raises
        ``ValueError`` or its parameters become non-finite); it then stops
        training while the others go on, and ``fit`` warns with
        ``FitFailedWarning``. ``'raise'`` makes ``fit`` raise instead.
    overlap : {"auto", True, False}, default "auto"
        As for :class:`~fedplugin.Coordinator`: ``False`` runs strict
        synchronous rounds, bitwise reproducible.

    Attributes
    ----------
    candidate_params_ : list of dict
        The parameter settings of the grid, in order.
    candidates_ : list of estimators
        One unfitted estimator per setting.
    best_index_ : int
        Index of the best candidate (the first of the best if several tie).
    best_params_ : dict
        Its parameter setting.
    best_score_ : float
        Its score.
    best_estimator_ : estimator
        The best candidate, a plain fitted scikit-learn estimator.
    n_features_in_ : int
        Number of features seen in :meth:`fit`.
    feature_names_in_ : ndarray of str
        ``X``'s column names in :meth:`fit` if all are strings (else no such
        attribute), also the best estimator's; other names or order are refused.
    cv_results_ : dict of arrays
        Per candidate: ``params``, ``param_<name>``, ``mean_test_score``,
        ``rank_test_score``, ``mean_score_time``; ``pandas.DataFrame(cv_results_)``
        (or :meth:`cv_results_frame`) makes it a table.
    history_ : list of Round
        The synchronization rounds of the training; ``samples`` counts each
        block once, however many candidates.
    fit_seconds_ : float
        Wall time of the federated training, scoring excluded.

    Examples
    --------
    >>> from dask.distributed import Client, LocalCluster               # doctest: +SKIP
    >>> from sklearn.linear_model import SGDClassifier
    >>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))  # doctest: +SKIP
    >>> search = FederatedSearch(
    ...     SGDClassifier(loss="hinge", penalty=None),
    ...     passive_aggressive_grid([1e-3, 0.1, 1.0]),
    ...     client=client,
    ... )                                                                # doctest: +SKIP
    >>> search.fit(X_train, y_train, X_val, y_val).best_params_         # doctest: +SKIP
    {'eta0': 0.001, 'learning_rate': 'pa1'}
    >>> search.best_estimator_                                          # doctest: +SKIP
    SGDClassifier(eta0=0.001, learning_rate='pa1', penalty=None)
    """

    def __init__(
        self,
        estimator: BaseEstimator,
        param_grid: Any,
        *,
        client: Client | None = None,
        sync: Any = None,
        aggregator: Any = None,
        scoring: Any = None,
        block_size: int = 4096,
        epochs: int = 1,
        name: str | None = None,
        error_score: float | str = np.nan,
        overlap: bool | str = "auto",
    ) -> None:
        self.estimator = estimator
        self.param_grid = param_grid
        self.client = client
        self.sync = sync
        self.aggregator = aggregator
        self.scoring = scoring
        self.block_size = block_size
        self.epochs = epochs
        self.name = name
        self.error_score = error_score
        self.overlap = overlap

    def _validate(self) -> Client:
        """Check the settings, expand the grid; return the client to train with."""
        client = client_or_default(self.client, "FederatedSearch")
        adapter_for(self.estimator)
        check_number(self.block_size, "block_size", numbers.Integral, min_val=1)
        check_number(self.epochs, "epochs", numbers.Integral, min_val=1)
        _check_error_score(self.error_score)
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise TypeError(f"name={self.name!r} must be a non-empty string or None")
        self.candidate_params_ = expand_grid(self.param_grid)
        self.candidates_ = build_candidates(self.estimator, self.candidate_params_)
        self.scorer_ = as_scorer(self.scoring, self.candidates_[0])
        check_scorer_applies(self.scorer_, self.scoring, self.candidates_)
        self._aggregator = as_aggregator(WeightedMean() if self.aggregator is None else self.aggregator)
        return client

    # ---------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> FederatedSearch:
        """Train every candidate on ``X``, ``y`` at once, then score them and keep the best.

        Parameters
        ----------
        X, y : numpy/pandas or dask collections
            Training data, as for :meth:`fedplugin.Coordinator.fit`; each block
            is read once per epoch, whatever the number of candidates.
        X_val, y_val : array-like, optional
            Held-out data the candidates are scored on (brought to the client:
            keep it modest; dask collections are computed), with ``X``'s column
            names if any. Without them the candidates are compared by progressive validation.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If only one of ``X_val``, ``y_val`` is given, if ``X_val`` has other
            column names than ``X``, if every candidate failed, or
            (``error_score='raise'``) if one failed.
        """
        client = self._validate()
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither (progressive validation)")
        if X_val is not None:  # X_val's names must be X's, checked before any training
            check_feature_names(feature_names(X_val), feature_names(X), type(self.estimator).__name__, label="X_val")
        self._result = None
        template = CandidateSet(
            self.candidates_, scoring=self.scoring, progressive=X_val is None, error_score=self.error_score
        )
        start = time.perf_counter()
        model, history = self._train(client, template, X, y)
        fit_seconds = time.perf_counter() - start
        failed = np.asarray(model.failed_, dtype=bool)
        if failed.all():
            raise ValueError(
                f"{'the only candidate' if len(failed) == 1 else f'every one of the {len(failed)} candidates'} "
                "failed to train; rerun with "
                "error_score='raise' to see the first error"
            )
        scores, times = self._score(model, failed, X_val, y_val)
        results = cv_results(self.candidate_params_, scores, times)
        best = int(np.argmin(results["rank_test_score"]))
        names = getattr(model, "feature_names_in_", None)  # X's; the candidates, trained on arrays, have none
        estimator = with_feature_names(copy.deepcopy(model.estimators_[best]), names)
        self._result = SearchResult(results, best, estimator, history, fit_seconds)
        if failed.any():
            warn_user(failures_message(self.candidate_params_, failed, model.errors_, self.error_score), FitFailedWarning)
        return self

    def _train(self, client: Client, template: CandidateSet, X: Any, y: Any) -> tuple[CandidateSet, list[Round]]:
        """Federate ``template`` over the cluster; return its global model and the rounds."""
        options = dict(
            sync=self.sync, aggregator=PerCandidate(self._aggregator), block_size=self.block_size, overlap=self.overlap
        )
        with federated_session(client, template, name=self.name, check_workers=False, progress=False, **options) as coord:
            coord.fit(X, y, epochs=self.epochs)
            return coord.global_model(), list(coord.history)

    def _score(
        self, model: CandidateSet, failed: np.ndarray, X_val: Any, y_val: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each candidate's score (``error_score`` where it failed) and scoring time."""
        n = len(self.candidates_)
        times = np.zeros(n)
        if X_val is None:
            scores = model.progressive_scores()
        else:
            X_val, y_val = _in_memory(X_val), np.ravel(_in_memory(y_val))
            scores = np.full(n, np.nan)
            for index in np.flatnonzero(~failed):
                start = time.perf_counter()
                scores[index] = apply_scorer(self.scorer_, self.scoring, index, model.estimators_[index], X_val, y_val)
                times[index] = time.perf_counter() - start
        scores = np.where(failed, self.error_score, scores).astype(np.float64)
        return scores, times

    # ---------------------------------------------------------------- results
    def _fitted(self) -> SearchResult:
        if getattr(self, "_result", None) is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")
        return self._result

    @property
    def cv_results_(self) -> dict[str, Any]:
        return self._fitted().cv_results

    @property
    def best_index_(self) -> int:
        return self._fitted().best_index

    @property
    def best_params_(self) -> dict[str, Any]:
        return dict(self.cv_results_["params"][self.best_index_])

    @property
    def best_score_(self) -> float:
        return float(self.cv_results_["mean_test_score"][self.best_index_])

    @property
    def best_estimator_(self) -> BaseEstimator:
        return self._fitted().best_estimator

    @property
    def n_features_in_(self) -> int:
        return self.best_estimator_.n_features_in_

    @property
    def feature_names_in_(self) -> np.ndarray:
        return self.best_estimator_.feature_names_in_  # without names an AttributeError: hasattr False, as for GridSearchCV

    @property
    def history_(self) -> list[Round]:
        return self._fitted().history

    @property
    def fit_seconds_(self) -> float:
        return self._fitted().fit_seconds

    def cv_results_frame(self) -> Any:
        """``cv_results_`` as a ``pandas.DataFrame``, one row per candidate."""
        import pandas as pd

        return pd.DataFrame(self.cv_results_)

    def predict(self, X: Any) -> np.ndarray:
        """Predict with the best candidate (``X`` with other column names than ``feature_names_in_``: ``ValueError``)."""
        return self.best_estimator_.predict(refuse_other_names(X, self.best_estimator_))

    def score(self, X: Any, y: Any) -> float:
        """Score the best candidate on ``X``, ``y`` with the search's ``scoring`` (``X``'s names checked as by :meth:`predict`)."""
        X = refuse_other_names(X.compute() if is_dask_collection(X) else X, self.best_estimator_)  # a DataFrame stays one
        return apply_scorer(self.scorer_, self.scoring, self.best_index_, self.best_estimator_, X, np.ravel(_in_memory(y)))


__all__ = [
    "PA_LEARNING_RATES",
    "CandidateSet",
    "CandidateSetAdapter",
    "FederatedSearch",
    "PerCandidate",
    "as_scorer",
    "cv_results",
    "expand_grid",
    "passive_aggressive_grid",
    "rank_scores",
    "split_params",
]
