"""The reduction tree of a round's pull (issue 9, item 2): partial means combined equal the flat combination."""

import numpy as np
import pytest
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fedplugin import DPFedAvg, EveryNBatches, FedAvg, FedAvgM, Mean, Median, PerParameter, WeightedMean, exchange
from fedplugin.adapters import adapter_for
from fedplugin.aggregation import mean, weighted_mean
from fedplugin.reduction import merged, next_global_from, partial_of, splittable
from fedplugin.rounds import Update, next_global
from fedplugin.session import federated_session
from fedplugin.store import SERVER_STATE, GlobalModel


def _updates(rng):
    """Eleven workers' updates: uneven samples, one not finite (excluded), one empty and not finite (skipped)."""
    updates = [
        Update(f"tcp://w{i:02d}", {"coef_": rng.normal(size=(3, 4)), "intercept_": rng.normal(size=3)},
               samples=int(rng.integers(1, 500)), state={"t_": float(rng.integers(10, 90))})
        for i in range(11)
    ]
    updates[3].params["coef_"][1, 2] = np.nan
    updates[7] = Update("tcp://w07", {"coef_": np.full((3, 4), np.inf), "intercept_": np.zeros(3)}, samples=0)
    updates[9].samples = 0  # finite but trained nothing: weight 0 for WeightedMean, 1 for Mean
    return updates


@pytest.mark.parametrize(
    "rule", [WeightedMean(), Mean(), FedAvgM(server_lr=0.7, momentum=0.9, base=Mean())], ids=["weighted", "mean", "fedavgm"],
)
def test_partials_combined_equal_next_global_of_the_flat_list(rule):
    rng = np.random.default_rng(0)
    adapter = adapter_for(SGDClassifier())
    updates = _updates(rng)
    server = {"rule": "FedAvgM", "u": {"coef_": rng.normal(size=(3, 4)), "intercept_": rng.normal(size=3)}}
    current = GlobalModel(
        5, {"coef_": rng.normal(size=(3, 4)), "intercept_": rng.normal(size=3)}, n_features=4, rounds=5,
        extra={"state": {"t_": 1.0}, SERVER_STATE: server} if isinstance(rule, FedAvgM) else {"state": {"t_": 1.0}},
    )
    weighting = "equal" if isinstance(getattr(rule, "base", rule), Mean) else "samples"
    # A tree of two levels over the sorted workers (groups of 4, then pairs of partials); next_global gets them shuffled.
    shuffled = [updates[i] for i in rng.permutation(len(updates))]
    groups = [partial_of(updates[i : i + 4], weighting) for i in range(0, 11, 4)]
    total = merged([merged(groups[:2]), merged(groups[2:])])
    assert total.count == 9 and total.excluded == ["tcp://w03"]
    assert total.samples == sum(u.samples for u in updates if u.worker not in ("tcp://w03", "tcp://w07"))
    assert "tcp://w07" in total.workers and "tcp://w03" not in total.workers
    tree, excluded = next_global_from(current, total, rule, "count")
    flat, flat_excluded = next_global(current, shuffled, rule, adapter, "count")
    assert excluded == flat_excluded == ["tcp://w03"]
    assert (tree.version, tree.rounds) == (flat.version, flat.rounds) == (6, 6)
    expected_t = np.mean([u.state["t_"] for u in updates if u.state and u.worker != "tcp://w03"])
    assert tree.extra["state"] == flat.extra["state"] == {"t_": expected_t}  # the workers' mean, not the old 1.0
    for name in flat.params:
        np.testing.assert_allclose(tree.params[name], flat.params[name], rtol=0, atol=1e-12)
        assert tree.params[name].dtype == np.float64
    if isinstance(rule, FedAvgM):  # the momentum was stepped from the stored state, the same way
        assert tree.extra[SERVER_STATE]["rule"] == "FedAvgM"
        np.testing.assert_allclose(tree.extra[SERVER_STATE]["u"]["coef_"], flat.extra[SERVER_STATE]["u"]["coef_"], atol=1e-12)
    else:
        assert SERVER_STATE not in tree.extra and SERVER_STATE not in flat.extra


def test_weighted_mean_of_updates_of_no_samples_is_the_plain_mean():
    rng = np.random.default_rng(1)
    updates = [Update(f"tcp://w{i}", {"w": rng.normal(size=5)}, samples=0) for i in range(5)]
    current = GlobalModel(0, {"w": np.zeros(5)}, n_features=5)
    total = merged([partial_of(updates[:2], "samples"), partial_of(updates[2:], "samples")])
    tree, _ = next_global_from(current, total, WeightedMean())
    flat, _ = next_global(current, updates, WeightedMean(), adapter_for(SGDClassifier()))
    np.testing.assert_allclose(tree.params["w"], flat.params["w"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(tree.params["w"], np.mean([u.params["w"] for u in updates], axis=0), atol=1e-12)


def test_huge_parameters_do_not_overflow_in_the_tree():
    """Weighted sums of 1e306 would overflow; means, which travel up, do not (as the flat mean does not)."""
    updates = [Update(f"tcp://w{i}", {"w": np.full(2, 1e306 if i % 2 else 1.7e308)}, samples=1000) for i in range(9)]
    current = GlobalModel(0, {"w": np.zeros(2)}, n_features=2)
    for rule, weighting in ((WeightedMean(), "samples"), (Mean(), "equal")):
        total = merged([partial_of(updates[:4], weighting), partial_of(updates[4:], weighting)])
        tree, _ = next_global_from(current, total, rule)
        flat, _ = next_global(current, updates, rule, adapter_for(SGDClassifier()))
        assert np.isfinite(tree.params["w"]).all()
        np.testing.assert_allclose(tree.params["w"], flat.params["w"], rtol=1e-12)


class Runaway(FedAvg):
    """A server optimizer whose step is not finite."""

    def update(self, delta, state):
        return np.full_like(delta, np.inf), state


def test_a_server_optimizers_step_is_checked_in_the_tree_as_in_the_flat_path():
    rng = np.random.default_rng(2)
    updates = [Update(f"tcp://w{i}", {"coef_": rng.normal(size=(1, 3)), "intercept_": rng.normal(size=1)}, samples=10) for i in range(4)]
    current = GlobalModel(0, {"coef_": np.zeros((1, 3)), "intercept_": np.zeros(1)}, n_features=3)
    rule = Runaway(server_lr=0.5, base=Mean())
    assert splittable(rule, adapter_for(SGDClassifier())) == "equal"
    message = r"aggregator Runaway\(server_lr=0.5, base=Mean\(\)\) returned 'coef_' with 3 non-finite values \(of 3\)"
    with pytest.raises(ValueError, match=message):
        next_global(current, updates, rule, adapter_for(SGDClassifier()))
    with pytest.raises(ValueError, match=message):
        next_global_from(current, merged([partial_of(updates[:2], "equal"), partial_of(updates[2:], "equal")]), rule)


def test_only_plain_means_over_rule_based_families_split():
    sgd = adapter_for(SGDClassifier())

    class HalfMean(Mean):  # a subclass may compute something else
        def __call__(self, updates, weights):
            return {name: value / 2 for name, value in super().__call__(updates, weights).items()}

    assert splittable(WeightedMean(), sgd) == splittable(weighted_mean, sgd) == "samples"
    assert splittable(FedAvgM(base=Mean()), sgd) == splittable(mean, sgd) == "equal"
    assert splittable(Median(), sgd) is splittable(HalfMean(), sgd) is splittable(PerParameter({}, default=Mean()), sgd) is None
    assert splittable(DPFedAvg(noise_multiplier=1.0, clip_norm=1.0), sgd) is None
    assert splittable(WeightedMean(), adapter_for(make_pipeline(StandardScaler(), SGDClassifier()))) is None  # its own aggregate
    assert splittable(WeightedMean(), adapter_for(GaussianNB())) is None  # exact


# ---------------------------------------------------------------------- on a cluster of five workers
@pytest.fixture(scope="module")
def five_workers():
    with LocalCluster(processes=False, n_workers=5, threads_per_worker=1, dashboard_address=":0", worker_dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(5)
        yield client


@pytest.fixture
def calls(monkeypatch):
    """Every ``reduce_group`` call: (worker, members, workers known lost); the fan-in is 2."""
    seen = []
    original = exchange.reduce_group

    async def spy(worker, job, members, reference=None, lost=frozenset()):
        seen.append((worker.address, tuple(members), lost))
        return await original(worker, job, members, reference, lost)

    monkeypatch.setattr(exchange, "reduce_group", spy)
    monkeypatch.setattr(exchange, "FAN_IN", 2)
    return seen


def _fit(client, name, before=None, **options):
    """Train on 1,450 rows in three synchronous rounds of one block per worker (the last one of 50 rows: uneven weights)."""
    X, y = make_classification(n_samples=1450, n_features=8, random_state=0)
    with federated_session(
        client, SGDClassifier(random_state=0), classes=[0, 1], name=name, check_workers=False,
        sync=EveryNBatches(5), block_size=100, overlap=False, progress=False, **options,
    ) as coord:
        if before is not None:
            before()
        model = coord.fit(X, y).global_model()
        return model, list(coord.history)


def _flat_fit(client, name, monkeypatch, **options):
    monkeypatch.setattr(exchange, "FAN_IN", 8)
    try:
        return _fit(client, name, **options)
    finally:
        monkeypatch.setattr(exchange, "FAN_IN", 2)


def test_tree_pull_gives_the_flat_pulls_model(five_workers, unique_name, calls, monkeypatch):
    flat, _ = _flat_fit(five_workers, f"{unique_name}-flat", monkeypatch)
    assert calls == []
    tree, history = _fit(five_workers, f"{unique_name}-tree")
    np.testing.assert_allclose(tree.coef_, flat.coef_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(tree.intercept_, flat.intercept_, rtol=0, atol=1e-9)
    assert sum(r.samples for r in history) == 1450 and len(history) == 3
    assert all(r.n_workers == 5 and r.bytes_up == 5 * (8 + 1) * 8 for r in history)
    # Five sorted workers, fan-in 2: the root sums four (two here, two through a head) and pulls the fifth.
    roots = {address for address, members, _ in calls if len(members) == 5}
    assert len(roots) == 1 and len(calls) == 5 * len(history)
    heads = [(address, members) for address, members, _ in calls if address not in roots]
    assert len(heads) == len(history) and all(members[0] == address and len(members) == 2 for address, members in heads)


def test_a_lost_head_is_not_asked_again_and_only_its_update_is_missing(five_workers, unique_name, calls):
    """A head that answers OSError once, as a lost worker would: its group is reduced without it, its blocks trained again."""
    refused, handed_over = [], []  # (head, round base); (worker, base) of every handover

    def patch_heads():  # after the session's plugin set the handlers up
        for worker in five_workers.cluster.workers.values():
            reduce, handover = worker.handlers["fedplugin_reduce"], worker.handlers["fedplugin_handover"]

            def unreachable_once(reduce=reduce, **kwargs):
                if not refused:
                    refused.append((kwargs["members"][0], exchange.unwrap(kwargs["job"]).base))
                    raise OSError(f"{kwargs['members'][0]} is unreachable")
                return reduce(**kwargs)

            def recorded(handover=handover, address=worker.address, **kwargs):
                handed_over.append((address, kwargs["base"]))
                return handover(**kwargs)

            worker.handlers["fedplugin_reduce"] = unreachable_once
            worker.handlers["fedplugin_handover"] = recorded

    model, history = _fit(five_workers, unique_name, before=patch_heads, aggregator=Mean())
    assert len(refused) == 1
    assert refused[0] not in handed_over, "the lost head was asked again for its update"
    assert any(refused[0][0] in lost for _, _, lost in calls)
    assert history[0].n_workers == 4 and history[0].retrained_blocks == 1
    assert sum(r.samples for r in history) == 1450, "the lost update's blocks were trained again, once"
    assert np.isfinite(model.coef_).all()


def test_robust_rule_pulls_flat(five_workers, unique_name, calls):
    model, history = _fit(five_workers, unique_name, aggregator=Median())
    assert calls == [] and len(history) == 3 and all(r.n_workers == 5 for r in history)
