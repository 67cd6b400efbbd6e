"""The federated scenario of the original study, on a LocalCluster or your own cluster.

Run ``python -m fedplugin.demo`` (``make demo`` sets everything up first). It
makes a 1,000,000 x 100 classification problem as a dask array (chunks of
4,096 rows, 10 % held out), trains single-process ``partial_fit`` over the same
blocks as a baseline, then fedplugin with ``EveryNBatches(50)`` on the cluster
(after a short warm-up fit under another plugin name), and prints samples/s and
held-out accuracy for both.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
from distributed import Client, LocalCluster, wait
from sklearn.linear_model import SGDClassifier

from . import EveryNBatches, WeightedMean
from .session import federated_session
from .wording import count, plural


def make_data(client: Client, n_samples: int, n_features: int, block_size: int, seed: int = 0):
    """Persisted train/test dask arrays split on a block boundary (10 % held out)."""
    from dask_ml.datasets import make_classification

    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_features // 2,
        n_redundant=n_features // 10,
        flip_y=0.05,
        chunks=block_size,
        random_state=seed,
    )
    n_train = int(n_samples * 0.9) // block_size * block_size
    X_train, y_train = client.persist([X[:n_train], y[:n_train]])
    wait([X_train, y_train])
    return X_train, y_train, X[n_train:].compute(), y[n_train:].compute()


def single_process(X: np.ndarray, y: np.ndarray, block_size: int) -> tuple[SGDClassifier, float]:
    """The baseline: one model, ``partial_fit`` over the blocks in order; returns (model, seconds)."""
    model = SGDClassifier(random_state=0)
    classes = np.unique(y)
    start = time.perf_counter()
    for row in range(0, len(y), block_size):
        model.partial_fit(X[row : row + block_size], y[row : row + block_size], classes=classes)
    return model, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m fedplugin.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", help="address of an existing scheduler (default: start a LocalCluster)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers, one thread each (default 2)")
    parser.add_argument("--samples", type=int, default=1_000_000, help="rows in all (default 1,000,000)")
    parser.add_argument("--features", type=int, default=100, help="columns (default 100)")
    parser.add_argument("--block-size", type=int, default=4096, help="rows per block (default 4096)")
    parser.add_argument("--sync-every", type=int, default=50, help="blocks between rounds (default 50)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.samples < 10 * args.block_size:
        parser.error("need --workers >= 1 and --samples >= 10 x --block-size")

    if args.scheduler:
        client, cluster = Client(args.scheduler), None
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0")
        client = Client(cluster)
    try:
        client.wait_for_workers(1 if args.scheduler else args.workers)
        print(f"cluster: {count(len(client.scheduler_info()['workers']), 'worker')}, dashboard {client.dashboard_link}")
        print(f"data: {args.samples:,} x {args.features}, blocks of {args.block_size:,} {plural(args.block_size, 'row')}, 10 % held out")
        X_train, y_train, X_test, y_test = make_data(client, args.samples, args.features, args.block_size)
        n_train = X_train.shape[0]

        # The workers' first training task pays one-off costs (imports, first calls)
        # that the client process, where the baseline runs, has paid already.
        warm_up = min(n_train, X_train.chunks[0][0] * 2 * len(client.scheduler_info()["workers"]))
        with federated_session(client, SGDClassifier(), classes=[0, 1], progress=False) as warm:
            warm.fit(X_train[:warm_up], y_train[:warm_up])

        # A session registers the plugin under a fresh name (checking that every worker
        # can load it), and at its end unregisters it and drops its stored model.
        options = dict(sync=EveryNBatches(args.sync_every), aggregator=WeightedMean(), progress=False)
        with federated_session(client, SGDClassifier(random_state=0), classes=[0, 1], **options) as coord:
            start = time.perf_counter()
            coord.fit(X_train, y_train)
            seconds = time.perf_counter() - start
            n_workers = len(client.scheduler_info()["workers"])
            rounds, trained = len(coord.history), sum(r.samples for r in coord.history)
            fed_row = {"method": f"fedplugin, {count(n_workers, 'worker')}, EveryNBatches({args.sync_every})",
                       "samples/s": n_train / seconds, "accuracy": coord.score(X_test, y_test)}

        baseline, seconds = single_process(*client.compute([X_train, y_train], sync=True), args.block_size)
        rows = [{"method": "single-process partial_fit", "samples/s": n_train / seconds,
                 "accuracy": baseline.score(X_test, y_test)}, fed_row]

        print(f"\n{'method':<45} {'samples/s':>12} {'held-out accuracy':>18}")
        for row in rows:
            print(f"{row['method']:<45} {row['samples/s']:>12,.0f} {row['accuracy']:>18.4f}")
        print(f"\nfedplugin: {count(rounds, 'round')}, {trained:,} samples "
              f"(= {n_train:,} training rows), speed-up x{rows[1]['samples/s'] / rows[0]['samples/s']:.2f}")
        return rows
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
