"""What one sample of ``X`` is: a row of numbers (dense or sparse) or an item such as a text.

Training data is one of:

* a 2-d array of numbers (numpy, pandas), one row per sample;
* a scipy.sparse matrix, kept sparse from validation to training and
  prediction (a text vectorizer's output, one-hot features);
* a 1-d sequence of *items*, one per sample: texts for a
  ``HashingVectorizer`` (scikit-learn's out-of-core text recipe), or dicts
  for a ``FeatureHasher``. The model then starts with a transformer that
  turns items into features (a :class:`~sklearn.pipeline.Pipeline`); its
  "number of features" is 1, the one item per sample.

Examples
--------
>>> import numpy as np
>>> import scipy.sparse as sp
>>> as_rows(["spam", "ham"])
array(['spam', 'ham'], dtype=object)
>>> n_columns(as_rows(["spam", "ham"])), n_columns(sp.eye(3, format="csr"))
(1, 3)
>>> concatenate([sp.eye(2, format="csr"), sp.eye(2, format="csr")]).shape
(4, 2)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags

from .wording import count, plural

try:  # pandas is optional, as in blocks.py
    import pandas as pd
except ImportError:  # pragma: no cover
    pd = None

#: First steps that turn one item per sample (a text, a dict) into features.
ITEM_TRANSFORMERS: tuple[type, ...] = (HashingVectorizer, FeatureHasher)


def as_rows(data: Any) -> Any:
    """``data`` as a numpy array, a CSR matrix, or a 1-d object array of items."""
    if sp.issparse(data):
        return data.tocsr()
    if pd is not None and isinstance(data, (pd.DataFrame, pd.Series)):
        data = data.to_numpy()
    array = np.asarray(data)
    if array.ndim == 1 and array.dtype.kind in "OUS":
        return array.astype(object)
    return array


def is_items(X: Any) -> bool:
    """True for a 1-d sequence of items (texts, dicts), one per sample."""
    return not sp.issparse(X) and np.ndim(X) == 1 and np.asarray(X).dtype == object


def n_columns(X: Any) -> int:
    """The model's number of features for ``X``: 1 for items, else the number of columns."""
    return 1 if is_items(X) else int(X.shape[1])


def row_kind(X: Any) -> str:
    """``"items"``, ``"sparse"`` or ``"numbers"``; ``X`` may be a dask array's ``_meta``."""
    if is_items(X):
        return "items"
    return "sparse" if sp.issparse(X) else "numbers"


def as_float(X: Any) -> Any:
    """Numbers as float64 (global parameters are float64, and SGD wants X of the same dtype); items as they are."""
    return X if is_items(X) else X.astype(np.float64, copy=False)


def concatenate(parts: list[Any]) -> Any:
    """Stack rows of the same kind: sparse ones stay sparse."""
    if any(sp.issparse(part) for part in parts):
        return sp.vstack([sp.csr_matrix(part) for part in parts], format="csr")
    return np.concatenate(parts)


def check_numbers(X: Any, label: str) -> None:
    """Refuse non-numeric or non-finite values (a sparse matrix: its stored values)."""
    values = X.data if sp.issparse(X) else X
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise TypeError(f"{label} has dtype {values.dtype}; expected real numbers")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        where = "a stored value" if sp.issparse(X) else f"index {np.argwhere(~np.isfinite(values))[0].tolist()}"
        raise ValueError(f"{label} contains NaN or infinite values (first at {where}); expected finite numbers")


def check_number_columns(dtypes: Any, label: str) -> None:
    """Refuse a DataFrame (pandas or dask) whose columns are not all real numbers, naming them.

    ``dtypes`` is the frame's ``dtypes``; a dask DataFrame knows them without
    computing. Numbers are numpy's integer and floating dtypes, as for arrays
    (:func:`check_numbers`): strings, objects, booleans, categories and
    nullable extension types are refused.

    Examples
    --------
    >>> import pandas as pd
    >>> check_number_columns(pd.DataFrame({"a": [1.0], "b": [True], "c": [False]}).dtypes, "X")
    Traceback (most recent call last):
    ...
    TypeError: X has columns ['b', 'c'] of dtype bool; expected real numbers in every column (convert them, e.g. X.astype({'b': float}) or pd.get_dummies for categories)
    """
    bad = {column: dtype for column, dtype in dtypes.items() if not _real_number_dtype(dtype)}
    if not bad:
        return
    by_dtype: dict[str, list[Any]] = {}
    for column, dtype in bad.items():
        by_dtype.setdefault(str(dtype), []).append(column)
    found = ", ".join(f"{plural(len(cols), 'column')} {cols} of dtype {dtype}" for dtype, cols in by_dtype.items())
    first = next(iter(bad))
    raise TypeError(
        f"{label} has {found}; expected real numbers in every column (convert them, e.g. "
        f"{label}.astype({{{first!r}: float}}) or pd.get_dummies for categories)"
    )


def _real_number_dtype(dtype: Any) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind in "iuf"


def check_accepted(estimator: BaseEstimator, rows: str, n_samples: int | None) -> None:
    """Raise before training if ``estimator`` cannot take this kind of ``rows`` (see :func:`row_kind`).

    Items need a model whose first step turns them into features; a sparse
    matrix needs an estimator that accepts one (scikit-learn's
    ``input_tags.sparse``; a pipeline: its first step's).
    """
    name = type(estimator).__name__
    if rows == "items":
        if not takes_items(estimator):
            items = "items" if n_samples is None else count(n_samples, "item")
            raise TypeError(
                f"X is a 1-d array of {items} (e.g. texts), but {name} expects rows of "
                "numbers; expected a model that starts with a HashingVectorizer or FeatureHasher, e.g. "
                "make_pipeline(HashingVectorizer(), SGDClassifier()), or a 2-d X"
            )
    elif rows == "sparse" and not get_tags(estimator).input_tags.sparse:
        raise TypeError(f"X is a sparse matrix, which {name} does not accept; expected a dense array (X.toarray())")


def takes_items(estimator: BaseEstimator) -> bool:
    """True for a model whose first step turns items (texts, dicts) into features."""
    return isinstance(_first_step(estimator), ITEM_TRANSFORMERS)


def _first_step(estimator: BaseEstimator) -> Any:
    if isinstance(estimator, Pipeline):
        for _, step in estimator.steps:
            if step is not None and not (isinstance(step, str) and step == "passthrough"):
                return step
    return estimator
