"""Jitted assembly of equivariant (λ-SOAP) kernel blocks (private).

The atom-pair products ``Σ_f XA[a, μ, f] XB[b, ν, f]`` come from one BLAS
product in :mod:`kernelpot.kernels.equivariant`; these kernels multiply each
``(2λ+1)²`` block by the scalar kernel to the power ``ζ - 1`` and add it to
its output rows (a structure, or an atom for local kernels). Outputs are
allocated by the caller; the outer ``prange`` runs over output row groups,
so no two threads write the same output row.
"""

from __future__ import annotations

from numba import njit, prange


@njit(cache=True, nogil=True, inline="always")
def _integer_power(x, p):
    result = 1.0
    for _ in range(p):
        result *= x
    return result


@njit(cache=True, nogil=True, parallel=True)
def accumulate_blocks(G, k0, power, segment_start, segment_row, col_row, col_position,
                      first_position, triangular, out):
    """Add ``G[a, :, b, :] * k0[a, b]**power`` to ``out[row(a), :, col_row[b], :]``.

    Parameters
    ----------
    G : (n_a, L, n_b, L) float64
        Atom-pair products of a chunk of A atoms (rows) with B atoms (columns).
    k0 : (n_a, n_b) float64
        Normalised scalar kernel of the same pairs (ignored when ``power == 0``).
    power : int
        ``ζ - 1``.
    segment_start : (n_segments + 1,) int64
        Chunk rows grouped by output row: rows ``segment_start[s]:segment_start[s+1]``
        all go to output row ``segment_row[s]`` (so threads never collide).
    segment_row : (n_segments,) int64
    col_row : (n_b,) int64
        Output column of each B atom.
    col_position : (n_b,) int64
        Position of each B atom in the common ordering (only for ``triangular``).
    first_position : int
        Position of the chunk's first row in that ordering (only for ``triangular``).
    triangular : bool
        A and B are the same atoms: keep pairs with position(b) > position(a)
        at weight 1 and the pair (a, a) at weight 1/2; the caller adds the
        transpose, which restores every pair exactly once.
    out : (n_rows_out, L, n_cols_out, L) float64
        Accumulated in place.
    """
    n_l = G.shape[1]
    for s in prange(segment_start.shape[0] - 1):
        r = segment_row[s]
        for a in range(segment_start[s], segment_start[s + 1]):
            for b in range(G.shape[2]):
                weight = 1.0
                if triangular:
                    delta = col_position[b] - (first_position + a)
                    if delta < 0:
                        continue
                    if delta == 0:
                        weight = 0.5
                if power > 0:
                    weight *= _integer_power(k0[a, b], power)
                if weight == 0.0:
                    continue
                c = col_row[b]
                for mu in range(n_l):
                    for nu in range(n_l):
                        out[r, mu, c, nu] += weight * G[a, mu, b, nu]


@njit(cache=True, nogil=True, parallel=True)
def diagonal_blocks(X, S, power, offsets, centers, same_species, out):
    """``out[s] = Σ_{a, b ∈ s} (X[a] X[b]^T) k0(a, b)^power`` for every structure ``s``.

    Parameters
    ----------
    X : (n_atoms, L, F) float64
        λ features.
    S : (n_atoms, F0) float64
        Scalar features with unit (or zero) norm rows; unused when ``power == 0``.
    power : int
        ``ζ - 1``.
    offsets : (n_structures + 1,) int64
        Rows of structure ``s`` are ``offsets[s]:offsets[s+1]`` (one atom each
        for the local form).
    centers : (n_atoms,) int64
        Species of each atom (only read when ``same_species``).
    same_species : bool
        Only pairs of atoms of the same species contribute.
    out : (n_structures, L, L) float64
        Overwritten.
    """
    n_l = X.shape[1]
    n_f = X.shape[2]
    n_f0 = S.shape[1]
    for s in prange(offsets.shape[0] - 1):
        for mu in range(n_l):
            for nu in range(n_l):
                out[s, mu, nu] = 0.0
        for a in range(offsets[s], offsets[s + 1]):
            for b in range(offsets[s], offsets[s + 1]):
                if same_species and centers[a] != centers[b]:
                    continue
                weight = 1.0
                if power > 0:
                    k0 = 0.0
                    for g in range(n_f0):
                        k0 += S[a, g] * S[b, g]
                    weight = _integer_power(k0, power)
                if weight == 0.0:
                    continue
                for mu in range(n_l):
                    for nu in range(n_l):
                        dot = 0.0
                        for f in range(n_f):
                            dot += X[a, mu, f] * X[b, nu, f]
                        out[s, mu, nu] += weight * dot
