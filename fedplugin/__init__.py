"""fedplugin: federated, online learning of scikit-learn models on any Dask cluster.

Register a :class:`FederatedModelPlugin` on the cluster, drive training with a
:class:`Coordinator` (or the scikit-learn style :class:`FederatedEstimator`),
and get a plain fitted scikit-learn estimator back.
"""

import logging

from .aggregation import Aggregator, Krum, Mean, Median, PerParameter, TrimmedMean, WeightedMean
from .coordinator import Coordinator
from .estimator import FederatedEstimator
from .history import Round
from .plugin import FederatedModelPlugin
from .store import GlobalModel, ModelStore
from .sync import AnyOf, DriftThreshold, EveryNBatches, EverySeconds, LocalStats, SyncPolicy

logging.getLogger("fedplugin").addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "Aggregator",
    "AnyOf",
    "Coordinator",
    "DriftThreshold",
    "EveryNBatches",
    "EverySeconds",
    "FederatedEstimator",
    "FederatedModelPlugin",
    "GlobalModel",
    "Krum",
    "LocalStats",
    "Mean",
    "Median",
    "ModelStore",
    "PerParameter",
    "Round",
    "SyncPolicy",
    "TrimmedMean",
    "WeightedMean",
]
