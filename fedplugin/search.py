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
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from distributed import Client
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import FitFailedWarning, NotFittedError
from sklearn.metrics import check_scoring, get_scorer
from sklearn.model_selection import ParameterGrid
from sklearn.utils import get_tags
from sklearn.utils.validation import validate_data

from .adapters import ADAPTERS, ModelAdapter, Params, adapter_for, fresh_copy
from .aggregation import Aggregator, WeightedMean, as_aggregator
from .history import Round
from .session import federated_session

logger = logging.getLogger("fedplugin")

#: ``learning_rate`` of the ``SGDClassifier`` equivalent to each ``PassiveAggressiveClassifier`` loss.
PA_LEARNING_RATES = {"hinge": "pa1", "squared_hinge": "pa2"}

#: Separates the candidate prefix from the parameter name: ``"c3/coef_"``.
SEPARATOR = "/"

Scorer = Callable[[BaseEstimator, Any, Any], float]


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
    for value in loss:
        if value not in PA_LEARNING_RATES:
            raise ValueError(
                f"loss={value!r} has no passive-aggressive equivalent; expected one of {sorted(PA_LEARNING_RATES)}"
            )
    return {"eta0": C, "learning_rate": [PA_LEARNING_RATES[value] for value in loss]}


# --------------------------------------------------------------------------- scoring
def as_scorer(scoring: Any, estimator: BaseEstimator) -> Scorer:
    """Turn ``scoring`` into a scorer ``scorer(estimator, X, y) -> float``, or raise a clear error.

    Parameters
    ----------
    scoring : None, str or callable
        ``None`` uses ``estimator.score``; a string is any name of
        ``sklearn.metrics.get_scorer_names()``; a callable must have the
        scorer signature ``scorer(estimator, X, y)``. Several metrics at once
        (a list or dict) are not supported.
    estimator : estimator
        What the scorer will score (its ``score`` method for ``None``).

    Examples
    --------
    >>> from sklearn.linear_model import SGDClassifier
    >>> as_scorer("accuracy", SGDClassifier())
    make_scorer(accuracy_score, response_method='predict')
    >>> as_scorer(["accuracy", "f1"], SGDClassifier())
    Traceback (most recent call last):
    ...
    TypeError: scoring=['accuracy', 'f1'] is not usable; expected None, a scorer name ...
    """
    if scoring is None:
        return check_scoring(estimator)
    if isinstance(scoring, str):
        return get_scorer(scoring)
    if callable(scoring):
        return scoring
    raise TypeError(
        f"scoring={scoring!r} is not usable; expected None, a scorer name such as 'accuracy' "
        "(see sklearn.metrics.get_scorer_names()) or a callable scorer(estimator, X, y); "
        "several metrics at once are not supported"
    )


def check_scorer_applies(scorer: Scorer, scoring: Any, candidates: Sequence[BaseEstimator]) -> None:
    """Raise ``ValueError`` if a scorer needs a method (``predict_proba``, ...) a candidate lacks.

    Checked before training, so a scorer that cannot apply fails at once
    rather than after the whole search has trained.
    """
    methods = getattr(scorer, "_response_method", None)
    if methods is None:
        return
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    for candidate in candidates:
        if not any(hasattr(candidate, method) for method in methods):
            raise ValueError(
                f"scoring={scoring!r} needs {' or '.join(methods)}, which {candidate!r} does not have"
            )


def apply_scorer(scorer: Scorer, scoring: Any, index: int, estimator: BaseEstimator, X: Any, y: Any) -> float:
    """``scorer(estimator, X, y)`` as a float; any failure becomes a ``ValueError`` naming the candidate."""
    try:
        score = scorer(estimator, X, y)
        return float(score)
    except Exception as exc:
        raise ValueError(f"scoring={scoring!r} failed on candidate {index} ({estimator!r}): {exc}") from exc


# ---------------------------------------------------------------- the candidate set
def _check_error_score(error_score: Any) -> None:
    if error_score == "raise" or (isinstance(error_score, numbers.Real) and not isinstance(error_score, bool)):
        return
    raise ValueError(f"error_score={error_score!r} is not usable; expected 'raise' or a number such as np.nan")


class CandidateSet(BaseEstimator):
    """Several estimators of one family trained together, one block at a time.

    Each call to :meth:`partial_fit` trains every candidate on the same block,
    so a block is read once however many candidates there are. It is the
    model :class:`FederatedSearch` federates: its adapter,
    :class:`CandidateSetAdapter`, exposes the candidates' parameters as one
    dict with prefixed names.

    Parameters
    ----------
    candidates : list of estimators
        Unfitted estimators with ``partial_fit``, all classifiers or all
        regressors, of families fedplugin supports (see
        :mod:`fedplugin.adapters`).
    scoring : None, str or callable, default None
        Scorer of the progressive validation (see ``progressive``);
        ``None`` uses each candidate's ``score``.
    progressive : bool, default False
        Score every candidate on each block before training it on that block
        (test-then-train), accumulating the row-weighted scores in
        ``score_sum_`` and ``score_weight_``.
    error_score : 'raise' or float, default np.nan
        What a candidate that fails to train gets: ``'raise'`` stops at the
        first error; a number marks the candidate failed (``failed_``), stops
        training it and lets the others go on. A candidate fails when its
        ``partial_fit`` raises ``ValueError`` (invalid settings, numerical
        overflow) or leaves non-finite parameters. If every candidate still
        training fails on the same block, the error is raised: the data is
        the likely culprit.

    Attributes
    ----------
    estimators_ : list of estimators
        The trained candidates, plain scikit-learn estimators.
    failed_ : ndarray of bool
        Which candidates failed to train.
    errors_ : dict of int to str
        Why, for the failures this copy of the set saw (a worker's training
        failures stay in that worker's copy and log).
    score_sum_, score_weight_ : ndarray of float
        Per candidate, the sum of block scores times block rows, and the rows
        scored (progressive validation only; zeros otherwise).
    n_features_in_ : int
        Number of features.
    classes_ : ndarray
        Class labels (classifiers only).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import is_classifier
    >>> from sklearn.linear_model import SGDRegressor
    >>> model = CandidateSet([SGDRegressor(alpha=a, random_state=0) for a in (1e-4, 1.0)])
    >>> is_classifier(model)
    False
    >>> X = np.arange(20.0).reshape(10, 2) / 10
    >>> model = model.partial_fit(X, X.sum(axis=1))
    >>> len(model.estimators_), model.failed_.tolist()
    (2, [False, False])
    """

    def __init__(
        self,
        candidates: Sequence[BaseEstimator],
        *,
        scoring: Any = None,
        progressive: bool = False,
        error_score: float | str = np.nan,
    ) -> None:
        self.candidates = candidates
        self.scoring = scoring
        self.progressive = progressive
        self.error_score = error_score

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.candidates:
            inner = get_tags(self.candidates[0])
            tags.estimator_type = inner.estimator_type
            tags.classifier_tags = inner.classifier_tags
            tags.regressor_tags = inner.regressor_tags
        return tags

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> CandidateSet:
        """Train every candidate on one block ``X``, ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like, optional
            All class labels; required at the first call for classifiers.

        Returns
        -------
        self
        """
        first = not hasattr(self, "estimators_")
        X, y = validate_data(self, X, y, reset=first, dtype=np.float64)
        if first:
            if is_classifier(self) and classes is None:
                raise ValueError("classes must be given at the first call to partial_fit of a classifier")
            CandidateSetAdapter().validate(self)
            self._start(X.shape[1], None if classes is None else np.unique(classes))
        self._train_block(X, y)
        return self

    def progressive_scores(self) -> np.ndarray:
        """Each candidate's row-weighted mean block score (``nan`` where nothing was scored)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.score_weight_ > 0, self.score_sum_ / self.score_weight_, np.nan)

    # ------------------------------------------------ used by CandidateSetAdapter
    def _start(self, n_features: int, classes: np.ndarray | None) -> None:
        """Set up untrained candidates, as their adapters initialise them."""
        self._adapters = [adapter_for(candidate) for candidate in self.candidates]
        self.estimators_ = [
            adapter.initialize(candidate, n_features, classes)
            for adapter, candidate in zip(self._adapters, self.candidates)
        ]
        n = len(self.candidates)
        self.failed_ = np.zeros(n, dtype=bool)
        self.errors_: dict[int, str] = {}
        self.score_sum_ = np.zeros(n)
        self.score_weight_ = np.zeros(n)
        self.n_features_in_ = n_features
        if classes is not None:
            self.classes_ = np.asarray(classes)
        self._check_settings(n_features, classes)

    def _check_settings(self, n_features: int, classes: np.ndarray | None) -> None:
        """Fail (or raise for) the candidates whose settings scikit-learn refuses.

        An adapter may set a model up without the public first ``partial_fit``,
        which is where scikit-learn checks parameters; a probe of that call on
        an all-zero batch runs those checks before any data is read.
        """
        errors = {}
        for index, candidate in enumerate(self.candidates):
            error = _probe(candidate, n_features, classes)
            if error is not None:
                if self.error_score == "raise":
                    raise ValueError(f"candidate {index} ({candidate!r}): {error}") from error
                errors[index] = error
        if errors and len(errors) == len(self.candidates):
            index, error = next(iter(errors.items()))
            raise ValueError(
                f"every candidate has invalid settings; candidate {index} ({self.candidates[index]!r}): {error}"
            ) from error
        for index, error in errors.items():
            self._fail(index, error)

    def _train_block(self, X: np.ndarray, y: np.ndarray) -> None:
        live = np.flatnonzero(~self.failed_)
        if self.progressive:
            self._score_block(live, X, y)
        errors = {}
        for index in live:
            try:
                self._train_one(index, X, y)
            except ValueError as exc:
                if self.error_score == "raise":
                    raise ValueError(f"candidate {index} ({self.candidates[index]!r}): {exc}") from exc
                errors[index] = exc
        if errors and len(errors) == len(live):
            index, exc = next(iter(errors.items()))
            raise ValueError(
                f"every candidate still training failed on this block; candidate {index} "
                f"({self.candidates[index]!r}): {exc}"
            ) from exc
        for index, exc in errors.items():
            self._fail(index, exc)

    def _train_one(self, index: int, X: np.ndarray, y: np.ndarray) -> None:
        adapter, estimator = self._adapters[index], self.estimators_[index]
        adapter.partial_fit(estimator, X, y)
        if not _all_finite(adapter.get_params(estimator)):
            raise ValueError("training left non-finite parameters")

    def _score_block(self, live: np.ndarray, X: np.ndarray, y: np.ndarray) -> None:
        scorer = as_scorer(self.scoring, self.candidates[0])
        for index in live:
            score = apply_scorer(scorer, self.scoring, index, self.estimators_[index], X, y)
            self.score_sum_[index] += score * len(y)
            self.score_weight_[index] += len(y)

    def _fail(self, index: int, exc: Exception) -> None:
        logger.warning("candidate %d (%r) failed and stops training: %s", index, self.candidates[index], exc)
        self.failed_[index] = True
        self.errors_[int(index)] = str(exc)

    def _get_flat_params(self) -> Params:
        params: Params = {}
        for index, (adapter, estimator) in enumerate(zip(self._adapters, self.estimators_)):
            inner = adapter.get_params(estimator)
            if self.failed_[index]:  # finite, so the coordinator keeps this worker's update
                inner = {name: np.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0) for name, value in inner.items()}
            params.update(_prefixed(index, inner))
        params["failed_"] = self.failed_.astype(np.float64)
        params["score_sum_"] = self.score_sum_.copy()
        params["score_weight_"] = self.score_weight_.copy()
        return params

    def _set_flat_params(self, params: Params) -> None:
        parts, own = split_params(params, len(self.candidates))
        for adapter, estimator, part in zip(self._adapters, self.estimators_, parts):
            adapter.set_params(estimator, part)
        self.failed_ = np.asarray(own["failed_"]) > 0
        self.score_sum_ = np.array(own["score_sum_"], dtype=np.float64)
        self.score_weight_ = np.array(own["score_weight_"], dtype=np.float64)


def _probe(candidate: BaseEstimator, n_features: int, classes: np.ndarray | None) -> ValueError | None:
    """The ``ValueError`` a first public ``partial_fit`` of ``candidate`` raises, if any.

    Classifiers get one all-zero row per class, regressors one row with
    target 1; other estimators (clusterers) are left to their adapter, which
    sets them up with a public ``partial_fit`` already.
    """
    kind = get_tags(candidate).estimator_type
    if kind not in ("classifier", "regressor"):
        return None
    probe = fresh_copy(candidate)
    try:
        if kind == "classifier":
            probe.partial_fit(np.zeros((len(classes), n_features)), np.asarray(classes), classes=classes)
        else:
            probe.partial_fit(np.zeros((1, n_features)), np.ones(1))
    except ValueError as exc:
        return exc
    return None


def _prefixed(index: int, params: Mapping[str, np.ndarray]) -> Params:
    return {f"c{index}{SEPARATOR}{name}": value for name, value in params.items()}


def split_params(params: Mapping[str, np.ndarray], n_candidates: int) -> tuple[list[Params], Params]:
    """Split flat candidate-set parameters into one dict per candidate and the set's own.

    Examples
    --------
    >>> import numpy as np
    >>> parts, own = split_params({"c0/w": np.zeros(1), "c1/w": np.ones(1), "failed_": np.zeros(2)}, 2)
    >>> [part["w"].tolist() for part in parts], sorted(own)
    ([[0.0], [1.0]], ['failed_'])
    """
    parts: list[Params] = [{} for _ in range(n_candidates)]
    own: Params = {}
    for key, value in params.items():
        prefix, sep, name = key.partition(SEPARATOR)
        if not sep:
            own[key] = value
            continue
        if not (prefix[:1] == "c" and prefix[1:].isdigit() and int(prefix[1:]) < n_candidates):
            raise ValueError(f"parameter {key!r} names no candidate of {n_candidates}")
        parts[int(prefix[1:])][name] = value
    return parts, own


def _all_finite(params: Mapping[str, np.ndarray]) -> bool:
    return all(np.all(np.isfinite(value)) for value in params.values())


class CandidateSetAdapter(ModelAdapter):
    """Parameters of a :class:`CandidateSet`: every candidate's, prefixed, plus the set's own.

    Candidate ``i``'s parameter ``name`` is ``"c<i>/<name>"``; the set adds
    ``failed_`` (1.0 for a candidate that failed to train) and the
    progressive-validation sums ``score_sum_`` and ``score_weight_``.
    :meth:`aggregate` combines each candidate with its own adapter's
    :meth:`~fedplugin.adapters.ModelAdapter.aggregate` and the user's rule, so
    a rule sees one candidate at a time under its plain names (``coef_``,
    ...), exactly as when that candidate is federated alone; a candidate that
    failed on any worker keeps the previous global parameters and stays failed.
    """

    families = (CandidateSet,)
    family_names = "candidate sets of any of these (fedplugin.search.CandidateSet)"

    def __init__(self) -> None:
        self.inner: list[ModelAdapter] | None = None

    def validate(self, estimator: BaseEstimator) -> None:
        candidates = estimator.candidates
        if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Sequence) or not candidates:
            raise ValueError(f"candidates={candidates!r} is not usable; expected a non-empty list of estimators")
        inner = []
        for index, candidate in enumerate(candidates):
            try:
                inner.append(adapter_for(candidate))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"candidate {index}: {exc}") from exc
        kinds = {get_tags(candidate).estimator_type for candidate in candidates}
        if len(kinds) > 1:
            raise ValueError(f"candidates mix estimator types {sorted(map(str, kinds))}; expected one type")
        _check_error_score(estimator.error_score)
        self.inner = inner

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        if self.inner is None:
            self.validate(estimator)
        model = fresh_copy(estimator)
        model._start(n_features, classes)
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        return model._get_flat_params()

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        model._set_flat_params(params)

    def get_state(self, model: BaseEstimator) -> dict[str, float]:
        """Every candidate's training state (e.g. SGD's ``t_``), prefixed like the parameters."""
        state: dict[str, float] = {}
        for index, (adapter, estimator) in enumerate(zip(model._adapters, model.estimators_)):
            state.update(_prefixed(index, adapter.get_state(estimator)))
        return state

    def set_state(self, model: BaseEstimator, state: dict[str, float]) -> None:
        parts, _ = split_params(state, len(model.estimators_))
        for adapter, estimator, part in zip(model._adapters, model.estimators_, parts):
            adapter.set_state(estimator, part)

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        model._train_block(X, y)

    def aggregate(
        self, rule: Any, updates: list[Params], weights: list[float], reference: Params
    ) -> Params:
        """Each candidate by its own adapter; ``failed_`` by maximum; score sums add up."""
        if self.inner is None:
            raise RuntimeError("CandidateSetAdapter.aggregate needs validate(estimator) first; use adapter_for")
        n = len(self.inner)
        reference_parts, reference_own = split_params(reference, n)
        split = [split_params(update, n) for update in updates]
        failed = np.max([reference_own["failed_"]] + [own["failed_"] for _, own in split], axis=0)
        result: Params = {}
        for index, adapter in enumerate(self.inner):
            if failed[index]:
                combined = reference_parts[index]
            else:
                combined = adapter.aggregate(rule, [parts[index] for parts, _ in split], weights, reference_parts[index])
            result.update(_prefixed(index, combined))
        result["failed_"] = failed
        for name in ("score_sum_", "score_weight_"):
            base = reference_own[name]
            result[name] = base + sum(own[name] - base for _, own in split)
        return result

    def merge(self, new_global: Params, local: Params, snapshot: Params) -> Params:
        """Each candidate by its own adapter's merge; ``failed_`` by maximum; sums add up."""
        n = len(self.inner)
        (g_parts, g_own), (l_parts, l_own), (s_parts, _) = (split_params(p, n) for p in (new_global, local, snapshot))
        failed = np.maximum(g_own["failed_"], l_own["failed_"])
        result: Params = {}
        for index, adapter in enumerate(self.inner):
            merged = g_parts[index] if failed[index] else adapter.merge(g_parts[index], l_parts[index], s_parts[index])
            result.update(_prefixed(index, merged))
        result["failed_"] = failed
        for name in ("score_sum_", "score_weight_"):
            result[name] = new_global[name] + (local[name] - snapshot[name])
        return result


class PerCandidate(Aggregator):
    """Apply ``rule`` to each candidate of a :class:`CandidateSet` under its plain parameter names.

    :class:`CandidateSetAdapter` already hands the rule one candidate at a
    time; this wrapper only makes the coordinator's up-front name check
    (``check_names``, e.g. of a ``{"coef_": Median(), ...}`` mapping) look at
    each candidate's plain names instead of the prefixed ones.

    Parameters
    ----------
    rule : Aggregator, callable or mapping
        Anything :func:`~fedplugin.aggregation.as_aggregator` accepts.

    Examples
    --------
    >>> from fedplugin.aggregation import Mean, Median
    >>> rule = PerCandidate({"coef_": Median(), "intercept_": Mean()})
    >>> rule.check_names(["c0/coef_", "c0/intercept_", "c1/coef_", "c1/intercept_", "failed_"])
    >>> rule.check_names(["c0/coefs_0", "c0/intercepts_0"])
    Traceback (most recent call last):
    ...
    ValueError: candidate 0: per-parameter aggregator does not match the model: ...
    """

    def __init__(self, rule: Any) -> None:
        self.rule = as_aggregator(rule)

    def __call__(self, updates: Sequence[Params], weights: Sequence[float]) -> Params:
        return self.rule(updates, weights)

    def check_names(self, names: Sequence[str]) -> None:
        check = getattr(self.rule, "check_names", None)
        if check is None:
            return
        by_candidate: dict[str, list[str]] = {}
        for key in names:
            prefix, sep, name = key.partition(SEPARATOR)
            if sep:
                by_candidate.setdefault(prefix, []).append(name)
        for prefix, plain in by_candidate.items():
            try:
                check(plain)
            except ValueError as exc:
                raise ValueError(f"candidate {prefix[1:]}: {exc}") from exc


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


def _check_positive_int(value: Any, label: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{label}={value!r} must be an int >= 1")


def _in_memory(data: Any) -> Any:
    """``data`` as a numpy array (dask collections are computed, pandas converted)."""
    if hasattr(data, "__dask_graph__"):
        data = data.compute()
    if hasattr(data, "to_numpy"):
        data = data.to_numpy()
    return np.asarray(data)


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


class FederatedSearch:
    """Grid search that trains every candidate at once, federatedly, reading each block once.

    Every worker of the cluster holds all the candidates of ``param_grid`` and
    updates each of them from every block it trains; each synchronization
    round combines every candidate across workers (see
    :class:`CandidateSetAdapter`). After training, the candidates are scored
    and the best one is kept as a plain fitted scikit-learn estimator.

    Unlike ``GridSearchCV`` there are no folds and no refit: each candidate
    is trained once, on all of ``X``, and scored on the held-out ``X_val``,
    ``y_val`` given to :meth:`fit`; without one, on progressive validation
    (each block scores every candidate before the candidate trains on it;
    with ``epochs > 1`` the later epochs score blocks the candidates have
    already seen).

    Parameters
    ----------
    client : distributed.Client
        Client of the cluster to train on.
    estimator : scikit-learn estimator with ``partial_fit``
        The estimator whose settings are searched, of a family fedplugin
        supports (see :mod:`fedplugin.adapters`). For the deprecated
        ``PassiveAggressiveClassifier`` use
        ``SGDClassifier(loss="hinge", penalty=None)`` with
        :func:`passive_aggressive_grid`.
    param_grid : dict or list of dicts
        Parameter names to lists of values, as for ``GridSearchCV``.
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
    candidate_params : list of dict
        The parameter settings of the grid, in order.
    candidates : list of estimators
        One unfitted estimator per setting.
    best_index_ : int
        Index of the best candidate (the first of the best if several tie).
    best_params_ : dict
        Its parameter setting.
    best_score_ : float
        Its score.
    best_estimator_ : estimator
        The best candidate, a plain fitted scikit-learn estimator.
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
    ...     client,
    ...     SGDClassifier(loss="hinge", penalty=None),
    ...     passive_aggressive_grid([1e-3, 0.1, 1.0]),
    ... )                                                                # doctest: +SKIP
    >>> search.fit(X_train, y_train, X_val, y_val).best_params_         # doctest: +SKIP
    {'eta0': 0.001, 'learning_rate': 'pa1'}
    >>> search.best_estimator_                                          # doctest: +SKIP
    SGDClassifier(eta0=0.001, learning_rate='pa1', penalty=None)
    """

    def __init__(
        self,
        client: Client,
        estimator: BaseEstimator,
        param_grid: Any,
        *,
        sync: Any = None,
        aggregator: Any = None,
        scoring: Any = None,
        block_size: int = 4096,
        epochs: int = 1,
        name: str | None = None,
        error_score: float | str = np.nan,
        overlap: bool | str = "auto",
    ) -> None:
        if not isinstance(client, Client):
            raise TypeError(f"client={client!r} is not a distributed.Client")
        adapter_for(estimator)
        _check_positive_int(block_size, "block_size")
        _check_positive_int(epochs, "epochs")
        _check_error_score(error_score)
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name={name!r} must be a non-empty string or None")
        self.client = client
        self.estimator = estimator
        self.param_grid = param_grid
        self.sync = sync
        self.aggregator = as_aggregator(WeightedMean() if aggregator is None else aggregator)
        self.scoring = scoring
        self.block_size = block_size
        self.epochs = epochs
        self.name = name
        self.error_score = error_score
        self.overlap = overlap
        self.candidate_params = expand_grid(param_grid)
        self.candidates = build_candidates(estimator, self.candidate_params)
        self.scorer_ = as_scorer(scoring, self.candidates[0])
        check_scorer_applies(self.scorer_, scoring, self.candidates)
        self._result: SearchResult | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.estimator!r}, {len(self.candidates)} candidates)"

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
            keep it modest; dask collections are computed). Without them the
            candidates are compared by progressive validation.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If only one of ``X_val``, ``y_val`` is given, if every candidate
            failed, or (``error_score='raise'``) if one failed.
        """
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither (progressive validation)")
        template = CandidateSet(
            self.candidates, scoring=self.scoring, progressive=X_val is None, error_score=self.error_score
        )
        start = time.perf_counter()
        model, history = self._train(template, X, y)
        fit_seconds = time.perf_counter() - start
        failed = np.asarray(model.failed_, dtype=bool)
        if failed.all():
            raise ValueError(
                f"every one of the {len(failed)} candidates failed to train; rerun with "
                "error_score='raise' to see the first error"
            )
        scores, times = self._score(model, failed, X_val, y_val)
        results = cv_results(self.candidate_params, scores, times)
        best = int(np.argmin(results["rank_test_score"]))
        self._result = SearchResult(results, best, copy.deepcopy(model.estimators_[best]), history, fit_seconds)
        self._warn_failures(failed, model.errors_)
        return self

    def _train(self, template: CandidateSet, X: Any, y: Any) -> tuple[CandidateSet, list[Round]]:
        """Federate ``template`` over the cluster; return its global model and the rounds."""
        options = dict(
            sync=self.sync, aggregator=PerCandidate(self.aggregator), block_size=self.block_size, overlap=self.overlap
        )
        with federated_session(self.client, template, name=self.name, check_workers=False, progress=False, **options) as coord:
            coord.fit(X, y, epochs=self.epochs)
            return coord.global_model(), list(coord.history)

    def _score(
        self, model: CandidateSet, failed: np.ndarray, X_val: Any, y_val: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each candidate's score (``error_score`` where it failed) and scoring time."""
        n = len(self.candidates)
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

    def _warn_failures(self, failed: np.ndarray, errors: Mapping[int, str]) -> None:
        if not failed.any():
            return
        reasons = [
            f"{self.candidate_params[index]}: {errors.get(index, 'failed while training on a worker (see its log)')}"
            for index in np.flatnonzero(failed)
        ]
        warnings.warn(
            f"{int(failed.sum())} of {len(failed)} candidates failed to train and scored "
            f"error_score={self.error_score!r} (error_score='raise' raises instead): " + "; ".join(reasons),
            FitFailedWarning,
            stacklevel=3,
        )

    # ---------------------------------------------------------------- results
    def _fitted(self) -> SearchResult:
        if self._result is None:
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
        """Predict with the best candidate."""
        return self.best_estimator_.predict(X)

    def score(self, X: Any, y: Any) -> float:
        """Score the best candidate on ``X``, ``y`` with the search's ``scoring``."""
        return apply_scorer(self.scorer_, self.scoring, self.best_index_, self.best_estimator_, _in_memory(X), np.ravel(_in_memory(y)))


# Workers unpickle a CandidateSet by importing this module, which registers its adapter there too.
if CandidateSetAdapter not in ADAPTERS:
    ADAPTERS.append(CandidateSetAdapter)


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
