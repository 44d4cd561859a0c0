"""Numba kernels of the Ewald reciprocal-space sum (private).

Wave vectors ``k = m @ recip`` (``recip`` = 2π × reciprocal basis as rows) are
the integer triples ``m`` of one half space (``m0 > 0``, or ``m0 = 0, m1 > 0``,
or ``m0 = m1 = 0, m2 > 0``) with ``|k| <= k_cutoff``, sorted so that each run
of equal ``(m0, m1)`` has consecutive ``m2``. The phase ``exp(i k·r)`` of an
atom is then ``e0[m0] e1[m1] e2[m2]`` from three short per-atom tables built by
recurrence, and one complex product per (atom, k) pair remains:
``exp(i k·r) = (e0[m0] e1[m1]) e2[m2]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._pair_kernels import PRANGE_ONLY


@njit(cache=True, nogil=True, inline="always")
def _phase(position, recip, d):
    theta = position[0] * recip[d, 0] + position[1] * recip[d, 1] + position[2] * recip[d, 2]
    return complex(math.cos(theta), math.sin(theta))


@njit(cache=True, nogil=True, inline="always")
def _symmetric_powers(z, table):
    """``table[M + m] = z**m`` for m = -M..M, |z| = 1 (negative powers are conjugates)."""
    centre = table.shape[0] // 2
    table[centre] = 1.0
    for m in range(1, centre + 1):
        table[centre + m] = table[centre + m - 1] * z
        table[centre - m] = table[centre + m].conjugate()


@njit(cache=True, nogil=True, inline="always")
def _phase_tables(position, recip, e0, e1, e2):
    """``e0[m] = exp(i m b0·r)`` (m = 0..M0), ``e1[M1 + m]``, ``e2[M2 + m]`` (m = -M..M)."""
    z0 = _phase(position, recip, 0)
    e0[0] = 1.0
    for m in range(1, e0.shape[0]):
        e0[m] = e0[m - 1] * z0
    _symmetric_powers(_phase(position, recip, 1), e1)
    _symmetric_powers(_phase(position, recip, 2), e2)


@njit(cache=True, nogil=True, parallel=PRANGE_ONLY)
def structure_factors(positions, charges, groups, n_groups, recip, m_max, run_m, run_start,
                      run_m2_first, n_chunks):
    """``S_g(k) = Σ_{i in group g} q_i exp(i k·r_i)``, shape (n_groups, n_k), complex."""
    n = positions.shape[0]
    n_runs = run_m.shape[0]
    n_k = run_start[n_runs]
    partial = np.zeros((n_chunks, n_groups, n_k), dtype=np.complex128)
    for c in prange(n_chunks):
        e0 = np.empty(m_max[0] + 1, dtype=np.complex128)
        e1 = np.empty(2 * m_max[1] + 1, dtype=np.complex128)
        e2 = np.empty(2 * m_max[2] + 1, dtype=np.complex128)
        for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            _phase_tables(positions[i], recip, e0, e1, e2)
            target = partial[c, groups[i]]
            for run in range(n_runs):
                e01 = charges[i] * e0[run_m[run, 0]] * e1[m_max[1] + run_m[run, 1]]
                start = run_start[run]
                first = m_max[2] + run_m2_first[run] - start
                for k in range(start, run_start[run + 1]):
                    target[k] += e01 * e2[first + k]
    out = np.zeros((n_groups, n_k), dtype=np.complex128)
    for c in range(n_chunks):
        out += partial[c]
    return out


@njit(cache=True, nogil=True, parallel=PRANGE_ONLY)
def reciprocal_gradients(positions, groups, recip, m_max, run_m, run_start, run_m2_first, kvectors,
                         coefficients, want_forces, want_potential, forces, potential):
    """Per-atom sums ``Σ_k Im(z) k`` → ``forces`` and ``Σ_k Re(z)`` → ``potential``.

    ``z = exp(i k·r_i) coefficients[g_i, k]``; the caller puts the conjugate structure
    factor, the influence function and the prefactors into ``coefficients`` and scales
    the forces by the charges.
    """
    n = positions.shape[0]
    n_runs = run_m.shape[0]
    for i in prange(n):
        e0 = np.empty(m_max[0] + 1, dtype=np.complex128)
        e1 = np.empty(2 * m_max[1] + 1, dtype=np.complex128)
        e2 = np.empty(2 * m_max[2] + 1, dtype=np.complex128)
        _phase_tables(positions[i], recip, e0, e1, e2)
        coeff = coefficients[groups[i]]
        total = 0.0
        f0 = f1 = f2 = 0.0
        for run in range(n_runs):
            e01 = e0[run_m[run, 0]] * e1[m_max[1] + run_m[run, 1]]
            start = run_start[run]
            first = m_max[2] + run_m2_first[run] - start
            for k in range(start, run_start[run + 1]):
                z = e01 * e2[first + k] * coeff[k]
                total += z.real
                im = z.imag
                f0 += im * kvectors[k, 0]
                f1 += im * kvectors[k, 1]
                f2 += im * kvectors[k, 2]
        if want_potential:
            potential[i] = total
        if want_forces:
            forces[i, 0] = f0
            forces[i, 1] = f1
            forces[i, 2] = f2
