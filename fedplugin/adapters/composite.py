"""Estimators made of inner estimators: their parameters under prefixed names.

Inner estimator ``i``'s parameter ``name`` is ``"c<i>/<name>"``
(:data:`SEPARATOR` is ``"/"``). :class:`PerInnerAdapter` is the base of the
adapters of such estimators: it reads, writes, combines and merges each inner
estimator with the inner estimator's own adapter, so exact families stay exact
and the others use the user's rule, one inner estimator at a time under its
plain names.

Examples
--------
>>> import numpy as np
>>> flat = prefixed(1, {"coef_": np.ones(2)})
>>> sorted(flat)
['c1/coef_']
>>> parts, own = split_params({**prefixed(0, {"coef_": np.zeros(2)}), **flat}, 2)
>>> [part["coef_"].tolist() for part in parts], own
([[0.0, 0.0], [1.0, 1.0]], {})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.base import BaseEstimator

from .base import ModelAdapter, Params

#: Separates the inner estimator's prefix from the parameter name: ``"c3/coef_"``.
SEPARATOR = "/"


def prefixed(index: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` of inner estimator ``index`` under their prefixed names."""
    return {f"c{index}{SEPARATOR}{name}": value for name, value in params.items()}


def split_params(params: Mapping[str, Any], n_parts: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Split flat parameters into one dict per inner estimator and the composite's own.

    Examples
    --------
    >>> import numpy as np
    >>> parts, own = split_params({"c0/w": np.zeros(1), "c1/w": np.ones(1), "failed_": np.zeros(2)}, 2)
    >>> [part["w"].tolist() for part in parts], sorted(own)
    ([[0.0], [1.0]], ['failed_'])
    >>> split_params({"c2/w": np.zeros(1)}, 2)
    Traceback (most recent call last):
    ...
    ValueError: parameter 'c2/w' names none of 2 inner estimators (c0 to c1)
    """
    parts: list[dict[str, Any]] = [{} for _ in range(n_parts)]
    own: dict[str, Any] = {}
    for key, value in params.items():
        prefix, sep, name = key.partition(SEPARATOR)
        if not sep:
            own[key] = value
            continue
        if not (prefix[:1] == "c" and prefix[1:].isdigit() and int(prefix[1:]) < n_parts):
            raise ValueError(f"parameter {key!r} names none of {n_parts} inner estimators (c0 to c{n_parts - 1})")
        parts[int(prefix[1:])][name] = value
    return parts, own


def count_parts(params: Mapping[str, Any]) -> int:
    """How many inner estimators prefixed parameters hold (one more than the largest index).

    >>> count_parts({"c0/w": 0, "c2/w": 0, "own_": 0})
    3
    """
    indices = [key.partition(SEPARATOR)[0][1:] for key in params if SEPARATOR in key]
    return 1 + max((int(index) for index in indices), default=-1)


class InnerAdapterMixin:
    """Exactness and whether a server optimizer may step the parameters: the inner adapter's.

    The adapter sets ``inner`` in ``validate``.
    """

    inner: ModelAdapter | None

    def _inner(self) -> ModelAdapter:
        if self.inner is None:
            raise RuntimeError(f"{type(self).__name__} needs validate(estimator) first; use adapter_for")
        return self.inner

    @property  # type: ignore[override]
    def exact_aggregation(self) -> bool:
        return self._inner().exact_aggregation

    @property  # type: ignore[override]
    def takes_server_optimizer(self) -> bool:
        return self._inner().takes_server_optimizer


class PerInnerAdapter(InnerAdapterMixin, ModelAdapter):
    """Base adapter of an estimator made of inner estimators that share one adapter.

    Subclasses set ``inner`` in :meth:`validate` (the inner estimators'
    adapter) and implement :meth:`inner_estimators` and :meth:`initialize`.
    Exactness and whether a server optimizer may step the parameters are
    the inner adapter's.
    """

    def __init__(self) -> None:
        self.inner: ModelAdapter | None = None

    def inner_estimators(self, model: BaseEstimator) -> list[BaseEstimator]:
        """The fitted inner estimators of ``model``, in the order of their prefixes."""
        raise NotImplementedError

    def get_params(self, model: BaseEstimator) -> Params:
        params: Params = {}
        for index, estimator in enumerate(self.inner_estimators(model)):
            params.update(prefixed(index, self._inner().get_params(estimator)))
        return params

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        estimators = self.inner_estimators(model)
        parts, own = split_params(params, len(estimators))
        if own or count_parts(params) != len(estimators):
            raise ValueError(
                f"parameters {sorted(params)} do not fit this {type(model).__name__}; "
                f"expected those of {len(estimators)} inner estimators, prefixed c0/ to c{len(estimators) - 1}/"
            )
        for estimator, part in zip(estimators, parts):
            self._inner().set_params(estimator, part)

    def rule_views(self, names: list[str]) -> list[list[str]]:
        """Each inner estimator's plain names: a rule combines one inner estimator at a time."""
        parts, _ = split_params(dict.fromkeys(names), count_parts(names))
        return [list(part) for part in parts]

    def get_state(self, model: BaseEstimator) -> dict[str, float]:
        state: dict[str, float] = {}
        for index, estimator in enumerate(self.inner_estimators(model)):
            state.update(prefixed(index, self._inner().get_state(estimator)))
        return state

    def set_state(self, model: BaseEstimator, state: dict[str, float]) -> None:
        estimators = self.inner_estimators(model)
        parts, _ = split_params(state, len(estimators))
        for estimator, part in zip(estimators, parts):
            self._inner().set_state(estimator, part)

    def aggregate(
        self, rule: Any, updates: list[Params], weights: list[float], reference: Params
    ) -> Params:
        """Each inner estimator by the inner adapter's ``aggregate``, under its plain names."""
        n = count_parts(reference)
        reference_parts, _ = split_params(reference, n)
        update_parts = [split_params(update, n)[0] for update in updates]
        result: Params = {}
        for index in range(n):
            combined = self._inner().aggregate(rule, [parts[index] for parts in update_parts], weights, reference_parts[index])
            result.update(prefixed(index, combined))
        return result

    def merge(self, new_global: Params, local: Params, snapshot: Params) -> Params:
        """Each inner estimator by the inner adapter's ``merge``."""
        n = count_parts(new_global)
        (g_parts, _), (l_parts, _), (s_parts, _) = (split_params(p, n) for p in (new_global, local, snapshot))
        result: Params = {}
        for index in range(n):
            result.update(prefixed(index, self._inner().merge(g_parts[index], l_parts[index], s_parts[index])))
        return result

