"""Gaussian process regression on feature vectors or on per-atom features of structures.

Implements Rasmussen & Williams, *Gaussian Processes for Machine Learning*
(MIT Press, 2006), Algorithm 2.1, with hyperparameters chosen by maximising
the log marginal likelihood (eq. 5.8) using its analytic gradient (eq. 5.9).
On plain vectors it takes scikit-learn kernel objects and reproduces
``sklearn.gaussian_process.GaussianProcessRegressor``; on per-atom features
the kernel must contain a :class:`~kernelpot.kernels.local.LocalKernel`,
e.g. ``ConstantKernel() * LocalKernel(Gaussian(2.0)) + WhiteKernel()``.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.linalg import cho_solve, solve_triangular
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Kernel, WhiteKernel
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from kernelpot.kernels.local import LocalKernel
from kernelpot.kernels.vector import Gaussian
from kernelpot.models._inputs import (
    check_fit_input,
    check_predict_input,
    contains_local,
    is_per_atom,
    regressor_tags,
)
from kernelpot.models.krr import cholesky_with_jitter_hint
from kernelpot.utils.estimators import reset_fitted
from kernelpot.utils.linalg import cholesky

__all__ = ["GaussianProcessRegressor"]

_LOG_2PI = np.log(2.0 * np.pi)


def _default_kernel(per_atom: bool) -> Kernel:
    if per_atom:
        return ConstantKernel(1.0) * LocalKernel(Gaussian(1.0)) + WhiteKernel(1e-2)
    return ConstantKernel(1.0, constant_value_bounds="fixed") * RBF(1.0, length_scale_bounds="fixed")


class GaussianProcessRegressor(RegressorMixin, BaseEstimator):
    """Gaussian process regression with log-marginal-likelihood hyperparameter optimisation.

    Parameters
    ----------
    kernel : Kernel or None
        Prior covariance, a scikit-learn kernel object (kernelpot's vector and
        local kernels are such objects). Its free hyperparameters are optimised
        in ``fit``. None means ``ConstantKernel(1, fixed) * RBF(1, fixed)`` on
        vectors and ``ConstantKernel(1) * LocalKernel(Gaussian(1)) + WhiteKernel(0.01)``
        on per-atom features (signal variance, σ and noise all optimised).
    alpha : float or ndarray of shape (n_samples,)
        Value added to the diagonal of the training kernel matrix (noise
        variance in units of y², or jitter). Never changed by ``fit``.
    optimizer : "fmin_l_bfgs_b", callable or None
        "fmin_l_bfgs_b" uses ``scipy.optimize.minimize(method="L-BFGS-B")`` with
        the analytic gradient; a callable ``optimizer(obj_func, initial_theta, bounds)``
        must return ``(theta_opt, func_min)``; None keeps the kernel's hyperparameters.
    n_restarts_optimizer : int
        Extra optimiser runs from log-uniform random starts within the bounds.
    normalize_y : bool
        Subtract the mean and divide by the standard deviation of ``y`` before fitting.
    random_state : int, RandomState or None
        Seed of the restart starting points.

    Attributes
    ----------
    kernel_ : Kernel
        Kernel with the optimised hyperparameters.
    X_train_ : ndarray of shape (n_samples, n_features) or LocalFeatures
    y_train_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Training targets (normalised if ``normalize_y``).
    L_ : ndarray of shape (n_samples, n_samples)
        Lower Cholesky factor of ``K + alpha I``.
    alpha_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        ``(K + alpha I)⁻¹ y_train_``.
    log_marginal_likelihood_value_ : float
        Log marginal likelihood at ``kernel_.theta``.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.gaussian_process.kernels import RBF
    >>> X = np.linspace(0, 5, 20)[:, None]
    >>> gp = GaussianProcessRegressor(RBF(1.0), alpha=1e-6).fit(X, np.sin(X[:, 0]))
    >>> mean, std = gp.predict([[2.5]], return_std=True)
    >>> bool(abs(mean[0] - np.sin(2.5)) < 1e-3 and std[0] < 1e-2)
    True
    """

    _parameter_constraints = {
        "kernel": [None, Kernel],
        "alpha": [Interval(Real, 0, None, closed="left"), np.ndarray],
        "optimizer": [StrOptions({"fmin_l_bfgs_b"}), callable, None],
        "n_restarts_optimizer": [Interval(Integral, 0, None, closed="left")],
        "normalize_y": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        kernel=None,
        *,
        alpha=1e-10,
        optimizer="fmin_l_bfgs_b",
        n_restarts_optimizer=0,
        normalize_y=False,
        random_state=None,
    ):
        self.kernel = kernel
        self.alpha = alpha
        self.optimizer = optimizer
        self.n_restarts_optimizer = n_restarts_optimizer
        self.normalize_y = normalize_y
        self.random_state = random_state

    # -- fitting -----------------------------------------------------------
    def __sklearn_tags__(self):
        return regressor_tags(super().__sklearn_tags__())

    def fit(self, X, y):
        """Optimise the kernel hyperparameters and condition the GP on ``(X, y)``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), or per-atom features
            Per-atom input (AtomicFeatures, LocalFeatures, (features, offsets, numbers))
            needs a kernel containing a LocalKernel.
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self : GaussianProcessRegressor
        """
        self._validate_params()
        reset_fitted(self)
        kernel = _default_kernel(is_per_atom(X)) if self.kernel is None else clone(self.kernel)
        self._local = contains_local(kernel)
        X, y = check_fit_input(self, X, y, local=self._local)
        self._noise = self._check_alpha(len(y))
        if self.normalize_y:
            self._y_mean = np.mean(y, axis=0)
            std = np.std(y, axis=0)
            self._y_std = np.where(std == 0.0, 1.0, std) if np.ndim(std) else (std if std != 0.0 else 1.0)
            y = (y - self._y_mean) / self._y_std
        else:
            self._y_mean = np.zeros(y.shape[1:]) if y.ndim == 2 else 0.0
            self._y_std = np.ones(y.shape[1:]) if y.ndim == 2 else 1.0
        self.kernel_ = kernel
        self.X_train_ = X
        self.y_train_ = y
        if self.optimizer is not None and kernel.n_dims > 0:
            self._optimise_hyperparameters()
        else:
            self.log_marginal_likelihood_value_ = self.log_marginal_likelihood(kernel.theta, clone_kernel=False)
        # Alg. 2.1, lines 2-3: L = chol(K + σ²I), α = Lᵀ \ (L \ y)
        K = self.kernel_(self.X_train_)
        K[np.diag_indices_from(K)] += self._noise
        self.L_ = cholesky_with_jitter_hint(K, self.alpha)
        self.alpha_ = cho_solve((self.L_, True), self.y_train_, check_finite=False)
        return self

    def _check_alpha(self, n_samples: int):
        if np.ndim(self.alpha) == 0:
            return float(self.alpha)
        noise = np.asarray(self.alpha, dtype=np.float64)
        if noise.shape != (n_samples,) and noise.shape != (1,):
            raise ValueError(f"`alpha` must be a scalar or have shape ({n_samples},); got shape {noise.shape}")
        if np.any(noise < 0) or not np.all(np.isfinite(noise)):
            raise ValueError("`alpha` must be finite and >= 0")
        return noise if noise.shape == (n_samples,) else float(noise[0])

    def _optimise_hyperparameters(self):
        def objective(theta):
            lml, grad = self.log_marginal_likelihood(theta, eval_gradient=True, clone_kernel=False)
            return -lml, -grad

        bounds = self.kernel_.bounds
        starts = [self.kernel_.theta]
        if self.n_restarts_optimizer > 0:
            if not np.all(np.isfinite(bounds)):
                raise ValueError("`n_restarts_optimizer` > 0 needs finite bounds on every free hyperparameter")
            rng = check_random_state(self.random_state)
            starts += [rng.uniform(bounds[:, 0], bounds[:, 1]) for _ in range(self.n_restarts_optimizer)]
        results = [self._minimise(objective, start, bounds) for start in starts]
        best = int(np.argmin([value for _, value in results]))
        self.kernel_.theta = results[best][0]
        self.log_marginal_likelihood_value_ = -float(results[best][1])

    def _minimise(self, objective, theta0, bounds):
        if callable(self.optimizer):
            return self.optimizer(objective, theta0, bounds)
        result = minimize(objective, theta0, method="L-BFGS-B", jac=True, bounds=bounds)
        if not result.success:
            warnings.warn(
                f"L-BFGS-B did not converge while optimising the kernel hyperparameters: {result.message}",
                ConvergenceWarning,
                stacklevel=3,
            )
        return result.x, result.fun

    def log_marginal_likelihood(self, theta=None, eval_gradient=False, clone_kernel=True):
        """Log marginal likelihood of the training data and its gradient.

        Parameters
        ----------
        theta : ndarray of shape (n_free_hyperparameters,) or None
            Log-transformed hyperparameters; None returns the fitted value.
        eval_gradient : bool
            Also return d(LML)/dθ.
        clone_kernel : bool
            Evaluate on a copy of ``kernel_`` (otherwise its theta is set in place).

        Returns
        -------
        float, and ndarray of shape (n_free_hyperparameters,) if ``eval_gradient``
        """
        if theta is None:
            if eval_gradient:
                raise ValueError("`eval_gradient=True` needs an explicit `theta`")
            check_is_fitted(self, "log_marginal_likelihood_value_")
            return self.log_marginal_likelihood_value_
        if clone_kernel:
            kernel = self.kernel_.clone_with_theta(theta)
        else:
            kernel = self.kernel_
            kernel.theta = theta
        if eval_gradient:
            K, dK = kernel(self.X_train_, eval_gradient=True)
        else:
            K = kernel(self.X_train_)
        K[np.diag_indices_from(K)] += self._noise
        try:
            L = cholesky(K, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return (-np.inf, np.zeros_like(theta)) if eval_gradient else -np.inf
        Y = self.y_train_.reshape(len(K), -1)
        n_targets = Y.shape[1]
        weights = cho_solve((L, True), Y, check_finite=False)
        # Eq. 5.8 (Alg. 2.1 line 7), summed over independent targets.
        lml = -0.5 * np.sum(Y * weights) - n_targets * (np.log(np.diag(L)).sum() + 0.5 * len(K) * _LOG_2PI)
        if not eval_gradient:
            return lml
        # Eq. 5.9: d lml/dθ = ½ tr((ααᵀ - K⁻¹) dK/dθ), summed over targets.
        K_inv = cho_solve((L, True), np.eye(len(K)), check_finite=False)
        inner = weights @ weights.T - n_targets * K_inv
        return lml, 0.5 * np.einsum("ij,ijk->k", inner, dK)

    # -- prediction --------------------------------------------------------
    def predict(self, X, return_std=False, return_cov=False):
        """Posterior mean, and optionally its standard deviation or covariance.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), or per-atom features
        return_std : bool
            Also return the posterior standard deviation (units of y).
        return_cov : bool
            Also return the posterior covariance (units of y²). At most one
            of ``return_std`` and ``return_cov``.

        Returns
        -------
        mean : ndarray of shape (n_samples,) or (n_samples, n_targets)
        std : ndarray of shape (n_samples,) or (n_samples, n_targets), if ``return_std``
        cov : ndarray of shape (n_samples, n_samples) or (n_samples, n_samples, n_targets),
            if ``return_cov``
        """
        if return_std and return_cov:
            raise ValueError("at most one of `return_std` and `return_cov` can be True")
        check_is_fitted(self, "alpha_")
        X = check_predict_input(self, X, local=self._local)
        K_trans = self.kernel_(X, self.X_train_)
        mean = self._y_std * (K_trans @ self.alpha_) + self._y_mean  # Alg. 2.1 line 4
        if not (return_std or return_cov):
            return mean
        V = solve_triangular(self.L_, K_trans.T, lower=True, check_finite=False)  # line 5
        scale = np.square(self._y_std)
        if return_cov:
            cov = self.kernel_(X) - V.T @ V  # line 6
            return mean, cov[:, :, np.newaxis] * scale if np.ndim(scale) else cov * scale
        var = self.kernel_.diag(X) - np.einsum("ij,ij->j", V, V)
        if np.any(var < 0):
            warnings.warn("predicted variances smaller than 0 were set to 0", RuntimeWarning, stacklevel=2)
            var = np.maximum(var, 0.0)
        var = var[:, np.newaxis] * scale if np.ndim(scale) else var * scale
        return mean, np.sqrt(var)
