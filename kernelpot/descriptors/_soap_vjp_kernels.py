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
from numba import njit

from ..symmetry.harmonics import harmonic_prefactors
from ._expansion import center_expansion, make_workspace

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
def _coefficient_adjoint(channels, c, n_species, n_max, l_max, out):
    """``out[a, lm, n] = Σ_{b, n'} S_l[(a, n), (b, n')] c[b, lm, n']`` (c in the transposed layout ``c[b, lm, n]``)."""
    n_channels = n_species * n_max
    for a in range(n_species):
        for l in range(l_max + 1):
            block = channels[l]
            for lm in range(l * l, (l + 1) * (l + 1)):
                for n in range(n_max):
                    row = block[a * n_max + n]
                    total = 0.0
                    for beta in range(n_channels):
                        total += row[beta] * c[beta // n_max, lm, beta % n_max]
                    out[a, lm, n] = total


@njit(cache=True, nogil=True)
def soap_vjp_kernel(
    first, last, vectors, pair_offsets, pair_species, center_species,
    kind, eta, table_a, table_b, spline, inv_spacing, self_density, r_cut, transition_width,
    l_max, n_max, n_species, adjoint, pair_out,
):
    """``pair_out[p] = ∂E_i/∂r_j`` for every neighbour image ``p`` of centres ``first..last-1``.

    Parameters
    ----------
    first, last, vectors, pair_offsets, pair_species, center_species, kind, ..., transition_width
        As :func:`._soap_kernels.soap_gradients_kernel`.
    l_max, n_max, n_species : int
    adjoint : (n_centers, n_features) float64
        ``∂E/∂p`` of every centre (GAP weighting folded in); a centre whose
        row is all zero is skipped.
    pair_out : (n_pairs, 3) float64, output
        Derivative of the centre's energy with respect to the position of
        the pair's neighbour image (eV/Å), in the pair list's order.
    """
    prefactors = harmonic_prefactors(l_max)
    workspace = make_workspace(first, last, pair_offsets, l_max, n_max, n_species, True)
    n_lm = (l_max + 1) ** 2
    n_channels = n_species * n_max
    channels = np.empty((l_max + 1, n_channels, n_channels))
    dc = np.empty((n_species, n_lm, n_max))
    kappa = np.empty(l_max + 1)
    for l in range(l_max + 1):
        kappa[l] = math.pi * math.sqrt(8.0 / (2 * l + 1))
    for i in range(first, last):
        start = pair_offsets[i]
        n_pairs = pair_offsets[i + 1] - start
        row = adjoint[i]
        active = False
        for f in range(row.shape[0]):
            if row[f] != 0.0:
                active = True
                break
        if not active or n_pairs == 0:
            for p in range(n_pairs):
                pair_out[start + p, 0] = 0.0
                pair_out[start + p, 1] = 0.0
                pair_out[start + p, 2] = 0.0
            continue
        c, harmonics, grad, rho, drho, position = center_expansion(
            i, vectors, pair_offsets, pair_species, center_species,
            kind, eta, table_a, table_b, spline, inv_spacing, self_density, r_cut, transition_width,
            l_max, n_max, n_species, prefactors, True, workspace,
        )
        _channel_matrices(row, kappa, n_species, n_max, l_max, channels)
        _coefficient_adjoint(channels, c, n_species, n_max, l_max, dc)
        for p in range(n_pairs):
            k = position[p]
            s = pair_species[start + p]
            fx = 0.0
            fy = 0.0
            fz = 0.0
            radial = 0.0
            for l in range(l_max + 1):
                base = l * n_max
                for lm in range(l * l, (l + 1) * (l + 1)):
                    weights = dc[s, lm]
                    t = 0.0
                    t2 = 0.0
                    for n in range(n_max):
                        t += weights[n] * rho[k, base + n]
                        t2 += weights[n] * drho[k, base + n]
                    fx += t * grad[0, lm, k]
                    fy += t * grad[1, lm, k]
                    fz += t * grad[2, lm, k]
                    radial += t2 * harmonics[lm, k]
            pair_out[start + p, 0] = fx + radial * vectors[start + p, 0]
            pair_out[start + p, 1] = fy + radial * vectors[start + p, 1]
            pair_out[start + p, 2] = fz + radial * vectors[start + p, 2]
