"""Keep a fit's Dask task groups alive while it runs, so Dask's own records stay bounded.

The scheduler keeps every *span* it creates, and with it every task group,
for its whole life (dask/distributed#7977), and workers keep metrics per span.
A task group is dropped when its last task is forgotten and made anew, in a
new default span, when the next task of its name arrives. Between the rounds
of a fit every task is finished, so each round would leave a span and a few
task groups behind for good: about 7 KB per round on the scheduler and 3 KB
on each worker, measured by ``benchmarks/soak.py``.

:func:`anchor_groups` submits one tiny task to each group a fit uses
(training tasks, and blocks scattered from numpy input or a stream) and the
engine holds them for as long as the fit runs: the groups, and so one span,
stay alive, whatever the number of rounds.

Examples
--------
>>> train_key().startswith("fedplugin-train-")
True
"""

from __future__ import annotations

import uuid

from distributed import Client, Future

#: Prefix of every training task's key: Dask groups tasks by it.
TRAIN_PREFIX = "fedplugin-train"


def train_key() -> str:
    """A new, unique key for a training task, in the group of all training tasks."""
    return f"{TRAIN_PREFIX}-{uuid.uuid4().hex}"


def anchor_groups(client: Client) -> list[Future]:
    """One task held in memory in each task group a fit uses; release them when it ends."""
    # Blocks are scattered as (X, y) tuples: their keys are "tuple-<hex>". Submitting
    # (not scattering) costs the fit no round trip.
    return [client.submit(_anchor, key=key, pure=False) for key in (train_key(), f"tuple-{uuid.uuid4().hex}")]


def _anchor() -> None:
    return None


__all__ = ["TRAIN_PREFIX", "anchor_groups", "train_key"]
