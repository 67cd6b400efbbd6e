"""The state file of a checkpoint that runs no code on load (format version 2).

The state file is a zip archive in NumPy's ``.npz`` layout: every array
(parameters, classes, a server optimizer's slots, array-valued estimator
parameters) is one ``.npy`` member, read back with
``np.load(..., allow_pickle=False)``, and one more member, ``state.json``,
holds everything else as JSON: the :class:`~fedplugin.store.GlobalModel`'s
scalars, its scalar extra state, the history and the estimator as its class's
import path plus ``get_params(deep=False)``. Array members are named after
where they sit (``global_model/params/coef_``,
``global_model/extra/server/m/coef_``, ``estimator/params/init``); the JSON
refers to them by name.

JSON cannot tell a tuple from a list, nor hold numpy scalars, arrays or
estimators, so those values are written as one-key objects (tags)::

    {"__array__": "global_model/params/coef_"}     an array member
    {"__strings__": "global_model/classes"}        an object array of str
    {"__tuple__": [...]}                           a tuple
    {"__dict__": [[key, value], ...]}              a dict whose keys are not all str
    {"__numpy__": ["<f4", 0.5]}                    a numpy scalar
    {"__numpy_type__": "float64"}                  a numpy scalar type (``dtype=np.float64``)
    {"__estimator__": {"module": ..., "qualname": ..., "params": {...}}}

Loading rebuilds an estimator only when its class lives in scikit-learn
(a module under ``sklearn.``) or fedplugin and derives from scikit-learn's
``BaseEstimator``, unless the caller says the checkpoint is trusted; nothing
else in the file can name code.

Examples
--------
>>> import io
>>> import numpy as np
>>> from sklearn.linear_model import SGDRegressor
>>> from fedplugin.store import GlobalModel
>>> model = GlobalModel(2, {"coef_": np.ones(3), "intercept_": np.zeros(1)}, n_features=3, rounds=1)
>>> buffer = io.BytesIO()
>>> dump({"global_model": model, "history": [], "estimator": SGDRegressor(alpha=0.01)}, buffer)
>>> state = load(io.BytesIO(buffer.getvalue()), "in memory")
>>> state["global_model"].params["coef_"], state["estimator"]
(array([1., 1., 1.]), SGDRegressor(alpha=0.01))
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import zipfile
from typing import IO, Any

import numpy as np
from sklearn.base import BaseEstimator

from .history import Round
from .store import GlobalModel

#: The archive member that holds the JSON document.
DOCUMENT = "state.json"
_TAGS = ("__array__", "__strings__", "__tuple__", "__dict__", "__numpy__", "__numpy_type__", "__estimator__")
_SCALAR_KINDS = "biufU"  # numpy scalars and types a checkpoint may hold: JSON holds their values
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_PICKLE_HINT = (
    "save with save_checkpoint(..., format='pickle') to keep it (loading that checkpoint then "
    "needs trusted=True)"
)


class CheckpointContentError(ValueError):
    """A state file's content is not what fedplugin writes, or names code it will not run."""


# ------------------------------------------------------------------- writing
def dump(state: dict[str, Any], f: IO[bytes], *, compress: int = 3) -> None:
    """Write ``state`` (``global_model``, ``history``, ``estimator``) to the binary file ``f``.

    Raises
    ------
    TypeError
        If a value cannot be stored without pickle (a callable, a
        ``RandomState``, an object array of anything but str, ...); the
        message names where it sits.
    """
    arrays: dict[str, np.ndarray] = {}
    document = {
        "global_model": _model_document(state["global_model"], arrays),
        "history": [_encode(_round_fields(r), f"history/{i}", arrays) for i, r in enumerate(state["history"])],
        "estimator": _encode_estimator(state["estimator"], "estimator", arrays),
    }
    text = json.dumps(document, indent=1)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(f, "w", compression=method, compresslevel=compress or None) as archive:
        for key, array in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
        archive.writestr(DOCUMENT, text)


def _model_document(model: GlobalModel, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        "version": model.version,
        "n_features": model.n_features,
        "rounds": model.rounds,
        "estimator": model.estimator,
        "params": _encode(dict(model.params), "global_model/params", arrays),
        "classes": _encode(model.classes, "global_model/classes", arrays),
        "extra": _encode(dict(model.extra), "global_model/extra", arrays),
        "n_outputs": model.n_outputs,
        "feature_names": _encode(model.feature_names, "global_model/feature_names", arrays),
    }


def _round_fields(record: Round) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def _encode(value: Any, where: str, arrays: dict[str, np.ndarray]) -> Any:
    """JSON for ``value``, its arrays moved into ``arrays`` under names starting with ``where``."""
    if value is None or isinstance(value, (bool, int, float, str)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, np.ndarray):
        return _encode_array(value, where, arrays)
    if isinstance(value, np.generic):
        if value.dtype.kind not in _SCALAR_KINDS:
            raise TypeError(
                f"{where} holds a numpy {type(value).__name__} scalar, which a checkpoint without pickle "
                f"cannot store; {_PICKLE_HINT}"
            )
        return {"__numpy__": [value.dtype.str, value.item()]}
    if isinstance(value, type) and issubclass(value, np.generic) and np.dtype(value).kind in _SCALAR_KINDS:
        return {"__numpy_type__": np.dtype(value).name}
    if isinstance(value, (list, tuple)):
        items = [_encode(item, f"{where}/{i}", arrays) for i, item in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not (len(value) == 1 and next(iter(value)) in _TAGS):
            return {k: _encode(v, f"{where}/{k}", arrays) for k, v in value.items()}
        return {"__dict__": [[_encode(k, f"{where}/key{i}", arrays), _encode(v, f"{where}/{i}", arrays)]
                             for i, (k, v) in enumerate(value.items())]}
    if hasattr(value, "get_params") and not isinstance(value, type):
        return _encode_estimator(value, where, arrays)
    kind = "a callable" if callable(value) else f"a {type(value).__name__}"
    raise TypeError(f"{where} holds {kind}, which a checkpoint without pickle cannot store; {_PICKLE_HINT}")


def _encode_array(value: np.ndarray, where: str, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    key, n = where, 1
    while key in arrays:  # a dict key with "/" in it could collide with a deeper path
        key, n = f"{where}~{n}", n + 1
    if value.dtype.hasobject:
        if not all(isinstance(item, str) for item in value.flat):
            raise TypeError(
                f"{where} is an object array holding {sorted({type(i).__name__ for i in value.flat})}, "
                f"which a checkpoint without pickle cannot store; {_PICKLE_HINT}"
            )
        arrays[key] = value.astype(str)
        return {"__strings__": key}
    arrays[key] = value
    return {"__array__": key}


def _encode_estimator(estimator: Any, where: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if not hasattr(estimator, "get_params"):
        raise TypeError(f"{where} is a {type(estimator).__name__}, not an estimator with get_params")
    cls = type(estimator)
    params = estimator.get_params(deep=False)
    return {
        "__estimator__": {
            "module": cls.__module__,
            "qualname": cls.__qualname__,
            "params": {k: _encode(v, f"{where}/params/{k}", arrays) for k, v in params.items()},
        }
    }


def check_storable(estimator: Any) -> None:
    """Raise the ``TypeError`` a save would, now: for a coordinator with ``checkpoint=``."""
    _encode_estimator(estimator, "estimator", {})


# ------------------------------------------------------------------- reading
def load(f: Any, where: str, *, trusted: bool = False) -> dict[str, Any]:
    """Read what :func:`dump` wrote to ``f`` (a path or binary file); ``where`` names it in errors.

    Raises
    ------
    CheckpointContentError
        If ``f`` is not such a file, holds an object array, or names an
        estimator class outside scikit-learn and fedplugin while ``trusted``
        is false.
    """
    try:
        npz = np.load(f, allow_pickle=False)
    except Exception as exc:  # not a zip, or an .npy / pickle that allow_pickle=False refuses
        raise CheckpointContentError(f"{where} cannot be read as an .npz archive ({exc})") from exc
    if not isinstance(npz, np.lib.npyio.NpzFile) or DOCUMENT not in npz.files:
        raise CheckpointContentError(f"{where} cannot be read: it has no {DOCUMENT}")
    with npz:
        try:
            document = json.loads(npz.zip.read(DOCUMENT).decode("utf-8"))
            decoder = _Decoder(npz, where, trusted)
            return {
                "global_model": decoder.global_model(document["global_model"]),
                "history": [decoder.round(fields) for fields in document["history"]],
                "estimator": decoder.decode(document["estimator"]),
            }
        except CheckpointContentError:
            raise
        except Exception as exc:
            raise CheckpointContentError(
                f"{where} cannot be read ({type(exc).__name__}: {exc}); expected the state of a "
                "fedplugin checkpoint"
            ) from exc


class _Decoder:
    """Turns the JSON document back into values, reading array members of ``npz`` as it goes."""

    def __init__(self, npz: Any, where: str, trusted: bool) -> None:
        self.npz, self.where, self.trusted = npz, where, trusted

    def global_model(self, doc: dict[str, Any]) -> GlobalModel:
        params = self.decode(doc["params"])
        if not isinstance(params, dict) or not all(isinstance(v, np.ndarray) for v in params.values()):
            raise CheckpointContentError(f"{self.where}: the parameters are not a dict of arrays")
        classes = self.decode(doc["classes"])
        per_output = isinstance(classes, list) and all(isinstance(c, np.ndarray) for c in classes)
        if classes is not None and not isinstance(classes, np.ndarray) and not per_output:
            raise CheckpointContentError(
                f"{self.where}: classes is a {type(classes).__name__}, not an array or a list of arrays"
            )
        n_outputs = doc.get("n_outputs")  # absent from checkpoints written before multi-output models
        if n_outputs is not None and (isinstance(n_outputs, bool) or not isinstance(n_outputs, int)):
            raise CheckpointContentError(f"{self.where}: n_outputs is {n_outputs!r}, not an int or null")
        return GlobalModel(
            version=doc["version"], params=params, n_features=doc["n_features"], classes=classes,
            rounds=doc["rounds"], extra=self.decode(doc["extra"]), estimator=doc["estimator"],
            n_outputs=n_outputs, feature_names=self._feature_names(doc),
        )

    def _feature_names(self, doc: dict[str, Any]) -> np.ndarray | None:
        """The model's feature names: one str per feature, or ``None`` (also when written before they were kept)."""
        names = self.decode(doc.get("feature_names"))
        if names is not None and not (
            isinstance(names, np.ndarray) and names.shape == (doc["n_features"],) and all(isinstance(n, str) for n in names)
        ):
            raise CheckpointContentError(f"{self.where}: feature_names is {names!r}, not {doc['n_features']} str names or null")
        return names

    def round(self, fields: Any) -> Round:
        values = self.decode(fields)
        known = {f.name for f in dataclasses.fields(Round)}
        unknown = sorted(set(values) - known) if isinstance(values, dict) else None
        if unknown is None or unknown:
            raise CheckpointContentError(
                f"{self.where}: a history record has fields {unknown}, which this fedplugin's Round "
                "lacks; expected a checkpoint written by this or an older fedplugin"
            )
        return Round(**values)

    def decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and next(iter(value)) in _TAGS:
            ((tag, content),) = value.items()
            return getattr(self, tag.strip("_"))(content)
        return {k: self.decode(v) for k, v in value.items()}

    def array(self, key: str) -> np.ndarray:
        if not isinstance(key, str) or key not in self.npz.files:
            raise CheckpointContentError(f"{self.where} refers to an array {key!r} it does not hold")
        try:
            return self.npz[key]
        except ValueError as exc:  # "Object arrays cannot be loaded when allow_pickle=False"
            raise CheckpointContentError(
                f"{self.where} holds an object array under {key!r}; loading it would unpickle (run) "
                f"code, so it is refused ({exc}). fedplugin never writes one: the file was altered"
            ) from exc

    def strings(self, key: str) -> np.ndarray:
        return self.array(key).astype(object)

    def tuple(self, items: list[Any]) -> tuple[Any, ...]:
        return tuple(self.decode(items))

    def dict(self, pairs: list[list[Any]]) -> dict[Any, Any]:
        return {_hashable(self.decode(k)): self.decode(v) for k, v in pairs}

    def numpy(self, content: list[Any]) -> np.generic:
        code, item = content
        return _scalar_type(code)(item)

    def numpy_type(self, name: str) -> type:
        return _scalar_type(name)

    def estimator(self, spec: dict[str, Any]) -> Any:
        cls = resolve_class(spec["module"], spec["qualname"], trusted=self.trusted, where=self.where)
        params = self.decode(spec["params"])
        try:
            return cls(**params)
        except TypeError as exc:
            raise CheckpointContentError(
                f"{self.where}: {cls.__name__}(**params) fails ({exc}); the checkpoint was written with "
                "another version of its library"
            ) from exc


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def _scalar_type(code: Any) -> type:
    dtype = np.dtype(str(code))  # parses a type code; runs nothing
    if dtype.kind not in _SCALAR_KINDS:
        raise CheckpointContentError(f"numpy type {code!r} is not one a checkpoint holds")
    return dtype.type


def resolve_class(module: Any, qualname: Any, *, trusted: bool = False, where: str = "checkpoint") -> type:
    """The estimator class ``module.qualname``, imported only if loading it is allowed.

    Without ``trusted``, the module must be scikit-learn's or fedplugin's, and
    not one of their test modules (checked before anything is imported), and
    the class must be defined there and derive from
    ``sklearn.base.BaseEstimator``.

    Examples
    --------
    >>> resolve_class("sklearn.linear_model._stochastic_gradient", "SGDClassifier")
    <class 'sklearn.linear_model._stochastic_gradient.SGDClassifier'>
    >>> resolve_class("os", "system")
    Traceback (most recent call last):
    ...
    fedplugin.checkpoint_format.CheckpointContentError: checkpoint: the estimator class os.system is not a scikit-learn or fedplugin class; load with trusted=True if you trust this checkpoint
    """
    name = f"{module}.{qualname}"
    if not (isinstance(module, str) and _MODULE.match(module)) or not (
        isinstance(qualname, str) and all(_ATTRIBUTE.match(part) for part in qualname.split("."))
    ):
        raise CheckpointContentError(f"{where}: {name!r} is not the import path of a class")
    parts = module.split(".")
    if not trusted and (parts[0] not in ("sklearn", "fedplugin") or {"tests", "conftest"} & set(parts)):
        raise CheckpointContentError(
            f"{where}: the estimator class {name} is not a scikit-learn or fedplugin class; load with "
            "trusted=True if you trust this checkpoint"
        )
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise CheckpointContentError(f"{where}: the estimator class {name} cannot be found ({exc})") from exc
    if not isinstance(found, type):
        raise CheckpointContentError(f"{where}: {name} is a {type(found).__name__}, not a class")
    defined_there = f"{found.__module__}.{found.__qualname__}" == name
    if not trusted and not (defined_there and issubclass(found, BaseEstimator)):
        raise CheckpointContentError(
            f"{where}: {name} is not a scikit-learn or fedplugin estimator class (defined in "
            f"{found.__module__}); load with trusted=True if you trust this checkpoint"
        )
    return found


__all__ = ["CheckpointContentError", "DOCUMENT", "dump", "load", "resolve_class"]
