"""The GAP potential as a user meets it: save/load, ASE calculator, command line."""

import copy
import json
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import read
from conftest import ase_numerical_stress

from kernelpot.cli import main
from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.soap import SOAP
from kernelpot.exceptions import HardCutoffWarning
from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.potential.calculator import GAPCalculator, hard_cutoff_terms
from kernelpot.potential.model_file import ModelFileError
from kernelpot.potential.serialization import load_model, save_model

SMALL_GAP = ("{distance_2b cutoff=5.0 n_sparse=10 covariance_type=ard_se delta=2.0 theta_uniform=1.0 "
             "sparse_method=uniform : soap l_max=3 n_max=3 atom_sigma=0.5 cutoff=4.0 delta=0.2 "
             "covariance_type=dot_product zeta=4 n_sparse=30 sparse_method=fps}")


@pytest.fixture(scope="module")
def si_train(bundled_data):
    return read(bundled_data / "mlearn_si" / "mlearn_Si_training.extxyz", ":")[::12]


@pytest.fixture(scope="module")
def model(si_train):
    terms = [
        # theta and n_sparse keep K_MM well conditioned, so that finite differences of the
        # energy are accurate to 1e-7 (gap_fit's theta_uniform=1 with 20 points gives cond ~1e20).
        GAPTerm(Distance2B(cutoff=5.0, cutoff_transition_width=1.0), GaussianCovariance(0.5), delta=2.0,
                n_sparse=8, sparse_method="uniform"),
        # GAP's smooth cutoff: with dscribe's (the default) an atom leaving the padded search sphere changes the
        # energy by ~1e-5 eV, which a strain of 1e-4 can cross (it did, for ASE 3.23's symmetric shear).
        GAPTerm(SOAP(species=[14], r_cut=4.0, n_max=3, l_max=3, sigma=0.5, periodic=True, cutoff_transition_width=1.0),
                NormalizedDotProductCovariance(4), delta=0.2, n_sparse=30, sparse_method="fps"),
    ]
    energies = [a.get_potential_energy() for a in si_train]
    forces = [a.get_forces() for a in si_train]
    return SparseGPR(terms, random_state=0).fit(si_train, energies=energies, forces=forces)


def _rattled_si():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=3)
    return atoms


def test_save_load_round_trip_predicts_identically(model, tmp_path):
    path = save_model(model, tmp_path / "si.kpot", metadata={"note": "test"})
    loaded = load_model(path)
    atoms = [_rattled_si()]
    a = model.predict(atoms, properties=("energy", "forces"), return_std=True)
    b = loaded.predict(atoms, properties=("energy", "forces"), return_std=True)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert loaded.metadata_ == {"note": "test"}


def test_corrupt_model_file_is_a_clear_error(model, tmp_path):
    path = save_model(model, tmp_path / "si.kpot")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelFileError):
        GAPCalculator(path)


def test_calculator_forces_are_minus_energy_gradient(model):
    atoms = _rattled_si()
    atoms.calc = GAPCalculator(model)
    forces = atoms.get_forces()
    assert atoms.calc.results["energy_std"] >= 0
    h = 1e-4
    for atom, axis in [(0, 0), (3, 1), (7, 2)]:
        energies = []
        for sign in (1, -1):
            displaced = atoms.copy()
            displaced.positions[atom, axis] += sign * h
            displaced.calc = GAPCalculator(model, uncertainty=False)
            energies.append(displaced.get_potential_energy())
        numerical = -(energies[0] - energies[1]) / (2 * h)
        assert forces[atom, axis] == pytest.approx(numerical, rel=1e-6, abs=1e-7)
    assert np.abs(forces.sum(axis=0)).max() < 1e-10
    assert atoms.get_potential_energies().sum() == pytest.approx(atoms.get_potential_energy(), rel=1e-12)


def test_calculator_refuses_stress_without_periodic_cell(model):
    from ase.calculators.calculator import PropertyNotImplementedError

    atoms = _rattled_si()
    atoms.pbc = False
    atoms.calc = GAPCalculator(model)
    assert np.isfinite(atoms.get_potential_energy())
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        atoms.get_stress()


def test_calculator_rejects_unfitted_model_and_unknown_species(model):
    with pytest.raises(ValueError, match="not fitted"):
        GAPCalculator(SparseGPR([GAPTerm(Distance2B(), GaussianCovariance())]))
    atoms = _rattled_si()
    atoms.numbers[0] = 6
    atoms.calc = GAPCalculator(model)
    with pytest.raises(ValueError, match="Z=\\[6\\]"):
        atoms.get_potential_energy()


def test_cli_fit_and_evaluate(bundled_data, tmp_path, capsys):
    from ase.io import write

    train = tmp_path / "train.extxyz"
    write(train, read(bundled_data / "mlearn_si" / "mlearn_Si_training.extxyz", "::20"))
    model_path = tmp_path / "m.kpot"
    assert main(["fit", str(train), "-o", str(model_path), "--gap", SMALL_GAP, "--quiet",
                 "--virial-key", "none", "--stress-key", "none"]) == 0
    capsys.readouterr()
    test = str(bundled_data / "mlearn_si" / "mlearn_Si_test.extxyz")
    assert main(["evaluate", str(model_path), test, "--json", "--virial-key", "none", "--stress-key", "none"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["n_structures"] == 25
    assert set(table["by_config_type"]) == {"AIMD-NVT", "Elastic", "Surface", "Vacancy"}
    # A crude model, but a model: far better than predicting zero forces (RMS force ~0.5 eV/Å).
    assert 0 < table["forces_rmse"] < 0.4 and 0 < table["energy_rmse"] < 0.05


def test_cli_reports_a_missing_energy_key(bundled_data, tmp_path, capsys):
    train = str(bundled_data / "mlearn_si" / "mlearn_Si_test.extxyz")
    assert main(["fit", train, "-o", str(tmp_path / "m.kpot"), "--energy-key", "dft_energy", "--quiet"]) == 2
    assert "dft_energy" in capsys.readouterr().err


def test_calculator_stress_is_the_strain_derivative(model):
    atoms = _rattled_si()
    atoms.calc = GAPCalculator(model, uncertainty=False)
    stress = atoms.get_stress()
    # eps = 1e-4: below it the round-off of the 2-body energy sum dominates the difference quotient.
    numerical = ase_numerical_stress(atoms, eps=1e-4)
    assert np.abs(stress - numerical).max() <= 2e-6 * np.abs(stress).max()
    assert np.abs(stress).max() > 1e-4  # a rattled, strained-free cell still has a real stress


def test_error_table_is_the_same_whatever_the_prediction_chunk(model, bundled_data, monkeypatch):
    from kernelpot.io import read_labelled
    from kernelpot.potential import metrics

    data = read_labelled(bundled_data / "mlearn_si" / "mlearn_Si_test.extxyz", virial_key=None, stress_key=None)
    whole = metrics.error_table(model, data)
    monkeypatch.setattr(metrics, "_PREDICT_ATOMS", 1)  # one structure per model call
    chunked = metrics.error_table(model, data, verbose=True)
    assert chunked["n_structures"] == whole["n_structures"] == 25
    for key in ("energy_rmse", "forces_rmse", "energy_mae", "forces_mae"):
        assert chunked[key] == pytest.approx(whole[key], rel=1e-12)
    assert chunked["by_config_type"].keys() == whole["by_config_type"].keys()


def test_a_hard_soap_cutoff_is_said_and_the_energy_really_jumps_there(model, si_train):
    """dscribe's padded cutoff: the calculator warns, naming the term and the radius, and a Si dimer's energy jumps
    as its distance crosses that radius; GAP's smooth cutoff (the fixture) gives neither."""
    hard_terms = copy.deepcopy(model.terms)
    hard_terms[1].descriptor.set_params(cutoff_transition_width=None)
    hard = SparseGPR(hard_terms, random_state=0).fit(
        si_train, energies=[a.get_potential_energy() for a in si_train], forces=[a.get_forces() for a in si_train])
    [(index, radius)] = hard_cutoff_terms(hard)
    assert index == 1 and radius > 4.0
    with pytest.warns(HardCutoffWarning, match=rf"terms\[1\] at {radius:.3f} Å"):
        hard_calc = GAPCalculator(hard, uncertainty=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", HardCutoffWarning)
        smooth_calc = GAPCalculator(model, uncertainty=False)

    def jump(calc):
        inside, outside = (Atoms("Si2", positions=[[0, 0, 0], [0, 0, radius + side]]) for side in (-1e-6, 1e-6))
        return calc.get_potential_energy(inside) - calc.get_potential_energy(outside)

    assert abs(jump(hard_calc)) > 1e-6  # eV; the force there is ~1e-3 eV/Å, so 2e-6 Å moves it by ~1e-9 eV
    assert abs(jump(smooth_calc)) < 1e-10
