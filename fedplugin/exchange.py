"""The aggregation of a round, run on a worker: updates move worker to worker.

The coordinator asks one worker to close a round with
``client.run(close_round, ..., workers=[aggregator])``. That worker, on its
event loop (no thread slot needed, so it never waits behind a training task):

1. pulls every participant's update through its ``fedplugin_handover``
   handler (Dask's worker-to-worker comms; nothing crosses the client);
   with more than :data:`FAN_IN` + 1 participants and a rule whose sum splits
   (a mean, see :func:`~fedplugin.reduction.splittable`), as a reduction
   tree: the first worker of each group pulls its group's updates through
   ``fedplugin_reduce`` and sends up their partial mean and weight;
2. combines them with :func:`~fedplugin.rounds.next_global` (the partial
   means with :func:`~fedplugin.reduction.next_global_from`);
3. stores the new global model on the scheduler (for restarting workers, and
   so that a retry after this worker died pushes the same model again): the
   store keeps only the first version ``b + 1`` it is given, so a round is
   never combined twice;
4. pushes it to every worker through ``fedplugin_forward``, as a fan-out tree
   when there are many workers: each worker it sends to forwards the model to
   its share of the rest.

It returns a small :class:`RoundSummary`: all the client receives.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
import functools
from typing import Any

from distributed.protocol import Serialize, to_serialize

from . import store
from .compression import Codec
from .privacy import privacy_spent
from .reduction import (
    Params, Partial, Weighting, decoded, groups_of, merged, next_global_from, partial_of, splittable,
)
from .rounds import next_global
from .store import GlobalModel
from .stragglers import STALENESS_EXPONENT

#: Workers one worker sends a new global model to directly; the rest get it from them.
FAN_OUT = 8
#: Updates (or partial means) one worker pulls and averages when a round's mean is taken as a tree.
FAN_IN = 8


@dataclass
class RoundSummary:
    """What the aggregating worker tells the coordinator about a round.

    Attributes
    ----------
    version, rounds : int
        The new global model's version and round count.
    workers : list of str
        Workers whose updates were combined.
    excluded : list of str
        Workers left out because their parameters were not finite.
    missing : list of str
        Participants whose update could not be fetched (the worker was lost):
        their blocks must be trained again.
    everyone : list of str
        The cluster's workers when the model was pushed.
    bytes_up, bytes_down : int
        Parameter bytes pulled from the participants (as sent, compressed or
        not; with a reduction tree, by the heads of their groups) and pushed
        to the workers.
    bytes_up_raw : int
        The bytes of the pulled updates uncompressed (``bytes_up`` without a codec).
    seconds : float
        Time the aggregating worker spent, of which ``pull_seconds`` fetching
        the updates (through the whole reduction tree, when there is one:
        decoding and summing the groups included), ``combine_seconds``
        computing the new model and
        ``push_seconds`` storing it and pushing it to every worker.
    epsilon : float or None
        Privacy spent so far, with :class:`~fedplugin.DPFedAvg` (else ``None``).
    """

    version: int
    rounds: int
    workers: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    everyone: list[str] = field(default_factory=list)
    bytes_up: int = 0
    bytes_down: int = 0
    bytes_up_raw: int = 0
    seconds: float = 0.0
    pull_seconds: float = 0.0
    combine_seconds: float = 0.0
    push_seconds: float = 0.0
    epsilon: float | None = None


async def close_round(
    name: str, base: int, participants: list[str], rule: Any, current: bool = False, codec: Codec | None = None,
    late: tuple[str, ...] = (), staleness_exponent: float = STALENESS_EXPONENT, trigger: str | None = None,
    fan_in: int | None = None, retry: bool = False, dask_worker: Any = None,
) -> RoundSummary:
    """``client.run`` on the aggregating worker: round ``base`` becomes version ``base + 1``.

    ``current``: a participant with no update for the round hands over its
    model as it is now (a manual :meth:`~fedplugin.Coordinator.synchronize`).
    ``codec``: the participants send their updates compressed with it
    (:mod:`fedplugin.compression`). ``late``: workers still training for the
    round, whose progress joins a later one (:mod:`fedplugin.stragglers`),
    where it is discounted by its staleness with ``staleness_exponent``.
    ``trigger``: what ended the round, for the rule (see :func:`~fedplugin.rounds.next_global`).
    ``fan_in``: the reduction tree's group size (default :data:`FAN_IN`).
    ``retry``: an earlier attempt's worker was lost, so the store (not this
    worker's copy) says whether that attempt stored version ``base + 1``; if
    one did, that model is pushed again and its record returned, never a second one.
    """
    fan_in = _checked_fan_in(fan_in)
    loop = asyncio.get_running_loop()
    start = loop.time()
    plugin = dask_worker.plugins[name]
    reference = await _round_model(dask_worker, name, base, stored=retry)
    if reference.version == base + 1:  # an earlier attempt stored it, then was lost while pushing it
        return await _push_again(name, reference, participants, dask_worker, start)
    weighting = splittable(rule, plugin.adapter) if len(groups_of(participants, fan_in)) > 1 else None
    if weighting is None:
        pulling = _pull_all(dask_worker, participants, name, base, current, codec)
    else:
        job = Job(name, base, current, codec, staleness_exponent, weighting, fan_in)
        pulling = reduce_group(dask_worker, job, sorted(participants), reference.params)
    everyone, pulled = await asyncio.gather(store.worker_addresses_from(dask_worker), pulling, return_exceptions=True)
    if isinstance(pulled, RoundClosed):  # a group head already merged base + 1: an earlier attempt stored it
        return await _push_stored(name, base, participants, dask_worker, start)
    for answer in (everyone, pulled):
        if isinstance(answer, BaseException):
            raise answer
    pulled_at = loop.time()
    # Combining a large model takes a while: in a thread, so this event loop
    # keeps answering (numpy releases the GIL for the arithmetic).
    combining = (
        functools.partial(_combine, reference, *pulled, rule, plugin.adapter, codec, staleness_exponent, trigger)
        if weighting is None else functools.partial(_combine_sums, reference, pulled, rule, trigger)
    )
    new, sums, payload = await loop.run_in_executor(None, _stored, combining, tuple(late))
    combined = loop.time()
    # Stored first: if this worker dies while pushing, a retry finds the model
    # in the store and pushes it again. An earlier attempt's came first: push that.
    if not await store.worker_put(dask_worker, name, new.version, payload):
        return await _push_stored(name, base, participants, dask_worker, start)
    sent = await broadcast(name, new, everyone, dask_worker=dask_worker)
    return RoundSummary(
        version=new.version, rounds=new.rounds, workers=sorted(sums.workers), excluded=sums.excluded,
        missing=sums.missing, everyone=everyone, bytes_up=sums.bytes_sent, bytes_down=new.nbytes() * sent,
        bytes_up_raw=sums.bytes_raw, seconds=loop.time() - start, pull_seconds=pulled_at - start,
        combine_seconds=combined - pulled_at, push_seconds=loop.time() - combined, epsilon=privacy_spent(new),
    )


def _checked_fan_in(fan_in: int | None) -> int:
    """``fan_in``, :data:`FAN_IN` for ``None``; anything but an int >= 2 is refused."""
    fan_in = FAN_IN if fan_in is None else fan_in
    if isinstance(fan_in, bool) or not isinstance(fan_in, int) or fan_in < 2:
        raise ValueError(f"fan_in={fan_in!r} cannot make a reduction tree; expected an int >= 2")
    return fan_in


async def _held_or_stored(worker: Any, name: str, base: int, server_state: bool = False) -> GlobalModel | None:
    """Version ``base`` of the global model if this worker holds it, else the store's newest (or ``None``).

    ``server_state``: a held copy will not do if it lacks its server
    optimizer's state (pushed copies do; the store keeps it).
    """
    model = worker.plugins[name].global_model
    if model is None or model.version != base or (server_state and model.state_in_store):
        model = await store.worker_fetch(worker, name)
    return model


class RoundClosed(RuntimeError):
    """A worker of a round's reduction tree holds a newer global model: an earlier attempt closed the round."""


async def _round_model(worker: Any, name: str, base: int, stored: bool = False) -> GlobalModel:
    """The global model of version ``base`` with its server state, or ``base + 1`` if an earlier attempt stored it.

    ``stored``: the store's model, whatever this worker holds.
    """
    model = await (store.worker_fetch(worker, name) if stored else _held_or_stored(worker, name, base, server_state=True))
    if model is None or model.version not in (base, base + 1):
        found = None if model is None else model.version
        raise RuntimeError(
            f"round {base} cannot close: the stored global model of {name!r} is version {found}; another "
            "coordinator, set_global_model or fedplugin.forget changed it meanwhile (train a plugin name from one coordinator at a time)"
        )
    return model


async def _push_stored(name: str, base: int, participants: list[str], worker: Any, start: float) -> RoundSummary:
    """An earlier attempt closed round ``base`` (the store refused this one's model, or a group head merged it): push its model."""
    model = await _round_model(worker, name, base, stored=True)
    if model.version != base + 1:
        raise RuntimeError(f"round {base} of {name!r} was closed, yet the store holds version {model.version}")
    return await _push_again(name, model, participants, worker, start)


async def _push_again(name: str, model: GlobalModel, participants: list[str], worker: Any, start: float) -> RoundSummary:
    """Push the stored ``model`` again; the summary is that of the attempt that combined it.

    A participant it did not combine (nor exclude) was missing then: its
    blocks are trained again.
    """
    everyone = await store.worker_addresses_from(worker)
    sent = await broadcast(name, model, everyone, dask_worker=worker)
    seconds = asyncio.get_running_loop().time() - start
    missing = [p for p in sorted(participants) if p not in model.combined and p not in model.excluded]
    return RoundSummary(
        version=model.version, rounds=model.rounds, workers=sorted(model.combined), excluded=list(model.excluded),
        missing=missing, everyone=everyone, bytes_down=model.nbytes() * sent, seconds=seconds, push_seconds=seconds,
        epsilon=privacy_spent(model),
    )


def _stored(combining: Any, late: tuple[str, ...]) -> tuple[GlobalModel, Partial, bytes]:
    """The new model (marking the ``late`` workers and recording who it combined), its record of updates, its stored bytes."""
    new, sums = combining()
    new = replace(new, late=late, combined=tuple(sorted(sums.workers)), excluded=tuple(sums.excluded))
    return new, sums, new.to_bytes()


def _combine(
    reference: GlobalModel, pulled: list[dict[str, Any]], missing: list[str], rule: Any, adapter: Any,
    codec: Codec | None, exponent: float = STALENESS_EXPONENT, trigger: str | None = None,
) -> tuple[GlobalModel, Partial]:
    """The new model of the flat list of pulled updates, and a record of them (only its lists and bytes are set).

    ``exponent`` discounts a stale update.
    """
    updates, sent, raw = decoded(pulled, reference.params, adapter, codec, exponent)
    new, excluded = next_global(reference, updates, rule, adapter, trigger)
    workers = [u.worker for u in updates if u.worker not in excluded]
    return new, Partial(workers=workers, excluded=excluded, missing=missing, bytes_sent=sent, bytes_raw=raw)


def _combine_sums(reference: GlobalModel, sums: Partial, rule: Any, trigger: str | None) -> tuple[GlobalModel, Partial]:
    """The new model of the round's partial means, and the partial they make up."""
    new, sums.excluded = next_global_from(reference, sums, rule, trigger)
    return new, sums


async def _pull_all(
    worker: Any, members: list[str], name: str, base: int, current: bool, codec: Codec | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every member's update as sent, and the members whose update is missing."""
    answers = await asyncio.gather(*(_pull(worker, m, name, base, current, codec) for m in members), return_exceptions=True)
    # A participant that cannot be reached, or no longer holds its update (it
    # restarted), was lost: its blocks are trained again. Any other failure is
    # a bug or a user error: it must not be retried quietly.
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, OSError):
            raise answer
    missing = [m for m, a in zip(members, answers) if a is None or isinstance(a, OSError)]
    return [a for a in answers if isinstance(a, dict)], missing


async def _pull(worker: Any, address: str, name: str, base: int, current: bool, codec: Codec | None) -> dict | None:
    """One participant's update for round ``base``, as it sent it (``None``: it has none)."""
    if address == worker.address:  # no need to pickle what is already here
        return worker.plugins[name].update_for(base, current, codec)
    # to_serialize: a codec is no msgpack type
    wrapped = None if codec is None else to_serialize(codec)
    return unwrap(await worker.rpc(address).fedplugin_handover(name=name, base=base, current=current, codec=wrapped))


# ------------------------------------------------------------ reduction tree
@dataclass(frozen=True)
class Job:
    """What every worker of a round's reduction tree needs to know (see :func:`reduce_group`)."""

    name: str
    base: int
    current: bool
    codec: Codec | None
    exponent: float
    weighting: Weighting
    fan_in: int


async def reduce_group(
    worker: Any, job: Job, members: list[str], reference: Params | None = None, lost: frozenset[str] = frozenset()
) -> Partial:
    """The partial means of the updates of ``members`` (sorted), pulled to ``worker`` or through group heads.

    Members are split by :func:`~fedplugin.reduction.groups_of`: a group
    pulled at once is pulled here; otherwise the group that holds this worker,
    or of one member, is reduced here, and each other group's first member
    reduces it through its ``fedplugin_reduce`` handler. A head that cannot be
    reached is lost (its update is missing, its blocks are trained again):
    its group is reduced here without it, never asked again (each attempt to
    reach a dead worker waits for Dask's connect timeout). ``reference``: the
    round's global parameters, fetched if not given; ``lost``: workers known
    to be unreachable.
    """
    if reference is None:
        reference = await _reference(worker, job.name, job.base)
    loop = asyncio.get_running_loop()
    groups = groups_of(members, job.fan_in)
    if len(groups) == 1:
        reachable = [m for m in members if m not in lost]
        pulled, missing = await _pull_all(worker, reachable, job.name, job.base, job.current, job.codec)
        partial = await loop.run_in_executor(None, _leaf, pulled, reference, worker.plugins[job.name].adapter, job)
        partial.missing = sorted(missing + [m for m in members if m in lost])
        return partial
    answers = await asyncio.gather(
        *(_reduce_at_head(worker, job, group, reference, lost) for group in groups), return_exceptions=True
    )
    for answer in answers:  # every group has finished: none still pulls after a failure
        if isinstance(answer, BaseException):
            raise answer
    return await loop.run_in_executor(None, merged, list(answers))


async def _reduce_at_head(worker: Any, job: Job, group: list[str], reference: Params, lost: frozenset[str]) -> Partial:
    head = group[0]
    if worker.address in group or len(group) == 1 or head in lost:
        return await reduce_group(worker, job, group, reference, lost)
    try:
        # to_serialize: the job holds a codec (no msgpack type); the answer's arrays travel as frames
        return unwrap(await worker.rpc(head).fedplugin_reduce(name=job.name, job=to_serialize(job), members=group))
    except OSError:  # the head is lost (CommClosedError is an OSError): reduce its group here, without it
        return await reduce_group(worker, job, group, reference, lost | {head})


async def reduce_here(worker: Any, job: Any, members: list[str]) -> Any:
    """The ``fedplugin_reduce`` handler: :func:`reduce_group` on this worker, for the worker above it."""
    # to_serialize: the arrays travel as zero-copy frames, not inside a pickle
    return to_serialize(await reduce_group(worker, unwrap(job), members))


async def _reference(worker: Any, name: str, base: int) -> Params:
    """The parameters of global version ``base`` (the round's reference), fetched from the store if not held."""
    model = await _held_or_stored(worker, name, base)
    if model is not None and model.version > base:
        raise RoundClosed(f"round {base} was closed already: {worker.address} holds version {model.version} of {name!r}")
    if model is None or model.version != base:
        found = None if model is None else model.version
        raise RuntimeError(f"round {base} cannot be reduced on {worker.address}: the stored model of {name!r} is version {found}")
    return model.params


def _leaf(pulled: list[dict[str, Any]], reference: Params, adapter: Any, job: Job) -> Partial:
    updates, sent, raw = decoded(pulled, reference, adapter, job.codec, job.exponent)
    partial = partial_of(updates, job.weighting)
    partial.bytes_sent, partial.bytes_raw = sent, raw
    return partial


async def broadcast(name: str, model: GlobalModel, targets: list[str], dask_worker: Any = None) -> int:
    """Install ``model`` on every worker of ``targets`` (this one included); return how many got it.

    Up to :data:`FAN_OUT` workers receive it from this one; each forwards it to
    its slice of the others, so the sender's traffic stays bounded however
    many workers there are. If a forwarding worker cannot be reached, the rest
    of its slice is sent to directly. A worker that still misses the model
    fetches it from the store when it (re)starts or next trains.
    """
    others = [t for t in targets if t != dask_worker.address]
    count = 0
    if len(others) < len(targets):
        dask_worker.plugins[name].receive(model)
        count += 1
    slices = [others[i::FAN_OUT] for i in range(min(FAN_OUT, len(others)))]
    pushed = model.for_workers()  # a server optimizer's state stays here and in the store
    answers = await asyncio.gather(
        # to_serialize: the arrays travel as zero-copy frames, not inside a pickle
        *(dask_worker.rpc(part[0]).fedplugin_forward(name=name, model=to_serialize(pushed), targets=part) for part in slices),
        return_exceptions=True,
    )
    count += sum(a for a in answers if isinstance(a, int))
    for part, answer in zip(slices, answers):
        if isinstance(answer, BaseException) and len(part) > 1:
            count += await broadcast(name, pushed, part[1:], dask_worker=dask_worker)
    return count


async def forward(worker: Any, name: str, model: GlobalModel, targets: list[str]) -> int:
    """The ``fedplugin_forward`` handler: install here and pass on to the rest of ``targets``."""
    return await broadcast(name, unwrap(model), targets, dask_worker=worker)


def unwrap(value: Any) -> Any:
    """In-process comms (``processes=False`` clusters) hand over the wrapper itself."""
    return value.data if isinstance(value, Serialize) else value
