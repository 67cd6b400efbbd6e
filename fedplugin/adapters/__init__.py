"""Read and write an estimator family's learned parameters as named arrays.

An adapter is the only place that knows where a scikit-learn estimator keeps its
parameters. The rest of fedplugin moves and combines ``dict[str, numpy.ndarray]``
and never touches estimator internals, so adding a model family means adding one
adapter class here.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import SGDClassifier
>>> adapter = adapter_for(SGDClassifier())
>>> model = adapter.initialize(SGDClassifier(), n_features=3, classes=np.array([0, 1]))
>>> {name: value.shape for name, value in adapter.get_params(model).items()}
{'coef_': (1, 3), 'intercept_': (1,)}
"""

from __future__ import annotations

from typing import Any

from .base import Moments, ModelAdapter, Params, fresh_copy
from .birch import BirchAdapter
from .decomposition import LatentDirichletAllocationAdapter, MiniBatchDictionaryLearningAdapter, MiniBatchNMFAdapter
from .incremental_pca import IncrementalPCAAdapter
from .kmeans import MiniBatchKMeansAdapter
from .meta import OneVsOneAdapter, OneVsRestAdapter, SelectFromModelAdapter
from .multi_output import MultiOutputClassifierAdapter, MultiOutputRegressorAdapter
from .mlp import MLPAdapter
from .naive_bayes import CategoricalNBAdapter, DiscreteNBAdapter, GaussianNBAdapter
from .pipeline import PipelineAdapter
from .rbm import BernoulliRBMAdapter
from .scalers import MaxAbsScalerAdapter, MinMaxScalerAdapter, StandardScalerAdapter
from .sgd import LinearSGDAdapter, OneClassSGDAdapter
from .stateless import StatelessAdapter


ADAPTERS: list[type[ModelAdapter]] = [
    LinearSGDAdapter,
    MLPAdapter,
    DiscreteNBAdapter,
    CategoricalNBAdapter,
    GaussianNBAdapter,
    MiniBatchKMeansAdapter,
    StandardScalerAdapter,
    MinMaxScalerAdapter,
    MaxAbsScalerAdapter,
    BirchAdapter,
    OneClassSGDAdapter,
    BernoulliRBMAdapter,
    MiniBatchNMFAdapter,
    MiniBatchDictionaryLearningAdapter,
    LatentDirichletAllocationAdapter,
    IncrementalPCAAdapter,
    StatelessAdapter,
    PipelineAdapter,
    OneVsRestAdapter,
    OneVsOneAdapter,
    SelectFromModelAdapter,
    MultiOutputClassifierAdapter,
    MultiOutputRegressorAdapter,
]


def supported_families() -> str:
    """Describe the estimator families fedplugin can federate."""
    return "; ".join(adapter.family_names for adapter in ADAPTERS)


def adapter_for(estimator: Any) -> ModelAdapter:
    """Return the adapter for ``estimator``, or raise a clear error.

    Parameters
    ----------
    estimator : scikit-learn estimator
        An unfitted estimator instance with ``partial_fit``.

    Raises
    ------
    TypeError
        If ``estimator`` is a class, lacks ``partial_fit`` or belongs to no
        supported family.
    ValueError
        If the estimator's settings cannot be federated (see the adapter).
    """
    if isinstance(estimator, type):
        raise TypeError(
            f"estimator={estimator.__name__} is a class; expected an instance such as "
            f"{estimator.__name__}()"
        )
    for adapter_cls in ADAPTERS:  # before the partial_fit check: a Pipeline has none of its own
        if isinstance(estimator, adapter_cls.families):
            adapter = adapter_cls()
            adapter.validate(estimator)
            return adapter
    if not hasattr(estimator, "partial_fit"):
        raise TypeError(
            f"estimator={type(estimator).__name__} has no partial_fit; expected one of: "
            f"{supported_families()}"
        )
    raise TypeError(
        f"estimator={type(estimator).__name__} is not supported; expected one of: "
        f"{supported_families()}"
    )


__all__ = [
    "ADAPTERS",
    "BernoulliRBMAdapter",
    "CategoricalNBAdapter",
    "DiscreteNBAdapter",
    "GaussianNBAdapter",
    "IncrementalPCAAdapter",
    "LatentDirichletAllocationAdapter",
    "LinearSGDAdapter",
    "MLPAdapter",
    "MaxAbsScalerAdapter",
    "MinMaxScalerAdapter",
    "MultiOutputClassifierAdapter",
    "MultiOutputRegressorAdapter",
    "MiniBatchDictionaryLearningAdapter",
    "MiniBatchKMeansAdapter",
    "MiniBatchNMFAdapter",
    "ModelAdapter",
    "Moments",
    "OneClassSGDAdapter",
    "OneVsOneAdapter",
    "OneVsRestAdapter",
    "Params",
    "PipelineAdapter",
    "SelectFromModelAdapter",
    "StandardScalerAdapter",
    "StatelessAdapter",
    "adapter_for",
    "fresh_copy",
    "supported_families",
    "BirchAdapter",
]
