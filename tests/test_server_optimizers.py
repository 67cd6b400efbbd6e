"""Server optimizers and the robust rules of issue 10, item 1.

The optimizers are checked against Reddi et al.'s Algorithm 2 and Hsu et al.'s
FedAvgM, written below coordinate by coordinate with Python floats, over
several rounds of the pure ``next_global``, and on the cluster by replaying
the rounds a recording base rule saw.
"""

import doctest
import math
import pickle
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.naive_bayes import MultinomialNB

from fedplugin import (
    Bulyan, CandidateSet, Coordinator, EveryNBatches, FedAdagrad, FedAdam, FedAvg, FedAvgM, FedYogi, FederatedModelPlugin,
    Mean, MultiKrum, PerParameter, WeightedMean, store,
)
from fedplugin.adapters import adapter_for
from fedplugin.candidate_adapter import PerCandidate
from fedplugin.checkpoint import load_checkpoint, save_checkpoint
from fedplugin.robust import bulyan, multi_krum
from fedplugin.rounds import Update, next_global
from fedplugin.server_optimizers import check_rule_fits
from fedplugin.store import IN_STORE, GlobalModel, ModelStore

# ---------------------------------------------------------------- the papers' equations, one float at a time
HYPER = {  # the settings every comparison uses (not the defaults: they must matter)
    "FedAvg": dict(server_lr=2.0),
    "FedAvgM": dict(server_lr=0.5, momentum=0.9),
    "FedAdagrad": dict(eta=0.3, tau=0.01),
    "FedYogi": dict(eta=0.2, beta_1=0.8, beta_2=0.95, tau=0.01),
    "FedAdam": dict(eta=0.2, beta_1=0.8, beta_2=0.95, tau=0.01),
}
RULES = {"FedAvg": FedAvg, "FedAvgM": FedAvgM, "FedAdagrad": FedAdagrad, "FedYogi": FedYogi, "FedAdam": FedAdam}

#: It restarts workers: not on the cluster other modules share (tests/conftest.py).
OWN_CLUSTER = True


def paper_round(kind, x, delta, s, hp):
    """One round for one coordinate: Hsu et al. (FedAvgM) or Reddi et al. Algorithm 2; ``s`` holds u, m, v."""
    if kind == "FedAvg":
        return x + hp["server_lr"] * delta
    if kind == "FedAvgM":
        s["u"] = hp["momentum"] * s["u"] + delta
        return x + hp["server_lr"] * s["u"]
    b1 = hp.get("beta_1", 0.0)  # Adagrad: no momentum
    s["m"] = b1 * s["m"] + (1 - b1) * delta
    if kind == "FedAdagrad":
        s["v"] = s["v"] + delta**2
    elif kind == "FedYogi":
        s["v"] = s["v"] - (1 - hp["beta_2"]) * delta**2 * math.copysign(1.0, s["v"] - delta**2) * (s["v"] != delta**2)
    else:
        s["v"] = hp["beta_2"] * s["v"] + (1 - hp["beta_2"]) * delta**2
    return x + hp["eta"] * s["m"] / (math.sqrt(s["v"]) + hp["tau"])


class Paper:
    """The global model and state over rounds, coordinate by coordinate, from the equations above."""

    def __init__(self, kind, x0):
        self.kind, self.hp = kind, HYPER[kind]
        self.x = {name: [float(v) for v in np.ravel(value)] for name, value in x0.items()}
        self.shapes = {name: np.shape(value) for name, value in x0.items()}
        tau2 = self.hp.get("tau", 0.0) ** 2  # v_{-1} = tau**2, m_{-1} = 0, u = 0
        self.s = {name: [{"u": 0.0, "m": 0.0, "v": tau2} for _ in xs] for name, xs in self.x.items()}

    def round(self, combined):
        for name, xs in self.x.items():
            target = [float(v) for v in np.ravel(combined[name])]
            for i, x in enumerate(xs):
                xs[i] = paper_round(self.kind, x, target[i] - x, self.s[name][i], self.hp)

    def params(self):
        return {name: np.reshape(xs, self.shapes[name]) for name, xs in self.x.items()}

    def slot(self, slot):
        return {name: np.reshape([s[slot] for s in states], self.shapes[name]) for name, states in self.s.items()}


# ---------------------------------------------------------------- pure: next_global over four rounds
#: Each round: two workers' offsets from the current global model over (coef_[0], coef_[1], intercept_[0]),
#: weighted 300 : 100, so delta = (3a + b) / 4: (.2, 0, .2), (.2, .2, -.2), (.1, .1, .1), (-.3, -.2, 0).
OFFSETS = [
    ([0.4, -0.2, 0.0], [-0.4, 0.6, 0.8]),
    ([0.2, 0.2, -0.4], [0.2, 0.2, 0.4]),
    ([-0.1, 0.3, 0.1], [0.7, -0.5, 0.1]),
    ([-0.3, -0.3, 0.1], [-0.3, 0.1, -0.3]),
]
DELTAS = [[0.2, 0.0, 0.2], [0.2, 0.2, -0.2], [0.1, 0.1, 0.1], [-0.3, -0.2, 0.0]]


def regressor(version=0, coef=(1.0, -2.0), intercept=0.5, extra=None):
    params = {"coef_": np.array(coef, dtype=float), "intercept_": np.array([intercept])}
    return GlobalModel(version, params, 2, None, version, extra or {})


def worker_update(worker, current, offset, samples):
    params = {"coef_": current.params["coef_"] + offset[:2], "intercept_": current.params["intercept_"] + offset[2:]}
    return Update(worker, params, samples)


def run_rounds(rule, current=None, offsets=OFFSETS):
    """Every model next_global makes from ``current`` over ``offsets``."""
    adapter, models = adapter_for(SGDRegressor()), [current or regressor()]
    for a, b in offsets:
        updates = [worker_update("tcp://b", models[-1], np.array(b), 100), worker_update("tcp://a", models[-1], np.array(a), 300)]
        new, excluded = next_global(models[-1], updates, rule, adapter)
        assert excluded == []
        models.append(new)
    return models


@pytest.mark.parametrize("kind", list(RULES))
def test_each_optimizer_follows_the_papers_equations_over_four_rounds(kind):
    models = run_rounds(RULES[kind](**HYPER[kind]))
    paper = Paper(kind, models[0].params)
    for t, model in enumerate(models[1:]):
        expected_delta = np.array(DELTAS[t])
        x = paper.params()
        paper.round({"coef_": x["coef_"] + expected_delta[:2], "intercept_": x["intercept_"] + expected_delta[2:]})
        for name, value in paper.params().items():
            np.testing.assert_allclose(model.params[name], value, rtol=0, atol=1e-12, err_msg=f"{kind} round {t + 1} {name}")
        assert (model.version, model.rounds) == (t + 1, t + 1)
    state = models[-1].extra.get("server", {})
    for slot in {"FedAvg": (), "FedAvgM": ("u",)}.get(kind, ("m", "v")):
        for name, value in paper.slot(slot).items():
            np.testing.assert_allclose(state[slot][name], value, rtol=0, atol=1e-12)
    assert ("server" in models[-1].extra) == (kind != "FedAvg"), "plain FedAvg keeps no state"


def test_fedavgm_by_hand():
    """coef_[0]: deltas .2, .2, .1 with server_lr .5 and momentum .9: u = .2, .38, .442."""
    models = run_rounds(FedAvgM(server_lr=0.5, momentum=0.9), offsets=OFFSETS[:3])
    assert [round(float(m.params["coef_"][0]), 12) for m in models] == [1.0, 1.1, 1.29, 1.511]
    np.testing.assert_allclose(models[-1].extra["server"]["u"]["coef_"][0], 0.442)


def test_fedadam_first_round_by_hand():
    """delta .2: m = .2 * .2 = .04, v = .95 * 1e-4 + .05 * .04 = .002095, step .2 * .04 / (sqrt(v) + .01)."""
    (_, first) = run_rounds(FedAdam(**HYPER["FedAdam"]), offsets=OFFSETS[:1])
    np.testing.assert_allclose(first.params["coef_"][0], 1.0 + 0.2 * 0.04 / (math.sqrt(0.002095) + 0.01))
    np.testing.assert_allclose(first.extra["server"]["v"]["coef_"][0], 0.002095)


def test_the_base_rule_makes_delta():
    """With Mean as base the workers count alike: delta = (a + b) / 2, not (3a + b) / 4."""
    (_, weighted), (_, plain) = run_rounds(FedAvg(2.0), offsets=OFFSETS[:1]), run_rounds(FedAvg(2.0, base=Mean()), offsets=OFFSETS[:1])
    np.testing.assert_allclose(weighted.params["coef_"], [1.0 + 2 * 0.2, -2.0 + 2 * 0.0])
    np.testing.assert_allclose(plain.params["coef_"], [1.0 + 2 * 0.0, -2.0 + 2 * 0.2])


def test_fedavg_with_server_lr_one_is_the_base_rule_bit_for_bit():
    rng = np.random.default_rng(0)
    current = regressor(coef=rng.normal(size=2), intercept=rng.normal())
    offsets = [(rng.normal(size=3), rng.normal(size=3)) for _ in range(3)]
    for a, b in zip(run_rounds(FedAvg(), current, offsets), run_rounds(WeightedMean(), current, offsets)):
        assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def test_the_strategies_page_example_runs():
    page = Path(__file__).resolve().parents[1] / "docs" / "guide" / "strategies.rst"
    result = doctest.testfile(str(page), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8 and result.failed == 0


# ---------------------------------------------------------------- where the state lives
def test_state_starts_afresh_when_it_does_not_fit():
    rule = FedAdam(**HYPER["FedAdam"])
    fresh = run_rounds(rule, offsets=OFFSETS[:1])[1]
    shapes = {"rule": "FedAdam", "m": {"coef_": np.ones(3), "intercept_": np.ones(1)}, "v": {"coef_": np.ones(3), "intercept_": np.ones(1)}}
    other = {"rule": "FedYogi", "m": {"coef_": np.ones(2), "intercept_": np.ones(1)}, "v": {"coef_": np.ones(2), "intercept_": np.ones(1)}}
    for stale in (shapes, other, {"rule": "FedAdam"}):
        model = run_rounds(rule, regressor(extra={"server": stale}), OFFSETS[:1])[1]
        np.testing.assert_array_equal(model.params["coef_"], fresh.params["coef_"])
    fitting = dict(other, rule="FedAdam")  # right rule and shapes: used
    carried = run_rounds(rule, regressor(extra={"server": fitting}), OFFSETS[:1])[1]
    assert not np.array_equal(carried.params["coef_"], fresh.params["coef_"])


def test_a_plain_rule_drops_the_state_and_a_round_without_finite_updates_keeps_it():
    after = run_rounds(FedAvgM(), offsets=OFFSETS[:2])[-1]
    assert "server" not in run_rounds(WeightedMean(), after, OFFSETS[:1])[1].extra
    bad = Update("tcp://a", {"coef_": np.array([np.nan, 0.0]), "intercept_": np.zeros(1)}, 10)
    kept, excluded = next_global(after, [bad], FedAvgM(), adapter_for(SGDRegressor()))
    assert excluded == ["tcp://a"]
    np.testing.assert_array_equal(kept.params["coef_"], after.params["coef_"])
    np.testing.assert_array_equal(kept.extra["server"]["u"]["coef_"], after.extra["server"]["u"]["coef_"])


def test_state_round_trips_through_the_store_and_leaves_pushed_copies():
    model = run_rounds(FedAdam(**HYPER["FedAdam"]), offsets=OFFSETS[:2])[-1]
    plugin = ModelStore()
    plugin.put("m", model.version, model.to_bytes())
    back = GlobalModel.from_bytes(plugin.get("m"))
    for slot in ("m", "v"):
        for name in model.params:
            np.testing.assert_array_equal(back.extra["server"][slot][name], model.extra["server"][slot][name])
    pushed, info = model.for_workers(), model.info()
    assert pushed.extra["server"] == IN_STORE == info.extra["server"] and info.params == {}
    assert pushed.state_in_store and not model.state_in_store
    np.testing.assert_array_equal(pushed.params["coef_"], model.params["coef_"])
    assert pushed.extra["state"] == model.extra["state"]
    with pytest.raises(ValueError, match="without its server optimizer state"):
        run_rounds(FedAdam(), pushed, OFFSETS[:1])
    assert regressor().for_workers().extra == {}, "no state: nothing to leave out"


def test_state_round_trips_through_a_checkpoint(tmp_path):
    rule = FedYogi(**HYPER["FedYogi"])
    model = run_rounds(rule, offsets=OFFSETS[:2])[-1]
    loaded = load_checkpoint(save_checkpoint(tmp_path / "ck", model, [], SGDRegressor())).global_model
    assert loaded.extra["server"]["rule"] == "FedYogi"
    np.testing.assert_array_equal(loaded.extra["server"]["v"]["coef_"], model.extra["server"]["v"]["coef_"])
    resumed, straight = run_rounds(rule, loaded, OFFSETS[2:]), run_rounds(rule, model, OFFSETS[2:])
    np.testing.assert_array_equal(resumed[-1].params["coef_"], straight[-1].params["coef_"])


# ---------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: FedAdam(eta=0), ValueError, r"eta == 0, must be > 0\."),
        (lambda: FedYogi(tau=-1e-3), ValueError, r"tau == -0.001, must be > 0\."),
        (lambda: FedAdam(beta_1=1.0), ValueError, r"beta_1=1.0 is outside \[0, 1\)"),
        (lambda: FedAvgM(momentum=1), ValueError, r"momentum=1 is outside \[0, 1\)"),
        (lambda: FedAvg(server_lr=float("inf")), ValueError, r"server_lr == inf, must be a finite number\."),
        (lambda: FedAvg(server_lr=True), TypeError, r"server_lr must be an instance of float, not bool\."),
        (lambda: FedAdagrad(eta="0.1"), TypeError, r"eta must be an instance of float, not str\."),
        (lambda: MultiKrum(f=-1), ValueError, r"f=-1 must be an int >= 0"),
        (lambda: MultiKrum(f=1, m=0), ValueError, r"m=0 must be an int >= 1"),
        (lambda: Bulyan(f=True), ValueError, r"f=True must be an int >= 0"),
    ],
)
def test_bad_settings_are_refused_naming_the_value(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_server_optimizer_is_not_a_plain_rule():
    with pytest.raises(TypeError, match=r"base=FedAvgM\(.*is a server optimizer"):
        FedAdam(base=FedAvgM())
    with pytest.raises(TypeError, match=r"rules\['coef_'\]=FedAdam\(.*is a server optimizer"):
        PerParameter({"coef_": FedAdam(), "intercept_": Mean()})
    with pytest.raises(TypeError, match="FedAdam moves the global model"):
        FedAdam()([{"w": np.zeros(1)}], [1])


@pytest.mark.parametrize(
    "estimator", [MultinomialNB(), MiniBatchKMeans(2, init=np.zeros((2, 2)), n_init=1)], ids=["naive-bayes", "kmeans"]
)
def test_exact_families_refuse_a_server_optimizer(estimator):
    adapter = adapter_for(estimator)
    name = type(estimator).__name__
    with pytest.raises(ValueError, match=rf"FedAvgM\(.*is a server optimizer, but {name} is combined exactly"):
        check_rule_fits(FedAvgM(), adapter, estimator)
    with pytest.warns(UserWarning, match=f"aggregator=Mean\\(\\) is ignored: {name} is combined exactly"):
        check_rule_fits(Mean(), adapter, estimator)  # plain rules: ignored, as before
    current = GlobalModel(0, {"class_count_": np.zeros(2), "feature_count_": np.zeros((2, 2))}, 2, np.array([0, 1]))
    if name == "MultinomialNB":
        with pytest.raises(ValueError, match="is a server optimizer, which DiscreteNBAdapter refuses"):
            next_global(current, [Update("tcp://a", current.params, 1)], FedAdam(), adapter)


def test_candidate_sets_refuse_a_server_optimizer():
    candidates = CandidateSet([SGDClassifier(eta0=0.1, learning_rate="constant"), SGDClassifier()])
    with pytest.raises(ValueError, match=r"FedAvg\(.*is a server optimizer, but CandidateSet keeps counters"):
        check_rule_fits(FedAvg(2.0), adapter_for(candidates), candidates)
    with pytest.raises(TypeError, match=r"aggregator=FedAdam\(.*is a server optimizer"):
        PerCandidate(FedAdam())  # what FederatedSearch wraps its aggregator in


# ---------------------------------------------------------------- Multi-Krum and Bulyan
def column(*values):
    return [{"w": np.array([v])} for v in values]


def test_multi_krum_by_hand():
    """f=1, n=5: scores sum the n - f - 2 = 2 nearest squared distances.

    0: 1 + 4 = 5; 1: 1 + 1 = 2; 2: 1 + 2.25 = 3.25; 3.5: 2.25 + 6.25 = 8.5; 100: > 9000.
    """
    updates = column(0.0, 1.0, 2.0, 3.5, 100.0)
    assert multi_krum(updates, None, f=1, m=1)["w"].tolist() == [1.0]
    assert multi_krum(updates, None, f=1, m=3)["w"].tolist() == [1.0]  # (0 + 1 + 2) / 3
    assert MultiKrum(f=1)(updates, [1] * 5)["w"].tolist() == [1.625]  # n - f = 4: (0 + 1 + 2 + 3.5) / 4
    with pytest.raises(ValueError, match=r"m=6\) averages more updates than the round has \(n=5\)"):
        multi_krum(updates, None, f=1, m=6)


def test_bulyan_by_hand():
    """n=7, f=1: Krum picks n - 2f = 5 updates one by one, then per coordinate the n - 4f = 3 picked
    values nearest their median are averaged.

    Krum picks (3, 1), (0, 4), (2, 0), then (1, 0) and (4, 10) (once one neighbour counts, the closest
    pair ties and the earlier update goes first), never (11, 0) nor the poisoned (60, -60).
    Coordinate 0: of 0..4 the median is 2, the nearest three 1, 2, 3. Coordinate 1: of 4, 0, 0, 1, 10 the
    median is 1, the nearest three 0, 0, 1.
    """
    rows = [(0, 4), (1, 0), (2, 0), (3, 1), (4, 10), (11, 0), (60, -60)]
    updates = [{"w": np.array(row, dtype=float)} for row in rows]
    np.testing.assert_allclose(Bulyan(f=1)(updates, [1] * 7)["w"], [2.0, 1 / 3])
    assert np.array_equal(bulyan(updates, None, f=1)["w"], Bulyan(f=1)(updates, [5] * 7)["w"]), "weights are ignored"


def test_robust_rules_leave_out_a_poisoned_worker_that_moves_the_mean():
    rng = np.random.default_rng(1)
    honest = [{"coef_": rng.normal(1.0, 0.05, size=4), "intercept_": rng.normal(0.0, 0.05, size=1)} for _ in range(6)]
    poisoned = {"coef_": np.full(4, -30.0), "intercept_": np.array([30.0])}
    updates = honest[:3] + [poisoned] + honest[3:]
    honest_mean = np.mean([u["coef_"] for u in honest], axis=0)
    assert np.abs(Mean()(updates, [1] * 7)["coef_"] - 1.0).max() > 3, "the poison moves the mean"
    np.testing.assert_allclose(MultiKrum(f=1)(updates, [1] * 7)["coef_"], honest_mean)
    for rule in (MultiKrum(f=1, m=2), Bulyan(f=1)):
        result = rule(updates, [1] * 7)
        assert np.abs(result["coef_"] - 1.0).max() < 0.2 and abs(result["intercept_"][0]) < 0.2, rule


@pytest.mark.parametrize(
    "rule, fewest, message",
    [
        (MultiKrum(f=1), 5, r"MultiKrum\(f=1\) needs n > 2f \+ 2 = 4 updates per round; got n=4"),
        (MultiKrum(f=2), 7, r"MultiKrum\(f=2\) needs n > 2f \+ 2 = 6 updates per round; got n=6"),
        (Bulyan(f=1), 7, r"Bulyan\(f=1\) needs n >= 4f \+ 3 = 7 updates per round; got n=6"),
        (Bulyan(f=0), 3, r"Bulyan\(f=0\) needs n >= 4f \+ 3 = 3 updates per round; got n=2"),
    ],
)
def test_too_few_updates_are_refused_naming_n_f_and_the_condition(rule, fewest, message):
    updates = column(*range(fewest))
    rule(updates, [1] * fewest)  # enough
    with pytest.raises(ValueError, match=message):
        rule(updates[:-1], [1] * (fewest - 1))


# ---------------------------------------------------------------- on a cluster
class Recording:
    """A base rule that writes what it combines to ``directory`` (it runs on a worker), in time order."""

    def __init__(self, rule, directory):
        self.rule, self.directory = rule, str(directory)

    def __call__(self, updates, weights):
        with open(f"{self.directory}/{time.time_ns()}-{uuid.uuid4().hex}.pkl", "wb") as file:
            pickle.dump(([dict(u) for u in updates], list(weights)), file)
        return self.rule(updates, weights)

    def calls(self):
        return [pickle.loads(p.read_bytes()) for p in sorted(Path(self.directory).glob("*.pkl"))]


def weighted(updates, weights):
    """FedAvg's combination, written out."""
    w = np.asarray(weights, dtype=float)
    w = np.ones_like(w) if w.sum() == 0 else w
    return {name: sum(wi * u[name] for wi, u in zip(w, updates)) / w.sum() for name in updates[0]}


def start(client, name, estimator=None, **kwargs):
    plugin = FederatedModelPlugin(estimator or SGDClassifier(random_state=0), classes=[0, 1], name=name)
    client.register_plugin(plugin)
    return Coordinator(client, plugin, block_size=1000, sync=EveryNBatches(2), overlap=False, progress=False, **kwargs)


def warm_start(coord, X, y):
    """A known first global model (not zeros), so the replay starts where the cluster does."""
    first = SGDClassifier(random_state=1).partial_fit(X[:500], y[:500], classes=[0, 1])
    coord.set_global_model(first)
    return {"coef_": first.coef_.copy(), "intercept_": first.intercept_.copy()}


def held_server_state(name, dask_worker=None):
    model = dask_worker.plugins[name].global_model
    return None if model is None else model.extra.get("server")


def assert_replayed(coord, paper, kind):
    """The cluster's global model and stored state are the equations' over the recorded rounds."""
    model = coord.global_model()
    np.testing.assert_allclose(model.coef_, paper.params()["coef_"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.intercept_, paper.params()["intercept_"], rtol=1e-10, atol=1e-12)
    state = store.fetch(coord.client, coord.name).extra.get("server", {})
    for slot in {"FedAvg": (), "FedAvgM": ("u",)}.get(kind, ("m", "v")):
        np.testing.assert_allclose(state[slot]["coef_"], paper.slot(slot)["coef_"], rtol=1e-10, atol=1e-12)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", list(RULES))
def test_cluster_fits_follow_the_equations_across_rounds_and_fits(shared_client, classification_data, unique_name, tmp_path, kind):
    X, y = classification_data
    recorder = Recording(WeightedMean(), tmp_path)
    coord = start(shared_client, unique_name, aggregator=RULES[kind](**HYPER[kind], base=recorder))
    paper = Paper(kind, warm_start(coord, X, y))
    coord.fit(X[:8000], y[:8000])
    coord.fit(X[8000:14000], y[8000:14000])  # the second fit starts from the stored state
    calls = recorder.calls()
    assert len(calls) == len(coord.history) >= 6
    for updates, weights in calls:
        paper.round(weighted(updates, weights))
    assert_replayed(coord, paper, kind)
    coord.close()


@pytest.mark.timeout(180)
def test_state_survives_a_worker_restart_and_a_checkpoint(shared_client, classification_data, unique_name, tmp_path):
    X, y = classification_data
    recorder = Recording(WeightedMean(), tmp_path / "calls")
    (tmp_path / "calls").mkdir()
    coord = start(shared_client, unique_name, aggregator=FedAvgM(**HYPER["FedAvgM"], base=recorder))
    paper = Paper("FedAvgM", warm_start(coord, X, y))
    coord.fit(X[:8000], y[:8000])
    saved = store.fetch(shared_client, unique_name)
    assert saved.extra["server"]["rule"] == "FedAvgM"
    path = coord.save(tmp_path / "ck")

    victim = sorted(coord.worker_states())[0]
    shared_client.restart_workers([victim])
    shared_client.wait_for_workers(2)
    states, held = coord.worker_states(), shared_client.run(held_server_state, unique_name)
    restarted = [w for w, s in states.items() if s["restored_at"] is not None]
    assert restarted, "a worker restarted and fetched the model from the store"
    for worker in restarted:  # it holds the full model, state included
        np.testing.assert_array_equal(held[worker]["u"]["coef_"], saved.extra["server"]["u"]["coef_"])
    assert all(isinstance(h, dict) or h == IN_STORE for h in held.values())

    coord.fit(X[8000:14000], y[8000:14000])
    for updates, weights in recorder.calls():
        paper.round(weighted(updates, weights))
    assert_replayed(coord, paper, "FedAvgM")
    loaded = load_checkpoint(path).global_model
    np.testing.assert_array_equal(loaded.extra["server"]["u"]["coef_"], saved.extra["server"]["u"]["coef_"])
    coord.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rule, message", [
    (MultiKrum(f=0), r"MultiKrum\(f=0\) needs n > 2f \+ 2 = 2 updates per round; got n=2"),
    (Bulyan(f=0), r"Bulyan\(f=0\) needs n >= 4f \+ 3 = 3 updates per round; got n=2"),
], ids=["multikrum", "bulyan"])
def test_too_few_workers_fail_the_fit_and_leave_the_global_model(shared_client, classification_data, unique_name, rule, message):
    X, y = classification_data
    coord = start(shared_client, unique_name, aggregator=rule)
    before = warm_start(coord, X, y)
    version = coord.version
    with pytest.raises(ValueError, match=message):
        coord.fit(X[:8000], y[:8000])
    assert coord.version == version == store.fetch_info(shared_client, unique_name).version
    assert coord.history == []
    np.testing.assert_array_equal(coord.global_model().coef_, before["coef_"])
    np.testing.assert_array_equal(store.fetch(shared_client, unique_name).params["coef_"], before["coef_"])
    assert {s["version"] for s in coord.worker_states().values()} == {version}
    coord.close()


@pytest.mark.timeout(60)
def test_the_coordinator_refuses_a_server_optimizer_for_naive_bayes(shared_client, unique_name):
    plugin = FederatedModelPlugin(MultinomialNB(), classes=[0, 1], name=unique_name)
    shared_client.register_plugin(plugin)
    with pytest.raises(ValueError, match=r"FedAdam\(.*is a server optimizer, but MultinomialNB is combined exactly"):
        Coordinator(shared_client, plugin, aggregator=FedAdam())


def hold_pushed_copy(name, dask_worker=None):
    """Make this worker hold the copy of the global model that pushes carry (no server state)."""
    plugin = dask_worker.plugins[name]
    plugin.set_global(plugin.global_model.for_workers())
    return plugin.global_model.state_in_store


@pytest.mark.timeout(120)
def test_a_worker_that_holds_a_pushed_copy_combines_from_the_stored_state(shared_client, classification_data, unique_name, tmp_path):
    X, y = classification_data
    recorder = Recording(WeightedMean(), tmp_path)
    coord = start(shared_client, unique_name, aggregator=FedAdam(**HYPER["FedAdam"], base=recorder))
    paper = Paper("FedAdam", warm_start(coord, X, y))
    coord.fit(X[:6000], y[:6000])
    assert all(shared_client.run(hold_pushed_copy, unique_name).values())
    coord.fit(X[6000:12000], y[6000:12000])  # whichever worker combines fetches the state from the store
    for updates, weights in recorder.calls():
        paper.round(weighted(updates, weights))
    assert_replayed(coord, paper, "FedAdam")
    held = shared_client.run(held_server_state, unique_name).values()
    assert sum(isinstance(h, dict) for h in held) == 1 and sum(h == IN_STORE for h in held) == 1, (
        "the worker that combined the last round keeps the state; the other got a copy without it"
    )
    coord.close()
