"""Checks of a :class:`~fedplugin.Coordinator`'s arguments that need no cluster.

They run first in ``Coordinator.__init__``, before any state is set or any
message is sent, so a misspelt setting fails where it is written, not at the
first round.

Examples
--------
>>> check_path(None, "checkpoint") is None
True
>>> check_path("runs/ckpt", "checkpoint")
PosixPath('runs/ckpt')
>>> check_path(123, "checkpoint")
Traceback (most recent call last):
...
TypeError: checkpoint=123 is not a path; expected a str or os.PathLike, or None
>>> check_validation_data(([[0.0]], [1])) is not None
True
>>> import numpy as np
>>> check_validation_data(np.zeros((1000, 3)))
Traceback (most recent call last):
...
TypeError: validation_data=a ndarray is not a pair; expected (X_val, y_val), a tuple of two
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from distributed import Client

from .checks import check_number
from .stragglers import Quorum, as_stragglers


def check_client(client: Any) -> Client:
    """``client`` if it is a synchronous ``distributed.Client``; a clear ``TypeError`` otherwise.

    fedplugin drives the cluster with blocking calls, which an asynchronous
    client (``Client(..., asynchronous=True)``, used on its event loop) turns
    into coroutines that nobody awaits.

    Examples
    --------
    >>> check_client("tcp://127.0.0.1:8786")
    Traceback (most recent call last):
    ...
    TypeError: client='tcp://127.0.0.1:8786' is not a distributed.Client; expected Client(address) or Client(cluster)
    """
    if not isinstance(client, Client):
        raise TypeError(f"client={client!r} is not a distributed.Client; expected Client(address) or Client(cluster)")
    if client.asynchronous:
        raise TypeError(
            f"client={client!r} is asynchronous, and fedplugin makes blocking calls; expected a synchronous "
            "Client(address). From async code, make one and call fit in a thread: "
            "await asyncio.to_thread(coord.fit, X, y)"
        )
    return client


def check_arguments(
    client: Any, block_size: Any, max_task_blocks: Any, overlap: Any, stragglers: Any, worker_timeout: Any
) -> Quorum | None:
    """Check the arguments that need no cluster, before any state is set; return ``stragglers`` checked."""
    check_client(client)
    check_number(block_size, "block_size", Integral, min_val=1)
    check_number(max_task_blocks, "max_task_blocks", Integral, min_val=1)
    check_number(worker_timeout, "worker_timeout", Real, min_val=0, include_boundaries="neither")
    if overlap not in ("auto", True, False):
        raise ValueError(f"overlap={overlap!r} is not supported; expected 'auto', True or False")
    return as_stragglers(stragglers, overlap)


def check_path(value: Any, name: str) -> Path | None:
    """``value`` as a :class:`~pathlib.Path`, or ``None``; a ``TypeError`` naming ``name`` for anything else."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name}={value!r} is not a path; expected a str or os.PathLike, or None")
    return Path(value)


def check_validation_data(value: Any) -> tuple[Any, Any] | None:
    """``(X_val, y_val)`` as given, or ``None``; a ``TypeError`` for anything that is not a pair."""
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        shown = repr(value) if isinstance(value, (str, int, float)) else f"a {type(value).__name__}"
        raise TypeError(f"validation_data={shown} is not a pair; expected (X_val, y_val), a tuple of two")
    return value[0], value[1]


__all__ = ["check_arguments", "check_client", "check_path", "check_validation_data"]
