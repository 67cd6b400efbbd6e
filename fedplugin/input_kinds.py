"""What kind of training input ``X`` and ``y`` are, and what to do when their kinds differ."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

try:  # pandas and dask.dataframe are optional, as in blocks.py
    import pandas as pd
except ImportError:  # pragma: no cover
    pd = None


def input_kind(data: Any, label: str) -> str:
    """``"numpy"`` (numpy, pandas, lists), ``"dask array"`` or ``"dask dataframe"`` (also a dask series)."""
    if isinstance(data, np.ndarray) or (pd is not None and isinstance(data, (pd.DataFrame, pd.Series))):
        return "numpy"
    if isinstance(data, list) or sp.issparse(data):
        return "numpy"
    module = type(data).__module__
    if module.startswith("dask.array") or module.startswith("dask_array"):
        return "dask array"
    if module.startswith("dask.dataframe") or module.startswith("dask_expr"):
        return "dask dataframe"
    if module.startswith("dask.bag"):
        return "dask bag"
    raise TypeError(
        f"{label} is a {type(data).__module__}.{type(data).__name__}; expected a numpy array, "
        "a scipy.sparse matrix, a list of texts, a pandas object, a dask array, a dask dataframe/series "
        "or a dask bag"
    )


# What to do when X and y are of different kinds, by (kind of X, kind of y).
_MIXED_INPUT_REMEDIES = {
    ("numpy", "dask array"): (
        "compute y first (y = y.compute()), or make X a dask array with y's row chunks: "
        "X = da.from_array(X, chunks=(y.chunks[0], -1))"
    ),
    ("numpy", "dask dataframe"): "compute y first (y = y.compute())",
    ("dask array", "numpy"): (
        "make y a dask array with X's row chunks: y = da.from_array(y, chunks=(X.chunks[0],)), "
        "or compute X first (X = X.compute())"
    ),
    ("dask dataframe", "numpy"): (
        "take X and y from the same dask dataframe (X = df.drop(columns=\"target\"), "
        "y = df[\"target\"]), or compute X first (X = X.compute())"
    ),
    ("dask array", "dask dataframe"): (
        "make y a dask array with X's row chunks: y = y.to_dask_array(lengths=True).rechunk((X.chunks[0],))"
    ),
    ("dask dataframe", "dask array"): (
        "make X a dask array and give y its row chunks: X = X.to_dask_array(lengths=True), "
        "y = y.rechunk((X.chunks[0],))"
    ),
}


def mixed_input_message(X: Any, y: Any, x_kind: str, y_kind: str) -> str:
    """The error for ``X`` and ``y`` of different kinds, with what to do for that combination.

    Examples
    --------
    >>> import dask.array as da
    >>> X, y = np.zeros((4, 2)), da.zeros(4, chunks=2)
    >>> print(mixed_input_message(X, y, "numpy", "dask array"))
    X is a numpy array and y is a dask array; expected both in memory (numpy/pandas), both dask arrays or both dask dataframes/series: compute y first (y = y.compute()), or make X a dask array with y's row chunks: X = da.from_array(X, chunks=(y.chunks[0], -1))
    """
    return (
        f"X is a {_type_name(X)} and y is a {_type_name(y)}; expected both in memory (numpy/pandas), "
        f"both dask arrays or both dask dataframes/series: {_MIXED_INPUT_REMEDIES[x_kind, y_kind]}"
    )


def _type_name(data: Any) -> str:
    if isinstance(data, np.ndarray):
        return "numpy array"
    module = type(data).__module__.split(".")[0]
    if module == "dask_expr" or module == "dask" and "dataframe" in type(data).__module__:
        return f"dask {type(data).__name__}"  # dask DataFrame / dask Series
    if module == "dask":
        return "dask array"
    return f"{module} {type(data).__name__}" if module != "builtins" else type(data).__name__


__all__ = ["input_kind", "mixed_input_message"]


def placeholder_targets(X: Any) -> Any:
    """Zeros, one per row of ``X`` and of the same kind, for estimators that learn no targets.

    Scalers and clusterers are trained with ``fit(X)``; the blocks still carry
    a ``y``, which their adapters ignore.
    """
    kind = input_kind(X, "X")
    if kind == "numpy":
        return np.zeros(X.shape[0] if sp.issparse(X) else len(X))
    if kind == "dask array":
        import dask.array as da

        return da.zeros(X.shape[0], chunks=(X.chunks[0],))
    if kind == "dask bag":
        return X.map(_zero)
    column = X if not hasattr(X, "columns") else X[X.columns[0]]
    return column.map_partitions(_zeros_like, meta=(column.name, "f8"))  # X's partitions


def _zero(_: Any) -> float:
    return 0.0


def _zeros_like(part: Any) -> Any:
    return pd.Series(np.zeros(len(part)), index=part.index, name=part.name)
