"""Frozen gap_fit runs of two command lines, for ``kernelpot gap_fit`` (tests/test_gap_fit_command.py).

Data: ``train.xyz`` (20 rattled 8-atom Cu/Ag fcc cells, 40 % Ag at random,
plus an isolated Cu and an isolated Ag atom for gap_fit's default
``e0_method=isolated``) and ``test.xyz`` (4 more cells), labelled with ASE's
EMT calculator (energies eV, forces eV/Å) under ``energy``/``forces``, with
config types ``md``/``bulk``/``isolated_atom``. Both are written here.

The commands (:data:`COMMANDS`) are run with QUIP/GAP's ``gap_fit``
(quippy-ase 0.10.3 wheel, ASE 3.29) and its models evaluated on ``test.xyz``
with ``quippy.potential.Potential``; ``reference.npz`` keeps, per command,
the energies (eV) and forces (eV/Å). Two multi-species cases of gap_fit's
own defaults (``add_species=T``; ``rnd_seed=1``, as gap_fit's 'uniform' sparse points are drawn at
random from bins): a pair term written as
``distance_Nb order=2 compact_clusters`` (split into Cu-Cu, Cu-Ag, Ag-Ag),
and a SOAP term with more ``n_sparse`` than environments (so every
environment is a sparse point and no random choice enters; split into
Cu and Ag centres).

Run from this directory: ``python make_reference.py`` (needs gap_fit on PATH).
"""

import shlex
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read, write

HERE = Path(__file__).resolve().parent
COMMON = ("energy_parameter_name=energy force_parameter_name=forces do_copy_at_file=F sparse_separate_file=F rnd_seed=1 "
          "at_file=train.xyz default_sigma={0.005 0.05 0 0} "
          "config_type_sigma={isolated_atom:0.0001:0.01:1.0:0.0:bulk:0.002:0.05:0.1:0.0}")
COMMANDS = {
    "pairs": COMMON + " gap={distance_Nb order=2 cutoff=4.5 cutoff_transition_width=1.0 compact_clusters "
                      "covariance_type=ard_se delta=0.5 theta_uniform=1.0 sparse_method=uniform n_sparse=12}",
    "soap": COMMON + " gap={soap cutoff=4.0 l_max=4 n_max=6 atom_sigma=0.5 covariance_type=dot_product zeta=2 "
                     "delta=0.3 n_sparse=200 sparse_method=cur_points} sparse_jitter=1e-8",
}


def make_data():
    rng = np.random.default_rng(0)
    frames = []
    for k in range(24):
        cell = bulk("Cu", "fcc", a=3.6 + 0.05 * rng.standard_normal(), cubic=True).repeat((2, 1, 1))
        symbols = np.array(cell.get_chemical_symbols())
        symbols[rng.random(len(cell)) < 0.4] = "Ag"
        cell.set_chemical_symbols(symbols)
        cell.rattle(0.1, seed=k)
        frames.append(_labelled(cell, "bulk" if k % 2 else "md"))
    for symbol in ("Cu", "Ag"):
        atom = bulk(symbol, "fcc", a=3.6)[:1]
        atom.set_cell([20.0, 20.0, 20.0])
        frames.append(_labelled(atom, "isolated_atom"))
    write(HERE / "train.xyz", frames[:20] + frames[24:])
    write(HERE / "test.xyz", frames[20:24])


def _labelled(atoms, config_type):
    atoms.calc = EMT()
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    out = atoms.copy()
    out.info.update(energy=energy, config_type=config_type)
    out.arrays["forces"] = forces
    return out


def main():
    from quippy.potential import Potential

    make_data()
    test = read(HERE / "test.xyz", ":")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "train.xyz").write_bytes((HERE / "train.xyz").read_bytes())
        for name, command in COMMANDS.items():
            subprocess.run(["gap_fit", *shlex.split(command), f"gp_file={name}.xml"], cwd=tmp, check=True,
                           capture_output=True, env={"OMP_NUM_THREADS": "1", "PATH": __import__("os").environ["PATH"]})
            potential = Potential(param_filename=str(Path(tmp) / f"{name}.xml"))
            energies, forces = [], []
            for atoms in test:
                copy = atoms.copy()
                copy.calc = potential
                energies.append(copy.get_potential_energy())
                forces.append(copy.get_forces())
            results[f"{name}_energies"] = np.array(energies)
            results[f"{name}_forces"] = np.concatenate(forces)
    np.savez(HERE / "reference.npz", **results)


if __name__ == "__main__":
    main()
