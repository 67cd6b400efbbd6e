"""Review of the round engine (wip-review): races around a round's close retried after its aggregator died."""

import os
from dataclasses import replace

import numpy as np
import pytest
from distributed import Client, LocalCluster
from sklearn.naive_bayes import MultinomialNB

from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin, exchange, store, tasks


def counts_data(n=20_000):
    rng = np.random.default_rng(0)
    return rng.integers(0, 5, size=(n, 6)).astype(float), rng.integers(0, 3, size=n)


def test_retry_on_a_worker_holding_the_old_version_combines_a_second_model(shared_client, unique_name):
    """exchange.close_round: an earlier attempt stored version v+1 and died while pushing it;
    the retrying worker still holds version v (no server optimizer: its copy is not 'in store'),
    so _round_model returns its held copy and a *second, different* v+1 is combined and stored."""
    client = shared_client
    X, y = counts_data(4000)
    plugin = FederatedModelPlugin(MultinomialNB(), classes=[0, 1, 2], name=unique_name)
    client.register_plugin(plugin)
    coord = Coordinator(client, plugin, sync=EveryNBatches(4), block_size=500, overlap=False, progress=False)
    coord.fit(X, y)
    v = coord.version
    workers = sorted(client.scheduler_info()["workers"])
    retrier = workers[1]
    # The first attempt: stored v+1 (here: marked by +1000 counts), then died before pushing to `retrier`.
    held = store.fetch(client, unique_name)
    first = replace(held, version=v + 1, rounds=held.rounds + 1,
                    params={k: a + 1000 for k, a in held.params.items()})
    store.put(client, first, unique_name)
    assert client.run(tasks.version, unique_name, workers=[retrier])[retrier] == v
    summary = client.run(exchange.close_round, unique_name, v, workers, coord.aggregator, True,
                         workers=[retrier])[retrier]
    stored = store.fetch(client, unique_name)
    assert summary.version == v + 1
    # close_round's own comment: "push the stored model again, never a second one"
    np.testing.assert_array_equal(stored.params["class_count_"], first.params["class_count_"])


def _faults(name, base, dropper, marker, push_to="all", dask_worker=None):
    """On every worker: the worker that stores version base+1 pushes it to the others, then dies
    (once: O_EXCL marker). On ``dropper``: the push of version ``base`` is missed."""
    from distributed.protocol import to_serialize
    from fedplugin import store as st
    from fedplugin.store import GlobalModel

    plugin = dask_worker.plugins[name]
    if dask_worker.address == dropper:
        receive = plugin.receive

        def dropping(model):
            if model.version != base:
                receive(model)

        plugin.receive = dropping
    put = st.worker_put

    async def put_then_die(worker, name_, version, payload):
        stored = await put(worker, name_, version, payload)
        if name_ == name and version == base + 1:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return stored
            model = GlobalModel.from_bytes(payload).for_workers()
            others = [w for w in await st.worker_addresses_from(worker) if w != worker.address]
            for other in (others if push_to == "all" else others[-1:]):
                if other:
                    await worker.rpc(other).fedplugin_forward(name=name, model=to_serialize(model), targets=[other])
            os._exit(1)  # the nanny restarts it
        return stored

    st.worker_put = put_then_die


@pytest.mark.timeout(180)
@pytest.mark.parametrize("die", [False, True], ids=["control-no-death", "aggregator-dies"])
def test_push_again_forgets_the_first_attempts_missing_workers(tmp_path, die):
    """Round `base`: one participant (alive) has no update (it missed the push of version base),
    the aggregator stores base+1 without it, pushes it and dies. The retry finds base+1 and pushes
    it again (_push_again): its summary says missing=[], so the client never trains that
    participant's blocks again: their counts are in no model."""
    X, y = counts_data()
    base = 2
    with LocalCluster(n_workers=3, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(3)
        name = "push-again"
        plugin = FederatedModelPlugin(MultinomialNB(), classes=[0, 1, 2], name=name)
        client.register_plugin(plugin)
        workers = sorted(client.scheduler_info()["workers"])
        if not die:  # control: the missed push alone (its blocks are trained again), no death
            (tmp_path / "died").touch()
        client.run(_faults, name, base, workers[-1], str(tmp_path / "died"))
        coord = Coordinator(client, plugin, sync=EveryNBatches(6), block_size=500, overlap=True, progress=False)
        coord.fit(X, y)
        assert (tmp_path / "died").exists(), "the aggregator died after storing"
        model = coord.global_model()
        print("retrained", [(r.round, r.retrained_blocks) for r in coord.history])
        print("history samples", sum(r.samples for r in coord.history), "model counts", model.class_count_.sum())
        np.testing.assert_array_equal(model.class_count_, [np.sum(y == c) for c in range(3)])


@pytest.mark.timeout(180)
def test_retry_recombines_a_round_some_workers_already_merged(tmp_path):
    """4 workers A < B < C < D. Round `base`'s aggregator A stores base+1, pushes it to D only, dies.
    The retry runs on B or C (both hold version base, no server state): it combines a second
    base+1 without A (dead) and D (its update was merged into the first base+1: none left), stores
    it over the first. D keeps the first base+1, whose counts include A's and D's round: their
    blocks are trained again (missing) and D's later updates carry them a second time."""
    X, y = counts_data()
    base = 2
    with LocalCluster(n_workers=4, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(4)
        name = "recombine"
        plugin = FederatedModelPlugin(MultinomialNB(), classes=[0, 1, 2], name=name)
        client.register_plugin(plugin)
        client.run(_faults, name, base, None, str(tmp_path / "died"), "last")
        coord = Coordinator(client, plugin, sync=EveryNBatches(8), block_size=500, overlap=True, progress=False)
        coord.fit(X, y)
        assert (tmp_path / "died").exists(), "the aggregator died after storing"
        model = coord.global_model()
        print("retrained", [(r.round, r.retrained_blocks, r.workers) for r in coord.history])
        print("history samples", sum(r.samples for r in coord.history), "model counts", model.class_count_.sum())
        np.testing.assert_array_equal(model.class_count_, [np.sum(y == c) for c in range(3)])


def _receive(name, model, dask_worker=None):
    dask_worker.plugins[name].receive(model)
    return dask_worker.plugins[name].rounds.version


@pytest.mark.timeout(240)
def test_tree_retry_fails_when_a_head_merged_the_first_model(shared_client, unique_name):
    """The reduction-tree variant: the retry runs on A (holding v), the head B of another group
    already merged the first attempt's v+1: B's _reference finds v+1 and raises, so the retry
    fails the round instead of pushing the stored v+1 again. (fan_in=2 and two unreachable
    addresses make a tree of [A, F0] and [B, F1] out of two workers.)"""
    from sklearn.linear_model import SGDRegressor

    client = shared_client
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(4000, 3)), rng.normal(size=4000)
    plugin = FederatedModelPlugin(SGDRegressor(random_state=0), name=unique_name)
    client.register_plugin(plugin)
    coord = Coordinator(client, plugin, sync=EveryNBatches(4), block_size=500, overlap=False, progress=False)
    coord.fit(X, y)
    v = coord.version
    a, b = sorted(client.scheduler_info()["workers"])
    host = a.rsplit(":", 1)[0]
    a_port, b_port = a.rsplit(":", 1)[1], b.rsplit(":", 1)[1]
    f0 = next(f"{host}:{p}" for p in range(1, 1000) if a_port < str(p) < b_port and str(p) != a_port)
    f1 = next(f"{host}:{p}" for p in range(1, 1000) if str(p) > b_port)
    members = sorted([a, b, f0, f1])
    assert [g[0] for g in __import__("fedplugin").reduction.groups_of(members, 2)] == [a, b], members
    held = store.fetch(client, unique_name)
    first = replace(held, version=v + 1, rounds=held.rounds + 1, params={k: x + 1 for k, x in held.params.items()})
    store.put(client, first, unique_name)
    assert client.run(_receive, unique_name, first.for_workers(), workers=[b])[b] == v + 1
    answer = client.run(exchange.close_round, unique_name, v, members, coord.aggregator, True, fan_in=2,
                        workers=[a], on_error="return")[a]
    print("answer:", repr(answer))
    assert not isinstance(answer, BaseException), answer
    assert answer.version == v + 1
    np.testing.assert_array_equal(store.fetch(client, unique_name).params["coef_"], first.params["coef_"])
