"""The design builder: whitened design rows of a GAP model, the one interface to them inside ``models.gap``.

Once a :class:`~kernelpot.models.gap.SparseGPR` has chosen its sparse points
and ``e0``, every least-squares computation on its training data needs the
same thing: the rows ``Sigma^{-1/2} K_NM`` (energies, forces, virials) and
targets ``Sigma^{-1/2} (y - e0)`` of some structures, built in blocks that
fit a memory budget. :class:`DesignBuilder` is that object. It is used by

* the fit (:meth:`SparseGPR.fit`), serially or on workers
  (:func:`kernelpot.models.gap.accumulators.partial_factor`, which receive
  the builder, not the model);
* the memory plan (:func:`kernelpot.models.gap.budget.plan_fit_blocks`):
  block sizes, pair chunks, gradient bytes per atom;
* FITC (:func:`kernelpot.models.gap.variance.fitc_factor`): rows and noise;
* incremental learning (:class:`kernelpot.models.gap.IncrementalSparseGPR`);
* the active-learning strategies that need the posterior of design rows
  (:mod:`kernelpot.active.strategies`).

Its public surface is :meth:`from_model`, :meth:`rows`, :meth:`unlabelled_rows`,
:meth:`row_sigmas`, :meth:`observed`, :meth:`plan_blocks`, :meth:`pair_chunk`,
:meth:`gradient_bytes_per_atom` and :attr:`n_sparse`. It holds only what the rows depend on (the fitted terms,
``e0``, the noise table), so it is small to send to a worker.
"""

from __future__ import annotations

import numpy as np

from ...descriptors.centre_species import SharedDescriptors
from .labels import check_labels, check_sigma, structure_sigmas
from .terms import VIRIAL_COMPONENTS

__all__ = ["DesignBuilder"]


class DesignBuilder:
    """Whitened design rows and targets of a GAP model with chosen sparse points.

    Parameters
    ----------
    terms : list of FittedTerm
        Terms with sparse points (``alpha`` is not used).
    e0 : dict
        ``{Z: eV}`` reference energies subtracted from the energy targets.
    sigma_table : dict
        Noise table from :func:`kernelpot.models.gap.labels.check_sigma`.
    sigma_per_atom : bool
        gap_fit's ``sigma_per_atom`` (energy and virial sigmas times ``sqrt(n_atoms)``).
    block_bytes : float
        Default memory budget (bytes) of one block of rows; it also bounds
        the kernel-derivative temporaries (:meth:`pair_chunk`).
    """

    def __init__(self, terms, e0, sigma_table, sigma_per_atom, block_bytes):
        self.terms = terms
        self.e0 = e0
        self.sigma_table = sigma_table
        self.sigma_per_atom = sigma_per_atom
        self.block_bytes = block_bytes

    @classmethod
    def from_model(cls, model, block_bytes=None):
        """The builder of a SparseGPR whose ``terms_`` and ``e0_`` are chosen (fitted or being fitted).

        The noise is the model's ``default_sigma`` and ``config_type_sigma``, with the energy and force
        noise scaled as an auto fit chose them (``auto_choice_["sigma_factors"]``).

        ``block_bytes`` defaults to the block budget its last fit chose
        (``memory_estimate_["block_budget"]``), else ``max_block_memory`` MiB.
        """
        if block_bytes is None:
            block_bytes = getattr(model, "memory_estimate_", {}).get("block_budget", model.max_block_memory * 2**20)
        table = check_sigma(model.default_sigma, model.config_type_sigma)
        factors = getattr(model, "auto_choice_", {}).get("sigma_factors")
        if factors is not None:  # SparseGPR(auto=...) chose the energy and force noise: rows as its fit built them
            table = {key: (e * factors[0], f * factors[1], v) for key, (e, f, v) in table.items()}
        return cls(model.terms_, model.e0_, table, model.sigma_per_atom, block_bytes)

    @property
    def n_sparse(self) -> int:
        """All sparse points (the columns of a design row), terms side by side."""
        return sum(t.n_sparse for t in self.terms)

    def pair_chunk(self, block_bytes=None) -> int:
        """Gradient pairs per chunk, bounding the (chunk, 3, n_sparse) temporaries of ``design_rows``."""
        block_bytes = self.block_bytes if block_bytes is None else block_bytes
        m = max(t.n_sparse for t in self.terms)
        return max(256, int(block_bytes / (8 * 3 * 4 * m)))

    def gradient_bytes_per_atom(self, atoms_list) -> tuple[float, float]:
        """Bytes of descriptor gradients per atom (all terms) and the most gradient pairs per atom of a term.

        Measured on the largest structure of ``atoms_list``.
        """
        probe = max(atoms_list, key=len)
        total, pairs = 0, 0
        for term in self.terms:
            _, G = term.descriptor.transform([probe], gradients=True)
            total += G.values.nbytes + 3 * G.center.nbytes + (0 if G.vectors is None else G.vectors.nbytes)
            pairs = max(pairs, G.n_pairs)
        n = max(1, len(probe))
        return total / n, pairs / n

    def plan_blocks(self, atoms_list, labels, bytes_per_atom, block_bytes=None, start=0):
        """Group structures so that design rows and descriptor gradients each fit ``block_bytes``.

        Parameters
        ----------
        atoms_list : list of ase.Atoms
        labels : Labels
        bytes_per_atom : float
            Descriptor gradient bytes per atom (0 without force or virial labels).
        block_bytes : float, optional
            Defaults to the builder's ``block_bytes``.
        start : int, default=0
            Group only structures ``start:`` (the earlier ones are fitted already).

        Returns
        -------
        blocks : list of (list of int, int)
            ``[(structures, n_rows), ...]``; structures without labels are left out.
        n_observations : int
        """
        budget = self.block_bytes if block_bytes is None else block_bytes
        max_rows = max(1, int(budget / (8 * self.n_sparse)))
        max_atoms = max(1, int(budget / max(bytes_per_atom, 1.0)))
        blocks, current, rows, atoms, total = [], [], 0, 0, 0
        for s, structure in enumerate(atoms_list):
            n = ((labels.energies[s] is not None) + 3 * len(structure) * (labels.forces[s] is not None)
                 + 6 * (labels.virials[s] is not None))
            total += n
            if not n or s < start:
                continue
            if current and (rows + n > max_rows or atoms + len(structure) > max_atoms):
                blocks.append((current, rows))
                current, rows, atoms = [], 0, 0
            current.append(s)
            rows += n
            atoms += len(structure)
        if current:
            blocks.append((current, rows))
        return blocks, total

    def row_sigmas(self, atoms_list, structures, labels) -> np.ndarray:
        """Noise sigma of every observation of ``structures``, in the row order of :meth:`rows`.

        Energies (eV), then forces (eV/Å, atom-major, x y z), then the 6
        virial components (eV) of each structure that has them.
        """
        sub = [atoms_list[s] for s in structures]
        n_atoms = np.array([len(a) for a in sub])
        has_e, has_f, has_v = self.observed(structures, labels)
        sig = np.array([structure_sigmas(self.sigma_table, labels.config_types[s], len(atoms_list[s]),
                                         self.sigma_per_atom) for s in structures])
        sigmas = [sig[has_e, 0]]
        if has_f.any():
            sigmas.append(np.repeat(sig[:, 1], 3 * n_atoms)[np.repeat(has_f, 3 * n_atoms)])
        if has_v.any():
            sigmas.append(np.repeat(sig[has_v, 2], 6))
        return np.concatenate(sigmas)

    @staticmethod
    def observed(structures, labels):
        """Boolean arrays (n_structures,): which of ``structures`` have an energy, forces, a virial."""
        has_e = np.array([labels.energies[s] is not None for s in structures])
        has_f = np.array([labels.forces[s] is not None for s in structures])
        has_v = np.array([labels.virials[s] is not None for s in structures])
        return has_e, has_f, has_v

    def rows(self, atoms_list, structures, labels):
        """Whitened design rows ``Sigma^{-1/2} K_NM`` and targets of some structures.

        Parameters
        ----------
        atoms_list : list of ase.Atoms
        structures : sequence of int
            Indices into ``atoms_list`` (one block).
        labels : Labels
            Labels of ``atoms_list`` (:func:`~kernelpot.models.gap.labels.check_labels`).

        Returns
        -------
        A : ndarray of shape (n_observations, n_sparse)
            Rows: energies, then dE/dr (atom-major, x y z), then the 6
            virial components of each structure, each divided by its sigma.
        b : ndarray of shape (n_observations,)
            Targets ``(E - e0)``, ``-F``, virials, divided by the same sigmas.
        """
        sub = [atoms_list[s] for s in structures]
        n_atoms = np.array([len(a) for a in sub])
        has_e, has_f, has_v = self.observed(structures, labels)
        force_mask = np.repeat(has_f, 3 * n_atoms)
        pair_chunk = self.pair_chunk()
        n_e, n_f = int(has_e.sum()), int(force_mask.sum())
        # One output array filled term by term: no stacked copies of the block.
        A = np.empty((n_e + n_f + 6 * int(has_v.sum()), self.n_sparse))
        column = 0
        shared = SharedDescriptors()  # per-centre-species terms evaluate their SOAP once, not once per species
        for term in self.terms:
            cols = slice(column, column + term.n_sparse)
            column += term.n_sparse
            if has_f.any() or has_v.any():
                X, G = shared.get(term.descriptor, sub, True)
            else:
                X, G = shared.get(term.descriptor, sub, False), None
            e, f, v = term.design_rows(X, G, int(n_atoms.sum()), has_f.any(), has_v.any(), pair_chunk)
            del X, G
            A[:n_e, cols] = e[has_e]
            if has_f.any():
                A[n_e : n_e + n_f, cols] = f if n_f == len(f) else f[force_mask]
            if has_v.any():
                A[n_e + n_f :, cols] = v[has_v].reshape(-1, term.n_sparse)
            del e, f, v
        e0 = np.array([sum(self.e0[int(z)] for z in a.numbers) for a in sub])
        targets = [np.array([labels.energies[s] for s in structures if labels.energies[s] is not None])
                   - e0[has_e]]
        if has_f.any():
            targets.append(np.concatenate([-labels.forces[s].ravel() for s in structures
                                           if labels.forces[s] is not None]))
        if has_v.any():
            targets.append(np.array([0.5 * (labels.virials[s][a, b] + labels.virials[s][b, a])
                                     for s in structures if labels.virials[s] is not None
                                     for a, b in VIRIAL_COMPONENTS]))
        sigma = self.row_sigmas(atoms_list, structures, labels)
        A /= sigma[:, None]
        return A, np.concatenate(targets) / sigma

    def unlabelled_rows(self, atoms_list, *, forces=True):
        """Whitened rows of the energies (and forces) of unlabelled structures, for posterior variances.

        The rows do not depend on the label values, so zeros stand in; the
        config type is ``"default"``.

        Returns
        -------
        A : ndarray of shape (n_observations, n_sparse)
            As :meth:`rows`: the energies of all structures, then their forces.
        sigma : ndarray of shape (n_observations,)
            The noise sigma of each row (eV, eV/Å).
        """
        counts = [len(a) for a in atoms_list]
        labels = check_labels(atoms_list, [0.0] * len(atoms_list),
                              [np.zeros((c, 3)) for c in counts] if forces else None, None, None)
        structures = np.arange(len(atoms_list))
        return self.rows(atoms_list, structures, labels)[0], self.row_sigmas(atoms_list, structures, labels)
