"""Functions the coordinator runs on workers, as tasks or through ``client.run``.

Tasks reach the plugin with ``get_worker().plugins[name]``; ``client.run``
callbacks receive the worker as ``dask_worker``. Each is a thin call into
:class:`~fedplugin.plugin.FederatedModelPlugin`, where the state lives.
"""

from __future__ import annotations

import asyncio
from typing import Any

from distributed import get_worker

from . import store


def _plugin(worker: Any, name: str) -> Any:
    try:
        return worker.plugins[name]
    except KeyError:
        known = sorted(n for n, p in worker.plugins.items() if hasattr(p, "train"))
        raise ValueError(
            f"worker {worker.address} has no fedplugin plugin named {name!r}; registered: {known}"
        ) from None


def train(name: str, *args: Any, **kwargs: Any) -> Any:
    """Task: train the worker's local model (see ``FederatedModelPlugin.train``)."""
    return _plugin(get_worker(), name).train(*args, **kwargs)


async def reload(name: str, dask_worker: Any = None) -> int | None:
    """``client.run``: adopt the stored global model (none stored: forget the model).

    Taking the plugin's lock may wait for a training block, so it happens in a
    thread: the worker's event loop never waits for it.
    """
    plugin = _plugin(dask_worker, name)
    model = await store.worker_fetch(dask_worker, name)
    loop = asyncio.get_running_loop()
    if model is None:
        await loop.run_in_executor(None, plugin.forget)
        return None
    return await loop.run_in_executor(None, plugin.set_global, model)


def request_stop(name: str, token: str, dask_worker: Any = None) -> None:
    """``client.run``: ask this worker's running task to stop after its block."""
    _plugin(dask_worker, name).request_stop(token)


def abort(name: str, tokens: list[str], dask_worker: Any = None) -> None:
    """``client.run``: stop the tasks of ``tokens`` at once, handing nothing over."""
    plugin = _plugin(dask_worker, name)
    for token in tokens:
        plugin.abort(token)


async def state(name: str, dask_worker: Any = None) -> dict[str, Any]:
    """``client.run``: a snapshot of this worker's model state (waits for a block in a thread)."""
    return await asyncio.get_running_loop().run_in_executor(None, _plugin(dask_worker, name).state)


def version(name: str, dask_worker: Any = None) -> int | None:
    """``client.run``: the global version this worker holds."""
    return _plugin(dask_worker, name).rounds.version


async def local_model(name: str, dask_worker: Any = None) -> Any:
    """``client.run``: this worker's local parameters and state (waits for a block in a thread).

    Parameters travel, not the estimator: some (a Birch's linked leaves) do not pickle.
    """
    return await asyncio.get_running_loop().run_in_executor(None, _plugin(dask_worker, name).local_parameters)


async def predict_local(name: str, X: Any, method: str, dask_worker: Any = None) -> Any:
    """``client.run``: label ``X`` with this worker's local model (in a thread: it may wait for a block)."""
    plugin = _plugin(dask_worker, name)
    return await asyncio.get_running_loop().run_in_executor(None, plugin.predict, X, method)


def describe(name: str, dask_worker: Any = None) -> dict[str, Any] | None:
    """``client.run``: the plugin's configuration, or ``None`` if absent."""
    plugin = dask_worker.plugins.get(name)
    if plugin is None or not hasattr(plugin, "train"):
        return None
    return {"estimator": plugin.estimator, "classes": plugin.classes}


def fedplugin_names(dask_worker: Any = None) -> list[str]:
    """``client.run``: names of the fedplugin plugins on this worker."""
    return sorted(n for n, p in dask_worker.plugins.items() if hasattr(p, "train"))
