"""Compressed updates: what a worker sends to the worker that combines a round.

``Coordinator(..., compression=...)`` picks a codec: :class:`Float16`,
:class:`Int8` (symmetric, one scale per tensor) or :class:`TopK`
(sparsification); the last two with error feedback (after Stich, Cordonnier
and Jaggi, "Sparsified SGD with Memory", NeurIPS 2018). A worker encodes its update as
the *difference* from the global model of the round (the one it started
from), so the loss of precision falls on what it learned, not on the weights;
the combining worker adds the decoded difference back to that global model
before the rule sees it. Tensors whose encoded form would not be smaller, and
non-float ones, are sent as they are.

With error feedback, what compression dropped (the *residual*) stays on the
worker and is added to its next update, so nothing learned is lost for good,
only delayed. It stays in the worker's local model: when the round's new
global model arrives, the worker keeps what it learned beyond what it *sent*
(not beyond what it handed over), so its next update, a difference from the
next global model, holds the residual and its new progress. (Keeping the
residual apart and resetting the local model to the global one would make a
worker learn the dropped part again on top of re-sending it: with many local
steps per round, that overshoots.) The residual is dropped with the local
model: when the worker adopts a global model outright (a fit that starts from
another version, a rollback, a restart) or its training diverges.

Examples
--------
>>> import numpy as np
>>> codec = TopK(fraction=0.25)
>>> payload, residual = compress(codec, {"w": np.array([0.1, -4.0, 0.5, 2.0])})
>>> decode(codec, payload)["w"].tolist(), residual["w"].tolist()
([0.0, -4.0, 0.0, 0.0], [0.1, 0.0, 0.5, 2.0])
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .store import params_nbytes

Params = dict[str, np.ndarray]
#: One tensor as sent: arrays, and the shape and dtype to decode it to.
Part = dict[str, Any]
Payload = dict[str, Part]


class Codec:
    """Base class: how one float tensor is encoded and decoded.

    Subclasses implement :meth:`encode_tensor` and :meth:`decode_tensor`;
    :meth:`encode` sends a tensor as it is where that is not larger.
    """

    #: The name ``Coordinator(compression=...)`` accepts for the default instance.
    name: ClassVar[str] = ""
    #: Keep what compression dropped and add it to the next update.
    error_feedback: bool = False

    def encode_tensor(self, values: np.ndarray) -> Part | None:
        """The arrays that stand for ``values`` (``None``: send it as it is)."""
        raise NotImplementedError

    def decode_tensor(self, part: Part) -> np.ndarray:
        """The tensor ``part`` stands for."""
        raise NotImplementedError

    def encode(self, delta: Params) -> Payload:
        """Every tensor of ``delta`` encoded, or as it is (``{"dense": values}``) if not smaller."""
        payload: Payload = {}
        for name, values in delta.items():
            values = np.asarray(values)
            part = self.encode_tensor(values) if values.dtype.kind == "f" and values.size else None
            payload[name] = {"dense": values} if part is None or part_nbytes(part) >= values.nbytes else part
        return payload


@dataclass(frozen=True)
class Float16(Codec):
    """Half precision: 2 bytes a value. A tensor beyond float16's range is sent as it is.

    Examples
    --------
    >>> part = Float16().encode({"w": np.array([1.0, 0.1, 70000.0]), "b": np.array([0.1])})
    >>> part["w"]["dense"].dtype, part["b"]["values"].dtype   # 70000 overflows float16
    (dtype('float64'), dtype('float16'))
    """

    name: ClassVar[str] = "float16"

    def encode_tensor(self, values: np.ndarray) -> Part | None:
        with np.errstate(over="ignore"):
            half = values.astype(np.float16)
        if not np.all(np.isfinite(half)):
            return None  # overflow: inf would exclude the update
        return {"values": half, "dtype": values.dtype.str}

    def decode_tensor(self, part: Part) -> np.ndarray:
        return part["values"].astype(part["dtype"])


@dataclass(frozen=True)
class Int8(Codec):
    """Symmetric 8-bit quantization with one scale per tensor: ``round(x / s)``, ``s = max|x| / 127``.

    Each value comes back within ``s / 2`` of where it was. With
    ``error_feedback`` (the default) the rounding error is added to the
    worker's next update, so it does not accumulate as a bias.

    Parameters
    ----------
    error_feedback : bool, default True
        Keep what rounding dropped on the worker and send it later.

    Examples
    --------
    >>> codec = Int8()
    >>> part = codec.encode_tensor(np.array([-2.54, 0.0, 1.0, 2.54]))
    >>> part["q"].tolist(), float(part["scale"])
    ([-127, 0, 50, 127], 0.02)
    >>> codec.decode_tensor(part).round(2).tolist()
    [-2.54, 0.0, 1.0, 2.54]
    """

    error_feedback: bool = True
    name: ClassVar[str] = "int8"

    def __post_init__(self) -> None:
        _check_flag(self.error_feedback)

    def encode_tensor(self, values: np.ndarray) -> Part | None:
        top = float(np.max(np.abs(values)))
        scale = top / 127 if top > 0 else 1.0
        q = np.clip(np.rint(values / scale), -127, 127).astype(np.int8)
        return {"q": q, "scale": np.array(scale), "dtype": values.dtype.str}

    def decode_tensor(self, part: Part) -> np.ndarray:
        return (part["q"] * part["scale"]).astype(part["dtype"])


@dataclass(frozen=True)
class TopK(Codec):
    """Send only the ``k = max(1, round(fraction * size))`` largest-magnitude values of each tensor.

    Values keep their precision; their flat positions go as int32 (int64 for
    tensors of 2**31 values or more). With ``error_feedback`` (the default)
    the values left out are added to the worker's next update.

    Parameters
    ----------
    fraction : float, default 0.01
        Share of each tensor's values sent, in ``(0, 1]``.
    error_feedback : bool, default True
        Keep the values left out on the worker and send them later.

    Examples
    --------
    >>> part = TopK(fraction=0.5).encode_tensor(np.array([[3.0, -1.0], [0.5, -7.0]]))
    >>> part["indices"].tolist(), part["values"].tolist()
    ([0, 3], [3.0, -7.0])
    >>> TopK(fraction=0)
    Traceback (most recent call last):
    ...
    ValueError: fraction=0 must be a number in (0, 1]; expected e.g. 0.01 for the top 1 %
    """

    fraction: float = 0.01
    error_feedback: bool = True
    name: ClassVar[str] = "topk"

    def __post_init__(self) -> None:
        fraction = self.fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction <= 1:
            raise ValueError(f"fraction={fraction!r} must be a number in (0, 1]; expected e.g. 0.01 for the top 1 %")
        _check_flag(self.error_feedback)

    def k(self, size: int) -> int:
        """Values sent of a tensor of ``size`` values."""
        return max(1, min(size, math.floor(self.fraction * size + 0.5)))

    def encode_tensor(self, values: np.ndarray) -> Part | None:
        flat = values.ravel()
        k = self.k(flat.size)
        largest = np.argpartition(np.abs(flat), flat.size - k)[flat.size - k:]
        indices = np.sort(largest).astype(np.int32 if flat.size < 2**31 else np.int64)
        return {"indices": indices, "values": flat[indices], "shape": values.shape}

    def decode_tensor(self, part: Part) -> np.ndarray:
        values = part["values"]
        flat = np.zeros(math.prod(part["shape"]), dtype=values.dtype)
        flat[part["indices"]] = values
        return flat.reshape(part["shape"])


def _check_flag(error_feedback: Any) -> None:
    if not isinstance(error_feedback, bool):
        raise TypeError(f"error_feedback={error_feedback!r} must be True or False")


#: The codecs ``compression=`` accepts by name.
CODECS: dict[str, type[Codec]] = {codec.name: codec for codec in (Float16, Int8, TopK)}


def as_codec(compression: Any, adapter: Any = None) -> Codec | None:
    """The codec ``Coordinator(compression=...)`` asks for, checked against the estimator family.

    Families combined exactly from counts and sums (naive Bayes, scalers,
    k-means, ...), and composites with such a part or with counters next to
    their weights, must receive their statistics exactly: they refuse every codec.

    Examples
    --------
    >>> as_codec("int8"), as_codec(None)
    (Int8(error_feedback=True), None)
    >>> as_codec("int4")
    Traceback (most recent call last):
    ...
    ValueError: compression='int4' is not supported; expected None, one of ['float16', 'int8', 'topk'] or a Codec instance
    """
    if compression is None:
        return None
    if isinstance(compression, str) and compression in CODECS:
        codec = CODECS[compression]()
    elif isinstance(compression, Codec):
        codec = compression
    else:
        raise ValueError(
            f"compression={compression!r} is not supported; expected None, one of {sorted(CODECS)} or a Codec instance"
        )
    if adapter is not None and (adapter.exact_aggregation or not adapter.takes_server_optimizer):
        what = (
            "combined exactly from counts and sums" if adapter.exact_aggregation
            else "has parameters that are counts, flags or exact statistics"
        )
        raise ValueError(
            f"compression={compression!r}: {type(adapter).__name__} {what}, which must reach the combining "
            "worker exactly; expected compression=None for this estimator"
        )
    return codec


def part_nbytes(part: Part) -> int:
    """Bytes of the arrays of one encoded tensor (shape and dtype ride along as metadata)."""
    return int(sum(value.nbytes for value in part.values() if isinstance(value, np.ndarray)))


def payload_nbytes(payload: Payload) -> int:
    """Bytes of the arrays of an encoded update: what crosses the network."""
    return sum(part_nbytes(part) for part in payload.values())


def decode(codec: Codec, payload: Payload) -> Params:
    """The difference ``payload`` stands for, tensor by tensor."""
    return {name: part["dense"] if "dense" in part else codec.decode_tensor(part) for name, part in payload.items()}


def compress(codec: Codec, delta: Params) -> tuple[Payload, Params | None]:
    """``delta`` encoded, and what the payload does not carry: ``decode(payload) + residual == delta``.

    A ``delta`` that is not finite goes as it is, with no residual (``None``):
    that update is left out of its round anyway.
    """
    if not all(np.all(np.isfinite(value)) for value in delta.values()):
        return {name: {"dense": np.asarray(value)} for name, value in delta.items()}, None
    payload = codec.encode(delta)
    sent = decode(codec, payload)
    return payload, {name: value - sent[name] for name, value in delta.items()}


class Outbox:
    """One worker's side: its encoded updates by round and, with error feedback, what they carried.

    The combining worker may pull an update twice (a retry after it was lost
    mid-round): the second pull gets the same payload. With error feedback,
    ``anchors`` holds, per round, the parameters the combining worker
    rebuilt (the round's global model plus the decoded payload): when the
    round's new global model arrives, the worker keeps what it learned beyond
    *that* (see :mod:`fedplugin.round_state`), so the residual stays in its
    local model and rides along with its next update.
    """

    def __init__(self) -> None:
        self.codec: Codec | None = None
        self.sent: dict[int, dict[str, Any]] = {}
        self.anchors: dict[int, Params] = {}

    def reset(self) -> None:
        """Forget the payloads and anchors (the worker adopted a model outright, or diverged)."""
        self.sent.clear()
        self.anchors.clear()

    def encode(self, base: int, params: Params, reference: Params, codec: Codec) -> dict[str, Any]:
        """``{"payload", "raw_nbytes"}`` of round ``base``'s update ``params`` over the global ``reference``."""
        if codec != self.codec:
            self.reset()
            self.codec = codec
        if base not in self.sent:
            delta = {name: np.subtract(value, reference[name]) for name, value in params.items()}
            payload, residual = compress(codec, delta)
            # Rounds close in order: older payloads are no longer pulled.
            self.sent = {b: sent for b, sent in self.sent.items() if b > base}
            self.sent[base] = {"payload": payload, "raw_nbytes": params_nbytes(params)}
            if codec.error_feedback and residual is not None:
                self.anchors[base] = {name: value - residual[name] for name, value in params.items()}
        return self.sent[base]

    def forget_before(self, version: int) -> None:
        """Drop the anchors of rounds older than ``version`` (merged into the local model)."""
        self.anchors = {b: anchor for b, anchor in self.anchors.items() if b >= version}


def received(update: dict[str, Any], reference: Params, codec: Codec | None) -> tuple[Params, int, int]:
    """On the combining worker: a pulled update's parameters, bytes sent, bytes uncompressed."""
    if "payload" not in update:
        nbytes = params_nbytes(update["params"])
        return update["params"], nbytes, nbytes
    if codec is None:
        raise ValueError("a worker sent a compressed update, but the round has no codec to decode it")
    delta = decode(codec, update["payload"])
    params = {name: np.add(reference[name], value) for name, value in delta.items()}
    return params, payload_nbytes(update["payload"]), update["raw_nbytes"]
