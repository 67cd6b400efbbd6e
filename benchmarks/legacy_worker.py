"""Re-creation of the old approach fedplugin replaces: a model living in a ``Worker`` subclass.

This follows step 4 of ``/work/shared/CONTEXT.md``:

* :class:`ModelWorker` subclasses :class:`distributed.Worker` and holds its own
  model. The cluster is started with ``LocalCluster(worker_class=ModelWorker)``;
  with a plain ``Worker`` class ``LocalCluster`` defaults to ``processes=False``,
  so the workers run as threads inside the client's process, without nannies
  (a crashed worker is not restarted).
* Every batch is its own task (:func:`train_batch`), handed to
  ``fire_and_forget``; the task computes its lazy block itself, on the worker.
* After every ``sync_every`` submitted batches the client collects each
  worker's ``coef_``/``intercept_`` with ``client.run``, averages them and sends
  the average back. Tasks still in flight are not waited for, as in the old
  code.

The one thing added for measuring: the client keeps the futures and waits for
all of them before the final average, so the timing covers every batch and the
final model misses none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
from distributed import Client, Worker, fire_and_forget, get_worker, wait
from sklearn.linear_model import SGDClassifier

CLASSES = np.array([0, 1])


class ModelWorker(Worker):
    """A Dask worker that owns an ``SGDClassifier`` and counts the batches it trained."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model = SGDClassifier(random_state=0)
        self.batches_trained = 0


@dataclass(frozen=True)
class LazyBatch:
    """One lazy block of ``X`` and ``y``, computed inside the task that trains it.

    Wrapping the dask arrays keeps ``client.submit`` from turning them into
    dependencies computed by the cluster before the task runs.
    """

    X: Any
    y: Any

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """Compute the block here, in this thread (``scheduler="sync"``)."""
        return dask.compute(self.X, self.y, scheduler="sync")


def train_batch(batch: LazyBatch) -> None:
    """Task: compute one block and ``partial_fit`` the worker's model on it."""
    worker = get_worker()
    X, y = batch.load()
    worker.model.partial_fit(X, y, classes=CLASSES)
    worker.batches_trained += 1


def get_params(dask_worker: ModelWorker) -> dict[str, Any]:
    """``client.run``: the worker's ``coef_``/``intercept_`` (``None`` before its first batch)."""
    model = dask_worker.model
    fitted = hasattr(model, "coef_")
    return {
        "coef_": model.coef_.copy() if fitted else None,
        "intercept_": model.intercept_.copy() if fitted else None,
        "batches_trained": dask_worker.batches_trained,
    }


def set_params(coef: np.ndarray, intercept: np.ndarray, dask_worker: ModelWorker) -> None:
    """``client.run``: overwrite the worker's parameters with the average."""
    model = dask_worker.model
    if hasattr(model, "coef_"):
        model.coef_ = coef.copy()
        model.intercept_ = intercept.copy()


@dataclass
class LegacyRun:
    """What a :func:`train` run did.

    Attributes
    ----------
    model : SGDClassifier
        The final average, as a fitted estimator.
    batches : int
        Batches submitted (all of them were trained before the final average).
    in_flight_at_sync : list of int
        For each synchronization, batches submitted but not yet trained when it
        collected the parameters: their updates missed that average.
    """

    model: SGDClassifier
    batches: int
    in_flight_at_sync: list[int] = field(default_factory=list)


def train(client: Client, X: Any, y: Any, *, sync_every: int = 50) -> LegacyRun:
    """Train the old way: one ``fire_and_forget`` task per block, average every ``sync_every``.

    Parameters
    ----------
    client : distributed.Client
        Client of a cluster started with ``worker_class=ModelWorker``.
    X, y : dask.array.Array
        Lazy training data; each row chunk is one batch.
    sync_every : int, default 50
        Submitted batches between two averages.

    Returns
    -------
    LegacyRun
    """
    futures, run = [], LegacyRun(model=SGDClassifier(random_state=0), batches=X.numblocks[0])
    for i in range(1, run.batches + 1):
        # Cull each batch's graph to its own block: the whole graph would be ~600 KB a task.
        X_block, y_block = dask.optimize(X.blocks[i - 1], y.blocks[i - 1])
        future = client.submit(train_batch, LazyBatch(X_block, y_block), pure=False)
        fire_and_forget(future)
        futures.append(future)
        if i % sync_every == 0:
            run.in_flight_at_sync.append(i - _average(client, run.model))
    wait(futures)
    _average(client, run.model)
    return run


def _average(client: Client, model: SGDClassifier) -> int:
    """Average the fitted workers' parameters into ``model`` and every worker; return batches trained."""
    states = list(client.run(get_params).values())
    fitted = [s for s in states if s["coef_"] is not None]
    if fitted:
        coef = np.mean([s["coef_"] for s in fitted], axis=0)
        intercept = np.mean([s["intercept_"] for s in fitted], axis=0)
        client.run(set_params, coef, intercept)
        model.coef_, model.intercept_, model.classes_ = coef, intercept, CLASSES
    return sum(s["batches_trained"] for s in states)
