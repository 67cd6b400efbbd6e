"""Stateless transformers on their own: nothing to learn, nothing to combine.

``HashingVectorizer`` has a ``partial_fit`` that learns nothing (it exists so
that out-of-core code can treat it like any transformer). Federated alone, its
global model is the vectorizer as configured: every worker's is the same, and
a round combines no parameters. It is useful mostly as the first step of a
:class:`~sklearn.pipeline.Pipeline` (see
:class:`~fedplugin.adapters.PipelineAdapter`).

Examples
--------
>>> from sklearn.feature_extraction.text import HashingVectorizer
>>> adapter = StatelessAdapter()
>>> model = adapter.initialize(HashingVectorizer(n_features=8), n_features=1, classes=None)
>>> adapter.get_params(model), model.transform(["federated learning"]).shape
({}, (1, 8))
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import HashingVectorizer

from .base import ModelAdapter, Params, fresh_copy


class StatelessAdapter(ModelAdapter):
    """Transformers whose ``partial_fit`` learns nothing: no parameters."""

    families = (HashingVectorizer,)
    family_names = "HashingVectorizer (stateless: nothing to combine)"
    exact_aggregation = True

    def check_settings(self, estimator: BaseEstimator) -> None:
        fresh_copy(estimator).partial_fit(["a text"])  # scikit-learn's parameter validation

    def initialize(self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None) -> BaseEstimator:
        return fresh_copy(estimator)

    def get_params(self, model: BaseEstimator) -> Params:
        return {}

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        if params:
            raise ValueError(f"parameters {sorted(params)} do not fit a {type(model).__name__}, which has none")

    def aggregate(self, rule: Any, updates: list[Params], weights: list[float], reference: Params) -> Params:
        return {}

    def partial_fit(self, model: BaseEstimator, X: Any, y: Any) -> None:
        model.partial_fit(X)
