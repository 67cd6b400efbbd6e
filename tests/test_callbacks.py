"""Callbacks after every round, and early stopping with scikit-learn's names (issue 12, item 5)."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier

from fedplugin import Coordinator, EarlyStopping, EveryNBatches, FederatedModelPlugin


@pytest.fixture
def client(shared_client):
    return shared_client


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=30_000, n_features=10, n_informative=5, class_sep=2.0, random_state=0)
    return X[:24_000], y[:24_000], X[24_000:], y[24_000:]


def coordinator(client, name, **options):
    plugin = FederatedModelPlugin(SGDClassifier(random_state=0), classes=[0, 1], name=name)
    client.register_plugin(plugin)
    options = {"sync": EveryNBatches(2), "block_size": 500, "progress": False, "overlap": False, **options}
    return Coordinator(client, plugin, **options)


def test_callbacks_get_every_round_record(client, unique_name, data):
    X, y, _, _ = data
    seen = []
    coord = coordinator(client, unique_name, callbacks=[seen.append])
    coord.fit(X[:6_000], y[:6_000])
    assert seen == list(coord.history) and len(seen) == 6


def test_a_failing_callback_fails_the_fit_and_rolls_it_back(client, unique_name, data):
    X, y, _, _ = data
    coord = coordinator(client, unique_name)
    coord.fit(X[:2_000], y[:2_000])
    version, history, coef = coord.version, list(coord.history), coord.global_model().coef_.copy()

    start = coord.rounds

    def broken(record):
        if record.round == start + 2:
            raise ConnectionError("the tracking server is down")

    coord.callbacks.append(broken)
    with pytest.raises(ConnectionError, match="tracking server"):
        coord.fit(X[:6_000], y[:6_000])
    assert coord.version == version and list(coord.history) == history
    np.testing.assert_array_equal(coord.global_model().coef_, coef)


def test_early_stopping_on_a_validation_score(client, unique_name, data):
    X, y, X_val, y_val = data
    coord = coordinator(
        client, unique_name, early_stopping=True, n_iter_no_change=3, tol=0.01, validation_data=(X_val, y_val)
    )
    coord.fit(X, y, epochs=3)  # 144 blocks: the score settles long before
    scores = [r.metrics["validation_score"] for r in coord.history]
    assert coord.history[-1].total_samples < 3 * len(X), "stopped before the end"
    # The rule held when it fired, and not before.
    stopping = EarlyStopping(3, 0.01, monitor="validation_score")
    fired = []
    for record in coord.history:
        stopping(record)
        fired.append(stopping.stop)
    first = fired.index(True)
    assert len(scores) - 1 - first <= 2, "at most the rounds already running finish after the stop"
    assert scores[first] <= max(scores[: first + 1 - 3]) + 0.01
    assert coord.score(X_val, y_val) > 0.85


def test_early_stopping_on_the_online_score_stops_reading_a_stream(client, unique_name, data):
    X, y, _, _ = data
    read = []

    def batches():
        for start in range(0, len(y), 500):
            read.append(start)
            yield X[start:start + 500], y[start:start + 500]

    coord = coordinator(client, unique_name, scoring="accuracy", early_stopping=True, n_iter_no_change=2, tol=0.05)
    coord.fit_stream(batches())
    assert len(read) < len(y) // 500, "the rest of the stream was not read"
    assert sum(r.samples for r in coord.history) <= len(read) * 500


def test_callbacks_and_early_stopping_are_checked(client, unique_name):
    with pytest.raises(ValueError, match="early_stopping=True needs a score to watch"):
        coordinator(client, unique_name, early_stopping=True)
    with pytest.raises(TypeError, match="callbacks=<built-in function print> must be a list of callables"):
        coordinator(client, unique_name, callbacks=print)
    with pytest.raises(TypeError, match="callbacks holds 3, which is not callable"):
        coordinator(client, unique_name, callbacks=[3])
    with pytest.raises(ValueError, match="n_iter_no_change == 0, must be >= 1."):
        coordinator(client, unique_name, early_stopping=True, scoring="accuracy", n_iter_no_change=0)


def test_early_stopping_watches_each_fit_afresh_and_only_early_stopping_stops(client, unique_name, data):
    X, y, X_val, y_val = data

    class Timer:  # a user's callback with a ``stop`` method: not an early stop
        def __call__(self, record):
            pass

        def stop(self):
            pass

    coord = coordinator(
        client, unique_name, callbacks=[Timer()], early_stopping=True, n_iter_no_change=3, tol=0.01,
        validation_data=(X_val, y_val),
    )
    coord.fit(X, y, epochs=3)
    first = len(coord.history)
    coord.fit(X, y, epochs=3)  # a settled model: stops again, after n_iter_no_change rounds, not after one
    assert len(coord.history) - first >= 3


def test_worker_sample_sizes():
    from fedplugin import WorkerSample

    assert WorkerSample(0.07).size(100) == 7  # 0.07 * 100 == 7.000000000000001
    assert WorkerSample(np.float32(0.5)).size(3) == 2
    assert [WorkerSample(3).size(n) for n in (1, 3, 10)] == [1, 3, 3]
