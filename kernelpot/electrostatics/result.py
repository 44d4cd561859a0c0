"""The Coulomb constant and the result type shared by every electrostatics method."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["COULOMB_CONSTANT", "CoulombResult"]

#: Coulomb constant k_e = e² / (4π ε0) in eV·Å/e², from CODATA 2014 — the value of
#: ``ase.units.Hartree * ase.units.Bohr`` with ASE's default constants (ASE ≥ 3.18), so
#: energies agree with ASE calculators and with data converted from Hartree/Bohr by ASE.
#: (CODATA 2018 gives 14.399645478; the two differ by 9e-9 relative.)
COULOMB_CONSTANT = 14.399645351950548


@dataclass(frozen=True)
class CoulombResult:
    """Electrostatic energy and its derivatives for one configuration.

    Attributes
    ----------
    energy : float
        Energy in eV (for Gaussian charges including their self-energies; for a charged
        periodic cell including the neutralising background).
    forces : ndarray of shape (n_atoms, 3) or None
        ``-dE/dr_i`` at fixed charges, eV/Å.
    virial : ndarray of shape (3, 3) or None
        ``-dE/dε`` (ε the symmetric strain, positions scaled with the cell), eV. For open
        boundaries it is the pair virial ``-Σ_pairs r_ij ⊗ dE/dr_ij``.
    stress : ndarray of shape (3, 3) or None
        ASE sign, ``-virial / volume``, eV/Å³; None for open boundaries (no volume).
    potential : ndarray of shape (n_atoms,) or None
        ``φ_i = dE/dq_i`` at fixed positions, V (= eV/e); includes the Gaussian self term
        ``q_i/(σ_i√π)`` and, periodic, the background term.
    method : str
        ``"direct"``, ``"ewald"`` or ``"pme"``.
    parameters : dict
        The method's parameters (``alpha`` 1/Å, ``real_cutoff`` Å, ``k_cutoff`` 1/Å or
        ``mesh``/``order``, ``estimated_error``); empty for the direct sum.
    """

    energy: float
    forces: np.ndarray | None = None
    virial: np.ndarray | None = None
    stress: np.ndarray | None = None
    potential: np.ndarray | None = None
    method: str = "direct"
    parameters: dict = field(default_factory=dict)
