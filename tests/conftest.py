"""Shared fixtures: real Dask clusters from ``distributed.utils_test`` and small data sets."""

import numpy as np
import pytest
from distributed.utils_test import (  # noqa: F401  (pytest fixtures)
    cleanup,
    client,
    cluster_fixture,
    loop,
    loop_in_thread,
)
from sklearn.datasets import make_classification

from fedplugin._compat import SGD_PASSIVE_AGGRESSIVE

#: Tests of ``SGDClassifier(learning_rate="pa1" | "pa2", eta0=C)`` as the passive-aggressive
#: algorithm: scikit-learn trains it only from 1.8 (fedplugin refuses it before, see _compat).
needs_sgd_passive_aggressive = pytest.mark.skipif(
    not SGD_PASSIVE_AGGRESSIVE, reason="SGD*(learning_rate='pa1') is passive-aggressive from scikit-learn 1.8"
)
#: Modules whose doctests show it.
PASSIVE_AGGRESSIVE_DOCTESTS = {"fedplugin.search"}


def pytest_collection_modifyitems(items):
    """Skip the doctests that show SGD passive-aggressive on scikit-learn < 1.8."""
    for item in items:
        if isinstance(item, pytest.DoctestItem):
            if not SGD_PASSIVE_AGGRESSIVE and item.name in PASSIVE_AGGRESSIVE_DOCTESTS:
                item.add_marker(needs_sgd_passive_aggressive)


@pytest.fixture
def classification_data():
    """20,000 x 20 binary problem, seeded, as numpy arrays."""
    X, y = make_classification(
        n_samples=20_000, n_features=20, n_informative=10, random_state=0, flip_y=0.05
    )
    return X, y


def params_equal(a, b):
    return a.keys() == b.keys() and all(np.allclose(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def shared_client():
    """One 2-worker cluster (processes with nannies) for a whole test module.

    Tests that use it register their plugin under a name of their own, so
    they do not see each other's models; a cluster per test costs ~2.5 s.
    """
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None, worker_dashboard_address=None
    ) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        yield client


@pytest.fixture
def unique_name(request):
    """A plugin name unique to the test (its node id, made safe)."""
    import re

    return re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)
