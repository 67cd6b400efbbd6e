"""Differential privacy of the released global model: DP-FedAvg with an accountant.

After McMahan et al., "Learning Differentially Private Recurrent Language
Models", ICLR 2018 (DP-FedAvg), with the adaptive clipping of Andrew et al.,
"Differentially Private Learning with Adaptive Clipping", NeurIPS 2021. In
each round, on the worker that combines it, :class:`DPFedAvg`

1. keeps each worker's update with probability ``sampling_rate`` (Poisson
   sampling with its own secret randomness; all updates when it is 1);
2. clips each kept update ``local - global`` (all parameters flattened
   together) to L2 norm at most ``clip_norm``;
3. adds Gaussian noise of standard deviation ``noise_multiplier * clip_norm``
   to their sum, and divides by the fixed denominator ``sampling_rate * n``,
   where ``n`` is the number of updates the round received: every kept worker
   counts the same, whatever it trained;
4. with adaptive clipping, moves ``clip_norm`` geometrically toward the
   ``target_quantile`` of the update norms, from a noised count of the
   updates it did not clip, each counted as ``+1/2`` and each clipped one as
   ``-1/2`` so that one worker moves the count by at most ``1/2`` (Andrew et
   al.'s Algorithm 1, as TensorFlow Federated implements it).

Each round is one ``PoissonSampledDpEvent(sampling_rate,
GaussianDpEvent(noise_multiplier))`` (the bare ``GaussianDpEvent`` when the
rate is 1) for Google's ``dp-accounting`` library, whose Rényi DP accountant
composes them into the ``epsilon`` spent at ``delta``, reported in every
round record. The protected unit is one worker's update in a round: see
``docs/guide/privacy.rst`` for the threat model.

The events, the clip norm and the last epsilon live in the global model's
``extra["server"]`` (as a server optimizer's state), so the scheduler's store
and checkpoints carry them and a resumed fit goes on accounting.

Examples
--------
>>> import numpy as np
>>> rule = DPFedAvg(noise_multiplier=1.0, clip_norm=1.0, seed=0)
>>> current = {"w": np.zeros(2)}
>>> updates = [{"w": np.array([3.0, 4.0])}, {"w": np.array([0.3, 0.4])}]
>>> params, state = rule.combine(current, updates, None)
>>> state["clip_norm"], state["events"], round(state["epsilon"], 2)
(1.0, [[1.0, 1.0, 1]], 4.73)

The first update was clipped to ``[0.6, 0.8]``; the mean ``[0.45, 0.6]``
moved by noise of standard deviation ``1.0 * 1.0 / 2``:

>>> params["w"].round(2).tolist()
[0.51, 0.53]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .aggregation import Aggregator, Params
from .checks import check_number
from .store import SERVER_STATE

#: ``extra["server"]["rule"]`` of the state :class:`DPFedAvg` keeps.
RULE_NAME = "DPFedAvg"


def _dp_accounting() -> Any:
    """The ``dp_accounting`` package, or an ImportError that names the extra."""
    try:
        import dp_accounting
        from dp_accounting import rdp  # noqa: F401  (a submodule the package does not import)
    except ImportError as exc:
        raise ImportError(
            "DPFedAvg needs Google's dp-accounting library for its privacy accountant; install it with "
            '`pip install "fedplugin[privacy]"` or `pip install dp-accounting`'
        ) from exc
    return dp_accounting


def round_event(sampling_rate: float, noise_multiplier: float) -> Any:
    """The ``dp_accounting`` event of one round of :class:`DPFedAvg`.

    Examples
    --------
    >>> round_event(1.0, 2.0)
    GaussianDpEvent(noise_multiplier=2.0)
    >>> round_event(0.5, 2.0).sampling_probability
    0.5
    """
    dpa = _dp_accounting()
    gaussian = dpa.GaussianDpEvent(noise_multiplier)
    return gaussian if sampling_rate == 1.0 else dpa.PoissonSampledDpEvent(sampling_rate, gaussian)


def epsilon_spent(events: Sequence[Sequence[float]], delta: float) -> float:
    """Epsilon at ``delta`` of ``events``, ``[sampling_rate, noise_multiplier, rounds]`` each.

    Composed by ``dp_accounting.rdp.RdpAccountant`` (add or remove one
    worker's update).

    Examples
    --------
    >>> round(epsilon_spent([[1.0, 2.0, 10]], 1e-5), 3) == round(epsilon_spent([[1.0, 2.0, 4], [1.0, 2.0, 6]], 1e-5), 3)
    True
    """
    accountant = _dp_accounting().rdp.RdpAccountant()
    for rate, noise, rounds in events:
        accountant.compose(round_event(float(rate), float(noise)), int(rounds))
    return float(accountant.get_epsilon(delta))


def clip(update: np.ndarray, clip_norm: float) -> tuple[np.ndarray, float]:
    """``update`` scaled to L2 norm at most ``clip_norm``, and its norm before.

    Examples
    --------
    >>> clip(np.array([3.0, 4.0]), 1.0)
    (array([0.6, 0.8]), 5.0)
    >>> clip(np.array([0.3, 0.4]), 1.0)[0]
    array([0.3, 0.4])
    """
    norm = float(np.linalg.norm(update))
    return (update * (clip_norm / norm) if norm > clip_norm else update), norm


def privacy_spent(model: Any) -> float | None:
    """The epsilon recorded in a global model's state (``None``: not trained with :class:`DPFedAvg`)."""
    state = model.extra.get(SERVER_STATE) if model is not None else None
    if isinstance(state, Mapping) and state.get("rule") == RULE_NAME:
        return float(state["epsilon"])
    return None


class DPFedAvg(Aggregator):
    """DP-FedAvg: clip each worker's update, average with equal weights, add Gaussian noise.

    Pass it as a coordinator's ``aggregator``; every round's record then
    holds the ``epsilon`` spent so far at ``delta``. See the module
    :mod:`fedplugin.privacy` for the algorithm.

    Parameters
    ----------
    noise_multiplier : float > 0
        Standard deviation of the noise on the sum of clipped updates, in
        units of ``clip_norm`` (McMahan et al.'s ``z``). With adaptive
        clipping it is the multiplier of the update and the clip count
        together: the update noise is raised to make room for the count's
        (Andrew et al., Theorem 1).
    clip_norm : float > 0, default 1.0
        L2 bound on each worker's update; the initial bound with adaptive
        clipping.
    sampling_rate : float in (0, 1], default 1.0
        Probability that each worker's update is kept in a round (Poisson
        sampling). Below 1 it amplifies privacy, and the workers left out
        trained for nothing that round.
    adaptive_clipping : bool, default False
        Move ``clip_norm`` toward the ``target_quantile`` of the update norms.
    target_quantile : float in (0, 1), default 0.5
        Fraction of updates that adaptive clipping leaves unclipped.
    clip_learning_rate : float > 0, default 0.2
        Step of the geometric update ``C * exp(-lr * (unclipped - target))``.
    count_stddev : float, optional
        Noise on the count of unclipped updates; must exceed
        ``noise_multiplier / 2``. Default ``noise_multiplier``, which raises
        the update noise by ``1 / sqrt(1 - 1/4)`` (about 15 %). Andrew et al.
        suggest ``workers per round / 20`` when that is larger.
    delta : float in (0, 1), default 1e-5
        The delta at which epsilon is reported; keep it well below
        ``1 / number of workers``.
    seed : int, optional
        Seeds the sampling and the noise of each round (from ``[seed,
        round]``): for tests and benchmarks only, since whoever knows the seed
        can subtract the noise. By default each round draws fresh operating
        system entropy, which is never stored.

    Examples
    --------
    >>> DPFedAvg(0.0)
    Traceback (most recent call last):
    ...
    ValueError: noise_multiplier == 0.0, must be > 0.
    >>> DPFedAvg(1.0, adaptive_clipping=True, count_stddev=0.4)
    Traceback (most recent call last):
    ...
    ValueError: count_stddev=0.4 must exceed noise_multiplier / 2 = 0.5, or the update noise cannot make room for the count's
    """

    #: It steps from the current global model: it cannot be nested in a per-parameter rule.
    needs_global = True
    #: What error messages call it.
    kind = "a differentially private rule"

    def __init__(
        self,
        noise_multiplier: float,
        *,
        clip_norm: float = 1.0,
        sampling_rate: float = 1.0,
        adaptive_clipping: bool = False,
        target_quantile: float = 0.5,
        clip_learning_rate: float = 0.2,
        count_stddev: float | None = None,
        delta: float = 1e-5,
        seed: int | None = None,
    ) -> None:
        self.noise_multiplier = _positive(noise_multiplier, "noise_multiplier")
        self.clip_norm = _positive(clip_norm, "clip_norm")
        self.sampling_rate = _within(sampling_rate, "sampling_rate", upper_closed=True)
        if not isinstance(adaptive_clipping, bool):
            raise TypeError(f"adaptive_clipping={adaptive_clipping!r} must be True or False")
        self.adaptive_clipping = adaptive_clipping
        self.target_quantile = _within(target_quantile, "target_quantile")
        self.clip_learning_rate = _positive(clip_learning_rate, "clip_learning_rate")
        stddev = self.noise_multiplier if count_stddev is None else _positive(count_stddev, "count_stddev")
        if adaptive_clipping and not 2 * stddev > self.noise_multiplier:
            raise ValueError(
                f"count_stddev={count_stddev!r} must exceed noise_multiplier / 2 = {self.noise_multiplier / 2}, "
                "or the update noise cannot make room for the count's"
            )
        self.count_stddev = count_stddev
        self.delta = _within(delta, "delta")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"seed={seed!r} must be an int >= 0, or None for fresh entropy every round")
        self.seed = seed
        _dp_accounting()  # refuse now, on the client, rather than in the first round

    @property
    def update_noise_multiplier(self) -> float:
        """The noise multiplier of the update sum alone (``noise_multiplier`` without adaptive clipping)."""
        if not self.adaptive_clipping:
            return self.noise_multiplier
        count = self.noise_multiplier if self.count_stddev is None else self.count_stddev
        return (self.noise_multiplier**-2 - (2.0 * count) ** -2) ** -0.5

    def __call__(self, updates: Sequence[Params], weights: Sequence[float]) -> Params:
        raise TypeError(
            "DPFedAvg steps from the global model and keeps an accountant, which a plain rule(updates, weights) "
            "call does not see; pass it as the coordinator's aggregator"
        )

    def check_family(self, adapter: Any, estimator: Any = None) -> None:
        """Refuse a family whose parameters are counts and sums (or carry counters), not weights.

        Raises
        ------
        ValueError
            If ``adapter`` combines ``estimator`` (named by the adapter when not
            given) exactly, or does not take a server step (a
            :class:`~fedplugin.CandidateSet`).
        """
        if adapter.exact_aggregation or not adapter.takes_server_optimizer:
            what = "combined exactly from its counts and sums" if adapter.exact_aggregation else "keeps counters next to its weights"
            raise ValueError(
                f"aggregator={self!r} clips and noises weight updates, but {type(estimator or adapter).__name__} is {what}; "
                "expected an estimator trained by gradient steps (SGD*, Perceptron, PassiveAggressive*, MLP*)"
            )

    def combine(self, current: Params, updates: Sequence[Params], state: Mapping[str, Any] | None) -> tuple[Params, dict[str, Any]]:
        """The noised global parameters and the new state, from the workers' ``updates``.

        ``state`` is what an earlier round returned; another rule's (or
        ``None``) starts the accounting afresh.
        """
        own = state if isinstance(state, Mapping) and state.get("rule") == RULE_NAME else None
        clip_norm = float(own["clip_norm"]) if own is not None and self.adaptive_clipping else self.clip_norm
        events = [list(event) for event in own["events"]] if own is not None else []
        rounds = sum(int(event[2]) for event in events)
        rng = np.random.default_rng(None if self.seed is None else [self.seed, rounds])
        names = sorted(current)
        base = np.concatenate([np.ravel(np.asarray(current[n], dtype=np.float64)) for n in names])
        kept = [u for u in updates if rng.random() < self.sampling_rate] if self.sampling_rate < 1 else list(updates)
        denominator = self.sampling_rate * len(updates)
        total, centered = np.zeros_like(base), 0.0
        for update in kept:
            flat = np.concatenate([np.ravel(np.asarray(update[n], dtype=np.float64)) for n in names])
            clipped, norm = clip(flat - base, clip_norm)
            total += clipped
            # Centred bits: one worker more or less moves the count by 1/2 (Andrew et al.)
            centered += (norm <= clip_norm) - 0.5
        noise = rng.normal(0.0, self.update_noise_multiplier * clip_norm, size=base.shape)
        flat_new = base + (total + noise) / denominator
        if self.adaptive_clipping:
            stddev = self.noise_multiplier if self.count_stddev is None else self.count_stddev
            unclipped = (centered + rng.normal(0.0, stddev)) / denominator + 0.5
            clip_norm *= math.exp(-self.clip_learning_rate * (unclipped - self.target_quantile))
        _add_round(events, self.sampling_rate, self.noise_multiplier)
        new_state = {"rule": RULE_NAME, "clip_norm": clip_norm, "events": events,
                     "epsilon": epsilon_spent(events, self.delta), "delta": self.delta}
        return _unflatten(flat_new, current, names), new_state


def _add_round(events: list[list], sampling_rate: float, noise_multiplier: float) -> None:
    """Count one more round of this mechanism (a new entry when the settings changed)."""
    if events and events[-1][:2] == [sampling_rate, noise_multiplier]:
        events[-1][2] += 1
    else:
        events.append([sampling_rate, noise_multiplier, 1])


def _unflatten(flat: np.ndarray, like: Params, names: list[str]) -> Params:
    params, start = {}, 0
    for name in names:
        shape = np.shape(like[name])
        size = int(np.prod(shape))
        params[name] = flat[start : start + size].reshape(shape)
        start += size
    return params


def _positive(value: Any, name: str) -> float:
    return float(check_number(value, name, min_val=0, include_boundaries="neither"))


def _within(value: Any, name: str, *, upper_closed: bool = False) -> float:
    inside = isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value and (value <= 1 if upper_closed else value < 1)
    if not inside:
        raise ValueError(f"{name}={value!r} is outside {'(0, 1]' if upper_closed else '(0, 1)'}; expected a fraction")
    return float(value)


__all__ = ["DPFedAvg", "clip", "epsilon_spent", "privacy_spent", "round_event"]
