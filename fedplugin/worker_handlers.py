"""The RPC handlers a worker answers for fedplugin, installed by :meth:`FederatedModelPlugin.setup`.

``fedplugin_handover`` gives the worker that combines a round this worker's
update; ``fedplugin_reduce`` makes this worker the head of a group in a
reduction tree; ``fedplugin_forward`` installs a new global model here and
passes it on down the push tree (see :mod:`fedplugin.exchange`).
"""

from __future__ import annotations

from typing import Any

from distributed.protocol import to_serialize

from .exchange import forward, reduce_here, unwrap
from .store import GlobalModel


def install(worker: Any) -> None:
    """Answer fedplugin's requests on ``worker`` (idempotent: every plugin's setup calls it)."""
    worker.handlers["fedplugin_handover"] = _dispatch(worker, _handover, "fedplugin_handover")
    worker.handlers["fedplugin_forward"] = _forwarder(worker)
    worker.handlers["fedplugin_reduce"] = _dispatch(worker, _reduce, "fedplugin_reduce")


def _dispatch(worker: Any, handler: Any, op: str) -> Any:
    """A worker RPC handler that finds the named plugin and calls ``handler(plugin, ...)``."""

    def call(name: str, **kwargs: Any) -> Any:
        from .plugin import FederatedModelPlugin  # the plugin module installs these handlers

        plugin = worker.plugins.get(name)
        if plugin is None or not isinstance(plugin, FederatedModelPlugin):
            raise ValueError(f"worker {worker.address} has no fedplugin plugin named {name!r}")
        return handler(plugin, **kwargs)

    call.__name__ = op  # distributed logs handlers by name
    return call


def _forwarder(worker: Any) -> Any:
    async def fedplugin_forward(name: str, model: GlobalModel, targets: list[str]) -> int:
        return await forward(worker, name, model, targets)

    return fedplugin_forward


def _reduce(plugin: Any, job: Any, members: list[str]) -> Any:
    return reduce_here(plugin.worker, job, members)  # a coroutine: distributed awaits it


def _handover(plugin: Any, base: int, current: bool = False, codec: Any = None) -> Any:
    update = plugin.update_for(base, current, unwrap(codec))
    # to_serialize: the arrays travel as zero-copy frames, not inside a pickle
    return None if update is None else to_serialize(update)
