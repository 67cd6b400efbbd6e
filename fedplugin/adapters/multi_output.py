"""``MultiOutputClassifier`` and ``MultiOutputRegressor``: one inner estimator per output.

Their parameters are those of each output's estimator, prefixed ``"c<i>/"``
(see :mod:`fedplugin.adapters.composite`), combined one output at a time
by the inner estimator's adapter: an exact family stays exact. A block's
column ``i`` of ``y`` trains estimator ``i``, as the meta-estimator's own
``partial_fit`` does (one after the other: ``n_jobs`` is not used).

A classifier's classes are one array per output (``classes=[[0, 1], [0, 1, 2]]``);
a regressor needs its number of outputs, ``n_outputs``.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import SGDRegressor
>>> from sklearn.multioutput import MultiOutputRegressor
>>> from fedplugin.adapters import adapter_for
>>> estimator = MultiOutputRegressor(SGDRegressor())
>>> adapter = adapter_for(estimator)
>>> model = adapter.initialize(estimator, n_features=2, classes=None, n_outputs=2)
>>> sorted(adapter.get_params(model))
['c0/coef_', 'c0/intercept_', 'c1/coef_', 'c1/intercept_']
>>> model.predict(np.zeros((1, 2))).shape
(1, 2)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, is_classifier, is_regressor
from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor

from .._compat import check_estimator_settings
from .base import fresh_copy
from .composite import PerInnerAdapter


class _MultiOutputAdapter(PerInnerAdapter):
    """One inner estimator per column of ``y``."""

    multi_output = True
    #: What the inner estimator must be: ``"classifier"`` or ``"regressor"``.
    inner_kind = ""

    def validate(self, estimator: BaseEstimator) -> None:
        from .meta import inner_adapter  # meta imports the registry

        inner = estimator.estimator
        self.inner = inner_adapter(estimator)
        fits = is_classifier(inner) if self.inner_kind == "classifier" else is_regressor(inner)
        if not fits:
            raise TypeError(
                f"{type(estimator).__name__}(estimator=...): estimator={type(inner).__name__} is not a "
                f"{self.inner_kind}; expected a {self.inner_kind}, trained on each column of y"
            )

    def check_settings(self, estimator: BaseEstimator) -> None:
        # The meta-estimator's own first partial_fit would need a 2-d y; its parameters and
        # the inner estimator's settings are what it checks.
        check_estimator_settings(estimator)
        fresh_copy(estimator)._validate_params()
        self._inner().check_settings(estimator.estimator)

    def inner_estimators(self, model: BaseEstimator) -> list[BaseEstimator]:
        return model.estimators_

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: Any, n_outputs: int | None = None
    ) -> BaseEstimator:
        per_output = self._per_output(classes, n_outputs)
        model = fresh_copy(estimator)
        # What the meta-estimator's first partial_fit sets: one estimator per output,
        # each started by the inner adapter as a model federated alone.
        model.estimators_ = [self._inner().initialize(model.estimator, n_features, c) for c in per_output]
        if hasattr(model.estimators_[0], "n_features_in_"):
            model.n_features_in_ = model.estimators_[0].n_features_in_
        return model

    def _per_output(self, classes: Any, n_outputs: int | None) -> list[Any]:
        raise NotImplementedError

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        # A block's y of one column arrives 1-d (see fedplugin.blocks.load_block).
        for estimator, column in zip(model.estimators_, y.reshape(len(y), -1).T, strict=True):
            self._inner().partial_fit(estimator, X, column)


class MultiOutputClassifierAdapter(_MultiOutputAdapter):
    """``MultiOutputClassifier``: one classifier per output, with that output's classes."""

    families = (MultiOutputClassifier,)
    family_names = "one supported classifier per output (MultiOutputClassifier)"
    inner_kind = "classifier"

    def _per_output(self, classes: Any, n_outputs: int | None) -> list[Any]:
        if not isinstance(classes, list) or (n_outputs is not None and len(classes) != n_outputs):
            raise ValueError(
                f"classes={classes!r} do not fit a MultiOutputClassifier of {n_outputs} outputs; "
                "expected one array of classes per output"
            )
        return classes


class MultiOutputRegressorAdapter(_MultiOutputAdapter):
    """``MultiOutputRegressor``: one regressor per output."""

    families = (MultiOutputRegressor,)
    family_names = "one supported regressor per output (MultiOutputRegressor)"
    inner_kind = "regressor"

    def _per_output(self, classes: Any, n_outputs: int | None) -> list[Any]:
        if classes is not None or n_outputs is None or n_outputs < 1:
            raise ValueError(
                f"classes={classes!r}, n_outputs={n_outputs!r} do not fit a MultiOutputRegressor; "
                "expected classes=None and n_outputs >= 1"
            )
        return [None] * n_outputs
