"""Functions that tests run on a cluster's scheduler or workers (``client.run``, ``run_on_scheduler``).

They live here, with few imports, and not in the test modules: a function
shipped to a worker process is imported there by module name, and importing a
test module there would first import everything that module imports.
"""

from fedplugin import store


def count_store_reads(dask_scheduler=None):
    """Wrap the store's read handler on the scheduler: record the bytes of every model it sends."""
    read = dask_scheduler.handlers[store._GET]
    served = []

    def counting(name, **only_newer):
        payload = read(name=name, **only_newer)
        served.append(0 if payload is None else len(payload))
        return payload

    counting.served, counting.read = served, read
    dask_scheduler.handlers[store._GET] = counting


def stop_counting(dask_scheduler=None):
    counting = dask_scheduler.handlers[store._GET]
    dask_scheduler.handlers[store._GET] = counting.read
    return counting.served


async def catch_up(name, base, dask_worker=None):
    plugin = dask_worker.plugins[name]
    await plugin.catch_up(base)
    return plugin.rounds.version
