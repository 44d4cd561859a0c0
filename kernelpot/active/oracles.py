"""Oracles: anything that labels a structure with an energy (eV) and forces (eV/Å).

An oracle is any ASE calculator. :class:`StoredLabels` is one that reveals
labels computed beforehand (a labelled pool, e.g. rMD17 frames), so a
pool-based experiment pays for exactly the labels it asks for.
:func:`label` calls an oracle and turns any failure into a reason string.
"""

from __future__ import annotations

import hashlib

import numpy as np
from ase.calculators.calculator import BaseCalculator
from ase.calculators.singlepoint import SinglePointCalculator

__all__ = ["StoredLabels", "label"]


def _key(atoms):
    # Positions rounded to 1e-8 Å: the same frame read back from a text file matches.
    digest = hashlib.sha1()
    digest.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    digest.update(np.round(np.asarray(atoms.positions, dtype=np.float64), 8).tobytes())
    return digest.hexdigest()


class StoredLabels(BaseCalculator):
    """An ASE calculator that returns stored labels of known structures.

    Parameters
    ----------
    atoms_list : list of ase.Atoms
        The structures (Å).
    energies : array-like of shape (n_structures,)
        Total energies, eV.
    forces : list of ndarray of shape (n_atoms_s, 3)
        Forces, eV/Å.

    Notes
    -----
    A structure is recognised by its atomic numbers and positions rounded
    to 1e-8 Å; an unknown structure raises ``KeyError``.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, atoms_list, energies, forces):
        super().__init__()
        if not (len(atoms_list) == len(energies) == len(forces)):
            raise ValueError(f"`atoms_list`, `energies` and `forces` must have the same length; got "
                             f"{len(atoms_list)}, {len(energies)}, {len(forces)}")
        self.table = {_key(a): (float(e), np.array(f, dtype=np.float64))
                      for a, e, f in zip(atoms_list, energies, forces)}
        self.calls = 0

    def calculate(self, atoms, properties, system_changes):
        self.calls += 1
        try:
            energy, forces = self.table[_key(atoms)]
        except KeyError:
            raise KeyError("StoredLabels: this structure is not among the stored ones") from None
        self.results = {"energy": energy, "free_energy": energy, "forces": forces.copy()}


def label(atoms, oracle):
    """Label a copy of ``atoms`` with ``oracle``.

    Parameters
    ----------
    atoms : ase.Atoms
    oracle : ase calculator

    Returns
    -------
    labelled : ase.Atoms or None
        A copy carrying a ``SinglePointCalculator`` with ``energy`` (eV) and
        ``forces`` (eV/Å); None when the oracle failed.
    reason : str or None
        Why it failed (the exception, or non-finite labels).
    """
    work = atoms.copy()
    work.calc = oracle
    try:
        energy = float(work.get_potential_energy())
        forces = np.array(work.get_forces(), dtype=np.float64)
    except Exception as error:  # an oracle may fail in any way: log it, skip the structure
        return None, f"{type(error).__name__}: {error}"
    if not np.isfinite(energy) or forces.shape != (len(atoms), 3) or not np.all(np.isfinite(forces)):
        return None, f"non-finite or malformed labels (energy={energy}, forces shape {forces.shape})"
    labelled = atoms.copy()
    labelled.calc = SinglePointCalculator(labelled, energy=energy, forces=forces)
    return labelled, None
