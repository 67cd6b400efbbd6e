"""Round-ending signals from the workers, and stopping their tasks early.

A worker whose policy ends a round (time, drift, ...) logs an event on the
Dask topic ``fedplugin-<name>``; :class:`SignalsMixin` gives the
:class:`~fedplugin.Coordinator` the subscription, the record of the latest
signals, and (with ``preempt=True``) the request that stops the other
workers' tasks after their current block.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from . import tasks


class SignalsMixin:
    """Listening to the workers' round-ending signals, for a coordinator.

    Needs ``client``, ``name``, ``preempt`` and ``_engine``.
    """

    #: How many of the latest signals ``signals`` keeps.
    SIGNALS_KEPT = 1000

    def _listen_to_workers(self) -> None:
        #: The latest round-ending signals workers sent (most recent last).
        self.signals: deque[dict[str, Any]] = deque(maxlen=self.SIGNALS_KEPT)
        self.client.subscribe_topic(f"fedplugin-{self.name}", self._on_signal)

    def _stop_listening(self) -> None:
        self.client.unsubscribe_topic(f"fedplugin-{self.name}")

    async def _on_signal(self, event: tuple[float, dict[str, Any]]) -> None:
        """A worker ended the round: with ``preempt``, stop the others' tasks now.

        Runs on the client's event loop, so it must not block.
        """
        _, message = event
        self.signals.append(message)
        engine = self._engine
        if self.preempt and engine is not None and message.get("token") in engine.tokens:
            await self.client.run(
                tasks.request_stop, self.name, message["token"], on_error="ignore", asynchronous=True
            )

    def _request_stop(self, token: str, workers: list[str]) -> None:
        if workers:
            self.client.run(tasks.request_stop, self.name, token, workers=sorted(set(workers)), on_error="return")
