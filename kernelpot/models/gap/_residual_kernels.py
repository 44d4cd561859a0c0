"""Numba kernels (private) of the local-energy variances: pair rows' covariances shared between their atoms;
each row's Nyström projection onto its most similar sparse points."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["nearest_nystrom", "scatter_pair_halves"]


@njit(cache=True, nogil=True)
def scatter_pair_halves(k_star, first, second, position, out):
    """``out[position[a]] += ½ k_star[p]`` for both atoms ``a`` (``first[p]``, ``second[p]``) of every pair row
    ``p`` with ``position[a] >= 0``: each atom's share of the pair energies' covariances."""
    for p in range(k_star.shape[0]):
        for a in (first[p], second[p]):
            row = position[a]
            if row >= 0:
                for m in range(k_star.shape[1]):
                    out[row, m] += 0.5 * k_star[p, m]


@njit(cache=True, nogil=True)
def nearest_nystrom(K, gram, inverse_norm, count):
    """``k_qᵀ K_qq⁻¹ k_q`` (n_rows,) of every row ``k`` of ``K`` (n_rows, J) over its own ``count`` columns
    ``q`` with the largest ``k_m · inverse_norm[m]`` (the most similar points: a cosine when
    ``inverse_norm = diag(gram)^-½``), ``K_qq = gram[q][:, q]`` (``gram`` the points' prior covariance, J × J).

    ``count ≥ J`` gives ``kᵀ gram⁻¹ k``. A point whose Cholesky pivot is ≤ 1e-12 of its diagonal (in the span
    of the points before it, up to round-off) is left out: the projection onto the span is unchanged.
    """
    n, J = K.shape
    q = min(count, J)
    out = np.zeros(n)
    chosen = np.empty(q, dtype=np.int64)
    score = np.empty(q)
    factor = np.zeros((q, q))
    solution = np.zeros(q)
    for i in range(n):
        row = K[i]
        # the q largest scores in one pass: a replacement only when a score beats the smallest kept
        for j in range(q):
            chosen[j] = j
            score[j] = row[j] * inverse_norm[j]
        low = 0
        for j in range(q):
            if score[j] < score[low]:
                low = j
        for m in range(q, J):
            value = row[m] * inverse_norm[m]
            if value > score[low]:
                chosen[low] = m
                score[low] = value
                for j in range(q):
                    if score[j] < score[low]:
                        low = j
        # Cholesky of K_qq and the forward solve against k_q, together
        explained = 0.0
        for a in range(q):
            pa = chosen[a]
            for b in range(a):
                s = gram[pa, chosen[b]]
                for c in range(b):
                    s -= factor[a, c] * factor[b, c]
                factor[a, b] = s / factor[b, b] if factor[b, b] > 0.0 else 0.0
            d = gram[pa, pa]
            for c in range(a):
                d -= factor[a, c] ** 2
            if d <= 1e-12 * gram[pa, pa]:
                factor[a, a] = 0.0
                for c in range(a):
                    factor[a, c] = 0.0
                solution[a] = 0.0
                continue
            factor[a, a] = np.sqrt(d)
            s = row[pa]
            for c in range(a):
                s -= factor[a, c] * solution[c]
            solution[a] = s / factor[a, a]
            explained += solution[a] ** 2
        out[i] = explained
    return out
