"""Functions the coordinator runs on workers, as tasks or through ``client.run``.

Tasks reach the plugin with ``get_worker().plugins[name]``; ``client.run``
callbacks receive the worker as ``dask_worker``. Each is a thin call into
:class:`~fedplugin.plugin.FederatedModelPlugin`, where the state lives.
"""

from __future__ import annotations

from typing import Any

from distributed import get_worker

from .store import STORE_NAME


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


def set_global(name: str, payload: bytes, dask_worker: Any = None) -> int:
    """``client.run``: install a global model on this worker."""
    return _plugin(dask_worker, name).set_global(payload)


def request_stop(name: str, token: str, dask_worker: Any = None) -> None:
    """``client.run``: ask this worker's running task to stop after its block."""
    _plugin(dask_worker, name).request_stop(token)


def state(name: str, dask_worker: Any = None) -> dict[str, Any]:
    """``client.run``: a snapshot of this worker's model state."""
    return _plugin(dask_worker, name).state()


def local_model(name: str, dask_worker: Any = None) -> Any:
    """``client.run``: a copy of this worker's local model."""
    return _plugin(dask_worker, name).local_model()


def predict(name: str, X: Any, method: str, source: str, dask_worker: Any = None) -> Any:
    """``client.run``: label ``X`` on this worker (see ``FederatedModelPlugin.predict``)."""
    return _plugin(dask_worker, name).predict(X, method, source)


def describe(name: str, dask_worker: Any = None) -> dict[str, Any] | None:
    """``client.run``: the plugin's configuration, or ``None`` if absent."""
    plugin = dask_worker.plugins.get(name)
    if plugin is None or not hasattr(plugin, "train"):
        return None
    return {"estimator": plugin.estimator, "classes": plugin.classes}


def fedplugin_names(dask_worker: Any = None) -> list[str]:
    """``client.run``: names of the fedplugin plugins on this worker."""
    return sorted(n for n, p in dask_worker.plugins.items() if hasattr(p, "train"))


def store_put(name: str, version: int, payload: bytes, force: bool = False, dask_scheduler: Any = None) -> int:
    """``client.run_on_scheduler``: keep a global model in the scheduler's store."""
    return dask_scheduler.plugins[STORE_NAME].put(name, version, payload, force)


def store_get(name: str, dask_scheduler: Any = None) -> bytes | None:
    """``client.run_on_scheduler``: the stored global model, or ``None``."""
    store = dask_scheduler.plugins.get(STORE_NAME)
    return None if store is None else store.get(name)


def store_drop(name: str, dask_scheduler: Any = None) -> None:
    """``client.run_on_scheduler``: forget the stored global model of ``name``."""
    store = dask_scheduler.plugins.get(STORE_NAME)
    if store is not None:
        store.drop(name)


__all__ = ["train", "set_global", "request_stop", "state", "local_model", "predict", "describe", "store_put", "store_get", "store_drop"]
