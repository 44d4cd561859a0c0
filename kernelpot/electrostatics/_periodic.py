"""What Ewald and PME share: real-space sum, self and background terms, result assembly."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ._pair_kernels import ERFCX_TABLE, NO_MATRIX
from ._real_space_kernels import real_space_sum
from ._setup import (
    WidthGroups,
    as_cell,
    as_per_atom,
    as_positions,
    as_widths,
    background_energy,
    bin_counts,
    cell_geometry,
    check_total_charge,
    coincident_error,
    kernel_threads,
)
from .result import COULOMB_CONSTANT, CoulombResult


class Reciprocal:
    """Reciprocal-space part of one evaluation, units k_e = 1 (filled by a subclass)."""

    __slots__ = ("energy", "forces", "potential", "virial")

    def __init__(self, energy, forces=None, virial=None, potential=None):
        self.energy, self.forces, self.virial, self.potential = energy, forces, virial, potential


class PeriodicSum:
    """Base of :class:`~kernelpot.electrostatics.Ewald` and :class:`~kernelpot.electrostatics.PME`.

    Holds the cell and the parameters; subclasses implement ``_reciprocal``.
    """

    method = ""

    def __init__(self, cell, parameters):
        self.cell = as_cell(cell)
        for name in ("alpha", "real_cutoff"):
            value = getattr(parameters, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"`{name}` must be finite and > 0; got {value!r}")
        self.parameters = parameters
        self.volume, self.inverse, self.heights, self.recip = cell_geometry(self.cell)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cell={self.cell.tolist()}, parameters={self.parameters})"

    def compute(self, positions, charges, *, widths=None, total_charge=None, compute_forces=True,
                compute_stress=True, compute_potential=False) -> CoulombResult:
        """Energy, forces, virial/stress and potentials of charges in this cell.

        Parameters
        ----------
        positions : array_like of shape (n_atoms, 3)
            Cartesian positions in Å (need not be wrapped into the cell).
        charges : array_like of shape (n_atoms,)
            Charges in e.
        widths : float or array_like of shape (n_atoms,), optional
            Gaussian widths σ in Å; None for point charges.
        total_charge : float, optional
            Declared net charge in e; required when the charges do not sum to zero
            (within 1e-6 e), which adds the neutralising background.
        compute_forces, compute_stress, compute_potential : bool
            Which derivatives to compute.

        Returns
        -------
        CoulombResult
        """
        positions = as_positions(positions)
        n_atoms = len(positions)
        charges = as_per_atom(charges, n_atoms, "charges", "e")
        widths = as_widths(widths, n_atoms)
        net = check_total_charge(charges, total_charge, periodic=True)
        groups = WidthGroups(widths, n_atoms)
        alpha = self.parameters.alpha
        forces = np.zeros((n_atoms if compute_forces else 0, 3))
        virial = np.zeros((3, 3))
        potential = np.zeros(n_atoms if compute_potential else 0)
        energy = 0.0
        if n_atoms:
            with kernel_threads(n_atoms) as threads:
                energy, reciprocal = self._sums(positions, charges, groups, threads, compute_forces,
                                                compute_stress, compute_potential, forces, virial, potential)
            energy += reciprocal.energy
            if compute_forces:
                forces += reciprocal.forces
            if compute_stress:
                virial += reciprocal.virial
            if compute_potential:
                potential += reciprocal.potential
        self_coefficients = groups.self_coefficients(alpha)
        background = background_energy(net, self.volume, alpha)
        energy += float(np.sum(self_coefficients * charges**2)) + background
        if compute_potential:
            potential += 2.0 * self_coefficients * charges - math.pi * net / (self.volume * alpha**2)
        if compute_stress:
            virial += background * np.eye(3)
            virial = COULOMB_CONSTANT * virial
        return CoulombResult(
            energy=COULOMB_CONSTANT * energy,
            forces=COULOMB_CONSTANT * forces if compute_forces else None,
            virial=virial if compute_stress else None,
            stress=-virial / self.volume if compute_stress else None,
            potential=COULOMB_CONSTANT * potential if compute_potential else None,
            method=self.method,
            parameters=dataclasses.asdict(self.parameters),
        )

    def _sums(self, positions, charges, groups, threads, want_forces, want_virial, want_potential,
              forces, virial, potential):
        """Real-space sum (into the output arrays) and the reciprocal part."""
        a_table, b_table = groups.pair_tables(self.parameters.alpha)
        cutoff = self.parameters.real_cutoff
        coincident = np.full(2, -1, dtype=np.int64)
        energy = real_space_sum(
            positions, charges, groups.groups, a_table, b_table, ERFCX_TABLE, self.cell, self.inverse, self.heights,
            cutoff, bin_counts(self.heights, cutoff, len(positions)), threads, want_forces, want_virial,
            want_potential, forces, virial, potential, NO_MATRIX, coincident)
        if coincident[0] >= 0:
            raise coincident_error(coincident)
        return energy, self._reciprocal(positions, charges, groups, threads, want_forces, want_virial,
                                        want_potential)

    def _reciprocal(self, positions, charges, groups, threads, want_forces, want_virial, want_potential):
        raise NotImplementedError
