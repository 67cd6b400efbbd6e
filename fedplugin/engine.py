"""The round engine: plan each worker's share, launch tasks, read reports, close rounds.

The client conducts; it never carries parameters. For each round it launches
training tasks (many blocks each) and reads their small
:class:`~fedplugin.local_training.TaskReport`; when every task of a round has
reported, it asks one worker to close the round (:mod:`fedplugin.exchange`):
that worker pulls the updates from its peers, combines them and pushes the new
global model to everyone.

With overlap, workers never wait for a round: the next round's tasks are
queued behind the current ones (when the policy fixes the round's size) or
launched as soon as a worker is done with a round, and the arriving global
model is merged into the local one without losing the progress made
meanwhile. Without overlap a round's tasks start only once the previous
round's model is on every worker: runs are bitwise reproducible.

``overlap="auto"`` (the default) overlaps only while training tasks last at
least :data:`AUTO_OVERLAP_RATIO` times as long as combining a round takes
(with shorter tasks, all of a task's progress would be made on a stale model).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
import uuid
from collections import deque
from concurrent.futures import CancelledError
from numbers import Integral
from typing import Any

from distributed import as_completed, wait
from distributed.comm.core import CommClosedError

from . import exchange, tasks
from .anchors import anchor_groups, train_key
from .exchange import RoundSummary
from .local_training import TaskReport
from .open_rounds import Closing, OpenRound, moving_average
from .queues import rebalance, shares_of, take
from .late_rounds import LateRoundsMixin
from .recovery import MAX_ATTEMPTS, WORKER_LOST, RecoveryMixin
from .sources import BlockSource

logger = logging.getLogger("fedplugin")

#: With ``overlap="auto"``: overlap once tasks last this many times a round's combining.
AUTO_OVERLAP_RATIO = 2.0
#: Seconds a round's combining is assumed to take until one is measured.
AUTO_FIRST_CLOSE_SECONDS = 0.02
#: Seconds a failed fit waits for its aborted tasks before cancelling them.
ABORT_WAIT_SECONDS = 30.0


class RoundEngine(RecoveryMixin, LateRoundsMixin):
    """Train every block of ``source`` through rounds, for one ``fit`` or ``fit_stream``.

    Parameters
    ----------
    coordinator : Coordinator
        Settings (policy, rule, overlap, ...) and the callbacks that record a
        closed round and find the workers.
    source : BlockSource
        The blocks and per-worker queues.
    bar : tqdm or None
        Progress bar, advanced by trained rows.
    """

    def __init__(self, coordinator: Any, source: BlockSource, bar: Any = None) -> None:
        self.coord = coordinator
        self.client = coordinator.client
        self.source = source
        self.bar = bar
        self.rounds: list[OpenRound] = []
        self.inflight: dict[Any, tuple[OpenRound, str, list]] = {}
        self.futures = as_completed(with_results=True, raise_errors=False)
        self.closing: Closing | None = None
        # What the client sends to combine a round, besides the call itself.
        self.rule_bytes = len(pickle.dumps((coordinator.aggregator, coordinator.compression)))
        self.attempts: dict[int, int] = {}
        self.diverged: dict[tuple, tuple[str, str]] = {}  # (epoch, block) -> (worker, error) while it diverged
        self.reset_workers: set[str] = set()  # workers reset after diverging in this fit
        self.stopping = False  # see stop_early
        self.next_base = coordinator.version
        self.workers = coordinator._workers()  # refreshed by every round's summary
        policy = coordinator.policy
        self.checks_on_workers = policy.checks_on_workers
        self.task_seconds: float | None = None  # moving averages, for overlap="auto"
        self.close_seconds: float | None = None
        self.carried: dict[Any, str] = {}  # task moved to a later round -> its own round's token: its worker is late
        self.head_since: dict[int, float] = {}  # round -> when it became the oldest (a Quorum's deadline)

    @property
    def overlapping(self) -> bool:
        """Whether the next rounds overlap (see ``overlap="auto"``)."""
        mode = self.coord.overlap
        if mode != "auto":
            return bool(mode)
        if self.task_seconds is None:
            return False  # measure one task first
        close = AUTO_FIRST_CLOSE_SECONDS if self.close_seconds is None else self.close_seconds
        return self.task_seconds >= AUTO_OVERLAP_RATIO * close

    @property
    def queue_ahead(self) -> bool:
        """Queue the next round's tasks behind the current ones (rounds of a fixed size)."""
        return self.overlapping and not self.checks_on_workers

    def stop_early(self) -> None:
        """Launch no more tasks; running ones stop after their block (their other blocks are left)."""
        if not self.stopping:
            self.stopping = True
            for rnd in self.rounds:
                self._stop_tasks_of(rnd)

    @property
    def tokens(self) -> list[str]:
        """Tokens of the open rounds (stop requests name them)."""
        return [r.token for r in self.rounds]

    def run(self) -> None:
        """Train until every block is trained and every round combined."""
        anchors = anchor_groups(self.client)
        try:
            self._open_rounds()
            while True:
                # Reports are fetched in the background as tasks finish.
                for report in self._reports():
                    if report is None:  # the oldest round's deadline passed
                        self._close_finished_rounds()
                        continue
                    future, result = report
                    self.carried.pop(future, None)
                    rnd, worker, items = self.inflight.pop(future)
                    rnd.pending -= 1
                    self._collect(future, result, rnd, worker, items)
                    # Let the scheduler forget the finished task: if its worker
                    # died now, Dask must not run it (train its blocks) again.
                    future.release()
                    self._next_task(rnd, worker)
                    self._close_finished_rounds()
                if self.closing is None and not self.rounds:
                    return
                self._finish_close(block=True)  # no task left: wait for the round being combined
                self._close_finished_rounds()
        except BaseException:
            self.abort()
            raise
        finally:
            for future in anchors:
                future.release()

    # ------------------------------------------------------------- launching
    def _open_rounds(self) -> None:
        """Open a round if none is open; with ``queue_ahead`` keep two open."""
        depth = 2 if self.queue_ahead else 1
        while len(self.rounds) < depth and self._open_round() is not None:
            pass

    def _open_round(self, only_idle: bool = False) -> OpenRound | None:
        """Plan and launch the next round; ``only_idle``: busy workers join it when they finish."""
        coord, source = self.coord, self.source
        if self.stopping:
            return None
        rebalance(source.queues, self.workers)
        # With a sample, the others' blocks wait in their queues (or are taken by a sampled worker).
        workers = self.workers if coord.sample is None else coord.sample.choose(self.workers, self.next_base)
        late = self._late_workers()  # they catch up first; the others take their blocks
        workers = [w for w in workers if w not in late]
        if not workers:
            return None
        budget = coord.policy.blocks_per_round(len(workers))
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, Integral) or budget < 1):
            raise ValueError(f"{type(coord.policy).__name__}.blocks_per_round returned {budget!r}; expected an int >= 1 or None")
        source.top_up(budget or len(workers) * coord.max_task_blocks)
        remaining = budget if budget and not source.exhausted else source.queued()
        rnd = OpenRound(
            base=self.next_base, token=uuid.uuid4().hex, start=time.perf_counter(),
            shares=shares_of(budget, workers, remaining), counted=budget is not None,
        )
        busy = {w for _, w, _ in self.inflight.values()} if only_idle else set()
        for worker in workers:
            if worker not in busy:
                self._launch(rnd, worker)
        if rnd.pending == 0:
            return None
        self.rounds.append(rnd)
        self.next_base += 1
        return rnd

    def _launch(self, rnd: OpenRound, worker: str) -> bool:
        """Launch ``worker``'s tasks of ``rnd``: its whole share if the round is counted, else one."""
        launched = False
        while self._launch_one(rnd, worker):
            launched = True
            if not rnd.counted:
                break
        return launched

    def _launch_one(self, rnd: OpenRound, worker: str) -> bool:
        coord, source = self.coord, self.source
        limit = min(rnd.shares.get(worker, 0), coord.max_task_blocks)
        if limit <= 0 or self.stopping:
            return False
        items = take(source.queues, worker, limit)
        if not items and not source.exhausted:
            source.top_up(int(limit))
            items = take(source.queues, worker, limit)
        if not items:
            return False
        rnd.shares[worker] -= len(items)
        args = [(index, source.blocks[index].x, source.blocks[index].y) for _, index in items]
        future = self.client.submit(
            tasks.train, coord.name, rnd.token, args, coord.policy, time.perf_counter() - rnd.start, rnd.base,
            coord.scorer, key=train_key(), workers=[worker], allow_other_workers=True,
            pure=False,
        )
        rnd.client_bytes += source.wire_bytes(items)
        rnd.pending += 1
        self.inflight[future] = (rnd, worker, items)
        self.futures.add(future)
        return True

    def _next_task(self, rnd: OpenRound, worker: str) -> None:
        """Give ``worker`` its next task: more of ``rnd``, else (overlap) the next round's."""
        if rnd.accepting and not rnd.counted and self._launch(rnd, worker):
            return
        if not self.overlapping or self.queue_ahead:
            return
        later = [r for r in self.rounds if r.base > rnd.base]
        if later:
            if not any(w == worker and r is later[0] for r, w, _ in self.inflight.values()):
                self._launch(later[0], worker)
        elif not rnd.accepting and rnd is self.rounds[-1]:
            # The others are still busy with ``rnd``: launching them now would
            # let their queued task take blocks before they are free.
            self._open_round(only_idle=True)

    # ------------------------------------------------------------- reports
    def _collect(self, future: Any, result: Any, rnd: OpenRound, worker: str, items: list) -> None:
        if future.status != "finished":
            error = result[1] if isinstance(result, tuple) else CancelledError(f"task {future.key} was cancelled")
            if self._worker_lost(error, worker):
                self._lost(rnd, worker, items, error)
                return
            raise error
        report: TaskReport = result
        rnd.client_bytes += len(pickle.dumps(report))
        if report.diverged is not None:
            self._diverged(rnd, report, items)
            return
        trained = items[: len(report.trained)]
        leftover = items[len(report.trained):]  # blocks are trained in order: the tail is untrained
        if leftover:
            rnd.handed_back += len(leftover)
            self.source.queues.setdefault(report.worker, deque()).extendleft(reversed(leftover))
        if report.worker != worker and worker not in self.coord._workers():  # rare: ask the scheduler
            rnd.retrained += len(trained)  # the scheduler ran it again elsewhere after its worker died
        if report.handed_over:
            rnd.trained_by.setdefault(report.worker, []).extend(trained)
            rnd.samples_by[report.worker] = rnd.samples_by.get(report.worker, 0) + report.samples
            rnd.score_by[report.worker] = rnd.score_by.get(report.worker, 0.0) + report.score_sum
        for item in trained:
            self.diverged.pop(item, None)  # trained again without diverging
        self.task_seconds = moving_average(self.task_seconds, report.seconds)
        if self.bar is not None:
            self.bar.update(report.samples)
        # A late task moved here from an earlier round checked its policy against that round: not this one's trigger.
        if report.trigger is not None and rnd.trigger is None and report.base == rnd.base:
            rnd.trigger, rnd.accepting = report.trigger, False
            if self.coord.preempt:
                self._stop_tasks_of(rnd)

    # ------------------------------------------------------------- closing
    def _close_finished_rounds(self) -> None:
        """Start combining the oldest round once all its tasks reported (one at a time)."""
        self._finish_close(block=False)
        while self.closing is None and self.rounds and self._may_close(self.rounds[0]):
            rnd = self.rounds.pop(0)
            self.head_since.pop(rnd.base, None)
            rnd.late = self._carry_late(rnd)
            self._start_close(rnd, attempt=0)
            if self.overlapping and (not self.rounds or self.queue_ahead):
                self._open_rounds()  # the workers go on while the round is combined
            self._finish_close(block=False)

    def _start_close(self, rnd: OpenRound, attempt: int) -> None:
        """Ask a worker to combine ``rnd``, without waiting: the client keeps launching."""
        known = self.workers if attempt == 0 else self.coord._workers()
        participants = sorted(rnd.trained_by)
        candidates = [w for w in participants if w in known] + [w for w in known if w not in participants]
        if not candidates:
            self.coord._wait_for_workers()
            candidates = self.coord._workers()
        aggregator = candidates[attempt % len(candidates)]
        call = self.client.run(
            exchange.close_round, self.coord.name, rnd.base, participants, self.coord.aggregator,
            codec=self.coord.compression, late=tuple(rnd.late), staleness_exponent=self._staleness_exponent,
            trigger=rnd.trigger, retry=attempt > 0, workers=[aggregator], on_error="return", asynchronous=True,
        )
        closing = Closing(rnd, attempt, aggregator, asyncio.run_coroutine_threadsafe(call, self.client.loop.asyncio_loop))
        started = time.perf_counter()
        # This round's own latency, stamped when its answer lands.
        closing.future.add_done_callback(lambda _: setattr(closing, "seconds", time.perf_counter() - started))
        self.closing = closing

    def _finish_close(self, block: bool) -> None:
        """Record the round being combined once its summary is back (``block``: wait for it)."""
        closing = self.closing
        if closing is None or not (block or closing.future.done()):
            return
        self.closing = None
        rnd, attempt, aggregator = closing.round, closing.attempt, closing.aggregator
        try:
            answer = closing.future.result().get(aggregator, CommClosedError(f"worker {aggregator} did not answer"))
        except Exception as exc:  # the aggregator's connection broke
            answer = exc
        if isinstance(answer, RoundSummary):
            self.close_seconds = moving_average(self.close_seconds, closing.seconds or answer.seconds)
            self._record(rnd, answer)
        elif isinstance(answer, WORKER_LOST) and attempt + 1 < MAX_ATTEMPTS:
            self._start_close(rnd, attempt + 1)  # another worker combines it
        elif isinstance(answer, WORKER_LOST):
            raise RuntimeError(f"no worker could combine round {rnd.base}") from answer
        else:
            raise answer

    def _record(self, rnd: OpenRound, summary: RoundSummary) -> None:
        rnd.client_bytes += len(pickle.dumps(summary)) + self.rule_bytes
        self.workers = summary.everyone or self.workers
        for worker in summary.missing:  # its update died with it (or with its reset): train its blocks again
            lost = rnd.trained_by.pop(worker, [])
            rnd.samples_by.pop(worker, None)
            rnd.score_by.pop(worker, None)
            (self._retrain if worker in self.reset_workers else self._requeue)(rnd, lost)
        done = not self.rounds and (self.stopping or (not self.source.queued() and self.source.exhausted))  # lazily
        self.coord._record_round(rnd, summary, "final" if done else (rnd.trigger or "count"))
        self.source.release({index for items in rnd.trained_by.values() for _, index in items})
        if not self.rounds:
            self._open_rounds()  # synchronous mode, requeued blocks, or more of a stream

    def abort(self) -> None:
        """Stop every open round's tasks at once and wait for them (and a round being combined) to end."""
        if self.closing is not None:
            try:
                self.closing.future.result()
            except Exception:
                pass
            self.closing = None
        tokens = self.tokens + sorted(set(self.carried.values()))
        if tokens:
            self.client.run(tasks.abort, self.coord.name, tokens, on_error="return")
        if self.inflight:
            # An aborted task stops after its block; one that does not (its
            # worker never heard of the abort) is cancelled after a while.
            done, not_done = wait(list(self.inflight), timeout=ABORT_WAIT_SECONDS)
            if not_done:
                self.client.cancel(list(not_done))
        self.inflight.clear()
