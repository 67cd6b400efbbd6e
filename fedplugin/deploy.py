"""Register fedplugin's worker plugin safely: on every worker, or on none.

``client.register_plugin`` stores a worker plugin on the scheduler *before* it
asks the workers to load it. If one worker cannot unpickle it (fedplugin, or
the estimator's package, is not installed there), the client gets a bare
``Exception`` that names no worker, while the plugin stays registered: every
later start of that worker, a nanny restart included, fails, and its nanny
gives up (dask/distributed#8694, #8695). :func:`register` first checks that
the scheduler and every worker can load the plugin, and registers nothing if
one cannot.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import re
from typing import Any

from distributed import Client
from distributed.protocol.pickle import dumps, loads

from .settings import check_client
from .wording import count


class MissingModuleError(RuntimeError, ModuleNotFoundError):
    """A process of the cluster cannot import a module the plugin needs; nothing was registered.

    Raised by :func:`~fedplugin.register`. It is both the ``RuntimeError`` that
    :func:`~fedplugin.register` documents and the ``ModuleNotFoundError`` it stands for,
    so ``except ModuleNotFoundError`` (or ``ImportError``) catches it too;
    ``name`` is the missing module (e.g. ``"fedplugin"``) and ``__cause__`` the
    error the first such process raised.
    """

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


def register(client: Client, plugin: Any, *, timeout: float = 30.0) -> dict[str, Any]:
    """Register ``plugin`` on every worker of ``client``'s cluster, or fail clearly.

    Parameters
    ----------
    client : distributed.Client
        Client of the cluster.
    plugin : FederatedModelPlugin
        The plugin to register (any ``WorkerPlugin`` works).
    timeout : float, default 30
        Seconds to wait for a first worker when the cluster has none yet (an
        adaptive cluster scaling up, workers still starting).

    Returns
    -------
    dict
        ``client.register_plugin``'s answer, by worker address.

    Raises
    ------
    MissingModuleError
        If the scheduler or a worker cannot import a module the plugin needs
        (fedplugin itself, or the estimator's package). It is a
        ``RuntimeError`` and a ``ModuleNotFoundError``; the message names each
        process that failed and says what to install. Nothing is registered.
    RuntimeError
        If the scheduler or a worker cannot load the plugin for another reason
        (the message names each and its error; the original error is the
        ``__cause__``), or the plugin's setup fails on a worker. Nothing is
        registered then, so no worker is left unable to restart. Also if no
        worker joined within ``timeout``.

    Notes
    -----
    Workers that join after the check get the plugin when they start, like
    with ``client.register_plugin``: make sure fedplugin is installed in the
    image every worker runs, at the client's version.

    Examples
    --------
    >>> from fedplugin import FederatedModelPlugin, register   # doctest: +SKIP
    >>> register(client, FederatedModelPlugin(SGDClassifier(), classes=[0, 1]))  # doctest: +SKIP
    """
    check_client(client)
    name = getattr(plugin, "name", None) or type(plugin).__name__
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise RuntimeError(
            f"cannot register plugin {name!r}: the cluster at {client.scheduler.address} has no "
            f"workers after timeout={timeout} s; start workers (e.g. `dask worker {client.scheduler.address}`) "
            "or scale the cluster up, then register again"
        ) from None
    payload = dumps(plugin)
    problems = _cannot_load(client, payload)
    if problems:
        raise _cannot_load_error(name, problems, client) from next(iter(problems.values()))
    try:
        registered = client.register_plugin(plugin)
    except Exception as exc:
        # A worker that joined after the check, or a failing setup: take the
        # plugin back from the scheduler so that it poisons no restart.
        error = real_error(exc)
        try:
            client.unregister_worker_plugin(name)
        except Exception:
            pass
        problems = _cannot_load(client, payload)
        if problems:
            raise _cannot_load_error(name, problems, client) from error
        message = (
            f"cannot register plugin {name!r}: its setup failed on a worker ({_describe(error)}); "
            "it was unregistered again, so nothing was registered"
        )
        if isinstance(error, ModuleNotFoundError):
            raise MissingModuleError(message, name=error.name) from error
        raise RuntimeError(message) from error
    from .ownership import replace_foreign_model
    from .plugin import FederatedModelPlugin

    if isinstance(plugin, FederatedModelPlugin):  # only once registered: nothing is dropped for a failure
        replace_foreign_model(client, name, plugin.estimator, plugin.classes)
    return registered


def _cannot_load(client: Client, payload: bytes) -> dict[str, BaseException]:
    """``{process: error}`` for the scheduler and each worker that cannot unpickle ``payload``."""
    # distributed's own loads, as the worker's plugin_add does: importable everywhere.
    # The scheduler must load fedplugin too: every worker's setup registers the
    # scheduler-side ModelStore.
    problems: dict[str, BaseException] = {}
    try:
        client.run_on_scheduler(loads, payload)
    except Exception as exc:
        problems[f"scheduler {client.scheduler.address}"] = real_error(exc)
    answers = client.run(loads, payload, on_error="return")
    for worker, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            problems[worker] = real_error(answer)
    return problems


def real_error(error: BaseException) -> BaseException:
    r"""The error a remote process raised, with its own type.

    ``distributed`` hands some remote errors to the client as a bare
    ``Exception`` whose text is the original's ``repr``, such as
    ``Exception("ModuleNotFoundError(\"No module named 'fedplugin'\")")``. For
    a built-in exception type this rebuilds the original (with ``name`` set
    for a missing module); any other error is returned as it is.

    Examples
    --------
    >>> real_error(Exception("ModuleNotFoundError(\"No module named 'fedplugin'\")"))
    ModuleNotFoundError("No module named 'fedplugin'")
    >>> real_error(Exception("ModuleNotFoundError(\"No module named 'fedplugin'\")")).name
    'fedplugin'
    >>> real_error(Exception("something else"))
    Exception('something else')
    """
    if type(error) is not Exception or len(error.args) != 1 or not isinstance(error.args[0], str):
        return error
    match = re.fullmatch(r"([A-Za-z_]\w*)\((.*)\)", error.args[0], flags=re.DOTALL)
    kind = getattr(builtins, match[1], None) if match else None
    if not (isinstance(kind, type) and issubclass(kind, Exception)):
        return error
    try:
        args = ast.literal_eval(f"({match[2]},)") if match[2] else ()
        real = kind(*args)
    except Exception:
        return error
    if isinstance(real, ImportError) and real.name is None:
        missing = re.search(r"No module named '([^']+)'", str(real))
        real.name = missing[1] if missing else None
    return real


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _cannot_load_error(name: str, problems: dict[str, BaseException], client: Client) -> RuntimeError:
    """The error :func:`register` raises: a MissingModuleError when only modules are missing."""
    from . import __version__

    total = len(client.scheduler_info(n_workers=-1)["workers"])
    bad_workers = sum(not key.startswith("scheduler ") for key in problems)
    who = f"{bad_workers} of {count(total, 'worker')}" if bad_workers else "the scheduler"
    if bad_workers and len(problems) > bad_workers:
        who = f"the scheduler and {who}"
    lines = "\n".join(f"  {where}: {_describe(error)}" for where, error in problems.items())
    message = (
        f"cannot register plugin {name!r}: {who} cannot load it, so nothing was registered "
        f"(a worker that cannot load a registered plugin fails at every restart):\n{lines}\n"
        f"Install fedplugin {__version__} and the estimator's package in the environment of the "
        "scheduler and every worker (the cluster's image), then register again."
    )
    missing = {error.name for error in problems.values() if isinstance(error, ModuleNotFoundError)}
    if all(isinstance(error, ModuleNotFoundError) for error in problems.values()):
        return MissingModuleError(message, name=next(iter(missing)) if len(missing) == 1 else None)
    return RuntimeError(message)


def resolve_plugin(client: Client, plugin: Any) -> tuple[str, Any, Any]:
    """The name, estimator and classes of ``plugin`` (a registered plugin or its name), checked on every worker."""
    from . import tasks
    from .plugin import FederatedModelPlugin

    if isinstance(plugin, type):
        raise TypeError(f"plugin={plugin.__name__} is a class; expected a registered FederatedModelPlugin(...)")
    if not isinstance(plugin, (FederatedModelPlugin, str)):
        raise TypeError(f"plugin={plugin!r} is not a FederatedModelPlugin or a plugin name")
    name = plugin if isinstance(plugin, str) else plugin.name
    configs = client.run(tasks.describe, name)
    if not configs:
        raise ValueError("the cluster has no workers; expected at least one worker")
    missing = sorted(w for w, c in configs.items() if c is None)
    if missing:
        known = sorted(set(itertools.chain.from_iterable(client.run(tasks.fedplugin_names).values())))
        raise ValueError(
            f"plugin name {name!r} is not registered on workers {missing}; registered "
            f"fedplugin plugins: {known}. Call fedplugin.register(client, FederatedModelPlugin(..., name={name!r})) first"
        )
    if isinstance(plugin, FederatedModelPlugin):
        return name, plugin.estimator, plugin.classes
    config = next(iter(configs.values()))
    return name, config["estimator"], config["classes"]


__all__ = ["MissingModuleError", "real_error", "register", "resolve_plugin"]
