"""Jitted kernels of lazy farthest-point sampling on feature rows (private).

Eager FPS lowers every row's distance to the selection after each pick, so it
reads the whole feature matrix once per pick. Lazy FPS keeps each row's squared
distance to the selection as of the first ``upto[i]`` picks: a stale value is
an upper bound of the current one, because distances only fall as picks are
added. A max-heap of these bounds finds the next pick: the top row is brought
up to date, and if it is still on top it is the exact farthest row; rows whose
bound is already below the running maximum are never touched. Within an
update, the triangle inequality (Elkan, ICML 2003, lemma 1) skips picks that
cannot be nearer than the row's current nearest pick.

Both rules change only which distances are evaluated, never how: every
evaluated distance uses the same Gram form and operation order as the eager
kernels, and the minimum of a set of floats does not depend on the order, so
the picks equal those of eager FPS (and skmatter's) exactly, ties included
(first index among tied maxima).
"""

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _above(key_a, index_a, key_b, index_b):
    # heap order: larger distance first, then smaller index (np.argmax's tie rule)
    return key_a > key_b or (key_a == key_b and index_a < index_b)


@njit(cache=True, nogil=True)
def _sift_down(keys, items, size, pos):
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        right = child + 1
        if right < size and _above(keys[right], items[right], keys[child], items[child]):
            child = right
        if not _above(keys[child], items[child], keys[pos], items[pos]):
            return
        keys[pos], keys[child] = keys[child], keys[pos]
        items[pos], items[child] = items[child], items[pos]
        pos = child


@njit(cache=True, nogil=True)
def add_centre(A, norms, s, m, centres, centre_norms, centre_d2, d2, nearest, upto):
    """Store row ``s`` as pick number ``m``, its squared distances to picks ``0..m-1``, and its own state.

    Parameters
    ----------
    A : ndarray of float64, shape (n_items, n_dims), C-contiguous
    norms : ndarray of float64, shape (n_items,)
        Squared row norms.
    s, m : int
        Row selected, and its position in the selection.
    centres : ndarray of float64, shape (capacity, n_dims)
    centre_norms : ndarray of float64, shape (capacity,)
    centre_d2 : ndarray of float32, shape (capacity, capacity)
        Squared distances between picks, for the triangle-inequality test.
    d2, nearest, upto : ndarray, shape (n_items,)
        As in :func:`refresh_row`; row ``s`` becomes distance 0 from pick ``m``, up to date.
    """
    centres[m] = A[s]
    centre_norms[m] = norms[s]
    for j in range(m):
        value = (centre_norms[j] + centre_norms[m]) - 2.0 * np.dot(centres[j], centres[m])
        centre_d2[j, m] = value
        centre_d2[m, j] = value
    centre_d2[m, m] = 0.0
    d2[s] = 0.0
    nearest[s] = m
    upto[s] = m + 1


@njit(cache=True, nogil=True)
def refresh_row(A, norms, i, m, centres, centre_norms, centre_d2, margin, d2, nearest, upto):
    """Bring row ``i`` up to date with picks ``upto[i]..m-1``; return the distances evaluated.

    Parameters
    ----------
    i, m : int
        Row to update, and number of picks so far.
    margin : float
        Absolute safety margin of the triangle-inequality test (squared distance
        units), covering the rounding of the Gram form and of float32 storage.
    d2, nearest, upto : ndarray, shape (n_items,)
        Squared distance to the nearest of the first ``upto`` picks (float64),
        that pick's position (int64, -1 if none) and ``upto`` (int64); updated.
    """
    row = A[i]
    evaluated = 0
    for j in range(upto[i], m):
        t = nearest[i]
        if t >= 0:
            current = d2[i] if d2[i] > 0.0 else 0.0
            if centre_d2[t, j] > 4.0 * current + margin:
                continue
        value = (norms[i] + centre_norms[j]) - 2.0 * np.dot(row, centres[j])
        evaluated += 1
        if value < d2[i]:
            d2[i] = value
            nearest[i] = j
    upto[i] = m
    return evaluated


@njit(cache=True, nogil=True)
def lazy_select(A, norms, taken, m, n_target, coincident, margin, centres, centre_norms,
                centre_d2, d2, nearest, upto, order, d2_at_select):
    """Continue a farthest-point selection from ``m`` to at most ``n_target`` picks.

    Parameters
    ----------
    taken : ndarray of bool, shape (n_items,)
        Rows already selected; updated.
    m, n_target : int
        Picks made so far and picks wanted.
    coincident : float
        The selection stops when the farthest row is nearer than this (squared).
    order, d2_at_select : ndarray, shape (capacity,)
        Selected rows (int64) and their squared distance to the earlier picks
        when selected (float64); filled from position ``m``.

    Returns
    -------
    m : int
        Number of picks made (< ``n_target`` only if the selection stopped).
    evaluated : int
        Number of distances evaluated.
    """
    n = A.shape[0]
    keys = np.empty(n)
    items = np.empty(n, dtype=np.int64)
    size = 0
    for i in range(n):
        if not taken[i]:
            keys[size] = d2[i]
            items[size] = i
            size += 1
    for pos in range(size // 2 - 1, -1, -1):
        _sift_down(keys, items, size, pos)
    evaluated = 0
    while m < n_target and size > 0:
        while upto[items[0]] < m:
            i = items[0]
            evaluated += refresh_row(A, norms, i, m, centres, centre_norms, centre_d2,
                                     margin, d2, nearest, upto)
            keys[0] = d2[i]
            _sift_down(keys, items, size, 0)
        i = items[0]
        if d2[i] <= coincident:
            break
        size -= 1
        keys[0] = keys[size]
        items[0] = items[size]
        _sift_down(keys, items, size, 0)
        order[m] = i
        d2_at_select[m] = d2[i]
        taken[i] = True
        add_centre(A, norms, i, m, centres, centre_norms, centre_d2, d2, nearest, upto)
        m += 1
    return m, evaluated


@njit(cache=True, nogil=True, parallel=True)
def refresh_rows(A, norms, rows, m, centres, centre_norms, centre_d2, margin, d2, nearest,
                 upto):
    """Bring ``rows`` up to date with all ``m`` picks (threads over rows); return evaluations."""
    evaluated = np.zeros(rows.shape[0], dtype=np.int64)
    for k in prange(rows.shape[0]):
        evaluated[k] = refresh_row(A, norms, rows[k], m, centres, centre_norms, centre_d2,
                                   margin, d2, nearest, upto)
    return evaluated.sum()
