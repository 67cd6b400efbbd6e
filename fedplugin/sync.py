"""When to synchronize: the round-ending conditions.

A policy answers two questions:

* on the coordinator, :meth:`SyncPolicy.blocks_per_round`: how many blocks the
  whole cluster trains before a round (``None``: no count limit);
* on each worker, after every block, :meth:`SyncPolicy.check`: should this
  worker end the round now? It returns the trigger name (``"time"``,
  ``"drift"``, ``"change"``, ...) or ``None``. A worker that says yes stops its task, hands
  back its untrained blocks and signals the coordinator through Dask's event
  topics, so no task ever waits for the coordinator.

Write your own policy by subclassing :class:`SyncPolicy` and overriding
either method; policies are pickled to the workers, so keep them small.

Examples
--------
>>> policy = AnyOf(EveryNBatches(50), EverySeconds(2.0))
>>> policy.blocks_per_round(n_workers=2)
50
>>> policy.check(LocalStats(blocks=3, samples=12288, seconds=2.5, drift=0.0))
'time'
"""

from __future__ import annotations

import copy
import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .change_detectors import ChangeDetector, PageHinkley
from .checks import check_number


@dataclass(frozen=True)
class LocalStats:
    """What a worker knows about its own progress in the current round.

    Attributes
    ----------
    blocks : int
        Blocks this worker has trained in its current training task.
    samples : int
        Samples this worker has trained since the last round.
    seconds : float
        Training seconds since the round started.
    drift : float
        Squared Euclidean distance between the worker's parameters and the last
        global parameters (computed only when a policy sets ``needs_drift``).
    reference_norm : float
        Squared norm of the last global parameters (with ``needs_drift``).
    step : float
        Squared Euclidean distance the parameters moved while training the
        last block (with ``needs_drift``).
    blocks_since_sync : int
        Blocks this worker has trained since its reference (the last global
        model) last changed, over all its tasks (with ``needs_drift``).
    score : float or None
        The last block's test-then-train score: the worker's model scored on
        it before training on it (``None`` without ``Coordinator(scoring=...)``).
    block_rows : int
        Rows of the last block.
    memory : dict
        A dict that stays on the worker from one task and round to the next:
        policies keep their per-worker state in it (the policy object itself
        is pickled afresh into every task). Not compared, not shown.
    """

    blocks: int
    samples: int
    seconds: float
    drift: float = 0.0
    reference_norm: float = 0.0
    step: float = 0.0
    blocks_since_sync: int = 0
    score: float | None = None
    block_rows: int = 0
    memory: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class SyncPolicy:
    """Base class of synchronization policies: both hooks do nothing by default."""

    #: Set to True if :meth:`check` reads ``stats.drift``.
    needs_drift: bool = False
    #: Set to True if :meth:`check` reads ``stats.score``: the coordinator then needs ``scoring=``.
    needs_score: bool = False

    def blocks_per_round(self, n_workers: int) -> int | None:
        """Blocks the cluster trains between rounds, or ``None`` for no count limit."""
        return None

    @property
    def checks_on_workers(self) -> bool:
        """True if :meth:`check` is overridden: workers may end a round themselves."""
        return type(self).check is not SyncPolicy.check

    def check(self, stats: LocalStats) -> str | None:
        """Return a trigger name to end the round from this worker, else ``None``."""
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class EveryNBatches(SyncPolicy):
    """Synchronize after ``n`` blocks have been trained across the cluster.

    Each worker's share is ``n / n_workers`` blocks per round; a final round
    ends every ``fit``.

    Parameters
    ----------
    n : int >= 1
        Blocks per round, counted over all workers.
    """

    def __init__(self, n: int):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n={n!r} must be an int >= 1 (blocks per round over all workers)")
        self.n = n

    def blocks_per_round(self, n_workers: int) -> int:
        return self.n


class EverySeconds(SyncPolicy):
    """Synchronize after every ``t`` seconds of training.

    Parameters
    ----------
    t : float > 0
        Seconds of training per round; each worker checks it after each block.
    """

    def __init__(self, t: float):
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
            raise ValueError(f"t={t!r} must be a number of seconds > 0")
        self.t = float(t)

    def check(self, stats: LocalStats) -> str | None:
        return "time" if stats.seconds >= self.t else None


class DriftThreshold(SyncPolicy):
    """Dynamic averaging: synchronize when a worker drifts from the global model.

    Kamp et al., "Communication-Efficient Distributed Online Prediction by
    Dynamic Model Synchronization", ECML PKDD 2014. After each block a worker
    computes the squared distance between its parameters and the last global
    parameters (its reference); when it exceeds the threshold, that worker
    ends the round. Give at most one of ``threshold``, ``relative`` and
    ``target_blocks``; with none, the threshold calibrates itself
    (``target_blocks=32``).

    Parameters
    ----------
    threshold : float > 0, optional
        Absolute threshold on the squared distance.
    relative : float > 0, optional
        Threshold as a fraction of the squared norm of the reference, whatever
        the scale of the features: ``relative=0.05`` ends the round once the
        parameters have moved by more than ``sqrt(0.05)``, about 22 %, of the
        global model's norm. While the reference is all zeros (before the
        first round), any change triggers a round.
    target_blocks : int >= 1, optional
        Self-calibrating threshold (the default, 32): a worker ends the round
        after this many blocks since the last global model (trigger
        ``"count"``), or sooner when its drift exceeds ``drift_factor`` (8)
        times the size of its typical step (trigger ``"drift"``).

    Notes
    -----
    **Calibration** (``target_blocks``). Each worker keeps, across its tasks
    and rounds, the squared distance its parameters moved in each of its last
    ``window`` (16) blocks: its *step*. The drift threshold is
    ``drift_factor`` (8) times the median of the previous steps (the current
    block's step is left out, so a jump cannot raise its own bar), whatever
    the scale of the features, the learning rate or its schedule (the median
    follows a decaying learning rate):

    * a model that only fluctuates around its optimum never drifts much
      further than one step: with blocks of thousands of rows SGD forgets
      within a block where it started (measured on the benchmark data with
      the default, constant and ``"pa1"`` learning rates: the drift after 1
      to 32 blocks stays at 0.4 to 1.4 steps). Such a worker ends its round
      after ``target_blocks`` blocks (``"count"``). On a stationary stream
      the default has 14 to 22 times fewer rounds than a round after every
      block (``benchmarks/sync_protocols.py``, 2 workers: a worker's count
      starts again whenever a global model arrives, also from a round the
      other worker ended);
    * a model that wanders like a random walk drifts about ``k`` steps after
      ``k`` blocks (a round after about ``drift_factor`` blocks), and one
      that moves in one direction about ``k**2`` steps (a round after about
      ``sqrt(drift_factor)`` blocks): rounds are short while the model is
      still learning;
    * a concept change moves the model far in a few large steps and ends the
      round at once (``"drift"``): flipping the labels of the benchmark's
      stream moves the parameters by 11 (default ``SGDClassifier()``) to 27
      (constant learning rate) median steps in one block.

    No worker fires on drift before it has seen ``warmup`` (4) steps. The
    steps are kept on the worker (``memory`` of :class:`LocalStats`); a restarted
    worker calibrates again. ``window``, ``warmup`` and ``drift_factor`` are
    class attributes: change them in a subclass.

    Examples
    --------
    A stationary worker whose parameters fluctuate around their optimum
    ends a round every 32 blocks; a concept change ends it at once:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> policy, memory = DriftThreshold(), {}
    >>> since_sync, triggers = 0, []
    >>> for block in range(1, 101):
    ...     since_sync += 1
    ...     noise = rng.normal(scale=0.1, size=50)   # where SGD left the parameters
    ...     stats = LocalStats(
    ...         since_sync, 0, 0.0, drift=noise @ noise, step=2 * noise @ noise,
    ...         blocks_since_sync=since_sync, memory=memory,
    ...     )
    ...     if (trigger := policy.check(stats)) is not None:
    ...         triggers.append((block, trigger))
    ...         since_sync = 0   # the round: back to the global model
    >>> triggers
    [(32, 'count'), (64, 'count'), (96, 'count')]
    >>> policy.check(LocalStats(1, 0, 0.0, drift=40.0, step=40.0, blocks_since_sync=1, memory=memory))
    'drift'
    """

    needs_drift = True
    #: Calibrated mode: steps each worker remembers, steps it needs before it may fire on
    #: drift, and the drift, in median steps, that ends a round.
    window = 16
    warmup = 4
    drift_factor = 8.0

    def __init__(
        self,
        threshold: float | None = None,
        *,
        relative: float | None = None,
        target_blocks: int | None = None,
    ):
        given = [v is not None for v in (threshold, relative, target_blocks)]
        if sum(given) > 1:
            raise ValueError(
                f"got threshold={threshold!r}, relative={relative!r} and target_blocks={target_blocks!r}; "
                "expected exactly one of them, or none for the self-calibrating DriftThreshold()"
            )
        for label, value in (("threshold", threshold), ("relative", relative)):
            if value is not None:
                check_number(value, label, min_val=0, include_boundaries="neither")
        if not any(given):
            target_blocks = 32
        if target_blocks is not None and (
            isinstance(target_blocks, bool) or not isinstance(target_blocks, int) or target_blocks < 1
        ):
            raise ValueError(f"target_blocks={target_blocks!r} must be an int >= 1 (blocks per round per worker)")
        self.threshold = threshold
        self.relative = relative
        self.target_blocks = target_blocks

    def check(self, stats: LocalStats) -> str | None:
        if self.target_blocks is not None:
            return self._check_calibrated(stats)
        limit = self.threshold
        if limit is None:
            limit = self.relative * stats.reference_norm
        return "drift" if stats.drift > limit else None

    def _check_calibrated(self, stats: LocalStats) -> str | None:
        steps = stats.memory.setdefault(f"DriftThreshold(target_blocks={self.target_blocks})", deque(maxlen=self.window))
        # A floor under the typical step: a model that stopped moving (separable
        # data) must not call every later rounding error a drift.
        typical = max(statistics.median(steps), 1e-12 * stats.reference_norm) if steps else 0.0
        drifted = len(steps) >= self.warmup and stats.drift > self.drift_factor * typical
        steps.append(stats.step)
        if drifted:
            return "drift"
        return "count" if stats.blocks_since_sync >= self.target_blocks else None

    def __repr__(self) -> str:
        if self.target_blocks is not None:
            return f"DriftThreshold(target_blocks={self.target_blocks})"
        if self.relative is not None:
            return f"DriftThreshold(relative={self.relative!r})"
        return f"DriftThreshold({self.threshold!r})"


class OnChange(SyncPolicy):
    """Synchronize when a worker's test-then-train score changes: a concept change.

    After each block, a worker hands the block's test-then-train score (its
    model's score on the block before training on it, see
    ``Coordinator(scoring=...)``, which this policy needs) to its own copy
    of ``detector``; when the detector fires, the worker ends the round with
    trigger ``"change"``. A server optimizer made with
    ``reset_on_change=True`` (e.g. :class:`~fedplugin.FedAdam`) then starts
    its state afresh. Combine it with a count for the rounds of a stationary
    stream, the change first, so that its name wins when both fire:
    ``AnyOf(OnChange(), DriftThreshold())``.

    Parameters
    ----------
    detector : ChangeDetector, default PageHinkley()
        :class:`~fedplugin.PageHinkley` or :class:`~fedplugin.ADWIN`, or your
        own :class:`~fedplugin.ChangeDetector`: a template, copied into each
        worker's ``memory`` on its first block (a non-finite score is
        skipped).

    Examples
    --------
    >>> from fedplugin import LocalStats
    >>> policy, memory = OnChange(), {}
    >>> scores = [0.9, 0.91, 0.89, 0.9, 0.9, 0.88, 0.5, 0.85]   # a change at block 6
    >>> [policy.check(LocalStats(1, 0, 0.0, score=s, block_rows=500, memory=memory)) for s in scores]
    [None, None, None, None, None, None, 'change', None]
    """

    needs_score = True

    def __init__(self, detector: ChangeDetector | None = None):
        detector = PageHinkley() if detector is None else detector
        if not isinstance(detector, ChangeDetector):
            raise TypeError(f"detector={detector!r} is not a ChangeDetector; expected e.g. PageHinkley() or ADWIN()")
        self.detector = detector

    def check(self, stats: LocalStats) -> str | None:
        if stats.score is None or not math.isfinite(stats.score):
            return None
        key = repr(self)
        if key not in stats.memory:
            stats.memory[key] = copy.deepcopy(self.detector)
        return "change" if stats.memory[key].update_block(stats.score, stats.block_rows) else None


class AnyOf(SyncPolicy):
    """Synchronize when any of ``policies`` says so.

    The count limit is the smallest of the policies' limits; the worker-side
    trigger is the first policy's trigger that fires. Every policy checks
    every block, so that those that keep state (:class:`DriftThreshold`,
    :class:`OnChange`) see each block even when another one fires.
    """

    def __init__(self, *policies: SyncPolicy):
        if not policies:
            raise ValueError("AnyOf() needs at least one policy")
        for policy in policies:
            if not isinstance(policy, SyncPolicy):
                raise TypeError(f"{policy!r} is not a SyncPolicy; expected e.g. EveryNBatches(50)")
        self.policies = policies
        self.needs_drift = any(policy.needs_drift for policy in policies)
        self.needs_score = any(policy.needs_score for policy in policies)

    @property
    def checks_on_workers(self) -> bool:
        return any(policy.checks_on_workers for policy in self.policies)

    def blocks_per_round(self, n_workers: int) -> int | None:
        limits = [p.blocks_per_round(n_workers) for p in self.policies]
        limits = [limit for limit in limits if limit is not None]
        return min(limits) if limits else None

    def check(self, stats: LocalStats) -> str | None:
        triggers = [policy.check(stats) for policy in self.policies]
        return next((trigger for trigger in triggers if trigger is not None), None)

    def __repr__(self) -> str:
        return f"AnyOf({', '.join(map(repr, self.policies))})"


def as_policy(sync: SyncPolicy | int | None, scoring: Any = None) -> SyncPolicy:
    """Return ``sync`` as a policy: an int ``n`` means ``EveryNBatches(n)``, None means 50.

    ``scoring`` is the coordinator's: a policy that ``needs_score`` is refused without one.
    """
    if sync is None:
        return EveryNBatches(50)
    if isinstance(sync, int) and not isinstance(sync, bool):
        return EveryNBatches(sync)
    if isinstance(sync, SyncPolicy) and sync.needs_score and scoring is None:
        raise ValueError(
            f"sync={sync!r} watches the test-then-train score, but scoring=None; "
            "expected a scorer, e.g. Coordinator(..., scoring='accuracy')"
        )
    if isinstance(sync, type) and issubclass(sync, SyncPolicy):
        raise TypeError(f"sync={sync.__name__} is a class; expected an instance such as {sync.__name__}(...)")
    if not isinstance(sync, SyncPolicy):
        raise TypeError(
            f"sync={sync!r} is not a synchronization policy; expected a SyncPolicy such as "
            "EveryNBatches(50), EverySeconds(1.0) or DriftThreshold()"
        )
    return sync
