"""The aggregation rules, checked against results computed by hand."""

import numpy as np
import pytest

from fedplugin import Krum, Mean, Median, PerParameter, TrimmedMean, WeightedMean
from fedplugin.aggregation import as_aggregator, krum, median, trimmed_mean, weighted_mean


def updates_of(*rows):
    return [{"coef_": np.array(r, dtype=float), "intercept_": np.array([r[0]], dtype=float)} for r in rows]


def test_weighted_mean_uses_unequal_weights():
    ups = updates_of([0.0, 10.0], [4.0, 2.0], [8.0, 0.0])
    result = WeightedMean()(ups, [1, 2, 5])
    # (1*0 + 2*4 + 5*8) / 8 = 6 ; (1*10 + 2*2 + 5*0) / 8 = 1.75
    np.testing.assert_allclose(result["coef_"], [6.0, 1.75])
    np.testing.assert_allclose(result["intercept_"], [6.0])


def test_mean_ignores_weights():
    ups = updates_of([0.0, 10.0], [4.0, 2.0], [8.0, 0.0])
    np.testing.assert_allclose(Mean()(ups, [1, 2, 5])["coef_"], [4.0, 4.0])


def test_weighted_mean_all_zero_weights_is_plain_mean():
    ups = updates_of([0.0], [2.0])
    np.testing.assert_allclose(weighted_mean(ups, [0, 0])["coef_"], [1.0])


@pytest.mark.parametrize(
    "rows, expected",
    [
        ([[1.0, 9.0], [3.0, 5.0], [100.0, -7.0]], [3.0, 5.0]),  # odd: the middle value
        ([[1.0, 9.0], [3.0, 5.0], [100.0, -7.0], [5.0, 1.0]], [4.0, 3.0]),  # even: mean of the middle two
    ],
)
def test_median_odd_and_even(rows, expected):
    np.testing.assert_allclose(Median()(updates_of(*rows), [1] * len(rows))["coef_"], expected)


def test_trimmed_mean_drops_extremes():
    rows = [[1.0], [2.0], [3.0], [4.0], [1000.0]]
    # beta=0.2 of 5 workers trims one value at each end: mean(2, 3, 4) = 3
    np.testing.assert_allclose(TrimmedMean(0.2)(updates_of(*rows), [1] * 5)["coef_"], [3.0])
    # beta=0.1 trims floor(0.5) = 0 values: the plain mean
    np.testing.assert_allclose(trimmed_mean(updates_of(*rows), None, beta=0.1)["coef_"], [202.0])


def test_trimmed_mean_even_count():
    rows = [[-50.0], [1.0], [3.0], [50.0]]
    np.testing.assert_allclose(TrimmedMean(0.25)(updates_of(*rows), [1] * 4)["coef_"], [2.0])


@pytest.mark.parametrize("beta", [-0.1, 0.5, 0.7, "0.1"])
def test_trimmed_mean_refuses_bad_beta(beta):
    with pytest.raises(ValueError, match=r"beta=.*outside \[0, 0.5\)"):
        TrimmedMean(beta)


def test_krum_picks_the_central_update():
    rows = [[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [50.0, -50.0]]
    result = Krum(n_byzantine=1)(updates_of(*rows), [1, 1, 1, 1])
    assert result["coef_"].tolist() in ([0.0, 0.0], [0.1, 0.0], [0.0, 0.1])
    np.testing.assert_allclose(krum(updates_of(*rows), None, n_byzantine=1)["coef_"], [0.0, 0.0])


def test_per_parameter_rules():
    ups = updates_of([1.0], [2.0], [30.0])
    rule = as_aggregator({"coef_": Median(), "intercept_": Mean()})
    result = rule(ups, [1, 1, 1])
    np.testing.assert_allclose(result["coef_"], [2.0])
    np.testing.assert_allclose(result["intercept_"], [11.0])


def test_per_parameter_names_must_match():
    with pytest.raises(ValueError, match="names without a rule \\['intercept_'\\]"):
        PerParameter({"coef_": Median()}).check_names(["coef_", "intercept_"])
    with pytest.raises(ValueError, match="unknown names \\['weights'\\]"):
        PerParameter({"weights": Median()}, default=Mean()).check_names(["coef_"])
    PerParameter({"coef_": Median()}, default=Mean()).check_names(["coef_", "intercept_"])


def test_user_callable_is_an_aggregator():
    def first(updates, weights):
        return dict(updates[0])

    assert as_aggregator(first) is first


@pytest.mark.parametrize("bad", [42, "mean", WeightedMean])
def test_as_aggregator_refuses_non_rules(bad):
    with pytest.raises(TypeError, match="aggregator="):
        as_aggregator(bad)


def test_rules_refuse_mismatched_weights_and_empty_input():
    with pytest.raises(ValueError, match="one weight per update"):
        weighted_mean(updates_of([1.0], [2.0]), [1.0])
    with pytest.raises(ValueError, match="zero updates"):
        median([], [])
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        weighted_mean(updates_of([1.0], [2.0]), [1.0, -1.0])
