"""What a round computes: the next global model from the workers' updates.

:func:`next_global` is a pure function: the worker that aggregates a round
calls it, and tests call it without a cluster.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import SGDRegressor
>>> from fedplugin.adapters import adapter_for
>>> from fedplugin.aggregation import WeightedMean
>>> from fedplugin.store import GlobalModel
>>> current = GlobalModel(3, {"coef_": np.zeros(2), "intercept_": np.zeros(1)}, n_features=2)
>>> updates = [
...     Update("tcp://a", {"coef_": np.array([1.0, 1.0]), "intercept_": np.array([0.0])}, samples=300),
...     Update("tcp://b", {"coef_": np.array([2.0, 4.0]), "intercept_": np.array([1.0])}, samples=100),
... ]
>>> new, excluded = next_global(current, updates, WeightedMean(), adapter_for(SGDRegressor()))
>>> new.version, new.rounds, new.params["coef_"].tolist(), excluded
(4, 1, [1.25, 1.75], [])
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .aggregation import checked_output
from .privacy import DPFedAvg
from .server_optimizers import ServerOptimizer
from .store import SERVER_STATE, GlobalModel


@dataclass
class Update:
    """One worker's contribution to a round.

    Attributes
    ----------
    worker : str
        Address of the worker.
    params : dict of str to ndarray
        Its local parameters when it handed the update over.
    samples : int
        Samples it trained for this round (the weight of ``WeightedMean``).
    state : dict
        The adapter's scalar training state (e.g. SGD's step counter).
    """

    worker: str
    params: dict[str, np.ndarray]
    samples: int
    state: dict[str, float] = field(default_factory=dict)


def is_finite(params: dict[str, np.ndarray]) -> bool:
    """True if every parameter value is finite."""
    return all(bool(np.all(np.isfinite(value))) for value in params.values())


def next_global(
    current: GlobalModel, updates: list[Update], rule: Any, adapter: Any, trigger: str | None = None
) -> tuple[GlobalModel, list[str]]:
    """Combine ``updates`` into the global model that follows ``current``.

    Parameters
    ----------
    current : GlobalModel
        The global model every update is based on.
    updates : list of Update
        One per worker that trained in the round; their order does not matter
        (they are sorted by worker address, so the sums are the same every run).
    rule : callable
        The aggregation rule, ``rule(params_list, weights) -> params``, or a
        :class:`~fedplugin.server_optimizers.ServerOptimizer`, which combines
        with its base rule and then steps from ``current`` with the state in
        ``current.extra["server"]``.
    adapter : ModelAdapter
        The estimator family's adapter (exact families ignore ``rule``).
    trigger : str, optional
        What ended the round (``"change"``: a server optimizer may start its
        state afresh, see :meth:`~fedplugin.ServerOptimizer.state_for`).

    Returns
    -------
    GlobalModel
        Version and round count one more than ``current``'s.
    list of str
        Workers left out because their parameters were not finite.

    Raises
    ------
    ValueError
        If the rule refuses the updates (e.g. too few for ``Bulyan``), returns
        parameters that do not fit ``current`` (other names or shapes, not
        finite), or a server optimizer meets a family combined exactly.
        Nothing has changed then: the caller still holds ``current``.
    """
    check_from_store(current)
    ordered = sorted(updates, key=lambda update: update.worker)
    finite = [update for update in ordered if is_finite(update.params)]
    # An update of no samples that is not finite is an untrained empty state (a
    # MinMaxScaler's +-inf extremes): nothing to combine, nothing to warn about.
    excluded = [update.worker for update in ordered if not is_finite(update.params) and update.samples > 0]
    params, server = current.params, current.extra.get(SERVER_STATE)
    if finite:
        params, server = _combine(current, finite, rule, adapter, trigger)
    return successor(current, params, server, [update.state for update in finite]), excluded


def check_from_store(current: GlobalModel) -> None:
    """Raise ``ValueError`` if ``current`` is a pushed copy, without its server optimizer state."""
    if current.state_in_store:
        raise ValueError(
            f"version {current.version} is a copy pushed to workers, without its server optimizer state; "
            "expected the model from the store"
        )


def successor(
    current: GlobalModel, params: dict[str, np.ndarray], server: Any, states: list[dict[str, float]]
) -> GlobalModel:
    """The model after ``current``: ``params``, the ``server`` state, the mean of the workers' ``states``.

    ``states`` in the order of the workers' addresses; the empty ones are
    skipped, and with none at all ``current``'s state carries over.

    Examples
    --------
    >>> current = GlobalModel(1, {"w": np.zeros(1)}, n_features=1, extra={"state": {"t_": 5.0}})
    >>> new = successor(current, {"w": np.ones(1)}, None, [{"t_": 10.0}, {}, {"t_": 20.0}])
    >>> new.version, new.rounds, new.extra
    (2, 1, {'state': {'t_': 15.0}})
    """
    states = [state for state in states if state]
    state = {key: float(np.mean([s[key] for s in states])) for key in states[0]} if states else current.extra.get("state", {})
    extra: dict[str, Any] = {"state": state}
    if server:
        extra[SERVER_STATE] = server
    return replace(current, version=current.version + 1, params=params, rounds=current.rounds + 1, extra=extra, late=())


def _combine(
    current: GlobalModel, finite: list[Update], rule: Any, adapter: Any, trigger: str | None
) -> tuple[dict[str, np.ndarray], Any]:
    """The new parameters and server optimizer (or privacy) state (``None`` for a plain rule)."""
    if isinstance(rule, DPFedAvg):
        rule.check_family(adapter)
        return rule.combine(current.params, [u.params for u in finite], current.extra.get(SERVER_STATE))
    optimizer = rule if isinstance(rule, ServerOptimizer) else None
    if optimizer is not None and (adapter.exact_aggregation or not adapter.takes_server_optimizer):
        raise ValueError(f"aggregator={rule!r} is a server optimizer, which {type(adapter).__name__} refuses")
    combining = rule if optimizer is None else optimizer.base
    params = adapter.aggregate(combining, [u.params for u in finite], [u.samples for u in finite], current.params)
    params = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
    return server_step(current, rule, params, trigger)


def server_step(
    current: GlobalModel, rule: Any, params: dict[str, np.ndarray], trigger: str | None
) -> tuple[dict[str, np.ndarray], Any]:
    """A server optimizer's step from ``current`` to the combined ``params``, and its new state.

    For a plain ``rule``: ``params`` as they are, and no state (``None``).
    The step must fit ``current`` (see :func:`~fedplugin.aggregation.checked_output`).
    """
    if not isinstance(rule, ServerOptimizer):
        return params, None
    stepped, state = rule.step(current.params, params, rule.state_for(trigger, current.extra.get(SERVER_STATE)))
    return checked_output(rule, stepped, current.params), state
