"""Running a fit's rounds for a coordinator, and what happens after each one.

:class:`RecordingMixin` gives the :class:`~fedplugin.Coordinator` the loop
that runs the round engine, and the step the engine calls when a round has
been combined on the cluster: keep its record, score the global model on
``validation_data``, call the user's callbacks (see :mod:`fedplugin.callbacks`)
and stop the fit early when :class:`~fedplugin.EarlyStopping` says so; and,
if a fit fails, the rollback to where it started.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from . import store, tasks
from .callbacks import EarlyStopping
from .engine import RoundEngine
from .exchange import RoundSummary
from .history import round_record
from .messaging import prompt_messages
from .open_rounds import OpenRound
from .progress import progress_bar
from .sources import BlockSource
from .store import params_nbytes
from .user_warning import warn_user
from .wording import count

logger = logging.getLogger("fedplugin")


def one_at_a_time(method: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse a second call of ``method`` (``fit``, ``fit_stream``) while one runs, before it changes anything."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._training.acquire(blocking=False):
            raise RuntimeError(
                f"this Coordinator of plugin {self.name!r} is already training (fit or fit_stream in another "
                "thread); call it from one thread at a time"
            )
        try:
            return method(self, *args, **kwargs)
        finally:
            self._training.release()

    return guarded


class RecordingMixin:
    """Runs the engine and records its rounds, for a coordinator.

    Needs ``client``, ``name``, ``progress``, ``scorer``, ``history``,
    ``callbacks``, ``validation_data``, ``worker_timeout``, ``_global``,
    ``_total_samples``, ``_engine``, ``_dashboard``, ``score()``, ``_cached_global()``,
    ``_autosave()``.
    """

    @contextmanager
    def _rollback_on_error(self) -> Iterator[None]:
        """On any error in a fit: the stored model, every worker, the history as before.

        The stored model to go back to was pinned when the fit started (``_follow_store(pin=True)``).
        """
        snapshot = (self._global, self.history.snapshot(), self._total_samples)
        try:
            yield
        except BaseException:
            self._global, history, self._total_samples = snapshot
            self.history.restore(history)
            store.restore(self.client, self.name)
            self.client.run(tasks.reload, self.name, on_error="return")
            self._autosave()
            raise

    def _run(self, source: BlockSource, total: int | None) -> None:
        for callback in self.callbacks:
            if isinstance(callback, EarlyStopping):
                callback.reset()  # each fit watches its own rounds
        bar = progress_bar(self.progress, total, self.name)
        self._engine = RoundEngine(self, source, bar)
        try:
            with prompt_messages(self.client):
                self._engine.run()
        finally:
            self._engine = None
            self._dashboard.flush()
            if bar is not None:
                bar.close()

    def _record_round(self, rnd: OpenRound, summary: RoundSummary, trigger: str) -> None:
        """A round was combined on the cluster: keep its record (the engine calls this)."""
        for worker in summary.excluded:
            warn_user(
                f"worker {worker} sent non-finite parameters; left out of round {summary.rounds}",
                RuntimeWarning,
            )
        samples = sum(rnd.samples_by.values())
        self._total_samples += samples
        self._global = replace(self._global, version=summary.version, rounds=summary.rounds)
        online = self.scorer is not None and samples > 0
        if self.validation_data is not None:
            rnd.client_bytes += self._global_nbytes()  # the model is fetched to be scored
        record = round_record(rnd, summary, trigger, self._total_samples, online)
        if self.validation_data is not None:
            record.metrics["validation_score"] = self.score(*self.validation_data)
        self.history.append(record)
        self._dashboard.publish(record, rnd.samples_by)
        self._autosave()
        logger.info(
            "round %d (%s): %s from %s",
            summary.rounds, trigger, count(samples, "sample"), count(len(summary.workers), "worker"),
        )
        bar = self._engine.bar if self._engine is not None else None
        if bar is not None:
            bar.set_postfix(round=self.rounds, version=self.version)
        for callback in self.callbacks:
            callback(record)
        stop = any(isinstance(c, EarlyStopping) and c.stop for c in self.callbacks)
        if stop and self._engine is not None and not self._engine.stopping:
            logger.info("round %d: early stopping; the blocks not yet trained are left", summary.rounds)
            self._engine.stop_early()

    def _global_nbytes(self) -> int:
        return params_nbytes(self.adapter.get_params(self._cached_global()))

    def _workers(self) -> list[str]:
        workers = store.worker_addresses(self.client)
        if not workers:
            self._wait_for_workers()
            workers = store.worker_addresses(self.client)
        return workers

    def _wait_for_workers(self) -> None:
        """Wait (up to ``worker_timeout``) until at least one worker is running."""
        try:
            self.client.wait_for_workers(1, timeout=self.worker_timeout)
        except TimeoutError as exc:
            raise RuntimeError(
                f"no worker came back within worker_timeout={self.worker_timeout} s; the cluster is gone"
            ) from exc


__all__ = ["RecordingMixin", "one_at_a_time"]
