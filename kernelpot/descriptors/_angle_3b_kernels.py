"""Numba kernels of the ``angle_3b`` descriptor (private): the triplets of a neighbour list.

Validation, features and gradients live in :mod:`kernelpot.descriptors.angle_3b`; these kernels only
enumerate the triplets (two neighbour-list entries of one centre), which is the loop NumPy cannot vectorise.
"""

from __future__ import annotations

from numba import njit

__all__ = ["count_triplets", "fill_triplets"]


@njit(cache=True, nogil=True)
def _keeps(numbers, i, j, k, zc, z1, z2):
    """Whether centre ``i`` with neighbours ``j``, ``k`` has the species asked for (0: any)."""
    if zc > 0 and numbers[i] != zc:
        return False
    if z1 == 0:
        return True
    zj = numbers[j]
    zk = numbers[k]
    return (zj == z1 and zk == z2) or (zj == z2 and zk == z1)


@njit(cache=True, nogil=True)
def count_triplets(pair_offsets, neighbour, numbers, zc, z1, z2, counts):
    """``counts[i]``: triplets (unordered pairs of entries p < q of centre ``i``'s neighbour list) kept.

    ``pair_offsets`` delimits each centre's entries in the (centre-sorted) list; ``zc``, ``z1``, ``z2``: the
    centre's and the two neighbours' atomic numbers (0: any).
    """
    for i in range(pair_offsets.shape[0] - 1):
        n = 0
        for p in range(pair_offsets[i], pair_offsets[i + 1]):
            for q in range(p + 1, pair_offsets[i + 1]):
                if _keeps(numbers, i, neighbour[p], neighbour[q], zc, z1, z2):
                    n += 1
        counts[i] = n


@njit(cache=True, nogil=True)
def fill_triplets(pair_offsets, neighbour, numbers, zc, z1, z2, starts, first, second):
    """Neighbour-list entries ``first[t] < second[t]`` of every kept triplet ``t``, centre by centre from
    ``starts[i]`` (the cumulative ``counts`` of :func:`count_triplets`)."""
    for i in range(pair_offsets.shape[0] - 1):
        t = starts[i]
        for p in range(pair_offsets[i], pair_offsets[i + 1]):
            for q in range(p + 1, pair_offsets[i + 1]):
                if _keeps(numbers, i, neighbour[p], neighbour[q], zc, z1, z2):
                    first[t] = p
                    second[t] = q
                    t += 1
