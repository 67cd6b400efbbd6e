"""Model families beyond linear SGD: MLPs, naive Bayes, mini-batch k-means.

Adapter-level tests run in one process; the ``client`` tests train on a real
two-worker cluster through the plugin and coordinator.
"""

import copy
import inspect

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.cluster import MiniBatchKMeans, kmeans_plusplus
from sklearn.datasets import load_digits, make_blobs, make_classification, make_friedman1
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import BernoulliNB, ComplementNB, GaussianNB, MultinomialNB
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin, Median
from fedplugin.adapters import adapter_for


@pytest.fixture
def client(shared_client):
    """The shared cluster: each test registers its plugins under names of this module's own."""
    return shared_client


def start(client, estimator, name, classes=None, **kwargs):
    plugin = FederatedModelPlugin(estimator, classes=classes, name=f"test_model_families-{name}")
    client.register_plugin(plugin)
    return Coordinator(client, plugin, **kwargs)


def refuse(updates, weights):
    raise AssertionError("families with sufficient statistics must not call the user's rule")


class OwnOnlineModel(BaseEstimator):
    """A user's own estimator with partial_fit: no adapter knows it."""

    def partial_fit(self, X, y=None):
        return self


@pytest.mark.parametrize("estimator", [OwnOnlineModel()], ids=lambda e: type(e).__name__)
def test_unsupported_family_with_partial_fit_refused_naming_the_supported_ones(estimator):
    name = type(estimator).__name__
    families = ".*SGDClassifier.*MLPClassifier.*MultinomialNB.*GaussianNB.*MiniBatchKMeans"
    with pytest.raises(TypeError, match=f"{name} is not supported; expected one of: {families}"):
        adapter_for(estimator)


def train_from(adapter, model, batches):
    """A copy of ``model`` trained on ``batches`` through the adapter, as a worker does."""
    model = copy.deepcopy(model)
    for X, y in batches:
        adapter.partial_fit(model, X, y)
    return model


# ------------------------------------------------------------------------ MLP
MLPS = [
    (MLPClassifier(hidden_layer_sizes=(7, 4), shuffle=False, random_state=0), 2),
    (MLPClassifier(hidden_layer_sizes=(7, 4), shuffle=False, random_state=0), 3),
    (MLPClassifier(hidden_layer_sizes=5, solver="sgd", shuffle=False, random_state=0), 3),
    (MLPRegressor(hidden_layer_sizes=(6,), shuffle=False, random_state=1), None),
]
if "loss" in inspect.signature(MLPRegressor).parameters:  # scikit-learn >= 1.7
    MLPS.append((MLPRegressor(loss="poisson", shuffle=False, random_state=1), None))


@pytest.mark.parametrize("estimator, n_classes", MLPS, ids=lambda v: repr(v))
def test_mlp_initialize_draws_the_estimators_own_weights(estimator, n_classes):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    classes = None if n_classes is None else np.arange(n_classes)
    y = rng.integers(0, n_classes, 120) if classes is not None else np.abs(rng.normal(size=120))
    adapter = adapter_for(estimator)
    model = adapter.initialize(estimator, 5, classes)
    # untouched by the set-up batch: no steps taken, no optimizer state yet
    assert (model.t_, model.n_iter_, model.loss_curve_) == (0, 0, [])
    assert not hasattr(model, "_optimizer")
    reference = copy.deepcopy(estimator)
    if classes is None:
        reference.partial_fit(X, y)
    else:
        reference.partial_fit(X, y, classes=classes)
    adapter.partial_fit(model, X, y)  # no classes passed, as the plugin calls it
    adapter.partial_fit(model, X, y)
    reference.partial_fit(X, y)
    for name, value in adapter.get_params(model).items():
        kind, layer = name.rsplit("_", 1)
        np.testing.assert_array_equal(value, getattr(reference, f"{kind}_")[int(layer)], err_msg=name)


def test_mlp_set_params_keeps_the_optimizer_consistent_with_the_new_weights():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(60, 4)), rng.integers(0, 3, 60)
    estimator = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    adapter = adapter_for(estimator)
    model = train_from(adapter, adapter.initialize(estimator, 4, np.arange(3)), [(X, y)] * 3)
    new = {name: value + 1.0 for name, value in adapter.get_params(model).items()}
    sent = copy.deepcopy(new)
    adapter.set_params(model, new)
    optimizer = model._optimizer
    assert [m.shape for m in optimizer.ms] == [p.shape for p in model.coefs_ + model.intercepts_]
    assert optimizer.t == 3 and all(np.isfinite(m).all() for m in optimizer.ms + optimizer.vs)
    adapter.partial_fit(model, X, y)
    moved = adapter.get_params(model)
    for name, value in new.items():
        np.testing.assert_array_equal(value, sent[name], err_msg="the caller's arrays are never trained in place")
        assert not np.array_equal(moved[name], value), f"the optimizer updates the new {name}"
        np.testing.assert_allclose(moved[name], value, atol=0.01)  # one Adam step of lr 1e-3


@pytest.mark.parametrize(
    "estimator, message",
    [
        (MLPClassifier(solver="lbfgs"), "solver='lbfgs' is not supported: it has no partial_fit; expected solver='adam'"),
        (MLPRegressor(solver="lbfgs"), "solver='lbfgs' is not supported"),
        (MLPClassifier(early_stopping=True), "early_stopping=True is not supported"),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_mlp_settings_without_partial_fit_refused(estimator, message):
    with pytest.raises((ValueError, TypeError), match=message):
        adapter_for(estimator)


def test_federated_mlps_learn_digits_and_friedman(client):
    # one cluster for both: starting one costs more than both fits
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    classifier = MLPClassifier(hidden_layer_sizes=(64,), learning_rate_init=0.01, random_state=0)
    coord = start(client, classifier, "mlp", classes=np.arange(10), sync=EveryNBatches(4), block_size=50)
    coord.fit(scaler.transform(X_train), y_train, epochs=3)
    accuracy = coord.score(scaler.transform(X_test), y_test)
    assert accuracy > 0.85, accuracy
    assert len(coord.history) == 21, "3 epochs of 27 blocks, 4 blocks a round"
    global_params = adapter_for(classifier).get_params(coord.global_model())
    for state in coord.worker_states().values():  # every worker ends on the global weights
        for name, value in global_params.items():
            np.testing.assert_array_equal(state["params"][name], value, err_msg=name)

    X, y = make_friedman1(n_samples=3000, noise=0.1, random_state=0)
    y = (y - y.mean()) / y.std()
    regressor = MLPRegressor(hidden_layer_sizes=(64, 32), learning_rate_init=0.01, random_state=0)
    coord = start(client, regressor, "mlp-reg", sync=EveryNBatches(8), block_size=100)
    coord.fit(X[:2400], y[:2400], epochs=10)
    r2 = coord.score(X[2400:], y[2400:])
    assert r2 > 0.8, r2


# ---------------------------------------------------------------- naive Bayes
def nb_data():
    """Three classes; one feature 1000 times wider, so ``epsilon_`` is not negligible."""
    X, y = make_classification(
        n_samples=3000, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    X[:, 0] *= 1000.0
    return X - X.min(axis=0), y  # non-negative, for the multinomial model


NAIVE_BAYES = [MultinomialNB(), BernoulliNB(binarize=1.0), ComplementNB(), GaussianNB()]
NB_ATTRIBUTES = [
    "class_count_", "feature_count_", "feature_all_", "feature_log_prob_", "class_log_prior_",
    "theta_", "var_", "epsilon_", "class_prior_",
]


def assert_same_naive_bayes(model, central, label):
    checked = 0
    for name in NB_ATTRIBUTES:
        if hasattr(central, name):
            checked += 1
            np.testing.assert_allclose(
                getattr(model, name), getattr(central, name), rtol=1e-12, err_msg=f"{label} {name}"
            )
    assert checked >= 4


@pytest.mark.parametrize("estimator", NAIVE_BAYES, ids=lambda e: type(e).__name__)
def test_naive_bayes_aggregate_equals_learning_everything(estimator):
    X, y = nb_data()
    classes = np.arange(3)
    adapter = adapter_for(estimator)
    start_model = train_from(adapter, adapter.initialize(estimator, X.shape[1], classes), [(X[:500], y[:500])])
    updates = [
        adapter.get_params(train_from(adapter, start_model, [(X[a:b], y[a:b])]))
        for a, b in [(500, 1200), (1200, 1300), (1300, 3000)]
    ]
    params = adapter.aggregate(refuse, updates, [1.0, 1.0, 1.0], adapter.get_params(start_model))
    model = adapter.initialize(estimator, X.shape[1], classes)
    adapter.set_params(model, params)
    central = copy.deepcopy(estimator).partial_fit(X, y, classes=classes)
    assert_same_naive_bayes(model, central, type(estimator).__name__)


def check_federated_naive_bayes_equals_central_fit(client):
    """Every naive Bayes model, 4 rounds of 1 epoch, equals one partial_fit on all the data."""
    X, y = nb_data()
    classes = np.arange(3)
    for estimator in NAIVE_BAYES:
        label = type(estimator).__name__
        # a median of count tables would lose counts: the adapter must ignore the rule, and say so
        with pytest.warns(UserWarning, match="aggregator=Median\\(\\) is ignored"):
            coord = start(
                client, estimator, label, classes=classes, sync=EveryNBatches(3), block_size=250, aggregator=Median()
            )
        coord.fit(X, y)
        assert len(coord.history) == 4, "12 blocks, 3 per round"
        model = coord.global_model()
        central = copy.deepcopy(estimator).partial_fit(X, y, classes=classes)
        assert_same_naive_bayes(model, central, label)
        np.testing.assert_array_equal(model.predict(X), central.predict(X))
        np.testing.assert_allclose(model.predict_proba(X), central.predict_proba(X), rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------ MiniBatchKMeans
def test_minibatch_kmeans_initialize_matches_its_first_partial_fit():
    X, _ = make_blobs(n_samples=400, centers=4, random_state=0)
    init = X[:4] + 0.5
    estimator = MiniBatchKMeans(n_clusters=4, init=init, random_state=0)
    adapter = adapter_for(estimator)
    model = adapter.initialize(estimator, 2, None)
    np.testing.assert_array_equal(model.cluster_centers_, init)
    np.testing.assert_array_equal(model._counts, np.zeros(4))
    model = train_from(adapter, model, [(X[:200], None), (X[200:], None)])
    reference = copy.deepcopy(estimator).partial_fit(X[:200]).partial_fit(X[200:])
    np.testing.assert_array_equal(model.cluster_centers_, reference.cluster_centers_)
    np.testing.assert_array_equal(model._counts, reference._counts)


def test_minibatch_kmeans_aggregate_is_one_minibatch_of_all_new_points():
    X, _ = make_blobs(n_samples=900, centers=3, random_state=1)
    estimator = MiniBatchKMeans(n_clusters=3, init=X[:3], reassignment_ratio=0.0, random_state=0)
    adapter = adapter_for(estimator)
    start_model = train_from(adapter, adapter.initialize(estimator, 2, None), [(X[:300], None)])
    updates = [
        adapter.get_params(train_from(adapter, start_model, [(X[a:b], None)])) for a, b in [(300, 500), (500, 900)]
    ]
    params = adapter.aggregate(refuse, updates, [200, 400], adapter.get_params(start_model))
    # the running update of one mini-batch holding every worker's points
    central = copy.deepcopy(start_model).partial_fit(X[300:900])
    np.testing.assert_allclose(params["cluster_centers_"], central.cluster_centers_, rtol=1e-12)
    np.testing.assert_array_equal(params["_counts"], central._counts)


@pytest.mark.parametrize("init", [np.zeros((2, 2)), np.zeros(3)], ids=["2-centers", "1-d"])
def test_minibatch_kmeans_init_array_must_hold_n_clusters_centers(init):
    with pytest.raises(ValueError, match="^init"):
        adapter_for(MiniBatchKMeans(n_clusters=3, init=init))


def check_federated_minibatch_kmeans_finds_the_blobs(client):
    """Count-weighted centers find well separated blobs and count every sample once."""
    centers = np.array([[-6.0, 0.0], [0.0, 6.0], [6.0, 0.0], [0.0, -6.0]])
    X, labels = make_blobs(n_samples=4000, centers=centers, cluster_std=1.0, random_state=0)
    init, _ = kmeans_plusplus(X[:200], 4, random_state=0)
    # reassignment_ratio=0: every sample is counted exactly once
    estimator = MiniBatchKMeans(n_clusters=4, init=init, reassignment_ratio=0.0, random_state=0)
    coord = start(client, estimator, "kmeans", sync=EveryNBatches(2), block_size=500)
    coord.fit(X, np.zeros(len(X)))  # the coordinator needs targets; k-means ignores them
    model = coord.global_model()
    assert model._counts.sum() == len(X)
    found = model.cluster_centers_[np.argmin(((centers[:, None] - model.cluster_centers_) ** 2).sum(-1), axis=1)]
    np.testing.assert_allclose(found, centers, atol=0.2)
    assert adjusted_rand_score(labels, model.predict(X)) > 0.99


# ------------------------------------------- exact families on one cluster
def test_federated_naive_bayes_and_minibatch_kmeans(client):
    # one cluster for both families: starting one costs more than all their fits
    check_federated_naive_bayes_equals_central_fit(client)
    check_federated_minibatch_kmeans_finds_the_blobs(client)
