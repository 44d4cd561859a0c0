"""The electronegativity model of one structure: per-species kernel rows, χ and its position derivatives.

χ_i is a sparse kernel regression on atom i's environment, with sparse points of the
centre's own species (``FittedTerm`` per species, as a GAP term per centre species):

.. math:: \\chi_i = \\delta_z^2 \\sum_{m \\in z} \\alpha_m\\, k(x_i, x_m), \\qquad z = Z_i .

:class:`StructureEnvironments` computes the descriptor of one structure once and splits
its rows by species, so the kernel rows ``K`` (n_atoms, M), χ, and the charge-weighted
derivatives ``Σ_i w_i ∂χ_i/∂r`` (forces, virial, and their design rows for fitting) all
come from one descriptor call.
"""

from __future__ import annotations

import numpy as np

from ..gap.terms import VIRIAL_COMPONENTS

__all__ = ["RowBuffer", "StructureEnvironments"]


class StructureEnvironments:
    """Descriptor rows of one structure, split by centre species.

    Parameters
    ----------
    terms : list of FittedTerm
        One per species, aligned with ``species``.
    species : ndarray of int
        Atomic number of each term.
    atoms : ase.Atoms
    gradients : bool
        Also compute the descriptor's position gradients (forces, virials).
    """

    def __init__(self, terms, species, atoms, gradients):
        self.terms = terms
        self.n_atoms = len(atoms)
        descriptor = terms[0].descriptor.descriptor  # CentreSpecies wraps the shared descriptor
        if gradients:
            X, G = descriptor.transform([atoms], gradients=True)
        else:
            X, G = descriptor.transform([atoms]), None
        self.parts = []  # (term, atom indices, rows, gradients, columns) per species present
        start = 0
        for term in terms:
            stop = start + term.n_sparse
            keep = term.descriptor.kept_rows(X)  # CentreSpecies: the rows of its species
            if keep.any():
                rows, grads = term.descriptor.select(X, G) if gradients else (term.descriptor.select(X), None)
                self.parts.append((term, np.flatnonzero(keep), rows, grads, slice(start, stop)))
            start = stop
        self.n_columns = start

    def kernel_rows(self) -> np.ndarray:
        """``K`` of shape (n_atoms, M): ``χ = K α`` (eV per unit α)."""
        K = np.zeros((self.n_atoms, self.n_columns))
        for term, index, rows, _, columns in self.parts:
            K[index, columns] = term.knm(np.asarray(rows))[0]
        return K

    def electronegativity(self) -> np.ndarray:
        """χ of every atom (eV/e), shape (n_atoms,), from the terms' ``alpha``."""
        chi = np.zeros(self.n_atoms)
        for term, index, rows, _, _ in self.parts:
            chi[index] = term.predict_block(rows, None, self.n_atoms, False)[0]
        return chi

    def weighted_gradient(self, weights, virial=False):
        """``d(Σ_i w_i χ_i)/dr`` (n_atoms, 3) in eV/Å per unit w, and its virial ``-Σ_pairs v ⊗ dE/dr`` (3, 3)."""
        dE_dr = np.zeros((self.n_atoms, 3))
        total_virial = np.zeros((3, 3))
        for term, index, rows, grads, _ in self.parts:
            _, gradient, pair_dE = term.predict_block(rows, grads, self.n_atoms, True, row_scale=weights[index])
            dE_dr += gradient
            if virial:
                if grads.vectors is None:
                    raise ValueError(f"{type(term.descriptor.descriptor).__name__} gives no gradient `vectors`; "
                                     "the virial and stress of kQEq are not available with it")
                total_virial -= grads.vectors.T @ pair_dE
        return dE_dr, total_virial

    def weighted_design(self, weights, forces=True, virial=False, pair_chunk=4096):
        """Design rows of ``E = Σ_i w_i χ_i`` with respect to α, at fixed weights ``w``.

        Returns
        -------
        energy : ndarray (M,)
        dE_dr : ndarray (3 n_atoms, M) or None
            Row ``3 j + a`` is ``d(dE/dr_{j,a})/dα``.
        virial : ndarray (6, M) or None
            The 6 virial components in ``VIRIAL_COMPONENTS`` order.
        """
        energy = np.zeros(self.n_columns)
        dE_dr = np.zeros((3 * self.n_atoms, self.n_columns)) if forces else None
        virial_rows = np.zeros((len(VIRIAL_COMPONENTS), self.n_columns)) if virial else None
        for term, index, rows, grads, columns in self.parts:
            e, f, v = term.design_rows(rows, grads, self.n_atoms, forces, virial, pair_chunk,
                                       row_scale=weights[index])
            energy[columns] = e[0]
            if forces:
                dE_dr[:, columns] = f
            if virial:
                virial_rows[:, columns] = v[0]
        return energy, dE_dr, virial_rows


class RowBuffer:
    """Design rows collected and handed to a :class:`~kernelpot.models.gap.accumulators.QRAccumulator` in blocks.

    kQEq produces a few rows per structure (3 dipole components, or one row per charge); one QR update per
    structure costs ``O(M²)`` each however few the rows, so rows are stacked until a block of at least
    ``min(M, 2²² / M)`` rows (≤ 32 MiB) is ready.
    """

    def __init__(self, accumulator):
        self.accumulator = accumulator
        m = accumulator.m
        self.block_rows = max(64, min(m, (1 << 22) // max(m, 1)))
        self.rows, self.targets, self.count = [], [], 0

    def add(self, rows, targets):
        if len(targets):
            self.rows.append(rows)
            self.targets.append(targets)
            self.count += len(targets)
        if self.count >= self.block_rows:
            self.flush()

    def flush(self):
        if self.count:
            self.accumulator.add(np.vstack(self.rows), np.concatenate(self.targets))
        self.rows, self.targets, self.count = [], [], 0

    def solve(self):
        """``(R, coefficients)`` of all rows added (see ``QRAccumulator.solve``)."""
        self.flush()
        return self.accumulator.solve()
