"""fedplugin: federated, online learning of scikit-learn models on any Dask cluster.

Register a :class:`FederatedModelPlugin` on the cluster, drive training with a
:class:`Coordinator` (or the scikit-learn style :class:`FederatedEstimator`),
and get a plain fitted scikit-learn estimator back.
"""

import logging

from .callbacks import EarlyStopping
from .aggregation import Aggregator, Krum, Mean, Median, PerParameter, TrimmedMean, WeightedMean
from .change_detectors import ADWIN, ChangeDetector, PageHinkley
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .coordinator import Coordinator
from .deploy import register
from .divergence import TrainingDiverged
from .estimator import FederatedEstimator
from .history import Round
from .ownership import forget
from .plotting import plot_history
from .plugin import FederatedModelPlugin
from .privacy import DPFedAvg
from .robust import Bulyan, MultiKrum
from .server_optimizers import FedAdagrad, FedAdam, FedAvg, FedAvgM, FedYogi, ServerOptimizer
from .sampling import WorkerSample
from .search import CandidateSet, FederatedSearch, passive_aggressive_grid
from .session import federated_session
from .store import GlobalModel, ModelStore
from .stragglers import FedBuff, Quorum
from .sync import AnyOf, DriftThreshold, EveryNBatches, EverySeconds, LocalStats, OnChange, SyncPolicy

logging.getLogger("fedplugin").addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "ADWIN",
    "Aggregator",
    "AnyOf",
    "Bulyan",
    "CandidateSet",
    "ChangeDetector",
    "Checkpoint",
    "Coordinator",
    "DPFedAvg",
    "DriftThreshold",
    "EarlyStopping",
    "FedAdagrad",
    "FedBuff",
    "FedAdam",
    "FedAvg",
    "FedAvgM",
    "FedYogi",
    "EveryNBatches",
    "EverySeconds",
    "FederatedEstimator",
    "FederatedModelPlugin",
    "FederatedSearch",
    "forget",
    "federated_session",
    "GlobalModel",
    "Krum",
    "LocalStats",
    "load_checkpoint",
    "Mean",
    "Median",
    "ModelStore",
    "MultiKrum",
    "OnChange",
    "PageHinkley",
    "PerParameter",
    "Quorum",
    "passive_aggressive_grid",
    "Round",
    "plot_history",
    "register",
    "save_checkpoint",
    "ServerOptimizer",
    "SyncPolicy",
    "TrainingDiverged",
    "TrimmedMean",
    "WeightedMean",
    "WorkerSample",
]
