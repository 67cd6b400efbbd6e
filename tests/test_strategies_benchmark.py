"""benchmarks/strategies.py without a cluster: its rules, its drifting streams, its goal check (issue 10)."""

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if not (BENCHMARKS / "strategies.py").exists():  # the tests copied away from the source tree (nox -s wheel)
    pytest.skip("the benchmarks are not next to the tests", allow_module_level=True)
sys.path.insert(0, str(BENCHMARKS))

import strategies  # noqa: E402

from fedplugin import Bulyan, FedAvg, MultiKrum  # noqa: E402


def test_rule_set_skips_what_the_cluster_is_too_small_for():
    two = dict(strategies.rule_set(2))
    assert isinstance(two["MultiKrum"], str) and "n=2" in two["MultiKrum"]
    assert isinstance(two["Bulyan"], str) and "n=2" in two["Bulyan"]
    assert two["FedAvg(server_lr=2)"].server_lr == 2.0
    assert two["FedAvg(server_lr=0.9)"].server_lr == 0.9  # the guide's rule on a stream
    four = dict(strategies.rule_set(4))
    multi, bulyan = four["MultiKrum(f=0, m=3)"], four["Bulyan(f=0)"]
    assert isinstance(multi, MultiKrum) and (multi.f, multi.m) == (0, 3)
    assert isinstance(bulyan, Bulyan) and bulyan.f == 0
    assert isinstance(four["FedAvg(server_lr=4)"], FedAvg) and four["FedAvg(server_lr=4)"].server_lr == 4.0


def concept_agreement(X, y, w):
    return float(((X @ w > 0).astype(int) == y).mean())


def test_drifting_streams_end_on_the_flipped_concept():
    abrupt_X, abrupt_y = strategies.drifting_stream("abrupt", 20)
    gradual_X, gradual_y = strategies.drifting_stream("gradual", 20)
    # Both draw the same concept; the first rows of the abrupt stream reveal it.
    w0 = SGDClassifier(random_state=0).fit(abrupt_X[:5000], abrupt_y[:5000]).coef_.ravel()
    half = len(abrupt_y) // 2
    assert concept_agreement(abrupt_X[half:], abrupt_y[half:], w0) < 0.2  # flipped: the mirror of ~0.9
    assert concept_agreement(gradual_X[:1000], gradual_y[:1000], w0) > 0.8  # starts at w0
    assert concept_agreement(gradual_X[-1000:], gradual_y[-1000:], w0) < 0.2  # ends at -w0
    middle = slice(half - 500, half + 500)
    assert 0.3 < concept_agreement(gradual_X[middle], gradual_y[middle], w0) < 0.7  # orthogonal half way
    with pytest.raises(ValueError, match="kind='sudden'"):
        strategies.drifting_stream("sudden", 2)


def test_single_online_scores_each_batch_before_training_on_it():
    X, y = strategies.drifting_stream("abrupt", 4)
    score = strategies.single_online(SGDClassifier(random_state=0), X, y)
    # The first batch is scored by the untrained model (zeros: every row is class 0).
    first = float((y[: strategies.STREAM_BATCH] == 0).mean())
    assert 0 < score < 1 and score != pytest.approx(first)


def runs(*gaps):
    keys = ["abrupt/default", "abrupt/constant", "gradual/default", "gradual/constant"]
    return {key: ({"points_vs_single": gap} if gap is not None else {"error": "boom"}) for key, gap in zip(keys, gaps)}


def test_drift_goal_is_met_within_half_a_point_or_better_with_both_estimators():
    goal = strategies.drift_goal({
        "better": runs(+2.0, +0.1, 0.0, -0.5),
        "abrupt only": runs(-0.4, -0.2, -0.6, +1.0),
        "one estimator": runs(+1.0, -0.51, +1.0, -3.0),
        "failed": runs(None, 0.0, 0.0, 0.0),
        "skipped": {"skipped": "needs more workers"},
    })
    assert goal["met_by"] == {"abrupt": ["better", "abrupt only"], "gradual": ["better", "failed"]}
    assert goal["met_by_on_both_drifts"] == ["better"] and goal["met"]
    assert not strategies.drift_goal({"worse": runs(-1.0, -1.0, -1.0, -1.0)})["met"]


def test_straggler_goal_takes_the_fastest_protocol_within_the_accuracy_goal():
    import stragglers

    def row(speedup, points):
        return {"speedup_vs_sync": speedup, "points_vs_sync": points}

    rows = {"synchronous": row(1.0, 0.0), "no straggler": row(5.0, 0.0), "fast but wrong": row(3.0, -0.8), "quorum": row(2.1, -0.3)}
    assert stragglers.goals(rows) == {"best": "quorum", "speedup": 2.1, "goal_speedup": 1.8, "goal_points": 0.5, "met": True}
    rows["quorum"] = row(1.5, 0.2)
    assert stragglers.goals(rows)["met"] is False
    assert stragglers.delay("X", address="tcp://nowhere:1", seconds=60) == "X"  # not on a worker: no delay
