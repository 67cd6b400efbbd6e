"""The adapter layer: initial models, parameter round trips, refusals."""

import warnings

import numpy as np
import pytest
from sklearn.base import is_classifier
from sklearn.cluster import KMeans
from sklearn.linear_model import Perceptron, SGDClassifier, SGDRegressor

from fedplugin.adapters import adapter_for


def passive_aggressive(kind):
    """The deprecated passive-aggressive estimators, built without warning noise."""
    from sklearn import linear_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return getattr(linear_model, f"PassiveAggressive{kind}")()


LINEAR = [
    SGDClassifier(random_state=0),
    SGDClassifier(loss="hinge", penalty=None, learning_rate="pa1", eta0=1.0, random_state=0),
    Perceptron(random_state=0),
    SGDRegressor(random_state=0),
]


@pytest.mark.parametrize("estimator", LINEAR, ids=lambda e: repr(e))
@pytest.mark.parametrize("n_classes", [2, 3])
def test_initialize_then_partial_fit_matches_scikit_learn(estimator, n_classes):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = rng.integers(0, n_classes, size=200)
    classes = np.arange(n_classes)
    adapter = adapter_for(estimator)
    is_clf = is_classifier(estimator)
    model = adapter.initialize(estimator, 4, classes if is_clf else None)
    for value in adapter.get_params(model).values():
        assert not value.any(), "an initial linear model has zero weights"
    adapter.partial_fit(model, X, y)
    reference = type(estimator)(**estimator.get_params())
    if is_clf:
        reference.partial_fit(X, y, classes=classes)
    else:
        reference.partial_fit(X, y)
    for name, value in adapter.get_params(model).items():
        np.testing.assert_allclose(value, getattr(reference, name))


def test_set_params_round_trip():
    adapter = adapter_for(SGDClassifier())
    model = adapter.initialize(SGDClassifier(), 3, np.array([0, 1, 2]))
    params = {"coef_": np.arange(9.0).reshape(3, 3), "intercept_": np.array([1.0, 2.0, 3.0])}
    adapter.set_params(model, params)
    got = adapter.get_params(model)
    np.testing.assert_array_equal(got["coef_"], params["coef_"])
    got["coef_"][0, 0] = 99  # get_params hands out copies
    assert model.coef_[0, 0] == 0.0


@pytest.mark.parametrize("kind", ["Classifier", "Regressor"])
def test_passive_aggressive_supported(kind):
    estimator = passive_aggressive(kind)
    classes = np.array([0, 1]) if kind == "Classifier" else None
    model = adapter_for(estimator).initialize(estimator, 5, classes)
    assert model.coef_.shape[-1] == 5


def test_unsupported_estimator_names_supported_families():
    with pytest.raises(TypeError, match="KMeans has no partial_fit; expected one of: .*SGDClassifier"):
        adapter_for(KMeans())


def test_class_instead_of_instance():
    with pytest.raises(TypeError, match="is a class; expected an instance such as SGDClassifier()"):
        adapter_for(SGDClassifier)


def test_averaged_sgd_refused():
    with pytest.raises(ValueError, match="average=True is not supported"):
        adapter_for(SGDClassifier(average=True))
