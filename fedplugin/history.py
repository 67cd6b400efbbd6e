"""One record per synchronization round, and the bounded log a coordinator keeps of them."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Rounds a coordinator keeps in memory by default (about 1 KB each).
DEFAULT_HISTORY_LIMIT = 10_000


@dataclass(frozen=True)
class Round:
    """What happened in one synchronization round.

    ``pandas.DataFrame(coord.history)`` turns a history into a table.

    Attributes
    ----------
    round : int
        Round number, counting from 1 over the coordinator's (and a resumed
        model's) life.
    trigger : str
        Why the round happened: ``"count"``, ``"time"``, ``"drift"``, a custom
        policy's trigger, ``"final"`` (end of a fit) or ``"manual"``
        (:meth:`Coordinator.synchronize`).
    samples : int
        Samples trained since the previous round.
    total_samples : int
        Samples trained over all rounds of this coordinator so far (carried on
        by :meth:`Coordinator.resume`).
    blocks : int
        Blocks trained since the previous round.
    retrained_blocks : int
        Blocks trained again because the worker that trained them was lost,
        or its training diverged.
    handed_back_blocks : int
        Blocks handed back untrained because the round ended first (trained
        after the round).
    n_workers : int
        Workers whose updates were combined.
    workers : tuple of str
        Their addresses.
    excluded_workers : tuple of str
        Workers left out because their parameters were not finite, or their
        training diverged (they were reset to the global model).
    seconds : float
        Wall time of the round, training included.
    bytes_up, bytes_down : int
        Parameter bytes pulled from the workers by the worker that combined
        the round (as sent: compressed with ``Coordinator(compression=...)``),
        and pushed from it to every worker (worker to worker).
    version : int
        Global model version after the round.
    metrics : dict
        Optional extra measurements (e.g. test-then-train scores).
    client_bytes : int
        Bytes that crossed the client for the round: task messages, the
        workers' reports and the round summary (parameters never do).
    combine_seconds : float
        Time the worker that combined the round spent on it: ``pull_seconds``
        fetching the updates from the workers (with a reduction tree, the
        whole tree's pulling, decoding and averaging), ``compute_seconds`` computing
        the new global model, ``push_seconds`` storing it on the scheduler and
        pushing it to every worker.
    epsilon : float or None
        With :class:`~fedplugin.DPFedAvg` as the aggregator, the privacy
        spent so far by the global model, at the rule's ``delta`` (``None``
        otherwise).
    bytes_up_raw : int
        What ``bytes_up`` would have been uncompressed: equal to it without
        compression (0 in records of fedplugin versions before compression).
    late_workers : tuple of str
        Workers still training when the round closed (``Coordinator(stragglers=...)``):
        their progress and blocks count in a later round.
    """

    round: int
    trigger: str
    samples: int
    total_samples: int
    blocks: int
    retrained_blocks: int
    handed_back_blocks: int
    n_workers: int
    workers: tuple[str, ...]
    excluded_workers: tuple[str, ...]
    seconds: float
    bytes_up: int
    bytes_down: int
    version: int
    metrics: dict[str, Any] = field(default_factory=dict)
    client_bytes: int = 0
    combine_seconds: float = 0.0
    pull_seconds: float = 0.0
    compute_seconds: float = 0.0
    push_seconds: float = 0.0
    epsilon: float | None = None
    bytes_up_raw: int = 0
    late_workers: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def round_record(rnd: Any, summary: Any, trigger: str, total_samples: int, online: bool) -> Round:
    """The :class:`Round` of an open round (:class:`~fedplugin.open_rounds.OpenRound`) once its summary is back."""
    samples = sum(rnd.samples_by.values())
    return Round(
        round=summary.rounds, trigger=trigger, samples=samples, total_samples=total_samples,
        blocks=sum(len(items) for items in rnd.trained_by.values()), retrained_blocks=rnd.retrained,
        handed_back_blocks=rnd.handed_back, n_workers=len(summary.workers), workers=tuple(summary.workers),
        excluded_workers=tuple(sorted((set(summary.excluded) | rnd.diverged) - set(summary.workers))), seconds=time.perf_counter() - rnd.start,
        bytes_up=summary.bytes_up, bytes_down=summary.bytes_down, version=summary.version,
        metrics={"online_score": sum(rnd.score_by.values()) / samples} if online else {}, client_bytes=rnd.client_bytes,
        combine_seconds=summary.seconds, pull_seconds=summary.pull_seconds,
        compute_seconds=summary.combine_seconds, push_seconds=summary.push_seconds,
        epsilon=getattr(summary, "epsilon", None), bytes_up_raw=summary.bytes_up_raw, late_workers=tuple(rnd.late),
    )


class RoundLog(list):
    """A coordinator's history: the latest ``limit`` rounds, each also appended to ``path``.

    A plain list of :class:`Round` for everything that reads it; appending
    beyond ``limit`` forgets the oldest round, so a service that runs for
    months keeps bounded memory. With ``path``, every round is appended to
    that file as one JSON line when it is recorded, so nothing is lost; a fit
    that is rolled back takes its rounds out of the file again, so that the
    file always tells the history of the stored model.

    Parameters
    ----------
    limit : int or None, default 10,000
        Rounds kept in memory; ``None`` keeps every round.
    path : str or path-like, optional
        A JSON-lines file to append every round to.

    Examples
    --------
    >>> log = RoundLog(limit=2)
    >>> log.load(range(5))
    >>> log, log.forgotten, log.recorded
    ([3, 4], 3, 5)
    """

    def __init__(self, limit: int | None = DEFAULT_HISTORY_LIMIT, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"history_limit={limit!r} must be an int >= 1, or None to keep every round")
        self.limit = limit
        self.path = None if path is None else Path(path)
        #: Rounds recorded but no longer in memory (the oldest ones).
        self.forgotten = 0

    @property
    def recorded(self) -> int:
        """Rounds recorded so far, forgotten ones included."""
        return self.forgotten + len(self)

    def append(self, record: Any) -> None:
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record.as_dict(), default=_plain) + "\n")
        self.load([record])

    def load(self, records: list[Any]) -> None:
        """Start from ``records`` (a resumed checkpoint's), keeping the latest ``limit``; write nothing."""
        super().extend(records)
        if self.limit is not None and len(self) > self.limit:
            excess = len(self) - self.limit
            del self[:excess]
            self.forgotten += excess

    def snapshot(self) -> tuple[int, list[Any], int]:
        """What :meth:`restore` needs to undo the rounds recorded after now (a failed fit)."""
        size = self.path.stat().st_size if self.path is not None and self.path.exists() else 0
        return self.forgotten, list(self), size

    def restore(self, snapshot: tuple[int, list[Any], int]) -> None:
        """Be again what :meth:`snapshot` saw, forgotten rounds and the file's lines included."""
        self.forgotten, self[:] = snapshot[0], snapshot[1]
        if self.path is not None and self.path.exists():
            os.truncate(self.path, snapshot[2])


def _plain(value: Any) -> Any:
    """JSON for what a round record may hold besides plain types (numpy scalars, tuples)."""
    return value.item() if hasattr(value, "item") else str(value)
