"""Every kernel of kernelpot: on feature vectors, summed over atoms, equivariant, and GAP's covariances.

* :mod:`.vector` — scikit-learn kernels on feature vectors (KRR, GPR):
  :class:`Gaussian`, :class:`Laplacian`, :class:`Linear`, :class:`Polynomial`,
  :class:`NormalizedDotProduct`;
* :mod:`.local` — structure kernels summed over atoms, with gradient blocks;
* :mod:`.equivariant` — λ-SOAP kernels for tensors;
* :mod:`.covariance` — the same functions with the position gradients a GAP
  force fit needs: :class:`GaussianCovariance` (= ``Gaussian``),
  :class:`NormalizedDotProductCovariance` (= ``NormalizedDotProduct``),
  :class:`LinearCovariance` (= ``Linear``).

One naming scheme: American spelling, ``sigma`` for a length scale (in
the units of the features) and ``zeta`` for an exponent; ``theta`` keeps
scikit-learn's meaning (the log-transformed hyperparameters).
Names are imported on first use (:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "VectorKernel": "vector",
    "Gaussian": "vector",
    "Laplacian": "vector",
    "Linear": "vector",
    "Polynomial": "vector",
    "NormalizedDotProduct": "vector",
    "make_vector_kernel": "vector",
    "LocalKernel": "local",
    "LocalFeatures": "local",
    "as_local_features": "local",
    "equivariant_kernel": "equivariant",
    "equivariant_kernel_diag": "equivariant",
    "GaussianCovariance": "covariance",
    "NormalizedDotProductCovariance": "covariance",
    "LinearCovariance": "covariance",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
