"""Jitted SOAP power-spectrum kernels: values and sparse analytic position gradients.

Feature layout (dscribe 2.1's, ``compression="off"``): for each species pair
``a <= b`` (indices into the sorted species), then ``l = 0..l_max``, then
``n, n'`` with ``n' >= n`` when ``a == b`` and all ``n, n'`` otherwise::

    p[a, b, l, n, n'] = κ_l Σ_m c[a, n, lm] c[b, n', lm],   κ_l = π sqrt(8 / (2l + 1))

``block_offsets[a, b]`` (a <= b) is the first feature of the species-pair
block; within it ``l`` blocks have ``n_max (n_max + 1) / 2`` (a == b) or
``n_max²`` (a != b) features.

Gradient with respect to a neighbour j of species s (centre fixed), per pair
image: only blocks containing s change. With ``D = ∂c[s]/∂r_j`` (one image:
``D[x, n, lm] = ρ_ln ∂_x S_lm + ρ'_ln r_x S_lm``),
``M_b[x, n, n'] = Σ_m D[x, n, lm] c[b, n', lm]`` factorises as
``ρ_ln u_b[x, n'] + ρ'_ln r_x v_b[n']`` with ``u_b[x, n'] = Σ_m ∂_x S_lm c[b, n', lm]``
and ``v_b[n'] = Σ_m S_lm c[b, n', lm]``, so a pair costs O(n_max² (l_max+1))
per species instead of forming D. Then ``∂p[s, s] = κ (M_s + M_sᵀ)``,
``∂p[s, b>s] = κ M_b`` and ``∂p[b<s, s] = κ M_bᵀ``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, uint64

from ..symmetry.harmonics import harmonic_prefactors
from ._expansion import _accumulate, center_expansion, make_workspace, runtime_flag

__all__ = ["feature_block_offsets", "power_spectrum_row", "power_spectrum_kernel", "soap_gradients_kernel"]

_TILE = 32  # pairs per block of contractions (w: n_species x 448 x 32 doubles for n_max 8, l_max 6)


def feature_block_offsets(n_species: int, n_max: int, l_max: int) -> tuple[np.ndarray, int]:
    """First feature of each species-pair block, (n_species, n_species) int64 (symmetric), and the total."""
    offsets = np.zeros((n_species, n_species), dtype=np.int64)
    start = 0
    for a in range(n_species):
        for b in range(a, n_species):
            offsets[a, b] = offsets[b, a] = start
            per_l = n_max * (n_max + 1) // 2 if a == b else n_max * n_max
            start += per_l * (l_max + 1)
    return offsets, start


@njit(cache=True, nogil=True)
def power_spectrum_row(c, n_max, l_max, out):
    """Power spectrum of one centre from transposed coefficients ``c[Z, lm, n]``."""
    n_species = c.shape[0]
    products = np.empty((n_max, n_max))
    f = 0
    for a in range(n_species):
        for b in range(a, n_species):
            for l in range(l_max + 1):
                kappa = math.pi * math.sqrt(8.0 / (2 * l + 1))
                products[:, :] = 0.0
                for lm in range(l * l, (l + 1) * (l + 1)):
                    ca = c[a, lm]
                    cb = c[b, lm]
                    for n in range(n_max):
                        value = ca[n]
                        row = products[n]
                        for n2 in range(n_max):
                            row[n2] += value * cb[n2]
                for n in range(n_max):
                    for n2 in range(n if a == b else 0, n_max):
                        out[f] = kappa * products[n, n2]
                        f += 1


@njit(cache=True, nogil=True)
def power_spectrum_kernel(
    first, last, vectors, pair_offsets, pair_species, center_species,
    kind, eta, table_a, table_b, spline, inv_spacing, self_density, r_cut, transition_width,
    l_max, n_max, n_species, out,
):
    """SOAP features ``out[first:last]`` (arguments as :func:`soap_gradients_kernel`)."""
    prefactors = harmonic_prefactors(l_max)
    workspace = make_workspace(first, last, pair_offsets, l_max, n_max, n_species, runtime_flag(False))
    for i in range(first, last):
        c = center_expansion(
            i, vectors, pair_offsets, pair_species, center_species,
            kind, eta, table_a, table_b, spline, inv_spacing, self_density, r_cut, transition_width,
            l_max, n_max, n_species, prefactors, runtime_flag(False), workspace,
        )[0]
        power_spectrum_row(c, n_max, l_max, out[i])


@njit(cache=True, nogil=True)
def _pair_contractions(c, harmonics, grad, k0, n_pairs, n_max, l_max, w):
    """``w[b, (4l + q) n_max + n', k] = Σ_m A_q[lm, k0 + k] c[b, lm, n']`` for a tile of pairs.

    ``A_0 = S_lm`` (gives ``v_b``), ``A_1..3 = ∂_x S_lm`` (gives ``u_b[x]``).
    Pairs are the innermost, contiguous axis: the loops vectorise over a
    whole tile instead of over ``n_max`` (too short on its own).
    """
    # Unsigned indices throughout the hot code: numba then emits no
    # negative-index wraparound, which otherwise blocks vectorisation.
    P = uint64(n_pairs)
    N = uint64(n_max)
    K0 = uint64(k0)
    for b in range(uint64(c.shape[0])):
        for l in range(uint64(l_max + 1)):
            for n2 in range(N):
                r0 = l * uint64(4) * N + n2
                r1 = r0 + N
                r2 = r1 + N
                r3 = r2 + N
                for k in range(P):
                    w[b, r0, k] = 0.0
                    w[b, r1, k] = 0.0
                    w[b, r2, k] = 0.0
                    w[b, r3, k] = 0.0
                for lm in range(l * l, (l + uint64(1)) * (l + uint64(1))):
                    cv = c[b, lm, n2]
                    for k in range(P):
                        w[b, r0, k] += harmonics[lm, K0 + k] * cv
                        w[b, r1, k] += grad[0, lm, K0 + k] * cv
                        w[b, r2, k] += grad[1, lm, K0 + k] * cv
                        w[b, r3, k] += grad[2, lm, K0 + k] * cv


@njit(cache=True, nogil=True, inline="always")
def _scratch_slots(n_max):
    """``(N, U_y, U_z, V, R, D)``: n_max and the offsets of a pair's scratch slots (2 n_max each).

    Slots in order: κ u_x (offset 0), κ u_y, κ u_z, κ v, ρ_l, ρ'_l; written by
    :func:`_gather_pair`, read by :func:`_write_same` and :func:`_write_other`.
    """
    N = uint64(n_max)
    S = N + N
    return N, S, S + S, uint64(3) * S, uint64(4) * S, uint64(5) * S


@njit(cache=True, nogil=True)
def _gather_pair(w, b, l, kw, rho_k, drho_k, kappa, n_max, scratch):
    """Copy one pair's ``κ u_b[x]``, ``κ v_b``, ``ρ_l``, ``ρ'_l`` into ``scratch`` (6 slots of 2 n_max).

    The upper half of every slot stays zero (``scratch`` starts zeroed):
    the triangular writer reads up to 2 n_max entries past a row start.
    """
    N, U1, U2, V, R, D = _scratch_slots(n_max)
    kt = uint64(kw)
    kap = kappa[l]
    wb = uint64(l) * uint64(4) * N
    lo = uint64(l) * N
    for n2 in range(N):
        scratch[n2] = kap * w[b, wb + N + n2, kt]
        scratch[U1 + n2] = kap * w[b, wb + N + N + n2, kt]
        scratch[U2 + n2] = kap * w[b, wb + uint64(3) * N + n2, kt]
        scratch[V + n2] = kap * w[b, wb + n2, kt]
        scratch[R + n2] = rho_k[lo + n2]
        scratch[D + n2] = drho_k[lo + n2]


@njit(cache=True, nogil=True)
def _write_same(scratch, d, n_max, tri, g, r, o0, F):
    """Block (s, s) of one l: ``κ (M + Mᵀ)`` on n' >= n, for x, y, z at once (rows o0, o0 + F, o0 + 2F)."""
    N, U1, U2, V, R, D = _scratch_slots(n_max)
    d0, d1, d2 = d[0], d[1], d[2]
    o1 = o0 + F
    o2 = o1 + F
    end = o0 + tri
    for n in range(N):
        rn = scratch[R + n]
        dn = scratch[D + n]
        dn0, dn1, dn2 = dn * d0, dn * d1, dn * d2
        un0, un1, un2 = scratch[n], scratch[U1 + n], scratch[U2 + n]
        vn = scratch[V + n]
        vn0, vn1, vn2 = vn * d0, vn * d1, vn * d2
        # A full-width row while it stays inside this block: the entries past
        # the row's end are zeros (padding) that the next rows overwrite, and
        # a fixed trip count vectorises where n_max - n would not.
        width = N if o0 + N <= end else N - n
        for j in range(width):
            a = n + j
            ra, da, va = scratch[R + a], scratch[D + a], scratch[V + a]
            g[r, o0 + j] = rn * scratch[a] + dn0 * va + ra * un0 + da * vn0
            g[r, o1 + j] = rn * scratch[U1 + a] + dn1 * va + ra * un1 + da * vn1
            g[r, o2 + j] = rn * scratch[U2 + a] + dn2 * va + ra * un2 + da * vn2
        o0 += N - n
        o1 += N - n
        o2 += N - n


@njit(cache=True, nogil=True)
def _write_other(scratch, d, n_max, upper, g, r, o0, F):
    """Block (s, b != s) of one l: ``κ M`` (s < b, ``upper``) or ``κ Mᵀ`` (s > b), for x, y, z at once."""
    N, U1, U2, V, R, D = _scratch_slots(n_max)
    d0, d1, d2 = d[0], d[1], d[2]
    o1 = o0 + F
    o2 = o1 + F
    for n in range(N):
        if upper:
            rn = scratch[R + n]
            dn = scratch[D + n]
            dn0, dn1, dn2 = dn * d0, dn * d1, dn * d2
            for j in range(N):
                va = scratch[V + j]
                g[r, o0 + j] = rn * scratch[j] + dn0 * va
                g[r, o1 + j] = rn * scratch[U1 + j] + dn1 * va
                g[r, o2 + j] = rn * scratch[U2 + j] + dn2 * va
        else:
            un0, un1, un2 = scratch[n], scratch[U1 + n], scratch[U2 + n]
            vn = scratch[V + n]
            vn0, vn1, vn2 = vn * d0, vn * d1, vn * d2
            for j in range(N):
                ra, da = scratch[R + j], scratch[D + j]
                g[r, o0 + j] = ra * un0 + da * vn0
                g[r, o1 + j] = ra * un1 + da * vn1
                g[r, o2 + j] = ra * un2 + da * vn2
        o0 += N
        o1 += N
        o2 += N


@njit(cache=True, nogil=True)
def _pair_row(s, kw, d, rho_k, drho_k, w, kappa, block_offsets, n_max, l_max, scratch, g, row):
    """Write ∂p/∂r_j of one neighbour image (species s, vector d) into ``g[row]`` (3 n_features, flat).

    Only the blocks (s, b) are written, each entry once (assignment, no
    read): the others stay zero.
    """
    N = uint64(n_max)
    F = uint64(g.shape[1] // 3)
    r = uint64(row)
    tri = uint64(n_max * (n_max + 1) // 2)
    for b in range(block_offsets.shape[0]):
        block = uint64(block_offsets[s, b])
        per_l = tri if b == s else N * N
        for l in range(l_max + 1):
            _gather_pair(w, uint64(b), l, kw, rho_k, drho_k, kappa, n_max, scratch)
            o0 = block + uint64(l) * per_l
            if b == s:
                _write_same(scratch, d, n_max, tri, g, r, o0, F)
            else:
                _write_other(scratch, d, n_max, s < b, g, r, o0, F)


@njit(cache=True, nogil=True)
def _summed_derivatives(harmonics, grad, rho, drho, coordinates, species_start, l_max, n_max, weighted, out):
    """``out[x, s, lm, n] = Σ_{j ∈ s} ∂c[s, lm, n]/∂r_j``: the coefficient derivatives of all pairs, per species.

    ``∂c/∂r_j = ρ_ln ∂_x S_lm + ρ'_ln r_x S_lm``, summed over the columns of
    each species with the same blocked sums as the coefficients;
    ``weighted`` is scratch of the shape of ``harmonics``.
    """
    out[:] = 0.0
    n_pairs = harmonics.shape[1]
    for x in range(3):
        position = coordinates[x]
        for lm in range(harmonics.shape[0]):
            for k in range(n_pairs):
                weighted[lm, k] = harmonics[lm, k] * position[k]
        for s in range(out.shape[1]):
            first, last = species_start[s], species_start[s + 1]
            _accumulate(grad[x], rho, first, last, l_max, n_max, out[x, s])
            _accumulate(weighted, drho, first, last, l_max, n_max, out[x, s])


@njit(cache=True, nogil=True)
def _self_gradient(c, summed, n_max, l_max, target):
    """Self row ``target`` (3, n_features): ``-Σ_j ∂p/∂r_j``, bilinear in ``c`` and the summed derivatives."""
    n_species = c.shape[0]
    products = np.empty((n_max, n_max))
    for x in range(3):
        out = target[x]
        dc = summed[x]
        f = 0
        for a in range(n_species):
            for b in range(a, n_species):
                for l in range(l_max + 1):
                    kappa = math.pi * math.sqrt(8.0 / (2 * l + 1))
                    products[:, :] = 0.0
                    for lm in range(l * l, (l + 1) * (l + 1)):
                        ca, cb, da, db = c[a, lm], c[b, lm], dc[a, lm], dc[b, lm]
                        for n in range(n_max):
                            row = products[n]
                            left, right = da[n], ca[n]
                            for n2 in range(n_max):
                                row[n2] += left * cb[n2] + right * db[n2]
                    for n in range(n_max):
                        for n2 in range(n if a == b else 0, n_max):
                            out[f] = -kappa * products[n, n2]
                            f += 1


@njit(cache=True, nogil=True)
def soap_gradients_kernel(
    first, last, vectors, pair_offsets, pair_species, center_species, pair_rows, self_rows,
    kind, eta, table_a, table_b, spline, inv_spacing, self_density, r_cut, transition_width,
    l_max, n_max, block_offsets, features, gradients,
):
    """SOAP features and sparse position gradients of centres ``first..last-1``.

    Parameters
    ----------
    first, last : int
        Range of centres (rows of ``features``) to compute.
    vectors : (n_pairs, 3) float64
        Neighbour-image vectors r_j + S·cell - r_i (Å), sorted by centre.
    pair_offsets : (n_centers + 1,) int64
    pair_species, center_species : int64
        Species index of each pair's neighbour and of each centre.
    pair_rows : (n_pairs,) int64
        Row of ``gradients`` that the image's derivative is added to.
    self_rows : (n_centers,) int64
        Row of each centre's self term (total derivative, −Σ other rows),
        written, not added to.
    kind, eta, table_a, table_b, spline, inv_spacing, self_density
        Radial basis (:class:`._radial.RadialBasis`); ``self_density`` is
        already scaled by the central weight.
    r_cut, transition_width : float
        GAP cosine cutoff of the neighbour weights (Å); width 0 = unweighted.
    block_offsets : (n_species, n_species) int64
    features : (n_centers, n_features) float64, output
    gradients : (n_rows, 3, n_features) float64, output, zero on entry

    Each pair's derivative is written straight into its row, each entry
    once (no per-pair buffer; the fresh output pages cost about as much as
    the arithmetic), from contractions computed per tile of pairs
    (:func:`_pair_contractions`); the self row is computed from the summed
    coefficient derivatives, not by accumulating the pair rows.
    """
    prefactors = harmonic_prefactors(l_max)
    n_species = block_offsets.shape[0]
    workspace = make_workspace(first, last, pair_offsets, l_max, n_max, n_species, runtime_flag(True))
    n_lm = (l_max + 1) ** 2
    weighted = np.empty(workspace[2].shape[0])
    summed = np.empty((3, n_species, n_lm, n_max))
    max_pairs = weighted.shape[0] // n_lm
    order = np.empty(max_pairs, dtype=np.int64)
    w = np.empty((n_species, (l_max + 1) * 4 * n_max, _TILE))
    scratch = np.zeros(12 * n_max)
    kappa = np.empty(l_max + 1)
    for l in range(l_max + 1):
        kappa[l] = math.pi * math.sqrt(8.0 / (2 * l + 1))
    # Rows as flat (3 n_features) vectors: one index per entry.
    g = gradients.reshape((gradients.shape[0], gradients.shape[1] * gradients.shape[2]))
    for i in range(first, last):
        c, harmonics, grad, rho, drho, position = center_expansion(
            i, vectors, pair_offsets, pair_species, center_species,
            kind, eta, table_a, table_b, spline, inv_spacing, self_density, r_cut, transition_width,
            l_max, n_max, n_species, prefactors, runtime_flag(True), workspace,
        )
        power_spectrum_row(c, n_max, l_max, features[i])
        start = pair_offsets[i]
        n_pairs = pair_offsets[i + 1] - start
        coordinates = workspace[0][: 4 * n_pairs].reshape((4, n_pairs))
        _summed_derivatives(
            harmonics, grad, rho, drho, coordinates, workspace[10], l_max, n_max,
            weighted[: n_lm * n_pairs].reshape((n_lm, n_pairs)), summed,
        )
        _self_gradient(c, summed, n_max, l_max, gradients[self_rows[i]])
        for p in range(n_pairs):
            order[position[p]] = p
        # Tiles of pairs keep the contractions w in L2 next to the rows being written.
        for k0 in range(0, n_pairs, _TILE):
            k1 = min(k0 + _TILE, n_pairs)
            _pair_contractions(c, harmonics, grad, k0, k1 - k0, n_max, l_max, w)
            for k in range(k0, k1):
                pair = start + order[k]
                _pair_row(
                    pair_species[pair], k - k0, vectors[pair], rho[k], drho[k], w, kappa,
                    block_offsets, n_max, l_max, scratch, g, pair_rows[pair],
                )
