"""Targets of several outputs: a 2-d ``y``, and the classes of each of its columns.

A multi-output estimator (``MultiOutputClassifier``, ``MultiOutputRegressor``)
learns ``y`` of shape ``(n_samples, n_outputs)``. Its model records
``n_outputs`` (:class:`fedplugin.store.GlobalModel`); a multi-output
classifier's ``classes`` is a list with one array of labels per output, as
``MultiOutputClassifier.partial_fit(X, y, classes=[...])`` takes them. Every
other estimator learns a 1-d ``y`` and has one array of classes (or none).

Examples
--------
>>> import numpy as np
>>> y = np.array([[0, 5], [1, 6], [0, 7]])
>>> [c.tolist() for c in find_classes(y)]
[[0, 1], [5, 6, 7]]
>>> check_labels(y, [np.array([0, 1]), np.array([5, 6])], "y")
Traceback (most recent call last):
...
fedplugin.blocks.DataDoesNotFitModel: y column 1 has labels [7] not in classes[1]=[5, 6]
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

#: Classes of a model: one array (1-d y), one array per output (multi-output), or None.
Classes = np.ndarray | list[np.ndarray] | None


def is_per_output(classes: Any) -> bool:
    """True for a list of arrays of classes, one per output.

    >>> is_per_output([np.array([0, 1])]), is_per_output(np.array([0, 1])), is_per_output(None)
    (True, False, False)
    """
    return isinstance(classes, list)


def sorted_labels(labels: Any, name: str = "classes") -> np.ndarray:
    """``labels`` as a sorted array of unique labels, refusing what scikit-learn refuses in labels.

    Labels must be all numbers or all strings, without NaN or None, as
    ``sklearn.utils.multiclass.unique_labels`` needs them (``np.asarray``
    would turn ``[0, "a"]`` into strings and let NaN through).

    Examples
    --------
    >>> sorted_labels(["b", "a", "b"]).tolist(), sorted_labels(np.array([1, 0])).tolist()
    (['a', 'b'], [0, 1])
    >>> sorted_labels([0, "a"])
    Traceback (most recent call last):
    ...
    ValueError: classes=[0, 'a'] mixes numbers and strings; expected labels that are all numbers or all strings
    >>> sorted_labels([0, float("nan")], "classes[1]")
    Traceback (most recent call last):
    ...
    ValueError: classes[1]=[0, nan] holds NaN; expected labels that are all numbers or all strings, without NaN or None
    """
    values = np.asarray(labels, dtype=object).ravel()
    kinds = set()
    for value in values:
        if value is None or (isinstance(value, Real) and value != value):  # NaN is not equal to itself
            raise ValueError(
                f"{name}={_shown(labels)!r} holds {'None' if value is None else 'NaN'}; expected labels "
                "that are all numbers or all strings, without NaN or None"
            )
        kinds.add(_KINDS.get(type(value), "numbers" if isinstance(value, Real) else type(value).__name__))
    if len(kinds) > 1:
        raise ValueError(
            f"{name}={_shown(labels)!r} mixes {' and '.join(sorted(kinds))}; expected labels that are all "
            "numbers or all strings"
        )
    return np.unique(np.asarray(labels))


_KINDS = {str: "strings", np.str_: "strings", bytes: "bytes", np.bytes_: "bytes"}


def _shown(labels: Any) -> Any:
    return labels.tolist() if isinstance(labels, np.ndarray) else labels


def per_output_classes(classes: Any) -> list[np.ndarray]:
    """The user's classes of a multi-output classifier: one sorted array of labels per output.

    Examples
    --------
    >>> [c.tolist() for c in per_output_classes([[1, 0], ["a", "b", "c"]])]
    [[0, 1], ['a', 'b', 'c']]
    >>> per_output_classes([0, 1])
    Traceback (most recent call last):
    ...
    ValueError: classes=[0, 1]: expected one list of labels per output, e.g. classes=[[0, 1], [0, 1, 2]]
    """
    expected = "expected one list of labels per output, e.g. classes=[[0, 1], [0, 1, 2]]"
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence | np.ndarray) or len(classes) == 0:
        raise ValueError(f"classes={classes!r}: {expected}")
    result = []
    for index, labels in enumerate(classes):
        if isinstance(labels, (str, bytes)) or np.ndim(labels) != 1:
            raise ValueError(f"classes={_plain(classes)!r}: {expected}")
        labels = sorted_labels(labels, f"classes[{index}]")
        if labels.size < 2:
            raise ValueError(f"classes[{index}]={labels.tolist()} must hold at least two labels")
        result.append(labels)
    return result


def find_classes(y: np.ndarray) -> list[np.ndarray]:
    """The labels found in each column of a 2-d ``y``, checked as classification targets."""
    result = []
    for column in range(y.shape[1]):
        try:
            check_classification_targets(y[:, column])
        except ValueError as exc:
            raise ValueError(f"y column {column}: {exc}") from exc
        result.append(np.unique(y[:, column]))
    return result


def check_labels(y: np.ndarray, classes: list[np.ndarray], label: str) -> None:
    """Raise ``DataDoesNotFitModel`` naming the first column of ``y`` with a label outside its classes."""
    from .blocks import DataDoesNotFitModel  # blocks imports this module

    for column, known_labels in enumerate(classes):
        known = np.isin(y[:, column], known_labels)
        if not known.all():
            unknown = np.unique(y[:, column][~known])[:5].tolist()
            raise DataDoesNotFitModel(
                f"{label} column {column} has labels {unknown} not in classes[{column}]={known_labels.tolist()}"
            )


def check_columns(y: np.ndarray, n_outputs: int | None, label: str) -> None:
    """Raise ``ValueError`` unless ``y`` is 2-d with ``n_outputs`` columns (any number if ``None``).

    >>> check_columns(np.zeros(3), None, "y")
    Traceback (most recent call last):
    ...
    ValueError: y has shape (3,); expected a 2-d array (n_samples, n_outputs) for a multi-output estimator
    """
    if y.ndim != 2:
        raise ValueError(
            f"{label} has shape {y.shape}; expected a 2-d array (n_samples, n_outputs) for a multi-output estimator"
        )
    if n_outputs is not None and y.shape[1] != n_outputs:
        from .blocks import DataDoesNotFitModel  # blocks imports this module

        raise DataDoesNotFitModel(f"{label} has {y.shape[1]} columns; expected {n_outputs} outputs, one per output of the model")


def refuse_columns(y_shape: tuple[int, ...], label: str = "y") -> None:
    """Raise ``ValueError`` for a ``y`` of several columns given to a single-output estimator.

    >>> refuse_columns((4, 2))
    Traceback (most recent call last):
    ...
    ValueError: y has shape (4, 2): 2 outputs, but fedplugin trains this estimator on one; expected a 1-d y, or the estimator wrapped in MultiOutputClassifier / MultiOutputRegressor (one model per output)
    """
    # Estimators that learn a 2-d y natively (MLPRegressor, ...) are federated on a 1-d y only.
    raise ValueError(
        f"{label} has shape {tuple(y_shape)}: {y_shape[1]} outputs, but fedplugin trains this estimator on one; "
        "expected a 1-d y, or the estimator wrapped in MultiOutputClassifier / MultiOutputRegressor (one model per output)"
    )


def same_classes(a: Classes, b: Classes) -> bool:
    """True when ``a`` and ``b`` are the same classes (both ``None``, arrays, or lists of arrays).

    >>> same_classes([np.array([0, 1])], [np.array([0, 1])]), same_classes([np.array([0, 1])], np.array([0, 1]))
    (True, False)
    """
    if a is None or b is None:
        return a is None and b is None
    if is_per_output(a) or is_per_output(b):
        return is_per_output(a) and is_per_output(b) and len(a) == len(b) and all(map(same_classes, a, b))
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.all(a == b))


def as_plain(classes: Classes) -> Any:
    """``classes`` as plain lists, for messages and JSON.

    >>> as_plain([np.array([0, 1]), np.array([2, 3])]), as_plain(np.array([0, 1])), as_plain(None)
    ([[0, 1], [2, 3]], [0, 1], None)
    """
    return _plain(classes)


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if is_per_output(value) or isinstance(value, tuple):
        return [_plain(part) for part in value]
    return np.asarray(value).tolist()


def n_outputs_of(classes: Classes) -> int | None:
    """Outputs a model of ``classes`` has: the number of arrays of per-output classes, else ``None``.

    >>> n_outputs_of([np.array([0, 1])] * 3), n_outputs_of(np.array([0, 1]))
    (3, None)
    """
    return len(classes) if is_per_output(classes) else None


def shape_targets(y: Any, *, multi_output: bool, n_outputs: int | None, label: str = "y") -> Any:
    """``y`` (numpy or dask) as the estimator learns it: 1-d, or 2-d for a multi-output estimator.

    A single-output estimator's ``y`` of one column becomes 1-d; several
    columns are refused (``refuse_columns``).

    >>> shape_targets(np.zeros((3, 1)), multi_output=False, n_outputs=None).shape
    (3,)
    >>> shape_targets(np.zeros((3, 2)), multi_output=True, n_outputs=3)
    Traceback (most recent call last):
    ...
    fedplugin.blocks.DataDoesNotFitModel: y has 2 columns; expected 3 outputs, one per output of the model
    """
    if multi_output:
        check_columns(y, n_outputs, label)
        return y
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim == 2:
        refuse_columns(y.shape, label)
    if y.ndim != 1:
        raise ValueError(f"{label} has shape {y.shape}; expected a 1-d array of targets")
    return y


def find_classes_dask(y: Any) -> list[np.ndarray]:
    """The labels in each column of a 2-d dask array or dataframe ``y``, in one computation."""
    import dask
    import dask.dataframe as dd

    if isinstance(y, dd.DataFrame):
        uniques = [y[column].unique() for column in y.columns]
    else:
        import dask.array as da

        uniques = [da.unique(y[:, column]) for column in range(y.shape[1])]
    return [np.sort(np.asarray(found)) for found in dask.compute(*uniques)]


def frame_targets(y: Any, *, multi_output: bool, n_outputs: int | None) -> Any:
    """A dask dataframe's ``y``: a series, or a dataframe of one column per output for a multi-output estimator."""
    import dask.dataframe as dd

    is_frame = isinstance(y, dd.DataFrame)  # a dask series has columns too
    if multi_output:
        if not is_frame:
            raise ValueError("y is a dask series; expected a dask dataframe of one column per output")
        check_columns(np.empty((0, len(y.columns))), n_outputs, "y")
        return y
    if is_frame and len(y.columns) != 1:
        raise ValueError(f"y has {len(y.columns)} columns; expected a series of targets")
    return y[y.columns[0]] if is_frame else y
