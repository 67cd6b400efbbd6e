"""The scheduler-side store of versioned global models.

A worker that its nanny restarts gets its plugins back as they were pickled at
registration, so the *latest* global model has to live somewhere that outlives
workers and clients: the scheduler. :class:`ModelStore` is a
``SchedulerPlugin`` that keeps, per plugin name, the newest
:class:`GlobalModel` as bytes and answers two RPC handlers, which a worker's
async ``setup`` calls with no client involved.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from distributed.diagnostics.plugin import SchedulerPlugin

STORE_NAME = "fedplugin-model-store"
GET_HANDLER = "fedplugin_store_get"
PUT_HANDLER = "fedplugin_store_put"


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
    classes : ndarray or None
        Class labels for classifiers, ``None`` for regressors.
    rounds : int
        Synchronization rounds completed so far.
    extra : dict
        Other state workers adopt with the model: ``extra["state"]`` holds the
        workers' mean training state (see ``ModelAdapter.get_state``).
    """

    version: int
    params: dict[str, np.ndarray]
    n_features: int
    classes: np.ndarray | None = None
    rounds: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

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


def params_nbytes(params: dict[str, np.ndarray]) -> int:
    """Bytes of the arrays in a parameter dict."""
    return int(sum(np.asarray(value).nbytes for value in params.values()))


class ModelStore(SchedulerPlugin):
    """Keep the newest :class:`GlobalModel` of every plugin name on the scheduler.

    Registered by the :class:`~fedplugin.Coordinator`; registering it again is
    a no-op (``idempotent``), so models survive new coordinators, clients and
    ``client.restart()``.
    """

    name = STORE_NAME
    idempotent = True

    def __init__(self) -> None:
        self.models: dict[str, bytes] = {}
        self.versions: dict[str, int] = {}

    async def start(self, scheduler: Any) -> None:
        scheduler.handlers[GET_HANDLER] = self.get
        scheduler.handlers[PUT_HANDLER] = self.put

    def get(self, name: str) -> bytes | None:
        """Return the newest model stored under ``name`` as bytes, or ``None``."""
        return self.models.get(name)

    def put(self, name: str, version: int, payload: bytes, force: bool = False) -> int:
        """Store ``payload`` unless a newer version is already there; return the stored version.

        ``force`` replaces a newer version too (used to roll back after a failed fit).
        """
        if force or version >= self.versions.get(name, -1):
            self.models[name] = payload
            self.versions[name] = version
        return self.versions[name]

    def drop(self, name: str) -> None:
        """Forget the model stored under ``name``."""
        self.models.pop(name, None)
        self.versions.pop(name, None)
