"""benchmarks/compression.py without a cluster: its wide data set and its goal check (issue 12)."""

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if not (BENCHMARKS / "compression.py").exists():  # the tests copied away from the source tree (nox -s wheel)
    pytest.skip("the benchmarks are not next to the tests", allow_module_level=True)
sys.path.insert(0, str(BENCHMARKS))

import compression  # noqa: E402


def test_wide_data_has_forty_words_a_row_and_holds_out_a_tenth():
    (X, y), (X_test, y_test) = compression.wide_data(3_000)
    assert X.shape == (2_000, 10_000) and X_test.shape == (1_000, 10_000)  # whole blocks of 1,000 rows for training
    assert np.all(np.asarray(X.sum(axis=1)).ravel() == 40) and set(np.unique(y)) <= set(range(100))


def run(ratio, points):
    return {"ratio": ratio, "points": points}


def test_goals_need_both_the_bytes_and_the_accuracy():
    goals = compression.goals({"int8": run(8.0, -0.05), "top-1% (error feedback)": run(66.7, -0.6)})
    assert [g["met"] for g in goals] == [True, False]
    goals = compression.goals({"int8": run(3.8, 0.3), "top-1% (error feedback)": run(30.0, 0.2)})
    assert [g["met"] for g in goals] == [False, True]
