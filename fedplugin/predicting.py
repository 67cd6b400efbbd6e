"""Labelling and scoring dask collections block by block, where they live."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, is_classifier, is_regressor


def is_dask(X: Any) -> bool:
    return hasattr(X, "__dask_graph__")


def as_dask_array(data: Any) -> Any:
    """A dask dataframe or series as a dask array with known chunk sizes."""
    import dask.dataframe as dd

    if isinstance(data, (dd.DataFrame, dd.Series)):
        return data.to_dask_array(lengths=True)
    return data


def apply_dask(model: BaseEstimator, method: str, X: Any) -> Any:
    X = as_dask_array(X)
    sample = getattr(model, method)(np.zeros((1, X.shape[1])))
    if sample.ndim == 1:
        return X.map_blocks(lambda b: getattr(model, method)(b), drop_axis=1, dtype=sample.dtype, meta=np.empty(0, sample.dtype))
    return X.map_blocks(
        lambda b: getattr(model, method)(b), chunks=(X.chunks[0], (sample.shape[1],)), dtype=sample.dtype
    )


def score_dask(model: BaseEstimator, X: Any, y: Any) -> float:
    import dask.array as da

    X, y = as_dask_array(X), as_dask_array(y)
    if not (is_classifier(model) or is_regressor(model)):
        # Clusterers: their own score (e.g. negative inertia) adds up over blocks.
        per_block = X.map_blocks(
            lambda block: np.array([model.score(block)]), drop_axis=1, chunks=((1,) * X.numblocks[0],)
        )
        return float(per_block.sum().compute())
    predictions = apply_dask(model, "predict", X)
    if is_classifier(model):
        return float((predictions == y).mean().compute())
    residual, total = da.compute(((y - predictions) ** 2).sum(), ((y - y.mean()) ** 2).sum())
    return float(1 - residual / total) if total > 0 else 0.0


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
