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

from ._expansion import center_expansion, make_workspace
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
    kind, eta, table_a, table_b, spline, inv_spacing, self_density, l_max, n_max, n_species, out,
):
    """SOAP features ``out[first:last]`` (arguments as :func:`soap_gradients_kernel`)."""
    prefactors = harmonic_prefactors(l_max)
    workspace = make_workspace(first, last, pair_offsets, l_max, n_max, n_species, False)
    for i in range(first, last):
        c = center_expansion(
            i, vectors, pair_offsets, pair_species, center_species,
            kind, eta, table_a, table_b, spline, inv_spacing, self_density,
            l_max, n_max, n_species, prefactors, False, workspace,
        )[0]
        power_spectrum_row(c, n_max, l_max, out[i])


@njit(cache=True, nogil=True)
def _add_pair(p, s, d, c, rho, drho, harmonics, grad, block_offsets, n_max, l_max, u, v, buffer):
    """Add ∂p/∂r_j of one neighbour image (species s, vector d) to ``buffer`` (3, n_features)."""
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
                h, gx, gy, gz = harmonics[lm, p], grad[0, lm, p], grad[1, lm, p], grad[2, lm, p]
                row = cb[lm]
                for n2 in range(n_max):
                    coefficient = row[n2]
                    v[n2] += h * coefficient
                    u[0, n2] += gx * coefficient
                    u[1, n2] += gy * coefficient
                    u[2, n2] += gz * coefficient
            radial = rho[p, l * n_max : (l + 1) * n_max]
            radial_d = drho[p, l * n_max : (l + 1) * n_max]
            base = block + l * per_l
            for x in range(3):
                out = buffer[x]
                ux = u[x]
                dx = d[x]
                if b == s:
                    f = base
                    for n in range(n_max):
                        rn = kappa * radial[n]
                        dn = kappa * radial_d[n] * dx
                        un = kappa * ux[n]
                        vn = kappa * dx * v[n]
                        for n2 in range(n, n_max):
                            out[f + n2 - n] += rn * ux[n2] + dn * v[n2] + radial[n2] * un + radial_d[n2] * vn
                        f += n_max - n
                elif s < b:
                    for n in range(n_max):
                        rn = kappa * radial[n]
                        dn = kappa * radial_d[n] * dx
                        f = base + n * n_max
                        for n2 in range(n_max):
                            out[f + n2] += rn * ux[n2] + dn * v[n2]
                else:
                    for n in range(n_max):
                        un = kappa * ux[n]
                        vn = kappa * dx * v[n]
                        f = base + n * n_max
                        for n2 in range(n_max):
                            out[f + n2] += radial[n2] * un + radial_d[n2] * vn


@njit(cache=True, nogil=True)
def _block_ranges(s, block_offsets, n_max, l_max):
    """(start, stop) of the feature blocks that contain species s."""
    n_species = block_offsets.shape[0]
    ranges = np.empty((n_species, 2), dtype=np.int64)
    for b in range(n_species):
        per_l = n_max * (n_max + 1) // 2 if b == s else n_max * n_max
        ranges[b, 0] = block_offsets[s, b]
        ranges[b, 1] = block_offsets[s, b] + per_l * (l_max + 1)
    return ranges


@njit(cache=True, nogil=True)
def _flush(buffer, target, own):
    """``target = buffer``; ``own -= buffer``; ``buffer = 0`` (one row written once)."""
    for f in range(buffer.shape[0]):
        value = buffer[f]
        target[f] = value
        own[f] -= value
        buffer[f] = 0.0


@njit(cache=True, nogil=True)
def soap_gradients_kernel(
    first, last, vectors, pair_offsets, pair_species, center_species, pair_rows, self_rows,
    kind, eta, table_a, table_b, spline, inv_spacing, self_density, l_max, n_max, block_offsets,
    features, gradients,
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
        Row of ``gradients`` that the image's derivative goes to. Images of
        one neighbour share a row and must be consecutive (each row is
        written once, when its last image is done).
    self_rows : (n_centers,) int64
        Row of each centre's self term (total derivative, −Σ other rows).
    kind, eta, table_a, table_b, spline, inv_spacing, self_density
        Radial basis (:class:`._radial.RadialBasis`).
    block_offsets : (n_species, n_species) int64
    features : (n_centers, n_features) float64, output
    gradients : (n_rows, 3, n_features) float64, output, zero on entry
    """
    prefactors = harmonic_prefactors(l_max)
    n_species = block_offsets.shape[0]
    n_features = features.shape[1]
    workspace = make_workspace(first, last, pair_offsets, l_max, n_max, n_species, True)
    u = np.empty((3, n_max))
    v = np.empty(n_max)
    buffer = np.zeros((3, n_features))
    own = np.empty((3, n_features))
    for i in range(first, last):
        c, harmonics, grad, rho, drho, position = center_expansion(
            i, vectors, pair_offsets, pair_species, center_species,
            kind, eta, table_a, table_b, spline, inv_spacing, self_density,
            l_max, n_max, n_species, prefactors, True, workspace,
        )
        power_spectrum_row(c, n_max, l_max, features[i])
        own[:, :] = 0.0
        start = pair_offsets[i]
        n_pairs = pair_offsets[i + 1] - start
        for p in range(n_pairs):
            s = pair_species[start + p]
            _add_pair(
                position[p], s, vectors[start + p], c, rho, drho, harmonics, grad,
                block_offsets, n_max, l_max, u, v, buffer,
            )
            # Images of one neighbour are consecutive and share a row: flush at the last one.
            row = pair_rows[start + p]
            if p + 1 < n_pairs and pair_rows[start + p + 1] == row:
                continue
            ranges = _block_ranges(s, block_offsets, n_max, l_max)
            for x in range(3):
                for b in range(n_species):
                    lo, hi = ranges[b, 0], ranges[b, 1]
                    _flush(buffer[x, lo:hi], gradients[row, x, lo:hi], own[x, lo:hi])
        target = gradients[self_rows[i]]
        for x in range(3):
            for f in range(n_features):
                target[x, f] += own[x, f]
