"""One training task on one worker: blocks in order, checks between them.

:func:`train_blocks` runs inside :meth:`FederatedModelPlugin.train`, with the
plugin's lock held. It returns a :class:`TaskReport`: the small summary the
coordinator reads. The parameters stay on the worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .blocks import check_block, load_block
from .divergence import train_one
from .sync import LocalStats, SyncPolicy


@dataclass
class TaskReport:
    """What one training task tells the coordinator (no parameters).

    Attributes
    ----------
    worker : str
        Address of the worker that trained.
    base : int
        The round: the global version this task's update is based on.
    trained : list of (int, int)
        ``(block index, rows)`` for every block trained, in order; the blocks
        after them were handed back untrained (the round ended first).
    samples : int
        Rows trained.
    score_sum : float
        With test-then-train scoring: sum over trained blocks of the block's
        score before training times its rows.
    trigger : str or None
        The policy trigger that ended the task early, if any.
    seconds : float
        Time spent training.
    handed_over : bool
        False if the task was aborted before handing its update over.
    diverged : (int, str) or None
        The block whose training diverged (``partial_fit`` overflowed or left
        non-finite parameters) and what went wrong. The worker was then reset
        to the global model and ``trained`` is empty: every block of the task
        is trained again.
    """

    worker: str
    base: int = -1
    trained: list[tuple[int, int]] = field(default_factory=list)
    samples: int = 0
    score_sum: float = 0.0
    trigger: str | None = None
    seconds: float = 0.0
    handed_over: bool = True
    diverged: tuple[int, str] | None = None


def train_blocks(
    plugin: Any, token: str, blocks: list[tuple[int, Any, Any]], policy: SyncPolicy, elapsed_before: float, scorer: Any
) -> TaskReport:
    """Train ``plugin.model`` on ``blocks`` until they run out, a stop request or a trigger."""
    start = time.perf_counter()
    report = TaskReport(worker=plugin.worker.address)
    reference = plugin.global_model.params if policy.needs_drift else None
    reference_norm = _squared_norm(reference) if reference is not None else 0.0
    memory = _sync_memory(plugin)
    previous = plugin.adapter.get_params(plugin.model) if reference is not None else None
    for index, x, y in blocks:
        if token in plugin.stop_tokens:
            break
        X_block, y_block = load_block(x, y)
        model = plugin.global_model
        check_block(index, X_block, y_block, model.n_features, model.classes, model.n_outputs)
        score = None if scorer is None else float(scorer(plugin.model, X_block, y_block))
        if score is not None:
            report.score_sum += score * len(y_block)
        diverged = train_one(plugin, index, X_block, y_block)
        if diverged is not None:
            return _diverged(plugin, report, index, diverged, start)
        report.trained.append((index, len(y_block)))
        report.samples += len(y_block)
        plugin.samples_since_sync += len(y_block)
        plugin.samples_total += len(y_block)
        current = plugin.adapter.get_params(plugin.model) if reference is not None else None
        step = _squared_distance(current, previous) if reference is not None else 0.0
        if plugin.rounds.has_incoming():
            plugin.merge_incoming()  # a round ended meanwhile: merge, keep the progress
            if reference is not None:
                reference = plugin.global_model.params
                reference_norm = _squared_norm(reference)
                current = plugin.adapter.get_params(plugin.model)
        drift = _squared_distance(current, reference) if reference is not None else 0.0
        previous = current
        stats = LocalStats(
            blocks=len(report.trained),
            samples=plugin.samples_since_sync,
            seconds=elapsed_before + time.perf_counter() - start,
            drift=drift,
            reference_norm=reference_norm,
            step=step,
            blocks_since_sync=_count_block(memory, plugin.global_model.version),
            score=score,
            block_rows=len(y_block),
            memory=memory["policies"],
        )
        report.trigger = policy.check(stats)
        if report.trigger is not None and not isinstance(report.trigger, str):
            raise TypeError(f"{type(policy).__name__}.check returned {report.trigger!r}; expected a trigger name (str) or None")
        if report.trigger is not None:
            plugin.worker.log_event(
                f"fedplugin-{plugin.name}",
                {"worker": plugin.worker.address, "trigger": report.trigger, "token": token, "drift": float(drift)},
            )
            break
    report.seconds = time.perf_counter() - start
    return report


def _diverged(plugin: Any, report: TaskReport, index: int, message: str, start: float) -> TaskReport:
    """Nothing of the task counts: every block is handed back to be trained again."""
    plugin.samples_since_sync -= report.samples
    plugin.samples_total -= report.samples
    report.trained, report.samples, report.score_sum = [], 0, 0.0
    report.diverged = (index, message)
    report.seconds = time.perf_counter() - start
    return report


def _sync_memory(plugin: Any) -> dict[str, Any]:
    """The worker's memory for sync policies, kept on the plugin across tasks and rounds.

    Created on first use (a restarted worker starts with an empty one):
    ``"policies"`` is what policies see as ``LocalStats.memory``;
    ``"version"`` and ``"blocks"`` count the blocks trained since the
    global version last changed.
    """
    memory = getattr(plugin, "sync_memory", None)
    if memory is None:
        memory = plugin.sync_memory = {"policies": {}, "version": None, "blocks": 0}
    return memory


def _count_block(memory: dict[str, Any], version: int) -> int:
    """Count one trained block; return the blocks trained since global ``version`` arrived."""
    if memory["version"] != version:
        memory["version"], memory["blocks"] = version, 0
    memory["blocks"] += 1
    return memory["blocks"]


def _squared_norm(params: dict[str, np.ndarray]) -> float:
    return float(sum(np.sum(np.square(value)) for value in params.values()))


def _squared_distance(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return float(sum(np.sum(np.square(a[name] - b[name])) for name in b))
