"""Calibrated force uncertainties for a SOAP-GAP of rMD17 ethanol, from fit to MD-ready calculator.

1. fit a SparseGPR on 150 rMD17 ethanol frames (kcal/mol -> eV);
2. predict forces with their DTC standard deviations on 150 validation
   frames (carved from the training split) and fit one σ scale by maximum
   likelihood (``recalibrate``);
3. on 300 test frames: coverage of ±1σ/±2σ, NLL, the rank correlation of σ
   and error per structure, and a reliability diagram PNG;
4. save the model (the scale travels in the .kpot file) and read
   ``energy_std`` / ``forces_std`` from the ASE calculator.

    python examples/uncertainty_calibration.py --out /tmp/uq_example

Needs matplotlib for the figure (``pip install kernelpot[examples]``).
"""

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms

from kernelpot.descriptors.soap import SOAP
from kernelpot.kernels import NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.potential.calculator import GAPCalculator
from kernelpot.potential.serialization import save_model
from kernelpot.uncertainty.calibration import (
    calibration_summary,
    recalibrate,
    reliability_diagram,
    spearman,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rmd17"
EV_PER_KCAL_MOL = 0.0433641153


def load(part):
    data = np.load(DATA / f"rmd17_ethanol_{part}_01.npz")
    atoms = [Atoms(numbers=data["nuclear_charges"], positions=c) for c in data["coords"]]
    return atoms, data["energies"] * EV_PER_KCAL_MOL, list(data["forces"] * EV_PER_KCAL_MOL)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="uq_example", help="output directory")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    atoms, energies, forces = load("train")
    order = np.random.default_rng(0).permutation(len(atoms))
    train, val = order[:150], order[150:300]
    test_atoms, _, test_forces = load("test")
    test_atoms, test_forces = test_atoms[:300], np.concatenate(test_forces[:300])

    soap = SOAP(species=[1, 6, 8], r_cut=4.0, n_max=6, l_max=4, sigma=0.4)
    model = SparseGPR([GAPTerm(soap, NormalizedDotProductCovariance(4), n_sparse=400, sparse_method="fps")],
                      default_sigma=(0.0005, 0.01, 0.05), random_state=0)
    model.fit([atoms[i] for i in train], energies=energies[train], forces=[forces[i] for i in train])

    recalibrate(model, [atoms[i] for i in val], forces=[forces[i] for i in val])
    print(f"σ scale fitted on the validation frames: {model.std_scale_:.3f}")

    prediction = model.predict(test_atoms, properties=("forces",), return_std=True)
    errors = prediction["forces"] - test_forces
    summary = calibration_summary(errors, prediction["forces_std"])
    per_frame_rmse = np.sqrt((errors.reshape(len(test_atoms), -1) ** 2).mean(1))
    per_frame_std = np.sqrt((prediction["forces_std"].reshape(len(test_atoms), -1) ** 2).mean(1))
    print(f"test: force RMSE {1e3 * np.sqrt(np.mean(errors**2)):.1f} meV/Å; "
          f"±1σ {100 * summary['coverage_1sigma']:.1f} %, ±2σ {100 * summary['coverage_2sigma']:.1f} %, "
          f"NLL {summary['nll']:.3f}, Spearman(σ, error) per frame {spearman(per_frame_std, per_frame_rmse):.2f}")
    reliability_diagram(errors, prediction["forces_std"], out / "ethanol_reliability.png",
                        title="rMD17 ethanol, DTC force σ after recalibration")

    save_model(model, out / "ethanol.kpot")
    frame = test_atoms[0].copy()
    frame.calc = GAPCalculator(out / "ethanol.kpot")
    frame.get_forces()
    print(f"calculator: energy_std {frame.calc.results['energy_std']:.4f} eV, "
          f"largest forces_std {frame.calc.results['forces_std'].max():.3f} eV/Å")
    print(f"wrote {out / 'ethanol_reliability.png'} and {out / 'ethanol.kpot'}")


if __name__ == "__main__":
    main()
