"""What a long-running stream keeps: a bounded history, and Dask records that do not grow per round (issue 13)."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier

from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin
from fedplugin.history import RoundLog


@pytest.fixture
def client(shared_client):
    return shared_client


def batches(n, size=100, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=5)
    for _ in range(n):
        X = rng.normal(size=(size, 5))
        yield X, (X @ w > 0).astype(int)


def coordinator(client, name, **options):
    plugin = FederatedModelPlugin(SGDClassifier(random_state=0), classes=[0, 1], name=name)
    client.register_plugin(plugin)
    return Coordinator(client, plugin, sync=EveryNBatches(1), block_size=100, progress=False, **options)


def test_history_keeps_the_latest_rounds_and_appends_every_round_to_a_file(client, unique_name, tmp_path):
    path = tmp_path / "rounds.jsonl"
    coord = coordinator(client, unique_name, history_limit=5, history_file=path)
    coord.fit_stream(batches(12))
    assert len(coord.history) == 5 and coord.history.forgotten == coord.rounds - 5
    assert [r.round for r in coord.history] == list(range(coord.rounds - 4, coord.rounds + 1))
    assert coord.history[-1].total_samples == 1200, "the sample count covers forgotten rounds too"
    logged = pd.read_json(path, lines=True)
    assert logged["round"].tolist() == list(range(1, coord.rounds + 1))
    assert logged["samples"].sum() == 1200
    assert json.loads(path.read_text().splitlines()[-1])["workers"] == list(coord.history[-1].workers)


def test_a_failed_fit_rolls_back_a_trimmed_history(client, unique_name, tmp_path):
    path = tmp_path / "rounds.jsonl"
    coord = coordinator(client, unique_name, history_limit=3, history_file=path)
    coord.fit_stream(batches(6))
    before = list(coord.history)

    def failing():
        yield from batches(6, seed=1)
        raise KeyboardInterrupt  # not a bad batch: the fit is rolled back

    with pytest.raises(KeyboardInterrupt):
        coord.fit_stream(failing())
    assert list(coord.history) == before and coord.history.recorded == len(before) + coord.history.forgotten
    assert coord.history[-1].round == coord.rounds
    # the file loses the rolled-back rounds too: it tells the stored model's history
    assert pd.read_json(path, lines=True)["round"].tolist() == list(range(1, coord.rounds + 1))


def test_history_limit_is_checked():
    with pytest.raises(ValueError, match="history_limit=0 must be an int >= 1, or None"):
        RoundLog(limit=0)
    log = RoundLog(limit=None)
    log.load(range(20_000))
    assert len(log) == 20_000 and log.forgotten == 0


def spans(dask_scheduler=None):
    return len(dask_scheduler.extensions["spans"].spans)


def test_rounds_add_no_dask_spans_or_task_groups(client, unique_name):
    coord = coordinator(client, unique_name)
    coord.fit_stream(batches(4))
    before = client.run_on_scheduler(spans)
    coord.fit_stream(batches(40))
    assert coord.rounds >= 40
    # One span per fit at most (Dask keeps every span for good): not one per round.
    assert client.run_on_scheduler(spans) - before <= 2


def per_round_records(name, dask_worker=None):
    plugin = dask_worker.plugins[name]
    state = plugin.rounds
    return {
        "snapshots": len(state.snapshots), "incoming": len(state.incoming),
        "outbox": len(state.outbox.sent) + len(state.outbox.anchors),
        "tokens": len(plugin.stop_tokens) + len(plugin.abort_tokens),
    }


def test_per_round_records_stay_bounded(client, unique_name):
    # topk keeps error feedback's anchors: the outbox's records are exercised too.
    blocks_held = []
    coord = coordinator(client, unique_name, compression="topk", callbacks=[lambda r: blocks_held.append(len(coord._engine.source.blocks))])
    futures = len(client.futures)
    coord.fit_stream(batches(30), max_blocks_in_flight=4)
    assert coord.rounds >= 30 and coord.history[-1].total_samples == 3000
    # The stream's blocks are forgotten once their round is combined.
    assert max(blocks_held) <= 4
    # Each worker keeps at most the latest round's update, payload and anchor.
    for worker, records in client.run(per_round_records, unique_name).items():
        assert records["snapshots"] <= 1 and records["incoming"] == 0 and records["outbox"] <= 2, (worker, records)
    # The client holds no future of a training task or a block any more.
    assert len(client.futures) == futures


def collections_of_spans(dask_scheduler=None):
    return [len(span.metadata["collections"]) for span in dask_scheduler.extensions["spans"].spans.values() if span.metadata]


def submit_graphs_to_trim(dask_scheduler=None):
    from fedplugin.span_trim import TRIM_EVERY, TRIM_NAME

    plugin = dask_scheduler.plugins[TRIM_NAME]
    for _ in range(TRIM_EVERY - plugin.graphs % TRIM_EVERY):  # as many graphs as bring the next trim
        plugin.update_graph(dask_scheduler)


def test_the_fits_span_keeps_no_record_per_task(client, unique_name):
    coord = coordinator(client, unique_name)
    # Trim now: the cluster is shared, so other tests' graphs could bring the next trim
    # in the middle of this fit; now the next one is 256 graphs away.
    client.run_on_scheduler(submit_graphs_to_trim)
    coord.fit_stream(batches(20))
    # Dask appended {"type": "Future"} to the span's metadata for every task submitted.
    assert max(client.run_on_scheduler(collections_of_spans)) >= 20
    client.run_on_scheduler(submit_graphs_to_trim)
    assert max(client.run_on_scheduler(collections_of_spans)) <= 3
