"""The adapter interface, and helpers every family uses."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.utils import get_tags

from .._compat import check_estimator_settings
from ..aggregation import checked_output

Params = dict[str, np.ndarray]
#: ``(count, mean, sum of squared deviations)``, per class or per group.
Moments = tuple[np.ndarray, np.ndarray, np.ndarray]


def fresh_copy(estimator: BaseEstimator) -> BaseEstimator:
    """``clone(estimator)`` without repeating a deprecation warning the user already saw.

    scikit-learn 1.8 deprecated the passive-aggressive estimators: constructing
    one warns, and every clone would warn again.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return clone(estimator)


class ModelAdapter:
    """Base class: how to initialise, read and write one estimator family.

    Subclasses set :attr:`families` (the estimator classes they handle) and
    implement :meth:`initialize`, :meth:`get_params` and :meth:`set_params`.
    """

    #: Estimator base classes this adapter handles.
    families: ClassVar[tuple[type, ...]] = ()
    #: Human-readable names of the handled families, used in error messages.
    family_names: ClassVar[str] = ""
    #: True when :meth:`aggregate` combines exactly and ignores the user's rule.
    exact_aggregation: ClassVar[bool] = False
    #: False when some parameters are not weights a server optimizer may step
    #: (flags, counters); exact families refuse one anyway.
    takes_server_optimizer: ClassVar[bool] = True
    #: False when the parameters' shapes grow with training (Birch's CF tree):
    #: a checkpoint is then checked for its names and trailing dimensions only.
    fixed_shapes: ClassVar[bool] = True
    #: True when the estimator learns a 2-d ``y`` (one column per output, see :mod:`fedplugin.outputs`).
    multi_output: ClassVar[bool] = False

    def validate(self, estimator: BaseEstimator) -> None:
        """Raise ``ValueError`` if ``estimator``'s settings cannot be federated."""

    def estimator_type(self, estimator: BaseEstimator) -> str | None:
        """``"classifier"``, ``"regressor"`` or ``None``: whether training needs classes or numeric targets.

        scikit-learn's tag, except for a transformer that trains an inner
        estimator on ``y`` (``SelectFromModel``), whose inner type decides.
        """
        return get_tags(estimator).estimator_type

    def check_settings(self, estimator: BaseEstimator) -> None:
        """Run the parameter checks scikit-learn makes on a first ``partial_fit``.

        Adapters may set a model up without that call, so the plugin makes it
        once, on a throwaway copy and a two-row all-zero batch, to refuse bad
        settings (e.g. ``eta0=-1``) on the client before any data is read.
        """
        check_estimator_settings(estimator)
        kind = self.estimator_type(estimator)
        if kind not in ("classifier", "regressor"):
            return
        probe = fresh_copy(estimator)
        y = np.array([0, 1]) if kind == "classifier" else np.zeros(2)
        kwargs = {"classes": y} if kind == "classifier" else {}
        probe.partial_fit(np.zeros((2, 1)), y, **kwargs)

    def rule_views(self, names: list[str]) -> list[list[str]]:
        """The parameter names the user's rule sees, one list per call of the rule.

        A composite (a Pipeline) calls the rule once per step, under the
        step's plain names; a per-parameter rule is checked against each.
        """
        return [names]

    def initialize(
        self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None
    ) -> BaseEstimator:
        """Return an unfitted clone of ``estimator`` made ready for ``partial_fit``."""
        raise NotImplementedError

    def initialize_like(self, estimator: BaseEstimator, record: Any) -> BaseEstimator:
        """:meth:`initialize` with ``record``'s ``n_features``, ``classes`` and ``n_outputs``.

        ``record`` is a ``GlobalModel`` or ``TrainingData``; ``n_outputs`` is
        passed only to a multi-output estimator's adapter (it is ``None`` otherwise).
        """
        n_outputs = getattr(record, "n_outputs", None)
        extra = {} if n_outputs is None else {"n_outputs": n_outputs}
        return self.initialize(estimator, record.n_features, record.classes, **extra)

    def build(
        self, estimator: BaseEstimator, shape: Any, params: Params, state: dict[str, float] | None = None
    ) -> BaseEstimator:
        """A model shaped like ``shape`` (see :meth:`initialize_like`) holding ``params`` and ``state``.

        ``params`` are used as they are: pass a copy of arrays that must not
        change. With ``state=None`` the model keeps the initial training state.
        """
        model = self.initialize_like(estimator, shape)
        if state is not None:
            self.set_state(model, state)
        self.set_params(model, params)
        return model

    def init_sample_size(self, estimator: BaseEstimator) -> int:
        """Rows of training data the initial model is chosen from; 0 (the default): none.

        For a positive size the coordinator builds the first global model with
        :meth:`initialize_from_sample` instead of :meth:`initialize`, from that
        many rows drawn where the blocks live (see ``fedplugin.data_init``).
        :meth:`initialize` must still build a model of the right shape without
        data: workers and checks use it as a skeleton for the global parameters.
        """
        return 0

    def initialize_from_sample(
        self, estimator: BaseEstimator, sample: np.ndarray, classes: np.ndarray | None
    ) -> BaseEstimator:
        """The initial model chosen from ``sample``, rows drawn uniformly from the training data."""
        return self.initialize(estimator, sample.shape[1], classes)

    def get_params(self, model: BaseEstimator) -> Params:
        """Return copies of the learned parameters of ``model``, by attribute name."""
        raise NotImplementedError

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        """Overwrite the learned parameters of ``model`` with ``params``."""
        raise NotImplementedError

    def aggregate(
        self, rule: Any, updates: list[Params], weights: list[float], reference: Params
    ) -> Params:
        """Combine the workers' parameters into the new global parameters.

        The default applies the user's ``rule`` (mean, median, ...). Families
        whose parameters are sufficient statistics (counts) override this to
        combine them exactly, e.g. ``reference + sum(update - reference)``.
        The rule's output must fit ``reference`` (same names and shapes,
        finite numbers), else ``ValueError``: it would become the global model.
        """
        return checked_output(rule, rule(updates, weights), reference)

    def merge(self, new_global: Params, local: Params, snapshot: Params) -> Params:
        """The local parameters once ``new_global`` arrives: the global plus local progress.

        ``snapshot`` is what the worker handed over for the round that produced
        ``new_global``; what it learned since (``local - snapshot``) is kept.
        Families whose parameters are not additive override this.
        """
        return {name: value + (local[name] - snapshot[name]) for name, value in new_global.items()}

    def get_state(self, model: BaseEstimator) -> dict[str, float]:
        """Scalar training state that is not aggregated but should survive a restart.

        A worker that joins or restarts starts its model from the global one and
        from the workers' mean state (e.g. SGD's step counter ``t_``, which sets
        its learning rate), instead of from scratch.
        """
        return {}

    def set_state(self, model: BaseEstimator, state: dict[str, float]) -> None:
        """Restore what :meth:`get_state` returned (mean over the workers)."""

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        """Train ``model`` on one block (classes are set by :meth:`initialize`)."""
        model.partial_fit(X, y)



def _probe_batch(
    model: BaseEstimator, n_features: int, classes: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """A tiny batch for the first, public ``partial_fit`` that sets ``model`` up.

    One all-zero row per class for classifiers; one row with target 1 for
    regressors (valid for every regression loss, Poisson included). The
    adapters undo whatever this batch taught the model right after.
    """
    if not is_classifier(model):
        return np.zeros((1, n_features)), np.ones(1)
    if classes is None:
        raise ValueError("a classifier needs its classes before training")
    return np.zeros((len(classes), n_features)), np.asarray(classes)


def _check_names(params: Params, expected: list[str], family: str) -> None:
    if sorted(params) != sorted(expected):
        raise ValueError(f"parameters {sorted(params)} do not fit this {family}; expected {sorted(expected)}")
