"""Linear models trained by SGD: ``coef_`` and ``intercept_`` (``offset_`` for the one-class SVM)."""

from __future__ import annotations


import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.linear_model import SGDOneClassSVM
from sklearn.linear_model._stochastic_gradient import BaseSGDClassifier, BaseSGDRegressor

from .base import ModelAdapter, Params, _check_names, fresh_copy


class LinearSGDAdapter(ModelAdapter):
    """SGD-trained linear models: ``coef_`` and ``intercept_``.

    Covers ``SGDClassifier``, ``SGDRegressor``, ``Perceptron`` and the
    passive-aggressive estimators, binary and multi-class. An initial model has
    zero weights, exactly as scikit-learn's own first ``partial_fit`` starts.
    """

    families = (BaseSGDClassifier, BaseSGDRegressor)
    family_names = (
        "linear models trained by SGD (SGDClassifier, SGDRegressor, Perceptron, "
        "PassiveAggressiveClassifier, PassiveAggressiveRegressor)"
    )

    def validate(self, estimator: BaseEstimator) -> None:
        average = getattr(estimator, "average", False)
        if average:
            raise ValueError(
                f"average={average!r} is not supported: averaged SGD keeps a second, "
                "private set of weights that cannot be combined across workers; "
                "expected average=False."
            )
        if getattr(estimator, "early_stopping", False):
            raise ValueError(
                "early_stopping=True is not supported: partial_fit ignores it; "
                "expected early_stopping=False."
            )

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        model = fresh_copy(estimator)
        if is_classifier(model):
            if classes is None:
                raise ValueError("a classifier needs its classes before training")
            n_rows = 1 if len(classes) == 2 else len(classes)
            model.classes_ = np.asarray(classes)
            model.coef_ = np.zeros((n_rows, n_features), order="C")
            model.intercept_ = np.zeros(n_rows)
        else:
            model.coef_ = np.zeros(n_features)
            model.intercept_ = np.zeros(1)
        model.n_features_in_ = n_features
        # scikit-learn's first partial_fit would start its step counter at 1.
        model.t_ = 1.0
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        return {"coef_": np.array(model.coef_), "intercept_": np.array(model.intercept_)}

    def get_state(self, model: BaseEstimator) -> dict[str, float]:
        return {"t_": float(model.t_)}

    def set_state(self, model: BaseEstimator, state: dict[str, float]) -> None:
        if "t_" in state:
            model.t_ = state["t_"]

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        # SGD updates these arrays in place, so they must be C-contiguous copies.
        model.coef_ = np.ascontiguousarray(params["coef_"], dtype=np.float64).copy()
        model.intercept_ = np.ascontiguousarray(params["intercept_"], dtype=np.float64).copy()


class OneClassSGDAdapter(LinearSGDAdapter):
    """``SGDOneClassSVM``: ``coef_`` and ``offset_``, combined by the user's rule.

    The same SGD as the linear models, so the same settings are refused
    (``average``) and the step counter ``t_`` is kept as training state. An
    initial model has zero weights and offset, as scikit-learn's first
    ``partial_fit`` starts. It learns no targets: ``coord.fit(X)``.

    Examples
    --------
    >>> from sklearn.linear_model import SGDOneClassSVM
    >>> adapter = OneClassSGDAdapter()
    >>> model = adapter.initialize(SGDOneClassSVM(), n_features=2, classes=None)
    >>> adapter.get_params(model)
    {'coef_': array([0., 0.]), 'offset_': array([0.])}
    """

    families = (SGDOneClassSVM,)
    family_names = "SGDOneClassSVM"

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        model = fresh_copy(estimator)
        model.coef_ = np.zeros(n_features)
        model.offset_ = np.zeros(1)
        model.n_features_in_ = n_features
        model.t_ = 1.0
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        return {"coef_": np.array(model.coef_), "offset_": np.array(model.offset_)}

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        _check_names(params, ["coef_", "offset_"], "SGDOneClassSVM")
        model.coef_ = np.ascontiguousarray(params["coef_"], dtype=np.float64).copy()
        model.offset_ = np.ascontiguousarray(params["offset_"], dtype=np.float64).copy()

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        model.partial_fit(X)  # y is the placeholder the coordinator asks for
