"""Save a federated model to disk and load it back, atomically.

A checkpoint is a directory that holds everything a
:class:`~fedplugin.Coordinator` needs to carry on where it stopped: the
:class:`~fedplugin.store.GlobalModel` (parameters, version, rounds), the
round history and the unfitted estimator the workers clone. Its layout::

    my-checkpoint/
        manifest.json          what the checkpoint is, readable without fedplugin
        state-<token>.npz      the GlobalModel, history and estimator

The state file (format version 2, the default) holds arrays that load without
pickle and JSON (see :mod:`fedplugin.checkpoint_format`): loading it runs no
code from the checkpoint, and rebuilds only scikit-learn and fedplugin
estimator classes unless ``trusted=True``. ``format="pickle"`` writes the
format version 1 state file, ``state-<token>.joblib``, a joblib pickle, for
estimators whose parameters JSON cannot hold; loading one runs whatever code
its author chose, so :func:`load_checkpoint` reads it only with
``trusted=True``.

``manifest.json`` names the state file and its SHA-256, so replacing the
manifest is the single step that commits a save: a save that fails or is
killed at any point leaves either the previous checkpoint or no checkpoint,
never a half-written one. A new checkpoint is built in a temporary sibling
directory and renamed into place; an existing one gets its new state file
first and its new manifest last (``os.replace``), after which the old state
file is removed.

.. warning::
   The manifest's checksum detects corruption, not tampering: whoever can
   write the directory can write a matching checksum. A version 2 checkpoint
   from an untrusted source can at worst hold wrong parameters or an
   estimator with bad settings (and, like any zip file, be large to
   decompress); never pass ``trusted=True`` for one you did not write.

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> from sklearn.linear_model import SGDClassifier
>>> from fedplugin.store import GlobalModel
>>> model = GlobalModel(
...     version=3,
...     params={"coef_": np.array([[0.5, -1.0]]), "intercept_": np.array([0.25])},
...     n_features=2,
...     classes=np.array([0, 1]),
...     rounds=3,
... )
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = save_checkpoint(f"{tmp}/clf", model, [], SGDClassifier(), name="clf")
...     checkpoint = load_checkpoint(path)
>>> checkpoint.name, checkpoint.global_model.version, checkpoint.global_model.rounds
('clf', 3, 3)
>>> checkpoint.global_model.params["coef_"]
array([[ 0.5, -1. ]])
>>> checkpoint.estimator
SGDClassifier()
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib

from . import checkpoint_format
from .checkpoint_manifest import FORMAT_NAME, FORMAT_VERSION, FORMATS, MANIFEST, build as _manifest
from .checkpoint_manifest import read as _read_manifest
from .files import fsync_dir as _fsync_dir, sha256 as _sha256
from .history import Round
from .store import GlobalModel

_STATE_PREFIX = "state-"
_STATE_SUFFIXES = tuple(suffix for _, suffix in FORMATS.values())
_TMP_MARK = ".tmp-"


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes
    ----------
    global_model : GlobalModel
        The global model as it was saved (version, rounds, parameters).
    history : list of Round
        The round history up to the save.
    estimator : scikit-learn estimator
        The unfitted estimator the workers train clones of.
    name : str
        Name of the plugin the model belongs to.
    manifest : dict
        The parsed ``manifest.json`` (versions, creation time, ...).
    path : Path
        Where the checkpoint was loaded from.
    """

    global_model: GlobalModel
    history: list[Round]
    estimator: Any
    name: str = "fedplugin"
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    path: Path | None = None

    @property
    def total_samples(self) -> int:
        """Samples trained over all saved rounds (0 without history)."""
        return self.history[-1].total_samples if self.history else 0


def save_checkpoint(
    path: str | os.PathLike,
    global_model: GlobalModel,
    history: Sequence[Round],
    estimator: Any,
    *,
    name: str = "fedplugin",
    compress: int = 3,
    format: str = "npz",
) -> Path:
    """Write a checkpoint directory at ``path``, atomically; return its path.

    Parameters
    ----------
    path : str or path-like
        Directory to write. If it exists it must be a fedplugin checkpoint (it
        is then replaced) or an empty directory; anything else is refused, so
        a typo cannot overwrite unrelated files.
    global_model : GlobalModel
        The model to save, e.g. the coordinator's current global model.
    history : sequence of Round
        The round history to save with it.
    estimator : scikit-learn estimator
        The unfitted estimator the plugin was created with.
    name : str, default "fedplugin"
        Name of the plugin the model belongs to (recorded in the manifest).
    compress : int from 0 to 9, default 3
        Compression level of the state file (0: none).
    format : {"npz", "pickle"}, default "npz"
        ``"npz"`` writes format version 2: arrays and JSON that load without
        running code; the estimator is stored as its class's import path and
        ``get_params(deep=False)`` (nested estimators alike), so it comes back
        as ``sklearn.base.clone`` would give it. ``"pickle"`` writes
        format version 1 (joblib), which stores any estimator but loads only
        with ``load_checkpoint(..., trusted=True)``: use it for estimators
        whose parameters JSON and arrays cannot hold (a callable, a
        ``RandomState``).

    Returns
    -------
    Path
        The checkpoint directory.

    Raises
    ------
    TypeError
        If ``global_model`` is not a :class:`GlobalModel`, ``history`` holds
        something other than :class:`Round` records, or (``format="npz"``) a
        value cannot be stored without pickle; the message names the value and
        suggests ``format="pickle"``. Nothing is written then.
    ValueError
        If ``format`` is not one of the above.
    FileExistsError
        If ``path`` exists and is neither a checkpoint nor an empty directory.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDRegressor
    >>> model = GlobalModel(0, {"coef_": np.zeros(4), "intercept_": np.zeros(1)}, n_features=4)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_checkpoint(f"{tmp}/reg", model, [], SGDRegressor())
    ...     sorted(p.name for p in path.iterdir())[0]
    'manifest.json'
    """
    if not isinstance(global_model, GlobalModel):
        raise TypeError(f"global_model={global_model!r} is not a GlobalModel")
    history = list(history)
    bad = [type(r).__name__ for r in history if not isinstance(r, Round)]
    if bad:
        raise TypeError(f"history holds {sorted(set(bad))}; expected fedplugin.Round records only")
    if not isinstance(name, str) or not name:
        raise TypeError(f"name={name!r} must be a non-empty string")
    if format not in FORMATS:
        raise ValueError(f"format={format!r} is not supported; expected one of {sorted(FORMATS)}")
    path = Path(path)
    existing = _existing_checkpoint(path)

    state_name = f"{_STATE_PREFIX}{uuid.uuid4().hex}{FORMATS[format][1]}"
    if existing:
        _write_into(path, state_name, global_model, history, estimator, name, compress)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{_TMP_MARK}", dir=path.parent))
        try:
            _write_into(tmp, state_name, global_model, history, estimator, name, compress)
            os.rename(tmp, path)  # atomic; fails if someone created `path` meanwhile
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | os.PathLike, *, trusted: bool = False) -> Checkpoint:
    """Read the checkpoint written by :func:`save_checkpoint` at ``path``.

    Loading a format version 2 checkpoint (the default) runs no code from
    it: arrays are read with ``allow_pickle=False``, everything else is JSON,
    and the estimator is rebuilt only if its class is a scikit-learn or
    fedplugin estimator. A format version 1 checkpoint (a pickle) is read only
    with ``trusted=True``.

    Parameters
    ----------
    path : str or path-like
        The checkpoint directory.
    trusted : bool, default False
        Whether you trust whoever wrote the checkpoint to run code in this
        process: ``True`` reads version 1 (pickle) checkpoints and rebuilds
        estimator classes from any module. Pass it only for checkpoints you
        or your own jobs wrote.

    Returns
    -------
    Checkpoint

    Raises
    ------
    FileNotFoundError
        If nothing exists at ``path``.
    ValueError
        If ``path`` is not a fedplugin checkpoint: not a directory, no or an
        unreadable manifest, another format name, a format version newer than
        this fedplugin reads, a missing state file, or a state file whose
        checksum or content does not match its manifest; or if, without
        ``trusted``, it is a pickle checkpoint, holds an object array or
        names an estimator class outside scikit-learn and fedplugin. The
        message names the path and what was expected.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sklearn.naive_bayes import GaussianNB
    >>> model = GlobalModel(0, {"theta_": np.zeros((2, 3))}, n_features=3, classes=np.array([0, 1]))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     old = save_checkpoint(f"{tmp}/old", model, [], GaussianNB(), format="pickle")
    ...     try:
    ...         load_checkpoint(old)
    ...     except ValueError as error:
    ...         print(str(error).split(": ")[1].split(".")[0])
    ...     load_checkpoint(old, trusted=True).estimator
    its state file is a pickle, and loading it runs whatever code its author put in it
    GaussianNB()
    """
    path = Path(path)
    manifest = _read_manifest(path)
    state_file = path / manifest["state_file"]
    pickled = manifest["format_version"] == 1
    if pickled and not trusted:
        raise ValueError(
            f"{path} is a format version 1 checkpoint: its state file is a pickle, and loading it runs "
            "whatever code its author put in it. Load it with load_checkpoint(path, trusted=True) or "
            "Coordinator.resume(..., trusted=True) only if you or your own jobs wrote it; saving it "
            "again writes format version 2, which loads without running code"
        )
    if not state_file.is_file():
        raise ValueError(
            f"{path} is an incomplete fedplugin checkpoint: its manifest names the state file "
            f"{manifest['state_file']!r}, which is missing"
        )
    digest = _sha256(state_file)
    if digest != manifest["sha256"]:
        raise ValueError(
            f"{state_file} is corrupted or was altered: its SHA-256 is {digest}, the manifest expects "
            f"{manifest['sha256']}"
        )
    state = _read_state(state_file, manifest, pickled, trusted)
    model = state["global_model"]
    for key in ("version", "rounds", "n_features"):
        if manifest.get(key) != getattr(model, key):
            raise ValueError(
                f"{path}: the manifest says {key}={manifest.get(key)!r} but the state file holds "
                f"{key}={getattr(model, key)!r}; expected them to agree"
            )
    return Checkpoint(
        global_model=model,
        history=list(state["history"]),
        estimator=state["estimator"],
        name=manifest["plugin_name"],
        manifest=manifest,
        path=path,
    )


def _read_state(state_file: Path, manifest: dict[str, Any], pickled: bool, trusted: bool) -> dict[str, Any]:
    if not pickled:
        return checkpoint_format.load(state_file, str(state_file), trusted=trusted)
    try:
        state = joblib.load(state_file)
    except Exception as exc:  # a checksum match with unreadable content: a version mismatch
        raise ValueError(
            f"{state_file} cannot be read ({type(exc).__name__}: {exc}); it was written with "
            f"fedplugin {manifest.get('fedplugin_version')}, scikit-learn "
            f"{manifest.get('sklearn_version')}, numpy {manifest.get('numpy_version')}"
        ) from exc
    if not isinstance(state, dict) or not isinstance(state.get("global_model"), GlobalModel):
        raise ValueError(f"{state_file} does not hold a fedplugin checkpoint state; expected a GlobalModel")
    return state


# ------------------------------------------------------------------ internals
def _write_into(
    directory: Path,
    state_name: str,
    model: GlobalModel,
    history: list[Round],
    estimator: Any,
    name: str,
    compress: int,
) -> None:
    """Write a state file, then commit it by replacing the manifest; drop old state files."""
    state_file = directory / state_name
    try:
        with open(state_file, "wb") as f:
            state = {"global_model": model, "history": history, "estimator": estimator}
            _dump(state, f, pickle=state_name.endswith(".joblib"), compress=compress)
            f.flush()
            os.fsync(f.fileno())
        manifest = _manifest(state_name, _sha256(state_file), model, history, estimator, name)
        text = json.dumps(manifest, indent=2, default=str) + "\n"
        tmp_manifest = directory / f"{MANIFEST}{_TMP_MARK}{uuid.uuid4().hex}"
        try:
            with open(tmp_manifest, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_manifest, directory / MANIFEST)  # the commit point
        except BaseException:
            tmp_manifest.unlink(missing_ok=True)
            raise
    except BaseException:
        state_file.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)
    for stale in directory.iterdir():  # the old state file, and leftovers of interrupted saves
        if stale.name != state_name and _is_leftover(stale.name):
            stale.unlink(missing_ok=True)


def _dump(state: dict[str, Any], f: Any, *, pickle: bool, compress: int) -> None:
    """Write a state file's content: joblib's pickle, or arrays and JSON."""
    if pickle:
        joblib.dump(state, f, compress=compress)
    else:
        checkpoint_format.dump(state, f, compress=compress)


def _is_leftover(file_name: str) -> bool:
    """A state file or temporary manifest, which the manifest may or may not name."""
    return (file_name.startswith(_STATE_PREFIX) and file_name.endswith(_STATE_SUFFIXES)) or file_name.startswith(
        f"{MANIFEST}{_TMP_MARK}"
    )


def _existing_checkpoint(path: Path) -> bool:
    """True if ``path`` is a checkpoint to replace, False if it is free or an empty dir."""
    if not path.exists():
        return False
    if path.is_dir() and all(_is_leftover(entry.name) for entry in path.iterdir()):
        return True  # empty, or holding only what an interrupted first save left
    try:
        _read_manifest(path, newest=False)
    except ValueError as exc:
        raise FileExistsError(
            f"{path} exists and is not a fedplugin checkpoint ({exc}); expected a new path, an "
            "empty directory or an existing checkpoint to replace"
        ) from None
    return True


__all__ = ["Checkpoint", "FORMATS", "FORMAT_NAME", "FORMAT_VERSION", "load_checkpoint", "save_checkpoint"]
