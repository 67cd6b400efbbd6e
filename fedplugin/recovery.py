"""What the round engine does when a worker is lost or its training diverges.

A lost worker's blocks (those of its running tasks, and those whose update
died with it) are trained again by the others; a block lost too often stops
the fit. A worker whose ``partial_fit`` diverged has reset itself to the global
model (``plugin.train``): its blocks of every open round are trained again,
and a block that diverges twice stops the fit with :class:`TrainingDiverged`.
"""

from __future__ import annotations

import logging
from concurrent.futures import CancelledError
from typing import Any

from distributed.comm.core import CommClosedError
from distributed.scheduler import KilledWorker

from .blocks import rescatter_lost
from .divergence import TrainingDiverged, diverged_once, diverged_twice
from .local_training import TaskReport
from .open_rounds import OpenRound
from .queues import requeue
from .user_warning import warn_user

logger = logging.getLogger("fedplugin")

#: How often a block may be lost with its worker before ``fit`` gives up.
MAX_ATTEMPTS = 3
#: What a training task raises when its worker, or the data it held, died.
WORKER_LOST = (KilledWorker, CancelledError, CommClosedError, OSError)


class RecoveryMixin:
    """The :class:`~fedplugin.engine.RoundEngine` methods that train lost or diverged blocks again."""

    coord: Any
    client: Any
    source: Any
    rounds: list[OpenRound]
    inflight: dict[Any, tuple[OpenRound, str, list]]
    attempts: dict[int, int]
    diverged: dict[tuple, tuple[str, str]]
    reset_workers: set[str]
    workers: list[str]

    def _worker_lost(self, error: BaseException, worker: str) -> bool:
        """Did the task fail because its worker died (not an I/O error of the user's data)?"""
        if isinstance(error, (KilledWorker, CancelledError)):
            return True
        return isinstance(error, OSError) and worker not in self.coord._workers()

    def _lost(self, rnd: OpenRound, worker: str, items: list, exc: BaseException) -> None:
        """The task's worker died: train its blocks again."""
        logger.warning("training task on %s failed (%r); blocks to train again: %d", worker, exc, len(items))
        self.coord._wait_for_workers()
        self.workers = self.coord._workers()
        rescatter_lost(self.client, list(self.source.blocks.values()))
        self._requeue(rnd, items)
        if rnd.accepting:
            # Busy: a task of this round, or of a later one (a round's task must
            # not run after a later round's task on the same worker).
            busy = {w for r, w, _ in self.inflight.values() if r.base >= rnd.base}
            for idle in self.workers:
                if idle not in busy:
                    self._launch(rnd, idle)

    def _requeue(self, rnd: OpenRound, items: list) -> None:
        for _, index in items:
            self.attempts[index] = self.attempts.get(index, 0) + 1
            if self.attempts[index] >= MAX_ATTEMPTS:
                raise RuntimeError(f"block {index} was lost with its worker {MAX_ATTEMPTS} times; giving up")
        self._retrain(rnd, items)

    def _retrain(self, rnd: OpenRound, items: list) -> None:
        """Train ``items`` again in ``rnd``: each of its workers' share grows by the blocks it is dealt."""
        rnd.retrained += len(items)
        members = [w for w in rnd.shares if w in self.workers] or self.workers  # a sample stays a sample
        for worker, count in requeue(self.source.queues, members, items).items():
            rnd.shares[worker] = rnd.shares.get(worker, 0) + count

    def _diverged(self, rnd: OpenRound, report: TaskReport, items: list) -> None:
        """A worker diverged and reset itself (``plugin.train``): its blocks of the open rounds are
        trained again (a round being combined finds it missing); a block diverging twice stops the fit."""
        index, message = report.diverged
        item = next(item for item in items if item[1] == index)
        if item in self.diverged:
            raise TrainingDiverged(diverged_twice(index, self.diverged[item], (report.worker, message)))
        self.diverged[item] = (report.worker, message)
        self.reset_workers.add(report.worker)
        warn_user(diverged_once(index, report.worker, message), RuntimeWarning)
        for open_round in self.rounds:
            open_round.diverged.add(report.worker)
            open_round.samples_by.pop(report.worker, None)
            open_round.score_by.pop(report.worker, None)
            self._retrain(open_round, open_round.trained_by.pop(report.worker, []))
        self._retrain(rnd, items)

