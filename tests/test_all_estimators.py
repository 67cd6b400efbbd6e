"""Every scikit-learn estimator with partial_fit has an adapter (issue 11).

The walk goes over ``sklearn.utils.all_estimators()`` of the installed
scikit-learn, so a new release that adds an estimator with ``partial_fit``
fails here until it is federated or refused with its reason below.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from fedplugin.adapters import adapter_for
from fedplugin.adapters.catalog import catalog, example, with_partial_fit

# Estimators with partial_fit that fedplugin refuses, with the reason it gives (none today).
REFUSED: dict[str, str] = {}


def block(estimator, rng):
    """A small block of the input the estimator takes, and targets if it learns them."""
    name = type(estimator).__name__
    if name == "HashingVectorizer":
        return np.array(["federated learning", "with dask"], dtype=object), None
    X = rng.integers(0, 3, size=(40, 4)).astype(float)  # non-negative counts suit NB, NMF and LDA too
    kind = adapter_for(estimator).estimator_type(estimator)
    if name == "MultiOutputClassifier":
        return X, np.column_stack([np.arange(40) % 3, np.arange(40) % 2])
    if name == "MultiOutputRegressor":
        return X, np.column_stack([X @ [1.0, -1.0, 0.5, 0.0], X[:, 0]])
    if kind == "classifier":
        return X, np.arange(40) % 3
    if kind == "regressor":
        return X, X @ [1.0, -1.0, 0.5, 0.0]
    return X, None


def shape_of(estimator, X, y):
    """What the coordinator tells the adapter: features, classes (one array per output) and outputs."""
    n_features = 1 if X.ndim == 1 else X.shape[1]
    n_outputs = y.shape[1] if y is not None and y.ndim == 2 else None
    classes = None
    if y is not None and adapter_for(estimator).estimator_type(estimator) == "classifier":
        classes = [np.unique(column) for column in y.T] if n_outputs else np.unique(y)
    return SimpleNamespace(n_features=n_features, classes=classes, n_outputs=n_outputs)


@pytest.mark.parametrize("name, cls", with_partial_fit(), ids=[name for name, _ in with_partial_fit()])
def test_every_estimator_with_partial_fit_is_federated_or_refused_with_its_reason(name, cls):
    estimator = example(name, cls)
    if name in REFUSED:
        with pytest.raises((TypeError, ValueError), match=REFUSED[name]):
            adapter_for(estimator)
        return
    adapter = adapter_for(estimator)  # raises for an estimator no adapter knows
    rng = np.random.default_rng(0)
    X, y = block(estimator, rng)
    shape = shape_of(estimator, X, y)
    # what a worker does: start from the initial model, train a block, hand its parameters over
    reference = adapter.get_params(adapter.initialize_like(estimator, shape))
    updates = []
    for _ in range(2):
        model = adapter.initialize_like(estimator, shape)
        adapter.partial_fit(model, *block(estimator, rng))
        updates.append(adapter.get_params(model))
    combined = adapter.aggregate(lambda params, weights: {k: np.mean([p[k] for p in params], axis=0) for k in params[0]}, updates, [1.0, 1.0], reference)
    assert sorted(combined) == sorted(reference)
    global_model = adapter.initialize_like(estimator, shape)
    adapter.set_params(global_model, combined)
    assert type(global_model) is cls
    for method in ("predict", "transform"):
        if hasattr(global_model, method):
            out = getattr(global_model, method)(X)
            assert out.shape[0] == (len(X) if X.ndim == 1 else X.shape[0])


def test_the_catalog_the_docs_show_says_how_each_is_combined():
    rows = {row.name: row for row in catalog()}
    assert sorted(rows) == [name for name, _ in with_partial_fit()]
    assert {rows[name].combined for name in ("GaussianNB", "StandardScaler", "IncrementalPCA", "Birch")} == {"exactly"}
    assert {rows[name].combined for name in ("SGDClassifier", "MLPRegressor", "BernoulliRBM")} == {"by the rule"}
    assert rows["OneVsRestClassifier"].combined == "delegated"
    assert rows["HashingVectorizer"].combined == "nothing to combine"
    assert rows["MultiOutputRegressor"].combined == "delegated"
    for name, reason in REFUSED.items():
        assert rows[name].combined == "refused" and reason in rows[name].needs
