"""What a new user gets wrong, refused clearly before anything changes (found by trying the package).

Settings checked at construction, one fit per coordinator at a time, a
coordinator whose stored model was forgotten or whose plugin was registered
again, user policies that return the wrong thing, and messages that name what
the user wrote rather than fedplugin's internals.
"""

import re
import threading
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import SGDClassifier
from sklearn.naive_bayes import GaussianNB

import fedplugin
from fedplugin import Coordinator, EveryNBatches, FederatedEstimator, FederatedModelPlugin, SyncPolicy
from fedplugin.grid import passive_aggressive_grid


@pytest.fixture
def client(shared_client):
    return shared_client


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=2000, n_features=5, random_state=0)


def trained(client, name, data, **options):
    plugin = FederatedModelPlugin(SGDClassifier(random_state=0), classes=[0, 1], name=name)
    fedplugin.register(client, plugin)
    return Coordinator(client, plugin, progress=False, block_size=500, **options).fit(*data)


@pytest.mark.parametrize(
    "setting, error, message",
    [
        ({"worker_timeout": -1}, ValueError, "worker_timeout == -1, must be > 0"),
        ({"checkpoint": 123}, TypeError, "checkpoint=123 is not a path"),
        ({"history_file": 1.5}, TypeError, "history_file=1.5 is not a path"),
        ({"validation_data": np.zeros((50, 5))}, TypeError, r"validation_data=a ndarray is not a pair; expected \(X_val, y_val\)"),
    ],
)
def test_bad_settings_are_refused_at_construction(client, unique_name, setting, error, message):
    with pytest.raises(error, match=message):
        Coordinator(client, unique_name, **setting)  # refused before the plugin is even looked up


def test_a_second_fit_from_another_thread_is_refused_while_one_runs(client, unique_name, data):
    inside, release = threading.Event(), threading.Event()

    def hold(record):
        inside.set()
        assert release.wait(30)

    coord = trained(client, unique_name, data)
    coord.callbacks.append(hold)
    version = coord.version
    errors = []
    thread = threading.Thread(target=lambda: errors.extend(_calling(coord.fit, *data)))
    thread.start()
    try:
        assert inside.wait(30)
        with pytest.raises(RuntimeError, match=f"Coordinator of plugin '{unique_name}' is already training"):
            coord.fit(*data)
        with pytest.raises(RuntimeError, match="already training"):
            coord.fit_stream(iter([data]))
    finally:
        release.set()
        thread.join(60)
    assert errors == [] and coord.version > version
    assert [r.version for r in coord.history] == sorted({r.version for r in coord.history})  # no round twice


def _calling(func, *args):
    try:
        func(*args)
    except Exception as exc:  # surfaced by the test's assertion
        return [exc]
    return []


def test_a_coordinator_whose_model_was_forgotten_starts_anew_with_a_warning(client, unique_name, data):
    coord = trained(client, unique_name, data)
    fedplugin.forget(client, unique_name)
    with pytest.raises(NotFittedError, match="no global model yet"):
        with pytest.warns(UserWarning, match="the cluster holds no stored model"):
            coord.predict(data[0][:3])
    coord.fit(*data)
    assert coord.version == 1 and coord.predict(data[0][:3]).shape == (3,)


def test_another_coordinator_training_the_plugin_is_followed_with_a_warning(client, unique_name, data):
    first = trained(client, unique_name, data)
    second = Coordinator(client, unique_name, progress=False, block_size=500).fit(*data)
    with pytest.warns(UserWarning, match=f"last saw version {first.version}, the cluster holds version {second.version}"):
        first.fit(*data)
    assert first.version == second.version + 1


def test_a_coordinator_whose_plugin_now_trains_another_estimator_says_so(client, unique_name, data):
    coord = trained(client, unique_name, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # register's own warning: the stored model is replaced
        fedplugin.register(client, FederatedModelPlugin(GaussianNB(), classes=[0, 1], name=unique_name))
    with pytest.raises(RuntimeError, match=rf"registered again with a GaussianNB; this coordinator trains a SGDClassifier"):
        coord.fit(*data)


def test_a_coordinator_used_after_its_session_says_the_session_ended(client, data):
    with fedplugin.federated_session(client, SGDClassifier(random_state=0), classes=[0, 1], progress=False) as coord:
        coord.fit(*data)
        expected = coord.predict(data[0][:3])
    np.testing.assert_array_equal(coord.predict(data[0][:3]), expected)  # the copy it holds still predicts
    with pytest.raises(RuntimeError, match="this coordinator's federated_session has ended"):
        coord.fit(*data)


class CountingWrong(SyncPolicy):
    def __init__(self, blocks=None, trigger=None):
        self.blocks, self.trigger = blocks, trigger

    def blocks_per_round(self, n_workers):
        return self.blocks

    def check(self, stats):
        return self.trigger


def test_policies_that_return_the_wrong_thing_fail_the_fit_clearly_and_roll_back(client, unique_name, data):
    coord = trained(client, unique_name, data)
    version = coord.version
    coord.policy = CountingWrong(blocks=0)
    with pytest.raises(ValueError, match=r"CountingWrong.blocks_per_round returned 0; expected an int >= 1 or None"):
        coord.fit(*data)
    coord.policy = CountingWrong(trigger=1)
    with pytest.raises(TypeError, match=r"CountingWrong.check returned 1; expected a trigger name \(str\) or None"):
        coord.fit(*data)
    assert coord.version == version
    coord.policy = EveryNBatches(2)
    assert coord.fit(*data).version > version


def test_federated_estimator_names_no_internal_plugin_name(client, data):
    X, y = data
    model = FederatedEstimator(SGDClassifier(random_state=0), client=client, block_size=500).partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match=r"labels \[2\] not in classes=\[0, 1\]; this FederatedEstimator is fitted already") as info:
        model.partial_fit(X, y + (y == 1))
    assert "fedplugin-session" not in str(info.value)


def test_an_asynchronous_client_is_refused_clearly(client):
    import asyncio

    from distributed import Client

    async def with_async_client():
        async with Client(client.scheduler.address, asynchronous=True, set_as_default=False) as aclient:
            refused = []
            for call in (
                lambda: Coordinator(aclient, FederatedModelPlugin(SGDClassifier(), classes=[0, 1], name="a")),
                lambda: fedplugin.register(aclient, FederatedModelPlugin(SGDClassifier(), classes=[0, 1])),
                lambda: FederatedEstimator(SGDClassifier(), client=aclient).fit([[0.0], [1.0]], [0, 1]),
            ):
                with pytest.raises(TypeError, match=r"is asynchronous, and fedplugin makes blocking calls.*asyncio.to_thread") as info:
                    call()
                refused.append(type(info.value))
            return refused

    # The error came with an AttributeError from deep inside before ("'coroutine' object has no attribute 'items'").
    assert asyncio.run(with_async_client()) == [TypeError] * 3


def test_register_and_grid_refuse_bad_values():
    with pytest.raises(TypeError, match="client=None is not a distributed.Client"):
        fedplugin.register(None, FederatedModelPlugin(SGDClassifier()))
    with pytest.raises(ValueError, match="C == -1, must be > 0"):
        passive_aggressive_grid([0.1, -1])


#: Entry points that raise a fedplugin warning at different depths: (call, what the warning says).
WARNED_BY = {
    "Coordinator.fit": (lambda coord, X, y: coord.fit(X, y), "X does not have valid feature names"),
    "Coordinator.fit_stream": (lambda coord, X, y: coord.fit_stream([(X, y)]), "X does not have valid feature names"),
    "Coordinator.predict": (lambda coord, X, y: coord.predict(X), "X does not have valid feature names"),
    "FederatedEstimator.fit": (  # raised in Coordinator(), inside federated_session's with
        lambda coord, X, y: FederatedEstimator(GaussianNB(), aggregator=fedplugin.Mean(), client=coord.client).fit(X, y),
        r"aggregator=Mean\(\) is ignored",
    ),
}


@pytest.mark.parametrize("entry", sorted(WARNED_BY))
def test_warnings_point_at_the_users_line_not_into_fedplugin(client, unique_name, entry):
    """Each warning's ``filename`` is the caller's (this file), whatever the depth it is raised at."""
    import pandas as pd

    X, y = make_classification(n_samples=40, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    call, message = WARNED_BY[entry]
    with fedplugin.federated_session(client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name, block_size=20, progress=False) as coord:
        coord.fit(pd.DataFrame(X, columns=["a", "b", "c"]), y)
        with pytest.warns(UserWarning, match=message) as caught:
            call(coord, X, y)
    assert {w.filename for w in caught if re.search(message, str(w.message))} == {__file__}
