"""GAP potential benchmark: kernelpot fit against QUIP's ``gap_fit`` on the bundled mlearn Si data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .results import PeerUnavailable, Row

GAP_STRING = ("distance_2b cutoff=5.0 n_sparse=20 covariance_type=ard_se delta=2.0 theta_uniform=1.0 "
              "sparse_method=uniform : soap l_max=6 n_max=8 atom_sigma=0.5 cutoff=5.0 cutoff_transition_width=1.0 "
              "delta=0.2 covariance_type=dot_product zeta=4 n_sparse={n_sparse} sparse_method=cur_points")


def run_measured(command: list[str], cwd: str, env: dict) -> tuple[float, float]:
    """Run ``command`` in ``cwd``; return (wall time in s, peak resident memory in MiB, from wait4)."""
    start = time.perf_counter()
    with open(Path(cwd) / f"{Path(command[0]).name}.log", "w") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        tail = Path(log.name).read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(command[:3])} ... failed: " + " | ".join(tail))
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def test_errors(energies, forces, frames) -> tuple[float, float]:
    """Energy RMSE (meV/atom) and force-component RMSE (eV/Å) against the frames' labels."""
    de = [(e - a.get_potential_energy()) / len(a) for e, a in zip(energies, frames)]
    df = np.concatenate([(f - a.get_forces()).ravel() for f, a in zip(forces, frames)])
    return 1e3 * float(np.sqrt(np.mean(np.square(de)))), float(np.sqrt(np.mean(df**2)))


GAP_FIT_OPTIONS = ("default_sigma={0.002 0.1 0.05 0.0}", "e0_method=average", "energy_parameter_name=energy",
                   "force_parameter_name=forces", "virial_parameter_name=none")


def fit_gap_fit(folder: str, gap: str, env: dict, test_frames) -> tuple[float, float, list, list]:
    """Fit ``folder/train.xyz`` with gap_fit (energies and forces), predict ``test_frames`` with quippy.

    Returns
    -------
    wall time (s), peak memory (MiB), energies (eV) and forces (eV/Å) of the test frames
    """
    wall, peak = run_measured(["gap_fit", "at_file=train.xyz", f"gap={{{gap}}}", *GAP_FIT_OPTIONS,
                               "gp_file=gap.xml"], folder, env)
    from quippy.potential import Potential

    potential = Potential(param_filename=f"{folder}/gap.xml")
    energies, forces = [], []
    for atoms in test_frames:
        copy = atoms.copy()
        copy.calc = potential
        energies.append(copy.get_potential_energy())
        forces.append(copy.get_forces())
    return wall, peak, energies, forces


def fit_kernelpot(folder: str, gap: str, env: dict, test_frames) -> tuple[float, float, list, list]:
    """The same as :func:`fit_gap_fit` with ``kernelpot fit`` and the saved model."""
    wall, peak = run_measured(
        [sys.executable, "-m", "kernelpot.cli", "fit", "train.xyz", "-o", "kp.kpot", "--gap", f"{{{gap}}}",
         "--default-sigma", "0.002,0.1,0.05", "--virial-key", "none", "--stress-key", "none", "--quiet"],
        folder, env)
    from kernelpot.potential.serialization import load_model

    prediction = load_model(f"{folder}/kp.kpot").predict(test_frames, properties=("energy", "forces"))
    split = np.cumsum([len(a) for a in test_frames])[:-1]
    return wall, peak, list(prediction["energy"]), np.split(prediction["forces"], split)


def gap_vs_gap_fit(quick: bool) -> list[Row]:
    """Fit time, peak memory and test errors of the same gap_fit recipe in both codes (energies and forces)."""
    from ase.io import read, write

    if shutil.which("gap_fit") is None:
        raise PeerUnavailable("gap_fit is not on PATH (pip install quippy-ase)")
    from ..datasets import data_path

    train = read(data_path("mlearn_si", "mlearn_Si_training.extxyz"), ":")
    test = read(data_path("mlearn_si", "mlearn_Si_test.extxyz"), ":")
    if quick:
        train, test = train[::4], test[::2]
    gap = GAP_STRING.format(n_sparse=300 if quick else 1000)
    env = dict(os.environ, OMP_NUM_THREADS=str(os.cpu_count()), OPENBLAS_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        write(f"{tmp}/train.xyz", train)
        results = {name: fit(tmp, gap, env, test) for name, fit in (("gap_fit", fit_gap_fit),
                                                                    ("kernelpot", fit_kernelpot))}
    errors = {name: test_errors(r[2], r[3], test) for name, r in results.items()}
    task = (f"GAP fit, mlearn Si ({len(train)} train / {len(test)} test structures), 2b + SOAP "
            f"{gap.split('n_sparse=')[-1].split()[0]} CUR points, E+F")
    kp, gf = results["kernelpot"], results["gap_fit"]
    return [
        Row("quippy gap_fit", task, "fit wall time", "s", kp[0], gf[0], "lower"),
        Row("quippy gap_fit", task, "fit peak memory", "MiB", kp[1], gf[1], "lower"),
        Row("quippy gap_fit", task, "test energy RMSE", "meV/atom", errors["kernelpot"][0], errors["gap_fit"][0],
            "lower", "gap_fit picks CUR points at random: a few % run to run"),
        Row("quippy gap_fit", task, "test force RMSE", "eV/Å", errors["kernelpot"][1], errors["gap_fit"][1], "lower"),
    ]


def _quippy_predictions(potential, frames, stress) -> tuple[list, list, list]:
    """Energies, forces and (with ``stress``) stresses (ASE 3×3) of ``frames`` with a quippy ``Potential``."""
    energies, forces, stresses = [], [], []
    for atoms in frames:
        copy = atoms.copy()
        copy.calc = potential
        energies.append(copy.get_potential_energy())
        forces.append(copy.get_forces())
        if stress:
            stresses.append(copy.get_stress(voigt=False))
    return energies, forces, stresses


def gap_xml_prediction(quick: bool, xml: str | None = None, test_frames=None, repeats: int = 3) -> list[Row]:
    """Prediction speed of one GAP XML model in quippy's ``Potential`` and in kernelpot (:func:`load_gap_xml`).

    Without ``xml``, gap_fit fits the mlearn Si recipe of :data:`GAP_STRING` (energies and forces) on the
    bundled training cells first; both codes then predict energies, forces and stresses of the test cells.
    Throughput is atoms per CPU second (all threads), best of ``repeats``, after one warm-up call each.
    """
    from ase.io import read, write
    from ase.stress import full_3x3_to_voigt_6_stress

    from ..datasets import data_path
    from ..potential.gap_xml import load_gap_xml
    from .timing import measure

    try:
        from quippy.potential import Potential
    except ImportError as error:
        raise PeerUnavailable(f"quippy is not importable ({error})") from None
    if test_frames is None:
        test_frames = read(data_path("mlearn_si", "mlearn_Si_test.extxyz"), ":")[: 6 if quick else 25]
    with tempfile.TemporaryDirectory() as tmp:
        if xml is None:
            if shutil.which("gap_fit") is None:
                raise PeerUnavailable("gap_fit is not on PATH (pip install quippy-ase)")
            train = read(data_path("mlearn_si", "mlearn_Si_training.extxyz"), ":")[:: 8 if quick else 2]
            write(f"{tmp}/train.xyz", train)
            gap = GAP_STRING.format(n_sparse=100 if quick else 1000)
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
            run_measured(["gap_fit", "at_file=train.xyz", f"gap={{{gap}}}", *GAP_FIT_OPTIONS, "gp_file=gap.xml"],
                         tmp, env)
            xml = f"{tmp}/gap.xml"
            task = (f"GAP XML from gap_fit (mlearn Si 2b + SOAP l_max=6 n_max=8, "
                    f"{gap.split('n_sparse=')[-1].split()[0]} CUR points), E+F+stress of {len(test_frames)} cells")
        else:
            task = (f"GAP XML {Path(xml).name}, E+F{'+stress' if all(a.pbc.all() for a in test_frames) else ''} "
                    f"of {len(test_frames)} structures")
        potential = Potential(param_filename=str(xml))
        model = load_gap_xml(xml)
        stress = all(atoms.pbc.all() for atoms in test_frames)
        properties = ("energy", "forces") + (("stress",) if stress else ())
        _quippy_predictions(potential, test_frames[:1], stress)
        model.predict(test_frames[:1], properties=properties)
        quippy = measure(lambda: _quippy_predictions(potential, test_frames, stress), repeats)
        mine = measure(lambda: model.predict(test_frames, properties=properties), repeats)
    energies, forces, stresses = quippy.result
    n_atoms = np.array([len(a) for a in test_frames])
    de = np.max(np.abs(mine.result["energy"] - energies) / n_atoms)
    df = np.max(np.abs(mine.result["forces"] - np.concatenate(forces)))
    atoms = float(n_atoms.sum())
    note = f"same XML; max |ΔE| {de:.1e} eV/atom, |ΔF| {df:.1e} eV/Å"
    if stress:
        ds = np.max(np.abs(mine.result["stress"] - np.array([full_3x3_to_voigt_6_stress(s) for s in stresses])))
        note += f", |Δσ| {ds:.1e} eV/Å³"
    note += " vs quippy"
    return [Row("quippy Potential", task, "prediction throughput (CPU)", "atoms/s", atoms / mine.cpu,
                atoms / quippy.cpu, "higher", note),
            Row("quippy Potential", task, "prediction wall time", "s", mine.wall, quippy.wall, "lower")]
