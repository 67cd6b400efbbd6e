"""Birch: a CF tree whose entries (count, linear sum, squared sum) add up exactly.

Examples
--------
Two workers learn from the same (empty) global tree; the new global tree
holds every sample once:

>>> import copy
>>> from sklearn.datasets import make_blobs
>>> X, _ = make_blobs(n_samples=300, centers=3, random_state=0)
>>> adapter = BirchAdapter()
>>> adapter.validate(Birch(n_clusters=3))
>>> start = adapter.initialize(Birch(n_clusters=3), n_features=2, classes=None)
>>> updates = []
>>> for part in (X[:100], X[100:]):
...     worker = copy.deepcopy(start)
...     adapter.partial_fit(worker, part, None)
...     updates.append(adapter.get_params(worker))
>>> params = adapter.aggregate(None, updates, [100, 200], adapter.get_params(start))
>>> model = adapter.initialize(Birch(n_clusters=3), n_features=2, classes=None)
>>> adapter.set_params(model, params)
>>> int(sum(sub.n_samples_ for leaf in model._get_leaves() for sub in leaf.subclusters_))
300
>>> model.predict(X[:3]).shape
(3,)
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.cluster import Birch
from sklearn.cluster._birch import _CFNode, _CFSubcluster, _split_node
from sklearn.exceptions import ConvergenceWarning

from .base import ModelAdapter, Params, _check_names, fresh_copy

#: The tree: each node's kind, the leaves in order, and every subcluster
#: (its node, child node or -1, count, linear sum, squared sum, centroid).
TREE = ["node_leaf_", "leaf_order_", "sub_node_", "sub_child_", "sub_n_", "sub_ls_", "sub_ss_", "sub_centroid_"]
#: CF entries learned since the tree: one per subcluster of each block's own small tree.
NEW = ["new_n_", "new_ls_", "new_ss_"]


class BirchAdapter(ModelAdapter):
    """Birch: the global CF tree, and the CF entries each worker learned since.

    A worker condenses each block into CF entries (a Birch of the same
    ``threshold`` and ``branching_factor`` fitted on that block alone) and
    inserts them into its local tree. :meth:`aggregate` inserts every worker's
    new entries into the global tree with Birch's own insertion (the one
    ``partial_fit`` uses for a single sample: merge into the closest leaf
    subcluster if the merged radius stays within ``threshold``, else add one,
    splitting full nodes), so counts, linear sums and squared sums stay exact:
    the leaf subclusters' counts add up to the number of samples. The global
    step (``n_clusters``) then clusters the subcluster centers, as
    ``Birch.partial_fit`` does. The tree differs from a central Birch's (which
    inserts the samples one by one in their order), as it does for another
    order of the samples; the user's rule is ignored.

    The parameters are the tree, node by node (``node_leaf_``,
    ``leaf_order_``, and per subcluster ``sub_node_``, ``sub_child_``,
    ``sub_n_``, ``sub_ls_``, ``sub_ss_``, ``sub_centroid_``), and the new
    entries (``new_n_``, ``new_ls_``, ``new_ss_``); their shapes grow with
    the tree. Dense ``X`` only.

    References
    ----------
    T. Zhang, R. Ramakrishnan, M. Livny, "BIRCH: an efficient data clustering
    method for very large databases", SIGMOD 1996.
    """

    exact_aggregation = True
    takes_server_optimizer = False  # tree indices are no weights
    fixed_shapes = False

    families = (Birch,)
    family_names = "Birch"

    def __init__(self) -> None:
        self.threshold: float | None = None
        self.branching_factor: int | None = None

    def validate(self, estimator: BaseEstimator) -> None:
        clusterer = estimator.n_clusters
        if clusterer is not None and not isinstance(clusterer, numbers.Integral):
            raise ValueError(
                f"n_clusters={clusterer!r} is not supported; expected an int or None "
                "(a clustering estimator would be fitted on every worker at every block)"
            )
        self.threshold, self.branching_factor = estimator.threshold, estimator.branching_factor

    def check_settings(self, estimator: BaseEstimator) -> None:
        super().check_settings(estimator)
        fresh_copy(estimator)._validate_params()  # threshold > 0, branching_factor > 1, ...

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        model = fresh_copy(estimator)
        empty = {**_flatten(*_empty_tree(estimator, n_features)), **_no_entries(n_features)}
        self.set_params(model, empty)
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        """The tree it started from and the new entries; a model without new entries: its own tree.

        So a ``Birch`` fitted anywhere (``coord.set_global_model``) gives its tree.
        """
        new = getattr(model, "_fed_new", None)
        if new is None or not len(new["new_n_"]):
            return {**_flatten(model.root_, model.dummy_leaf_), **_no_entries(model.n_features_in_)}
        return {name: np.array(value) for name, value in {**model._fed_tree, **new}.items()}

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        """Rebuild the tree exactly, then insert the new entries into it (the local model learned them)."""
        _check_names(params, TREE + NEW, "Birch")
        n_features = np.shape(params["sub_ls_"])[1]
        model._fed_tree = {name: np.array(params[name]) for name in TREE}
        model._fed_new = {name: np.array(params[name]) for name in NEW}
        model.root_, model.dummy_leaf_ = _unflatten(model, params, n_features)
        _insert(model, params["new_n_"], params["new_ls_"], params["new_ss_"])
        _finish(model, n_features)

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        block = Birch(
            threshold=model.threshold, branching_factor=model.branching_factor, n_clusters=None, compute_labels=False
        ).fit(X)
        n, ls, ss = _leaf_entries(block)
        _insert(model, n, ls, ss)
        new = model._fed_new
        model._fed_new = {
            "new_n_": np.concatenate([new["new_n_"], n]),
            "new_ls_": np.concatenate([new["new_ls_"], ls]),
            "new_ss_": np.concatenate([new["new_ss_"], ss]),
        }
        _finish(model, X.shape[1])

    def aggregate(
        self, rule: Any, updates: list[Params], weights: list[float], reference: Params
    ) -> Params:
        """The reference tree with every worker's new entries inserted, in the order of ``updates``."""
        if self.threshold is None:
            raise ValueError("this BirchAdapter has no estimator yet; expected adapter_for(Birch(...))")
        model = Birch(threshold=self.threshold, branching_factor=self.branching_factor, n_clusters=None)
        n_features = np.shape(reference["sub_ls_"])[1]
        model.root_, model.dummy_leaf_ = _unflatten(model, reference, n_features)
        done = len(reference["new_n_"])
        for update in updates:
            _insert(model, update["new_n_"][done:], update["new_ls_"][done:], update["new_ss_"][done:])
        return {**_flatten(model.root_, model.dummy_leaf_), **_no_entries(n_features)}

    def merge(self, new_global: Params, local: Params, snapshot: Params) -> Params:
        """The new global tree, and the entries the worker learned since ``snapshot``."""
        done = len(snapshot["new_n_"])
        if not np.array_equal(local["new_n_"][:done], snapshot["new_n_"]):
            raise ValueError("the local Birch entries do not extend the snapshot's; expected a later state")
        return {
            **{name: new_global[name] for name in TREE},
            **{name: np.concatenate([new_global[name], local[name][done:]]) for name in NEW},
        }


def _no_entries(n_features: int) -> Params:
    return {"new_n_": np.zeros(0), "new_ls_": np.zeros((0, n_features)), "new_ss_": np.zeros(0)}


def _node(model: BaseEstimator, is_leaf: bool, n_features: int) -> _CFNode:
    return _CFNode(
        threshold=model.threshold, branching_factor=model.branching_factor, is_leaf=is_leaf,
        n_features=n_features, dtype=np.float64,
    )


def _empty_tree(model: BaseEstimator, n_features: int) -> tuple[_CFNode, _CFNode]:
    """A root leaf and the dummy leaf before it, as ``Birch.fit`` starts."""
    root, dummy = _node(model, True, n_features), _node(model, True, n_features)
    dummy.next_leaf_, root.prev_leaf_ = root, dummy
    return root, dummy


def _subcluster(n: float, ls: np.ndarray, ss: float, centroid: np.ndarray | None = None) -> _CFSubcluster:
    """A CF entry; its arrays are its own, since Birch updates them in place."""
    sub = _CFSubcluster(linear_sum=np.array(ls, dtype=np.float64))
    sub.n_samples_ = int(round(n))
    sub.squared_sum_ = float(ss)
    sub.centroid_ = sub.linear_sum_ / sub.n_samples_ if centroid is None else np.array(centroid, dtype=np.float64)
    sub.sq_norm_ = np.dot(sub.centroid_, sub.centroid_)
    return sub


def _flatten(root: _CFNode, dummy: _CFNode) -> Params:
    """The tree as arrays: nodes in depth-first order, subclusters node by node."""
    nodes, rows, stack = [], [], [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(sub.child_ for sub in reversed(node.subclusters_) if sub.child_ is not None)
    index = {id(node): i for i, node in enumerate(nodes)}
    for i, node in enumerate(nodes):
        for sub in node.subclusters_:
            child = -1 if sub.child_ is None else index[id(sub.child_)]
            rows.append((i, child, sub.n_samples_, sub.linear_sum_, sub.squared_sum_, sub.centroid_))
    leaves, leaf = [], dummy.next_leaf_
    while leaf is not None:
        leaves.append(index[id(leaf)])
        leaf = leaf.next_leaf_
    n_features = root.n_features
    column = lambda j: np.array([row[j] for row in rows], dtype=np.float64)  # noqa: E731
    return {
        "node_leaf_": np.array([node.is_leaf for node in nodes], dtype=np.float64),
        "leaf_order_": np.array(leaves, dtype=np.float64),
        "sub_node_": column(0), "sub_child_": column(1), "sub_n_": column(2), "sub_ss_": column(4),
        "sub_ls_": np.array([row[3] for row in rows], dtype=np.float64).reshape(-1, n_features),
        "sub_centroid_": np.array([row[5] for row in rows], dtype=np.float64).reshape(-1, n_features),
    }


def _unflatten(model: BaseEstimator, params: Params, n_features: int) -> tuple[_CFNode, _CFNode]:
    """The tree :func:`_flatten` wrote, node for node: ``(root, dummy leaf)``."""
    nodes = [_node(model, bool(leaf), n_features) for leaf in params["node_leaf_"]]
    for node, child, n, ls, ss, centroid in zip(
        params["sub_node_"], params["sub_child_"], params["sub_n_"], params["sub_ls_"], params["sub_ss_"],
        params["sub_centroid_"],
    ):
        sub = _subcluster(n, ls, ss, centroid)
        sub.child_ = None if child < 0 else nodes[int(child)]
        nodes[int(node)].append_subcluster(sub)
    dummy = _node(model, True, n_features)
    previous = dummy
    for i in params["leaf_order_"]:
        previous.next_leaf_, nodes[int(i)].prev_leaf_ = nodes[int(i)], previous
        previous = nodes[int(i)]
    return nodes[0], dummy


def _insert(model: BaseEstimator, n: np.ndarray, ls: np.ndarray, ss: np.ndarray) -> None:
    """Insert CF entries into ``model``'s tree, as ``Birch.partial_fit`` inserts samples."""
    for count, linear, squared in zip(n, ls, ss):
        split = model.root_.insert_cf_subcluster(_subcluster(count, linear, squared))
        if split:  # a new root above the two halves of the old one, as Birch._fit does
            first, second = _split_node(model.root_, model.threshold, model.branching_factor)
            model.root_ = _node(model, False, model.root_.n_features)
            model.root_.append_subcluster(first)
            model.root_.append_subcluster(second)


def _leaf_entries(model: BaseEstimator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(counts, linear sums, squared sums)`` of a fitted Birch's leaf subclusters, in leaf order."""
    subs = [sub for leaf in model._get_leaves() for sub in leaf.subclusters_]
    return (
        np.array([sub.n_samples_ for sub in subs], dtype=np.float64),
        np.array([sub.linear_sum_ for sub in subs], dtype=np.float64).reshape(len(subs), -1),
        np.array([sub.squared_sum_ for sub in subs], dtype=np.float64),
    )


def _finish(model: BaseEstimator, n_features: int) -> None:
    """The fitted attributes ``Birch.partial_fit`` leaves: subcluster centers, their labels."""
    leaves = [leaf for leaf in model._get_leaves() if leaf.subclusters_]
    centers = np.concatenate([leaf.centroids_ for leaf in leaves]) if leaves else np.zeros((0, n_features))
    model.subcluster_centers_ = centers
    model.n_features_in_ = n_features
    model._n_features_out = len(centers)
    if isinstance(model.n_clusters, numbers.Integral) and len(centers) < model.n_clusters:
        # Too few subclusters yet (an empty tree): each is its own cluster, without Birch's warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model._global_clustering()
    else:
        model._global_clustering()
