"""Kernels on feature vectors and their sums over atoms (structure kernels, with gradient blocks)."""

from .equivariant import equivariant_kernel, equivariant_kernel_diag
from .local import LocalFeatures, LocalKernel, as_local_features
from .vector import Gaussian, Laplacian, Linear, NormalizedDotProduct, Polynomial, VectorKernel, make_vector_kernel

__all__ = [
    "VectorKernel", "Gaussian", "Laplacian", "Linear", "Polynomial", "NormalizedDotProduct", "make_vector_kernel",
    "LocalKernel", "LocalFeatures", "as_local_features", "equivariant_kernel", "equivariant_kernel_diag",
]
