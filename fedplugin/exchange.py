"""The aggregation of a round, run on a worker: updates move worker to worker.

The coordinator asks one worker to close a round with
``client.run(close_round, ..., workers=[aggregator])``. That worker, on its
event loop (no thread slot needed, so it never waits behind a training task):

1. pulls every participant's update through its ``fedplugin_handover``
   handler (Dask's worker-to-worker comms; nothing crosses the client);
2. combines them with :func:`~fedplugin.rounds.next_global`;
3. stores the new global model on the scheduler (for restarting workers, and
   so that a retry after this worker died pushes the same model again);
4. pushes it to every worker through ``fedplugin_forward``, as a fan-out tree
   when there are many workers: each worker it sends to forwards the model to
   its share of the rest.

It returns a small :class:`RoundSummary`: all the client receives.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

from distributed.protocol import Serialize, to_serialize

from . import store
from .compression import Codec, received
from .privacy import privacy_spent
from .rounds import Update, next_global
from .store import GlobalModel
from .stragglers import STALENESS_EXPONENT, discount_stale

#: Workers one worker sends a new global model to directly; the rest get it from them.
FAN_OUT = 8


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
        not) and pushed to the workers.
    bytes_up_raw : int
        The bytes of the pulled updates uncompressed (``bytes_up`` without a codec).
    seconds : float
        Time the aggregating worker spent, of which ``pull_seconds`` fetching
        the updates, ``combine_seconds`` computing the new model and
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
    dask_worker: Any = None,
) -> RoundSummary:
    """``client.run`` on the aggregating worker: round ``base`` becomes version ``base + 1``.

    ``current``: a participant with no update for the round hands over its
    model as it is now (a manual :meth:`~fedplugin.Coordinator.synchronize`).
    ``codec``: the participants send their updates compressed with it
    (:mod:`fedplugin.compression`). ``late``: workers still training for the
    round, whose progress joins a later one (:mod:`fedplugin.stragglers`),
    where it is discounted by its staleness with ``staleness_exponent``.
    ``trigger``: what ended the round, for the rule (see :func:`~fedplugin.rounds.next_global`).
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    plugin = dask_worker.plugins[name]
    reference = plugin.global_model
    if reference is None or reference.version != base or reference.state_in_store:
        # The store holds the model with a server optimizer's state; pushed copies do not.
        reference = await store.worker_fetch(dask_worker, name)
    if reference is not None and reference.version == base + 1:
        # An earlier attempt stored this round's model, then its worker was lost
        # while pushing it: push the stored model again, never a second one.
        return await _push_again(name, reference, participants, dask_worker, start)
    if reference is None or reference.version != base:
        found = None if reference is None else reference.version
        raise RuntimeError(f"round {base} cannot close: the stored global model of {name!r} is version {found}")
    everyone, *answers = await asyncio.gather(
        store.worker_addresses_from(dask_worker),
        *(_pull(dask_worker, worker, name, base, current, codec) for worker in participants),
        return_exceptions=True,
    )
    if isinstance(everyone, BaseException):
        raise everyone
    pulled_updates = [a for a in answers if isinstance(a, dict)]
    # A participant that cannot be reached, or no longer holds its update (it
    # restarted), was lost: its blocks are trained again. Any other failure is
    # a bug or a user error: it must not be retried quietly.
    missing = [w for w, a in zip(participants, answers) if a is None or isinstance(a, OSError)]
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, OSError):
            raise answer
    pulled = loop.time()
    # Combining a large model takes a while: in a thread, so this event loop
    # keeps answering (numpy releases the GIL for the arithmetic).
    new, excluded, payload, updates, sizes = await loop.run_in_executor(
        None, _combine, reference, pulled_updates, rule, plugin.adapter, codec, tuple(late), staleness_exponent, trigger
    )
    combined = loop.time()
    # Stored first: if this worker dies while pushing, a retry finds the model
    # in the store and pushes it again (no second, different version b + 1).
    await store.worker_put(dask_worker, name, new.version, payload)
    sent = await broadcast(name, new, everyone, dask_worker=dask_worker)
    return RoundSummary(
        version=new.version,
        rounds=new.rounds,
        workers=sorted(u.worker for u in updates if u.worker not in excluded),
        excluded=excluded,
        missing=missing,
        everyone=everyone,
        bytes_up=sizes[0],
        bytes_down=new.nbytes() * sent,
        bytes_up_raw=sizes[1],
        seconds=loop.time() - start,
        pull_seconds=pulled - start,
        combine_seconds=combined - pulled,
        push_seconds=loop.time() - combined,
        epsilon=privacy_spent(new),
    )


async def _push_again(name: str, model: GlobalModel, participants: list[str], worker: Any, start: float) -> RoundSummary:
    everyone = await store.worker_addresses_from(worker)
    sent = await broadcast(name, model, everyone, dask_worker=worker)
    seconds = asyncio.get_running_loop().time() - start
    return RoundSummary(
        version=model.version, rounds=model.rounds, workers=sorted(participants), everyone=everyone,
        bytes_down=model.nbytes() * sent, seconds=seconds, push_seconds=seconds, epsilon=privacy_spent(model),
    )


def _combine(
    reference: GlobalModel, pulled: list[dict[str, Any]], rule: Any, adapter: Any, codec: Codec | None,
    late: tuple[str, ...] = (), exponent: float = STALENESS_EXPONENT, trigger: str | None = None,
) -> tuple[GlobalModel, list[str], bytes, list[Update], tuple[int, int]]:
    """The new model, its excluded workers and stored bytes, the decoded updates, their bytes sent and raw.

    ``late``: the workers still training for the round; ``exponent`` discounts a stale update.
    """
    updates, sent, raw = [], 0, 0
    for update in pulled:
        params, sent_nbytes, raw_nbytes = received(update, reference.params, codec)
        if update.get("staleness", 0) > 0 and not adapter.exact_aggregation:
            params = discount_stale(params, reference.params, update["staleness"], exponent)
        updates.append(Update(update["worker"], params, update["samples"], update["state"]))
        sent, raw = sent + sent_nbytes, raw + raw_nbytes
    new, excluded = next_global(reference, updates, rule, adapter, trigger)
    new = replace(new, late=late)
    return new, excluded, new.to_bytes(), updates, (sent, raw)


async def _pull(worker: Any, address: str, name: str, base: int, current: bool, codec: Codec | None) -> dict | None:
    """One participant's update for round ``base``, as it sent it (``None``: it has none)."""
    if address == worker.address:  # no need to pickle what is already here
        return worker.plugins[name].update_for(base, current, codec)
    # to_serialize: a codec is no msgpack type
    wrapped = None if codec is None else to_serialize(codec)
    return unwrap(await worker.rpc(address).fedplugin_handover(name=name, base=base, current=current, codec=wrapped))


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
