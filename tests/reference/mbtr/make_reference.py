"""Make the frozen dscribe MBTR reference arrays used by ``tests/test_mbtr.py``.

dscribe 2.1.2's MBTR fails with ase >= 3.26 (``Atoms(velocities=...)`` in
``dscribe.core.System``), so this script runs in a separate environment::

    python3 -m venv /tmp/mbtr-ref-venv
    /tmp/mbtr-ref-venv/bin/pip install "ase==3.25.*" "dscribe==2.1.2" numpy
    /tmp/mbtr-ref-venv/bin/python tests/reference/mbtr/make_reference.py

It builds the structures itself (five QM7 molecules read from the shared
data set, a rattled rock-salt NaCl cell in its primitive and conventional
forms, and a periodic box of eight water molecules), evaluates one dscribe
``MBTR`` per setting in ``SETTINGS`` and writes ``mbtr_reference.npz``
holding the structures, the settings (as JSON) and the outputs, so the test
needs neither dscribe nor the data set.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.build import bulk, molecule
from dscribe.descriptors import MBTR

HERE = Path(__file__).resolve().parent
QM7 = HERE.parents[3] / "shared" / "data" / "qm" / "qm7_qml" / "qm7_pbe0_7101.extxyz"
QM7_INDICES = [0, 1, 57, 2000, 7000]  # methane, ethane, an S compound, two larger ones

MOLECULE_SPECIES = ["H", "C", "N", "O", "S"]
PERIODIC_SPECIES = ["H", "O", "Na", "Cl"]

_exp = {"function": "exp", "scale": 0.5, "threshold": 1e-3}
SETTINGS = [
    # ---- molecules (periodic=False)
    dict(geometry={"function": "atomic_number"}, grid={"min": 0, "max": 18, "n": 40, "sigma": 0.4},
         weighting=None, normalization="none", normalize_gaussians=True, periodic=False),
    dict(geometry={"function": "distance"}, grid={"min": 0.5, "max": 6.0, "n": 60, "sigma": 0.1},
         weighting={"function": "unity"}, normalization="none", normalize_gaussians=True, periodic=False),
    dict(geometry={"function": "inverse_distance"}, grid={"min": 0.0, "max": 1.2, "n": 50, "sigma": 0.02},
         weighting=_exp, normalization="l2", normalize_gaussians=True, periodic=False),
    dict(geometry={"function": "inverse_distance"}, grid={"min": 0.0, "max": 1.2, "n": 50, "sigma": 0.03},
         weighting={"function": "inverse_square", "r_cut": 3.0}, normalization="n_atoms",
         normalize_gaussians=False, periodic=False),
    dict(geometry={"function": "distance"}, grid={"min": 0.0, "max": 5.0, "n": 40, "sigma": 0.15},
         weighting={"function": "exp", "r_cut": 4.0, "threshold": 1e-2}, normalization="n_atoms",
         normalize_gaussians=True, periodic=False),
    dict(geometry={"function": "angle"}, grid={"min": 0, "max": 180, "n": 60, "sigma": 4.0},
         weighting={"function": "unity"}, normalization="none", normalize_gaussians=True, periodic=False),
    dict(geometry={"function": "cosine"}, grid={"min": -1, "max": 1, "n": 50, "sigma": 0.05},
         weighting={"function": "exp", "r_cut": 3.0, "threshold": 1e-3}, normalization="l2",
         normalize_gaussians=True, periodic=False),
    dict(geometry={"function": "cosine"}, grid={"min": -1, "max": 1, "n": 40, "sigma": 0.08},
         weighting={"function": "smooth_cutoff", "r_cut": 2.5, "sharpness": 3}, normalization="n_atoms",
         normalize_gaussians=False, periodic=False),
    dict(geometry={"function": "angle"}, grid={"min": 0, "max": 180, "n": 45, "sigma": 5.0},
         weighting={"function": "exp", "scale": 0.4, "threshold": 1e-3}, normalization="none",
         normalize_gaussians=True, periodic=False),
    # ---- periodic (periodic=True)
    dict(geometry={"function": "atomic_number"}, grid={"min": 0, "max": 18, "n": 30, "sigma": 0.5},
         weighting=None, normalization="n_atoms", normalize_gaussians=True, periodic=True),
    dict(geometry={"function": "distance"}, grid={"min": 0.5, "max": 7.0, "n": 60, "sigma": 0.1},
         weighting={"function": "exp", "scale": 0.8, "threshold": 1e-3}, normalization="l2",
         normalize_gaussians=True, periodic=True),
    dict(geometry={"function": "inverse_distance"}, grid={"min": 0.0, "max": 1.2, "n": 50, "sigma": 0.03},
         weighting={"function": "inverse_square", "r_cut": 5.0}, normalization="n_atoms",
         normalize_gaussians=True, periodic=True),
    dict(geometry={"function": "distance"}, grid={"min": 0.5, "max": 6.0, "n": 40, "sigma": 0.15},
         weighting={"function": "exp", "r_cut": 5.0, "threshold": 1e-2}, normalization="valle_oganov",
         normalize_gaussians=True, periodic=True),
    dict(geometry={"function": "angle"}, grid={"min": 0, "max": 180, "n": 60, "sigma": 4.0},
         weighting={"function": "exp", "r_cut": 3.5, "threshold": 1e-2}, normalization="none",
         normalize_gaussians=True, periodic=True),
    dict(geometry={"function": "cosine"}, grid={"min": -1, "max": 1, "n": 50, "sigma": 0.05},
         weighting={"function": "exp", "scale": 1.0, "threshold": 1e-3}, normalization="n_atoms",
         normalize_gaussians=True, periodic=True),
    dict(geometry={"function": "cosine"}, grid={"min": -1, "max": 1, "n": 40, "sigma": 0.08},
         weighting={"function": "smooth_cutoff", "r_cut": 3.0}, normalization="l2",
         normalize_gaussians=False, periodic=True),
    dict(geometry={"function": "cosine"}, grid={"min": -1, "max": 1, "n": 40, "sigma": 0.08},
         weighting={"function": "exp", "r_cut": 3.0, "threshold": 1e-2}, normalization="valle_oganov",
         normalize_gaussians=True, periodic=True),
]


def molecules() -> list[Atoms]:
    structures = []
    for index in QM7_INDICES:
        atoms = ase.io.read(QM7, index=index)
        structures.append(Atoms(numbers=atoms.numbers, positions=atoms.positions))
    return structures


def periodic_structures() -> list[Atoms]:
    rng = np.random.default_rng(20261124)
    primitive = bulk("NaCl", "rocksalt", a=5.64)  # 2 atoms, triclinic fcc cell
    primitive.positions += rng.normal(scale=0.05, size=primitive.positions.shape)
    conventional = bulk("NaCl", "rocksalt", a=5.64, cubic=True)  # 8 atoms, cubic
    conventional.positions += rng.normal(scale=0.05, size=conventional.positions.shape)
    water = molecule("H2O")
    box = 6.21  # eight molecules at about 1 g/cm^3
    numbers, positions = [], []
    for corner in np.ndindex(2, 2, 2):
        axis = rng.normal(size=3)
        angle = rng.uniform(0, 360)
        copy = water.copy()
        copy.rotate(angle, axis, center=(0, 0, 0))
        positions.append(copy.positions + (np.array(corner) + 0.5) * box / 2)
        numbers.append(copy.numbers)
    water_box = Atoms(numbers=np.concatenate(numbers), positions=np.concatenate(positions),
                      cell=np.diag([box, box, box]), pbc=True)
    structures = [primitive, conventional, water_box]
    for atoms in structures:
        atoms.wrap()  # dscribe's image search assumes fractional coordinates in [0, 1)
    return [Atoms(numbers=a.numbers, positions=a.positions, cell=a.cell.array, pbc=True)
            for a in structures]


def main() -> None:
    groups = {False: (molecules(), MOLECULE_SPECIES), True: (periodic_structures(), PERIODIC_SPECIES)}
    arrays = {}
    for periodic, (structures, _) in groups.items():
        tag = "periodic" if periodic else "molecules"
        counts = np.array([len(a) for a in structures])
        arrays[f"{tag}_offsets"] = np.concatenate([[0], np.cumsum(counts)])
        arrays[f"{tag}_numbers"] = np.concatenate([a.numbers for a in structures])
        arrays[f"{tag}_positions"] = np.concatenate([a.positions for a in structures])
        arrays[f"{tag}_cells"] = np.array([a.cell.array for a in structures])
        arrays[f"{tag}_pbc"] = np.array([a.pbc for a in structures])
    settings = []
    for index, setting in enumerate(SETTINGS):
        structures, species = groups[setting["periodic"]]
        descriptor = MBTR(species=species, **setting)
        arrays[f"output_{index}"] = np.asarray(descriptor.create(structures), dtype=np.float64)
        settings.append({"species": species, **setting})
    arrays["settings_json"] = np.array(json.dumps(settings))
    arrays["versions_json"] = np.array(json.dumps(
        {name: metadata.version(name) for name in ("dscribe", "ase", "numpy", "scipy")}))
    out = HERE / "mbtr_reference.npz"
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size / 1024:.1f} KiB, {len(SETTINGS)} settings)")


if __name__ == "__main__":
    main()
