"""Every scikit-learn estimator with ``partial_fit``, and how fedplugin federates it.

The estimators page of the docs is rendered from :func:`catalog`, and a test
walks it over the installed scikit-learn, so the table stays true when
scikit-learn adds an estimator.

Examples
--------
>>> rows = {row.name: row for row in catalog()}
>>> rows["SGDClassifier"].combined, rows["GaussianNB"].combined
('by the rule', 'exactly')
>>> rows["CategoricalNB"].needs
'min_categories: the number of categories of each feature'
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB
from sklearn.utils import all_estimators

from . import adapter_for
from .base import ModelAdapter
from .composite import PerInnerAdapter
from .meta import SelectFromModelAdapter
from .pipeline import PipelineAdapter
from .stateless import StatelessAdapter

#: Estimators whose defaults cannot be federated: settings that can, and what they must say.
REQUIRED_SETTINGS: dict[str, tuple[dict[str, Any], str]] = {
    "CategoricalNB": ({"min_categories": 3}, "min_categories: the number of categories of each feature"),
    "IncrementalPCA": ({"n_components": 2}, "an int n_components"),
    "MiniBatchDictionaryLearning": (
        {"n_components": 2, "dict_init": np.random.default_rng(0).normal(size=(2, 4)), "transform_algorithm": "lasso_lars"},
        "an array dict_init of initial atoms",
    ),
    "MiniBatchNMF": ({"n_components": 2, "init": "random", "random_state": 0}, 'init="random" and an int n_components'),
}
#: Meta-estimators need an inner estimator; these are the ones the walk uses.
INNER_ESTIMATORS: dict[str, dict[str, Any]] = {
    "MultiOutputClassifier": {"estimator": GaussianNB()},
    "MultiOutputRegressor": {"estimator": SGDRegressor()},
    "OneVsOneClassifier": {"estimator": SGDClassifier(random_state=0)},
    "OneVsRestClassifier": {"estimator": SGDClassifier(random_state=0)},
    "SelectFromModel": {"estimator": SGDClassifier(random_state=0), "threshold": "median"},
}


@dataclass(frozen=True)
class CatalogRow:
    """One estimator: its adapter (``None``: refused), how it is combined, what it needs, or why it is refused."""

    name: str
    estimator_class: type
    adapter: type[ModelAdapter] | None
    combined: str
    needs: str


def with_partial_fit() -> list[tuple[str, type]]:
    """``(name, class)`` of every estimator of the installed scikit-learn that has ``partial_fit``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the deprecated passive-aggressive ones
        return sorted((name, cls) for name, cls in all_estimators() if hasattr(cls, "partial_fit"))


def example(name: str, cls: type) -> Any:
    """An instance of ``cls`` with settings fedplugin can federate (its defaults where they do)."""
    settings = {**REQUIRED_SETTINGS.get(name, ({}, ""))[0], **INNER_ESTIMATORS.get(name, {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return cls(**settings)


def combination(adapter: ModelAdapter) -> str:
    """How an adapter combines the workers' models, in words."""
    if isinstance(adapter, (PerInnerAdapter, PipelineAdapter, SelectFromModelAdapter)):
        return "delegated"
    if isinstance(adapter, StatelessAdapter):
        return "nothing to combine"
    return "exactly" if adapter.exact_aggregation else "by the rule"


def catalog() -> list[CatalogRow]:
    """One row per estimator with ``partial_fit``: federated, or refused with the reason."""
    rows = []
    for name, cls in with_partial_fit():
        needs = REQUIRED_SETTINGS.get(name, ({}, ""))[1]
        if name in INNER_ESTIMATORS:
            needs = "a supported inner estimator"
        try:
            adapter = adapter_for(example(name, cls))
        except (TypeError, ValueError) as exc:
            rows.append(CatalogRow(name, cls, None, "refused", str(exc)))
            continue
        rows.append(CatalogRow(name, cls, type(adapter), combination(adapter), needs))
    return rows


__all__ = ["CatalogRow", "INNER_ESTIMATORS", "REQUIRED_SETTINGS", "catalog", "combination", "example", "with_partial_fit"]
