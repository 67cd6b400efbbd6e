"""The global model on the client: a copy cached per version, predictions, score.

:class:`GlobalModelMixin` gives the :class:`~fedplugin.Coordinator` what
works on the global model. The parameters are fetched from the scheduler's
store once per version; predictions then run in your session and send nothing
to the cluster. Only ``model="local"`` goes to a worker.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from . import store, tasks
from .predicting import apply_dask, is_dask, score_dask
from .store import GlobalModel


class GlobalModelMixin:
    """Predictions and copies of the global model, for a coordinator.

    Needs ``client``, ``name``, ``estimator``, ``adapter``, ``version``,
    ``n_features``, ``_cache``, ``_check_fitted()`` and ``_workers()``.
    """

    def global_model(self) -> BaseEstimator:
        """A copy of the global model: a plain fitted scikit-learn estimator."""
        return copy.deepcopy(self._cached_global())

    def predict(self, X: Any, *, model: str = "global") -> Any:
        """Label ``X``: numpy in, numpy out; dask in, dask out.

        Parameters
        ----------
        X : array-like or dask array / dataframe
            Labelled on the client with the global model (fetched once per
            version), or block by block where a dask collection lives.
        model : {"global", "local"}
            ``"local"`` labels a numpy batch on one worker with its own local model.
        """
        return self._apply("predict", X, model)

    def predict_proba(self, X: Any, *, model: str = "global") -> Any:
        """Class probabilities, where the estimator has them (see :meth:`predict`)."""
        return self._apply("predict_proba", X, model)

    def decision_function(self, X: Any, *, model: str = "global") -> Any:
        """Decision function, where the estimator has it (see :meth:`predict`)."""
        return self._apply("decision_function", X, model)

    def score(self, X: Any, y: Any) -> float:
        """The global model's ``score``: accuracy (classifiers), R² (regressors), or the
        estimator's own score (e.g. negative inertia for k-means)."""
        model = self._cached_global()
        if is_dask(X):
            return score_dask(model, X, y)
        return float(model.score(np.asarray(X), np.asarray(y)))

    def _build(self, model: GlobalModel) -> BaseEstimator:
        estimator = self.adapter.initialize(self.estimator, model.n_features, model.classes)
        self.adapter.set_params(estimator, copy.deepcopy(model.params))
        return estimator

    def _cached_global(self) -> BaseEstimator:
        """The global model as an estimator, fetched from the store once per version."""
        self._check_fitted()
        if self._cache is None or self._cache[0] != self.version:
            self._cache = (self.version, self._build(store.fetch(self.client, self.name)))
        return self._cache[1]

    def _apply(self, method: str, X: Any, model: str) -> Any:
        if model not in ("global", "local"):
            raise ValueError(f"model={model!r} is not supported; expected 'global' or 'local'")
        self._check_fitted()
        if not hasattr(self.estimator, method):
            raise AttributeError(f"{type(self.estimator).__name__} has no {method}")
        if is_dask(X):
            if model == "local":
                raise ValueError("model='local' labels numpy batches on one worker; pass a numpy array")
            return apply_dask(self._cached_global(), method, X)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X has shape {X.shape}; expected (n_samples, {self.n_features})")
        if model == "global":
            return getattr(self._cached_global(), method)(X)
        worker = self._workers()[0]
        return self.client.run(tasks.predict_local, self.name, X, method, workers=[worker])[worker]
