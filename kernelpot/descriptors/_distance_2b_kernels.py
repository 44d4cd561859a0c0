"""Numba kernels of the ``distance_2b`` descriptor (private).

They take the full neighbour list (both directions) as flat arrays and
fill preallocated outputs; validation and allocation live in
:mod:`kernelpot.descriptors.distance_2b`.
"""

from __future__ import annotations

from numba import njit

__all__ = ["half_pair_mask", "fill_pair_gradients"]


@njit(cache=True, nogil=True)
def half_pair_mask(center, neighbour, shifts, numbers, z1, z2, out):
    """Mark one direction of every pair whose species match ``(z1, z2)``.

    A pair (i, j, S) and its reverse (j, i, -S) are the same distance;
    keep (i, j, S) when i < j, or when i == j (a periodic self image) and
    S is lexicographically positive. ``z1 == z2 == 0`` keeps every
    species pair; ``z1 > 0, z2 > 0`` keeps pairs with {Z_i, Z_j} == {z1, z2}.
    """
    for p in range(center.shape[0]):
        i = center[p]
        j = neighbour[p]
        keep = i < j
        if i == j:
            keep = shifts[p, 0] > 0 or (
                shifts[p, 0] == 0
                and (shifts[p, 1] > 0 or (shifts[p, 1] == 0 and shifts[p, 2] > 0))
            )
        if keep and z1 > 0:
            zi = numbers[i]
            zj = numbers[j]
            keep = (zi == z1 and zj == z2) or (zi == z2 and zj == z1)
        out[p] = keep


@njit(cache=True, nogil=True)
def fill_pair_gradients(center, neighbour, vectors, distances, values, grad_center,
                        grad_neighbour, grad_vectors):
    """Fill the two gradient entries of each kept pair row.

    Row ``q`` is the distance r = |r_j + S·cell − r_i|: dr/dr_i = −û,
    dr/dr_j = +û. The reference atom of the row is i, so its entry has a
    zero ``vectors`` and the entry of j carries the pair vector (Å).
    """
    for q in range(center.shape[0]):
        r = distances[q]
        for a in range(3):
            u = vectors[q, a] / r
            values[2 * q, a, 0] = -u
            values[2 * q + 1, a, 0] = u
            grad_vectors[2 * q, a] = 0.0
            grad_vectors[2 * q + 1, a] = vectors[q, a]
        grad_center[2 * q] = q
        grad_center[2 * q + 1] = q
        grad_neighbour[2 * q] = center[q]
        grad_neighbour[2 * q + 1] = neighbour[q]
