"""While a fit runs, the client's messages to the scheduler are not held back for batching.

Distributed's client batches what it sends the scheduler over 10 ms windows;
a fit's rounds would wait for them (see ``fedplugin.messaging``). The fit
turns the batching off for its own duration and gives it back afterwards,
also when it fails, and also when two fits share the client.
"""

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier

from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin
from fedplugin.messaging import prompt_messages


def data(n=2000):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5))
    return X, (X[:, 0] > 0).astype(int)


def coordinator(client, name, **options):
    client.register_plugin(FederatedModelPlugin(SGDClassifier(random_state=0), classes=[0, 1], name=name))
    return Coordinator(client, name, sync=EveryNBatches(2), block_size=250, progress=False, **options)


def test_a_fit_sends_at_once_and_gives_the_client_its_batching_back(shared_client, unique_name):
    stream = shared_client.scheduler_comm
    batching = stream.interval
    assert batching > 0
    seen = []
    coord = coordinator(shared_client, unique_name, callbacks=[lambda record: seen.append(stream.interval)])
    coord.fit(*data())
    assert len(seen) == coord.rounds >= 4 and set(seen) == {0}
    assert stream.interval == batching


def test_a_failing_fit_gives_the_batching_back_too(shared_client, unique_name):
    stream = shared_client.scheduler_comm
    batching = stream.interval

    def fail(record):
        raise RuntimeError("a callback failed")

    coord = coordinator(shared_client, unique_name, callbacks=[fail])
    with pytest.raises(RuntimeError, match="a callback failed"):
        coord.fit(*data())
    assert stream.interval == batching


def test_fits_that_overlap_on_one_client_share_the_setting():
    stream = SimpleNamespace(interval=0.01)
    client = SimpleNamespace(scheduler_comm=stream)
    inside, leave_first = threading.Event(), threading.Event()
    seen = []

    def first_fit():
        with prompt_messages(client):
            inside.set()
            leave_first.wait(5)
        seen.append(stream.interval)  # the second fit still runs

    thread = threading.Thread(target=first_fit)
    thread.start()
    assert inside.wait(5)
    with prompt_messages(client):
        leave_first.set()
        thread.join(5)
        seen.append(stream.interval)
    assert seen == [0, 0] and stream.interval == 0.01


def test_a_client_without_a_batched_stream_is_left_alone():
    client = SimpleNamespace()
    with prompt_messages(client):
        pass
    assert vars(client) == {}
