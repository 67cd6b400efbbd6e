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


@pytest.fixture
def classification_data():
    """20,000 x 20 binary problem, seeded, as numpy arrays."""
    X, y = make_classification(
        n_samples=20_000, n_features=20, n_informative=10, random_state=0, flip_y=0.05
    )
    return X, y


def params_equal(a, b):
    return a.keys() == b.keys() and all(np.allclose(a[k], b[k]) for k in a)
