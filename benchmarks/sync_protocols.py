"""Synchronization protocols and robust aggregation: rounds, bytes and accuracy.

Run ``.venv/bin/python benchmarks/sync_protocols.py`` (``--quick`` for a smoke
run). Three experiments, all with the same estimator,
``SGDClassifier(learning_rate="constant", eta0=0.001, random_state=0)``:

1. **Stationary stream** (``LocalCluster(n_workers=2, threads_per_worker=1)``):
   the throughput benchmark's data (1,000,000 x 100 from
   ``dask_ml.datasets.make_classification``, chunks of 4,096 rows, 10 % held
   out on a block boundary, persisted). One pass each with
   ``EveryNBatches(n_workers)`` (a round after every block on each worker),
   ``EveryNBatches(50)`` and ``DriftThreshold(relative=...)`` (with and without
   ``preempt``); held-out accuracy, rounds, bytes and wall seconds.
2. **Drifting stream** (same cluster): labels flip half way. The stream is fed
   in order as ``coord.partial_fit`` calls of 8 blocks of 2,048 rows; before
   each call the current global model is scored on the chunk it is about to
   train on (test-then-train, i.e. online accuracy). Rounds and online
   accuracy are counted per window of the stream and plotted.
3. **Poisoned worker** (``LocalCluster(n_workers=4, threads_per_worker=1)``):
   one worker flips the sign of its parameters and scales them by 10 at the
   end of its share of every round (:class:`PoisonLastBlock`). Held-out
   accuracy of ``Mean``, ``Median``, ``TrimmedMean(0.25)`` and
   ``Krum(n_byzantine=1)``, clean and poisoned.

4. **The self-calibrating** ``DriftThreshold()`` (no argument) against the
   every-block protocol, for ``SGDClassifier()`` (default), constant
   ``eta0=0.01`` and ``learning_rate="pa1"``: rounds and held-out accuracy
   on the stationary data (means over ``CALIBRATED_REPEATS`` fits), and on
   the drifting stream its drift rounds before and after the change and the
   rows from the change to its first drift round.

Why this estimator and how the drift threshold is chosen: a
``DriftThreshold`` only separates "the model has changed" from "SGD noise"
if the noise is small. With ``SGDClassifier``'s default ``"optimal"``
learning rate the parameters move by about 20 % of their squared norm per
block, all pass long, so every threshold either fires all the time or misses
real changes. With a constant step of 0.001 (``"adaptive"`` behaves the same
under ``partial_fit``: each call restarts from ``eta0``) a model fluctuates
around its optimum, and its relative squared change over 10 blocks levels
off at about 2 %. :func:`drift_level` measures that level on a
single-process pilot over the first blocks of each stream (before any
change); the threshold is ``DRIFT_FACTOR`` times it. The pilot's numbers for
both learning rates are printed and written to the JSON file.

Tables go to stdout, everything measured to
``benchmarks/results/sync_protocols.json``, the drifting stream's plot to
``benchmarks/results/drift_stream.png`` and ``docs/_static/drift_stream.png``.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
from distributed import Client, LocalCluster, get_worker, wait
from sklearn.linear_model import SGDClassifier

from fedplugin import (
    Coordinator,
    DriftThreshold,
    EveryNBatches,
    Krum,
    LocalStats,
    Mean,
    Median,
    SyncPolicy,
    TrimmedMean,
    WeightedMean,
)
from fedplugin.session import federated_session
from fedplugin.wording import count

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import throughput  # the throughput benchmark's data, environment and JSON writer

N_WORKERS = 2
POISON_WORKERS = 4
BLOCK_SIZE = throughput.BLOCK_SIZE
CLASSES = [0, 1]
#: Blocks per round of the sparse periodic protocol.
SPARSE_EVERY = 50
#: Drifting stream: rows per block, blocks per ``partial_fit`` call, calls per window.
STREAM_BLOCK_SIZE = 2048
CHUNK_BLOCKS = 8
WINDOW_CHUNKS = 4
#: Online accuracy counts as recovered within this many points of its level before the change.
RECOVERY_POINTS = 2.0
#: Poisoned worker: blocks per round over all workers, and the corruption of the victim's parameters.
POISON_EVERY = 20
POISON_SCALE = -10.0
#: ``max_task_blocks`` of the DriftThreshold runs. With no count limit, the first worker
#: given a task fills it up to ``max_task_blocks`` by taking the other workers' queued
#: blocks too (fedplugin 0.1.0), so small tasks keep every worker training.
TASK_BLOCKS = 4
#: Drift threshold calibration: pilot blocks, blocks skipped at the start, window, safety factor.
PILOT_BLOCKS = 60
PILOT_WARMUP = 10
DRIFT_WINDOW = 10
DRIFT_FACTOR = 3.0
#: Experiment 4: the self-calibrating DriftThreshold() against every block, per estimator,
#: ``CALIBRATED_REPEATS`` fits each (the default SGDClassifier's accuracy varies by about a
#: point from one fit to the next: which worker trains which block depends on timing).
CALIBRATED_ESTIMATORS = {
    "SGDClassifier()": {},
    'learning_rate="constant", eta0=0.01': {"learning_rate": "constant", "eta0": 0.01},
    'learning_rate="pa1"': {"learning_rate": "pa1"},
}
CALIBRATED_REPEATS = 3
#: The goals.
GOAL_ROUND_RATIO = 10.0
GOAL_DRIFT_POINTS = 0.5
GOAL_ROBUST_POINTS = 1.0

RESULTS = HERE / "results"
DOCS_STATIC = HERE.parent / "docs" / "_static"


def make_estimator(**overrides: Any) -> SGDClassifier:
    """The estimator every protocol and rule trains (``overrides`` only for the calibration pilot)."""
    params = {"learning_rate": "constant", "eta0": 0.001, "random_state": 0, **overrides}
    return SGDClassifier(**params)


# ----------------------------------------------------------------- calibration
def _flat(model: SGDClassifier) -> np.ndarray:
    return np.concatenate([model.coef_.ravel(), model.intercept_])


def drift_level(X: np.ndarray, y: np.ndarray, block_size: int, estimator: SGDClassifier, window: int) -> float:
    """Median relative squared parameter change over ``window`` blocks, single process.

    Trains ``estimator`` with ``partial_fit`` on the blocks of ``X``, ``y`` in
    order and, skipping the first ``PILOT_WARMUP`` blocks, compares the
    parameters after block ``i + window`` with those after block ``i``:
    ``|p[i + window] - p[i]|^2 / |p[i]|^2``, the quantity
    ``DriftThreshold(relative=...)`` compares with its threshold.
    """
    params = []
    for start in range(0, len(y), block_size):
        estimator.partial_fit(X[start : start + block_size], y[start : start + block_size], classes=CLASSES)
        params.append(_flat(estimator))
    p = np.array(params[PILOT_WARMUP:])
    if len(p) <= window:
        raise ValueError(f"pilot of {count(len(params), 'block')} is too short for a window of {count(window, 'block')}")
    changes = ((p[window:] - p[:-window]) ** 2).sum(axis=1) / (p[:-window] ** 2).sum(axis=1)
    return float(np.median(changes))


def calibrate(X: np.ndarray, y: np.ndarray, block_size: int) -> dict[str, float]:
    """Measure the stationary drift level of both learning rates; return them and the threshold.

    Returns
    -------
    dict
        ``relative`` (the threshold used: ``DRIFT_FACTOR`` x ``constant_window``),
        ``factor``, ``pilot_blocks``, and :func:`drift_level` over 1 block
        (``*_per_block``) and ``DRIFT_WINDOW`` blocks (``*_window``) for the
        chosen constant step (``constant_*``) and the default ``"optimal"``
        learning rate (``optimal_*``).
    """
    levels = {
        f"{name}_{label}": drift_level(X, y, block_size, make_estimator(**overrides), window)
        for (name, overrides), (label, window) in itertools.product(
            [("constant", {}), ("optimal", {"learning_rate": "optimal"})],
            [("per_block", 1), ("window", DRIFT_WINDOW)],
        )
    }
    relative = float(f"{DRIFT_FACTOR * levels['constant_window']:.2g}")
    return {"relative": relative, "factor": DRIFT_FACTOR, "pilot_blocks": len(y) // block_size, **levels}


# ----------------------------------------------------------------------- runs
@dataclass
class Run:
    """One training run: what it cost and how good the model is."""

    protocol: str
    accuracy: float
    rounds: int
    bytes: int
    seconds: float
    triggers: dict[str, int]
    history: list[dict[str, Any]] = field(repr=False)

    @classmethod
    def from_coordinator(cls, protocol: str, coord: Coordinator, accuracy: float, seconds: float) -> Run:
        history = [record.as_dict() for record in coord.history]
        return cls(
            protocol=protocol,
            accuracy=accuracy,
            rounds=len(history),
            bytes=sum(r["bytes_up"] + r["bytes_down"] for r in history),
            seconds=seconds,
            triggers=dict(Counter(r["trigger"] for r in history)),
            history=history,
        )


def new_session(client: Client, sync: SyncPolicy, estimator: SGDClassifier | None = None, **kwargs: Any) -> Any:
    """A fresh plugin under a unique name and its coordinator; everything is dropped on exit.

    ``estimator`` defaults to :func:`make_estimator`.
    """
    estimator = make_estimator() if estimator is None else estimator
    return federated_session(
        client, estimator, classes=CLASSES, check_workers=False, sync=sync, progress=False, **kwargs
    )


def fit_once(client: Client, protocol: str, sync: SyncPolicy, train: tuple, test: tuple, **kwargs: Any) -> Run:
    """One ``fit`` pass over ``train`` with a fresh model; score it on ``test``.

    ``kwargs`` go to :func:`new_session` (``estimator=``) and the coordinator.
    """
    with new_session(client, sync, **kwargs) as coord:
        start = time.perf_counter()
        coord.fit(*train)
        seconds = time.perf_counter() - start
        return Run.from_coordinator(protocol, coord, coord.score(*test), seconds)


# ------------------------------------------------------ 1. stationary stream
def load_stationary(client: Client, n_samples: int, n_workers: int) -> tuple[tuple, tuple, tuple]:
    """The throughput benchmark's data: persisted training arrays, numpy pilot and test sets.

    The pilot (the first training blocks) and the test set are generated again
    in this process, so the persisted blocks are never gathered on one worker
    (Dask's memory manager would then keep only that copy).
    """
    X_lazy, y_lazy, X_test, y_test = throughput.make_problem(n_samples)
    pilot_rows = min(PILOT_BLOCKS * BLOCK_SIZE, X_lazy.shape[0] // 2)
    X_pilot, y_pilot, X_test, y_test = dask.compute(
        X_lazy[:pilot_rows], y_lazy[:pilot_rows], X_test, y_test, scheduler="threads"
    )
    client.wait_for_workers(n_workers)
    X_train, y_train = client.persist([X_lazy, y_lazy])
    wait([X_train, y_train])
    return (X_train, y_train), (X_pilot, y_pilot), (X_test, y_test)


def stationary(client: Client, n_samples: int) -> dict[str, Any]:
    """Experiment 1: periodic against drift-triggered synchronization on i.i.d. blocks."""
    train, pilot, test = load_stationary(client, n_samples, N_WORKERS)
    calibration = calibrate(*pilot, BLOCK_SIZE)
    relative = calibration["relative"]
    drift = f"DriftThreshold(relative={relative})"
    protocols: list[tuple[str, SyncPolicy, dict[str, Any]]] = [
        (f"EveryNBatches({N_WORKERS}): every block", EveryNBatches(N_WORKERS), {}),
        (f"EveryNBatches({SPARSE_EVERY})", EveryNBatches(SPARSE_EVERY), {}),
        (f"{drift}, preempt", DriftThreshold(relative=relative), {"preempt": True, "max_task_blocks": TASK_BLOCKS}),
        (f"{drift}, no preempt", DriftThreshold(relative=relative), {"max_task_blocks": TASK_BLOCKS}),
    ]
    runs = []
    for label, policy, kwargs in protocols:
        runs.append(fit_once(client, label, policy, train, test, aggregator=WeightedMean(), **kwargs))
        print(f"  {label}: {count(runs[-1].rounds, 'round')}, accuracy {runs[-1].accuracy:.4f}", flush=True)
    return {
        "train_rows": int(train[1].shape[0]),
        "test_rows": len(test[1]),
        "calibration": calibration,
        "runs": [asdict(run) for run in runs],
        "goal": stationary_goal(runs[0], runs[2]),
        "calibrated": calibrated_stationary(client, train, test),
    }


# ------------------------------------- 4. the self-calibrating DriftThreshold()
def calibrated_estimators() -> dict[str, SGDClassifier]:
    """The estimators of experiment 4 (``"pa1"`` only where scikit-learn trains it, >= 1.8)."""
    from fedplugin._compat import SGD_PASSIVE_AGGRESSIVE

    return {
        label: SGDClassifier(random_state=0, **params)
        for label, params in CALIBRATED_ESTIMATORS.items()
        if SGD_PASSIVE_AGGRESSIVE or params.get("learning_rate") != "pa1"
    }


def calibrated_stationary(client: Client, train: tuple, test: tuple) -> list[dict[str, Any]]:
    """Every block against ``DriftThreshold()`` per estimator, ``CALIBRATED_REPEATS`` fits each."""
    rows = []
    for label, estimator in calibrated_estimators().items():
        protocols = [
            ("every block", EveryNBatches(N_WORKERS), {}),
            ("DriftThreshold()", DriftThreshold(), {"max_task_blocks": TASK_BLOCKS}),
        ]
        runs = {}
        for name, policy, kwargs in protocols:
            runs[name] = [
                fit_once(client, name, policy, train, test, estimator=estimator, aggregator=WeightedMean(), **kwargs)
                for _ in range(CALIBRATED_REPEATS)
            ]
        every, drift = runs["every block"], runs["DriftThreshold()"]
        row = {
            "estimator": label,
            "every_block": [{"rounds": r.rounds, "accuracy": r.accuracy} for r in every],
            "calibrated": [{"rounds": r.rounds, "accuracy": r.accuracy, "triggers": r.triggers} for r in drift],
        }
        row["goal"] = calibrated_goal(row)
        rows.append(row)
        print(
            f"  {label}: every block {row['goal']['every_block_rounds']:.0f} rounds, "
            f"DriftThreshold() {row['goal']['calibrated_rounds']:.1f} rounds, "
            f"{row['goal']['accuracy_points']:+.2f} points",
            flush=True,
        )
    return rows


def calibrated_goal(row: dict[str, Any]) -> dict[str, Any]:
    """Mean rounds and accuracy: >= 10x fewer rounds than every block, within 0.5 points."""
    every_rounds = statistics.fmean(r["rounds"] for r in row["every_block"])
    rounds = statistics.fmean(r["rounds"] for r in row["calibrated"])
    every_acc = statistics.fmean(r["accuracy"] for r in row["every_block"])
    acc = statistics.fmean(r["accuracy"] for r in row["calibrated"])
    points = 100 * (acc - every_acc)
    return {
        "every_block_rounds": every_rounds,
        "calibrated_rounds": rounds,
        "every_block_accuracy": every_acc,
        "calibrated_accuracy": acc,
        "accuracy_points": points,
        "round_ratio": every_rounds / rounds,
        "target": f"mean accuracy >= every block - {GOAL_DRIFT_POINTS} points, {GOAL_ROUND_RATIO:g}x fewer rounds",
        "met": points >= -GOAL_DRIFT_POINTS and every_rounds / rounds >= GOAL_ROUND_RATIO,
    }


def calibrated_drifting(client: Client, X: np.ndarray, y: np.ndarray, change: int) -> list[dict[str, Any]]:
    """``DriftThreshold()`` per estimator on the drifting stream: when it fires after the change."""
    rows = []
    for label, estimator in calibrated_estimators().items():
        run = online_pass(client, "DriftThreshold()", DriftThreshold(), X, y, estimator=estimator,
                          max_task_blocks=TASK_BLOCKS)
        drift_after = [r["position"] for r in run.rounds if r["trigger"] == "drift" and r["position"] > change]
        drift_before = [r for r in run.rounds if r["trigger"] == "drift" and r["position"] <= change]
        first = drift_after[0] - change if drift_after else None
        rows.append({
            "estimator": label,
            "rounds": len(run.rounds),
            "drift_rounds_before_change": len(drift_before),
            "drift_rounds_after_change": len(drift_after),
            "rows_to_first_drift_round": first,
            "recovery": recovery(run, change),
        })
        after = "none" if first is None else f"{first:,} rows ({first / STREAM_BLOCK_SIZE:.0f} blocks over all workers)"
        print(f"  {label}: first drift round after the change: {after}", flush=True)
    return rows


def stationary_goal(frequent: Run, drift: Run) -> dict[str, Any]:
    """DriftThreshold within 0.5 points of every-block accuracy with >= 10x fewer rounds and bytes."""
    points = 100 * (drift.accuracy - frequent.accuracy)
    round_ratio = frequent.rounds / drift.rounds
    byte_ratio = frequent.bytes / drift.bytes
    return {
        "accuracy_points": points,
        "round_ratio": round_ratio,
        "byte_ratio": byte_ratio,
        "target": f"accuracy >= every block - {GOAL_DRIFT_POINTS} points, {GOAL_ROUND_RATIO:g}x fewer rounds and bytes",
        "met": points >= -GOAL_DRIFT_POINTS and min(round_ratio, byte_ratio) >= GOAL_ROUND_RATIO,
    }


# ------------------------------------------------------- 2. drifting stream
def drifting_stream(n_chunks: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``n_chunks`` chunks of the same generator (``random_state=1``); labels flip half way.

    Returns
    -------
    X, y : numpy arrays
    change : int
        Row at which the concept changes (a chunk boundary).
    """
    from dask_ml.datasets import make_classification

    chunk_rows = CHUNK_BLOCKS * STREAM_BLOCK_SIZE
    X, y = make_classification(
        n_samples=n_chunks * chunk_rows,
        n_features=throughput.N_FEATURES,
        n_informative=50,
        n_redundant=10,
        flip_y=0.05,
        chunks=chunk_rows,
        random_state=1,
    )
    X, y = dask.compute(X, y, scheduler="threads")
    change = n_chunks // 2 * chunk_rows
    y[change:] = 1 - y[change:]
    return X, y, change


@dataclass
class StreamRun:
    """A test-then-train pass over the drifting stream."""

    protocol: str
    positions: list[int]
    online_accuracy: list[float]
    rounds: list[dict[str, Any]]
    bytes: int
    seconds: float


def online_pass(
    client: Client, protocol: str, sync: SyncPolicy, X: np.ndarray, y: np.ndarray, **kwargs: Any
) -> StreamRun:
    """Feed the stream chunk by chunk; score the global model on each chunk before training on it.

    ``kwargs`` go to :func:`new_session` (``estimator=``) and the coordinator.
    """
    with new_session(client, sync, block_size=STREAM_BLOCK_SIZE, **kwargs) as coord:
        chunk_rows = CHUNK_BLOCKS * STREAM_BLOCK_SIZE
        positions, accuracy = [], []
        start = time.perf_counter()
        for row in range(0, len(y), chunk_rows):
            X_chunk, y_chunk = X[row : row + chunk_rows], y[row : row + chunk_rows]
            if coord.version >= 0:
                positions.append(row)
                accuracy.append(coord.score(X_chunk, y_chunk))
            coord.partial_fit(X_chunk, y_chunk)
        seconds = time.perf_counter() - start
        rounds = [{"position": r.total_samples, "trigger": r.trigger, "n_workers": r.n_workers} for r in coord.history]
        total_bytes = sum(r.bytes_up + r.bytes_down for r in coord.history)
    return StreamRun(protocol, positions, accuracy, rounds, total_bytes, seconds)


def windows(run: StreamRun, n_rows: int) -> list[dict[str, Any]]:
    """Rounds (all, and drift-triggered) and mean online accuracy per window of ``WINDOW_CHUNKS`` chunks."""
    size = WINDOW_CHUNKS * CHUNK_BLOCKS * STREAM_BLOCK_SIZE
    rows = []
    for start in range(0, n_rows, size):
        inside = [r for r in run.rounds if start < r["position"] <= start + size]
        scores = [a for p, a in zip(run.positions, run.online_accuracy, strict=True) if start <= p < start + size]
        rows.append({
            "start": start,
            "end": start + size,
            "rounds": len(inside),
            "drift_rounds": sum(r["trigger"] == "drift" for r in inside),
            "online_accuracy": statistics.fmean(scores) if scores else None,
        })
    return rows


def recovery(run: StreamRun, change: int) -> dict[str, Any]:
    """Online accuracy just before the change, its lowest after, and chunks until it is back.

    "Back" means within ``RECOVERY_POINTS`` of the mean of the last
    ``WINDOW_CHUNKS`` chunks before the change.
    """
    before = [a for p, a in zip(run.positions, run.online_accuracy, strict=True) if p < change][-WINDOW_CHUNKS:]
    after = [a for p, a in zip(run.positions, run.online_accuracy, strict=True) if p >= change]
    level = statistics.fmean(before)
    back = next((i for i, a in enumerate(after) if a >= level - RECOVERY_POINTS / 100), None)
    return {"before": level, "lowest_after": min(after), "chunks_to_recover": back, "final": after[-1]}


def drifting(client: Client, n_chunks: int) -> dict[str, Any]:
    """Experiment 2: test-then-train on a stream whose labels flip half way."""
    X, y, change = drifting_stream(n_chunks)
    pilot_rows = min(PILOT_BLOCKS * STREAM_BLOCK_SIZE, change)
    calibration = calibrate(X[:pilot_rows], y[:pilot_rows], STREAM_BLOCK_SIZE)
    relative = calibration["relative"]
    protocols = [
        (f"EveryNBatches({N_WORKERS}): every block", EveryNBatches(N_WORKERS), {}),
        (f"EveryNBatches({CHUNK_BLOCKS}): once per call", EveryNBatches(CHUNK_BLOCKS), {}),
        (
            f"DriftThreshold(relative={relative}), preempt",
            DriftThreshold(relative=relative),
            {"preempt": True, "max_task_blocks": TASK_BLOCKS},
        ),
    ]
    runs = []
    for label, policy, kwargs in protocols:
        runs.append(online_pass(client, label, policy, X, y, **kwargs))
        print(f"  {label}: {count(len(runs[-1].rounds), 'round')}, {runs[-1].seconds:.1f} s", flush=True)
    return {
        "rows": len(y),
        "change": change,
        "chunk_rows": CHUNK_BLOCKS * STREAM_BLOCK_SIZE,
        "block_size": STREAM_BLOCK_SIZE,
        "calibration": calibration,
        "runs": [
            {**asdict(run), "windows": windows(run, len(y)), "recovery": recovery(run, change)} for run in runs
        ],
        "calibrated": calibrated_drifting(client, X, y, change),
    }


def plot_stream(result: dict[str, Any], path: Path) -> None:
    """Online accuracy (top) and every round's stream position (bottom), per protocol."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]}, constrained_layout=True
    )
    for run, style in zip(runs, ["-", "--", ":"], strict=False):
        positions = np.array(run["positions"]) / 1e3
        top.plot(positions, run["online_accuracy"], linestyle=style, marker=".", label=run["protocol"])
    top.set_ylabel("online accuracy\n(test-then-train)")
    top.legend(loc="lower left", fontsize="small", title="lines overlap: every partial_fit ends with a round",
               title_fontsize="small")
    colors = {"drift": "tab:red", "count": "tab:blue", "final": "tab:gray"}
    for lane, run in enumerate(runs):
        for trigger, color in colors.items():
            xs = [r["position"] / 1e3 for r in run["rounds"] if r["trigger"] == trigger]
            bottom.scatter(xs, [lane] * len(xs), marker="|", s=150, color=color, label=trigger if lane == 0 else None)
    bottom.set_yticks(range(len(runs)), [run["protocol"].split(":")[0].split(",")[0] for run in runs], fontsize="small")
    bottom.set_ylim(len(runs) - 0.5, -0.5)  # first protocol on top, as in the legend above
    bottom.set_xlabel("stream position (thousand rows)")
    bottom.set_title("rounds, by trigger (count, drift, final = end of each partial_fit)", fontsize="small")
    handles = [plt.Line2D([], [], color=c, marker="|", linestyle="", markersize=12) for c in colors.values()]
    bottom.legend(handles, list(colors), loc="upper center", bbox_to_anchor=(0.5, -0.35), fontsize="small", ncol=3)
    for ax in (top, bottom):
        ax.axvline(result["change"] / 1e3, color="black", linestyle="--", linewidth=1)
    top.set_title("Drifting stream: labels flip at the dashed line", fontsize="medium")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------- 3. poisoned worker
class PoisonLastBlock(EveryNBatches):
    """``EveryNBatches(n)`` whose ``victim`` worker corrupts its update in every round.

    After the last block of its share (``n // n_workers`` blocks), the victim
    multiplies its local ``coef_`` and ``intercept_`` by ``scale`` in place, so
    the parameters it sends to the coordinator are corrupted. The data must
    hold a multiple of ``n`` blocks, so that every round's share is whole.

    Parameters
    ----------
    n : int
        Blocks per round over all workers, a multiple of ``n_workers``.
    n_workers : int
        Workers in the cluster.
    name : str
        Plugin name, to reach the local model.
    victim : str
        Address of the corrupted worker.
    scale : float
        Factor applied to the victim's parameters.
    """

    def __init__(self, n: int, n_workers: int, name: str, victim: str, scale: float):
        super().__init__(n)
        self.share = n // n_workers
        self.name, self.victim, self.scale = name, victim, scale

    def check(self, stats: LocalStats) -> str | None:
        worker = get_worker()
        if worker.address == self.victim and stats.blocks == self.share:
            model = worker.plugins[self.name].model
            model.coef_ *= self.scale
            model.intercept_ *= self.scale
        return None


def poisoned_run(client: Client, label: str, aggregator: Any, train: tuple, test: tuple, victim: str | None) -> Run:
    """One pass with ``aggregator``; ``victim`` (if any) corrupts its update every round."""
    name = f"poison-{uuid.uuid4().hex[:8]}"
    sync = (
        EveryNBatches(POISON_EVERY)
        if victim is None
        else PoisonLastBlock(POISON_EVERY, POISON_WORKERS, name, victim, POISON_SCALE)
    )
    with federated_session(
        client, make_estimator(), classes=CLASSES, name=name, check_workers=False, sync=sync,
        aggregator=aggregator, progress=False,
    ) as coord:
        start = time.perf_counter()
        coord.fit(*train)
        seconds = time.perf_counter() - start
        return Run.from_coordinator(label, coord, coord.score(*test), seconds)


def poisoned(n_samples: int) -> dict[str, Any]:
    """Experiment 3: one of four workers sends sign-flipped, scaled updates."""
    rules = {"Mean": Mean(), "Median": Median(), "TrimmedMean(0.25)": TrimmedMean(0.25), "Krum(n_byzantine=1)": Krum(1)}
    with LocalCluster(
        n_workers=POISON_WORKERS, threads_per_worker=1, dashboard_address=":0"
    ) as cluster, Client(cluster) as client:
        (X_train, y_train), _, test = load_stationary(client, n_samples, POISON_WORKERS)
        rows = X_train.shape[0] // (POISON_EVERY * BLOCK_SIZE) * POISON_EVERY * BLOCK_SIZE
        train = (X_train[:rows], y_train[:rows])
        victim = min(client.scheduler_info(n_workers=-1)["workers"])
        results = {}
        for (label, rule), poison in itertools.product(rules.items(), (False, True)):
            run = poisoned_run(client, label, rule, train, test, victim if poison else None)
            results.setdefault(label, {})["poisoned" if poison else "clean"] = asdict(run)
            print(f"  {label}, {'poisoned' if poison else 'clean'}: accuracy {run.accuracy:.4f}", flush=True)
    clean = results["Mean"]["clean"]["accuracy"]
    return {
        "train_rows": rows,
        "victim": victim,
        "sync_every": POISON_EVERY,
        "scale": POISON_SCALE,
        "rules": results,
        "goal": poisoned_goal(results, clean),
    }


def poisoned_goal(results: dict[str, dict[str, Any]], clean: float) -> dict[str, Any]:
    """Robust rules within 1 point of the clean Mean run (or better) while the poisoned Mean degrades."""
    points = {label: 100 * (r["poisoned"]["accuracy"] - clean) for label, r in results.items()}
    robust_ok = all(p >= -GOAL_ROBUST_POINTS for label, p in points.items() if label != "Mean")
    mean_degrades = points["Mean"] < -GOAL_ROBUST_POINTS
    return {
        "points_vs_clean_mean": points,
        "target": f"robust rules within {GOAL_ROBUST_POINTS} point of clean Mean or better, poisoned Mean worse",
        "met": robust_ok and mean_degrades,
    }


# --------------------------------------------------------------------- tables
def stationary_table(result: dict[str, Any]) -> str:
    runs = result["runs"]
    base = runs[0]
    lines = [
        (
            "| protocol | rounds | triggers | workers per round | bytes up+down | wall s | held-out accuracy "
            "| points vs every block | rounds / every block | bytes / every block |"
        ),
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        triggers = ", ".join(f"{k} {v}" for k, v in sorted(run["triggers"].items()))
        workers = statistics.fmean(r["n_workers"] for r in run["history"])
        lines.append(
            f"| {run['protocol']} | {run['rounds']} | {triggers} | {workers:.2f} | {run['bytes']:,} | "
            f"{run['seconds']:.2f} | {run['accuracy']:.4f} | {100 * (run['accuracy'] - base['accuracy']):+.2f} | "
            f"1/{base['rounds'] / run['rounds']:.1f} | 1/{base['bytes'] / run['bytes']:.1f} |"
        )
    return "\n".join(lines)


def drifting_table(result: dict[str, Any]) -> str:
    runs = result["runs"]
    header = "| stream rows (thousands) | phase | " + " | ".join(
        f"{short(run['protocol'])}: rounds / online acc." for run in runs
    )
    lines = [header + " |", "| --- | --- |" + " ---: |" * len(runs)]
    for i, window in enumerate(runs[0]["windows"]):
        phase = "before" if window["end"] <= result["change"] else "after"
        cells = []
        for run in runs:
            w = run["windows"][i]
            drift = f" ({w['drift_rounds']} drift)" if "Drift" in run["protocol"] else ""
            acc = "-" if w["online_accuracy"] is None else f"{w['online_accuracy']:.3f}"
            cells.append(f"{w['rounds']}{drift} / {acc}")
        lines.append(f"| {window['start'] / 1e3:.0f}-{window['end'] / 1e3:.0f} | {phase} | " + " | ".join(cells) + " |")
    lines.append(
        "| **total rounds / bytes / workers per round** | | "
        + " | ".join(
            f"{len(r['rounds'])} / {r['bytes']:,} / {statistics.fmean(x['n_workers'] for x in r['rounds']):.2f}"
            for r in runs
        )
        + " |"
    )
    lines.append(
        "| **online acc.: before / lowest / chunks to recover / last chunk** | | "
        + " | ".join(
            f"{r['recovery']['before']:.3f} / {r['recovery']['lowest_after']:.3f} / "
            f"{r['recovery']['chunks_to_recover']} / {r['recovery']['final']:.3f}"
            for r in runs
        )
        + " |"
    )
    return "\n".join(lines)


def calibrated_table(stationary_rows: list[dict[str, Any]], drifting_rows: list[dict[str, Any]]) -> str:
    """Experiment 4: one row per estimator, means over the repeated fits."""
    lines = [
        (
            "| estimator | every block: rounds / accuracy | DriftThreshold(): rounds / accuracy | points "
            "| rounds / every block | drifting stream: drift rounds before / after the change "
            "| rows from the change to the first drift round |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row, stream in zip(stationary_rows, drifting_rows, strict=True):
        goal = row["goal"]
        first = stream["rows_to_first_drift_round"]
        lines.append(
            f"| {row['estimator']} | {goal['every_block_rounds']:.0f} / {goal['every_block_accuracy']:.4f} | "
            f"{goal['calibrated_rounds']:.1f} / {goal['calibrated_accuracy']:.4f} | {goal['accuracy_points']:+.2f} | "
            f"1/{goal['round_ratio']:.1f} | {stream['drift_rounds_before_change']} / "
            f"{stream['drift_rounds_after_change']} | {'-' if first is None else f'{first:,}'} |"
        )
    return "\n".join(lines)


def short(protocol: str) -> str:
    return protocol.split(":")[0].replace(", preempt", "")


def poisoned_table(result: dict[str, Any]) -> str:
    clean = result["rules"]["Mean"]["clean"]["accuracy"]
    lines = [
        "| aggregator | clean accuracy | poisoned accuracy | poisoned, points vs clean Mean | rounds |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, runs in result["rules"].items():
        poisoned_acc = runs["poisoned"]["accuracy"]
        lines.append(
            f"| {label} | {runs['clean']['accuracy']:.4f} | {poisoned_acc:.4f} | "
            f"{100 * (poisoned_acc - clean):+.2f} | {runs['poisoned']['rounds']} |"
        )
    return "\n".join(lines)


def calibration_line(calibration: dict[str, float]) -> str:
    return (
        f"drift calibration ({calibration['pilot_blocks']} pilot blocks): relative squared change per block / "
        f"over {DRIFT_WINDOW} blocks: constant eta0=0.001 {calibration['constant_per_block']:.4f} / "
        f"{calibration['constant_window']:.4f}, default 'optimal' {calibration['optimal_per_block']:.4f} / "
        f"{calibration['optimal_window']:.4f}; threshold relative = {DRIFT_FACTOR:g} x "
        f"{calibration['constant_window']:.4f} = {calibration['relative']}"
    )


def goal_line(label: str, goal: dict[str, Any]) -> str:
    return f"- {label}: {'MET' if goal['met'] else 'NOT MET'} ({goal['target']})"


# ----------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 200,000 rows, a stream of 8 chunks, docs plot untouched"
    )
    parser.add_argument(
        "--samples", type=int, help="rows of the stationary data, before the hold-out (default 1,000,000)"
    )
    parser.add_argument("--chunks", type=int, help="partial_fit calls of the drifting stream, even, >= 8 (default 32)")
    parser.add_argument("--output", type=Path, default=RESULTS / "sync_protocols.json", help="JSON file to write")
    args = parser.parse_args(argv)
    args.samples = args.samples or (200_000 if args.quick else 1_000_000)
    args.chunks = args.chunks or (8 if args.quick else 32)
    # The drift-threshold pilots need more than PILOT_WARMUP + DRIFT_WINDOW blocks before the change.
    if args.samples < 200_000 or args.chunks < 8 or args.chunks % 2:
        parser.error("need --samples >= 200,000 and an even --chunks >= 8")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the three experiments, print their tables, write the JSON report and the plot."""
    args = parse_args(argv)
    start = time.perf_counter()
    with LocalCluster(
        n_workers=N_WORKERS, threads_per_worker=1, dashboard_address=":0"
    ) as cluster, Client(cluster) as client:
        print(f"1. stationary stream: {args.samples:,} x {throughput.N_FEATURES}, {N_WORKERS} workers", flush=True)
        report_stationary = stationary(client, args.samples)
        print(f"2. drifting stream: {args.chunks} partial_fit calls, labels flip half way", flush=True)
        report_drifting = drifting(client, args.chunks)
    print(f"3. poisoned worker: {POISON_WORKERS} workers, one corrupts its updates", flush=True)
    report_poisoned = poisoned(args.samples)
    plot = args.output.parent / "drift_stream.png"
    plot_stream(report_drifting, plot)
    written = [args.output, plot]
    if not args.quick:  # a smoke run leaves the documentation's plot alone
        DOCS_STATIC.mkdir(parents=True, exist_ok=True)
        written.append(Path(shutil.copy(plot, DOCS_STATIC / plot.name)))
    report = {
        **throughput.environment(),
        "total_seconds": time.perf_counter() - start,
        "estimator": repr(make_estimator()),
        "stationary": report_stationary,
        "drifting": report_drifting,
        "poisoned": report_poisoned,
    }
    print(
        "\n1. stationary stream\n" + calibration_line(report_stationary["calibration"]) + "\n\n"
        + stationary_table(report_stationary) + "\n\n2. drifting stream\n"
        + calibration_line(report_drifting["calibration"]) + "\n\n" + drifting_table(report_drifting)
        + "\n\n3. poisoned worker\n" + poisoned_table(report_poisoned)
        + f"\n\n4. DriftThreshold() (self-calibrating), means over {CALIBRATED_REPEATS} fits\n"
        + calibrated_table(report_stationary["calibrated"], report_drifting["calibrated"]) + "\n\n"
        + goal_line("DriftThreshold vs every block (stationary)", report_stationary["goal"]) + "\n"
        + goal_line("robust aggregation", report_poisoned["goal"])
        + "".join(
            "\n" + goal_line(f"DriftThreshold() vs every block, {row['estimator']}", row["goal"])
            for row in report_stationary["calibrated"]
        )
    )
    throughput.write_json(report, args.output)
    print(f"\nwritten: {', '.join(map(str, written))} ({report['total_seconds']:.0f} s)")
    return report


if __name__ == "__main__":
    main()
