"""A "fedplugin" page in the scheduler's Dask dashboard, live during a fit.

Three parts, each small:

* :class:`DashboardPlugin`, a ``SchedulerPlugin`` that keeps, per coordinator
  name, the latest rounds and round-ending signals (bounded: a service that
  runs 100,000 rounds keeps the latest ``ROUNDS_KEPT`` of the latest
  ``FEEDS_KEPT`` coordinators), and adds the page
  ``/fedplugin`` to the Bokeh dashboard of a *running* scheduler (in this
  process or another one, e.g. ``dask scheduler``): a second Bokeh server
  application on the scheduler's HTTP server, next to Dask's own pages, with a
  **Fedplugin** tab in their navigation bar. The document itself is built by
  ``fedplugin.dashboard_page``.
* :func:`page_served`: installs the plugin, once per client, and says whether
  the page is served (no Bokeh dashboard on the scheduler, or no ``bokeh``
  there: no page, and nothing more is sent).
* :class:`RoundFeed`: a coordinator's sender of its closed rounds, a few
  numbers each, batched to at most one call to the scheduler every
  ``FLUSH_SECONDS`` (and at the end of every fit).

The workers' round-ending signals already reach the scheduler as Dask events
(topic ``fedplugin-<name>``, see :doc:`/guide/monitoring`); the plugin's
``log_event`` hook keeps the latest ``SIGNALS_KEPT`` of them for the page.
``bokeh`` is needed only on the scheduler, and only imported there.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections import deque
from itertools import islice
from typing import Any
from urllib.parse import quote, urljoin

from distributed import Client
from distributed.diagnostics.plugin import SchedulerPlugin

from .history import Round

logger = logging.getLogger("fedplugin")

PLUGIN_NAME = "fedplugin-dashboard"
#: The page's path in the dashboard, after the dashboard's own prefix.
PAGE = "fedplugin"
#: Rounds the scheduler keeps per coordinator for the page (and the page shows).
ROUNDS_KEPT = 1000
#: Round-ending signals the scheduler keeps per coordinator for the page.
SIGNALS_KEPT = 1000
#: Coordinators the scheduler keeps records of (those heard from last).
FEEDS_KEPT = 100
#: Least seconds between two sends of a coordinator's rounds to the scheduler.
FLUSH_SECONDS = 0.5
#: The per-round numbers the page plots (see :func:`round_row`).
COLUMNS = (
    "time", "round", "trigger", "samples", "seconds", "samples_per_second", "online_score",
    "validation_score", "bytes_up", "bytes_down", "client_bytes", "epsilon", "version", "n_workers",
)


def round_row(record: Round, samples_by: dict[str, int], now: float) -> dict[str, Any]:
    """What the page needs of one round: ``COLUMNS``, and the samples of each worker.

    Missing measurements are NaN, which the plots leave as gaps.

    Examples
    --------
    >>> from fedplugin.history import Round
    >>> record = Round(3, "drift", 800, 2400, 2, 0, 0, 2, ("a", "b"), (), 0.5, 10, 20, 4)
    >>> row = round_row(record, {"a": 300, "b": 500}, now=1.0)
    >>> row["samples_per_second"], row["online_score"], row["workers"]
    (1600.0, nan, {'a': 300, 'b': 500})
    """
    metrics = record.metrics
    return {
        "time": now, "round": record.round, "trigger": record.trigger, "samples": record.samples,
        "seconds": record.seconds,
        "samples_per_second": record.samples / record.seconds if record.seconds > 0 else math.nan,
        "online_score": float(metrics.get("online_score", math.nan)),
        "validation_score": float(metrics.get("validation_score", math.nan)),
        "bytes_up": record.bytes_up, "bytes_down": record.bytes_down, "client_bytes": record.client_bytes,
        "epsilon": math.nan if record.epsilon is None else float(record.epsilon),
        "version": record.version, "n_workers": record.n_workers, "workers": dict(samples_by),
    }


class CoordinatorFeed:
    """What the scheduler keeps of one coordinator for the page; bounded in every part.

    ``rounds`` and ``signals`` are the latest rows (oldest first);
    ``n_rounds`` and ``n_signals`` count every row ever added, so that a page
    asks only for what it has not seen (:meth:`rounds_since`). ``workers``
    maps each worker still in the cluster to ``[samples, round, version]``:
    samples trained over the rounds seen, and the latest round (and global
    model version) its update was combined into.

    Examples
    --------
    >>> feed = CoordinatorFeed(kept=2)
    >>> for r in range(1, 4):
    ...     feed.add_round({"round": r, "version": r + 1, "time": float(r), "workers": {"a": 10}}, {"a"})
    >>> rows, seen = feed.rounds_since(0)
    >>> [row["round"] for row in rows], seen, feed.workers
    ([2, 3], 3, {'a': [30, 3, 4]})
    >>> feed.rounds_since(seen)
    ([], 3)
    """

    def __init__(self, kept: int = ROUNDS_KEPT) -> None:
        self.rounds: deque[dict[str, Any]] = deque(maxlen=kept)
        self.signals: deque[dict[str, Any]] = deque(maxlen=min(kept, SIGNALS_KEPT))
        self.n_rounds = 0
        self.n_signals = 0
        self.workers: dict[str, list] = {}
        self.updated = 0.0

    def add_round(self, row: dict[str, Any], alive: set[str]) -> None:
        """Keep one :func:`round_row`; forget the workers no longer in ``alive``."""
        self.rounds.append({key: value for key, value in row.items() if key != "workers"})
        self.n_rounds += 1
        for worker, samples in row["workers"].items():
            entry = self.workers.setdefault(worker, [0, 0, 0])
            entry[:] = [entry[0] + samples, row["round"], row["version"]]
        for worker in set(self.workers) - alive:
            del self.workers[worker]  # bounded under worker churn
        self.updated = row["time"]

    def add_signal(self, signal: dict[str, Any]) -> None:
        self.signals.append(signal)
        self.n_signals += 1
        self.updated = signal["time"]

    def rounds_since(self, seen: int) -> tuple[list[dict[str, Any]], int]:
        """The rounds added after the first ``seen`` (those still kept), and the new count."""
        return _since(self.rounds, self.n_rounds, seen), self.n_rounds

    def signals_since(self, seen: int) -> tuple[list[dict[str, Any]], int]:
        """The signals added after the first ``seen`` (those still kept), and the new count."""
        return _since(self.signals, self.n_signals, seen), self.n_signals


def _since(rows: deque, total: int, seen: int) -> list:
    new = min(max(total - seen, 0), len(rows))
    return list(islice(rows, len(rows) - new, len(rows)))


class DashboardPlugin(SchedulerPlugin):
    """Keeps the coordinators' rounds and signals on the scheduler, and serves their page.

    Installed by :func:`page_served` (once per client; installing it again
    is a no-op). ``served`` says whether the page is up: the scheduler runs a
    Bokeh dashboard (``bokeh`` installed there, the default
    ``dashboard_address``).
    """

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self) -> None:
        self.feeds: dict[str, CoordinatorFeed] = {}
        self.served = False

    def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.served = _add_page(scheduler)

    def log_event(self, topic: str, msg: Any) -> None:
        """A worker's round-ending signal (``fedplugin.signals``): keep it for the page."""
        if self.served and topic.startswith("fedplugin-") and isinstance(msg, dict) and "trigger" in msg:
            signal = {"time": time.time(), "worker": str(msg.get("worker")), "trigger": str(msg["trigger"]),
                      "drift": float(msg.get("drift", math.nan))}
            self.feed(topic.removeprefix("fedplugin-")).add_signal(signal)

    def add_rounds(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Keep a coordinator's :func:`round_row` rows (sent by its :class:`RoundFeed`)."""
        feed = self.feed(name)
        alive = set(self.scheduler.workers)
        for row in rows:
            feed.add_round(row, alive)

    def feed(self, name: str) -> CoordinatorFeed:
        """The records of coordinator ``name``; beyond ``FEEDS_KEPT``, the quietest is forgotten."""
        if name not in self.feeds:
            if len(self.feeds) >= FEEDS_KEPT:
                del self.feeds[min(self.feeds, key=lambda other: self.feeds[other].updated)]
            self.feeds[name] = CoordinatorFeed()
        return self.feeds[name]

    def latest(self) -> str | None:
        """The name of the coordinator heard from last (``None``: none yet)."""
        return max(self.feeds, key=lambda name: self.feeds[name].updated, default=None)


def _add_page(scheduler: Any) -> bool:
    """Add ``/fedplugin`` to the scheduler's running Bokeh dashboard; False if it has none."""
    dashboard = _bokeh_dashboard(scheduler)
    if dashboard is None:
        return False
    from distributed.dashboard.core import BokehApplication
    from distributed.dashboard.scheduler import template_variables
    from tornado.ioloop import IOLoop

    from .dashboard_page import page_doc

    variables = template_variables(scheduler)
    if PAGE not in variables["pages"]:
        # Dask's pages share this list: every page's navigation bar gets a "Fedplugin" tab.
        variables["pages"].append(PAGE)
    # The same prefix as Dask's pages (``dask scheduler --dashboard-prefix``); Bokeh keeps it private.
    prefix = getattr(dashboard, "_prefix", "")
    app = BokehApplication({f"/{PAGE}": page_doc}, scheduler, prefix=prefix, template_variables=variables)
    # As distributed.dashboard.scheduler.connect does; the scheduler stops it when it closes.
    scheduler.http_application.add_application(app)
    app.initialize(IOLoop.current())
    app.start()
    return True


def _bokeh_dashboard(scheduler: Any) -> Any:
    """The Bokeh application of Dask's dashboard pages, or ``None`` (no dashboard, no bokeh)."""
    http = getattr(scheduler, "http_application", None)
    if http is None:
        return None
    try:
        from bokeh.server.server import BokehTornado
        import distributed.dashboard.core  # noqa: F401  (refuses a bokeh that Dask does not support)
    except ImportError:
        return None
    return next((app for app in http.applications if isinstance(app, BokehTornado)), None)


# --------------------------------------------------------------- from the client
#: Whether each client's scheduler serves the page (asked once per client).
_SERVED: weakref.WeakKeyDictionary[Client, bool] = weakref.WeakKeyDictionary()


def page_served(client: Client) -> bool:
    """Install :class:`DashboardPlugin` on ``client``'s scheduler; True if it serves the page.

    One call to the scheduler per client; later calls answer from memory.
    """
    if client not in _SERVED:
        _SERVED[client] = bool(client.run_on_scheduler(_install))
    return _SERVED[client]


def _install(dask_scheduler: Any = None) -> bool:
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
    if plugin is None:
        plugin = DashboardPlugin()
        plugin.start(dask_scheduler)
        dask_scheduler.add_plugin(plugin, name=PLUGIN_NAME, idempotent=True)
    return plugin.served


def page_link(client: Client, name: str) -> str | None:
    """The address of coordinator ``name``'s page, or ``None`` when the scheduler serves none.

    Built from ``client.dashboard_link`` (so it follows Dask's
    ``distributed.dashboard.link`` setting): its last part, ``status``,
    becomes ``fedplugin?name=<name>``.
    """
    link = client.dashboard_link
    if link is None or not page_served(client):
        return None
    return urljoin(link, f"{PAGE}?name={quote(name, safe='')}")


class RoundFeed:
    """A coordinator's rounds, sent to its page on the scheduler in small batches.

    :meth:`publish` keeps each closed round's :func:`round_row` and sends
    what it holds once ``FLUSH_SECONDS`` have passed since the last send,
    or at once after a ``"final"`` or ``"manual"`` round; :meth:`flush` sends
    the rest (the coordinator calls it at the end of every fit). Nothing is
    kept or sent when the scheduler serves no page. A send that fails is
    logged and ends the feed: the page is never worth a failed fit.
    """

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name
        self.on = page_served(client)
        self._rows: list[dict[str, Any]] = []
        self._sent = time.monotonic()

    def publish(self, record: Round, samples_by: dict[str, int]) -> None:
        """Keep a closed round (and its samples by worker); send what is kept if it is time."""
        if self.on:
            self._rows.append(round_row(record, samples_by, time.time()))
            # A fit's last round and a manual one are sent at once: nothing may follow soon.
            if record.trigger in ("final", "manual") or time.monotonic() - self._sent >= FLUSH_SECONDS:
                self.flush()

    def flush(self) -> None:
        """Send the rounds kept so far to the scheduler."""
        rows, self._rows = self._rows, []
        if not (self.on and rows):
            return
        self._sent = time.monotonic()
        try:
            self.client.run_on_scheduler(_add_rounds, self.name, rows)
        except Exception as exc:  # e.g. a scheduler gone: the fit itself reports that
            logger.warning("dashboard page of %r no longer updated: %r", self.name, exc)
            self.on = False


def _add_rounds(name: str, rows: list[dict[str, Any]], dask_scheduler: Any = None) -> None:
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
    if plugin is not None:
        plugin.add_rounds(name, rows)


__all__ = ["COLUMNS", "CoordinatorFeed", "DashboardPlugin", "RoundFeed", "page_link", "page_served", "round_row"]
