"""The scheduler-side store of versioned global models, and every call to it.

A worker that its nanny restarts gets its plugins back as they were pickled at
registration, so the *latest* global model has to live somewhere that outlives
workers and clients: the scheduler. :class:`ModelStore` is a
``SchedulerPlugin`` that keeps, per plugin name, the newest
:class:`GlobalModel` as bytes, plus one *pinned* copy that a failed ``fit``
rolls back to.

This module owns every call to the store. Workers (a restarting plugin, the
worker that aggregates a round) reach it through the scheduler RPC handlers the
store adds when it starts; the client reaches it with ``run_on_scheduler``.
No other module names a handler.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from distributed import Client
from distributed.diagnostics.plugin import SchedulerPlugin

from .span_trim import SpanMetadataTrim

STORE_NAME = "fedplugin-model-store"
_GET = "fedplugin_store_get"
_PUT = "fedplugin_store_put"
_PUT_NEW = "fedplugin_store_put_new"
_WORKERS = "fedplugin_workers"
#: ``GlobalModel.extra`` key of a server optimizer's state (see :mod:`fedplugin.server_optimizers`).
SERVER_STATE = "server"
#: What stands for that state in the copies of a model pushed to workers: the store keeps it.
IN_STORE = "in-store"


@dataclass
class GlobalModel:
    """One version of a federated model: everything a worker needs to rejoin.

    Attributes
    ----------
    version : int
        Increases by one at every synchronization round (and at initialisation).
    params : dict of str to ndarray
        The learned parameters, as read by the estimator's adapter.
    n_features : int
        Number of input features.
    classes : ndarray, list of ndarray or None
        Class labels for classifiers, ``None`` for regressors; one array of
        labels per output for a multi-output classifier (see :mod:`fedplugin.outputs`).
    rounds : int
        Synchronization rounds completed so far.
    extra : dict
        Other state that goes with the model: ``extra["state"]`` holds the
        workers' mean training state (see ``ModelAdapter.get_state``), which
        workers adopt; ``extra["server"]`` a server optimizer's state (arrays
        shaped like ``params``), which stays in the store and checkpoints and
        is left out of the copies pushed to workers (see :meth:`for_workers`).
    estimator : str
        Class name of the estimator that trained it (empty for models stored
        by fedplugin 0.1), so that a plugin re-registered under the same name
        with another estimator does not adopt it (see :func:`fedplugin.forget`).
    n_outputs : int or None
        Columns of ``y`` for a multi-output estimator, ``None`` for a 1-d ``y``
        (and for every model stored before fedplugin knew several outputs).
    late : tuple of str
        Workers still training when the round that made this version closed
        (see :mod:`fedplugin.stragglers`): none of their progress is in it, so
        they keep it. Not saved in checkpoints.
    feature_names : ndarray of str or None
        The column names of the DataFrame the model was first trained on
        (see :mod:`fedplugin.feature_names`), ``None`` without names (and for
        every model stored before fedplugin recorded them).
    combined, excluded : tuple of str
        Workers whose updates the round that made this version combined, and
        those it left out for non-finite parameters: a retried close that
        pushes the stored model again reports them (its other participants'
        blocks are trained again). Kept in the store only: not pushed to
        workers, not saved in checkpoints.
    """

    version: int
    params: dict[str, np.ndarray]
    n_features: int
    classes: np.ndarray | None = None
    rounds: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    estimator: str = ""
    n_outputs: int | None = None
    late: tuple[str, ...] = ()
    feature_names: np.ndarray | None = None
    combined: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(payload: bytes) -> GlobalModel:
        model = pickle.loads(payload)
        if not isinstance(model, GlobalModel):
            raise TypeError(f"payload holds {type(model).__name__}; expected GlobalModel")
        return model

    def nbytes(self) -> int:
        """Bytes of parameter data (what a round moves per worker and direction)."""
        return params_nbytes(self.params)

    def info(self) -> GlobalModel:
        """The same record without its parameters and server state: what the client keeps."""
        return replace(self.for_workers(), params={})

    def for_workers(self) -> GlobalModel:
        """The model as pushed to workers: a server optimizer's state, and who was combined, stay in the store.

        Only the worker that combines a round needs that state; it fetches the
        model from the store when the copy it holds lacks it.
        """
        model = replace(self, combined=(), excluded=()) if self.combined or self.excluded else self
        if not isinstance(self.extra.get(SERVER_STATE), dict):
            return model
        return replace(model, extra={**self.extra, SERVER_STATE: IN_STORE})

    @property
    def state_in_store(self) -> bool:
        """True for a copy whose server optimizer state was left in the store."""
        return self.extra.get(SERVER_STATE) == IN_STORE


def params_nbytes(params: dict[str, np.ndarray]) -> int:
    """Bytes of the arrays in a parameter dict."""
    return int(sum(np.asarray(value).nbytes for value in params.values()))


class ModelStore(SchedulerPlugin):
    """Keep the newest :class:`GlobalModel` of every plugin name on the scheduler.

    Registered by the :class:`~fedplugin.Coordinator` and by every plugin's
    ``setup``; registering it again is a no-op (``idempotent``), so models
    survive new coordinators, clients and ``client.restart()``.
    """

    name = STORE_NAME
    idempotent = True

    def __init__(self) -> None:
        self.models: dict[str, bytes] = {}
        self.versions: dict[str, int] = {}
        self.pinned: dict[str, bytes | None] = {}

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        scheduler.handlers[_GET] = self.get
        scheduler.handlers[_PUT] = self.put
        scheduler.handlers[_PUT_NEW] = self.put_new
        scheduler.handlers[_WORKERS] = self.worker_addresses

    def worker_addresses(self) -> list[str]:
        """The addresses of the cluster's workers, sorted (a small answer, unlike ``identity``)."""
        return sorted(self.scheduler.workers)

    def get(self, name: str, newer_than: int | None = None) -> bytes | None:
        """Return the newest model stored under ``name`` as bytes, or ``None``.

        With ``newer_than``, only a version above it is returned: a worker
        that holds version ``v`` asks for ``newer_than=v`` and gets nothing
        (not the same megabytes again) when the store has nothing newer.

        Examples
        --------
        >>> models = ModelStore()
        >>> models.put("m", 3, b"model 3")
        3
        >>> models.get("m"), models.get("m", newer_than=2), models.get("m", newer_than=3)
        (b'model 3', b'model 3', None)
        """
        if newer_than is not None and self.versions.get(name, -1) <= newer_than:
            return None
        return self.models.get(name)

    def put(self, name: str, version: int, payload: bytes, force: bool = False) -> int:
        """Store ``payload`` unless a newer version is already there; return the stored version.

        ``force`` replaces a newer version too (a rollback, a resumed checkpoint).
        """
        if force or version >= self.versions.get(name, -1):
            self.models[name] = payload
            self.versions[name] = version
        return self.versions[name]

    def put_new(self, name: str, version: int, payload: bytes) -> bool:
        """Store ``payload`` only if every stored version is older (compare-and-set); return whether it was stored.

        A round's model goes in this way: if two attempts to close a round
        both combine a version, only the first is kept (see
        ``fedplugin.exchange.close_round``).

        Examples
        --------
        >>> models = ModelStore()
        >>> models.put_new("m", 1, b"first"), models.put_new("m", 1, b"second")
        (True, False)
        >>> models.get("m")
        b'first'
        """
        if version <= self.versions.get(name, -1):
            return False
        self.put(name, version, payload)
        return True

    def drop(self, name: str) -> None:
        """Forget the model stored under ``name``."""
        self.models.pop(name, None)
        self.versions.pop(name, None)
        self.pinned.pop(name, None)

    def pin(self, name: str) -> int:
        """Remember the current model of ``name`` to roll back to; return its version."""
        self.pinned[name] = self.models.get(name)
        return self.versions.get(name, -1)

    def restore(self, name: str) -> int:
        """Make the pinned model current again (none pinned: forget ``name``); return its version."""
        payload = self.pinned.get(name)
        if payload is None:
            self.drop(name)
            return -1
        return self.put(name, GlobalModel.from_bytes(payload).version, payload, force=True)


# --------------------------------------------------------------- from the client
def _store(dask_scheduler: Any) -> ModelStore | None:
    return dask_scheduler.plugins.get(STORE_NAME)


def _scheduler_call(method: str, *args: Any, dask_scheduler: Any = None) -> Any:
    store = _store(dask_scheduler)
    return None if store is None else getattr(store, method)(*args)


def ensure_store(client: Client) -> None:
    """Register the store on the scheduler (no-op if it is there already).

    With it goes :class:`~fedplugin.span_trim.SpanMetadataTrim`, which keeps a
    long fit's span from growing with every round on the scheduler.
    """
    client.register_plugin(ModelStore())
    client.register_plugin(SpanMetadataTrim())


def fetch(client: Client, name: str) -> GlobalModel | None:
    """The newest stored model of ``name`` (parameters cross the client), or ``None``."""
    payload = client.run_on_scheduler(_scheduler_call, "get", name)
    return None if payload is None else GlobalModel.from_bytes(payload)


def fetch_info(client: Client, name: str) -> GlobalModel | None:
    """The newest stored model of ``name`` without its parameters, or ``None``."""
    return on_stored(client, name, GlobalModel.info)


def on_stored(client: Client, name: str, func: Any, *args: Any) -> Any:
    """``func(model, *args)`` run on the scheduler, next to the stored model of ``name`` (``None`` if none).

    Only ``func``'s answer crosses to the client, not the parameters.
    """
    return client.run_on_scheduler(_apply_to_stored, name, func, *args)


def _apply_to_stored(name: str, func: Any, *args: Any, dask_scheduler: Any = None) -> Any:
    payload = _scheduler_call("get", name, dask_scheduler=dask_scheduler)
    return None if payload is None else func(GlobalModel.from_bytes(payload), *args)


def worker_addresses(client: Client) -> list[str]:
    """The cluster's worker addresses, sorted, straight from the scheduler."""
    return client.run_on_scheduler(_addresses)


def _addresses(dask_scheduler: Any = None) -> list[str]:
    return sorted(dask_scheduler.workers)


def put(client: Client, model: GlobalModel, name: str, *, force: bool = False) -> int:
    """Store ``model`` under ``name`` from the client; return the stored version."""
    return client.run_on_scheduler(_scheduler_call, "put", name, model.version, model.to_bytes(), force)


def drop(client: Client, name: str) -> None:
    """Forget the stored model of ``name``."""
    client.run_on_scheduler(_scheduler_call, "drop", name)


def pin(client: Client, name: str) -> GlobalModel | None:
    """Remember the current model of ``name``, to :func:`restore` after a failed fit; return it without parameters.

    One round trip: a fit pins the model it starts from and checks, from the
    answer, that it is the one it last saw.
    """
    return client.run_on_scheduler(_pin, name)


def _pin(name: str, dask_scheduler: Any = None) -> GlobalModel | None:
    _scheduler_call("pin", name, dask_scheduler=dask_scheduler)
    return _apply_to_stored(name, GlobalModel.info, dask_scheduler=dask_scheduler)


def restore(client: Client, name: str) -> int:
    """Roll ``name`` back to its pinned model; return its version (-1: none)."""
    return client.run_on_scheduler(_scheduler_call, "restore", name)


# ---------------------------------------------------------------- from a worker
async def worker_fetch(worker: Any, name: str, newer_than: int | None = None) -> GlobalModel | None:
    """From a worker's event loop: the newest stored model of ``name``, or ``None``.

    ``newer_than``: ``None`` as well when the stored version is not above it
    (see :meth:`ModelStore.get`).
    """
    # Sent only when asked for: a store that an older fedplugin registered (it is
    # idempotent, so it stays) answers the plain request.
    only_newer = {} if newer_than is None else {"newer_than": newer_than}
    payload = await getattr(worker.scheduler, _GET)(name=name, **only_newer)
    return None if payload is None else GlobalModel.from_bytes(payload)


async def worker_put(worker: Any, name: str, version: int, payload: bytes) -> bool:
    """From a worker's event loop: store a new global model unless that version is stored already; return whether it was.

    See :meth:`ModelStore.put_new`.
    """
    return await getattr(worker.scheduler, _PUT_NEW)(name=name, version=version, payload=payload)


async def worker_addresses_from(worker: Any) -> list[str]:
    """From a worker's event loop: the cluster's worker addresses, sorted."""
    return await getattr(worker.scheduler, _WORKERS)()


async def worker_ensure_store(worker: Any) -> None:
    """From a worker's event loop: register the store unless it is there already."""
    from distributed.protocol.pickle import dumps

    await worker.scheduler.register_scheduler_plugin(plugin=dumps(ModelStore()), name=STORE_NAME, idempotent=True)
