"""Feeding a stream of ``(X, y)`` batches to the coordinator with backpressure.

:meth:`Coordinator.fit_stream` reads batches from any iterable (a generator, a
message-queue consumer, ...) only as fast as the cluster trains them: at most
``max_blocks`` blocks are scattered and waiting at any time, so memory stays
flat however long the stream. Each batch is validated before it is scattered;
a bad batch stops the reading, everything read before it is still trained,
and the error is raised at the end naming the batch. An error raised by the
stream itself (a broken queue) ends it the same way: an online service must
not lose what it trained because its source failed.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from distributed import Client

from .blocks import BlockRef, check_numpy, scatter_blocks, split_rows
from .outputs import shape_targets
from .rows import concatenate
from .wording import count, plural


def rejected_batch_message(index: int, error: Exception) -> str:
    """What ``fit_stream`` says when batch ``index`` (counted from 0) fails validation.

    Examples
    --------
    >>> rejected_batch_message(12, ValueError("X contains NaN"))
    'batch 12 of the stream was rejected: X contains NaN; the 12 batches before it were trained'
    >>> rejected_batch_message(1, ValueError("X contains NaN"))
    'batch 1 of the stream was rejected: X contains NaN; the batch before it was trained'
    >>> rejected_batch_message(0, ValueError("X contains NaN"))
    'batch 0 of the stream was rejected: X contains NaN; no batch before it, nothing was trained'
    """
    if index == 0:
        before = "no batch before it, nothing was trained"
    elif index == 1:
        before = "the batch before it was trained"
    else:
        before = f"the {index} batches before it were trained"
    return f"batch {index} of the stream was rejected: {error}; {before}"


def source_failure_note(batches: int, rows: int) -> str:
    """The note ``fit_stream`` adds to an error the stream raised after ``batches`` batches of ``rows`` rows.

    Examples
    --------
    >>> source_failure_note(31, 15_500)
    'fit_stream: the stream raised this after 31 batches (15,500 rows), which were trained: the global model and history keep them'
    >>> source_failure_note(1, 500)
    'fit_stream: the stream raised this after 1 batch (500 rows), which was trained: the global model and history keep it'
    >>> source_failure_note(0, 0)
    'fit_stream: the stream raised this before its first batch; nothing was trained'
    """
    if batches == 0:
        return "fit_stream: the stream raised this before its first batch; nothing was trained"
    which = "which was trained" if batches == 1 else "which were trained"
    return (
        f"fit_stream: the stream raised this after {count(batches, 'batch')} ({rows:,} {plural(rows, 'row')}), "
        f"{which}: the global model and history keep {'it' if batches == 1 else 'them'}"
    )


def as_pair(batch: Any) -> tuple[Any, Any]:
    """``batch`` as ``(X, y)``, or a ``TypeError`` saying what it is instead.

    Examples
    --------
    >>> as_pair([np.zeros((2, 3)), np.zeros(2)])[1]
    array([0., 0.])
    >>> as_pair(np.zeros((500, 20)))
    Traceback (most recent call last):
    ...
    TypeError: it is a numpy array of shape (500, 20); expected an (X, y) pair: fit_stream reads an iterable of (X, y) batches, such as a generator that yields X_batch, y_batch (one batch: fit_stream([(X, y)]))
    >>> as_pair((1, 2, 3))
    Traceback (most recent call last):
    ...
    TypeError: it is a tuple of 3 items; expected an (X, y) pair: fit_stream reads ...
    """
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    if isinstance(batch, (tuple, list)):
        what = f"a {type(batch).__name__} of {count(len(batch), 'item')}"
    elif isinstance(batch, np.ndarray):
        what = f"a numpy array of shape {batch.shape}"
    elif hasattr(batch, "shape"):
        what = f"a {type(batch).__name__} of shape {tuple(batch.shape)}"
    else:
        what = "None" if batch is None else f"a {type(batch).__name__}"
    raise TypeError(
        f"it is {what}; expected an (X, y) pair: fit_stream reads an iterable of (X, y) batches, such as "
        "a generator that yields X_batch, y_batch (one batch: fit_stream([(X, y)]))"
    )


class StreamFeeder:
    """Pull batches from ``batches`` into the coordinator's block queues on demand.

    Parameters
    ----------
    client : distributed.Client
    batches : iterable of (X, y)
        Numpy (or pandas) batches.
    max_blocks : int
        Most blocks waiting to be trained at any time (the backpressure bound).
    block_size : int
        Rows per block; a batch larger than this is cut into several blocks.
    n_features : int
        Features every batch must have.
    classes : ndarray or None
        Labels every classifier batch must draw from (one array per output
        for a multi-output classifier).
    is_classifier : bool
    multi_output : bool
        Whether batches carry a 2-d ``y``, of ``n_outputs`` columns when known.
    n_outputs : int or None
    check_names : callable, optional
        Called with each batch's ``X`` before it is validated; raises for
        feature names other than the model's (see :mod:`fedplugin.feature_names`).
    """

    def __init__(
        self,
        client: Client,
        batches: Iterable[tuple[Any, Any]],
        *,
        max_blocks: int,
        block_size: int,
        n_features: int | None,
        classes: Any,
        is_classifier: bool,
        multi_output: bool = False,
        n_outputs: int | None = None,
        check_names: Callable[[Any], Any] | None = None,
    ) -> None:
        try:
            self.iterator = iter(batches)
        except TypeError:
            raise TypeError(
                f"batches of type {type(batches).__name__} is not iterable; expected an iterable of (X, y) batches"
            ) from None
        self.client = client
        self.max_blocks = max_blocks
        self.block_size = block_size
        self.n_features = n_features
        self.classes = classes
        self.is_classifier = is_classifier
        self.multi_output, self.n_outputs = multi_output, n_outputs
        self.check_names = check_names
        self.exhausted = False
        #: Why the stream ended early: a rejected batch, or the stream's own error (raised by fit_stream).
        self.error: Exception | None = None
        self.batches_read = 0
        self.rows_read = 0
        self._next_index = 0
        self._pending: tuple[Any, Any] | None = None
        self._buffer: list[tuple[np.ndarray, np.ndarray]] = []
        self._buffered = 0

    def peek(self) -> tuple[Any, Any] | None:
        """The next ``(X, y)`` batch, read ahead (the first initialises the model); ``None`` at the end.

        A batch that is not a pair, or an error raised by the stream itself,
        ends the stream here and is kept in :attr:`error`: everything read
        before it is still trained.
        """
        if self._pending is None and not self.exhausted:
            try:
                batch = next(self.iterator)
            except StopIteration:
                self.exhausted = True
                return None
            except Exception as exc:  # the source failed (a broken queue); an interrupt still rolls back
                exc.add_note(source_failure_note(self.batches_read, self.rows_read))
                self._stop(exc)
                return None
            try:
                self._pending = as_pair(batch)
            except TypeError as exc:
                self._stop(TypeError(rejected_batch_message(self.batches_read, exc)))
        return self._pending

    def _stop(self, error: Exception) -> None:
        self.error, self.exhausted = error, True

    def outputs_of(self, batch: tuple[Any, Any]) -> int | None:
        """The number of outputs ``batch``'s ``y`` has (``None``: a single-output estimator)."""
        if not self.multi_output:
            return None
        y = np.asarray(batch[1])
        try:
            shape_targets(y, multi_output=True, n_outputs=self.n_outputs)
        except ValueError as exc:
            raise type(exc)(rejected_batch_message(self.batches_read, exc)) from exc
        return y.shape[1]

    def __call__(self, queues: dict[str, deque], blocks: dict[int, BlockRef], target: int) -> None:
        """Read batches until ``target`` blocks (at most ``max_blocks``) are queued.

        Small batches are coalesced into blocks of ``block_size`` rows (a task
        per tiny batch would drown in overhead); the blocks made in one call
        are scattered together, in a single round trip. Rows left over when
        the stream ends, or before a rejected batch, make one last short block.
        """
        queued = sum(len(queue) for queue in queues.values())
        target = min(max(target, 1), self.max_blocks)
        pairs: list[tuple[Any, Any]] = []
        while queued + len(pairs) < target and not self.exhausted:
            batch = self.peek()
            self._pending = None
            if batch is None:
                break
            try:
                X, y = batch
                if self.check_names is not None:
                    self.check_names(X)  # once per batch, from its columns
                X, y, _ = check_numpy(
                    X, y, n_features=self.n_features, classes=self.classes, is_classifier=self.is_classifier,
                    multi_output=self.multi_output, n_outputs=self.n_outputs,
                )
            except (ValueError, TypeError) as exc:
                self._stop(type(exc)(rejected_batch_message(self.batches_read, exc)))
                break
            self._buffer.append((X, y))
            self._buffered += len(y)
            self.batches_read += 1
            self.rows_read += len(y)
            if self._buffered >= self.block_size:
                pairs.extend(self._cut(flush=False))
        if self.exhausted and self._buffered:
            pairs.extend(self._cut(flush=True))
        if not pairs:
            return
        workers = itertools.cycle(sorted(queues))
        for block in scatter_blocks(self.client, pairs, first_index=self._next_index):
            blocks[block.index] = block
            owner = block.home if block.home in queues else next(workers)
            queues[owner].append((0, block.index))
        self._next_index += len(pairs)

    def _cut(self, flush: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        """Whole blocks from the buffered rows (``flush``: the short remainder too)."""
        if len(self._buffer) == 1:
            X, y = self._buffer[0]
        else:
            X = concatenate([x for x, _ in self._buffer])
            y = np.concatenate([y for _, y in self._buffer])
        whole = (len(y) // self.block_size) * self.block_size
        cut = len(y) if flush else whole
        pairs = split_rows(X[:cut], y[:cut], self.block_size)
        self._buffer = [(X[cut:], y[cut:])] if cut < len(y) else []
        self._buffered = len(y) - cut
        return pairs
