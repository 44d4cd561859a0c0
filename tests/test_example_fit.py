"""examples/fit_si_gap.py: the Python fitting path of the README (ASE frames -> SparseGPR -> .kpot -> calculator)."""

import importlib.util
import warnings

import pytest
from conftest import BUNDLED_DATA, REPO_ROOT

from kernelpot.exceptions import ReducedRequestWarning
from kernelpot.potential.serialization import load_model


def _example():
    spec = importlib.util.spec_from_file_location("fit_si_gap", REPO_ROOT / "examples" / "fit_si_gap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """The example on every 10th training structure (22 structures, 1,345 atoms)."""
    output = tmp_path_factory.mktemp("example") / "si_python.kpot"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        errors = _example().main(["--every", "10", "--output", str(output)])
    return output, errors, [str(w.message) for w in caught if issubclass(w.category, ReducedRequestWarning)]


def test_example_fits_saves_and_reports_test_errors(example_run):
    output, errors, reduced = example_run
    model = load_model(output)
    # 1,016 distinct SOAP environments: CUR + FPS may stop a little short of 1000, and then say so.
    soap_points = model.terms_[1].n_sparse
    assert model.terms_[0].n_sparse == 20 and 900 < soap_points <= 1000
    if soap_points < 1000:
        assert any(f"n_sparse=1000 requested, {soap_points} used" in message for message in reduced)
    # 22 structures instead of 214: larger errors than the full fit's (6.3 meV/atom, 0.12 eV/Å, 0.7 GPa),
    # but a model, far from predicting the mean (test energy spread ~50 meV/atom, RMS force ~0.5 eV/Å).
    assert 0 < errors["energy_meV_per_atom"] < 20
    assert 0 < errors["forces_eV_per_A"] < 0.25
    assert 0 < errors["stress_GPa"] < 2.5


def test_example_fits_the_same_model_as_kernelpot_fit(example_run, tmp_path):
    """The Python recipe and the command's defaults are one model: the same predictions from the same frames."""
    import numpy as np
    from ase.io import read, write

    from kernelpot.cli import main

    frames = read(BUNDLED_DATA / "mlearn_si" / "mlearn_Si_training.extxyz", "::10")
    write(tmp_path / "train.extxyz", frames)  # energies, forces and stresses, as ASE holds them
    assert main(["fit", str(tmp_path / "train.extxyz"), "-o", str(tmp_path / "cli.kpot"), "--quiet"]) == 0
    test = read(BUNDLED_DATA / "mlearn_si" / "mlearn_Si_test.extxyz", "::5")
    python_model, cli_model = load_model(example_run[0]), load_model(tmp_path / "cli.kpot")
    assert python_model.default_sigma == cli_model.default_sigma
    ours = python_model.predict(test, properties=("energy", "forces", "stress"))
    theirs = cli_model.predict(test, properties=("energy", "forces", "stress"))
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, atol=1e-6 * np.abs(theirs[key]).max())
