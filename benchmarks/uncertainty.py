"""Are kernelpot's uncertainties calibrated on held-out data? DTC vs SoR vs FITC vs committee vs novelty.

For each dataset: fit a SOAP-GAP (moderate size, minutes on 2 cores), fit
one σ scale per method on a validation split carved from the training
structures (maximum likelihood of the z-scores), then on the test set
report the coverage of ±1σ/±2σ force intervals (target for ±2σ: 92–98 %),
("dtc+floor": scale and a force σ floor, sqrt(s² σ² + f²), both fitted),
the Gaussian NLL per force component, the Spearman rank correlation per
structure between the predicted σ (RMS of its force σ) and its force
RMSE, and between energy σ and |energy error|, and the prediction time.

    nice -n 5 python benchmarks/uncertainty.py ethanol aspirin si --plots /tmp/uq
"""

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.soap import SOAP
from kernelpot.io import read_labelled
from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR, fitc_factor
from kernelpot.uncertainty.calibration import (
    calibration_summary,
    fit_std_scale,
    observed_std,
    recalibrate,
    reliability_diagram,
    spearman,
)
from kernelpot.uncertainty.committee import CommitteeSparseGPR
from kernelpot.uncertainty.novelty import novelty

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EV_PER_KCAL_MOL = 0.0433641153


def rmd17(molecule, n_train, n_val, n_test):
    def load(part):
        data = np.load(DATA / "rmd17" / f"rmd17_{molecule}_{part}_01.npz")
        atoms = [Atoms(numbers=data["nuclear_charges"], positions=c) for c in data["coords"]]
        return atoms, data["energies"] * EV_PER_KCAL_MOL, list(data["forces"] * EV_PER_KCAL_MOL)

    atoms, energies, forces = load("train")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(atoms))
    train, val = order[:n_train], order[n_train:n_train + n_val]
    test_atoms, test_e, test_f = load("test")
    def pick(idx):
        return ([atoms[i] for i in idx], energies[idx], [forces[i] for i in idx])
    soap = SOAP(species=sorted(set(atoms[0].numbers.tolist())), r_cut=4.0, n_max=6, l_max=4, sigma=0.4)
    model = SparseGPR([GAPTerm(soap, NormalizedDotProductCovariance(4), delta=1.0, n_sparse=400, sparse_method="fps")],
                      default_sigma=(0.0005, 0.01, 0.05), random_state=0)
    return model, pick(train), pick(val), (test_atoms[:n_test], test_e[:n_test], test_f[:n_test])


def mlearn_si(n_train, n_val, n_test):
    def load(part):
        data = read_labelled(DATA / "gap_materials" / "mlearn" / f"mlearn_Si_{part}.extxyz",
                             virial_key="none", stress_key="none")
        return data.atoms, np.array(data.energies), data.forces

    atoms, energies, forces = load("training")
    order = np.random.default_rng(0).permutation(len(atoms))
    train, val = order[:n_train], order[n_train:n_train + n_val]
    def pick(idx):
        return ([atoms[i] for i in idx], energies[idx], [forces[i] for i in idx])
    test = load("test")
    terms = [GAPTerm(Distance2B(5.0, 1.0), GaussianCovariance(1.0), delta=2.0, n_sparse=20, sparse_method="uniform"),
             GAPTerm(SOAP(species=[14], r_cut=5.0, n_max=6, l_max=4, sigma=0.5, periodic=True),
                     NormalizedDotProductCovariance(4), delta=0.2, n_sparse=400, sparse_method="cur")]
    model = SparseGPR(terms, default_sigma=(0.002, 0.1, 0.05), random_state=0)
    return model, pick(train), pick(val), (test[0][:n_test], test[1][:n_test], test[2][:n_test])


def per_structure(values, offsets):
    return np.array([values[a:b] for a, b in itertools.pairwise(offsets)], dtype=object)


def score(name, forces_std, energy_std, prediction, test, seconds, plots):
    atoms, energies, forces = test
    offsets = np.cumsum([0] + [len(a) for a in atoms])
    err = prediction["forces"] - np.concatenate(forces)
    row = calibration_summary(err, forces_std)
    rmse = np.array([np.sqrt(np.mean(err[a:b] ** 2)) for a, b in itertools.pairwise(offsets)])
    sig = np.array([np.sqrt(np.mean(forces_std[a:b] ** 2)) for a, b in itertools.pairwise(offsets)])
    row["spearman_forces"] = spearman(sig, rmse)
    row["spearman_energy"] = spearman(energy_std, np.abs(prediction["energy"] - energies))
    row["force_rmse_meV_A"] = 1e3 * float(np.sqrt(np.mean(err**2)))
    row["seconds"] = seconds
    if plots:
        reliability_diagram(err, forces_std, Path(plots) / f"{name}.png", title=name)
    return row


def run(dataset, args):
    if dataset == "si":
        model, train, val, test = mlearn_si(args.n_train_si, args.n_val_si, args.n_test)
    else:
        model, train, val, test = rmd17(dataset, args.n_train, args.n_val, args.n_test)
    val_forces = np.concatenate(val[2])
    rows = {}
    start = time.perf_counter()
    model.fit(train[0], energies=train[1], forces=train[2])
    print(f"{dataset}: fit {len(train[0])} structures in {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    model.predict(test[0], properties=("forces",))
    print(f"{dataset}: predict (mean only) of the test set in {time.perf_counter() - start:.1f} s; "
          "the t column below includes the σ", flush=True)
    if "fitc" in args.methods:
        start = time.perf_counter()
        fitc_factor(model, train[0], energies=train[1], forces=train[2])
        print(f"{dataset}: FITC factor in {time.perf_counter() - start:.0f} s", flush=True)
    if "dtc+noise" in args.methods:
        # Latent σ plus the fit's force noise: the σ of a label, not of the function.
        noise = model.default_sigma[1]
        model.std_scale_ = 1.0
        v = model.predict(val[0], properties=("forces",), return_std=True)
        scale = fit_std_scale(v["forces"] - val_forces, observed_std(v["forces_std"], noise))
        start = time.perf_counter()
        p = model.predict(test[0], properties=("forces",), return_std=True)
        rows["dtc+noise"] = score(f"{dataset}_dtc_noise", scale * observed_std(p["forces_std"], noise),
                                  scale * observed_std(p["energy_std"], 0.0), p, test,
                                  time.perf_counter() - start, args.plots)
        rows["dtc+noise"]["scale"] = scale
    if "dtc+floor" in args.methods:
        # Two parameters, sqrt(s² σ² + f²), both by maximum likelihood on the validation split.
        recalibrate(model, val[0], forces=val[2], floor=True)
        start = time.perf_counter()
        p = model.predict(test[0], properties=("forces",), return_std=True)
        rows["dtc+floor"] = score(f"{dataset}_dtc_floor", p["forces_std"], p["energy_std"], p, test,
                                  time.perf_counter() - start, args.plots)
        rows["dtc+floor"]["scale"] = model.std_scale_
        rows["dtc+floor"]["floor"] = model.std_floor_["forces"]
        del model.std_floor_
    for variance in [m for m in ("dtc", "sor", "fitc") if m in args.methods]:
        model.std_scale_ = 1.0
        v = model.predict(val[0], properties=("forces",), return_std=True, variance=variance)
        model.std_scale_ = fit_std_scale(v["forces"] - val_forces, v["forces_std"])
        start = time.perf_counter()
        p = model.predict(test[0], properties=("forces",), return_std=True, variance=variance)
        rows[variance] = score(f"{dataset}_{variance}", p["forces_std"], p["energy_std"], p, test,
                               time.perf_counter() - start, args.plots)
        rows[variance]["scale"] = model.std_scale_
    model.std_scale_ = 1.0
    if "committee+novelty" not in args.methods:
        return rows
    committee = CommitteeSparseGPR(model, n_members=args.members, subsample=0.5, random_state=0)
    committee.set_params(estimator=SparseGPR(**{k: v for k, v in model.get_params(deep=False).items()}))
    committee.fit(train[0], energies=train[1], forces=train[2])
    recalibrate(committee, val[0], forces=val_forces)
    start = time.perf_counter()
    p = committee.predict(test[0], properties=("forces",), return_std=True)
    rows["committee"] = score(f"{dataset}_committee", p["forces_std"], p["energy_std"], p, test,
                              time.perf_counter() - start, args.plots)
    rows["committee"]["scale"] = committee.std_scale_
    # Novelty: σ = s · (distance to the nearest sparse point), s fitted on validation.
    nv = novelty(model, val[0])["atom"]
    pv = model.predict(val[0], properties=("forces",))
    scale = fit_std_scale(pv["forces"] - val_forces, np.repeat(nv[:, None], 3, 1) + 1e-12)
    start = time.perf_counter()
    nt = novelty(model, test[0])
    p = model.predict(test[0], properties=("forces",))
    rows["novelty"] = score(f"{dataset}_novelty", scale * np.repeat(nt["atom"][:, None], 3, 1) + 1e-12,
                            nt["structure"], p, test, time.perf_counter() - start, args.plots)
    rows["novelty"]["scale"] = scale
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=["ethanol", "aspirin", "si"],
                        choices=["ethanol", "aspirin", "si"])
    parser.add_argument("--n-train", type=int, default=150, help="rMD17 training frames")
    parser.add_argument("--n-val", type=int, default=150, help="rMD17 validation frames (from the training split)")
    parser.add_argument("--n-test", type=int, default=500, help="test frames (rMD17) / structures (Si, max 25)")
    parser.add_argument("--n-train-si", type=int, default=140)
    parser.add_argument("--n-val-si", type=int, default=74)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--plots", default=None, help="directory for reliability-diagram PNGs")
    parser.add_argument("--methods", nargs="+",
                        default=["dtc", "dtc+noise", "dtc+floor", "sor", "fitc", "committee+novelty"],
                        help="subset of: dtc dtc+noise dtc+floor sor fitc committee+novelty")
    args = parser.parse_args()
    if args.plots:
        Path(args.plots).mkdir(parents=True, exist_ok=True)
    header = (f"{'data':8} {'method':10} {'cov1σ':>6} {'cov2σ':>6} {'NLL':>7} {'ρ(σF,errF)':>11} "
              f"{'ρ(σE,|eE|)':>11} {'F RMSE':>7} {'scale':>8} {'t [s]':>6}")
    lines = []
    for dataset in args.datasets:
        for method, r in run(dataset, args).items():
            lines.append(f"{dataset:8} {method:10} {100 * r['coverage_1sigma']:6.1f} {100 * r['coverage_2sigma']:6.1f} "
                         f"{r['nll']:7.3f} {r['spearman_forces']:11.3f} {r['spearman_energy']:11.3f} "
                         f"{r['force_rmse_meV_A']:7.1f} {r['scale']:8.3g} {r['seconds']:6.1f}"
                         + (f"  floor {1e3 * r['floor']:.2f} meV/Å" if "floor" in r else ""))
            print(lines[-1], flush=True)
    print("\nForce components on held-out test data after recalibration on a validation split;")
    print("targets: ±2σ coverage 92-98 %, rank correlations positive. F RMSE in meV/Å.")
    print(header)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
