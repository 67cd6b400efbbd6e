"""The robust rules of issue 10, item 1: Multi-Krum and Bulyan."""

import numpy as np
import pytest

from fedplugin import Bulyan, Mean, MultiKrum
from fedplugin.robust import bulyan, multi_krum


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


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: MultiKrum(f=-1), r"f=-1 must be an int >= 0"),
        (lambda: MultiKrum(f=1, m=0), r"m=0 must be an int >= 1"),
        (lambda: Bulyan(f=True), r"f=True must be an int >= 0"),
    ],
)
def test_bad_settings_are_refused_naming_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()
