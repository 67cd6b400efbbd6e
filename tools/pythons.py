"""The Python interpreters on this machine that setup.cfg's ``python_requires`` admits.

Used by the Makefile (to create ``.venv`` with a supported Python when ``python3`` is older)
and by noxfile.py (to run each session on the lowest or highest supported Python). It looks at
``python3`` and ``python3.N`` on PATH and at pyenv's versions (``$PYENV_ROOT/versions``); a
pyenv shim for a version that is not active does not run, so it is skipped.

    python3 tools/pythons.py              # the interpreter `make` uses: python3 if admitted,
                                          # else the newest admitted one (exit 1 if none)
    python3 tools/pythons.py --all        # "X.Y path" for each admitted minor version
    python3 tools/pythons.py --check PY   # exit 0 if interpreter PY is admitted

Runs on any Python 3.8+, without third-party packages.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_requires() -> tuple[int, int]:
    """The lowest (major, minor) of setup.cfg's ``python_requires``, which must read ``>=X.Y``."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    spec = config["options"]["python_requires"].strip()
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", spec)
    if not match:
        raise SystemExit(f"setup.cfg: python_requires={spec!r} is not of the form '>=X.Y'")
    return int(match[1]), int(match[2])


def version_of(python: str) -> tuple[int, int, int] | None:
    """(major, minor, micro) of an interpreter, or None if it does not run."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    major, minor, micro = (int(part) for part in out.stdout.split())
    return major, minor, micro


def candidates() -> list[str]:
    """Paths of interpreters worth asking: python3 and python3.N on PATH, then pyenv's CPythons."""
    found = []
    for name in ["python3"] + [f"python3.{minor}" for minor in range(30, 7, -1)]:
        path = shutil.which(name)
        if path:
            found.append(path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for version_dir in sorted((pyenv_root / "versions").glob("3.*")):
        python = version_dir / "bin" / "python3"
        if re.fullmatch(r"3\.\d+\.\d+", version_dir.name) and python.exists():
            found.append(str(python))
    return found


def admitted() -> dict[tuple[int, int], str]:
    """{(major, minor): path} of the admitted interpreters, the newest micro of each minor."""
    floor = python_requires()
    best: dict[tuple[int, int], tuple[int, str]] = {}
    for path in candidates():
        version = version_of(path)
        if version is None or version[:2] < floor:
            continue
        if version[:2] not in best or version[2] > best[version[:2]][0]:
            best[version[:2]] = (version[2], path)
    return {minor: path for minor, (_, path) in sorted(best.items())}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        version = version_of(argv[1])
        return 0 if version is not None and version[:2] >= python_requires() else 1
    found = admitted()
    if argv[:1] == ["--all"]:
        for (major, minor), path in found.items():
            print(f"{major}.{minor} {path}")
        return 0 if found else 1
    if not found:
        floor = ".".join(map(str, python_requires()))
        print(f"no Python >= {floor} found (python3, python3.N on PATH, pyenv versions)", file=sys.stderr)
        return 1
    python3 = shutil.which("python3")
    if python3 and python3 in found.values():
        print(python3)
    else:
        print(found[max(found)])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
