"""Make ``docs/_static/dashboard.png``, the screenshot of the dashboard page the documentation shows.

Run it from the repository root (needs the ``test`` extra, for bokeh and
playwright, and Debian's ``chromium`` package)::

    .venv/bin/python docs/make_dashboard_screenshot.py

It trains for real, on a ``LocalCluster`` of 2 single-threaded workers, while
headless Chromium shows the coordinator's page (``coord.dashboard_link``): a
seeded 160,000 x 20 classification problem arrives as a stream of 8 chunks,
each handed to ``Coordinator.partial_fit``; from the fifth chunk on its labels
are flipped, so the workers drift away from the global model and end rounds
themselves (``AnyOf(EveryNBatches(8), DriftThreshold(relative=1.0))``). The
rounds are combined by :class:`~fedplugin.DPFedAvg`, so the page also plots
the privacy spent. The screenshot is taken once the page shows every round,
and stored as a 256-colour PNG.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from distributed import Client, LocalCluster
from PIL import Image
from playwright.sync_api import sync_playwright
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier

from fedplugin import AnyOf, Coordinator, DPFedAvg, DriftThreshold, EveryNBatches, FederatedModelPlugin
from fedplugin.wording import count

OUT = Path(__file__).resolve().parent / "_static" / "dashboard.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: Whether the page's rounds source holds at least ``n`` rows.
HAS_ROWS = """(n) => {
    const data = Bokeh.documents[0].get_model_by_name("fedplugin-rounds").data;
    return (data instanceof Map ? data.get("time") : data.time).length >= n;
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write the PNG (default {OUT})")
    args = parser.parse_args()

    X, y = make_classification(
        n_samples=160_000, n_features=20, n_informative=10, class_sep=2.0, flip_y=0.05, random_state=0
    )
    y[len(y) // 2:] = 1 - y[len(y) // 2:]  # the concept changes halfway through the stream

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as client:
        plugin = FederatedModelPlugin(SGDClassifier(random_state=0), classes=[0, 1], name="clf")
        client.register_plugin(plugin)
        coord = Coordinator(
            client, plugin, sync=AnyOf(EveryNBatches(8), DriftThreshold(relative=1.0)), block_size=2000,
            aggregator=DPFedAvg(0.5, clip_norm=1.0, seed=0), scoring="accuracy", progress=False,
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(coord.dashboard_link)
            for chunk_X, chunk_y in zip(np.array_split(X, 8), np.array_split(y, 8)):
                coord.partial_fit(chunk_X, chunk_y)
            page.wait_for_function(HAS_ROWS, arg=len(coord.history))
            page.wait_for_timeout(2000)  # the last frames drawn, after the layout settles
            png = page.screenshot(full_page=True)
            browser.close()
        history = coord.history

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    triggers = {t: sum(r.trigger == t for r in history) for t in dict.fromkeys(r.trigger for r in history)}
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    print(f"{count(len(history), 'round')} {triggers}, epsilon {history[-1].epsilon:.2f}")


if __name__ == "__main__":
    main()
