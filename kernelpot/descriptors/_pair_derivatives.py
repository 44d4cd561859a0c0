"""Summing per-pair position derivatives into per-atom derivatives and per-structure virials (private).

The reverse-mode pass of a descriptor (``transform_vjp``) ends with one 3-vector per pair: the
derivative of the energy with respect to the position of the pair's moving atom image, the pair's
reference atom (its centre, or the first atom of a pair row) moving the opposite way.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["scatter_pair_derivatives", "sum_pair_derivatives"]


@njit(cache=True, nogil=True)
def scatter_pair_derivatives(center, neighbour, vectors, pair_dE, atom_structure, dE_dr, virial, with_virial):
    """``dE_dr[j] += d_p``, ``dE_dr[i] -= d_p`` and, if ``with_virial``, ``virial[s] -= r_p ⊗ d_p``.

    Parameters
    ----------
    center, neighbour : (n_pairs,) int64
        Reference atom ``i`` and moving atom ``j`` of each pair (global indices).
    vectors : (n_pairs, 3) float64
        ``r_j + S·cell - r_i`` (Å).
    pair_dE : (n_pairs, 3) float64
        ``∂E/∂r_j`` through this pair (eV/Å).
    atom_structure : (n_atoms,) int64
        Structure of every atom.
    dE_dr : (n_atoms, 3) float64, added to
    virial : (n_structures, 3, 3) float64, added to (eV); ``-Σ_p r_p ⊗ ∂E/∂r_p`` is the virial because
        the reference atom's share has a zero vector.
    """
    for p in range(center.shape[0]):
        i = center[p]
        j = neighbour[p]
        for a in range(3):
            d = pair_dE[p, a]
            dE_dr[j, a] += d
            dE_dr[i, a] -= d
        if with_virial:
            s = atom_structure[i]
            for a in range(3):
                for b in range(3):
                    virial[s, a, b] -= vectors[p, a] * pair_dE[p, b]


def sum_pair_derivatives(center, neighbour, vectors, pair_dE, packed, virial):
    """``(dE_dr (n_atoms, 3), virial (n_structures, 3, 3) or None)`` of ``packed`` from per-pair derivatives.

    ``pair_dE`` of shape (n_vectors, n_pairs, 3) (a batched reverse pass, several energies at once) gives
    ``dE_dr`` (n_vectors, n_atoms, 3) and ``virial`` (n_vectors, n_structures, 3, 3) or None.
    """
    if pair_dE.ndim == 3:
        parts = [sum_pair_derivatives(center, neighbour, vectors, one, packed, virial) for one in pair_dE]
        return np.stack([part[0] for part in parts]), (np.stack([part[1] for part in parts]) if virial else None)
    dE_dr = np.zeros((packed.n_atoms, 3))
    out = np.zeros((packed.n_structures, 3, 3))
    scatter_pair_derivatives(np.asarray(center, dtype=np.int64), np.asarray(neighbour, dtype=np.int64),
                             np.ascontiguousarray(vectors, dtype=np.float64), pair_dE, packed.structure_index,
                             dE_dr, out, bool(virial))
    return dE_dr, (out if virial else None)
