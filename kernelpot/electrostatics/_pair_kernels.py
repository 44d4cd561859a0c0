"""Numba kernels of the pair interactions and the open-boundary direct sums (private).

Every pair term of the package is one radial function, in units where the
Coulomb constant is 1 (the public layer multiplies by ``COULOMB_CONSTANT``)::

    point charges   φ(r) = erfc(a r) / r
    Gaussians       φ(r) = (erf(b r) - erf(a r)) / r   = erfc(a r)/r - erfc(b r)/r

``a`` is the Ewald screening of the pair (0 for open boundaries, where
erfc(0 r)/r = 1/r) and ``b = 1/γ_ij = 1/sqrt(2 (σ_i² + σ_j²))`` the Gaussian
pair width; ``b = 0`` marks point charges. Both come from small per width-group
tables ``a_table[g, h]``, ``b_table[g, h]`` (see :mod:`._setup`). Helpers return
``φ`` and ``φ'(r) / r``, the factor that multiplies the pair vector in forces
and virials.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
# Below b r = this, (erf(b r) - erf(a r)) / r loses digits to cancellation and
# its Taylor series (four terms, truncation ~ (b r)^8 / 216) is used instead.
_SERIES_BELOW = 1e-2
# Point charges closer than this (Å) are reported as coincident.
COINCIDENT = 1e-10
# The empty matrix that switches the pair kernels' matrix mode off.
NO_MATRIX = np.zeros((0, 0))
# Numba's parallel options for every kernel of the package: only explicit ``prange`` loops
# run in parallel. Its other passes (array expressions, allocations and reductions turned
# into parallel loops) made compilation slower for no speed-up here (measured: the
# real-space kernel's parallel wrapper 9.1 s -> 5.4 s CPU to compile).
PRANGE_ONLY = {"comprehension": False, "reduction": False, "inplace_binop": False, "setitem": False,
               "numpy": False, "stencil": False, "fusion": False, "prange": True}

# erfc(x) = exp(-x²) erfcx(x): erfcx, smooth and slowly varying, is a piecewise
# polynomial of degree 9 on intervals of width 1/8 over [0, 8), fitted at import to
# scipy.special.erfcx at Chebyshev nodes (max relative deviation 2e-15, that of scipy's
# own erfcx 4e-15). With the exp(-x²) that the derivative needs anyway, this costs a
# third of the C library's erfc; beyond x = 8, erfc < 1.2e-29 is taken as 0.
_ERFCX_WIDTH = 0.125
_ERFCX_END = 8.0
_ERFCX_DEGREE = 9


def _erfcx_table() -> np.ndarray:
    from scipy.special import erfcx

    n_intervals = round(_ERFCX_END / _ERFCX_WIDTH)
    nodes = np.cos(np.pi * (np.arange(2 * _ERFCX_DEGREE) + 0.5) / (2 * _ERFCX_DEGREE)) * _ERFCX_WIDTH / 2
    table = np.empty((n_intervals, _ERFCX_DEGREE + 1))
    for k in range(n_intervals):
        centre = (k + 0.5) * _ERFCX_WIDTH
        table[k] = np.polynomial.polynomial.polyfit(nodes, erfcx(centre + nodes), _ERFCX_DEGREE)
    return table


#: Coefficients (n_intervals, degree + 1) passed to every kernel that evaluates pairs.
ERFCX_TABLE = _erfcx_table()


@njit(cache=True, nogil=True, inline="always")
def erfc_and_gaussian(x, table):
    """``(erfc(x), exp(-x²))`` for x ≥ 0 (module constants above)."""
    gaussian = math.exp(-x * x)
    if x >= _ERFCX_END:
        return 0.0, gaussian
    k = int(x * (1.0 / _ERFCX_WIDTH))
    t = x - (k + 0.5) * _ERFCX_WIDTH
    c = table[k]
    p = c[9]
    for d in range(8, -1, -1):
        p = p * t + c[d]
    return gaussian * p, gaussian


@njit(cache=True, nogil=True, inline="always")
def pair_function(r, a, b, table):
    """``(φ(r), φ'(r)/r)`` of one pair (module docstring); ``r`` > 0 for point charges."""
    if b <= 0.0:
        inv_r = 1.0 / r
        ar = a * r
        erfc_a, gauss_a = erfc_and_gaussian(ar, table)
        phi = erfc_a * inv_r
        return phi, -(phi + TWO_OVER_SQRT_PI * a * gauss_a) * inv_r * inv_r
    br = b * r
    if br < _SERIES_BELOW:
        # erf(x) = 2/√π (x - x³/3 + x⁵/10 - x⁷/42 + ...): odd powers of a and b.
        r2 = r * r
        b2, a2 = b * b, a * a
        c1 = b - a
        c3 = b * b2 - a * a2
        c5 = b * b2 * b2 - a * a2 * a2
        c7 = b * b2 * b2 * b2 - a * a2 * a2 * a2
        phi = TWO_OVER_SQRT_PI * (c1 - c3 * r2 / 3.0 + c5 * r2 * r2 / 10.0 - c7 * r2 * r2 * r2 / 42.0)
        dphi_over_r = TWO_OVER_SQRT_PI * (-2.0 * c3 / 3.0 + 0.4 * c5 * r2 - c7 * r2 * r2 / 7.0)
        return phi, dphi_over_r
    inv_r = 1.0 / r
    erfc_a, gauss_a = erfc_and_gaussian(a * r, table)
    erfc_b, gauss_b = erfc_and_gaussian(br, table)
    phi = (erfc_a - erfc_b) * inv_r
    slope = TWO_OVER_SQRT_PI * (b * gauss_b - a * gauss_a)
    return phi, (slope - phi) * inv_r * inv_r


@njit(cache=True, nogil=True)
def _direct_row(i, positions, charges, groups, b_table, table, want_forces, want_potential, forces, potential,
                matrix, coincident):
    """Row ``i`` of the open-boundary sum: its half of the pair energy, force, potential or matrix row."""
    qi = charges[i]
    gi = groups[i]
    want_matrix = matrix.shape[0] > 0
    e = 0.0
    f0 = f1 = f2 = 0.0
    for j in range(positions.shape[0]):
        if j == i:
            continue
        d0 = positions[j, 0] - positions[i, 0]
        d1 = positions[j, 1] - positions[i, 1]
        d2 = positions[j, 2] - positions[i, 2]
        r = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
        b = b_table[gi, groups[j]]
        if b <= 0.0 and r < COINCIDENT:
            coincident[0] = min(i, j)
            coincident[1] = max(i, j)
            continue
        phi, g = pair_function(r, 0.0, b, table)
        if want_matrix:
            matrix[i, j] = phi
            continue
        qj = charges[j]
        e += qj * phi
        if want_forces:
            # F_i = -dE/dr_i = q_i q_j φ'(r) (r_j - r_i) / r
            f0 += qj * g * d0
            f1 += qj * g * d1
            f2 += qj * g * d2
    if want_forces:
        forces[i, 0] = qi * f0
        forces[i, 1] = qi * f1
        forces[i, 2] = qi * f2
    if want_potential:
        potential[i] = e
    return 0.5 * qi * e


@njit(cache=True, nogil=True, parallel=PRANGE_ONLY)
def direct_sum(positions, charges, groups, b_table, table, want_forces, want_potential,
               forces, potential, matrix, coincident):
    """Open boundaries: all pairs, O(n²), one row per atom (no write conflicts).

    Fills ``forces`` (n, 3) and ``potential`` (n,) (pair part only, no self
    terms) when wanted and returns the pair energy. ``coincident`` (2,) int64
    receives a pair of point charges closer than :data:`COINCIDENT` Å
    (``-1`` if none). Matrix mode: a non-empty ``matrix`` (n, n) receives
    ``φ(r_ij)`` for i ≠ j (diagonal untouched) instead.
    """
    n = positions.shape[0]
    row_energy = np.zeros(n)
    for i in prange(n):
        row_energy[i] = _direct_row(i, positions, charges, groups, b_table, table, want_forces, want_potential,
                                    forces, potential, matrix, coincident)
    return row_energy.sum()
