"""Frozen gap_fit reference for kernelpot's SparseGPR with a distance_2b term.

Fits QUIP/GAP's ``gap_fit`` (quippy-ase 0.10.3 wheel) on every 10th
structure of the mlearn Si training set (energies and forces), then
evaluates the GAP potential on the first 10 test structures. Writes
``reference.npz`` with GAP's sparse points and predictions; the test
refits kernelpot with the same sparse points and ``delta = 2 * delta_GAP``
(GAP's distance_2b counts each pair twice, kernelpot once).

Run from this directory: ``python make_reference.py`` (needs quippy-ase
and gap_fit on PATH, and ../../../../shared/data or $KERNELPOT_SHARED_DATA).
"""

import glob
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import quippy
from ase.io import write
from quippy.potential import Potential

from kernelpot.io import read_labelled

DATA = Path(os.environ.get("KERNELPOT_SHARED_DATA", Path(__file__).resolve().parents[4] / "shared" / "data")) \
    / "gap_materials" / "mlearn"
TRAIN_INDICES = np.arange(0, 214, 10)
N_TEST = 10
GAP = ("distance_2b cutoff=5.0 cutoff_transition_width=1.0 covariance_type=ard_se delta=1.0 "
       "theta_uniform=0.5 sparse_method=uniform n_sparse=20")
SIGMA = (0.005, 0.1, 0.05)
E0 = -5.0


OUT = Path(__file__).with_name("reference.npz")


def main(gap=GAP, n_features=1, out=OUT):
    """Fit gap_fit with the one-term string ``gap``, write its sparse points (``n_features`` columns) and the
    predictions to ``out`` (also used by ../gap_angle_3b/make_reference.py)."""
    kw = dict(stress_key="virial_stress_kbar", stress_units="kbar", stress_sign="pressure")
    train = read_labelled(DATA / "mlearn_Si_training.extxyz", **kw)
    test = read_labelled(DATA / "mlearn_Si_test.extxyz", **kw)
    with tempfile.TemporaryDirectory() as tmp:
        frames = []
        for i in TRAIN_INDICES:
            a = train.atoms[i].copy()
            a.info = {"energy": train.energies[i], "config_type": train.config_types[i]}
            a.arrays["force"] = train.forces[i]
            frames.append(a)
        write(f"{tmp}/train.xyz", frames, format="extxyz")
        subprocess.run(
            ["gap_fit", "at_file=train.xyz", f"gap={{{gap}}}", "rnd_seed=1",
             "default_sigma={{{:g} {:g} {:g} 0.0}}".format(*SIGMA), f"e0={{Si:{E0}}}", "energy_parameter_name=energy",
             "force_parameter_name=force", "sparse_jitter=1e-10", "gp_file=gap.xml"],
            cwd=tmp, check=True, capture_output=True,
        )
        sparse = np.loadtxt(glob.glob(f"{tmp}/gap.xml.sparseX.*")[0]).reshape(-1, n_features)
        pot = Potential(param_filename=f"{tmp}/gap.xml")
        energies, forces, virials = [], [], []
        for a in test.atoms[:N_TEST]:
            b = a.copy()
            b.calc = pot
            energies.append(b.get_potential_energy())
            forces.append(b.get_forces())
            virials.append(-b.get_stress(voigt=False) * b.get_volume())
    np.savez(
        out,
        train_indices=TRAIN_INDICES, n_test=N_TEST, sparse_points=sparse, gap_string=gap,
        default_sigma=np.array(SIGMA), e0=E0, energies=np.array(energies),
        forces=np.concatenate(forces), virials=np.array(virials),
        quippy_version=str(getattr(quippy, "__version__", "quippy-ase 0.10.3")),
    )


if __name__ == "__main__":
    main()
