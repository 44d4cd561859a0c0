"""Electrostatics: energies, forces, stress and potentials of point and Gaussian charges.

Open boundaries by direct summation; 3D-periodic cells (any triclinic shape) by
Ewald summation or smooth particle-mesh Ewald, with parameters chosen from one
accuracy tolerance. Units: Å, e, eV (:data:`COULOMB_CONSTANT`).

- :func:`coulomb` — energy, forces, virial/stress, site potentials (``CoulombResult``)
- :func:`coulomb_matrix` — the matrix A of ``E = ½ qᵀAq`` for charge equilibration
- :class:`QEqSystem` — charge equilibration of one structure (charges minimising the QEq energy)
- :class:`Ewald`, :class:`PME` — reusable engines for one cell (e.g. an NVT run)
- :mod:`.parameters` — error estimates and parameter choice

The names below are imported on first use (PEP 562, :mod:`kernelpot.utils.lazy`).
"""

from __future__ import annotations

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "COULOMB_CONSTANT": "result",
    "CoulombResult": "result",
    "coulomb": "dispatch",
    "coulomb_matrix": "dispatch",
    "Ewald": "ewald",
    "PME": "pme",
    "QEqSystem": "equilibration",
    "declared_charges": "equilibration",
    "EwaldParameters": "parameters",
    "PMEParameters": "parameters",
    "ewald_parameters": "parameters",
    "pme_parameters": "parameters",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
