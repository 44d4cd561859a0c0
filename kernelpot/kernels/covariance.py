"""Covariances of GAP terms: vector kernels with the feature gradients a force fit needs.

:class:`GaussianCovariance`, :class:`NormalizedDotProductCovariance` and
:class:`LinearCovariance` are the functions of :class:`~kernelpot.kernels.vector.Gaussian`,
:class:`~kernelpot.kernels.vector.NormalizedDotProduct` and
:class:`~kernelpot.kernels.vector.Linear` (same names, same
parameters: the length scale is ``sigma``, the exponent ``zeta``), in the
form a sparse GPR of energies, forces and virials
(:class:`~kernelpot.models.gap.SparseGPR`) needs. The vector kernels are
scikit-learn kernels (hyperparameters, ``eval_gradient``) for KRR and GPR;
these covariances give, for descriptor rows ``x`` and sparse points ``z``,

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
  written as matrix products ``Gv @ Z.T`` so the cost is BLAS; it factors as
  ``W[rows] (GZ - C[rows] u)`` (``pair_factors``, ``pair_weights``), so
  callers can fuse the last step with their own sums;
* ``second_derivative_pieces(X, U)`` -> ``(k, D, H)``: the mixed second
  derivatives ``u_i^T ∂_x∂_z^T k(x_i, x_j) u_j`` behind the prior variance
  of forces and virials (:mod:`kernelpot.models.gap.variance`),
* ``contraction(Z, weights)`` -> a callable ``X -> (values, gradients)`` with
  ``values[i] = Σ_m weights[m] k(x_i, z_m)`` and ``gradients[i]`` its
  gradient in ``x_i``: what the sparse points of a fitted term contribute,
  prepared once (unit vectors, and for the integer exponents 1 and 2 of the
  dot product one vector or one matrix instead of ``m`` dot products), then
  applied to every new block of rows (predictions, MD steps).

The overall scale ``delta**2`` and the cutoff weights live in the term,
not here.
"""

from __future__ import annotations

import numpy as np

from ._covariance_kernels import (
    dot_power_weights,
    dot_powers,
    dot_product_gradient_prior,
    gaussian_gradient_prior,
    gaussian_grouped_quadratic_forms,
    gaussian_quadratic_form,
)

__all__ = ["GaussianCovariance", "LinearCovariance", "NormalizedDotProductCovariance"]


# Up to this many features, Gaussian kernels take the differences x - z directly (exact) rather
# than |x|² + |z|² - 2 x·z (one GEMM, but cancellation when x ≈ z).
_DIRECT_FEATURES = 4


def _flat_dot(G, Z):
    """``G @ Z.T`` for G of shape (P, 3, d): one GEMM instead of P small ones.

    Pairs whose gradients are zero on many features (SOAP with several species: only the blocks of the
    neighbour's species around the centre's species move) are grouped by their non-zero columns, and each
    group's product runs over those columns only. The skipped terms are exact zeros, so the result is the
    same to round-off; a group is only formed when it saves at least a third of the work.
    """
    P, three, d = G.shape
    m = Z.shape[0]
    if P * three < 256 or d < 64:
        return (G.reshape(P * three, d) @ Z.T).reshape(P, three, m)
    nonzero = (G != 0).any(axis=1)                                   # (P, d)
    patterns, inverse = np.unique(np.packbits(nonzero, axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    columns = [np.flatnonzero(np.unpackbits(pattern, count=d)) for pattern in patterns]
    counts = np.bincount(inverse, minlength=len(patterns))
    if len(patterns) > 256 or counts @ np.array([len(c) for c in columns]) > 2 * P * d / 3:
        return (G.reshape(P * three, d) @ Z.T).reshape(P, three, m)
    out = np.empty((P, three, m))
    # Z transposed once: each group then takes whole rows of it (contiguous copies); taking Z's columns group by
    # group was a strided gather as slow as the products themselves
    Zt = np.ascontiguousarray(Z.T)
    for k, cols in enumerate(columns):
        pairs = np.flatnonzero(inverse == k)
        if len(cols) == 0:
            out[pairs] = 0.0
            continue
        part = G[pairs][:, :, cols].reshape(len(pairs) * three, len(cols))
        out[pairs] = (part @ Zt[cols]).reshape(len(pairs), three, m)
    return out


def _combine(covariance, X, Z, Gv, rows, context):
    """``pair_gradients`` from the factors: ``W[rows] (GZ - C[rows] u)``, (P, 3, m)."""
    GZ, u = covariance.pair_factors(X, Z, Gv, rows, context)
    W, C = covariance.pair_weights(context)
    GZ -= C[rows][:, None, :] * u[:, :, None]
    GZ *= W[rows][:, None, :]
    return GZ


def _check_positive(name, value):
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a number; got {value!r}")
    array = np.asarray(value, dtype=np.float64)
    if array.ndim > 1 or array.size == 0 or not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"`{name}` must be a finite number > 0 (or a 1-D array of them); got {value!r}")
    return array


class GaussianCovariance:
    """``k(x, z) = exp(-sum_k (x_k - z_k)**2 / (2 sigma_k**2))`` (GAP ``ard_se``).

    Parameters
    ----------
    sigma : float or array-like of shape (n_features,)
        Length scale(s) in units of the features (Å for ``distance_2b``),
        as ``sigma`` of :class:`~kernelpot.kernels.vector.Gaussian`. A
        scalar is GAP's ``theta_uniform``; an array gives one per feature
        (GAP's ``theta``).
    """

    def __init__(self, sigma=1.0):
        self.sigma = sigma

    def __repr__(self):
        return f"GaussianCovariance(sigma={self.sigma!r})"

    def get_params(self, deep=True):
        return {"sigma": self.sigma}

    def inverse_sigma2(self, n_features):
        """ndarray (n_features,): ``1 / sigma_k**2`` of every feature (checked against ``n_features``)."""
        sigma = _check_positive("sigma", self.sigma)
        if sigma.ndim == 1 and sigma.shape[0] != n_features:
            raise ValueError(
                f"`sigma` has {sigma.shape[0]} length scales but the descriptor has "
                f"{n_features} features"
            )
        return np.broadcast_to(1.0 / sigma**2, (n_features,))

    def __call__(self, X, Z):
        s = self.inverse_sigma2(X.shape[1])
        if X.shape[1] <= _DIRECT_FEATURES:
            # Few features (distance_2b: one): the differences themselves. |x|² + |z|² - 2 x·z loses
            # ~1e-15 |x|² absolutely, which the large alternating weights of a pair potential turn
            # into ~1e-8 relative errors of its energy.
            # One feature at a time, in place: no (n, m, n_features) temporary (3.5x faster than one einsum
            # over it for angle_3b's three features, a third of an MD step of a water model with 3-body terms).
            d2 = np.zeros((X.shape[0], Z.shape[0]))
            difference = np.empty_like(d2)
            for k in range(X.shape[1]):
                np.subtract(X[:, k, None], Z[None, :, k], out=difference)
                difference *= difference
                difference *= s[k]
                d2 += difference
            d2 *= -0.5
            return np.exp(d2, out=d2)
        Xs, Zs = X * s, Z * s
        d2 = (Xs * X).sum(1)[:, None] + (Zs * Z).sum(1)[None, :] - 2.0 * Xs @ Z.T
        return np.exp(-0.5 * np.maximum(d2, 0.0))

    def diag(self, X):
        return np.ones(X.shape[0])

    def gradient_dot(self, X, Z, coef, K=None):
        s = self.inverse_sigma2(X.shape[1])
        K = self(X, Z) if K is None else K
        A = coef * K
        # d/dx_i sum_m A_im = -sum_m A_im (x_i - z_m) s
        if X.shape[1] <= _DIRECT_FEATURES:
            return -np.einsum("im,imk->ik", A, X[:, None, :] - Z[None, :, :]) * s
        return -(A.sum(1)[:, None] * X - A @ Z) * s

    def point_gradient_factors(self, X, Z):
        """``∂k(x_i, z_m)/∂x_i = alpha[m, i] points[m] + beta[m, i] rows[i]`` for every sparse point ``m`` and row
        ``i``, as ``(points (n_points, n_features), alpha (n_points, n_rows), rows (n_rows, n_features), beta)``:
        the gradients of all points without an (n_points, n_rows, n_features) array
        (``gradient_dot(X, Z, coef)`` is ``Σ_m coef[:, m]`` times them)."""
        s = self.inverse_sigma2(X.shape[1])
        K = self(X, Z).T
        return np.asarray(Z) * s, K, np.asarray(X) * s, -K

    def pair_context(self, X, Z, K=None):
        return self.inverse_sigma2(X.shape[1]), (self(X, Z) if K is None else K)

    def pair_factors(self, X, Z, Gv, rows, context):
        """``(GZ, u)`` of :meth:`pair_gradients` = ``W[rows] (GZ - C[rows] u)``, ``(W, C)`` from :meth:`pair_weights`.

        With ``S = diag(1/sigma²)``: ``GZ[p, a, m] = Gv[p, a] S z_m``, ``u[p, a] = Gv[p, a] S x_rows[p]``.
        """
        s = context[0]
        Gs = Gv * s                                    # (P, 3, d)
        return _flat_dot(Gs, Z), np.einsum("pak,pk->pa", Gs, X[rows])

    def pair_weights(self, context):
        """``(W, C)``, each (n_rows, m): ``W = k(x, z)``, ``C = 1``."""
        K = context[1]
        return K, np.ones_like(K)

    def pair_gradients(self, X, Z, Gv, rows, K=None, context=None):
        context = self.pair_context(X, Z, K) if context is None else context
        return _combine(self, X, Z, Gv, rows, context)

    def contraction(self, Z, weights):
        """``X -> (Σ_m weights[m] k(x_i, z_m), its gradient in x_i)``, shapes (n,) and (n, d).

        See the module docstring.
        """
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        return _GaussianSum(self, Z, np.asarray(weights, dtype=np.float64), self.inverse_sigma2(Z.shape[1]))

    def quadratic_form(self, X, weights):
        """``Σ_ij w_i w_j k(x_i, x_j)`` (the prior variance of a weighted sum of rows).

        Through the (n, n) matrix up to ``n = 2048`` rows (32 MiB), beyond that in a compiled loop with
        compensated sums: equal to round-off, but ``w K w`` sets the exact last bits that a variance
        subtracting nearly equal numbers of this size amplifies, so small inputs keep them.
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        if len(X) <= 2048:
            return float(weights @ self(X, X) @ weights)
        return float(gaussian_quadratic_form(X, np.ascontiguousarray(self.inverse_sigma2(X.shape[1])), weights))

    def grouped_quadratic_forms(self, X, weights, indptr, members):
        """``Σ_{a,b ∈ g} w_a w_b k(x_a, x_b)`` of every group ``g = members[indptr[g]:indptr[g + 1]]`` (rows of
        ``X``; a row listed twice counts twice), (n_groups,): the prior variances of per-atom shares of pair
        energies, in one compiled pass."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.zeros(len(indptr) - 1)
        gaussian_grouped_quadratic_forms(X, np.ascontiguousarray(self.inverse_sigma2(X.shape[1])),
                                         np.ascontiguousarray(weights, dtype=np.float64),
                                         np.asarray(indptr, dtype=np.int64), np.asarray(members, dtype=np.int64),
                                         out)
        return out

    def grouped_gradient_prior(self, X, U, item_rows, order, offsets, weights=None, weight_gradients=None):
        """``Σ_ij u_i^T ∂_x∂_z^T [w(x_i) w(x_j) k(x_i, x_j)] u_j`` per group and component (see
        :meth:`NormalizedDotProductCovariance.grouped_gradient_prior`), row weights ``w`` (n_rows,) and their
        feature gradients (n_rows, d) included (None: 1 and 0)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        n_rows, d = X.shape
        w = np.ones(n_rows) if weights is None else np.asarray(weights, dtype=np.float64)
        dw = np.zeros((n_rows, d)) if weight_gradients is None else np.ascontiguousarray(weight_gradients,
                                                                                           dtype=np.float64)
        out = np.zeros((len(offsets) - 1, U.shape[1]))
        gaussian_gradient_prior(X, np.ascontiguousarray(U, dtype=np.float64), np.asarray(item_rows, dtype=np.int64),
                                np.asarray(order, dtype=np.int64), np.asarray(offsets, dtype=np.int64),
                                np.ascontiguousarray(self.inverse_sigma2(d)), w, dw, out)
        return out

    def second_derivative_pieces(self, X, U):
        """``(k, D, H)`` for items ``(x_i, u_i)``: ``k[i, j] = k(x_i, x_j)``, ``D[i, j] = u_i·∂_x k(x_i, x_j)``,
        ``H[i, j] = u_i^T ∂_x∂_z^T k(x_i, x_j) u_j``.

        With ``S = diag(1/sigma²)`` and ``d = x - z``:
        ``u^T ∂_x∂_z^T k v = k [u^T S v - (u^T S d)(v^T S d)]``.
        """
        inv_sigma2 = self.inverse_sigma2(X.shape[1])
        Xs = X * inv_sigma2
        d2 = (Xs * X).sum(1)[:, None] + (Xs * X).sum(1)[None, :] - 2.0 * Xs @ X.T
        k = np.exp(-0.5 * np.maximum(d2, 0.0))
        Us = U * inv_sigma2
        B = Us @ X.T                      # B[i, j] = u_i^T S x_j
        b = np.diag(B).copy()
        uSd = b[:, None] - B              # u_i^T S (x_i - x_j)
        H = k * (Us @ U.T + uSd * uSd.T)  # v^T S d_ij = -(u_j^T S (x_j - x_i))
        return k, -k * uSd, H


class NormalizedDotProductCovariance:
    """``k(x, z) = (x·z / (|x| |z|))**zeta`` (GAP ``dot_product`` with ``zeta``, used for SOAP).

    Parameters
    ----------
    zeta : float, default=4
        Exponent, > 0 (an integer in practice; GAP's SOAP default is 4), as
        ``zeta`` of :class:`~kernelpot.kernels.vector.NormalizedDotProduct`.
    """

    def __init__(self, zeta=4):
        self.zeta = zeta

    def __repr__(self):
        return f"NormalizedDotProductCovariance(zeta={self.zeta!r})"

    def get_params(self, deep=True):
        return {"zeta": self.zeta}

    def checked_zeta(self):
        """``zeta`` as a float, checked (a scalar > 0)."""
        zeta = _check_positive("zeta", self.zeta)
        if zeta.ndim != 0:
            raise ValueError(f"`zeta` must be a scalar > 0; got {self.zeta!r}")
        return float(zeta)

    @staticmethod
    def _unit(X):
        norm = np.linalg.norm(X, axis=1)
        if np.any(norm == 0):
            raise ValueError(
                "NormalizedDotProductCovariance needs non-zero feature vectors; rows "
                f"{np.nonzero(norm == 0)[0][:10].tolist()} are all zero (isolated atoms?)"
            )
        return X / norm[:, None], norm

    def _cos(self, X, Z):
        Xh, nx = self._unit(X)
        Zh, _ = self._unit(Z)
        return np.clip(Xh @ Zh.T, -1.0, 1.0), Xh, Zh, nx

    def __call__(self, X, Z):
        c = self._cos(X, Z)[0]
        return c ** self.checked_zeta()

    def diag(self, X):
        self._unit(X)
        return np.ones(X.shape[0])

    def gradient_dot(self, X, Z, coef, K=None):
        zeta = self.checked_zeta()
        c, Xh, Zh, nx = self._cos(X, Z)
        A = coef * zeta * c ** (zeta - 1.0)
        # d c_im / d x_i = (zh_m - c_im xh_i) / |x_i|
        return (A @ Zh - (A * c).sum(1)[:, None] * Xh) / nx[:, None]

    def point_gradient_factors(self, X, Z):
        """See :meth:`GaussianCovariance.point_gradient_factors`: ``∂c^ζ/∂x_i = ζ c^(ζ-1) (ẑ_m - c x̂_i) / |x_i|``."""
        zeta = self.checked_zeta()
        c, Xh, Zh, nx = self._cos(X, Z)
        A = (zeta * c ** (zeta - 1.0) / nx[:, None]).T
        return Zh, A, Xh, -A * c.T

    def pair_context(self, X, Z, K=None):
        return (self.checked_zeta(), *self._cos(X, Z))

    def contraction(self, Z, weights):
        """``X -> (Σ_m weights[m] k(x_i, z_m), its gradient in x_i)``, shapes (n,) and (n, d).

        With ``c_im = x̂_i·ẑ_m``: values ``Σ_m w_m c_im^ζ`` and gradients
        ``(Σ_m w_m ζ c_im^(ζ-1) (ẑ_m - c_im x̂_i)) / |x_i|``. The sparse
        points are normalised once here. For ζ = 1 they collapse to one
        vector ``u = Σ_m w_m ẑ_m`` (values ``x̂·u``); for ζ = 2, when the
        feature dimension d is below 2 m, to one matrix
        ``A = Σ_m w_m ẑ_m ẑ_mᵀ`` (values ``x̂ᵀ A x̂``, d² per row instead of
        2 m d). Otherwise each block costs two (n, d) × (d, m) products.
        """
        zeta = self.checked_zeta()
        Zh = np.ascontiguousarray(self._unit(np.asarray(Z, dtype=np.float64))[0])
        weights = np.asarray(weights, dtype=np.float64)
        if zeta == 1.0:
            return _DotProductLinear(Zh.T @ weights)
        if zeta == 2.0 and Zh.shape[1] < 2 * Zh.shape[0]:
            return _DotProductQuadratic((Zh.T * weights) @ Zh)
        return _DotProductSum(zeta, Zh, weights)

    def pair_factors(self, X, Z, Gv, rows, context):
        """``(GZ, u)`` of :meth:`pair_gradients` = ``W[rows] (GZ - C[rows] u)``, ``(W, C)`` from :meth:`pair_weights`.

        ``GZ[p, a, m] = Gv[p, a]·ẑ_m``, ``u[p, a] = Gv[p, a]·x̂_rows[p]``.
        """
        Xh, Zh = context[2], context[3]
        return _flat_dot(Gv, Zh), np.einsum("pak,pk->pa", Gv, Xh[rows])

    def pair_weights(self, context):
        """``(W, C)``, each (n_rows, m): ``W = ζ c^(ζ-1) / |x|``, ``C = c`` (the cosines)."""
        zeta, c, nx = context[0], context[1], context[4]
        return zeta * c ** (zeta - 1.0) / nx[:, None], c

    def pair_gradients(self, X, Z, Gv, rows, K=None, context=None):
        context = self.pair_context(X, Z) if context is None else context
        return _combine(self, X, Z, Gv, rows, context)

    def quadratic_form(self, X, weights):
        """``Σ_ij w_i w_j k(x_i, x_j)`` (the prior variance of a weighted sum of rows)."""
        return float(weights @ self(X, X) @ weights)

    def grouped_gradient_prior(self, X, U, item_rows, order, offsets, weights=None, weight_gradients=None):
        """``Σ_ij u_i^T ∂_x∂_z^T k(x_i, x_j) u_j`` per group and component, (n_groups, n_components), or None.

        Groups ``g`` hold items ``order[offsets[g]:offsets[g + 1]]`` (row ``item_rows`` of ``X``, vectors
        ``U[item]`` of shape (n_components, d)); the sum of :meth:`second_derivative_pieces`' ``H`` in one
        compiled pass. None (the caller's general path applies) for row weights and for 1 < ζ < 2
        (where ``H`` can be infinite).
        """
        zeta = self.checked_zeta()
        if weights is not None or 1.0 < zeta < 2.0:
            return None
        out = np.zeros((len(offsets) - 1, U.shape[1]))
        dot_product_gradient_prior(np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(U, dtype=np.float64),
                                   np.asarray(item_rows, dtype=np.int64), np.asarray(order, dtype=np.int64),
                                   np.asarray(offsets, dtype=np.int64), zeta, out)
        return out

    def second_derivative_pieces(self, X, U):
        """``(k, D, H)`` as :meth:`GaussianCovariance.second_derivative_pieces`, for ``k = c^ζ``, ``c = x̂·ẑ``.

        ``u^T ∂_x∂_z^T k v = ζ(ζ-1) c^(ζ-2) (u·∂_x c)(v·∂_z c) + ζ c^(ζ-1) (P_x u)·(P_z v) / (|x||z|)``,
        ``P_x = 1 - x̂x̂^T``.
        """
        zeta = self.checked_zeta()
        norm = np.linalg.norm(X, axis=1)
        Xh = X / norm[:, None]
        c = np.clip(Xh @ Xh.T, -1.0, 1.0)
        A = U @ Xh.T                      # A[i, j] = u_i·x̂_j
        a = np.diag(A).copy()             # u_i·x̂_i
        dc = (A - c * a[:, None]) / norm[:, None]    # u_i·∂_x c(x_i, x_j)
        k = c**zeta
        g1 = zeta * c ** (zeta - 1.0)
        if zeta == 1.0:
            g2 = np.zeros_like(c)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                g2 = np.where(c != 0.0, zeta * (zeta - 1.0) * c ** (zeta - 2.0), 0.0 if zeta > 2.0 else np.inf)
            if zeta < 2.0 and np.isinf(g2).any():
                raise ValueError(f"the force variance of NormalizedDotProductCovariance(zeta={zeta}) is infinite "
                                 "for orthogonal environments; use zeta >= 2")
        # (P_x u_i)·(P_z u_j) with x = x_i, z = x_j
        projected = (U @ U.T - a[:, None] * A.T - A * a[None, :] + np.outer(a, a) * c) / np.outer(norm, norm)
        H = g2 * dc * dc.T + g1 * projected
        return k, g1 * dc, H


class LinearCovariance:
    """``k(x, z) = x·z`` (GAP ``dot_product`` with ζ = 1 on unnormalised features).

    The function of :class:`~kernelpot.kernels.vector.Linear`, no hyperparameters.
    A term with it is a linear model of the summed features: predictions scale with
    the features and extrapolate like them. That is what long-range features need
    (LODE's multi-scale invariants are charges times potentials: a linear model
    follows their 1/r decay beyond the training distances, a normalised or Gaussian
    kernel would not).
    """

    def __init__(self):
        pass

    def __repr__(self):
        return "LinearCovariance()"

    def get_params(self, deep=True):
        return {}

    def __call__(self, X, Z):
        return np.asarray(X) @ np.asarray(Z).T

    def diag(self, X):
        return np.einsum("ij,ij->i", X, X)

    def gradient_dot(self, X, Z, coef, K=None):
        return coef @ Z

    def point_gradient_factors(self, X, Z):
        """See :meth:`GaussianCovariance.point_gradient_factors`: ``∂(x_i·z_m)/∂x_i = z_m``."""
        Z = np.asarray(Z, dtype=np.float64)
        ones = np.ones((len(Z), len(X)))
        return Z, ones, np.zeros(np.shape(X)), 0.0 * ones

    def pair_context(self, X, Z, K=None):
        return (len(X), len(Z))

    def pair_factors(self, X, Z, Gv, rows, context):
        """``(GZ, u)`` of :meth:`pair_gradients` = ``W[rows] (GZ - C[rows] u)``: ``GZ = Gv Zᵀ``, ``u = 0``."""
        return _flat_dot(Gv, Z), np.zeros(Gv.shape[:2])

    def pair_weights(self, context):
        """``(W, C)`` = (1, 0), each (n_rows, m): ``dk/dx = z`` does not depend on ``x``."""
        return np.ones(context), np.zeros(context)

    def pair_gradients(self, X, Z, Gv, rows, K=None, context=None):
        return _flat_dot(Gv, Z)

    def quadratic_form(self, X, weights):
        """``Σ_ij w_i w_j x_i·x_j``: ``w (X Xᵀ) w`` up to 2048 rows (the last bits of the explicit product, as
        :meth:`GaussianCovariance.quadratic_form`), ``|Σ_i w_i x_i|²`` beyond."""
        X = np.asarray(X, dtype=np.float64)
        weights = np.asarray(weights, dtype=np.float64)
        if len(X) <= 2048:
            return float(weights @ (X @ X.T) @ weights)
        v = weights @ X
        return float(v @ v)

    def grouped_gradient_prior(self, X, U, item_rows, order, offsets, weights=None, weight_gradients=None):
        """``Σ_ij u_i·u_j = |Σ_i u_i|²`` per group and component (see
        :meth:`NormalizedDotProductCovariance.grouped_gradient_prior`); None with row weights."""
        if weights is not None:
            return None
        U = np.asarray(U, dtype=np.float64)
        out = np.zeros((len(offsets) - 1, U.shape[1]))
        for g in range(len(out)):
            summed = U[order[offsets[g]:offsets[g + 1]]].sum(0)       # (n_components, d)
            out[g] = np.einsum("cd,cd->c", summed, summed)
        return out

    def contraction(self, Z, weights):
        """``X -> (X·u, u)`` with ``u = Zᵀ w``: the whole sum over sparse points is one vector."""
        return _LinearSum(np.asarray(Z).T @ np.asarray(weights))

    def second_derivative_pieces(self, X, U):
        """``(k, D, H)`` as :meth:`GaussianCovariance.second_derivative_pieces`: ``X Xᵀ``, ``U Xᵀ``, ``U Uᵀ``."""
        return X @ X.T, U @ X.T, U @ U.T


class _GaussianSum:
    """``Σ_m w_m exp(-|x - z_m|²_S / 2)`` and its gradient ``-Σ_m w_m k_m S (x - z_m)``."""

    gives_covariance = True  # __call__(X, covariance=True) also returns the kernel values

    def __init__(self, covariance, Z, weights, inverse_sigma2):
        self.covariance, self.Z, self.weights, self.inverse_sigma2 = covariance, Z, weights, inverse_sigma2

    def __call__(self, X, covariance=False):
        """``(values, gradients)``, and with ``covariance`` also the (n, m) kernel values ``k(x_i, z_m)``."""
        K = self.covariance(X, self.Z)
        A = K * self.weights
        values = A.sum(1)
        gradients = -(values[:, None] * X - A @ self.Z) * self.inverse_sigma2
        return (values, gradients, K) if covariance else (values, gradients)

    def split(self, bounds):
        """The contractions of consecutive slices ``bounds[k]:bounds[k + 1]`` of the sparse points (they sum to
        this one: values and gradients are linear in the sum over sparse points)."""
        return [_GaussianSum(self.covariance, self.Z[a:b], self.weights[a:b], self.inverse_sigma2)
                for a, b in zip(bounds[:-1], bounds[1:])]


class _LinearSum:
    """``Σ_m w_m x·z_m = x·u`` and its gradient ``u``."""

    def __init__(self, u):
        self.u = u

    def __call__(self, X):
        return np.asarray(X) @ self.u, np.broadcast_to(self.u, (len(X), len(self.u)))


class _DotProductLinear:
    """ζ = 1: ``Σ_m w_m x̂·ẑ_m = x̂·u``."""

    def __init__(self, u):
        self.u = u

    def __call__(self, X):
        Xh, norm = NormalizedDotProductCovariance._unit(X)
        values = Xh @ self.u
        return values, (self.u[None, :] - values[:, None] * Xh) / norm[:, None]


class _DotProductQuadratic:
    """ζ = 2 with d < 2 m: ``Σ_m w_m (x̂·ẑ_m)² = x̂ᵀ A x̂``."""

    def __init__(self, A):
        self.A = A

    def __call__(self, X):
        Xh, norm = NormalizedDotProductCovariance._unit(X)
        V = Xh @ self.A
        values = np.einsum("ij,ij->i", V, Xh)
        return values, 2.0 * (V - values[:, None] * Xh) / norm[:, None]


class _DotProductSum:
    """Any ζ: the (n, m) cosines, then two matrix products."""

    gives_covariance = True  # __call__ / blocked(..., covariance=True) also return the kernel values

    def __init__(self, zeta, Zh, weights):
        self.zeta, self.Zh, self.weights = zeta, Zh, weights

    def __call__(self, X, covariance=False):
        """``(values, gradients)``, and with ``covariance`` also the kernel values ``c^ζ`` (n, m) from the same
        cosines (what a local-energy variance needs, :mod:`kernelpot.models.gap.local_variance`)."""
        Xh, norm = NormalizedDotProductCovariance._unit(X)
        c = Xh @ self.Zh.T
        values = np.empty(c.shape[0])
        A = np.empty_like(c)
        dot_power_weights(c, self.weights, self.zeta, values, A)   # A = ζ w c^(ζ-1), values = Σ w c^ζ
        # Σ_m A_im c_im = ζ values_i
        gradients = (A @ self.Zh - (self.zeta * values)[:, None] * Xh) / norm[:, None]
        return (values, gradients, self._powers(c)) if covariance else (values, gradients)

    def _powers(self, c):
        """``c^ζ`` of the cosines clipped by :func:`dot_power_weights` (the raw kernel values)."""
        out = np.empty_like(c)
        dot_powers(c, self.zeta, out)
        return out

    def split(self, bounds):
        """The contractions of consecutive slices ``bounds[k]:bounds[k + 1]`` of the sparse points (they sum to
        this one)."""
        return [_DotProductSum(self.zeta, self.Zh[a:b], self.weights[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    def blocked(self, X, starts, active, covariance=False):
        """The same for rows whose feature blocks are partly all zero, skipping those blocks' products.

        ``starts`` (n_blocks,): first column of each block; ``active`` (n, n_blocks) bool: block non-zero in
        the row. Each block's cosine and gradient products run over the rows where it is active (one pass
        over the block's columns of the sparse points, so the work is the active fraction of the features).
        The values equal ``self(X)`` to round-off; the gradients too on the active blocks and are zero on the
        others (where the exact gradient is ``Σ_m A_im ẑ_m / |x_i|``: callers use this only where those
        features have zero position derivatives, e.g. :meth:`SOAP.feature_blocks
        <kernelpot.descriptors.soap.SOAP.feature_blocks>`).
        """
        Xh, norm = NormalizedDotProductCovariance._unit(X)
        ends = np.append(starts[1:], X.shape[1])
        blocks = []                               # (columns, rows or None for all), neighbours with equal rows merged
        for b in range(len(starts)):
            rows = np.flatnonzero(active[:, b])
            if len(rows) == 0:
                continue
            rows = None if len(rows) == len(X) else rows
            if blocks and blocks[-1][0].stop == starts[b] and (
                    rows is None and blocks[-1][1] is None
                    or rows is not None and blocks[-1][1] is not None and np.array_equal(rows, blocks[-1][1])):
                blocks[-1] = (slice(blocks[-1][0].start, ends[b]), rows)
            else:
                blocks.append((slice(starts[b], ends[b]), rows))
        c = np.zeros((len(X), self.Zh.shape[0]))
        for columns, rows in blocks:
            Zb = self.Zh[:, columns]
            if rows is None:
                c += Xh[:, columns] @ Zb.T
            else:
                c[rows] += Xh[rows, columns] @ Zb.T
        values = np.empty(c.shape[0])
        A = np.empty_like(c)
        dot_power_weights(c, self.weights, self.zeta, values, A)
        gradients = -(self.zeta * values)[:, None] * Xh
        for columns, rows in blocks:
            Zb = self.Zh[:, columns]
            if rows is None:
                gradients[:, columns] += A @ Zb
            else:
                gradients[rows, columns] += A[rows] @ Zb
        gradients /= norm[:, None]
        return (values, gradients, self._powers(c)) if covariance else (values, gradients)
