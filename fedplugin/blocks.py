"""Turn the user's training data into blocks that are trained where they live.

Three kinds of input are accepted:

* numpy arrays (and pandas objects): split into blocks of ``block_size`` rows
  and scattered over the workers, ``X`` and ``y`` of a block together;
* dask arrays: one block per row chunk;
* dask dataframes / series: one block per partition.

A dask block that is already in memory on the cluster (the collection was
persisted) is *resident*: the training task is pinned to the worker holding it
and receives it as a dependency, so it never moves. A lazy block is computed
inside the training task, on the worker that trains it, one block at a time, so
memory stays flat however large the collection is. The client never gathers
training data.
"""

from __future__ import annotations

import numbers
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from distributed import Client, Future
from sklearn.utils.multiclass import check_classification_targets

from .checks import check_number
from .dask_parts import LazyPart, array_parts, collection_parts, compute_here, frame_parts
from .input_kinds import input_kind, mixed_input_message
from .outputs import check_columns, check_labels, find_classes, find_classes_dask, frame_targets, is_per_output, shape_targets
from .rows import as_float, as_rows, check_number_columns, check_numbers, is_items, n_columns, row_kind
from .wording import count

try:  # pandas and dask.dataframe are optional
    import pandas as pd
except ImportError:  # pragma: no cover - pandas ships with dask[dataframe]
    pd = None


@dataclass
class BlockRef:
    """One block of training data as the coordinator schedules it.

    Attributes
    ----------
    index : int
        Position in the block order (the order of the rows).
    x, y : Future, LazyPart or None
        Where the block's features and targets come from. For scattered numpy
        input ``x`` holds the ``(X, y)`` pair and ``y`` is ``None``.
    n_rows : int or None
        Rows in the block, when known before training.
    home : str or None
        Address of the worker holding a resident block.
    source : (X, y) or None
        The client's own copy of a scattered numpy block, scattered again if
        the worker holding it dies (scattered data cannot be recomputed).
    wire_bytes : int or None
        What a reference to the block costs in a task message (measured once).
    """

    index: int
    x: Any
    y: Any
    n_rows: int | None
    home: str | None = None
    source: tuple[np.ndarray, np.ndarray] | None = None
    wire_bytes: int | None = None


@dataclass
class TrainingData:
    """Validated training input: its blocks and what is known about it."""

    blocks: list[BlockRef]
    n_features: int
    n_samples: int | None
    classes: Any
    #: ``"numbers"``, ``"sparse"`` or ``"items"`` (texts, dicts): see :mod:`fedplugin.rows`.
    rows: str = "numbers"
    #: Columns of ``y`` for a multi-output estimator, ``None`` for a 1-d ``y``.
    n_outputs: int | None = None
    # Scattered numpy blocks live only as long as this object holds their futures.


def rescatter_lost(client: Client, blocks: list[BlockRef]) -> int:
    """Scatter again the numpy blocks whose only copy died with a worker; return how many."""
    # The scheduler cancels the futures of scattered data that died with its worker.
    lost = [b for b in blocks if b.source is not None and b.x.status != "finished"]
    if lost:
        futures = client.scatter([b.source for b in lost], hash=False, direct=True)
        for block, future in zip(lost, futures):
            block.x, block.home = future, None
    return len(lost)


def load_block(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Materialise one block as ``(X, y)`` numpy arrays, inside a task."""
    if isinstance(x, LazyPart) and isinstance(y, LazyPart):
        # One computation, so work that X and y share (y is often derived from X) runs once.
        x, y = compute_here(x.delayed, y.delayed)
    if isinstance(x, LazyPart):
        x = x.load()
    if isinstance(y, LazyPart):
        y = y.load()
    if y is None:
        x, y = x
    y = _to_numpy(y)
    # A 2-d y of several columns is a multi-output target; one column is a 1-d target.
    return as_float(as_rows(x)), (y if y.ndim == 2 and y.shape[1] > 1 else np.ravel(y))


def check_block(
    index: int, X: np.ndarray, y: np.ndarray, n_features: int, classes: Any, n_outputs: int | None = None
) -> None:
    """Raise ``ValueError`` naming block ``index`` if it cannot be trained on.

    NaN and infinite values are left to the estimator's own ``partial_fit``
    check, which the plugin reports with the block index: checking twice would
    cost about a tenth of the training time.
    """
    if (X.ndim != 2 and not is_items(X)) or n_columns(X) != n_features:
        raise ValueError(
            f"block {index}: X has shape {X.shape}; expected {count(n_features, 'feature')}"
        )
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"block {index}: X has {count(X.shape[0], 'row')} but y has {y.shape[0]}; "
            "expected the same number of rows (same row chunks / partitions)"
        )
    if n_outputs is not None:
        check_columns(y.reshape(len(y), -1), n_outputs, f"block {index}: y")
    if classes is not None:
        _check_labels(y, classes, f"block {index}: y")


def prepare(
    client: Client,
    X: Any,
    y: Any,
    *,
    block_size: int,
    n_features: int | None,
    classes: Any,
    is_classifier: bool,
    multi_output: bool = False,
    n_outputs: int | None = None,
) -> TrainingData:
    """Validate ``X``/``y`` and cut them into blocks placed on the cluster.

    Every check that needs no pass over the data happens here, on the client,
    before anything is trained: types, dimensions, feature count, lengths and
    row chunks, emptiness. Numpy input is also checked for NaN/inf and unknown
    labels here; dask blocks are checked inside the training task, before each
    block is trained, and the coordinator rolls the global model back if one
    fails. ``multi_output`` estimators learn a 2-d ``y`` of ``n_outputs`` columns.
    """
    check_number(block_size, "block_size", numbers.Integral, min_val=1)
    x_kind, y_kind = input_kind(X, "X"), input_kind(y, "y")
    if x_kind != y_kind:
        raise TypeError(mixed_input_message(X, y, x_kind, y_kind))
    outputs = {"multi_output": multi_output, "n_outputs": n_outputs}  # see fedplugin.outputs
    if x_kind == "numpy":
        return _prepare_numpy(client, X, y, block_size, n_features, classes, is_classifier, outputs)
    if x_kind == "dask array":
        return _prepare_dask_array(client, X, y, n_features, classes, is_classifier, outputs)
    if x_kind == "dask bag" and not multi_output:
        return _prepare_dask_bag(client, X, y, n_features, classes, is_classifier)
    if x_kind == "dask bag":
        raise TypeError("y is a dask bag; expected numpy, dask array or dataframe input for several outputs")
    return _prepare_dask_dataframe(client, X, y, n_features, classes, is_classifier, outputs)


def _to_numpy(data: Any) -> np.ndarray:
    if pd is not None and isinstance(data, (pd.DataFrame, pd.Series)):
        return data.to_numpy()
    return np.asarray(data)


class DataDoesNotFitModel(ValueError):
    """The data has other features or labels than the model it would train.

    Attributes
    ----------
    reason : str
        What does not fit, without the advice a caller may add to the
        message (how to start a new model).
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason


def _check_labels(y: np.ndarray, classes: Any, label: str) -> None:
    if is_per_output(classes):
        return check_labels(y.reshape(len(y), -1), classes, label)
    known = np.isin(y, classes)
    if not known.all():
        unknown = np.unique(y[~known])[:5].tolist()
        raise DataDoesNotFitModel(f"{label} has labels {unknown} not in classes={classes.tolist()}")


def _check_features(n_found: int, n_features: int | None) -> None:
    if n_features is not None and n_found != n_features:
        raise DataDoesNotFitModel(
            f"X has {count(n_found, 'feature')}; expected {n_features} as the model was initialised with"
        )


def _check_empty(n_rows: int | None) -> None:
    if n_rows == 0:
        raise ValueError("X has 0 samples; expected at least one")


def _prepare_numpy(client, X, y, block_size, n_features, classes, is_classifier, outputs) -> TrainingData:
    X, y, classes = check_numpy(X, y, n_features=n_features, classes=classes, is_classifier=is_classifier, **outputs)
    blocks = scatter_blocks(client, split_rows(X, y, block_size))
    n_outputs = y.shape[1] if outputs["multi_output"] else None
    return TrainingData(blocks, n_columns(X), X.shape[0], classes, row_kind(X), n_outputs)


def check_numpy(
    X: Any, y: Any, *, n_features: int | None, classes: Any, is_classifier: bool,
    multi_output: bool = False, n_outputs: int | None = None,
) -> tuple[np.ndarray, np.ndarray, Any]:
    """Validate in-memory ``X``, ``y``; return them as numpy arrays, with the classes (per column: ``multi_output``)."""
    dtypes = X.dtypes if pd is not None and isinstance(X, pd.DataFrame) else None  # to name a bad column
    X, y = as_rows(X), _to_numpy(y)
    if X.ndim != 2 and not is_items(X):
        raise ValueError(
            f"X has shape {X.shape}; expected a 2-d array (samples, features), a sparse matrix "
            "or a 1-d array of texts"
        )
    y = shape_targets(y, multi_output=multi_output, n_outputs=n_outputs)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {count(X.shape[0], 'sample')} but y has {y.shape[0]}; expected the same")
    _check_empty(X.shape[0])
    _check_features(n_columns(X), n_features)
    if dtypes is not None:
        check_number_columns(dtypes, "X")
    if not is_items(X):
        check_numbers(X, "X")
    if is_classifier:
        if classes is None and multi_output:
            classes = find_classes(y)
        elif classes is None:
            check_classification_targets(y)  # known classes make this check redundant (and it is slow)
            classes = np.unique(y)
        _check_labels(y, classes, "y")
    else:
        check_numbers(y, "y")
    return X, y, classes


def split_rows(X: np.ndarray, y: np.ndarray, block_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(X, y)`` pairs of at most ``block_size`` rows, in order."""
    return [(X[s : s + block_size], y[s : s + block_size]) for s in range(0, X.shape[0], block_size)]


def scatter_blocks(client: Client, pairs: list[tuple[np.ndarray, np.ndarray]], first_index: int = 0) -> list[BlockRef]:
    """Scatter ``(X, y)`` pairs over the workers in one call; one block each."""
    futures = client.scatter(pairs, hash=False, direct=True)
    homes = client.who_has(futures)
    return [
        BlockRef(first_index + i, fut, None, len(pair[1]), _first(homes.get(fut.key)), source=pair)
        for i, (fut, pair) in enumerate(zip(futures, pairs))
    ]


def _prepare_dask_array(client, X, y, n_features, classes, is_classifier, outputs) -> TrainingData:
    import dask.array as da

    if X.ndim != 2:
        raise ValueError(f"X has shape {X.shape}; expected a 2-d array (samples, features)")
    y = shape_targets(y, **outputs)
    if any(np.isnan(c) for c in X.chunks[0]) or any(np.isnan(c) for c in y.chunks[0]):
        X, y = X.compute_chunk_sizes(), y.compute_chunk_sizes()
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {count(X.shape[0], 'sample')} but y has {y.shape[0]}; expected the same")
    if X.chunks[0] != y.chunks[0]:
        raise ValueError(
            f"X row chunks {X.chunks[0][:5]}... differ from y chunks {y.chunks[0][:5]}...; "
            "expected the same row chunks, e.g. y = y.rechunk(X.chunks[0])"
        )
    _check_empty(X.shape[0])
    _check_features(X.shape[1], n_features)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    if y.ndim == 2 and len(y.chunks[1]) > 1:
        y = y.rechunk({1: -1})  # a block's y holds every output
    if is_classifier and classes is None:
        classes = find_classes_dask(y) if y.ndim == 2 else da.unique(y).compute()
    x_parts = collection_parts(client, X, array_parts)
    y_parts = collection_parts(client, y, array_parts)
    blocks = _block_refs(client, x_parts, y_parts, list(X.chunks[0]))
    n_outputs = y.shape[1] if y.ndim == 2 else None
    return TrainingData(blocks, X.shape[1], X.shape[0], classes, row_kind(X._meta), n_outputs)


def _prepare_dask_dataframe(client, X, y, n_features, classes, is_classifier, outputs) -> TrainingData:
    import dask.dataframe as dd

    texts = isinstance(X, dd.Series) and not pd.api.types.is_numeric_dtype(X.dtype)
    if not isinstance(X, dd.DataFrame) and not texts:
        raise ValueError("X is a dask series of numbers; expected a dask dataframe (samples, features) or a series of texts")
    y = frame_targets(y, **outputs)
    if X.npartitions != y.npartitions:
        raise ValueError(
            f"X has {count(X.npartitions, 'partition')} and y has {y.npartitions}; expected the same "
            "partitions, e.g. y taken from the same dataframe as X"
        )
    if X.known_divisions and y.known_divisions and tuple(X.divisions) != tuple(y.divisions):
        raise ValueError("X and y have different divisions; expected the same partitions")
    n_found = 1 if texts else len(X.columns)
    _check_features(n_found, n_features)
    if not texts:
        check_number_columns(X.dtypes, "X")  # known from the meta: nothing is computed
    if is_classifier and classes is None:
        classes = find_classes_dask(y) if outputs["multi_output"] else np.sort(np.asarray(y.unique().compute()))
    x_parts = collection_parts(client, X, frame_parts)
    y_parts = collection_parts(client, y, frame_parts)
    blocks = _block_refs(client, x_parts, y_parts, [None] * len(x_parts))
    n_outputs = len(y.columns) if outputs["multi_output"] else None
    return TrainingData(blocks, n_found, None, classes, "items" if texts else "numbers", n_outputs)


def _prepare_dask_bag(client, X, y, n_features, classes, is_classifier) -> TrainingData:
    """A bag of items (texts, dicts) and a bag of targets with the same partitions."""
    if X.npartitions != y.npartitions:
        raise ValueError(
            f"X has {count(X.npartitions, 'partition')} and y has {y.npartitions}; expected the same "
            "partitions, e.g. both made by db.from_sequence(..., npartitions=n)"
        )
    _check_features(1, n_features)
    if is_classifier and classes is None:
        classes = np.sort(np.asarray(y.distinct().compute()))
    x_parts, y_parts = collection_parts(client, X, frame_parts), collection_parts(client, y, frame_parts)
    blocks = _block_refs(client, x_parts, y_parts, [None] * len(x_parts))
    return TrainingData(blocks, 1, None, classes, "items")


def _block_refs(client, x_parts, y_parts, n_rows) -> list[BlockRef]:
    """Block references; a resident block's home holds its X part, and its y part too if possible.

    Among several holders the least loaded one is chosen, so replicated data
    spreads over the workers.
    """
    resident = [p for p in [*x_parts, *y_parts] if isinstance(p, Future)]
    holders = client.who_has(resident) if resident else {}
    load: Counter[str] = Counter()
    refs = []
    for i, (x, y, rows) in enumerate(zip(x_parts, y_parts, n_rows)):
        home = None
        if isinstance(x, Future):
            x_holders = set(holders.get(x.key, ()))
            y_holders = set(holders.get(y.key, ())) if isinstance(y, Future) else set()
            candidates = sorted((x_holders & y_holders) or x_holders)
            if candidates:
                home = min(candidates, key=lambda worker: load[worker])
                load[home] += 1
        refs.append(BlockRef(i, x, y, None if rows is None else int(rows), home))
    return refs


def _first(addresses: Any) -> str | None:
    return sorted(addresses)[0] if addresses else None
