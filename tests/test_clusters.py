"""Clustering estimators: MiniBatchKMeans with a data-driven init, Birch (issue 11)."""

import copy
from functools import partial

import dask.array as da
import numpy as np
import pytest
from sklearn.cluster import Birch, KMeans, MiniBatchKMeans
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin

from fedplugin.adapters import adapter_for
from fedplugin.adapters.birch import TREE
from fedplugin.adapters.kmeans import initial_centers
from fedplugin.blocks import prepare
from fedplugin.data_init import initial_model, sample_blocks
from fedplugin.search import CandidateSet
from fedplugin.session import federated_session

CENTERS = np.array([[-6.0, 0.0], [0.0, 6.0], [6.0, 0.0], [0.0, -6.0]])


def blobs(n):
    return make_blobs(n_samples=n, centers=CENTERS, cluster_std=1.0, random_state=0)


def nearest(model):
    """The model's center nearest to each true center, in the order of ``CENTERS``."""
    found = model.cluster_centers_
    return found[np.argmin(((CENTERS[:, None] - found) ** 2).sum(-1), axis=1)]


def test_default_init_finds_the_blobs_and_a_later_fit_continues(shared_client, unique_name):
    X, labels = blobs(4_000)
    data = da.from_array(X, chunks=(500, 2))  # a numpy X is sampled alike (next test)
    estimator = MiniBatchKMeans(4, reassignment_ratio=0.0, random_state=0)  # init="k-means++"
    with federated_session(shared_client, estimator, name=unique_name, block_size=500, sync=2, progress=False) as coord:
        model = coord.fit(data).global_model()
        assert sum(r.samples for r in coord.history) == len(X)
        # Centers chosen afresh from these 5 rows of one blob would all sit in that blob.
        coord.fit(X[labels == 0][:5])
        later = coord.global_model()
    assert model.init == "k-means++" and model._counts.sum() == len(X)
    np.testing.assert_allclose(nearest(model), CENTERS, atol=0.2)
    central = MiniBatchKMeans(4, reassignment_ratio=0.0, random_state=0).fit(X)
    assert -model.score(X) <= 1.01 * -central.score(X)
    assert later._counts.sum() == len(X) + 5
    np.testing.assert_allclose(nearest(later), CENTERS, atol=0.2)


def test_the_initial_sample_is_uniform_reproducible_and_the_same_for_any_input(shared_client):
    X, _ = blobs(2_000)
    at = {tuple(row): i for i, row in enumerate(X)}
    numpy_data = prepare(shared_client, X, np.zeros(2_000), block_size=250, n_features=None, classes=None, is_classifier=False)
    dask_data = prepare(shared_client, da.from_array(X, chunks=(250, 2)), da.zeros(2_000, chunks=250),
                        block_size=250, n_features=None, classes=None, is_classifier=False)
    draw = partial(sample_blocks, shared_client, numpy_data.blocks, n_samples=2_000)
    sample = draw(300, 3)
    np.testing.assert_array_equal(sample_blocks(shared_client, dask_data.blocks, 300, 3, n_samples=2_000), sample)
    rows = np.array([at[tuple(row)] for row in sample])
    assert len(set(rows)) == 300, "distinct rows of X"
    assert np.bincount(rows // 250, minlength=8).min() >= 20, "every block contributes its share (37.5)"
    assert not np.array_equal(draw(300, 4), sample)
    assert sorted(at[tuple(row)] for row in draw(5_000, 3)) == list(range(2_000)), "all rows when asked for more"

    adapter = adapter_for(MiniBatchKMeans(4, random_state=0))
    first, again, other = (
        initial_model(adapter, MiniBatchKMeans(4, random_state=seed), 2, None, draw).cluster_centers_
        for seed in (0, 0, 1)
    )
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    chosen = initial_centers(MiniBatchKMeans(4, init="random", random_state=0), sample)
    assert len({at[tuple(row)] for row in chosen} & set(rows)) == 4, "init='random': four rows of the sample"


def test_fit_stream_chooses_the_centers_from_its_first_batch(shared_client, unique_name):
    X, _ = blobs(3_000)
    estimator = MiniBatchKMeans(4, n_init=3, reassignment_ratio=0.0, random_state=0)
    with federated_session(shared_client, estimator, name=unique_name, block_size=500, sync=2, progress=False) as coord:
        model = coord.fit_stream((X[i : i + 1_000], np.zeros(1_000)) for i in range(0, 3_000, 1_000)).global_model()
    assert model._counts.sum() == len(X)
    np.testing.assert_allclose(nearest(model), CENTERS, atol=0.2)
    with federated_session(shared_client, estimator, name=unique_name, progress=False) as coord:
        with pytest.raises(ValueError, match="sample of the training data, which has 3 rows; expected at least n_clusters=4"):
            coord.fit_stream(iter([(X[:3], np.zeros(3)), (X[3:], np.zeros(2_997))]))
        with pytest.raises(NotFittedError):
            coord.global_model()


def test_settings_that_cannot_choose_the_initial_centers_are_refused():
    with pytest.raises(ValueError, match="init_size=2 is smaller than n_clusters=3; expected None or an int >= n_clusters"):
        adapter_for(MiniBatchKMeans(3, init_size=2))
    with pytest.raises(ValueError, match="init='kmeans' is not supported; expected 'k-means\\+\\+', 'random'"):
        adapter_for(MiniBatchKMeans(2, init="kmeans"))
    with pytest.raises(ValueError, match=r"init=array\(\[0., 0.\]\) is not supported; expected 'k-means\+\+', 'random'"):
        adapter_for(MiniBatchKMeans(2, init=np.zeros(2)))
    with pytest.raises(ValueError, match="candidate 1: MiniBatchKMeans.* chooses its initial model from the training data"):
        adapter_for(CandidateSet([MiniBatchKMeans(2, init=np.eye(2)), MiniBatchKMeans(2)]))
    with pytest.raises(ValueError, match=r"n_clusters=KMeans\(\) is not supported; expected an int or None"):
        adapter_for(Birch(n_clusters=KMeans()))
    with pytest.raises(ValueError, match="The 'threshold' parameter of Birch must be a float in the range"):
        FederatedModelPlugin(Birch(threshold=-1.0))


# ---------------------------------------------------------------------- Birch
def leaf_subclusters(model):
    return [sub for leaf in model._get_leaves() for sub in leaf.subclusters_]


def refuse(updates, weights):
    raise AssertionError("Birch combines CF entries exactly, without the user's rule")


def test_federated_birch_accounts_for_every_sample_and_agrees_with_a_central_birch(shared_client, unique_name, tmp_path):
    X, _ = blobs(4_000)
    with federated_session(shared_client, Birch(n_clusters=4), name=unique_name, block_size=250, sync=4, progress=False) as coord:
        model = coord.fit(X).global_model()
        path = coord.save(tmp_path / "birch")
        coord.fit(X[:500])
        back = Coordinator.resume(shared_client, unique_name, path, progress=False)
        resumed = back.global_model()
        back.close()
    subs = leaf_subclusters(model)
    assert sum(sub.n_samples_ for sub in subs) == len(X)
    np.testing.assert_allclose(sum(sub.linear_sum_ for sub in subs), X.sum(axis=0), rtol=1e-9)
    np.testing.assert_allclose(sum(sub.squared_sum_ for sub in subs), (X**2).sum(), rtol=1e-9)
    assert max(sub.radius for sub in subs) <= model.threshold, "every merge kept Birch's threshold"
    central = Birch(n_clusters=4).fit(X)
    assert adjusted_rand_score(central.predict(X), model.predict(X)) > 0.999
    np.testing.assert_array_equal(resumed.subcluster_centers_, model.subcluster_centers_)


def test_birch_merge_keeps_what_a_worker_learned_since_its_update():
    X, _ = blobs(1_200)
    estimator = Birch(n_clusters=4)
    adapter = adapter_for(estimator)
    start = adapter.initialize(estimator, 2, None)
    worker, other = copy.deepcopy(start), copy.deepcopy(start)
    adapter.partial_fit(worker, X[:400], None)
    adapter.partial_fit(other, X[400:800], None)
    snapshot = adapter.get_params(worker)
    new_global = adapter.aggregate(refuse, [snapshot, adapter.get_params(other)], [400, 400], adapter.get_params(start))
    adapter.partial_fit(worker, X[800:], None)  # the worker goes on while the round is combined
    merged = adapter.merge(new_global, adapter.get_params(worker), snapshot)
    assert all(np.array_equal(merged[name], new_global[name]) for name in TREE)
    local = adapter.initialize(estimator, 2, None)
    adapter.set_params(local, merged)
    assert sum(sub.n_samples_ for sub in leaf_subclusters(local)) == 1_200
    final = adapter.initialize(estimator, 2, None)
    adapter.set_params(final, adapter.aggregate(refuse, [merged], [400], new_global))
    assert sum(sub.n_samples_ for sub in leaf_subclusters(final)) == 1_200
    np.testing.assert_allclose(sum(sub.linear_sum_ for sub in leaf_subclusters(final)), X.sum(axis=0), rtol=1e-9)


def test_a_birch_fitted_elsewhere_loads_as_the_global_model():
    X, _ = blobs(600)
    central = Birch(n_clusters=4).fit(X)
    adapter = adapter_for(Birch(n_clusters=4))
    model = adapter.initialize(Birch(n_clusters=4), 2, None)
    adapter.set_params(model, adapter.get_params(central))
    np.testing.assert_array_equal(model.subcluster_centers_, central.subcluster_centers_)
    np.testing.assert_array_equal(model.predict(X), central.predict(X))
    assert all(np.array_equal(value, adapter.get_params(central)[name]) for name, value in adapter.get_params(model).items())


def test_a_birch_with_many_leaves_is_handed_out_whole(shared_client, unique_name):
    # A thousand linked leaves: deep-copying the global model would exceed Python's recursion limit.
    X = np.random.default_rng(7).normal(size=(1_600, 4))
    birch = Birch(n_clusters=None, threshold=0.05, branching_factor=3)
    with federated_session(shared_client, birch, name=unique_name, sync=EveryNBatches(4), block_size=500, progress=False) as coord:
        model = coord.fit(X).global_model()
        assert all(len(local.subcluster_centers_) for local in coord.local_models().values())
        assert coord.predict(X[:10], model="local").shape == (10,)
    assert len(model.subcluster_centers_) > 1_000
    assert model.predict(X[:10]).shape == (10,)
