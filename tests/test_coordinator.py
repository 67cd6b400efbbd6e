"""The coordinator on real clusters: rounds, aggregation, accuracy, sample accounting."""

import uuid

import pytest

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import wait
from sklearn.cluster import MiniBatchKMeans
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from conftest import params_equal
from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin, Mean, WeightedMean, store
from fedplugin.adapters import adapter_for
from fedplugin.replacement import replacement
from fedplugin.session import federated_session


@pytest.fixture
def client(shared_client):
    """This module's tests share one cluster (~2.5 s saved per test); each
    registers its plugin under a name of its own."""
    return shared_client


def start(client, estimator=None, name="clf", classes=(0, 1), **kwargs):
    name = f"{name}-{uuid.uuid4().hex[:8]}"  # the cluster is shared: a name of the test's own
    plugin = FederatedModelPlugin(estimator or SGDClassifier(random_state=0), classes=classes, name=name)
    client.register_plugin(plugin)
    return Coordinator(client, plugin, **kwargs)


class Recording:
    """Wraps a rule and writes what it was given to ``directory``.

    Rules run on the worker that closes each round (since the round engine of
    issue 9), so the calls are recorded in files, not in this object.
    """

    def __init__(self, rule, directory):
        self.rule, self.directory = rule, str(directory)

    def __call__(self, updates, weights):
        import pickle
        import uuid

        with open(f"{self.directory}/{uuid.uuid4().hex}.pkl", "wb") as file:
            pickle.dump(([dict(u) for u in updates], list(weights)), file)
        return self.rule(updates, weights)

    @property
    def calls(self):
        import pickle
        from pathlib import Path

        return [pickle.loads(path.read_bytes()) for path in sorted(Path(self.directory).glob("*.pkl"))]


def test_plugin_on_every_worker_each_with_its_own_model(client, classification_data):
    X, y = classification_data
    coord = start(client, block_size=1000, sync=EveryNBatches(1000))
    coord.fit(X[:5000], y[:5000])
    states = coord.worker_states()
    assert len(states) == 2
    # after the final round every worker holds the global model ...
    for state in states.values():
        assert params_equal(state["params"], coord.global_model().__dict__ and {
            "coef_": coord.global_model().coef_, "intercept_": coord.global_model().intercept_})
    # ... and each trained its own copy: both trained samples, which add up to the input
    totals = [state["samples_total"] for state in states.values()]
    assert all(t > 0 for t in totals) and sum(totals) == 5000
    models = coord.local_models()
    first, second = models.values()
    assert first is not second


def test_round_aggregates_pre_round_parameters_with_unequal_weights(client, classification_data, tmp_path):
    X, y = classification_data
    recorder = Recording(WeightedMean(), tmp_path)
    coord = start(client, block_size=1000, sync=EveryNBatches(1000), aggregator=recorder)
    coord.fit(X[:4500], y[:4500])  # 5 blocks: 3 on one worker, 2 on the other
    (updates, weights), = recorder.calls[-1:]
    assert sorted(weights) == [2000, 2500], "the weights are the samples each worker trained"
    assert not params_equal(updates[0], updates[1]), "the workers trained different data"
    expected = {
        name: (weights[0] * updates[0][name] + weights[1] * updates[1][name]) / sum(weights)
        for name in updates[0]
    }
    model = coord.global_model()
    np.testing.assert_allclose(model.coef_, expected["coef_"])
    np.testing.assert_allclose(model.intercept_, expected["intercept_"])
    for state in coord.worker_states().values():
        np.testing.assert_allclose(state["params"]["coef_"], expected["coef_"])
        assert state["version"] == coord.version


def test_synchronize_returns_new_version_and_records_manual_round(client, classification_data):
    X, y = classification_data
    coord = start(client, block_size=2000, aggregator=Mean())
    coord.fit(X[:8000], y[:8000])
    before = coord.version
    assert coord.synchronize() == before + 1
    assert coord.history[-1].trigger == "manual"


def test_every_n_batches_rounds_and_sample_accounting(client, classification_data):
    X, y = classification_data
    coord = start(client, block_size=500, sync=EveryNBatches(8))
    coord.fit(X, y, epochs=2)  # 40 blocks per epoch, 80 in all: 10 rounds of 8
    triggers = [r.trigger for r in coord.history]
    assert triggers == ["count"] * 9 + ["final"]
    assert [r.blocks for r in coord.history] == [8] * 10
    assert sum(r.samples for r in coord.history) == len(X) * 2
    assert coord.history[-1].total_samples == len(X) * 2
    assert all(r.n_workers == 2 for r in coord.history)
    assert [r.round for r in coord.history] == list(range(1, 11))


def test_federated_accuracy_close_to_single_process(client):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=60_000, n_features=30, n_informative=15, random_state=1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    single = SGDClassifier(random_state=0)
    for start_row in range(0, len(X_train), 1000):
        single.partial_fit(X_train[start_row:start_row + 1000], y_train[start_row:start_row + 1000], classes=[0, 1])
    coord = start(client, block_size=1000, sync=EveryNBatches(10))
    coord.fit(X_train, y_train)
    assert coord.score(X_test, y_test) >= single.score(X_test, y_test) - 0.01


def test_digits_ten_classes(client):
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    coord = start(client, SGDClassifier(random_state=0), classes=range(10), block_size=128, sync=EveryNBatches(4))
    coord.fit(X_train, y_train, epochs=5)
    model = coord.global_model()
    assert type(model) is SGDClassifier and model.coef_.shape == (10, 64)
    assert model.score(X_test, y_test) > 0.9
    assert sum(r.samples for r in coord.history) == len(X_train) * 5


def test_regressor(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8000, 5))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.1 * rng.normal(size=8000)
    coord = start(client, SGDRegressor(random_state=0), classes=None, block_size=500)
    coord.fit(X, y, epochs=3)
    assert coord.score(X, y) > 0.99
    np.testing.assert_allclose(coord.global_model().coef_, [1.0, -2.0, 0.5, 0.0, 3.0], atol=0.05)


def test_dask_array_blocks_trained_where_they_live(client, classification_data):
    X, y = classification_data
    dX = da.from_array(X, chunks=(1000, 20))
    dy = da.from_array(y, chunks=1000)
    dX, dy = client.persist([dX, dy])
    wait([dX, dy])
    coord = start(client, sync=EveryNBatches(6))
    coord.fit(dX, dy)
    assert sum(r.samples for r in coord.history) == len(X)
    # every training task ran where its X blocks live: no X block was copied
    who_has = client.who_has(list(dX.__dask_keys__()))
    assert all(len(holders) == 1 for holders in who_has.values())
    assert coord.score(dX, dy) >= single_process_score(X, y, 1000) - 0.03


def single_process_score(X, y, block_size):
    model = SGDClassifier(random_state=0)
    for row in range(0, len(X), block_size):
        model.partial_fit(X[row:row + block_size], y[row:row + block_size], classes=np.unique(y))
    return model.score(X, y)


def test_lazy_dask_array_is_computed_in_the_training_task(client, classification_data):
    X, y = classification_data
    dX = da.from_array(X, chunks=(2500, 20)) * 1.0
    dy = da.from_array(y, chunks=2500)
    coord = start(client, sync=EveryNBatches(4))
    coord.fit(dX, dy, epochs=2)
    assert sum(r.samples for r in coord.history) == 2 * len(X)
    assert not client.who_has(list(dX.__dask_keys__())) or not any(client.who_has(list(dX.__dask_keys__())).values())


def test_dask_dataframe_input(client, classification_data):
    X, y = classification_data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(20)])
    frame["target"] = y
    ddf = dd.from_pandas(frame, npartitions=8)
    coord = start(client, classes=None, sync=EveryNBatches(4))
    coord.fit(ddf.drop(columns="target"), ddf["target"])
    assert sum(r.samples for r in coord.history) == len(X)
    np.testing.assert_array_equal(coord.global_model().classes_, [0, 1])
    predictions = coord.predict(frame.drop(columns="target")[:10])  # with the names it was fitted with
    assert predictions.shape == (10,)


def test_partial_fit_continues_from_global_model(client, classification_data):
    X, y = classification_data
    coord = start(client, block_size=1000)
    coord.fit(X[:10_000], y[:10_000])
    version, rounds = coord.version, coord.rounds
    first = coord.global_model().coef_.copy()
    coord.partial_fit(X[10_000:], y[10_000:])
    assert coord.version > version and coord.rounds > rounds
    assert not np.allclose(first, coord.global_model().coef_)
    assert coord.history[-1].total_samples == len(X)


def test_set_global_model_refuses_a_model_that_does_not_fit_the_plugin(client, unique_name):
    X, y = make_classification(n_samples=600, n_features=4, random_state=0)
    with federated_session(
        client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name, check_workers=False, block_size=300, progress=False,
    ) as coord:
        coord.fit(X, y)
        version, coef = coord.version, coord.global_model().coef_
        refused = [
            (SGDClassifier(random_state=0).fit(X[:, :3], y), ValueError, r"model has 3 features; expected 4"),
            (LogisticRegression().fit(X, y), TypeError, r"model is of class LogisticRegression; expected a fitted SGDClassifier"),
            (SGDClassifier(random_state=0).fit(X, y + 3), ValueError, r"model has classes \[3, 4\]; expected classes \[0, 1\]"),
            (SGDClassifier(random_state=0).fit(X, np.arange(600) % 3), ValueError, r"model has classes \[0, 1, 2\]"),
            (SGDClassifier(), NotFittedError, r"model, a SGDClassifier, is not fitted"),
        ]
        for model, error, message in refused:
            with pytest.raises(error, match=message):
                coord.set_global_model(model)
            assert coord.version == store.fetch_info(client, unique_name).version == version, "nothing published"
        np.testing.assert_array_equal(coord.global_model().coef_, coef)
        fitted = SGDClassifier(random_state=1).fit(X, y)
        assert coord.set_global_model(fitted) == version + 1
        np.testing.assert_array_equal(coord.global_model().coef_, fitted.coef_)


def test_a_replacement_has_the_plugins_steps_and_parameter_shapes():
    X = np.random.default_rng(0).normal(size=(50, 3))
    plugin = make_pipeline(StandardScaler(), SGDRegressor())
    other = make_pipeline(MinMaxScaler(), SGDRegressor()).fit(X, X[:, 0])
    with pytest.raises(TypeError, match=r"model is a Pipeline of \{'minmaxscaler': 'MinMaxScaler', .*expected one of \{'standardscaler'"):
        replacement(other, plugin, adapter_for(plugin), None, None)
    kmeans = MiniBatchKMeans(n_clusters=3, n_init=1, random_state=0)
    with pytest.raises(ValueError, match=r"model has the parameter shapes .*\(5, 3\).*; expected .*\(3, 3\)"):
        replacement(MiniBatchKMeans(n_clusters=5, n_init=1, random_state=0).fit(X), kmeans, adapter_for(kmeans), None, None)


def test_predict_proba_and_decision_function(client, classification_data):
    X, y = classification_data
    coord = start(client, SGDClassifier(loss="log_loss", random_state=0), block_size=2000)
    coord.fit(X, y)
    proba = coord.predict_proba(X[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1)
    assert coord.decision_function(X[:5]).shape == (5,)
    lazy = coord.predict(da.from_array(X, chunks=5000))
    np.testing.assert_array_equal(lazy.compute(), coord.predict(X))
