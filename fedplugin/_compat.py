"""Differences between the dependency versions fedplugin supports, in one place.

The supported versions (setup.cfg, docs/guide/versions.rst) follow SPEC 0; ``nox -s minimum``
tests the floors. When a floor is raised past a version named here, the code for it goes.
"""

from __future__ import annotations

import re
from typing import Any

import sklearn
from sklearn.linear_model import SGDClassifier, SGDRegressor


#: (major, minor) of the installed scikit-learn.
SKLEARN_VERSION = tuple(int(part) for part in re.findall(r"\d+", sklearn.__version__)[:2])

#: scikit-learn 1.8 made ``SGDClassifier/SGDRegressor(learning_rate="pa1" or "pa2", eta0=C)``
#: the passive-aggressive algorithms (and deprecated ``PassiveAggressive*``). Before 1.8 those
#: learning rates are hidden options of ``PassiveAggressive*``: an ``SGD*`` accepts them with
#: any loss and silently ignores ``eta0`` (C stays 1.0), so it would not train what
#: :func:`fedplugin.passive_aggressive_grid` and the docs promise. fedplugin refuses them there.
SGD_PASSIVE_AGGRESSIVE = SKLEARN_VERSION >= (1, 8)


def check_estimator_settings(estimator: Any) -> None:
    """Raise ``ValueError`` for settings the installed scikit-learn would silently train otherwise.

    Called where fedplugin probes an estimator's settings (a plugin's constructor, each
    candidate of a search), so the refusal surfaces as scikit-learn's own errors do.
    """
    learning_rate = getattr(estimator, "learning_rate", None)
    if (
        not SGD_PASSIVE_AGGRESSIVE
        and isinstance(estimator, (SGDClassifier, SGDRegressor))
        and learning_rate in ("pa1", "pa2")
    ):
        kind = "Classifier" if isinstance(estimator, SGDClassifier) else "Regressor"
        raise ValueError(
            f"learning_rate={learning_rate!r} trains the passive-aggressive algorithm with "
            f"eta0 as C only from scikit-learn 1.8; scikit-learn {sklearn.__version__} ignores "
            f"eta0 there. Use PassiveAggressive{kind}(C=...) or upgrade scikit-learn."
        )
