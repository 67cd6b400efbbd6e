"""Every aggregation rule and server optimizer on three scenarios, and the straggler protocols on a fourth.

Run ``.venv/bin/python benchmarks/strategies.py`` (``--quick`` for a smoke run).
Rules: ``WeightedMean``, ``Mean``, ``Median``, ``TrimmedMean(0.25)``,
``Krum(n_byzantine=1)``, ``MultiKrum``, ``Bulyan`` (the last two only where the
cluster has enough workers for them), ``FedAvg(server_lr=1)``,
``FedAvg(server_lr=n_workers)``, ``FedAvg(server_lr=0.9)`` (the rule the
strategies guide recommends on a stream), ``FedAvgM(server_lr=1, momentum=0.9)``,
``FedAdam()``, ``FedYogi()``, ``FedAdagrad()`` (fedplugin's defaults, which are
Flower's). Four scenarios, one table each:

1. **Stationary** (``LocalCluster(n_workers=2, threads_per_worker=1)``): the
   throughput benchmark's data (``dask_ml.datasets.make_classification``, 100
   features, blocks of 4,096 rows, 10 % held out on a block boundary;
   ``--rows`` rows in all), one ``fit`` pass with ``EveryNBatches(--sync-every)``,
   ``SGDClassifier(random_state=0)``; held-out accuracy and rounds, against
   single-process ``partial_fit`` over the same blocks.
2. **Drifting stream** (same cluster): a linear concept in 20 features with
   5 % label noise, ``--batches`` numpy batches of 1,000 rows, either
   *abrupt* (labels flip half way) or *gradual* (the concept vector turns
   steadily by 180 degrees over the stream, so it ends where the abrupt one
   does). ``fit_stream`` with ``block_size=1000`` and ``EveryNBatches(4)``;
   test-then-train accuracy from ``Coordinator(scoring="accuracy")``
   (``metrics["online_score"]`` of every round, weighted by its samples),
   against single-process ``partial_fit`` over the same batches, each batch
   scored before it is trained on. Two estimators: ``SGDClassifier()`` and
   ``SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.01)``
   (both ``random_state=0``). Issue 10's goal: a rule within 0.5 points of
   single-process with both.
3. **Poisoned worker** (``LocalCluster(n_workers=4, threads_per_worker=1)``):
   the stationary data, ``EveryNBatches(8)`` (2 blocks per worker per round);
   the worker with the lowest address multiplies its ``coef_`` and
   ``intercept_`` by -10 after the last block of its share of every round
   (:class:`PoisonLastBlock`, the idea of ``sync_protocols.py``). Held-out
   accuracy clean and poisoned.

4. **Stragglers** (``LocalCluster(n_workers=4, threads_per_worker=1)``): one
   worker of four made four times slower; synchronous rounds against
   ``Quorum`` and ``FedBuff`` (``stragglers.py``, which runs it on its own and
   documents how the straggler is slowed), one repeat here.

A run that fails (a refusal, divergence) is reported with its error, not
dropped. Tables go to stdout, everything to ``benchmarks/results/strategies.json``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dask
import numpy as np
from distributed import Client, LocalCluster, wait
from sklearn.base import clone
from sklearn.linear_model import SGDClassifier

from fedplugin import (
    Bulyan,
    EveryNBatches,
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedYogi,
    Krum,
    Mean,
    Median,
    MultiKrum,
    TrimmedMean,
    WeightedMean,
)
from fedplugin.adapters import adapter_for
from fedplugin.session import federated_session

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cloudpickle  # noqa: E402
import sync_protocols  # noqa: E402
import stragglers  # noqa: E402
import throughput  # the throughput benchmark's data, environment and JSON writer
from sync_protocols import PoisonLastBlock  # noqa: E402

cloudpickle.register_pickle_by_value(sync_protocols)

CLASSES = [0, 1]
BLOCK_SIZE = throughput.BLOCK_SIZE
N_WORKERS = 2
POISON_WORKERS = 4
POISON_EVERY = 8
POISON_SCALE = -10.0
#: Drifting stream: rows per batch (= block), batches per round, features, label noise.
STREAM_BATCH = 1000
STREAM_EVERY = 4
STREAM_FEATURES = 20
STREAM_NOISE = 0.05
DRIFT_KINDS = ("abrupt", "gradual")
#: Strict synchronous rounds: the rules are compared on the same rounds, not on the timing of overlapped ones.
OVERLAP = False
#: Issue 10: test-then-train accuracy within this many points of single-process.
GOAL_POINTS = 0.5
#: The damped server step the strategies guide recommends on a stream ("Averaging on a stream").
STREAM_SERVER_LR = 0.9
RESULTS = HERE / "results"


def stream_estimators() -> dict[str, SGDClassifier]:
    """The two estimators of the drifting stream, by the label the tables use."""
    return {
        "default": SGDClassifier(random_state=0),
        "constant": SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.01, random_state=0),
    }


# ----------------------------------------------------------------------- rules
def rule_set(n_workers: int) -> list[tuple[str, Any]]:
    """``(label, aggregator)`` of every rule for ``n_workers``; a string instead of an aggregator says why it is skipped.

    Multi-Krum needs ``n > 2f + 2`` and Bulyan ``n >= 4f + 3`` updates per
    round: each gets the largest ``f`` the cluster allows (Multi-Krum then
    averages ``n - 1`` updates, so that it can leave one out).
    """
    n = n_workers
    rules: list[tuple[str, Any]] = [
        ("WeightedMean", WeightedMean()),
        ("Mean", Mean()),
        ("Median", Median()),
        ("TrimmedMean(0.25)", TrimmedMean(0.25)),
        ("Krum(n_byzantine=1)", Krum(1)),
    ]
    f_multi, f_bulyan = (n - 3) // 2, (n - 3) // 4
    rules.append(
        (f"MultiKrum(f={f_multi}, m={n - 1})", MultiKrum(f_multi, m=n - 1)) if f_multi >= 0
        else ("MultiKrum", f"skipped: needs n > 2f + 2 >= 2 workers per round, n={n}")
    )
    rules.append(
        (f"Bulyan(f={f_bulyan})", Bulyan(f_bulyan)) if f_bulyan >= 0
        else ("Bulyan", f"skipped: needs n >= 4f + 3 >= 3 workers per round, n={n}")
    )
    rules += [
        ("FedAvg(server_lr=1)", FedAvg(server_lr=1.0)),
        (f"FedAvg(server_lr={n})", FedAvg(server_lr=float(n))),
        (f"FedAvg(server_lr={STREAM_SERVER_LR:g})", FedAvg(server_lr=STREAM_SERVER_LR)),
        ("FedAvgM(server_lr=1, momentum=0.9)", FedAvgM(server_lr=1.0, momentum=0.9)),
        ("FedAdam() (eta=0.1)", FedAdam()),
        ("FedYogi() (eta=0.01)", FedYogi()),
        ("FedAdagrad() (eta=0.1)", FedAdagrad()),
    ]
    return rules


def attempt(label: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()``, or its error as ``{"error": ...}``: a failing rule is a result too."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - reported in the table, not hidden
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        print(f"    {label}: failed: {message}", flush=True)
        return {"error": message}


# ---------------------------------------------------------------- 1. stationary
def load_stationary(client: Client, rows: int, n_workers: int, multiple: int = 1) -> tuple[tuple, tuple, Any]:
    """Persisted training blocks (a whole number of ``multiple`` blocks), numpy test set, lazy training X, y."""
    X_lazy, y_lazy, X_test, y_test = throughput.make_problem(rows)
    n_train = X_lazy.shape[0] // (multiple * BLOCK_SIZE) * multiple * BLOCK_SIZE
    X_lazy, y_lazy = X_lazy[:n_train], y_lazy[:n_train]
    test = dask.compute(X_test, y_test, scheduler="threads")
    client.wait_for_workers(n_workers)
    X_train, y_train = client.persist([X_lazy, y_lazy])
    wait([X_train, y_train])
    # The first fit after persist trains on a different block placement than the
    # ones after it (it moves y blocks next to their X blocks): a warm-up fit, so
    # that every rule trains on the same placement.
    fit_rule(client, WeightedMean(), EveryNBatches(multiple * n_workers), (X_train, y_train), test)
    return (X_train, y_train), test, (X_lazy, y_lazy)


def single_stationary(lazy: tuple, test: tuple) -> dict[str, Any]:
    """Single-process ``partial_fit`` over the same blocks in order, computed here one at a time."""
    model = SGDClassifier(random_state=0)
    X, y = lazy
    for i in range(X.numblocks[0]):
        X_block, y_block = dask.compute(X.blocks[i], y.blocks[i], scheduler="threads")
        model.partial_fit(X_block, y_block, classes=CLASSES)
    return {"accuracy": float(model.score(*test))}


def fit_rule(client: Client, aggregator: Any, sync: Any, train: tuple, test: tuple, name: str | None = None) -> dict[str, Any]:
    """One ``fit`` pass of a fresh ``SGDClassifier(random_state=0)`` with ``aggregator``; held-out accuracy."""
    with federated_session(
        client, SGDClassifier(random_state=0), classes=CLASSES, name=name, check_workers=False,
        sync=sync, aggregator=aggregator, overlap=OVERLAP, progress=False,
    ) as coord:
        coord.fit(*train)
        return {"accuracy": float(coord.score(*test)), "rounds": len(coord.history), "excluded": excluded(coord.history)}


def excluded(history: Sequence[Any]) -> int:
    """Worker updates left out of their round (non-finite parameters or diverged training)."""
    return sum(len(r.excluded_workers) for r in history)


def stationary(client: Client, rows: int, sync_every: int) -> dict[str, Any]:
    """Scenario 1: every rule, one pass over the stationary data."""
    train, test, lazy = load_stationary(client, rows, N_WORKERS)
    results = {"single-process partial_fit": single_stationary(lazy, test)}
    for label, rule in rule_set(N_WORKERS):
        if isinstance(rule, str):
            results[label] = {"skipped": rule}
            continue
        results[label] = attempt(label, lambda: fit_rule(client, rule, EveryNBatches(sync_every), train, test))
        print(f"  {label}: {results[label]}", flush=True)
    return {"train_rows": int(train[1].shape[0]), "test_rows": len(test[1]), "sync_every": sync_every, "rules": results}


# ------------------------------------------------------------ 2. drifting stream
def drifting_stream(kind: str, n_batches: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``n_batches * STREAM_BATCH`` rows of a linear concept that flips half way (abrupt) or turns (gradual)."""
    if kind not in DRIFT_KINDS:
        raise ValueError(f"{kind=} not supported, expected one of {DRIFT_KINDS}")
    rng = np.random.default_rng(seed)
    w0, w1 = rng.normal(size=(2, STREAM_FEATURES))
    w1 -= (w1 @ w0) / (w0 @ w0) * w0  # orthogonal to w0, same length
    w1 *= np.linalg.norm(w0) / np.linalg.norm(w1)
    n = n_batches * STREAM_BATCH
    X = rng.normal(size=(n, STREAM_FEATURES))
    position = np.arange(n) / n
    if kind == "abrupt":
        margin = (X @ w0) * np.where(position < 0.5, 1.0, -1.0)
    else:
        angle = np.pi * position[:, None]
        margin = (X * (np.cos(angle) * w0 + np.sin(angle) * w1)).sum(axis=1)
    y = (margin > 0).astype(np.int64)
    flip = rng.random(n) < STREAM_NOISE
    y[flip] = 1 - y[flip]
    return X, y


def batches(X: np.ndarray, y: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(y), STREAM_BATCH):
        yield X[start : start + STREAM_BATCH], y[start : start + STREAM_BATCH]


def single_online(estimator: SGDClassifier, X: np.ndarray, y: np.ndarray) -> float:
    """Test-then-train accuracy of single-process ``partial_fit``, from the model a worker starts with."""
    model = adapter_for(estimator).initialize(clone(estimator), X.shape[1], np.array(CLASSES))
    correct = 0.0
    for X_batch, y_batch in batches(X, y):
        correct += model.score(X_batch, y_batch) * len(y_batch)
        model.partial_fit(X_batch, y_batch, classes=CLASSES)
    return correct / len(y)


def federated_online(client: Client, estimator: SGDClassifier, aggregator: Any, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Test-then-train accuracy of ``fit_stream`` (the workers score each block before training on it)."""
    with federated_session(
        client, clone(estimator), classes=CLASSES, check_workers=False, sync=EveryNBatches(STREAM_EVERY),
        aggregator=aggregator, block_size=STREAM_BATCH, scoring="accuracy", overlap=OVERLAP, progress=False,
    ) as coord:
        coord.fit_stream(batches(X, y))
        history = list(coord.history)
    samples = sum(r.samples for r in history)
    if samples != len(y):
        raise RuntimeError(f"trained {samples:,} samples of {len(y):,}")
    score = sum(r.metrics["online_score"] * r.samples for r in history if r.samples) / samples
    if not math.isfinite(score):
        raise RuntimeError(f"online score {score}")
    return {"online_accuracy": score, "rounds": len(history), "excluded": excluded(history)}


def drifting(client: Client, n_batches: int) -> dict[str, Any]:
    """Scenario 2: every rule on both drifts and both estimators, against single-process."""
    streams = {kind: drifting_stream(kind, n_batches) for kind in DRIFT_KINDS}
    columns = [(kind, est) for kind in DRIFT_KINDS for est in stream_estimators()]
    single = {f"{kind}/{est}": single_online(stream_estimators()[est], *streams[kind]) for kind, est in columns}
    results: dict[str, Any] = {}
    for label, rule in rule_set(N_WORKERS):
        if isinstance(rule, str):
            results[label] = {"skipped": rule}
            continue
        results[label] = {}
        for kind, est in columns:
            key = f"{kind}/{est}"
            run = attempt(f"{label} {key}", lambda: federated_online(client, stream_estimators()[est], rule, *streams[kind]))
            if "online_accuracy" in run:
                run["points_vs_single"] = 100 * (run["online_accuracy"] - single[key])
            results[label][key] = run
        print(f"  {label}: {_gaps(results[label])}", flush=True)
    return {
        "rows": n_batches * STREAM_BATCH, "batch_rows": STREAM_BATCH, "sync_every": STREAM_EVERY,
        "features": STREAM_FEATURES, "single_process": single, "rules": results, "goal": drift_goal(results),
    }


def _gaps(runs: dict[str, Any]) -> str:
    return ", ".join(f"{k} {r.get('points_vs_single', float('nan')):+.2f}" for k, r in runs.items())


def drift_goal(results: dict[str, Any]) -> dict[str, Any]:
    """Rules within ``GOAL_POINTS`` of single-process with both estimators, per drift kind and on both."""
    def met(runs: dict[str, Any], kinds: Sequence[str]) -> bool:
        keys = [k for k in runs if k.split("/")[0] in kinds]
        return bool(keys) and all(runs[k].get("points_vs_single", -math.inf) >= -GOAL_POINTS for k in keys)

    rules = {label: runs for label, runs in results.items() if "skipped" not in runs}
    per_kind = {kind: [label for label, runs in rules.items() if met(runs, [kind])] for kind in DRIFT_KINDS}
    both = [label for label, runs in rules.items() if met(runs, DRIFT_KINDS)]
    return {
        "target": f"test-then-train accuracy >= single-process - {GOAL_POINTS} points, both estimators",
        "met_by": per_kind, "met_by_on_both_drifts": both, "met": bool(both),
    }


# ------------------------------------------------------------ 3. poisoned worker
# PoisonLastBlock: sync_protocols.py's, sent to the workers by value (they cannot import benchmarks/).


def poisoned(rows: int) -> dict[str, Any]:
    """Scenario 3: one of four workers sends sign-flipped, scaled updates; every rule clean and poisoned."""
    with LocalCluster(n_workers=POISON_WORKERS, threads_per_worker=1, dashboard_address=":0") as cluster, Client(
        cluster
    ) as client:
        train, test, _ = load_stationary(client, rows, POISON_WORKERS, multiple=POISON_EVERY)
        victim = min(client.scheduler_info(n_workers=-1)["workers"])
        results: dict[str, Any] = {}
        for label, rule in rule_set(POISON_WORKERS):
            if isinstance(rule, str):
                results[label] = {"skipped": rule}
                continue
            name = f"poison-{uuid.uuid4().hex[:8]}"
            sync = PoisonLastBlock(POISON_EVERY, POISON_WORKERS, name, victim, POISON_SCALE)
            results[label] = {
                "clean": attempt(label, lambda: fit_rule(client, rule, EveryNBatches(POISON_EVERY), train, test)),
                "poisoned": attempt(label, lambda: fit_rule(client, rule, sync, train, test, name=name)),
            }
            print(f"  {label}: {results[label]}", flush=True)
    return {"train_rows": int(train[1].shape[0]), "victim": victim, "sync_every": POISON_EVERY,
            "scale": POISON_SCALE, "rules": results}


# ------------------------------------------------------------------------ tables
def _acc(run: dict[str, Any], key: str = "accuracy") -> str:
    if "skipped" in run:
        return "-"
    return f"{run[key]:.4f}" if key in run else f"fails ({run['error']})"


def _note(*runs: dict[str, Any]) -> str:
    """What a row's note says: why it was skipped, or how many updates were excluded."""
    if "skipped" in runs[0]:
        return runs[0]["skipped"]
    count = sum(run.get("excluded", 0) for run in runs)
    return f"{count} updates excluded (not finite or diverged)" if count else ""


def stationary_table(result: dict[str, Any]) -> str:
    base = result["rules"]["single-process partial_fit"]["accuracy"]
    lines = ["| rule | held-out accuracy | points vs single-process | rounds | note |",
             "| --- | ---: | ---: | ---: | --- |"]
    for label, run in result["rules"].items():
        points = f"{100 * (run['accuracy'] - base):+.2f}" if "accuracy" in run else "-"
        rounds = run.get("rounds", "-")
        lines.append(f"| {label} | {_acc(run)} | {points} | {rounds} | {_note(run)} |")
    return "\n".join(lines)


def drifting_table(result: dict[str, Any]) -> str:
    keys = list(result["single_process"])
    lines = ["| rule | " + " | ".join(k.replace("/", ", ") for k in keys) + " | rounds | goal |",
             "| --- |" + " ---: |" * len(keys) + " ---: | --- |"]
    lines.append("| single-process partial_fit | " + " | ".join(f"{result['single_process'][k]:.4f}" for k in keys)
                 + " | - | |")
    both = result["goal"]["met_by_on_both_drifts"]
    for label, runs in result["rules"].items():
        if "skipped" in runs:
            lines.append(f"| {label} | " + " | ".join("-" for _ in keys) + f" | - | {runs['skipped']} |")
            continue
        cells = [
            f"{r['online_accuracy']:.4f} ({r['points_vs_single']:+.2f})" if "online_accuracy" in r else f"fails ({r['error']})"
            for r in (runs[k] for k in keys)
        ]
        rounds = next((r["rounds"] for r in runs.values() if "rounds" in r), "-")
        met = [kind for kind in DRIFT_KINDS if label in result["goal"]["met_by"][kind]]
        goal = "met" if label in both else ("met on " + ", ".join(met) + " only" if met else "NOT MET")
        goal = ", ".join(filter(None, [goal, _note(*runs.values())]))
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {rounds} | {goal} |")
    return "\n".join(lines)


def poisoned_table(result: dict[str, Any]) -> str:
    lines = ["| rule | clean accuracy | poisoned accuracy | points, poisoned vs clean | rounds | note |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for label, runs in result["rules"].items():
        if "skipped" in runs:
            lines.append(f"| {label} | - | - | - | - | {runs['skipped']} |")
            continue
        clean, bad = runs["clean"], runs["poisoned"]
        points = f"{100 * (bad['accuracy'] - clean['accuracy']):+.2f}" if "accuracy" in clean and "accuracy" in bad else "-"
        lines.append(f"| {label} | {_acc(clean)} | {_acc(bad)} | {points} | {bad.get('rounds', '-')} | {_note(clean, bad)} |")
    return "\n".join(lines)


def goal_line(goal: dict[str, Any]) -> str:
    per_kind = "; ".join(f"{kind}: {', '.join(rules) or 'none'}" for kind, rules in goal["met_by"].items())
    verdict = "MET by " + ", ".join(goal["met_by_on_both_drifts"]) if goal["met"] else "NOT MET on both drifts"
    return f"issue 10 stream goal ({goal['target']}): {verdict} ({per_kind})"


# -------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small data, to check that the script runs")
    parser.add_argument("--rows", type=int, help="rows of the stationary data, 10 %% held out (default 400,000; 60,000 with --quick)")
    parser.add_argument("--sync-every", type=int, default=8, help="stationary scenario: blocks per round (default 8)")
    parser.add_argument("--batches", type=int, help="1,000-row batches of each drifting stream (default 200; 24 with --quick)")
    parser.add_argument("--output", type=Path, default=RESULTS / "strategies.json", help="JSON file to write")
    args = parser.parse_args(argv)
    args.rows = args.rows or (60_000 if args.quick else 400_000)
    args.batches = args.batches or (24 if args.quick else 200)
    if args.rows < 20 * BLOCK_SIZE // 2 or args.batches < 2 * STREAM_EVERY:
        parser.error(f"need --rows >= {20 * BLOCK_SIZE // 2:,} and --batches >= {2 * STREAM_EVERY}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the four scenarios, print their tables, write the JSON report."""
    args = parse_args(argv)
    start = time.perf_counter()
    with LocalCluster(n_workers=N_WORKERS, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as client:
        print(f"1. stationary: {args.rows:,} rows, {N_WORKERS} workers, EveryNBatches({args.sync_every})", flush=True)
        report_stationary = stationary(client, args.rows, args.sync_every)
        print(f"2. drifting streams: {args.batches} batches of {STREAM_BATCH:,} rows, {N_WORKERS} workers", flush=True)
        report_drifting = drifting(client, args.batches)
    print(f"3. poisoned worker: {POISON_WORKERS} workers, one multiplies its update by {POISON_SCALE:g}", flush=True)
    report_poisoned = poisoned(args.rows)
    print(f"4. stragglers: {stragglers.N_WORKERS} workers, one {stragglers.SLOWDOWN:g}x slower", flush=True)
    report_stragglers = stragglers.run(argparse.Namespace(rows=args.rows, repeats=1))
    straggler_rows = stragglers.summarize(report_stragglers)
    report_stragglers.update(summary=straggler_rows, goals=stragglers.goals(straggler_rows))
    report = {
        **throughput.environment(), "total_seconds": time.perf_counter() - start, "quick": args.quick,
        "stationary": report_stationary, "drifting": report_drifting, "poisoned": report_poisoned,
        "stragglers": report_stragglers,
    }
    print(
        f"\n1. stationary ({report_stationary['train_rows']:,} training rows, {report_stationary['test_rows']:,} held out)\n"
        + stationary_table(report_stationary)
        + f"\n\n2. drifting streams ({report_drifting['rows']:,} rows; test-then-train accuracy, points vs single-process)\n"
        + drifting_table(report_drifting) + "\n\n" + goal_line(report_drifting["goal"])
        + f"\n\n3. poisoned worker ({report_poisoned['train_rows']:,} training rows)\n" + poisoned_table(report_poisoned)
        + f"\n\n4. stragglers (measured {report_stragglers['measured_slowdown']:.1f}x slower per block)\n"
        + stragglers.format_table(straggler_rows)
    )
    throughput.write_json(report, args.output)
    print(f"\nwritten: {args.output} ({report['total_seconds']:.0f} s)")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
