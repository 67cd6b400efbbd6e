"""FederatedEstimator: scikit-learn's own estimator checks, on a real (in-process) cluster."""

import subprocess
import sys

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster
from sklearn.base import clone
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fedplugin import EveryNBatches, FederatedEstimator, Median, Quorum


@pytest.fixture(scope="module", autouse=True)
def default_client():
    """One in-process cluster for the module, as the default client (client=None)."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            yield client


@parametrize_with_checks(
    [
        FederatedEstimator(SGDClassifier(random_state=0), epochs=5),
        FederatedEstimator(SGDRegressor(random_state=0), epochs=5),
    ]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_fit_gives_plain_fitted_estimator(default_client, classification_data):
    X, y = classification_data
    model = FederatedEstimator(SGDClassifier(random_state=0), sync=EveryNBatches(4), block_size=1000, epochs=2)
    model.fit(X, y)
    assert type(model.estimator_) is SGDClassifier
    assert model.n_features_in_ == 20 and list(model.classes_) == [0, 1]
    assert sum(r.samples for r in model.history_) == 2 * len(X)
    np.testing.assert_array_equal(model.predict(X[:50]), model.estimator_.predict(X[:50]))
    assert not default_client.run(lambda dask_worker: [n for n in dask_worker.plugins if "estimator" in n])[
        next(iter(default_client.scheduler_info()["workers"]))
    ], "the temporary plugin is unregistered after fit"


def test_coordinator_options_reach_the_coordinator(classification_data):
    X, y = classification_data
    options = {"compression": "int8", "stragglers": Quorum(min_workers=1)}
    model = FederatedEstimator(SGDClassifier(random_state=0), sync=EveryNBatches(4), block_size=1000, coordinator_options=options)
    model.fit(X, y)
    assert sum(r.samples for r in model.history_) == len(X)
    assert all(r.bytes_up_raw >= 3.9 * r.bytes_up for r in model.history_)  # int8: a quarter of float64's bytes
    assert repr(clone(model).get_params()["coordinator_options"]) == repr(options)  # clone copies it


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"sync": 4}, ValueError, r"coordinator_options sets \['sync'\], which FederatedEstimator sets itself"),
        ({"compresion": "int8"}, TypeError, r"coordinator_options has \['compresion'\], which Coordinator does not take"),
        (["int8"], TypeError, r"coordinator_options=\['int8'\] must be a dict"),
    ],
)
def test_bad_coordinator_options_refused_before_training(classification_data, options, error, message):
    X, y = classification_data
    with pytest.raises(error, match=message):
        FederatedEstimator(SGDClassifier(), coordinator_options=options).fit(X, y)


def test_bad_coordinator_options_keep_the_fitted_model(classification_data):
    X, y = classification_data
    model = FederatedEstimator(SGDClassifier(random_state=0), block_size=1000).fit(X, y)
    fitted, score = model.estimator_, model.score(X, y)
    model.set_params(coordinator_options={"scorng": "accuracy"})
    with pytest.raises(TypeError, match=r"coordinator_options has \['scorng'\]"):
        model.fit(X, y)
    assert model.estimator_ is fitted and model.score(X, y) == score
    fresh = FederatedEstimator(SGDClassifier(), coordinator_options={"scorng": "accuracy"})
    with pytest.raises(TypeError, match="scorng"):
        fresh.fit(X, y)
    assert not hasattr(fresh, "n_features_in_")  # nothing set by a refused first fit


def test_partial_fit_continues(default_client, classification_data):
    X, y = classification_data
    model = FederatedEstimator(SGDClassifier(random_state=0), block_size=1000)
    model.partial_fit(X[:5000], y[:5000], classes=[0, 1])
    first = model.estimator_.coef_.copy()
    model.partial_fit(X[5000:], y[5000:])
    assert not np.allclose(first, model.estimator_.coef_)
    assert model.history_[-1].total_samples == len(X) - 5000  # a new session per call
    assert sum(r.samples for r in model.history_) == len(X)


def test_dask_input_and_pipeline(default_client, classification_data):
    X, y = classification_data
    dX, dy = da.from_array(X, chunks=(2000, 20)), da.from_array(y, chunks=2000)
    model = FederatedEstimator(SGDClassifier(random_state=0), aggregator=Median()).fit(dX, dy)
    assert model.score(dX, dy) > 0.55
    assert isinstance(model.predict(dX), da.Array)
    scores = cross_val_score(make_pipeline(StandardScaler(), clone(model)), X, y, cv=3)
    assert scores.mean() > 0.55  # chance is 0.5; this data is hard for one-pass SGD


def test_a_dask_dataframe_gives_the_model_its_feature_names(default_client):
    import warnings

    import dask.dataframe as dd
    import pandas as pd

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"])
    dX, dy = dd.from_pandas(X, npartitions=2), dd.from_pandas(pd.Series((X["a"] > 0).astype(int)), npartitions=2)
    model = FederatedEstimator(SGDClassifier(random_state=0), classes=[0, 1]).fit(dX, dy)
    assert model.estimator_.feature_names_in_.tolist() == ["a", "b", "c"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # blocks reach the named model as frames of its names: no warning per block
        assert model.score(dX, dy) > 0.8
        assert model.predict(dX).compute().shape == (400,)
    with pytest.raises(ValueError, match="in another order"):
        model.predict(dX[["c", "b", "a"]])


def test_needs_a_client():
    """Without any client, fit says how to get one (in a fresh interpreter: no default client)."""
    code = (
        "import numpy as np; from fedplugin import FederatedEstimator\n"
        "try:\n"
        "    FederatedEstimator().fit(np.zeros((4, 2)), [0, 1, 0, 1])\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "FederatedEstimator needs a Dask cluster: pass client=Client(...)" in out


def test_unsupported_estimator_refused(default_client):
    from sklearn.neighbors import KNeighborsClassifier

    with pytest.raises(TypeError, match="KNeighborsClassifier has no partial_fit"):
        FederatedEstimator(KNeighborsClassifier()).fit(np.zeros((4, 2)), [0, 1, 0, 1])
