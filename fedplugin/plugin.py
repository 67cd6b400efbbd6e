"""The worker plugin that holds each worker's local model.

Register it once with ``client.register_plugin(FederatedModelPlugin(...))`` (or
:func:`fedplugin.register`, which first checks every worker can load it):
every current and future worker gets its own copy, workers stay stock and
nanny-managed, and a worker the nanny restarts fetches the latest global model
from the scheduler (see :mod:`fedplugin.store`) during ``setup``.

Tasks reach the plugin with ``get_worker().plugins[name]`` (see
:mod:`fedplugin.tasks`); ``client.run`` callbacks get it from their
``dask_worker`` argument.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.protocol.pickle import dumps
from sklearn.base import BaseEstimator, is_classifier

from .adapters import adapter_for, fresh_copy
from .blocks import check_block, load_block
from .store import GET_HANDLER, STORE_NAME, GlobalModel, ModelStore
from .sync import LocalStats, SyncPolicy

logger = logging.getLogger("fedplugin")


@dataclass
class TrainResult:
    """What one training task reports back to the coordinator.

    Attributes
    ----------
    worker : str
        Address of the worker that trained.
    seq : int
        The worker's update counter after this task; the highest one of a round
        carries all of that worker's updates.
    version : int
        Global version the local model started from.
    params : dict
        Local parameters after the task.
    samples_since_sync : int
        Samples this worker trained since its model last received the global one.
    trained : list of (int, int)
        ``(block index, rows)`` for every block trained, in order; the blocks
        after them were handed back untrained (the round ended first).
    score_sum : float
        With test-then-train scoring: sum over trained blocks of the block's
        score before training times its rows.
    state : dict
        The adapter's training state (see ``ModelAdapter.get_state``).
    trigger : str or None
        The policy trigger that ended the task early, if any.
    seconds : float
        Time spent in the task.
    """

    worker: str
    seq: int
    version: int
    params: dict[str, np.ndarray]
    samples_since_sync: int
    trained: list[tuple[int, int]]
    score_sum: float
    state: dict[str, float]
    trigger: str | None
    seconds: float


class FederatedModelPlugin(WorkerPlugin):
    """Attach a federated copy of a scikit-learn estimator to every worker.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Unfitted estimator with ``partial_fit``; each worker trains a clone.
        Unsupported estimators are refused here, naming the supported families.
    classes : array-like, optional
        All class labels, for classifiers. When omitted they are read from the
        ``y`` of the first ``fit``.
    name : str
        Plugin name; one name per federated model. Registering a plugin with
        the same name again replaces it (``idempotent = False``).

    Examples
    --------
    >>> from sklearn.linear_model import SGDClassifier
    >>> plugin = FederatedModelPlugin(SGDClassifier(), classes=[0, 1], name="clf")
    >>> plugin.name
    'clf'
    >>> FederatedModelPlugin(object())
    Traceback (most recent call last):
    ...
    TypeError: estimator=object has no partial_fit; expected one of: ...
    """

    idempotent = False

    def __init__(
        self,
        estimator: BaseEstimator,
        *,
        classes: Sequence[Any] | np.ndarray | None = None,
        name: str = "fedplugin",
    ) -> None:
        adapter_for(estimator).check_settings(estimator)  # refuse bad estimators now, on the client
        if not isinstance(name, str) or not name:
            raise TypeError(f"name={name!r} must be a non-empty string")
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            if classes.size < 2 and is_classifier(estimator):
                raise ValueError(f"classes={classes.tolist()} must hold at least two labels")
        if classes is not None and not is_classifier(estimator):
            raise ValueError(
                f"classes={classes.tolist()} given for {type(estimator).__name__}, a regressor; "
                "expected classes=None"
            )
        self.estimator = fresh_copy(estimator)
        self.classes = classes
        self.name = name

    # ----------------------------------------------------------------- lifecycle
    async def setup(self, worker: Any) -> None:
        self.worker = worker
        self.adapter = adapter_for(self.estimator)
        self.lock = threading.Lock()
        self.model: BaseEstimator | None = None
        self.global_model: GlobalModel | None = None
        self.samples_since_sync = 0
        self.samples_total = 0
        self.seq = 0
        self.stop_tokens: set[str] = set()
        self.restored_at: float | None = None
        self._predictor: BaseEstimator | None = None
        self._predictor_version: int | None = None
        # The store usually exists already (the Coordinator registers it); making
        # sure here keeps setup independent of who came first.
        await worker.scheduler.register_scheduler_plugin(
            plugin=dumps(ModelStore()), name=STORE_NAME, idempotent=True
        )
        payload = await getattr(worker.scheduler, GET_HANDLER)(name=self.name)
        if payload is not None:
            self._adopt(GlobalModel.from_bytes(payload))
            self.restored_at = time.time()
            logger.info("worker %s restored %s at version %d", worker.address, self.name, self.global_model.version)

    def teardown(self, worker: Any) -> None:
        self.model = None

    # ------------------------------------------------------------------- control
    def set_global(self, payload: bytes) -> int:
        """Replace the local model with the global model in ``payload``; return its version."""
        model = GlobalModel.from_bytes(payload)
        with self.lock:
            self._adopt(model)
        return model.version

    def _adopt(self, model: GlobalModel) -> None:
        if (
            self.model is None
            or self.global_model is None
            or self.global_model.n_features != model.n_features
            or not _same_classes(self.global_model.classes, model.classes)
        ):
            self.model = self.adapter.initialize(self.estimator, model.n_features, model.classes)
            # A joining or restarted worker carries on with the workers' training
            # state (e.g. SGD's step counter), not from a first step.
            self.adapter.set_state(self.model, model.extra.get("state", {}))
        self.adapter.set_params(self.model, model.params)
        self.global_model = model
        self.samples_since_sync = 0
        self.stop_tokens.clear()

    def request_stop(self, token: str) -> None:
        """Ask the task of round ``token`` to stop after its current block."""
        self.stop_tokens.add(token)

    def state(self) -> dict[str, Any]:
        """A snapshot of this worker's model state, for tests and diagnostics."""
        with self.lock:
            return {
                "version": None if self.global_model is None else self.global_model.version,
                "params": None if self.model is None else self.adapter.get_params(self.model),
                "samples_since_sync": self.samples_since_sync,
                "samples_total": self.samples_total,
                "restored_at": self.restored_at,
            }

    def local_model(self, timeout: float = -1) -> BaseEstimator:
        """A copy of this worker's current local model.

        Waits for a running training task at most ``timeout`` seconds (-1: as
        long as it takes), then raises ``RuntimeError``.
        """
        if not self.lock.acquire(timeout=timeout):
            raise RuntimeError(
                f"worker {self.worker.address} is training {self.name!r}; its local model is "
                "busy, predict with model='global' instead"
            )
        try:
            if self.model is None:
                raise RuntimeError(f"plugin {self.name!r} has no model yet: no fit has started")
            return copy.deepcopy(self.model)
        finally:
            self.lock.release()

    def predict(self, X: np.ndarray, method: str = "predict", source: str = "global") -> np.ndarray:
        """Label ``X`` with the global model (default) or this worker's local model.

        The global model is kept apart from the local one, so predictions need no
        lock and never wait for a training task; the local model is copied under
        the lock first (waiting at most a second).
        """
        if self.global_model is None:
            raise RuntimeError(f"plugin {self.name!r} has no model yet: no fit has started")
        if source == "local":
            # Called on the worker's event loop: never wait long for a training task.
            model = self.local_model(timeout=1.0)
        else:
            if self._predictor_version != self.global_model.version:
                g = self.global_model
                predictor = self.adapter.initialize(self.estimator, g.n_features, g.classes)
                self.adapter.set_params(predictor, g.params)
                self._predictor, self._predictor_version = predictor, g.version
            model = self._predictor
        return getattr(model, method)(np.asarray(X, dtype=np.float64))

    # ------------------------------------------------------------------ training
    def train(
        self,
        token: str,
        blocks: list[tuple[int, Any, Any]],
        policy: SyncPolicy,
        elapsed_before: float = 0.0,
        version: int | None = None,
        scorer: Any = None,
    ) -> TrainResult:
        """Train the local model on ``blocks`` in order until the round ends.

        Each block is validated right before it is trained. After each block the
        policy's worker-side check runs; if it fires, the worker logs an event
        on topic ``fedplugin-<name>`` and hands the remaining blocks back.
        With a ``scorer`` (test-then-train), each block is first scored by the
        model that is about to learn from it.
        """
        start = time.perf_counter()
        with self.lock:
            if self.model is None or self.global_model is None:
                raise RuntimeError(
                    f"plugin {self.name!r} on {self.worker.address} has no global model; "
                    "the coordinator broadcasts one before training"
                )
            if version is not None and self.global_model.version != version:
                # This worker missed a round (e.g. it restarted): it trains from
                # the version it holds, which the store keeps current.
                logger.info("worker %s trains from version %d, not %d", self.worker.address, self.global_model.version, version)
            classes = self.global_model.classes
            n_features = self.global_model.n_features
            reference = self.global_model.params if policy.needs_drift else None
            reference_norm = _squared_norm(reference) if reference is not None else 0.0
            trained: list[tuple[int, int]] = []
            trigger = None
            score_sum = 0.0
            for index, x, y in blocks:
                if token in self.stop_tokens:
                    break
                X_block, y_block = load_block(x, y)
                check_block(index, X_block, y_block, n_features, classes)
                if scorer is not None:
                    score_sum += scorer(self.model, X_block, y_block) * len(y_block)
                try:
                    self.adapter.partial_fit(self.model, X_block, y_block)
                except ValueError as exc:
                    raise ValueError(f"block {index}: {exc}") from exc
                trained.append((index, len(y_block)))
                self.samples_since_sync += len(y_block)
                self.samples_total += len(y_block)
                drift = 0.0
                if reference is not None:
                    drift = _squared_distance(self.adapter.get_params(self.model), reference)
                stats = LocalStats(
                    blocks=len(trained),
                    samples=self.samples_since_sync,
                    seconds=elapsed_before + time.perf_counter() - start,
                    drift=drift,
                    reference_norm=reference_norm,
                )
                trigger = policy.check(stats)
                if trigger is not None:
                    self.worker.log_event(
                        f"fedplugin-{self.name}",
                        {"worker": self.worker.address, "trigger": trigger, "token": token, "drift": float(drift)},
                    )
                    break
            self.seq += 1
            return TrainResult(
                worker=self.worker.address,
                seq=self.seq,
                version=self.global_model.version,
                params=self.adapter.get_params(self.model),
                samples_since_sync=self.samples_since_sync,
                trained=trained,
                score_sum=score_sum,
                state=self.adapter.get_state(self.model),
                trigger=trigger,
                seconds=time.perf_counter() - start,
            )


def _same_classes(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.all(a == b))


def _squared_norm(params: dict[str, np.ndarray]) -> float:
    return float(sum(np.sum(np.square(value)) for value in params.values()))


def _squared_distance(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return float(sum(np.sum(np.square(a[name] - b[name])) for name in b))
