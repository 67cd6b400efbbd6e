"""Incremental PCA, combined exactly from count, mean, variances and scaled components.

An ``IncrementalPCA`` state is the count ``n``, the mean, the per-feature
variances and the factor ``F = singular_values_[:, None] * components_``,
whose Gram matrix ``F.T @ F`` is the scatter matrix of the data about its
mean (up to the discarded components). Two states merge as
``IncrementalPCA.partial_fit`` merges its state with a batch: by the SVD of
``[F_a; F_b; sqrt(n_a n_b / (n_a + n_b)) (mean_a - mean_b)]``.

A round's workers each hand over the reference (global) state merged with
their new data, and a worker that trained on while a round was combined
keeps its progress since its snapshot; neither is a plain merge, as both
take a state away: ``sum(updates) - (m - 1) reference`` and
``global + local - snapshot``. Scatter matrices add and subtract, so
:func:`combine` sums them with signs, through the eigendecomposition of the
small matrix of the states' row space (the SVD of the stack when every sign
is positive). With ``n_components`` at least the rank of the data this is
exact: the federated model equals one ``partial_fit`` over all the data, to
floating-point rounding. With fewer components each state has lost its
smallest directions, so it is close to it (as ``partial_fit``'s own result
depends on the batches).

Examples
--------
>>> import numpy as np
>>> from sklearn.decomposition import IncrementalPCA
>>> rng = np.random.default_rng(0)
>>> A, B = rng.normal(size=(20, 3)), rng.normal(size=(30, 3)) + 1
>>> a = state_of(IncrementalPCA(3).partial_fit(A))
>>> b = state_of(IncrementalPCA(3).partial_fit(B))
>>> both = IncrementalPCA(3).partial_fit(A).partial_fit(B)
>>> merged = combine([a, b], [1, 1], n_components=3)
>>> bool(np.allclose(merged["components_"], both.components_))
True
>>> back = combine([merged, b], [1, -1], n_components=3)   # take B away again
>>> bool(np.allclose(back["singular_values_"], a["singular_values_"]))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator
from sklearn.decomposition import IncrementalPCA
from sklearn.utils.extmath import svd_flip

from .base import ModelAdapter, Params, _check_names, fresh_copy

_NAMES = ["n_samples_seen_", "mean_", "var_", "components_", "singular_values_", "noise_variance_"]


def state_of(model: IncrementalPCA) -> Params:
    """The parameters of a fitted ``IncrementalPCA``, as float arrays."""
    return {
        "n_samples_seen_": np.array([float(model.n_samples_seen_)]),
        "mean_": np.array(model.mean_, dtype=np.float64),
        "var_": np.array(model.var_, dtype=np.float64),
        "components_": np.array(model.components_, dtype=np.float64),
        "singular_values_": np.array(model.singular_values_, dtype=np.float64),
        "noise_variance_": np.array([float(model.noise_variance_)]),
    }


def combine(states: list[Params], signs: list[int], n_components: int) -> Params:
    """The state of the data of ``states``, each counted ``sign`` times (-1: taken away).

    Parameters
    ----------
    states : list of dict
        IncrementalPCA states (see :func:`state_of`).
    signs : list of int
        How many times each state's data counts: 1 adds it, -1 takes it away,
        0 ignores it.
    n_components : int
        Components kept.

    Returns
    -------
    dict
        The combined state; ``noise_variance_`` is the mean variance of the
        directions beyond ``n_components`` that the states still hold.
    """
    parts = [(s, sign) for s, sign in zip(states, signs) if sign != 0 and float(s["n_samples_seen_"][0]) != 0.0]
    n_features = len(states[0]["mean_"])
    n = sum(sign * float(s["n_samples_seen_"][0]) for s, sign in parts)
    if not parts or n <= 0:
        return _empty(n_features, n_components)
    mean = sum(sign * float(s["n_samples_seen_"][0]) * s["mean_"] for s, sign in parts) / n
    rows, row_signs, m2 = [], [], np.zeros(n_features)
    for s, sign in parts:
        count, shift = float(s["n_samples_seen_"][0]), s["mean_"] - mean
        block = np.vstack([s["singular_values_"][:, None] * s["components_"], np.sqrt(count) * shift])
        rows.append(block)
        row_signs.append(np.full(len(block), float(sign)))
        m2 += sign * (count * s["var_"] + count * shift**2)
    values, vectors = _signed_gram_eigen(np.vstack(rows), np.concatenate(row_signs))
    return _params(n, mean, np.maximum(m2, 0.0) / n, values, vectors, n_components)


def _signed_gram_eigen(stack: np.ndarray, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (rows) of ``stack.T @ diag(signs) @ stack``."""
    if (signs == 1).all():  # a plain merge: the SVD of the stack, as partial_fit does
        _, s, vt = linalg.svd(stack, full_matrices=False, check_finite=False)
        return s**2, vt
    # Work in the row space of the stack: stack.T = Q R, so the Gram matrix is Q (R D R.T) Q.T.
    q, r = linalg.qr(stack.T, mode="economic", check_finite=False)
    values, small = linalg.eigh((r * signs) @ r.T, check_finite=False)
    order = np.argsort(values)[::-1]
    return np.maximum(values[order], 0.0), (q @ small[:, order]).T


def _params(n: float, mean: np.ndarray, var: np.ndarray, values: np.ndarray, vectors: np.ndarray, k: int) -> Params:
    _, vectors = svd_flip(np.zeros((1, len(vectors))), vectors, u_based_decision=False)
    kept = np.zeros(k)
    kept[: min(k, len(values))] = np.sqrt(values[:k])
    components = np.zeros((k, len(mean)))
    components[: min(k, len(vectors))] = vectors[:k]
    rest = values[k : len(mean)]
    noise = float(rest.mean()) / (n - 1) if len(rest) and n > 1 else 0.0
    return {
        "n_samples_seen_": np.array([n]), "mean_": mean, "var_": var, "components_": components,
        "singular_values_": kept, "noise_variance_": np.array([noise]),
    }


def _empty(n_features: int, n_components: int) -> Params:
    """The state of no data."""
    return {
        "n_samples_seen_": np.zeros(1), "mean_": np.zeros(n_features), "var_": np.zeros(n_features),
        "components_": np.zeros((n_components, n_features)), "singular_values_": np.zeros(n_components),
        "noise_variance_": np.zeros(1),
    }


class IncrementalPCAAdapter(ModelAdapter):
    """``IncrementalPCA``: exact, from count, mean, variances and scaled components.

    See the module docstring for how states combine; the user's rule is
    ignored. ``n_components`` must be an int (scikit-learn would read it from
    the first batch), and the first block a worker trains from an empty model
    needs at least ``n_components`` rows, as for scikit-learn's first
    ``partial_fit``. ``explained_variance_``, its ratio and
    ``noise_variance_`` are recomputed from the combined state;
    ``noise_variance_`` is estimated from the discarded directions the merge
    still sees, so it may differ from a single ``partial_fit`` when
    ``n_components`` is below the rank. It learns no targets: ``coord.fit(X)``.
    """

    families = (IncrementalPCA,)
    family_names = "IncrementalPCA (an int n_components)"
    exact_aggregation = True

    def validate(self, estimator: BaseEstimator) -> None:
        if not isinstance(estimator.n_components, (int, np.integer)):
            raise ValueError(
                f"n_components={estimator.n_components!r} is not supported: it is read from the first "
                "batch, which the coordinator has not seen when it builds the initial model; expected an int"
            )

    def initialize(self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None) -> BaseEstimator:
        model = fresh_copy(estimator)
        if model.n_components > n_features:
            raise ValueError(f"n_components={model.n_components} exceeds the {n_features} features of X")
        model.n_features_in_ = n_features
        self.set_params(model, _empty(n_features, model.n_components))
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        return state_of(model)

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        _check_names(params, _NAMES, "IncrementalPCA")
        n = float(params["n_samples_seen_"][0])
        model.n_samples_seen_ = int(round(n))
        model.mean_, model.var_ = np.array(params["mean_"]), np.array(params["var_"])
        model.components_ = np.array(params["components_"], dtype=np.float64)
        model.singular_values_ = np.array(params["singular_values_"], dtype=np.float64)
        model.n_components_ = len(model.components_)
        squares, total = model.singular_values_**2, float(np.sum(model.var_) * n)
        model.explained_variance_ = squares / (n - 1) if n > 1 else np.zeros_like(squares)
        model.explained_variance_ratio_ = squares / total if total > 0 else np.zeros_like(squares)
        model.noise_variance_ = float(params["noise_variance_"][0])

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        if model.n_samples_seen_ == 0 and len(X) < model.n_components_:
            raise ValueError(
                f"a block of {len(X)} rows cannot start IncrementalPCA(n_components={model.n_components_}); "
                "expected blocks of at least n_components rows (a larger block_size)"
            )
        model.partial_fit(X)  # y is the placeholder the coordinator asks for

    def aggregate(self, rule: Any, updates: list[Params], weights: list[float], reference: Params) -> Params:
        """The reference's data plus every worker's new data: ``sum(updates) - (m - 1) reference``."""
        states = [reference, *updates]
        return combine(states, [1 - len(updates)] + [1] * len(updates), len(reference["components_"]))

    def merge(self, new_global: Params, local: Params, snapshot: Params) -> Params:
        """The global data plus the worker's since ``snapshot``: ``global + local - snapshot``."""
        return combine([new_global, local, snapshot], [1, 1, -1], len(new_global["components_"]))


__all__ = ["IncrementalPCAAdapter", "combine", "state_of"]
