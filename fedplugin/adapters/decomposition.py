"""Online matrix factorisations combined by the user's rule: dictionary learning, NMF, LDA.

Each learns ``components_`` (atoms, factors or topics) from mini-batches and
keeps running statistics next to them. The components are combined by the
user's rule (mean, median, ...); each adapter's docstring says, per inner
statistic, whether it is combined, kept as training state or left local, and
why. None of them learns targets: ``coord.fit(X)``.

Every initial model is drawn without seeing data (the coordinator builds it
before reading any), so settings that would start from the data are refused
or replaced, as each adapter says.

Examples
--------
>>> import numpy as np
>>> from sklearn.decomposition import LatentDirichletAllocation
>>> adapter = LatentDirichletAllocationAdapter()
>>> model = adapter.initialize(LatentDirichletAllocation(n_components=2, random_state=0), 4, None)
>>> adapter.set_params(model, {"components_": np.ones((2, 4))})
>>> model.transform(np.array([[1, 0, 2, 0]])).shape
(1, 2)
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.decomposition import LatentDirichletAllocation, MiniBatchDictionaryLearning, MiniBatchNMF
from sklearn.decomposition._lda import _dirichlet_expectation_2d
from sklearn.utils import check_random_state

from ..wording import count
from .base import ModelAdapter, Params, _check_names, fresh_copy


class _FactorisationAdapter(ModelAdapter):
    """Shared parts: the step counter as state, training without targets."""

    #: Name of the step counter kept as training state (mean over the workers).
    counter: str = "n_steps_"

    def get_state(self, model: BaseEstimator) -> dict[str, float]:
        return {self.counter: float(getattr(model, self.counter))}

    def set_state(self, model: BaseEstimator, state: dict[str, float]) -> None:
        if self.counter in state:
            setattr(model, self.counter, int(round(state[self.counter])))

    def partial_fit(self, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> None:
        model.partial_fit(X)  # y is the placeholder the coordinator asks for


class MiniBatchDictionaryLearningAdapter(_FactorisationAdapter):
    """``MiniBatchDictionaryLearning``: ``components_``, ``_A`` and ``_B``, by the user's rule.

    * ``components_`` (the dictionary): by the rule.
    * ``_A`` (decayed sum of ``code.T @ code``) and ``_B`` (of ``X.T @ code``):
      by the rule too. The dictionary update solves against them, so they must
      describe the same data the combined dictionary does: left local, each
      worker's next step would pull the combined dictionary back towards its
      own data. Their mean is the mean of the workers' running statistics, what
      one worker seeing every worker's batches in turn would hold (to the
      forgetting weights).
    * ``n_steps_`` (sets the forgetting weight): training state, the mean over
      the workers when one joins, not combined.

    ``dict_init`` must be an array of initial atoms: scikit-learn would start
    from an SVD of the first batch, which the coordinator has not read when it
    builds the initial model. Compute one on a sample, e.g. the first
    ``n_components`` rows of ``X`` or ``sklearn.utils.extmath.randomized_svd``.

    Examples
    --------
    >>> import numpy as np
    >>> atoms = np.eye(2, 3)
    >>> model = MiniBatchDictionaryLearningAdapter().initialize(
    ...     MiniBatchDictionaryLearning(n_components=2, dict_init=atoms), n_features=3, classes=None)
    >>> model.components_.tolist(), model._A.shape, model._B.shape
    ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], (2, 2), (3, 2))
    """

    families = (MiniBatchDictionaryLearning,)
    family_names = "MiniBatchDictionaryLearning with an array dict_init"
    # _A and _B are running sums, which a server step would distort.
    takes_server_optimizer = False

    def validate(self, estimator: BaseEstimator) -> None:
        init = estimator.dict_init
        if init is None or np.ndim(init) != 2:
            raise ValueError(
                f"dict_init={init!r} is not supported: the initial dictionary is chosen before any data "
                "is read; expected an array of shape (n_components, n_features), e.g. the first "
                "n_components rows of X"
            )

    def initialize(self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None) -> BaseEstimator:
        model = fresh_copy(estimator)
        if np.shape(model.dict_init)[1] != n_features:
            raise ValueError(
                f"dict_init has {count(np.shape(model.dict_init)[1], 'feature')}; expected {n_features}, as X has"
            )
        probe = np.zeros((1, n_features))
        model._check_params(probe)  # what partial_fit's first call sets up, without training
        model._random_state = check_random_state(model.random_state)
        model.components_ = model._initialize_dict(probe, model._random_state)
        model.n_steps_ = 0
        k = model._n_components
        model._A, model._B = np.zeros((k, k)), np.zeros((n_features, k))
        model.n_features_in_ = n_features
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        return {name: np.array(getattr(model, name), dtype=np.float64) for name in ("components_", "_A", "_B")}

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        _check_names(params, ["components_", "_A", "_B"], "MiniBatchDictionaryLearning")
        # Updated in place by scikit-learn: writeable copies (the dictionary Fortran-ordered, as it makes it).
        model.components_ = np.array(params["components_"], dtype=np.float64, order="F")
        model._A = np.array(params["_A"], dtype=np.float64)
        model._B = np.array(params["_B"], dtype=np.float64)


class MiniBatchNMFAdapter(_FactorisationAdapter):
    """``MiniBatchNMF``: ``components_`` and its running denominator, by the user's rule.

    scikit-learn keeps the factors as a ratio, ``components_ = (A / B) ** gamma``,
    with decayed sums ``A`` (``_components_numerator``) and ``B``
    (``_components_denominator``) of the multiplicative update's terms; every
    step recomputes ``components_`` from them. So:

    * ``components_``: by the rule.
    * ``_components_denominator`` (``B``): by the rule, the workers' mean
      running weight of each entry.
    * ``_components_numerator`` (``A``): not sent; recomputed as
      ``components_ ** (1 / gamma) * B`` so that the next step starts from the
      combined factors. Combining ``A`` on its own would break that ratio, and
      leaving ``A`` local would undo the combination at the next step.
    * ``n_steps_``: training state (mean over the workers when one joins).

    Only ``init="random"`` is supported (the other inits start from an SVD or
    the mean of the data). The initial factors are drawn from ``random_state``
    as scikit-learn draws them, at the scale it would use for data of mean 1
    (``sqrt(1 / n_components)``); the multiplicative updates rescale them
    within the first blocks. The forgetting weight is ``forget_factor`` per
    block (scikit-learn's ``forget_factor ** (batch_size / n_rows)`` of a
    block of ``batch_size`` rows): give blocks of ``batch_size`` rows to train
    as scikit-learn's ``fit`` does. ``n_components`` must be an int.

    Examples
    --------
    >>> model = MiniBatchNMFAdapter().initialize(
    ...     MiniBatchNMF(n_components=2, init="random", random_state=0), n_features=3, classes=None)
    >>> model.components_.shape, bool((model.components_ >= 0).all())
    ((2, 3), True)
    """

    families = (MiniBatchNMF,)
    family_names = "MiniBatchNMF (init='random', an int n_components)"
    # The denominator is a running sum, which a server step would distort.
    takes_server_optimizer = False

    def validate(self, estimator: BaseEstimator) -> None:
        if estimator.init != "random":
            raise ValueError(
                f"init={estimator.init!r} is not supported: it starts from the data, which the coordinator "
                "has not read when it builds the initial model; expected init='random'"
            )
        if not isinstance(estimator.n_components, (int, np.integer)):
            raise ValueError(
                f"n_components={estimator.n_components!r} is not supported: it is read from the first "
                "batch; expected an int"
            )

    def initialize(self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None) -> BaseEstimator:
        model = fresh_copy(estimator)
        model._check_params(np.zeros((model.batch_size, n_features)))  # a full batch: rho = forget_factor
        rng = check_random_state(model.random_state)
        k = model._n_components
        components = np.abs(np.sqrt(1.0 / k) * rng.standard_normal(size=(k, n_features)))
        model._components_denominator = np.ones((k, n_features))
        model.components_, model._components_numerator = components, components.copy()
        model.n_components_, model.n_steps_, model.n_features_in_ = k, 0, n_features
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        return {
            "components_": np.array(model.components_, dtype=np.float64),
            "_components_denominator": np.array(model._components_denominator, dtype=np.float64),
        }

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        _check_names(params, ["components_", "_components_denominator"], "MiniBatchNMF")
        # An overlap merge (global + local - snapshot) may leave an entry below zero.
        model.components_ = np.maximum(np.array(params["components_"], dtype=np.float64), 0.0)
        denominator = np.array(params["_components_denominator"], dtype=np.float64)
        model._components_denominator = np.maximum(denominator, np.finfo(np.float64).eps)
        model._components_numerator = model.components_ ** (1.0 / model._gamma) * model._components_denominator


class LatentDirichletAllocationAdapter(_FactorisationAdapter):
    """``LatentDirichletAllocation``: the topic-word parameters ``components_``, by the user's rule.

    ``components_`` is the variational parameter lambda: the topic-word prior
    plus the expected word counts of the corpus, each worker's scaled to
    ``total_samples`` documents. The mean over the workers is then an
    estimate from all their data, as in distributed online variational Bayes.
    ``exp_dirichlet_component_``, which ``transform`` reads, is recomputed from
    the combined ``components_``. ``n_batch_iter_`` (sets the step size
    ``(learning_offset + n_batch_iter_) ** -learning_decay``) is training state,
    the workers' mean when one joins; each worker counts its own mini-batches.

    Set ``total_samples`` to the number of documents in the whole data set
    (all workers' together), as for one ``partial_fit`` over it: every
    mini-batch's counts are scaled by ``total_samples / batch rows``. A
    worker's ``partial_fit`` splits each block into mini-batches of
    ``batch_size`` rows. A server step or an overlap merge
    (``global + local - snapshot``) could leave an entry at or below zero,
    which the Dirichlet expectation cannot take: such entries are raised to
    the smallest positive float.

    Examples
    --------
    >>> model = LatentDirichletAllocationAdapter().initialize(
    ...     LatentDirichletAllocation(n_components=3, random_state=0), n_features=5, classes=None)
    >>> model.components_.shape, model.exp_dirichlet_component_.shape, model.n_batch_iter_
    ((3, 5), (3, 5), 1)
    """

    families = (LatentDirichletAllocation,)
    family_names = "LatentDirichletAllocation"
    counter = "n_batch_iter_"

    def initialize(self, estimator: BaseEstimator, n_features: int, classes: np.ndarray | None) -> BaseEstimator:
        model = fresh_copy(estimator)
        model._init_latent_vars(n_features)  # what partial_fit's first call draws, from random_state
        model.n_features_in_ = n_features
        return model

    def get_params(self, model: BaseEstimator) -> Params:
        return {"components_": np.array(model.components_, dtype=np.float64)}

    def set_params(self, model: BaseEstimator, params: Params) -> None:
        _check_names(params, ["components_"], "LatentDirichletAllocation")
        model.components_ = np.maximum(np.array(params["components_"], dtype=np.float64), np.finfo(np.float64).tiny)
        model.exp_dirichlet_component_ = np.exp(_dirichlet_expectation_2d(model.components_))


__all__ = ["LatentDirichletAllocationAdapter", "MiniBatchDictionaryLearningAdapter", "MiniBatchNMFAdapter"]
