"""More families trained with fit(X): one-class SVM, RBM, NMF, dictionary learning, LDA, incremental PCA (issue 11)."""

import numpy as np
import pytest
from sklearn.decomposition import (
    IncrementalPCA,
    LatentDirichletAllocation,
    MiniBatchDictionaryLearning,
    MiniBatchNMF,
)
from sklearn.linear_model import SGDOneClassSVM
from sklearn.neural_network import BernoulliRBM

from fedplugin.adapters import adapter_for
from fedplugin.adapters.incremental_pca import combine, state_of
from fedplugin.session import federated_session


@pytest.fixture
def client(shared_client):
    return shared_client


def blocks(X, size):
    return [X[start : start + size] for start in range(0, len(X), size)]


def central(estimator, X, size):
    """One process: the adapter's initial model, then partial_fit over the blocks in order."""
    adapter = adapter_for(estimator)
    model = adapter.initialize(estimator, X.shape[1], None)
    for block in blocks(X, size):
        adapter.partial_fit(model, block, np.zeros(len(block)))
    return adapter, model


# ---------------------------------------------------------------- rule-based families
def one_class_loss(model, X):
    """The one-class SVM objective SGD minimises (lower is better)."""
    w, offset = model.coef_.ravel(), float(model.offset_[0])
    return 0.5 * w @ w + np.maximum(0.0, offset - X @ w).mean() / model.nu - offset


def reconstruction_error(model, X):
    return float(np.mean((X - model.transform(X) @ model.components_) ** 2))


def data(kind, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return rng.normal(loc=2.0, size=(1_200, 4))
    if kind == "binary":  # two prototypes, bits flipped with probability 0.1
        prototypes = np.array([[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]])
        X = prototypes[rng.integers(0, 2, 1_200)]
        return np.abs(X - (rng.random(X.shape) < 0.1)).astype(float)
    if kind == "nonnegative":
        return rng.random((1_200, 3)) @ rng.random((3, 8)) + 0.01 * rng.random((1_200, 8))
    if kind == "sparse codes":
        codes = rng.normal(size=(1_200, 4)) * (rng.random((1_200, 4)) < 0.5)
        return codes @ rng.normal(size=(4, 8)) + 0.05 * rng.normal(size=(1_200, 8))
    topics = rng.dirichlet(np.full(10, 0.3), size=3)  # counts: documents mixing 3 topics
    return np.vstack([rng.multinomial(40, rng.dirichlet(np.ones(3)) @ topics) for _ in range(600)]).astype(float)


RULE_BASED = [  # estimator, data, loss (lower is better), block size
    (SGDOneClassSVM(nu=0.2, random_state=0), "gaussian", one_class_loss, 100),
    (BernoulliRBM(n_components=4, learning_rate=3.0, batch_size=25, random_state=0), "binary",
     lambda model, X: -float(model.score_samples(X).mean()), 25),
    (MiniBatchNMF(n_components=3, init="random", batch_size=100, random_state=0), "nonnegative", reconstruction_error, 100),
    (MiniBatchDictionaryLearning(n_components=4, alpha=0.1, batch_size=100, random_state=0), "sparse codes",
     reconstruction_error, 100),
    (LatentDirichletAllocation(n_components=3, total_samples=600, batch_size=50, random_state=0), "counts",
     lambda model, X: float(model.perplexity(X)), 100),
]


@pytest.mark.parametrize("estimator, kind, loss, size", RULE_BASED, ids=[type(case[0]).__name__ for case in RULE_BASED])
def test_a_rule_based_family_learns_as_one_partial_fit_over_the_blocks(client, unique_name, estimator, kind, loss, size):
    X = data(kind)
    if isinstance(estimator, MiniBatchDictionaryLearning):
        estimator = estimator.set_params(dict_init=X[:4])
    with federated_session(client, estimator, name=unique_name, sync=2, block_size=size, progress=False) as coord:
        model = coord.fit(X).global_model()  # no y
        assert sum(r.samples for r in coord.history) == len(X)
    adapter, reference = central(estimator, X, size)
    start = adapter.initialize(estimator, X.shape[1], None)
    assert type(model) is type(estimator)
    outputs = model.transform(X[:5]) if hasattr(model, "transform") else model.predict(X[:5])
    assert len(outputs) == 5 and np.isfinite(outputs).all()
    # Averaging workers is not one process's path, but it must learn nearly as
    # much: at least 80% of one process's gain over the initial model.
    gain, reference_gain = loss(start, X) - loss(model, X), loss(start, X) - loss(reference, X)
    assert reference_gain > 0 and gain >= 0.8 * reference_gain


def test_settings_that_cannot_be_federated_are_refused():
    for estimator, message in [
        (MiniBatchDictionaryLearning(n_components=2), r"dict_init=None is not supported: .* expected an array"),
        (MiniBatchNMF(n_components=2), r"init=None is not supported: .* expected init='random'"),
        (MiniBatchNMF(init="random"), r"n_components='auto' is not supported: .* expected an int"),
        (IncrementalPCA(), r"n_components=None is not supported: .* expected an int"),
        (SGDOneClassSVM(average=True), r"average=True is not supported"),
    ]:
        with pytest.raises(ValueError, match=message):
            adapter_for(estimator)
    adapter = adapter_for(IncrementalPCA(3))
    empty = adapter.initialize(IncrementalPCA(3), 4, None)
    with pytest.raises(ValueError, match=r"a block of 2 rows cannot start IncrementalPCA\(n_components=3\)"):
        adapter.partial_fit(empty, np.ones((2, 4)), np.zeros(2))


def test_an_rbm_keeps_its_own_gibbs_chain_across_merges():
    estimator = BernoulliRBM(n_components=4, batch_size=25, random_state=0)
    adapter = adapter_for(estimator)
    model = adapter.initialize(estimator, 8, None)
    adapter.partial_fit(model, data("binary")[:25], np.zeros(25))
    chain, other = model.h_samples_.copy(), adapter.initialize(BernoulliRBM(n_components=4, random_state=1), 8, None)
    assert chain.any()
    adapter.set_params(model, adapter.get_params(other))
    np.testing.assert_array_equal(model.h_samples_, chain)
    np.testing.assert_array_equal(model.components_, other.components_)


# ------------------------------------------------------------------- incremental PCA
def ipca_data(n=1_000, n_features=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_features)) * np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.2][:n_features]) + 1.0


def assert_same_pca(got, want, rtol=1e-7):
    for name in ("n_samples_seen_", "mean_", "var_", "singular_values_", "explained_variance_",
                 "explained_variance_ratio_", "components_"):
        np.testing.assert_allclose(np.asarray(getattr(got, name)), np.asarray(getattr(want, name)),
                                   rtol=rtol, atol=1e-9, err_msg=name)


def test_merging_two_incremental_pcas_equals_one_over_both_datasets():
    X = ipca_data(n_features=5)
    A, B, C = X[:300], X[300:700], X[700:]
    a, b, c = (state_of(IncrementalPCA(5).partial_fit(part)) for part in (A, B, C))
    both = IncrementalPCA(5).partial_fit(A).partial_fit(B)
    adapter = adapter_for(IncrementalPCA(5))
    merged = adapter.initialize(IncrementalPCA(5), 5, None)
    adapter.set_params(merged, combine([a, b], [1, 1], 5))
    assert_same_pca(merged, both)
    # a round: the reference A, each worker's A + B and A + C -> A + B + C
    updates = [combine([a, b], [1, 1], 5), combine([a, c], [1, 1], 5)]
    adapter.set_params(merged, adapter.aggregate(None, updates, [1, 1], a))
    assert_same_pca(merged, IncrementalPCA(5).partial_fit(A).partial_fit(B).partial_fit(C), rtol=1e-6)
    # overlap: the global A + B arrives at a worker that handed over A and trained on C since
    adapter.set_params(merged, adapter.merge(combine([a, b], [1, 1], 5), combine([a, c], [1, 1], 5), a))
    assert_same_pca(merged, IncrementalPCA(5).partial_fit(A).partial_fit(B).partial_fit(C), rtol=1e-6)
    # fewer components than the rank: close, not equal
    three = IncrementalPCA(3).partial_fit(A).partial_fit(B)
    small = combine([state_of(IncrementalPCA(3).partial_fit(A)), state_of(IncrementalPCA(3).partial_fit(B))], [1, 1], 3)
    np.testing.assert_allclose(small["singular_values_"], three.singular_values_, rtol=0.02)


@pytest.mark.parametrize("overlap", [True, False])
def test_a_federated_incremental_pca_equals_one_partial_fit_over_all_the_data(client, unique_name, overlap):
    X = ipca_data()
    with federated_session(client, IncrementalPCA(4), name=unique_name, sync=2, block_size=100,
                           overlap=overlap, progress=False) as coord:
        model = coord.fit(X).global_model()
        assert sum(r.samples for r in coord.history) == len(X)
    want = IncrementalPCA(4)
    for block in blocks(X, 100):
        want.partial_fit(block)
    assert type(model) is IncrementalPCA and model.n_samples_seen_ == len(X)
    assert_same_pca(model, want)
    np.testing.assert_allclose(model.transform(X[:50]), want.transform(X[:50]), rtol=1e-7, atol=1e-9)
