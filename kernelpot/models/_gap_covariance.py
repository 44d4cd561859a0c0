"""Covariance functions of GAP terms, with the feature gradients a force fit needs.

Each covariance ``k(x, z)`` between descriptor rows ``x`` and sparse points
``z`` provides

* ``__call__(X, Z)`` -> ``(n, m)`` values,
* ``diag(X)`` -> ``(n,)`` values ``k(x, x)``,
* ``gradient_dot(X, Z, coef)`` -> ``(n, d)``: ``d/dx_i sum_m coef[i, m] k(x_i, z_m)``,
  used for predictions (one contraction, never an ``(n, m, d)`` array),
* ``pair_context(X, Z, K=None)``: what ``pair_gradients`` needs of the whole
  block (kernel values, unit vectors, ...), computed once per block rather
  than once per chunk of pairs,
* ``pair_gradients(X, Z, Gv, rows, K=None, context=None)`` -> ``(n_pairs, 3, m)``:
  ``sum_k Gv[p, a, k] dk(x_rows[p], z_m)/dx_k``, the kernel derivative with
  respect to the position of the pair's moving atom, used for fitting;
  written as matrix products ``Gv @ Z.T`` so the cost is BLAS.

The overall scale ``delta**2`` and the cutoff weights live in the term,
not here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SquaredExponential", "NormalisedDotProduct"]


def _flat_dot(G, Z):
    """``G @ Z.T`` for G of shape (P, 3, d): one GEMM instead of P small ones."""
    P, three, d = G.shape
    return (G.reshape(P * three, d) @ Z.T).reshape(P, three, Z.shape[0])


def _check_positive(name, value):
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a number; got {value!r}")
    array = np.asarray(value, dtype=np.float64)
    if array.ndim > 1 or array.size == 0 or not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"`{name}` must be a finite number > 0 (or a 1-D array of them); got {value!r}")
    return array


class SquaredExponential:
    """``k(x, z) = exp(-sum_k (x_k - z_k)**2 / (2 theta_k**2))`` (GAP ``ard_se``).

    Parameters
    ----------
    theta : float or array-like of shape (n_features,)
        Length scale(s) in units of the features (Å for ``distance_2b``).
        A scalar is GAP's ``theta_uniform``; an array gives one per feature.
    """

    def __init__(self, theta=1.0):
        self.theta = theta

    def __repr__(self):
        return f"SquaredExponential(theta={self.theta!r})"

    def get_params(self, deep=True):
        return {"theta": self.theta}

    def _inv_theta2(self, n_features):
        theta = _check_positive("theta", self.theta)
        if theta.ndim == 1 and theta.shape[0] != n_features:
            raise ValueError(
                f"`theta` has {theta.shape[0]} length scales but the descriptor has "
                f"{n_features} features"
            )
        return np.broadcast_to(1.0 / theta**2, (n_features,))

    def __call__(self, X, Z):
        s = self._inv_theta2(X.shape[1])
        Xs, Zs = X * s, Z * s
        d2 = (Xs * X).sum(1)[:, None] + (Zs * Z).sum(1)[None, :] - 2.0 * Xs @ Z.T
        return np.exp(-0.5 * np.maximum(d2, 0.0))

    def diag(self, X):
        return np.ones(X.shape[0])

    def gradient_dot(self, X, Z, coef, K=None):
        s = self._inv_theta2(X.shape[1])
        K = self(X, Z) if K is None else K
        A = coef * K
        # d/dx_i sum_m A_im = -sum_m A_im (x_i - z_m) s
        return -(A.sum(1)[:, None] * X - A @ Z) * s

    def pair_context(self, X, Z, K=None):
        return self._inv_theta2(X.shape[1]), (self(X, Z) if K is None else K)

    def pair_gradients(self, X, Z, Gv, rows, K=None, context=None):
        s, K = self.pair_context(X, Z, K) if context is None else context
        Gs = Gv * s                                    # (P, 3, d)
        u = np.einsum("pak,pk->pa", Gs, X[rows])       # (P, 3)
        GZ = _flat_dot(Gs, Z)                          # (P, 3, m)
        GZ -= u[:, :, None]
        GZ *= K[rows][:, None, :]
        return GZ


class NormalisedDotProduct:
    """``k(x, z) = (x·z / (|x| |z|))**zeta`` (GAP ``dot_product`` with ``zeta``, used for SOAP).

    Parameters
    ----------
    zeta : float, default=4
        Exponent, > 0 (an integer in practice; GAP's SOAP default is 4).
    """

    def __init__(self, zeta=4):
        self.zeta = zeta

    def __repr__(self):
        return f"NormalisedDotProduct(zeta={self.zeta!r})"

    def get_params(self, deep=True):
        return {"zeta": self.zeta}

    def _zeta(self):
        zeta = _check_positive("zeta", self.zeta)
        if zeta.ndim != 0:
            raise ValueError(f"`zeta` must be a scalar > 0; got {self.zeta!r}")
        return float(zeta)

    @staticmethod
    def _unit(X):
        norm = np.linalg.norm(X, axis=1)
        if np.any(norm == 0):
            raise ValueError(
                "NormalisedDotProduct needs non-zero feature vectors; rows "
                f"{np.nonzero(norm == 0)[0][:10].tolist()} are all zero (isolated atoms?)"
            )
        return X / norm[:, None], norm

    def _cos(self, X, Z):
        Xh, nx = self._unit(X)
        Zh, _ = self._unit(Z)
        return np.clip(Xh @ Zh.T, -1.0, 1.0), Xh, Zh, nx

    def __call__(self, X, Z):
        c = self._cos(X, Z)[0]
        return c ** self._zeta()

    def diag(self, X):
        self._unit(X)
        return np.ones(X.shape[0])

    def gradient_dot(self, X, Z, coef, K=None):
        zeta = self._zeta()
        c, Xh, Zh, nx = self._cos(X, Z)
        A = coef * zeta * c ** (zeta - 1.0)
        # d c_im / d x_i = (zh_m - c_im xh_i) / |x_i|
        return (A @ Zh - (A * c).sum(1)[:, None] * Xh) / nx[:, None]

    def pair_context(self, X, Z, K=None):
        return (self._zeta(), *self._cos(X, Z))

    def pair_gradients(self, X, Z, Gv, rows, K=None, context=None):
        zeta, c, Xh, Zh, nx = self.pair_context(X, Z) if context is None else context
        c = c[rows]
        B = zeta * c ** (zeta - 1.0) / nx[rows][:, None]   # (P, m)
        GZ = _flat_dot(Gv, Zh)                             # (P, 3, m)
        u = np.einsum("pak,pk->pa", Gv, Xh[rows])          # (P, 3)
        GZ -= c[:, None, :] * u[:, :, None]
        GZ *= B[:, None, :]
        return GZ
