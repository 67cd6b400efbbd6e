"""Meta-estimators federated through their inner estimator's adapter (issue 11)."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.feature_selection import SelectFromModel
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier

from fedplugin import EveryNBatches, FederatedModelPlugin, Mean, Median
from fedplugin.adapters import adapter_for
from fedplugin.session import federated_session

BLOCK = 100


def data(n=1_200, n_classes=3):
    return make_classification(n_samples=n, n_features=6, n_informative=4, n_classes=n_classes, random_state=0)


def one_process(estimator, X, y, epochs):
    """scikit-learn's own partial_fit over the same blocks, in one process."""
    model = clone(estimator)
    for _ in range(epochs):
        for start in range(0, len(X), BLOCK):
            model.partial_fit(X[start : start + BLOCK], y[start : start + BLOCK], classes=np.unique(y))
    return model


def accuracy(model, X, y):
    return (model.estimator_ if isinstance(model, SelectFromModel) else model).score(X, y)


@pytest.mark.parametrize("estimator", [OneVsRestClassifier(SGDClassifier(random_state=0)), OneVsOneClassifier(SGDClassifier(random_state=0))], ids=repr)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_adapter_partial_fit_is_the_meta_estimators_own(estimator, n_classes):
    X, y = data(600, n_classes)
    adapter = adapter_for(estimator)
    model = adapter.initialize(estimator, X.shape[1], np.unique(y))
    for start in range(0, len(X), BLOCK):
        adapter.partial_fit(model, X[start : start + BLOCK], y[start : start + BLOCK])
    theirs = one_process(estimator, X, y, epochs=1)
    assert len(model.estimators_) == len(theirs.estimators_) == (1 if n_classes == 2 else 3)
    for ours, reference in zip(model.estimators_, theirs.estimators_):
        np.testing.assert_allclose(ours.coef_, reference.coef_)
        np.testing.assert_allclose(ours.intercept_, reference.intercept_)
    np.testing.assert_array_equal(model.predict(X), theirs.predict(X))


@pytest.mark.parametrize(
    "estimator",
    [
        OneVsRestClassifier(SGDClassifier(loss="log_loss", alpha=0.01, random_state=0)),
        OneVsOneClassifier(SGDClassifier(loss="log_loss", alpha=0.01, random_state=0)),
        SelectFromModel(SGDClassifier(loss="log_loss", alpha=0.01, random_state=0), threshold="mean"),
    ],
    ids=lambda estimator: type(estimator).__name__,
)
def test_a_federated_meta_estimator_learns_like_one_process(shared_client, unique_name, estimator):
    X, y = data()
    # A rule sees one inner estimator at a time, under its plain names.
    rule = {"coef_": Median(), "intercept_": Mean()}
    with federated_session(shared_client, estimator, name=unique_name, aggregator=rule, sync=EveryNBatches(3), block_size=BLOCK, progress=False) as coord:
        model = coord.fit(X, y, epochs=2).global_model()
        assert sum(r.samples for r in coord.history) == 2 * len(X)
    assert type(model) is type(estimator)
    reference = one_process(estimator, X, y, epochs=2)
    assert accuracy(model, X, y) > 0.6
    assert abs(accuracy(model, X, y) - accuracy(reference, X, y)) < 0.1
    if isinstance(model, SelectFromModel):
        kept = model.get_support()
        assert 0 < kept.sum() < X.shape[1]
        np.testing.assert_array_equal(model.transform(X), X[:, kept])


@pytest.mark.parametrize("meta", [OneVsRestClassifier, OneVsOneClassifier])
def test_an_exact_inner_family_stays_exact(shared_client, unique_name, meta):
    X, y = data(n_classes=4)
    with federated_session(shared_client, meta(GaussianNB()), name=unique_name, sync=EveryNBatches(2), block_size=BLOCK, progress=False) as coord:
        model = coord.fit(X, y).global_model()
        assert sum(r.samples for r in coord.history) == len(X)
    central = meta(GaussianNB()).fit(X, y)
    assert len(model.estimators_) == len(central.estimators_)
    for ours, theirs in zip(model.estimators_, central.estimators_):
        np.testing.assert_allclose(ours.class_count_, theirs.class_count_)
        np.testing.assert_allclose(ours.theta_, theirs.theta_, rtol=1e-9)
        np.testing.assert_allclose(ours.var_, theirs.var_, rtol=1e-9)
    method = "predict_proba" if hasattr(central, "predict_proba") else "decision_function"  # OvO has no proba
    np.testing.assert_allclose(getattr(model, method)(X), getattr(central, method)(X), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(
    "estimator, error, message",
    [
        (OneVsRestClassifier(KNeighborsClassifier()), TypeError, r"OneVsRestClassifier\(estimator=\.\.\.\): estimator=KNeighborsClassifier has no partial_fit; expected one of"),
        (OneVsOneClassifier(SGDRegressor()), TypeError, r"OneVsOneClassifier\(estimator=\.\.\.\): estimator=SGDRegressor is not a classifier"),
        (OneVsRestClassifier(SGDClassifier(average=True)), ValueError, r"OneVsRestClassifier\(estimator=\.\.\.\): .*average=True"),
        (SelectFromModel(GaussianNB()), ValueError, r"SelectFromModel\(estimator=\.\.\.\): .*GaussianNB should have `coef_`"),
        (SelectFromModel(SGDClassifier(), max_features=len), ValueError, r"callable max_features reads all of X"),
        (MultiOutputRegressor(SGDClassifier()), TypeError, r"MultiOutputRegressor\(estimator=\.\.\.\): estimator=SGDClassifier is not a regressor"),
        (MultiOutputClassifier(KNeighborsClassifier()), TypeError, r"MultiOutputClassifier\(estimator=\.\.\.\): estimator=KNeighborsClassifier has no partial_fit"),
    ],
    ids=lambda value: type(value).__name__ if hasattr(value, "fit") else None,
)
def test_an_unsupported_inner_estimator_is_refused_with_its_reason(estimator, error, message):
    with pytest.raises(error, match=message):
        FederatedModelPlugin(estimator, classes=[0, 1])

