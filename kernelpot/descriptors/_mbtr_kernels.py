"""Numba kernels of the many-body tensor representation (MBTR).

Private module: the public class :class:`kernelpot.descriptors.mbtr.MBTR`
validates the input, builds neighbour lists and allocates the output; these
kernels only fill it. All kernels take arrays and scalars, loop over
structures in parallel (one output row per structure) and share
:func:`_add_gaussian`.

Conventions (dscribe 2.1's, re-derived here)
--------------------------------------------
Grid: ``dx = (max - min) / (n - 1)``; bin ``l`` spans
``[min - dx/2 + l dx, min - dx/2 + (l + 1) dx]``. A term of value ``g`` and
weight ``w`` adds ``w (Phi(b_{l+1}) - Phi(b_l)) / dx`` to bin ``l``, where
``Phi`` is the normal CDF of mean ``g`` and deviation ``sigma``: the bin
average of the normalised Gaussian, which keeps its area on coarse grids.

Periodic counting: every k-body term is counted once per orbit under lattice
translations. For ``k = 2`` a neighbour pair (i, j, S) and its mirror
(j, i, -S) are the same orbit, so one of the two is kept; for ``k = 3`` the angle is attached to its vertex
atom, which lies in the home cell exactly once per orbit, so no fraction is
needed. This equals dscribe's cell-index fractions (1/2 for a pair across
cells; 1/2 or 1/3 for a triple spread over two or three cells).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["k1_kernel", "k2_kernel", "k3_kernel"]

# Geometry and weighting codes shared with the public module.
GEOM_ATOMIC_NUMBER = 0
GEOM_DISTANCE = 1
GEOM_INVERSE_DISTANCE = 2
GEOM_ANGLE = 3
GEOM_COSINE = 4

WEIGHT_UNITY = 0
WEIGHT_EXP = 1
WEIGHT_INVERSE_SQUARE = 2
WEIGHT_SMOOTH_CUTOFF = 3

# Beyond 9 sigma, erf(z / sqrt 2) is exactly +-1 in double precision
# (|z| > 6.36 > 5.93), so the skipped bins would receive exactly zero.
_WINDOW_SIGMAS = 9.0


@njit(cache=True, nogil=True)
def _add_gaussian(row, begin, center, weight, start, dx, sigma, n):
    """Add ``weight`` times the bin-averaged Gaussian at ``center`` to ``row[begin:begin+n]``."""
    window = _WINDOW_SIGMAS * sigma
    lo = int(math.floor((center - window - start) / dx))
    hi = int(math.ceil((center + window - start) / dx))
    if lo < 0:
        lo = 0
    if hi > n:
        hi = n
    if lo >= hi:
        return
    inv = 1.0 / (sigma * math.sqrt(2.0))
    previous = 0.5 * (1.0 + math.erf((start + lo * dx - center) * inv))
    for bin_index in range(lo, hi):
        current = 0.5 * (1.0 + math.erf((start + (bin_index + 1) * dx - center) * inv))
        row[begin + bin_index] += weight * (current - previous) / dx
        previous = current


@njit(cache=True, nogil=True, parallel=True)
def k1_kernel(out, numbers, species_index, offsets, start, dx, sigma, n):
    """k = 1: one Gaussian at each atom's atomic number, in its species' block.

    ``out`` is (n_structures, n_species * n) and must be zeroed.
    """
    for s in prange(len(offsets) - 1):
        for i in range(offsets[s], offsets[s + 1]):
            _add_gaussian(
                out[s], species_index[i] * n, float(numbers[i]), 1.0, start, dx, sigma, n
            )


@njit(cache=True, nogil=True)
def _pair_weight(distance, weighting, scale, threshold):
    """Weight of a pair at ``distance`` (Å); a negative result means "skip"."""
    if weighting == WEIGHT_EXP:
        weight = math.exp(-scale * distance)
        if weight < threshold:
            return -1.0
        return weight
    if weighting == WEIGHT_INVERSE_SQUARE:
        return 1.0 / (distance * distance)
    return 1.0


@njit(cache=True, nogil=True)
def _first_of_mirror_pair(i, j, shift):
    """Whether pair (i, j, shift) is the one kept of it and its mirror (j, i, -shift)."""
    if j != i:
        return j > i
    # A self image: keep the shift whose first non-zero component is positive.
    for axis in range(3):
        if shift[axis] != 0:
            return shift[axis] > 0
    return False


@njit(cache=True, nogil=True, parallel=True)
def k2_kernel(
    out, species_index, offsets, pair_offsets, neighbour, shifts, distances, n_species,
    geometry, weighting, scale, threshold, start, dx, sigma, n,
):
    """k = 2 over a full neighbour list, each pair taken once from its mirror pair.

    Blocks are the upper triangle ``a <= b`` of species pairs, row by row:
    ``m = b + a n_species - a (a + 1) / 2``.
    """
    for s in prange(len(offsets) - 1):
        row = out[s]
        for i in range(offsets[s], offsets[s + 1]):
            for p in range(pair_offsets[i], pair_offsets[i + 1]):
                if not _first_of_mirror_pair(i, neighbour[p], shifts[p]):
                    continue
                distance = distances[p]
                weight = _pair_weight(distance, weighting, scale, threshold)
                if weight < 0.0:
                    continue
                if geometry == GEOM_DISTANCE:
                    value = distance
                else:
                    value = 1.0 / distance
                a = species_index[i]
                b = species_index[neighbour[p]]
                if b < a:
                    a, b = b, a
                m = b + a * n_species - (a * (a + 1)) // 2
                _add_gaussian(row, m * n, value, weight, start, dx, sigma, n)


@njit(cache=True, nogil=True)
def _smooth_cutoff(distance, cutoff, sharpness):
    ratio = distance / cutoff
    return (
        1.0
        + sharpness * ratio ** (sharpness + 1.0)
        - (sharpness + 1.0) * ratio**sharpness
    )


@njit(cache=True, nogil=True, parallel=True)
def k3_kernel(
    out, species_index, offsets, pair_offsets, neighbour, vectors, distances, n_species,
    geometry, weighting, scale, threshold, cutoff, sharpness, start, dx, sigma, n,
):
    """k = 3: every unordered pair of neighbours (i, k) of each vertex atom j.

    The value is the angle at j (degrees) or its cosine, from the law of
    cosines as in dscribe. Blocks: vertex species first, then the upper
    triangle of the end species ``a <= c``:
    ``m = b n_species (n_species + 1) / 2 + c + a n_species - a (a + 1) / 2``.
    """
    n_pair_blocks = (n_species * (n_species + 1)) // 2
    for s in prange(len(offsets) - 1):
        row = out[s]
        for j in range(offsets[s], offsets[s + 1]):
            b = species_index[j]
            for p in range(pair_offsets[j], pair_offsets[j + 1]):
                d_ji = distances[p]
                for q in range(p + 1, pair_offsets[j + 1]):
                    d_jk = distances[q]
                    dix = vectors[q, 0] - vectors[p, 0]
                    diy = vectors[q, 1] - vectors[p, 1]
                    diz = vectors[q, 2] - vectors[p, 2]
                    d_ik = math.sqrt(dix * dix + diy * diy + diz * diz)
                    if weighting == WEIGHT_EXP:
                        weight = math.exp(-scale * (d_ji + d_jk + d_ik))
                        if weight < threshold:
                            continue
                    elif weighting == WEIGHT_SMOOTH_CUTOFF:
                        if d_ji > cutoff or d_jk > cutoff:
                            continue
                        weight = _smooth_cutoff(d_ji, cutoff, sharpness) * _smooth_cutoff(
                            d_jk, cutoff, sharpness
                        )
                    else:
                        weight = 1.0
                    cosine = 0.5 * (d_ji * d_ji + d_jk * d_jk - d_ik * d_ik) / (d_jk * d_ji)
                    cosine = max(-1.0, min(cosine, 1.0))
                    if geometry == GEOM_ANGLE:
                        value = math.acos(cosine) * (180.0 / math.pi)
                    else:
                        value = cosine
                    a = species_index[neighbour[p]]
                    c = species_index[neighbour[q]]
                    if c < a:
                        a, c = c, a
                    m = b * n_pair_blocks + c + a * n_species - (a * (a + 1)) // 2
                    _add_gaussian(row, m * n, value, weight, start, dx, sigma, n)


@njit(cache=True, nogil=True)
def l2_normalise_rows(out):
    """Divide each row by its Euclidean norm (rows of zeros are left alone)."""
    for s in range(out.shape[0]):
        norm = math.sqrt(np.sum(out[s] * out[s]))
        if norm > 0.0:
            out[s] /= norm
