"""Change detectors over the test-then-train score, ``OnChange`` rounds and the server's reaction (issue 10, item 4)."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.preprocessing import StandardScaler

from fedplugin import (
    ADWIN, AnyOf, Coordinator, EveryNBatches, EverySeconds, FedAdagrad, FedAvgM, FederatedModelPlugin, OnChange,
    PageHinkley, SyncPolicy, store,
)
from fedplugin.adapters import adapter_for
from fedplugin.rounds import Update, next_global
from fedplugin.session import federated_session
from fedplugin.store import GlobalModel
from fedplugin.sync import LocalStats

BLOCK = 500


def block_scores(accuracies, rows=BLOCK, seed=0):
    """Per-block accuracies of ``rows`` rows each right with probability ``accuracies[i]``."""
    rng = np.random.default_rng(seed)
    return rng.binomial(rows, accuracies) / rows


def first_alarms(detector, scores, rows=BLOCK):
    return [i for i, score in enumerate(scores) if detector.update_block(float(score), rows)]


@pytest.mark.parametrize("make", [PageHinkley, ADWIN], ids=["PageHinkley", "ADWIN"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quiet_while_stationary_and_a_drop_fires_within_two_blocks(make, seed):
    # 200 blocks at 90 % accuracy, then 20 at 75 %: the alarm comes in block 200 or 201, none before
    scores = block_scores(np.r_[np.full(200, 0.9), np.full(20, 0.75)], seed=seed)
    alarms = first_alarms(make(), scores)
    assert alarms and alarms[0] in (200, 201), alarms
    # a rise is no change to look for (direction="down"), unless asked for
    rising = block_scores(np.r_[np.full(100, 0.75), np.full(20, 0.9)], seed=seed)
    assert first_alarms(make(), rising) == []
    assert first_alarms(make(direction="up"), rising)[:1] in ([100], [101])


def test_page_hinkley_and_adwin_agree_with_river():
    drift = pytest.importorskip("river.drift")
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(0.9, 0.02, 300), rng.normal(0.6, 0.02, 50), rng.normal(0.85, 0.02, 300)]
    ours, theirs = PageHinkley(threshold=0.1, delta=0.005, min_values=5), drift.PageHinkley(
        min_instances=5, delta=0.005, threshold=0.1, alpha=1.0, mode="down"
    )
    assert [i for i, x in enumerate(scores) if ours.update(x)] == [
        i for i, x in enumerate(scores) if (theirs.update(x), theirs.drift_detected)[1]
    ]
    # ADWIN over 0/1 errors: river's bound subtracts min_window from each part: a few values later
    errors = np.r_[rng.random(2_000) < 0.1, rng.random(1_000) < 0.4, rng.random(2_000) < 0.05].astype(float)
    ours, theirs = ADWIN(direction="both"), drift.ADWIN(clock=1, grace_period=1)
    mine = [i for i, x in enumerate(errors) if ours.update(x)]
    rivers = [i for i, x in enumerate(errors) if (theirs.update(x), theirs.drift_detected)[1]]
    assert len(mine) == len(rivers) == 2 and all(0 <= b - a <= 5 for a, b in zip(mine, rivers)), (mine, rivers)


def test_bad_settings_and_values_refused():
    with pytest.raises(ValueError, match=r"threshold=0 must be a finite number > 0"):
        PageHinkley(threshold=0)
    with pytest.raises(ValueError, match=r"direction='sideways' is not supported; expected one of \('down', 'up', 'both'\)"):
        ADWIN(direction="sideways")
    with pytest.raises(ValueError, match=r"ADWIN got 1.5; expected values in \[0, 1\]"):
        ADWIN().update(1.5)
    with pytest.raises(TypeError, match=r"detector='ph' is not a ChangeDetector; expected e.g. PageHinkley\(\)"):
        OnChange("ph")


def test_any_of_lets_every_policy_see_every_block():
    class Counting(SyncPolicy):
        def check(self, stats):
            stats.memory["seen"] = stats.memory.get("seen", 0) + 1

    memory = {}
    policy = AnyOf(EverySeconds(1.0), Counting())
    assert policy.check(LocalStats(1, 10, 2.0, memory=memory)) == "time"
    assert memory["seen"] == 1
    assert AnyOf(EveryNBatches(4), OnChange()).needs_score and not AnyOf(EveryNBatches(4)).needs_score


def test_on_change_needs_a_scorer(shared_client, unique_name):
    plugin = FederatedModelPlugin(SGDClassifier(), classes=[0, 1], name=unique_name)
    for sync in (OnChange(), AnyOf(EveryNBatches(8), OnChange(ADWIN()))):
        with pytest.raises(ValueError, match=r"watches the test-then-train score, but scoring=None; expected a scorer"):
            Coordinator(shared_client, plugin, sync=sync)
    assert store.fetch(shared_client, unique_name) is None, "nothing stored"


# ---------------------------------------------------------------- the server's reaction
def regressor_model():
    return GlobalModel(0, {"coef_": np.array([1.0, -2.0]), "intercept_": np.array([0.5])}, 2, None, 0, {})


def rounds(rule, triggers):
    adapter, models = adapter_for(SGDRegressor()), [regressor_model()]
    for t, trigger in enumerate(triggers):
        offset = np.array([0.3, -0.1 * t, 0.2])
        params = {"coef_": models[-1].params["coef_"] + offset[:2], "intercept_": models[-1].params["intercept_"] + offset[2:]}
        models.append(next_global(models[-1], [Update("tcp://a", params, 100)], rule, adapter, trigger=trigger)[0])
    return models


def test_reset_on_change_starts_the_server_state_afresh_in_a_change_round():
    history = ["count", "drift", "count"]
    kept = rounds(FedAvgM(momentum=0.5), history + ["change"])[-1]
    reset = rounds(FedAvgM(momentum=0.5, reset_on_change=True), history + ["change"])[-1]
    other = rounds(FedAvgM(momentum=0.5, reset_on_change=True), history + ["drift"])[-1]
    # after the reset, u is the last delta alone: the model moved by exactly it (server_lr=1)
    before = rounds(FedAvgM(momentum=0.5), history)[-1]
    np.testing.assert_allclose(reset.extra["server"]["u"]["coef_"], reset.params["coef_"] - before.params["coef_"])
    np.testing.assert_allclose(reset.extra["server"]["u"]["coef_"], [0.3, -0.3])
    assert not np.allclose(kept.extra["server"]["u"]["coef_"], [0.3, -0.3]), "without it momentum carries on"
    np.testing.assert_array_equal(other.params["coef_"], kept.params["coef_"])  # only "change" resets
    assert repr(FedAvgM(reset_on_change=True)) == "FedAvgM(server_lr=1.0, momentum=0.9, reset_on_change=True)"
    with pytest.raises(TypeError, match=r"reset_on_change='yes' is not a bool"):
        FedAdagrad(reset_on_change="yes")


def test_a_change_round_right_after_the_change_resets_the_server_state(shared_client, unique_name):
    # 24 blocks of one concept, then 24 with the labels flipped; a round every 8 blocks otherwise
    X, y = make_classification(n_samples=48 * BLOCK, n_features=20, n_informative=10, flip_y=0.05, random_state=0)
    X = StandardScaler().fit_transform(X)
    half = len(y) // 2
    y[half:] = 1 - y[half:]
    states = []
    rule = FedAdagrad(reset_on_change=True)  # beta_1 = 0: m is the round's delta; v = v + delta**2
    options = dict(sync=AnyOf(OnChange(), EveryNBatches(8)), scoring="accuracy", aggregator=rule, block_size=BLOCK)
    with federated_session(
        shared_client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name, check_workers=False, overlap=False,
        progress=False, callbacks=[lambda r: states.append(store.fetch(shared_client, unique_name).extra["server"])], **options,
    ) as coord:
        coord.fit_stream((X[i : i + BLOCK], y[i : i + BLOCK]) for i in range(0, len(y), BLOCK))
        history = list(coord.history)
    triggers = [(r.trigger, r.total_samples) for r in history]
    assert sum(r.samples for r in history) == len(y)
    assert [t for t in triggers if t[1] <= half] == [("count", 4_000), ("count", 8_000), ("count", 12_000)], triggers
    assert triggers[3] == ("change", half + 2 * BLOCK), "each worker's first block of the new concept"

    def afresh(state):  # v = tau**2 + delta**2: the sum of the squared deltas started again
        return all(np.allclose(state["v"][n], rule.tau**2 + state["m"][n] ** 2, rtol=1e-12, atol=0) for n in state["v"])

    assert [afresh(state) for state in states[:4]] == [True, False, False, True]
