"""Server optimizers: a round's combined update moves the global model like a gradient step.

After Reddi et al., "Adaptive Federated Optimization", ICLR 2021 (Algorithm 2)
and Hsu et al., "Measuring the Effects of Non-Identical Data Distribution for
Federated Visual Classification", 2019 (FedAvgM). Each optimizer combines the
workers' parameters with a base rule (default :class:`~fedplugin.WeightedMean`)
into ``combined``, takes the pseudo-gradient ``delta = combined - x`` where
``x`` is the current global model, and moves ``x`` by its own rule, per
parameter and per coordinate:

============  ==============================================================
FedAvg        ``x + server_lr * delta``
FedAvgM       ``u = momentum * u + delta``; ``x + server_lr * u``
FedAdagrad    ``m = b1 m + (1 - b1) delta``; ``v = v + delta**2``
FedYogi       ``m`` as above; ``v = v - (1 - b2) delta**2 sign(v - delta**2)``
FedAdam       ``m`` as above; ``v = b2 v + (1 - b2) delta**2``
============  ==============================================================

and the adaptive three step ``x + eta * m / (sqrt(v) + tau)``, starting from
``m = 0`` and ``v = tau**2`` (the paper's ``v_{-1} >= tau**2``).

Their state (``u``, or ``m`` and ``v``) lives in the global model, in
``GlobalModel.extra["server"]`` as ``{"rule": class name, slot: {parameter
name: array}}``: the scheduler's store, checkpoints and restarted workers
carry it. It starts afresh when it does not fit (another optimizer, other
parameter names or shapes), e.g. after ``set_global_model``, or after a
detected change with ``reset_on_change=True`` (:meth:`ServerOptimizer.state_for`).

Examples
--------
>>> import numpy as np
>>> rule = FedAvgM(server_lr=1.0, momentum=0.5)
>>> x, state = {"w": np.array([0.0])}, None
>>> for _ in range(3):   # each round the workers' mean is 1 above the global model
...     x, state = rule.step(x, {"w": x["w"] + 1.0}, state)
...     print(x["w"].tolist(), state["u"]["w"].tolist())
[1.0] [1.0]
[2.5] [1.5]
[4.25] [1.75]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from .aggregation import Aggregator, Params, WeightedMean, as_aggregator
from .checks import check_number
from .user_warning import warn_user

Slots = dict[str, np.ndarray]


class ServerOptimizer(Aggregator):
    """Base class: combine with ``base``, then move the global model by :meth:`ServerOptimizer.update`.

    Subclasses name their state :attr:`slots` and implement the one hook
    :meth:`ServerOptimizer.update`, which sees one parameter at a time. :func:`fedplugin.rounds.next_global`
    calls :meth:`step` with the current global model and its stored state.

    Parameters
    ----------
    base : rule, optional
        How the workers' parameters are combined first: anything
        :func:`~fedplugin.aggregation.as_aggregator` accepts (default
        :class:`~fedplugin.WeightedMean`, which makes ``delta`` FedAvg's).
    reset_on_change : bool, default False
        Start the state afresh in a round that a detected change ended
        (trigger ``"change"``, :class:`~fedplugin.OnChange`).

    Examples
    --------
    A server that steps every coordinate by 0.1 along the sign of ``delta``:

    >>> import numpy as np
    >>> class SignStep(ServerOptimizer):
    ...     def update(self, delta, state):
    ...         return 0.1 * np.sign(delta), state
    >>> SignStep().step({"w": np.zeros(2)}, {"w": np.array([3.0, -0.5])}, None)[0]["w"]
    array([ 0.1, -0.1])
    """

    #: Names of the per-parameter state arrays this optimizer keeps.
    slots: ClassVar[tuple[str, ...]] = ()
    #: It needs the current global model: it cannot be nested in a per-parameter rule.
    needs_global = True
    #: Start the state afresh in a round that a detected change ended (see :meth:`state_for`).
    reset_on_change = False

    def __init__(self, base: Any = None, reset_on_change: bool = False) -> None:
        base = WeightedMean() if base is None else base
        if getattr(base, "needs_global", False):
            raise TypeError(f"base={base!r} is {getattr(base, 'kind', 'a server optimizer')}; expected a rule that combines, such as WeightedMean()")
        if not isinstance(reset_on_change, bool):
            raise TypeError(f"reset_on_change={reset_on_change!r} is not a bool")
        if reset_on_change:  # an attribute only when set: the repr of the others stays as it was
            self.reset_on_change = True
        self.base = as_aggregator(base)

    def __call__(self, updates: Sequence[Params], weights: Sequence[float]) -> Params:
        raise TypeError(
            f"{type(self).__name__} moves the global model, which a plain rule(updates, weights) call "
            "does not see; pass it as the coordinator's aggregator (next_global applies it)"
        )

    def check_names(self, names: Sequence[str]) -> None:
        """Check ``names`` against the base rule (the optimizer itself takes any names)."""
        check = getattr(self.base, "check_names", None)
        if check is not None:
            check(names)

    def initial(self, slot: str, x: np.ndarray) -> np.ndarray:
        """The value of state ``slot`` before the first round (zeros)."""
        return np.zeros_like(x)

    def state_for(self, trigger: str | None, state: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The stored ``state`` to step from in a round ended by ``trigger`` (``None``: afresh).

        Examples
        --------
        >>> import numpy as np
        >>> rule = FedAvgM(momentum=0.5, reset_on_change=True)
        >>> x, state = rule.step({"w": np.zeros(1)}, {"w": np.ones(1)}, None)
        >>> rule.state_for("count", state)["u"], rule.state_for("change", state)
        ({'w': array([1.])}, None)
        """
        return None if self.reset_on_change and trigger == "change" else state

    def update(self, delta: np.ndarray, state: Slots) -> tuple[np.ndarray, Slots]:
        """One parameter's step: ``(what to add to it, its new state)``."""
        raise NotImplementedError

    def step(
        self, current: Params, combined: Params, state: Mapping[str, Any] | None
    ) -> tuple[Params, dict[str, Any]]:
        """The new global parameters and the new state, from ``combined`` and the stored ``state``.

        ``state`` is what an earlier step returned (``None``, or one that does
        not fit ``current``: a fresh start).
        """
        if sorted(combined) != sorted(current):
            raise ValueError(
                f"the combined parameters {sorted(combined)} do not match the global model's {sorted(current)}"
            )
        state = state if self._fits(state, current) else None
        params: Params = {}
        slots: dict[str, Slots] = {slot: {} for slot in self.slots}
        for name, value in current.items():
            x = np.asarray(value, dtype=np.float64)
            own = {slot: self.initial(slot, x) if state is None else state[slot][name] for slot in self.slots}
            change, own = self.update(np.asarray(combined[name], dtype=np.float64) - x, own)
            params[name] = x + change
            for slot in self.slots:
                slots[slot][name] = own[slot]
        return params, ({"rule": type(self).__name__, **slots} if self.slots else {})

    def _fits(self, state: Mapping[str, Any] | None, current: Params) -> bool:
        """True if ``state`` is this optimizer's and its arrays have ``current``'s names and shapes."""
        if not isinstance(state, Mapping) or state.get("rule") != type(self).__name__:
            return False
        for slot in self.slots:
            arrays = state.get(slot)
            if not isinstance(arrays, Mapping) or sorted(arrays) != sorted(current):
                return False
            if any(np.shape(arrays[name]) != np.shape(value) for name, value in current.items()):
                return False
        return True

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "base")
        base = "" if type(self.base) is WeightedMean else f"base={self.base!r}"
        return f"{type(self).__name__}({', '.join(part for part in (args, base) if part)})"


class FedAvg(ServerOptimizer):
    """FedAvg with a server learning rate: ``x + server_lr * (combined - x)``.

    ``server_lr=1`` is plain FedAvg (McMahan et al., AISTATS 2017), exactly
    the base rule's result. ``server_lr = n_workers`` adds up the workers'
    progress instead of averaging it (Reddi et al., ICLR 2021, call it
    ``eta``). ``server_lr < 1`` damps the step: ``0.9`` keeps test-then-train
    accuracy nearest single-process ``partial_fit`` on a drifting stream
    (the strategies guide, "Averaging on a stream").

    Parameters
    ----------
    server_lr : float > 0, default 1.0
    base : rule, optional
        See :class:`ServerOptimizer`.

    Examples
    --------
    >>> import numpy as np
    >>> x = {"w": np.array([1.0, 1.0])}
    >>> FedAvg(server_lr=2.0).step(x, {"w": np.array([2.0, 0.5])}, None)[0]["w"]
    array([3., 0.])
    >>> FedAvg(server_lr=0.9).step(x, {"w": np.array([2.0, 0.0])}, None)[0]["w"]
    array([1.9, 0.1])
    """

    def __init__(self, server_lr: float = 1.0, *, base: Any = None) -> None:
        self.server_lr = _positive(server_lr, "server_lr")
        super().__init__(base)

    def step(self, current: Params, combined: Params, state: Mapping[str, Any] | None) -> tuple[Params, dict[str, Any]]:
        if self.server_lr == 1.0:  # bit for bit the base rule's model
            return {name: np.asarray(combined[name], dtype=np.float64) for name in current}, {}
        return super().step(current, combined, state)

    def update(self, delta: np.ndarray, state: Slots) -> tuple[np.ndarray, Slots]:
        return self.server_lr * delta, state


class FedAvgM(ServerOptimizer):
    """FedAvg with server momentum (Hsu et al., 2019): ``u = momentum * u + delta``; ``x + server_lr * u``.

    Flower's ``FedAvgM(server_learning_rate, server_momentum)``; the step
    lengthens to about ``server_lr / (1 - momentum)`` times ``delta`` while
    the updates agree.

    Parameters
    ----------
    server_lr : float > 0, default 1.0
    momentum : float in [0, 1), default 0.9
    base, reset_on_change : optional
        See :class:`ServerOptimizer`.

    Examples
    --------
    >>> import numpy as np
    >>> rule = FedAvgM(momentum=0.5)
    >>> x, state = rule.step({"w": np.zeros(1)}, {"w": np.ones(1)}, None)   # u = 1
    >>> rule.step(x, {"w": x["w"] + 1.0}, state)[0]["w"]                     # u = 0.5 + 1
    array([2.5])
    """

    slots = ("u",)

    def __init__(
        self, server_lr: float = 1.0, momentum: float = 0.9, *, base: Any = None, reset_on_change: bool = False
    ) -> None:
        self.server_lr = _positive(server_lr, "server_lr")
        self.momentum = _fraction(momentum, "momentum")
        super().__init__(base, reset_on_change)

    def update(self, delta: np.ndarray, state: Slots) -> tuple[np.ndarray, Slots]:
        u = self.momentum * state["u"] + delta
        return self.server_lr * u, {"u": u}


class _Adaptive(ServerOptimizer):
    """Reddi et al.'s Algorithm 2: ``m`` as momentum, ``v`` by :meth:`second_moment`."""

    slots = ("m", "v")

    def __init__(self, base: Any, reset_on_change: bool, **rates: float) -> None:
        for name, value in rates.items():  # in the order of the repr
            setattr(self, name, _positive(value, name) if name in ("eta", "tau") else _fraction(value, name))
        super().__init__(base, reset_on_change)

    def initial(self, slot: str, x: np.ndarray) -> np.ndarray:
        return np.full_like(x, self.tau**2) if slot == "v" else np.zeros_like(x)

    def second_moment(self, v: np.ndarray, squared: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update(self, delta: np.ndarray, state: Slots) -> tuple[np.ndarray, Slots]:
        m = self.beta_1 * state["m"] + (1.0 - self.beta_1) * delta
        v = self.second_moment(state["v"], delta * delta)
        return self.eta * m / (np.sqrt(v) + self.tau), {"m": m, "v": v}


class FedAdagrad(_Adaptive):
    """FedAdagrad (Reddi et al., ICLR 2021): ``v = v + delta**2``.

    Parameters
    ----------
    eta : float > 0, default 0.1
        Server learning rate (Flower's default).
    tau : float > 0, default 1e-3
        Adaptivity: the smaller, the more each coordinate's step is scaled by
        its own history.
    beta_1 : float in [0, 1), default 0.0
        Momentum of ``m``; Adagrad has none (as Flower's ``FedAdagrad``).
    base, reset_on_change : optional
        See :class:`ServerOptimizer`.
    """

    def __init__(
        self, eta: float = 0.1, tau: float = 1e-3, *, beta_1: float = 0.0, base: Any = None, reset_on_change: bool = False
    ) -> None:
        super().__init__(base, reset_on_change, eta=eta, beta_1=beta_1, tau=tau)

    def second_moment(self, v: np.ndarray, squared: np.ndarray) -> np.ndarray:
        return v + squared


class FedYogi(_Adaptive):
    """FedYogi (Reddi et al., ICLR 2021): ``v = v - (1 - beta_2) delta**2 sign(v - delta**2)``.

    Parameters
    ----------
    eta : float > 0, default 0.01
        Server learning rate (Flower's default).
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.99
    tau : float > 0, default 1e-3
    base, reset_on_change : optional
        See :class:`ServerOptimizer`.
    """

    def __init__(
        self, eta: float = 0.01, beta_1: float = 0.9, beta_2: float = 0.99, tau: float = 1e-3, *,
        base: Any = None, reset_on_change: bool = False,
    ) -> None:
        super().__init__(base, reset_on_change, eta=eta, beta_1=beta_1, beta_2=beta_2, tau=tau)

    def second_moment(self, v: np.ndarray, squared: np.ndarray) -> np.ndarray:
        return v - (1.0 - self.beta_2) * squared * np.sign(v - squared)


class FedAdam(_Adaptive):
    """FedAdam (Reddi et al., ICLR 2021): ``v = beta_2 v + (1 - beta_2) delta**2``, no bias correction.

    Parameters
    ----------
    eta : float > 0, default 0.1
        Server learning rate (Flower's default).
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.99
    tau : float > 0, default 1e-3
    base, reset_on_change : optional
        See :class:`ServerOptimizer`.

    Examples
    --------
    >>> import numpy as np
    >>> rule = FedAdam(eta=0.1)
    >>> x, state = rule.step({"w": np.zeros(2)}, {"w": np.array([0.5, -2.0])}, None)
    >>> x["w"].round(4).tolist()    # near eta * sign(delta) at first; tau shortens small steps
    [0.098, -0.0995]
    >>> sorted(state), state["rule"]
    (['m', 'rule', 'v'], 'FedAdam')
    """

    def __init__(
        self, eta: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.99, tau: float = 1e-3, *,
        base: Any = None, reset_on_change: bool = False,
    ) -> None:
        super().__init__(base, reset_on_change, eta=eta, beta_1=beta_1, beta_2=beta_2, tau=tau)

    def second_moment(self, v: np.ndarray, squared: np.ndarray) -> np.ndarray:
        return self.beta_2 * v + (1.0 - self.beta_2) * squared


def check_rule_fits(rule: Any, adapter: Any, estimator: Any, *, given: bool = True) -> None:
    """Refuse a server optimizer (or DPFedAvg) for a family whose parameters are not all weights to step.

    A plain rule ``given`` for a family combined exactly only warns that it
    is ignored.

    Raises
    ------
    ValueError
        If ``rule`` is a :class:`ServerOptimizer` and ``adapter`` combines
        ``estimator``'s parameters exactly (naive Bayes, k-means) or keeps
        counters next to them (``takes_server_optimizer = False``, e.g. a
        :class:`~fedplugin.CandidateSet`'s failure flags and score sums).
    """
    name = type(estimator).__name__
    check_family = getattr(rule, "check_family", None)  # DPFedAvg
    if check_family is not None:
        check_family(adapter, estimator)
        return
    if not isinstance(rule, ServerOptimizer):
        if given and adapter.exact_aggregation:
            message = f"aggregator={rule!r} is ignored: {name} is combined exactly from its sufficient statistics"
            warn_user(message)
        return
    if adapter.exact_aggregation:
        raise ValueError(
            f"aggregator={rule!r} is a server optimizer, but {name} is combined exactly from its "
            f"counts and sums, which a server step would distort; expected no aggregator for {name}"
        )
    if not adapter.takes_server_optimizer:
        raise ValueError(
            f"aggregator={rule!r} is a server optimizer, but {name} keeps counters next to its "
            "parameters, which a server step would distort; expected a plain rule such as WeightedMean()"
        )


def _positive(value: Any, name: str) -> float:
    return float(check_number(value, name, min_val=0, include_boundaries="neither"))


def _fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name}={value!r} is outside [0, 1); expected e.g. 0.9")
    return float(value)
