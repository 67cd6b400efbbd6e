"""Mini-batch k-means: centers and their counts."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.cluster import MiniBatchKMeans
from ..wording import count
from .base import ModelAdapter, Params, _check_names, fresh_copy


class MiniBatchKMeansAdapter(ModelAdapter):
    """Mini-batch k-means: ``cluster_centers_`` and their counts ``_counts``.

    Each center is the running mean of the points assigned to it, so
    :meth:`aggregate` adds every worker's new points (count and sum, relative
    to the reference) to the reference centers: the update MiniBatchKMeans
    makes for one mini-batch holding all of them. The user's rule is ignored.

    ``init`` must be an array of initial centers: the coordinator builds the
    initial model before it reads any data, so it cannot run k-means++ or
    random initialisation. Compute one on a sample, e.g.
    ``init=sklearn.cluster.kmeans_plusplus(X_sample, n_clusters)[0]``.
    ``coord.fit(X)`` needs no targets (any given are ignored). A center that a worker moves by random reassignment
    (``reassignment_ratio``) enters with the count MiniBatchKMeans gave it, as
    if that worker's points had moved it; ``reassignment_ratio=0`` keeps every
    count an exact number of points.

    References
    ----------
    D. Sculley, "Web-scale k-means clustering", WWW 2010.
    """

    exact_aggregation = True

    families = (MiniBatchKMeans,)
    family_names = "MiniBatchKMeans with an array init"

    def validate(self, estimator: BaseEstimator) -> None:
        init = estimator.init
        if isinstance(init, str) or callable(init) or np.ndim(init) != 2:
            raise ValueError(
                f"init={init!r} is not supported: the initial centers are chosen before any data "
                "is read; expected an array of shape (n_clusters, n_features), e.g. "
                "init=sklearn.cluster.kmeans_plusplus(X_sample, n_clusters)[0]."
            )
        if np.shape(init)[0] != estimator.n_clusters:
            raise ValueError(
                f"init has {count(np.shape(init)[0], 'center')}; expected n_clusters={estimator.n_clusters}"
            )

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        model = fresh_copy(estimator)
        centers = np.array(model.init, dtype=np.float64)
        if centers.shape[1] != n_features:
            raise ValueError(f"init has {count(centers.shape[1], 'feature')}; expected {n_features}, as X has")
        # A public first partial_fit on the initial centers themselves sets the
        # model up; then the probe's counts, step counters and labels go.
        model.partial_fit(centers)
        self.set_params(model, {"cluster_centers_": centers, "_counts": np.zeros(len(centers))})
        model.n_steps_, model._n_since_last_reassign = 0, 0
        for name in ("labels_", "inertia_"):  # set only with compute_labels=True
            vars(model).pop(name, None)
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        return {"cluster_centers_": np.array(model.cluster_centers_), "_counts": np.array(model._counts)}

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        _check_names(params, ["cluster_centers_", "_counts"], "MiniBatchKMeans")
        # Updated in place by compiled code: C-contiguous float64 copies.
        model.cluster_centers_ = np.array(params["cluster_centers_"], dtype=np.float64, order="C")
        model._counts = np.array(params["_counts"], dtype=np.float64)

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        model.partial_fit(X)  # y is the placeholder the coordinator asks for

    def aggregate(
        self, rule: Any, updates: list[Params], weights: list[float], reference: Params
    ) -> Params:
        """Count-weighted centers of the reference's points and every worker's new points."""
        counts, centers = reference["_counts"], reference["cluster_centers_"]
        sums = counts[:, None] * centers
        new_counts, new_sums = counts.copy(), sums.copy()
        for update in updates:
            new_counts += update["_counts"] - counts
            new_sums += update["_counts"][:, None] * update["cluster_centers_"] - sums
        # A center nobody has assigned a point to yet stays where it is.
        new_centers = np.array(centers, dtype=np.float64)
        np.divide(new_sums, new_counts[:, None], out=new_centers, where=new_counts[:, None] > 0)
        return {"cluster_centers_": new_centers, "_counts": new_counts}

    def merge(self, new_global: Params, local: Params, snapshot: Params) -> Params:
        """The global centers moved by the points the worker assigned since ``snapshot``."""
        counts = new_global["_counts"] + (local["_counts"] - snapshot["_counts"])
        sums = (
            new_global["_counts"][:, None] * new_global["cluster_centers_"]
            + local["_counts"][:, None] * local["cluster_centers_"]
            - snapshot["_counts"][:, None] * snapshot["cluster_centers_"]
        )
        centers = np.array(new_global["cluster_centers_"], dtype=np.float64)
        np.divide(sums, counts[:, None], out=centers, where=counts[:, None] > 0)
        return {"cluster_centers_": centers, "_counts": counts}
