"""Plot a coordinator's history: throughput, rounds, bytes moved and metrics.

matplotlib is an optional dependency (``pip install "fedplugin[plot]"`` or
``pip install matplotlib``); it is imported only when :func:`plot_history` is
called.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .history import Round

#: Colours of the triggers fedplugin itself records; other triggers (custom
#: policies) get the next free colours of matplotlib's ``tab10`` cycle.
TRIGGER_COLORS = {
    "count": "tab:blue",
    "time": "tab:orange",
    "drift": "tab:red",
    "change": "tab:brown",
    "final": "tab:green",
    "manual": "tab:purple",
}


def plot_history(history: Sequence[Round], ax: Any = None) -> Any:
    """Draw a federated training history as four panels over wall time.

    The horizontal axis of every panel is the cumulative wall time of the
    rounds (the running sum of the ``seconds`` of each
    :class:`~fedplugin.Round`), so time spent outside rounds (preparing data,
    between ``fit`` calls) is not shown. The panels are:

    1. throughput: ``samples / seconds`` of each round;
    2. rounds: the round number at the end of each round, one marker per round
       coloured by its trigger (``"count"``, ``"time"``, ``"drift"``,
       ``"final"``, ``"manual"`` or a custom policy's name);
    3. bytes moved: parameter bytes gathered from workers (``bytes_up``), sent
       back to them (``bytes_down``) and both together, cumulative; with
       compressed updates, also what they would have weighed uncompressed
       (``bytes_up_raw``);
    4. metrics: every numeric entry found in the rounds' ``metrics`` dicts, one
       line each over the rounds that have it; when no round has a numeric
       metric, the total samples trained instead. When the rounds record
       the privacy spent (``epsilon``, with :class:`~fedplugin.DPFedAvg`),
       it is drawn on a second vertical axis of this panel, on the right.

    Parameters
    ----------
    history : sequence of Round
        ``coord.history`` of a :class:`~fedplugin.Coordinator` or
        ``history_`` of a fitted :class:`~fedplugin.FederatedEstimator`.
        Mappings with the same keys (``Round.as_dict()``) are accepted too.
    ax : sequence of 4 matplotlib Axes, optional
        Axes to draw the four panels into, in the order above (a 2 x 2 array
        from ``plt.subplots(2, 2)`` works). By default a new 2 x 2 figure is
        made with ``matplotlib.pyplot.subplots``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the panels (that of ``ax[0]`` when ``ax`` is given).

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If ``history`` is empty, a mapping in it lacks a field that is
        plotted, or ``ax`` does not hold exactly four Axes.
    TypeError
        If an item of ``history`` is neither a Round nor a mapping.

    See Also
    --------
    fedplugin.Round : One record of ``history``.
    fedplugin.Coordinator : Whose ``history`` this draws; ``scoring=`` fills
        ``metrics["online_score"]``.

    Examples
    --------
    A history built by hand; ``coord.history`` after a ``fit`` looks the same.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from fedplugin.history import Round
    >>> from fedplugin.plotting import plot_history
    >>> workers = ("tcp://10.0.0.1:4000", "tcp://10.0.0.2:4000")
    >>> history = [
    ...     Round(round=i, trigger="final" if i == 3 else "count", samples=204800,
    ...           total_samples=204800 * i, blocks=50, retrained_blocks=0,
    ...           handed_back_blocks=0, n_workers=2, workers=workers, excluded_workers=(),
    ...           seconds=0.25, bytes_up=1616, bytes_down=1616, version=i,
    ...           metrics={"accuracy": 0.80 + 0.02 * i})
    ...     for i in (1, 2, 3)
    ... ]
    >>> fig = plot_history(history)
    >>> [axes.get_ylabel() for axes in fig.axes]
    ['samples/s', 'round', 'bytes moved (cumulative)', 'accuracy']
    >>> fig.axes[0].lines[0].get_ydata().tolist()
    [819200.0, 819200.0, 819200.0]
    >>> fig.savefig("history.png")  # doctest: +SKIP
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
    """
    plt, colormaps, to_hex, EngFormatter = _matplotlib()
    rounds = [_as_mapping(item, i) for i, item in enumerate(history)]
    if not rounds:
        raise ValueError(
            "history is empty: there is nothing to plot; train first (coord.fit(X, y)) "
            "and pass coord.history (or a fitted FederatedEstimator's history_)"
        )

    fig, panels = _panels(plt, ax)

    seconds = np.array([float(r["seconds"]) for r in rounds])
    elapsed = np.cumsum(seconds)
    throughput, round_axes, traffic, metric_axes = panels
    _throughput_panel(throughput, rounds, seconds, elapsed, EngFormatter)
    _rounds_panel(round_axes, rounds, elapsed, colormaps, to_hex)
    _traffic_panel(traffic, rounds, elapsed, EngFormatter)
    _metrics_panel(metric_axes, rounds, elapsed, EngFormatter)
    _privacy_line(metric_axes, rounds, elapsed)
    time_label = "wall time of the rounds (s, cumulative)"
    for i, axes in enumerate(panels):
        if ax is not None or i >= 2:  # a grid of our own shares x: label the bottom row
            axes.set_xlabel(time_label)
        axes.grid(True, alpha=0.3)
    return fig


def _matplotlib() -> tuple[Any, Any, Any, Any]:
    """matplotlib's pieces, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
        from matplotlib import colormaps
        from matplotlib.colors import to_hex
        from matplotlib.ticker import EngFormatter
    except ImportError as exc:
        raise ImportError(
            "plot_history needs matplotlib, an optional dependency of fedplugin; "
            'install it with `pip install matplotlib` or `pip install "fedplugin[plot]"`'
        ) from exc
    return plt, colormaps, to_hex, EngFormatter


def _panels(plt: Any, ax: Any) -> tuple[Any, list]:
    """A new 2 x 2 figure, or the four Axes the caller gave."""
    if ax is None:
        fig, grid = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True, layout="constrained")
        return fig, list(np.asarray(grid).ravel())
    panels = list(np.asarray(ax, dtype=object).ravel())
    if len(panels) != 4:
        raise ValueError(f"ax holds {len(panels)} Axes; expected 4 (e.g. plt.subplots(2, 2)[1])")
    return panels[0].figure, panels


def _throughput_panel(axes: Any, rounds: list, seconds: np.ndarray, elapsed: np.ndarray, formatter: Any) -> None:
    samples = np.array([float(r["samples"]) for r in rounds])
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(seconds > 0, samples / np.where(seconds > 0, seconds, 1.0), np.nan)
    axes.plot(elapsed, rate, marker="o", color="tab:blue", label="samples/s")
    axes.set_title("Throughput per round")
    axes.set_ylabel("samples/s")
    axes.yaxis.set_major_formatter(formatter())
    axes.set_ylim(bottom=0)


def _rounds_panel(axes: Any, rounds: list, elapsed: np.ndarray, colormaps: Any, to_hex: Any) -> None:
    triggers = list(dict.fromkeys(str(r["trigger"]) for r in rounds))
    taken = {to_hex(color) for color in TRIGGER_COLORS.values()}
    spare = iter(c for c in colormaps["tab10"].colors if to_hex(c) not in taken)
    round_numbers = np.array([int(r["round"]) for r in rounds])
    for trigger in triggers:
        color = TRIGGER_COLORS.get(trigger) or next(spare, "black")
        chosen = np.array([str(r["trigger"]) == trigger for r in rounds])
        axes.scatter(elapsed[chosen], round_numbers[chosen], color=color, label=trigger, zorder=3)
    axes.plot(elapsed, round_numbers, color="0.75", linewidth=1, zorder=2)
    axes.set_title("Rounds, by trigger")
    axes.set_ylabel("round")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.legend(title="trigger", loc="upper left", fontsize="small")


def _traffic_panel(axes: Any, rounds: list, elapsed: np.ndarray, formatter: Any) -> None:
    up = np.cumsum([int(r["bytes_up"]) for r in rounds])
    down = np.cumsum([int(r["bytes_down"]) for r in rounds])
    client = np.cumsum([int(r.get("client_bytes", 0) or 0) for r in rounds])
    axes.plot(elapsed, up + down, marker="o", color="black", label="up + down")
    axes.plot(elapsed, up, linestyle="--", color="tab:orange", label="up (updates to the combining worker)")
    axes.plot(elapsed, down, linestyle=":", color="tab:green", label="down (new model to the workers)")
    if client.any():
        axes.plot(elapsed, client, linestyle="-.", color="tab:purple", label="through the client")
    raw = np.cumsum([int(r.get("bytes_up_raw", 0) or r["bytes_up"]) for r in rounds])
    if (raw > up).any():  # compressed updates: what they would have weighed
        axes.plot(elapsed, raw, linestyle="--", color="tab:orange", alpha=0.4, label="up, uncompressed")
    axes.set_title("Bytes moved")
    axes.set_ylabel("bytes moved (cumulative)")
    axes.yaxis.set_major_formatter(formatter(unit="B"))
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left", fontsize="small")


def _metrics_panel(axes: Any, rounds: list, elapsed: np.ndarray, formatter: Any) -> None:
    names = _metric_names(rounds)
    if names:
        for name in names:
            # Only the rounds that measured it: a metric taken every few rounds
            # still draws as one line.
            present = [i for i, r in enumerate(rounds) if _is_number(r["metrics"].get(name))]
            values = [float(rounds[i]["metrics"][name]) for i in present]
            axes.plot(elapsed[present], values, marker="o", label=str(name))
        axes.set_title("Metrics")
        axes.set_ylabel(str(names[0]) if len(names) == 1 else "metric")
        if len(names) > 1:
            axes.legend(loc="best", fontsize="small")
    else:
        totals = [int(r["total_samples"]) for r in rounds]
        axes.plot(elapsed, totals, marker="o", color="tab:blue", label="total samples")
        axes.set_title("Samples trained (no metrics recorded)")
        axes.set_ylabel("total samples")
        axes.yaxis.set_major_formatter(formatter())
        axes.set_ylim(bottom=0)


def _privacy_line(axes: Any, rounds: list, elapsed: np.ndarray) -> None:
    """Epsilon spent, on a right-hand axis of the metrics panel, when the rounds record it."""
    present = [i for i, r in enumerate(rounds) if _is_number(r.get("epsilon"))]
    if not present:
        return
    privacy = axes.twinx()
    values = [float(rounds[i]["epsilon"]) for i in present]
    privacy.plot(elapsed[present], values, marker=".", linestyle="--", color="tab:red", label="epsilon spent")
    privacy.set_ylabel("epsilon spent (privacy)", color="tab:red")
    privacy.set_ylim(bottom=0)
    privacy.tick_params(axis="y", labelcolor="tab:red")


#: The fields of a Round that plot_history reads.
_PLOTTED = ("round", "trigger", "samples", "total_samples", "seconds", "bytes_up", "bytes_down")


def _as_mapping(item: Any, index: int) -> Mapping[str, Any]:
    if isinstance(item, Round):
        return {**vars(item), "metrics": dict(item.metrics or {})}
    if isinstance(item, Mapping):
        missing = [name for name in _PLOTTED if name not in item]
        if missing:
            raise ValueError(f"history[{index}] lacks {missing}; expected the keys of Round.as_dict()")
        return {**item, "metrics": dict(item.get("metrics") or {})}
    raise TypeError(
        f"history[{index}] has type {type(item).__name__}; expected a fedplugin Round "
        "(coord.history) or a mapping with the same keys"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _metric_names(rounds: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Keys of the numeric metrics, in order of first appearance."""
    names: dict[Any, None] = {}
    for r in rounds:
        for name, value in r["metrics"].items():
            if _is_number(value):
                names.setdefault(name, None)
    return list(names)


__all__ = ["plot_history"]
