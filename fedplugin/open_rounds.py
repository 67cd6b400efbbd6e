"""The client's record of a round while it runs: what was launched, trained and handed back.

The round engine (:mod:`fedplugin.engine`) keeps one :class:`OpenRound` per
round whose tasks are launched and whose update is not yet combined, and a
:class:`Closing` for the round being combined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class OpenRound:
    """A round whose tasks are launched and whose update is not yet combined."""

    base: int
    token: str
    start: float
    shares: dict[str, float]
    counted: bool
    pending: int = 0
    accepting: bool = True
    trigger: str | None = None
    trained_by: dict[str, list] = field(default_factory=dict)
    samples_by: dict[str, int] = field(default_factory=dict)
    retrained: int = 0
    handed_back: int = 0
    diverged: set[str] = field(default_factory=set)
    score_by: dict[str, float] = field(default_factory=dict)
    client_bytes: int = 0
    late: list[str] = field(default_factory=list)  # workers still training when it closed


@dataclass
class Closing:
    """The round being combined: which attempt, on which worker, and its pending answer."""

    round: OpenRound
    attempt: int
    aggregator: str
    future: Any
    seconds: float | None = None  # client-side latency, set when the answer lands


def moving_average(current: float | None, value: float, weight: float = 0.3) -> float:
    """Exponential moving average (the first value starts it)."""
    return value if current is None else (1 - weight) * current + weight * value


__all__ = ["Closing", "OpenRound", "moving_average"]
