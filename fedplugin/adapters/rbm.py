"""Bernoulli restricted Boltzmann machines: weights and biases, combined by the user's rule."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.neural_network import BernoulliRBM
from sklearn.utils import check_random_state

from .base import ModelAdapter, Params, _check_names, fresh_copy

_NAMES = ["components_", "intercept_hidden_", "intercept_visible_"]


class BernoulliRBMAdapter(ModelAdapter):
    """``BernoulliRBM``: ``components_``, ``intercept_hidden_``, ``intercept_visible_``.

    The weights and both biases are combined by the user's rule, as a neural
    network's are. The persistent Gibbs chain ``h_samples_`` is each worker's
    own: it is a sample from the worker's model, not a parameter, and is kept
    across merges (a worker's chain carries on from where it was, under the
    new global weights). The global model's chain is all zeros, as a fresh
    ``BernoulliRBM``'s; ``transform`` and ``score_samples`` do not read it.

    An initial model draws its weights as scikit-learn's first
    ``partial_fit`` does (``normal(0, 0.01)`` from ``random_state``): give an
    int ``random_state`` for a reproducible start. Every ``partial_fit`` call is
    one gradient step on the whole block (``batch_size`` only sets the chain's
    length), so blocks of about ``batch_size`` rows train as scikit-learn's
    ``fit`` does. It learns no targets: ``coord.fit(X)``, with X in [0, 1].

    Examples
    --------
    >>> adapter = BernoulliRBMAdapter()
    >>> model = adapter.initialize(BernoulliRBM(n_components=2, random_state=0), n_features=3, classes=None)
    >>> {name: value.shape for name, value in adapter.get_params(model).items()}
    {'components_': (2, 3), 'intercept_hidden_': (2,), 'intercept_visible_': (3,)}
    """

    families = (BernoulliRBM,)
    family_names = "BernoulliRBM"

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        model = fresh_copy(estimator)
        model.random_state_ = check_random_state(model.random_state)
        weights = model.random_state_.normal(0, 0.01, (model.n_components, n_features))
        model.components_ = np.asarray(weights, order="F")
        model._n_features_out = model.n_components
        model.intercept_hidden_ = np.zeros(model.n_components)
        model.intercept_visible_ = np.zeros(n_features)
        model.h_samples_ = np.zeros((model.batch_size, model.n_components))
        model.n_features_in_ = n_features
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        return {name: np.array(getattr(model, name), dtype=np.float64) for name in _NAMES}

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        # h_samples_ is left alone: the worker's own chain.
        _check_names(params, _NAMES, "BernoulliRBM")
        model.components_ = np.array(params["components_"], dtype=np.float64, order="F")
        model.intercept_hidden_ = np.array(params["intercept_hidden_"], dtype=np.float64)
        model.intercept_visible_ = np.array(params["intercept_visible_"], dtype=np.float64)

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        model.partial_fit(X)  # y is the placeholder the coordinator asks for


__all__ = ["BernoulliRBMAdapter"]
