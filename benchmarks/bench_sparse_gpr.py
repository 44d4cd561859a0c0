"""SparseGPR with a distance_2b term against gap_fit / quippy on mlearn Si.

Fits both on every ``--stride``-th structure of the mlearn Si training set
(energies + forces, distance_2b, 20 uniform sparse points) and predicts
energies and forces of the test set; prints wall times, ratios and the
largest prediction differences. kernelpot uses GAP's sparse points and
``delta = 2 * delta_GAP`` (GAP counts each pair twice), so both fit the same
model. Needs quippy-ase (gap_fit on PATH) and ../shared/data.

    python benchmarks/bench_sparse_gpr.py [--stride 10]
"""

import argparse
import glob
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.io import write

from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.io import read_labelled
from kernelpot.kernels import GaussianCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gap_materials" / "mlearn"
GAP = ("distance_2b cutoff=5.0 cutoff_transition_width=1.0 covariance_type=ard_se delta=1.0 "
       "theta_uniform=0.5 sparse_method=uniform n_sparse=20")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stride", type=int, default=10)
    args = parser.parse_args()
    kw = dict(stress_key="virial_stress_kbar", stress_units="kbar", stress_sign="pressure")
    train = read_labelled(DATA / "mlearn_Si_training.extxyz", **kw)
    test = read_labelled(DATA / "mlearn_Si_test.extxyz", **kw)
    idx = np.arange(0, len(train), args.stride)
    atoms = [train.atoms[i] for i in idx]
    with tempfile.TemporaryDirectory() as tmp:
        frames = []
        for i, a in zip(idx, atoms):
            a = a.copy()
            a.info = {"energy": train.energies[i]}
            a.arrays["force"] = train.forces[i]
            frames.append(a)
        write(f"{tmp}/train.xyz", frames, format="extxyz")
        t0 = time.perf_counter()
        subprocess.run(["gap_fit", "at_file=train.xyz", f"gap={{{GAP}}}", "default_sigma={0.005 0.1 0.05 0.0}",
                        "e0={Si:-5.0}", "energy_parameter_name=energy", "force_parameter_name=force",
                        "sparse_jitter=1e-10", "gp_file=gap.xml"], cwd=tmp, check=True, capture_output=True)
        t_gap_fit = time.perf_counter() - t0
        sparse = np.loadtxt(glob.glob(f"{tmp}/gap.xml.sparseX.*")[0])[:, None]
        from quippy.potential import Potential

        pot = Potential(param_filename=f"{tmp}/gap.xml")
        t0 = time.perf_counter()
        e_gap, f_gap = [], []
        for a in test.atoms:
            b = a.copy()
            b.calc = pot
            e_gap.append(b.get_potential_energy())
            f_gap.append(b.get_forces())
        t_gap_predict = time.perf_counter() - t0

    t0 = time.perf_counter()
    Distance2B(5.0, 1.0).transform(atoms[:1], gradients=True)
    t_first = time.perf_counter() - t0
    term = GAPTerm(Distance2B(5.0, 1.0), GaussianCovariance(0.5), delta=2.0, sparse_points=sparse)
    t0 = time.perf_counter()
    model = SparseGPR([term], default_sigma=(0.005, 0.1, 0.05), e0={"Si": -5.0}, jitter=1e-10).fit(
        atoms, energies=[train.energies[i] for i in idx], forces=[train.forces[i] for i in idx])
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = model.predict(test.atoms, properties=("forces",))
    t_predict = time.perf_counter() - t0
    print(f"training structures: {len(atoms)}, test structures: {len(test)}")
    print(f"first distance_2b call (includes numba load/compile): {t_first:.2f} s")
    print(f"fit:     gap_fit {t_gap_fit:.2f} s  kernelpot {t_fit:.2f} s  "
          f"ratio kernelpot/gap_fit {t_fit / t_gap_fit:.2f}")
    print(f"predict: quippy  {t_gap_predict:.2f} s  kernelpot {t_predict:.2f} s  ratio {t_predict / t_gap_predict:.2f}")
    print(f"max |dE| {np.abs(out['energy'] - e_gap).max():.2e} eV, "
          f"max |dF| {np.abs(out['forces'] - np.concatenate(f_gap)).max():.2e} eV/Å")


if __name__ == "__main__":
    main()
