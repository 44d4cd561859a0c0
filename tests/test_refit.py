"""A refit keeps nothing of an earlier fit: fit on A, then on a smaller B, equals a fresh fit on B.

Run for every estimator of kernelpot (scikit-learn's convention: ``fit`` recomputes every learned
attribute). For the GAP models the earlier fit also gets the state that used to survive a refit: a
FITC factor and a recalibration (``std_scale_``, ``std_floor_``); predictions, standard deviations,
the learned attributes and the saved model files must all equal those of the fresh fit.
"""

import json
import zipfile

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from kernelpot.descriptors import SOAP, Distance2B
from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
from kernelpot.models import (
    DensityModel,
    GaussianProcessRegressor,
    KernelRidge,
    SymmetryAdaptedGPR,
    TensorRegressor,
)
from kernelpot.models.gap import GAPTerm, IncrementalSparseGPR, SparseGPR, fitc_factor
from kernelpot.potential import save_model
from kernelpot.selection import CUR, FPS
from kernelpot.uncertainty import CommitteeSparseGPR, recalibrate


def _cu(n, seed):
    frames = []
    for s in range(n):
        atoms = bulk("Cu", "fcc", a=3.55 + 0.02 * (s % 4), cubic=True)
        atoms.rattle(0.08, seed=seed + s)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = None
        atoms.info["energy"], atoms.arrays["forces"] = energy, forces
        frames.append(atoms)
    return frames


CU = {"A": _cu(6, 0), "B": _cu(3, 100), "test": _cu(2, 200)}


def _labels(frames):
    return {"energies": [a.info["energy"] for a in frames], "forces": [a.arrays["forces"] for a in frames]}


def _gap_terms():
    return [GAPTerm(Distance2B(cutoff=4.0), GaussianCovariance(0.5), delta=1.0, n_sparse=8, sparse_method="uniform"),
            GAPTerm(SOAP(species=["Cu"], r_cut=3.5, n_max=3, l_max=2, sigma=0.5, periodic=True),
                    NormalizedDotProductCovariance(2), delta=0.1, n_sparse=10, sparse_method="cur")]


def _waters(n, seed):
    rng = np.random.default_rng(seed)
    frames, dipoles, alphas = [], [], []
    for _ in range(n):
        r1, r2 = rng.uniform(0.9, 1.1, 2)
        angle = np.radians(rng.uniform(95, 115))
        positions = np.array([[0, 0, 0], [r1, 0, 0], [r2 * np.cos(angle), r2 * np.sin(angle), 0]])
        frames.append(Atoms("OH2", positions=positions + rng.normal(size=3)))
        dipoles.append(np.array([-0.8, 0.4, 0.4]) @ (positions - positions.mean(0)))
        bonds = positions[1:]
        alphas.append(np.eye(3) * (3 + r1 + r2) + sum(np.outer(b, b) for b in bonds))
    return frames, np.array(dipoles), np.array(alphas)


WATER = {"A": _waters(12, 0), "B": _waters(6, 1), "test": _waters(3, 2)}
SAGPR = {"r_cut": 3.0, "n_max": 3, "l_max": 2, "sigma": 0.4}
RNG = np.random.default_rng(0)
VECTORS = {"A": (RNG.normal(size=(40, 3)), None), "B": (RNG.normal(size=(15, 3)), None),
           "test": (RNG.normal(size=(5, 3)), None)}
for part in VECTORS:
    X = VECTORS[part][0]
    VECTORS[part] = (X, np.sin(X).sum(1))


def _gap_case(cls):
    def fit(model, part):
        model.fit(CU[part], **_labels(CU[part]))

    def before(model):  # what only the first fit learns: FITC factor, recalibration with floors
        fitc_factor(model, CU["A"], **_labels(CU["A"]))
        recalibrate(model, CU["test"], **_labels(CU["test"]), floor=True)
        assert model.std_floor_ and hasattr(model, "fitc_factor_")
        if cls is IncrementalSparseGPR:
            model.partial_fit(CU["test"][:1], **_labels(CU["test"][:1]))

    def outputs(model):
        out = model.predict(CU["test"], properties=("energy", "forces"), return_std=True)
        if cls is not CommitteeSparseGPR:
            with pytest.raises(ValueError, match="needs the FITC factor"):
                model.predict(CU["test"], return_std=True, variance="fitc")
        return out

    make = (lambda: CommitteeSparseGPR(SparseGPR(_gap_terms(), random_state=0), n_members=2, subsample=0.7,
                                       random_state=0)) if cls is CommitteeSparseGPR else (
        lambda: cls(_gap_terms(), random_state=0))
    return make, fit, before if cls is not CommitteeSparseGPR else _committee_before, outputs


def _committee_before(model):
    recalibrate(model, CU["test"], **_labels(CU["test"]), floor=True)
    assert model.std_floor_


def _vector_case(make):
    def fit(model, part):
        model.fit(*VECTORS[part])

    def outputs(model):
        if isinstance(model, GaussianProcessRegressor):
            mean, std = model.predict(VECTORS["test"][0], return_std=True)
            return {"mean": mean, "std": std}
        return {"mean": model.predict(VECTORS["test"][0])}

    return make, fit, None, outputs


def _tensor_case(make, target):
    def fit(model, part):
        frames, dipoles, alphas = WATER[part]
        model.fit(frames, dipoles if target == "dipole" else alphas)

    def outputs(model):
        mean, std = model.predict(WATER["test"][0], return_std=True)
        return {"mean": mean, "std": std}

    return make, fit, None, outputs


def _density_case():
    from kernelpot.datasets import load_water_density

    train, test = load_water_density()
    parts = {"A": train.subset(range(12)), "B": train.subset(range(20, 26)), "test": test.subset(range(3))}

    def fit(model, part):
        model.fit(parts[part])

    def outputs(model):
        return {f"c{i}": c for i, c in enumerate(model.predict(parts["test"].structures))}

    return (lambda: DensityModel(n_max=3, l_max=2, n_sparse=15, random_state=0)), fit, None, outputs


def _charges_case(potential):
    """kQEq alone (fitted on dipoles) or kQEq + a 2-body GAP (energies, charges as the anchor)."""
    from kernelpot.models.charges import KernelChargeEquilibration, KQEqPotential

    def make():
        charges = KernelChargeEquilibration(SOAP(species=["H", "O"], **SAGPR), n_sparse=6, random_state=0)
        if not potential:
            return charges
        gap = SparseGPR([GAPTerm(Distance2B(cutoff=3.0), GaussianCovariance(0.5), delta=1.0, n_sparse=6,
                                 sparse_method="uniform")], e0="composition")
        return KQEqPotential(charges, gap, scheme="joint", max_iterations=2)

    def fit(model, part):
        frames, dipoles, _ = WATER[part]
        if potential:
            energies = [float(np.sum(a.get_all_distances())) for a in frames]
            model.fit(frames, energies=energies, charges=[np.array([-0.8, 0.4, 0.4])] * len(frames))
        else:
            model.fit(frames, dipoles=dipoles)

    def outputs(model):
        return model.predict(WATER["test"][0], properties=("energy", "charges"))

    return make, fit, None, outputs


def _selector_case(cls):
    data = {"A": RNG.normal(size=(60, 5)), "B": RNG.normal(size=(25, 5))}

    def fit(model, part):
        model.fit(data[part])

    def outputs(model):
        return {"selected": np.asarray(model.selected_idx_), "transformed": model.transform(data["B"])}

    return (lambda: cls(n_to_select=4)), fit, None, outputs


CASES = {
    "SparseGPR": lambda: _gap_case(SparseGPR),
    "IncrementalSparseGPR": lambda: _gap_case(IncrementalSparseGPR),
    "CommitteeSparseGPR": lambda: _gap_case(CommitteeSparseGPR),
    "KernelRidge": lambda: _vector_case(lambda: KernelRidge(alpha=1e-3, kernel="gaussian", sigma=1.0)),
    "GaussianProcessRegressor": lambda: _vector_case(lambda: GaussianProcessRegressor(alpha=1e-3)),
    "SymmetryAdaptedGPR": lambda: _tensor_case(lambda: SymmetryAdaptedGPR(1, **SAGPR, alpha=1e-6), "dipole"),
    "SymmetryAdaptedGPR-sparse": lambda: _tensor_case(
        lambda: SymmetryAdaptedGPR(1, **SAGPR, alpha=1e-6, n_sparse=8), "dipole"),
    "TensorRegressor": lambda: _tensor_case(lambda: TensorRegressor(**SAGPR, alpha=1e-6), "polarizability"),
    "DensityModel": _density_case,
    "KernelChargeEquilibration": lambda: _charges_case(potential=False),
    "KQEqPotential": lambda: _charges_case(potential=True),
    "FPS": lambda: _selector_case(FPS),
    "CUR": lambda: _selector_case(CUR),
}


def _learned(model):
    return sorted(name for name in vars(model) if name.endswith("_") and not name.startswith("__")
                  and name not in model.get_params(deep=False))


def _kpot(path):
    with zipfile.ZipFile(path) as archive:
        header = json.loads(archive.read("header.json"))
        arrays = {name: archive.read(name) for name in archive.namelist() if name != "header.json"}
    # What the fit measured of this process's resident memory (its baseline before the fit) is not learned from
    # the data: it grows between two fits in one process. The planned block sizes must still agree.
    for key in ("baseline", "blocks_baseline", "peak"):
        header.get("memory_estimate", {}).pop(key, None)
    return header, arrays


@pytest.mark.parametrize("name", sorted(CASES))
def test_refit_on_fewer_structures_equals_a_fresh_fit(name, tmp_path):
    make, fit, before, outputs = CASES[name]()
    refitted = make()
    fit(refitted, "A")
    if before is not None:
        before(refitted)
    fit(refitted, "B")
    fresh = make()
    fit(fresh, "B")
    assert _learned(refitted) == _learned(fresh)
    expected = outputs(fresh)
    got = outputs(refitted)
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-10, atol=1e-12, err_msg=key)
    if isinstance(fresh, SparseGPR):
        assert not hasattr(refitted, "std_scale_") and not hasattr(refitted, "fitc_factor_")
        save_model(refitted, tmp_path / "refitted.kpot")
        save_model(fresh, tmp_path / "fresh.kpot")
        assert _kpot(tmp_path / "refitted.kpot") == _kpot(tmp_path / "fresh.kpot")
