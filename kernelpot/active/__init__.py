"""Active learning: explore candidate structures, score them, label the chosen ones, refit.

:class:`ActiveLearner` (:mod:`.loop`) runs the loop; explorers (:mod:`.explorers`: a pool, or on-the-fly MD)
propose structures, strategies (:mod:`.strategies`) score them, oracles (:mod:`.oracles`: any ASE calculator,
or labels stored with the pool) label them, and :mod:`.checkpoint` lets a run resume without relabelling.
Refits without new sparse points use :class:`kernelpot.models.gap.IncrementalSparseGPR`.
Names are imported on first use (:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "ActiveLearner": "loop",
    "PoolExplorer": "explorers",
    "MDExplorer": "explorers",
    "StoredLabels": "oracles",
    "label": "oracles",
    "Checkpoint": "checkpoint",
    "STRATEGIES": "strategies",
    "make_strategy": "strategies",
    "Strategy": "strategies",
    "PredictiveVariance": "strategies",
    "VarianceReduction": "strategies",
    "CommitteeDisagreement": "strategies",
    "DescriptorDistance": "strategies",
    "DOptimality": "strategies",
    "RandomSelection": "strategies",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
