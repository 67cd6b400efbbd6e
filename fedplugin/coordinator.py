"""The client-side front end: settings, history and the public methods.

The :class:`Coordinator` delegates: the round engine (:mod:`fedplugin.engine`)
runs the rounds, the workers combine them (:mod:`fedplugin.exchange`), block
sources (:mod:`fedplugin.sources`) feed ``fit`` and ``fit_stream`` alike, and
:mod:`fedplugin.store` owns every call to the scheduler's model store. The
client keeps the global model's version and shape, not its parameters: they
are fetched (and cached per version) when :meth:`Coordinator.global_model`,
a prediction or a checkpoint asks for them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from numbers import Integral
from functools import partial
from typing import Any

import numpy as np
from distributed import Client
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from . import store
from .adapters import adapter_for
from .aggregation import WeightedMean, as_aggregator
from .blocks import DataDoesNotFitModel, TrainingData, prepare
from .checkpoint_format import check_storable
from .checks import check_number
from .checkpointing import CheckpointMixin
from .compression import Codec, as_codec
from .dashboard import RoundFeed, page_link
from .data_init import sample_batch, sample_blocks
from .callbacks import as_callbacks, early_stopping_callbacks
from .engine import RoundEngine
from .deploy import resolve_plugin
from .history import DEFAULT_HISTORY_LIMIT, Round, RoundLog
from .input_kinds import placeholder_targets
from .rows import as_rows, check_accepted, n_columns, row_kind
from .ownership import explain_mismatch, replace_foreign_model
from .plugin import FederatedModelPlugin
from .global_model import GlobalModelMixin
from .predicting import as_online_scorer
from .recording import RecordingMixin, one_at_a_time
from .sampling import WorkerSample, as_sample
from .server_optimizers import check_rule_fits
from .signals import SignalsMixin
from .sources import BlockSource, StreamSource
from .store import GlobalModel
from .settings import check_arguments, check_path, check_validation_data
from .stragglers import Quorum
from .stream import StreamFeeder
from .sync import SyncPolicy, as_policy

logger = logging.getLogger("fedplugin")


class Coordinator(GlobalModelMixin, CheckpointMixin, SignalsMixin, RecordingMixin):
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
        ``rule(updates, weights) -> dict``, ``{parameter name: rule}``, or a
        server optimizer such as :class:`~fedplugin.FedAdam`, or
        :class:`~fedplugin.DPFedAvg` for differential privacy (both refused
        for families combined exactly). It runs on the worker that closes
        each round, so it must pickle.
    block_size : int, default 4096
        Rows per block when numpy input (or a stream) is split into blocks.
    max_task_blocks : int, default 64
        Most blocks one training task covers.
    overlap : {"auto", True, False}, default "auto"
        ``True``: workers keep training while a round is combined, and merge
        the new global model into their local one when it arrives
        (``global + (local - handed-over update)``). ``False``: strict
        synchronous rounds, bitwise reproducible run to run. ``"auto"``:
        overlap while training tasks last at least twice as long as combining
        a round (measured); with shorter tasks, all of a task's progress would
        be made on a stale model, so rounds run synchronously.
    preempt : bool, default False
        When a worker ends a round (time, drift, ...): ``False`` lets the other
        workers' running tasks finish; ``True`` stops them after their current
        block and their untrained blocks are trained after the round.
    progress : bool or None, default None
        Show a tqdm progress bar during ``fit`` and ``fit_stream``; ``None``
        shows it in a terminal or notebook.
    worker_timeout : float, default 60
        Seconds ``fit`` waits for a worker when none is running (e.g. while
        nannies restart them) before giving up.
    scoring : str or callable, optional
        Test-then-train (progressive validation): each worker scores every
        block with its model *before* training on it, and each round's
        ``metrics["online_score"]`` holds the row-weighted mean. Any scikit-learn
        scorer name or a callable ``scorer(estimator, X, y) -> float``.
    checkpoint : str or path-like, optional
        Directory to keep a checkpoint in (see :func:`~fedplugin.save_checkpoint`),
        written atomically after every round and after a failed ``fit`` is
        rolled back, so :meth:`resume` can carry on from the last round.
    history_limit : int or None, default 10,000
        Rounds :attr:`history` keeps in memory; older ones are forgotten so
        that a long-running stream keeps bounded memory. ``None`` keeps all.
    history_file : str or path-like, optional
        A JSON-lines file every round is also appended to as it is recorded
        (read it back with ``pandas.read_json(path, lines=True)``).
    workers_per_round : float, int or WorkerSample, optional
        Train only a sample of the workers in each round (Flower's
        ``fraction_fit``): a fraction such as ``0.5``, a number of workers, or
        :class:`~fedplugin.WorkerSample` with a seed. Default: every worker.
    callbacks : list of callable, optional
        Each is called as ``callback(round_record)`` after every round (see
        :doc:`/guide/monitoring`); one that raises fails (and rolls back) the fit.
    early_stopping : bool, default False
        Stop a fit once the score has not improved by ``tol`` for
        ``n_iter_no_change`` rounds (:class:`~fedplugin.EarlyStopping`): the
        score on ``validation_data`` if given, else the test-then-train score
        (``scoring=``). The blocks not yet trained are left untrained.
    n_iter_no_change : int, default 5
    tol : float, default 1e-3
    validation_data : (X_val, y_val), optional
        Scored with the global model after every round, in
        ``Round.metrics["validation_score"]`` (the model is fetched to the
        client each round: its bytes count in ``client_bytes``).
    compression : {None, "float16", "int8", "topk"} or Codec, default None
        Compress what workers send to the worker that combines a round:
        :class:`~fedplugin.compression.Float16`, :class:`~fedplugin.compression.Int8`
        or :class:`~fedplugin.compression.TopK` (with error feedback), see
        :doc:`/guide/compression`. Refused for families combined exactly.
    stragglers : Quorum or FedBuff, optional
        Let a round close without its slowest workers: once enough of them
        are done, or at a deadline (:class:`~fedplugin.Quorum`), or every ``K``
        updates (:class:`~fedplugin.FedBuff`). A late worker's progress joins
        a later round, discounted by its staleness; see :doc:`/guide/strategies`.
        Needs ``overlap`` ``True`` or ``"auto"``. Default: wait for every worker.

    Attributes
    ----------
    history : list of Round
        One record per synchronization round: the latest ``history_limit``.
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
        overlap: bool | str = "auto",
        preempt: bool = False,
        progress: bool | None = None,
        worker_timeout: float = 60.0,
        scoring: str | Any = None,
        checkpoint: str | os.PathLike | None = None,
        history_limit: int | None = DEFAULT_HISTORY_LIMIT,
        history_file: str | os.PathLike | None = None,
        workers_per_round: WorkerSample | float | int | None = None,
        callbacks: list[Callable[[Round], Any]] | None = None,
        early_stopping: bool = False,
        n_iter_no_change: int = 5,
        tol: float = 1e-3,
        validation_data: tuple[Any, Any] | None = None,
        compression: str | Codec | None = None,
        stragglers: Quorum | None = None,
    ) -> None:
        stragglers = check_arguments(client, block_size, max_task_blocks, overlap, stragglers, worker_timeout)
        checkpoint, validation_data = check_path(checkpoint, "checkpoint"), check_validation_data(validation_data)
        history_file = check_path(history_file, "history_file")
        self.client = client
        self.policy = as_policy(sync, scoring)
        self.aggregator = as_aggregator(WeightedMean() if aggregator is None else aggregator)
        self.block_size = block_size
        self.max_task_blocks = max_task_blocks
        self.overlap, self.stragglers = overlap, stragglers
        self.preempt = bool(preempt)
        self.progress = progress
        self.worker_timeout = worker_timeout
        self.sample = as_sample(workers_per_round)
        self.validation_data = validation_data
        self.callbacks = as_callbacks(callbacks) + early_stopping_callbacks(early_stopping, n_iter_no_change, tol, validation_data, scoring)
        self.scorer = as_online_scorer(scoring)
        self.checkpoint = checkpoint
        self.name, self.estimator, self.classes = resolve_plugin(client, plugin)
        if self.checkpoint is not None and self.checkpoint_format == "npz":
            check_storable(self.estimator)  # fail now, not at the first round's save
        self.adapter = adapter_for(self.estimator)
        check_rule_fits(self.aggregator, self.adapter, self.estimator, given=aggregator is not None)
        self.compression = as_codec(compression, self.adapter)
        #: The latest ``history_limit`` :class:`~fedplugin.Round` records of this coordinator, oldest first.
        self.history: list[Round] = RoundLog(history_limit, history_file)
        self._total_samples = 0
        self._training = threading.Lock()  # held by fit and fit_stream: one at a time
        self._engine: RoundEngine | None = None
        self._cache: tuple[int, BaseEstimator, GlobalModel] | None = None
        store.ensure_store(client)
        replace_foreign_model(client, self.name, self.estimator, self.classes)
        self._listen_to_workers()
        self._dashboard = RoundFeed(client, self.name)  # the dashboard page's data, when it is served
        self._global: GlobalModel | None = store.fetch_info(client, self.name)

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
        """The address of this coordinator's page in the Dask dashboard, live during a fit.

        ``None`` when the scheduler serves no Bokeh dashboard (started with
        ``dashboard_address=None``, or ``bokeh`` not installed where it runs:
        ``pip install "fedplugin[dashboard]"``). See :doc:`/guide/monitoring`.
        """
        return page_link(self.client, self.name)

    @one_at_a_time
    def fit(self, X: Any, y: Any = None, *, epochs: int = 1) -> Coordinator:
        """Train on ``X``, ``y`` for ``epochs`` passes, continuing from the global model.

        Parameters
        ----------
        X : numpy array, pandas DataFrame, dask array or dask DataFrame
            Training features, ``(n_samples, n_features)``.
        y : numpy array, pandas Series, dask array or dask Series, optional
            Targets; a dask ``y`` must have the same row chunks (partitions) as
            ``X``. Not needed by estimators that learn no targets (scalers).
        epochs : int, default 1
            Passes over the data; every block is trained exactly once per epoch.

        Returns
        -------
        self

        Raises
        ------
        ValueError, TypeError
            On bad input: wrong types, shapes, features, lengths or row chunks,
            empty input, NaN or infinite values, unknown labels; also when
            training diverges twice on the same block
            (``fedplugin.TrainingDiverged``, see :doc:`/guide/concepts`).
            The global model and history are then as they were before the call.
        """
        check_number(epochs, "epochs", Integral, min_val=1)
        self._follow_store(pin=True)
        if y is None:
            if self._kind in ("classifier", "regressor"):
                raise ValueError(f"y=None: a {type(self.estimator).__name__} learns targets; expected fit(X, y)")
            y = placeholder_targets(X)
        with explain_mismatch(self.name, self.version):
            names = self._feature_names_of(X, DataDoesNotFitModel)  # checked first, as scikit-learn does
            data = prepare(
                self.client, X, y, block_size=self.block_size, n_features=self.n_features,
                classes=self._classes_for_validation(), is_classifier=self._kind == "classifier",
                multi_output=self.adapter.multi_output, n_outputs=self._n_outputs(),
            )
        check_accepted(self.estimator, data.rows, data.n_samples)
        self._check_aggregator(data)
        with self._rollback_on_error():
            if self._global is None:
                draw = partial(sample_blocks, self.client, data.blocks, n_samples=data.n_samples)
                self._initialize(data.n_features, data.classes, draw, data.n_outputs, names)
            self._ensure_workers_current()
            self._run(BlockSource.from_data(data, epochs, self._workers()), data.n_samples and data.n_samples * epochs)
        return self

    @one_at_a_time
    def fit_stream(
        self, batches: Iterable[tuple[Any, Any]], *, max_blocks_in_flight: int | None = None
    ) -> Coordinator:
        """Train on a stream of ``(X, y)`` numpy batches, as they arrive.

        Batches are coalesced into blocks of ``block_size`` rows and read only
        as fast as the cluster trains them: the client holds at most
        ``max_blocks_in_flight`` blocks that are not yet combined into the
        global model, so memory stays flat however long the stream. Rounds
        overlap as in :meth:`fit`; a final round closes the stream.

        Parameters
        ----------
        batches : iterable of (X, y)
            Numpy arrays or pandas objects; a generator works. Classifiers need
            their classes up front (``FederatedModelPlugin(..., classes=...)``
            or an earlier fit), since a stream cannot be looked at in advance.
        max_blocks_in_flight : int, optional
            Backpressure bound; default ``max(3 x blocks per round, 8 x workers)``.

        Raises
        ------
        ValueError, TypeError
            A bad batch, or an item that is not an ``(X, y)`` pair; an error
            the stream itself raises comes through with a note counting the
            batches read. Either way every batch before it is trained first.
            Any other error (a failing task, an interrupt) rolls the model and
            history back as in :meth:`fit`.
        """
        self._follow_store(pin=True)
        n_workers = len(self._workers())
        budget = self.policy.blocks_per_round(n_workers)
        if max_blocks_in_flight is None:
            max_blocks_in_flight = max(3 * (budget or 0), 8 * n_workers)
        check_number(max_blocks_in_flight, "max_blocks_in_flight", Integral, min_val=1)
        classes = self._classes_for_validation()
        if self._kind == "classifier" and classes is None:
            raise ValueError(
                "fit_stream needs the classes before the first batch: pass "
                f"FederatedModelPlugin(..., classes=[...], name={self.name!r}) or fit once first"
            )
        feed = StreamFeeder(
            self.client, batches, max_blocks=max_blocks_in_flight, block_size=self.block_size,
            n_features=self.n_features, classes=classes, is_classifier=self._kind == "classifier",
            multi_output=self.adapter.multi_output, n_outputs=self._n_outputs(), check_names=partial(self._feature_names_of, error=DataDoesNotFitModel),
        )
        with explain_mismatch(self.name, self.version):
            first = feed.peek()
        if first is None:
            raise feed.error or ValueError("the stream is empty; expected at least one (X, y) batch")
        check_accepted(self.estimator, row_kind(as_rows(first[0])), None)
        with self._rollback_on_error():
            if self._global is None:
                names = self._feature_names_of(first[0])  # the first batch's, recorded
                self._initialize(n_columns(as_rows(first[0])), classes, partial(sample_batch, first[0]), feed.outputs_of(first), names)
                feed.n_features, feed.n_outputs = self._global.n_features, self._global.n_outputs
            self._ensure_workers_current()
            self._run(StreamSource(feed, self._workers()), None)
        if feed.error is not None:
            raise feed.error
        return self

    def close(self) -> None:
        """Stop listening to the workers' signals (the model stays on the cluster)."""
        self._stop_listening()

    def __enter__(self) -> Coordinator:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def partial_fit(self, X: Any, y: Any) -> Coordinator:
        """One pass over ``X``, ``y``, continuing from the current global model."""
        return self.fit(X, y, epochs=1)

    # ------------------------------------------------------------- set-up
    @property
    def _kind(self) -> str | None:
        """Whether training needs classes (``"classifier"``) or numeric targets (``"regressor"``)."""
        return self.adapter.estimator_type(self.estimator)

    def _classes_for_validation(self) -> np.ndarray | None:
        return self.classes if self._global is None else self._global.classes

    def _check_aggregator(self, data: TrainingData) -> None:
        check = getattr(self.aggregator, "check_names", None)
        if check is not None:
            init = self.adapter.initialize_like(self.estimator, data)
            for names in self.adapter.rule_views(list(self.adapter.get_params(init))):
                check(names)

    def _check_fitted(self) -> None:
        if self._global is None:
            raise NotFittedError(f"plugin {self.name!r} has no global model yet; call fit first")
