"""The candidate set: several estimators trained together, each block read once.

:class:`CandidateSet` is the composite estimator :class:`~fedplugin.FederatedSearch`
federates; the scoring helpers score its candidates.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.metrics import check_scoring, get_scorer
from sklearn.utils import get_tags
from sklearn.utils.validation import validate_data

from .adapters import Params, adapter_for
from .adapters.composite import SEPARATOR, prefixed as _prefixed, split_params  # noqa: F401 (re-exported)
from .rounds import is_finite

logger = logging.getLogger("fedplugin")

#: ``learning_rate`` of the ``SGDClassifier`` equivalent to each ``PassiveAggressiveClassifier`` loss.
PA_LEARNING_RATES = {"hinge": "pa1", "squared_hinge": "pa2"}

Scorer = Callable[[BaseEstimator, Any, Any], float]


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
    :class:`~fedplugin.candidate_adapter.CandidateSetAdapter`, exposes the candidates' parameters as one
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
            from .candidate_adapter import CandidateSetAdapter  # it imports this module

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
        self._check_settings()

    def _check_settings(self) -> None:
        """Fail (or raise for) the candidates whose settings scikit-learn refuses.

        An adapter may set a model up without the public first ``partial_fit``,
        which is where scikit-learn checks parameters; a probe of that call on
        an all-zero batch runs those checks before any data is read.
        """
        errors = {}
        for index, candidate in enumerate(self.candidates):
            error = _probe(candidate)
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
        if not is_finite(adapter.get_params(estimator)):
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


def _probe(candidate: BaseEstimator) -> ValueError | None:
    """The ``ValueError`` that checking ``candidate``'s settings raises, if any.

    Its adapter makes the checks a first public ``partial_fit`` would make
    (:meth:`~fedplugin.adapters.ModelAdapter.check_settings`), on a tiny
    all-zero batch.
    """
    try:
        adapter_for(candidate).check_settings(candidate)
    except ValueError as exc:
        return exc
    return None
