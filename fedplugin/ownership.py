"""Plugin names and their stored models: re-used names, forgetting a model.

The scheduler keeps the newest global model of every plugin *name* (see
:mod:`fedplugin.store`), so a new client, coordinator or restarted worker
carries on from it. When a name is re-used for another model (another
estimator, other classes), the stored model must not be forced on it: it is
dropped with a warning (by :func:`fedplugin.register` and by a new
:class:`~fedplugin.Coordinator`), and a worker whose plugin starts next to a
stored model that does not fit it starts without one instead of failing.
:func:`forget` drops a stored model on purpose.

Examples
--------
>>> import numpy as np
>>> from sklearn.naive_bayes import GaussianNB, MultinomialNB
>>> from fedplugin.store import GlobalModel
>>> stored = GlobalModel(
...     3, {"class_count_": np.ones(2), "feature_count_": np.ones((2, 4))}, 4,
...     np.array([0, 1]), estimator="MultinomialNB",
... )
>>> print(mismatch(MultinomialNB(), None, stored))
None
>>> mismatch(GaussianNB(), np.array([0, 1, 2]), stored)
'it was trained by a MultinomialNB, not a GaussianNB'
>>> mismatch(MultinomialNB(), np.array([0, 1, 2]), stored)
'its classes are [0, 1], the plugin says classes=[0, 1, 2]'
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from distributed import Client
from sklearn.base import BaseEstimator

from . import store, tasks
from .adapters import adapter_for
from .blocks import DataDoesNotFitModel
from .outputs import as_plain, same_classes
from .store import GlobalModel
from .user_warning import warn_user


def mismatch(estimator: BaseEstimator, classes: np.ndarray | None, model: GlobalModel) -> str | None:
    """Why ``model`` cannot be the global model of a plugin of ``estimator``; ``None`` if it can.

    Parameters
    ----------
    estimator : scikit-learn estimator
        The plugin's estimator.
    classes : ndarray or None
        The plugin's classes (``None``: read from the data, any stored ones fit).
    model : GlobalModel
        The stored model.

    Returns
    -------
    str or None
        A reason in words ("it was trained by a ..."), or ``None``.
    """
    family = type(estimator).__name__
    if model.estimator and model.estimator != family:
        return f"it was trained by a {model.estimator}, not a {family}"
    if classes is not None and not same_classes(classes, model.classes):
        return f"its classes are {as_plain(model.classes)}, the plugin says classes={as_plain(classes)}"
    try:
        adapter = adapter_for(estimator)
        local = adapter.initialize_like(estimator, model)
        adapter.set_params(local, copy.deepcopy(model.params))
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # what a model that does not fit raises
        return f"its parameters do not load into a {family} ({exc})"
    return None


def replace_foreign_model(client: Client, name: str, estimator: BaseEstimator, classes: Any) -> bool:
    """Drop the stored model of ``name`` with a warning if it does not fit the plugin; True if dropped."""
    classes = None if classes is None or isinstance(classes, list) else np.asarray(classes)
    reason = store.on_stored(client, name, _mismatch_of, estimator, classes)
    if reason is None:
        return False
    warn_user(
        f"plugin name {name!r} held a stored global model that does not fit its plugin "
        f"({type(estimator).__name__}): {reason}. It was dropped and training starts from a new "
        f"model. To keep both models, register the new plugin under another name.",
    )
    forget(client, name)
    return True


def _mismatch_of(model: GlobalModel, estimator: BaseEstimator, classes: Any) -> str | None:
    return mismatch(estimator, classes, model)


@contextmanager
def explain_mismatch(name: str, version: int) -> Iterator[None]:
    """Data that does not fit the existing global model of ``name``: say how to start a new one."""
    try:
        yield
    except DataDoesNotFitModel as exc:
        if version < 0:
            raise  # no global model yet: the data disagrees with the plugin itself
        raise DataDoesNotFitModel(
            f"{exc.reason}. Plugin {name!r} holds a global model already (version {version}); to "
            f"train a new model on this data, call fedplugin.forget(client, {name!r}) first, "
            "or register the plugin under another name",
            reason=exc.reason,  # for FederatedEstimator, whose plugin name is its own affair
        ) from None


def forget(client: Client, name: str) -> None:
    """Drop the stored global model of plugin ``name``, and every worker's copy of it.

    The plugin stays registered: its next ``fit`` starts from a new model (use
    ``client.unregister_worker_plugin(name)`` to remove the plugin as well).
    Forgetting a name that has no stored model does nothing.

    Parameters
    ----------
    client : distributed.Client
        Client of the cluster.
    name : str
        The plugin name.

    Examples
    --------
    >>> import fedplugin                      # doctest: +SKIP
    >>> fedplugin.forget(client, "clf")       # doctest: +SKIP
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name={name!r} must be a plugin name (a non-empty string)")
    store.drop(client, name)
    # Workers without this plugin answer with an error, which is fine: nothing to forget there.
    client.run(tasks.reload, name, on_error="return")


__all__ = ["explain_mismatch", "forget", "mismatch", "replace_foreign_model"]
