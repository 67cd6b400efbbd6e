"""A scikit-learn meta-estimator that trains its estimator federatedly on Dask.

``FederatedEstimator(SGDClassifier()).fit(X, y)`` registers a
:class:`~fedplugin.FederatedModelPlugin` under a fresh name, trains with a
:class:`~fedplugin.Coordinator`, keeps the result as ``estimator_`` and
unregisters the plugin again, so it fits in pipelines, grid searches and
``clone`` like any other scikit-learn estimator.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from dask import is_dask_collection
from sklearn.base import BaseEstimator, MetaEstimatorMixin, is_classifier
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from .adapters import adapter_for, fresh_copy
from .blocks import DataDoesNotFitModel
from .coordinator import Coordinator
from .session import client_or_default, federated_session
from .predicting import apply_dask, score_dask
from .store import GlobalModel
from .wording import count


def _estimator_has(attr: str):
    def check(self: FederatedEstimator) -> bool:
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self._template(), attr)

    return check


class FederatedEstimator(MetaEstimatorMixin, BaseEstimator):
    """Train ``estimator`` federatedly on the workers of a Dask cluster.

    Parameters
    ----------
    estimator : scikit-learn estimator with ``partial_fit``, default SGDClassifier()
        The model each worker trains (see :func:`~fedplugin.adapters.adapter_for` for the
        supported families).
    client : distributed.Client, optional
        Cluster to train on; by default the current client (``get_client()``).
    sync : SyncPolicy or int, optional
        When to synchronize, as for :class:`~fedplugin.Coordinator`.
    aggregator : callable or mapping, optional
        How to combine worker models, as for :class:`~fedplugin.Coordinator`.
    epochs : int, default 1
        Passes over the data in ``fit``.
    block_size : int, default 4096
        Rows per block for in-memory input.
    classes : array-like, optional
        All class labels; by default those of the first ``y`` seen.
    coordinator_options : dict, optional
        Other :class:`~fedplugin.Coordinator` keyword arguments, such as
        ``{"compression": "int8", "stragglers": Quorum(min_workers=0.75)}``.

    Attributes
    ----------
    estimator_ : estimator
        The fitted global model, a plain scikit-learn estimator.
    classes_ : ndarray
        Class labels (classifiers only).
    n_features_in_ : int
        Number of features seen in ``fit``.
    history_ : list of Round
        Synchronization rounds of every ``fit`` / ``partial_fit`` so far.

    Examples
    --------
    >>> from dask.distributed import Client, LocalCluster                 # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))  # doctest: +SKIP
    >>> model = FederatedEstimator(SGDClassifier(), epochs=3).fit(X, y)   # doctest: +SKIP
    >>> model.estimator_                                                  # doctest: +SKIP
    SGDClassifier()
    """

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        *,
        client: Any = None,
        sync: Any = None,
        aggregator: Any = None,
        epochs: int = 1,
        block_size: int = 4096,
        classes: Any = None,
        coordinator_options: dict[str, Any] | None = None,
    ) -> None:
        self.estimator = estimator
        self.client = client
        self.sync = sync
        self.aggregator = aggregator
        self.epochs = epochs
        self.block_size = block_size
        self.classes = classes
        self.coordinator_options = coordinator_options

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self._template())
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.input_tags.sparse = False
        return tags

    def _template(self) -> BaseEstimator:
        return SGDClassifier() if self.estimator is None else self.estimator

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any) -> FederatedEstimator:
        """Fit a fresh federated model on ``X``, ``y`` (``epochs`` passes)."""
        options = self._coordinator_options()  # a bad option is refused before the fitted model is dropped
        for attr in ("estimator_", "classes_", "n_features_in_", "history_"):
            self.__dict__.pop(attr, None)
        return self._train(X, y, self.epochs, self.classes, options)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> FederatedEstimator:
        """One pass over ``X``, ``y``, continuing from ``estimator_`` if fitted."""
        options = self._coordinator_options()  # before validate_data sets n_features_in_
        return self._train(X, y, 1, classes if classes is not None else self.classes, options)

    def _train(self, X: Any, y: Any, epochs: int, classes: Any, options: dict[str, Any]) -> FederatedEstimator:
        """Train from ``estimator_`` if fitted; ``options``: the checked ``coordinator_options``."""
        template = fresh_copy(self._template())
        adapter_for(template)  # refuse unsupported estimators before touching the cluster
        fitted = hasattr(self, "estimator_")
        if not is_dask_collection(X):
            X, y = validate_data(
                self, X, y, reset=not fitted, dtype=[np.float64, np.float32], y_numeric=not is_classifier(template)
            )
        elif fitted and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {count(X.shape[1], 'feature')}; expected {self.n_features_in_}")
        if fitted and is_classifier(template):
            classes = self.classes_
        options = {**options, **dict(sync=self.sync, aggregator=self.aggregator, block_size=self.block_size)}
        with federated_session(client_or_default(self.client, "FederatedEstimator"), template, classes=classes, **options) as coord:
            if fitted:
                coord.set_global_model(self.estimator_)
            try:
                coord.fit(X, y, epochs=epochs)
            except DataDoesNotFitModel as exc:
                raise DataDoesNotFitModel(
                    f"{exc.reason}; this {type(self).__name__} is fitted already: fit(X, y) trains a new model"
                ) from None
            self.estimator_ = coord.global_model()
            n_features = coord.n_features
            self.history_ = getattr(self, "history_", []) + coord.history
        if is_classifier(template):
            self.classes_ = self.estimator_.classes_
        self.n_features_in_ = n_features
        return self

    def _coordinator_options(self) -> dict[str, Any]:
        """``coordinator_options``, checked before the cluster is touched (progress off by default)."""
        given = {} if self.coordinator_options is None else self.coordinator_options
        if not isinstance(given, dict):
            raise TypeError(f"coordinator_options={given!r} must be a dict of Coordinator keyword arguments")
        own = sorted(set(given) & {"sync", "aggregator", "block_size", "plugin", "client"})
        if own:
            raise ValueError(
                f"coordinator_options sets {own}, which FederatedEstimator sets itself; "
                "expected sync=, aggregator=, block_size= or client= on FederatedEstimator (plugin: none)"
            )
        known = set(inspect.signature(Coordinator).parameters)
        unknown = sorted(set(given) - known)
        if unknown:
            raise TypeError(f"coordinator_options has {unknown}, which Coordinator does not take; expected some of {sorted(known - {'client', 'plugin'})}")
        return {"progress": False, **given}

    # ---------------------------------------------------------------- predicting
    def _check_input(self, X: Any) -> Any:
        check_is_fitted(self)
        if is_dask_collection(X):
            return X
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    def _delegate(self, method: str, X: Any) -> Any:
        X = self._check_input(X)
        if is_dask_collection(X):
            return apply_dask(self.estimator_, method, X)
        return getattr(self.estimator_, method)(X)

    def predict(self, X: Any) -> Any:
        """Predict with the fitted global model."""
        return self._delegate("predict", X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, where the wrapped estimator has them."""
        return self._delegate("predict_proba", X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        """Log class probabilities, where the wrapped estimator has them."""
        return self._delegate("predict_log_proba", X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        """Decision function, where the wrapped estimator has it."""
        return self._delegate("decision_function", X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (classifiers) or R² (regressors) of the global model."""
        if is_dask_collection(X):
            check_is_fitted(self)
            return score_dask(self.estimator_, X, y)
        predictions = self.predict(X)
        metric = accuracy_score if is_classifier(self) else r2_score
        return float(metric(y, predictions, sample_weight=sample_weight))


__all__ = ["FederatedEstimator", "GlobalModel"]
