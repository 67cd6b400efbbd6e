"""Clustering estimators: MiniBatchKMeans with a data-driven init (issue 11)."""

from functools import partial

import dask.array as da
import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError

from fedplugin.adapters import adapter_for
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
