"""Checkpoints of a coordinator: save now, keep in step every round, resume.

:class:`CheckpointMixin` gives the :class:`~fedplugin.Coordinator` its
``save``, ``resume`` and per-round autosave; the file format lives in
:mod:`fedplugin.checkpoint`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from distributed import Client

from . import store
from .checkpoint import load_checkpoint, save_checkpoint


class CheckpointMixin:
    """Checkpoint methods, for a coordinator.

    Needs ``client``, ``name``, ``estimator``, ``classes``, ``adapter``,
    ``checkpoint``, ``history``, ``_global``, ``_check_fitted()``,
    ``_publish()`` and ``close()``.
    """

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the global model, history and estimator to a checkpoint directory.

        Parameters
        ----------
        path : str or path-like, optional
            Where to write; defaults to the ``checkpoint`` given at construction.

        Returns
        -------
        Path
            The checkpoint directory, for :meth:`resume` or
            :func:`fedplugin.checkpoint.load_checkpoint`.
        """
        self._check_fitted()
        path = self.checkpoint if path is None else Path(path)
        if path is None:
            raise ValueError("path=None and no checkpoint= was given; expected a directory to write")
        return save_checkpoint(path, store.fetch(self.client, self.name), self.history, self.estimator, name=self.name)

    @classmethod
    def resume(
        cls, client: Client, plugin: Any, path: str | os.PathLike, **kwargs: Any
    ) -> Any:
        """A coordinator that carries on from the checkpoint at ``path``.

        The checkpoint's global model is published to the scheduler's store and
        every worker (replacing whatever model the plugin holds), and the
        history and sample count continue from it. ``kwargs`` go to the
        constructor; ``checkpoint`` defaults to ``path``, so the resumed run
        keeps checkpointing there (pass ``checkpoint=None`` to stop).

        Raises
        ------
        ValueError
            If ``path`` holds no readable checkpoint, or one whose estimator,
            features or classes do not fit ``plugin``.
        """
        saved = load_checkpoint(path)
        kwargs.setdefault("checkpoint", path)
        coord = cls(client, plugin, **kwargs)
        try:
            saved.check_fits(coord.estimator, coord.classes, coord.adapter, path, coord.name)
            # force: the store may hold a newer version of another run under this name
            coord._publish(saved.global_model, force=True)
            coord.history = list(saved.history)
            coord._total_samples = saved.total_samples
        except BaseException:
            coord.close()
            raise
        return coord

    def _autosave(self) -> None:
        """Keep the ``checkpoint`` directory in step with the global model."""
        if self.checkpoint is not None and self._global is not None:
            self.save()
