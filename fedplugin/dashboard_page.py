"""The Bokeh document of the dashboard's fedplugin page (served by :mod:`fedplugin.dashboard`).

Runs on the scheduler, inside Dask's Bokeh server: every ``REFRESH_MS``
milliseconds the page streams the rounds and signals the
:class:`~fedplugin.dashboard.DashboardPlugin` received since its last look
into its data sources (each keeps the latest
``ROUNDS_KEPT`` rows, so a browser left open on a
long run holds bounded memory). Its plots, over wall time:

* **rounds**: one marker per round at its number, coloured by its trigger;
* **samples/s** of each round;
* **score**: the test-then-train ``online_score`` and the ``validation_score``;
* **round-ending signals**: what workers signalled (coloured by trigger), at
  the drift they measured;
* **bytes per round**: parameter bytes up, down, and bytes through the client;
* **privacy spent**: epsilon, shown only once a round records it (DP-FedAvg);

and per worker, the samples it trained and the round (and model version) its
update last went into. Its data sources (``fedplugin-rounds``,
``fedplugin-signals``, ``fedplugin-workers``) and main glyphs are named, so
that a browser test can find them.
"""

from __future__ import annotations

import html
import math
from typing import Any
from urllib.parse import quote

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Div, FactorRange, HoverTool, NumeralTickFormatter
from bokeh.palettes import Category10_10
from bokeh.plotting import figure
from distributed.dashboard.components import add_periodic_callback
from distributed.dashboard.components.scheduler import BOKEH_THEME, env
from distributed.utils import log_errors

from .dashboard import COLUMNS, PAGE, PLUGIN_NAME, ROUNDS_KEPT, SIGNALS_KEPT
from .wording import count

#: Milliseconds between two looks at the scheduler's records.
REFRESH_MS = 500
#: The colours ``plot_history`` gives the triggers fedplugin records (matplotlib's tab10).
TRIGGER_COLORS = {"count": "#1f77b4", "time": "#ff7f0e", "drift": "#d62728", "change": "#8c564b", "final": "#2ca02c", "manual": "#9467bd"}
_TOOLS = "pan,wheel_zoom,box_zoom,reset"
#: Dask's page background (its base.css). Dask's theme leaves plot borders unpainted, which
#: keeps stale pixels there when a plot's frame moves (tick labels grow as data arrives).
_BORDER = "#fafafa"


@log_errors
def page_doc(scheduler: Any, extra: dict[str, Any], doc: Any) -> None:
    """Build one browser session's page (Dask's ``BokehApplication`` calls it)."""
    arguments = doc.session_context.request.arguments if doc.session_context else {}
    names = arguments.get("name") or [b""]
    page = FedpluginPage(scheduler.plugins.get(PLUGIN_NAME), names[0].decode() or None)
    doc.title = "Dask: fedplugin"
    add_periodic_callback(doc, page, REFRESH_MS)
    doc.add_root(page.root)
    doc.template = env.get_template("simple.html")
    doc.template_variables.update(extra)
    doc.theme = BOKEH_THEME
    page.update()


class FedpluginPage:
    """The plots of one coordinator, fed from the scheduler's :class:`~fedplugin.dashboard.DashboardPlugin`.

    ``name=None`` follows the coordinator heard from last.
    """

    def __init__(self, plugin: Any, name: str | None) -> None:
        self.plugin, self.fixed, self.name = plugin, name, None
        self.seen_rounds = self.seen_signals = 0
        self.colors: dict[str, str] = dict(TRIGGER_COLORS)
        self.rounds = ColumnDataSource({key: [] for key in (*COLUMNS, "color")}, name="fedplugin-rounds")
        self.signals = ColumnDataSource(
            {key: [] for key in ("time", "worker", "trigger", "drift", "color")}, name="fedplugin-signals"
        )
        self.workers = ColumnDataSource(
            {key: [] for key in ("worker", "samples", "round", "version", "label")}, name="fedplugin-workers"
        )
        self.title = Div(name="fedplugin-title", sizing_mode="stretch_width")
        self.epsilon = self._epsilon_figure()  # shown with the first epsilon
        timelines = [self._rounds_figure(), self._speed_figure(), self._score_figure(),
                     self._signals_figure(), self._bytes_figure(), self.epsilon]
        for fig in timelines[1:]:
            fig.x_range = timelines[0].x_range
        self.worker_figure = self._workers_figure()
        grid = [row(*pair, sizing_mode="stretch_width") for pair in
                (timelines[:2], timelines[2:4], [timelines[4], self.worker_figure], [self.epsilon])]
        self.root = column(self.title, *grid, sizing_mode="stretch_width")

    # ------------------------------------------------------------ updating
    def update(self) -> None:
        """Stream what the scheduler received since the last update."""
        name = self.fixed or (self.plugin.latest() if self.plugin is not None else None)
        if name != self.name:
            self._switch(name)
        feed = None if self.plugin is None or name is None else self.plugin.feeds.get(name)
        if feed is None:
            self.title.text = self._heading(None)
            return
        rows, self.seen_rounds = feed.rounds_since(self.seen_rounds)
        if rows:
            data = {key: [row[key] for row in rows] for key in COLUMNS}
            data["time"] = [1000 * t for t in data["time"]]  # Bokeh's datetime axes count milliseconds
            data["color"] = [self._color(trigger) for trigger in data["trigger"]]
            self.rounds.stream(data, rollover=ROUNDS_KEPT)
            if not self.epsilon.visible and any(not math.isnan(row["epsilon"]) for row in rows):
                self.epsilon.visible = True
        signals, self.seen_signals = feed.signals_since(self.seen_signals)
        if signals:
            data = {key: [signal[key] for signal in signals] for key in ("worker", "trigger", "drift")}
            data["time"] = [1000 * signal["time"] for signal in signals]
            data["color"] = [self._color(trigger) for trigger in data["trigger"]]
            self.signals.stream(data, rollover=SIGNALS_KEPT)
        self._update_workers(feed.workers)
        self.title.text = self._heading(feed)

    def _switch(self, name: str | None) -> None:
        self.name, self.seen_rounds, self.seen_signals = name, 0, 0
        for source in (self.rounds, self.signals, self.workers):
            source.data = {key: [] for key in source.data}

    def _update_workers(self, workers: dict[str, list]) -> None:
        names = sorted(workers)
        data = {
            "worker": names, "samples": [workers[w][0] for w in names], "round": [workers[w][1] for w in names],
            "version": [workers[w][2] for w in names],
            "label": [f"round {workers[w][1]}, version {workers[w][2]}" for w in names],
        }
        if data != self.workers.data:
            self.worker_figure.y_range.factors = names
            self.workers.data = data

    def _color(self, trigger: str) -> str:
        if trigger not in self.colors:  # a custom policy's trigger: the next unused colour
            free = [c for c in Category10_10 if c not in self.colors.values()] or list(Category10_10)
            self.colors[trigger] = free[0]
        return self.colors[trigger]

    def _heading(self, feed: Any) -> str:
        others = sorted(set(self.plugin.feeds) - {self.name}) if self.plugin is not None else []
        links = ", ".join(f'<a href="{PAGE}?name={quote(n, safe="")}">{html.escape(n)}</a>' for n in others)
        title = f"<h3>fedplugin: {html.escape(self.name or 'no coordinator yet')}</h3>"
        if feed is None or not feed.rounds:
            text = "waiting for the first round"
        else:
            last = feed.rounds[-1]
            text = (f"{count(feed.n_rounds, 'round')}, the latest: round {last['round']} ({last['trigger']}), "
                    f"model version {last['version']}, {count(len(feed.workers), 'worker')}")
        return title + f"<p>{text}" + (f"; other coordinators: {links}" if links else "") + "</p>"

    # ------------------------------------------------------------ figures
    def _timeline(self, title: str, y_label: str, **kwargs: Any) -> Any:
        fig = figure(title=title, x_axis_type="datetime", height=230, sizing_mode="stretch_width",
                     tools=_TOOLS, toolbar_location="above", border_fill_color=_BORDER, **kwargs)
        fig.yaxis.axis_label = y_label
        return fig

    def _rounds_figure(self) -> Any:
        fig = self._timeline("Rounds, by trigger", "round")
        fig.scatter("time", "round", source=self.rounds, color="color", legend_field="trigger", size=8,
                    name="fedplugin-round-markers")
        fig.legend.location = "top_left"
        fig.add_tools(HoverTool(tooltips=[("round", "@round"), ("trigger", "@trigger"), ("samples", "@samples"),
                                          ("seconds", "@seconds{0.000}"), ("workers", "@n_workers")]))
        return fig

    def _speed_figure(self) -> Any:
        fig = self._timeline("Samples per second", "samples/s")
        fig.line("time", "samples_per_second", source=self.rounds)
        fig.scatter("time", "samples_per_second", source=self.rounds, size=4)
        fig.yaxis.formatter = NumeralTickFormatter(format="0.[0]a")
        fig.add_tools(HoverTool(tooltips=[("round", "@round"), ("samples/s", "@samples_per_second{0,0}")]))
        return fig

    def _score_figure(self) -> Any:
        fig = self._timeline("Score", "score")
        for key, color in (("online_score", "#1f77b4"), ("validation_score", "#2ca02c")):
            fig.line("time", key, source=self.rounds, color=color, legend_label=key.replace("_", " "))
        fig.legend.location = "bottom_right"
        fig.legend.background_fill_alpha = 0.5
        fig.add_tools(HoverTool(tooltips=[("round", "@round"), ("online", "@online_score{0.0000}"),
                                          ("validation", "@validation_score{0.0000}")]))
        return fig

    def _signals_figure(self) -> Any:
        fig = self._timeline("Round-ending signals from workers", "drift (squared distance)")
        fig.scatter("time", "drift", source=self.signals, color="color", legend_field="trigger", size=7,
                    marker="triangle", name="fedplugin-signal-markers")
        fig.legend.location = "top_right"
        fig.yaxis.formatter = NumeralTickFormatter(format="0.[00]a")
        fig.add_tools(HoverTool(tooltips=[("worker", "@worker"), ("trigger", "@trigger"), ("drift", "@drift")]))
        return fig

    def _bytes_figure(self) -> Any:
        fig = self._timeline("Bytes per round", "bytes")
        for key, color in (("bytes_up", "#1f77b4"), ("bytes_down", "#ff7f0e"), ("client_bytes", "#7f7f7f")):
            fig.line("time", key, source=self.rounds, color=color, legend_label=key.replace("_", " "))
        fig.yaxis.formatter = NumeralTickFormatter(format="0.[0] b")
        fig.legend.location = "top_left"
        return fig

    def _epsilon_figure(self) -> Any:
        fig = self._timeline("Privacy spent", "epsilon", visible=False, name="fedplugin-epsilon")
        fig.line("time", "epsilon", source=self.rounds, color="#d62728", name="fedplugin-epsilon-line")
        fig.add_tools(HoverTool(tooltips=[("round", "@round"), ("epsilon", "@epsilon{0.000}")]))
        return fig

    def _workers_figure(self) -> Any:
        fig = figure(title="Samples per worker (latest round and model version)", y_range=FactorRange(),
                     height=230, sizing_mode="stretch_width", tools=_TOOLS, toolbar_location="above",
                     border_fill_color=_BORDER)
        fig.hbar(y="worker", right="samples", source=self.workers, height=0.6, color="#9ecae1", name="fedplugin-worker-bars")
        fig.text(x=0, y="worker", text="label", source=self.workers, x_offset=6, text_baseline="middle",
                 text_font_size="11px")
        fig.x_range.start = 0
        fig.xaxis.formatter = NumeralTickFormatter(format="0.[0]a")
        fig.add_tools(HoverTool(tooltips=[("worker", "@worker"), ("samples", "@samples{0,0}"),
                                          ("round", "@round"), ("version", "@version")]))
        return fig


__all__ = ["FedpluginPage", "page_doc"]
