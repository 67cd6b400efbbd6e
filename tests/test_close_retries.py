"""A round closed again after its aggregator was lost: the first stored model of the round wins.

The aggregator of round ``b`` stores version ``b + 1`` and may be lost while
pushing it, after some workers merged it. The retry must push that stored
model again (never combine a second ``b + 1``), report the participants it
left out (their blocks are trained again), and no worker may go back a version.
"""

import asyncio
from dataclasses import replace

import numpy as np
import pytest
from sklearn.linear_model import SGDRegressor
from sklearn.naive_bayes import MultinomialNB

from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin, exchange, store, tasks
from fedplugin.reduction import groups_of
from fedplugin.store import GlobalModel


def counts_data(n):
    rng = np.random.default_rng(0)
    return rng.integers(0, 5, size=(n, 6)).astype(float), rng.integers(0, 3, size=n)


def fitted_counts(client, name):
    X, y = counts_data(2000)
    plugin = FederatedModelPlugin(MultinomialNB(), classes=[0, 1, 2], name=name)
    client.register_plugin(plugin)
    coord = Coordinator(client, plugin, sync=EveryNBatches(4), block_size=500, overlap=False, progress=False)
    coord.fit(X, y)
    return coord


def store_first_attempt(client, name, version, combined, bump):
    """What an earlier attempt stored as version ``version + 1`` (its parameters moved by ``bump``)."""
    held = store.fetch(client, name)
    assert held.version == version
    first = replace(held, version=version + 1, rounds=held.rounds + 1, params={k: a + bump for k, a in held.params.items()},
                    combined=tuple(combined), excluded=())
    store.put(client, first, name)
    return first


@pytest.mark.parametrize("retry", [True, False], ids=["retry-reads-the-store", "store-refuses-a-second-model"])
def test_retry_pushes_the_stored_model_and_reports_whom_it_left_out(shared_client, unique_name, retry):
    """The retrying worker holds version v (no server state, so its copy looked usable): it must not
    combine and store a second v + 1. Without ``retry`` (the store read late), the store refuses it."""
    coord = fitted_counts(shared_client, unique_name)
    v, workers = coord.version, sorted(shared_client.scheduler_info()["workers"])
    first = store_first_attempt(shared_client, unique_name, v, combined=workers[:1], bump=1000.0)
    retrier = workers[1]
    assert shared_client.run(tasks.version, unique_name, workers=[retrier])[retrier] == v
    summary = shared_client.run(
        exchange.close_round, unique_name, v, workers, coord.aggregator, True, retry=retry, workers=[retrier]
    )[retrier]
    assert (summary.version, summary.workers, summary.missing) == (v + 1, workers[:1], workers[1:])
    np.testing.assert_array_equal(store.fetch(shared_client, unique_name).params["class_count_"], first.params["class_count_"])
    assert shared_client.run(tasks.version, unique_name) == {w: v + 1 for w in workers}
    for model in coord.local_models().values():  # nothing but the stored model reached the workers
        np.testing.assert_array_equal(model.class_count_, first.params["class_count_"])


def _connect_timeout(value, dask_worker=None):
    import dask

    before = dask.config.get("distributed.comm.timeouts.connect")
    dask.config.set({"distributed.comm.timeouts.connect": value})
    return before


def _receive(name, model, dask_worker=None):
    dask_worker.plugins[name].receive(model)
    return dask_worker.plugins[name].rounds.version


def test_reduction_tree_head_holding_the_stored_model_ends_in_pushing_it(shared_client, unique_name):
    """A retry by a reduction tree (fan_in=2, two unreachable addresses make groups [A, F0] and
    [B, F1] of two workers) whose head B already merged the stored v + 1: the round is pushed again,
    the fit is not failed. The unreachable addresses are tried with a short connect timeout."""
    client = shared_client
    rng = np.random.default_rng(0)
    plugin = FederatedModelPlugin(SGDRegressor(random_state=0), name=unique_name)
    client.register_plugin(plugin)
    coord = Coordinator(client, plugin, sync=EveryNBatches(2), block_size=500, overlap=False, progress=False)
    coord.fit(rng.normal(size=(1000, 3)), rng.normal(size=1000))
    v = coord.version
    a, b = sorted(client.scheduler_info()["workers"])
    host, a_port, b_port = a.rsplit(":", 1)[0], a.rsplit(":", 1)[1], b.rsplit(":", 1)[1]
    # Addresses sort as strings: the lowest port that sorts between A's and B's, and one after B's.
    f0 = next(f"{host}:{p}" for p in range(1, 65536) if a_port < str(p) < b_port)
    f1 = next(f"{host}:{p}" for p in range(1, 65536) if str(p) > b_port)
    members = sorted([a, b, f0, f1])
    assert [group[0] for group in groups_of(members, 2)] == [a, b], members
    first = store_first_attempt(client, unique_name, v, combined=[a, b], bump=1.0)
    assert client.run(_receive, unique_name, first.for_workers(), workers=[b])[b] == v + 1
    before = client.run(_connect_timeout, "0.2s")
    try:
        summary = client.run(exchange.close_round, unique_name, v, members, coord.aggregator, True, fan_in=2, workers=[a])[a]
    finally:
        for worker, value in before.items():
            client.run(_connect_timeout, value, workers=[worker])
    assert (summary.version, summary.workers, summary.missing) == (v + 1, [a, b], sorted([f0, f1]))
    np.testing.assert_array_equal(store.fetch(client, unique_name).params["coef_"], first.params["coef_"])
    assert client.run(tasks.version, unique_name) == {a: v + 1, b: v + 1}


# ------------------------------------------------------------------ a whole fit
def _lose_after_storing(name, version, dask_worker=None):
    """On a worker: the first attempt to store ``version`` of ``name`` merges it here only, then
    fails as if this worker were lost (once)."""
    from distributed.comm.core import CommClosedError

    from fedplugin import store as st

    put = st.worker_put

    async def put_then_lost(worker, name_, version_, payload):
        stored = await put(worker, name_, version_, payload)
        if name_ == name and version_ == version:
            st.worker_put, st.first_stored_by_test = put, payload  # once
            worker.plugins[name].receive(GlobalModel.from_bytes(payload).for_workers())
            raise CommClosedError(f"{worker.address} lost after storing version {version} (a test's fault)")
        return stored

    put_then_lost.original = put
    st.worker_put = put_then_lost


def _miss_push(name, version, dask_worker=None):
    """On a worker: the push of ``version`` of ``name`` never arrives."""
    plugin = dask_worker.plugins[name]
    receive = plugin.receive
    plugin.receive = lambda model: None if model.version == version else receive(model)


def _first_stored(dask_worker=None):
    """Remove a fault; the model it stored (``None``: it did not fire)."""
    from fedplugin import store as st

    st.worker_put = getattr(st.worker_put, "original", st.worker_put)
    return st.__dict__.pop("first_stored_by_test", None)


@pytest.mark.parametrize("case", ["merged-by-the-aggregator", "participant-missed-a-push"])
def test_fit_after_a_lost_aggregator_counts_every_sample_once(shared_client, unique_name, case):
    """Round 1's aggregator A stores version 2, merges it itself and is lost. The retry must push
    that model, not combine a second version 2 without A's update (A merged the first: it has none
    left) and train A's blocks again. (With more workers, one holding the first version 2 adds A's
    round to a later one: counted twice. With two, A combines the next round on its own copy and the
    counts come out right by chance, so the stored model and the round's record are checked too.)
    When B missed the push of version 1 (its update for round 1 cannot be combined), the retry must
    report B missing, so that its blocks are trained again."""
    client = shared_client
    X, y = counts_data(6000)
    plugin = FederatedModelPlugin(MultinomialNB(), classes=[0, 1, 2], name=unique_name)
    client.register_plugin(plugin)
    a, b = sorted(client.scheduler_info()["workers"])
    client.run(_lose_after_storing, unique_name, 2, workers=[a])
    if case == "participant-missed-a-push":
        client.run(_miss_push, unique_name, 1, workers=[b])
    pushed = []  # version 2 as stored when its round was recorded
    keep = lambda record: pushed.append(store.fetch(client, unique_name)) if record.version == 2 else None  # noqa: E731
    coord = Coordinator(client, plugin, sync=EveryNBatches(4), block_size=500, overlap=False, progress=False, callbacks=[keep])
    try:
        coord.fit(X, y)
    finally:
        first = client.run(_first_stored, workers=[a])[a]
    assert first is not None, f"the aggregator of round 1 ({a}) was lost right after storing version 2"
    np.testing.assert_array_equal(pushed[0].params["class_count_"], GlobalModel.from_bytes(first).params["class_count_"])
    np.testing.assert_array_equal(coord.global_model().class_count_, np.bincount(y, minlength=3))
    assert sum(r.samples for r in coord.history) == len(y)
    second = next(r for r in coord.history if r.version == 2)
    if case == "participant-missed-a-push":
        assert (second.workers, second.retrained_blocks) == ((a,), 2)  # B's blocks of round 1
    else:
        assert (second.workers, second.retrained_blocks) == ((a, b), 0)


# ------------------------------------------------------------------ a worker starting
class _SlowScheduler:
    """Answers the store fetch with version 4, which reaches the worker only after ``arrived`` is set."""

    def __init__(self, arrived):
        self.arrived = arrived

    async def register_scheduler_plugin(self, **kwargs):
        return None

    async def fedplugin_store_get(self, name):
        payload = _linear(4).to_bytes()
        await self.arrived.wait()
        return payload


class _StartingWorker:
    address = "tcp://127.0.0.1:1"

    def __init__(self, arrived):
        self.handlers, self.plugins = {}, {}
        self.scheduler = _SlowScheduler(arrived)


def _linear(version):
    return GlobalModel(version, {"coef_": np.full(2, float(version)), "intercept_": np.zeros(1)}, 2, estimator="SGDRegressor")


def test_worker_starting_keeps_a_newer_model_pushed_while_it_fetched_the_stored_one():
    """setup registers its handlers, then fetches the stored model (version 4); version 5 is pushed
    meanwhile. The interleaving is forced with a scheduler stand-in that holds back the reply."""

    async def start():
        arrived = asyncio.Event()
        worker = _StartingWorker(arrived)
        plugin = FederatedModelPlugin(SGDRegressor(), name="m")
        worker.plugins["m"] = plugin  # as Worker.plugin_add does before setup
        setup = asyncio.create_task(plugin.setup(worker))
        while "fedplugin_forward" not in worker.handlers:
            await asyncio.sleep(0)
        await worker.handlers["fedplugin_forward"](name="m", model=_linear(5), targets=[worker.address])
        arrived.set()
        await setup
        return plugin

    plugin = asyncio.run(start())
    assert plugin.rounds.version == 5
    np.testing.assert_array_equal(plugin.model.coef_, [5.0, 5.0])
    assert plugin.restored_at is None, "the stored, older model was not adopted"
