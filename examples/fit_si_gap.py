"""Fit a GAP potential in Python from ASE frames, save it, and use it as an ASE calculator.

The same model as ``kernelpot fit data/mlearn_si/mlearn_Si_training.extxyz``: the same recipe
(``DEFAULT_GAP``, the gap_fit string the command uses) and noise (``DEFAULT_SIGMA``), fitted to the DFT
energies, forces and stresses that ``ase.io.read`` puts on each frame's calculator. Prints the test errors.

    python examples/fit_si_gap.py [--every 1] [--output si_python.kpot]

``--every 10`` fits every 10th training structure (a quick run, larger errors).
"""

import argparse
from pathlib import Path

import numpy as np
from ase.io import read

from kernelpot.cli.options import check_script_outputs
from kernelpot.models import SparseGPR
from kernelpot.potential import GAPCalculator, save_model
from kernelpot.potential.recipe import (
    DEFAULT_GAP,
    DEFAULT_SIGMA,
    describe_recipe,
    terms_from_gap_string,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "mlearn_si"


def fit(train, output: Path) -> SparseGPR:
    """The default recipe fitted to ASE frames that carry DFT energies, forces and stresses; saved to ``output``."""
    species = sorted({int(z) for atoms in train for z in atoms.numbers})
    model = SparseGPR(terms_from_gap_string(DEFAULT_GAP, species), default_sigma=DEFAULT_SIGMA, random_state=0)
    model.fit(train, energies=[atoms.get_potential_energy() for atoms in train],
              forces=[atoms.get_forces() for atoms in train],
              # virial = -stress x volume (eV); ASE's stress is tensile-positive, eV/Å³
              virials=[-atoms.get_stress(voigt=False) * atoms.get_volume() for atoms in train])
    save_model(model, output, metadata={"training_file": "mlearn_Si_training.extxyz", "gap": DEFAULT_GAP})
    return model


def errors_on(model_file: Path, test) -> dict:
    """RMSE of energies (meV/atom), forces (eV/Å) and stresses (GPa) of the saved model, as a calculator."""
    calc = GAPCalculator(model_file, uncertainty=False)
    energy, forces, stress = [], [], []
    for reference in test:
        atoms = reference.copy()
        atoms.calc = calc
        energy.append((atoms.get_potential_energy() - reference.get_potential_energy()) / len(atoms))
        forces.append((atoms.get_forces() - reference.get_forces()).ravel())
        stress.append(atoms.get_stress() - reference.get_stress())

    def rmse(values):
        return float(np.sqrt(np.mean(np.concatenate([np.ravel(v) for v in values]) ** 2)))

    return {"energy_meV_per_atom": 1e3 * rmse(energy), "forces_eV_per_A": rmse(forces),
            "stress_GPa": rmse(stress) * 160.21766208}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=1, help="fit every n-th training structure (default: 1)")
    parser.add_argument("--output", type=Path, default=Path("si_python.kpot"), help="model file (default: %(default)s)")
    args = parser.parse_args(argv)
    check_script_outputs(parser, {"--output": args.output}, models=["--output"])  # before the fit, not after it

    train = read(DATA / "mlearn_Si_training.extxyz", f"::{args.every}")
    test = read(DATA / "mlearn_Si_test.extxyz", ":")
    print(f"recipe:\n{describe_recipe()}")
    fit(train, args.output)
    errors = errors_on(args.output, test)
    print(f"fitted {len(train)} structures, wrote {args.output}; test RMSE over {len(test)} structures: "
          f"energy {errors['energy_meV_per_atom']:.2f} meV/atom, forces {errors['forces_eV_per_A']:.3f} eV/Å, "
          f"stress {errors['stress_GPa']:.2f} GPa")
    return errors


if __name__ == "__main__":
    main()
