"""The fedplugin page of the Dask dashboard (issue 12): live in headless Chromium, and without a dashboard."""

import math
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

import pytest
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier

from fedplugin import AnyOf, DPFedAvg, EveryNBatches, EverySeconds
from fedplugin.dashboard import PLUGIN_NAME, DashboardPlugin, round_row
from fedplugin.history import Round
from fedplugin.session import federated_session

CHROMIUM = Path("/usr/bin/chromium")
#: No GPU, no sandbox (root in a container), nothing fetched from the network but the page.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: Reads the page's data sources and what the browser drew, from BokehJS.
READ_PAGE = """(columns) => {
    const doc = Bokeh.documents[0];
    const column = (data, key) => Array.from(data instanceof Map ? data.get(key) : data[key]);
    const data = (name) => Object.fromEntries(
        columns[name].map((key) => [key, column(doc.get_model_by_name(name).data, key)]));
    const drawn = (name) => {
        const view = Bokeh.index.find_one(doc.get_model_by_name(name));
        return view === null ? -1 : Array.from(view.glyph.sx).filter(Number.isFinite).length;
    };
    return {
        rounds: data("fedplugin-rounds"), signals: data("fedplugin-signals"), workers: data("fedplugin-workers"),
        title: doc.get_model_by_name("fedplugin-title").text,
        drawn_rounds: drawn("fedplugin-round-markers"), drawn_signals: drawn("fedplugin-signal-markers"),
        epsilon_shown: doc.get_model_by_name("fedplugin-epsilon").visible,
    };
}"""


#: The columns READ_PAGE reads.
COLUMNS = {
    "fedplugin-rounds": ["round", "trigger", "samples", "bytes_up", "online_score", "epsilon"],
    "fedplugin-signals": ["worker", "trigger"],
    "fedplugin-workers": ["worker", "samples"],
}


#: JavaScript: whether the page's data source ``name`` holds at least ``n`` rows.
HAS_ROWS = """([name, n]) => {
    const data = Bokeh.documents[0].get_model_by_name(name).data;
    return (data instanceof Map ? data.get("time") : data.time).length >= n;
}"""


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.browser
def test_the_page_shows_a_fit_live_in_a_browser(shared_client, unique_name, chromium):
    X, y = make_classification(n_samples=6_000, n_features=10, random_state=0)
    # Every worker's first block ends its round ("time"): signals in every round but the last.
    sync = AnyOf(EveryNBatches(4), EverySeconds(1e-9))
    with federated_session(
        shared_client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name, sync=sync,
        aggregator=DPFedAvg(0.8, clip_norm=5.0, seed=0), block_size=500, scoring="accuracy", progress=False,
    ) as coord:
        assert coord.dashboard_link == urljoin(shared_client.dashboard_link, f"fedplugin?name={unique_name}")
        page = chromium.new_page(viewport={"width": 1200, "height": 900})
        page.goto(coord.dashboard_link)  # opened before the fit: the rounds must stream in
        page.wait_for_function("() => window.Bokeh !== undefined && Bokeh.documents.length > 0")
        assert "waiting for the first round" in page.evaluate(READ_PAGE, COLUMNS)["title"]

        coord.fit(X, y)
        history = coord.history
        page.wait_for_function(HAS_ROWS, arg=["fedplugin-rounds", len(history)])
        time_rounds = sum(r.trigger == "time" for r in history)
        page.wait_for_function(HAS_ROWS, arg=["fedplugin-signals", time_rounds])
        shown = page.evaluate(READ_PAGE, COLUMNS)
        page.close()
        trained = {worker: state["samples_total"] for worker, state in coord.worker_states().items()}

    rounds = shown["rounds"]
    assert len(history) >= 3 and history[-1].trigger == "final" and time_rounds == len(history) - 1
    assert rounds["round"] == [r.round for r in history] and rounds["trigger"] == [r.trigger for r in history]
    assert rounds["samples"] == [r.samples for r in history] and sum(rounds["samples"]) == len(X)
    assert rounds["bytes_up"] == [r.bytes_up for r in history]
    assert rounds["online_score"] == pytest.approx([r.metrics["online_score"] for r in history])
    assert rounds["epsilon"] == pytest.approx([r.epsilon for r in history]) and shown["epsilon_shown"]
    assert shown["drawn_rounds"] == len(history)  # one marker drawn per round
    workers = sorted(shared_client.scheduler_info()["workers"])
    assert set(shown["signals"]["trigger"]) == {"time"} and set(shown["signals"]["worker"]) <= set(workers)
    assert shown["drawn_signals"] == len(shown["signals"]["trigger"])
    assert shown["workers"]["worker"] == workers and sum(shown["workers"]["samples"]) == len(X)
    assert shown["workers"]["samples"] == [trained[w] for w in workers]  # the workers' own counts
    assert f"{len(history)} rounds" in shown["title"] and f"model version {history[-1].version}" in shown["title"]
    # Dask's own pages link to it from their navigation bar.
    status = urllib.request.urlopen(shared_client.dashboard_link, timeout=30).read().decode()
    assert '<a href="fedplugin">Fedplugin</a>' in status


def test_without_a_dashboard_there_is_no_page_and_nothing_is_sent(unique_name):
    X, y = make_classification(n_samples=2_000, n_features=5, random_state=0)
    # An HTTP server (client.dashboard_link is set), but no Bokeh pages on it.
    no_dashboard = {"dashboard": False}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                      scheduler_kwargs=no_dashboard) as cluster, Client(cluster) as client:
        assert client.dashboard_link is not None
        with federated_session(client, SGDClassifier(random_state=0), classes=[0, 1], name=unique_name,
                               sync=2, block_size=500, progress=False) as coord:
            coord.fit(X, y)
            assert coord.dashboard_link is None and len(coord.history) == 2
        served, feeds = client.run_on_scheduler(_served_and_feeds)
        assert not served and feeds == {}


def _served_and_feeds(dask_scheduler):
    plugin = dask_scheduler.plugins[PLUGIN_NAME]
    return plugin.served, dict(plugin.feeds)


def test_the_page_follows_the_latest_coordinator_and_shows_epsilon_only_with_dp():
    from fedplugin.dashboard_page import FedpluginPage

    plugin = DashboardPlugin()

    def add(name, number, now, epsilon=None, trigger="count"):
        record = Round(number, trigger, 100, 100 * number, 1, 0, 0, 1, ("w",), (), 0.1, 8, 8, number + 1, epsilon=epsilon)
        plugin.feed(name).add_round(round_row(record, {"w": 100}, now), alive={"w"})

    page = FedpluginPage(plugin, name=None)
    page.update()
    assert page.name is None and "no coordinator yet" in page.title.text
    add("a", 1, now=1.0)
    add("a", 2, now=2.0, trigger="mine")
    page.update()
    assert page.name == "a" and page.rounds.data["round"] == [1, 2] and not page.epsilon.visible
    assert len(set(page.rounds.data["color"])) == 2  # a custom trigger gets a colour of its own
    add("b", 1, now=3.0, epsilon=0.5)  # heard from last: the page switches to it
    page.update()
    assert page.name == "b" and page.rounds.data["round"] == [1] and page.epsilon.visible
    assert page.workers.data["samples"] == [100] and 'href="fedplugin?name=a"' in page.title.text
    pinned = FedpluginPage(plugin, name="a")
    pinned.update()
    assert pinned.rounds.data["round"] == [1, 2] and math.isnan(pinned.rounds.data["epsilon"][0])
