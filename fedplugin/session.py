"""One federated training session: register a plugin, train, clean up.

:func:`federated_session` is the one place that pairs registering a plugin
under a name with unregistering it and dropping its stored model, for
:class:`~fedplugin.FederatedEstimator`, :class:`~fedplugin.FederatedSearch`,
the benchmarks and the tests.

Examples
--------
>>> from distributed import Client, LocalCluster
>>> from sklearn.datasets import make_classification
>>> from sklearn.linear_model import SGDClassifier
>>> X, y = make_classification(n_samples=4000, random_state=0)
>>> with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
...     with federated_session(client, SGDClassifier(random_state=0), classes=[0, 1], block_size=500) as coord:
...         model = coord.fit(X, y).global_model()
...         rounds = len(coord.history)
>>> type(model).__name__, rounds
('SGDClassifier', 1)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from distributed import Client

from . import store
from .coordinator import Coordinator
from .deploy import register
from .plugin import FederatedModelPlugin
from .settings import check_client


def client_or_default(client: Client | None, owner: str) -> Client:
    """``client``, or the current default client; a clear error naming ``owner`` if there is none."""
    if client is None:
        from distributed import get_client

        try:
            client = get_client()
        except ValueError as exc:
            raise ValueError(
                f"{owner} needs a Dask cluster: pass client=Client(...) or create a "
                "Client first (it becomes the default)"
            ) from exc
    return check_client(client)


@contextmanager
def federated_session(
    client: Client,
    estimator: Any,
    *,
    classes: Any = None,
    name: str | None = None,
    check_workers: bool = True,
    **coordinator_options: Any,
) -> Iterator[Coordinator]:
    """Register ``estimator`` on every worker, yield its :class:`Coordinator`, then clean up.

    Parameters
    ----------
    client : distributed.Client
    estimator : scikit-learn estimator
        Unfitted estimator with ``partial_fit``.
    classes : array-like, optional
        All class labels, for classifiers.
    name : str, optional
        Plugin name; default a fresh unique one, so sessions never collide.
    check_workers : bool, default True
        Register with :func:`fedplugin.register`, which first checks that every
        worker can load the plugin; ``False`` uses ``client.register_plugin``.
    **coordinator_options
        Passed to :class:`Coordinator` (``sync``, ``aggregator``, ...).

    Yields
    ------
    Coordinator
        On exit the plugin is unregistered and its stored model dropped: take
        what you need (``coord.global_model()``, ``coord.history``) inside.
    """
    name = name or f"fedplugin-session-{uuid.uuid4().hex[:12]}"
    plugin = FederatedModelPlugin(estimator, classes=classes, name=name)
    if check_workers:
        register(client, plugin)
    else:
        client.register_plugin(plugin)
    coord = None
    try:
        with Coordinator(client, plugin, **coordinator_options) as coord:
            yield coord
    finally:
        client.unregister_worker_plugin(name)
        store.drop(client, name)
        if coord is not None:
            coord._session_ended = True  # its plugin and model are gone: say so if it is used again
