"""Synchronization policies on a real cluster: triggers, signals, in-flight tasks, accounting."""

import time
import uuid

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

from fedplugin import AnyOf, Coordinator, DriftThreshold, EveryNBatches, EverySeconds, FederatedModelPlugin, SyncPolicy


@pytest.fixture
def client(shared_client):
    """This module's tests share one cluster (~2.5 s saved per test); each
    registers its plugin under a name of its own."""
    return shared_client


class Pause(SyncPolicy):
    """Never ends a round; sleeps after each block so rounds have a measurable length."""

    def __init__(self, seconds):
        self.seconds = seconds

    def check(self, stats):
        time.sleep(self.seconds)
        return None


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=20_000, n_features=20, n_informative=10, random_state=0)
    return StandardScaler().fit_transform(X), y


def coordinator(client, name, sync, **kwargs):
    # A steady learning rate: parameters move ~15 % per block instead of ~100 %,
    # so a drift threshold means something.
    estimator = SGDClassifier(learning_rate="adaptive", eta0=0.01, random_state=0)
    name = f"{name}-{uuid.uuid4().hex[:8]}"  # the cluster is shared: a name of the test's own
    plugin = FederatedModelPlugin(estimator, classes=[0, 1], name=name)
    client.register_plugin(plugin)
    return Coordinator(client, plugin, sync=sync, block_size=500, **kwargs)


def test_every_seconds(client, data):
    X, y = data
    coord = coordinator(client, "time", AnyOf(EverySeconds(0.1), Pause(0.02)))
    coord.fit(X, y)  # 20 blocks per worker, >= 20 ms each: several time-triggered rounds
    triggers = [r.trigger for r in coord.history]
    assert triggers.count("time") >= 2 and triggers[-1] == "final"
    assert sum(r.samples for r in coord.history) == len(X)
    for record in coord.history[:-1]:
        assert record.seconds >= 0.1


@pytest.mark.parametrize("preempt", [False, True])
def test_drift_threshold_signals_and_loses_no_block(client, data, preempt):
    X, y = data
    coord = coordinator(client, f"drift-{preempt}", DriftThreshold(relative=0.5), preempt=preempt)
    coord.fit(X, y, epochs=2)
    triggers = [r.trigger for r in coord.history]
    assert "drift" in triggers and triggers[-1] == "final"
    assert sum(r.samples for r in coord.history) == 2 * len(X), "no block lost or trained twice"
    assert sum(r.blocks for r in coord.history) == 2 * 40
    assert sum(r.handed_back_blocks for r in coord.history) > 0, "early-ending tasks handed blocks back"
    # the signals came through Dask's event topic, from the workers themselves
    assert {s["trigger"] for s in coord.signals} == {"drift"}
    assert {s["worker"] for s in coord.signals} <= set(client.scheduler_info()["workers"])
    assert len(coord.history) < 80, "far fewer rounds than blocks"


def test_drift_rounds_fewer_than_periodic_with_similar_accuracy(client, data):
    X, y = data
    frequent = coordinator(client, "every-block", EveryNBatches(2))
    frequent.fit(X, y)
    drift = coordinator(client, "drift", DriftThreshold(relative=0.3))
    drift.fit(X, y)
    assert len(drift.history) < len(frequent.history)
    assert drift.score(X, y) >= frequent.score(X, y) - 0.05


def test_custom_policy(client, data):
    X, y = data

    class EveryThousandSamples(SyncPolicy):
        def check(self, stats):
            return "samples" if stats.samples >= 1000 else None

    coord = coordinator(client, "custom", EveryThousandSamples())
    coord.fit(X[:10_000], y[:10_000])
    triggers = {r.trigger for r in coord.history}
    assert "samples" in triggers
    assert sum(r.samples for r in coord.history) == 10_000


def test_history_records_workers_and_bytes(client, data):
    X, y = data
    coord = coordinator(client, "bytes", EveryNBatches(10))
    coord.fit(X, y)
    param_bytes = (20 + 1) * 8  # coef_ (1, 20) and intercept_ (1,) as float64
    for record in coord.history:
        assert record.workers == tuple(sorted(client.scheduler_info()["workers"]))
        assert record.bytes_up == param_bytes * record.n_workers
        assert record.bytes_down == param_bytes * 2
    np.testing.assert_array_equal([r.version for r in coord.history], np.arange(1, len(coord.history) + 1))


@pytest.mark.parametrize("overlap", [False, True], ids=["synchronous", "overlap"])
@pytest.mark.parametrize("policy", [DriftThreshold(relative=100.0), EverySeconds(100)], ids=["drift", "time"])
def test_policies_without_a_count_keep_every_worker_busy(client, data, policy, overlap):
    """Without a block count, no worker may take the others' blocks before they start.

    With ``overlap`` (issue 9) a worker that ends a round starts the next one
    while the others finish theirs, so a round may hold one worker's update
    only; each worker still trains its own half.
    """
    X, y = data
    coord = coordinator(client, f"busy-{type(policy).__name__}-{overlap}", policy, overlap=overlap)
    coord.fit(X[:16_000], y[:16_000])  # 32 blocks, 16 on each worker, far below max_task_blocks
    totals = [state["samples_total"] for state in coord.worker_states().values()]
    assert sorted(totals) == [8000, 8000]
    assert sum(r.samples for r in coord.history) == 16_000
    if not overlap:
        assert all(r.n_workers == 2 for r in coord.history)
