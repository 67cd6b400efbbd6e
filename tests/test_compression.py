"""Compressed updates (issue 12): codecs, error feedback, bytes in the history, refusals."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fedplugin import EveryNBatches
from fedplugin.adapters import adapter_for
from fedplugin.compression import Float16, Int8, TopK, as_codec, compress, decode, payload_nbytes
from fedplugin.round_state import RoundState
from fedplugin.session import federated_session
from fedplugin.store import GlobalModel


@pytest.fixture
def client(shared_client):
    return shared_client


def test_codecs_round_trip_within_their_bounds():
    values = np.array([-3.0, -1e-3, 0.0, 0.3, 1.0, 2.5])
    half = decode(Float16(), Float16().encode({"w": values}))["w"]
    np.testing.assert_allclose(half, values, rtol=2**-11)  # float16 keeps 11 significant bits
    assert half.dtype == np.float64
    codec = Int8()
    part = codec.encode({"w": values})["w"]
    assert part["q"].dtype == np.int8 and float(part["scale"]) == 3.0 / 127
    back = codec.decode_tensor(part)
    assert np.max(np.abs(back - values)) <= 3.0 / 127 / 2 and back[0] == -3.0  # the largest is exact
    assert codec.encode({"w": np.zeros(20)})["w"]["q"].tolist() == [0] * 20  # no division by zero
    kept = decode(TopK(fraction=1 / 3), TopK(fraction=1 / 3).encode({"w": values}))["w"]
    assert kept.tolist() == [-3.0, 0, 0, 0, 0, 2.5]


def test_top_k_keeps_exactly_the_k_largest_magnitudes():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(20, 50))
    part = TopK(fraction=0.01).encode({"w": values})["w"]
    largest = np.argsort(np.abs(values).ravel())[-10:]
    assert sorted(part["indices"].tolist()) == sorted(largest.tolist()) and part["indices"].dtype == np.int32
    np.testing.assert_array_equal(part["values"], values.ravel()[part["indices"]])
    assert payload_nbytes({"w": part}) == 10 * (8 + 4)
    # A tensor whose sparse form would not be smaller goes as it is, exactly.
    small = TopK(fraction=0.01).encode({"b": np.array([-0.25])})["b"]  # 12 bytes sparse, 8 dense
    assert small["dense"].tolist() == [-0.25]
    assert Float16().encode({"huge": np.array([1e6])})["huge"]["dense"].tolist() == [1e6]  # beyond float16


def test_error_feedback_sends_what_it_dropped_later():
    """One worker, two rounds: what it sent plus what it still holds is what it learned."""
    rng = np.random.default_rng(1)
    codec = TopK(fraction=0.1)
    state = RoundState(adapter_for(SGDRegressor()))
    g0 = GlobalModel(0, {"coef_": np.full(30, 10.0), "intercept_": np.zeros(1)}, n_features=30)
    state.reset(g0)
    d1, d2 = rng.normal(size=30), rng.normal(size=30)
    x1 = {"coef_": g0.params["coef_"] + d1, "intercept_": np.zeros(1)}
    state.hand_over(0, x1, 10, {})
    pulled = state.update_for(0, codec)
    assert state.update_for(0, codec)["payload"] is pulled["payload"]  # a retried pull: the same payload
    sent1 = decode(codec, pulled["payload"])
    assert np.count_nonzero(sent1["coef_"]) == 3 and pulled["raw_nbytes"] == 31 * 8
    # The combining worker's new model (one worker): g0 + what was sent. The worker keeps the residual.
    state.add_incoming(GlobalModel(1, {name: g0.params[name] + sent1[name] for name in sent1}, n_features=30))
    local = state.rebase(x1)
    np.testing.assert_allclose(local["coef_"], x1["coef_"])
    x2 = {"coef_": local["coef_"] + d2, "intercept_": np.zeros(1)}
    state.hand_over(1, x2, 10, {})
    sent2 = decode(codec, state.update_for(1, codec)["payload"])["coef_"]
    residual = x2["coef_"] - (state.applied.params["coef_"] + sent2)
    np.testing.assert_allclose(sent1["coef_"] + sent2 + residual, d1 + d2, atol=1e-12)
    # The second payload carries the largest of residual + new progress.
    expected = decode(codec, compress(codec, {"coef_": d1 - sent1["coef_"] + d2})[0])["coef_"]
    np.testing.assert_allclose(sent2, expected, atol=1e-12)
    assert list(state.outbox.sent) == [1] and list(state.outbox.anchors) == [1]
    # Without error feedback the dropped part is gone: the worker keeps no anchor.
    state.reset(g0)
    state.hand_over(0, x1, 10, {})
    state.update_for(0, TopK(fraction=0.1, error_feedback=False))
    assert state.outbox.anchors == {}


def problem():
    """10 classes x 500 features (5,010 parameters): large enough for top-1 % to pay."""
    X, y = make_classification(
        n_samples=6_000, n_features=500, n_informative=20, n_redundant=0, n_classes=10,
        n_clusters_per_class=1, class_sep=2.0, random_state=0,
    )
    return X[:5_000], y[:5_000], X[5_000:], y[5_000:]


@pytest.fixture(scope="module")
def uncompressed(shared_client):
    """Held-out accuracy and history of the same fit without compression."""
    return fit(shared_client, None, "test_compression-uncompressed")


def fit(client, compression, name):
    X, y, X_test, y_test = problem()
    with federated_session(
        client, SGDClassifier(random_state=0), classes=np.arange(10), name=name, sync=EveryNBatches(2),
        block_size=250, overlap=False, progress=False, compression=compression,
    ) as coord:
        coord.fit(X, y)
        accuracy = coord.score(X_test, y_test)
        coord.synchronize()  # a manual round sends compressed too (with error feedback: the residuals)
        return accuracy, list(coord.history)


@pytest.mark.parametrize(
    "compression, ratio, points",
    [("float16", (3.9, 4.0), 1.0), ("int8", (7.5, 8.0), 1.0), (TopK(fraction=0.01), (30, 100), 3.0)],
    ids=["float16", "int8", "top1%"],
)
def test_a_compressed_fit_records_its_bytes_and_stays_close(client, unique_name, uncompressed, compression, ratio, points):
    accuracy, history = fit(client, compression, unique_name)
    assert len(history) == 11 and history[-1].trigger == "manual"
    raw, sent = sum(r.bytes_up_raw for r in history), sum(r.bytes_up for r in history)
    assert raw == 11 * 2 * (10 * 500 + 10) * 8  # two float64 updates a round
    assert ratio[0] <= raw / sent <= ratio[1]
    assert accuracy >= uncompressed[0] - points / 100


def test_uncompressed_bytes_are_the_parameters(uncompressed):
    accuracy, history = uncompressed
    assert len(history) == 11 and accuracy > 0.8
    assert all(r.bytes_up == r.bytes_up_raw == 2 * (10 * 500 + 10) * 8 for r in history)


def test_exact_families_and_bad_arguments_are_refused(client, unique_name):
    for estimator in (GaussianNB(), StandardScaler(), make_pipeline(StandardScaler(), SGDClassifier())):
        with pytest.raises(ValueError, match=r"compression='float16': \w+Adapter .*expected compression=None"):
            as_codec("float16", adapter_for(estimator))
    with pytest.raises(ValueError, match="compression='int4' is not supported; expected None, one of"):
        as_codec("int4")
    with pytest.raises(ValueError, match="compression=8 is not supported"):
        as_codec(8)
    with pytest.raises(ValueError, match=r"fraction=1.5 must be a number in \(0, 1\]"):
        TopK(fraction=1.5)
    with pytest.raises(TypeError, match="error_feedback='yes' must be True or False"):
        TopK(error_feedback="yes")
    with pytest.raises(ValueError, match="GaussianNBAdapter combined exactly from counts and sums"):
        with federated_session(client, GaussianNB(), classes=[0, 1], name=unique_name, compression="int8"):
            pass
