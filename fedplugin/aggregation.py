"""Rules that combine the workers' parameters into one global model.

Every rule is a pure function of a sequence of parameter dicts (one per worker,
``{name: ndarray}``) and a weight per worker (the samples it trained since the
last round). The small classes only choose and configure a function, so any
callable ``rule(updates, weights) -> dict`` works wherever an aggregator is
expected, and a ``{parameter name: rule}`` mapping gives each parameter its own
rule.

Examples
--------
>>> import numpy as np
>>> updates = [{"w": np.array([0.0, 2.0])}, {"w": np.array([4.0, 6.0])}]
>>> WeightedMean()(updates, [3, 1])["w"]
array([1., 3.])
>>> Mean()(updates, [3, 1])["w"]
array([2., 4.])
>>> rule = as_aggregator({"w": Median()})
>>> rule(updates + [{"w": np.array([100.0, 100.0])}], [1, 1, 1])["w"]
array([4., 6.])
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .checks import check_number
from .wording import count

Params = dict[str, np.ndarray]
Rule = Callable[[Sequence[Params], Sequence[float]], Params]


def _stack(updates: Sequence[Params], name: str) -> np.ndarray:
    return np.stack([np.asarray(update[name], dtype=np.float64) for update in updates])


def _check_updates(updates: Sequence[Params], weights: Sequence[float]) -> np.ndarray:
    if len(updates) == 0:
        raise ValueError("cannot aggregate zero updates; expected at least one worker")
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(updates),):
        raise ValueError(
            f"got {count(weights.shape[0], 'weight') if weights.ndim else 'a scalar weight'} for "
            f"{count(len(updates), 'update')}; expected one weight per update"
        )
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError(f"weights={weights.tolist()} must be finite and >= 0")
    return weights


def weighted_mean(updates: Sequence[Params], weights: Sequence[float]) -> Params:
    """Average each parameter, weighting worker ``i`` by ``weights[i]`` (FedAvg).

    McMahan et al., "Communication-Efficient Learning of Deep Networks from
    Decentralized Data", AISTATS 2017. Falls back to the plain mean when all
    weights are zero.
    """
    weights = _check_updates(updates, weights)
    if weights.sum() == 0:
        weights = np.ones_like(weights)
    weights = weights / weights.sum()
    return {
        name: np.tensordot(weights, _stack(updates, name), axes=1) for name in updates[0]
    }


def mean(updates: Sequence[Params], weights: Sequence[float] | None = None) -> Params:
    """Average each parameter with every worker counting the same."""
    return weighted_mean(updates, np.ones(len(updates)))


def median(updates: Sequence[Params], weights: Sequence[float] | None = None) -> Params:
    """Coordinate-wise median; weights are ignored.

    Yin et al., "Byzantine-Robust Distributed Learning: Towards Optimal
    Statistical Rates", ICML 2018.
    """
    _check_updates(updates, np.ones(len(updates)))
    return {name: np.median(_stack(updates, name), axis=0) for name in updates[0]}


def trimmed_mean(
    updates: Sequence[Params], weights: Sequence[float] | None = None, *, beta: float = 0.1
) -> Params:
    """Coordinate-wise mean after dropping the ``floor(beta * n)`` lowest and highest values.

    Yin et al., "Byzantine-Robust Distributed Learning: Towards Optimal
    Statistical Rates", ICML 2018. Weights are ignored.
    """
    _check_beta(beta)
    _check_updates(updates, np.ones(len(updates)))
    n_trim = int(np.floor(beta * len(updates)))
    result = {}
    for name in updates[0]:
        values = np.sort(_stack(updates, name), axis=0)
        result[name] = values[n_trim : len(updates) - n_trim].mean(axis=0)
    return result


def krum(
    updates: Sequence[Params], weights: Sequence[float] | None = None, *, n_byzantine: int = 1
) -> Params:
    """Pick the update closest to its ``n - f - 2`` nearest neighbours (Krum).

    Blanchard et al., "Machine Learning with Adversaries: Byzantine Tolerant
    Gradient Descent", NeurIPS 2017. Distances are over all parameters
    flattened together. Needs ``n > 2 * f + 2`` workers for its guarantee; with
    fewer it still picks the most central update. Weights are ignored.
    """
    _check_updates(updates, np.ones(len(updates)))
    if n_byzantine < 0:
        raise ValueError(f"n_byzantine={n_byzantine} must be >= 0")
    flat = np.stack(
        [np.concatenate([np.ravel(update[name]) for name in updates[0]]) for update in updates]
    )
    distances = ((flat[:, None, :] - flat[None, :, :]) ** 2).sum(axis=-1)
    n_neighbours = max(1, len(updates) - n_byzantine - 2)
    scores = [np.sort(np.delete(row, i))[:n_neighbours].sum() for i, row in enumerate(distances)]
    chosen = updates[int(np.argmin(scores))]
    return {name: np.array(value, dtype=np.float64) for name, value in chosen.items()}


def _check_beta(beta: float) -> None:
    if not (isinstance(beta, (int, float)) and 0 <= beta < 0.5):
        raise ValueError(f"beta={beta!r} is outside [0, 0.5); expected a fraction such as 0.1")


class Aggregator:
    """Base class of the configured rules: subclasses implement ``__call__(updates, weights)``."""

    def __call__(self, updates: Sequence[Params], weights: Sequence[float]) -> Params:
        raise NotImplementedError

    def check_names(self, names: Sequence[str]) -> None:
        """Raise ``ValueError`` if the rule cannot combine parameters called ``names``."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class WeightedMean(Aggregator):
    """FedAvg: the mean weighted by samples trained since the last round."""

    def __call__(self, updates, weights):
        return weighted_mean(updates, weights)


class Mean(Aggregator):
    """The plain mean: every worker counts the same."""

    def __call__(self, updates, weights):
        return mean(updates, weights)


class Median(Aggregator):
    """Coordinate-wise median (Yin et al., ICML 2018)."""

    def __call__(self, updates, weights):
        return median(updates, weights)


class TrimmedMean(Aggregator):
    """Coordinate-wise trimmed mean (Yin et al., ICML 2018).

    Parameters
    ----------
    beta : float in [0, 0.5)
        Fraction of workers trimmed at each end, per coordinate.
    """

    def __init__(self, beta: float = 0.1):
        _check_beta(beta)
        self.beta = beta

    def __call__(self, updates, weights):
        return trimmed_mean(updates, weights, beta=self.beta)


class Krum(Aggregator):
    """Krum (Blanchard et al., NeurIPS 2017): keep the most central worker's update.

    Parameters
    ----------
    n_byzantine : int
        How many workers may be faulty or malicious.
    """

    def __init__(self, n_byzantine: int = 1):
        check_number(n_byzantine, "n_byzantine", numbers.Integral, min_val=0)
        self.n_byzantine = n_byzantine

    def __call__(self, updates, weights):
        return krum(updates, weights, n_byzantine=self.n_byzantine)


class PerParameter(Aggregator):
    """Give each parameter its own rule, e.g. median for ``coef_``, mean for ``intercept_``.

    Parameters
    ----------
    rules : mapping of str to rule
        Parameter name to aggregator (any ``rule(updates, weights)`` callable).
    default : rule, optional
        Used for parameters not named in ``rules``. Without it every parameter
        must be named.
    """

    def __init__(self, rules: Mapping[str, Rule], default: Rule | None = None):
        self.rules = {name: nestable(rule, f"rules[{name!r}]") for name, rule in rules.items()}
        self.default = None if default is None else nestable(default, "default")

    def check_names(self, names: Sequence[str]) -> None:
        unknown = sorted(set(self.rules) - set(names))
        missing = sorted(set(names) - set(self.rules)) if self.default is None else []
        if unknown or missing:
            raise ValueError(
                f"per-parameter aggregator does not match the model: unknown names "
                f"{unknown}, names without a rule {missing}; the model's parameters are "
                f"{sorted(names)}"
            )

    def __call__(self, updates, weights):
        self.check_names(list(updates[0]))
        result = {}
        for name in updates[0]:
            rule = self.rules.get(name, self.default)
            result[name] = rule([{name: update[name]} for update in updates], weights)[name]
        return result


def rule_label(rule: Any) -> str:
    """How messages name ``rule``: a function by its name, anything else by its repr.

    Examples
    --------
    >>> rule_label(median), rule_label(TrimmedMean(beta=0.2)), rule_label(lambda u, w: u[0])
    ('median', 'TrimmedMean(beta=0.2)', '<lambda>')
    """
    return rule.__qualname__ if inspect.isroutine(rule) else repr(rule)


def checked_output(rule: Any, combined: Any, reference: Mapping[str, Any]) -> Params:
    """``combined``, what ``rule`` returned, as arrays; ``ValueError`` unless it fits ``reference``.

    A rule's output becomes the global model every worker loads: it must have
    exactly the ``reference`` (global) model's parameter names, each of its
    shape, real numbers and finite (the updates it combined are). Rounds
    check every rule's output with it before publishing anything.

    Parameters
    ----------
    rule : callable
        The rule, named in the message.
    combined : dict of str to array-like
        What it returned.
    reference : dict of str to ndarray
        The global model's parameters.

    Returns
    -------
    dict of str to ndarray
        ``combined`` with every value as a numpy array.

    Raises
    ------
    ValueError
        Naming the rule, the parameter, what it returned and what was expected.

    Examples
    --------
    >>> reference = {"w": np.zeros(2)}
    >>> checked_output(mean, {"w": [1, 2]}, reference)["w"]
    array([1, 2])
    >>> checked_output(mean, {"w": np.zeros(3)}, reference)
    Traceback (most recent call last):
    ...
    ValueError: aggregator mean returned 'w' of shape (3,); expected shape (2,), as the global model's 'w'
    """
    label = rule_label(rule)
    if not isinstance(combined, Mapping):
        raise ValueError(
            f"aggregator {label} returned a {type(combined).__name__}; expected a dict of parameter name to "
            f"array with the global model's names {_names(reference)}"
        )
    missing, unknown = set(reference) - set(combined), set(combined) - set(reference)
    if missing or unknown:
        wrong = ", ".join(f"{kind} {_names(keys)}" for kind, keys in (("missing", missing), ("unknown", unknown)) if keys)
        raise ValueError(
            f"aggregator {label} returned the parameters {_names(combined)} ({wrong}); "
            f"expected exactly the global model's {_names(reference)}"
        )
    return {name: _checked_value(label, name, combined[name], np.shape(expected)) for name, expected in reference.items()}


def _names(keys: Any) -> str:
    """Parameter names as a sorted list, whatever their type (a rule may return any keys)."""
    return f"[{', '.join(sorted(map(repr, keys)))}]"


def _checked_value(label: str, name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:  # e.g. a ragged list
        raise ValueError(f"aggregator {label} returned {name!r} that is no array ({exc}); expected an array of shape {shape}") from exc
    if array.dtype.kind not in "biuf":
        raise ValueError(f"aggregator {label} returned {name!r} of dtype {array.dtype}; expected real numbers")
    if array.shape != shape:
        raise ValueError(
            f"aggregator {label} returned {name!r} of shape {array.shape}; expected shape {shape}, as the global model's {name!r}"
        )
    bad = array.size - int(np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ValueError(
            f"aggregator {label} returned {name!r} with {count(bad, 'non-finite value')} (of {array.size}); "
            "expected finite numbers, as the updates it combined are"
        )
    return array


def nestable(obj: Any, where: str) -> Rule:
    """:func:`as_aggregator`, refusing a server optimizer (it needs the whole global model).

    Raises
    ------
    TypeError
        If ``obj`` is a server optimizer such as ``FedAdam()``; ``where`` names
        the place it was given.
    """
    rule = as_aggregator(obj)
    if getattr(rule, "needs_global", False):
        raise TypeError(
            f"{where}={rule!r} is {getattr(rule, 'kind', 'a server optimizer')}, which steps the whole global "
            "model; expected a plain rule here: pass it as the aggregator (a server optimizer takes base= for this rule)"
        )
    return rule


def as_aggregator(obj: Any) -> Rule:
    """Turn a rule, a callable or a ``{name: rule}`` mapping into an aggregator.

    Raises
    ------
    TypeError
        If ``obj`` is none of these.
    """
    if isinstance(obj, Mapping):
        return PerParameter(obj)
    if isinstance(obj, type) and issubclass(obj, Aggregator):
        raise TypeError(f"aggregator={obj.__name__} is a class; expected an instance such as {obj.__name__}()")
    if callable(obj):
        return obj
    raise TypeError(
        f"aggregator={obj!r} is not usable; expected an Aggregator such as WeightedMean(), "
        "a callable rule(updates, weights) -> dict, or a {parameter name: rule} mapping"
    )
