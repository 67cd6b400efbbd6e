"""Checkpoints of a coordinator: save now, keep in step every round, resume.

:class:`CheckpointMixin` gives the :class:`~fedplugin.Coordinator` its
``save``, ``resume`` and per-round autosave; the file format lives in
:mod:`fedplugin.checkpoint`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client

from . import store
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .outputs import as_plain, same_classes


class CheckpointMixin:
    """Checkpoint methods, for a coordinator.

    Needs ``client``, ``name``, ``estimator``, ``classes``, ``adapter``,
    ``checkpoint``, ``history``, ``_global``, ``_check_fitted()``,
    ``_publish()`` and ``close()``.
    """

    #: Format of :meth:`save` and the per-round saves (see :func:`~fedplugin.save_checkpoint`):
    #: set it to ``"pickle"`` on a coordinator whose estimator has parameters that JSON and
    #: arrays cannot hold (a callable, a ``RandomState``); resuming then needs ``trusted=True``.
    checkpoint_format = "npz"

    def save(self, path: str | os.PathLike | None = None, *, format: str | None = None) -> Path:
        """Write the global model, history and estimator to a checkpoint directory.

        Parameters
        ----------
        path : str or path-like, optional
            Where to write; defaults to the ``checkpoint`` given at construction.
        format : {"npz", "pickle"}, optional
            The checkpoint format (see :func:`~fedplugin.save_checkpoint`);
            defaults to the coordinator's ``checkpoint_format``, ``"npz"``.

        Returns
        -------
        Path
            The checkpoint directory, for :meth:`resume` or
            :func:`~fedplugin.load_checkpoint`.
        """
        self._check_fitted()
        path = self.checkpoint if path is None else Path(path)
        if path is None:
            raise ValueError("path=None and no checkpoint= was given; expected a directory to write")
        return save_checkpoint(
            path, store.fetch(self.client, self.name), self.history, self.estimator, name=self.name,
            format=self.checkpoint_format if format is None else format,
        )

    @classmethod
    def resume(
        cls, client: Client, plugin: Any, path: str | os.PathLike, *, trusted: bool = False, **kwargs: Any
    ) -> Any:
        """A coordinator that carries on from the checkpoint at ``path``.

        The checkpoint's global model is published to the scheduler's store and
        every worker (replacing whatever model the plugin holds), and the
        history and sample count continue from it. ``kwargs`` go to the
        constructor; ``checkpoint`` defaults to ``path``, so the resumed run
        keeps checkpointing there (pass ``checkpoint=None`` to stop).
        ``trusted`` goes to :func:`~fedplugin.load_checkpoint`: pass ``True``
        only for a checkpoint you or your own jobs wrote, to read one written
        as a pickle (format version 1) or holding an estimator class from
        outside scikit-learn and fedplugin. The run's own saves write format
        version 2.

        Raises
        ------
        ValueError
            If ``path`` holds no readable checkpoint, one that needs
            ``trusted=True``, or one whose estimator, features or classes do
            not fit ``plugin``.
        """
        saved = load_checkpoint(path, trusted=trusted)
        kwargs.setdefault("checkpoint", path)
        coord = cls(client, plugin, **kwargs)
        try:
            check_fits(saved, coord.estimator, coord.classes, coord.adapter, path, coord.name)
            # force: the store may hold a newer version of another run under this name
            coord._publish(saved.global_model, force=True)
            coord.history.load(saved.history)
            coord._total_samples = saved.total_samples
        except BaseException:
            coord.close()
            raise
        return coord

    def _autosave(self) -> None:
        """Keep the ``checkpoint`` directory in step with the global model."""
        if self.checkpoint is not None and self._global is not None:
            self.save()


def check_fits(saved: Checkpoint, estimator: Any, classes: Any, adapter: Any, path: Any, name: str) -> None:
    """Raise ``ValueError`` unless this checkpoint can seed plugin ``name``'s model."""
    model = saved.global_model
    if type(saved.estimator) is not type(estimator):
        raise ValueError(
            f"the checkpoint at {path} holds a {type(saved.estimator).__name__} model; plugin "
            f"{name!r} trains {type(estimator).__name__}: expected the same estimator class"
        )
    if classes is not None and not same_classes(classes, model.classes):
        raise ValueError(
            f"the checkpoint at {path} has classes={as_plain(model.classes)}; plugin {name!r} has "
            f"classes={as_plain(classes)}: expected the same classes"
        )
    expected = adapter.get_params(adapter.initialize_like(estimator, model))
    shape = np.shape if adapter.fixed_shapes else (lambda value: np.shape(value)[1:])
    shapes = {k: shape(v) for k, v in model.params.items()}
    wanted = {k: shape(v) for k, v in expected.items()}
    if shapes != wanted:
        raise ValueError(f"the checkpoint at {path} has parameters {shapes}; plugin {name!r} expects {wanted}")
