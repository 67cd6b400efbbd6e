"""scikit-learn meta-estimators, federated through their inner estimator's adapter.

``OneVsRestClassifier`` and ``OneVsOneClassifier`` hold one binary
estimator per class (one in all for two classes) or per pair of classes:
their parameters are those of each binary estimator, prefixed ``"c<i>/"``
(see :mod:`fedplugin.adapters.composite`), combined one binary estimator
at a time by the inner estimator's adapter. ``SelectFromModel`` holds one
inner estimator, whose parameters it keeps under their plain names.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import SGDClassifier
>>> from sklearn.multiclass import OneVsRestClassifier
>>> from fedplugin.adapters import adapter_for
>>> estimator = OneVsRestClassifier(SGDClassifier())
>>> adapter = adapter_for(estimator)
>>> model = adapter.initialize(estimator, n_features=2, classes=np.array([0, 1, 2]))
>>> sorted(adapter.get_params(model))
['c0/coef_', 'c0/intercept_', 'c1/coef_', 'c1/intercept_', 'c2/coef_', 'c2/intercept_']
>>> adapter.exact_aggregation
False
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.feature_selection import SelectFromModel
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier

from .base import ModelAdapter, Params, _probe_batch, fresh_copy
from .composite import InnerAdapterMixin, PerInnerAdapter

#: The classes of every binary problem of a one-vs-rest or one-vs-one classifier.
BINARY = np.array([0, 1])


def inner_adapter(estimator: BaseEstimator, *, classifier: bool = False) -> ModelAdapter:
    """The adapter of ``estimator.estimator``, or the error refusing it, naming ``estimator``.

    Examples
    --------
    >>> from sklearn.linear_model import SGDRegressor
    >>> inner_adapter(OneVsRestClassifier(SGDRegressor()), classifier=True)
    Traceback (most recent call last):
    ...
    TypeError: OneVsRestClassifier(estimator=...): estimator=SGDRegressor is not a classifier; ...
    """
    from . import adapter_for  # the registry imports this module

    label = f"{type(estimator).__name__}(estimator=...)"
    inner = estimator.estimator
    try:
        adapter = adapter_for(inner)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{label}: {exc}") from exc
    if classifier and not is_classifier(inner):
        raise TypeError(
            f"{label}: estimator={type(inner).__name__} is not a classifier; expected a classifier, "
            f"which {type(estimator).__name__}.partial_fit trains with classes=[0, 1]"
        )
    return adapter


class _MulticlassAdapter(PerInnerAdapter):
    """One inner binary classifier per class or per pair, built up front."""

    def validate(self, estimator: BaseEstimator) -> None:
        self.inner = inner_adapter(estimator, classifier=True)

    def check_settings(self, estimator: BaseEstimator) -> None:
        self._inner().check_settings(estimator.estimator)
        super().check_settings(estimator)

    def inner_estimators(self, model: BaseEstimator) -> list[BaseEstimator]:
        return model.estimators_

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        model = fresh_copy(estimator)
        # The public first partial_fit sets classes_, the label binarizer and
        # the number of binary estimators; the inner adapter then starts each
        # of them afresh, as it starts a model federated alone.
        X, y = _probe_batch(model, n_features, classes)
        model.partial_fit(X, y, classes=classes)
        model.estimators_ = [self._inner().initialize(model.estimator, n_features, BINARY) for _ in model.estimators_]
        return model


class OneVsRestAdapter(_MulticlassAdapter):
    """``OneVsRestClassifier``: one binary estimator per class (one for two classes).

    :meth:`partial_fit` does what ``OneVsRestClassifier.partial_fit`` does
    after its first call, each binary estimator trained by the inner adapter
    (one after the other: ``n_jobs`` is not used).
    """

    families = (OneVsRestClassifier,)
    family_names = "one-vs-rest of a supported classifier (OneVsRestClassifier)"

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        columns = model.label_binarizer_.transform(y).toarray().T
        for estimator, column in zip(model.estimators_, columns):
            self._inner().partial_fit(estimator, X, column)


class OneVsOneAdapter(_MulticlassAdapter):
    """``OneVsOneClassifier``: one binary estimator per pair of classes.

    :meth:`partial_fit` does what ``OneVsOneClassifier.partial_fit`` does after
    its first call: each pair's estimator learns the block's rows of its two
    classes (the second is 1), trained by the inner adapter.
    """

    families = (OneVsOneClassifier,)
    family_names = "one-vs-one of a supported classifier (OneVsOneClassifier)"

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        pairs = itertools.combinations(model.classes_, 2)
        for estimator, (first, second) in zip(model.estimators_, pairs):
            rows = (y == first) | (y == second)
            if rows.any():
                target = (y[rows] == second).astype(int)  # 0/1 whatever the labels' type
                self._inner().partial_fit(estimator, X[rows], target)


class SelectFromModelAdapter(InnerAdapterMixin, ModelAdapter):
    """``SelectFromModel``: its inner estimator's parameters, under their plain names.

    Everything is the inner adapter's: parameters, combination, merge,
    training state. The features are selected from the global inner
    estimator (``threshold``, ``max_features``) when the model transforms.
    ``prefit=True`` and a callable ``max_features`` (a function of all of
    ``X``, which no worker sees) are refused.
    """

    families = (SelectFromModel,)
    family_names = "feature selection by a supported estimator (SelectFromModel)"
    def __init__(self) -> None:
        self.inner: ModelAdapter | None = None

    def validate(self, estimator: BaseEstimator) -> None:
        if estimator.prefit:
            raise ValueError("SelectFromModel(prefit=True) is not supported: it trains nothing; expected prefit=False")
        if callable(estimator.max_features):
            raise ValueError(
                f"SelectFromModel(max_features={estimator.max_features!r}) is not supported: a callable "
                "max_features reads all of X, which no worker sees; expected an int or None"
            )
        self.inner = inner_adapter(estimator)

    def estimator_type(self, estimator: BaseEstimator) -> str | None:
        return self._inner().estimator_type(estimator.estimator)

    def check_settings(self, estimator: BaseEstimator) -> None:
        """The inner estimator's checks, then a selection by an initial model (``threshold``, importances)."""
        self._inner().check_settings(estimator.estimator)
        classes = BINARY if is_classifier(estimator.estimator) else None
        try:
            self.initialize(estimator, 2, classes).get_support()
        except ValueError as exc:  # e.g. no coef_ or feature_importances_, a bad threshold
            raise ValueError(f"SelectFromModel(estimator=...): {exc}") from exc

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        model = fresh_copy(estimator)
        # The public first partial_fit checks max_features and sets the inner
        # estimator; the inner adapter then starts it afresh.
        X, y = _probe_batch(model.estimator, n_features, classes)
        model.partial_fit(X, y, **({} if classes is None else {"classes": classes}))
        model.estimator_ = self._inner().initialize(model.estimator, n_features, classes)
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        return self._inner().get_params(model.estimator_)

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        self._inner().set_params(model.estimator_, params)

    def aggregate(self, rule: Any, updates: list[Params], weights: list[float], reference: Params) -> Params:
        return self._inner().aggregate(rule, updates, weights, reference)

    def merge(self, new_global: Params, local: Params, snapshot: Params) -> Params:
        return self._inner().merge(new_global, local, snapshot)

    def get_state(self, model: BaseEstimator) -> dict[str, float]:
        return self._inner().get_state(model.estimator_)

    def set_state(self, model: BaseEstimator, state: dict[str, float]) -> None:
        self._inner().set_state(model.estimator_, state)

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        self._inner().partial_fit(model.estimator_, X, y)
