"""Numba kernels of the cell-list neighbour search (private).

Only arrays and scalars cross this boundary; :mod:`kernelpot.structures.neighbours`
validates input and allocates outputs.

Algorithm, per structure
------------------------
1. A *binning frame* ``B`` (3, 3): the lattice vectors of the periodic
   directions, completed by orthonormal vectors perpendicular to them for the
   non-periodic directions (so a molecule is binned over its Cartesian
   bounding box and a slab over the vacuum direction's extent).
2. Every atom gets fractional coordinates ``f = r @ inv(B)``. Along periodic
   directions it is wrapped into ``[0, 1)`` with the integer ``n = floor(f)``
   remembered; the raw positions are never modified.
3. Bins are slabs of width ``w_k`` measured along the normal of the other two
   frame vectors (the perpendicular height ``h_k``), so a sphere of radius
   ``cutoff`` spans at most ``floor(cutoff / w_k) + 1`` bins in direction k
   however skewed the cell. Bins along a periodic direction wrap around; the
   number of wraps is the image shift ``S_w`` of the wrapped atom.
4. A pair found between wrapped atoms ``i`` and ``j`` with shift ``S_w`` has the
   shift ``S = S_w + n_i - n_j`` for the raw positions, and the vector
   ``r_j + S @ cell - r_i`` (ASE ``neighbor_list('ijS')`` convention).

Two passes over all structures (count, then fill) let one parallel loop write
into a single preallocated output. Within a center, pairs are ordered by an
integer key ``(j, S_w)``; since ``n_i`` and ``n_j`` are fixed for a given
``(i, j)``, that is also the order by ``(j, S)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# Bins are one cutoff wide (a 27-bin stencil) unless a cutoff sphere holds more than about
# _DENSE_BINS atoms; then half a cutoff (a pruned 125-bin stencil). Per atom the search costs
# ~ stencil x (bin overhead / atoms per bin + atoms per bin x distance test): with the two
# costs measured here (about 10 ns and 4 ns) the two widths break even near rho rc^3 = 11
# (Si at 5 A: 6, water: 12.5).
_DENSE_BINS = 11.0
# Molecules with at most this many atoms skip binning: all pairs is cheaper.
_BRUTE_FORCE_MAX_ATOMS = 96
# Relative slack when deciding which bins can hold a pair; covers rounding of
# fractional coordinates so a pair is never missed at the cost of rare extra checks.
_SLACK = 1e-9


@njit(cache=True, nogil=True)
def _cross_into(a, b, out):
    out[0] = a[1] * b[2] - a[2] * b[1]
    out[1] = a[2] * b[0] - a[0] * b[2]
    out[2] = a[0] * b[1] - a[1] * b[0]


@njit(cache=True, nogil=True)
def _norm(a):
    return math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])


@njit(cache=True, nogil=True)
def _binning_frame(cell, pbc):
    """Rows: periodic lattice vectors, then orthonormal completion (Å).

    Plain loops rather than NumPy calls: this keeps the cold compile short.
    """
    frame = np.zeros((3, 3))
    n_periodic = 0
    for k in range(3):
        if pbc[k]:
            n_periodic += 1
            for x in range(3):
                frame[k, x] = cell[k, x]
    if n_periodic == 0:
        for k in range(3):
            frame[k, k] = 1.0
    elif n_periodic == 2:
        for k in range(3):
            if not pbc[k]:
                _cross_into(frame[(k + 1) % 3], frame[(k + 2) % 3], frame[k])
                norm = _norm(frame[k])
                for x in range(3):
                    frame[k, x] /= norm
    elif n_periodic == 1:
        p = 0
        while not pbc[p]:
            p += 1
        u = frame[p] / _norm(frame[p])
        # Start from the Cartesian axis least aligned with u for a well-conditioned v.
        axis = 0
        for x in range(1, 3):
            if abs(u[x]) < abs(u[axis]):
                axis = x
        v = frame[(p + 1) % 3]
        for x in range(3):
            v[x] = -u[axis] * u[x]
        v[axis] += 1.0
        norm = _norm(v)
        for x in range(3):
            v[x] /= norm
        _cross_into(u, v, frame[(p + 2) % 3])
    return frame


@njit(cache=True, nogil=True)
def _setup(positions, cell, pbc, cutoff):
    """Wrap atoms, assign bins and build the bin stencil of one structure.

    Returns
    -------
    wraps : (n, 3) int64, wrap integers n of each atom (0 along non-periodic axes)
    n_bins : (3,) int64, bins along each frame direction
    reach : (3,) int64, bins to search on each side
    keep : (2 reach + 1,) * 3 bool, stencil offsets that can hold a pair
    bin_start : (prod(n_bins) + 1,) int64, bin_atoms : (n,) int64 (counting sort)
    radix : (3,) int64, half-range of S_w per direction (for the sort key)
    """
    n = positions.shape[0]
    frame = _binning_frame(cell, pbc)
    normals = np.empty((3, 3))
    for k in range(3):
        _cross_into(frame[(k + 1) % 3], frame[(k + 2) % 3], normals[k])
    det = frame[0, 0] * normals[0, 0] + frame[0, 1] * normals[0, 1] + frame[0, 2] * normals[0, 2]
    heights = np.empty(3)
    for k in range(3):
        heights[k] = abs(det) / _norm(normals[k])
    # frac: fractional along periodic axes; Å along the normal otherwise.
    frac = np.empty((n, 3))
    for a in range(n):
        for k in range(3):
            dot = 0.0
            for x in range(3):
                dot += positions[a, x] * normals[k, x]
            frac[a, k] = dot / det
    wraps = np.zeros((n, 3), dtype=np.int64)
    low = np.zeros(3)
    extent = np.zeros(3)
    for k in range(3):
        if pbc[k]:
            for a in range(n):
                wraps[a, k] = math.floor(frac[a, k])
                frac[a, k] -= wraps[a, k]
        else:
            low[k] = np.inf
            high = -np.inf
            for a in range(n):
                frac[a, k] *= heights[k]
                low[k] = min(low[k], frac[a, k])
                high = max(high, frac[a, k])
            extent[k] = high - low[k]
    volume = 1.0
    for k in range(3):
        volume *= heights[k] if pbc[k] else max(extent[k], cutoff)
    target = cutoff if n / volume * cutoff**3 < _DENSE_BINS else 0.5 * cutoff
    counts = np.ones(3)
    while True:
        for k in range(3):
            span = heights[k] if pbc[k] else extent[k] + target
            counts[k] = max(1.0, math.floor(span / target))
        # Cap the bin count so memory and time stay linear in the number of atoms
        # (floats: a molecule spread over 1e9 Å must not overflow).
        if counts[0] * counts[1] * counts[2] <= 4.0 * n + 64.0:
            break
        target *= 2.0
    n_bins = np.empty(3, dtype=np.int64)
    widths = np.empty(3)
    for k in range(3):
        n_bins[k] = np.int64(counts[k])
        widths[k] = heights[k] / counts[k] if pbc[k] else target
    atom_bin = np.empty((n, 3), dtype=np.int64)
    for a in range(n):
        for k in range(3):
            x = frac[a, k] * n_bins[k] if pbc[k] else (frac[a, k] - low[k]) / widths[k]
            atom_bin[a, k] = min(max(math.floor(x), 0), n_bins[k] - 1)
    reach = np.empty(3, dtype=np.int64)
    radix = np.zeros(3, dtype=np.int64)
    steps = np.empty((3, 3))
    for k in range(3):
        reach[k] = np.int64(cutoff * (1.0 + _SLACK) / widths[k]) + 1
        if pbc[k]:
            radix[k] = (n_bins[k] - 1 + reach[k]) // n_bins[k] + 1
        for x in range(3):
            steps[k, x] = frame[k, x] * (widths[k] / heights[k])
    keep = _stencil(steps, widths, reach, cutoff * (1.0 + _SLACK))
    bin_start, bin_atoms = _sort_into_bins(atom_bin, n_bins)
    return wraps, n_bins, reach, keep, bin_start, bin_atoms, radix


@njit(cache=True, nogil=True)
def _stencil(steps, widths, reach, limit):
    """Bin offsets whose two bins may contain points closer than ``limit``.

    Points of bins ``b`` and ``b + d`` differ by ``t @ steps`` with
    ``t_k`` in ``(d_k - 1, d_k + 1)``. Two lower bounds on that distance:
    the slab bound ``(|d_k| - 1) w_k`` and the distance from the origin to the
    axis-aligned box enclosing the difference parallelepiped.
    """
    half = np.zeros(3)
    for k in range(3):
        for x in range(3):
            half[x] += abs(steps[k, x])
    keep = np.zeros((2 * reach[0] + 1, 2 * reach[1] + 1, 2 * reach[2] + 1), dtype=np.bool_)
    for d0 in range(-reach[0], reach[0] + 1):
        for d1 in range(-reach[1], reach[1] + 1):
            for d2 in range(-reach[2], reach[2] + 1):
                slab = max((abs(d0) - 1) * widths[0], (abs(d1) - 1) * widths[1], (abs(d2) - 1) * widths[2])
                box = 0.0
                for x in range(3):
                    centre = d0 * steps[0, x] + d1 * steps[1, x] + d2 * steps[2, x]
                    gap = max(0.0, abs(centre) - half[x])
                    box += gap * gap
                if slab < limit and math.sqrt(box) < limit:
                    keep[d0 + reach[0], d1 + reach[1], d2 + reach[2]] = True
    return keep


@njit(cache=True, nogil=True)
def _sort_into_bins(atom_bin, n_bins):
    n = atom_bin.shape[0]
    total = n_bins[0] * n_bins[1] * n_bins[2]
    bin_start = np.zeros(total + 1, dtype=np.int64)
    flat = np.empty(n, dtype=np.int64)
    for a in range(n):
        flat[a] = (atom_bin[a, 0] * n_bins[1] + atom_bin[a, 1]) * n_bins[2] + atom_bin[a, 2]
        bin_start[flat[a] + 1] += 1
    for b in range(total):
        bin_start[b + 1] += bin_start[b]
    cursor = np.empty(total, dtype=np.int64)
    cursor[:] = bin_start[:total]
    bin_atoms = np.empty(n, dtype=np.int64)
    for a in range(n):
        bin_atoms[cursor[flat[a]]] = a
        cursor[flat[a]] += 1
    return bin_start, bin_atoms


@njit(cache=True, nogil=True, inline="always")
def _vector(positions, cell, i, j, s0, s1, s2, out):
    """out = r_j + S @ cell - r_i (Å); returns its norm. The one place it is computed."""
    for x in range(3):
        translation = s0 * cell[0, x] + s1 * cell[1, x] + s2 * cell[2, x]
        out[x] = positions[j, x] + translation - positions[i, x]
    return math.sqrt(out[0] * out[0] + out[1] * out[1] + out[2] * out[2])


@njit(cache=True, nogil=True, inline="always")
def _distance(positions, cell, i, j, s0, s1, s2):
    """The norm :func:`_vector` returns, bit for bit, without writing the vector (no scratch array)."""
    total = 0.0
    for x in range(3):
        translation = s0 * cell[0, x] + s1 * cell[1, x] + s2 * cell[2, x]
        value = positions[j, x] + translation - positions[i, x]
        total += value * value
    return math.sqrt(total)


@njit(cache=True, nogil=True)
def _neighbour_bin(b, d, n_bin, periodic):
    """Bin index and wrap count of bin ``b + d``; index -1 when outside a non-periodic range."""
    q = b + d
    if periodic:
        wrap = q // n_bin
        return q - wrap * n_bin, wrap
    if q < 0 or q >= n_bin:
        return -1, 0
    return q, 0


@njit(cache=True, nogil=True)
def _cell_list_pass(positions, cell, pbc, cutoff, counts, keys, cursor, starts):
    """Every pair of one structure, as sort keys ``j * n_codes + code(w)``, in one of three modes.

    * count (``keys`` empty): ``counts[i] += 1`` per pair;
    * fill (``starts`` empty): ``keys[cursor[i]]``, ``cursor[i] += 1``;
    * record (``starts`` not empty): the pairs of each centre ``i`` are appended
      contiguously at ``cursor[0]`` (while ``keys`` has room), ``starts[i]`` and
      ``counts[i]`` delimit them; ``cursor[0]`` ends at the exact total, so an
      overflowing caller can retry once at that size.

    Home bins are visited in order and, within one, atom by atom over the
    stencil of neighbour bins prepared once per home bin (so a centre's pairs
    are found together).
    """
    wraps, n_bins, reach, keep, bin_start, bin_atoms, radix = _setup(
        positions, cell, pbc, cutoff
    )
    # Wrapped positions in bin order: the distance pre-check reads them contiguously.
    binned = np.empty((positions.shape[0], 3))
    for p in range(positions.shape[0]):
        a = bin_atoms[p]
        for x in range(3):
            binned[p, x] = positions[a, x] - (
                wraps[a, 0] * cell[0, x] + wraps[a, 1] * cell[1, x] + wraps[a, 2] * cell[2, x]
            )
    r1 = 2 * radix[1] + 1
    r2 = 2 * radix[2] + 1
    n_codes = _code_table(radix)[0]
    n_stencil = keep.size
    # Per neighbour bin of the current home bin: atom range, wrap, translation, code.
    ranges = np.empty((n_stencil, 2), dtype=np.int64)
    wrap = np.empty((n_stencil, 3), dtype=np.int64)
    translation = np.empty((n_stencil, 3))
    code = np.empty(n_stencil, dtype=np.int64)
    limit2 = cutoff * cutoff * (1.0 + _SLACK)
    record = starts.size > 0
    for b0 in range(n_bins[0]):
        for b1 in range(n_bins[1]):
            for b2 in range(n_bins[2]):
                home = (b0 * n_bins[1] + b1) * n_bins[2] + b2
                if bin_start[home] == bin_start[home + 1]:
                    continue
                m = 0
                for d0 in range(-reach[0], reach[0] + 1):
                    c0, w0 = _neighbour_bin(b0, d0, n_bins[0], pbc[0])
                    if c0 < 0:
                        continue
                    for d1 in range(-reach[1], reach[1] + 1):
                        c1, w1 = _neighbour_bin(b1, d1, n_bins[1], pbc[1])
                        if c1 < 0:
                            continue
                        for d2 in range(-reach[2], reach[2] + 1):
                            c2, w2 = _neighbour_bin(b2, d2, n_bins[2], pbc[2])
                            if c2 < 0 or not keep[d0 + reach[0], d1 + reach[1], d2 + reach[2]]:
                                continue
                            other = (c0 * n_bins[1] + c1) * n_bins[2] + c2
                            if bin_start[other] == bin_start[other + 1]:
                                continue
                            ranges[m, 0] = bin_start[other]
                            ranges[m, 1] = bin_start[other + 1]
                            wrap[m, 0] = w0
                            wrap[m, 1] = w1
                            wrap[m, 2] = w2
                            for x in range(3):
                                translation[m, x] = w0 * cell[0, x] + w1 * cell[1, x] + w2 * cell[2, x]
                            code[m] = ((w0 + radix[0]) * r1 + (w1 + radix[1])) * r2 + (w2 + radix[2])
                            m += 1
                for p in range(bin_start[home], bin_start[home + 1]):
                    i = bin_atoms[p]
                    if record:
                        starts[i] = cursor[0]
                    for e in range(m):
                        _atom_bin_pair(positions, cell, cutoff, limit2, binned, bin_atoms, wraps, p, i,
                                       ranges[e, 0], ranges[e, 1], wrap[e, 0], wrap[e, 1], wrap[e, 2],
                                       translation[e], code[e], n_codes, counts, keys, cursor, record)
                    if record:
                        counts[i] = cursor[0] - starts[i]
    return wraps, radix


@njit(cache=True, nogil=True, inline="always")
def _atom_bin_pair(positions, cell, cutoff, limit2, binned, bin_atoms, wraps, p, i, lo_j, hi_j,
                   w0, w1, w2, translation, code, n_codes, counts, keys, cursor, record):
    """Pairs of atom ``i`` (bin slot ``p``) with one neighbour bin translated by ``w @ cell``.

    A cheap pre-check on wrapped positions, then the exact test on the raw
    positions, so the kept pairs are exactly those with ``_vector(...) < cutoff``.
    """
    x0 = binned[p, 0] - translation[0]
    x1 = binned[p, 1] - translation[1]
    x2 = binned[p, 2] - translation[2]
    for q in range(lo_j, hi_j):
        dx = binned[q, 0] - x0
        dy = binned[q, 1] - x1
        dz = binned[q, 2] - x2
        if dx * dx + dy * dy + dz * dz >= limit2:
            continue
        j = bin_atoms[q]
        if i == j and w0 == 0 and w1 == 0 and w2 == 0:
            continue
        s0 = w0 + wraps[i, 0] - wraps[j, 0]
        s1 = w1 + wraps[i, 1] - wraps[j, 1]
        s2 = w2 + wraps[i, 2] - wraps[j, 2]
        if _distance(positions, cell, i, j, s0, s1, s2) < cutoff:
            if record:
                n = cursor[0]
                if n < keys.size:
                    keys[n] = j * n_codes + code
                cursor[0] = n + 1
            elif keys.size > 0:
                keys[cursor[i]] = j * n_codes + code
                cursor[i] += 1
            else:
                counts[i] += 1


# Blocks up to this long are insertion-sorted, longer ones Shell-sorted (a centre with thousands of neighbours).
_INSERTION_MAX = 96


@njit(cache=True, nogil=True)
def _sort_small(values):
    """In-place ascending sort of one centre's keys.

    They arrive as a concatenation of ascending runs, one per stencil bin, so plain insertion sort (work =
    the inversions) beats a Shell sort on the usual block lengths: all centres of a 12,288-atom water box at
    5 Å (~55 keys each) take 7.0 ms against 12.3 ms. Long blocks fall back to Shell sort (Ciura gaps), which
    bounds the worst case.
    """
    n = values.size
    if n > _INSERTION_MAX:
        for gap in (100894, 44842, 19930, 8858, 3937, 1750, 701, 301, 132, 57, 23, 10, 4):
            _gapped_insertion(values, gap)
    _gapped_insertion(values, 1)


@njit(cache=True, nogil=True, inline="always")
def _gapped_insertion(values, gap):
    """One insertion-sort pass over the elements ``gap`` apart (gap 1: plain insertion sort)."""
    for a in range(gap, values.size):
        v = values[a]
        b = a
        while b >= gap and values[b - gap] > v:
            values[b] = values[b - gap]
            b -= gap
        values[b] = v


@njit(cache=True, nogil=True)
def _code_table(radix):
    """Sort keys are ``j * n_codes + code``, ``n_codes`` a power of two (decoded by shift and mask);
    returns ``(n_codes, bits, wraps of every code (n_codes, 3))``."""
    r0 = 2 * radix[0] + 1
    r1 = 2 * radix[1] + 1
    r2 = 2 * radix[2] + 1
    bits = 0
    while (1 << bits) < r0 * r1 * r2:
        bits += 1
    table = np.zeros((1 << bits, 3), dtype=np.int64)
    for a in range(r0):
        for b in range(r1):
            for c in range(r2):
                code = (a * r1 + b) * r2 + c
                table[code, 0] = a - radix[0]
                table[code, 1] = b - radix[1]
                table[code, 2] = c - radix[2]
    return 1 << bits, bits, table


@njit(cache=True, nogil=True)
def _decode_pairs(positions, cell, start, pair_offsets, keys, key_starts, wraps, radix,
                  neighbour, shifts, vectors, distances):
    """Sort each center's keys (centre ``i``'s block starts at ``keys[key_starts[i]]``) in place and write
    them as (j, S, vector, distance) at ``pair_offsets[start + i]``."""
    n_codes, bits, table = _code_table(radix)
    mask = n_codes - 1
    for i in range(positions.shape[0]):
        lo = pair_offsets[start + i]
        hi = pair_offsets[start + i + 1]
        source = key_starts[i] - lo
        _sort_small(keys[lo + source:hi + source])
        for p in range(lo, hi):
            j = keys[p + source] >> bits
            code = keys[p + source] & mask
            s0 = table[code, 0] + wraps[i, 0] - wraps[j, 0]
            s1 = table[code, 1] + wraps[i, 1] - wraps[j, 1]
            s2 = table[code, 2] + wraps[i, 2] - wraps[j, 2]
            distances[p] = _vector(positions, cell, i, j, s0, s1, s2, vectors[p])
            neighbour[p] = start + j
            shifts[p, 0] = s0
            shifts[p, 1] = s1
            shifts[p, 2] = s2


@njit(cache=True, nogil=True)
def _all_pairs(positions, cell, cutoff, start, counts, lo, neighbour, shifts, vectors, distances):
    """Non-periodic small structure: check every pair, already in (i, j) order."""
    n = positions.shape[0]
    fill = neighbour.size > 0
    vec = np.empty(3)
    p = lo
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            d = _vector(positions, cell, i, j, 0, 0, 0, vec)
            if d < cutoff:
                if fill:
                    neighbour[p] = start + j
                    for x in range(3):
                        shifts[p, x] = 0
                        vectors[p, x] = vec[x]
                    distances[p] = d
                    p += 1
                else:
                    counts[i] += 1


@njit(cache=True, nogil=True, parallel=True)
def count_pairs(positions, cells, pbc, offsets, cutoff, counts):
    """Fill ``counts`` (n_atoms,) int64, zeroed, with the pairs of each center."""
    empty_i = np.empty(0, dtype=np.int64)
    empty_s = np.empty((0, 3), dtype=np.int64)
    empty_v = np.empty((0, 3))
    empty_d = np.empty(0)
    for s in prange(offsets.size - 1):
        a, b = offsets[s], offsets[s + 1]
        if b - a == 0:
            continue
        if not (pbc[s, 0] or pbc[s, 1] or pbc[s, 2]) and b - a <= _BRUTE_FORCE_MAX_ATOMS:
            _all_pairs(positions[a:b], cells[s], cutoff, a, counts[a:b], 0,
                       empty_i, empty_s, empty_v, empty_d)
        else:
            _cell_list_pass(positions[a:b], cells[s], pbc[s], cutoff, counts[a:b], empty_i, empty_i, empty_i)


@njit(cache=True, nogil=True, parallel=True)
def fill_pairs(positions, cells, pbc, offsets, cutoff, pair_offsets, keys,
               neighbour, shifts, vectors, distances):
    """Write every pair at ``pair_offsets`` (from :func:`count_pairs`), sorted by (j, S) per center.

    ``keys`` (n_pairs,) int64 is scratch space.
    """
    empty_i = np.empty(0, dtype=np.int64)
    for s in prange(offsets.size - 1):
        a, b = offsets[s], offsets[s + 1]
        if b - a == 0:
            continue
        if not (pbc[s, 0] or pbc[s, 1] or pbc[s, 2]) and b - a <= _BRUTE_FORCE_MAX_ATOMS:
            _all_pairs(positions[a:b], cells[s], cutoff, a, empty_i, pair_offsets[a],
                       neighbour, shifts, vectors, distances)
        else:
            cursor = pair_offsets[a:b].copy()
            wraps, radix = _cell_list_pass(positions[a:b], cells[s], pbc[s], cutoff,
                                           empty_i, keys, cursor, empty_i)
            _decode_pairs(positions[a:b], cells[s], a, pair_offsets, keys, pair_offsets[a:b], wraps, radix,
                          neighbour, shifts, vectors, distances)


@njit(cache=True, nogil=True)
def moved_pairs(positions, cells, atom_structure, center, neighbour, shifts, vectors, distances):
    """``vectors[p] = r_j + S_p @ cell - r_i`` and its norm at new positions, for stored pairs (a Verlet list).

    Through :func:`_vector`, the same operations in the same order as a fresh search: a kept list and a new
    one give bit-identical vectors, so an MD run resumed with a fresh list repeats an uninterrupted one.
    """
    for p in range(center.shape[0]):
        distances[p] = _vector(positions, cells[atom_structure[center[p]]], center[p], neighbour[p],
                               shifts[p, 0], shifts[p, 1], shifts[p, 2], vectors[p])


@njit(cache=True, nogil=True)
def record_pairs(positions, cell, pbc, cutoff, keys, starts, counts, length):
    """One cell-list pass over one structure in record mode (see :func:`_cell_list_pass`).

    Returns ``(wraps, radix)`` for :func:`decode_recorded`; ``length[0]`` is the
    number of pairs (more than ``keys.size`` means the buffer was too small).
    """
    length[0] = 0
    return _cell_list_pass(positions, cell, pbc, cutoff, counts, keys, length, starts)


@njit(cache=True, nogil=True)
def decode_recorded(positions, cell, keys, starts, counts, wraps, radix, pair_offsets,
                    neighbour, shifts, vectors, distances):
    """Pair offsets from the counts, then :func:`_decode_pairs` reading each centre's block of keys where the
    pass recorded it (``starts``): no copy of the keys into index order."""
    n = positions.shape[0]
    pair_offsets[0] = 0
    for i in range(n):
        pair_offsets[i + 1] = pair_offsets[i] + counts[i]
    _decode_pairs(positions, cell, 0, pair_offsets, keys, starts, wraps, radix, neighbour, shifts, vectors, distances)
