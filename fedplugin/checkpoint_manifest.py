"""The manifest of a checkpoint: what it is, written last, read first.

``manifest.json`` describes a checkpoint for people and tools without
fedplugin, and names the state file with its SHA-256; see
:mod:`fedplugin.checkpoint`.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np

from .history import Round
from .outputs import as_plain
from .store import GlobalModel

#: Value of the manifest's ``format`` field.
FORMAT_NAME = "fedplugin-checkpoint"
#: Newest layout fedplugin writes and reads; older ones stay readable (version 1 if trusted).
FORMAT_VERSION = 2
#: What ``save_checkpoint(format=...)`` accepts: its format version and state file suffix.
FORMATS = {"npz": (2, ".npz"), "pickle": (1, ".joblib")}
MANIFEST = "manifest.json"


def build(
    state_name: str, digest: str, model: GlobalModel, history: list[Round], estimator: Any, name: str
) -> dict[str, Any]:
    """The manifest of a state file ``state_name`` with SHA-256 ``digest``."""
    import sklearn

    from . import __version__

    cls = type(estimator)
    classes = as_plain(model.classes)
    return {
        "format": FORMAT_NAME,
        "format_version": FORMATS["pickle" if state_name.endswith(".joblib") else "npz"][0],
        "fedplugin_version": __version__,
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "plugin_name": name,
        "version": model.version,
        "rounds": model.rounds,
        "history_rounds": len(history),
        "total_samples": history[-1].total_samples if history else 0,
        "n_features": model.n_features,
        "classes": classes,
        "parameters": {k: list(np.shape(v)) for k, v in model.params.items()},
        "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "state_file": state_name,
        "sha256": digest,
    }


def read(path: Path, newest: bool = True) -> dict[str, Any]:
    """The checked manifest of the checkpoint at ``path`` (``newest``: refuse newer format versions)."""
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: nothing exists there")
    expected = f"expected a directory written by fedplugin.save_checkpoint, holding {MANIFEST}"
    if not path.is_dir():
        raise ValueError(f"{path} is not a fedplugin checkpoint: it is a file; {expected}")
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise ValueError(f"{path} is not a fedplugin checkpoint: it has no {MANIFEST}; {expected}")
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{manifest_file} is not valid JSON ({exc}); {expected}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"{manifest_file} has format={found!r}; expected format={FORMAT_NAME!r}")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{manifest_file} has format_version={version!r}; expected an int >= 1")
    if newest and version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format_version={version}, written by fedplugin "
            f"{manifest.get('fedplugin_version')}; this fedplugin reads format versions up to "
            f"{FORMAT_VERSION}: upgrade fedplugin to load it"
        )
    missing = [k for k in ("state_file", "sha256", "plugin_name") if not isinstance(manifest.get(k), str)]
    if missing:
        raise ValueError(f"{manifest_file} lacks {missing}; expected a complete {FORMAT_NAME} manifest")
    if Path(manifest["state_file"]).name != manifest["state_file"]:
        raise ValueError(
            f"{manifest_file} names state_file={manifest['state_file']!r}; expected a file name "
            "inside the checkpoint directory"
        )
    return manifest


__all__ = ["FORMATS", "FORMAT_NAME", "FORMAT_VERSION", "MANIFEST", "build", "read"]
