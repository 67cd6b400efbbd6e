"""Online use: streams with backpressure, test-then-train scores, labelling on workers."""

import uuid

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier, SGDRegressor

from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin
from fedplugin.checkpoint import load_checkpoint


@pytest.fixture
def client(shared_client):
    """This module's tests share one cluster (~2.5 s saved per test); each
    registers its plugin under a name of its own."""
    return shared_client


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=30_000, n_features=20, n_informative=10, random_state=0)


def coordinator(client, name="online", estimator=None, classes=(0, 1), **kwargs):
    name = f"{name}-{uuid.uuid4().hex[:8]}"  # the cluster is shared: a name of the test's own
    plugin = FederatedModelPlugin(estimator or SGDClassifier(random_state=0), classes=classes, name=name)
    client.register_plugin(plugin)
    return Coordinator(client, plugin, **kwargs)


def batches(X, y, size, seen=None):
    for start in range(0, len(y), size):
        if seen is not None:
            seen.append(start)
        yield X[start:start + size], y[start:start + size]


def test_fit_stream_trains_every_batch_once(client, data):
    X, y = data
    coord = coordinator(client, sync=EveryNBatches(6), block_size=1000)
    coord.fit_stream(batches(X, y, 1000))
    assert sum(r.samples for r in coord.history) == len(X)
    assert [r.trigger for r in coord.history][-1] == "final"
    assert coord.score(X, y) > 0.6


def test_fit_stream_backpressure(client, data):
    """The generator is read lazily: never more than the bound ahead of the global model.

    (Changed with the round engine of issue 9: this used to spy on a private
    method; it now reads the public history from inside the generator.)
    """
    X, y = data
    # overlap=True: rounds in flight while the stream is read, where a leak would show
    coord = coordinator(client, sync=EveryNBatches(4), block_size=500, overlap=True)
    ahead = []

    def stream():
        for start in range(0, len(y), 500):
            combined = coord.history[-1].total_samples if coord.history else 0
            ahead.append(start - combined)  # rows read but not yet in the global model
            yield X[start:start + 500], y[start:start + 500]

    coord.fit_stream(stream(), max_blocks_in_flight=8)
    assert sum(r.samples for r in coord.history) == len(X)
    assert max(ahead) <= 8 * 500
    assert max(ahead) >= 4 * 500, "the bound was never reached: the test would not see a leak"


def test_fit_stream_bad_batch_trains_everything_before_it(client, data):
    X, y = data
    X = X.copy()
    X[12_345, 3] = np.nan  # in batch 12 of 1000 rows
    coord = coordinator(client, sync=EveryNBatches(4), block_size=1000)
    with pytest.raises(ValueError, match="batch 12 of the stream was rejected: .*NaN.*12 batches before it were trained"):
        coord.fit_stream(batches(X, y, 1000))
    assert coord.history[-1].total_samples == 12_000


def test_fit_stream_keeps_what_it_trained_when_the_stream_fails(client, data, tmp_path):
    X, y = data
    log, saved = tmp_path / "rounds.jsonl", tmp_path / "checkpoint"
    coord = coordinator(client, sync=EveryNBatches(4), block_size=1000, history_file=log, checkpoint=saved)

    def failing():
        yield from batches(X[:12_500], y[:12_500], 500)
        raise ConnectionError("broker went away")

    with pytest.raises(ConnectionError, match="broker went away") as caught:
        coord.fit_stream(failing())
    assert caught.value.__notes__ == [
        "fit_stream: the stream raised this after 25 batches (12,500 rows), which were trained: "
        "the global model and history keep them"
    ]
    assert coord.history[-1].total_samples == 12_500 and coord.rounds == len(coord.history) >= 3
    # the stored model, the history file and the checkpoint all keep the stream's rounds
    with Coordinator(client, coord.name, progress=False) as fresh:
        assert fresh.version == coord.version
    assert len(log.read_text().splitlines()) == coord.rounds
    assert load_checkpoint(saved).global_model.version == coord.version


@pytest.mark.parametrize(
    "stream, what",
    [
        (lambda X, y: iter([X[:500], X[500:1000]]), r"a numpy array of shape \(500, 20\)"),
        (lambda X, y: iter([(X[:500], y[:500], None)]), "a tuple of 3 items"),
        (lambda X, y: (X[:500], y[:500]), r"a numpy array of shape \(500, 20\)"),  # one (X, y), not a stream of them
    ],
    ids=["bare arrays", "triples", "one pair"],
)
def test_fit_stream_says_a_batch_is_not_a_pair(client, data, stream, what):
    X, y = data
    coord = coordinator(client)
    with pytest.raises(TypeError, match=rf"batch 0 of the stream was rejected: it is {what}; expected an \(X, y\) pair"):
        coord.fit_stream(stream(X, y))
    assert coord.version == -1


def test_fit_stream_needs_classes_and_data(client, data):
    X, y = data
    coord = coordinator(client, name="no-classes", classes=None)
    with pytest.raises(ValueError, match="fit_stream needs the classes"):
        coord.fit_stream(batches(X, y, 1000))
    coord = coordinator(client, name="empty")
    with pytest.raises(ValueError, match="the stream is empty"):
        coord.fit_stream(iter([]))


def test_test_then_train_scores(client, data):
    X, y = data
    coord = coordinator(client, sync=EveryNBatches(6), block_size=1000, scoring="accuracy")
    coord.fit(X, y)
    scores = [r.metrics["online_score"] for r in coord.history]
    assert all(0 <= s <= 1 for s in scores)
    assert scores[0] < scores[-1], "the model gets better at blocks it has not seen yet"
    # the first block of all is scored by the all-zero model, which predicts the first class
    assert scores[0] < 0.75


def test_scoring_callable_and_bad_name(client, data):
    X, y = data
    seen = []

    def scorer(estimator, X_block, y_block):
        seen.append(len(y_block))
        return 1.0

    coord = coordinator(client, scoring=scorer, block_size=1000)
    coord.fit(X[:4000], y[:4000])
    assert all(r.metrics["online_score"] == 1.0 for r in coord.history)
    with pytest.raises(ValueError, match="not a valid scoring value"):
        coordinator(client, name="bad", scoring="accuracyy")


def test_predict_on_worker_global_and_local(client, data):
    X, y = data
    coord = coordinator(client, block_size=1000)
    coord.fit(X, y)
    np.testing.assert_array_equal(coord.predict(X[:200]), coord.global_model().predict(X[:200]))
    assert coord.predict(X[:1]).shape == (1,)
    assert coord.decision_function(X[:3]).shape == (3,)
    local = coord.predict(X[:200], model="local")
    assert local.shape == (200,) and set(np.unique(local)) <= {0, 1}
    with pytest.raises(ValueError, match="expected \\(n_samples, 20\\)"):
        coord.predict(X[:5, :3])
    with pytest.raises(ValueError, match="model='everyone'"):
        coord.predict(X[:5], model="everyone")
    with pytest.raises(AttributeError, match="has no predict_proba"):
        coord.predict_proba(X[:5])  # hinge loss has no probabilities


def test_local_model_equals_global_after_a_round(client, data):
    X, y = data
    coord = coordinator(client, estimator=SGDRegressor(random_state=0), classes=None, block_size=1000)
    coord.fit(X[:5000], y[:5000].astype(float))
    np.testing.assert_allclose(coord.predict(X[:10], model="local"), coord.predict(X[:10]))


def test_progress_bar_and_logging(client, data, capsys, caplog):
    import logging

    X, y = data
    coord = coordinator(client, name="progress", sync=EveryNBatches(6), block_size=1000, progress=True)
    with caplog.at_level(logging.INFO, logger="fedplugin"):
        coord.fit(X[:12_000], y[:12_000])
    bar = capsys.readouterr().err
    assert "fedplugin progress" in bar and "12.0k/12.0k" in bar and "samples/s" in bar
    assert "round=2" in bar
    assert any("round 2 (final): 6000 samples" in record.getMessage() for record in caplog.records)
    quiet = coordinator(client, name="quiet", progress=False)
    quiet.fit(X[:2000], y[:2000])
    assert "fedplugin quiet" not in capsys.readouterr().err
