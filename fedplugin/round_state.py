"""A worker's view of the rounds: the global model it holds, its handed-over updates.

Training tasks never wait for a round to be combined. At the end of a task of
round *b* (the round whose updates are based on global version *b*) the worker
keeps a snapshot of its parameters: its update for round *b*. That snapshot
may have been taken before version *b* reached the worker, on top of an older
global model; when a new global model arrives it is *rebased* onto it, and so
is the local model:

``rebased = new global + (x - anchor)``

where ``anchor`` is the update this worker handed over for the round that
produced the new global model (or the global model it held, if it did not take
part; with a compressed update under error feedback, what the combining
worker rebuilt from it, so the dropped residual stays in the local model, see
:mod:`fedplugin.compression`). Families combined from statistics rebase
exactly through their adapter's ``merge``. Something with no progress since
the anchor becomes the new global model bit for bit.

:meth:`RoundState.update_for` answers the worker that combines a round: it
rebases the snapshot onto the global models up to the round's that have
arrived but are not yet merged into the local model (the training thread
merges between blocks). A worker that never received the round's model has no
update for it (its blocks are trained again), so every update of a round is
based on the same global model.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import SGDRegressor
>>> from fedplugin.adapters import adapter_for
>>> from fedplugin.store import GlobalModel
>>> def model(version, value):
...     return GlobalModel(version, {"coef_": np.array([value]), "intercept_": np.array([0.0])}, 1)
>>> state = RoundState(adapter_for(SGDRegressor()))
>>> state.reset(model(4, 0.0))
>>> state.hand_over(4, {"coef_": np.array([1.0]), "intercept_": np.array([0.0])}, 10, {})
>>> state.hand_over(5, {"coef_": np.array([3.0]), "intercept_": np.array([0.0])}, 10, {})  # version 5 not here yet
>>> state.add_incoming(model(5, 0.5))   # round 4 combined: 0.5
>>> state.update_for(5)["params"]["coef_"].tolist()   # 0.5 + (3 - 1)
[2.5]
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .compression import Codec, Outbox
from .rounds import is_finite
from .store import GlobalModel

Params = dict[str, np.ndarray]


@dataclass
class Snapshot:
    """One handed-over update: parameters, samples trained for the round, training state.

    ``since``: the oldest round whose progress it holds (its own round, unless
    it holds a late worker's progress carried over from earlier rounds).
    """

    params: Params
    samples: int
    state: dict[str, float]
    since: int


class RoundState:
    """The global model a worker holds, its snapshots, and the models still to merge.

    The methods that change or read several fields take :attr:`lock` for a
    short, bounded time (never while training), so the worker's event loop may
    call them.
    """

    def __init__(self, adapter: Any, worker: str = "") -> None:
        self.adapter = adapter
        #: This worker's address: a global model that names it as late does not hold its progress.
        self.worker = worker
        self.lock = threading.Lock()
        self.applied: GlobalModel | None = None
        self.snapshots: dict[int, Snapshot] = {}
        self.incoming: list[GlobalModel] = []
        #: The latest round whose update was pulled: a later hand-over for it goes to the next round.
        self.pulled_through = -1
        #: Compressed updates and error feedback's residual (see :mod:`fedplugin.compression`).
        self.outbox = Outbox()

    @property
    def version(self) -> int | None:
        """Version of the global model merged into the local model (``None``: none yet)."""
        return None if self.applied is None else self.applied.version

    def reset(self, model: GlobalModel | None) -> None:
        """Hold ``model`` with no update pending (a fit starts, a rollback, a restart)."""
        with self.lock:
            self.applied = model
            self.snapshots.clear()
            self.pulled_through = -1
            self.outbox.reset()
            keep = -1 if model is None else model.version
            self.incoming[:] = [m for m in self.incoming if m.version > keep]

    def add_incoming(self, model: GlobalModel) -> None:
        """A global model arrived; it is merged by :meth:`rebase` (the model's owner calls it)."""
        with self.lock:
            self.incoming.append(model)

    def has_incoming(self) -> bool:
        return bool(self.incoming)

    def hand_over(self, base: int, params: Params, samples: int, state: dict[str, float]) -> None:
        """Keep ``params`` as this worker's update for round ``base`` (adding to earlier tasks' samples).

        If round ``base`` was combined while this worker trained for it (it was
        late, see :mod:`fedplugin.stragglers`), the update goes to the round of
        the global model it holds now; if its update for ``base`` was already
        pulled, to the next round (what was pulled is that round's anchor).
        """
        with self.lock:
            since = base
            base = max(base, -1 if self.applied is None else self.applied.version, self.pulled_through + 1)
            earlier = self.snapshots.get(base)
            if earlier is not None:
                since = min(since, earlier.since)
            self.snapshots[base] = Snapshot(params, samples + (earlier.samples if earlier else 0), state, since)

    def drop_updates(self) -> None:
        """Forget every handed-over update not yet pulled, and error feedback's residual (training diverged)."""
        with self.lock:
            self.snapshots.clear()
            self.outbox.reset()

    def rebase(self, local: Params | None) -> Params | None:
        """Merge every arrived global model: rebase the snapshots and ``local``; return the new local."""
        with self.lock:
            models, self.incoming[:] = sorted(self.incoming, key=lambda m: m.version), []
            applied, local = _rebase_all(
                self.adapter, self.applied, self.snapshots, models, local, self.outbox.anchors, self.worker
            )
            self.applied = applied
            if applied is not None:
                self.outbox.forget_before(applied.version)
            return local

    def update_for(self, base: int, codec: Codec | None = None) -> dict[str, Any] | None:
        """The update for round ``base``, rebased onto the models that arrived meanwhile (``None``: none).

        With a ``codec``, the parameters are sent as an encoded difference from
        the round's global model (``"payload"``, see :class:`~fedplugin.compression.Outbox`).
        """
        with self.lock:
            if not any(b <= base for b in self.snapshots):
                return None  # (a late worker's update for an earlier round may become this round's)
            pending = sorted((m for m in self.incoming if m.version <= base), key=lambda m: m.version)
            known = max([m.version for m in pending] + ([self.applied.version] if self.applied else []))
            if known != base:
                # This worker never got the round's model (it joined, or missed a
                # push): its update cannot be placed on it. It counts as missing
                # and its blocks are trained again; the next model it merges
                # drops this snapshot's progress (the snapshot is the anchor).
                return None
            snapshots = dict(self.snapshots)
            reference, _ = _rebase_all(self.adapter, self.applied, snapshots, pending, None, self.outbox.anchors, self.worker)
            if base not in snapshots:
                return None
            self.pulled_through = max(self.pulled_through, base)
            snapshot = snapshots[base]
            update = {"samples": snapshot.samples, "state": snapshot.state, "staleness": base - snapshot.since}
            if codec is None:
                return {"params": snapshot.params, **update}
            return {**self.outbox.encode(base, snapshot.params, reference.params, codec), **update}


def _rebase_all(
    adapter: Any, applied: GlobalModel | None, snapshots: dict[int, Snapshot], models: list[GlobalModel],
    local: Params | None, sent: dict[int, Params] | None = None, worker: str = "",
) -> tuple[GlobalModel | None, Params | None]:
    """Apply ``models`` in version order to ``snapshots`` (in place) and ``local``.

    ``sent``: per round, what the model combined of a compressed update with
    error feedback; what it dropped stays with the worker (the anchor is what
    was sent, not what was handed over). A model that names ``worker`` as late
    holds none of its progress: everything is kept, anchored on the model it
    held (see :func:`_carry_late_snapshots`).
    """
    for model in models:
        if applied is not None and model.version <= applied.version:
            continue  # already merged (sent twice)
        if applied is None:
            applied, local = model, (None if local is None else model.params)
            snapshots.clear()
            continue
        # What ``model`` already holds of this worker: its latest update below
        # ``model``'s version (that of the round that produced it, unless the
        # worker skipped versions), else the global model it held.
        anchor = applied.params
        if worker and worker in model.late:
            _carry_late_snapshots(snapshots, model.version)
        else:
            earlier = [b for b in snapshots if b < model.version]
            if earlier:
                anchor = (sent or {}).get(max(earlier), snapshots[max(earlier)].params)
            for base in earlier:
                del snapshots[base]  # combined into this model (or an earlier one)
        for base, snapshot in snapshots.items():
            snapshots[base] = replace(snapshot, params=_rebase(adapter, model.params, snapshot.params, anchor))
        if local is not None:
            local = model.params if not is_finite(local) else _rebase(adapter, model.params, local, anchor)
        applied = model
    return applied, local


def _carry_late_snapshots(snapshots: dict[int, Snapshot], version: int) -> None:
    """Version ``version`` was combined without this late worker: its updates up to that round
    were not pulled. The latest, which holds the earlier ones' progress (the local model goes on
    from one task to the next), becomes its update for round ``version``, with all their samples.
    """
    carried = [snapshots.pop(b) for b in sorted(b for b in snapshots if b <= version)]
    if carried:
        latest = carried[-1]
        snapshots[version] = Snapshot(
            latest.params, sum(s.samples for s in carried), latest.state, min(s.since for s in carried)
        )


def _rebase(adapter: Any, new_global: Params, x: Params, anchor: Params) -> Params:
    """``new_global`` plus what ``x`` learned beyond ``anchor``; exactly ``new_global`` if nothing."""
    if all(np.array_equal(x[name], anchor[name]) for name in anchor):
        return new_global
    return adapter.merge(new_global, x, anchor)
