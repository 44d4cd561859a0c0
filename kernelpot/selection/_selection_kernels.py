"""Jitted kernels of the greedy selectors (private).

Every kernel takes only arrays and scalars and fills or updates arrays owned by
the calling selector (:mod:`kernelpot.selection.fps`, :mod:`kernelpot.selection.cur`);
validation and allocation happen in those public classes.
"""

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def masked_argmax(scores, taken):
    """Index of the largest score among the items not yet taken.

    Parameters
    ----------
    scores : ndarray of float64, shape (n_items,)
    taken : ndarray of bool, shape (n_items,)

    Returns
    -------
    int
        The first index of the maximum (same tie-breaking as ``np.argmax``),
        or -1 if every item is taken.
    """
    best = -1
    best_score = -np.inf
    for i in range(scores.shape[0]):
        if taken[i]:
            continue
        # strict ">" keeps the first of tied maxima, as np.argmax does; the
        # extra test admits an untaken -inf score when nothing else is left
        if best < 0 or scores[i] > best_score:
            best = i
            best_score = scores[i]
    return best


@njit(cache=True, nogil=True)
def fps_screen(d2, nearest, d2_centres, margin, candidates):
    """Rows whose distance to a newly selected row ``s`` must be evaluated.

    The triangle inequality rules out row ``i`` when its nearest selected row
    ``t`` satisfies d(s, t) ≥ 2 d(i, t): then d(i, s) ≥ d(i, t) (Elkan, ICML
    2003, lemma 1) and the update could not lower ``d2[i]``. ``margin`` keeps
    the test safe against rounding of the Gram-form squared distances.

    Parameters
    ----------
    d2 : ndarray of float64, shape (n_items,)
        Squared distance of every row to its nearest selected row (``inf``
        before the first selection).
    nearest : ndarray of int64, shape (n_items,)
        Selection position (0, 1, ...) of that nearest selected row, -1 if none.
    d2_centres : ndarray of float64, shape (n_selected_before,)
        Squared distances between ``s`` and the rows selected before it, in
        selection order.
    margin : float
        Absolute safety margin on squared distances.
    candidates : ndarray of int64, shape (n_items,)
        Filled with the rows to evaluate (first ``n`` entries).

    Returns
    -------
    int
        Number ``n`` of rows to evaluate.
    """
    n = 0
    for i in range(d2.shape[0]):
        t = nearest[i]
        if t >= 0:
            di = d2[i] if d2[i] > 0.0 else 0.0
            if d2_centres[t] > 4.0 * di + margin:
                continue
        candidates[n] = i
        n += 1
    return n


@njit(cache=True, nogil=True)
def fps_update_rows(A, norms, s, candidates, n, d2, nearest, new_pos):
    """Lower ``d2`` of rows ``candidates[:n]`` with their distance to row ``s``.

    Squared distances use the Gram form d²(i, s) = (|a_i|² + |a_s|²) − 2 a_i·a_s,
    with the same operation order as skmatter so that equal inputs give equal
    rounding.

    Parameters
    ----------
    A : ndarray of float64, shape (n_items, n_dims), C-contiguous
        Candidates as rows.
    norms : ndarray of float64, shape (n_items,)
        Squared row norms |a_i|².
    s : int
        Row just selected.
    candidates : ndarray of int64, shape (>= n,)
        Rows to evaluate.
    n : int
        Number of rows to evaluate.
    d2 : ndarray of float64, shape (n_items,)
        Squared distances to the selected set; updated in place.
    nearest : ndarray of int64, shape (n_items,)
        Selection position of the nearest selected row; updated in place.
    new_pos : int
        Selection position of ``s``.
    """
    a_s = A[s]
    norm_s = norms[s]
    for j in range(n):
        i = candidates[j]
        d = (norms[i] + norm_s) - 2.0 * np.dot(A[i], a_s)
        if d < d2[i]:
            d2[i] = d
            nearest[i] = new_pos


# Separate functions, not one Python function jitted twice: Numba's on-disk cache
# is keyed by function name, so two variants of one function would collide.
@njit(cache=True, nogil=True, parallel=True)
def fps_update_rows_parallel(A, norms, s, candidates, n, d2, nearest, new_pos):
    """Threaded :func:`fps_update_rows` (parallel over the rows)."""
    a_s = A[s]
    norm_s = norms[s]
    for j in prange(n):
        i = candidates[j]
        d = (norms[i] + norm_s) - 2.0 * np.dot(A[i], a_s)
        if d < d2[i]:
            d2[i] = d
            nearest[i] = new_pos


@njit(cache=True, nogil=True)
def fps_update_kernel(K, diag, s, d2):
    """Lower squared kernel distances d² = K_ii + K_ss − 2 K_is after selecting ``s``.

    Parameters
    ----------
    K : ndarray of float64, shape (n_items, n_items), C-contiguous
        Symmetric kernel (Gram) matrix of the candidates.
    diag : ndarray of float64, shape (n_items,)
        Its diagonal K_ii.
    s : int
        Item just selected.
    d2 : ndarray of float64, shape (n_items,)
        Squared distances to the selected set; updated in place.
    """
    k_s = K[s]
    diag_s = diag[s]
    for i in range(K.shape[0]):
        d = (diag[i] + diag_s) - 2.0 * k_s[i]
        if d < d2[i]:
            d2[i] = d


@njit(cache=True, nogil=True)
def symmetric_rank1_downdate(G, g, scale):
    """In place ``G -= scale * outer(g, g)``.

    Parameters
    ----------
    G : ndarray of float64, shape (n, n), C-contiguous
    g : ndarray of float64, shape (n,)
    scale : float
    """
    n = G.shape[0]
    for i in range(n):
        gi = scale * g[i]
        for j in range(n):
            G[i, j] -= gi * g[j]


@njit(cache=True, nogil=True, parallel=True)
def symmetric_rank1_downdate_parallel(G, g, scale):
    """Threaded :func:`symmetric_rank1_downdate` (parallel over the rows)."""
    n = G.shape[0]
    for i in prange(n):
        gi = scale * g[i]
        for j in range(n):
            G[i, j] -= gi * g[j]


@njit(cache=True, nogil=True)
def symmetric_rank2_downdate(C, q, z):
    """In place ``C -= outer(q, z) + outer(z, q)``.

    With unit ``q``, ``y = C q`` and ``z = y − (q·y / 2) q`` this is the two-sided
    projection ``C ← (I − q qᵀ) C (I − q qᵀ)``.

    Parameters
    ----------
    C : ndarray of float64, shape (n, n), C-contiguous
    q, z : ndarray of float64, shape (n,)
    """
    n = C.shape[0]
    for i in range(n):
        qi = q[i]
        zi = z[i]
        for j in range(n):
            C[i, j] -= qi * z[j] + zi * q[j]


@njit(cache=True, nogil=True, parallel=True)
def symmetric_rank2_downdate_parallel(C, q, z):
    """Threaded :func:`symmetric_rank2_downdate` (parallel over the rows)."""
    n = C.shape[0]
    for i in prange(n):
        qi = q[i]
        zi = z[i]
        for j in range(n):
            C[i, j] -= qi * z[j] + zi * q[j]
