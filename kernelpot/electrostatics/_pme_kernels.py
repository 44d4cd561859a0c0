"""Numba kernels of smooth particle-mesh Ewald (private): B-splines, spreading, gathering.

Essmann et al., J. Chem. Phys. 103, 8577 (1995), doi:10.1063/1.470117. An atom
at scaled fractional coordinate ``u_d = K_d f_d`` (``f`` wrapped into [0, 1))
spreads its charge onto the mesh points ``k_d = floor(u_d) - j`` (mod K_d),
``j = 0..p-1``, with the cardinal B-spline weights ``M_p(u_d - floor(u_d) + j)``
(eq. 4.1), computed by the recursion ``M_n(x) = x/(n-1) M_{n-1}(x) +
(n-x)/(n-1) M_{n-1}(x-1)``, ``M_2(x) = 1 - |x - 1|``; derivatives follow from
``M_n'(x) = M_{n-1}(x) - M_{n-1}(x-1)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._pair_kernels import PRANGE_ONLY


@njit(cache=True, nogil=True, inline="always")
def _spline(w, order, values, slopes):
    """``values[j] = M_p(w + j)``, ``slopes[j] = M_p'(w + j)``, j = 0..p-1, w in [0, 1)."""
    values[0] = w
    values[1] = 1.0 - w
    for j in range(2, order):
        values[j] = 0.0
    for n in range(2, order):  # raise the order from n to n + 1
        if n == order - 1:
            slopes[0] = values[0]
            for j in range(1, order):
                slopes[j] = values[j] - values[j - 1]
        for j in range(n, 0, -1):
            values[j] = ((w + j) * values[j] + (n + 1 - w - j) * values[j - 1]) / n
        values[0] = w * values[0] / n


@njit(cache=True, nogil=True, inline="always")
def _atom_splines(position, inverse, mesh, order, base, values, slopes):
    """Fill ``base`` (3,) int, ``values``/``slopes`` (3, p) of one atom."""
    for d in range(3):
        f = position[0] * inverse[0, d] + position[1] * inverse[1, d] + position[2] * inverse[2, d]
        u = (f - math.floor(f)) * mesh[d]
        floor_u = math.floor(u)
        base[d] = np.int64(floor_u)
        _spline(u - floor_u, order, values[d], slopes[d])


def spline_moduli(mesh_size: int, order: int) -> np.ndarray:
    """``|b(m)|²`` of Essmann eq. 4.4 for m = 0..K-1 (NumPy; run once per mesh)."""
    values = np.empty(order)
    slopes = np.empty(order)
    _spline_py(0.0, order, values, slopes)
    # values[j] = M_p(j); the sum runs over M_p(k + 1), k = 0..p-2.
    k = np.arange(order - 1)
    m = np.arange(mesh_size)
    denominator = np.exp(2j * np.pi * np.outer(m, k) / mesh_size) @ values[1:order]
    return 1.0 / np.abs(denominator) ** 2


_spline_py = _spline.py_func


@njit(cache=True, nogil=True, parallel=PRANGE_ONLY)
def spread(positions, charges, groups, inverse, mesh, order, meshes):
    """Add ``q_i Π_d M_p(u_id - k_d)`` of every atom to ``meshes[c, g_i]`` (zeroed), c its chunk.

    ``meshes`` (n_chunks, n_groups, K0, K1, K2): each chunk of atoms writes its own mesh
    (no atomics); the caller sums over chunks.
    """
    n = positions.shape[0]
    n_chunks = meshes.shape[0]
    for c in prange(n_chunks):
        base = np.empty(3, dtype=np.int64)
        values = np.empty((3, order))
        slopes = np.empty((3, order))
        for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            _atom_splines(positions[i], inverse, mesh, order, base, values, slopes)
            grid = meshes[c, groups[i]]
            for j0 in range(order):
                k0 = (base[0] - j0) % mesh[0]
                w0 = charges[i] * values[0, j0]
                for j1 in range(order):
                    k1 = (base[1] - j1) % mesh[1]
                    w01 = w0 * values[1, j1]
                    for j2 in range(order):
                        grid[k0, k1, (base[2] - j2) % mesh[2]] += w01 * values[2, j2]


@njit(cache=True, nogil=True, parallel=PRANGE_ONLY)
def gather(positions, groups, inverse, mesh, order, potential_meshes, want_forces, want_potential,
           forces, potential):
    """Interpolate ``Φ_g = dE/dQ_g`` back to the atoms.

    ``potential[i] = Σ_k Π_d M_p(...) Φ_{g_i}(k)`` and ``forces[i] = -dE/dr_i / q_i``
    (the caller multiplies by the charges): ``-Σ_d (dE/du_d) K_d inverse[:, d]``.
    """
    n = positions.shape[0]
    for i in prange(n):
        base = np.empty(3, dtype=np.int64)
        values = np.empty((3, order))
        slopes = np.empty((3, order))
        _atom_splines(positions[i], inverse, mesh, order, base, values, slopes)
        grid = potential_meshes[groups[i]]
        total = du0 = du1 = du2 = 0.0
        for j0 in range(order):
            k0 = (base[0] - j0) % mesh[0]
            for j1 in range(order):
                k1 = (base[1] - j1) % mesh[1]
                v01 = values[0, j0] * values[1, j1]
                s0 = slopes[0, j0] * values[1, j1]
                s1 = values[0, j0] * slopes[1, j1]
                for j2 in range(order):
                    phi = grid[k0, k1, (base[2] - j2) % mesh[2]]
                    total += v01 * values[2, j2] * phi
                    du0 += s0 * values[2, j2] * phi
                    du1 += s1 * values[2, j2] * phi
                    du2 += v01 * slopes[2, j2] * phi
        if want_potential:
            potential[i] = total
        if want_forces:
            for x in range(3):
                forces[i, x] = -(du0 * mesh[0] * inverse[x, 0] + du1 * mesh[1] * inverse[x, 1]
                                 + du2 * mesh[2] * inverse[x, 2])


@njit(cache=True, nogil=True, inline="always")
def _frequency(index, size):
    """Signed FFT frequency of ``index`` (NumPy's fftfreq convention)."""
    return index if index <= (size - 1) // 2 else index - size


@njit(cache=True, nogil=True)
def mesh_sums(structure, cross, influence, recip, mesh_last, alpha, want_virial, field):
    """One pass over the half mesh: energy, reciprocal virial and ``field = influence × S``.

    ``structure`` (K0, K1, K2//2+1) complex is S(k) up to the B-spline moduli, which
    ``influence`` holds; ``cross`` is the width-weighted T(k) of Gaussians (empty for
    point charges). Returns ``(energy, virial)`` with the virial
    ``δ_ab E - Σ 2 mult k_a k_b [(1/k² + 1/(4α²)) infl |S|² + infl Re(T S*)]``.
    """
    k0, k1, half = structure.shape
    energies = np.zeros(k0)
    partial = np.zeros((k0, 6))
    quarter = 0.25 / (alpha * alpha)
    gaussian = cross.size > 0
    for i0 in range(k0):
        m0 = _frequency(i0, k0)
        energy = 0.0
        w = np.zeros(6)
        for i1 in range(k1):
            m1 = _frequency(i1, k1)
            for i2 in range(half):
                s = structure[i0, i1, i2]
                g = influence[i0, i1, i2]
                field[i0, i1, i2] = g * s
                multiplicity = 1.0 if (i2 == 0 or 2 * i2 == mesh_last) else 2.0
                power = g * (s.real * s.real + s.imag * s.imag)
                energy += multiplicity * power
                if want_virial and g != 0.0:
                    kx = m0 * recip[0, 0] + m1 * recip[1, 0] + i2 * recip[2, 0]
                    ky = m0 * recip[0, 1] + m1 * recip[1, 1] + i2 * recip[2, 1]
                    kz = m0 * recip[0, 2] + m1 * recip[1, 2] + i2 * recip[2, 2]
                    radial = (1.0 / (kx * kx + ky * ky + kz * kz) + quarter) * power
                    if gaussian:
                        t = cross[i0, i1, i2]
                        radial += g * (t.real * s.real + t.imag * s.imag)
                    radial *= 2.0 * multiplicity
                    w[0] += radial * kx * kx
                    w[1] += radial * kx * ky
                    w[2] += radial * kx * kz
                    w[3] += radial * ky * ky
                    w[4] += radial * ky * kz
                    w[5] += radial * kz * kz
        energies[i0] = energy
        partial[i0] = w
    energy = energies.sum()
    virial = np.zeros((3, 3))
    if want_virial:
        sums = np.zeros(6)
        for i0 in range(k0):
            for c in range(6):
                sums[c] += partial[i0, c]
        index = 0
        for a in range(3):
            for b in range(a, 3):
                virial[a, b] = -sums[index]
                virial[b, a] = -sums[index]
                index += 1
            virial[a, a] += energy
    return energy, virial
