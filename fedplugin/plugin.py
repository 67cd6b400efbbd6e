"""The worker plugin that holds each worker's local model.

Register it once with ``client.register_plugin(FederatedModelPlugin(...))`` (or
:func:`fedplugin.register`, which first checks every worker can load it):
every current and future worker gets its own copy, workers stay stock and
nanny-managed, and a worker the nanny restarts fetches the latest global model
from the scheduler (see :mod:`fedplugin.store`) during ``setup``.

How a round looks from a worker:

1. a training task of round *v* (the round whose updates are based on global
   version *v*) trains its blocks; at its end the worker keeps a *snapshot* of
   its parameters: its update for round *v*. It never waits: the next task
   (already queued) keeps training;
2. the worker that combines the round pulls every snapshot through the
   ``fedplugin_handover`` handler (for a mean over many workers, group heads
   pull their groups' snapshots and send up partial means through
   ``fedplugin_reduce``: a reduction tree), combines them and pushes version
   *v + 1* to every worker through ``fedplugin_forward`` (a fan-out tree);
3. the new global model is merged into the local model at the next block
   boundary (at once if the worker is idle), keeping the progress made
   meanwhile; snapshots of later rounds taken before it arrived are rebased
   onto it (see :mod:`fedplugin.round_state`), so every update of a round is
   based on the same global model.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
from distributed.utils import sync
from distributed.diagnostics.plugin import WorkerPlugin
from sklearn.base import BaseEstimator

from . import store, worker_handlers
from .adapters import adapter_for, fresh_copy
from .round_state import RoundState
from .rows import as_float, as_rows
from .local_training import TaskReport, train_blocks
from .ownership import mismatch
from .outputs import per_output_classes, same_classes, sorted_labels
from .store import GlobalModel
from .sync import SyncPolicy

logger = logging.getLogger("fedplugin")

#: Stop and abort requests a worker remembers (a round's token; old rounds are over).
TOKENS_KEPT = 256


class FederatedModelPlugin(WorkerPlugin):
    """Attach a federated copy of a scikit-learn estimator to every worker.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Unfitted estimator with ``partial_fit``; each worker trains a clone.
        Unsupported estimators are refused here, naming the supported families.
    classes : array-like, optional
        All class labels, for classifiers; for a ``MultiOutputClassifier`` one
        list of labels per output (``classes=[[0, 1], [0, 1, 2]]``). When
        omitted they are read from the ``y`` of the first ``fit`` (per column
        for several outputs).
    name : str
        Plugin name; one name per federated model. Registering a plugin with
        the same name again replaces the plugin (``idempotent = False``) and
        keeps the stored global model if it fits the new plugin (same
        estimator class and classes); otherwise that model is dropped with a
        warning (see :func:`fedplugin.forget`).

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
        adapter = adapter_for(estimator)
        adapter.check_settings(estimator)  # refuse bad estimators now, on the client
        learns_classes = adapter.estimator_type(estimator) == "classifier"
        if not isinstance(name, str) or not name:
            raise TypeError(f"name={name!r} must be a non-empty string")
        if classes is not None and adapter.multi_output and learns_classes:
            classes = per_output_classes(classes)  # one list of labels per output
        elif classes is not None:
            classes = sorted_labels(classes)
            if classes.size < 2 and learns_classes:
                raise ValueError(f"classes={classes.tolist()} must hold at least two labels")
            if not learns_classes:
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
        # Guards the local model; a training task holds it for the whole task.
        # On the event loop it is only tried without waiting (a manual
        # synchronize between fits waits half a second at most).
        self.lock = threading.Lock()
        self.model: BaseEstimator | None = None
        self.rounds = RoundState(self.adapter, worker.address)
        self.samples_since_sync = 0
        self.samples_total = 0
        self.training_seconds = 0.0
        # Tokens of the rounds told to stop; only the latest matter (bounded memory).
        self.stop_tokens: deque[str] = deque(maxlen=TOKENS_KEPT)
        self.abort_tokens: deque[str] = deque(maxlen=TOKENS_KEPT)
        self.restored_at: float | None = None
        worker_handlers.install(worker)
        # The store usually exists already (the Coordinator registers it); making
        # sure here keeps setup independent of who came first.
        await store.worker_ensure_store(worker)
        model = await store.worker_fetch(worker, self.name)
        reason = None if model is None else mismatch(self.estimator, self.classes, model)
        if reason is not None:
            # A name re-used for another model: never fail setup (that would
            # fail every start of this worker); the coordinator drops it.
            logger.warning("worker %s does not adopt the stored model of %s: %s", worker.address, self.name, reason)
        elif model is not None and self._adopt_if_newer(model):
            self.restored_at = time.time()
            logger.info("worker %s restored %s at version %d", worker.address, self.name, model.version)

    def teardown(self, worker: Any) -> None:
        self.model = None

    @property
    def global_model(self) -> GlobalModel | None:
        """The global model merged into the local model."""
        return self.rounds.applied

    # ------------------------------------------------------- models arriving
    def set_global(self, model: GlobalModel) -> int:
        """Replace the local model with ``model``; return its version.

        Unlike a round's merge, this drops local progress: it is how a fit
        starts, a checkpoint is resumed or a failed fit is rolled back.
        """
        with self.lock:
            self._adopt(model)
        return model.version

    def forget(self) -> None:
        """Drop the model (its name's stored model was dropped: a first fit failed)."""
        with self.lock:
            self.model = None
            self.rounds.reset(None)

    def receive(self, model: GlobalModel) -> None:
        """A round's new global model arrived: merge it now if idle, else at the next block."""
        self.rounds.add_incoming(model)
        if self.lock.acquire(blocking=False):  # never wait on the event loop
            try:
                self.merge_incoming()
            finally:
                self.lock.release()

    def merge_incoming(self) -> None:
        """Merge the global models that arrived into the local model (call with the lock held)."""
        if not self.rounds.has_incoming():
            return
        if self.model is None:
            self._adopt(max(self.rounds.incoming, key=lambda m: m.version))
            return
        local = self.adapter.get_params(self.model)
        merged = self.rounds.rebase(local)
        if merged is not local:
            self.adapter.set_params(self.model, copy.deepcopy(merged))

    def _adopt_if_newer(self, model: GlobalModel) -> bool:
        """Adopt ``model`` unless a newer one arrived meanwhile (a round's push, while setup fetched it)."""
        with self.lock:  # setup holds no other lock, and no task trains before setup ends
            if self.rounds.version is not None and model.version <= self.rounds.version:
                return False
            self._adopt(model)
            return True

    def _adopt(self, model: GlobalModel) -> None:
        current = self.rounds.applied
        if (
            self.model is None
            or current is None
            or current.n_features != model.n_features
            or current.n_outputs != model.n_outputs
            or not same_classes(current.classes, model.classes)
        ):
            self.model = self.adapter.initialize_like(self.estimator, model)
            # A joining or restarted worker carries on with the workers' training
            # state (e.g. SGD's step counter), not from a first step.
            self.adapter.set_state(self.model, model.extra.get("state", {}))
        self.adapter.set_params(self.model, copy.deepcopy(model.params))
        self.rounds.reset(model)
        self.samples_since_sync = 0
        self.stop_tokens.clear()
        self.abort_tokens.clear()

    def _reset_to_global(self) -> None:
        """Training diverged: start again from the newest global model (call with the lock held).

        The updates handed over but not yet pulled are dropped too: their
        rounds count this worker as missing, and the engine trains their
        blocks again (an update already pulled is in the next global model).
        """
        self.merge_incoming()
        model = self.rounds.applied
        self.model = self.adapter.build(self.estimator, model, copy.deepcopy(model.params), model.extra.get("state", {}))
        self.rounds.drop_updates()
        self.samples_since_sync = 0
        logger.warning("worker %s: training %s diverged; reset to global version %d", self.worker.address, self.name, model.version)

    # ------------------------------------------------------------ handover
    def update_for(self, base: int, current: bool = False, codec: Any = None) -> dict[str, Any] | None:
        """The update for round ``base`` (``current``: if none, the model as it is now), encoded with ``codec``.

        Runs on the event loop: it never waits for a training task, except a
        manual synchronize (``current``), which waits half a second at most.
        """
        if current and base not in self.rounds.snapshots and self.rounds.version == base:
            if not self.lock.acquire(timeout=0.5):
                raise RuntimeError(f"worker {self.worker.address} is training {self.name!r}; synchronize between fits")
            try:
                self._hand_over(base, self.samples_since_sync)
            finally:
                self.lock.release()
        update = self.rounds.update_for(base, codec)
        if update is not None:
            update["worker"] = self.worker.address
        return update

    def _hand_over(self, base: int, samples: int) -> None:
        """Keep the local parameters as the update of round ``base`` (call with the lock held)."""
        self.rounds.hand_over(base, self.adapter.get_params(self.model), samples, self.adapter.get_state(self.model))
        self.samples_since_sync = 0

    async def catch_up(self, base: int) -> None:
        """A worker more than one version behind round ``base`` (it joined, or missed a push) fetches a newer stored model."""
        version = self.rounds.version
        if version is None or version < base - 1:
            model = await store.worker_fetch(self.worker, self.name, newer_than=version)
            if model is not None:
                self.receive(model)

    # ------------------------------------------------------------------- control
    def request_stop(self, token: str) -> None:
        """Ask the task of round ``token`` to stop after its current block."""
        self.stop_tokens.append(token)

    def abort(self, token: str) -> None:
        """Stop the task of round ``token`` after its block, handing nothing over (a failed fit)."""
        self.stop_tokens.append(token)
        self.abort_tokens.append(token)

    def state(self) -> dict[str, Any]:
        """A snapshot of this worker's model state, for tests and diagnostics."""
        with self.lock:
            return {
                "version": self.rounds.version,
                "params": None if self.model is None else self.adapter.get_params(self.model),
                "samples_since_sync": self.samples_since_sync,
                "samples_total": self.samples_total,
                "training_seconds": self.training_seconds,
                "restored_at": self.restored_at,
            }

    def local_model(self, timeout: float = -1) -> BaseEstimator:
        """A copy of this worker's current local model (see :meth:`local_parameters`)."""
        params, state = self.local_parameters(timeout)
        # Rebuilt from its parameters, not deep-copied: a Birch's linked leaves exceed the recursion limit.
        return self.adapter.build(self.estimator, self.global_model, params, state)

    def local_parameters(self, timeout: float = -1) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """Copies of this worker's local parameters and training state.

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
            return copy.deepcopy(self.adapter.get_params(self.model)), self.adapter.get_state(self.model)
        finally:
            self.lock.release()

    def predict(self, X: np.ndarray, method: str = "predict") -> np.ndarray:
        """Label ``X`` with this worker's local model (copied under the lock, waiting at most 1 s)."""
        model = self.local_model(timeout=1.0)  # a prediction request should not wait long
        return getattr(model, method)(as_float(as_rows(X)))

    # ------------------------------------------------------------------ training
    def train(
        self,
        token: str,
        blocks: list[tuple[int, Any, Any]],
        policy: SyncPolicy,
        elapsed_before: float = 0.0,
        base: int | None = None,
        scorer: Any = None,
    ) -> TaskReport:
        """Train the local model on ``blocks`` for round ``base`` and hand the update over.

        Each block is validated right before it is trained, and global models
        that arrive meanwhile are merged between blocks. After each block the
        policy's worker-side check runs; if it fires, the worker logs an event
        on topic ``fedplugin-<name>`` and hands the remaining blocks back. The
        report carries no parameters: they stay here until the worker that
        combines the round pulls them. An aborted task hands nothing over.
        """
        version = self.rounds.version
        if base is not None and (version is None or version < base - 1) and not self.rounds.has_incoming():
            sync(self.worker.loop, self.catch_up, base)  # no lock held: the loop may need it
        with self.lock:
            self.merge_incoming()
            if self.model is None or self.global_model is None:
                raise RuntimeError(
                    f"plugin {self.name!r} on {self.worker.address} has no global model; "
                    "the coordinator broadcasts one before training"
                )
            base = self.global_model.version if base is None else base
            if self.rounds.snapshots and base < max(self.rounds.snapshots):
                # A later round's task ran first (several threads, or a task
                # launched late after a lost worker): training now would put
                # later progress into this round's update. Hand everything back.
                return TaskReport(worker=self.worker.address, base=base)
            report = train_blocks(self, token, blocks, policy, elapsed_before, scorer)
            self.training_seconds += report.seconds
            report.base = base
            if report.diverged is not None:
                self._reset_to_global()
                report.handed_over = False
                return report
            report.handed_over = token not in self.abort_tokens
            if report.handed_over:
                self._hand_over(base, report.samples)
            return report
