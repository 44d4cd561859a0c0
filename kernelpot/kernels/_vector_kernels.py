"""Jitted pair functions and vector-kernel assembly (private).

Every kernel ``k(x, y)`` is identified by an integer ``kind`` and three
float parameters ``p0, p1, p2`` whose meaning depends on the kind (the
public classes in :mod:`kernelpot.kernels.vector` build them):

==========  =====================================  ======================  ==========
kind        k(x, y)                                p0                      p1, p2
==========  =====================================  ======================  ==========
GAUSSIAN    exp(-|x - y|² / 2σ²)                   -1 / (2σ²)              -
LAPLACIAN   exp(-|x - y|₁ / σ)                     -1 / σ                  -
LINEAR      x·y                                    -                       -
POLYNOMIAL  (γ x·y + c₀)^d                         γ                       c₀, d
DOT_PRODUCT (x·y / |x||y|)^ζ                       ζ                       -
==========  =====================================  ======================  ==========

All kinds except LAPLACIAN are functions of ``g = x·y``, ``|x|²`` and
``|y|²`` only, so whole blocks are assembled from one BLAS product
``G = X Y^T`` followed by :func:`pair_from_gram` elementwise.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

GAUSSIAN = 0
LAPLACIAN = 1
LINEAR = 2
POLYNOMIAL = 3
DOT_PRODUCT = 4


@njit(cache=True, nogil=True, inline="always")
def pair_from_gram(kind, g, nx, ny, p0, p1, p2):
    """Kernel value and its derivative with respect to log σ from a Gram entry.

    ``nx = |x|²``, ``ny = |y|²``; the second value is zero for kinds
    without a length scale. LAPLACIAN is not a Gram kind.
    """
    if kind == GAUSSIAN:
        d2 = nx + ny - 2.0 * g
        # Round-off can make |x - y|² slightly negative when x == y.
        if d2 < 0.0:
            d2 = 0.0
        k = np.exp(d2 * p0)
        # dk/dlogσ = k |x-y|²/σ² and 1/σ² = -2 p0
        return k, -2.0 * p0 * d2 * k
    if kind == LINEAR:
        return g, 0.0
    if kind == POLYNOMIAL:
        return (p0 * g + p1) ** p2, 0.0
    # DOT_PRODUCT: a zero vector has no direction; its kernel is 0.
    norm = np.sqrt(nx * ny)
    if norm == 0.0:
        return 0.0, 0.0
    return (g / norm) ** p0, 0.0


@njit(cache=True, nogil=True)
def direct_pair(kind, x, y, nx, ny, p0, p1, p2):
    """Kernel value and d/dlogσ computed from the two vectors (any kind)."""
    if kind == LAPLACIAN:
        d1 = 0.0
        for f in range(x.shape[0]):
            d1 += abs(x[f] - y[f])
        k = np.exp(d1 * p0)
        return k, -p0 * d1 * k
    if kind == GAUSSIAN:
        d2 = 0.0
        for f in range(x.shape[0]):
            t = x[f] - y[f]
            d2 += t * t
        k = np.exp(d2 * p0)
        return k, -2.0 * p0 * d2 * k
    g = 0.0
    for f in range(x.shape[0]):
        g += x[f] * y[f]
    return pair_from_gram(kind, g, nx, ny, p0, p1, p2)


@njit(cache=True, nogil=True, parallel=True)
def gram_to_kernel(G, nx, ny, kind, p0, p1, p2, dK):
    """Overwrite the Gram block ``G`` (n_x, n_y) with kernel values, in place.

    ``dK`` (n_x, n_y) receives dK/dlogσ when it has that shape; pass a
    (0, 0) array to skip it.
    """
    want_grad = dK.shape[0] == G.shape[0]
    for i in prange(G.shape[0]):
        for j in range(G.shape[1]):
            k, dk = pair_from_gram(kind, G[i, j], nx[i], ny[j], p0, p1, p2)
            G[i, j] = k
            if want_grad:
                dK[i, j] = dk


@njit(cache=True, nogil=True, parallel=True)
def direct_kernel(X, Y, nx, ny, kind, p0, p1, p2, K, dK):
    """Pairwise kernel (n_x, n_y) without BLAS, for LAPLACIAN (L1 distance)."""
    want_grad = dK.shape[0] == K.shape[0]
    for i in prange(X.shape[0]):
        for j in range(Y.shape[0]):
            k, dk = direct_pair(kind, X[i], Y[j], nx[i], ny[j], p0, p1, p2)
            K[i, j] = k
            if want_grad:
                dK[i, j] = dk
