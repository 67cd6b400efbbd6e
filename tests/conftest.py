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

#: The fast subset, marked ``compat`` here: what ``nox -s minimum newest wheel`` run against
#: other dependency versions and the installed wheel (``pytest -m compat``, ~1 min). Chosen for
#: what changes between versions: scikit-learn's internals, checks and messages, Dask inputs,
#: the dask command line and TLS, restarts, event topics, joblib, tqdm and matplotlib.
#: Test file -> test function names, or "*" for the whole file.
COMPAT = {
    "test_adapters.py": "*",
    "test_aggregation.py": "*",
    "test_queues.py": "*",
    "test_sync.py": "*",
    "test_estimator.py": "*",
    "test_model_families.py": {
        "test_unsupported_family_with_partial_fit_refused_naming_the_supported_ones",
        "test_mlp_initialize_draws_the_estimators_own_weights",
        "test_mlp_set_params_keeps_the_optimizer_consistent_with_the_new_weights",
        "test_mlp_settings_without_partial_fit_refused",
        "test_naive_bayes_aggregate_equals_learning_everything",
        "test_minibatch_kmeans_initialize_matches_its_first_partial_fit",
        "test_minibatch_kmeans_aggregate_is_one_minibatch_of_all_new_points",
        "test_minibatch_kmeans_init_array_must_hold_n_clusters_centers",
        "test_federated_naive_bayes_and_minibatch_kmeans",
    },
    "test_coordinator.py": {
        "test_federated_accuracy_close_to_single_process",
        "test_regressor",
        "test_dask_array_blocks_trained_where_they_live",
        "test_dask_dataframe_input",
        "test_predict_proba_and_decision_function",
    },
    "test_rounds.py": {
        "test_next_global_weighted_mean_by_hand",
        "test_exact_merge_equals_learning_all_the_data",
        "test_kmeans_merge_moves_the_global_centers_by_the_new_points",
        "test_every_sample_exactly_once_in_both_modes",
    },
    "test_sync_protocols.py": {"test_drift_threshold_signals_and_loses_no_block"},
    "test_change_detection.py": {"test_page_hinkley_and_adwin_agree_with_river"},
    "test_online.py": {
        "test_fit_stream_trains_every_batch_once",
        "test_predict_on_worker_global_and_local",
        "test_progress_bar_and_logging",
    },
    "test_search.py": {
        "test_passive_aggressive_classifier_equals_its_sgd_equivalent",
        "test_candidate_set_takes_the_type_of_its_candidates",
        "test_candidate_set_stops_training_a_diverging_candidate_only",
        "test_best_candidate_is_as_good_as_the_best_trained_alone",
        "test_clear_errors",
        "test_follows_scikit_learn_estimator_conventions",
    },
    "test_validation.py": {
        "test_bad_dask_input",
        "test_bad_estimator_settings_refused_before_registration",
        "test_sgd_passive_aggressive_refused_before_scikit_learn_1_8",
    },
    "test_checkpoint.py": {
        "test_round_trip_keeps_arrays_history_and_estimator",
        "test_resumed_run_ends_with_the_same_model_as_an_uninterrupted_one",
    },
    "test_plotting.py": {"test_figure_of_a_real_training_run", "test_metrics_panel_plots_every_numeric_metric"},
    "test_reliability.py": {"test_client_restart_keeps_the_global_model"},
    "test_deployment.py": {
        "test_command_line_cluster_trains_over_tls",
        "test_register_waits_for_a_first_worker_or_says_there_is_none",
    },
}


def pytest_collection_modifyitems(items):
    """Mark the ``compat`` subset; skip the doctests of SGD passive-aggressive before scikit-learn 1.8."""
    for item in items:
        if isinstance(item, pytest.DoctestItem):
            if not SGD_PASSIVE_AGGRESSIVE and item.name in PASSIVE_AGGRESSIVE_DOCTESTS:
                item.add_marker(needs_sgd_passive_aggressive)
            continue
        names = COMPAT.get(item.path.name, ())
        if names == "*" or getattr(item, "originalname", item.name) in names:
            item.add_marker(pytest.mark.compat)
        module = getattr(item, "module", None)
        missing = [] if module is None or names == "*" else [name for name in names if not hasattr(module, name)]
        if missing:  # a renamed test must not leave the subset unnoticed
            raise pytest.UsageError(f"tests/conftest.py: COMPAT names no such test in {item.path.name}: {missing}")


@pytest.fixture
def classification_data():
    """20,000 x 20 binary problem, seeded, as numpy arrays."""
    X, y = make_classification(
        n_samples=20_000, n_features=20, n_informative=10, random_state=0, flip_y=0.05
    )
    return X, y


def params_equal(a, b):
    return a.keys() == b.keys() and all(np.allclose(a[k], b[k]) for k in a)


def _two_worker_cluster():
    from distributed import Client, LocalCluster

    # ":0": a free port (None would still take 8787, which other tests' clusters want)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0", worker_dashboard_address=None)
    client = Client(cluster)
    client.wait_for_workers(2)
    return cluster, client


class _SharedCluster:
    """The 2-worker cluster consecutive test modules share (starting and closing one costs ~3 s).

    It is opened by the first module that asks for ``shared_client`` and closed
    before any test that uses distributed's ``client`` / ``cleanup`` fixtures,
    which fail a test while other clusters' processes are alive.
    """

    cluster = None
    client = None

    @classmethod
    def get(cls):
        if cls.client is None:
            cls.cluster, cls.client = _two_worker_cluster()
        return cls.client

    @classmethod
    def close(cls):
        if cls.client is not None:
            cls.client.close()
            cls.cluster.close()
            cls.cluster = cls.client = None


#: distributed.utils_test fixtures that fail a test while another cluster's processes are alive.
_LEAK_CHECKING = {"cleanup", "loop", "loop_in_thread", "cluster_fixture"}


def pytest_runtest_setup(item):
    if _LEAK_CHECKING & set(getattr(item, "fixturenames", ())):
        _SharedCluster.close()


def pytest_sessionfinish(session):
    _SharedCluster.close()


def _worker_plugins(client):
    return client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.worker_plugins))


@pytest.fixture(scope="module")
def shared_client(request):
    """A 2-worker cluster (processes with nannies) for a whole test module.

    Tests that use it register their plugin under a name of their own, so
    they do not see each other's models. Modules share one cluster; the
    worker plugins a module registered are unregistered after it, so a later
    worker start never sets up an earlier module's plugins. A module that
    restarts workers sets ``OWN_CLUSTER = True`` and gets a cluster of its own.
    """
    if getattr(request.module, "OWN_CLUSTER", False):
        cluster, client = _two_worker_cluster()
        with cluster, client:
            yield client
        return
    client = _SharedCluster.get()
    client.wait_for_workers(2)
    before = set(_worker_plugins(client))
    yield client
    for name in set(_worker_plugins(client)) - before:
        client.unregister_worker_plugin(name)


@pytest.fixture
def unique_name(request):
    """A plugin name unique to the test (its node id, made safe)."""
    import re

    return re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)
