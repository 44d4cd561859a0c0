"""Learned charges: kernel charge equilibration (kQEq) and kQEq + short-range GAP potentials.

- :class:`KernelChargeEquilibration` — electronegativities from a sparse kernel model of each
  atom's environment, charges from charge equilibration; fitted in closed form on dipoles or
  charges; predicts charges, dipoles, QEq energies, forces and stress.
- :class:`KQEqPotential` — kQEq + a short-range :class:`~kernelpot.models.gap.SparseGPR`
  trained on energies and forces (sequentially or jointly).

The names below are imported on first use (PEP 562, :mod:`kernelpot.utils.lazy`).
"""

from __future__ import annotations

from ...utils.lazy import lazy_exports

_EXPORTS = {
    "KernelChargeEquilibration": "model",
    "KQEqPotential": "potential",
    "StructureEnvironments": "environments",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
