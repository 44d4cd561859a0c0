"""Regressors: kernel ridge, Gaussian processes, GAP-style sparse GPR, symmetry-adapted GPR for tensors, densities.

Names are imported on first use (PEP 562), so importing one model does not load the others.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS = {
    "KernelRidge": "krr",
    "GaussianProcessRegressor": "gpr",
    "SparseGPR": "sparse_gpr",
    "GAPTerm": "sparse_gpr",
    "SquaredExponential": "_gap_covariance",
    "NormalisedDotProduct": "_gap_covariance",
    "SymmetryAdaptedGPR": "sagpr",
    "TensorRegressor": "sagpr",
    "DensityModel": "density",
}

__all__ = list(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
