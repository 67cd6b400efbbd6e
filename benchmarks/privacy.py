"""Accuracy against privacy spent: DP-FedAvg on the throughput data (issue 12, item 1).

Run ``.venv/bin/python benchmarks/privacy.py`` (``--quick`` for a smoke run).
The data is the throughput benchmark's (``dask_ml.datasets.make_classification``,
100 features, blocks of 4,096 rows, 10 % held out on a block boundary;
``--rows`` rows in all), trained by ``SGDClassifier(random_state=0)`` on a
``LocalCluster(n_workers=--workers, threads_per_worker=1)`` for ``--epochs``
passes with ``EveryNBatches(--workers)`` (one block per worker per round) and
strict synchronous rounds. Each row of the table is one configuration of
:class:`fedplugin.DPFedAvg` (noise multiplier, clip norm, sampling rate; adaptive
rows start from ``--clip`` and report where the clip norm ended), plus the
baseline ``Mean()`` without noise (epsilon infinite). For each: held-out
accuracy, rounds, the epsilon the last round recorded at ``--delta``, the same
epsilon computed here by ``dp_accounting``'s RDP accountant from the rounds
and the row's settings (they must match), and the tighter PLD accountant's
epsilon for the same events. Accuracy, not speed: no timings are reported.
The table goes to stdout, everything to ``benchmarks/results/privacy.json``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dp_accounting
from distributed import Client, LocalCluster
from dp_accounting import pld
from sklearn.linear_model import SGDClassifier

from fedplugin import DPFedAvg, EveryNBatches, Mean, store
from fedplugin.privacy import epsilon_spent, round_event
from fedplugin.session import federated_session

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import strategies  # noqa: E402  (the stationary data, loaded as strategies.py does)
import throughput  # noqa: E402  (environment and JSON writer)

CLASSES = [0, 1]


def configurations(clip: float) -> list[tuple[str, dict[str, Any] | None]]:
    """``(label, DPFedAvg settings)`` of every row; ``None`` is the noiseless baseline."""
    rows: list[tuple[str, dict[str, Any] | None]] = [("Mean() (no DP)", None)]
    for noise in (0.5, 1.0, 2.0):
        rows.append((f"fixed, z={noise}", dict(noise_multiplier=noise, clip_norm=clip)))
    rows.append(("fixed, z=1.0, q=0.5", dict(noise_multiplier=1.0, clip_norm=clip, sampling_rate=0.5)))
    for noise in (0.5, 1.0):
        rows.append((f"adaptive, z={noise}", dict(noise_multiplier=noise, clip_norm=clip, adaptive_clipping=True)))
    return rows


def pld_epsilon(sampling_rate: float, noise: float, rounds: int, delta: float) -> float:
    """Epsilon of the same events by ``dp_accounting``'s PLD accountant (tighter than RDP)."""
    accountant = pld.PLDAccountant()
    accountant.compose(round_event(sampling_rate, noise), rounds)
    return float(accountant.get_epsilon(delta))


def run_row(client: Client, settings: dict[str, Any] | None, data: tuple, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One fit of a fresh model with the row's rule; accuracy and the privacy spent."""
    train, test = data
    rule = Mean() if settings is None else DPFedAvg(**settings, delta=args.delta, seed=seed)
    with federated_session(
        client, SGDClassifier(random_state=0), classes=CLASSES, check_workers=False,
        sync=EveryNBatches(args.workers), aggregator=rule, overlap=False, progress=False,
    ) as coord:
        coord.fit(*train, epochs=args.epochs)
        history = list(coord.history)
        accuracy = float(coord.score(*test))
        state = store.fetch(client, coord.name).extra.get("server")  # DPFedAvg's: clip norm, events
    result: dict[str, Any] = {"accuracy": accuracy, "rounds": len(history)}
    if settings is None:
        return {**result, "epsilon": math.inf}
    rate, noise, rounds = rule.sampling_rate, rule.noise_multiplier, history[-1].round
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(round_event(rate, noise), rounds)
    return {
        **result, "settings": settings, "sampling_rate": rate, "noise_multiplier": noise,
        "update_noise_multiplier": rule.update_noise_multiplier,
        "epsilon": history[-1].epsilon, "epsilon_dp_accounting": float(accountant.get_epsilon(args.delta)),
        "epsilon_from_events": epsilon_spent([[rate, noise, rounds]], args.delta),
        "epsilon_pld": pld_epsilon(rate, noise, rounds, args.delta),
        "clip_norm_start": settings["clip_norm"],
        "clip_norm_end": float(state["clip_norm"]) if settings.get("adaptive_clipping") else None,
    }


def table(rows: dict[str, dict[str, Any]], delta: float) -> str:
    lines = [
        f"| configuration | noise multiplier z | clip norm | sampling rate q | rounds | epsilon (delta={delta:g}) "
        "| = dp_accounting RDP | PLD epsilon | accuracy |",
        "|---|---:|---:|---:|---:|---:|:---:|---:|---:|",
    ]
    for label, r in rows.items():
        if "error" in r:
            lines.append(f"| {label} | failed: {r['error']} ||||||||")
            continue
        if "settings" not in r:
            lines.append(f"| {label} | - | - | 1 | {r['rounds']} | inf | - | inf | {r['accuracy']:.4f} |")
            continue
        clip = f"{r['clip_norm_start']:g}" + (f" -> {r['clip_norm_end']:.3g}" if r["clip_norm_end"] is not None else "")
        same = "yes" if math.isclose(r["epsilon"], r["epsilon_dp_accounting"], rel_tol=1e-9) else "NO"
        lines.append(
            f"| {label} | {r['noise_multiplier']:g} | {clip} | {r['sampling_rate']:g} | {r['rounds']} "
            f"| {r['epsilon']:.3g} | {same} | {r['epsilon_pld']:.3g} | {r['accuracy']:.4f} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small data, one epoch, to check that the script runs")
    parser.add_argument("--rows", type=int, help="rows in all, 10 %% held out (default 400,000; 60,000 with --quick)")
    parser.add_argument("--workers", type=int, help="workers, each one update per round (default 8; 4 with --quick)")
    parser.add_argument("--epochs", type=int, help="passes over the data (default 5; 1 with --quick)")
    parser.add_argument("--clip", type=float, default=1.0, help="clip norm (adaptive rows: the initial one; default 1.0)")
    parser.add_argument("--delta", type=float, default=1e-5, help="delta of the reported epsilon (default 1e-5)")
    parser.add_argument("--output", type=Path, default=strategies.RESULTS / "privacy.json", help="JSON file to write")
    args = parser.parse_args(argv)
    args.rows = args.rows or (60_000 if args.quick else 400_000)
    args.workers = args.workers or (4 if args.quick else 8)
    args.epochs = args.epochs or (1 if args.quick else 5)
    if args.workers < 1 or args.epochs < 1 or args.rows < 20 * strategies.BLOCK_SIZE // 2:
        parser.error(f"need --workers >= 1, --epochs >= 1 and --rows >= {20 * strategies.BLOCK_SIZE // 2:,}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every configuration, print the table, write the JSON report."""
    args = parse_args(argv)
    start = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as client:
        train, test, _ = strategies.load_stationary(client, args.rows, args.workers)
        print(f"{args.rows:,} rows, {args.workers} workers, {args.epochs} epochs, EveryNBatches({args.workers})", flush=True)
        for seed, (label, settings) in enumerate(configurations(args.clip)):
            rows[label] = strategies.attempt(label, lambda: run_row(client, settings, (train, test), args, seed))
            print(f"  {label}: {rows[label]}", flush=True)
    report = {
        **throughput.environment(), "total_seconds": time.perf_counter() - start, "quick": args.quick,
        "rows_in_all": args.rows, "train_rows": int(train[1].shape[0]), "test_rows": len(test[1]),
        "workers": args.workers, "epochs": args.epochs, "delta": args.delta, "results": rows,
    }
    print(f"\n{report['train_rows']:,} training rows, {report['test_rows']:,} held out\n" + table(rows, args.delta))
    throughput.write_json(report, args.output)
    print(f"\nwritten: {args.output}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
