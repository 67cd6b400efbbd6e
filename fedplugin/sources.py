"""Where a fit's blocks come from: one interface for ``fit`` and ``fit_stream``.

A block source keeps per-worker queues of ``(epoch, block index)`` and the
:class:`~fedplugin.blocks.BlockRef` of every block not yet trained. The round
engine takes blocks from the queues; a stream source reads more batches when
asked (:meth:`BlockSource.top_up`) and forgets blocks once their round is
combined (:meth:`BlockSource.release`).
"""

from __future__ import annotations

import pickle
from collections import deque

from .blocks import BlockRef, TrainingData
from .queues import initial_queues
from .stream import StreamFeeder


class BlockSource:
    """The blocks of one in-memory or dask input: all known up front."""

    def __init__(self, blocks: dict[int, BlockRef], queues: dict[str, deque]) -> None:
        self.blocks = blocks
        self.queues = queues

    @classmethod
    def from_data(cls, data: TrainingData, epochs: int, workers: list[str]) -> BlockSource:
        return cls({b.index: b for b in data.blocks}, initial_queues(data, epochs, workers))

    @property
    def exhausted(self) -> bool:
        """True when no block will be added any more."""
        return True

    def queued(self) -> int:
        return sum(len(queue) for queue in self.queues.values())

    def top_up(self, target: int) -> None:
        """Make up to ``target`` blocks wait in the queues, if more can come."""

    def release(self, indices: set[int]) -> None:
        """Blocks whose round is combined; a source may forget them."""

    def wire_bytes(self, items: list) -> int:
        """Bytes the references to ``items``' blocks cost in a task message (keys, or culled graphs)."""
        total = 0
        for _, index in items:
            block = self.blocks[index]
            if block.wire_bytes is None:  # measured once per block
                refs = tuple(getattr(part, "key", part) for part in (block.x, block.y))
                block.wire_bytes = len(pickle.dumps(refs))
            total += block.wire_bytes
        return total


class StreamSource(BlockSource):
    """The blocks of a stream, read on demand through a :class:`StreamFeeder`."""

    def __init__(self, feeder: StreamFeeder, workers: list[str]) -> None:
        super().__init__({}, {w: deque() for w in workers})
        self.feeder = feeder

    @property
    def exhausted(self) -> bool:
        # Reads one batch ahead when none is pending: the end of a stream is
        # only known by trying to read past it.
        return self.feeder.exhausted or self.feeder.peek() is None

    def top_up(self, target: int) -> None:
        # Backpressure counts every block the client still holds: queued,
        # training, or trained but not yet combined into the global model.
        target = min(target, self.feeder.max_blocks - len(self.blocks) + self.queued())
        if target > self.queued():
            self.feeder(self.queues, self.blocks, target)

    def release(self, indices: set[int]) -> None:
        waiting = {index for queue in self.queues.values() for _, index in queue}
        for index in indices - waiting:
            self.blocks.pop(index, None)
