"""Naive Bayes families, combined exactly from their statistics."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.naive_bayes import BernoulliNB, CategoricalNB, ComplementNB, GaussianNB, MultinomialNB

from .base import Moments, ModelAdapter, Params, _check_names, _probe_batch, fresh_copy


class _StatisticsAdapter(ModelAdapter):
    """Families whose parameters are sufficient statistics, combined exactly.

    An initial model has seen no data: all its statistics are zero. Every
    worker's update is the reference (global) statistics plus those of the
    blocks it trained, so :meth:`aggregate` subclasses add the workers' new
    data to the reference and ignore the user's rule and weights.
    """

    exact_aggregation = True

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        model = fresh_copy(estimator)
        # The public first partial_fit sets the classes and feature count and
        # checks the priors and smoothing; then the probe's counts are zeroed.
        X, y = _probe_batch(model, n_features, classes)
        model.partial_fit(X, y, classes=classes)
        self.set_params(model, {name: np.zeros_like(value) for name, value in self.get_params(model).items()})
        return model


class DiscreteNBAdapter(_StatisticsAdapter):
    """Multinomial, Bernoulli and complement naive Bayes: ``class_count_``, ``feature_count_``.

    Counts add up, so :meth:`aggregate` returns
    ``reference + sum(update - reference)``, whatever rule the user chose: the
    federated model equals one trained on all the data in one process.
    """

    families = (MultinomialNB, BernoulliNB, ComplementNB)
    family_names = "discrete naive Bayes (MultinomialNB, BernoulliNB, ComplementNB)"

    def get_params(self, model: BaseEstimator) -> Params:
        return {"class_count_": np.array(model.class_count_), "feature_count_": np.array(model.feature_count_)}

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        _check_names(params, ["class_count_", "feature_count_"], type(model).__name__)
        model.class_count_ = np.array(params["class_count_"], dtype=np.float64)
        model.feature_count_ = np.array(params["feature_count_"], dtype=np.float64)
        if isinstance(model, ComplementNB):
            model.feature_all_ = model.feature_count_.sum(axis=0)
        # Recompute what predictions read, as partial_fit does after counting.
        # With zero counts (no data yet) the log-priors are undefined: no warning.
        with np.errstate(divide="ignore", invalid="ignore"):
            model._update_feature_log_prob(model._check_alpha())
            model._update_class_log_prior(class_prior=model.class_prior)

    def aggregate(
        self, rule: Any, updates: list[Params], weights: list[float], reference: Params
    ) -> Params:
        """``reference + sum(update - reference)``; ``rule`` and ``weights`` are ignored."""
        return {name: base + sum(update[name] - base for update in updates) for name, base in reference.items()}


class CategoricalNBAdapter(_StatisticsAdapter):
    """Categorical naive Bayes: ``class_count_`` and one ``category_count_`` per feature.

    The counts add up exactly, as for the discrete families. Every worker
    must count the same categories, so ``min_categories`` must give their
    number (an int, or one per feature); a category beyond it is refused.
    """

    families = (CategoricalNB,)
    family_names = "CategoricalNB (with min_categories)"

    def validate(self, estimator: BaseEstimator) -> None:
        if estimator.min_categories is None:
            raise ValueError(
                "CategoricalNB(min_categories=None) is not supported: every worker must count the same "
                "categories; expected min_categories=<number of categories> (an int, or one per feature)"
            )

    def check_settings(self, estimator: BaseEstimator) -> None:
        """Nothing to probe: ``min_categories`` is checked against the data's features at the first fit."""

    def get_params(self, model: BaseEstimator) -> Params:
        counts = {f"category_count_{j}": np.array(c, dtype=np.float64) for j, c in enumerate(model.category_count_)}
        return {"class_count_": np.array(model.class_count_, dtype=np.float64), **counts}

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        n_features = len(model.category_count_)
        _check_names(params, ["class_count_"] + [f"category_count_{j}" for j in range(n_features)], "CategoricalNB")
        model.class_count_ = np.array(params["class_count_"], dtype=np.float64)
        model.category_count_ = [np.array(params[f"category_count_{j}"], dtype=np.float64) for j in range(n_features)]
        with np.errstate(divide="ignore", invalid="ignore"):  # no data yet: log(0)
            model._update_feature_log_prob(model._check_alpha())
            model._update_class_log_prior(class_prior=model.class_prior)

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        beyond = np.asarray(X) >= model.n_categories_
        if beyond.any():
            feature = int(np.argwhere(beyond)[0][1])
            raise ValueError(
                f"feature {feature} has category {int(np.max(X[:, feature]))}, beyond min_categories "
                f"({int(model.n_categories_[feature])} categories: 0 to {int(model.n_categories_[feature]) - 1}); "
                "expected min_categories to count every category"
            )
        model.partial_fit(X, y)

    aggregate = DiscreteNBAdapter.aggregate


class GaussianNBAdapter(_StatisticsAdapter):
    """Gaussian naive Bayes: per-class counts, means and variances.

    The parameters are ``class_count_``, ``theta_`` and ``var_``, where ``var_``
    holds the plain per-class variances, *without* the ``epsilon_`` that
    scikit-learn adds to them. :meth:`aggregate` pools them exactly with the
    pairwise formulas of Chan, Golub and LeVeque, whatever rule the user chose,
    and :meth:`set_params` derives ``epsilon_`` from all the data, as ``fit``
    does: the federated model equals ``fit`` (or one ``partial_fit``) on all
    the data in one process.

    References
    ----------
    T. F. Chan, G. H. Golub and R. J. LeVeque, "Updating formulae and a
    pairwise algorithm for computing sample variances", Stanford CS report
    STAN-CS-79-773, 1979.
    """

    families = (GaussianNB,)
    family_names = "Gaussian naive Bayes (GaussianNB)"

    def get_params(self, model: BaseEstimator) -> Params:
        return {
            "class_count_": np.array(model.class_count_),
            "theta_": np.array(model.theta_),
            "var_": np.maximum(model.var_ - model.epsilon_, 0.0),
        }

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        _check_names(params, ["class_count_", "theta_", "var_"], "GaussianNB")
        counts = np.array(params["class_count_"], dtype=np.float64)
        means = np.array(params["theta_"], dtype=np.float64)
        variances = np.array(params["var_"], dtype=np.float64)
        # epsilon_ is var_smoothing times the largest feature variance of all
        # the data, which pooling the classes gives.
        total, _, m2 = _pooled(counts, means, counts[:, None] * variances)
        model.epsilon_ = model.var_smoothing * float(np.max(m2) / total) if total > 0 else 0.0
        model.class_count_, model.theta_, model.var_ = counts, means, variances + model.epsilon_
        if model.priors is None:
            model.class_prior_ = counts / total if total > 0 else np.zeros_like(counts)

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        # scikit-learn recomputes epsilon_ from each batch and takes the new
        # value off var_, which holds the old one: rebasing var_ on the batch's
        # epsilon first keeps the variances exact, whichever one it subtracts.
        epsilon = model.var_smoothing * float(np.max(np.var(X, axis=0)))
        model.var_ = model.var_ - model.epsilon_ + epsilon
        model.epsilon_ = epsilon
        model.partial_fit(X, y)

    def aggregate(
        self, rule: Any, updates: list[Params], weights: list[float], reference: Params
    ) -> Params:
        """Statistics of the reference's data plus every worker's new data; ``rule`` is ignored."""
        base = _moments(reference)
        parts = [base] + [_without(_moments(update), base) for update in updates]
        counts, means, m2 = _pooled(*(np.stack(column) for column in zip(*parts)))
        variances = np.divide(m2, counts[:, None], out=np.zeros_like(m2), where=counts[:, None] > 0)
        return {"class_count_": counts, "theta_": means, "var_": np.maximum(variances, 0.0)}

    def merge(self, new_global: Params, local: Params, snapshot: Params) -> Params:
        """The global statistics pooled with the data the worker saw since ``snapshot``."""
        fresh = _without(_moments(local), _moments(snapshot))
        counts, means, m2 = _pooled(*(np.stack(column) for column in zip(_moments(new_global), fresh)))
        variances = np.divide(m2, counts[:, None], out=np.zeros_like(m2), where=counts[:, None] > 0)
        return {"class_count_": counts, "theta_": means, "var_": np.maximum(variances, 0.0)}


def _moments(params: Params) -> Moments:
    """``(count, mean, sum of squared deviations)`` per class, from GaussianNB parameters."""
    counts = np.asarray(params["class_count_"], dtype=np.float64)
    return counts, np.asarray(params["theta_"], dtype=np.float64), counts[:, None] * params["var_"]


def _pooled(counts: np.ndarray, means: np.ndarray, m2: np.ndarray) -> Moments:
    """Moments of the union of the groups along axis 0 (Chan, Golub and LeVeque)."""
    n = counts.sum(axis=0)
    weighted = (counts[..., None] * means).sum(axis=0)
    mean = np.divide(weighted, n[..., None], out=np.zeros_like(weighted), where=n[..., None] > 0)
    return n, mean, (m2 + counts[..., None] * (means - mean) ** 2).sum(axis=0)


def _without(whole: Moments, part: Moments) -> Moments:
    """Moments of ``whole`` once the data of ``part`` is taken out: :func:`_pooled`, inverted."""
    (n_all, mean_all, m2_all), (n_part, mean_part, m2_part) = whole, part
    n = n_all - n_part
    weighted = n_all[:, None] * mean_all - n_part[:, None] * mean_part
    mean = np.divide(weighted, n[:, None], out=np.zeros_like(weighted), where=n[:, None] > 0)
    m2 = m2_all - m2_part - n_part[:, None] * (mean_part - mean_all) ** 2 - n[:, None] * (mean - mean_all) ** 2
    return n, mean, m2
