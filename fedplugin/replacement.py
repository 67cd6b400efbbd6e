"""A model given to :meth:`~fedplugin.Coordinator.set_global_model`, checked before it is published.

The model becomes the global model every worker loads and trains, so it must
be what the plugin would have trained itself: its estimator class (a
Pipeline's steps), fitted, with the features, classes, outputs and parameter
shapes of the plugin's global model. :func:`replacement` refuses anything
else, before the store or a worker sees it.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import LogisticRegression, SGDClassifier
>>> from fedplugin.adapters import adapter_for
>>> X, y = np.eye(3), np.array([0, 1, 1])
>>> plugin = SGDClassifier()
>>> record = replacement(SGDClassifier().fit(X, y), plugin, adapter_for(plugin), np.array([0, 1]), None)
>>> record.n_features, record.classes.tolist(), record.params["coef_"].shape
(3, [0, 1], (1, 3))
>>> replacement(LogisticRegression().fit(X, y), plugin, adapter_for(plugin), None, None)
Traceback (most recent call last):
...
TypeError: model is of class LogisticRegression; expected a fitted SGDClassifier, the plugin's estimator
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .outputs import as_plain, same_classes
from .rows import takes_items
from .store import GlobalModel
from .wording import count


def replacement(
    model: Any, estimator: BaseEstimator, adapter: Any, classes: Any, current: GlobalModel | None, name: str = "name"
) -> GlobalModel:
    """``model`` as a global model record (version 0), or an error if the plugin cannot adopt it.

    Parameters
    ----------
    model : estimator
        The fitted model to make the global model.
    estimator, adapter : estimator, ModelAdapter
        The plugin's estimator and its adapter.
    classes : ndarray, list of ndarray or None
        The classes the global model must have (``None``: any).
    current : GlobalModel or None
        The current global model (without its parameters), if there is one:
        the model must have its features and outputs.
    name : str
        The plugin's name, for the messages.

    Raises
    ------
    TypeError
        If ``model`` is not the plugin's estimator class (or a Pipeline of other steps).
    sklearn.exceptions.NotFittedError
        If ``model`` is not fitted.
    ValueError
        If its features, classes, outputs or parameter shapes are not the plugin's.
    """
    _check_class(model, estimator)
    check_is_fitted(model, msg=f"model, a %(name)s, is not fitted; expected a fitted {type(estimator).__name__}")
    params = adapter.get_params(model)
    n_features = 1 if takes_items(model) else int(getattr(model, "n_features_in_", 0)) or int(next(iter(params.values())).shape[-1])
    n_outputs = len(model.estimators_) if adapter.multi_output else None
    found = getattr(model, "classes_", None)
    if found is not None:  # a multi-output classifier's: one array per output
        found = [np.asarray(c) for c in found] if n_outputs else np.asarray(found)
    if current is not None and n_features != current.n_features:
        raise ValueError(
            f"model has {count(n_features, 'feature')}; expected {current.n_features}, as the global model "
            f"of plugin {name!r} (to start a model of other features, call fedplugin.forget(client, {name!r}) first)"
        )
    if classes is not None and not same_classes(found, classes):
        raise ValueError(f"model has classes {as_plain(found)}; expected classes {as_plain(classes)}, those of plugin {name!r}")
    if current is not None and n_outputs != current.n_outputs:
        raise ValueError(f"model has {n_outputs} outputs; expected {current.n_outputs}, as the global model of plugin {name!r}")
    record = GlobalModel(0, params, n_features, found, n_outputs=n_outputs)
    _check_shapes(params, adapter.get_params(adapter.initialize_like(estimator, record)), adapter.fixed_shapes)
    return record


def _check_class(model: Any, estimator: BaseEstimator) -> None:
    """Refuse a model of another class, or whose inner estimators (a Pipeline's steps) are of other classes."""
    wanted = type(estimator).__name__
    if type(model) is not type(estimator):
        raise TypeError(f"model is of class {type(model).__name__}; expected a fitted {wanted}, the plugin's estimator")
    inner, expected = _inner_classes(model), _inner_classes(estimator)
    if inner != expected:
        raise TypeError(f"model is a {wanted} of {inner}; expected one of {expected}, as the plugin's estimator")


def _inner_classes(estimator: BaseEstimator) -> dict[str, str]:
    """The class of every estimator inside ``estimator`` (a Pipeline's steps), by parameter name."""
    return {key: type(value).__name__ for key, value in estimator.get_params(deep=True).items() if isinstance(value, BaseEstimator)}


def _check_shapes(params: dict[str, Any], expected: dict[str, Any], fixed: bool) -> None:
    """Refuse parameters of other names or shapes than ``expected`` (only trailing dimensions if not ``fixed``)."""
    shape = np.shape if fixed else (lambda value: np.shape(value)[1:])
    shapes = {name: shape(value) for name, value in params.items()}
    wanted = {name: shape(value) for name, value in expected.items()}
    if shapes != wanted:
        raise ValueError(f"model has the parameter shapes {shapes}; expected {wanted}, as the plugin's global model")


__all__ = ["replacement"]
