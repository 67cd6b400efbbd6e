"""Labelling and scoring dask collections block by block, where they live."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, is_classifier, is_regressor

from .feature_names import check_feature_names, feature_names


def as_dask_array(data: Any) -> Any:
    """A dask dataframe or series as a dask array with known chunk sizes."""
    import dask.dataframe as dd
    import pandas as pd

    if isinstance(data, dd.Series) and not pd.api.types.is_numeric_dtype(data.dtype):
        data = data.astype(object)  # texts: dask converts pandas' string dtype with a warning
    if isinstance(data, (dd.DataFrame, dd.Series)):
        return data.to_dask_array(lengths=True)
    return data


def is_bag(X: Any) -> bool:
    return type(X).__module__.startswith("dask.bag")


def apply_dask(model: BaseEstimator, method: str, X: Any) -> Any:
    """``model.method`` block by block: a dask array (a dask bag of items: a bag of results).

    A method that answers one array per output (``MultiOutputClassifier.predict_proba``)
    gives a list of dask arrays.
    """
    if is_bag(X):
        return X.map_partitions(lambda part: list(getattr(model, method)(np.asarray(part, dtype=object))))
    as_fitted = _as_fitted(model, X)
    X = as_dask_array(X)
    if X.ndim == 1:  # items (texts): one per sample
        return _apply_to_items(model, method, X)
    return _apply_to_rows(model, method, X, as_fitted)


def _apply_to_rows(model: BaseEstimator, method: str, X: Any, as_fitted: Callable[[np.ndarray], Any]) -> Any:
    """``model.method`` on every block of the 2-d dask array ``X``, each given as ``as_fitted(block)``."""
    sample = getattr(model, method)(as_fitted(np.zeros((1, X.shape[1]))))
    if isinstance(sample, list):  # one array per output (MultiOutputClassifier.predict_proba): a list too
        return [
            X.map_blocks(lambda b, i=i: getattr(model, method)(as_fitted(b))[i], chunks=(X.chunks[0], (s.shape[1],)), dtype=s.dtype)
            for i, s in enumerate(sample)
        ]
    if sample.ndim == 1:
        return X.map_blocks(
            lambda b: getattr(model, method)(as_fitted(b)), drop_axis=1, dtype=sample.dtype, meta=np.empty(0, sample.dtype)
        )
    return X.map_blocks(
        lambda b: getattr(model, method)(as_fitted(b)), chunks=(X.chunks[0], (sample.shape[1],)), dtype=sample.dtype
    )


def _as_fitted(model: BaseEstimator, X: Any) -> Callable[[np.ndarray], Any]:
    """What a numpy block of ``X`` is given to ``model`` as: a DataFrame of its ``feature_names_in_`` if it has them.

    Such a model (a ``FederatedEstimator``'s, fitted on a dask DataFrame)
    would warn on every numpy block; ``X``'s names are checked once instead,
    here, as scikit-learn checks them (see :mod:`fedplugin.feature_names`).
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return _unchanged
    import pandas as pd

    check_feature_names(feature_names(X), names, type(model).__name__)
    return lambda block: pd.DataFrame(block, columns=names, copy=False)


def _unchanged(block: np.ndarray) -> np.ndarray:
    return block


def _apply_to_items(model: BaseEstimator, method: str, X: Any) -> Any:
    def apply(block: np.ndarray) -> np.ndarray:
        return getattr(model, method)(block.astype(object))

    sample = apply(X.blocks[0][:1].compute())
    if sample.ndim == 1:
        return X.map_blocks(apply, dtype=sample.dtype, meta=np.empty(0, sample.dtype))
    return X.map_blocks(apply, new_axis=1, chunks=(X.chunks[0], (sample.shape[1],)), dtype=sample.dtype)


def _score_bag(model: BaseEstimator, X: Any, y: Any) -> float:
    """Accuracy or R² of a bag of items against a bag of targets with the same partitions."""
    import dask.bag as db

    pairs = db.zip(apply_dask(model, "predict", X), y)
    if is_classifier(model):
        return float(pairs.map(lambda pair: pair[0] == pair[1]).mean().compute())
    targets = np.asarray(y.compute(), dtype=np.float64)
    residual = pairs.map(lambda pair: (pair[1] - pair[0]) ** 2).sum().compute()
    total = float(((targets - targets.mean()) ** 2).sum())
    return float(1 - residual / total) if total > 0 else 0.0


def score_dask(model: BaseEstimator, X: Any, y: Any) -> float:
    import dask.array as da

    if is_bag(X):
        return _score_bag(model, X, y)
    as_fitted = _as_fitted(model, X)  # X's names, before it becomes an array
    X, y = as_dask_array(X), as_dask_array(y)
    if not (is_classifier(model) or is_regressor(model)):
        # Clusterers: their own score (e.g. negative inertia) adds up over blocks.
        per_block = X.map_blocks(
            lambda block: np.array([model.score(as_fitted(block))]), drop_axis=1, chunks=((1,) * X.numblocks[0],)
        )
        return float(per_block.sum().compute())
    predictions = apply_dask(model, "predict", X) if X.ndim == 1 else _apply_to_rows(model, "predict", X, as_fitted)
    if is_classifier(model):
        # Several outputs: a row counts when every output is right (MultiOutputClassifier.score).
        hits = predictions == y if y.ndim == 1 else (predictions == y).all(axis=1)
        return float(hits.mean().compute())
    # R² per output, averaged uniformly (scikit-learn's r2_score for a 2-d y).
    residual, total = da.compute(((y - predictions) ** 2).sum(axis=0), ((y - y.mean(axis=0)) ** 2).sum(axis=0))
    ratios = np.divide(residual, total, out=np.ones_like(np.asarray(total, dtype=float)), where=np.asarray(total) > 0)
    return float(np.mean(1 - ratios))


def as_online_scorer(scoring: Any) -> Any:
    """A scorer ``f(estimator, X, y)`` from a name or callable, or ``None``."""
    if scoring is None:
        return None
    if isinstance(scoring, str):
        from sklearn.metrics import get_scorer

        return get_scorer(scoring)  # raises a ValueError listing the valid names
    if callable(scoring):
        return scoring
    raise TypeError(f"scoring={scoring!r} is not a scorer name or a callable scorer(estimator, X, y)")
