"""Read and write an estimator family's learned parameters as named arrays.

An adapter is the only place that knows where a scikit-learn estimator keeps its
parameters. The rest of fedplugin moves and combines ``dict[str, numpy.ndarray]``
and never touches estimator internals, so adding a model family means adding one
adapter class here.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import SGDClassifier
>>> adapter = adapter_for(SGDClassifier())
>>> model = adapter.initialize(SGDClassifier(), n_features=3, classes=np.array([0, 1]))
>>> {name: value.shape for name, value in adapter.get_params(model).items()}
{'coef_': (1, 3), 'intercept_': (1,)}
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.linear_model._stochastic_gradient import BaseSGDClassifier, BaseSGDRegressor

Params = dict[str, np.ndarray]


def fresh_copy(estimator: BaseEstimator) -> BaseEstimator:
    """``clone(estimator)`` without repeating a deprecation warning the user already saw.

    scikit-learn 1.8 deprecated the passive-aggressive estimators: constructing
    one warns, and every clone would warn again.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return clone(estimator)


class ModelAdapter:
    """Base class: how to initialise, read and write one estimator family.

    Subclasses set :attr:`families` (the estimator classes they handle) and
    implement :meth:`initialize`, :meth:`get_params` and :meth:`set_params`.
    """

    #: Estimator base classes this adapter handles.
    families: ClassVar[tuple[type, ...]] = ()
    #: Human-readable names of the handled families, used in error messages.
    family_names: ClassVar[str] = ""

    def validate(self, estimator: BaseEstimator) -> None:
        """Raise ``ValueError`` if ``estimator``'s settings cannot be federated."""

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        """Return an unfitted clone of ``estimator`` made ready for ``partial_fit``."""
        raise NotImplementedError

    def get_params(self, model: BaseEstimator) -> Params:
        """Return copies of the learned parameters of ``model``, by attribute name."""
        raise NotImplementedError

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        """Overwrite the learned parameters of ``model`` with ``params``."""
        raise NotImplementedError

    def aggregate(
        self, rule: Any, updates: list[Params], weights: list[float], reference: Params
    ) -> Params:
        """Combine the workers' parameters into the new global parameters.

        The default applies the user's ``rule`` (mean, median, ...). Families
        whose parameters are sufficient statistics (counts) override this to
        combine them exactly, e.g. ``reference + sum(update - reference)``.
        """
        return rule(updates, weights)

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        """Train ``model`` on one block (classes are set by :meth:`initialize`)."""
        model.partial_fit(X, y)


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

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        # SGD updates these arrays in place, so they must be C-contiguous copies.
        model.coef_ = np.ascontiguousarray(params["coef_"], dtype=np.float64).copy()
        model.intercept_ = np.ascontiguousarray(params["intercept_"], dtype=np.float64).copy()


ADAPTERS: list[type[ModelAdapter]] = [LinearSGDAdapter]


def supported_families() -> str:
    """Describe the estimator families fedplugin can federate."""
    return "; ".join(adapter.family_names for adapter in ADAPTERS)


def adapter_for(estimator: Any) -> ModelAdapter:
    """Return the adapter for ``estimator``, or raise a clear error.

    Parameters
    ----------
    estimator : scikit-learn estimator
        An unfitted estimator instance with ``partial_fit``.

    Raises
    ------
    TypeError
        If ``estimator`` is a class, lacks ``partial_fit`` or belongs to no
        supported family.
    ValueError
        If the estimator's settings cannot be federated (see the adapter).
    """
    if isinstance(estimator, type):
        raise TypeError(
            f"estimator={estimator.__name__} is a class; expected an instance such as "
            f"{estimator.__name__}()"
        )
    if not hasattr(estimator, "partial_fit"):
        raise TypeError(
            f"estimator={type(estimator).__name__} has no partial_fit; expected one of: "
            f"{supported_families()}"
        )
    for adapter_cls in ADAPTERS:
        if isinstance(estimator, adapter_cls.families):
            adapter = adapter_cls()
            adapter.validate(estimator)
            return adapter
    raise TypeError(
        f"estimator={type(estimator).__name__} is not supported; expected one of: "
        f"{supported_families()}"
    )


__all__ = [
    "ModelAdapter",
    "LinearSGDAdapter",
    "adapter_for",
    "supported_families",
]
