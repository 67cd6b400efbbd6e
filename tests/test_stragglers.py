"""Rounds that close without their slowest workers (``Coordinator(stragglers=...)``).

A worker made slow by a pipeline step that sleeps on it is late for rounds
that close at a quorum or a deadline: its progress and blocks join a later
round, and every sample is still trained exactly once.
"""

import sys
import time

import cloudpickle
import numpy as np
import pytest
from distributed import get_worker
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from fedplugin import Coordinator, EveryNBatches, FedBuff, Quorum
from fedplugin.adapters import adapter_for
from fedplugin.round_state import RoundState
from fedplugin.session import federated_session
from fedplugin.store import GlobalModel

# The workers are other processes, which cannot import this test module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def sleep_on(X, address, seconds):
    """Identity that sleeps ``seconds`` per call on the worker at ``address`` (a straggler)."""
    try:
        here = get_worker().address
    except ValueError:  # not in a task: predicting in the client
        here = None
    if here == address:
        time.sleep(seconds)
    return X


@pytest.mark.parametrize(
    "value, message",
    [
        ({}, "needs min_workers=, deadline= or both"),
        ({"min_workers": 0}, "min_workers=0 must be an int >= 1 or a fraction"),
        ({"min_workers": 1.5}, "min_workers=1.5 must be"),
        ({"deadline": -1}, "deadline=-1 must be a number of seconds > 0"),
        ({"min_workers": 1, "staleness_exponent": -0.5}, "staleness_exponent=-0.5 must be a number >= 0"),
    ],
)
def test_quorum_refuses_bad_settings_naming_them(value, message):
    with pytest.raises(ValueError, match=message):
        Quorum(**value)


def test_quorum_counts_workers_and_waits_for_its_deadline():
    assert [Quorum(min_workers=0.5).needed(n) for n in (1, 2, 3, 4)] == [1, 1, 2, 2]
    assert Quorum(min_workers=3).needed(2) == 2  # never more than the round has
    with_deadline = Quorum(min_workers=2, deadline=1.0)
    assert not with_deadline.ready(done=2, workers=4, waited=0.5)
    assert with_deadline.ready(done=2, workers=4, waited=1.5)
    assert not with_deadline.ready(done=1, workers=4, waited=9.0)
    assert with_deadline.ready(done=4, workers=4, waited=0.0)  # all done: no need to wait
    assert FedBuff(buffer_size=2).ready(done=2, workers=4, waited=0.0)
    with pytest.raises(ValueError, match="buffer_size=0 must be an int >= 1"):
        FedBuff(buffer_size=0)


def test_coordinator_refuses_stragglers_without_overlap(shared_client, unique_name):
    with federated_session(shared_client, SGDClassifier(), classes=[0, 1], name=unique_name, check_workers=False) as coord:
        with pytest.raises(ValueError, match="needs overlap=True or 'auto'"):
            Coordinator(shared_client, coord.name, stragglers=Quorum(min_workers=1), overlap=False)
        with pytest.raises(TypeError, match="stragglers=2 is not supported; expected None, Quorum"):
            Coordinator(shared_client, coord.name, stragglers=2)


def _model(version, value, late=()):
    return GlobalModel(version, {"coef_": np.array([value]), "intercept_": np.array([0.0])}, 1, late=late)


def _params(value):
    return {"coef_": np.array([value]), "intercept_": np.array([0.0])}


def test_a_late_worker_keeps_its_progress_and_hands_it_to_a_later_round():
    state = RoundState(adapter_for(SGDRegressor()), worker="w")
    state.reset(_model(4, 0.0))
    state.hand_over(4, _params(1.0), 10, {})  # trained 1.0 for round 4, which closed without it:
    state.add_incoming(_model(5, 0.5, late=("w",)))
    update = state.update_for(5)
    assert update["params"]["coef_"].tolist() == [1.5]  # 0.5 + (1 - 0): nothing of it was in version 5
    assert (update["samples"], update["staleness"]) == (10, 1)
    local = state.rebase(_params(2.0))
    assert local["coef_"].tolist() == [2.5]  # the local progress is kept too
    # A task of round 4 that reports after version 5 arrived hands over to round 5.
    state.hand_over(4, _params(3.0), 5, {})
    assert sorted(state.snapshots) == [5] and state.snapshots[5].samples == 15
    assert state.update_for(5)["staleness"] == 1


def test_a_worker_not_late_drops_what_the_new_model_holds():
    state = RoundState(adapter_for(SGDRegressor()), worker="w")
    state.reset(_model(4, 0.0))
    state.hand_over(4, _params(1.0), 10, {})
    state.add_incoming(_model(5, 0.5, late=("other",)))
    assert state.rebase(_params(1.0))["coef_"].tolist() == [0.5]  # its update is in version 5
    assert state.snapshots == {}


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=12_000, n_features=10, n_informative=6, random_state=1)


@pytest.mark.parametrize(
    "stragglers", [Quorum(min_workers=1), Quorum(deadline=0.05), FedBuff(buffer_size=1)], ids=["quorum", "deadline", "fedbuff"]
)
def test_rounds_close_without_a_slow_worker_and_train_every_sample_once(shared_client, data, unique_name, stragglers):
    """GaussianNB is combined exactly: progress dropped or counted twice would change its statistics."""
    X, y = data
    slow = sorted(shared_client.scheduler_info()["workers"])[1]
    estimator = make_pipeline(FunctionTransformer(sleep_on, kw_args={"address": slow, "seconds": 0.15}), GaussianNB())
    with federated_session(
        shared_client, estimator, classes=[0, 1], name=unique_name, check_workers=False,
        sync=EveryNBatches(4), block_size=500, max_task_blocks=1, overlap=True, progress=False, stragglers=stragglers,
    ) as coord:
        coord.fit(X, y, epochs=2)
        history = coord.history
        assert sum(r.samples for r in history) == 2 * len(y)
        assert sum(r.blocks for r in history) == 2 * 24
        late_rounds = [r for r in history if slow in r.late_workers]
        assert late_rounds, [r.late_workers for r in history]
        assert history[-1].late_workers == ()  # the final round waits for every worker
        # The slow worker's progress was not dropped: a later round combined it.
        first_late = late_rounds[0].round
        assert any(slow in r.workers for r in history if r.round > first_late)
        states = coord.worker_states()
        assert sum(s["samples_total"] for s in states.values()) == 2 * len(y)
        assert states[slow]["samples_total"] < len(y)  # the fast worker took more than its half
        for state in states.values():
            assert state["version"] == coord.version
        federated, central = coord.global_model()[-1], GaussianNB().fit(np.vstack([X, X]), np.concatenate([y, y]))
        np.testing.assert_array_equal(federated.class_count_, central.class_count_)
        np.testing.assert_allclose(federated.theta_, central.theta_, rtol=1e-9)
        np.testing.assert_allclose(federated.var_, central.var_, rtol=1e-6)
