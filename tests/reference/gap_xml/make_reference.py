"""Small GAP XML models written by ``gap_fit`` and quippy's predictions with them, for tests/test_gap_xml.py.

Run from this directory: ``python make_reference.py [SHARED_DATA]`` (needs quippy-ase 0.10.3, its ``gap_fit``
on PATH, and the project's shared data folder for mlearn Mo; default ``$KERNELPOT_SHARED_DATA`` or
``../../../../shared/data``). It writes, for each case, ``<case>.xml`` and its ``<case>.xml.sparseX.*`` files
(gap_fit's output; the training configurations gap_fit embeds in ``<XYZ_data>`` are removed to keep the
files small: quippy does not read them), and ``reference.npz`` with, per case, the test structures
(``<case>_numbers``, ``_positions``, ``_cell``, ``_pbc``, ``_n_atoms``) and quippy's ``Potential``
predictions on them (``_energy`` eV, ``_forces`` eV/Å stacked over structures, ``_stress`` eV/Å³ 3×3 for
periodic cases):

* ``si``: 11 mlearn Si training cells (every 20th), ``distance_2b`` + ``soap`` (gap_fit adds ``Z=14``),
  10 + 20 sparse points; 3 test cells (ASE stresses).
* ``mo``: 8 mlearn Mo training cells, the same recipe at Mo's scale; 2 test cells.
* ``ethanol``: 20 rMD17 ethanol frames (eV), a wildcard ``distance_2b`` (``add_species=F``), an O-H
  ``distance_2b Z1=1 Z2=8`` and ``soap`` split by gap_fit into one term per centre species (``Z=6``, ``Z=8``,
  ``Z=1``, ``species_Z={6 8 1}``: GAP's channel order, not sorted), 10 sparse points each,
  ``central_weight=0.7``; 5 test frames.

gap_fit picks CUR points at random, so rerunning changes the models and the predictions together.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
KCAL = 0.0433641153087705  # eV per kcal/mol
GAP_SI = ("distance_2b cutoff=5.0 n_sparse=10 covariance_type=ard_se delta=2.0 theta_uniform=1.0 sparse_method=uniform"
          " : soap l_max=3 n_max=4 atom_sigma=0.5 cutoff=4.5 cutoff_transition_width=1.0 delta=0.2"
          " covariance_type=dot_product zeta=4 n_sparse=20 sparse_method=cur_points")
GAP_ETHANOL = ("distance_2b cutoff=4.0 n_sparse=8 covariance_type=ard_se delta=0.5 theta_uniform=1.0 "
               "sparse_method=uniform add_species=F : distance_2b Z1=1 Z2=8 cutoff=3.0 n_sparse=5 "
               "covariance_type=ard_se delta=0.3 theta_uniform=0.7 sparse_method=uniform add_species=F : "
               "soap l_max=3 n_max=2 atom_sigma=0.5 cutoff=4.0 cutoff_transition_width=1.0 central_weight=0.7 "
               "delta=0.2 covariance_type=dot_product zeta=4 n_sparse=10 sparse_method=cur_points")
OPTIONS = ("default_sigma={0.002 0.1 0.05 0.0}", "e0_method=average", "energy_parameter_name=energy",
           "force_parameter_name=forces", "virial_parameter_name=none")


def ethanol_frames():
    data = np.load(ROOT / "data" / "rmd17_subset" / "rmd17_ethanol_train_01.npz")
    frames = []
    for coords, energy, forces in zip(data["coords"], data["energies"], data["forces"]):
        atoms = Atoms(numbers=data["nuclear_charges"], positions=coords, cell=[20.0] * 3, pbc=False)
        atoms.center()
        atoms.calc = SinglePointCalculator(atoms, energy=energy * KCAL, forces=forces * KCAL)
        frames.append(atoms)
    return frames[:20], frames[20:25]


def cases(shared):
    si_train = read(ROOT / "data" / "mlearn_si" / "mlearn_Si_training.extxyz", ":")[::20]
    si_test = read(ROOT / "data" / "mlearn_si" / "mlearn_Si_test.extxyz", ":")[::9]
    mo_train = read(shared / "gap_materials" / "mlearn" / "mlearn_Mo_training.extxyz", ":")[::25]
    mo_test = read(shared / "gap_materials" / "mlearn" / "mlearn_Mo_test.extxyz", ":")[::15]
    ethanol_train, ethanol_test = ethanol_frames()
    return {"si": (GAP_SI, si_train, si_test), "mo": (GAP_SI.replace("cutoff=4.5", "cutoff=4.7"), mo_train, mo_test),
            "ethanol": (GAP_ETHANOL, ethanol_train, ethanol_test)}


def fit(name, gap, train):
    write(HERE / f"{name}_train.xyz", train)
    for old in HERE.glob(f"{name}.xml*"):
        old.unlink()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(["gap_fit", f"at_file={name}_train.xyz", f"gap={{{gap}}}", *OPTIONS, f"gp_file={name}.xml"],
                   cwd=HERE, env=env, check=True, stdout=subprocess.DEVNULL)
    for extra in (f"{name}_train.xyz", f"{name}_train.xyz.idx"):
        (HERE / extra).unlink(missing_ok=True)
    xml = HERE / f"{name}.xml"
    xml.write_text(re.sub(r"\s*<XYZ_data>.*?</XYZ_data>", "", xml.read_text(), flags=re.DOTALL))


def predict(name, frames):
    from quippy.potential import Potential

    potential = Potential(param_filename=str(HERE / f"{name}.xml"))
    out = {"energy": [], "forces": [], "stress": []}
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = potential
        out["energy"].append(atoms.get_potential_energy())
        out["forces"].append(atoms.get_forces())
        if atoms.pbc.all():
            out["stress"].append(atoms.get_stress(voigt=False))
    arrays = {f"{name}_energy": np.array(out["energy"]), f"{name}_forces": np.concatenate(out["forces"]),
              f"{name}_numbers": np.concatenate([a.numbers for a in frames]),
              f"{name}_positions": np.concatenate([a.positions for a in frames]),
              f"{name}_cell": np.array([a.cell.array for a in frames]), f"{name}_pbc": np.array([a.pbc for a in frames]),
              f"{name}_n_atoms": np.array([len(a) for a in frames])}
    if out["stress"]:
        arrays[f"{name}_stress"] = np.array(out["stress"])
    return arrays


def main():
    default = os.environ.get("KERNELPOT_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    shared = Path(sys.argv[1] if len(sys.argv) > 1 else default)
    arrays = {}
    for name, (gap, train, test) in cases(shared).items():
        fit(name, gap, train)
        arrays.update(predict(name, test))
    np.savez_compressed(HERE / "reference.npz", **arrays)


if __name__ == "__main__":
    main()
