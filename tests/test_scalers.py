"""Scalers federated exactly from their statistics, trained with fit(X) (issue 11)."""

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin
from fedplugin.session import federated_session


@pytest.fixture
def client(shared_client):
    return shared_client


def features(n=6_000, seed=0):
    rng = np.random.default_rng(seed)
    # scales spanning six orders of magnitude, and a shifted mean
    return rng.normal(loc=5.0, size=(n, 4)) * np.array([1e-3, 1.0, 1e2, 1e3])


@pytest.mark.parametrize("scaler", [StandardScaler(), StandardScaler(with_mean=False), MinMaxScaler((-1, 1)), MaxAbsScaler()], ids=repr)
@pytest.mark.parametrize("overlap", [True, False])
def test_a_federated_scaler_equals_one_fit_on_all_the_data(client, unique_name, scaler, overlap):
    X = features()
    with federated_session(client, scaler, name=unique_name, sync=EveryNBatches(4), block_size=250, overlap=overlap, progress=False) as coord:
        model = coord.fit(X, epochs=1).global_model()  # no y
        assert sum(r.samples for r in coord.history) == len(X)
    central = type(scaler)(**scaler.get_params()).fit(X)
    assert type(model) is type(scaler) and model.n_samples_seen_ == len(X)
    for name in ("mean_", "var_", "scale_", "data_min_", "data_max_", "min_", "max_abs_"):
        if hasattr(central, name) and getattr(central, name) is not None:
            np.testing.assert_allclose(getattr(model, name), getattr(central, name), rtol=1e-9, err_msg=name)
    np.testing.assert_allclose(model.transform(X[:100]), central.transform(X[:100]), rtol=1e-9, atol=1e-12)


def test_fit_without_y_is_for_estimators_that_learn_no_targets(client, unique_name):
    plugin = FederatedModelPlugin(SGDClassifier(), classes=[0, 1], name=unique_name)
    client.register_plugin(plugin)
    with pytest.raises(ValueError, match="y=None: a SGDClassifier learns targets; expected fit\\(X, y\\)"):
        Coordinator(client, plugin, progress=False).fit(features())
    with pytest.raises(ValueError, match=r"StandardScaler\(with_std=False\) is not supported"):
        FederatedModelPlugin(StandardScaler(with_std=False))


def test_a_scaler_from_dask_input_without_y(client, unique_name):
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd

    X = features(2_000)
    with federated_session(client, StandardScaler(), name=unique_name, sync=2, progress=False) as coord:
        coord.fit(da.from_array(X, chunks=(300, 4)))
        np.testing.assert_allclose(coord.global_model().mean_, X.mean(axis=0), rtol=1e-9)
        coord.fit(dd.from_pandas(pd.DataFrame(X), npartitions=3))  # no feature names, as the array had
        np.testing.assert_allclose(coord.global_model().var_, X.var(axis=0), rtol=1e-9)
        assert coord.global_model().n_samples_seen_ == 2 * len(X)


def test_missing_values_are_refused_for_a_federated_scaler(client, unique_name):
    import dask.array as da

    X = features(2_000)
    X[1_500, 2] = np.nan  # dask input: checked on the worker, by the block
    with federated_session(client, StandardScaler(), name=unique_name, sync=2, progress=False) as coord:
        with pytest.raises(ValueError, match="block 3: X holds NaN; a federated StandardScaler expects no missing values"):
            coord.fit(da.from_array(X, chunks=(500, 4)))
