"""Jitted assembly of structure kernels from atom-pair kernels (private).

Conventions shared by every function here (see ``_vector_kernels`` for
``kind`` and ``p0, p1, p2``):

* structure ``s`` owns rows ``offsets[s]:offsets[s + 1]`` of a feature matrix;
* ``screen`` true means only atom pairs with equal atomic numbers contribute;
* outputs are allocated by the caller; the outer ``prange`` runs over
  structures (or row structures of a block), so every thread writes rows
  that no other thread touches.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernelpot.kernels._vector_kernels import (
    GAUSSIAN,
    LAPLACIAN,
    LINEAR,
    POLYNOMIAL,
    direct_pair,
    pair_from_gram,
)


@njit(cache=True, nogil=True, parallel=True)
def reduce_gram_block(G, nx, ny, row_start, col_start, col_struct, kind, p0, p1, p2, upper, K, dK):
    """Add ``sum_{i in a, j in b} k(x_i, y_j)`` for one block of atoms to ``K[a, b]``.

    ``G`` (n_rows, n_cols) is the Gram block of atoms whose structures are
    given by ``row_start`` (n_row_structures + 1, local row offsets) and
    ``col_struct`` (n_cols,) / ``col_start`` (n_col_structures + 1). With
    ``upper``, a diagonal block of a symmetric kernel, only ``b >= a`` is summed.
    ``dK`` receives dK/dlogσ when it has the shape of ``K``.
    """
    want_grad = dK.shape[0] == K.shape[0]
    for a in prange(row_start.shape[0] - 1):
        first = col_start[a] if upper else 0
        for i in range(row_start[a], row_start[a + 1]):
            for j in range(first, G.shape[1]):
                k, dk = pair_from_gram(kind, G[i, j], nx[i], ny[j], p0, p1, p2)
                K[a, col_struct[j]] += k
                if want_grad:
                    dK[a, col_struct[j]] += dk


@njit(cache=True, nogil=True)
def _structure_pair(XA, ZA, nA, i0, i1, XB, ZB, nB, j0, j1, kind, p0, p1, p2, screen):
    k_sum = 0.0
    dk_sum = 0.0
    for i in range(i0, i1):
        for j in range(j0, j1):
            if screen and ZA[i] != ZB[j]:
                continue
            k, dk = direct_pair(kind, XA[i], XB[j], nA[i], nB[j], p0, p1, p2)
            k_sum += k
            dk_sum += dk
    return k_sum, dk_sum


@njit(cache=True, nogil=True, parallel=True)
def direct_structure_kernel(XA, offA, ZA, nA, XB, offB, ZB, nB, kind, p0, p1, p2, screen, symmetric, K, dK):
    """Structure kernel by direct atom-pair loops (any kind; used for LAPLACIAN).

    With ``symmetric`` (B is A), only ``b >= a`` is computed and mirrored.
    """
    want_grad = dK.shape[0] == K.shape[0]
    for a in prange(offA.shape[0] - 1):
        first = a if symmetric else 0
        for b in range(first, offB.shape[0] - 1):
            k, dk = _structure_pair(
                XA, ZA, nA, offA[a], offA[a + 1], XB, ZB, nB, offB[b], offB[b + 1], kind, p0, p1, p2, screen
            )
            K[a, b] = k
            if symmetric:
                K[b, a] = k
            if want_grad:
                dK[a, b] = dk
                if symmetric:
                    dK[b, a] = dk


@njit(cache=True, nogil=True, parallel=True)
def structure_diagonal(X, off, Z, n2, kind, p0, p1, p2, screen, out):
    """``out[s] = K(s, s)`` for every structure."""
    for s in prange(off.shape[0] - 1):
        i0, i1 = off[s], off[s + 1]
        out[s] = _structure_pair(X, Z, n2, i0, i1, X, Z, n2, i0, i1, kind, p0, p1, p2, screen)[0]


# -- gradient kernels -------------------------------------------------------


# Reassociation only reorders the terms of a finite dot product (SIMD partial
# sums), a round-off change of order n_features * eps; no other fast-math flag.
@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _dot(u, v):
    s = 0.0
    for f in range(u.shape[0]):
        s += u[f] * v[f]
    return s


@njit(cache=True, nogil=True)
def _grad_y(kind, x, y, nx, ny, p0, p1, p2, out):
    """``out = ∇_y k(x, y)`` (n_features,)."""
    nf = x.shape[0]
    if kind == GAUSSIAN or kind == LAPLACIAN:
        k = direct_pair(kind, x, y, nx, ny, p0, p1, p2)[0]
        for f in range(nf):
            d = x[f] - y[f]
            if kind == GAUSSIAN:
                out[f] = -2.0 * p0 * k * d
            else:
                out[f] = -p0 * k * np.sign(d)
        return
    g = 0.0
    for f in range(nf):
        g += x[f] * y[f]
    if kind == LINEAR:
        for f in range(nf):
            out[f] = x[f]
    elif kind == POLYNOMIAL:
        c = p2 * p0 * (p0 * g + p1) ** (p2 - 1.0)
        for f in range(nf):
            out[f] = c * x[f]
    else:  # DOT_PRODUCT: ∇_y c = (x̂ - c ŷ)/|y| with c = x̂·ŷ
        norm = np.sqrt(nx * ny)
        if norm == 0.0:
            out[:] = 0.0
            return
        cos = g / norm
        pref = p0 * cos ** (p0 - 1.0)
        for f in range(nf):
            out[f] = pref * (x[f] / norm - cos * y[f] / ny)


@njit(cache=True, nogil=True, parallel=True)
def energy_force_kernel(
    XA, offA, ZA, nA, XB, ZB, nB, values, nbr, pair_start, kind, p0, p1, p2, screen, K
):
    """``K[a, 3 m + β] = -Σ_{i∈a} Σ_j ∇_y k(x_i, x_j) · dx_j/dr_{m,β}`` = cov(E_a, F_{m,β}).

    ``values`` (n_pairs, 3, n_features) are the gradients of the B features,
    sorted by centre: pairs of centre ``j`` are ``pair_start[j]:pair_start[j+1]``
    and move atom ``nbr[p]`` (global row of B). The sum over ``i`` is taken
    before contracting with the gradients, so that contraction runs once per (a, j).
    """
    n_features = XA.shape[1]
    for a in prange(offA.shape[0] - 1):
        g = np.empty(n_features)
        g_sum = np.empty(n_features)
        for j in range(XB.shape[0]):
            if pair_start[j] == pair_start[j + 1]:
                continue
            g_sum[:] = 0.0
            found = False
            for i in range(offA[a], offA[a + 1]):
                if screen and ZA[i] != ZB[j]:
                    continue
                _grad_y(kind, XA[i], XB[j], nA[i], nB[j], p0, p1, p2, g)
                g_sum += g
                found = True
            if not found:
                continue
            for p in range(pair_start[j], pair_start[j + 1]):
                for beta in range(3):
                    K[a, 3 * nbr[p] + beta] -= _dot(values[p, beta], g_sum)
    return K


@njit(cache=True, nogil=True)
def _hessian_terms(kind, x, y, nx, ny, p0, p1, p2, P, Q):
    """Coefficients of ``u^T (∂²k/∂x∂y) v`` for one atom pair.

    ``u^T H v = A u·v + Σ_t c_t (u·P[t]) (v·Q[t]) + c01 (u·P[0]) (v·Q[1])``;
    fills ``P`` and ``Q`` (3, n_features) and returns ``(A, c0, c1, c2, c01)``.
    """
    nf = x.shape[0]
    if kind == GAUSSIAN or kind == LAPLACIAN:
        k = direct_pair(kind, x, y, nx, ny, p0, p1, p2)[0]
        for f in range(nf):
            d = x[f] - y[f]
            P[0, f] = d if kind == GAUSSIAN else np.sign(d)
            Q[0, f] = P[0, f]
        if kind == GAUSSIAN:
            # H = k (I/σ² - d d^T/σ⁴), d = x - y, 1/σ² = -2 p0
            inv_s2 = -2.0 * p0
            return k * inv_s2, -k * inv_s2 * inv_s2, 0.0, 0.0, 0.0
        # H = -k s s^T / σ², s = sign(x - y) (away from the kinks)
        return 0.0, -k * p0 * p0, 0.0, 0.0, 0.0
    g = 0.0
    for f in range(nf):
        g += x[f] * y[f]
    if kind == LINEAR:
        return 1.0, 0.0, 0.0, 0.0, 0.0
    if kind == POLYNOMIAL:
        # H = dγ [t^(d-1) I + (d-1) γ t^(d-2) y x^T], t = γ x·y + c₀
        t = p0 * g + p1
        for f in range(nf):
            P[0, f] = y[f]
            Q[0, f] = x[f]
        c0 = p2 * (p2 - 1.0) * p0 * p0 * t ** (p2 - 2.0) if p2 >= 2.0 else 0.0
        return p2 * p0 * t ** (p2 - 1.0), c0, 0.0, 0.0, 0.0
    # DOT_PRODUCT, c = x̂·ŷ, k = c^ζ: H = ζ c^(ζ-1) ∂²c/∂x∂y + ζ(ζ-1) c^(ζ-2) ∇_x c ∇_y c^T with
    # u^T ∂²c v = [u·v - (u·x̂)(v·x̂) - (u·ŷ)(v·ŷ) + c (u·x̂)(v·ŷ)] / (|x||y|),
    # ∇_x c = (ŷ - c x̂)/|x|, ∇_y c = (x̂ - c ŷ)/|y|.
    rx = np.sqrt(nx)
    ry = np.sqrt(ny)
    if rx == 0.0 or ry == 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    c = g / (rx * ry)
    d1 = p0 * c ** (p0 - 1.0) / (rx * ry)
    d2 = p0 * (p0 - 1.0) * c ** (p0 - 2.0) / (rx * ry) if p0 >= 2.0 else 0.0
    for f in range(nf):
        xh = x[f] / rx
        yh = y[f] / ry
        P[0, f] = xh
        Q[0, f] = xh
        P[1, f] = yh
        Q[1, f] = yh
        P[2, f] = yh - c * xh
        Q[2, f] = xh - c * yh
    return d1, -d1, -d1, d2, d1 * c


@njit(cache=True, nogil=True)
def _rows_dot(U, P, out):
    """``out[r, t] = U[r] · P[t]`` for the rows of U and the 3 rows of P."""
    for r in range(U.shape[0]):
        for t in range(3):
            out[r, t] = _dot(U[r], P[t])


@njit(cache=True, nogil=True, parallel=True)
def force_force_kernel(
    XA, offA, ZA, nA, valuesA, nbrA, startA, XB, ZB, nB, valuesB, nbrB, startB, kind, p0, p1, p2, screen, K
):
    """``K[3 l + α, 3 m + β] = Σ_{i,j} (dx_i/dr_{l,α})^T ∂²k/∂x∂y (dx_j/dr_{m,β})`` = cov(F, F).

    Pair arrays of A and B are sorted by centre (``startA``, ``startB``);
    ``offA`` groups the A centres by structure for the parallel loop. For
    each centre pair, the gradient rows ``U_i``, ``V_j`` (3 n_pairs, n_features)
    are contracted as ``A U_i V_jᵀ`` plus the low-rank Hessian terms.
    """
    nf = XA.shape[1]
    max_pairs_a = np.max(startA[1:] - startA[:-1])
    max_pairs_b = np.max(startB[1:] - startB[:-1])
    for a in prange(offA.shape[0] - 1):
        P = np.zeros((3, nf))
        Q = np.zeros((3, nf))
        PU = np.empty((3 * max_pairs_a, 3))
        QV = np.empty((3 * max_pairs_b, 3))
        for i in range(offA[a], offA[a + 1]):
            if startA[i] == startA[i + 1]:
                continue
            U = valuesA[startA[i] : startA[i + 1]].reshape((3 * (startA[i + 1] - startA[i]), nf))
            for j in range(XB.shape[0]):
                if (screen and ZA[i] != ZB[j]) or startB[j] == startB[j + 1]:
                    continue
                A, c0, c1, c2, c01 = _hessian_terms(kind, XA[i], XB[j], nA[i], nB[j], p0, p1, p2, P, Q)
                V = valuesB[startB[j] : startB[j + 1]].reshape((3 * (startB[j + 1] - startB[j]), nf))
                # Explicit loops: BLAS called inside prange threads oversubscribes the cores.
                _rows_dot(U, P, PU)
                _rows_dot(V, Q, QV)
                for r in range(U.shape[0]):
                    row = 3 * nbrA[startA[i] + r // 3] + r % 3
                    for c in range(V.shape[0]):
                        uv = _dot(U[r], V[c]) if A != 0.0 else 0.0
                        val = A * uv + c0 * PU[r, 0] * QV[c, 0] + c1 * PU[r, 1] * QV[c, 1]
                        val += c2 * PU[r, 2] * QV[c, 2] + c01 * PU[r, 0] * QV[c, 1]
                        K[row, 3 * nbrB[startB[j] + c // 3] + c % 3] += val
    return K
