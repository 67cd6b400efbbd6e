"""Texts through a HashingVectorizer and scipy.sparse blocks, end to end (issue 11, item 3)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, StandardScaler

from fedplugin import EveryNBatches, FederatedModelPlugin
from fedplugin.session import federated_session

WORDS = {
    0: "goal match team score league coach player season win cup".split(),
    1: "vote election party minister law parliament policy tax court senate".split(),
}
NOISE = "the a of and to in is it that for on with as was".split()


def texts(n, seed=0):
    """Two topics of short documents, each with shared filler words."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    docs = [" ".join(rng.choice(WORDS[label], 3).tolist() + rng.choice(NOISE, 5).tolist()) for label in y]
    return np.array(docs, dtype=object), y


@pytest.fixture
def client(shared_client):
    return shared_client


def text_pipeline():
    # MaxAbsScaler keeps the vectorizer's output sparse, and is pooled exactly from sparse blocks
    return make_pipeline(HashingVectorizer(n_features=2**12, alternate_sign=False), MaxAbsScaler(), SGDClassifier(random_state=0))


def test_texts_train_a_hashing_pipeline_from_numpy_and_from_dask(client, unique_name):
    import dask.bag as db
    import dask.dataframe as dd
    import pandas as pd

    X, y = texts(3_000)
    X_test, y_test = texts(500, seed=1)
    options = dict(classes=[0, 1], sync=EveryNBatches(2), block_size=250, progress=False)
    with federated_session(client, text_pipeline(), name=unique_name, **options) as coord:
        coord.fit(list(X), y)  # a plain list of strings
        assert sum(r.samples for r in coord.history) == len(X)
        assert coord.global_model().score(X_test, y_test) > 0.95
        frame = dd.from_pandas(pd.DataFrame({"text": X, "label": y}), npartitions=4)
        coord.fit(frame["text"], frame["label"])  # a dask dataframe column of strings
        bag_X, bag_y = db.from_sequence(list(X), npartitions=3), db.from_sequence(y.tolist(), npartitions=3)
        coord.fit(bag_X, bag_y)  # a dask bag
        assert sum(r.samples for r in coord.history) == 3 * len(X)
        labels = coord.predict(X_test)
        assert np.mean(labels == y_test) > 0.95
        lazy = coord.predict(db.from_sequence(list(X_test), npartitions=2))
        np.testing.assert_array_equal(np.asarray(lazy.compute()), labels)
        assert coord.score(db.from_sequence(list(X_test), npartitions=2), db.from_sequence(y_test.tolist(), npartitions=2)) == pytest.approx(np.mean(labels == y_test))
        series = dd.from_pandas(pd.Series(X_test), npartitions=2)
        np.testing.assert_array_equal(np.asarray(coord.predict(series).compute()), labels)
        assert np.mean(coord.predict(X_test, model="local") == y_test) > 0.9  # a worker's own model takes texts too


def test_sparse_blocks_stay_sparse_from_validation_to_prediction(client, unique_name):
    rng = np.random.default_rng(3)
    n, width = 2_000, 2**20  # dense, X would take 16 GB
    informative = rng.binomial(1, 0.05, size=(n, 20)).astype(float)
    y = (informative[:, :10].sum(axis=1) > informative[:, 10:].sum(axis=1)).astype(int)
    rows, columns = rng.integers(0, n, size=4_000), rng.integers(0, width - 20, size=4_000)
    noise = sp.csr_matrix((np.ones(4_000), (rows, columns)), shape=(n, width - 20))
    X = sp.hstack([sp.csr_matrix(informative), noise], format="csr")
    options = dict(classes=[0, 1], sync=EveryNBatches(2), block_size=500, progress=False)
    with federated_session(client, SGDClassifier(random_state=0), name=unique_name, **options) as coord:
        coord.fit(X, y)
        assert sum(r.samples for r in coord.history) == n
        assert coord.global_model().coef_.shape == (1, width)
        accuracy = np.mean(coord.predict(X) == y)
    one_process = SGDClassifier(random_state=0)
    for start in range(0, n, 500):
        one_process.partial_fit(X[start:start + 500], y[start:start + 500], classes=[0, 1])
    assert accuracy > one_process.score(X, y) - 0.05 and accuracy > 0.8


def test_sparse_batches_coalesce_in_a_stream(client, unique_name):
    X, y = texts(1_000, seed=4)
    vectorizer = HashingVectorizer(n_features=2**10, alternate_sign=False)
    batches = ((vectorizer.transform(X[i:i + 60]), y[i:i + 60]) for i in range(0, len(X), 60))
    with federated_session(client, SGDClassifier(random_state=0), name=unique_name, classes=[0, 1], block_size=200, progress=False) as coord:
        coord.fit_stream(batches)
        assert sum(r.samples for r in coord.history) == len(X)
        assert coord.score(vectorizer.transform(X), y) > 0.9


@pytest.mark.parametrize(
    "estimator, X, message",
    [
        (SGDClassifier(), np.array(["a b", "c d"], dtype=object), r"X is a 1-d array of 2 items .* expects rows of numbers; expected a model that starts with a HashingVectorizer"),
        (GaussianNB(), sp.eye(2, format="csr"), r"X is a sparse matrix, which GaussianNB does not accept; expected a dense array"),
    ],
    ids=["texts for a numeric model", "sparse for a dense-only model"],
)
def test_rows_a_model_cannot_take_are_refused_before_training(client, unique_name, estimator, X, message):
    with federated_session(client, estimator, name=unique_name, classes=[0, 1], progress=False) as coord:
        with pytest.raises(TypeError, match=message):
            coord.fit(X, np.array([0, 1]))
        assert coord.history == [] or len(coord.history) == 0
        # A stream's first batch is checked the same way, before anything is trained.
        stream_message = message.replace("of 2 items", "of items")
        with pytest.raises(TypeError, match=stream_message):
            coord.fit_stream(iter([(X, np.array([0, 1]))]))
        assert len(coord.history) == 0 and coord.version == -1


def test_a_step_after_a_vectorizer_must_take_its_sparse_output():
    with pytest.raises(TypeError, match=r"step 'standardscaler': StandardScaler does not accept the sparse matrix that step 'hashingvectorizer' outputs"):
        FederatedModelPlugin(make_pipeline(HashingVectorizer(), StandardScaler(), SGDClassifier()), classes=[0, 1])
    FederatedModelPlugin(make_pipeline(HashingVectorizer(), StandardScaler(with_mean=False), SGDClassifier()), classes=[0, 1])


def test_a_bag_cut_from_a_persisted_bag_trains(client, unique_name):
    import dask.bag as db
    from distributed import wait

    X, y = texts(800, seed=5)
    persisted = client.persist([db.from_sequence(list(X), npartitions=4), db.from_sequence(y.tolist(), npartitions=4)])
    wait(persisted)
    # to_delayed() of a persisted bag drops its futures and keeps their keys, which only the scheduler resolves
    first_X, first_y = (db.from_delayed(bag.to_delayed()[:2]) for bag in persisted)
    with federated_session(client, text_pipeline(), name=unique_name, classes=[0, 1], progress=False) as coord:
        coord.fit(first_X, first_y)
        assert sum(r.samples for r in coord.history) == 400


def test_models_that_learn_no_targets_fit_sparse_rows_and_texts_without_y(client, unique_name):
    import dask.bag as db
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.feature_extraction.text import HashingVectorizer as Hasher

    X, y = texts(1_200, seed=5)
    vectorizer = Hasher(n_features=2**10, alternate_sign=False)
    sparse = vectorizer.transform(X)
    with federated_session(client, MaxAbsScaler(), name=unique_name + "-scaler", block_size=300, progress=False) as coord:
        scaler = coord.fit(sparse).global_model()  # no y, sparse X
    np.testing.assert_allclose(scaler.max_abs_, MaxAbsScaler().fit(sparse).max_abs_)
    # k-means++ draws its initial centers from a sample of hashed texts, here from a dask bag without y
    pipeline = make_pipeline(Hasher(n_features=2**10, alternate_sign=False), MiniBatchKMeans(2, random_state=0))
    with federated_session(client, pipeline, name=unique_name + "-kmeans", block_size=300, progress=False) as coord:
        model = coord.fit(db.from_sequence(list(X), npartitions=4)).global_model()
        assert sum(r.samples for r in coord.history) == len(X)
    labels = model.predict(X)
    assert max(np.mean(labels == y), np.mean(labels != y)) > 0.8  # the two topics, up to naming
