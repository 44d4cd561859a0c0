"""GAP: sparse Gaussian process regression of energies, forces and virials, and everything it owns.

Public names (imported on first use):

* :class:`SparseGPR` (:mod:`.model`) — the estimator; :class:`GAPTerm` and
  :class:`FittedTerm` (:mod:`.terms`) — one descriptor + covariance + sparse
  points, before and after the fit;
* :class:`IncrementalSparseGPR`, :func:`frozen_sparse_terms`
  (:mod:`.incremental`) — adding labelled structures without a refit;
* :func:`fitc_factor` (:mod:`.variance`) — the FITC variance factor of a
  fitted model;
* :class:`SubsetForceVariance` (:mod:`.subset_variance`) — an approximate
  force σ at a few mean-force costs, from the posterior of a subset of the
  sparse points (``GAPCalculator(uncertainty="forces_subset")``);
* :class:`AutoChoice` (:mod:`.auto`) — ``SparseGPR(auto=...)``: sparse counts
  and noise chosen on a validation split of the training data.

Inside the package: labels and noise (:mod:`.labels`), sparse-point
selection (:mod:`.sparse`), the design builder (:mod:`.design`: the one
interface to the whitened design rows, used by the fit, its workers, the
memory plan, FITC, incremental learning and the active-learning
strategies), the block-by-block solvers (:mod:`.accumulators`), the cost plan
of the auto choice (:mod:`.auto_plan`), the memory plan (:mod:`.budget`) and
the predictive variances (:mod:`.variance`). The covariances are in
:mod:`kernelpot.kernels.covariance`, the per-species descriptor wrapper in :mod:`kernelpot.descriptors.centre_species`.
"""

from ...utils.lazy import lazy_exports

_EXPORTS = {
    "SparseGPR": "model",
    "GAPTerm": "terms",
    "FittedTerm": "terms",
    "IncrementalSparseGPR": "incremental",
    "frozen_sparse_terms": "incremental",
    "fitc_factor": "variance",
    "SubsetForceVariance": "subset_variance",
    "AutoChoice": "auto",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
