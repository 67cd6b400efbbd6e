"""fedplugin against the oldest and newest dependency versions it supports, and as a built wheel.

    nox -s minimum   # every floor of setup.cfg pinned exactly, on the lowest supported Python
    nox -s newest    # the newest releases, on the highest supported Python
    nox -s wheel     # build the sdist and wheel, install the wheel, test it from outside the tree

``make compat`` runs all three (CI does, after ``make test`` and ``make docs``). Each session
makes a fresh environment in ``.nox/`` and runs the tests marked ``compat``, a fast subset;
arguments after ``--`` replace that selection, e.g. ``nox -s minimum -- tests/test_search.py``.
The Pythons are those on this machine that ``python_requires`` admits (``tools/pythons.py``:
PATH and pyenv). Environments are made with uv when it is installed (``pip install -e .[dev]``
installs it), else with venv and pip.
"""

from __future__ import annotations

import configparser
import os
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import nox
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))
import pythons  # noqa: E402  (tools/ is not a package)

nox.options.default_venv_backend = "uv|venv"
nox.options.sessions = ["minimum", "newest", "wheel"]
nox.options.error_on_missing_interpreters = True
# Compile bytecode at install time: with PYTHONDONTWRITEBYTECODE set, every Dask worker
# process would otherwise compile scikit-learn, pandas, ... again (~5 s a worker start).
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")  # only this machine's Pythons

INTERPRETERS = pythons.admitted()
if not INTERPRETERS:
    raise SystemExit(f"no Python admitted by setup.cfg's python_requires found ({pythons.__file__})")
# python3.N on PATH must be the interpreter itself (a pyenv shim of an inactive version fails).
os.environ["PATH"] = os.pathsep.join([str(Path(p).parent) for p in INTERPRETERS.values()] + [os.environ["PATH"]])
LOWEST = "%d.%d" % min(INTERPRETERS)
HIGHEST = "%d.%d" % max(INTERPRETERS)

#: What the sessions run unless arguments follow ``--``.
COMPAT_TESTS = ["-m", "compat", "tests"]


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "setup.cfg")
    return config


def requirements(*extras: str) -> list[Requirement]:
    """setup.cfg's install_requires and the requirements of ``extras``, each name once."""
    config = setup_cfg()
    lines = config["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += config["options.extras_require"][extra].splitlines()
    found: dict[str, Requirement] = {}
    for line in filter(None, (line.strip() for line in lines)):
        requirement = Requirement(line)
        found.setdefault(requirement.name, requirement)
    return list(found.values())


def minimum_pins(*extras: str) -> list[str]:
    """``name[extras]==floor`` for each requirement: setup.cfg declares each as ``>=floor``."""
    pins = []
    for requirement in requirements(*extras):
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != ">=":
            raise SystemExit(f"setup.cfg: {requirement} must be a plain '>=' floor to be pinned")
        extras_part = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        pins.append(f"{requirement.name}{extras_part}=={specifiers[0].version}")
    return pins


def show_versions(session: nox.Session, names: list[str]) -> None:
    """Print what the session installed; fail unless each ``name==version`` given matches."""
    session.run("python", str(ROOT / "tools" / "show_versions.py"), *names)


@nox.session(python=LOWEST)
def minimum(session: nox.Session) -> None:
    """The declared minimum versions, exactly, on the lowest supported Python."""
    pins = minimum_pins("test")
    session.install(*pins, "-e", ".")
    show_versions(session, pins)
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *(session.posargs or COMPAT_TESTS))


@nox.session(python=HIGHEST)
def newest(session: nox.Session) -> None:
    """The newest releases of every dependency, on the highest supported Python."""
    # river: tests/test_change_detection.py compares fedplugin's detectors with river's (not a
    # dependency of fedplugin: it needs a newer numpy than the declared minimum).
    session.install("--upgrade", "-e", ".[test]", "river")
    show_versions(session, [requirement.name for requirement in requirements("test")])
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *(session.posargs or COMPAT_TESTS))


@nox.session(python=HIGHEST)
def wheel(session: nox.Session) -> None:
    """Build the sdist and the wheel (from the sdist), install the wheel, test it from elsewhere."""
    tmp = Path(session.create_tmp()).resolve()
    dist = tmp / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.install("build[uv]")
    session.run("python", "-m", "build", "--installer", "uv", "--outdir", str(dist), str(ROOT))
    (wheel_file,) = dist.glob("*.whl")
    (sdist_file,) = dist.glob("*.tar.gz")
    missing = check_distributions(wheel_file, sdist_file)
    if missing:
        session.error(f"{wheel_file.name} / {sdist_file.name}: {', '.join(missing)}")
    session.install(f"fedplugin[test] @ {wheel_file.as_uri()}")

    # The tests and their pytest settings, copied away from the source tree: ``import
    # fedplugin`` can only find the installed wheel.
    tests = tmp / "tests"
    shutil.rmtree(tests, ignore_errors=True)
    shutil.copytree(ROOT / "tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
    settings = dict(setup_cfg()["tool:pytest"])
    settings.pop("testpaths", None)
    ini = configparser.ConfigParser(interpolation=None)
    ini["pytest"] = settings
    with open(tmp / "pytest.ini", "w") as file:
        ini.write(file)
    session.chdir(tmp)
    site = session.run(
        "python", "-c", "import fedplugin; print(fedplugin.__file__)", silent=True
    ).strip().splitlines()[-1]
    if not Path(site).resolve().is_relative_to(Path(session.virtualenv.location).resolve()):
        session.error(f"fedplugin was imported from {site}, not from the installed wheel")
    session.log(f"fedplugin imported from {site}")
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *(session.posargs or COMPAT_TESTS))


def check_distributions(wheel_file: Path, sdist_file: Path) -> list[str]:
    """What the wheel (py.typed, the license, no tests) or the sdist (the same files) lacks."""
    with zipfile.ZipFile(wheel_file) as archive:
        names = archive.namelist()
    needed = {"fedplugin/py.typed": "fedplugin/py.typed" in names}
    needed["LICENSE in .dist-info"] = any(".dist-info/" in n and n.endswith("/LICENSE") for n in names)
    needed["no tests"] = not any(n.startswith("tests/") for n in names)
    with tarfile.open(sdist_file) as archive:
        sdist_names = {name.split("/", 1)[-1] for name in archive.getnames()}
    needed["LICENSE in the sdist"] = "LICENSE" in sdist_names
    needed["py.typed in the sdist"] = "fedplugin/py.typed" in sdist_names
    return [what for what, ok in needed.items() if not ok]
