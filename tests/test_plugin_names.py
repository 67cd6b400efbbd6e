"""Plugin names re-used for another model, and forgetting a stored model (issue 13, item 3)."""

import warnings

import numpy as np
import pytest
from sklearn.naive_bayes import GaussianNB, MultinomialNB

import fedplugin
from fedplugin import Coordinator, FederatedModelPlugin, store, tasks

#: It restarts workers: not on the cluster other modules share (tests/conftest.py).
OWN_CLUSTER = True


@pytest.fixture
def client(shared_client):
    return shared_client


def count_data(n_classes=2, n_features=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 5, (400, n_features)).astype(float), rng.integers(0, n_classes, 400)


def first_model(client, name, estimator=None, classes=(0, 1)):
    """Register a MultinomialNB under ``name`` and train it once; return its coordinator."""
    plugin = FederatedModelPlugin(estimator or MultinomialNB(), classes=classes, name=name)
    fedplugin.register(client, plugin)
    return Coordinator(client, plugin, progress=False).fit(*count_data())


def stored(client, name):
    return store.fetch_info(client, name)


def test_another_estimator_under_a_used_name_replaces_the_stored_model_with_a_warning(client, unique_name):
    first_model(client, unique_name)
    assert stored(client, unique_name).estimator == "MultinomialNB"
    plugin = FederatedModelPlugin(GaussianNB(), classes=[0, 1, 2], name=unique_name)
    with pytest.warns(UserWarning, match="trained by a MultinomialNB, not a GaussianNB"):
        fedplugin.register(client, plugin)
    assert stored(client, unique_name) is None
    X, y = count_data(n_classes=3)
    model = Coordinator(client, plugin, progress=False).fit(X, y).global_model()
    assert type(model) is GaussianNB and model.classes_.tolist() == [0, 1, 2]
    np.testing.assert_allclose(model.class_count_, np.bincount(y))
    assert stored(client, unique_name).estimator == "GaussianNB"


def test_other_classes_under_a_used_name_replace_the_stored_model(client, unique_name):
    first_model(client, unique_name)
    plugin = FederatedModelPlugin(MultinomialNB(), classes=[0, 1, 2], name=unique_name)
    with pytest.warns(UserWarning, match=r"its classes are \[0, 1\], the plugin says classes=\[0, 1, 2\]"):
        fedplugin.register(client, plugin)
    X, y = count_data(n_classes=3)
    model = Coordinator(client, plugin, progress=False).fit(X, y).global_model()
    np.testing.assert_allclose(model.class_count_, np.bincount(y))


def test_register_plugin_over_a_foreign_model_never_fails_a_worker_start(client, unique_name):
    first_model(client, unique_name)
    plugin = FederatedModelPlugin(GaussianNB(), classes=[0, 1, 2], name=unique_name)
    # distributed's own registration: the workers meet the stored MultinomialNB in setup.
    answers = client.register_plugin(plugin)
    assert {answer["status"] for answer in answers.values()} == {"OK"}
    client.restart()  # every worker starts again next to the foreign stored model
    assert all(names.count(unique_name) == 1 for names in client.run(tasks.fedplugin_names).values())
    assert set(client.run(tasks.version, unique_name).values()) == {None}
    with pytest.warns(UserWarning, match="not a GaussianNB"):
        coord = Coordinator(client, plugin, progress=False)
    X, y = count_data(n_classes=3)
    assert coord.fit(X, y).global_model().classes_.tolist() == [0, 1, 2]


def test_registering_the_same_plugin_again_keeps_its_model_without_a_warning(client, unique_name):
    X, y = count_data()
    version = first_model(client, unique_name).version
    plugin = FederatedModelPlugin(MultinomialNB(), classes=[0, 1], name=unique_name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fedplugin.register(client, plugin)
        coord = Coordinator(client, plugin, progress=False)
    assert coord.version == version
    model = coord.fit(X, y).global_model()
    np.testing.assert_allclose(model.class_count_, 2 * np.bincount(y))


def test_data_that_does_not_fit_the_stored_model_says_how_to_go_on(client, unique_name):
    coord = first_model(client, unique_name, classes=None)
    before = coord.global_model().feature_count_.copy()
    X, y = count_data()
    with pytest.raises(ValueError, match=rf"X has 6 features; expected 3.*fedplugin.forget\(client, '{unique_name}'\)"):
        coord.fit(np.hstack([X, X]), y)
    with pytest.raises(ValueError, match=r"labels \[2\] not in classes=\[0, 1\].*holds a global model already"):
        coord.fit(*count_data(n_classes=3))
    np.testing.assert_array_equal(coord.global_model().feature_count_, before)

    fedplugin.forget(client, unique_name)
    X3, y3 = count_data(n_classes=3, n_features=6)
    model = Coordinator(client, unique_name, progress=False).fit(X3, y3).global_model()
    assert model.classes_.tolist() == [0, 1, 2] and model.n_features_in_ == 6


def test_forget_drops_the_stored_model_and_every_workers_copy(client, unique_name):
    first_model(client, unique_name)
    assert set(client.run(tasks.version, unique_name).values()) == {1}
    fedplugin.forget(client, unique_name)
    assert stored(client, unique_name) is None
    assert set(client.run(tasks.version, unique_name).values()) == {None}
    fedplugin.forget(client, unique_name)  # nothing stored: nothing to do
    fedplugin.forget(client, "no-such-plugin")
    with pytest.raises(TypeError, match="name=3 must be a plugin name"):
        fedplugin.forget(client, 3)
