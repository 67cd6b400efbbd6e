"""Feature scalers, combined exactly from their statistics (issue 11).

``StandardScaler`` keeps a count, means and variances, pooled exactly with the
pairwise formulas of Chan, Golub and LeVeque (as ``GaussianNB``'s per-class
moments are); ``MinMaxScaler`` and ``MaxAbsScaler`` keep a count and
per-feature extremes, combined by ``min`` and ``max``. Whatever the rule, the
federated scaler equals one fit on all the data in one process (to
floating-point rounding), and its global model is a fitted scaler: use
``coord.global_model().transform(X)``. Scalers learn no targets: ``fit(X)``
needs no ``y``.

Examples
--------
>>> import numpy as np
>>> from sklearn.preprocessing import StandardScaler
>>> adapter = StandardScalerAdapter()
>>> start = {"n_samples_seen_": np.zeros(1), "mean_": np.zeros(2), "var_": np.zeros(2)}
>>> a = StandardScaler().partial_fit(np.array([[0.0, 1.0], [2.0, 3.0]]))
>>> b = StandardScaler().partial_fit(np.array([[4.0, 5.0]]))
>>> pooled = adapter.aggregate(None, [adapter.get_params(a), adapter.get_params(b)], [2, 1], start)
>>> pooled["mean_"].tolist(), pooled["var_"].round(4).tolist()
([2.0, 3.0], [2.6667, 2.6667])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

from .base import ModelAdapter, Params, _check_names, fresh_copy
from .naive_bayes import _pooled, _without


class _ScalerAdapter(ModelAdapter):
    """Scalers: an initial model has seen no data; the user's rule is ignored."""

    exact_aggregation = True

    def initialize(self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None) -> BaseEstimator:
        model = fresh_copy(estimator)
        model.partial_fit(np.zeros((1, n_features)))  # sets n_features_in_ and checks the settings
        self.set_params(model, self.empty(n_features))
        return model

    def empty(self, n_features: int) -> Params:
        """The statistics of no data."""
        raise NotImplementedError

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        if np.isnan(X.data if sp.issparse(X) else X).any():  # scikit-learn would keep a count per feature, which these statistics do not
            raise ValueError(f"X holds NaN; a federated {type(model).__name__} expects no missing values (impute them first)")
        model.partial_fit(X)


class StandardScalerAdapter(_ScalerAdapter):
    """``StandardScaler``: count, means and variances, pooled exactly."""

    families = (StandardScaler,)
    family_names = "StandardScaler (with_std=True)"

    def validate(self, estimator: BaseEstimator) -> None:
        if not estimator.with_std:
            raise ValueError(
                "StandardScaler(with_std=False) is not supported: it keeps no variances to pool; "
                "expected with_std=True (with_mean=False is fine)"
            )

    def empty(self, n_features: int) -> Params:
        return {"n_samples_seen_": np.zeros(1), "mean_": np.zeros(n_features), "var_": np.zeros(n_features)}

    def get_params(self, model: BaseEstimator) -> Params:
        return {
            "n_samples_seen_": np.atleast_1d(np.asarray(model.n_samples_seen_, dtype=np.float64))[:1],
            "mean_": np.array(model.mean_, dtype=np.float64),
            "var_": np.array(model.var_, dtype=np.float64),
        }

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        from sklearn.preprocessing._data import _handle_zeros_in_scale

        _check_names(params, ["n_samples_seen_", "mean_", "var_"], "StandardScaler")
        model.n_samples_seen_ = np.int64(round(float(params["n_samples_seen_"][0])))
        model.mean_ = np.array(params["mean_"], dtype=np.float64)
        model.var_ = np.maximum(np.array(params["var_"], dtype=np.float64), 0.0)
        model.scale_ = _handle_zeros_in_scale(np.sqrt(model.var_), copy=False)

    def aggregate(self, rule: Any, updates: list[Params], weights: list[float], reference: Params) -> Params:
        """Moments of the reference's data plus every worker's new data; ``rule`` is ignored."""
        base = _moments(reference)
        parts = [base] + [_without(_moments(update), base) for update in updates]
        return _params(*_pooled(*(np.stack(column) for column in zip(*parts))))

    def merge(self, new_global: Params, local: Params, snapshot: Params) -> Params:
        fresh = _without(_moments(local), _moments(snapshot))
        return _params(*_pooled(*(np.stack(column) for column in zip(_moments(new_global), fresh))))


def _moments(params: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(count, mean, sum of squared deviations)`` as one group (a leading axis of 1)."""
    count = np.asarray(params["n_samples_seen_"], dtype=np.float64)[:1]
    return count, np.asarray(params["mean_"])[None, :], count[:, None] * np.asarray(params["var_"])[None, :]


def _params(count: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> Params:
    """Scaler parameters from the pooled moments of the one group."""
    count, mean, m2 = np.atleast_1d(count)[:1], np.reshape(mean, -1), np.reshape(m2, -1)
    variance = m2 / count[0] if count[0] > 0 else np.zeros_like(m2)
    return {"n_samples_seen_": count, "mean_": mean, "var_": np.maximum(variance, 0.0)}


class _ExtremesAdapter(_ScalerAdapter):
    """Scalers that keep a count and per-feature extremes: counts add, extremes take ``min``/``max``."""

    #: ``{parameter: numpy reduction}`` of the extremes.
    extremes: dict[str, Any] = {}

    def aggregate(self, rule: Any, updates: list[Params], weights: list[float], reference: Params) -> Params:
        """Counts: reference plus every worker's new samples; extremes over everything; ``rule`` is ignored."""
        count = reference["n_samples_seen_"] + sum(u["n_samples_seen_"] - reference["n_samples_seen_"] for u in updates)
        combined = {name: reduce(np.stack([reference[name]] + [u[name] for u in updates]), axis=0)
                    for name, reduce in self.extremes.items()}
        return {"n_samples_seen_": count, **combined}

    def merge(self, new_global: Params, local: Params, snapshot: Params) -> Params:
        count = new_global["n_samples_seen_"] + (local["n_samples_seen_"] - snapshot["n_samples_seen_"])
        combined = {name: reduce(np.stack([new_global[name], local[name]]), axis=0) for name, reduce in self.extremes.items()}
        return {"n_samples_seen_": count, **combined}

    def get_params(self, model: BaseEstimator) -> Params:
        params = {name: np.array(getattr(model, name), dtype=np.float64) for name in self.extremes}
        return {"n_samples_seen_": np.array([float(model.n_samples_seen_)]), **params}

    def _set_common(self, model: BaseEstimator, params: Params) -> None:
        _check_names(params, ["n_samples_seen_", *self.extremes], type(model).__name__)
        model.n_samples_seen_ = int(round(float(params["n_samples_seen_"][0])))


class MinMaxScalerAdapter(_ExtremesAdapter):
    """``MinMaxScaler``: count, per-feature minimum and maximum."""

    families = (MinMaxScaler,)
    family_names = "MinMaxScaler"
    extremes = {"data_min_": np.min, "data_max_": np.max}

    def empty(self, n_features: int) -> Params:
        return {"n_samples_seen_": np.zeros(1), "data_min_": np.full(n_features, np.inf), "data_max_": np.full(n_features, -np.inf)}

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        from sklearn.preprocessing._data import _handle_zeros_in_scale

        self._set_common(model, params)
        model.data_min_, model.data_max_ = np.array(params["data_min_"]), np.array(params["data_max_"])
        with np.errstate(invalid="ignore"):  # no data yet: inf - inf
            model.data_range_ = model.data_max_ - model.data_min_
        low, high = model.feature_range
        model.scale_ = (high - low) / _handle_zeros_in_scale(model.data_range_, copy=True)
        model.min_ = low - model.data_min_ * model.scale_


class MaxAbsScalerAdapter(_ExtremesAdapter):
    """``MaxAbsScaler``: count and per-feature largest absolute value."""

    families = (MaxAbsScaler,)
    family_names = "MaxAbsScaler"
    extremes = {"max_abs_": np.max}

    def empty(self, n_features: int) -> Params:
        return {"n_samples_seen_": np.zeros(1), "max_abs_": np.zeros(n_features)}

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        from sklearn.preprocessing._data import _handle_zeros_in_scale

        self._set_common(model, params)
        model.max_abs_ = np.array(params["max_abs_"], dtype=np.float64)
        model.scale_ = _handle_zeros_in_scale(model.max_abs_, copy=True)


__all__ = ["MaxAbsScalerAdapter", "MinMaxScalerAdapter", "StandardScalerAdapter"]
