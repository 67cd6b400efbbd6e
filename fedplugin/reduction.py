"""Partial sums of a round's updates: how a reduction tree combines a mean.

When a round's rule is a mean (:class:`~fedplugin.WeightedMean` or
:class:`~fedplugin.Mean`, alone or as a server optimizer's base), its sum
splits: each group of workers is averaged where it is pulled, into a small
:class:`Partial` (the group's weighted mean in float64 and its weight), the
partials are averaged by weight on the way to the worker that closes the
round, and there :func:`next_global_from` makes the new model. The result is
the model :func:`~fedplugin.rounds.next_global` makes of the flat list of
updates (up to rounding: the sums are taken in another order). Means, not
raw weighted sums, travel up, so no partial can overflow where the flat mean
does not. :mod:`fedplugin.exchange` moves
the partials; everything here is pure.

Examples
--------
>>> import numpy as np
>>> from fedplugin.store import GlobalModel
>>> current = GlobalModel(3, {"w": np.zeros(2)}, n_features=2)
>>> updates = [
...     Update("tcp://a", {"w": np.array([1.0, 1.0])}, samples=300),
...     Update("tcp://b", {"w": np.array([2.0, 4.0])}, samples=100),
...     Update("tcp://c", {"w": np.array([np.nan, 0.0])}, samples=50),
... ]
>>> partial = merged([partial_of(updates[:1], "samples"), partial_of(updates[1:], "samples")])
>>> partial.weight, partial.count, partial.excluded
(400.0, 2, ['tcp://c'])
>>> new, excluded = next_global_from(current, partial, WeightedMean())
>>> new.version, new.params["w"].tolist(), excluded
(4, [1.25, 1.75], ['tcp://c'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .adapters.base import ModelAdapter
from .aggregation import Mean, WeightedMean, checked_output, mean, weighted_mean
from .compression import Codec, received
from .privacy import DPFedAvg
from .rounds import Update, check_from_store, is_finite, server_step, successor
from .server_optimizers import ServerOptimizer
from .store import SERVER_STATE, GlobalModel
from .stragglers import STALENESS_EXPONENT, discount_stale

Params = dict[str, np.ndarray]
#: How the updates of a splittable mean are weighted: by their samples, or all the same.
Weighting = Literal["samples", "equal"]


@dataclass
class Partial:
    """A group's updates averaged: what a head of the reduction tree sends up.

    Attributes
    ----------
    means : dict of str to ndarray
        ``sum(w_i * params_i) / sum(w_i)`` over the finite updates, in
        float64; the plain mean when their weights add up to 0
        (``WeightedMean`` falls back to the plain mean then).
    weight : float
        ``sum(w_i)``.
    count : int
        Finite updates summed.
    samples : int
        Their samples.
    workers : list of str
        Workers whose update was pulled and not excluded (as ``RoundSummary.workers``).
    excluded : list of str
        Workers whose parameters were not finite (and who trained samples).
    missing : list of str
        Workers whose update could not be pulled (lost, or none held).
    states : list of (str, dict)
        Each summed update's worker and training state.
    bytes_sent, bytes_raw : int
        Bytes of the updates as sent (compressed or not) and uncompressed.
    """

    means: Params = field(default_factory=dict)
    weight: float = 0.0
    count: int = 0
    samples: int = 0
    workers: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    states: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    bytes_sent: int = 0
    bytes_raw: int = 0


def splittable(rule: Any, adapter: ModelAdapter) -> Weighting | None:
    """How ``rule``'s updates are weighted if their combination is a sum that groups can split, else ``None``.

    Only the plain means split (the rule itself, or a server optimizer's
    base), and only for a family that leaves combining to the rule: one that
    combines exactly, or overrides ``aggregate`` (composites, candidate sets),
    needs every update at once, as do robust rules and :class:`~fedplugin.DPFedAvg`.

    Examples
    --------
    >>> from sklearn.linear_model import SGDClassifier
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from fedplugin.adapters import adapter_for
    >>> from fedplugin.aggregation import Median
    >>> from fedplugin.server_optimizers import FedAvgM
    >>> sgd = adapter_for(SGDClassifier())
    >>> splittable(WeightedMean(), sgd), splittable(FedAvgM(base=Mean()), sgd)
    ('samples', 'equal')
    >>> splittable(Median(), sgd), splittable(WeightedMean(), adapter_for(GaussianNB()))
    (None, None)
    """
    if isinstance(rule, DPFedAvg) or adapter.exact_aggregation or type(adapter).aggregate is not ModelAdapter.aggregate:
        return None
    if isinstance(rule, ServerOptimizer):
        if not adapter.takes_server_optimizer:
            return None  # the flat path refuses it with its usual error
        rule = rule.base
    # Exactly these: a subclass may redefine what it computes.
    if type(rule) is WeightedMean or rule is weighted_mean:
        return "samples"
    if type(rule) is Mean or rule is mean:
        return "equal"
    return None


def group_size(members: int, fan_in: int) -> int:
    """Workers per group when ``members`` workers (more than ``fan_in``) are split for a reduction tree.

    The smallest power of ``fan_in`` that makes at most ``fan_in`` groups:
    groups are cut from the sorted workers in runs of that size, so the
    groups summed first (``fan_in`` workers each) are the same however deep
    the tree.

    Examples
    --------
    >>> group_size(9, 8), group_size(64, 8), group_size(65, 8), group_size(5, 2)
    (8, 8, 64, 4)
    """
    if fan_in < 2:
        raise ValueError(f"fan_in={fan_in!r} cannot make a tree; expected an int >= 2")
    size = fan_in
    while -(-members // size) > fan_in:  # ceil(members / size) groups
        size *= fan_in
    return size


def groups_of(members: list[str], fan_in: int) -> list[list[str]]:
    """How a reduction tree splits ``members`` (sorted): ``[members]`` if they are pulled at once.

    Up to ``fan_in + 1`` members are pulled at once (splitting one off would
    save nothing). More are cut into runs of :func:`group_size` members; a
    lone member left over at the leaves joins the group before it.

    Examples
    --------
    >>> [len(group) for group in groups_of(list(range(9)), 8)]
    [9]
    >>> [len(group) for group in groups_of(list(range(10)), 8)]
    [8, 2]
    >>> [len(group) for group in groups_of(list(range(17)), 8)]
    [8, 9]
    >>> [len(group) for group in groups_of(list(range(65)), 8)]
    [64, 1]
    """
    if len(members) <= fan_in + 1:
        return [list(members)]
    size = group_size(len(members), fan_in)
    groups = [list(members[i : i + size]) for i in range(0, len(members), size)]
    if size == fan_in and len(groups[-1]) == 1:
        groups[-2].extend(groups.pop())
    return groups


def decoded(
    pulled: list[dict[str, Any]], reference: Params, adapter: ModelAdapter, codec: Codec | None,
    exponent: float = STALENESS_EXPONENT,
) -> tuple[list[Update], int, int]:
    """The pulled updates decoded against the round's ``reference`` parameters, stale ones discounted.

    Also returns their bytes as sent and uncompressed.
    """
    updates, sent, raw = [], 0, 0
    for update in pulled:
        params, sent_nbytes, raw_nbytes = received(update, reference, codec)
        if update.get("staleness", 0) > 0 and not adapter.exact_aggregation:
            params = discount_stale(params, reference, update["staleness"], exponent)
        updates.append(Update(update["worker"], params, update["samples"], update["state"]))
        sent, raw = sent + sent_nbytes, raw + raw_nbytes
    return updates, sent, raw


def partial_of(updates: list[Update], weighting: Weighting) -> Partial:
    """Average ``updates`` into a :class:`Partial`, leaving out the non-finite ones as ``next_global`` does.

    Raises
    ------
    ValueError
        If an update's samples, its weight, are negative or not finite (the
        same error as the flat path's ``weighted_mean``).
    """
    ordered = sorted(updates, key=lambda update: update.worker)
    ok = [is_finite(update.params) for update in ordered]
    finite = [update for update, fine in zip(ordered, ok) if fine]
    partial = Partial(
        count=len(finite), samples=int(sum(update.samples for update in finite)),
        # A non-finite update of no samples is an untrained empty state: skipped, not excluded.
        workers=[u.worker for u, fine in zip(ordered, ok) if fine or u.samples <= 0],
        excluded=[u.worker for u, fine in zip(ordered, ok) if not fine and u.samples > 0],
        states=[(update.worker, update.state) for update in finite],
    )
    if not finite:
        return partial
    weights = [u.samples if weighting == "samples" else 1.0 for u in finite]
    # The group's weighted mean, with the flat path's checks and its plain-mean fallback
    # when no update trained samples: a mean, not a weighted sum, travels up (no overflow).
    partial.means = weighted_mean([u.params for u in finite], weights)
    partial.weight = float(np.sum(weights))
    return partial


def merged(partials: list[Partial]) -> Partial:
    """One :class:`Partial` of several groups' (in the order of their workers).

    The groups' means are averaged by their weights. Partials of weight 0
    carry plain means: they count only if every group's weight is 0 (then
    the mean is the plain one, by the groups' numbers of updates), and add
    nothing otherwise.
    """
    summed = [p for p in partials if p.count]
    if any(p.weight > 0 for p in summed):
        summed = [p for p in summed if p.weight > 0]
        weights = [p.weight for p in summed]
    else:
        weights = [p.count for p in summed]
    means = weighted_mean([p.means for p in summed], weights) if summed else {}
    listed = {key: [item for p in partials for item in getattr(p, key)] for key in ("workers", "excluded", "missing", "states")}
    return Partial(
        means=means, weight=float(sum(p.weight for p in partials)), count=sum(p.count for p in partials),
        samples=sum(p.samples for p in partials), bytes_sent=sum(p.bytes_sent for p in partials),
        bytes_raw=sum(p.bytes_raw for p in partials), **listed,
    )


def next_global_from(
    current: GlobalModel, partial: Partial, rule: Any, trigger: str | None = None
) -> tuple[GlobalModel, list[str]]:
    """The model :func:`~fedplugin.rounds.next_global` makes of the updates ``partial`` sums, and the excluded workers.

    ``rule`` is the round's rule (a mean, or a server optimizer over one,
    which steps from ``current`` to the mean); ``trigger`` as for ``next_global``.
    """
    check_from_store(current)
    params, server = current.params, current.extra.get(SERVER_STATE)
    if partial.count:
        # Checked as the flat path checks the rule's output (e.g. a mean that overflowed).
        means = checked_output(rule, partial.means, current.params)
        means = {name: np.asarray(mean, dtype=np.float64) for name, mean in means.items()}
        params, server = server_step(current, rule, means, trigger)
    states = [state for _, state in sorted(partial.states, key=lambda item: item[0])]
    return successor(current, params, server, states), sorted(partial.excluded)
