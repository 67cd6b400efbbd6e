"""Multi-layer perceptrons: their weights and biases."""

from __future__ import annotations


import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils import check_random_state
from .base import ModelAdapter, Params, _check_names, _probe_batch, fresh_copy


class MLPAdapter(ModelAdapter):
    """Multi-layer perceptrons: one array per layer, ``coefs_<i>`` and ``intercepts_<i>``.

    An initial model holds the estimator's own random initial weights (Glorot
    and Bengio), drawn from its ``random_state`` as its first ``partial_fit``
    draws them; the coordinator broadcasts them, so every worker starts from
    the same weights.

    Each worker keeps its own optimizer across rounds (Adam's moments and
    step count, SGD's velocities and adaptive learning rate): :meth:`set_params`
    swaps the weights only, and the optimizer updates whatever weight arrays
    the model holds at each call. Resetting it at every round restarts Adam's
    bias correction, whose first steps move every weight by the full learning
    rate: on Friedman #1 (2 workers, 4 blocks a round, 10 epochs) R² fell from
    0.92 to 0.45.

    References
    ----------
    X. Glorot and Y. Bengio, "Understanding the difficulty of training deep
    feedforward neural networks", AISTATS 2010.
    """

    families = (MLPClassifier, MLPRegressor)
    family_names = "multi-layer perceptrons (MLPClassifier, MLPRegressor) with solver='adam' or 'sgd'"

    def validate(self, estimator: BaseEstimator) -> None:
        if estimator.solver not in ("adam", "sgd"):
            # MLPClassifier hides partial_fit for lbfgs; MLPRegressor does not.
            raise ValueError(
                f"solver={estimator.solver!r} is not supported: it has no partial_fit; "
                "expected solver='adam' or solver='sgd'."
            )
        if estimator.early_stopping:
            raise ValueError(
                "early_stopping=True is not supported: partial_fit refuses it; expected early_stopping=False."
            )

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        model = fresh_copy(estimator)
        X, y = _probe_batch(model, n_features, classes)
        # The public first partial_fit sets the label binarizer, output
        # activation, layer count and feature count ...
        if is_classifier(model):
            model.partial_fit(X, y, classes=classes)
        else:
            model.partial_fit(X, y)
        # ... and takes one optimizer step on the probe. Draw the initial
        # weights again from a fresh generator, as that first call drew them,
        # and drop the optimizer so that the next partial_fit starts a new one.
        model._random_state = check_random_state(model.random_state)
        layer_units = [n_features, *np.atleast_1d(model.hidden_layer_sizes).tolist(), model.n_outputs_]
        model._initialize(np.empty((0, model.n_outputs_)), layer_units, np.float64)
        del model._optimizer, model.loss_
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        params = {f"coefs_{i}": np.array(c) for i, c in enumerate(model.coefs_)}
        params.update({f"intercepts_{i}": np.array(b) for i, b in enumerate(model.intercepts_)})
        return params

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        n = len(model.coefs_)
        names = [f"{kind}_{i}" for kind in ("coefs", "intercepts") for i in range(n)]
        _check_names(params, names, f"{n + 1}-layer MLP")
        # The optimizer updates these arrays in place: give it float64 copies.
        model.coefs_ = [np.array(params[f"coefs_{i}"], dtype=np.float64) for i in range(n)]
        model.intercepts_ = [np.array(params[f"intercepts_{i}"], dtype=np.float64) for i in range(n)]
