"""SOAP-GAP (kernelpot SparseGPR) on rMD17, split 01: force and energy MAE on the test frames.

rMD17 energies are in kcal/mol and forces in kcal/mol/Å; they are converted to eV and eV/Å here.
Published SOAP-GAP force MAEs at 1000 training frames (Christensen & von Lilienfeld 2020):
aspirin 44.9, ethanol 18.1, malonaldehyde 26.4, uracil 17.6 meV/Å.

    python benchmarks/gap_rmd17.py ethanol --n-train 1000 --n-sparse 3000
"""

import argparse
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from kernelpot.descriptors.soap import SOAP
from kernelpot.models import GAPTerm, NormalisedDotProduct, SparseGPR

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rmd17"
EV_PER_KCAL_MOL = 0.0433641153
PUBLISHED_SOAP_GAP = {"aspirin": 44.9, "ethanol": 18.1, "malonaldehyde": 26.4, "uracil": 17.6}


def load(molecule, part):
    data = np.load(DATA / f"rmd17_{molecule}_{part}_01.npz")
    atoms = [Atoms(numbers=data["nuclear_charges"], positions=c) for c in data["coords"]]
    return atoms, data["energies"] * EV_PER_KCAL_MOL, data["forces"] * EV_PER_KCAL_MOL


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("molecule", choices=sorted(PUBLISHED_SOAP_GAP))
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--n-sparse", type=int, default=3000)
    parser.add_argument("--r-cut", type=float, default=5.0)
    parser.add_argument("--n-max", type=int, default=8)
    parser.add_argument("--l-max", type=int, default=6)
    parser.add_argument("--sigma", type=float, default=0.4)
    parser.add_argument("--default-sigma", type=float, nargs=2, default=(0.0005, 0.01),
                        help="energy (eV/atom) and force (eV/Å) noise")
    args = parser.parse_args()
    train, energies, forces = load(args.molecule, "train")
    test, test_energies, test_forces = load(args.molecule, "test")
    train, energies, forces = train[: args.n_train], energies[: args.n_train], forces[: args.n_train]
    test, test_energies, test_forces = test[: args.n_test], test_energies[: args.n_test], test_forces[: args.n_test]
    species = sorted(set(train[0].numbers.tolist()))
    soap = SOAP(species=species, r_cut=args.r_cut, n_max=args.n_max, l_max=args.l_max, sigma=args.sigma)
    model = SparseGPR([GAPTerm(soap, NormalisedDotProduct(4), delta=1.0, n_sparse=args.n_sparse,
                               sparse_method="fps")],
                      default_sigma=(*args.default_sigma, 0.05), random_state=0)
    start = time.perf_counter()
    model.fit(train, energies=energies, forces=list(forces))
    fit_seconds = time.perf_counter() - start
    prediction = model.predict(test, properties=("energy", "forces"))
    force_mae = 1e3 * np.abs(prediction["forces"] - np.concatenate(test_forces)).mean()
    energy_mae = 1e3 * np.abs(prediction["energy"] - test_energies).mean()
    print(f"rMD17 {args.molecule}: {args.n_train} training frames, {args.n_sparse} sparse points, fit {fit_seconds:.0f} s")
    print(f"force MAE {force_mae:.1f} meV/Å (published SOAP-GAP {PUBLISHED_SOAP_GAP[args.molecule]}), "
          f"energy MAE {energy_mae:.1f} meV")


if __name__ == "__main__":
    main()
