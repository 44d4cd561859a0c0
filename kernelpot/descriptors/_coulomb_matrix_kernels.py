"""Numba kernels of the Coulomb matrix (private; see ``coulomb_matrix.py``)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["sorted_matrix_kernel", "eigenspectrum_kernel"]

PERMUTATION_NONE = 0
PERMUTATION_SORTED_L2 = 1
PERMUTATION_EIGENSPECTRUM = 2


@njit(cache=True, nogil=True)
def _matrix(positions, numbers):
    """``C_ii = Z_i^2.4 / 2``, ``C_ij = Z_i Z_j / |r_i - r_j|`` (distances in Å)."""
    n = len(numbers)
    matrix = np.empty((n, n))
    for i in range(n):
        matrix[i, i] = 0.5 * float(numbers[i]) ** 2.4
        for j in range(i + 1, n):
            dx = positions[i, 0] - positions[j, 0]
            dy = positions[i, 1] - positions[j, 1]
            dz = positions[i, 2] - positions[j, 2]
            value = float(numbers[i]) * float(numbers[j]) / math.sqrt(dx * dx + dy * dy + dz * dz)
            matrix[i, j] = value
            matrix[j, i] = value
    return matrix


# Serial on purpose: building the matrices is cheap next to compiling a
# parallel kernel around LAPACK, which costs several seconds on first use.
@njit(cache=True, nogil=True)
def sorted_matrix_kernel(out, positions, numbers, offsets, n_atoms_max, sort):
    """Fill ``out[s]`` (length ``n_atoms_max**2``, zeroed) with the flattened,
    zero-padded matrix of structure ``s``, rows and columns ordered by
    descending row norm if ``sort`` (a stable sort: equal norms keep the
    input order) and in input order otherwise."""
    for s in range(len(offsets) - 1):
        start, stop = offsets[s], offsets[s + 1]
        n = stop - start
        matrix = _matrix(positions[start:stop], numbers[start:stop])
        if sort:
            norms = np.empty(n)
            for a in range(n):
                norms[a] = math.sqrt(np.sum(matrix[a] * matrix[a]))
            order = np.argsort(-norms, kind="mergesort")
        else:
            order = np.arange(n)
        for a in range(n):
            for b in range(n):
                out[s, a * n_atoms_max + b] = matrix[order[a], order[b]]


@njit(cache=True, nogil=True)
def eigenspectrum_kernel(out, positions, numbers, offsets):
    """Fill ``out[s]`` (length ``n_atoms_max``, zeroed) with the eigenvalues
    of structure ``s`` ordered by descending absolute value."""
    for s in range(len(offsets) - 1):
        start, stop = offsets[s], offsets[s + 1]
        eigenvalues = np.linalg.eigvalsh(_matrix(positions[start:stop], numbers[start:stop]))
        order = np.argsort(-np.abs(eigenvalues), kind="mergesort")
        for a in range(stop - start):
            out[s, a] = eigenvalues[order[a]]
