"""Regressors: kernel ridge, Gaussian processes, GAP-style sparse GPR, symmetry-adapted GPR (tensors), densities, kQEq.

Names are imported on first use (PEP 562, :mod:`kernelpot.utils.lazy`), so importing one model does not load
the others. GAP (:class:`SparseGPR` and its parts) is the subpackage :mod:`kernelpot.models.gap`.
"""

from __future__ import annotations

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "KernelRidge": "krr",
    "GaussianProcessRegressor": "gpr",
    "SparseGPR": "gap",
    "GAPTerm": "gap",
    "IncrementalSparseGPR": "gap",
    "AutoChoice": "gap",
    "SymmetryAdaptedGPR": "sagpr",
    "TensorRegressor": "sagpr",
    "DensityModel": "density",
    "KernelChargeEquilibration": "charges",
    "KQEqPotential": "charges",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
