"""Numba kernels of the GAP covariances (private): a dot-product contraction's elementwise pass, and the
prior covariance of gradient functionals grouped by atom."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["dot_power_weights", "dot_powers", "dot_product_gradient_prior", "gaussian_gradient_prior",
           "gaussian_grouped_quadratic_forms", "gaussian_quadratic_form"]


@njit(cache=True, nogil=True)
def dot_power_weights(c, weights, zeta, values, out):
    """From cosines ``c`` (n, m), clipped to [-1, 1] in place: ``values[i] = Σ_m w_m c_im^ζ`` and
    ``out[i, m] = ζ w_m c_im^(ζ-1)``, in one pass (integer ζ <= 8 by repeated products, else ``pow``)."""
    n, m = c.shape
    integer = zeta == math.floor(zeta) and 1.0 <= zeta <= 8.0
    k = int(zeta) - 1
    for i in range(n):
        row = c[i]
        total = 0.0
        for j in range(m):
            x = min(max(row[j], -1.0), 1.0)
            row[j] = x
            if integer:
                power = 1.0
                for _ in range(k):
                    power *= x
            else:
                power = x ** (zeta - 1.0)
            w = weights[j]
            total += w * power * x
            out[i, j] = zeta * w * power
        values[i] = total


@njit(cache=True, nogil=True)
def dot_powers(c, zeta, out):
    """``out[i, m] = c_im^ζ`` of cosines already clipped to [-1, 1] (by :func:`dot_power_weights`); integer
    ζ <= 8 by repeated products (the same numbers as its values), else ``pow``."""
    n, m = c.shape
    integer = zeta == math.floor(zeta) and 1.0 <= zeta <= 8.0
    k = int(zeta)
    for i in range(n):
        for j in range(m):
            x = c[i, j]
            if integer:
                power = 1.0
                for _ in range(k):
                    power *= x
            else:
                power = x ** zeta
            out[i, j] = power


@njit(cache=True, nogil=True)
def dot_product_gradient_prior(X, U, item_rows, order, offsets, zeta, out):
    """``out[g, c] = Σ_ij u_ic^T ∂_x∂_z^T k(x_i, x_j) u_jc`` over the items of group ``g``, for ``k = (x̂·ẑ)^ζ``.

    The prior covariance of gradient functionals (forces: a group is one atom, its items the descriptor
    rows that move with it) without the term's δ² and with unit row weights; the formula is
    :meth:`~kernelpot.kernels.NormalizedDotProductCovariance.second_derivative_pieces`, summed group by
    group with BLAS products of the group's rows (ζ = 1 or ζ >= 2).
    """
    n_rows, d = X.shape
    n_comp = U.shape[1]
    norms = np.empty(n_rows)
    for r in range(n_rows):
        total = 0.0
        for k in range(d):
            total += X[r, k] * X[r, k]
        norms[r] = math.sqrt(total)
    largest = 0
    for g in range(offsets.shape[0] - 1):
        largest = max(largest, offsets[g + 1] - offsets[g])
    xh_all = np.empty((largest, d))
    u_all = np.empty((largest, d))
    norm = np.empty(largest)
    for g in range(offsets.shape[0] - 1):
        lo = offsets[g]
        n = offsets[g + 1] - lo
        if n == 0:
            continue
        xh = xh_all[:n]
        ug = u_all[:n]
        for i in range(n):
            r = item_rows[order[lo + i]]
            norm[i] = norms[r]
            for k in range(d):
                xh[i, k] = X[r, k] / norms[r]
        cosine = np.dot(xh, xh.T)
        for c in range(n_comp):
            for i in range(n):
                item = order[lo + i]
                for k in range(d):
                    ug[i, k] = U[item, c, k]
            A = np.dot(ug, xh.T)     # A[i, j] = u_i·x̂_j
            uu = np.dot(ug, ug.T)
            total = 0.0
            for i in range(n):
                ai = A[i, i]
                for j in range(n):
                    aj = A[j, j]
                    cij = min(max(cosine[i, j], -1.0), 1.0)
                    g1 = zeta * cij ** (zeta - 1.0)
                    g2 = 0.0 if zeta == 1.0 else zeta * (zeta - 1.0) * cij ** (zeta - 2.0)
                    dc_ij = (A[i, j] - cij * ai) / norm[i]
                    dc_ji = (A[j, i] - cij * aj) / norm[j]
                    projected = (uu[i, j] - ai * A[j, i] - A[i, j] * aj + ai * aj * cij) / (norm[i] * norm[j])
                    total += g2 * dc_ij * dc_ji + g1 * projected
            out[g, c] = total


@njit(cache=True, nogil=True)
def gaussian_gradient_prior(X, U, item_rows, order, offsets, inverse_sigma2, w, dw, out):
    """As :func:`dot_product_gradient_prior` for ``k = exp(-|x - z|²_S / 2)`` with row weights ``w`` and their
    feature gradients ``dw`` (the cosine cutoff of ``distance_2b``): ``Σ_ij ∂_u∂_v [w(x) w(z) k(x, z)]``."""
    d = X.shape[1]
    n_comp = U.shape[1]
    for g in range(offsets.shape[0] - 1):
        lo = offsets[g]
        n = offsets[g + 1] - lo
        for c in range(n_comp):
            total = 0.0
            for i in range(n):
                item_i = order[lo + i]
                ri = item_rows[item_i]
                du_i = 0.0
                for k in range(d):
                    du_i += U[item_i, c, k] * dw[ri, k]
                for j in range(n):
                    item_j = order[lo + j]
                    rj = item_rows[item_j]
                    du_j = 0.0
                    square = 0.0
                    usu = 0.0
                    usd_ij = 0.0
                    usd_ji = 0.0
                    for k in range(d):
                        diff = X[ri, k] - X[rj, k]
                        s = inverse_sigma2[k]
                        square += s * diff * diff
                        usu += s * U[item_i, c, k] * U[item_j, c, k]
                        usd_ij += s * U[item_i, c, k] * diff
                        usd_ji -= s * U[item_j, c, k] * diff
                        du_j += U[item_j, c, k] * dw[rj, k]
                    kij = math.exp(-0.5 * square)
                    h = kij * (usu + usd_ij * usd_ji)
                    # D[i, j] = -k uSd_ij (u_i·∂_x k), D[j, i] = -k uSd_ji
                    total += (w[ri] * w[rj] * h - du_i * w[rj] * kij * usd_ji - w[ri] * kij * usd_ij * du_j
                              + du_i * du_j * kij)
            out[g, c] = total


@njit(cache=True, nogil=True)
def gaussian_quadratic_form(X, inverse_sigma2, w):
    """``Σ_ij w_i w_j exp(-|x_i - x_j|²_S / 2)`` without the (n, n) matrix (pair rows of ``distance_2b``).

    Compensated (Neumaier) sums: the energy variance subtracts nearly equal numbers of this size,
    so its round-off is kept at that of a blocked matrix product.
    """
    n, d = X.shape
    total = 0.0
    total_c = 0.0
    for i in range(n):
        row = 0.0
        row_c = 0.0
        for j in range(i + 1, n):
            square = 0.0
            for k in range(d):
                diff = X[i, k] - X[j, k]
                square += inverse_sigma2[k] * diff * diff
            value = w[j] * math.exp(-0.5 * square)
            t = row + value
            row_c += (row - t) + value if abs(row) >= abs(value) else (value - t) + row
            row = t
        value = w[i] * (2.0 * (row + row_c) + w[i])
        t = total + value
        total_c += (total - t) + value if abs(total) >= abs(value) else (value - t) + total
        total = t
    return total + total_c


@njit(cache=True, nogil=True)
def gaussian_grouped_quadratic_forms(X, inverse_sigma2, w, indptr, members, out):
    """``out[g] = Σ_{a, b ∈ group g} w_a w_b exp(-|x_a - x_b|²_S / 2)``, group ``g`` being the rows
    ``members[indptr[g]:indptr[g + 1]]`` (a row may appear twice: it then counts twice). Each unordered pair
    of entries once (the kernel is symmetric and 1 on the diagonal)."""
    d = X.shape[1]
    for g in range(len(indptr) - 1):
        total = 0.0
        for p in range(indptr[g], indptr[g + 1]):
            a = members[p]
            row = 0.0
            for q in range(p + 1, indptr[g + 1]):
                b = members[q]
                square = 0.0
                for k in range(d):
                    diff = X[a, k] - X[b, k]
                    square += inverse_sigma2[k] * diff * diff
                row += w[b] * math.exp(-0.5 * square)
            total += w[a] * (2.0 * row + w[a])
        out[g] = total
