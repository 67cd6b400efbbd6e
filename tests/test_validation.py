"""Bad input gets a clear error before any state changes; the global model survives it."""

import dask.array as da
import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier, SGDRegressor

from conftest import params_equal
from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin
from fedplugin._compat import SGD_PASSIVE_AGGRESSIVE
from fedplugin.search import CandidateSet
from fedplugin.session import federated_session

#: How scikit-learn (>= 1.8) or fedplugin (before, see _compat) refuses SGD pa1 with another loss.
PA_REFUSED = "only works with loss 'hinge'" if SGD_PASSIVE_AGGRESSIVE else "eta0 as C only from scikit-learn 1.8"


@pytest.fixture
def trained(shared_client, classification_data, unique_name):
    """A fitted coordinator on the module's cluster, under a name of the test's own."""
    X, y = classification_data
    with federated_session(
        shared_client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name, check_workers=False,
        block_size=1000, sync=EveryNBatches(4), progress=False,
    ) as coord:
        coord.fit(X[:6000], y[:6000])
        yield coord, X, y


def snapshot(coord):
    model = coord.global_model()
    return {
        "params": {"coef_": model.coef_.copy(), "intercept_": model.intercept_.copy()},
        "version": coord.version,
        "history": list(coord.history),
    }


def assert_unchanged(coord, before):
    after = snapshot(coord)
    assert params_equal(after["params"], before["params"])
    assert after["version"] == before["version"]
    assert after["history"] == before["history"]
    for state in coord.worker_states().values():
        assert params_equal(state["params"], before["params"])
        assert state["version"] == before["version"]


def dask_pair(X, y, chunks=1000):
    return da.from_array(X, chunks=(chunks, X.shape[1])), da.from_array(y, chunks=chunks)


def with_bad_value(X, row, value):
    X = X.copy()
    X[row, 3] = value
    return X


CASES = {
    "wrong number of features": (
        lambda X, y: (X[:2000, :5], y[:2000]),
        ValueError,
        "X has 5 features; expected 20",
    ),
    "labels not in classes": (
        lambda X, y: (X[:2000], np.where(y[:2000] == 1, 7, 0)),
        ValueError,
        r"labels \[7\] not in classes=\[0, 1\]",
    ),
    "NaN": (lambda X, y: (with_bad_value(X[:3000], 2500, np.nan), y[:3000]), ValueError, "NaN"),
    "infinity": (lambda X, y: (with_bad_value(X[:3000], 10, np.inf), y[:3000]), ValueError, "infinity|NaN or infinite"),
    "different lengths": (lambda X, y: (X[:2000], y[:1999]), ValueError, "X has 2000 samples but y has 1999"),
    "empty input": (lambda X, y: (X[:0], y[:0]), ValueError, "0 samples"),
    "strings": (lambda X, y: (X[:10].astype(str), y[:10]), TypeError, "expected real numbers"),
    "1-d X": (lambda X, y: (X[:10, 0], y[:10]), ValueError, "expected a 2-d array"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_numpy_input(trained, case):
    coord, X, y = trained
    make, error, message = CASES[case]
    before = snapshot(coord)
    with pytest.raises(error, match=message):
        coord.fit(*make(X, y))
    assert_unchanged(coord, before)


DASK_CASES = {
    "wrong number of features": (lambda X, y: dask_pair(X[:2000, :5], y[:2000]), "X has 5 features; expected 20"),
    # found inside the training task, after earlier blocks trained: the model is rolled back
    "labels not in classes": (
        lambda X, y: dask_pair(X[:6000], np.where((np.arange(6000) > 4500) & (np.arange(6000) < 5000), 7, y[:6000])),
        r"block 4: y has labels \[7\] not in classes",
    ),
    "NaN in a late block": (lambda X, y: dask_pair(with_bad_value(X[:6000], 5500, np.nan), y[:6000]), "block 5: .*NaN"),
    "different row chunks": (
        lambda X, y: (da.from_array(X[:4000], chunks=(1000, 20)), da.from_array(y[:4000], chunks=500)),
        "row chunks",
    ),
    "different lengths": (
        lambda X, y: (da.from_array(X[:4000], chunks=(1000, 20)), da.from_array(y[:3000], chunks=1000)),
        "X has 4000 samples but y has 3000",
    ),
}


@pytest.mark.parametrize("case", DASK_CASES)
def test_bad_dask_input(trained, case):
    coord, X, y = trained
    make, message = DASK_CASES[case]
    before = snapshot(coord)
    with pytest.raises(ValueError, match=message):
        coord.fit(*make(X, y))
    assert_unchanged(coord, before)
    coord.fit(*dask_pair(X[:2000], y[:2000]))  # and the coordinator still works
    assert coord.version > before["version"]


def test_mixed_numpy_and_dask(trained):
    coord, X, y = trained
    with pytest.raises(TypeError, match="X is a dask array and y is a numpy"):
        coord.fit(da.from_array(X[:1000]), y[:1000])


def test_bad_epochs(trained):
    coord, X, y = trained
    with pytest.raises(ValueError, match="epochs == 0, must be >= 1."):
        coord.fit(X[:100], y[:100], epochs=0)
    for epochs, kind in ((1.5, "float"), ("2", "str"), (True, "bool")):
        with pytest.raises(TypeError, match=f"epochs must be an instance of int, not {kind}."):
            coord.fit(X[:100], y[:100], epochs=epochs)


def test_unknown_plugin_name(shared_client, unique_name):
    shared_client.register_plugin(FederatedModelPlugin(SGDClassifier(), classes=[0, 1], name=unique_name))
    with pytest.raises(ValueError, match=rf"plugin name 'unknown' is not registered .*registered fedplugin plugins: \[.*'{unique_name}'.*\]"):
        Coordinator(shared_client, "unknown")


def test_wrong_constructor_arguments(shared_client, unique_name):
    client = shared_client
    plugin = FederatedModelPlugin(SGDClassifier(), classes=[0, 1], name=unique_name)
    client.register_plugin(plugin)
    with pytest.raises(TypeError, match="not a distributed.Client"):
        Coordinator("tcp://127.0.0.1:8786", plugin)
    with pytest.raises(TypeError, match="not a synchronization policy"):
        Coordinator(client, plugin, sync="often")
    with pytest.raises(ValueError, match="block_size == 0, must be >= 1."):
        Coordinator(client, plugin, block_size=0)
    with pytest.raises(TypeError, match="aggregator="):
        Coordinator(client, plugin, aggregator="mean")


def test_plugin_refuses_bad_configuration():
    with pytest.raises(ValueError, match="at least two labels"):
        FederatedModelPlugin(SGDClassifier(), classes=[1])
    # labels scikit-learn cannot sort or compare (np.asarray made [0, "a"] into ["0", "a"])
    with pytest.raises(ValueError, match=r"classes=\[0, 'a'\] mixes numbers and strings"):
        FederatedModelPlugin(SGDClassifier(), classes=[0, "a"])
    for labels, shown in [([0, None], r"\[0, None\] holds None"), ([0, float("nan")], r"\[0, nan\] holds NaN")]:
        with pytest.raises(ValueError, match=f"classes={shown}; expected labels that are all numbers or all strings"):
            FederatedModelPlugin(SGDClassifier(), classes=labels)
    from sklearn.linear_model import SGDRegressor

    with pytest.raises(ValueError, match="regressor; expected classes=None"):
        FederatedModelPlugin(SGDRegressor(), classes=[0, 1])
    with pytest.raises(TypeError, match="name="):
        FederatedModelPlugin(SGDClassifier(), name="")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"eta0": -1.0, "learning_rate": "constant"}, "'eta0' parameter of SGDClassifier must be"),
        ({"loss": "log_loss", "learning_rate": "pa1"}, PA_REFUSED),
    ],
)
def test_bad_estimator_settings_refused_before_registration(settings, message):
    with pytest.raises(ValueError, match=message):
        FederatedModelPlugin(SGDClassifier(**settings), classes=[0, 1])


# ---------------------------------------- X and y of different kinds (issue 13)
def _inputs():
    import dask.dataframe as dd
    import pandas as pd

    X = np.arange(40.0).reshape(20, 2)
    y = np.arange(20) % 2
    df = dd.from_pandas(pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "target": y}), npartitions=3)
    return {
        "numpy": (X, y),
        "pandas": (pd.DataFrame(X), pd.Series(y)),
        "dask array": dask_pair(X, y, chunks=7),
        "dask dataframe": (df.drop(columns="target"), df["target"]),
    }


# (kind of X, kind of y) -> what the message must say, and how to apply that advice
MIXED = {
    ("numpy", "dask array"): (
        "X is a numpy array and y is a dask array", "X = da.from_array(X, chunks=(y.chunks[0], -1))",
    ),
    ("pandas", "dask array"): ("X is a pandas DataFrame and y is a dask array", "y = y.compute()"),
    ("numpy", "dask dataframe"): ("X is a numpy array and y is a dask Series", "y = y.compute()"),
    ("dask array", "numpy"): (
        "X is a dask array and y is a numpy array", "y = da.from_array(y, chunks=(X.chunks[0],))",
    ),
    ("dask array", "pandas"): ("X is a dask array and y is a pandas Series", "X = X.compute()"),
    ("dask dataframe", "numpy"): ("X is a dask DataFrame and y is a numpy array", "X = X.compute()"),
    ("dask array", "dask dataframe"): (
        "X is a dask array and y is a dask Series", "y = y.to_dask_array(lengths=True).rechunk((X.chunks[0],))",
    ),
    ("dask dataframe", "dask array"): (
        "X is a dask DataFrame and y is a dask array",
        "X = X.to_dask_array(lengths=True), y = y.rechunk((X.chunks[0],))",
    ),
}


@pytest.mark.parametrize("kinds", MIXED, ids=" + ".join)
def test_mixed_input_kinds_say_what_to_do(kinds):
    """Each combination gets advice that fits it (no ``X.chunks`` for a numpy X), and the advice works."""
    from fedplugin.blocks import prepare
    from fedplugin.input_kinds import input_kind

    inputs = _inputs()
    X, y = inputs[kinds[0]][0], inputs[kinds[1]][1]
    says, remedy = MIXED[kinds]
    with pytest.raises(TypeError) as info:  # refused before the client is used
        prepare(None, X, y, block_size=10, n_features=None, classes=None, is_classifier=True)
    message = str(info.value)
    assert says in message and remedy in message, message
    if input_kind(X, "X") == "numpy":
        assert "X.chunks" not in message, "numpy arrays have no chunks"
    namespace = {"X": X, "y": y, "da": da}
    exec(remedy.replace(", y = ", "\ny = "), namespace)
    X, y = namespace["X"], namespace["y"]
    assert input_kind(X, "X") == input_kind(y, "y")
    if input_kind(X, "X") == "dask array":
        assert X.chunks[0] == y.chunks[0], "the advice lines the row chunks up"


@pytest.mark.skipif(SGD_PASSIVE_AGGRESSIVE, reason="scikit-learn >= 1.8 trains SGD*(learning_rate='pa1') with eta0 as C")
def test_sgd_passive_aggressive_refused_before_scikit_learn_1_8():
    """Before 1.8 scikit-learn accepts SGD*(learning_rate="pa1") but ignores eta0: refused, not mistrained."""
    refusal = "eta0 as C only from scikit-learn 1.8.*PassiveAggressive(Classifier|Regressor)"
    with pytest.raises(ValueError, match=refusal):
        FederatedModelPlugin(SGDClassifier(loss="hinge", penalty=None, learning_rate="pa1", eta0=0.1), classes=[0, 1])
    with pytest.raises(ValueError, match=refusal):
        FederatedModelPlugin(SGDRegressor(loss="epsilon_insensitive", penalty=None, learning_rate="pa2", eta0=0.1))
    # a search fails that candidate only, naming why, and trains the others
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 3)), rng.integers(0, 2, 200)
    members = [SGDClassifier(random_state=0), SGDClassifier(loss="hinge", learning_rate="pa1", eta0=0.1)]
    model = CandidateSet(members).partial_fit(X, y, classes=[0, 1])
    assert model.failed_.tolist() == [False, True]
    assert "only from scikit-learn 1.8" in model.errors_[1]


# ---------------------------------------- DataFrames: feature names and column dtypes
def test_feature_names_are_recorded_and_checked_before_training(shared_client, unique_name):
    import dask.dataframe as dd
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    frame = pd.DataFrame(X, columns=list("abcd"))
    reordered = frame[list("dcba")]
    with federated_session(
        shared_client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name, block_size=200, progress=False
    ) as coord:
        coord.fit(frame, y)
        model = coord.global_model()
        assert model.feature_names_in_.tolist() == list("abcd")  # as scikit-learn's own fit(frame, y) sets
        np.testing.assert_array_equal(model.predict(frame), coord.predict(frame))
        before = snapshot(coord)
        order = r"in another order, \['d', 'c', 'b', 'a'\]; expected \['a', 'b', 'c', 'd'\]"
        for use in (coord.predict, coord.decision_function, lambda X: coord.score(X, y), lambda X: coord.fit(X, y)):
            with pytest.raises(ValueError, match=order):
                use(reordered)
        renamed = dd.from_pandas(frame.rename(columns={"d": "e"}), npartitions=2)
        with pytest.raises(ValueError, match=r"unseen at fit time: \['e'\]; missing: \['d'\]"):
            coord.fit(renamed, dd.from_pandas(pd.Series(y), npartitions=2))
        assert_unchanged(coord, before)
        with pytest.raises(ValueError, match="batch 1 of the stream was rejected: X has the model's feature names in another order"):
            coord.fit_stream(iter([(frame[:300], y[:300]), (reordered[300:], y[300:])]))
        assert coord.version > before["version"]  # batch 0 was trained
        with pytest.warns(UserWarning, match="X does not have valid feature names, but SGDClassifier was fitted with feature names"):
            coord.predict(X)


def test_string_columns_are_refused_for_pandas_and_dask_dataframes_alike(trained):
    import dask.dataframe as dd
    import pandas as pd

    coord, X, y = trained
    before = snapshot(coord)
    frame = pd.DataFrame(X[:400])  # integer column names: no feature names, as the model was fitted
    words, numbers = frame.assign(**{"3": 0}), frame.copy()
    words[3], numbers[3] = np.where(frame[3] > 0, "high", "low"), frame[3].map("{:.3f}".format)
    for strings in (words.drop(columns="3"), numbers):
        for X_, y_ in ((strings, y[:400]), (dd.from_pandas(strings, npartitions=2), dd.from_pandas(pd.Series(y[:400]), npartitions=2))):
            with pytest.raises(TypeError, match=r"X has column \[3\] of dtype \w+; expected real numbers"):
                coord.fit(X_, y_)
    assert_unchanged(coord, before)
