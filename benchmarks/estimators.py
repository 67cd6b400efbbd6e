"""Every federated estimator family against single-process ``partial_fit``: score and samples/s.

Run ``.venv/bin/python benchmarks/estimators.py`` (``--quick`` for a smoke run).
One row per estimator class of ``sklearn.utils.all_estimators()`` that has
``partial_fit`` and that fedplugin federates, plus the pipeline cases, each on
a synthetic data set suited to it (``estimator_data.py``). Every row trains
the same blocks twice, one pass each:

* **federated**: ``coord.fit`` on dask collections persisted on a
  ``LocalCluster(n_workers=2, threads_per_worker=1)`` (worker processes),
  ``EveryNBatches(8)``, the default rule; timed from the ``fit`` call to its
  return, after a warm-up fit of the same estimator in a session of its own;
* **single-process**: ``partial_fit`` over the same blocks, in order, on numpy
  copies in the benchmark's process; only the loop is timed, after a warm-up
  call on a throwaway copy.

Two rows carry the issue's goals (11, item 3), checked on ratios measured in
the same run: texts through ``HashingVectorizer`` + ``SGDClassifier`` train at
>= 1.5x single-process (vectorizing included on both sides), and on features
whose scales span six orders of magnitude the federated ``StandardScaler`` +
``SGDClassifier`` pipeline is within 0.5 points of a single-process scaler and
classifier trained block by block, and far (>= 10 points) above the unscaled
federated classifier. A table goes to stdout, everything measured to
``benchmarks/results/estimators.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client, LocalCluster, wait
from sklearn.base import clone
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import estimator_data  # noqa: E402
import throughput  # noqa: E402

from fedplugin import EveryNBatches  # noqa: E402
from fedplugin.adapters import (  # noqa: E402
    MultiOutputRegressorAdapter, OneVsOneAdapter, OneVsRestAdapter, PipelineAdapter, SelectFromModelAdapter, adapter_for,
)
from fedplugin.session import federated_session  # noqa: E402

N_WORKERS = 2
SYNC_EVERY = 8
TEST_ROWS = 10_000
GOAL_TEXT_SPEEDUP = 1.5
GOAL_PIPELINE_POINTS = 0.5
GOAL_ABOVE_UNSCALED_POINTS = 10.0
TEXT_LABEL = "Pipeline(HashingVectorizer, SGDClassifier)"
PIPELINE_LABEL = "Pipeline(StandardScaler, SGDClassifier)"
UNSCALED_LABEL = "SGDClassifier, unscaled"
#: partial_fit estimators that have no row, and why.
NOT_IN_TABLE = {
    "MultiOutputClassifier": "no row yet (tests/test_multi_output.py checks it equals one fit on all the data)",
}


# ------------------------------------------------------------------------ scores
def _reconstruction_error(model: Any, X: np.ndarray, y: Any, train: Any) -> float:
    return float(np.linalg.norm(X - model.inverse_transform(model.transform(X))) / np.linalg.norm(X))


def _scaler_error(model: Any, X: np.ndarray, y: Any, train: Any) -> float:
    exact = clone(model).fit(train)  # one fit on all the training data
    return float(np.max(np.abs(model.transform(X) - exact.transform(X))))


def _ari(model: Any, X: np.ndarray, y: np.ndarray, train: Any) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(y, model.predict(X)))


def _auc(model: Any, X: np.ndarray, y: np.ndarray, train: Any) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, model.decision_function(X)))


#: metric name -> (score(model, X_test, y_test, X_train), True when higher is better)
METRICS: dict[str, tuple[Callable[..., float], bool]] = {
    "accuracy": (lambda m, X, y, t: float(m.score(X, y)), True),
    "R²": (lambda m, X, y, t: float(m.score(X, y)), True),
    "accuracy of estimator_": (lambda m, X, y, t: float(m.estimator_.score(X, y)), True),
    "adjusted Rand index": (_ari, True),
    "ROC AUC (outliers)": (_auc, True),
    "pseudo-likelihood": (lambda m, X, y, t: float(m.score_samples(X).mean()), True),
    "perplexity": (lambda m, X, y, t: float(m.perplexity(X)), False),
    "relative reconstruction error": (_reconstruction_error, False),
    "max error vs one fit on all": (_scaler_error, False),
}


# ------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One row: an estimator (built from the number of training rows), its data set and metric."""

    label: str
    build: Callable[[int], Any]
    data: str
    metric: str
    rows: int
    block: int = 4096
    single: Callable[..., Any] | None = None  # own single-process training (pipelines), else partial_fit
    note: str = ""

    def n_rows(self, quick: bool) -> int:
        """Training rows: a multiple of the block size, a tenth with ``quick`` (at least 4 blocks)."""
        rows = self.rows // 10 if quick else self.rows
        return max(4, rows // self.block) * self.block


def scaled_block_by_block(estimator: Any, blocks: list[tuple[Any, Any]], classes: Any) -> Any:
    """One process: ``scaler.partial_fit`` then the classifier on each scaled block."""
    scaler, clf = (clone(step) for _, step in estimator.steps)
    for X, y in blocks:
        scaler.partial_fit(X)
        clf.partial_fit(scaler.transform(X), y, classes=classes)
    estimator.steps = [(estimator.steps[0][0], scaler), (estimator.steps[1][0], clf)]
    return estimator


def vectorized_block_by_block(estimator: Any, blocks: list[tuple[Any, Any]], classes: Any) -> Any:
    """One process: vectorize each block of texts, then ``partial_fit`` on it."""
    vectorizer, clf = (step for _, step in estimator.steps)
    for X, y in blocks:
        clf.partial_fit(vectorizer.transform(X), y, classes=classes)
    return estimator


def cases() -> list[Case]:
    """The rows, in table order."""
    from sklearn.cluster import Birch, MiniBatchKMeans
    from sklearn.decomposition import IncrementalPCA, LatentDirichletAllocation, MiniBatchDictionaryLearning, MiniBatchNMF
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.feature_selection import SelectFromModel
    from sklearn.linear_model import (
        PassiveAggressiveClassifier, PassiveAggressiveRegressor, Perceptron, SGDClassifier, SGDOneClassSVM, SGDRegressor,
    )
    from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.naive_bayes import BernoulliNB, CategoricalNB, ComplementNB, GaussianNB, MultinomialNB
    from sklearn.neural_network import BernoulliRBM, MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

    def deprecated(cls: type) -> Callable[[int], Any]:
        def build(n: int) -> Any:
            with warnings.catch_warnings():  # scikit-learn 1.8 deprecated the passive-aggressive models
                warnings.simplefilter("ignore", FutureWarning)
                return cls(random_state=0)
        return build

    atoms = estimator_data.make("atoms", 2**30, estimator_data.N_COMPONENTS)[0]  # dict_init: rows of no block
    k, c = estimator_data.N_CLUSTERS, estimator_data.N_COMPONENTS
    sgd = lambda: SGDClassifier(random_state=0)  # noqa: E731
    mlp = dict(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
    text = lambda n: make_pipeline(HashingVectorizer(n_features=2**18, alternate_sign=False), sgd())  # noqa: E731
    return [
        Case("SGDClassifier", lambda n: sgd(), "classification", "accuracy", 400_000),
        Case("Perceptron", lambda n: Perceptron(random_state=0), "classification", "accuracy", 400_000),
        Case("PassiveAggressiveClassifier", deprecated(PassiveAggressiveClassifier), "classification", "accuracy",
             400_000, note="deprecated in scikit-learn 1.8"),
        Case("SGDRegressor", lambda n: SGDRegressor(random_state=0), "regression", "R²", 400_000),
        Case("PassiveAggressiveRegressor", deprecated(PassiveAggressiveRegressor), "regression", "R²", 400_000,
             note="deprecated in scikit-learn 1.8"),
        Case("MLPClassifier", lambda n: MLPClassifier(**mlp), "classification", "accuracy", 200_000),
        Case("MLPRegressor", lambda n: MLPRegressor(**mlp), "regression", "R²", 200_000),
        Case("GaussianNB", lambda n: GaussianNB(), "classification", "accuracy", 400_000),
        Case("MultinomialNB", lambda n: MultinomialNB(), "counts", "accuracy", 200_000),
        Case("ComplementNB", lambda n: ComplementNB(), "counts", "accuracy", 200_000),
        Case("BernoulliNB", lambda n: BernoulliNB(), "counts", "accuracy", 200_000),
        Case("CategoricalNB", lambda n: CategoricalNB(min_categories=estimator_data.N_CATEGORIES), "categorical",
             "accuracy", 400_000),
        Case("MiniBatchKMeans", lambda n: MiniBatchKMeans(k, random_state=0), "blobs", "adjusted Rand index", 200_000),
        Case("Birch", lambda n: Birch(n_clusters=k, threshold=1.5), "blobs", "adjusted Rand index", 40_000,
             block=2048),
        Case("StandardScaler", lambda n: StandardScaler(), "wide", "max error vs one fit on all", 400_000),
        Case("MinMaxScaler", lambda n: MinMaxScaler(), "wide", "max error vs one fit on all", 400_000),
        Case("MaxAbsScaler", lambda n: MaxAbsScaler(), "wide", "max error vs one fit on all", 400_000),
        Case("IncrementalPCA", lambda n: IncrementalPCA(c), "atoms", "relative reconstruction error", 400_000),
        Case("MiniBatchDictionaryLearning", lambda n: MiniBatchDictionaryLearning(c, dict_init=atoms, random_state=0),
             "atoms", "relative reconstruction error", 20_000, block=2048),
        Case("MiniBatchNMF", lambda n: MiniBatchNMF(c, init="random", random_state=0), "nonnegative",
             "relative reconstruction error", 200_000),
        Case("LatentDirichletAllocation",
             lambda n: LatentDirichletAllocation(estimator_data.N_TOPICS, total_samples=n, random_state=0), "counts",
             "perplexity", 40_000, block=2048),
        # partial_fit takes one gradient step per block against a chain of batch_size samples: they must match
        Case("BernoulliRBM", lambda n: BernoulliRBM(16, batch_size=256, learning_rate=1.0, random_state=0), "binary",
             "pseudo-likelihood", 200_000, block=256, note="one gradient step per block of batch_size rows"),
        Case("SGDOneClassSVM", lambda n: SGDOneClassSVM(nu=0.1, random_state=0), "novelty", "ROC AUC (outliers)",
             400_000),
        Case("OneVsRestClassifier(SGDClassifier)", lambda n: OneVsRestClassifier(sgd()), "classification", "accuracy",
             400_000),
        Case("MultiOutputRegressor(SGDRegressor)", lambda n: MultiOutputRegressor(SGDRegressor(random_state=0)),
             "two_targets", "R²", 400_000, note="R² averaged over the 2 outputs"),
        Case("OneVsOneClassifier(GaussianNB)", lambda n: OneVsOneClassifier(GaussianNB()), "classification",
             "accuracy", 400_000),
        Case("SelectFromModel(SGDClassifier(penalty='l1'))",
             lambda n: SelectFromModel(SGDClassifier(penalty="l1", random_state=0)), "classification",
             "accuracy of estimator_", 400_000),
        Case(PIPELINE_LABEL, lambda n: make_pipeline(StandardScaler(), sgd()), "wide", "accuracy", 400_000,
             single=scaled_block_by_block, note="single: scaler then classifier, block by block"),
        Case(UNSCALED_LABEL, lambda n: sgd(), "wide", "accuracy", 400_000, note="the pipeline's classifier alone"),
        Case(TEXT_LABEL, text, "texts", "accuracy", 200_000,
             single=vectorized_block_by_block, note="5 topics, 2**18 hashed features; vectorizing timed on both sides"),
    ]


def how_combined(adapter: Any) -> str:
    """``exact``, ``rule`` or ``delegated``, read from the adapter (a pipeline: per trained step)."""
    if isinstance(adapter, PipelineAdapter):
        return "per step: " + ", ".join(f"{name} {how_combined(a)}" for name, a in adapter.adapters.items())
    kind = "exact" if adapter.exact_aggregation else "rule"
    if isinstance(adapter, (OneVsRestAdapter, OneVsOneAdapter, SelectFromModelAdapter, MultiOutputRegressorAdapter)):
        return f"delegated ({kind})"
    return kind


def partial_fit_classes() -> list[str]:
    """Names of every scikit-learn estimator with ``partial_fit``."""
    from sklearn.utils import all_estimators

    return sorted(name for name, cls in all_estimators() if hasattr(cls, "partial_fit"))


def coverage(rows: Sequence[Case]) -> dict[str, list[str]]:
    """Which ``partial_fit`` classes have a row (the estimator or its meta-estimator) and which have none."""
    named = {type(part).__name__ for case in rows for part in _parts(case.build(1))}
    classes = partial_fit_classes()
    missing = [n for n in classes if n not in named and n not in NOT_IN_TABLE]
    return {"in_table": [n for n in classes if n in named], "missing": missing}


def _parts(estimator: Any) -> list[Any]:
    """``estimator`` and the estimators inside it (a meta-estimator's, a pipeline's steps)."""
    inner = [step for _, step in estimator.steps] if hasattr(estimator, "steps") else []
    inner += [estimator.estimator] if hasattr(estimator, "estimator") else []
    return [estimator, *(part for step in inner for part in _parts(step))]


# -------------------------------------------------------------------------- data
@dataclass
class DataSet:
    """One data set: persisted on the cluster, its numpy copy (same blocks) and a held-out set."""

    X: Any
    y: Any
    X_np: Any
    y_np: np.ndarray
    X_test: Any
    y_test: np.ndarray
    block: int

    def first_blocks(self, count: int) -> tuple[Any, Any]:
        """The first ``count`` persisted blocks of ``X`` and ``y``, as collections of the same kind."""
        if hasattr(self.X, "blocks"):  # a dask array
            return self.X.blocks[:count], self.y.blocks[:count]
        import dask.bag as db

        # optimize_graph=False keeps the futures in the graph (optimised, they are dropped, keys left)
        first = [collection.to_delayed(optimize_graph=False)[:count] for collection in (self.X, self.y)]
        return db.from_delayed(first[0]), db.from_delayed(first[1])

    @property
    def blocks(self) -> list[tuple[Any, Any]]:
        """The training blocks in order, as the workers hold them."""
        return [(self.X_np[s : s + self.block], self.y_np[s : s + self.block]) for s in range(0, len(self.y_np), self.block)]


def load(client: Client, kind: str, rows: int, block: int, test_rows: int) -> DataSet:
    """Generate ``kind``'s blocks on the workers and persist them; copy them to this process."""
    import dask
    import dask.array as da
    import dask.bag as db

    n_blocks = rows // block
    parts = [dask.delayed(estimator_data.make, pure=True)(kind, index, block) for index in range(n_blocks)]
    if kind == "texts":
        X, y = db.from_delayed([p[0] for p in parts]), db.from_delayed([p[1] for p in parts])
    else:
        X_first, y_first = estimator_data.make(kind, 0, 2)
        X = da.concatenate([da.from_delayed(p[0], (block, X_first.shape[1]), X_first.dtype) for p in parts])
        y = da.concatenate([da.from_delayed(p[1], (block, *y_first.shape[1:]), y_first.dtype) for p in parts])
    client.wait_for_workers(N_WORKERS)
    X, y = client.persist([X, y])
    wait([X, y])
    # gather the blocks themselves, in order (computing would concatenate them on one worker first)
    X_np = np.concatenate(client.gather(_futures(X)))
    y_np = np.concatenate(client.gather(_futures(y)))
    X_test, y_test = estimator_data.make_test(kind, n_blocks + 1, test_rows)
    return DataSet(X, y, X_np, y_np, X_test, y_test, block)


def _futures(collection: Any) -> list[Any]:
    from dask.core import flatten

    graph = dict(collection.__dask_graph__())
    return [graph[key] for key in flatten(collection.__dask_keys__())]


# ---------------------------------------------------------------------- methods
@dataclass
class Row:
    """What one row measured: seconds and scores per repeat, both ways."""

    label: str
    combined: str
    metric: str
    samples: int
    note: str = ""
    federated: dict[str, list[float]] = field(default_factory=lambda: {"seconds": [], "score": []})
    single: dict[str, list[float]] = field(default_factory=lambda: {"seconds": [], "score": []})
    error: str = ""

    def median(self, method: str, key: str) -> float:
        """Median of ``key`` (seconds or score) over the repeats of ``method``."""
        values = getattr(self, method)[key]
        return statistics.median(values) if values else float("nan")

    def rate(self, method: str) -> float:
        """Samples per second at the median time."""
        return self.samples / self.median(method, "seconds")


def _learns_targets(estimator: Any) -> str | None:
    """``"classifier"`` or ``"regressor"``; None for the rest (clusterers, outlier detectors, ...), trained on X alone."""
    kind = adapter_for(estimator).estimator_type(estimator)
    return kind if kind in ("classifier", "regressor") else None


def train_single(case: Case, estimator: Any, data: DataSet, classes: Any) -> Any:
    """``partial_fit`` over the blocks in order (or the case's own loop)."""
    if case.single is not None:
        return case.single(estimator, data.blocks, classes)
    kind = _learns_targets(estimator)
    for X, y in data.blocks:
        if kind == "classifier":
            estimator.partial_fit(X, y, classes=classes)
        elif kind == "regressor":
            estimator.partial_fit(X, y)
        else:
            estimator.partial_fit(X)
    return estimator


def run_single(case: Case, data: DataSet, n: int, classes: Any) -> tuple[float, Any]:
    """Warm up on a throwaway copy, then time the loop over all the blocks."""
    first = DataSet(None, None, data.X_np[: data.block], data.y_np[: data.block], None, None, data.block)
    train_single(case, case.build(n), first, classes)
    estimator = case.build(n)
    with threadpool_limits(1):  # as in the workers, whose nannies set OMP_NUM_THREADS=1
        start = time.perf_counter()
        model = train_single(case, estimator, data, classes)
        return time.perf_counter() - start, model


def run_federated(client: Client, case: Case, data: DataSet, n: int, classes: Any, name: str) -> tuple[float, Any]:
    """Warm up in a session of its own (two blocks), then time ``coord.fit`` on the persisted data."""
    supervised = _learns_targets(case.build(n)) is not None
    options = dict(classes=classes, check_workers=False, sync=EveryNBatches(SYNC_EVERY), progress=False)
    X_warm, y_warm = data.first_blocks(2)
    with federated_session(client, case.build(n), name=f"{name}-warm", **options) as coord:
        coord.fit(X_warm, y_warm if supervised else None)
    with federated_session(client, case.build(n), name=name, **options) as coord:
        start = time.perf_counter()
        coord.fit(data.X, data.y if supervised else None)
        seconds = time.perf_counter() - start
        return seconds, coord.global_model()


def run_case(client: Client, case: Case, data: DataSet, n: int, repeats: int) -> Row:
    """Both methods, ``repeats`` times, interleaved; a failure is recorded, not raised."""
    estimator = case.build(n)
    row = Row(case.label, how_combined(adapter_for(estimator)), case.metric, n, case.note)
    classes = np.unique(data.y_np) if _learns_targets(estimator) == "classifier" else None
    score, _ = METRICS[case.metric]
    for repeat in range(repeats):
        for method in ("federated", "single"):
            try:
                if method == "single":
                    seconds, model = run_single(case, data, n, classes)
                else:
                    seconds, model = run_federated(client, case, data, n, classes, f"estimators-{uuid.uuid4().hex[:8]}")
                getattr(row, method)["seconds"].append(seconds)
                getattr(row, method)["score"].append(score(model, data.X_test, data.y_test, data.X_np))
            except Exception as exc:  # a benchmark reports a family that fails, and goes on
                row.error = f"{method}: {type(exc).__name__}: {exc}"[:300]
                return row
    return row


# ------------------------------------------------------------------------ report
def goals(rows: dict[str, Row]) -> dict[str, dict[str, Any]]:
    """The issue's goals, from ratios and score gaps of this run (``met`` is None when a row did not run)."""
    def value(label: str, get: Callable[[Row], float]) -> float | None:
        row = rows.get(label)
        return None if row is None or row.error else get(row)

    speedup = value(TEXT_LABEL, lambda r: r.rate("federated") / r.rate("single"))
    pipeline = value(PIPELINE_LABEL, lambda r: 100 * (r.median("federated", "score") - r.median("single", "score")))
    unscaled = value(UNSCALED_LABEL, lambda r: r.median("federated", "score"))
    above = None if pipeline is None or unscaled is None else 100 * (rows[PIPELINE_LABEL].median("federated", "score") - unscaled)

    def check(label: str, measured: float | None, target: str, met: Callable[[float], bool]) -> dict[str, Any]:
        return {"label": label, "value": measured, "target": target, "met": None if measured is None else met(measured)}

    return {
        "text_speedup": check(
            "texts (HashingVectorizer + SGDClassifier): federated / single-process samples/s", speedup,
            f">= {GOAL_TEXT_SPEEDUP}", lambda v: v >= GOAL_TEXT_SPEEDUP,
        ),
        "pipeline_points_vs_single": check(
            "scaled pipeline on six orders of magnitude: federated - single block by block (points)", pipeline,
            f">= -{GOAL_PIPELINE_POINTS} (more accurate is fine)", lambda v: v >= -GOAL_PIPELINE_POINTS,
        ),
        "pipeline_points_above_unscaled": check(
            "scaled pipeline - unscaled SGDClassifier, both federated (points)", above,
            f">= {GOAL_ABOVE_UNSCALED_POINTS}", lambda v: v >= GOAL_ABOVE_UNSCALED_POINTS,
        ),
    }


def format_goals(checks: dict[str, dict[str, Any]]) -> str:
    """One line per goal: measured value, target, MET / NOT MET (or not run)."""
    lines = []
    for check in checks.values():
        if check["met"] is None:
            lines.append(f"- {check['label']}: not run (or failed), goal {check['target']}")
        else:
            verdict = "MET" if check["met"] else "NOT MET"
            value = f"{check['value']:+.2f}" if "points" in check["label"] else f"{check['value']:.2f}"
            lines.append(f"- {check['label']}: {value}, goal {check['target']}: {verdict}")
    return "\n".join(lines)


def _score(value: float) -> str:
    return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 else f"{value:.3g}"


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table, one line per row; ``↓``: lower is better."""
    lines = [
        "| estimator | combined | metric | federated score | single score | federated samples/s | "
        "single samples/s | federated / single |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        metric = row.metric + ("" if METRICS[row.metric][1] else " ↓")
        if row.error:
            lines.append(f"| {row.label} | {row.combined} | {metric} | fails: {row.error} | | | | |")
            continue
        fed, single = row.rate("federated"), row.rate("single")
        lines.append(
            f"| {row.label} | {row.combined} | {metric} | {_score(row.median('federated', 'score'))} | "
            f"{_score(row.median('single', 'score'))} | {fed:,.0f} | {single:,.0f} | {fed / single:.2f} |"
        )
    return "\n".join(lines)


# -------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the options; ``--quick`` changes the defaults of the others."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: a tenth of the rows, one repeat")
    parser.add_argument("--repeats", type=int, help="repeats of every row, median reported (default 3; 1 with --quick)")
    parser.add_argument("--only", help="comma-separated substrings: run only the rows whose estimator contains one")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "estimators.json", help="JSON file to write")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.repeats < 1:
        parser.error(f"--repeats={args.repeats}; expected >= 1")
    return args


def selected(only: str | None) -> list[Case]:
    """The cases whose label contains one of the comma-separated substrings of ``only`` (all without)."""
    wanted = [w.strip().lower() for w in (only or "").split(",") if w.strip()]
    return [case for case in cases() if not wanted or any(w in case.label.lower() for w in wanted)]


def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    """Every selected row on one cluster; each data set is made once and dropped after its last row."""
    todo = selected(args.only)
    keys = [(case.data, case.n_rows(args.quick), case.block) for case in todo]
    test_rows = TEST_ROWS // 5 if args.quick else TEST_ROWS
    rows: list[Row] = []
    load_at_start = os.getloadavg()
    with (
        LocalCluster(n_workers=N_WORKERS, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        loaded: dict[tuple[str, int, int], DataSet] = {}
        for index, (case, key) in enumerate(zip(todo, keys)):
            if key not in loaded:
                loaded[key] = load(client, *key, test_rows)
            row = run_case(client, case, loaded[key], key[1], args.repeats)
            rows.append(row)
            print(f"  {row.label}: " + (row.error or f"federated {row.median('federated', 'seconds'):.2f} s, "
                  f"single {row.median('single', 'seconds'):.2f} s"), flush=True)
            if key not in keys[index + 1 :]:
                del loaded[key]  # frees the persisted blocks
    return rows, {
        **throughput.environment(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "config": {"quick": args.quick, "repeats": args.repeats, "workers": N_WORKERS, "sync_every": SYNC_EVERY,
                   "test_rows": test_rows, "only": args.only},
        "rows": [vars(row) | {"samples_per_s": None if row.error else {m: row.rate(m) for m in ("federated", "single")}}
                 for row in rows],
        "not_in_table": NOT_IN_TABLE,
        "goals": goals({row.label: row for row in rows}),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the rows, print the table and the goals, write the JSON report."""
    args = parse_args(argv)
    start = time.perf_counter()
    print(f"{N_WORKERS} worker processes, EveryNBatches({SYNC_EVERY}), {args.repeats} repeat(s)", flush=True)
    rows, report = run(args)
    report["total_seconds"] = time.perf_counter() - start
    missing = coverage(cases())["missing"]
    print("\n" + format_table(rows) + "\n\n" + format_goals(report["goals"]))
    print("\nnot in the table: " + "; ".join(f"{name} ({why})" for name, why in NOT_IN_TABLE.items()))
    if missing:
        print(f"partial_fit estimators with no row (new in this scikit-learn?): {', '.join(missing)}")
    throughput.write_json(report, args.output)
    print(f"\nwritten: {args.output} ({report['total_seconds']:.0f} s)")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
