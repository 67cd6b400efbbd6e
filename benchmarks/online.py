"""Online use: stream throughput, labelling latency, and out-of-core training memory.

Run ``.venv/bin/python benchmarks/online.py`` (``--quick`` for a smoke run). In one run,
on a ``LocalCluster(n_workers=2, threads_per_worker=1)``:

1. ``Coordinator.fit_stream`` over a generator of 4,096-row numpy batches against the
   bulk ``fit`` on the same rows, as numpy and as a persisted dask array;
2. ``Coordinator.predict`` latency for 1-row and 1,000-row numpy requests, computed
   on a worker with the global model (p50, p99, requests/s);
3. ``fit`` on a lazy (never persisted) 10,000,000 x 100 dask array, each block
   computed inside the training task: samples/s and each worker's peak memory.

Prints tables and writes ``benchmarks/results/online.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client, LocalCluster, wait
from sklearn.linear_model import SGDClassifier

from fedplugin import EveryNBatches
from fedplugin.session import federated_session
from fedplugin.wording import count

RESULTS = Path(__file__).parent / "results"


def make_data(n_samples: int, n_features: int, chunks: int, seed: int = 0):
    """The throughput benchmark's problem as a lazy dask array pair."""
    from dask_ml.datasets import make_classification

    return make_classification(
        n_samples=n_samples, n_features=n_features, n_informative=n_features // 2,
        n_redundant=n_features // 10, flip_y=0.05, chunks=chunks, random_state=seed,
    )


def new_session(client: Client, name: str, sync: int = 50) -> Any:
    """A fresh plugin and its coordinator; the plugin and its stored model are dropped on exit."""
    return federated_session(
        client, SGDClassifier(random_state=0), classes=[0, 1], name=name, check_workers=False,
        sync=EveryNBatches(sync), progress=False,
    )


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def stream_vs_bulk(client: Client, n_samples: int, repeats: int) -> dict:
    """Samples/s of fit_stream against fit, medians over ``repeats`` runs."""
    X, y = make_data(n_samples, 100, 4096)
    X_np, y_np = X.compute(), y.compute()
    X_dask, y_dask = client.persist([X, y])
    wait([X_dask, y_dask])

    def batches():
        for start in range(0, n_samples, 4096):
            yield X_np[start:start + 4096], y_np[start:start + 4096]

    runs = {"fit_stream (numpy batches of 4,096)": [], "fit (numpy, scattered)": [], "fit (persisted dask array)": []}
    for repeat in range(repeats):
        with new_session(client, f"stream-{repeat}") as coord:
            runs["fit_stream (numpy batches of 4,096)"].append(n_samples / timed(lambda: coord.fit_stream(batches())))
            runs["fit (numpy, scattered)"].append(n_samples / timed(lambda: coord.fit(X_np, y_np)))
            runs["fit (persisted dask array)"].append(n_samples / timed(lambda: coord.fit(X_dask, y_dask)))
    return {method: float(np.median(values)) for method, values in runs.items()}


def predict_latency(client: Client, requests: int) -> dict:
    """p50/p99 latency and requests/s of worker-side predictions."""
    X, y = make_data(50_000, 100, 4096)
    X_np, y_np = X.compute(), y.compute()
    results = {}
    with new_session(client, "predict") as coord:
        coord.fit(X_np, y_np)
        for source in ("global", "local"):
            for rows in (1, 1000):
                batch = X_np[:rows]
                coord.predict(batch, model=source)  # warm-up: fetches the global model once per version
                latencies = [timed(lambda: coord.predict(batch, model=source)) for _ in range(requests)]
                results[f"{rows} row(s), {source} model"] = {
                    "p50_ms": 1000 * float(np.percentile(latencies, 50)),
                    "p99_ms": 1000 * float(np.percentile(latencies, 99)),
                    "requests_per_s": len(latencies) / float(np.sum(latencies)),
                }
    return results


def peak_rss_bytes(dask_worker=None) -> int:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def out_of_core(client: Client, n_samples: int, chunks: int) -> dict:
    """Train on a lazy array that is never persisted; report throughput and peak memory."""
    X, y = make_data(n_samples, 100, chunks)
    with new_session(client, "out-of-core") as coord:
        seconds = timed(lambda: coord.fit(X, y))
        history = coord.history
    peaks = client.run(peak_rss_bytes)
    return {
        "samples": n_samples,
        "gib": X.nbytes / 2**30,
        "chunks": chunks,
        "samples_per_s": n_samples / seconds,
        "seconds": seconds,
        "rounds": len(history),
        "trained_samples": sum(r.samples for r in history),
        "peak_worker_memory_gib": {w: p / 2**30 for w, p in peaks.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    stream_rows = 200_000 if args.quick else 1_000_000
    ooc_rows = 500_000 if args.quick else 10_000_000
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                      memory_limit="4GiB") as cluster, Client(cluster) as client:
        # Out-of-core first, on fresh workers, so the peaks are its own.
        ooc = out_of_core(client, ooc_rows, 100_000 if not args.quick else 20_000)
        client.restart()
        stream = stream_vs_bulk(client, stream_rows, 1 if args.quick else 3)
        latency = predict_latency(client, 100 if args.quick else 1000)

    print(f"\n1. stream vs bulk, {stream_rows:,} x 100, median samples/s")
    for method, rate in stream.items():
        print(f"   {method:<40} {rate:>12,.0f}")
    bulk = stream["fit (persisted dask array)"]
    ratio = stream["fit_stream (numpy batches of 4,096)"] / bulk
    print(f"   fit_stream / bulk dask fit = {ratio:.2f} (goal >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})")
    print("\n2. predict on a worker with the global model")
    for label, row in latency.items():
        print(f"   {label:<10} p50 {row['p50_ms']:6.2f} ms   p99 {row['p99_ms']:6.2f} ms   {row['requests_per_s']:8.0f} requests/s")
    p50 = latency["1 row(s)"]["p50_ms"]
    print(f"   1-row p50 goal < 5 ms: {'met' if p50 < 5 else 'NOT met'}")
    print(f"\n3. out-of-core: {ooc['samples']:,} x 100 lazy ({ooc['gib']:.2f} GiB), chunks of {ooc['chunks']:,} rows")
    print(f"   {ooc['samples_per_s']:,.0f} samples/s, {ooc['seconds']:.1f} s, {count(ooc['rounds'], 'round')}, "
          f"{ooc['trained_samples']:,} samples trained")
    worst = max(ooc["peak_worker_memory_gib"].values())
    print("   peak worker memory: " + ", ".join(f"{v:.2f} GiB" for v in ooc["peak_worker_memory_gib"].values())
          + f" (goal < 2 GiB: {'met' if worst < 2 else 'NOT met'})")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "online.json"
    out.write_text(json.dumps({"stream": stream, "latency": latency, "out_of_core": ooc}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
