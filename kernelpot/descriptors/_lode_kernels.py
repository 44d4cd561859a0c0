"""Jitted kernels of the LODE descriptor (private): pair expansions, multipole tail, dense gradient rows.

Every pair function is written ``G_nl(d) S_lm(d)`` (``S_lm`` the real solid harmonics
of :mod:`kernelpot.symmetry.harmonics`), so one kernel serves the tabulated
short-range (or, for open boundaries, near-field) potential of :mod:`._lode_basis`
and the SOAP density of :mod:`._radial`: both go through
:func:`._expansion.center_expansion`.

Dense gradient rows
-------------------
LODE features of a centre depend on every atom of its structure, so gradients are
kept as one row per ordered pair (i, j) of a structure, images summed: row
``row_start[i] + (j - first_atom[i])``. The kernels here *add* the derivative with
respect to r_j (centre fixed) into the rows ``j != i``; the caller sets the self rows
to minus the sum (translation invariance). Arrays of rows have shape
``(n_rows, 3, n_species, n_max, (l_max + 1)**2)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..symmetry.harmonics import harmonic_prefactors, solid_harmonics_batch
from ._expansion import center_expansion, make_workspace, write_pair_gradients

__all__ = ["multipole_tail_kernel", "pair_expansion_kernel", "scatter_pair_rows"]


@njit(cache=True, nogil=True)
def pair_expansion_kernel(
    first, last, vectors, pair_offsets, pair_species, center_species,
    kind, eta, table_a, table_b, spline, inv_spacing, self_value, r_cut, transition_width,
    l_max, n_max, n_species, with_gradients, coefficients, pair_gradients,
):
    """``coefficients[i] = Σ_pairs G_nl S_lm`` (+ the centre's own term) and per-pair derivatives.

    Parameters
    ----------
    first, last : int
        Centres to compute.
    vectors, pair_offsets, pair_species, center_species
        Pair list sorted by centre (neighbour-image vectors in Å).
    kind, eta, table_a, table_b, spline, inv_spacing
        Radial functions (:class:`._radial.RadialBasis` layout; a LODE potential table
        is ``kind = GTO`` with only ``spline`` and ``inv_spacing`` used).
    self_value : (n_max,)
        ``G_n0(0)``, added to the centre's own species at l = 0 (times Y_00).
    r_cut, transition_width : float
        GAP cosine weight of the pairs (width 0: none).
    coefficients : (n_centers, n_species, n_max, (l_max+1)**2), output (set)
    pair_gradients : (n_pairs, 3, n_max, (l_max+1)**2), output (set when ``with_gradients``)
        ``∂(G_nl S_lm)/∂r_j`` of each pair, centre fixed.
    """
    prefactors = harmonic_prefactors(l_max)
    workspace = make_workspace(first, last, pair_offsets, l_max, n_max, n_species, with_gradients)
    n_lm = (l_max + 1) ** 2
    for i in range(first, last):
        c, harmonics, grad, rho, drho, position = center_expansion(
            i, vectors, pair_offsets, pair_species, center_species,
            kind, eta, table_a, table_b, spline, inv_spacing, self_value, r_cut, transition_width,
            l_max, n_max, n_species, prefactors, with_gradients, workspace,
        )
        for a in range(n_species):
            for lm in range(n_lm):
                for n in range(n_max):
                    coefficients[i, a, n, lm] = c[a, lm, n]
        if with_gradients:
            write_pair_gradients(i, vectors, pair_offsets, harmonics, grad, rho, drho, position, l_max, n_max,
                                 pair_gradients)


@njit(cache=True, nogil=True)
def multipole_tail_kernel(
    first, last, positions, first_atom, last_atom, atom_species, r_min, factors, l_max, n_max,
    with_gradients, row_start, coefficients, rows,
):
    """Add the multipole tail of every pair farther than ``r_min`` (open boundaries).

    ``G_nl(d) S_lm(d) = factors[l, n] S_lm(d) / d^(2l+1)`` for ``|d| >= r_min``, summed
    over all atoms j of the centre's structure (``first_atom[i] <= j < last_atom[i]``);
    derivatives ``factors[l, n] (∂S_lm / d^(2l+1) - (2l+1) S_lm d / d^(2l+3))`` are
    added to the dense rows (module docstring).
    """
    prefactors = harmonic_prefactors(l_max)
    n_lm = (l_max + 1) ** 2
    width = 1
    for i in range(first, last):
        width = max(width, last_atom[i] - first_atom[i])
    x = np.empty(width)
    y = np.empty(width)
    z = np.empty(width)
    partner = np.empty(width, dtype=np.int64)
    harmonics = np.empty((n_lm, width))
    grad = np.empty((3, n_lm if with_gradients else 0, width))
    q = np.empty((l_max + 1, l_max + 2, width))
    cosines = np.empty((l_max + 1, width))
    sines = np.empty((l_max + 1, width))
    inverse = np.empty(l_max + 2)
    for i in range(first, last):
        count = 0
        for j in range(first_atom[i], last_atom[i]):
            dx = positions[j, 0] - positions[i, 0]
            dy = positions[j, 1] - positions[i, 1]
            dz = positions[j, 2] - positions[i, 2]
            if dx * dx + dy * dy + dz * dz >= r_min * r_min:
                x[count], y[count], z[count] = dx, dy, dz
                partner[count] = j
                count += 1
        if count == 0:
            continue
        solid_harmonics_batch(
            x[:count], y[:count], z[:count], l_max, prefactors, harmonics[:, :count],
            grad[:, :, :count], q[:, :, :count], cosines[:, :count], sines[:, :count], with_gradients,
        )
        for p in range(count):
            j = partner[p]
            a = atom_species[j]
            d2 = x[p] * x[p] + y[p] * y[p] + z[p] * z[p]
            d = math.sqrt(d2)
            # inverse[l] = d^-(2l+1)
            inverse[0] = 1.0 / d
            for l in range(1, l_max + 2):
                inverse[l] = inverse[l - 1] / d2
            target = coefficients[i, a]
            for l in range(l_max + 1):
                for n in range(n_max):
                    f = factors[l, n] * inverse[l]
                    for lm in range(l * l, (l + 1) * (l + 1)):
                        target[n, lm] += f * harmonics[lm, p]
            if not with_gradients:
                continue
            row = rows[row_start[i] + j - first_atom[i]]
            vector = (x[p], y[p], z[p])
            for c in range(3):
                out = row[c, a]
                for l in range(l_max + 1):
                    radial_d = -(2 * l + 1) * inverse[l + 1] * vector[c]
                    for n in range(n_max):
                        f = factors[l, n]
                        for lm in range(l * l, (l + 1) * (l + 1)):
                            out[n, lm] += f * (inverse[l] * grad[c, lm, p] + radial_d * harmonics[lm, p])


@njit(cache=True, nogil=True)
def scatter_pair_rows(pair_center, pair_neighbour, pair_species, pair_gradients, row_start, first_atom, rows):
    """Add each pair's derivative to its dense row (images summed); pairs with j == i are skipped."""
    for p in range(pair_center.shape[0]):
        i = pair_center[p]
        j = pair_neighbour[p]
        if i == j:
            continue  # an image of the centre itself: moves with it, no total derivative
        out = rows[row_start[i] + j - first_atom[i], :, pair_species[p]]
        source = pair_gradients[p]
        for c in range(3):
            for n in range(out.shape[1]):
                for lm in range(out.shape[2]):
                    out[c, n, lm] += source[c, n, lm]


@njit(cache=True, nogil=True)
def multiscale_rows_kernel(
    first, last, potential, density, potential_rows, density_rows, centre_of_row,
    potential_species_of_row, density_species_of_row, couplings, out,
):
    """Gradient rows of the multi-scale invariants, ``c_l Σ_m (∂ρ v + ρ ∂v)``, rows first..last-1.

    Parameters
    ----------
    potential : (n_atoms, S, N, L²)  and  density : (n_atoms, S_ρ, N_ρ, L_ρ²)
        Coefficients of the run's centres.
    potential_rows, density_rows : (n_rows, 3, S, N, L²), (n_rows, 3, S_ρ, N_ρ, L_ρ²)
        Their dense gradient rows.
    centre_of_row : (n_rows,) int64
    potential_species_of_row, density_species_of_row : (n_rows,) int64
        Species index of the moving atom in each expansion, or -1 for a self row:
        a row (i, j ≠ i) only has derivatives in the moving atom's species channel, so
        the other (a, b) blocks are zero and skipped.
    couplings : (l_top + 1,) float64
    out : (n_rows, 3, n_features) float64, output (every entry written)
        Feature order (a, b, l, n, n').
    """
    n_species, n_max, _ = potential.shape[1], potential.shape[2], potential.shape[3]
    n_density_species, n_density_max = density.shape[1], density.shape[2]
    n_l = couplings.shape[0]
    for r in range(first, last):
        i = centre_of_row[r]
        moving_v = potential_species_of_row[r]
        moving_rho = density_species_of_row[r]
        for x in range(3):
            row = out[r, x]
            f = 0
            for a in range(n_density_species):
                with_rho = moving_rho < 0 or moving_rho == a
                for b in range(n_species):
                    with_v = moving_v < 0 or moving_v == b
                    for l in range(n_l):
                        c = couplings[l]
                        for n in range(n_density_max):
                            for k in range(n_max):
                                total = 0.0
                                if with_rho:
                                    for lm in range(l * l, (l + 1) * (l + 1)):
                                        total += density_rows[r, x, a, n, lm] * potential[i, b, k, lm]
                                if with_v:
                                    for lm in range(l * l, (l + 1) * (l + 1)):
                                        total += density[i, a, n, lm] * potential_rows[r, x, b, k, lm]
                                row[f] = c * total
                                f += 1
