"""Make ``docs/_static/history.png``, the history plot the documentation shows.

Run it from the repository root::

    .venv/bin/python docs/make_history_plot.py

It trains for real, on a ``LocalCluster`` of 2 single-threaded workers: a
seeded 240,000 x 50 classification problem (10 % held out) arrives as a stream
of 6 chunks; each chunk is handed to ``Coordinator.partial_fit``. Rounds end
after 8 blocks or earlier when a worker drifts (``AnyOf(EveryNBatches(8),
DriftThreshold(relative=1.0))``). ``scoring="accuracy"`` makes fedplugin
record each round's test-then-train accuracy as ``metrics["online_score"]``;
after each chunk this script also measures the global model's held-out
accuracy and adds it to the ``metrics`` of that chunk's last round.
:func:`fedplugin.plotting.plot_history` draws both in its fourth panel. The
run's summary is printed; timings depend on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.linear_model import SGDClassifier  # noqa: E402

from fedplugin import AnyOf, Coordinator, DriftThreshold, EveryNBatches, FederatedModelPlugin  # noqa: E402
from fedplugin.plotting import plot_history  # noqa: E402
from fedplugin.wording import count  # noqa: E402

OUT = Path(__file__).resolve().parent / "_static" / "history.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write the PNG (default {OUT})")
    args = parser.parse_args()

    X, y = make_classification(
        n_samples=240_000, n_features=50, n_informative=25, n_redundant=5, flip_y=0.05, random_state=0
    )
    n_test = len(X) // 10
    X_test, y_test, X_train, y_train = X[:n_test], y[:n_test], X[n_test:], y[n_test:]

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as client:
        plugin = FederatedModelPlugin(SGDClassifier(random_state=0), classes=[0, 1], name="history-plot")
        client.register_plugin(plugin)
        coord = Coordinator(
            client,
            plugin,
            sync=AnyOf(EveryNBatches(8), DriftThreshold(relative=1.0)),
            block_size=2048,
            progress=False,
            scoring="accuracy",
        )
        history = []
        for chunk_X, chunk_y in zip(np.array_split(X_train, 6), np.array_split(y_train, 6)):
            coord.partial_fit(chunk_X, chunk_y)
            accuracy = coord.score(X_test, y_test)
            new = coord.history[len(history):]
            new[-1] = dataclasses.replace(new[-1], metrics={**new[-1].metrics, "held-out accuracy": accuracy})
            history.extend(new)

    fig = plot_history(history)
    fig.suptitle("fedplugin history: 2 workers, 6 chunks streamed through Coordinator.partial_fit")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)

    triggers = {t: sum(r.trigger == t for r in history) for t in dict.fromkeys(r.trigger for r in history)}
    seconds = sum(r.seconds for r in history)
    print(f"wrote {args.out}")
    print(f"{count(len(history), 'round')} {triggers}, {history[-1].total_samples:,} samples in {seconds:.2f} s of rounds")
    held_out = [round(r.metrics["held-out accuracy"], 4) for r in history if "held-out accuracy" in r.metrics]
    online = [round(r.metrics["online_score"], 4) for r in history if "online_score" in r.metrics]
    print(f"held-out accuracy after each chunk: {held_out}")
    print(f"online (test-then-train) accuracy of the rounds: first {online[:3]}, last {online[-3:]}")


if __name__ == "__main__":
    main()
