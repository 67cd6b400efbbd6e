"""A worker whose training diverges is reset and its blocks trained again; twice on a block stops the fit."""

import numpy as np
import pytest
from sklearn.linear_model import SGDRegressor
from sklearn.naive_bayes import MultinomialNB

from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin
from fedplugin import TrainingDiverged


@pytest.fixture
def client(shared_client):
    return shared_client


class PoisonOnce(EveryNBatches):
    """On one worker, once per plugin: make the local model's counts infinite after its 2nd block of a task.

    The next block's training then leaves non-finite parameters, which the
    worker detects: a stand-in for a diverging ``partial_fit``.
    """

    def __init__(self, n, name, victim):
        super().__init__(n)
        self.name, self.victim = name, victim

    def check(self, stats):
        from distributed import get_worker

        worker = get_worker()
        plugin = worker.plugins[self.name]
        if worker.address == self.victim and stats.blocks == 2 and not getattr(plugin, "poisoned", False):
            plugin.poisoned = True
            plugin.model.feature_count_[:] = np.inf
        return None


@pytest.mark.parametrize("overlap", [True, False])
def test_diverging_worker_is_reset_and_its_blocks_trained_once_more(client, unique_name, overlap):
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 5, (6_000, 4)).astype(float), rng.integers(0, 3, 6_000)
    plugin = FederatedModelPlugin(MultinomialNB(), classes=[0, 1, 2], name=unique_name)
    client.register_plugin(plugin)
    victim = sorted(client.scheduler_info()["workers"])[0]
    coord = Coordinator(
        client, plugin, sync=PoisonOnce(8, unique_name, victim), block_size=200, overlap=overlap, progress=False
    )
    with pytest.warns(RuntimeWarning, match=f"training diverged on worker {victim}, block"):
        coord.fit(X, y)
    model = coord.global_model()
    # Exact statistics: every block counted once, none lost with the reset worker.
    np.testing.assert_array_equal(model.class_count_, np.bincount(y, minlength=3))
    np.testing.assert_array_equal(model.feature_count_, [X[y == c].sum(axis=0) for c in range(3)])
    assert sum(r.samples for r in coord.history) == len(X)
    assert sum(r.retrained_blocks for r in coord.history) >= 3, "the task's blocks were trained again"
    assert any(victim in r.excluded_workers for r in coord.history)


def test_a_block_that_diverges_twice_stops_the_fit_and_leaves_the_global_model(client, unique_name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4_000, 5))
    y = X @ np.arange(1.0, 6.0)
    plugin = FederatedModelPlugin(SGDRegressor(random_state=0), name=unique_name)
    client.register_plugin(plugin)
    coord = Coordinator(client, plugin, sync=4, block_size=250, progress=False)
    coord.fit(X, y)
    before, version, history = coord.global_model().coef_.copy(), coord.version, list(coord.history)

    X_bad = X.copy()
    X_bad[3 * 250 : 3 * 250 + 5] *= 1e150  # block 3 overflows SGD on any worker, every time
    with pytest.warns(RuntimeWarning, match="training diverged on worker .*, block 3"):
        with pytest.raises(TrainingDiverged, match=r"diverged twice on block 3: .*overflow.*smaller learning rate"):
            coord.fit(X_bad, y)
    assert isinstance(TrainingDiverged("x"), ValueError)
    np.testing.assert_array_equal(coord.global_model().coef_, before)
    assert coord.version == version and coord.history == history
    for state in coord.worker_states().values():  # every worker back on the global model
        np.testing.assert_array_equal(state["params"]["coef_"], before)


def test_bad_input_is_an_input_error_not_a_divergence(client, unique_name):
    import warnings

    import dask.array as da
    from sklearn.linear_model import SGDClassifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(3_000, 4)), rng.integers(0, 2, 3_000)
    X[2_600] = np.nan  # left to partial_fit's own check, on the worker
    plugin = FederatedModelPlugin(SGDClassifier(random_state=0), classes=[0, 1], name=unique_name)
    client.register_plugin(plugin)
    coord = Coordinator(client, plugin, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="block 5: Input X contains NaN") as info:
            coord.fit(da.from_array(X, chunks=(500, 4)), da.from_array(y, chunks=500))
    assert not isinstance(info.value, TrainingDiverged)
