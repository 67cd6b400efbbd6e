"""What counts as training that diverged, and the error when it happens twice on a block.

A worker whose ``partial_fit`` diverges is reset to the global model and its
blocks are trained again (:meth:`fedplugin.FederatedModelPlugin.train`, and
the round engine); a block that diverges a second time stops the fit with
:class:`TrainingDiverged`.

Examples
--------
>>> print(diverged_twice(3, ("tcp://a", "overflow"), ("tcp://b", "overflow")))  # doctest: +ELLIPSIS
training diverged twice on block 3: on worker tcp://a (overflow), then on worker tcp://b (overflow). Try a smaller learning rate ...
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .rounds import is_finite

#: Words in scikit-learn's errors when training diverges (SGD: "Floating-point
#: under-/overflow"; MLP: "Solver produced non-finite parameter weights"). Not
#: "NaN" or "infinity": those name bad input ("Input X contains NaN"), which is
#: the user's error to fix, not a reason to train the block again.
DIVERGENCE_WORDS = ("overflow", "non-finite parameter")


def train_one(plugin: Any, index: int, X: np.ndarray, y: np.ndarray) -> str | None:
    """Train one block; return what went wrong if training diverged, else ``None``."""
    try:
        plugin.adapter.partial_fit(plugin.model, X, y)
    except (ValueError, ArithmeticError) as exc:
        if isinstance(exc, ArithmeticError) or any(word in str(exc).lower() for word in DIVERGENCE_WORDS):
            return str(exc)
        raise ValueError(f"block {index}: {exc}") from exc
    if not is_finite(plugin.adapter.get_params(plugin.model)):
        return "training left non-finite (NaN or infinite) parameters"
    return None


class TrainingDiverged(ValueError):
    """The same block made training diverge twice: the fit stops (and is rolled back)."""


def diverged_once(index: int, worker: str, message: str) -> str:
    """The warning when a block first diverges: the worker, the block, what happens next."""
    return (
        f"training diverged on worker {worker}, block {index} ({message}); the worker was reset "
        "to the global model and left out of its open rounds, and its blocks are trained again"
    )


def diverged_twice(index: int, first: tuple[str, str], second: tuple[str, str]) -> str:
    """The message of :class:`TrainingDiverged`: the block, each ``(worker, error)``, what to try."""
    return (
        f"training diverged twice on block {index}: on worker {first[0]} ({first[1]}), then on worker "
        f"{second[0]} ({second[1]}). Try a smaller learning rate (eta0= for SGD estimators, "
        "learning_rate_init= for MLP) or scaled features (e.g. StandardScaler); the global model is "
        "left as it was before this fit"
    )


__all__ = ["DIVERGENCE_WORDS", "TrainingDiverged", "diverged_once", "diverged_twice", "train_one"]
