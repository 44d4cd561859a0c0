"""Compiled parts of λ-SOAP: Clebsch–Gordan coupling of density coefficients.

Shared inputs (built once by :class:`kernelpot.descriptors.lambda_soap.LambdaSOAP`)
--------------------------------------------------------------------------------
``coefficients`` (n_atoms, n_species, n_lm, n_max)
    Density expansion ``c^a_{n l m}`` of each environment (``lm = l*l + l + m``),
    transposed so that the radial index is contiguous.
``block_a``, ``block_b`` (n_blocks,)
    Species indices of the two coupled coefficients of each block; a block
    is one ``(a, b, l1, l2)`` and its features are contiguous,
    ``block_start[k]:block_start[k + 1]``.
``block_triangular`` (n_blocks,) bool
    Whether the block keeps only ``n1 <= n2`` (same species and ``l1 == l2``).
``block_group_start`` (n_blocks + 1,)
    The nonzero Clebsch–Gordan entries of block ``k``, grouped by output
    component and first factor, are groups
    ``block_group_start[k]:block_group_start[k + 1]``; group ``g`` has
    ``group_mu[g]`` (0..2λ), ``group_lm1[g]`` (column ``lm`` of the first
    coefficient) and entries ``group_entry_start[g]:group_entry_start[g + 1]``
    of ``entry_lm2`` (column of the second coefficient) and ``entry_values``.
Inside a block, features are ``(n1, n2)`` row-major (``n1 <= n2`` only if
triangular).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _rank_one_update(row, start, triangular, x1, x2, scale):
    """``row[start + f(n1, n2)] += scale * x1[n1] * x2[n2]`` over the block's ``(n1, n2)``.

    Features of a block are ``(n1, n2)`` row-major, only ``n1 <= n2`` when
    ``triangular``; contiguous writes so the inner loop vectorises.
    """
    n_max = x1.shape[0]
    k = start
    for n1 in range(n_max):
        t = scale * x1[n1]
        if t == 0.0:
            k += n_max - n1 if triangular else n_max
            continue
        for n2 in range(n1 if triangular else 0, n_max):
            row[k] += t * x2[n2]
            k += 1


@njit(cache=True, nogil=True)
def _combine(rows, first, stop, entry_lm2, entry_values, out):
    """``out[:] = Σ_e entry_values[e] * rows[entry_lm2[e]]`` over entries ``first:stop``."""
    out[:] = 0.0
    for e in range(first, stop):
        value = entry_values[e]
        row = rows[entry_lm2[e]]
        for n in range(out.shape[0]):
            out[n] += value * row[n]


@njit(cache=True, nogil=True)
def _couple_center(c, block_a, block_b, block_start, block_triangular, block_group_start,
                   group_mu, group_lm1, group_entry_start, entry_lm2, entry_values, out):
    """Add the coupled features of one environment to ``out`` (2λ+1, n_features).

    ``c`` (n_species, n_lm, n_max) is the environment's coefficients with
    ``n`` last (contiguous). For each group ``(μ, lm1)`` the ``lm2`` sum is
    done first on a vector of length n_max, so one rank-one update serves
    every Clebsch–Gordan entry of the group.
    """
    combined = np.empty(c.shape[2])
    for block in range(len(block_a)):
        a = block_a[block]
        b = block_b[block]
        for g in range(block_group_start[block], block_group_start[block + 1]):
            _combine(c[b], group_entry_start[g], group_entry_start[g + 1], entry_lm2,
                     entry_values, combined)
            _rank_one_update(out[group_mu[g]], block_start[block], block_triangular[block],
                             c[a, group_lm1[g]], combined, 1.0)


@njit(cache=True, nogil=True, parallel=True)
def lambda_soap_features(coefficients, block_a, block_b, block_start, block_triangular,
                         block_group_start, group_mu, group_lm1, group_entry_start, entry_lm2,
                         entry_values, out):
    """Fill ``out`` (n_atoms, 2λ+1, n_features), zeroed by the caller, with λ-SOAP features.

    ``coefficients`` has shape (n_atoms, n_species, n_lm, n_max) (``n`` last).
    """
    for i in prange(coefficients.shape[0]):
        _couple_center(coefficients[i], block_a, block_b, block_start, block_triangular,
                       block_group_start, group_mu, group_lm1, group_entry_start, entry_lm2,
                       entry_values, out[i])


@njit(cache=True, nogil=True, parallel=True)
def lambda_soap_gradients(coefficients, pair_gradients, pair_species, pair_neighbour, pair_order,
                          pair_offsets, pair_slot, self_slot, out_offsets, block_a, block_b,
                          block_start, block_triangular, block_group_start, group_mu, group_lm1,
                          group_entry_start, entry_lm2, entry_values, out):
    """Fill ``out`` (n_out_pairs, 3, 2λ+1, n_features), zeroed by the caller.

    ``coefficients`` (n_atoms, n_species, n_lm, n_max) and ``pair_gradients``
    (n_pairs, 3, n_lm, n_max) have ``n`` last. The expansion pairs (one per
    neighbour image) of centre ``i`` are
    ``pair_order[pair_offsets[i]:pair_offsets[i + 1]]``; pair ``p`` moves
    species ``pair_species[p]`` with the centre held fixed and adds to output
    row ``pair_slot[p]``. The centre's self row (``self_slot[i]``) is then
    the total derivative, minus the sum of its other rows (the centre drags
    the whole environment). Images of the centre itself are skipped: their
    relative vector does not change when the atom moves.
    """
    n_max = coefficients.shape[3]
    for i in prange(coefficients.shape[0]):
        c = coefficients[i]
        combined = np.empty(n_max)
        for position in range(pair_offsets[i], pair_offsets[i + 1]):
            p = pair_order[position]
            if pair_neighbour[p] == i:
                continue
            s = pair_species[p]
            dc = pair_gradients[p]
            row = out[pair_slot[p]]
            for block in range(len(block_a)):
                a = block_a[block]
                b = block_b[block]
                if a != s and b != s:
                    continue
                start = block_start[block]
                triangular = block_triangular[block]
                for g in range(block_group_start[block], block_group_start[block + 1]):
                    mu = group_mu[g]
                    lm1 = group_lm1[g]
                    first = group_entry_start[g]
                    stop = group_entry_start[g + 1]
                    if a == s:
                        _combine(c[b], first, stop, entry_lm2, entry_values, combined)
                        for x in range(3):
                            _rank_one_update(row[x, mu], start, triangular, dc[x, lm1], combined, 1.0)
                    if b == s:
                        for x in range(3):
                            _combine(dc[x], first, stop, entry_lm2, entry_values, combined)
                            _rank_one_update(row[x, mu], start, triangular, c[a, lm1], combined, 1.0)
        own = out[self_slot[i]]
        for q in range(out_offsets[i], out_offsets[i + 1]):
            if q != self_slot[i]:
                own -= out[q]


@njit(cache=True, nogil=True, parallel=True)
def normalize_features(features, scales, tolerance, norms):
    """Divide each environment's block (2λ+1, n_features) by its Frobenius norm, in place.

    ``norms`` (n_atoms,) receives the norms. A block whose norm is at most
    ``tolerance * scales[i]`` is set to zero and gets norm 0: it vanishes
    by symmetry (or is an isolated atom at λ > 0), and what is left is
    round-off, whose direction means nothing. ``scales[i]`` bounds the
    block norm from above (``Σ c²`` of the environment's coefficients).
    """
    for i in prange(features.shape[0]):
        total = 0.0
        for mu in range(features.shape[1]):
            for k in range(features.shape[2]):
                total += features[i, mu, k] * features[i, mu, k]
        norm = math.sqrt(total)
        if norm <= tolerance * scales[i]:
            norms[i] = 0.0
            features[i] = 0.0
            continue
        norms[i] = norm
        for mu in range(features.shape[1]):
            for k in range(features.shape[2]):
                features[i, mu, k] /= norm


@njit(cache=True, nogil=True, parallel=True)
def normalize_gradients(unit_features, norms, out_offsets, gradients):
    """Turn gradients of X into gradients of X / |X|, in place.

    ``d(X/|X|) = (dX - X̂ (X̂ · dX)) / |X|`` with ``X̂`` the normalised block
    ``unit_features`` (n_atoms, 2λ+1, n_features). Rows of centre ``i`` are
    ``out_offsets[i]:out_offsets[i + 1]``; a zero block keeps zero gradients
    (the normalised feature is not differentiable there).
    """
    for i in prange(unit_features.shape[0]):
        norm = norms[i]
        for q in range(out_offsets[i], out_offsets[i + 1]):
            for x in range(3):
                if norm == 0.0:
                    gradients[q, x] = 0.0
                    continue
                projection = 0.0
                for mu in range(unit_features.shape[1]):
                    for k in range(unit_features.shape[2]):
                        projection += unit_features[i, mu, k] * gradients[q, x, mu, k]
                for mu in range(unit_features.shape[1]):
                    for k in range(unit_features.shape[2]):
                        gradients[q, x, mu, k] = (
                            gradients[q, x, mu, k] - unit_features[i, mu, k] * projection
                        ) / norm
