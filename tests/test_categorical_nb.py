"""CategoricalNB federated exactly from its counts (issue 11)."""

import numpy as np
import pytest
from sklearn.naive_bayes import CategoricalNB

from fedplugin import FederatedModelPlugin
from fedplugin.session import federated_session


@pytest.mark.parametrize("overlap", [True, False])
def test_federated_categorical_nb_equals_one_fit_on_all_the_data(shared_client, unique_name, overlap):
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 3, 5_000), rng.integers(0, 5, 5_000)])
    y = (X[:, 0] + rng.integers(0, 2, 5_000)) % 3
    estimator = CategoricalNB(min_categories=[3, 5])
    with federated_session(shared_client, estimator, classes=[0, 1, 2], name=unique_name, sync=4,
                           block_size=250, overlap=overlap, progress=False) as coord:
        model = coord.fit(X, y).global_model()
    central = CategoricalNB(min_categories=[3, 5]).fit(X, y)
    np.testing.assert_array_equal(model.class_count_, central.class_count_)
    for ours, theirs in zip(model.category_count_, central.category_count_):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_allclose(model.predict_proba(X[:50]), central.predict_proba(X[:50]))


def test_categorical_nb_needs_its_categories_up_front(shared_client, unique_name):
    with pytest.raises(ValueError, match=r"CategoricalNB\(min_categories=None\) is not supported"):
        FederatedModelPlugin(CategoricalNB(), classes=[0, 1])
    X = np.array([[0, 1], [2, 7]] * 50)
    with federated_session(shared_client, CategoricalNB(min_categories=4), classes=[0, 1], name=unique_name, progress=False) as coord:
        with pytest.raises(ValueError, match="feature 1 has category 7, beyond min_categories \\(4 categories: 0 to 3\\)"):
            coord.fit(X, np.array([0, 1] * 50))
