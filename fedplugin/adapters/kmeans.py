"""Mini-batch k-means: centers and their counts."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.cluster import MiniBatchKMeans, kmeans_plusplus
from sklearn.metrics import pairwise_distances_argmin_min
from sklearn.utils import check_array, check_random_state
from ..wording import count
from .base import ModelAdapter, Params, _check_names, fresh_copy


class MiniBatchKMeansAdapter(ModelAdapter):
    """Mini-batch k-means: ``cluster_centers_`` and their counts ``_counts``.

    Each center is the running mean of the points assigned to it, so
    :meth:`aggregate` adds every worker's new points (count and sum, relative
    to the reference) to the reference centers: the update MiniBatchKMeans
    makes for one mini-batch holding all of them. The user's rule is ignored.

    ``init`` may be an array of initial centers, ``"k-means++"``, ``"random"``
    or a callable. For the last three the coordinator draws a sample of the
    training data on the cluster before the first round (``init_size`` rows,
    by default ``3 * batch_size``, as MiniBatchKMeans samples its own data; see
    ``fedplugin.data_init``) and chooses the centers from it with
    ``random_state``: the best of ``n_init`` draws by inertia on the sample,
    as ``MiniBatchKMeans.fit`` does. ``coord.fit(X)`` needs no targets (any
    given are ignored). A center that a worker moves by random reassignment
    (``reassignment_ratio``) enters with the count MiniBatchKMeans gave it, as
    if that worker's points had moved it; ``reassignment_ratio=0`` keeps every
    count an exact number of points.

    References
    ----------
    D. Sculley, "Web-scale k-means clustering", WWW 2010.
    """

    exact_aggregation = True

    families = (MiniBatchKMeans,)
    family_names = "MiniBatchKMeans"

    def validate(self, estimator: BaseEstimator) -> None:
        init, k = estimator.init, estimator.n_clusters
        if isinstance(init, str) and init not in ("k-means++", "random"):
            raise ValueError(f"init={init!r} is not supported; expected 'k-means++', 'random', a callable or an array")
        if _from_data(init):
            size = estimator.init_size
            if size is not None and isinstance(k, int) and size < k:
                raise ValueError(
                    f"init_size={size!r} is smaller than n_clusters={k}; expected None or an int >= n_clusters"
                )
            return
        if np.ndim(init) != 2:
            raise ValueError(
                f"init={init!r} is not supported; expected 'k-means++', 'random', a callable or an "
                "array of shape (n_clusters, n_features)"
            )
        if np.shape(init)[0] != k:
            raise ValueError(f"init has {count(np.shape(init)[0], 'center')}; expected n_clusters={k}")

    def init_sample_size(self, estimator: BaseEstimator) -> int:
        """``init_size`` rows (default ``3 * batch_size``, at least ``3 * n_clusters``) for a data-driven init."""
        if not _from_data(estimator.init):
            return 0
        size = estimator.init_size
        if size is None:
            size = 3 * estimator.batch_size
            if size < estimator.n_clusters:
                size = 3 * estimator.n_clusters
        return int(size)

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        """The model at the array ``init``; for a data-driven one, zero centers to be overwritten."""
        if _from_data(estimator.init):
            return _model_at(estimator, np.zeros((estimator.n_clusters, n_features)))
        centers = np.array(estimator.init, dtype=np.float64)
        if centers.shape[1] != n_features:
            raise ValueError(f"init has {count(centers.shape[1], 'feature')}; expected {n_features}, as X has")
        return _model_at(estimator, centers)

    def initialize_from_sample(
        self, estimator: BaseEstimator, sample: np.ndarray, classes: np.ndarray | None
    ) -> BaseEstimator:
        """The model at centers chosen from ``sample`` by ``init``."""
        if not _from_data(estimator.init):
            return self.initialize(estimator, sample.shape[1], classes)
        return _model_at(estimator, initial_centers(estimator, sample))

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


def _from_data(init: Any) -> bool:
    """True for an ``init`` that chooses the centers from the data."""
    return isinstance(init, str) or callable(init)


def initial_centers(estimator: BaseEstimator, sample: np.ndarray) -> np.ndarray:
    """Centers chosen from ``sample`` by ``estimator.init``: the best of ``n_init`` draws by inertia.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [9.0, 9.0], [9.1, 9.0]])
    >>> centers = initial_centers(MiniBatchKMeans(2, random_state=0), X)
    >>> sorted(np.round(centers[:, 0]).tolist())
    [0.0, 9.0]
    >>> initial_centers(MiniBatchKMeans(5), X)
    Traceback (most recent call last):
    ...
    ValueError: init='k-means++' chooses 5 initial centers from a sample of the training data, which has 4 rows; expected at least n_clusters=5 rows (fit_stream samples its first batch only)
    """
    init, k = estimator.init, estimator.n_clusters
    if sp.issparse(sample):  # a sample of a few thousand rows: dense is fine, and what "random" returns
        sample = sample.toarray()
    if len(sample) < k:
        raise ValueError(
            f"init={init!r} chooses {k} initial centers from a sample of the training data, which has "
            f"{count(len(sample), 'row')}; expected at least n_clusters={k} rows "
            "(fit_stream samples its first batch only)"
        )
    n_init = estimator.n_init
    if n_init == "auto":  # MiniBatchKMeans's own rule
        n_init = 1 if isinstance(init, str) and init == "k-means++" else 3
    rng = check_random_state(copy.deepcopy(estimator.random_state))
    best, best_inertia = None, np.inf
    for _ in range(n_init):
        if isinstance(init, str) and init == "k-means++":
            centers = kmeans_plusplus(sample, k, random_state=rng)[0]
        elif isinstance(init, str) and init == "random":
            centers = sample[rng.choice(len(sample), size=k, replace=False)]
        else:
            centers = check_array(init(sample, k, random_state=rng), dtype=np.float64)
            if centers.shape != (k, sample.shape[1]):
                raise ValueError(
                    f"init={init!r} returned centers of shape {centers.shape}; expected {(k, sample.shape[1])}"
                )
        inertia = float(np.sum(pairwise_distances_argmin_min(sample, centers)[1] ** 2))
        if inertia < best_inertia:
            best, best_inertia = centers, inertia
    return np.array(best, dtype=np.float64)


def _model_at(estimator: BaseEstimator, centers: np.ndarray) -> BaseEstimator:
    """A clone of ``estimator`` set up with ``centers`` and zero counts, ready for ``partial_fit``."""
    model = fresh_copy(estimator)
    init, n_init = model.init, model.n_init
    # A public first partial_fit on the centers themselves, as the array init,
    # sets the model up; then the probe's counts, step counters and labels go.
    model.set_params(init=centers, n_init=1)
    model.partial_fit(centers)
    model.set_params(init=init, n_init=n_init)
    model.cluster_centers_ = np.array(centers, dtype=np.float64, order="C")
    model._counts = np.zeros(len(centers))
    model.n_steps_, model._n_since_last_reassign = 0, 0
    for name in ("labels_", "inertia_"):  # set only with compute_labels=True
        vars(model).pop(name, None)
    return model
