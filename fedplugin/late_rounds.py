"""The round engine's side of :mod:`fedplugin.stragglers`: closing a round without its late workers.

With ``Coordinator(stragglers=Quorum(...))`` the oldest open round may close
while some of its workers still train. Their running tasks, and the blocks
they already trained for it, move to the next open round (one is opened if
none is); the closing round names them as late, so they keep their progress
and hand it over to that round. Rounds opened while a worker is late leave
it out (tasks queued for it before it became late still run).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from .open_rounds import OpenRound
from .stragglers import STALENESS_EXPONENT

#: Longest sleep while waiting for a report when a round's deadline is pending.
POLL_SECONDS = 0.005


class LateRoundsMixin:
    """The :class:`~fedplugin.engine.RoundEngine` methods for rounds that close without late workers."""

    coord: Any
    rounds: list[OpenRound]
    inflight: dict[Any, tuple[OpenRound, str, list]]
    futures: Any
    next_base: int
    carried: dict[Any, str]
    head_since: dict[int, float]
    closing: Any
    _open_round: Any  # RoundEngine's

    def _reports(self) -> Iterator[tuple[Any, Any] | None]:
        """Finished tasks as ``(future, result)``; ``None`` when the oldest round's deadline passes."""
        while True:
            wait = self._until_deadline()
            if wait is None or self.futures.has_ready():
                try:
                    yield next(self.futures)
                except StopIteration:
                    return
            elif self.futures.is_empty():
                return
            elif wait <= 0 and self.closing is not None and not self.closing.future.done():
                time.sleep(POLL_SECONDS)  # the round cannot close before the one being combined has
            elif wait <= 0:
                self.head_since[self.rounds[0].base] = float("-inf")  # past: ticks once
                yield None
            else:
                time.sleep(min(wait, POLL_SECONDS))

    def _until_deadline(self) -> float | None:
        """Seconds until the oldest open round's deadline (``None``: none pending)."""
        quorum = self.coord.stragglers
        if quorum is None or quorum.deadline is None or not self.rounds:
            return None
        since = self.head_since.setdefault(self.rounds[0].base, time.perf_counter())
        if since == float("-inf"):
            return None
        return since + quorum.deadline - time.perf_counter()

    @property
    def _staleness_exponent(self) -> float:
        quorum = self.coord.stragglers
        return STALENESS_EXPONENT if quorum is None else quorum.staleness_exponent

    def _may_close(self, rnd: OpenRound) -> bool:
        """Every task of ``rnd`` reported, or (with a quorum) enough of its workers are done."""
        quorum = self.coord.stragglers
        if rnd.pending == 0:
            return True
        if quorum is None or (rnd.accepting and not rnd.counted):
            return False  # a round ended by its workers closes once it stops accepting tasks
        busy = self._busy_in(rnd)
        workers = set(rnd.trained_by) | busy
        done = len(workers - busy)
        since = self.head_since.get(rnd.base, time.perf_counter())
        waited = float("inf") if since == float("-inf") else time.perf_counter() - since
        return quorum.ready(done, len(workers), waited)

    def _busy_in(self, rnd: OpenRound) -> set[str]:
        return {w for r, w, _ in self.inflight.values() if r is rnd}

    def _stop_tasks_of(self, rnd: OpenRound) -> None:
        """Ask the running tasks of ``rnd`` to stop after their block (moved tasks by their own token)."""
        by_token: dict[str, list[str]] = {}
        for future, (owner, worker, _) in self.inflight.items():
            if owner is rnd:
                by_token.setdefault(self.carried.get(future, rnd.token), []).append(worker)
        for token, workers in by_token.items():
            self.coord._request_stop(token, workers)

    def _late_workers(self) -> set[str]:
        """Workers whose moved tasks have not reported yet."""
        return {self.inflight[f][1] for f in self.carried if f in self.inflight}

    def _carry_late(self, rnd: OpenRound) -> list[str]:
        """Move the tasks and trained blocks of ``rnd``'s late workers to the next round; return them."""
        late = sorted(self._busy_in(rnd))
        if not late:
            return []
        target = next((r for r in self.rounds if r.base > rnd.base), None)
        if target is None:
            target = self._open_round(only_idle=True) or self._empty_round(rnd)
        for future, (owner, worker, items) in list(self.inflight.items()):
            if owner is rnd:
                self.inflight[future] = (target, worker, items)
                rnd.pending -= 1
                target.pending += 1
                self.carried.setdefault(future, rnd.token)  # stop requests name the token it was launched with
        for worker in late:
            target.trained_by.setdefault(worker, []).extend(rnd.trained_by.pop(worker, []))
            for mine, theirs in ((rnd.samples_by, target.samples_by), (rnd.score_by, target.score_by)):
                if worker in mine:
                    theirs[worker] = theirs.get(worker, 0) + mine.pop(worker)
        return late

    def _empty_round(self, rnd: OpenRound) -> OpenRound:
        """A round with no task of its own, to hold late tasks (no worker is idle, or no block is left)."""
        target = OpenRound(
            base=self.next_base, token=uuid.uuid4().hex, start=time.perf_counter(), shares={}, counted=rnd.counted,
        )
        target.accepting = rnd.accepting
        self.rounds.append(target)
        self.next_base += 1
        return target


__all__ = ["LateRoundsMixin"]
