"""MultiOutputClassifier and MultiOutputRegressor: a 2-d y, one inner estimator per output."""

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDRegressor
from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor
from sklearn.naive_bayes import GaussianNB

from fedplugin import FederatedModelPlugin, load_checkpoint
from fedplugin.session import federated_session
from fedplugin.sync import EveryNBatches

BLOCK = 100


def data(n=600):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    # Two outputs with other labels each: 2 classes, then 3 (labels 3, 5, 7).
    Y = np.column_stack([(X[:, 0] > 0).astype(int), 3 + 2 * ((X[:, 1] > -0.5).astype(int) + (X[:, 2] > 0.5))])
    targets = X @ np.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]]) + rng.normal(scale=0.1, size=(n, 2))
    return X, Y, targets


def as_input(kind, X, Y):
    if kind == "numpy":
        return X, Y
    return da.from_array(X, chunks=(BLOCK, 3)), da.from_array(Y, chunks=(BLOCK, 1))  # y chunked per column too


@pytest.mark.parametrize("kind", ["numpy", "dask array"])
def test_a_multi_output_classifier_of_an_exact_family_equals_one_fit_on_all_the_data(shared_client, unique_name, kind, tmp_path):
    X, Y, _ = data()
    estimator = MultiOutputClassifier(GaussianNB())
    with federated_session(shared_client, estimator, name=unique_name, sync=EveryNBatches(2), block_size=BLOCK, progress=False) as coord:
        coord.fit(*as_input(kind, X, Y))  # classes found per column
        model = coord.global_model()
        assert sum(r.samples for r in coord.history) == len(X)
        central = MultiOutputClassifier(GaussianNB()).fit(X, Y)
        assert coord.score(*as_input(kind, X, Y)) == pytest.approx(central.score(X, Y))
        probabilities = coord.predict_proba(as_input(kind, X, Y)[0])  # one array per output
        path = coord.save(tmp_path / "ckpt")
    assert type(model) is MultiOutputClassifier
    for ours, theirs in zip(model.estimators_, central.estimators_, strict=True):
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
        np.testing.assert_array_equal(ours.class_count_, theirs.class_count_)
        np.testing.assert_allclose(ours.theta_, theirs.theta_, rtol=1e-9)
        np.testing.assert_allclose(ours.var_, theirs.var_, rtol=1e-9)
    np.testing.assert_array_equal(model.predict(X), central.predict(X))
    for ours, theirs in zip(probabilities, central.predict_proba(X), strict=True):
        np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-9)
    saved = load_checkpoint(path).global_model
    assert saved.n_outputs == 2 and [c.tolist() for c in saved.classes] == [[0, 1], [3, 5, 7]]


@pytest.mark.parametrize("kind", ["numpy", "dask array"])
def test_a_multi_output_regressor_learns_every_output_like_one_process(shared_client, unique_name, kind):
    X, _, targets = data()
    estimator = MultiOutputRegressor(SGDRegressor(random_state=0))
    with federated_session(shared_client, estimator, name=unique_name, sync=EveryNBatches(2), block_size=BLOCK, progress=False) as coord:
        coord.fit(*as_input(kind, X, targets), epochs=3)
        model = coord.global_model()
        assert sum(r.samples for r in coord.history) == 3 * len(X)
        score = coord.score(*as_input(kind, X, targets))
        predictions = coord.predict(as_input(kind, X, targets)[0])
    reference = MultiOutputRegressor(SGDRegressor(random_state=0))
    for _ in range(3):
        for start in range(0, len(X), BLOCK):
            reference.partial_fit(X[start : start + BLOCK], targets[start : start + BLOCK])
    assert type(model) is MultiOutputRegressor and len(model.estimators_) == 2
    assert score == pytest.approx(model.score(X, targets))
    assert score > 0.95 and abs(score - reference.score(X, targets)) < 0.05
    np.testing.assert_allclose(np.asarray(predictions), model.predict(X))


def test_a_stream_and_a_dask_dataframe_train_several_outputs(shared_client, unique_name):
    X, Y, _ = data(400)
    estimator = MultiOutputClassifier(GaussianNB())
    batches = [(pd.DataFrame(X[s : s + 50], columns=["a", "b", "c"]), Y[s : s + 50]) for s in range(0, 200, 50)]
    frame = pd.DataFrame(np.column_stack([X[200:], Y[200:]]), columns=["a", "b", "c", "y0", "y1"])
    frame = dd.from_pandas(frame, npartitions=2)
    with federated_session(shared_client, estimator, classes=[[0, 1], [3, 5, 7]], name=unique_name, block_size=BLOCK, progress=False) as coord:
        coord.fit_stream(iter(batches))
        coord.fit(frame[["a", "b", "c"]], frame[["y0", "y1"]].astype(int))
        model = coord.global_model()
    central = MultiOutputClassifier(GaussianNB()).fit(X, Y)
    for ours, theirs in zip(model.estimators_, central.estimators_, strict=True):
        np.testing.assert_array_equal(ours.class_count_, theirs.class_count_)
        np.testing.assert_allclose(ours.theta_, theirs.theta_, rtol=1e-9)


def test_bad_targets_and_classes_of_several_outputs_are_refused_clearly(shared_client, unique_name):
    X, Y, targets = data(200)
    with pytest.raises(ValueError, match=r"classes=\[0, 1\]: expected one list of labels per output"):
        FederatedModelPlugin(MultiOutputClassifier(GaussianNB()), classes=[0, 1])
    with pytest.raises(ValueError, match=r"classes\[1\]=\[2\] must hold at least two labels"):
        FederatedModelPlugin(MultiOutputClassifier(GaussianNB()), classes=[[0, 1], [2]])
    with federated_session(shared_client, SGDRegressor(), name=unique_name + "-single", progress=False) as coord:
        with pytest.raises(ValueError, match=r"y has shape \(200, 2\): 2 outputs, but fedplugin trains this estimator on one"):
            coord.fit(X, targets)
    with federated_session(shared_client, MultiOutputClassifier(GaussianNB()), classes=[[0, 1], [3, 5]], name=unique_name, progress=False) as coord:
        with pytest.raises(ValueError, match=r"y has shape \(200,\); expected a 2-d array \(n_samples, n_outputs\)"):
            coord.fit(X, Y[:, 0])
        with pytest.raises(ValueError, match=r"y column 1 has labels \[7\] not in classes\[1\]=\[3, 5\]"):
            coord.fit(X, Y)
        with pytest.raises(ValueError, match=r"y has 3 columns; expected 2 outputs"):  # two lists of classes
            coord.fit(X, np.column_stack([np.zeros_like(Y), Y[:, :1]]))
        coord.fit(X, np.column_stack([Y[:, 0], np.where(Y[:, 1] == 7, 5, Y[:, 1])]))
        with pytest.raises(ValueError, match=r"y has 3 columns; expected 2 outputs, one per output of the model"):
            coord.fit(X, np.column_stack([Y, Y[:, :1]]))
        with pytest.raises(ValueError, match=r"block \d+: y column 1 has labels \[7\] not in classes\[1\]=\[3, 5\]"):
            coord.fit(*as_input("dask array", X, Y))


def test_models_stored_before_several_outputs_still_load():
    import io
    import json
    import zipfile

    from fedplugin.checkpoint_format import DOCUMENT, dump, load
    from fedplugin.store import GlobalModel

    old = GlobalModel(3, {"coef_": np.ones(2)}, n_features=2)
    del old.__dict__["n_outputs"]  # what a pickle from an older fedplugin holds
    assert GlobalModel.from_bytes(old.to_bytes()).n_outputs is None
    buffer = io.BytesIO()
    dump({"global_model": GlobalModel(3, {"coef_": np.ones(2)}, n_features=2), "history": [], "estimator": SGDRegressor()}, buffer)
    rewritten = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(rewritten, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == DOCUMENT:  # a format-2 document written before n_outputs existed
                document = json.loads(content)
                del document["global_model"]["n_outputs"]
                content = json.dumps(document).encode()
            target.writestr(item, content)
    loaded = load(io.BytesIO(rewritten.getvalue()), "old checkpoint")["global_model"]
    assert loaded.n_outputs is None and loaded.version == 3
