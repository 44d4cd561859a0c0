"""Kernel charge equilibration: the QEq solve, forces and stress by finite differences, symmetries, recovery of a
known electronegativity model, and bad input."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _finite_differences import strain_derivative
from ase import Atoms
from ase.build import molecule
from sklearn.base import clone

from kernelpot.descriptors import SOAP
from kernelpot.electrostatics import QEqSystem, coulomb_matrix, declared_charges
from kernelpot.models.charges import KernelChargeEquilibration

ROOT = str(Path(__file__).resolve().parents[1])

# Tight Ewald sums, so that finite differences test the derivation rather than the sum's accuracy.
TOLERANCE = 1e-10


def _soap(periodic=False):
    return SOAP(species=["H", "O"], r_cut=3.0, n_max=3, l_max=2, sigma=0.4, periodic=periodic)


def _waters(n, seed, spread=3.0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        water = molecule("H2O")
        water.rattle(0.05, seed=int(rng.integers(1 << 30)))
        water.rotate(rng.uniform(0, 360), rng.normal(size=3))
        out.append(water)
    cluster = out[0]
    for k, water in enumerate(out[1:], start=1):
        water.translate([spread * k, 0.3 * k, 0.0])
        cluster += water
    return cluster


def _hydronium_water(seed):
    """H3O+ next to a water: 7 atoms, net charge +1."""
    rng = np.random.default_rng(seed)
    ion = Atoms("OH3", positions=[[0, 0, 0], [0.98, 0, 0.1], [-0.4, 0.9, 0.1], [-0.4, -0.9, 0.1]])
    water = molecule("H2O")
    water.rotate(rng.uniform(0, 360), rng.normal(size=3))
    water.translate([2.6, 0.2, 0.3])
    ion += water
    ion.rattle(0.05, seed=seed)
    ion.info["charge"] = 1
    return ion


def _box(seed, charge=0):
    """Four waters (and, for charge=1, an extra proton) in a triclinic periodic cell."""
    rng = np.random.default_rng(seed)
    cell = np.diag([5.5, 6.0, 6.5]) + 0.3 * np.triu(rng.normal(size=(3, 3)), 1)
    atoms = Atoms(cell=cell, pbc=True)
    for k in range(4):
        water = molecule("H2O")
        water.rotate(rng.uniform(0, 360), rng.normal(size=3))
        water.translate(cell.T @ ((np.array([k % 2, (k // 2) % 2, 0.5]) + 0.25 + 0.1 * rng.normal(size=3)) / 2))
        atoms += water
    if charge:
        atoms += Atoms("H", positions=[atoms.positions[0] + [0.9, 0.3, 0.2]])
        atoms.info["charge"] = charge
    atoms.wrap()
    return atoms


def _model(periodic=False, **params):
    params = {"n_sparse": 8, "hardness": {"H": 2.0, "O": 1.0}, "tolerance": TOLERANCE, **params}
    return KernelChargeEquilibration(_soap(periodic), **params)


def _reference_charges(atoms_list, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for atoms in atoms_list:
        q = np.where(atoms.numbers == 8, -0.8, 0.4) + 0.03 * rng.normal(size=len(atoms))
        out.append(q + (atoms.info.get("charge", 0) - q.sum()) / len(atoms))
    return out


@pytest.fixture(scope="module")
def open_model():
    train = [_waters(2, s) for s in range(4)] + [_hydronium_water(s) for s in range(3)]
    return _model().fit(train, charges=_reference_charges(train))


@pytest.fixture(scope="module")
def periodic_model():
    train = [_box(s) for s in range(2)] + [_box(10 + s, charge=1) for s in range(2)]
    return _model(periodic=True).fit(train, charges=_reference_charges(train))


def _numerical_forces(model, atoms, h=1e-4):
    forces = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for a in range(3):
            energies = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[i, a] += sign * h
                energies.append(model.predict(moved, properties="energy")["energy"][0])
            forces[i, a] = -(energies[0] - energies[1]) / (2 * h)
    return forces


# ------------------------------------------------------------------------------------------------- the QEq solve
def test_coulomb_is_the_function_whatever_was_imported_first():
    # The function once shared its name with its submodule: importing the submodule first
    # (as kQEq did) left the package attribute `coulomb` bound to the module.
    code = ("import kernelpot.models.charges, kernelpot.electrostatics as e; "
            "from kernelpot.electrostatics import coulomb_matrix, coulomb; "
            "assert callable(coulomb) and coulomb is e.coulomb, coulomb")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": ROOT})


def test_qeq_two_atoms_matches_the_closed_form():
    # Two atoms, Σq = 0: q1 = -q2 = (χ2 - χ1) / (Ā11 + Ā22 - 2 Ā12).
    atoms = Atoms("HO", positions=[[0, 0, 0], [0, 0, 1.3]])
    matrix = coulomb_matrix(atoms, widths=[0.4, 0.6]) + np.diag([3.0, 5.0])
    system = QEqSystem(matrix, *declared_charges(atoms))
    chi = np.array([1.0, 4.0])
    q = system.charges(chi)
    expected = (chi[1] - chi[0]) / (matrix[0, 0] + matrix[1, 1] - 2 * matrix[0, 1])
    assert q == pytest.approx([expected, -expected], rel=1e-12)
    # the equalised electronegativity is the same on both atoms
    potential = chi + matrix @ q
    assert potential[0] == pytest.approx(potential[1], rel=1e-12)


def test_qeq_fragments_keep_their_charges_and_equalise_inside():
    atoms = _waters(2, 3)
    atoms.arrays["fragment"] = np.array([0, 0, 0, 1, 1, 1])
    atoms.info["fragment_charges"] = [1, -1]
    groups, totals = declared_charges(atoms)
    system = QEqSystem(coulomb_matrix(atoms, widths=0.5) + np.eye(6), groups, totals)
    chi = np.random.default_rng(0).normal(size=6)
    q = system.charges(chi)
    assert q[:3].sum() == pytest.approx(1.0, abs=1e-12) and q[3:].sum() == pytest.approx(-1.0, abs=1e-12)
    gradient = chi + system.matrix @ q
    assert np.ptp(gradient[:3]) < 1e-10 and np.ptp(gradient[3:]) < 1e-10
    assert system.chemical_potentials(chi, q) == pytest.approx([gradient[0], gradient[3]])
    # linear response: q = -P χ + q0
    assert system.charges(2 * chi) - system.base_charges == pytest.approx(2 * (q - system.base_charges))


def test_qeq_matrix_without_minimum_is_an_error_naming_the_structure():
    atoms = Atoms("OH", positions=[[0, 0, 0], [0, 0, 1.0]])
    matrix = coulomb_matrix(atoms, widths=0.5) - np.diag([30.0, 0.0])
    with pytest.raises(ValueError, match=r"structure 7 .*not positive definite.*atom 0 \(O\)"):
        QEqSystem(matrix, *declared_charges(atoms), name="structure 7 (HO)", species=["O", "H"])


@pytest.mark.parametrize("charge", [0.5, 1.0000101, "one"])
def test_non_integer_total_charge_is_an_error_naming_the_structure(charge):
    atoms = molecule("H2O")
    atoms.info["charge"] = charge
    with pytest.raises(ValueError, match=r"structure 4 \(H2O\).*charge"):
        declared_charges(atoms, 4)


def test_fragment_declarations_are_checked():
    atoms = _waters(2, 0)
    atoms.arrays["fragment"] = np.array([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="fragment_charges"):
        declared_charges(atoms)
    atoms.info["fragment_charges"] = [1, -1, 0]
    with pytest.raises(ValueError, match="must have 2 entries"):
        declared_charges(atoms)
    atoms.info["fragment_charges"] = [1, 0]
    atoms.info["charge"] = 0
    with pytest.raises(ValueError, match="sum to 1 e but info"):
        declared_charges(atoms)


# ------------------------------------------------------------------------------------ forces, stress, invariances
@pytest.mark.parametrize("charged", [False, True])
def test_open_boundary_forces_equal_finite_differences(open_model, charged):
    atoms = _hydronium_water(42) if charged else _waters(2, 42)
    prediction = open_model.predict(atoms, properties=("forces", "charges", "local_energy", "energy"))
    assert prediction["charges"].sum() == pytest.approx(1.0 if charged else 0.0, abs=1e-10)
    assert prediction["local_energy"].sum() == pytest.approx(prediction["energy"][0], rel=1e-12)
    numerical = _numerical_forces(open_model, atoms)
    assert np.abs(prediction["forces"] - numerical).max() < 1e-6 * max(1.0, np.abs(numerical).max())
    assert np.abs(prediction["forces"].sum(axis=0)).max() < 1e-8  # no net force on a free cluster


@pytest.mark.parametrize("charge", [0, 1])
def test_periodic_forces_and_stress_equal_finite_differences(periodic_model, charge):
    atoms = _box(77, charge)
    prediction = periodic_model.predict(atoms, properties=("forces", "stress", "charges"))
    assert prediction["charges"].sum() == pytest.approx(charge, abs=1e-10)
    numerical = _numerical_forces(periodic_model, atoms)
    assert np.abs(prediction["forces"] - numerical).max() < 2e-6 * max(1.0, np.abs(numerical).max())
    derivative = strain_derivative(lambda a: periodic_model.predict(a, properties="energy")["energy"][0],
                                   atoms, 1e-5)
    virial = -0.5 * (derivative + derivative.T)
    expected = -virial / atoms.get_volume()
    voigt = [expected[0, 0], expected[1, 1], expected[2, 2], expected[1, 2], expected[0, 2], expected[0, 1]]
    assert prediction["stress"][0] == pytest.approx(voigt, abs=2e-7)


def test_charges_rotate_with_the_molecule_and_dipoles_with_it(open_model):
    rng = np.random.default_rng(5)
    for atoms in (_waters(2, 9), _hydronium_water(9)):
        turned = atoms.copy()
        turned.rotate(73.0, rng.normal(size=3), center="COM")
        turned.translate([3.0, -2.0, 7.0])
        one = open_model.predict(atoms, properties=("charges", "dipole"))
        two = open_model.predict(turned, properties=("charges", "dipole"))
        assert two["charges"] == pytest.approx(one["charges"], abs=1e-10)
        # the rotation ASE applied, recovered from the positions about the centre of mass
        before = atoms.positions - atoms.get_center_of_mass()
        after = turned.positions - turned.get_center_of_mass()
        rotation = np.linalg.lstsq(before, after, rcond=None)[0]
        assert two["dipole"][0] == pytest.approx(one["dipole"][0] @ rotation, abs=1e-9)


def test_ion_dipole_is_about_the_centre_of_mass(open_model):
    ion = _hydronium_water(3)
    prediction = open_model.predict(ion, properties=("charges", "dipole"))
    expected = (ion.positions - ion.get_center_of_mass()).T @ prediction["charges"]
    assert prediction["dipole"][0] == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------------------------------------- learning
def test_fit_recovers_a_known_electronegativity_model_from_dipoles():
    # The truth is a kQEq model with known weights; dipoles of its charges train a new model, which must then
    # predict the true charges of unseen structures (charges are what χ determines; a uniform shift of χ is not
    # observable).
    train = [_waters(2, s) for s in range(12)]
    test = [_waters(2, 100 + s) for s in range(3)]
    truth = _model(n_sparse=6, dipole_sigma=1e-4).fit(train, charges=_reference_charges(train))
    rng = np.random.default_rng(1)
    truth.set_alpha(truth.alpha_ * (1 + 0.3 * rng.normal(size=truth.alpha_.shape)))
    dipoles = truth.predict(train, properties="dipole")["dipole"]
    learner = clone(truth).set_params(dipole_sigma=1e-5, jitter=1e-12)
    learner.fit(train, dipoles=dipoles)
    expected = truth.predict(test, properties="charges")["charges"]
    assert learner.predict(test, properties="charges")["charges"] == pytest.approx(expected, abs=2e-4)
    assert learner.score(test, truth.predict(test, properties="dipole")["dipole"]) > 0.9999


def test_refit_resets_the_learned_state(open_model):
    model = clone(open_model)
    only_water = [_waters(2, s) for s in range(3)]
    assert model.fit(only_water, charges=_reference_charges(only_water)) is model
    assert model.species_.tolist() == [1, 8]
    assert len(model.terms_) == 2 and len(model.alpha_) == model.n_sparse_total
    model.fit(only_water[:1], dipoles=np.zeros((1, 3)))
    # one structure of two waters: at most 6 environments; zero dipoles need no electronegativity differences
    assert len(model.alpha_) == model.n_sparse_total <= 6
    assert np.abs(model.predict(only_water, properties="charges")["charges"]).max() < 1e-6


# ------------------------------------------------------------------------------------------------- bad input
def test_hardness_that_leaves_no_minimum_names_species_and_value():
    train = [_waters(1, 0)]
    model = _model(hardness={"H": -40.0, "O": 1.0})
    with pytest.raises(ValueError, match=r"`hardness` of H is -40.0 eV/e²"):
        model.fit(train, charges=_reference_charges(train))


def test_unknown_species_and_bad_charges_are_errors(open_model):
    salty = Atoms("NaCl", positions=[[0, 0, 0], [0, 0, 2.4]])
    with pytest.raises(ValueError, match=r"species \['Cl', 'Na'\] in structure 0"):
        open_model.predict(salty)
    ion = _hydronium_water(0)
    ion.info["charge"] = 0.7
    with pytest.raises(ValueError, match=r"structure 0 \(H5O2\).*0.7 e is not an integer multiple"):
        open_model.predict(ion)


def test_refusals(open_model, periodic_model):
    with pytest.raises(ValueError, match="stress needs a periodic cell"):
        open_model.predict(_waters(2, 0), properties="stress")
    with pytest.raises(ValueError, match="periodic: its dipole depends"):
        periodic_model.predict(_box(1), properties="dipole")
    with pytest.raises(ValueError, match="not fitted"):
        _model().predict(_waters(1, 0))
    with pytest.raises(ValueError, match="give reference `dipoles` and/or `charges`"):
        _model().fit([_waters(1, 0)])
    with pytest.raises(ValueError, match="`properties` must be among"):
        open_model.predict(_waters(1, 0), properties="polarizability")


def test_description_round_trip_predicts_the_same(open_model):
    import json

    spec = json.loads(json.dumps(open_model.to_dict()))
    arrays = {name: value.copy() for name, value in open_model.arrays().items()}
    copy = KernelChargeEquilibration.from_dict(spec, arrays, descriptor=_soap(), kernel=open_model.terms_[0].kernel)
    atoms = _hydronium_water(8)
    expected = open_model.predict(atoms, properties=("charges", "energy", "forces"))
    got = copy.predict(atoms, properties=("charges", "energy", "forces"))
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-12)
    arrays["term1_alpha"] = arrays["term1_alpha"][:-1]
    with pytest.raises(ValueError, match="species O: sparse points .* do not fit together"):
        KernelChargeEquilibration.from_dict(spec, arrays, descriptor=_soap(), kernel=open_model.terms_[0].kernel)
    with pytest.raises(ValueError, match="version 2 is not supported"):
        KernelChargeEquilibration.from_dict({**spec, "version": 2}, arrays, descriptor=_soap(), kernel=None)


# ------------------------------------------------------------------------------------- kQEq + short-range GAP
def _kqeq_gap_data():
    """Waters whose energies and forces are those of a known kQEq model plus Lennard-Jones."""
    from ase.calculators.lj import LennardJones

    structures = [_waters(2, 200 + s, spread=2.8) for s in range(8)]
    truth = _model(n_sparse=6).fit(structures, charges=_reference_charges(structures, seed=3))
    truth.set_alpha(truth.alpha_ * 1.5)
    qeq = truth.predict(structures, properties=("energy", "forces"))
    energies, forces, start = [], [], 0
    for index, atoms in enumerate(structures):
        lj = atoms.copy()
        lj.calc = LennardJones(sigma=1.0, epsilon=0.05, rc=5.0, smooth=True)
        energies.append(qeq["energy"][index] + lj.get_potential_energy())
        forces.append(qeq["forces"][start:start + len(atoms)] + lj.get_forces())
        start += len(atoms)
    return structures, np.array(energies), forces


def _potential(scheme):
    from kernelpot.descriptors.distance_2b import Distance2B
    from kernelpot.kernels import GaussianCovariance
    from kernelpot.models.charges import KQEqPotential
    from kernelpot.models.gap import GAPTerm, SparseGPR

    gap = SparseGPR([GAPTerm(Distance2B(cutoff=5.0, cutoff_transition_width=1.0), GaussianCovariance(0.5),
                             delta=1.0, n_sparse=15, sparse_method="uniform")],
                    default_sigma=(0.002, 0.02, 0.05), e0="composition")
    return KQEqPotential(_model(n_sparse=6, charge_sigma=0.2), gap, scheme=scheme, max_iterations=3)


@pytest.fixture(scope="module")
def kqeq_gap_data():
    return _kqeq_gap_data()


@pytest.fixture(scope="module")
def fitted_potentials(kqeq_gap_data):
    structures, energies, forces = kqeq_gap_data
    anchor = _reference_charges(structures, seed=9)  # not the truth's charges: energies must move them
    return {scheme: _potential(scheme).fit(structures, energies=energies, forces=forces, charges=anchor)
            for scheme in ("sequential", "joint")}


@pytest.mark.parametrize("scheme", ["sequential", "joint"])
def test_kqeq_gap_predicts_the_sum_and_its_forces(fitted_potentials, scheme):
    potential = fitted_potentials[scheme]
    test = _waters(2, 999, spread=2.8)
    both = potential.predict(test, properties=("energy", "forces", "charges"))
    gap = clone(potential.short_range_).set_params(baseline=None)  # the same GAP without kQEq underneath
    gap.__dict__.update({k: v for k, v in potential.short_range_.__dict__.items() if k.endswith("_")})
    alone = gap.predict(test, properties=("energy", "forces"))
    qeq = potential.charge_model_.predict(test, properties=("energy", "forces", "charges"))
    assert both["energy"] == pytest.approx(alone["energy"] + qeq["energy"], rel=1e-12)
    assert both["charges"] == pytest.approx(qeq["charges"])
    numerical = _numerical_forces(potential, test)
    assert np.abs(both["forces"] - numerical).max() < 1e-5 * max(1.0, np.abs(numerical).max())


def test_joint_fit_lowers_the_objective_and_the_training_errors(kqeq_gap_data, fitted_potentials):
    structures, energies, forces = kqeq_gap_data
    history = fitted_potentials["joint"].history_
    objectives = [h["objective"] for h in history]
    assert all(b < a for a, b in itertools.pairwise(objectives)) and objectives[-1] < 0.9 * objectives[0]
    for entry in history:
        # the line search's exact objective of an iterate = the one its linearisation measures
        if entry["line_search_objective"] is not None:
            assert entry["objective"] == pytest.approx(entry["line_search_objective"], rel=1e-7)
        # it never accepts a step that goes uphill
        accepted = [value for _, value in entry["steps"] if value < entry["objective"]]
        assert len(accepted) <= 1 and all(value >= entry["objective"] for _, value in entry["steps"][:-1])
    errors = {}
    for scheme, potential in fitted_potentials.items():
        predicted = potential.predict(structures, properties=("energy", "forces"))
        errors[scheme] = (np.sqrt(np.mean((predicted["energy"] - energies) ** 2)),
                          np.sqrt(np.mean((predicted["forces"] - np.concatenate(forces)) ** 2)))
    assert errors["joint"][0] < errors["sequential"][0] and errors["joint"][1] < errors["sequential"][1]


def test_kqeq_gap_model_file_and_calculator(fitted_potentials, tmp_path):
    from kernelpot.potential.calculator import GAPCalculator
    from kernelpot.potential.serialization import load_model, save_model

    model = fitted_potentials["joint"].short_range_
    path = save_model(model, tmp_path / "kqeq.kpot")
    loaded = load_model(path)
    test = _waters(2, 321, spread=2.8)
    expected = model.predict(test, properties=("energy", "forces"))
    got = loaded.predict(test, properties=("energy", "forces"))
    assert got["energy"] == pytest.approx(expected["energy"], rel=1e-12)
    assert got["forces"] == pytest.approx(expected["forces"], rel=1e-10, abs=1e-12)
    test.calc = GAPCalculator(path, uncertainty=False)
    assert test.get_potential_energy() == pytest.approx(expected["energy"][0], rel=1e-12)
    assert test.get_forces() == pytest.approx(expected["forces"], rel=1e-10, abs=1e-12)
