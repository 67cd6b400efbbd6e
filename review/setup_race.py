"""Pure asyncio reproduction: a (re)starting worker adopts an older global model after a newer one.

FederatedModelPlugin.setup registers its handlers, then awaits the store fetch. The worker is
already on the scheduler's list (distributed runs plugin setup after registration), so a round's
push of version k+1 can arrive while the fetch, answered with version k just before the
aggregator stored k+1, is still on its way. receive() adopts k+1 (the model is None), then setup
resumes and _adopt()s k: the worker goes back from k+1 to k.
Run: .venv/bin/python review/setup_race.py
"""
import asyncio

import numpy as np
from sklearn.linear_model import SGDRegressor

from fedplugin import FederatedModelPlugin
from fedplugin.store import GlobalModel


def model(version, value):
    return GlobalModel(version, {"coef_": np.array([value, value]), "intercept_": np.array([0.0])}, 2,
                       estimator="SGDRegressor")


class FakeScheduler:
    def __init__(self, reply_sent):
        self.reply_sent = reply_sent

    async def register_scheduler_plugin(self, **kwargs):
        return None

    async def fedplugin_store_get(self, name):
        payload = model(4, 4.0).to_bytes()  # the scheduler answered before the aggregator stored version 5
        await self.reply_sent.wait()          # ... and the answer is still on its way
        return payload


class FakeWorker:
    address = "tcp://w0:1"

    def __init__(self, reply_sent):
        self.handlers, self.plugins = {}, {}
        self.scheduler = FakeScheduler(reply_sent)


async def main():
    reply_sent = asyncio.Event()
    worker = FakeWorker(reply_sent)
    plugin = FederatedModelPlugin(SGDRegressor(), name="m")
    worker.plugins["m"] = plugin                     # as Worker.plugin_add does before setup
    setup = asyncio.create_task(plugin.setup(worker))
    await asyncio.sleep(0.01)                        # setup is awaiting the fetch
    # the aggregator of round 4 stored version 5 and pushes it to every worker on the scheduler's list
    await worker.handlers["fedplugin_forward"](name="m", model=model(5, 5.0), targets=[worker.address])
    print("after the push of version 5:", plugin.rounds.version)
    reply_sent.set()
    await setup
    print("after setup finished:       ", plugin.rounds.version, plugin.model.coef_)
    assert plugin.rounds.version == 5, "the worker went back from version 5 to version 4"


asyncio.run(main())
