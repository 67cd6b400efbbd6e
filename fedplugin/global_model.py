"""The global model on the client: publishing it, a copy cached per version, predictions.

:class:`GlobalModelMixin` gives the :class:`~fedplugin.Coordinator` what
works on the global model. The parameters are fetched from the scheduler's
store once per version; predictions then run in your session and send nothing
to the cluster. Only ``model="local"`` goes to a worker.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from typing import Any

import numpy as np
from dask import is_dask_collection
from sklearn.base import BaseEstimator

from . import store, tasks
from .data_init import Draw, initial_model
from .deploy import resolve_plugin
from .open_rounds import OpenRound
from .outputs import n_outputs_of
from .exchange import close_round
from .feature_names import check_feature_names, feature_names as names_of, with_feature_names
from .predicting import apply_dask, score_dask
from .replacement import replacement
from .rows import as_float, as_rows, is_items, n_columns
from .store import GlobalModel
from .user_warning import warn_user


class GlobalModelMixin:
    """Publishing, copies of and predictions with the global model, for a coordinator.

    Needs ``client``, ``name``, ``estimator``, ``classes``, ``adapter``, ``version``,
    ``rounds``, ``n_features``, ``_global``, ``_cache``, ``_check_fitted()``,
    ``_classes_for_validation()``, ``_autosave()`` and ``_workers()``.
    """

    #: Set by :func:`~fedplugin.federated_session` when it ends.
    _session_ended = False

    def set_global_model(self, model: BaseEstimator) -> int:
        """Make a fitted estimator of the plugin's family the global model; return its version.

        Workers start from it at the next ``fit``; use it to warm-start from a
        model trained elsewhere. It must be the plugin's estimator class (a
        Pipeline: the same steps), fitted, with the plugin's classes and, once
        there is a global model, its number of features and parameter shapes.

        Raises
        ------
        TypeError
            If ``model`` is not the plugin's estimator class (or has other steps).
        sklearn.exceptions.NotFittedError
            If ``model`` is not fitted.
        ValueError
            If its features, classes or parameter shapes are not the plugin's.
            Nothing is published then.
        """
        record = replacement(model, self.estimator, self.adapter, self._classes_for_validation(), self._global, self.name)
        names = getattr(model, "feature_names_in_", None)  # a pipeline's: its first step's, if any
        names = None if names is None else np.asarray(names, dtype=object)
        self._publish(replace(record, version=self.version + 1, rounds=self.rounds, feature_names=names))
        self._autosave()
        return self.version

    def _initialize(
        self, n_features: int, classes: Any, draw: Draw, n_outputs: int | None = None, feature_names: np.ndarray | None = None
    ) -> None:
        """Publish the first global model; ``draw`` samples the data if the adapter wants some.

        ``feature_names``: the first ``X``'s column names (see :mod:`fedplugin.feature_names`).
        """
        model = initial_model(self.adapter, self.estimator, n_features, classes, draw, n_outputs)
        params = self.adapter.get_params(model)
        self._publish(GlobalModel(0, params, n_features, classes, 0, n_outputs=n_outputs, feature_names=feature_names))

    @property
    def feature_names(self) -> np.ndarray | None:
        """The column names the global model was first trained on (``None``: none, or no model yet).

        Recorded from a pandas or dask DataFrame whose column names are all
        strings; every later ``X`` must have the same names in the same order.
        The global model has them as ``feature_names_in_``.
        """
        return None if self._global is None else self._global.feature_names

    def _feature_names_of(self, X: Any, error: type = ValueError) -> np.ndarray | None:
        """``X``'s feature names, checked against the global model's (raise ``error`` if they differ).

        Before the first fit there is nothing to check: the names are returned to be recorded.
        """
        found = names_of(X)
        if self._global is not None:
            check_feature_names(found, self._global.feature_names, type(self.estimator).__name__, error=error)
        return found

    def _n_outputs(self) -> int | None:
        """The outputs ``y`` must have: the global model's, else one per list of classes (``None``: any, or 1-d)."""
        return n_outputs_of(self.classes) if self._global is None else self._global.n_outputs

    def _ensure_workers_current(self) -> None:
        """Workers that do not hold the current version fetch it from the store."""
        versions = self.client.run(tasks.version, self.name, on_error="return")
        behind = [w for w, v in versions.items() if v != self.version]
        if behind:
            self.client.run(tasks.reload, self.name, workers=behind, on_error="return")

    def _publish(self, model: GlobalModel, *, force: bool = False) -> None:
        """Make ``model`` the global model: store it on the scheduler; every worker loads it."""
        model = replace(model, estimator=type(self.estimator).__name__)
        store.put(self.client, model, self.name, force=force)
        self._global = model.info()
        self._cache = (model.version, self._build(model), model)
        self.client.run(tasks.reload, self.name, on_error="return")

    def global_model(self) -> BaseEstimator:
        """A copy of the global model: a plain fitted scikit-learn estimator."""
        self._cached_global()
        # Built afresh from the parameters, not deep-copied: a Birch's linked
        # leaves would exceed Python's recursion limit in deepcopy.
        record = self._cache[2]
        return with_feature_names(self._build(record), record.feature_names)

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
        model = self._cached_global()  # without feature names: it is given numpy arrays, checked here
        self._feature_names_of(X)
        if is_dask_collection(X):
            return score_dask(model, X, y)
        return float(model.score(as_float(as_rows(X)), np.asarray(y)))

    def _build(self, model: GlobalModel) -> BaseEstimator:
        return self.adapter.build(self.estimator, model, copy.deepcopy(model.params))

    def _cached_global(self) -> BaseEstimator:
        """The global model as an estimator, fetched from the store once per version."""
        self._check_fitted()
        if self._cache is None or self._cache[0] != self.version:
            record = store.fetch(self.client, self.name)
            if record is None or record.version != self.version:
                self._follow_store()
                self._check_fitted()  # nothing stored any more
            self._cache = (record.version, self._build(record), record)
        return self._cache[1]

    def _follow_store(self, pin: bool = False) -> None:
        """Go on from the stored model if something else changed it since this coordinator looked.

        Another coordinator of the plugin, :func:`fedplugin.forget`, or the
        plugin registered again: a warning says so. A plugin registered again
        with another estimator, or no longer registered, is a clear error.
        ``pin``: also remember the stored model, to roll back to if the fit
        that starts fails (in the same round trip).
        """
        if self._session_ended:
            raise RuntimeError(
                f"this coordinator's federated_session has ended: plugin {self.name!r} is unregistered and its "
                "model dropped; take what you need (global_model(), history) inside the with block, or start a new session"
            )
        info = (store.pin if pin else store.fetch_info)(self.client, self.name)
        if (-1 if info is None else info.version) == self.version:
            return
        _, estimator, _ = resolve_plugin(self.client, self.name)  # a clear error if it is gone
        if type(estimator) is not type(self.estimator):
            raise RuntimeError(
                f"plugin {self.name!r} was registered again with a {type(estimator).__name__}; this coordinator "
                f"trains a {type(self.estimator).__name__}: create a new Coordinator(client, {self.name!r})"
            )
        seen = "no model" if self._global is None else f"version {self.version}"
        now = "no stored model (fedplugin.forget, or the plugin registered again)" if info is None else f"version {info.version}"
        warn_user(
            f"plugin {self.name!r}: this coordinator last saw {seen}, the cluster holds {now}; going on from the "
            "cluster's (train one plugin name from one coordinator at a time)"
        )
        self._global, self._cache = info, None

    def _apply(self, method: str, X: Any, model: str) -> Any:
        if model not in ("global", "local"):
            raise ValueError(f"model={model!r} is not supported; expected 'global' or 'local'")
        self._check_fitted()
        if not hasattr(self.estimator, method):
            raise AttributeError(f"{type(self.estimator).__name__} has no {method}")
        self._feature_names_of(X)
        if is_dask_collection(X):
            if model == "local":
                raise ValueError("model='local' labels numpy batches on one worker; pass a numpy array")
            return apply_dask(self._cached_global(), method, X)
        X = as_rows(X)
        if (X.ndim != 2 and not is_items(X)) or n_columns(X) != self.n_features:
            raise ValueError(f"X has shape {X.shape}; expected (n_samples, {self.n_features})")
        X = as_float(X)
        if model == "global":
            return getattr(self._cached_global(), method)(X)
        worker = self._workers()[0]
        return self.client.run(tasks.predict_local, self.name, X, method, workers=[worker])[worker]

    def synchronize(self) -> int:
        """Run a round now over every worker's local model; return the new version."""
        self._check_fitted()
        start = time.perf_counter()
        workers = self._workers()
        answers = self.client.run(
            close_round, self.name, self.version, workers, self.aggregator, True, codec=self.compression, workers=workers[:1]
        )
        summary = answers[workers[0]]
        rnd = OpenRound(base=self.version, token="manual", start=start, shares={}, counted=False)
        rnd.samples_by = {w: 0 for w in summary.workers}
        self._record_round(rnd, summary, "manual")
        return self.version

    def local_models(self) -> dict[str, BaseEstimator]:
        """Copies of every worker's local model, by worker address."""
        self._check_fitted()
        answers = self.client.run(tasks.local_model, self.name)
        names = self._global.feature_names
        return {
            worker: with_feature_names(self.adapter.build(self.estimator, self._global, params, state), names)
            for worker, (params, state) in answers.items()
        }

    def worker_states(self) -> dict[str, dict[str, Any]]:
        """Each worker's model version, parameters and sample counters."""
        return self.client.run(tasks.state, self.name)
