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
from numba import njit

from ._expansion import _accumulate, center_expansion, make_workspace
from ._spherical_harmonics import harmonic_prefactors

__all__ = ["feature_block_offsets", "power_spectrum_row", "power_spectrum_kernel", "soap_gradients_kernel"]


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
    workspace = make_workspace(first, last, pair_offsets, l_max, n_max, n_species, False)
    for i in range(first, last):
        c = center_expansion(
            i, vectors, pair_offsets, pair_species, center_species,
            kind, eta, table_a, table_b, spline, inv_spacing, self_density, r_cut, transition_width,
            l_max, n_max, n_species, prefactors, False, workspace,
        )[0]
        power_spectrum_row(c, n_max, l_max, out[i])


@njit(cache=True, nogil=True)
def _add_pair(s, d, c, angular, radial_all, radial_d_all, block_offsets, n_max, l_max, u, v, target):
    """Add ∂p/∂r_j of one neighbour image (species s, vector d) to its gradient row ``target`` (3, n_features).

    ``angular[lm]`` holds ``(S_lm, ∂_x S_lm, ∂_y S_lm, ∂_z S_lm)`` of the
    image, ``radial_all``/``radial_d_all`` its ``ρ_ln`` and ``ρ'_ln``. Only
    the blocks containing s are touched (the others stay zero).
    """
    n_species = c.shape[0]
    tri = n_max * (n_max + 1) // 2
    for b in range(n_species):
        cb = c[b]
        block = block_offsets[s, b]
        per_l = tri if b == s else n_max * n_max
        for l in range(l_max + 1):
            kappa = math.pi * math.sqrt(8.0 / (2 * l + 1))
            v[:] = 0.0
            u[:, :] = 0.0
            for lm in range(l * l, (l + 1) * (l + 1)):
                h, gx, gy, gz = angular[lm, 0], angular[lm, 1], angular[lm, 2], angular[lm, 3]
                row = cb[lm]
                for n2 in range(n_max):
                    coefficient = row[n2]
                    v[n2] += h * coefficient
                    u[0, n2] += gx * coefficient
                    u[1, n2] += gy * coefficient
                    u[2, n2] += gz * coefficient
            radial = radial_all[l * n_max : (l + 1) * n_max]
            radial_d = radial_d_all[l * n_max : (l + 1) * n_max]
            base = block + l * per_l
            for x in range(3):
                ux = u[x]
                dx = d[x]
                # Slices starting at each row's first element keep every index
                # provably >= 0, so the loops vectorise (no wraparound code).
                if b == s:
                    f = base
                    for n in range(n_max):
                        rn = kappa * radial[n]
                        dn = kappa * radial_d[n] * dx
                        un = kappa * ux[n]
                        vn = kappa * dx * v[n]
                        out = target[x, f - n : f - n + n_max]
                        for n2 in range(n, n_max):
                            out[n2] += rn * ux[n2] + dn * v[n2] + radial[n2] * un + radial_d[n2] * vn
                        f += n_max - n
                elif s < b:
                    for n in range(n_max):
                        rn = kappa * radial[n]
                        dn = kappa * radial_d[n] * dx
                        out = target[x, base + n * n_max : base + (n + 1) * n_max]
                        for n2 in range(n_max):
                            out[n2] += rn * ux[n2] + dn * v[n2]
                else:
                    for n in range(n_max):
                        un = kappa * ux[n]
                        vn = kappa * dx * v[n]
                        out = target[x, base + n * n_max : base + (n + 1) * n_max]
                        for n2 in range(n_max):
                            out[n2] += radial[n2] * un + radial_d[n2] * vn


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

    Each pair's derivative is added straight into its row (no per-pair
    buffer: the output is written once, which is what bounds the speed), and
    the self row is computed from the summed coefficient derivatives, not by
    accumulating the pair rows.
    """
    prefactors = harmonic_prefactors(l_max)
    n_species = block_offsets.shape[0]
    workspace = make_workspace(first, last, pair_offsets, l_max, n_max, n_species, True)
    u = np.empty((3, n_max))
    v = np.empty(n_max)
    n_lm = (l_max + 1) ** 2
    weighted = np.empty(workspace[2].shape[0])
    summed = np.empty((3, n_species, n_lm, n_max))
    max_pairs = weighted.shape[0] // n_lm
    angular = np.empty((max_pairs, n_lm, 4))
    order = np.empty(max_pairs, dtype=np.int64)
    for i in range(first, last):
        c, harmonics, grad, rho, drho, position = center_expansion(
            i, vectors, pair_offsets, pair_species, center_species,
            kind, eta, table_a, table_b, spline, inv_spacing, self_density, r_cut, transition_width,
            l_max, n_max, n_species, prefactors, True, workspace,
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
        # Pair-major copies of the angular parts, and the pairs visited in
        # column order: each pair then reads one contiguous block.
        for p in range(n_pairs):
            order[position[p]] = p
        for k in range(n_pairs):
            for lm in range(n_lm):
                angular[k, lm, 0] = harmonics[lm, k]
                angular[k, lm, 1] = grad[0, lm, k]
                angular[k, lm, 2] = grad[1, lm, k]
                angular[k, lm, 3] = grad[2, lm, k]
        for k in range(n_pairs):
            pair = start + order[k]
            _add_pair(
                pair_species[pair], vectors[pair], c, angular[k], rho[k], drho[k],
                block_offsets, n_max, l_max, u, v, gradients[pair_rows[pair]],
            )
