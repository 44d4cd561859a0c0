"""Regressors: kernel ridge, Gaussian process and GAP-style sparse Gaussian process regression."""

from ._gap_covariance import NormalisedDotProduct, SquaredExponential
from .gpr import GaussianProcessRegressor
from .krr import KernelRidge
from .sparse_gpr import GAPTerm, SparseGPR

__all__ = ["KernelRidge", "GaussianProcessRegressor", "SparseGPR", "GAPTerm", "SquaredExponential",
           "NormalisedDotProduct"]
