"""Federated model selection: the candidate set, its adapter, and FederatedSearch on real clusters."""

import doctest

import numpy as np
import pandas as pd
import pytest
from conftest import needs_sgd_passive_aggressive, params_equal
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import FitFailedWarning, NotFittedError
from sklearn.linear_model import (
    PassiveAggressiveClassifier,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.neural_network import MLPRegressor

import fedplugin.search as search_module
from fedplugin import Coordinator, FederatedModelPlugin, Krum, Mean, Median, tasks
from fedplugin.adapters import adapter_for
from fedplugin.search import (

    CandidateSet,
    CandidateSetAdapter,
    FederatedSearch,
    PerCandidate,
    passive_aggressive_grid,
    split_params,
)


@pytest.fixture
def client(shared_client):
    """This module's tests share one cluster (~2.5 s saved per test); each
    registers its plugin under a name of its own."""
    return shared_client

BLOCK = 1000
BASE = SGDClassifier(loss="hinge", penalty=None, random_state=0)
#: Eight passive-aggressive settings and one that is biased towards class 0, hence clearly worst.
GRID = [
    passive_aggressive_grid([1e-4, 1e-2, 1.0, 100.0]),
    {"learning_rate": ["pa1"], "eta0": [1.0], "class_weight": [{0: 20, 1: 1}]},
]
N_CANDIDATES = 9


@pytest.fixture
def split(classification_data):
    X, y = classification_data
    return X[:16_000], y[:16_000], X[16_000:], y[16_000:]


def blocks(X, y, size=BLOCK):
    for start in range(0, len(X), size):
        yield X[start : start + size], y[start : start + size]


def alone(params, X, y):
    """One candidate trained by itself, single-process, over the same blocks."""
    estimator = clone(BASE).set_params(**params)
    for X_block, y_block in blocks(X, y):
        estimator.partial_fit(X_block, y_block, classes=[0, 1])
    return estimator


def candidates(*settings):
    return [clone(BASE).set_params(**params) for params in settings]


# ------------------------------------------------------------- no cluster needed
@needs_sgd_passive_aggressive
def test_module_docstring_examples_run():
    result = doctest.testmod(search_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


@needs_sgd_passive_aggressive
def test_passive_aggressive_classifier_equals_its_sgd_equivalent(classification_data):
    X, y = classification_data
    for C, loss in [(1e-3, "hinge"), (10.0, "squared_hinge")]:
        with pytest.warns(FutureWarning, match="deprecated"):
            deprecated = PassiveAggressiveClassifier(C=C, loss=loss, random_state=0)
        grid = passive_aggressive_grid([C], [loss])
        equivalent = clone(BASE).set_params(eta0=grid["eta0"][0], learning_rate=grid["learning_rate"][0])
        for X_block, y_block in blocks(X[:5000], y[:5000]):
            deprecated.partial_fit(X_block, y_block, classes=[0, 1])
            equivalent.partial_fit(X_block, y_block, classes=[0, 1])
        np.testing.assert_array_equal(deprecated.coef_, equivalent.coef_)
        np.testing.assert_array_equal(deprecated.intercept_, equivalent.intercept_)


@needs_sgd_passive_aggressive
def test_candidate_set_trains_every_candidate_exactly_as_alone(classification_data):
    X, y = classification_data
    settings = [{"learning_rate": "pa1", "eta0": 1e-3}, {"learning_rate": "pa2", "eta0": 10.0}]
    adapter = adapter_for(CandidateSet(candidates(*settings)))
    model = adapter.initialize(CandidateSet(candidates(*settings)), 20, np.array([0, 1]))
    for X_block, y_block in blocks(X[:6000], y[:6000]):
        adapter.partial_fit(model, X_block, y_block)
    params = adapter.get_params(model)
    for index, setting in enumerate(settings):
        reference = alone(setting, X[:6000], y[:6000])
        np.testing.assert_array_equal(params[f"c{index}/coef_"], reference.coef_)
        np.testing.assert_array_equal(params[f"c{index}/intercept_"], reference.intercept_)


def test_flat_parameters_are_prefixed_and_round_trip(classification_data):
    X, y = classification_data
    adapter = CandidateSetAdapter()
    model = adapter.initialize(CandidateSet(candidates({"eta0": 0.1}, {"eta0": 1.0})), 20, np.array([0, 1]))
    adapter.partial_fit(model, X[:500], y[:500])
    params = adapter.get_params(model)
    assert sorted(params) == [
        "c0/coef_", "c0/intercept_", "c1/coef_", "c1/intercept_", "failed_", "score_sum_", "score_weight_",
    ]
    other = adapter.initialize(model, 20, np.array([0, 1]))
    adapter.set_params(other, params)
    assert params_equal(adapter.get_params(other), params)
    np.testing.assert_array_equal(other.estimators_[1].predict(X[:50]), model.estimators_[1].predict(X[:50]))


def test_training_state_is_per_candidate(classification_data):
    X, y = classification_data
    adapter = CandidateSetAdapter()
    model = adapter.initialize(CandidateSet(candidates({"eta0": 0.1}, {"eta0": 1.0})), 20, np.array([0, 1]))
    adapter.partial_fit(model, X[:500], y[:500])
    state = adapter.get_state(model)
    assert state == {"c0/t_": model.estimators_[0].t_, "c1/t_": model.estimators_[1].t_} and state["c0/t_"] > 1
    fresh = adapter.initialize(model, 20, np.array([0, 1]))
    adapter.set_state(fresh, {"c0/t_": 7.0, "c1/t_": 9.0})
    assert [estimator.t_ for estimator in fresh.estimators_] == [7.0, 9.0]


def test_candidate_set_takes_the_type_of_its_candidates():
    assert is_classifier(CandidateSet([SGDClassifier()]))
    assert is_regressor(CandidateSet([SGDRegressor(), SGDRegressor(alpha=1.0)]))
    with pytest.raises(ValueError, match="mix estimator types"):
        adapter_for(CandidateSet([SGDClassifier(), SGDRegressor()]))
    with pytest.raises(ValueError, match="non-empty list"):
        adapter_for(CandidateSet([]))
    with pytest.raises(ValueError, match="candidate 1: average=True is not supported"):
        adapter_for(CandidateSet([SGDClassifier(), SGDClassifier(average=True)]))


def _update(c0, c1, failed=(0.0, 0.0), scores=(0.0, 0.0), weights=(0.0, 0.0)):
    return {
        "c0/coef_": np.array([[c0]]), "c0/intercept_": np.array([0.0]),
        "c1/coef_": np.array([[c1]]), "c1/intercept_": np.array([0.0]),
        "failed_": np.array(failed), "score_sum_": np.array(scores), "score_weight_": np.array(weights),
    }


def test_aggregation_is_per_candidate_with_the_users_rule():
    adapter = adapter_for(CandidateSet(candidates({"eta0": 0.1}, {"eta0": 1.0})))
    # Krum keeps one worker's update: the most central for candidate 0 is worker 0
    # (0.0), for candidate 1 worker 2 (10.0). One Krum over all parameters at
    # once would keep worker 1's (1.0, 20.0) for both.
    updates = [_update(0.0, 0.0), _update(1.0, 20.0), _update(2.0, 10.0), _update(50.0, 10.5)]
    result = adapter.aggregate(Krum(n_byzantine=1), updates, [1, 1, 1, 1], _update(0.0, 0.0))
    assert (result["c0/coef_"].item(), result["c1/coef_"].item()) == (0.0, 10.0)
    for index in (0, 1):
        part = [split_params(update, 2)[0][index] for update in updates]
        expected = Krum(n_byzantine=1)(part, [1, 1, 1, 1])
        np.testing.assert_array_equal(result[f"c{index}/coef_"], expected["coef_"])


def test_aggregation_keeps_failed_candidates_and_adds_progressive_scores():
    adapter = adapter_for(CandidateSet(candidates({"eta0": 0.1}, {"eta0": 1.0})))
    reference = _update(1.0, 1.0, scores=(10.0, 20.0), weights=(100.0, 100.0))
    updates = [
        _update(3.0, 5.0, failed=(0.0, 1.0), scores=(70.0, 20.0), weights=(200.0, 100.0)),
        _update(5.0, 7.0, scores=(40.0, 50.0), weights=(200.0, 200.0)),
    ]
    result = adapter.aggregate(Mean(), updates, [100, 100], reference)
    assert result["failed_"].tolist() == [0.0, 1.0], "a failure on any worker sticks"
    assert result["c0/coef_"].item() == 4.0
    assert result["c1/coef_"].item() == 1.0, "a failed candidate keeps the previous global parameters"
    # the reference's sums plus each worker's increments
    assert result["score_sum_"].tolist() == [10.0 + 60.0 + 30.0, 20.0 + 0.0 + 30.0]
    assert result["score_weight_"].tolist() == [100.0 + 100.0 + 100.0, 100.0 + 0.0 + 100.0]


def test_per_candidate_rule_checks_plain_names():
    names = ["c0/coef_", "c0/intercept_", "c1/coef_", "c1/intercept_", "failed_", "score_sum_", "score_weight_"]
    PerCandidate({"coef_": Median(), "intercept_": Mean()}).check_names(names)
    with pytest.raises(ValueError, match="candidate 0: .*unknown names \\['bias_'\\]"):
        PerCandidate({"coef_": Median(), "bias_": Mean()}).check_names(names)


@needs_sgd_passive_aggressive
def test_candidate_set_fails_invalid_settings_before_training(classification_data):
    X, y = classification_data
    # learning_rate="pa1" only works with the hinge loss, which scikit-learn
    # checks in the first partial_fit: the set probes that call up front.
    settings = [{"learning_rate": "optimal"}, {"learning_rate": "pa1", "eta0": 1.0}]
    members = [SGDClassifier(loss="log_loss", random_state=0).set_params(**s) for s in settings]
    model = CandidateSet(members)
    for X_block, y_block in blocks(X[:3000], y[:3000]):
        model.partial_fit(X_block, y_block, classes=[0, 1])
    assert model.failed_.tolist() == [False, True]
    assert "only works with loss 'hinge'" in model.errors_[1]
    reference = clone(members[0])
    for X_block, y_block in blocks(X[:3000], y[:3000]):
        reference.partial_fit(X_block, y_block, classes=[0, 1])
    np.testing.assert_array_equal(model.estimators_[0].coef_, reference.coef_)
    with pytest.raises(ValueError, match="candidate 1 .*only works with loss 'hinge'"):
        CandidateSet(members, error_score="raise").partial_fit(X[:100], y[:100], classes=[0, 1])
    with pytest.raises(ValueError, match="every candidate has invalid settings"):
        CandidateSet(members[1:]).partial_fit(X[:100], y[:100], classes=[0, 1])


def test_candidate_set_stops_training_a_diverging_candidate_only():
    rng = np.random.RandomState(0)
    X = rng.randn(2000, 20)
    y = 100 * (X @ rng.randn(20))
    members = [
        MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=rate, random_state=0)
        for rate in (1e-4, 10.0)  # the second diverges
    ]
    model = CandidateSet(members)
    with np.errstate(all="ignore"):
        for X_block, y_block in blocks(X, y, 500):
            model.partial_fit(X_block, y_block)
        assert model.failed_.tolist() == [False, True]
        assert "non-finite" in model.errors_[1]
        params = CandidateSetAdapter().get_params(model)
        assert all(np.all(np.isfinite(value)) for value in params.values()), "so no worker update is dropped"
        with pytest.raises(ValueError, match="every candidate still training failed"):
            CandidateSet(members[1:]).partial_fit(X, y)


@needs_sgd_passive_aggressive
def test_progressive_validation_scores_each_block_before_training_on_it(classification_data):
    X, y = classification_data
    model = CandidateSet(candidates({"eta0": 1e-3, "learning_rate": "pa1"}), progressive=True)
    expected_sum, reference = 0.0, None
    for X_block, y_block in blocks(X[:3000], y[:3000]):
        model.partial_fit(X_block, y_block, classes=[0, 1])
        if reference is not None:
            expected_sum += reference.score(X_block, y_block) * len(y_block)
        else:  # an untrained model: zero weights, every decision 0 -> predicts classes_[0]
            expected_sum += np.mean(y_block == 0) * len(y_block)
            reference = clone(BASE).set_params(eta0=1e-3, learning_rate="pa1")
        reference.partial_fit(X_block, y_block, classes=[0, 1])
    assert model.score_weight_.tolist() == [3000.0]
    assert model.progressive_scores()[0] == pytest.approx(expected_sum / 3000)


# ------------------------------------------------------------- on a real cluster
@needs_sgd_passive_aggressive
def test_best_candidate_is_as_good_as_the_best_trained_alone(client, split):
    X, y, X_val, y_val = split
    search = FederatedSearch(BASE, GRID, client=client, block_size=BLOCK).fit(X, y, X_val, y_val)
    single = [alone(params, X, y).score(X_val, y_val) for params in search.cv_results_["params"]]
    best_single = max(single)
    assert search.best_estimator_.score(X_val, y_val) >= best_single - 0.01
    assert search.best_score_ >= best_single - 0.01
    # the federated ranking agrees with the single-process one at both ends
    top_two = set(np.argsort(single)[-2:])
    assert search.best_index_ in top_two
    assert search.cv_results_["rank_test_score"][np.argmin(single)] == N_CANDIDATES


@needs_sgd_passive_aggressive
def test_each_block_is_read_once_per_epoch_whatever_the_number_of_candidates(client, split):
    X, y, X_val, y_val = split
    search = FederatedSearch(BASE, GRID, client=client, block_size=BLOCK, epochs=2, sync=8)
    search.fit(X, y, X_val, y_val)
    n_blocks = len(X) // BLOCK
    assert sum(r.samples for r in search.history_) == 2 * len(X)  # not 2 * len(X) * 9
    assert search.history_[-1].total_samples == 2 * len(X)
    assert sum(r.blocks for r in search.history_) == 2 * n_blocks
    assert len(search.history_) == 2 * n_blocks // 8, "every candidate synchronizes in every round"


@needs_sgd_passive_aggressive
def test_cv_results_best_attributes_and_cleanup(client, split):
    X, y, X_val, y_val = split
    search = FederatedSearch(
        BASE, GRID, client=client, block_size=BLOCK, name="search-test", scoring="balanced_accuracy",
        aggregator={"coef_": Median(), "intercept_": Mean()},
    ).fit(X, y, X_val, y_val)
    results = search.cv_results_
    frame = pd.DataFrame(results)
    assert frame.shape[0] == N_CANDIDATES
    assert {"params", "param_eta0", "param_learning_rate", "param_class_weight", "mean_test_score",
            "rank_test_score"} <= set(frame.columns)
    assert search.cv_results_frame().equals(frame)
    # class_weight is only in the second grid: masked for the first eight candidates
    assert results["param_class_weight"].mask.tolist() == [True] * 8 + [False]
    scores, ranks = results["mean_test_score"], results["rank_test_score"]
    assert ranks.min() == 1 and ranks.dtype == np.int32
    for i in range(N_CANDIDATES):
        assert ranks[i] == 1 + np.sum(scores > scores[i])
    best = search.best_index_
    assert ranks[best] == 1 and search.best_score_ == scores[best]
    assert search.best_params_ == results["params"][best]
    model = search.best_estimator_
    assert type(model) is SGDClassifier
    assert {k: v for k, v in model.get_params().items() if k in search.best_params_} == search.best_params_
    assert search.score(X_val, y_val) == pytest.approx(search.best_score_)
    assert search.predict(X_val[:5]).shape == (5,)
    names = set().union(*client.run(tasks.fedplugin_names).values())
    assert "search-test" not in names, "the plugin is unregistered after fit"


@needs_sgd_passive_aggressive
def test_search_candidate_equals_a_federation_of_that_candidate_alone(client, split):
    X, y, X_val, y_val = split
    # Equality to the last bit needs strict synchronous rounds on both sides (overlap=False, issue 9).
    search = FederatedSearch(BASE, GRID, client=client, block_size=BLOCK, sync=4, overlap=False).fit(X, y, X_val, y_val)
    best = clone(BASE).set_params(**search.best_params_)
    plugin = FederatedModelPlugin(best, classes=[0, 1], name="alone")
    client.register_plugin(plugin)
    with Coordinator(client, plugin, sync=4, block_size=BLOCK, progress=False, overlap=False) as coord:
        coord.fit(X, y)
        assert len(coord.history) == len(search.history_)
        np.testing.assert_allclose(coord.global_model().coef_, search.best_estimator_.coef_)
        np.testing.assert_allclose(coord.global_model().intercept_, search.best_estimator_.intercept_)


@needs_sgd_passive_aggressive
def test_progressive_validation_without_a_held_out_set(client, split):
    X, y, X_val, y_val = split
    held_out = FederatedSearch(BASE, GRID, client=client, block_size=BLOCK).fit(X, y, X_val, y_val)
    progressive = FederatedSearch(BASE, GRID, client=client, block_size=BLOCK).fit(X, y)
    scores = progressive.cv_results_["mean_test_score"]
    assert np.all((scores > 0.4) & (scores < 1.0))
    assert progressive.best_estimator_.score(X_val, y_val) >= held_out.best_score_ - 0.01
    assert progressive.cv_results_["rank_test_score"][-1] == N_CANDIDATES


@needs_sgd_passive_aggressive
def test_failed_candidate_scores_error_score_and_the_others_go_on(client, split):
    X, y, X_val, y_val = split
    estimator = SGDClassifier(loss="log_loss", random_state=0)
    grid = {"learning_rate": ["optimal", "pa1"], "eta0": [1.0]}  # pa1 needs the hinge loss
    with pytest.warns(FitFailedWarning, match="1 of 2 candidates failed"):
        search = FederatedSearch(estimator, grid, client=client, block_size=BLOCK).fit(X, y, X_val, y_val)
    assert np.isnan(search.cv_results_["mean_test_score"][1])
    assert search.cv_results_["rank_test_score"].tolist() == [1, 2]
    assert search.best_params_ == {"eta0": 1.0, "learning_rate": "optimal"}
    with pytest.raises(ValueError, match="candidate 1 .*only works with loss 'hinge'"):
        FederatedSearch(estimator, grid, client=client, block_size=BLOCK, error_score="raise").fit(X, y, X_val, y_val)


def test_clear_errors(client, split):
    """Settings are checked by fit, before any training, as scikit-learn's estimators do.

    (Changed with issue 9: FederatedSearch used to check them in its constructor.)
    """
    X, y, X_val, y_val = split
    bad = [
        ((BASE, []), {}, ValueError, "holds no candidate"),
        ((BASE, {"eta0": []}), {}, ValueError, "need to be a non-empty sequence"),
        ((BASE, {"C": [1.0]}), {}, ValueError, "Invalid parameter 'C' for estimator SGDClassifier"),
        ((BASE, {"average": [False, True]}), {}, ValueError, "candidate 1 .*average=True is not supported"),
        ((BASE, {"eta0": [1.0]}), {"scoring": "not_a_metric"}, ValueError, "'not_a_metric' is not a valid scoring value"),
        ((BASE, {"eta0": [1.0]}), {"scoring": ["accuracy", "f1"]}, TypeError, "several metrics at once are not supported"),
        ((BASE, {"eta0": [1.0]}), {"scoring": "neg_log_loss"}, ValueError, "scoring='neg_log_loss' needs predict_proba"),
        ((BASE, {"eta0": [1.0]}), {"epochs": 0}, ValueError, "epochs == 0, must be >= 1."),
        ((BASE, {"eta0": [1.0]}), {"error_score": "ignore"}, ValueError, "error_score='ignore' is not usable"),
        ((BASE, {"eta0": [1.0]}), {"client": "tcp://localhost:8786"}, TypeError, "is not a distributed.Client"),
    ]
    for args, kwargs, error, message in bad:
        search = FederatedSearch(*args, **{"client": client, **kwargs})  # stores only
        with pytest.raises(error, match=message):
            search.fit(X[:1000], y[:1000], X_val, y_val)
        assert not hasattr(search, "best_estimator_")
    search = FederatedSearch(BASE, {"eta0": [1.0]}, client=client)
    with pytest.raises(NotFittedError, match="not fitted yet; call fit first"):
        _ = search.best_params_
    assert not hasattr(search, "best_estimator_")
    with pytest.raises(ValueError, match="give both X_val and y_val"):
        search.fit(X, y, X_val)


def test_follows_scikit_learn_estimator_conventions(client, split):
    """get_params / set_params / clone, and the current client by default (issue 9)."""
    from sklearn.base import clone

    X, y, X_val, y_val = split
    search = FederatedSearch(BASE, {"eta0": [1e-3, 1.0]}, block_size=BLOCK, sync=4)
    assert search.get_params()["param_grid"] == {"eta0": [1e-3, 1.0]} and search.client is None
    copy = clone(search).set_params(param_grid={"eta0": [1.0]})
    assert copy.get_params()["param_grid"] == {"eta0": [1.0]} and search.param_grid == {"eta0": [1e-3, 1.0]}
    assert "FederatedSearch(" in repr(search)
    search.fit(X, y, X_val, y_val)  # no client given: the default one (this module's cluster)
    assert len(search.cv_results_["params"]) == 2 and search.candidate_params_ == [{"eta0": 0.001}, {"eta0": 1.0}]


def test_scoring_failure_names_the_candidate(client, split):
    X, y, X_val, y_val = split

    def broken(estimator, X, y):
        raise RuntimeError("boom")

    search = FederatedSearch(BASE, {"eta0": [1.0]}, client=client, scoring=broken, block_size=4000)
    with pytest.raises(ValueError, match="scoring=.*failed on candidate 0 .*boom"):
        search.fit(X, y, X_val, y_val)


def test_feature_names_as_grid_search_cv_has_them(client, unique_name):
    """Fitted on a DataFrame with string column names, the search and its best estimator have
    ``feature_names_in_`` and refuse other names or order, as ``GridSearchCV`` does."""
    import warnings

    from sklearn.model_selection import GridSearchCV

    from fedplugin import EveryNBatches

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    y = (X["a"] > 0).to_numpy(dtype=int)
    grid = {"alpha": [1e-4, 1e-2]}

    def search():
        return FederatedSearch(SGDClassifier(random_state=0), grid, client=client, name=unique_name, block_size=20, sync=EveryNBatches(2))

    reference = GridSearchCV(SGDClassifier(random_state=0), grid, cv=2)
    for fitted in (search().fit(X, y), reference.fit(X, y)):
        assert fitted.feature_names_in_.tolist() == fitted.best_estimator_.feature_names_in_.tolist() == ["a", "b", "c"]
        assert fitted.n_features_in_ == 3
        for other in (X[["b", "a", "c"]], X.set_axis(["a", "b", "z"], axis=1)):
            for call in (lambda: fitted.predict(other), lambda: fitted.score(other, y)):
                with pytest.raises(ValueError, match="feature names"):
                    call()
        with pytest.warns(UserWarning, match="X does not have valid feature names"):
            fitted.predict(X.to_numpy())
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the same names: no warning
            assert fitted.score(X, y) == fitted.best_estimator_.score(X, y)
    with pytest.raises(ValueError, match=r"X_val has the model's feature names in another order, \['b', 'a', 'c'\]"):
        search().fit(X, y, X[["b", "a", "c"]], y)  # refused before any training
    plain = search().fit(X.to_numpy(), y)
    assert plain.n_features_in_ == 3 and not hasattr(plain, "feature_names_in_")
    assert not hasattr(plain.best_estimator_, "feature_names_in_") and not hasattr(search(), "n_features_in_")
