"""Open boundaries: the direct O(N²) sum over all pairs.

Energy (units k_e = 1, multiplied by :data:`~kernelpot.electrostatics.COULOMB_CONSTANT`)::

    E = ½ Σ_{i≠j} q_i q_j φ_ij(r_ij) + Σ_i q_i² / (2 σ_i √π)

with ``φ_ij = 1/r`` for point charges and ``erf(r/γ_ij)/r``,
``γ_ij = sqrt(2(σ_i² + σ_j²))``, for Gaussians (the last sum, the Gaussians'
self-energies, is absent for point charges). Fine for clusters of up to ~10⁴
charges; each thread owns whole rows, so results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from ._pair_kernels import ERFCX_TABLE, NO_MATRIX, direct_sum
from ._setup import WidthGroups, coincident_error, kernel_threads
from .result import COULOMB_CONSTANT, CoulombResult

__all__ = ["direct_coulomb", "direct_coulomb_matrix"]


def direct_coulomb(positions, charges, widths, *, compute_forces=True, compute_stress=True,
                   compute_potential=False) -> CoulombResult:
    """Energy (eV) and derivatives of charges with open boundaries (validated arrays).

    ``compute_stress`` gives the pair virial ``-Σ_pairs r_ij ⊗ dE/dr_ij`` (eV),
    computed as ``Σ_i (r_i - r̄) ⊗ F_i``; the stress is None (no volume).
    """
    n = len(positions)
    groups = WidthGroups(widths, n)
    _, b_table = groups.pair_tables(0.0)
    want_forces = compute_forces or compute_stress
    forces = np.zeros((n if want_forces else 0, 3))
    potential = np.zeros(n if compute_potential else 0)
    coincident = np.full(2, -1, dtype=np.int64)
    energy = 0.0
    if n:
        with kernel_threads(n):
            energy = direct_sum(positions, charges, groups.groups, b_table, ERFCX_TABLE, want_forces,
                                compute_potential, forces, potential, NO_MATRIX, coincident)
    if coincident[0] >= 0:
        raise coincident_error(coincident)
    self_coefficients = groups.self_coefficients(0.0)
    energy += float(np.sum(self_coefficients * charges**2))
    virial = None
    if compute_stress:
        centred = positions - positions.mean(axis=0) if n else positions
        virial = COULOMB_CONSTANT * (centred.T @ forces)
        virial = 0.5 * (virial + virial.T)
    if compute_potential:
        potential += 2.0 * self_coefficients * charges
    return CoulombResult(
        energy=COULOMB_CONSTANT * energy,
        forces=COULOMB_CONSTANT * forces if compute_forces else None,
        virial=virial,
        stress=None,
        potential=COULOMB_CONSTANT * potential if compute_potential else None,
        method="direct",
    )


def direct_coulomb_matrix(positions, widths) -> np.ndarray:
    """Open-boundary interaction matrix (eV/e²), Gaussian self-energies on the diagonal."""
    n = len(positions)
    groups = WidthGroups(widths, n)
    _, b_table = groups.pair_tables(0.0)
    matrix = np.zeros((n, n))
    coincident = np.full(2, -1, dtype=np.int64)
    if n:
        with kernel_threads(n):
            direct_sum(positions, np.zeros(n), groups.groups, b_table, ERFCX_TABLE, False, False, np.zeros((0, 3)),
                       np.zeros(0), matrix, coincident)
    if coincident[0] >= 0:
        raise coincident_error(coincident)
    matrix[np.diag_indices(n)] = 2.0 * groups.self_coefficients(0.0)
    return COULOMB_CONSTANT * matrix
