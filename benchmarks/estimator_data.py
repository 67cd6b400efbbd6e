"""Synthetic data sets for ``estimators.py``: one generator per kind of task, block by block.

Every generator is ``make(kind, index, rows) -> (X, y)``: block ``index`` of
data set ``kind``, seeded by both, so that the workers generate the training
blocks where they will be trained and the benchmark's process regenerates any
block (the held-out set is blocks past the training ones). What the blocks
share (class means, topics, atoms) comes from a seed fixed per kind.
"""

from __future__ import annotations

import sys
import zlib
from typing import Any

import cloudpickle
import numpy as np

# Worker processes cannot import this module from benchmarks/; ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

#: Scales of the "wide" features: six orders of magnitude.
WIDE_SCALES = np.array([1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3])
N_CLASSES = 4
N_TOPICS = 5
N_CLUSTERS = 8
N_COMPONENTS = 6
N_CATEGORIES = 5
VOCABULARY = 300  # words of the count data (naive Bayes, LDA)
TEXT_VOCABULARY = 20_000  # words of the texts


def _rng(kind: str, index: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(kind.encode()), index])


def _shared(kind: str) -> np.random.Generator:
    """The generator of what every block of ``kind`` shares (index -1 is no block's)."""
    return np.random.default_rng([zlib.crc32(kind.encode()), 2**31])


def classification(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """30 features, the first 10 informative: class means of 4 classes, unit noise."""
    means = np.zeros((N_CLASSES, 30))
    means[:, :10] = _shared("classification").normal(scale=0.7, size=(N_CLASSES, 10))
    y = rng.integers(0, N_CLASSES, size=rows)
    return means[y] + rng.normal(size=(rows, 30)), y


def regression(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """30 features, a linear target with noise (R² about 0.9)."""
    weights = _shared("regression").normal(size=30)
    X = rng.normal(size=(rows, 30))
    return X, X @ weights + rng.normal(scale=np.sqrt(30 / 9), size=rows)


def two_targets(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """30 features, two linear targets with noise (R² about 0.9 each)."""
    weights = _shared("two_targets").normal(size=(30, 2))
    X = rng.normal(size=(rows, 30))
    return X, X @ weights + rng.normal(scale=np.sqrt(30 / 9), size=(rows, 2))


def blobs(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """8 well-separated clusters in 10 dimensions; ``y`` is the true cluster."""
    centers = _shared("blobs").uniform(-10, 10, size=(N_CLUSTERS, 10))
    y = rng.integers(0, N_CLUSTERS, size=rows)
    return centers[y] + rng.normal(size=(rows, 10)), y


def _topics(kind: str, words: int) -> tuple[np.ndarray, np.ndarray]:
    """Topic-word distributions (each topic favours its own words) and a background distribution."""
    shared = _shared(kind)
    background = 1.0 / np.arange(1, words + 1)  # Zipf
    background /= background.sum()
    topics = shared.dirichlet(np.full(words, 0.05), size=N_TOPICS)
    return topics, shared.permutation(background)


def counts(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Word counts of documents: a topic per document (``y``), 40 % of its words from the background."""
    topics, background = _topics("counts", VOCABULARY)
    y = rng.integers(0, N_TOPICS, size=rows)
    mixtures = 0.6 * topics + 0.4 * background
    return rng.multinomial(rng.poisson(60, size=rows) + 1, mixtures[y]).astype(float), y


def categorical(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """8 categorical features of 5 categories, their distributions depending on the class."""
    tables = _shared("categorical").dirichlet(np.ones(N_CATEGORIES), size=(N_CLASSES, 8))
    y = rng.integers(0, N_CLASSES, size=rows)
    cumulative = tables[y].cumsum(axis=-1)  # (rows, 8, categories)
    X = (rng.random(size=(rows, 8, 1)) > cumulative).sum(axis=-1)
    return np.minimum(X, N_CATEGORIES - 1).astype(float), y


def atoms(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse combinations (2 of 6 atoms) of 30-feature atoms, with noise (PCA, dictionary learning)."""
    basis = _shared("atoms").normal(size=(N_COMPONENTS, 30))
    codes = np.zeros((rows, N_COMPONENTS))
    for column in range(2):
        codes[np.arange(rows), rng.integers(0, N_COMPONENTS, size=rows)] += rng.normal(scale=2.0, size=rows)
    return codes @ basis + rng.normal(scale=0.1, size=(rows, 30)), np.zeros(rows)


def nonnegative(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative data of rank 6 (mean about 1) with a little non-negative noise (NMF)."""
    H = _shared("nonnegative").exponential(size=(N_COMPONENTS, 20))
    W = rng.exponential(scale=1 / N_COMPONENTS, size=(rows, N_COMPONENTS))
    return W @ H + rng.exponential(scale=0.02, size=(rows, 20)), np.zeros(rows)


def binary(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit patterns: one of 8 prototypes with 5 % of its bits flipped (RBM)."""
    prototypes = _shared("binary").random(size=(8, 64)) < 0.5
    y = rng.integers(0, 8, size=rows)
    return (prototypes[y] ^ (rng.random(size=(rows, 64)) < 0.05)).astype(float), y


def novelty(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Inliers around (2, ..., 2) in 10 dimensions (``y`` = 1): the training data of a one-class SVM."""
    return 2.0 + rng.normal(size=(rows, 10)), np.ones(rows, dtype=int)


def novelty_test(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Half inliers (``y`` = 1), half outliers (``y`` = 0) around the origin, overlapping the inliers.

    A linear one-class SVM separates the data from the origin.
    """
    X, y = novelty(rng, rows)
    outliers = rng.random(rows) < 0.5
    X[outliers] = rng.normal(scale=2.0, size=(int(outliers.sum()), 10))
    y[outliers] = 0
    return X, y


def wide(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """7 features whose scales span six orders of magnitude; labels from their standardised values."""
    weights = _shared("wide").normal(size=len(WIDE_SCALES))
    Z = rng.normal(size=(rows, len(WIDE_SCALES)))
    y = (Z @ weights + 0.3 * rng.normal(size=rows) > 0).astype(int)
    return (Z + 3.0) * WIDE_SCALES, y


def texts(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Documents of 20 to 100 words: a topic per document (``y``), 20 % of its words from it.

    The words are made-up tokens (``"w123"``); the rest of a document is drawn
    from a Zipf background shared by all topics, as function words are.
    """
    topics, background = _topics("texts", TEXT_VOCABULARY)
    vocabulary = np.array([f"w{i}" for i in range(TEXT_VOCABULARY)], dtype=object)
    y = rng.integers(0, N_TOPICS, size=rows)
    lengths = rng.integers(20, 101, size=rows)
    # Every token of the block at once: its source (its document's topic or the background), then a word.
    source = np.where(rng.random(lengths.sum()) < 0.2, np.repeat(y, lengths), N_TOPICS)
    words = np.empty(len(source), dtype=np.int64)
    for s, distribution in enumerate([*topics, background]):
        where = source == s
        words[where] = np.searchsorted(np.cumsum(distribution), rng.random(int(where.sum())))
    tokens = vocabulary[np.minimum(words, TEXT_VOCABULARY - 1)]
    docs = np.array([" ".join(doc) for doc in np.split(tokens, np.cumsum(lengths)[:-1])], dtype=object)
    return docs, y


KINDS = {
    f.__name__: f
    for f in (classification, regression, two_targets, blobs, counts, categorical, atoms, nonnegative, binary, novelty, wide, texts)
}


def make(kind: str, index: int, rows: int) -> tuple[Any, np.ndarray]:
    """Block ``index`` of data set ``kind``: ``rows`` samples ``(X, y)``.

    Examples
    --------
    >>> X, y = make("wide", 0, 5)
    >>> X.shape, bool(np.array_equal(X, make("wide", 0, 5)[0])), bool(np.array_equal(X, make("wide", 1, 5)[0]))
    ((5, 7), True, False)
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not a data set; expected one of {sorted(KINDS)}")
    return KINDS[kind](_rng(kind, index), rows)


def make_test(kind: str, first_index: int, rows: int) -> tuple[Any, np.ndarray]:
    """The held-out set of ``kind``: a block of its own (with outliers for ``novelty``)."""
    if kind == "novelty":
        return novelty_test(_rng(kind, first_index), rows)
    return make(kind, first_index, rows)
