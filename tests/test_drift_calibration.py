"""The self-calibrating ``DriftThreshold()`` on a real cluster: few rounds, fast reaction to a change."""

import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

from fedplugin import Coordinator, DriftThreshold, FederatedModelPlugin

from conftest import needs_sgd_passive_aggressive

BLOCK = 500


@pytest.fixture
def client(shared_client):
    return shared_client


@pytest.fixture(scope="module")
def stream():
    """64 blocks of one concept, then its labels flipped (another 64 blocks)."""
    X, y = make_classification(n_samples=2 * 64 * BLOCK, n_features=20, n_informative=10, random_state=0)
    X = StandardScaler().fit_transform(X)
    half = len(y) // 2
    y[half:] = 1 - y[half:]
    return X, y, half


def run(client, name, estimator, X, y, half):
    """Two ``partial_fit`` calls, the second on the changed concept.

    Returns the coordinator, the first call's rounds and the global model's
    score on the first concept after them.
    """
    plugin = FederatedModelPlugin(estimator, classes=[0, 1], name=name)
    client.register_plugin(plugin)
    coord = Coordinator(client, plugin, sync=DriftThreshold(), block_size=BLOCK, max_task_blocks=4, progress=False,
        overlap=False,  # rounds that do not depend on how loaded the machine is
    )
    coord.partial_fit(X[:half], y[:half])  # 64 blocks, 32 per worker
    stationary = list(coord.history)
    before = coord.score(X[:half], y[:half])
    coord.partial_fit(X[half:], y[half:])  # the concept changes with the first block of this call
    return coord, stationary, before


@pytest.mark.parametrize(
    "estimator",
    [
        SGDClassifier(learning_rate="constant", eta0=0.01, random_state=0),
        pytest.param(
            SGDClassifier(learning_rate="pa1", random_state=0), marks=needs_sgd_passive_aggressive, id="pa1"
        ),
    ],
    ids=["constant", "pa1"],
)
def test_few_rounds_when_stationary_and_a_round_right_after_a_change(client, unique_name, stream, estimator):
    X, y, half = stream
    coord, stationary, before = run(client, unique_name, estimator, X, y, half)
    assert len(stationary) <= 8, f"far fewer rounds than 64 blocks: {[r.trigger for r in stationary]}"
    assert sum(r.samples for r in stationary) == half
    # only while the model learns from scratch does its drift outgrow the noise
    assert "drift" not in [r.trigger for r in stationary[1:]], [r.trigger for r in stationary]
    first = coord.history[len(stationary)]
    assert first.trigger == "drift", [r.trigger for r in coord.history]
    assert first.samples <= 2 * 3 * BLOCK, "within a few blocks per worker of the change"
    assert sum(r.samples for r in coord.history) == len(y)
    assert coord.score(X[half:], y[half:]) > before - 0.03, "the global model learned the new concept as well"


def test_default_sgd_few_rounds_and_learns_the_new_concept(client, unique_name, stream):
    # With the default "optimal" learning rate, 32 blocks into training the parameters still
    # move per block about as far as a flip of the labels moves them: no drift to tell apart
    # (see DriftThreshold's notes); the count rounds still carry the new concept over.
    X, y, half = stream
    coord, stationary, before = run(client, unique_name, SGDClassifier(random_state=0), X, y, half)
    assert len(stationary) <= 8, f"far fewer rounds than 64 blocks: {[r.trigger for r in stationary]}"
    assert len(coord.history) <= 16
    assert sum(r.samples for r in coord.history) == len(y)
    assert coord.score(X[half:], y[half:]) > before - 0.03
