"""DP-FedAvg with fixed and adaptive clipping, and its accountant (issue 12, item 1).

The pure rule is checked against hand-computed clipping, the configured noise
and ``dp_accounting`` composing the same events itself; one fit on the
shared 2-worker cluster checks that epsilon reaches the history and the plot.
"""

import sys

import dp_accounting
import numpy as np
import pytest
from dp_accounting import rdp
from sklearn.linear_model import SGDClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler

from fedplugin import DPFedAvg, EveryNBatches, FedAdam, PerParameter, plot_history
from fedplugin.adapters import adapter_for
from fedplugin.checkpoint import load_checkpoint, save_checkpoint
from fedplugin.privacy import clip, epsilon_spent
from fedplugin.rounds import Update, next_global
from fedplugin.server_optimizers import check_rule_fits
from fedplugin.session import federated_session
from fedplugin.store import GlobalModel

TINY = 1e-9  # a noise multiplier whose noise vanishes next to the updates


def offsets_round(rule, current, offsets):
    """One round of ``next_global``: worker ``i``'s parameters are ``current + offsets[i]``."""
    updates = [
        Update(f"tcp://w{i}", {name: current.params[name] + np.asarray(offset[name]) for name in current.params}, samples=10 + i)
        for i, offset in enumerate(offsets)
    ]
    return next_global(current, updates, rule, adapter_for(SGDClassifier()))[0]


def linear(params):
    return GlobalModel(0, {name: np.asarray(value, dtype=float) for name, value in params.items()}, n_features=1, classes=np.array([0, 1]))


def test_each_update_is_clipped_over_all_its_parameters_then_averaged_with_equal_weights():
    assert clip(np.array([3.0, 4.0]), 1.0)[0] == pytest.approx([0.6, 0.8])
    current = linear({"coef_": [[1.0]], "intercept_": [-1.0]})
    # worker 0 moved by (3, 4): norm 5 over both parameters together, clipped to (0.6, 0.8);
    # worker 1 by (0.3, 0.4), inside the bound; the mean ignores the samples (10 and 11)
    new = offsets_round(DPFedAvg(TINY, clip_norm=1.0, seed=0), current,
                        [{"coef_": [[3.0]], "intercept_": [4.0]}, {"coef_": [[0.3]], "intercept_": [0.4]}])
    np.testing.assert_allclose(new.params["coef_"], [[1.0 + 0.45]])
    np.testing.assert_allclose(new.params["intercept_"], [-1.0 + 0.6])
    assert new.extra["server"]["clip_norm"] == 1.0 and new.extra["server"]["events"] == [[1.0, TINY, 1]]


@pytest.mark.parametrize("options, expected", [
    (dict(), 2.0 * 0.5 / 4),  # z * C / n
    # a sampling rate halves the denominator; adaptive clipping raises the update noise for the count's
    (dict(sampling_rate=0.5, adaptive_clipping=True, count_stddev=2.0), (2.0**-2 - 4.0**-2) ** -0.5 * 0.5 / 2),
], ids=["fixed", "sampled-adaptive"])
def test_the_noise_has_the_configured_standard_deviation(options, expected):
    rule = DPFedAvg(2.0, clip_norm=0.5, seed=3, **options)
    current = linear({"coef_": np.zeros((1, 40_000)), "intercept_": [0.0]})
    zero = {"coef_": np.zeros((1, 40_000)), "intercept_": [0.0]}
    noise = offsets_round(rule, current, [zero] * 4).params["coef_"]  # unchanged updates: only noise moves it
    assert abs(noise.mean()) < 0.05 * expected
    assert noise.std() == pytest.approx(expected, rel=0.03)


def test_epsilon_is_what_dp_accounting_composes_for_the_same_events(tmp_path):
    delta, model = 1e-6, linear({"coef_": [[0.0]], "intercept_": [0.0]})
    sampled = DPFedAvg(1.1, sampling_rate=0.5, delta=delta, seed=0)
    for _ in range(3):
        model = offsets_round(sampled, model, [{"coef_": [[0.1]], "intercept_": [0.0]}] * 4)
    # a checkpoint carries the accounting; the resumed fit changes the noise and stops sampling
    model = load_checkpoint(save_checkpoint(tmp_path / "ck", model, [], SGDClassifier())).global_model
    epsilons = []
    for _ in range(2):
        model = offsets_round(DPFedAvg(2.0, delta=delta, seed=1), model, [{"coef_": [[0.1]], "intercept_": [0.0]}] * 4)
        epsilons.append(model.extra["server"]["epsilon"])
    accountant = rdp.RdpAccountant()
    accountant.compose(dp_accounting.PoissonSampledDpEvent(0.5, dp_accounting.GaussianDpEvent(1.1)), 3)
    accountant.compose(dp_accounting.GaussianDpEvent(2.0), 2)
    assert model.extra["server"]["events"] == [[0.5, 1.1, 3], [1.0, 2.0, 2]]
    assert epsilons[-1] == pytest.approx(accountant.get_epsilon(delta), rel=1e-12)
    assert epsilons[0] < epsilons[1]
    # another rule's state is not DPFedAvg's: the accounting starts afresh
    adam = offsets_round(FedAdam(), linear({"coef_": [[0.0]], "intercept_": [0.0]}), [{"coef_": [[0.1]], "intercept_": [0.0]}])
    fresh = offsets_round(DPFedAvg(2.0, delta=delta), adam, [{"coef_": [[0.1]], "intercept_": [0.0]}])
    assert fresh.extra["server"]["events"] == [[1.0, 2.0, 1]]


def test_one_adaptive_step_is_andrew_et_al_geometric_update():
    # norms 0.5, 2, 3, 4 against C = 1: a quarter unclipped, target 0.5 -> C * exp(-0.2 * (0.25 - 0.5))
    rule = DPFedAvg(TINY, clip_norm=1.0, adaptive_clipping=True, target_quantile=0.5, count_stddev=TINY, seed=0)
    offsets = [{"coef_": [[0.6 * k]], "intercept_": [0.8 * k]} for k in (0.5, 2.0, 3.0, 4.0)]
    new = offsets_round(rule, linear({"coef_": [[0.0]], "intercept_": [0.0]}), offsets)
    assert new.extra["server"]["clip_norm"] == pytest.approx(np.exp(0.05), rel=1e-9)


@pytest.mark.parametrize("start", [0.1, 100.0])
def test_adaptive_clipping_moves_the_clip_norm_to_the_target_quantile(start):
    # ten workers whose updates have norms 1, 2, ..., 10: the median lies between 5 and 6
    offsets = [{"coef_": [[0.6 * k]], "intercept_": [0.8 * k]} for k in range(1, 11)]
    rule = DPFedAvg(0.05, clip_norm=start, adaptive_clipping=True, target_quantile=0.5, count_stddev=0.1, seed=0)
    model = linear({"coef_": [[0.0]], "intercept_": [0.0]})
    norms = []
    for _ in range(80):
        model = offsets_round(rule, model, offsets)
        norms.append(model.extra["server"]["clip_norm"])
    assert 4.0 < np.median(norms[-20:]) < 7.0
    assert (norms[0] > start) == (start < 5)  # the first step already heads toward it


def test_bad_settings_and_families_that_cannot_be_noised_are_refused(monkeypatch):
    for options, message in [
        (dict(noise_multiplier=-1.0), r"noise_multiplier == -1.0, must be > 0\."),
        (dict(noise_multiplier=1.0, clip_norm=0), r"clip_norm == 0, must be > 0\."),
        (dict(noise_multiplier=1.0, sampling_rate=1.5), r"sampling_rate=1.5 is outside \(0, 1\]"),
        (dict(noise_multiplier=1.0, delta=1.0), r"delta=1.0 is outside \(0, 1\)"),
        (dict(noise_multiplier=1.0, target_quantile=0.0), r"target_quantile=0.0 is outside \(0, 1\)"),
        (dict(noise_multiplier=1.0, seed=-1), r"seed=-1 must be an int >= 0"),
        (dict(noise_multiplier=2.0, adaptive_clipping=True, count_stddev=1.0), r"count_stddev=1.0 must exceed"),
    ]:
        with pytest.raises(ValueError, match=message):
            DPFedAvg(**options)
    for estimator in (GaussianNB(), StandardScaler()):
        with pytest.raises(ValueError, match=rf"clips and noises weight updates, but {type(estimator).__name__} is combined exactly"):
            check_rule_fits(DPFedAvg(1.0), adapter_for(estimator), estimator)
    with pytest.raises(TypeError, match=r"rules\['coef_'\]=DPFedAvg\(.*is a differentially private rule"):
        PerParameter({"coef_": DPFedAvg(1.0)})
    monkeypatch.setitem(sys.modules, "dp_accounting", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r'pip install "fedplugin\[privacy\]"'):
        DPFedAvg(1.0)


@pytest.mark.timeout(120)
def test_a_federated_fit_records_epsilon_in_its_history_and_plot(shared_client, classification_data, unique_name):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = classification_data
    rule = DPFedAvg(1.0, clip_norm=0.5, seed=0)
    with federated_session(shared_client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name,
                           aggregator=rule, sync=EveryNBatches(3), block_size=500, progress=False) as coord:
        coord.fit(X[:3000], y[:3000])
        first = len(coord.history)
        coord.fit(X[3000:5000], y[3000:5000])  # the store's state carries the accounting on
        epsilons = [r.epsilon for r in coord.history]
        assert first >= 2 and len(epsilons) > first
        assert all(a < b for a, b in zip(epsilons, epsilons[1:]))
        assert epsilons[-1] == pytest.approx(epsilon_spent([[1.0, 1.0, coord.history[-1].round]], rule.delta))
        fig = plot_history(coord.history)
        assert "epsilon spent (privacy)" in [axes.get_ylabel() for axes in fig.axes]
        plt.close(fig)
