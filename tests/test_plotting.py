"""plot_history: a real figure from a real training run, and its error messages."""

import dataclasses
import sys

import matplotlib
import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier

from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin
from fedplugin.history import Round
from fedplugin.plotting import plot_history

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


@pytest.fixture
def client(shared_client):
    """The shared cluster: each test registers its plugin under a name of this module's own."""
    return shared_client


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def make_round(i, trigger="count", metrics=None, seconds=0.5):
    """A Round with every field set (zero unless given), whatever fields Round has."""
    values = {field.name: 0 for field in dataclasses.fields(Round)}
    values.update(
        round=i, trigger=trigger, samples=1000 * i, total_samples=1000 * i * (i + 1) // 2, blocks=i,
        n_workers=2, workers=("a", "b"), excluded_workers=(), seconds=seconds,
        bytes_up=100 * i, bytes_down=10 * i, version=i, metrics=metrics or {},
    )
    return Round(**values)


def test_figure_of_a_real_training_run(client, classification_data, tmp_path):
    X, y = classification_data
    plugin = FederatedModelPlugin(SGDClassifier(random_state=0), classes=[0, 1], name="test_plotting-plot")
    client.register_plugin(plugin)
    coord = Coordinator(client, plugin, sync=EveryNBatches(6), block_size=1000, progress=False)
    coord.fit(X, y)  # 20 blocks of 1,000 rows: rounds of 6, 6, 6 and a final one of 2
    history = coord.history
    assert [r.trigger for r in history] == ["count", "count", "count", "final"]

    fig = plot_history(history)

    throughput, rounds, traffic, metrics = fig.axes
    assert len(fig.axes) == 4
    assert [a.get_ylabel() for a in fig.axes] == ["samples/s", "round", "bytes moved (cumulative)", "total samples"]
    time_label = "wall time of the rounds (s, cumulative)"
    assert [a.get_xlabel() for a in fig.axes] == ["", "", time_label, time_label]  # shared x: bottom row

    elapsed = np.cumsum([r.seconds for r in history])
    (line,) = throughput.lines
    np.testing.assert_allclose(line.get_xdata(), elapsed)
    np.testing.assert_allclose(line.get_ydata(), [r.samples / r.seconds for r in history])

    # one marker collection per trigger, in order of first appearance, holding its rounds
    assert [c.get_label() for c in rounds.collections] == ["count", "final"]
    for collection, trigger in zip(rounds.collections, ["count", "final"]):
        expected = [(t, r.round) for t, r in zip(elapsed, history) if r.trigger == trigger]
        np.testing.assert_allclose(collection.get_offsets(), expected)
    assert [t.get_text() for t in rounds.get_legend().get_texts()] == ["count", "final"]

    # Since issue 9 the panel also draws the bytes that crossed the client.
    total, up, down, client_line = traffic.lines
    np.testing.assert_allclose(client_line.get_ydata(), np.cumsum([r.client_bytes for r in history]))
    np.testing.assert_allclose(up.get_ydata(), np.cumsum([r.bytes_up for r in history]))
    np.testing.assert_allclose(down.get_ydata(), np.cumsum([r.bytes_down for r in history]))
    np.testing.assert_allclose(total.get_ydata(), np.cumsum([r.bytes_up + r.bytes_down for r in history]))
    assert total.get_ydata()[-1] > 0

    (samples,) = metrics.lines  # no metrics recorded: total samples instead
    np.testing.assert_allclose(samples.get_ydata(), [r.total_samples for r in history])
    assert samples.get_ydata()[-1] == len(X)

    path = tmp_path / "history.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_online_score_of_a_real_run_is_the_metrics_panel(client, classification_data):
    X, y = classification_data
    plugin = FederatedModelPlugin(SGDClassifier(random_state=0), classes=[0, 1], name="test_plotting-plot-scored")
    client.register_plugin(plugin)
    coord = Coordinator(client, plugin, sync=EveryNBatches(8), block_size=1000, progress=False, scoring="accuracy")
    coord.fit(X, y)
    history = coord.history
    assert all("online_score" in r.metrics for r in history)

    fig = plot_history(history)

    metrics = fig.axes[3]
    assert metrics.get_ylabel() == "online_score"
    (line,) = metrics.lines
    np.testing.assert_allclose(line.get_xdata(), np.cumsum([r.seconds for r in history]))
    np.testing.assert_allclose(line.get_ydata(), [r.metrics["online_score"] for r in history])
    assert 0.5 < line.get_ydata()[-1] <= 1.0  # accuracy, better than chance on this data


def test_empty_history_is_refused():
    with pytest.raises(ValueError, match="history is empty: there is nothing to plot; train first"):
        plot_history([])


def test_metrics_panel_plots_every_numeric_metric():
    history = [
        make_round(1, metrics={"accuracy": 0.8, "note": "text is skipped"}),
        make_round(2, metrics={"accuracy": 0.85, "loss": 0.4}),
        make_round(3, trigger="final", metrics={"loss": 0.3}),
    ]
    fig = plot_history(history)
    metrics = fig.axes[3]
    assert [line.get_label() for line in metrics.lines] == ["accuracy", "loss"]
    accuracy, loss = metrics.lines
    np.testing.assert_allclose(accuracy.get_xdata(), [0.5, 1.0])  # only the rounds that measured it
    np.testing.assert_allclose(accuracy.get_ydata(), [0.8, 0.85])
    np.testing.assert_allclose(loss.get_xdata(), [1.0, 1.5])
    np.testing.assert_allclose(loss.get_ydata(), [0.4, 0.3])
    assert metrics.get_ylabel() == "metric"


def test_compressed_updates_show_their_uncompressed_bytes_too():
    plain = plot_history([make_round(1), make_round(2)])
    assert "up, uncompressed" not in [line.get_label() for line in plain.axes[2].lines]
    compressed = [dataclasses.replace(make_round(i), bytes_up_raw=400 * i) for i in (1, 2)]
    lines = {line.get_label(): line for line in plot_history(compressed).axes[2].lines}
    np.testing.assert_array_equal(lines["up, uncompressed"].get_ydata(), [400, 1200])
    np.testing.assert_array_equal(lines["up (updates to the combining worker)"].get_ydata(), [100, 300])


def test_draws_into_given_axes_and_accepts_dicts():
    fig, grid = plt.subplots(2, 2)
    history = [make_round(1).as_dict(), make_round(2, trigger="my-policy").as_dict()]
    assert plot_history(history, ax=grid) is fig
    assert all(a.get_xlabel() == "wall time of the rounds (s, cumulative)" for a in grid.ravel())
    assert all(len(a.lines) + len(a.collections) > 0 for a in grid.ravel())
    assert [c.get_label() for c in grid[0, 1].collections] == ["count", "my-policy"]


def test_bad_axes_and_items_are_refused():
    fig, grid = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="ax holds 3 Axes; expected 4"):
        plot_history([make_round(1)], ax=grid)
    with pytest.raises(TypeError, match=r"history\[1\] has type int; expected a fedplugin Round"):
        plot_history([make_round(1), 5])
    with pytest.raises(ValueError, match=r"history\[0\] lacks \['seconds'\]; expected the keys of Round.as_dict"):
        plot_history([{k: v for k, v in make_round(1).as_dict().items() if k != "seconds"}])


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install matplotlib.*fedplugin\[plot\]"):
        plot_history([make_round(1)])
