"""Counted nouns in messages agree with their number: "1 worker", never "1 workers" (issue 13)."""

import logging
import re

import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans
from sklearn.linear_model import SGDClassifier

from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin
from fedplugin.adapters import adapter_for
from fedplugin.aggregation import weighted_mean
from fedplugin.blocks import check_block, check_numpy
from fedplugin.wording import count

# a number, then a plural noun: "1 workers", "1 rounds", ...
ONE_PLURAL = re.compile(r"(?<![\d.,])1 (workers|rounds|samples|blocks|batches|features|rows|centers|updates|weights)\b")


def test_count():
    assert [count(n, "round") for n in (0, 1, 2)] == ["0 rounds", "1 round", "2 rounds"]
    assert [count(n, "batch") for n in (1, 2)] == ["1 batch", "2 batches"]


@pytest.mark.parametrize(
    "call, expected",
    [
        (lambda: check_numpy(np.zeros((2, 1)), [0, 1], n_features=2, classes=None, is_classifier=True),
         "X has 1 feature; expected 2"),
        (lambda: check_numpy(np.zeros((1, 2)), [0, 1], n_features=None, classes=None, is_classifier=True),
         "X has 1 sample but y has 2"),
        (lambda: check_block(3, np.zeros((1, 2)), np.zeros(2), n_features=2, classes=None),
         "block 3: X has 1 row but y has 2"),
        (lambda: check_block(3, np.zeros((2, 3)), np.zeros(2), n_features=1, classes=None), "expected 1 feature"),
        (lambda: weighted_mean([{"w": np.zeros(1)}], [1.0, 2.0]), "got 2 weights for 1 update"),
        (lambda: adapter_for(MiniBatchKMeans(n_clusters=2, init=np.zeros((1, 3)))).validate(
            MiniBatchKMeans(n_clusters=2, init=np.zeros((1, 3)))), "init has 1 center; expected n_clusters=2"),
    ],
)
def test_errors_about_one_thing_use_the_singular(call, expected):
    with pytest.raises(ValueError) as info:
        call()
    assert expected in str(info.value)
    assert not ONE_PLURAL.search(str(info.value)), str(info.value)


@pytest.fixture(scope="module")
def one_worker_client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with Client(cluster) as client:
            yield client


def test_round_log_and_stream_error_with_one_worker_and_one_batch(one_worker_client, caplog):
    plugin = FederatedModelPlugin(SGDClassifier(random_state=0), classes=[0, 1], name="messages")
    one_worker_client.register_plugin(plugin)
    coord = Coordinator(one_worker_client, plugin, sync=EveryNBatches(1), block_size=1, progress=False)
    X, y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0, 1])
    with caplog.at_level(logging.INFO, logger="fedplugin"):
        coord.fit(X[:1], y[:1])
    rounds = [r.getMessage() for r in caplog.records if r.getMessage().startswith("round ")]
    assert rounds and all(re.search(r": 1 sample from 1 worker$", m) for m in rounds), rounds

    def stream():
        yield X, y
        yield X[:, :1], y  # rejected: 1 feature
    with pytest.raises(ValueError) as info:
        coord.fit_stream(stream())
    message = str(info.value)
    assert message.startswith("batch 1 of the stream was rejected: X has 1 feature; expected 2")
    assert message.endswith("; the batch before it was trained")
    assert not ONE_PLURAL.search(message), message
