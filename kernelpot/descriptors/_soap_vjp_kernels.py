"""Reverse mode through the SOAP power spectrum: from ``∂E/∂p`` to ``∂E/∂r``, never forming ``∂p/∂r``.

Given the adjoint of one centre's features, ``a_f = ∂E/∂p_f`` (feature
order of :mod:`._soap_kernels`, any GAP weighting already folded in), the
power spectrum ``p[a, b, l, n, n'] = κ_l Σ_m c[a, n, lm] c[b, n', lm]`` is
bilinear in the density coefficients, so

    ∂E/∂c[α, lm] = Σ_β S_l[α, β] c[β, lm],      α = (species, n),

with the symmetric channel matrix ``S_l`` holding ``κ_l a_f`` at both
``(α, β)`` and ``(β, α)`` of every stored feature, and ``2 κ_l a_f`` on the
diagonal (``p`` is quadratic there). A neighbour image ``j`` of species
``s`` only moves the coefficients of ``s``:
``∂c[s, n, lm]/∂r_j = ρ_ln ∇S_lm + ρ'_ln r_j S_lm`` (:mod:`._radial`), so

    ∂E_i/∂r_j = Σ_lm t_lm ∇S_lm(r_j) + r_j Σ_lm t'_lm S_lm(r_j),
    t_lm = Σ_n ∂E/∂c[s, n, lm] ρ_ln(r_j),   t'_lm = Σ_n ∂E/∂c[s, n, lm] ρ'_ln(r_j).

Per centre that costs ``(S n_max)² (l_max+1)²`` for the channel matrices
and ``~2 n_max (l_max+1)²`` per pair, independent of the number of species
pairs, against ``3 n_features`` per pair for the explicit gradient rows
(:func:`._soap_kernels.soap_gradients_kernel`). The centre's own Gaussian
does not move relative to the centre, and the centre moves with every
neighbour vector: ``∂E_i/∂r_i = -Σ_j ∂E_i/∂r_j`` (added by the caller).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, uint64

from ..symmetry.harmonics import harmonic_prefactors
from ._expansion import center_expansion, make_workspace, runtime_flag

__all__ = ["soap_vjp_kernel"]


@njit(cache=True, nogil=True)
def _channel_matrices(adjoint, kappa, n_species, n_max, l_max, out):
    """``out[l]`` = the symmetric (S n_max)² matrix ``S_l`` of one centre's feature adjoint (module docstring)."""
    f = 0
    out[:] = 0.0
    for a in range(n_species):
        for b in range(a, n_species):
            for l in range(l_max + 1):
                k = kappa[l]
                block = out[l]
                for n in range(n_max):
                    row = a * n_max + n
                    for n2 in range(n if a == b else 0, n_max):
                        col = b * n_max + n2
                        value = k * adjoint[f]
                        f += 1
                        if row == col:
                            block[row, row] += 2.0 * value
                        else:
                            block[row, col] += value
                            block[col, row] += value


@njit(cache=True, nogil=True)
def _coefficient_adjoint(channels, c, n_species, n_max, l_max, scratch, out):
    """``out[a, lm, n] = Σ_{b, n'} S_l[(a, n), (b, n')] c[b, lm, n']`` (c in the transposed layout ``c[b, lm, n]``).

    ``S_l`` is symmetric, so row ``(b, n')`` is read contiguously and the
    innermost loop runs over all channels ``(a, n)`` at once (``scratch``).
    """
    n_channels = n_species * n_max
    for l in range(l_max + 1):
        block = channels[l]
        for lm in range(l * l, (l + 1) * (l + 1)):
            scratch[:] = 0.0
            for b in range(n_species):
                for n2 in range(n_max):
                    value = c[b, lm, n2]
                    row = block[b * n_max + n2]
                    for alpha in range(n_channels):
                        scratch[alpha] += row[alpha] * value
            for a in range(n_species):
                for n in range(n_max):
                    out[a, lm, n] = scratch[a * n_max + n]


@njit(cache=True, nogil=True)
def _transpose_radial(rho, drho, n_pairs, n_radial, rho_t):
    """``rho_t[0, j, k] = rho[k, j]``, ``rho_t[1, j, k] = drho[k, j]`` for the ``n_pairs`` pairs of a centre:
    pair-contiguous radial functions, once per centre for all the energies of a batched reverse pass."""
    for k in range(n_pairs):
        for j in range(n_radial):
            rho_t[0, j, k] = rho[k, j]
            rho_t[1, j, k] = drho[k, j]


@njit(cache=True, nogil=True)
def _pair_derivatives(dc, harmonics, grad, species_start, l_max, n_max, rho_t, t, t2, out):
    """``out[:, k] = ∂E_i/∂r_k`` without the radial term's vector: ``(Σ t ∇S, Σ t' S)`` per pair column k.

    Pairs of one species are contiguous columns, so every inner loop runs
    over a range of pairs (vectorised); ``rho_t`` (2, (l_max+1) n_max, P) holds
    the radial functions and their derivatives transposed (:func:`_transpose_radial`).
    """
    # Unsigned indices: numba then emits no negative-index wraparound, which blocks vectorisation.
    n_pairs = uint64(harmonics.shape[1])
    N = uint64(n_max)
    for x in range(4):
        for k in range(n_pairs):
            out[x, k] = 0.0
    for s in range(uint64(dc.shape[0])):
        lo, hi = uint64(species_start[s]), uint64(species_start[s + 1])
        if hi == lo:
            continue
        for l in range(uint64(l_max + 1)):
            for lm in range(l * l, (l + uint64(1)) * (l + uint64(1))):
                for k in range(lo, hi):
                    t[k] = 0.0
                    t2[k] = 0.0
                for n in range(N):
                    w = dc[s, lm, n]
                    j = l * N + n
                    for k in range(lo, hi):
                        t[k] += w * rho_t[0, j, k]
                        t2[k] += w * rho_t[1, j, k]
                for k in range(lo, hi):
                    out[0, k] += t[k] * grad[0, lm, k]
                    out[1, k] += t[k] * grad[1, lm, k]
                    out[2, k] += t[k] * grad[2, lm, k]
                    out[3, k] += t2[k] * harmonics[lm, k]


@njit(cache=True, nogil=True)
def soap_vjp_kernel(
    first, last, vectors, pair_offsets, pair_species, center_species,
    kind, eta, table_a, table_b, spline, inv_spacing, self_density, r_cut, transition_width,
    l_max, n_max, n_species, points, alpha, rows, row_set, beta, center_row, pair_out,
):
    """``pair_out[v, p] = ∂E_v,i/∂r_j`` for every neighbour image ``p`` of centres ``first..last-1``.

    The adjoint ``∂E_v/∂p`` of centre ``i`` for energy ``v`` (GAP weighting folded in) is given in the
    factored form ``alpha[v, r] points[v] + beta[v, r] rows[row_set[v], r]`` with ``r = center_row[i]``: one
    energy is ``points`` = 0, ``alpha`` = 0, ``beta`` = 1 and its adjoint in a set of ``rows``; the unit-weight
    energies of
    sparse points ``z_v`` under a dot-product or Gaussian covariance (whose feature gradients are
    ``α z_v + β x_i``, :mod:`kernelpot.models.gap.subset_variance`) never form an
    (n_vectors, n_centers, n_features) array. A centre's density expansion is computed once for all
    ``n_vectors`` energies.

    Parameters
    ----------
    first, last, vectors, pair_offsets, pair_species, center_species, kind, ..., transition_width
        As :func:`._soap_kernels.soap_gradients_kernel`.
    l_max, n_max, n_species : int
    points : (n_vectors, n_features) float64
    alpha, beta : (n_vectors, n_rows) float64
    rows : (n_sets, n_rows, n_features) float64
    row_set : (n_vectors,) int64
        The set of ``rows`` of every energy.
    center_row : (n_centers,) int64
        Row of every centre, or -1 for a centre no energy depends on (skipped; the caller marks all-zero
        adjoint rows so).
    pair_out : (n_vectors, n_pairs, 3) float64, output
        Derivative of the centre's energy with respect to the position of
        the pair's neighbour image (eV/Å), in the pair list's order.
    """
    prefactors = harmonic_prefactors(l_max)
    workspace = make_workspace(first, last, pair_offsets, l_max, n_max, n_species, runtime_flag(True))
    max_pairs = workspace[1].shape[0]
    n_lm = (l_max + 1) ** 2
    n_channels = n_species * n_max
    channels = np.empty((l_max + 1, n_channels, n_channels))
    scratch = np.empty(n_channels)
    dc = np.empty((n_species, n_lm, n_max))
    rho_t = np.empty((2, (l_max + 1) * n_max, max_pairs))
    t = np.empty(max_pairs)
    t2 = np.empty(max_pairs)
    per_pair = np.empty((4, max_pairs))
    kappa = np.empty(l_max + 1)
    for l in range(l_max + 1):
        kappa[l] = math.pi * math.sqrt(8.0 / (2 * l + 1))
    n_vectors, n_features = points.shape
    row = np.empty(n_features)
    for i in range(first, last):
        start = pair_offsets[i]
        n_pairs = pair_offsets[i + 1] - start
        r = center_row[i]
        for v in range(n_vectors):
            for p in range(n_pairs):
                pair_out[v, start + p, 0] = 0.0
                pair_out[v, start + p, 1] = 0.0
                pair_out[v, start + p, 2] = 0.0
        if r < 0 or n_pairs == 0:
            continue
        c, harmonics, grad, rho, drho, position = center_expansion(
            i, vectors, pair_offsets, pair_species, center_species,
            kind, eta, table_a, table_b, spline, inv_spacing, self_density, r_cut, transition_width,
            l_max, n_max, n_species, prefactors, runtime_flag(True), workspace,
        )
        _transpose_radial(rho, drho, harmonics.shape[1], (l_max + 1) * n_max, rho_t)
        for v in range(n_vectors):
            a, b = alpha[v, r], beta[v, r]
            own = rows[row_set[v], r]
            zero = True
            for f in range(n_features):
                row[f] = a * points[v, f] + b * own[f]
                if row[f] != 0.0:
                    zero = False
            if zero:   # this energy does not depend on the centre
                continue
            _channel_matrices(row, kappa, n_species, n_max, l_max, channels)
            _coefficient_adjoint(channels, c, n_species, n_max, l_max, scratch, dc)
            _pair_derivatives(dc, harmonics, grad, workspace[10], l_max, n_max, rho_t, t, t2, per_pair)
            for p in range(n_pairs):
                k = position[p]
                radial = per_pair[3, k]
                pair_out[v, start + p, 0] = per_pair[0, k] + radial * vectors[start + p, 0]
                pair_out[v, start + p, 1] = per_pair[1, k] + radial * vectors[start + p, 1]
                pair_out[v, start + p, 2] = per_pair[2, k] + radial * vectors[start + p, 2]
