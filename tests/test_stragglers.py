"""Rounds that close without their slowest workers (``Coordinator(stragglers=...)``).

A worker made slow by a pipeline step that sleeps on it is late for rounds
that close at a quorum or a deadline: its progress and blocks join a later
round, and every sample is still trained exactly once.
"""

import sys
import time
from types import SimpleNamespace

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
from fedplugin.late_rounds import LateRoundsMixin
from fedplugin.open_rounds import OpenRound
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
        ({"min_workers": 1, "staleness_exponent": -0.5}, "staleness_exponent == -0.5, must be >= 0."),
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
    with pytest.raises(ValueError, match="buffer_size == 0, must be >= 1."):
        FedBuff(buffer_size=0)
    with pytest.raises(TypeError, match="buffer_size must be an instance of int, not bool."):
        FedBuff(buffer_size=True)


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
    local = state.rebase(_params(2.0))
    assert local["coef_"].tolist() == [2.5]  # 0.5 + (2 - 0): nothing of it was in version 5
    assert sorted(state.snapshots) == [5] and state.snapshots[5].params["coef_"].tolist() == [1.5]
    # A task of round 4 that reports after version 5 arrived hands over to round 5.
    state.hand_over(4, _params(3.0), 5, {})
    assert sorted(state.snapshots) == [5] and state.snapshots[5].samples == 15
    update = state.update_for(5)
    assert update["params"]["coef_"].tolist() == [3.0]
    assert (update["samples"], update["staleness"]) == (15, 1)


def test_a_late_update_is_rebased_onto_the_models_that_arrived_before_it_is_pulled():
    state = RoundState(adapter_for(SGDRegressor()), worker="w")
    state.reset(_model(4, 0.0))
    state.hand_over(4, _params(1.0), 10, {})
    state.add_incoming(_model(5, 0.5, late=("w",)))  # not merged yet when round 5 pulls it
    update = state.update_for(5)
    assert update["params"]["coef_"].tolist() == [1.5]
    assert (update["samples"], update["staleness"]) == (10, 1)


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
    estimator = make_pipeline(FunctionTransformer(sleep_on, kw_args={"address": slow, "seconds": 0.1}), GaussianNB())
    with federated_session(
        shared_client, estimator, classes=[0, 1], name=unique_name, check_workers=False,
        sync=EveryNBatches(4), block_size=500, max_task_blocks=1, overlap=True, progress=False, stragglers=stragglers,
    ) as coord:
        coord.fit(X, y)
        history = coord.history
        assert sum(r.samples for r in history) == len(y)
        assert sum(r.blocks for r in history) == 24
        late_rounds = [r for r in history if slow in r.late_workers]
        assert late_rounds, [r.late_workers for r in history]
        assert history[-1].late_workers == ()  # the final round waits for every worker
        # The slow worker's progress was not dropped: a later round combined it.
        first_late = late_rounds[0].round
        assert any(slow in r.workers for r in history if r.round > first_late)
        states = coord.worker_states()
        assert sum(s["samples_total"] for s in states.values()) == len(y)
        assert states[slow]["samples_total"] < len(y) / 2  # the fast worker took more than its half
        for state in states.values():
            assert state["version"] == coord.version
        federated, central = coord.global_model()[-1], GaussianNB().fit(X, y)
        np.testing.assert_array_equal(federated.class_count_, central.class_count_)
        np.testing.assert_allclose(federated.theta_, central.theta_, rtol=1e-9)
        np.testing.assert_allclose(federated.var_, central.var_, rtol=1e-6)


def test_a_hand_over_after_its_round_was_pulled_goes_to_the_next_round():
    state = RoundState(adapter_for(SGDRegressor()), worker="w")
    state.reset(_model(4, 0.0))
    state.hand_over(4, _params(1.0), 10, {})
    assert state.update_for(4)["params"]["coef_"].tolist() == [1.0]  # pulled: round 4 holds 1.0
    state.hand_over(4, _params(3.0), 5, {})  # a task that reported after the pull
    assert sorted(state.snapshots) == [4, 5]
    state.add_incoming(_model(5, 0.5))  # round 4 combined with the pulled 1.0
    update = state.update_for(5)
    assert update["params"]["coef_"].tolist() == [2.5]  # 0.5 + (3 - 1): only what was not pulled
    assert (update["samples"], update["staleness"]) == (5, 1)


class _Engine(LateRoundsMixin):
    """The mixin's state, without a cluster."""

    def __init__(self, stragglers):
        self.coord = SimpleNamespace(stragglers=stragglers, stop_requests=[])
        self.coord._request_stop = lambda token, workers: self.coord.stop_requests.append((token, sorted(workers)))
        self.rounds = [OpenRound(base=7, token="new", start=0.0, shares={}, counted=True)]
        self.inflight, self.carried, self.head_since, self.closing = {}, {}, {}, None
        self.futures = SimpleNamespace(has_ready=lambda: False, is_empty=lambda: False)


def test_a_deadline_that_passes_while_a_round_is_combined_fires_once_the_combining_is_done():
    engine = _Engine(Quorum(deadline=1e-9))
    polls = []
    engine.closing = SimpleNamespace(future=SimpleNamespace(done=lambda: polls.append(1) or len(polls) > 3))
    assert next(engine._reports()) is None  # a deadline tick...
    assert len(polls) == 4  # ...only once the round being combined was done
    assert engine.head_since[7] == float("-inf")


def test_stop_requests_name_the_token_a_moved_task_was_launched_with():
    engine = _Engine(Quorum(min_workers=1))
    rnd = engine.rounds[0]
    engine.inflight = {"f1": (rnd, "fast", []), "f2": (rnd, "slow", []), "f3": (rnd, "slow", [])}
    engine.carried = {"f2": "old", "f3": "old"}
    engine._stop_tasks_of(rnd)
    assert sorted(engine.coord.stop_requests) == [("new", ["fast"]), ("old", ["slow", "slow"])]
