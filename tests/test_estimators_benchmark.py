"""benchmarks/estimators.py without a cluster: its rows cover every family, its goals, its data (issue 11, item 3)."""

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if not (BENCHMARKS / "estimators.py").exists():  # the tests copied away from the source tree (nox -s wheel)
    pytest.skip("the benchmarks are not next to the tests", allow_module_level=True)
sys.path.insert(0, str(BENCHMARKS))

import estimator_data  # noqa: E402
import estimators  # noqa: E402

from fedplugin.adapters import adapter_for  # noqa: E402


def test_every_partial_fit_estimator_has_a_row_or_a_reason():
    cases = estimators.cases()
    covered = estimators.coverage(cases)
    assert covered["missing"] == []
    assert {"SGDClassifier", "LatentDirichletAllocation", "OneVsOneClassifier", "HashingVectorizer"} <= set(covered["in_table"])
    assert set(estimators.NOT_IN_TABLE) <= set(estimators.partial_fit_classes())
    combined = {case.label: estimators.how_combined(adapter_for(case.build(1000))) for case in cases}
    assert combined["GaussianNB"] == "exact" and combined["MLPRegressor"] == "rule"
    assert combined["OneVsOneClassifier(GaussianNB)"] == "delegated (exact)"
    assert combined[estimators.PIPELINE_LABEL] == "per step: standardscaler exact, sgdclassifier rule"
    assert all(case.metric in estimators.METRICS and case.data in estimator_data.KINDS for case in cases)


def row(label, fed_seconds, single_seconds, fed_score, single_score=0.9):
    r = estimators.Row(label, "rule", "accuracy", 1_000)
    r.federated = {"seconds": [fed_seconds], "score": [fed_score]}
    r.single = {"seconds": [single_seconds], "score": [single_score]}
    return r


@pytest.mark.parametrize(
    "fed_seconds, pipeline_score, unscaled_score, met",
    [
        (1.0, 0.9, 0.6, [True, True, True]),  # 1.6x; level with single-process; 30 points above unscaled
        (1.2, 0.896, 0.8, [False, True, False]),  # 1.33x; -0.4 points; 9.6 points above
        (1.0, 0.894, 0.6, [True, False, True]),  # -0.6 points
        (1.0, 0.95, 0.6, [True, True, True]),  # +5 points better than single-process: met
    ],
)
def test_goals_come_from_ratios_of_the_same_run(fed_seconds, pipeline_score, unscaled_score, met):
    rows = [
        row(estimators.TEXT_LABEL, fed_seconds, 1.6, 0.95, 0.95),
        row(estimators.PIPELINE_LABEL, 1.0, 1.0, pipeline_score),
        row(estimators.UNSCALED_LABEL, 1.0, 1.0, unscaled_score),
    ]
    checks = estimators.goals({r.label: r for r in rows})
    assert [c["met"] for c in checks.values()] == met
    lines = estimators.format_goals(checks).splitlines()
    assert [line.endswith(": MET") for line in lines] == met
    failed = estimators.goals({estimators.TEXT_LABEL: rows[0]})
    assert failed["pipeline_points_vs_single"]["met"] is None and "not run" in estimators.format_goals(failed)


def test_texts_are_learnable_and_blocks_reproducible():
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline

    X, y = estimator_data.make("texts", 0, 2_000)
    again, _ = estimator_data.make("texts", 0, 2_000)
    assert X.dtype == object and list(X[:3]) == list(again[:3]) and np.bincount(y).min() > 300
    model = make_pipeline(HashingVectorizer(n_features=2**16, alternate_sign=False), SGDClassifier(random_state=0))
    case = estimators.Case("texts", lambda n: model, "texts", "accuracy", 2_000, single=estimators.vectorized_block_by_block)
    fitted = estimators.train_single(case, model, estimators.DataSet(None, None, X, y, None, None, 500), np.arange(5))
    assert fitted.named_steps["sgdclassifier"].t_ > 2_000  # every block trained: t_ counts samples
    X_test, y_test = estimator_data.make_test("texts", 99, 300)
    assert fitted.score(X_test, y_test) > 0.4  # chance: 0.2 (5 topics); ~0.97 after 200,000 documents
    with pytest.raises(ValueError, match=r"kind='words' is not a data set"):
        estimator_data.make("words", 0, 10)
