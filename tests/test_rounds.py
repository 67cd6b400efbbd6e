"""The round engine of issue 9: the pure combine step, merges, overlap, and what crosses the client."""

from dataclasses import replace

import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB, MultinomialNB

from fedplugin import Coordinator, DriftThreshold, EveryNBatches, Mean, WeightedMean, store
from fedplugin.adapters import adapter_for
from fedplugin.rounds import Update, next_global
from fedplugin.session import federated_session
from fedplugin.store import GlobalModel
from on_workers import catch_up, count_store_reads, stop_counting


def linear(version=3, coef=(0.0, 0.0), intercept=0.0):
    return GlobalModel(version, {"coef_": np.array([list(coef)]), "intercept_": np.array([intercept])}, 2, np.array([0, 1]))


def update(worker, coef, intercept, samples, state=None):
    return Update(worker, {"coef_": np.array([list(coef)]), "intercept_": np.array([intercept])}, samples, state or {})


# ------------------------------------------------------------------ next_global: pure, no cluster
def test_next_global_weighted_mean_by_hand():
    adapter = adapter_for(SGDClassifier())
    updates = [update("tcp://b", (4.0, 0.0), 2.0, 100, {"t_": 10.0}), update("tcp://a", (1.0, 3.0), 1.0, 300, {"t_": 20.0})]
    new, excluded = next_global(linear(), updates, WeightedMean(), adapter)
    np.testing.assert_allclose(new.params["coef_"], [[(4 * 100 + 1 * 300) / 400, (0 * 100 + 3 * 300) / 400]])
    np.testing.assert_allclose(new.params["intercept_"], [(2 * 100 + 1 * 300) / 400])
    assert (new.version, new.rounds, excluded) == (4, 1, [])
    assert new.extra["state"] == {"t_": 15.0}
    assert new.classes.tolist() == [0, 1] and new.n_features == 2


def test_next_global_is_the_same_whatever_the_order_of_updates():
    rng = np.random.default_rng(0)
    updates = [update(f"tcp://w{i}", rng.normal(size=2), rng.normal(), int(rng.integers(1, 1000))) for i in range(7)]
    adapter = adapter_for(SGDClassifier())
    first, _ = next_global(linear(), updates, WeightedMean(), adapter)
    second, _ = next_global(linear(), updates[::-1], WeightedMean(), adapter)
    assert np.array_equal(first.params["coef_"], second.params["coef_"]), "bitwise equal: sorted by worker"


def test_next_global_leaves_out_non_finite_updates_and_keeps_the_model_when_none_is_left():
    adapter = adapter_for(SGDClassifier())
    good, bad = update("tcp://a", (1.0, 1.0), 0.0, 10), update("tcp://b", (np.nan, 1.0), 0.0, 10)
    new, excluded = next_global(linear(), [good, bad], Mean(), adapter)
    assert excluded == ["tcp://b"]
    np.testing.assert_array_equal(new.params["coef_"], [[1.0, 1.0]])
    current = linear(coef=(5.0, 6.0))
    kept, excluded = next_global(current, [bad], Mean(), adapter)
    assert excluded == ["tcp://b"] and kept.version == current.version + 1
    np.testing.assert_array_equal(kept.params["coef_"], current.params["coef_"])


def test_next_global_combines_counts_exactly_whatever_the_rule():
    adapter = adapter_for(MultinomialNB())
    reference = {"class_count_": np.array([2.0, 1.0]), "feature_count_": np.array([[1.0, 2.0], [3.0, 4.0]])}
    current = GlobalModel(0, reference, 2, np.array([0, 1]))
    a = {"class_count_": np.array([5.0, 1.0]), "feature_count_": np.array([[2.0, 2.0], [3.0, 4.0]])}
    b = {"class_count_": np.array([2.0, 4.0]), "feature_count_": np.array([[1.0, 2.0], [3.0, 9.0]])}
    new, _ = next_global(current, [Update("tcp://a", a, 1), Update("tcp://b", b, 1000)], Mean(), adapter)
    np.testing.assert_array_equal(new.params["class_count_"], [5.0, 4.0])
    np.testing.assert_array_equal(new.params["feature_count_"], [[2.0, 2.0], [3.0, 9.0]])


@pytest.mark.parametrize(
    "returned, message",
    [
        ({"coef_": np.ones((1, 2)), "bias": np.ones(1)}, r"the parameters \['bias', 'coef_'\] \(missing \['intercept_'\], unknown \['bias'\]\)"),
        ({"coef_": np.zeros(3), "intercept_": np.ones(1)}, r"'coef_' of shape \(3,\); expected shape \(1, 2\)"),
        ({"coef_": np.array([[1.0, np.nan]]), "intercept_": np.ones(1)}, r"'coef_' with 1 non-finite value \(of 2\)"),
        ({"coef_": np.array([["a", "b"]], dtype=object), "intercept_": np.ones(1)}, r"'coef_' of dtype object; expected real numbers"),
    ],
    ids=["names", "shape", "nan", "dtype"],
)
def test_next_global_refuses_a_rule_output_that_does_not_fit_the_global_model(returned, message):
    """It would become the global model every worker loads: refused, naming the rule and the parameter."""
    def made_up(updates, weights):
        return returned

    updates = [update("tcp://a", (1.0, 1.0), 0.0, 10), update("tcp://b", (3.0, 1.0), 0.0, 10)]
    with pytest.raises(ValueError, match=r"aggregator test_.*made_up returned " + message):
        next_global(linear(), updates, made_up, adapter_for(SGDClassifier()))


# ------------------------------------------------------------------ merges: global + local progress
def test_linear_merge_adds_the_progress_since_the_snapshot():
    adapter = adapter_for(SGDRegressor())
    new_global = {"coef_": np.array([1.0, 1.0]), "intercept_": np.array([0.5])}
    snapshot = {"coef_": np.array([2.0, 0.0]), "intercept_": np.array([0.0])}
    local = {"coef_": np.array([2.5, -1.0]), "intercept_": np.array([0.25])}
    merged = adapter.merge(new_global, local, snapshot)
    np.testing.assert_allclose(merged["coef_"], [1.5, 0.0])
    np.testing.assert_allclose(merged["intercept_"], [0.75])


@pytest.mark.parametrize("estimator", [GaussianNB(), MultinomialNB()], ids=["gaussian", "multinomial"])
def test_exact_merge_equals_learning_all_the_data(estimator):
    """Worker A saw D1 (its snapshot), then D2 (local); the global model holds D0 and D1.

    Merging must give the model of D0 + D1 + D2, as if one process had learned it all.
    """
    X, y = make_classification(n_samples=900, n_features=4, random_state=0)
    X = np.abs(X)  # counts for MultinomialNB
    parts = [(X[:300], y[:300]), (X[300:600], y[300:600]), (X[600:], y[600:])]
    adapter = adapter_for(estimator)

    def learned(*indices):
        model = adapter.initialize(estimator, 4, np.array([0, 1]))
        for i in indices:
            adapter.partial_fit(model, *parts[i])
        return adapter.get_params(model)

    merged = adapter.merge(learned(0, 1), learned(1, 2), learned(1))
    for name, value in learned(0, 1, 2).items():
        np.testing.assert_allclose(merged[name], value, rtol=1e-10, atol=1e-12)


def test_kmeans_merge_moves_the_global_centers_by_the_new_points():
    adapter = adapter_for(MiniBatchKMeans(n_clusters=2, init=np.array([[0.0], [10.0]]), n_init=1))
    new_global = {"cluster_centers_": np.array([[1.0], [9.0]]), "_counts": np.array([10.0, 10.0])}
    snapshot = {"cluster_centers_": np.array([[2.0], [8.0]]), "_counts": np.array([4.0, 4.0])}
    local = {"cluster_centers_": np.array([[3.0], [8.0]]), "_counts": np.array([8.0, 4.0])}  # 4 new points at 4.0
    merged = adapter.merge(new_global, local, snapshot)
    np.testing.assert_allclose(merged["_counts"], [14.0, 10.0])
    np.testing.assert_allclose(merged["cluster_centers_"], [[(10 * 1.0 + 4 * 4.0) / 14], [9.0]])


# ------------------------------------------------------------------ on a cluster
@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=16_000, n_features=20, n_informative=10, random_state=0)


def three_zeros(updates, weights):
    """A rule of the wrong shape: every parameter becomes (3,)."""
    return {name: np.zeros(3) for name in updates[0]}


def test_a_rule_of_the_wrong_shape_fails_its_round_and_publishes_nothing(shared_client, data, unique_name):
    X, y = data[0][:2000], data[1][:2000]
    with federated_session(
        shared_client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name, check_workers=False,
        sync=EveryNBatches(2), block_size=500, progress=False,
    ) as coord:
        coord.fit(X, y)
        version, coef = coord.version, coord.global_model().coef_
        with Coordinator(shared_client, unique_name, aggregator=three_zeros, sync=EveryNBatches(2), block_size=500, progress=False) as bad:
            with pytest.raises(ValueError, match=r"aggregator three_zeros returned 'coef_' of shape \(3,\); expected shape \(1, 20\)"):
                bad.fit(X, y)
            assert bad.version == version and store.fetch_info(shared_client, unique_name).version == version
        np.testing.assert_array_equal(store.fetch(shared_client, unique_name).params["coef_"], coef)
        assert all(model.coef_.shape == (1, 20) for model in coord.local_models().values())
        assert coord.fit(X, y).version > version, "a good rule trains on"


@pytest.mark.parametrize("overlap", [True, False], ids=["overlap", "synchronous"])
def test_every_sample_exactly_once_in_both_modes(shared_client, data, unique_name, overlap):
    X, y = data
    with federated_session(
        shared_client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name, check_workers=False,
        sync=EveryNBatches(3), block_size=500, overlap=overlap, progress=False,
    ) as coord:
        coord.fit(X, y, epochs=2)
        assert sum(r.samples for r in coord.history) == 2 * len(y)
        assert sum(r.blocks for r in coord.history) == 2 * 32
        assert [r.round for r in coord.history] == list(range(1, len(coord.history) + 1))
        coord.fit_stream((X[i:i + 300], y[i:i + 300]) for i in range(0, len(y), 300))
        assert coord.history[-1].total_samples == 3 * len(y)
        states = coord.worker_states()
        assert sum(s["samples_total"] for s in states.values()) == 3 * len(y)
        final = coord.global_model()
        for state in states.values():  # after the final round every worker holds exactly the global model
            assert state["version"] == coord.version
            np.testing.assert_array_equal(state["params"]["coef_"], final.coef_)


@pytest.mark.parametrize("overlap", [True, False], ids=["overlap", "synchronous"])
def test_drift_signals_with_preemption_train_every_sample_once(shared_client, data, unique_name, overlap):
    X, y = data
    estimator = SGDClassifier(learning_rate="adaptive", eta0=0.01, random_state=0)
    with federated_session(
        shared_client, estimator, classes=[0, 1], name=unique_name, check_workers=False,
        sync=DriftThreshold(relative=0.05), preempt=True, block_size=250, overlap=overlap, progress=False,
    ) as coord:
        coord.fit(X, y)
        assert sum(r.samples for r in coord.history) == len(y)
        assert len(coord.history) > 2 and {"drift", "final"} <= {r.trigger for r in coord.history}


def test_synchronous_mode_is_bitwise_reproducible(shared_client, data, unique_name):
    X, y = data
    models = []
    for run in range(2):
        with federated_session(
            shared_client, SGDClassifier(random_state=0), classes=[0, 1], name=f"{unique_name}-{run}",
            check_workers=False, sync=EveryNBatches(4), block_size=1000, overlap=False, progress=False,
        ) as coord:
            models.append(coord.fit(X, y).global_model())
    assert np.array_equal(models[0].coef_, models[1].coef_)
    assert np.array_equal(models[0].intercept_, models[1].intercept_)


def test_parameters_never_cross_the_client(shared_client, unique_name):
    """A 320 KB model: each round moves it worker to worker; the client sees a few KB."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(4000, 2000)), rng.integers(0, 20, size=4000)
    with federated_session(
        shared_client, SGDClassifier(random_state=0), classes=list(range(20)), name=unique_name,
        check_workers=False, sync=EveryNBatches(2), block_size=500, progress=False,
    ) as coord:
        coord.fit(X, y)
        params = 20 * 2000 * 8 + 20 * 8
        assert len(coord.history) == 4
        for record in coord.history:
            # One update pulled per worker that trained in the round (on a loaded machine both
            # blocks of a round may go to one worker); the new model pushed to both.
            assert record.bytes_up >= len(record.workers) * params and record.bytes_down >= 2 * params
            assert 0 < record.client_bytes < 16_000, "task messages, reports and the summary only"
            assert record.combine_seconds > 0


def test_global_predictions_run_on_the_client(shared_client, data, unique_name, monkeypatch):
    X, y = data
    with federated_session(
        shared_client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name, check_workers=False,
        block_size=2000, progress=False,
    ) as coord:
        coord.fit(X, y)
        expected = coord.global_model().predict(X[:50])
        local = coord.predict(X[:50], model="local")
        assert local.shape == (50,)

        def no_worker(*args, **kwargs):
            raise AssertionError("a global prediction went to a worker")

        monkeypatch.setattr(shared_client, "run", no_worker)
        np.testing.assert_array_equal(coord.predict(X[:50]), expected)
        assert coord.decision_function(X[:5]).shape == (5,)


def test_session_cleans_up_even_after_an_error(shared_client, data, unique_name):
    X, y = data
    with pytest.raises(ValueError, match="X has 3 features"):
        with federated_session(shared_client, SGDClassifier(), classes=[0, 1], name=unique_name, progress=False) as coord:
            coord.fit(X[:1000], y[:1000])
            assert store.fetch_info(shared_client, unique_name).version >= 0
            coord.fit(X[:1000, :3], y[:1000])
    names = shared_client.run(lambda dask_worker: list(dask_worker.plugins))
    assert all(unique_name not in plugins for plugins in names.values())
    assert store.fetch_info(shared_client, unique_name) is None


def test_small_stream_batches_are_coalesced_into_blocks(shared_client, data, unique_name):
    X, y = data
    X = X.copy()
    X[5_750, 0] = np.inf  # in batch 57 of 100 rows
    with federated_session(
        shared_client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name, check_workers=False,
        sync=EveryNBatches(2), block_size=1000, progress=False,
    ) as coord:
        with pytest.raises(ValueError, match="batch 57 of the stream was rejected: .*57 batches before it were trained"):
            coord.fit_stream((X[i:i + 100], y[i:i + 100]) for i in range(0, len(y), 100))
        assert sum(r.samples for r in coord.history) == 5_700
        assert sum(r.blocks for r in coord.history) == 6, "5 blocks of 1,000 rows, then the 700 rows before the bad batch"


@pytest.mark.parametrize("overlap", [True, False], ids=["overlap", "synchronous"])
def test_pipelined_rounds_lose_and_repeat_nothing_exactly(shared_client, unique_name, overlap):
    """Counts add up exactly, so any update merged twice or lost would show.

    A round every block (120 rounds) keeps two rounds in flight and merges
    every global model into a worker that has trained on since its handover.
    """
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 5, size=(15_000, 6)).astype(float), rng.integers(0, 3, size=15_000)
    with federated_session(
        shared_client, MultinomialNB(), classes=[0, 1, 2], name=unique_name, check_workers=False,
        sync=EveryNBatches(1), block_size=250, overlap=overlap, progress=False,
    ) as coord:
        coord.fit_stream((X[i:i + 250], y[i:i + 250]) for i in range(0, len(y), 250))
        coord.fit(X, y)
        model = coord.global_model()
        # 120 blocks of 250 rows; a round whose task Dask moved to a worker that
        # already ran the next round hands its block back, so rounds can be more.
        assert sum(r.blocks for r in coord.history) == 120 and len(coord.history) >= 120
    np.testing.assert_array_equal(model.feature_count_, np.stack([2 * X[y == c].sum(0) for c in range(3)]))
    np.testing.assert_array_equal(model.class_count_, [2 * np.sum(y == c) for c in range(3)])


# ------------------------------------------------------------------ client sampling (issue 10, item 3)
@pytest.mark.parametrize("overlap", [False, True])
def test_a_sample_of_workers_trains_each_round_and_every_block_once(shared_client, unique_name, overlap):
    from fedplugin import WorkerSample

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 5, (4_000, 3)).astype(float), rng.integers(0, 2, 4_000)
    sample = WorkerSample(1, seed=3)
    with federated_session(
        shared_client, MultinomialNB(), classes=[0, 1], name=unique_name, sync=EveryNBatches(2),
        block_size=200, overlap=overlap, progress=False, workers_per_round=sample,
    ) as coord:
        everyone = store.worker_addresses(shared_client)
        model = coord.fit(X, y).global_model()
        history = list(coord.history)
    np.testing.assert_array_equal(model.feature_count_, [X[y == c].sum(axis=0) for c in (0, 1)])
    assert sum(r.samples for r in history) == len(X)
    chosen = [sample.choose(everyone, r.version - 1) for r in history]
    assert len({w for c in chosen for w in c}) == 2, "both workers take turns over 20 rounds"
    if overlap:
        # Tasks are pinned to the chosen worker with allow_other_workers=True: on a loaded
        # machine Dask may run one on the other worker, so only most rounds show the choice.
        assert sum(list(r.workers) == c for r, c in zip(history, chosen)) >= len(history) // 2
    else:
        assert all(r.n_workers == 1 for r in history)
        assert [list(r.workers) for r in history] == chosen, "the seeded choice, round by round"


def test_workers_per_round_is_checked(shared_client, unique_name):
    with pytest.raises(ValueError, match=r"workers_per_round=0 is neither a fraction in \(0, 1\] nor a number of workers"):
        with federated_session(shared_client, SGDClassifier(), classes=[0, 1], name=unique_name, workers_per_round=0):
            pass


def test_a_worker_behind_receives_the_stored_model_only_if_it_is_newer(shared_client, unique_name):
    # With overlap a round's task often reaches a worker before the model it builds on is
    # combined: the store holds nothing newer then, and must not send the same model again.
    X, y = make_classification(n_samples=400, n_features=5, random_state=0)
    with federated_session(shared_client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name,
                           check_workers=False, sync=EveryNBatches(2), block_size=100, progress=False) as coord:
        coord.fit(X, y)
        version = coord.version
        shared_client.run_on_scheduler(count_store_reads)
        try:
            behind = shared_client.run(catch_up, unique_name, version + 2)
            newer = replace(store.fetch(shared_client, unique_name), version=version + 1)
            store.put(shared_client, newer, unique_name)
            caught_up = shared_client.run(catch_up, unique_name, version + 2)
        finally:
            served = shared_client.run_on_scheduler(stop_counting)
    assert set(behind.values()) == {version} and set(caught_up.values()) == {version + 1}
    assert served[:2] == [0, 0] and len(served) == 4 and min(served[2:]) > 0
