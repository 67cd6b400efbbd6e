"""Pipelines: fixed transformers, mergeable transformers and a final estimator (issue 11).

A :class:`~sklearn.pipeline.Pipeline` is federated step by step. Each step is
one of:

* **fixed**: a transformer that learns nothing from the data's values, so
  every worker builds the same one from the number of features alone:
  stateless ones (``FunctionTransformer``, ``Normalizer``, ``Binarizer``,
  ``AdditiveChi2Sampler``), ``PolynomialFeatures``, and the random-feature
  maps ``RBFSampler``, ``SkewedChi2Sampler`` and ``PolynomialCountSketch``
  with an integer ``random_state`` (each worker must draw the same map);
* **mergeable**: a transformer with an adapter of its own (the scalers),
  trained and combined as when federated alone: exactly, for the scalers;
* the **final** step: any supported estimator, combined by its adapter (the
  user's rule for learned weights, exactly for statistics).

A step's parameters appear under ``"<step name>/<parameter>"``; rules see
one step at a time under the plain names (``coef_``, ...), exactly as when
that estimator is federated alone.

On each block a worker updates a mergeable step with the block first, then
transforms the block with it and passes it on: what one process does when it
trains ``scaler.partial_fit(X)`` then ``clf.partial_fit(scaler.transform(X), y)``
block by block. A round pools the scalers' statistics exactly and combines
the final estimator's weights; the weights were learned on features scaled
by each worker's slightly different running statistics, which agree more
and more as counts grow (the change a block makes to a mean shrinks as
1/n), so the global model trained on top stays consistent with the pooled
scaler after the first rounds.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import SGDClassifier
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from fedplugin.adapters import adapter_for
>>> pipeline = make_pipeline(StandardScaler(), SGDClassifier())
>>> adapter = adapter_for(pipeline)
>>> model = adapter.initialize(pipeline, n_features=3, classes=np.array([0, 1]))
>>> sorted(adapter.get_params(model))
['sgdclassifier/coef_', 'sgdclassifier/intercept_', 'standardscaler/mean_', 'standardscaler/n_samples_seen_', 'standardscaler/var_']
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.kernel_approximation import AdditiveChi2Sampler, PolynomialCountSketch, RBFSampler, SkewedChi2Sampler
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Binarizer, FunctionTransformer, Normalizer, PolynomialFeatures
from sklearn.utils import get_tags

from ..rows import n_columns
from .base import ModelAdapter, Params, fresh_copy
from .composite import SEPARATOR
from .incremental_pca import IncrementalPCAAdapter
from .scalers import MaxAbsScalerAdapter, MinMaxScalerAdapter, StandardScalerAdapter

#: Trained steps that may come before another: their output width is known before training.
MIDDLE_STEP_ADAPTERS = (StandardScalerAdapter, MinMaxScalerAdapter, MaxAbsScalerAdapter, IncrementalPCAAdapter)

#: Vectorizers of items (texts, dicts): stateless, with a fixed number of output features.
HASHERS: tuple[type, ...] = (HashingVectorizer, FeatureHasher)
#: Transformers that learn nothing from the values they are fitted on.
FIXED_TRANSFORMERS: tuple[type, ...] = (
    FunctionTransformer, Normalizer, Binarizer, AdditiveChi2Sampler, PolynomialFeatures, *HASHERS,
)
#: Random-feature maps: fixed once their ``random_state`` is an integer.
RANDOM_FEATURE_MAPS: tuple[type, ...] = (RBFSampler, SkewedChi2Sampler, PolynomialCountSketch)


def _is_skipped(step: Any) -> bool:
    return step is None or (isinstance(step, str) and step == "passthrough")


def split_by_step(params: Mapping[str, np.ndarray]) -> dict[str, Params]:
    """``{"<step>/<name>": value}`` as ``{step: {name: value}}``.

    Examples
    --------
    >>> import numpy as np
    >>> split_by_step({"scaler/mean_": np.zeros(1), "clf/coef_": np.ones(1)})
    {'scaler': {'mean_': array([0.])}, 'clf': {'coef_': array([1.])}}
    """
    parts: dict[str, Params] = {}
    for key, value in params.items():
        step, sep, name = key.partition(SEPARATOR)
        if not sep:
            raise ValueError(f"parameter {key!r} names no pipeline step; expected '<step>{SEPARATOR}<name>'")
        parts.setdefault(step, {})[name] = value
    return parts


def join_steps(parts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The inverse of :func:`split_by_step`."""
    return {f"{step}{SEPARATOR}{name}": value for step, named in parts.items() for name, value in named.items()}


class PipelineAdapter(ModelAdapter):
    """A :class:`~sklearn.pipeline.Pipeline`: each trained step by its own adapter.

    The step adapters are chosen by :meth:`validate`. The pipeline is combined
    exactly only when every trained step is; it takes a server optimizer only
    when every trained step does and none is exact.
    """

    families = (Pipeline,)
    family_names = (
        "Pipelines of fixed transformers (FunctionTransformer, Normalizer, PolynomialFeatures, "
        "RBFSampler, ...), the scalers above and a final estimator of any of these"
    )

    def __init__(self) -> None:
        self.adapters: dict[str, ModelAdapter] | None = None

    # ----------------------------------------------------------------- checks
    def validate(self, estimator: BaseEstimator) -> None:
        from . import adapter_for  # the registry imports this module

        steps = estimator.steps
        if not steps:
            raise ValueError("Pipeline(steps=[]) has no steps; expected at least a final estimator")
        adapters: dict[str, ModelAdapter] = {}
        *transformers, (last_name, last) = steps
        for name, step in transformers:
            if _is_skipped(step) or _check_fixed(name, step):
                continue
            try:
                adapter = adapter_for(step)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{_fixed_or_adapted_message(name, step)}: {exc}") from exc
            if not hasattr(step, "transform"):
                raise TypeError(f"step {name!r}: {type(step).__name__} has no transform; only the last step may be a predictor")
            if not isinstance(adapter, MIDDLE_STEP_ADAPTERS):
                raise TypeError(
                    f"step {name!r}: {type(step).__name__} cannot come before another step: the number of "
                    "features it outputs is not fixed before training; expected a fixed transformer, a scaler "
                    "(StandardScaler, MinMaxScaler, MaxAbsScaler) or IncrementalPCA there"
                )
            adapters[name] = adapter
        if _is_skipped(last):
            raise ValueError(f"step {last_name!r} is {last!r}; expected a final estimator with partial_fit")
        try:
            adapters[last_name] = adapter_for(last)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"step {last_name!r}: {exc}") from exc
        if adapters[last_name].multi_output:
            raise TypeError(
                f"step {last_name!r}: {type(last).__name__} learns a 2-d y, which a federated Pipeline does not "
                "carry yet; expected a single-output final step (or federate the multi-output estimator alone)"
            )
        _check_sparse_flow(steps)
        self.adapters = adapters
        self.exact_aggregation = all(a.exact_aggregation for a in adapters.values())
        self.takes_server_optimizer = all(a.takes_server_optimizer and not a.exact_aggregation for a in adapters.values())
        self.fixed_shapes = all(a.fixed_shapes for a in adapters.values())

    def check_settings(self, estimator: BaseEstimator) -> None:
        self._adapters(estimator)
        for name, step in estimator.steps:
            if name in self.adapters:
                self.adapters[name].check_settings(step)

    def rule_views(self, names: list[str]) -> list[list[str]]:
        """The names the user's rule sees: one list per step combined by the rule."""
        parts = split_by_step(dict.fromkeys(names, None))
        return [
            view
            for step, adapter in self._adapters().items()
            if not adapter.exact_aggregation and step in parts
            for view in adapter.rule_views(sorted(parts[step]))
        ]

    # ----------------------------------------------------------------- model
    def initialize(self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None) -> BaseEstimator:
        adapters = self._adapters(estimator)
        model = fresh_copy(estimator)
        width = n_features
        steps = []
        for name, step in model.steps:
            if _is_skipped(step):
                steps.append((name, step))
                continue
            if name in adapters:
                step = adapters[name].initialize(step, width, classes)
            else:
                step = step.fit(np.zeros((2, width)))
            steps.append((name, step))
            if name != model.steps[-1][0]:
                width = _output_width(step, width)
        model.steps = steps
        return model

    def init_sample_size(self, estimator: BaseEstimator) -> int:
        """The final step's: a ``MiniBatchKMeans`` chooses its initial centers from the data."""
        last_name, last = estimator.steps[-1]
        return self._adapters(estimator)[last_name].init_sample_size(last)

    def initialize_from_sample(self, estimator: BaseEstimator, sample: Any, classes: np.ndarray | None) -> BaseEstimator:
        """The initial pipeline, its final step chosen from ``sample`` as the steps before it transform it.

        A mergeable step keeps the statistics of no data (the workers pool the
        real ones); to transform the sample, a throwaway copy of it learns the
        sample alone.
        """
        adapters = self._adapters(estimator)
        model = self.initialize(estimator, n_columns(sample), classes)
        *transformers, (last_name, _) = model.steps
        X = sample
        for name, step in transformers:
            if _is_skipped(step):
                continue
            if name in adapters:
                step = copy.deepcopy(step)
                adapters[name].partial_fit(step, X, None)
            X = step.transform(X)
        first = adapters[last_name].initialize_from_sample(estimator.named_steps[last_name], X, classes)
        model.steps[-1] = (last_name, first)
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        return join_steps({name: adapter.get_params(model.named_steps[name]) for name, adapter in self._adapters().items()})

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        parts = split_by_step(params)
        adapters = self._adapters()
        if sorted(parts) != sorted(adapters):
            raise ValueError(f"parameters of steps {sorted(parts)} do not fit this Pipeline; expected steps {sorted(adapters)}")
        for name, adapter in adapters.items():
            adapter.set_params(model.named_steps[name], parts[name])

    def get_state(self, model: BaseEstimator) -> dict[str, float]:
        return join_steps({name: adapter.get_state(model.named_steps[name]) for name, adapter in self._adapters().items()})

    def set_state(self, model: BaseEstimator, state: dict[str, float]) -> None:
        parts = split_by_step(state)
        for name, adapter in self._adapters().items():
            adapter.set_state(model.named_steps[name], parts.get(name, {}))

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        """Update each mergeable step with the block, transform it, and train the final step."""
        adapters = self._adapters()
        *transformers, (last_name, last) = model.steps
        for name, step in transformers:
            if _is_skipped(step):
                continue
            if name in adapters:
                adapters[name].partial_fit(step, X, y)
            X = step.transform(X)
        adapters[last_name].partial_fit(last, X, y)

    # ----------------------------------------------------------------- rounds
    def aggregate(self, rule: Any, updates: list[Params], weights: list[float], reference: Params) -> Params:
        """Each trained step by its own adapter: the scalers exactly, the final estimator by ``rule``."""
        split = [split_by_step(update) for update in updates]
        reference_parts = split_by_step(reference)
        return join_steps({
            name: adapter.aggregate(rule, [parts[name] for parts in split], weights, reference_parts[name])
            for name, adapter in self._adapters().items()
        })

    def merge(self, new_global: Params, local: Params, snapshot: Params) -> Params:
        g, l, s = (split_by_step(p) for p in (new_global, local, snapshot))
        return join_steps({name: adapter.merge(g[name], l[name], s[name]) for name, adapter in self._adapters().items()})

    def _adapters(self, estimator: BaseEstimator | None = None) -> dict[str, ModelAdapter]:
        if self.adapters is None:
            if estimator is None:
                raise RuntimeError("PipelineAdapter needs validate(pipeline) first; use adapter_for")
            self.validate(estimator)
        return self.adapters


def _check_fixed(name: str, step: Any) -> bool:
    """True for a transformer every worker can build alike without data; refuses a random map without a seed."""
    if isinstance(step, RBFSampler) and isinstance(step.gamma, str):
        raise ValueError(
            f"step {name!r}: RBFSampler(gamma={step.gamma!r}) reads gamma from the data, which each worker "
            "would read differently (and the initial model has none); expected a number, e.g. gamma=1.0 / n_features"
        )
    if isinstance(step, RANDOM_FEATURE_MAPS):
        seed = step.random_state
        if not isinstance(seed, Integral) or isinstance(seed, bool):
            raise ValueError(
                f"step {name!r}: {type(step).__name__}(random_state={seed!r}) would draw a different feature "
                "map on every worker; expected an integer random_state"
            )
        return True
    return isinstance(step, FIXED_TRANSFORMERS)


def _fixed_or_adapted_message(name: str, step: Any) -> str:
    fixed = ", ".join(cls.__name__ for cls in FIXED_TRANSFORMERS + RANDOM_FEATURE_MAPS)
    return (
        f"step {name!r}: {type(step).__name__} is neither a fixed transformer ({fixed}) "
        "nor one fedplugin can combine"
    )


def _check_sparse_flow(steps: list[tuple[str, Any]]) -> None:
    """Refuse a step after a hashing vectorizer that cannot take its sparse output."""
    source = None
    for name, step in steps:
        if _is_skipped(step):
            continue
        if source is not None and not get_tags(step).input_tags.sparse:
            raise TypeError(
                f"step {name!r}: {type(step).__name__} does not accept the sparse matrix that step {source!r} "
                "outputs; expected a step that does (e.g. StandardScaler(with_mean=False), MaxAbsScaler, "
                "SGDClassifier)"
            )
        if isinstance(step, HASHERS):
            source = name


def _output_width(step: BaseEstimator, width: int) -> int:
    """How many features ``step`` outputs for ``width`` input features."""
    if isinstance(step, HASHERS):
        return int(step.n_features)
    with np.errstate(all="ignore"):  # an empty scaler divides by zero; only the shape matters
        return int(np.asarray(step.transform(np.ones((1, width)))).shape[1])
