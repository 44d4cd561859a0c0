"""Numba kernels of the GAP design rows (private): kernel derivatives summed into force and virial rows."""

from __future__ import annotations

from numba import njit

__all__ = ["accumulate_pair_rows"]


@njit(cache=True, nogil=True)
def accumulate_pair_rows(GZ, u, W, C, scale, rows, neighbour, vectors, row_structure, forces, virial,
                         want_forces, want_virial):
    """Add every pair's kernel derivative to its atom's force row and its structure's virial rows.

    ``dK[p, a, m] = scale[m] W[r, m] (GZ[p, a, m] - C[r, m] u[p, a])`` with ``r = rows[p]``
    (:meth:`~kernelpot.kernels.GaussianCovariance.pair_factors`); ``forces[neighbour[p], a, m] += dK``
    and ``virial[s, x, a, m] += vectors[p, x] dK`` (``s`` the row's structure), in one pass, without
    the (pairs, 3, m) array of ``dK``.
    """
    n_sparse = W.shape[1]
    for p in range(rows.shape[0]):
        r = rows[p]
        j = neighbour[p]
        s = row_structure[r]
        for a in range(3):
            ua = u[p, a]
            g = GZ[p, a]
            for m in range(n_sparse):
                value = scale[m] * W[r, m] * (g[m] - C[r, m] * ua)
                if want_forces:
                    forces[j, a, m] += value
                if want_virial:
                    for x in range(3):
                        virial[s, x, a, m] += vectors[p, x] * value
