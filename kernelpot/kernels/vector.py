"""Kernels between feature vectors: Gaussian, Laplacian, linear, polynomial, dot-product^ζ.

The classes are scikit-learn :class:`~sklearn.gaussian_process.kernels.Kernel`
subclasses, so they have ``get_params``/``set_params``, log-transformed
hyperparameters ``theta`` with ``bounds``, and combine with scikit-learn's
``ConstantKernel`` and ``WhiteKernel`` (``C(1.0) * Gaussian(2.0) + WhiteKernel()``).
The same objects are the per-atom kernels ``base`` of
:class:`kernelpot.kernels.local.LocalKernel`.

Blocks are assembled from one BLAS product ``X @ Y.T`` plus an elementwise
Numba pass (``|x - y|² = |x|² + |y|² - 2 x·y`` for the Gaussian); only the
Laplacian, which needs the L1 distance, uses a direct Numba loop.
"""

from __future__ import annotations

import numpy as np
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from kernelpot.kernels import _vector_kernels as _vk

__all__ = ["Gaussian", "Laplacian", "Linear", "Polynomial", "NormalizedDotProduct", "VectorKernel"]

_EMPTY = np.zeros((0, 0))


def _as_matrix(X, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array (n_samples, n_features); got shape {X.shape}")
    return np.ascontiguousarray(X)


class VectorKernel(Kernel):
    """Base class: a kernel ``k(x, y)`` between two feature vectors.

    Subclasses define ``_kind`` (a code of ``_vector_kernels``) and
    :meth:`_parameters`, and declare ``hyperparameter_sigma`` when they
    have a length scale.
    """

    _kind = -1

    def _parameters(self) -> tuple[float, float, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def has_sigma(self) -> bool:
        """Whether the kernel has a length scale ``sigma`` (in units of the features)."""
        return hasattr(self, "sigma")

    @property
    def sigma_is_free(self) -> bool:
        """Whether ``sigma`` is a free (optimised) hyperparameter."""
        return self.has_sigma and not self.hyperparameter_sigma.fixed

    def _check_sigma(self):
        if self.has_sigma and not (np.isscalar(self.sigma) and self.sigma > 0):
            raise ValueError(f"`sigma` must be a positive scalar; got {self.sigma!r}")

    def pairwise(self, X, Y=None, *, eval_gradient=False):
        """Kernel matrix ``K[i, j] = k(X[i], Y[j])`` and optionally ``dK/dlogσ``.

        Parameters
        ----------
        X : ndarray of shape (n_x, n_features)
        Y : ndarray of shape (n_y, n_features), optional
            Defaults to ``X``.
        eval_gradient : bool
            Also return the derivative with respect to ``log(sigma)``
            (zeros for kernels without a length scale).

        Returns
        -------
        K : ndarray of shape (n_x, n_y)
        dK : ndarray of shape (n_x, n_y), only if ``eval_gradient``
        """
        self._check_sigma()
        X = _as_matrix(X, "X")
        Y = X if Y is None else _as_matrix(Y, "Y")
        if X.shape[1] != Y.shape[1]:
            raise ValueError(
                f"`X` and `Y` must have the same number of features; got {X.shape[1]} and {Y.shape[1]}"
            )
        nx = np.einsum("ij,ij->i", X, X)
        ny = nx if Y is X else np.einsum("ij,ij->i", Y, Y)
        dK = np.zeros((len(X), len(Y))) if eval_gradient else _EMPTY
        p0, p1, p2 = self._parameters()
        if self._kind == _vk.LAPLACIAN:
            K = np.empty((len(X), len(Y)))
            _vk.direct_kernel(X, Y, nx, ny, self._kind, p0, p1, p2, K, dK)
        else:
            K = X @ Y.T
            _vk.gram_to_kernel(K, nx, ny, self._kind, p0, p1, p2, dK)
        return (K, dK) if eval_gradient else K

    # -- scikit-learn Kernel interface ------------------------------------
    def __call__(self, X, Y=None, eval_gradient=False):
        """Kernel ``k(X, Y)``; with ``eval_gradient`` also d/dθ (θ = log of free hyperparameters).

        Returns
        -------
        K : ndarray of shape (n_x, n_y)
        K_gradient : ndarray of shape (n_x, n_x, n_free), only if ``eval_gradient``
        """
        if eval_gradient and Y is not None:
            raise ValueError("`eval_gradient=True` is only supported when `Y` is None")
        if not eval_gradient:
            return self.pairwise(X, Y)
        K, dK = self.pairwise(X, eval_gradient=True)
        if self.sigma_is_free:
            return K, dK[:, :, np.newaxis]
        return K, np.empty((K.shape[0], K.shape[1], 0))

    def diag(self, X):
        """``k(x, x)`` for each row, shape (n_samples,)."""
        X = _as_matrix(X, "X")
        p0, p1, p2 = self._parameters()
        if self._kind in (_vk.GAUSSIAN, _vk.LAPLACIAN):
            return np.ones(len(X))
        nx = np.einsum("ij,ij->i", X, X)
        if self._kind == _vk.LINEAR:
            return nx
        if self._kind == _vk.POLYNOMIAL:
            return (p0 * nx + p1) ** p2
        return (nx > 0).astype(np.float64)  # normalised dot product: 1, or 0 for a zero vector

    def is_stationary(self):
        return self._kind in (_vk.GAUSSIAN, _vk.LAPLACIAN)

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({params})"


class _LengthScaleKernel(VectorKernel):
    def __init__(self, sigma=1.0, sigma_bounds=(1e-5, 1e5)):
        self.sigma = sigma
        self.sigma_bounds = sigma_bounds

    @property
    def hyperparameter_sigma(self):
        return Hyperparameter("sigma", "numeric", self.sigma_bounds)


class Gaussian(_LengthScaleKernel):
    """Gaussian kernel ``k(x, y) = exp(-|x - y|² / (2 σ²))``.

    Parameters
    ----------
    sigma : float
        Length scale σ > 0, in the units of the features.
    sigma_bounds : pair of floats or "fixed"
        Bounds of σ when it is optimised (e.g. by a Gaussian process).
    """

    _kind = _vk.GAUSSIAN

    def _parameters(self):
        return -0.5 / float(self.sigma) ** 2, 0.0, 0.0


class Laplacian(_LengthScaleKernel):
    """Laplacian kernel ``k(x, y) = exp(-|x - y|₁ / σ)`` (L1 distance, as in qmllib).

    Parameters
    ----------
    sigma : float
        Length scale σ > 0, in the units of the features.
    sigma_bounds : pair of floats or "fixed"
        Bounds of σ when it is optimised.
    """

    _kind = _vk.LAPLACIAN

    def _parameters(self):
        return -1.0 / float(self.sigma), 0.0, 0.0


class Linear(VectorKernel):
    """Linear kernel ``k(x, y) = x·y`` (no hyperparameters)."""

    _kind = _vk.LINEAR

    def __init__(self):
        pass

    def _parameters(self):
        return 0.0, 0.0, 0.0


class Polynomial(VectorKernel):
    """Polynomial kernel ``k(x, y) = (γ x·y + c₀)^d``.

    Parameters
    ----------
    degree : int
        Exponent ``d`` >= 1.
    gamma : float
        Scale ``γ`` > 0 of the dot product.
    coef0 : float
        Offset ``c₀``.
    """

    _kind = _vk.POLYNOMIAL

    def __init__(self, degree=2, gamma=1.0, coef0=1.0):
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0

    def _parameters(self):
        if not (float(self.degree) == int(self.degree) and self.degree >= 1):
            raise ValueError(f"`degree` must be an integer >= 1; got {self.degree!r}")
        if not self.gamma > 0:
            raise ValueError(f"`gamma` must be > 0; got {self.gamma!r}")
        return float(self.gamma), float(self.coef0), float(self.degree)


class NormalizedDotProduct(VectorKernel):
    """Normalised dot-product kernel ``k(x, y) = (x·y / (|x| |y|))^ζ``, as used with SOAP.

    Parameters
    ----------
    zeta : int
        Exponent ζ >= 1 (integer, so that negative cosines stay real).
    """

    _kind = _vk.DOT_PRODUCT

    def __init__(self, zeta=2):
        self.zeta = zeta

    def _parameters(self):
        if not (float(self.zeta) == int(self.zeta) and self.zeta >= 1):
            raise ValueError(f"`zeta` must be an integer >= 1; got {self.zeta!r}")
        return float(self.zeta), 0.0, 0.0


_BY_NAME = {
    "gaussian": Gaussian,
    "laplacian": Laplacian,
    "linear": Linear,
    "polynomial": Polynomial,
    "dot_product": NormalizedDotProduct,
}


def make_vector_kernel(name: str, *, sigma=1.0, zeta=2, degree=2, coef0=1.0) -> VectorKernel:
    """Build a vector kernel from its name, taking only the parameters that kind uses.

    ``name`` is one of "gaussian", "laplacian", "linear", "polynomial",
    "dot_product".
    """
    if name not in _BY_NAME:
        raise ValueError(f"unknown kernel {name!r}; expected one of {sorted(_BY_NAME)}")
    if name in ("gaussian", "laplacian"):
        return _BY_NAME[name](sigma=sigma)
    if name == "polynomial":
        return Polynomial(degree=degree, coef0=coef0)
    if name == "dot_product":
        return NormalizedDotProduct(zeta=zeta)
    return Linear()
