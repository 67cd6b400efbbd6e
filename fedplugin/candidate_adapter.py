"""How a candidate set is federated: its adapter and the per-candidate rule.

Importing this module registers :class:`CandidateSetAdapter` with
:func:`fedplugin.adapters.adapter_for`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import get_tags

from .adapters import ADAPTERS, ModelAdapter, Params, adapter_for, fresh_copy
from .aggregation import Aggregator, nestable
from .candidates import CandidateSet, SEPARATOR, _check_error_score, _prefixed, split_params
class CandidateSetAdapter(ModelAdapter):
    """Parameters of a :class:`~fedplugin.CandidateSet`: every candidate's, prefixed, plus the set's own.

    Candidate ``i``'s parameter ``name`` is ``"c<i>/<name>"``; the set adds
    ``failed_`` (1.0 for a candidate that failed to train) and the
    progressive-validation sums ``score_sum_`` and ``score_weight_``.
    :meth:`aggregate` combines each candidate with its own adapter's
    :meth:`~fedplugin.adapters.ModelAdapter.aggregate` and the user's rule, so
    a rule sees one candidate at a time under its plain names (``coef_``,
    ...), exactly as when that candidate is federated alone; a candidate that
    failed on any worker keeps the previous global parameters and stays failed.
    """

    families = (CandidateSet,)
    family_names = "candidate sets of any of these (fedplugin.search.CandidateSet)"
    #: ``failed_`` and the score sums are no weights: a server optimizer would distort them.
    takes_server_optimizer = False

    def __init__(self) -> None:
        self.inner: list[ModelAdapter] | None = None

    def validate(self, estimator: BaseEstimator) -> None:
        candidates = estimator.candidates
        if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Sequence) or not candidates:
            raise ValueError(f"candidates={candidates!r} is not usable; expected a non-empty list of estimators")
        inner = []
        for index, candidate in enumerate(candidates):
            try:
                inner.append(adapter_for(candidate))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"candidate {index}: {exc}") from exc
            if inner[-1].init_sample_size(candidate):
                # A candidate set starts every candidate without data (also in its own partial_fit).
                raise ValueError(
                    f"candidate {index}: {candidate!r} chooses its initial model from the training data, "
                    "which a candidate set does not sample; expected an explicit start, e.g. "
                    "init=sklearn.cluster.kmeans_plusplus(X_sample, n_clusters)[0]"
                )
        kinds = {get_tags(candidate).estimator_type for candidate in candidates}
        if len(kinds) > 1:
            raise ValueError(f"candidates mix estimator types {sorted(map(str, kinds))}; expected one type")
        _check_error_score(estimator.error_score)
        self.inner = inner

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        if self.inner is None:
            self.validate(estimator)
        model = fresh_copy(estimator)
        model._start(n_features, classes)
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        return model._get_flat_params()

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        model._set_flat_params(params)

    def get_state(self, model: BaseEstimator) -> dict[str, float]:
        """Every candidate's training state (e.g. SGD's ``t_``), prefixed like the parameters."""
        state: dict[str, float] = {}
        for index, (adapter, estimator) in enumerate(zip(model._adapters, model.estimators_)):
            state.update(_prefixed(index, adapter.get_state(estimator)))
        return state

    def set_state(self, model: BaseEstimator, state: dict[str, float]) -> None:
        parts, _ = split_params(state, len(model.estimators_))
        for adapter, estimator, part in zip(model._adapters, model.estimators_, parts):
            adapter.set_state(estimator, part)

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        model._train_block(X, y)

    def aggregate(
        self, rule: Any, updates: list[Params], weights: list[float], reference: Params
    ) -> Params:
        """Each candidate by its own adapter; ``failed_`` by maximum; score sums add up."""
        if self.inner is None:
            raise RuntimeError("CandidateSetAdapter.aggregate needs validate(estimator) first; use adapter_for")
        n = len(self.inner)
        reference_parts, reference_own = split_params(reference, n)
        split = [split_params(update, n) for update in updates]
        failed = np.max([reference_own["failed_"]] + [own["failed_"] for _, own in split], axis=0)
        result: Params = {}
        for index, adapter in enumerate(self.inner):
            if failed[index]:
                combined = reference_parts[index]
            else:
                combined = adapter.aggregate(rule, [parts[index] for parts, _ in split], weights, reference_parts[index])
            result.update(_prefixed(index, combined))
        result["failed_"] = failed
        for name in ("score_sum_", "score_weight_"):
            base = reference_own[name]
            result[name] = base + sum(own[name] - base for _, own in split)
        return result

    def merge(self, new_global: Params, local: Params, snapshot: Params) -> Params:
        """Each candidate by its own adapter's merge; ``failed_`` by maximum; sums add up."""
        n = len(self.inner)
        (g_parts, g_own), (l_parts, l_own), (s_parts, _) = (split_params(p, n) for p in (new_global, local, snapshot))
        failed = np.maximum(g_own["failed_"], l_own["failed_"])
        result: Params = {}
        for index, adapter in enumerate(self.inner):
            merged = g_parts[index] if failed[index] else adapter.merge(g_parts[index], l_parts[index], s_parts[index])
            result.update(_prefixed(index, merged))
        result["failed_"] = failed
        for name in ("score_sum_", "score_weight_"):
            result[name] = new_global[name] + (local[name] - snapshot[name])
        return result


class PerCandidate(Aggregator):
    """Apply ``rule`` to each candidate of a :class:`CandidateSet` under its plain parameter names.

    :class:`CandidateSetAdapter` already hands the rule one candidate at a
    time; this wrapper only makes the coordinator's up-front name check
    (``check_names``, e.g. of a ``{"coef_": Median(), ...}`` mapping) look at
    each candidate's plain names instead of the prefixed ones.

    Parameters
    ----------
    rule : Aggregator, callable or mapping
        Anything :func:`~fedplugin.aggregation.as_aggregator` accepts but a server optimizer.

    Examples
    --------
    >>> from fedplugin.aggregation import Mean, Median
    >>> rule = PerCandidate({"coef_": Median(), "intercept_": Mean()})
    >>> rule.check_names(["c0/coef_", "c0/intercept_", "c1/coef_", "c1/intercept_", "failed_"])
    >>> rule.check_names(["c0/coefs_0", "c0/intercepts_0"])
    Traceback (most recent call last):
    ...
    ValueError: candidate 0: per-parameter aggregator does not match the model: ...
    """

    def __init__(self, rule: Any) -> None:
        self.rule = nestable(rule, "aggregator")  # each candidate is combined alone: no server optimizer

    def __call__(self, updates: Sequence[Params], weights: Sequence[float]) -> Params:
        return self.rule(updates, weights)

    def check_names(self, names: Sequence[str]) -> None:
        check = getattr(self.rule, "check_names", None)
        if check is None:
            return
        by_candidate: dict[str, list[str]] = {}
        for key in names:
            prefix, sep, name = key.partition(SEPARATOR)
            if sep:
                by_candidate.setdefault(prefix, []).append(name)
        for prefix, plain in by_candidate.items():
            try:
                check(plain)
            except ValueError as exc:
                raise ValueError(f"candidate {prefix[1:]}: {exc}") from exc



# Workers unpickle a CandidateSet by importing this module, which registers its adapter there too.
if CandidateSetAdapter not in ADAPTERS:
    ADAPTERS.append(CandidateSetAdapter)


