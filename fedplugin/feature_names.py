"""Feature names: the column names a model was first trained on, checked on every later ``X``.

fedplugin follows scikit-learn's rules (``sklearn.utils.validation._check_feature_names``):
the first fit records the column names of a DataFrame whose names are all
strings (a pandas or a dask DataFrame, see :func:`feature_names`); later
``X`` with other names, or the same names in another order, is refused before
anything is trained or predicted; ``X`` without names for a model trained with
them (or the other way round) gets scikit-learn's ``UserWarning``. Names are
read once per array, batch or dask collection, on the client, never per row.

Examples
--------
>>> import pandas as pd
>>> feature_names(pd.DataFrame([[1.0, 2.0]], columns=["a", "b"]))
array(['a', 'b'], dtype=object)
>>> feature_names(pd.DataFrame([[1.0, 2.0]])) is None  # not strings: no names
True
>>> print(names_mismatch(np.array(["b", "a"], dtype=object), np.array(["a", "b"], dtype=object)))
X has the model's feature names in another order, ['b', 'a']; expected ['a', 'b'] (reorder the columns: X[['a', 'b']])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectFromModel
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import _get_feature_names  # scikit-learn's own rules for names

from .user_warning import warn_user

try:  # pandas is optional, as in blocks.py
    import pandas as pd
except ImportError:  # pragma: no cover
    pd = None

#: Names an error message lists before it abbreviates.
SHOWN = 8
#: Meta-estimators whose inner estimators get ``X`` as given (a DataFrame stays one).
PASS_X_ON: tuple[type, ...] = (OneVsRestClassifier, MultiOutputClassifier, MultiOutputRegressor, SelectFromModel)


def feature_names(X: Any) -> np.ndarray | None:
    """The column names of a pandas or dask DataFrame ``X`` if all are strings, else ``None``.

    A dask DataFrame knows its columns without computing anything. Mixed
    string and non-string names raise scikit-learn's ``TypeError``.
    """
    columns = getattr(X, "columns", None)
    if columns is None or pd is None or not isinstance(columns, pd.Index):
        return None
    return _get_feature_names(X if isinstance(X, pd.DataFrame) else pd.DataFrame(columns=columns))


def names_mismatch(found: np.ndarray, fitted: np.ndarray, label: str = "X") -> str | None:
    """What differs between ``found`` names and the ``fitted`` ones (``None``: nothing)."""
    if len(found) == len(fitted) and (found == fitted).all():
        return None
    known, given = set(fitted), set(found)
    unseen = [name for name in found if name not in known]
    missing = [name for name in fitted if name not in given]
    if not unseen and not missing and len(found) == len(fitted):
        return (
            f"{label} has the model's feature names in another order, {_show(found)}; expected "
            f"{_show(fitted)} ({_reorder(fitted, label)})"
        )
    differences = [f"{what} {_show(names)}" for what, names in (("unseen at fit time:", unseen), ("missing:", missing)) if names]
    return (
        f"{label} has other feature names than the model was fitted with ({'; '.join(differences) or 'repeated names'}); "
        f"expected the columns {_show(fitted)}"
    )


def check_feature_names(
    found: np.ndarray | None, fitted: np.ndarray | None, estimator: str, *, label: str = "X", error: type = ValueError
) -> None:
    """Raise ``error`` if ``found`` names differ from ``fitted`` ones; warn if only one side has names.

    ``estimator`` is the class name the warnings name, as scikit-learn's do.
    """
    if found is None and fitted is None:
        return
    if fitted is None:
        warn_user(f"{label} has feature names, but {estimator} was fitted without feature names")
    elif found is None:
        warn_user(f"{label} does not have valid feature names, but {estimator} was fitted with feature names")
    else:
        message = names_mismatch(found, fitted, label)
        if message is not None:
            raise error(message)


def refuse_other_names(X: Any, model: BaseEstimator) -> Any:
    """``X``, after a ``ValueError`` if its names are not ``model.feature_names_in_`` in that order.

    Names on one side only are left to ``model``, which warns as scikit-learn does.
    """
    found, fitted = feature_names(X), getattr(model, "feature_names_in_", None)
    message = None if found is None or fitted is None else names_mismatch(found, fitted)
    if message is not None:
        raise ValueError(message)
    return X


def with_feature_names(model: BaseEstimator, names: np.ndarray | None) -> BaseEstimator:
    """``model`` given ``feature_names_in_`` where scikit-learn would have set them fitting on a DataFrame.

    On the model itself; on a pipeline's first step (``Pipeline.feature_names_in_``
    reads it there); and on the inner estimators of the meta-estimators that
    hand ``X`` on as they got it (``PASS_X_ON``), which check it when
    predicting. Others (``OneVsOneClassifier``, fedplugin's ``CandidateSet``)
    convert ``X`` to an array first: their inner estimators have no names.
    """
    if names is None:
        return model
    if isinstance(model, Pipeline):
        first = next((step for _, step in model.steps if step is not None and not isinstance(step, str)), None)
        if first is not None:
            with_feature_names(first, names)
        return model
    model.feature_names_in_ = np.asarray(names, dtype=object)
    if isinstance(model, PASS_X_ON):
        inner = vars(model).get("estimators_", [vars(model).get("estimator_")])
        for estimator in inner:
            if isinstance(estimator, BaseEstimator):
                with_feature_names(estimator, names)
    return model


def _show(names: Any) -> str:
    """At most :data:`SHOWN` names as a Python list, then how many there are."""
    names = [str(name) for name in names]
    if len(names) <= SHOWN:
        return repr(names)
    return f"{repr(names[:SHOWN])[:-1]}, ...] ({len(names)} in all)"


def _reorder(fitted: np.ndarray, label: str) -> str:
    if len(fitted) <= SHOWN:
        return f"reorder the columns: {label}[{_show(fitted)}]"
    return f"reorder the columns as the model's feature_names_in_: {label}[model.feature_names_in_]"


__all__ = ["check_feature_names", "feature_names", "names_mismatch", "refuse_other_names", "with_feature_names"]
