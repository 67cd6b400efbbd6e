"""A worker killed in the middle of ``fit``: recovery time and accuracy against a calm run.

Run ``.venv/bin/python benchmarks/restart.py``. On a ``LocalCluster`` with nannies, one
worker process calls ``os._exit`` after its third block; its nanny restarts it, the plugin's
``setup`` fetches the latest global model from the scheduler's store, and the fit carries on.
Prints the time from the death to the replacement holding the global model, the blocks
trained again, and held-out accuracy next to an undisturbed run of the same fit.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier

from fedplugin import EveryNBatches
from fedplugin.session import federated_session

RESULTS = Path(__file__).parent / "results"


class Paced(EveryNBatches):
    """EveryNBatches that sleeps after each block, so the fit outlasts a worker restart."""

    def __init__(self, n: int, pause: float, marker: str | None = None):
        super().__init__(n)
        self.pause, self.marker = pause, marker

    def check(self, stats):
        if self.marker is not None and stats.blocks == 3:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os._exit(1)  # only the first worker to get here dies
        time.sleep(self.pause)
        return None


def run(client: Client, name: str, policy: EveryNBatches, data) -> dict:
    X, y, X_test, y_test = data
    # A smoothly decaying learning rate: with the default "optimal" one this model jumps
    # ~100 % per block, and the final accuracy would depend on which blocks came last.
    estimator = SGDClassifier(learning_rate="invscaling", eta0=0.05, random_state=0)
    options = dict(sync=policy, block_size=500, progress=False)
    with federated_session(client, estimator, classes=[0, 1], name=name, check_workers=False, **options) as coord:
        coord.fit(X, y)
        return {"history": coord.history, "states": coord.worker_states(), "accuracy": coord.score(X_test, y_test)}


def main() -> None:
    X, y = make_classification(n_samples=60_000, n_features=20, n_informative=10, class_sep=2.0, random_state=0)
    data = (X[:50_000], y[:50_000], X[50_000:], y[50_000:])
    marker = os.path.join(tempfile.mkdtemp(), "killed")
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        calm = run(client, "calm", Paced(10, 0.02), data)
        killed = run(client, "killed", Paced(10, 0.02, marker), data)
        died_at = os.stat(marker).st_mtime
        restored = [s["restored_at"] for s in killed["states"].values() if s["restored_at"]]
        result = {
            "death_to_restored_global_model_s": restored[0] - died_at if restored else None,
            "retrained_blocks": sum(r.retrained_blocks for r in killed["history"]),
            "samples_trained": sum(r.samples for r in killed["history"]),
            "rows": len(data[0]),
            "rounds_with_both_workers_after_the_death": sum(1 for r in killed["history"][1:] if r.n_workers == 2),
            "accuracy_undisturbed": calm["accuracy"],
            "accuracy_killed": killed["accuracy"],
        }
    for key, value in result.items():
        print(f"{key:<42} {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "restart.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
