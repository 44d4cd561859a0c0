"""Kernel ridge regression on feature vectors or on per-atom features of structures."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy.linalg import cho_solve, cholesky
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.gaussian_process.kernels import Kernel
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from kernelpot.kernels.local import LocalKernel
from kernelpot.kernels.vector import make_vector_kernel
from kernelpot.models._inputs import check_fit_input, check_predict_input, contains_local, regressor_tags

__all__ = ["KernelRidge"]

_VECTOR_NAMES = ("gaussian", "laplacian", "linear", "polynomial", "dot_product")
KERNEL_NAMES = _VECTOR_NAMES + tuple("local_" + name for name in _VECTOR_NAMES)


def cholesky_with_jitter_hint(K: np.ndarray, alpha) -> np.ndarray:
    """Lower Cholesky factor of ``K``, re-raising a failure that names ``alpha``."""
    try:
        return cholesky(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError as exc:
        raise np.linalg.LinAlgError(
            f"the kernel matrix plus `alpha` on its diagonal is not positive definite ({exc}); "
            f"increase `alpha` (got {alpha!r})"
        ) from exc


class KernelRidge(RegressorMixin, BaseEstimator):
    """Kernel ridge regression solved by Cholesky factorisation.

    Minimises ``|y - K c|² + alpha cᵀ K c``, i.e. ``c = (K + alpha I)⁻¹ y``,
    as qmllib does for its KRR examples. With per-atom input the kernel is
    a local (structure) kernel ``K(A, B) = Σ_{i∈A} Σ_{j∈B} k(x_i, x_j)`` and
    the model keeps the training per-atom features to predict.

    Parameters
    ----------
    alpha : float
        Regularisation added to the diagonal of the kernel matrix (units of
        the kernel). Increase it if the Cholesky factorisation fails.
    kernel : str or Kernel
        One of "gaussian", "laplacian", "linear", "polynomial", "dot_product"
        (on vectors) or the same names prefixed with "local_" (on per-atom
        features, e.g. "local_gaussian"), or a kernel object: a kernelpot
        vector kernel, a :class:`~kernelpot.kernels.local.LocalKernel`, or a
        scikit-learn kernel. A kernel object ignores ``sigma``, ``zeta``,
        ``degree``, ``coef0`` and ``same_element_only``.
    sigma : float
        Length scale of "gaussian" and "laplacian" (units of the features).
    zeta : int
        Exponent of "dot_product", ``(x·y / |x||y|)^zeta``.
    degree : int
        Degree of "polynomial", ``(x·y + coef0)^degree``.
    coef0 : float
        Offset of "polynomial".
    same_element_only : bool
        For "local_*" kernels: only atom pairs of the same element contribute.

    Attributes
    ----------
    kernel_ : Kernel
        The kernel object used.
    dual_coef_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Weights ``c`` of the training samples.
    X_fit_ : ndarray of shape (n_samples, n_features) or LocalFeatures
        Training input, needed to predict.
    n_features_in_ : int
        Number of features (per atom for per-atom input).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(0, 3, 12)[:, None]
    >>> model = KernelRidge(alpha=1e-8, kernel="gaussian", sigma=0.5).fit(X, np.sin(X[:, 0]))
    >>> bool(abs(model.predict([[1.0]])[0] - np.sin(1.0)) < 1e-3)
    True
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "kernel": [StrOptions(set(KERNEL_NAMES)), Kernel],
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "zeta": [Interval(Integral, 1, None, closed="left")],
        "degree": [Interval(Integral, 1, None, closed="left")],
        "coef0": [Real],
        "same_element_only": ["boolean"],
    }

    def __init__(
        self, alpha=1.0, *, kernel="gaussian", sigma=1.0, zeta=2, degree=2, coef0=1.0, same_element_only=True
    ):
        self.alpha = alpha
        self.kernel = kernel
        self.sigma = sigma
        self.zeta = zeta
        self.degree = degree
        self.coef0 = coef0
        self.same_element_only = same_element_only

    def _make_kernel(self) -> Kernel:
        if not isinstance(self.kernel, str):
            return clone(self.kernel)
        name = self.kernel.removeprefix("local_")
        base = make_vector_kernel(name, sigma=self.sigma, zeta=self.zeta, degree=self.degree, coef0=self.coef0)
        if self.kernel.startswith("local_"):
            return LocalKernel(base, same_element_only=self.same_element_only)
        return base

    def __sklearn_tags__(self):
        return regressor_tags(super().__sklearn_tags__())

    def fit(self, X, y):
        """Fit the model.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), or per-atom features
            Per-atom input (``AtomicFeatures`` from a kernelpot descriptor,
            ``LocalFeatures`` or ``(features, offsets, numbers)``) needs a local kernel.
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Targets, one row per sample or structure (e.g. energies in eV).

        Returns
        -------
        self : KernelRidge
        """
        self._validate_params()
        kernel = self._make_kernel()
        self._local = contains_local(kernel)
        X, y = check_fit_input(self, X, y, local=self._local)
        K = kernel(X)
        K[np.diag_indices_from(K)] += self.alpha
        L = cholesky_with_jitter_hint(K, self.alpha)
        self.dual_coef_ = cho_solve((L, True), y, check_finite=False)
        self.kernel_ = kernel
        self.X_fit_ = X
        return self

    def predict(self, X):
        """Predict targets.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), or per-atom features
            Same kind of input as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        check_is_fitted(self, "dual_coef_")
        X = check_predict_input(self, X, local=self._local)
        return self.kernel_(X, self.X_fit_) @ self.dual_coef_
