"""Pipelines federated step by step (issue 11, item 2)."""

import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.kernel_approximation import RBFSampler
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.feature_selection import SelectFromModel
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, PolynomialFeatures, StandardScaler

from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin, FedAdam, Mean, Median
from fedplugin.adapters import adapter_for
from fedplugin.session import federated_session


@pytest.fixture
def client(shared_client):
    return shared_client


def wide_scales(n=12_000, seed=0):
    """Features whose scales span six orders of magnitude, labels from their standardised values."""
    rng = np.random.default_rng(seed)
    scales = np.array([1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3])
    Z = rng.normal(size=(n, len(scales)))
    y = (Z @ rng.normal(size=len(scales)) + 0.3 * rng.normal(size=n) > 0).astype(int)
    return (Z + 3.0) * scales, y


def block_by_block(X, y, block_size):
    """One process: scaler.partial_fit then classifier.partial_fit on each scaled block."""
    scaler, clf = StandardScaler(), SGDClassifier(random_state=0)
    for start in range(0, len(X), block_size):
        Xb, yb = X[start:start + block_size], y[start:start + block_size]
        scaler.partial_fit(Xb)
        clf.partial_fit(scaler.transform(Xb), yb, classes=[0, 1])
    return make_pipeline(scaler, clf)


@pytest.mark.parametrize("overlap", [True, False])
def test_a_scaler_and_classifier_pipeline_learns_what_one_process_learns(client, unique_name, overlap):
    X, y = wide_scales()
    X_train, y_train, X_test, y_test = X[:9_000], y[:9_000], X[9_000:], y[9_000:]
    pipeline = make_pipeline(StandardScaler(), SGDClassifier(random_state=0))
    options = dict(classes=[0, 1], sync=EveryNBatches(4), block_size=300, overlap=overlap, progress=False)
    with federated_session(client, pipeline, name=unique_name, **options) as coord:
        model = coord.fit(X_train, y_train).global_model()
        assert sum(r.samples for r in coord.history) == len(X_train)
    with federated_session(client, SGDClassifier(random_state=0), name=unique_name + "-raw", **options) as coord:
        unscaled = coord.fit(X_train, y_train).global_model().score(X_test, y_test)
    assert type(model) is Pipeline and [name for name, _ in model.steps] == ["standardscaler", "sgdclassifier"]
    scaler = model.named_steps["standardscaler"]
    # the scaler is pooled exactly: it equals one fit on all the training data
    np.testing.assert_allclose(scaler.mean_, X_train.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(scaler.var_, X_train.var(axis=0), rtol=1e-9)
    federated = model.score(X_test, y_test)
    single = block_by_block(X_train, y_train, 300).score(X_test, y_test)
    assert federated >= single - 0.03, (federated, single)
    assert federated > unscaled + 0.15, (federated, unscaled)


def test_fixed_transformers_are_built_alike_on_every_worker(client, unique_name):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(3_000, 2))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2
    pipeline = make_pipeline(
        FunctionTransformer(np.tanh), PolynomialFeatures(2), RBFSampler(n_components=50, random_state=0),
        SGDRegressor(random_state=0),
    )
    with federated_session(client, pipeline, name=unique_name, sync=EveryNBatches(4), block_size=250, progress=False) as coord:
        model = coord.fit(X, y, epochs=3).global_model()
        names = sorted(adapter_for(pipeline).get_params(model))
    assert names == ["sgdregressor/coef_", "sgdregressor/intercept_"]  # the fixed steps have nothing to combine
    central_map = RBFSampler(n_components=50, random_state=0).fit(np.zeros((1, 6)))
    np.testing.assert_array_equal(model.named_steps["rbfsampler"].random_weights_, central_map.random_weights_)
    assert model.score(X, y) > 0.5


def test_an_unsupervised_pipeline_fits_without_y(client, unique_name):
    rng = np.random.default_rng(2)
    centers = np.array([[0.0, 0.0], [10.0, 10.0]])
    X = np.vstack([c + rng.normal(size=(1_000, 2)) for c in centers]) * [1e3, 1e-3]
    rng.shuffle(X)
    pipeline = make_pipeline(StandardScaler(), MiniBatchKMeans(2, init=np.array([[-1.0, -1.0], [1.0, 1.0]]), n_init=1))
    with federated_session(client, pipeline, name=unique_name, sync=EveryNBatches(2), block_size=200, progress=False) as coord:
        model = coord.fit(X).global_model()
    labels = model.predict(X)
    truth = (X[:, 0] > 5e3).astype(int)
    assert max(np.mean(labels == truth), np.mean(labels != truth)) > 0.99


def test_a_per_parameter_rule_sees_the_final_steps_plain_names(client, unique_name):
    X, y = wide_scales(n=3_000)
    pipeline = make_pipeline(StandardScaler(), SGDClassifier(random_state=0))
    rule = {"coef_": Median(), "intercept_": Mean()}
    with federated_session(client, pipeline, name=unique_name, classes=[0, 1], aggregator=rule, block_size=300, progress=False) as coord:
        coord.fit(X, y)
        assert coord.history[-1].round >= 1
    with pytest.raises(ValueError, match="per-parameter aggregator does not match the model"):
        with federated_session(client, pipeline, name=unique_name + "-bad", classes=[0, 1], aggregator={"mean_": Mean()}, progress=False) as coord:
            coord.fit(X, y)


def test_a_pipeline_is_exact_or_takes_a_server_optimizer_only_when_all_its_trained_steps_do():
    scaled = adapter_for(make_pipeline(StandardScaler(), SGDRegressor()))
    assert not scaled.takes_server_optimizer and not scaled.exact_aggregation
    fixed = adapter_for(make_pipeline(PolynomialFeatures(2), SGDRegressor()))
    assert fixed.takes_server_optimizer and not fixed.exact_aggregation
    assert adapter_for(make_pipeline(StandardScaler(), GaussianNB())).exact_aggregation


def test_a_server_optimizer_on_a_scaler_pipeline_is_refused_before_training(client, unique_name):
    X, y = wide_scales(n=2_000)
    plugin = FederatedModelPlugin(make_pipeline(StandardScaler(), SGDClassifier()), classes=[0, 1], name=unique_name)
    client.register_plugin(plugin)
    with pytest.raises(ValueError, match="server optimizer, but Pipeline keeps counters"):
        Coordinator(client, plugin, aggregator=FedAdam(), progress=False)


@pytest.mark.parametrize(
    "pipeline, message",
    [
        (make_pipeline(RBFSampler(), SGDClassifier()), r"step 'rbfsampler': RBFSampler\(random_state=None\) would draw a different"),
        (make_pipeline(PCA(2), SGDClassifier()), r"step 'pca': PCA is neither a fixed transformer .* has no partial_fit"),
        (make_pipeline(StandardScaler(), KNeighborsClassifier()), r"step 'kneighborsclassifier': estimator=KNeighborsClassifier has no partial_fit"),
        (Pipeline([("scale", StandardScaler()), ("clf", "passthrough")]), r"step 'clf' is 'passthrough'; expected a final estimator"),
        (make_pipeline(StandardScaler(with_std=False), SGDClassifier()), r"step 'standardscaler'.*with_std=False\) is not supported"),
        (make_pipeline(SelectFromModel(SGDClassifier(), threshold="median"), SGDClassifier()), r"step 'selectfrommodel': SelectFromModel cannot come before another step"),
        (make_pipeline(RBFSampler(random_state=0, gamma="scale"), SGDClassifier()), r"RBFSampler\(gamma='scale'\) reads gamma from the data"),
        (make_pipeline(StandardScaler(), MultiOutputRegressor(SGDRegressor())), r"step 'multioutputregressor': MultiOutputRegressor learns a 2-d y"),
    ],
    ids=["unseeded random map", "data-dependent transformer", "unsupported final step", "no final step", "bad scaler",
         "width set by training", "gamma from the data", "multi-output final step"],
)
def test_a_pipeline_that_cannot_be_federated_is_refused_on_the_client(pipeline, message):
    with pytest.raises((TypeError, ValueError), match=message):
        FederatedModelPlugin(pipeline, classes=[0, 1])


def test_a_final_kmeans_chooses_its_centers_from_the_transformed_data(client, unique_name):
    rng = np.random.default_rng(5)
    centers = np.array([[0.0, 0.0], [8.0, 8.0], [0.0, 8.0]])
    X = np.vstack([c + rng.normal(size=(600, 2)) for c in centers]) * [1e3, 1e-3]
    rng.shuffle(X)
    pipeline = make_pipeline(StandardScaler(), MiniBatchKMeans(3, random_state=0))  # init="k-means++"
    with federated_session(client, pipeline, name=unique_name, sync=EveryNBatches(2), block_size=300, progress=False) as coord:
        model = coord.fit(X).global_model()
    found = model.named_steps["standardscaler"].inverse_transform(model.named_steps["minibatchkmeans"].cluster_centers_)
    truth = centers * [1e3, 1e-3]
    for center in truth:  # every true center has a found one near it (not three at the origin)
        assert np.min(np.linalg.norm((found - center) / [1e3, 1e-3], axis=1)) < 0.5
