"""Initial models chosen from the data: a sample drawn where the blocks live.

Most families build their initial model from the number of features alone.
Some want data: ``MiniBatchKMeans(init="k-means++")`` chooses its initial
centers among the samples. Their adapter says how many rows it wants
(:meth:`~fedplugin.adapters.ModelAdapter.init_sample_size`); before the first
round of the first fit, the coordinator draws that many rows, uniformly at
random from all the blocks, and hands them to
:meth:`~fedplugin.adapters.ModelAdapter.initialize_from_sample`.

The sample is drawn in the spirit of k-means|| (Bahmani et al., VLDB 2012):
each block is read on the cluster, where it lives, and only its share of the
sample travels to the client. Every row of block ``i`` gets a random key from
``numpy.random.default_rng([seed, i])``; the sample is the ``size`` rows with
the smallest keys over all blocks, a uniform sample without replacement that
depends only on the seed and the blocks. A block sends only its rows with the
smallest keys below a threshold set so that, when the number of rows is
known, about ``size`` rows travel in all. A lazy dask block is computed once
more for this (a persisted one is read where it lives).

Examples
--------
>>> X = np.arange(20.0).reshape(10, 2)
>>> keys, rows = sample_rows(X, index=0, seed=7, size=3, threshold=1.0)
>>> rows.shape, bool(np.all(np.diff(keys) > 0))
((3, 2), True)
>>> np.array_equal(sample_rows(X, 0, 7, 3, 1.0)[1], rows)  # the same seed, the same rows
True
>>> len(sample_rows(X, 0, 7, 3, 0.0)[1])  # no key is below 0: nothing travels
0
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import numpy as np
from distributed import Client
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state

from .blocks import BlockRef, check_numpy, load_block
from .rows import as_float, as_rows, concatenate
from .stream import rejected_batch_message

#: ``draw(size, seed)``: a sample of ``size`` rows (fewer if there are fewer) of the training data.
Draw = Callable[[int, int], np.ndarray]


def initial_model(
    adapter: Any, estimator: BaseEstimator, n_features: int, classes: Any, draw: Draw, n_outputs: int | None = None
) -> BaseEstimator:
    """The first global model: from a sample drawn by ``draw`` if the adapter wants one."""
    size = adapter.init_sample_size(estimator)
    if not size:
        return adapter.initialize_like(estimator, _Shape(n_features, classes, n_outputs))
    # A copy: a RandomState instance the user passed is not advanced (clone copies it too).
    seed = int(check_random_state(copy.deepcopy(_random_state(estimator))).randint(np.iinfo(np.int32).max))
    sample = draw(size, seed)
    return adapter.initialize_from_sample(estimator, sample, classes)


def _random_state(estimator: BaseEstimator) -> Any:
    """The estimator's ``random_state``; a pipeline's is its final step's."""
    if isinstance(estimator, Pipeline):
        return _random_state(estimator.steps[-1][1])
    return getattr(estimator, "random_state", None)


@dataclass(frozen=True)
class _Shape:
    """What :meth:`~fedplugin.adapters.ModelAdapter.initialize_like` reads."""

    n_features: int
    classes: Any
    n_outputs: int | None


def sample_rows(X: np.ndarray, index: int, seed: int, size: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The rows of block ``index`` with the ``size`` smallest keys below ``threshold``, and their keys, sorted."""
    keys = np.random.default_rng([seed, index]).random(X.shape[0])
    kept = np.flatnonzero(keys < threshold)
    kept = kept[np.argsort(keys[kept], kind="stable")[:size]]
    return keys[kept], as_float(X[kept])


def _sample_block(index: int, x: Any, y: Any, seed: int, size: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Inside a task, on the worker that holds (or computes) the block."""
    X, _ = load_block(x, y)
    return sample_rows(X, index, seed, size, threshold)


def sample_blocks(
    client: Client, blocks: list[BlockRef], size: int, seed: int, *, n_samples: int | None
) -> np.ndarray:
    """``size`` rows drawn uniformly from ``blocks``, each block sampled where it lives."""
    threshold = 1.0
    if n_samples:
        # Mean s + 6 sqrt(s) + 6 rows travel: fewer than s only with odds of about 1e-9.
        threshold = min(1.0, (size + 6 * math.sqrt(size) + 6) / n_samples)
    # A resident block is sampled where it lives; a lazy one is computed where the task runs.
    futures = [
        client.submit(
            _sample_block, b.index, b.x, b.y, seed, size, threshold, pure=False,
            **({"workers": [b.home], "allow_other_workers": True} if b.home else {}),
        )
        for b in blocks
    ]
    parts = client.gather(futures)
    keys = np.concatenate([k for k, _ in parts])
    rows = concatenate([r for _, r in parts])
    return rows[np.argsort(keys, kind="stable")[:size]]


def sample_batch(X: Any, size: int, seed: int) -> np.ndarray:
    """``size`` rows drawn from the first batch of a stream (the only data seen before training)."""
    try:
        X, _, _ = check_numpy(X, np.zeros(as_rows(X).shape[0]), n_features=None, classes=None, is_classifier=False)
    except (ValueError, TypeError) as exc:
        raise type(exc)(rejected_batch_message(0, exc)) from exc
    return sample_rows(X, 0, seed, size, 1.0)[1]


__all__ = ["Draw", "initial_model", "sample_batch", "sample_blocks", "sample_rows"]
