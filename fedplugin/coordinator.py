"""The client-side coordinator: places work, runs rounds, aggregates, keeps history.

A round goes like this:

1. the policy says how many blocks the cluster trains (``EveryNBatches``) or
   leaves it open (time, drift, custom checks run on the workers);
2. every worker gets a training task covering a run of the blocks that live on
   it (coarse tasks: many blocks each, never one task per block);
3. the coordinator waits for every task it submitted; a worker whose check
   fires ends its own task, hands back its untrained blocks and signals the
   others through an event topic;
4. the workers' parameters (returned by their last task) are combined by the
   aggregator, weighted by samples trained since the last round;
5. the result is sent to every worker and kept, versioned, in the scheduler's
   :class:`~fedplugin.ModelStore`.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import sys
import time
import uuid
import warnings
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from concurrent.futures import CancelledError

from distributed import Client, as_completed
from distributed.comm.core import CommClosedError
from distributed.scheduler import KilledWorker
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import NotFittedError

from . import tasks
from .adapters import adapter_for
from .aggregation import WeightedMean, as_aggregator
from .blocks import TrainingData, prepare, rescatter_lost
from .checkpoint import load_checkpoint, save_checkpoint
from .history import Round
from .plugin import FederatedModelPlugin, TrainResult
from .predicting import apply_dask, is_dask, score_dask
from .queues import initial_queues, rebalance, requeue, shares_of, take
from .store import GlobalModel, ModelStore, params_nbytes
from .stream import StreamFeeder
from .sync import SyncPolicy, as_policy

logger = logging.getLogger("fedplugin")

#: How often a block may be lost with its worker before ``fit`` gives up.
MAX_ATTEMPTS = 3
#: What a training task raises when its worker, or the data it held, died.
WORKER_LOST = (KilledWorker, CancelledError, CommClosedError, OSError)


class Coordinator:
    """Train one federated model on a Dask cluster, round by round.

    Parameters
    ----------
    client : distributed.Client
        Client of the cluster the plugin is registered on.
    plugin : FederatedModelPlugin or str
        The registered plugin, or its name.
    sync : SyncPolicy or int, default EveryNBatches(50)
        When to synchronize; an int ``n`` means ``EveryNBatches(n)``.
    aggregator : callable or mapping, default WeightedMean()
        How to combine the workers' parameters: an
        :class:`~fedplugin.Aggregator`, any callable
        ``rule(updates, weights) -> dict``, or ``{parameter name: rule}``.
    block_size : int, default 4096
        Rows per block when numpy input is split and scattered.
    max_task_blocks : int, default 64
        Most blocks one training task covers when the policy sets no count.
    preempt : bool, default False
        When a worker ends a round (time, drift, ...): ``False`` lets the other
        workers' running tasks finish; ``True`` stops them after their current
        block and their untrained blocks are trained after the round.
    progress : bool or None, default None
        Show a tqdm progress bar (samples, samples/s, round, version) during
        ``fit`` and ``fit_stream``; ``None`` shows it in a terminal or notebook.
    worker_timeout : float, default 60
        Seconds ``fit`` waits for a worker when none is running (e.g. while
        nannies restart them) before giving up.
    scoring : str or callable, optional
        Test-then-train (progressive validation): each worker scores every
        block with its model *before* training on it, and each round's
        ``metrics["online_score"]`` holds the row-weighted mean. Any scikit-learn
        scorer name (``"accuracy"``, ``"neg_log_loss"``, ...) or a callable
        ``scorer(estimator, X, y) -> float``.
    checkpoint : str or path-like, optional
        Directory to keep a checkpoint in (see :func:`~fedplugin.save_checkpoint`):
        it is written, atomically, after every round and after a failed
        ``fit`` is rolled back, so :meth:`resume` can carry on from the last
        completed round even if the client and the scheduler are lost.

    Attributes
    ----------
    history : list of Round
        One record per synchronization round.
    version : int
        Version of the current global model (-1 before the first fit).

    Examples
    --------
    >>> from dask.distributed import Client, LocalCluster           # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))  # doctest: +SKIP
    >>> plugin = FederatedModelPlugin(SGDClassifier(), classes=[0, 1])  # doctest: +SKIP
    >>> client.register_plugin(plugin)                             # doctest: +SKIP
    >>> coord = Coordinator(client, plugin, sync=EveryNBatches(50))  # doctest: +SKIP
    >>> coord.fit(X, y).global_model()                             # doctest: +SKIP
    SGDClassifier()
    """

    def __init__(
        self,
        client: Client,
        plugin: FederatedModelPlugin | str,
        *,
        sync: SyncPolicy | int | None = None,
        aggregator: Any = None,
        block_size: int = 4096,
        max_task_blocks: int = 64,
        preempt: bool = False,
        progress: bool | None = None,
        worker_timeout: float = 60.0,
        scoring: str | Any = None,
        checkpoint: str | os.PathLike | None = None,
    ) -> None:
        if not isinstance(client, Client):
            raise TypeError(f"client={client!r} is not a distributed.Client")
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"block_size={block_size!r} must be an int >= 1")
        if isinstance(max_task_blocks, bool) or not isinstance(max_task_blocks, int) or max_task_blocks < 1:
            raise ValueError(f"max_task_blocks={max_task_blocks!r} must be an int >= 1")
        self.client = client
        self.policy = as_policy(sync)
        self.aggregator = as_aggregator(WeightedMean() if aggregator is None else aggregator)
        self.block_size = block_size
        self.max_task_blocks = max_task_blocks
        self.preempt = bool(preempt)
        self.progress = progress
        self.worker_timeout = worker_timeout
        self.scorer = _as_scorer(scoring)
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.name, self.estimator, self.classes = self._resolve_plugin(plugin)
        self.adapter = adapter_for(self.estimator)
        if aggregator is not None and self.adapter.exact_aggregation:
            warnings.warn(
                f"aggregator={aggregator!r} is ignored: {type(self.estimator).__name__} is combined "
                "exactly from its sufficient statistics",
                UserWarning,
                stacklevel=2,
            )
        self.history: list[Round] = []
        self._total_samples = 0
        #: The latest round-ending signals workers sent (most recent last).
        self.signals: deque[dict[str, Any]] = deque(maxlen=1000)
        self._current_token: str | None = None
        self._stale_workers: set[str] = set()
        client.register_plugin(ModelStore())
        # Workers that end a round themselves (time, drift, ...) say so on this topic.
        client.subscribe_topic(f"fedplugin-{self.name}", self._on_signal)
        stored = client.run_on_scheduler(tasks.store_get, self.name)
        self._global: GlobalModel | None = None if stored is None else GlobalModel.from_bytes(stored)

    # ------------------------------------------------------------------ public
    @property
    def version(self) -> int:
        """Version of the current global model (-1 before the first fit)."""
        return -1 if self._global is None else self._global.version

    @property
    def n_features(self) -> int | None:
        """Number of features of the global model (``None`` before the first fit)."""
        return None if self._global is None else self._global.n_features

    @property
    def rounds(self) -> int:
        """Synchronization rounds completed over the global model's life."""
        return 0 if self._global is None else self._global.rounds

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard's address, where ``fedplugin-train`` tasks show up."""
        return self.client.dashboard_link

    def fit(self, X: Any, y: Any, *, epochs: int = 1) -> Coordinator:
        """Train on ``X``, ``y`` for ``epochs`` passes, continuing from the global model.

        Parameters
        ----------
        X : numpy array, pandas DataFrame, dask array or dask DataFrame
            Training features, ``(n_samples, n_features)``.
        y : numpy array, pandas Series, dask array or dask Series
            Targets; a dask ``y`` must have the same row chunks (partitions) as ``X``.
        epochs : int, default 1
            Passes over the data; every block is trained exactly once per epoch.

        Returns
        -------
        self

        Raises
        ------
        ValueError, TypeError
            On bad input: wrong types, shapes, features, lengths or row chunks,
            empty input, NaN or infinite values, unknown labels. The global
            model and history are then as they were before the call.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs={epochs!r} must be an int >= 1")
        data = prepare(
            self.client,
            X,
            y,
            block_size=self.block_size,
            n_features=None if self._global is None else self._global.n_features,
            classes=self._classes_for_validation(),
            is_classifier=is_classifier(self.estimator),
        )
        self._check_aggregator(data)
        snapshot = (self._global, len(self.history), self._total_samples)
        try:
            if self._global is None:
                self._initialize(data.n_features, data.classes)
            self._ensure_workers_current()
            self._train(data, epochs)
        except BaseException:
            self._restore(*snapshot)
            raise
        return self

    def fit_stream(
        self, batches: Iterable[tuple[Any, Any]], *, max_blocks_in_flight: int | None = None
    ) -> Coordinator:
        """Train on a stream of ``(X, y)`` numpy batches, as they arrive.

        Batches are read only as fast as the cluster trains them (at most
        ``max_blocks_in_flight`` blocks wait at any time), spread over the
        workers, trained and synchronized by the policy; a final round closes
        the stream.

        Parameters
        ----------
        batches : iterable of (X, y)
            Numpy arrays or pandas objects; a generator works. Classifiers need
            their classes up front (``FederatedModelPlugin(..., classes=...)``
            or an earlier fit), since a stream cannot be looked at in advance.
        max_blocks_in_flight : int, optional
            Backpressure bound; default ``max(2 x blocks per round, 8 x workers)``.

        Raises
        ------
        ValueError, TypeError
            For a bad batch, after training every batch before it.
        """
        n_workers = len(self._workers())
        budget = self.policy.blocks_per_round(n_workers)
        if max_blocks_in_flight is None:
            max_blocks_in_flight = max(2 * (budget or 0), 8 * n_workers)
        if isinstance(max_blocks_in_flight, bool) or not isinstance(max_blocks_in_flight, int) or max_blocks_in_flight < 1:
            raise ValueError(f"max_blocks_in_flight={max_blocks_in_flight!r} must be an int >= 1")
        classes = self._classes_for_validation()
        if is_classifier(self.estimator) and classes is None:
            raise ValueError(
                "fit_stream needs the classes before the first batch: pass "
                f"FederatedModelPlugin(..., classes=[...], name={self.name!r}) or fit once first"
            )
        feed = StreamFeeder(
            self.client, batches, max_blocks=max_blocks_in_flight, block_size=self.block_size,
            n_features=self.n_features, classes=classes, is_classifier=is_classifier(self.estimator),
        )
        first = feed.peek()
        if first is None:
            raise ValueError("the stream is empty; expected at least one (X, y) batch")
        if self._global is None:
            self._initialize(np.asarray(first[0]).shape[1], classes)
            feed.n_features = self._global.n_features
        self._ensure_workers_current()
        blocks: dict[int, Any] = {}
        queues: dict[str, deque] = {w: deque() for w in self._workers()}
        attempts: dict[int, int] = {}
        bar = self._progress_bar(None, 1)
        try:
            while not feed.exhausted or any(queues.values()):
                self._round(queues, blocks, attempts, bar, feed)
                waiting = {index for queue in queues.values() for _, index in queue}
                for index in [i for i in blocks if i not in waiting]:
                    del blocks[index]  # trained: let the cluster forget the block
        finally:
            if bar is not None:
                bar.close()
        if feed.error is not None:
            raise feed.error
        return self

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the global model, history and estimator to a checkpoint directory.

        Parameters
        ----------
        path : str or path-like, optional
            Where to write; defaults to the ``checkpoint`` given at construction.

        Returns
        -------
        Path
            The checkpoint directory, for :meth:`resume` or
            :func:`fedplugin.checkpoint.load_checkpoint`.
        """
        self._check_fitted()
        path = self.checkpoint if path is None else Path(path)
        if path is None:
            raise ValueError("path=None and no checkpoint= was given; expected a directory to write")
        return save_checkpoint(path, self._global, self.history, self.estimator, name=self.name)

    @classmethod
    def resume(
        cls, client: Client, plugin: FederatedModelPlugin | str, path: str | os.PathLike, **kwargs: Any
    ) -> Coordinator:
        """A coordinator that carries on from the checkpoint at ``path``.

        The checkpoint's global model is published to the scheduler's store and
        every worker (replacing whatever model the plugin holds), and the
        history and sample count continue from it. ``kwargs`` go to the
        constructor; ``checkpoint`` defaults to ``path``, so the resumed run
        keeps checkpointing there (pass ``checkpoint=None`` to stop).

        Raises
        ------
        ValueError
            If ``path`` holds no readable checkpoint, or one whose estimator,
            features or classes do not fit ``plugin``.
        """
        saved = load_checkpoint(path)
        kwargs.setdefault("checkpoint", path)
        coord = cls(client, plugin, **kwargs)
        try:
            model = saved.global_model
            if type(saved.estimator) is not type(coord.estimator):
                raise ValueError(
                    f"the checkpoint at {path} holds a {type(saved.estimator).__name__} model; plugin "
                    f"{coord.name!r} trains {type(coord.estimator).__name__}: expected the same estimator class"
                )
            if coord.classes is not None and (
                model.classes is None or not np.array_equal(np.asarray(coord.classes), np.asarray(model.classes))
            ):
                raise ValueError(
                    f"the checkpoint at {path} has classes={None if model.classes is None else model.classes.tolist()}; "
                    f"plugin {coord.name!r} has classes={np.asarray(coord.classes).tolist()}: expected the same classes"
                )
            expected = coord.adapter.get_params(coord.adapter.initialize(coord.estimator, model.n_features, model.classes))
            shapes = {k: np.shape(v) for k, v in model.params.items()}
            if shapes != {k: np.shape(v) for k, v in expected.items()}:
                raise ValueError(
                    f"the checkpoint at {path} has parameters {shapes}; plugin {coord.name!r} expects "
                    f"{ {k: np.shape(v) for k, v in expected.items()} }"
                )
            # force: the store may hold a newer version of another run under this name
            coord._publish(model, force=True)
            coord.history = list(saved.history)
            coord._total_samples = saved.total_samples
        except BaseException:
            coord.close()
            raise
        return coord

    def close(self) -> None:
        """Stop listening to the workers' signals (the model stays on the cluster)."""
        self.client.unsubscribe_topic(f"fedplugin-{self.name}")

    def __enter__(self) -> Coordinator:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def partial_fit(self, X: Any, y: Any) -> Coordinator:
        """One pass over ``X``, ``y``, continuing from the current global model."""
        return self.fit(X, y, epochs=1)

    def synchronize(self) -> int:
        """Run a round now over every worker's local model; return the new version."""
        self._check_fitted()
        start = time.perf_counter()
        states = self.client.run(tasks.state, self.name, on_error="return")
        results = [
            TrainResult(w, 0, s["version"], s["params"], s["samples_since_sync"], [], 0.0, {}, None, 0.0)
            for w, s in states.items()
            if isinstance(s, dict) and s["params"] is not None
        ]
        samples = sum(r.samples_since_sync for r in results)
        self._finish_round(results, "manual", start, 0, len(states), samples, 0)
        return self.version

    def set_global_model(self, model: BaseEstimator) -> int:
        """Make a fitted estimator of the plugin's family the global model; return its version.

        Workers start from it at the next ``fit``; use it to warm-start from a
        model trained elsewhere.
        """
        params = self.adapter.get_params(model)
        n_features = int(getattr(model, "n_features_in_", 0)) or int(next(iter(params.values())).shape[-1])
        classes = getattr(model, "classes_", None)
        version = self.version + 1
        rounds = self.rounds
        self._publish(GlobalModel(version, params, n_features, None if classes is None else np.asarray(classes), rounds))
        self._autosave()
        return version

    def global_model(self) -> BaseEstimator:
        """A copy of the global model: a plain fitted scikit-learn estimator."""
        self._check_fitted()
        g = self._global
        model = self.adapter.initialize(self.estimator, g.n_features, g.classes)
        self.adapter.set_params(model, copy.deepcopy(g.params))
        return model

    def local_models(self) -> dict[str, BaseEstimator]:
        """Copies of every worker's local model, by worker address."""
        return self.client.run(tasks.local_model, self.name)

    def worker_states(self) -> dict[str, dict[str, Any]]:
        """Each worker's model version, parameters and sample counters."""
        return self.client.run(tasks.state, self.name)

    def predict(self, X: Any, *, model: str = "global") -> Any:
        """Label ``X``: numpy in, numpy out (on a worker); dask in, dask out.

        Parameters
        ----------
        X : array-like or dask array / dataframe
            A small numpy batch is labelled on a worker, with the current global
            model (``model="global"``) or that worker's own local model
            (``model="local"``); a dask collection is labelled block by block
            where it lives, with the global model.
        model : {"global", "local"}
        """
        return self._apply("predict", X, model)

    def predict_proba(self, X: Any, *, model: str = "global") -> Any:
        """Class probabilities, where the estimator has them (see :meth:`predict`)."""
        return self._apply("predict_proba", X, model)

    def decision_function(self, X: Any, *, model: str = "global") -> Any:
        """Decision function, where the estimator has it (see :meth:`predict`)."""
        return self._apply("decision_function", X, model)

    def score(self, X: Any, y: Any) -> float:
        """The global model's ``score``: accuracy (classifiers), R² (regressors), or the
        estimator's own score (e.g. negative inertia for k-means)."""
        model = self.global_model()
        if is_dask(X):
            return score_dask(model, X, y)
        return float(model.score(np.asarray(X), np.asarray(y)))

    async def _on_signal(self, event: tuple[float, dict[str, Any]]) -> None:
        """A worker ended the round: with ``preempt``, stop the others' tasks now.

        Runs on the client's event loop, so it must not block: it sends the stop
        requests and returns; the training loop sees the round end when the
        signalling worker's task returns.
        """
        _, message = event
        self.signals.append(message)
        if self.preempt and message.get("token") == self._current_token:
            await self.client.run(
                tasks.request_stop, self.name, message["token"], on_error="ignore", asynchronous=True
            )

    # ------------------------------------------------------------- set-up
    def _resolve_plugin(self, plugin: Any) -> tuple[str, BaseEstimator, np.ndarray | None]:
        if isinstance(plugin, type):
            raise TypeError(f"plugin={plugin.__name__} is a class; expected a registered FederatedModelPlugin(...)")
        if not isinstance(plugin, (FederatedModelPlugin, str)):
            raise TypeError(f"plugin={plugin!r} is not a FederatedModelPlugin or a plugin name")
        name = plugin if isinstance(plugin, str) else plugin.name
        configs = self.client.run(tasks.describe, name)
        if not configs:
            raise ValueError("the cluster has no workers; expected at least one worker")
        missing = sorted(w for w, c in configs.items() if c is None)
        if missing:
            known = sorted(set(itertools.chain.from_iterable(self.client.run(tasks.fedplugin_names).values())))
            raise ValueError(
                f"plugin name {name!r} is not registered on workers {missing}; registered "
                f"fedplugin plugins: {known}. Call fedplugin.register(client, FederatedModelPlugin(..., name={name!r})) first"
            )
        if isinstance(plugin, FederatedModelPlugin):
            return name, plugin.estimator, plugin.classes
        config = next(iter(configs.values()))
        return name, config["estimator"], config["classes"]

    def _classes_for_validation(self) -> np.ndarray | None:
        if self._global is not None:
            return self._global.classes
        return self.classes

    def _check_aggregator(self, data: TrainingData) -> None:
        check = getattr(self.aggregator, "check_names", None)
        if check is not None:
            init = self.adapter.initialize(self.estimator, data.n_features, data.classes)
            check(list(self.adapter.get_params(init)))

    def _initialize(self, n_features: int, classes: np.ndarray | None) -> None:
        model = self.adapter.initialize(self.estimator, n_features, classes)
        self._publish(GlobalModel(0, self.adapter.get_params(model), n_features, classes, 0))

    def _ensure_workers_current(self) -> None:
        """Send the global model to workers that do not hold the current version."""
        versions = self.client.run(_worker_version, self.name, on_error="return")
        behind = [w for w, v in versions.items() if v != self.version]
        if behind:
            self.client.run(tasks.set_global, self.name, self._global.to_bytes(), workers=behind)

    def _publish(self, model: GlobalModel, *, force: bool = False) -> None:
        """Make ``model`` the global model: store it on the scheduler, send it to workers."""
        payload = model.to_bytes()
        self.client.run_on_scheduler(tasks.store_put, self.name, model.version, payload, force)
        answers = self.client.run(tasks.set_global, self.name, payload, on_error="return")
        # A worker that missed it (busy restarting, ...) gets it before it trains again.
        self._stale_workers = {w for w, answer in answers.items() if isinstance(answer, BaseException)}
        self._global = model

    def _restore(self, model: GlobalModel | None, history_len: int, total_samples: int) -> None:
        """Roll back to the state before a failed ``fit``."""
        del self.history[history_len:]
        self._total_samples = total_samples
        if model is not None:
            self._publish(model, force=True)
            self._autosave()
        elif self._global is not None:
            self.client.run_on_scheduler(tasks.store_drop, self.name)
            self.client.run(_forget_model, self.name, on_error="return")
            self._global = None

    def _autosave(self) -> None:
        """Keep the ``checkpoint`` directory in step with the global model."""
        if self.checkpoint is not None and self._global is not None:
            self.save()

    def _check_fitted(self) -> None:
        if self._global is None:
            raise NotFittedError(f"plugin {self.name!r} has no global model yet; call fit first")

    # ------------------------------------------------------------- training
    def _train(self, data: TrainingData, epochs: int) -> None:
        blocks = {b.index: b for b in data.blocks}
        workers = self._workers()
        queues = initial_queues(data, epochs, workers)
        attempts: dict[int, int] = {}
        bar = self._progress_bar(data, epochs)
        try:
            while any(queues.values()):
                self._round(queues, blocks, attempts, bar)
        finally:
            if bar is not None:
                bar.close()

    def _round(
        self, queues: dict[str, deque], blocks: dict, attempts: dict, bar: Any, feed: StreamFeeder | None = None
    ) -> None:
        start = time.perf_counter()
        token = self._current_token = uuid.uuid4().hex
        workers = self._workers()
        rebalance(queues, workers)
        if self._stale_workers:
            self._ensure_workers_current()
            self._stale_workers = set()
        budget = self.policy.blocks_per_round(len(workers))
        if feed is not None:
            feed(queues, blocks, budget or len(workers) * self.max_task_blocks)
        more_coming = feed is not None and not feed.exhausted
        queued = sum(map(len, queues.values()))
        shares = shares_of(budget, workers, budget if more_coming and budget else queued)
        latest: dict[str, TrainResult] = {}
        inflight: dict[Any, tuple[str, list]] = {}
        futures = as_completed()
        trigger = None
        retrained = samples = trained_blocks = handed_back = 0
        score_sum = 0.0

        def launch(worker: str) -> None:
            limit = min(shares.get(worker, 0), self.max_task_blocks)
            items = take(queues, worker, limit)
            if not items and feed is not None and not feed.exhausted:
                feed(queues, blocks, limit)
                items = take(queues, worker, limit)
            if not items:
                return
            shares[worker] -= len(items)
            args = [(index, blocks[index].x, blocks[index].y) for _, index in items]
            future = self.client.submit(
                tasks.train, self.name, token, args, self.policy, time.perf_counter() - start, self.version, self.scorer,
                key=f"fedplugin-train-{uuid.uuid4().hex}", workers=[worker], allow_other_workers=True, pure=False,
            )
            inflight[future] = (worker, items)
            futures.add(future)

        for worker in workers:
            launch(worker)
        for future in futures:
            worker, items = inflight.pop(future)
            try:
                result: TrainResult = future.result()
            except WORKER_LOST as exc:  # the worker was lost: train its blocks again
                logger.warning("training task on %s failed (%r); its %d blocks are trained again", worker, exc, len(items))
                self._wait_for_workers()
                rescatter_lost(self.client, list(blocks.values()))
                for item in items:
                    attempts[item[1]] = attempts.get(item[1], 0) + 1
                    if attempts[item[1]] >= MAX_ATTEMPTS:
                        self._stop_all(token, inflight)
                        raise RuntimeError(f"block {item[1]} was lost {MAX_ATTEMPTS} times; giving up") from exc
                retrained += len(items)
                requeue(queues, self._workers(), items)
                if trigger is None:
                    busy = {w for w, _ in inflight.values()}
                    for idle in self._workers():
                        if idle not in busy:
                            launch(idle)
                continue
            except Exception:  # bad data or a failing estimator: nothing is retried
                self._stop_all(token, inflight)
                raise
            previous = latest.get(result.worker)
            if previous is None or result.seq > previous.seq:
                latest[result.worker] = result  # its parameters include the earlier tasks' updates
            samples += sum(rows for _, rows in result.trained)
            trained_blocks += len(result.trained)
            score_sum += result.score_sum
            # Blocks are trained in order, so the untrained ones are the tail (an
            # index can appear twice in a task, once per epoch).
            leftover = items[len(result.trained):]
            handed_back += len(leftover)
            queues.setdefault(result.worker, deque()).extendleft(reversed(leftover))
            if bar is not None:
                bar.update(sum(rows for _, rows in result.trained))
            if result.trigger is not None and trigger is None:
                trigger = result.trigger
                if self.preempt:
                    self._request_stop(token, [w for w, _ in inflight.values()])
            if trigger is None:
                launch(worker)
        if not any(queues.values()) and (feed is None or feed.exhausted):
            trigger = "final"  # the round that closes the fit, whatever else ended it
        elif trigger is None:
            trigger = "count"
        metrics = {"online_score": score_sum / samples} if self.scorer is not None and samples else {}
        self._finish_round(
            list(latest.values()), trigger, start, retrained, len(workers), samples, trained_blocks, handed_back,
            metrics,
        )
        if bar is not None:
            bar.set_postfix(round=self.rounds, version=self.version)

    def _finish_round(
        self,
        results: list[TrainResult],
        trigger: str,
        start: float,
        retrained: int,
        n_workers: int,
        samples: int,
        blocks: int,
        handed_back: int = 0,
        metrics: dict[str, float] | None = None,
    ) -> None:
        """Aggregate the workers' parameters, publish the result, record the round."""
        finite, excluded = [], []
        for result in sorted(results, key=lambda r: r.worker):  # a fixed order: same sums, same model
            if all(np.all(np.isfinite(v)) for v in result.params.values()):
                finite.append(result)
            else:
                excluded.append(result.worker)
                warnings.warn(
                    f"worker {result.worker} sent non-finite parameters; left out of round "
                    f"{self.rounds + 1}",
                    RuntimeWarning,
                    stacklevel=3,
                )
        g = self._global
        if finite:
            params = self.adapter.aggregate(
                self.aggregator, [r.params for r in finite], [r.samples_since_sync for r in finite], g.params
            )
            params = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
        else:
            params = g.params
        states = [r.state for r in finite if r.state]
        state = {k: float(np.mean([st[k] for st in states])) for k in states[0]} if states else g.extra.get("state", {})
        new = GlobalModel(g.version + 1, params, g.n_features, g.classes, g.rounds + 1, {"state": state})
        self._publish(new)
        self._total_samples += samples
        self.history.append(
            Round(
                round=new.rounds,
                trigger=trigger,
                samples=samples,
                total_samples=self._total_samples,
                blocks=blocks,
                retrained_blocks=retrained,
                handed_back_blocks=handed_back,
                n_workers=len(finite),
                workers=tuple(sorted(r.worker for r in finite)),
                excluded_workers=tuple(sorted(excluded)),
                seconds=time.perf_counter() - start,
                bytes_up=sum(params_nbytes(r.params) for r in results),
                bytes_down=new.nbytes() * n_workers,
                version=new.version,
                metrics=metrics or {},
            )
        )
        self._autosave()
        logger.info("round %d (%s): %d samples from %d workers", new.rounds, trigger, samples, len(finite))

    def _workers(self) -> list[str]:
        workers = sorted(self.client.scheduler_info(n_workers=-1)["workers"])
        if not workers:
            self._wait_for_workers()
            workers = sorted(self.client.scheduler_info(n_workers=-1)["workers"])
        return workers

    def _wait_for_workers(self) -> None:
        """Wait (up to ``worker_timeout``) until at least one worker is running."""
        try:
            self.client.wait_for_workers(1, timeout=self.worker_timeout)
        except TimeoutError as exc:
            raise RuntimeError(
                f"no worker came back within worker_timeout={self.worker_timeout} s; the cluster is gone"
            ) from exc

    def _request_stop(self, token: str, workers: list[str]) -> None:
        if workers:
            self.client.run(tasks.request_stop, self.name, token, workers=sorted(set(workers)), on_error="return")

    def _stop_all(self, token: str, inflight: dict) -> None:
        """Stop and drain running tasks so nothing trains while the model is rolled back."""
        self._request_stop(token, [w for w, _ in inflight.values()])
        for future in list(inflight):
            try:
                future.result()
            except Exception:
                pass

    def _progress_bar(self, data: TrainingData | None, epochs: int) -> Any:
        show = self.progress if self.progress is not None else _interactive()
        if not show:
            return None
        from tqdm.auto import tqdm

        class Bar(tqdm):
            monitor_interval = 0  # no monitor thread left behind once the fit is over

        total = None if data is None or data.n_samples is None else data.n_samples * epochs
        return Bar(total=total, unit="samples", unit_scale=True, desc=f"fedplugin {self.name}")

    def _apply(self, method: str, X: Any, model: str) -> Any:
        if model not in ("global", "local"):
            raise ValueError(f"model={model!r} is not supported; expected 'global' or 'local'")
        self._check_fitted()
        if not hasattr(self.estimator, method):
            raise AttributeError(f"{type(self.estimator).__name__} has no {method}")
        if is_dask(X):
            if model == "local":
                raise ValueError("model='local' labels numpy batches on one worker; pass a numpy array")
            return apply_dask(self.global_model(), method, X)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self._global.n_features:
            raise ValueError(f"X has shape {X.shape}; expected (n_samples, {self._global.n_features})")
        for _ in range(2):  # a cached worker may have left: refresh once
            worker = self._next_worker()
            result = self.client.run(tasks.predict, self.name, X, method, model, workers=[worker], on_error="return")
            if worker in result and not isinstance(result[worker], Exception):
                return result[worker]
            self._prediction_workers = []
        raise result.get(worker, RuntimeError(f"worker {worker} did not answer"))

    def _next_worker(self) -> str:
        """Spread prediction requests over the workers in turn (the list is cached)."""
        if not getattr(self, "_prediction_workers", None):
            self._prediction_workers = self._workers()
        self._predictions = getattr(self, "_predictions", 0) + 1
        return self._prediction_workers[self._predictions % len(self._prediction_workers)]


# ------------------------------------------------------------------- helpers
def _worker_version(name: str, dask_worker: Any = None) -> int | None:
    return tasks.state(name, dask_worker)["version"]


def _forget_model(name: str, dask_worker: Any = None) -> None:
    plugin = dask_worker.plugins[name]
    with plugin.lock:
        plugin.model = None
        plugin.global_model = None


def _interactive() -> bool:
    """True in a terminal or a Jupyter kernel: where a progress bar is welcome."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def _as_scorer(scoring: Any) -> Any:
    """A scorer ``f(estimator, X, y)`` from a name or callable, or ``None``."""
    if scoring is None:
        return None
    if isinstance(scoring, str):
        from sklearn.metrics import get_scorer

        return get_scorer(scoring)  # raises a ValueError listing the valid names
    if callable(scoring):
        return scoring
    raise TypeError(f"scoring={scoring!r} is not a scorer name or a callable scorer(estimator, X, y)")
