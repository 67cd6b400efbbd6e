"""Model-selection benchmark: FederatedSearch against GridSearchCV and dask-ml's IncrementalSearchCV.

Run ``.venv/bin/python benchmarks/search.py``. The workload is step 1 of
``CONTEXT.md``: a passive-aggressive classifier, ``C`` in {1e-6, ..., 200}
(13 values) x ``loss`` in {hinge, squared_hinge}, 26 configurations, on
``make_classification(n_samples=100_000, n_features=100, n_informative=50,
n_redundant=10, flip_y=0.2, random_state=0)``, 20 % held out
(``train_test_split(..., test_size=0.2, random_state=0)``) for the final
comparison only: no method sees it while choosing.

``PassiveAggressiveClassifier`` is deprecated since scikit-learn 1.8; every
method searches its exact equivalent, ``SGDClassifier(loss="hinge",
penalty=None, random_state=0)`` with ``eta0=C`` and ``learning_rate="pa1"``
(hinge) or ``"pa2"`` (squared_hinge) (see :mod:`fedplugin.search`). Best
parameters are reported in passive-aggressive terms (``C``, ``loss``).

Methods, all on 2 cores:

1. ``GridSearchCV(n_jobs=-1, cv=5)`` with joblib's default (loky) backend;
2. the same inside ``joblib.parallel_backend("dask")`` on a
   ``LocalCluster(n_workers=2, threads_per_worker=1)``;
3. ``dask_ml.model_selection.IncrementalSearchCV`` on dask arrays in blocks
   of 4,096 rows, one pass (its failure, if it fails, is reported);
4. ``FederatedSearch`` on the same cluster, one pass in blocks of 4,096 rows,
   choosing by progressive validation (no data held back from training);
5. ``FederatedSearch`` choosing on the last 20 % of the training rows, trained
   on the rest.

GridSearchCV fits each configuration to convergence (``fit``, up to 1,000
epochs) on each fold and refits the best on all training rows;
FederatedSearch trains every configuration at once with ``partial_fit``,
reading each block once. Seconds are wall time of the whole ``fit``;
FederatedSearch is timed ``--repeats`` times after one untimed warm-up run
(workers import fedplugin on first use) and its median is reported. A table
goes to stdout and everything measured to ``benchmarks/results/search.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import GridSearchCV, train_test_split

from fedplugin.search import PA_LEARNING_RATES, FederatedSearch, passive_aggressive_grid

HERE = Path(__file__).resolve().parent
C_VALUES = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 1, 5, 10, 50, 100, 200]
LOSSES = ["hinge", "squared_hinge"]
N_WORKERS = 2
BLOCK_SIZE = 4096
#: The project's goals for FederatedSearch against the faster GridSearchCV.
GOAL_SPEEDUP = 5.0
GOAL_ACCURACY_POINTS = 0.5


@dataclass
class Data:
    """Training rows and the held-out 20 % used only for the final comparison."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@dataclass
class Outcome:
    """What one method found and how long it took."""

    method: str
    seconds: list[float] = field(default_factory=list)
    best_params: dict[str, Any] | None = None
    selection_score: float | None = None
    held_out_accuracy: float | None = None
    error: str | None = None
    notes: str = ""

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


def make_data(n_samples: int, n_features: int) -> Data:
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=50,
        n_redundant=10,
        flip_y=0.2,
        random_state=0,
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    return Data(X_train, y_train, X_test, y_test)


def estimator() -> SGDClassifier:
    """The exact equivalent of ``PassiveAggressiveClassifier(random_state=0)``, before eta0/learning_rate."""
    return SGDClassifier(loss="hinge", penalty=None, random_state=0)


def grid() -> dict[str, list]:
    return passive_aggressive_grid(C_VALUES, LOSSES)


def as_passive_aggressive(params: dict[str, Any]) -> dict[str, Any]:
    """``{"eta0": C, "learning_rate": "pa1"}`` -> ``{"C": C, "loss": "hinge"}``."""
    losses = {rate: loss for loss, rate in PA_LEARNING_RATES.items()}
    return {"C": float(params["eta0"]), "loss": losses[params["learning_rate"]]}


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


# ------------------------------------------------------------------- methods
def grid_search(data: Data, backend: str | None) -> Outcome:
    """``GridSearchCV(n_jobs=-1, cv=5)``, with the default or the dask joblib backend."""
    name = f"GridSearchCV cv=5, n_jobs=-1, {backend or 'loky'} backend"
    search = GridSearchCV(estimator(), grid(), cv=5, n_jobs=-1)
    if backend is None:
        seconds, _ = timed(lambda: search.fit(data.X_train, data.y_train))
    else:
        with joblib.parallel_backend(backend):
            seconds, _ = timed(lambda: search.fit(data.X_train, data.y_train))
    return Outcome(
        name,
        [seconds],
        as_passive_aggressive(search.best_params_),
        float(search.best_score_),
        float(search.best_estimator_.score(data.X_test, data.y_test)),
        notes="selection: mean 5-fold CV accuracy; best refit on all training rows",
    )


def incremental_search(client: Client, data: Data) -> Outcome:
    """``dask_ml.model_selection.IncrementalSearchCV``, one pass over blocks of 4,096 rows.

    If it fails, it is tried once more with dask's documented escape hatch for
    its failure on current dask (``admin.async-client-fallback``), and both
    errors are reported.
    """
    import dask
    import dask.array as da
    from dask_ml.model_selection import IncrementalSearchCV

    outcome = Outcome("dask-ml IncrementalSearchCV, one pass")
    X = da.from_array(data.X_train, chunks=(BLOCK_SIZE, -1))
    y = da.from_array(data.y_train, chunks=BLOCK_SIZE)

    def run() -> Any:
        search = IncrementalSearchCV(
            estimator(), grid(), n_initial_parameters="grid", max_iter=len(X.chunks[0]), patience=False,
            decay_rate=None, random_state=0,
        )
        return search.fit(X, y, classes=[0, 1])

    try:
        seconds, search = timed(run)
    except Exception as exc:  # noqa: BLE001 - report, do not hide, an incompatibility
        outcome.error = error_text(exc)
        try:
            with dask.config.set({"admin.async-client-fallback": "sync"}):
                run()
            outcome.notes = "works only with admin.async-client-fallback='sync' (data persisted in the client)"
        except Exception as retry:  # noqa: BLE001
            outcome.notes = f"with admin.async-client-fallback='sync' it fails later: {error_text(retry)}"
        return outcome
    outcome.seconds = [seconds]
    outcome.best_params = as_passive_aggressive(search.best_params_)
    outcome.selection_score = float(search.best_score_)
    outcome.held_out_accuracy = float(search.best_estimator_.score(data.X_test, data.y_test))
    outcome.notes = "selection: its own validation split of the training rows"
    return outcome


def federated_search(client: Client, data: Data, validation: str, repeats: int) -> Outcome:
    """``FederatedSearch``, one pass; ``validation`` is ``"progressive"`` or ``"split"``."""
    if validation == "progressive":
        name = "FederatedSearch, progressive validation"
        args: tuple = (data.X_train, data.y_train)
        notes = "selection: test-then-train accuracy over the one pass; trained on all training rows"
    else:
        name = "FederatedSearch, validation split"
        cut = int(0.8 * len(data.X_train))
        args = (data.X_train[:cut], data.y_train[:cut], data.X_train[cut:], data.y_train[cut:])
        notes = "selection: accuracy on the last 20 % of the training rows; trained on the rest"

    def run() -> FederatedSearch:
        return FederatedSearch(estimator(), grid(), client=client, block_size=BLOCK_SIZE).fit(*args)

    run()  # warm-up: workers import fedplugin and scikit-learn's model-selection code
    seconds, searches = zip(*(timed(run) for _ in range(repeats)))
    search = searches[-1]
    rounds = len(search.history_)
    samples = sum(r.samples for r in search.history_)
    return Outcome(
        name,
        list(seconds),
        as_passive_aggressive(search.best_params_),
        float(search.best_score_),
        float(search.best_estimator_.score(data.X_test, data.y_test)),
        notes=f"{notes}; {rounds} round(s), {samples} samples read for 26 configurations",
    )


# ------------------------------------------------------------------- report
def goals(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """FederatedSearch (progressive) against the faster GridSearchCV run."""
    grids = [o for o in outcomes if o.method.startswith("GridSearchCV") and o.seconds]
    federated = next(o for o in outcomes if o.method == "FederatedSearch, progressive validation")
    fastest = min(grids, key=lambda o: o.median_seconds)
    best_grid_accuracy = max(o.held_out_accuracy for o in grids)
    speedup = fastest.median_seconds / federated.median_seconds
    gap = 100 * (best_grid_accuracy - federated.held_out_accuracy)
    return {
        "compared": federated.method,
        "against_time": fastest.method,
        "speedup": speedup,
        "speedup_goal": GOAL_SPEEDUP,
        "speedup_met": speedup >= GOAL_SPEEDUP,
        "accuracy_gap_points": gap,
        "accuracy_goal_points": GOAL_ACCURACY_POINTS,
        "accuracy_met": gap <= GOAL_ACCURACY_POINTS,
    }


def table(outcomes: Sequence[Outcome]) -> str:
    header = f"{'method':<48} {'seconds':>8} {'best C':>8} {'best loss':>14} {'selection':>9} {'held-out':>8}"
    lines = [header, "-" * len(header)]
    for o in outcomes:
        if o.error:
            lines.append(f"{o.method:<48} failed: {o.error[:120]}")
            if o.notes:
                lines.append(f"{'':<48} {o.notes[:120]}")
            continue
        lines.append(
            f"{o.method:<48} {o.median_seconds:>8.2f} {o.best_params['C']:>8g} {o.best_params['loss']:>14} "
            f"{o.selection_score:>9.4f} {o.held_out_accuracy:>8.4f}"
        )
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import dask
    import dask_ml
    import distributed
    import sklearn

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017 (3.10)
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": list(os.getloadavg()),
        "versions": {
            "scikit-learn": sklearn.__version__,
            "dask": dask.__version__,
            "distributed": distributed.__version__,
            "dask-ml": dask_ml.__version__,
            "numpy": np.__version__,
        },
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="timed FederatedSearch runs (median reported)")
    parser.add_argument("--skip-grid-search", action="store_true", help="skip the two GridSearchCV runs (slow)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "search.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    data = make_data(args.samples, args.features)
    env_before = environment()
    outcomes: list[Outcome] = []
    with LocalCluster(n_workers=N_WORKERS, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as client:
        outcomes.append(federated_search(client, data, "progressive", args.repeats))
        outcomes.append(federated_search(client, data, "split", args.repeats))
        outcomes.append(incremental_search(client, data))
        if not args.skip_grid_search:
            outcomes.append(grid_search(data, None))
            outcomes.append(grid_search(data, "dask"))
    report = {
        "workload": {
            "samples": args.samples,
            "features": args.features,
            "held_out_fraction": 0.2,
            "configurations": len(C_VALUES) * len(LOSSES),
            "block_size": BLOCK_SIZE,
            "workers": N_WORKERS,
        },
        "environment": env_before,
        "load_average_after": list(os.getloadavg()),
        "outcomes": [asdict(o) | {"median_seconds": o.median_seconds} for o in outcomes],
    }
    if not args.skip_grid_search:
        report["goals"] = goals(outcomes)
    print(table(outcomes))
    if "goals" in report:
        g = report["goals"]
        print(
            f"\nFederatedSearch vs {g['against_time']}: {g['speedup']:.1f}x faster (goal {GOAL_SPEEDUP}x); "
            f"held-out accuracy {g['accuracy_gap_points']:+.2f} points behind the best GridSearchCV "
            f"(goal <= {GOAL_ACCURACY_POINTS})"
        )
    print(f"load average before {env_before['load_average_1_5_15']}, after {report['load_average_after']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.output}")
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
