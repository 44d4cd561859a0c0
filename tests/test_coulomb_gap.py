"""A GAP on top of a fixed-charge Coulomb baseline: physics, composition, model files, calculator, command line."""

import json

import numpy as np
import pytest
from _finite_differences import strain_derivative
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from kernelpot.cli import main
from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.soap import SOAP
from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, IncrementalSparseGPR, SparseGPR
from kernelpot.potential.calculator import GAPCalculator
from kernelpot.potential.coulomb_baseline import CoulombBaseline
from kernelpot.potential.model_file import ModelFileError, load_model_file, save_model_file
from kernelpot.potential.serialization import load_model, save_model

K_E = 14.399645351950548
CHARGES = {"Na": 1.0, "Cl": -1.0}
# Born–Mayer repulsion of Na+ Cl- (eV, Å): the short-range part of the synthetic truth.
BORN_A, BORN_RHO = 1250.0, 0.317


def _born_mayer_coulomb(atoms):
    """Energy (eV) and forces (eV/Å) of pairwise Born–Mayer repulsion + bare Coulomb, open boundaries."""
    q = np.array([CHARGES[s] for s in atoms.get_chemical_symbols()])
    energy, forces = 0.0, np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for j in range(i + 1, len(atoms)):
            vector = atoms.positions[j] - atoms.positions[i]
            r = np.linalg.norm(vector)
            e = BORN_A * np.exp(-r / BORN_RHO) + K_E * q[i] * q[j] / r
            de_dr = -BORN_A / BORN_RHO * np.exp(-r / BORN_RHO) - K_E * q[i] * q[j] / r**2
            energy += e
            forces[j] -= de_dr * vector / r
            forces[i] += de_dr * vector / r
    return energy, forces


def _ion_pair(r):
    return Atoms("NaCl", positions=[[0, 0, 0], [0.3 * r, 0.4 * r, np.sqrt(0.75) * r]], pbc=False)


def _pair_model(baseline=None, cutoff=5.0):
    term = GAPTerm(Distance2B(cutoff=cutoff, cutoff_transition_width=1.0), GaussianCovariance(0.4), delta=2.0,
                   n_sparse=15, sparse_method="uniform")
    return SparseGPR([term], default_sigma=(1e-4, 1e-3, 0.01), e0=0.0, baseline=baseline, random_state=0)


def test_baseline_model_extrapolates_coulomb_beyond_the_cutoff():
    """Data = Coulomb + Born–Mayer; trained on 2.2–4 Å, tested at 6–10 Å (beyond the 5 Å GAP cutoff)."""
    train = [_ion_pair(r) for r in np.linspace(2.2, 4.0, 12)]
    labels = [_born_mayer_coulomb(a) for a in train]
    test = [_ion_pair(r) for r in np.linspace(6.0, 10.0, 9)]
    truth = np.array([_born_mayer_coulomb(a)[0] for a in test])
    fit = {"energies": [e for e, _ in labels], "forces": [f for _, f in labels]}
    plain = _pair_model().fit(train, **fit)
    with_coulomb = _pair_model(CoulombBaseline(CHARGES)).fit(train, **fit)
    plain_error = np.abs(plain.predict(test)["energy"] - truth)
    baseline_error = np.abs(with_coulomb.predict(test)["energy"] - truth)
    # Beyond its cutoff the plain GAP predicts 0: its error is the whole energy, about k/r (1.4-2.4 eV).
    np.testing.assert_allclose(plain_error, np.abs(truth), atol=1e-10)
    assert plain_error.min() > 1.4
    assert baseline_error.max() < 1e-3
    # Inside the training range both fit the data.
    inside = [_ion_pair(r) for r in (2.5, 3.3)]
    inside_truth = [_born_mayer_coulomb(a)[0] for a in inside]
    np.testing.assert_allclose(with_coulomb.predict(inside)["energy"], inside_truth, atol=5e-3)


@pytest.fixture(scope="module")
def periodic_model():
    """Baseline + 2b + SOAP GAP fitted to Born–Mayer + Ewald Coulomb energies/forces of rattled rock salt."""
    baseline = CoulombBaseline(CHARGES, tolerance=1e-10)
    frames = []
    rng = np.random.default_rng(1)
    for k in range(6):
        crystal = bulk("NaCl", "rocksalt", a=5.5 + 0.05 * k, cubic=True)
        crystal.positions += rng.normal(scale=0.1, size=crystal.positions.shape)
        frames.append(crystal)
    coulomb = baseline.evaluate(frames)
    energies, forces = [], []
    for s, crystal in enumerate(frames):
        # short-range part: Born–Mayer over minimum-image pairs (smooth enough for a fit)
        d = crystal.get_all_distances(mic=True)
        short = 0.5 * BORN_A * np.sum(np.exp(-d[d > 0] / BORN_RHO))
        energies.append(coulomb["energy"][s] + short)
        forces.append(coulomb["forces"][8 * s:8 * s + 8] + rng.normal(scale=0.01, size=(8, 3)))
    terms = [GAPTerm(Distance2B(cutoff=4.0, cutoff_transition_width=1.0), GaussianCovariance(0.5), delta=1.0,
                     n_sparse=8, sparse_method="uniform"),
             GAPTerm(SOAP(species=[11, 17], r_cut=3.5, n_max=3, l_max=2, sigma=0.5, periodic=True),
                     NormalizedDotProductCovariance(2), delta=0.1, n_sparse=20, sparse_method="fps")]
    model = SparseGPR(terms, default_sigma=(0.002, 0.05, 0.05), baseline=baseline, random_state=0)
    return model.fit(frames, energies=energies, forces=forces), frames, energies, forces


def _test_crystal():
    crystal = bulk("NaCl", "rocksalt", a=5.6, cubic=True)
    crystal.positions += np.random.default_rng(7).normal(scale=0.08, size=crystal.positions.shape)
    return crystal


def test_forces_are_minus_the_gradient_of_baseline_plus_gap(periodic_model):
    model = periodic_model[0]
    crystal = _test_crystal()
    forces = model.predict([crystal], properties=("forces",))["forces"]
    h = 1e-4
    for atom, axis in ((0, 0), (3, 1), (6, 2)):
        values = []
        for sign in (1, -1):
            moved = crystal.copy()
            moved.positions[atom, axis] += sign * h
            values.append(model.predict([moved])["energy"][0])
        assert forces[atom, axis] == pytest.approx(-(values[0] - values[1]) / (2 * h), rel=1e-6, abs=1e-6)
    assert np.abs(forces.sum(axis=0)).max() < 1e-8  # no net force: both parts translate invariantly


def test_stress_is_the_strain_derivative_and_local_energies_sum_up(periodic_model):
    model = periodic_model[0]
    crystal = _test_crystal()
    prediction = model.predict([crystal], properties=("energy", "virial", "stress", "local_energy"))
    reference = -strain_derivative(lambda a: model.predict([a])["energy"][0], crystal, 1e-5)
    symmetric = 0.5 * (reference + reference.T)
    np.testing.assert_allclose(prediction["virial"][0], symmetric, atol=2e-5)
    xx, yy, zz, yz, xz, xy = prediction["stress"][0]
    stress = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    np.testing.assert_allclose(stress, -symmetric / crystal.get_volume(), atol=1e-6)
    assert prediction["local_energy"].sum() == pytest.approx(prediction["energy"][0], rel=1e-12)


def test_baseline_model_is_a_plain_gap_on_the_residual_plus_the_baseline(periodic_model):
    """Same sparse points and labels minus the baseline: identical coefficients and variances."""
    model, frames, energies, forces = periodic_model
    coulomb = model.baseline.evaluate(frames)
    plain = SparseGPR([GAPTerm(t.descriptor, t.kernel, delta=t.delta, n_sparse=t.n_sparse,
                               sparse_points=t.sparse_X) for t in model.terms_],
                      default_sigma=model.default_sigma, e0=model.e0_, random_state=0)
    plain.fit(frames, energies=np.array(energies) - coulomb["energy"],
              forces=[f - coulomb["forces"][8 * s:8 * s + 8] for s, f in enumerate(forces)])
    np.testing.assert_allclose(plain.alpha_, model.alpha_, rtol=1e-8, atol=1e-10)
    crystal = [_test_crystal()]
    a = model.predict(crystal, properties=("energy", "forces"), return_std=True)
    b = plain.predict(crystal, properties=("energy", "forces"), return_std=True)
    extra = model.baseline.evaluate(crystal)
    np.testing.assert_allclose(a["energy"], b["energy"] + extra["energy"], rtol=1e-10)
    np.testing.assert_allclose(a["forces"], b["forces"] + extra["forces"], atol=1e-9)
    np.testing.assert_allclose(a["energy_std"], b["energy_std"], rtol=1e-10)  # the baseline adds no variance
    np.testing.assert_allclose(a["forces_std"], b["forces_std"], rtol=1e-10)
    # the user's labels are not modified by the subtraction
    assert forces[0] is periodic_model[3][0] and np.isfinite(forces[0]).all()


def test_partial_fit_subtracts_the_baseline_too(periodic_model):
    model, frames, energies, forces = periodic_model
    terms = [GAPTerm(t.descriptor, t.kernel, delta=t.delta, n_sparse=t.n_sparse, sparse_points=t.sparse_X)
             for t in model.terms_]
    kwargs = {"default_sigma": model.default_sigma, "e0": model.e0_, "baseline": model.baseline}
    full = IncrementalSparseGPR(terms, **kwargs).fit(frames, energies=energies, forces=forces)
    part = IncrementalSparseGPR(terms, **kwargs).fit(frames[:3], energies=energies[:3], forces=forces[:3])
    part.partial_fit(frames[3:], energies=energies[3:], forces=forces[3:])
    crystal = [_test_crystal()]
    a = part.predict(crystal, properties=("energy", "forces"))
    b = full.predict(crystal, properties=("energy", "forces"))
    np.testing.assert_allclose(a["energy"], b["energy"], rtol=1e-9)
    np.testing.assert_allclose(a["forces"], b["forces"], atol=1e-6)


def test_saved_model_keeps_the_baseline_and_predicts_the_same(periodic_model, tmp_path):
    model = periodic_model[0]
    path = save_model(model, tmp_path / "nacl.kpot")
    header, _ = load_model_file(path)
    assert header["format_version"] == 2 and header["baseline"]["charges"] == {"Na": 1.0, "Cl": -1.0}
    loaded = load_model(path)
    assert loaded.baseline == model.baseline
    crystal = [_test_crystal()]
    a = model.predict(crystal, properties=("energy", "forces", "stress"), return_std=True)
    b = loaded.predict(crystal, properties=("energy", "forces", "stress"), return_std=True)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    # the calculator applies it: its energy is baseline + GAP
    atoms = crystal[0].copy()
    atoms.calc = GAPCalculator(path, uncertainty=False)
    assert atoms.get_potential_energy() == pytest.approx(a["energy"][0], rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), a["forces"], atol=1e-12)


def test_model_without_baseline_is_still_format_1(tmp_path):
    pair = [_ion_pair(r) for r in (2.5, 3.0, 3.5)]
    model = _pair_model().fit(pair, energies=[-1.0, -0.5, -0.2])
    header, _ = load_model_file(save_model(model, tmp_path / "plain.kpot"))
    assert header["format_version"] == 1 and "baseline" not in header


def test_loader_checks_the_baseline(periodic_model, tmp_path):
    path = save_model(periodic_model[0], tmp_path / "nacl.kpot")
    header, arrays = load_model_file(path)
    for name in ("format", "format_version", "kernelpot_version", "arrays"):
        header.pop(name)
    cases = [({**header, "baseline": {"kind": "lennard-jones"}}, 2, "baseline of unknown kind 'lennard-jones'"),
             ({**header, "baseline": {**header["baseline"], "version": 9}}, 2, "unreadable baseline: .*version 9"),
             ({**header, "baseline": {**header["baseline"], "charges": {"Xx": 1}}}, 2, "unknown species 'Xx'"),
             (header, 1, "declares format version 1 but holds a baseline")]
    for k, (bad, version, message) in enumerate(cases):
        broken = save_model_file(tmp_path / f"bad{k}.kpot", bad, arrays, format_version=version)
        with pytest.raises(ModelFileError, match=message):
            load_model(broken)


def test_baseline_parameter_is_checked():
    with pytest.raises(TypeError, match="`baseline` must be None or an object with check, evaluate and to_dict"):
        _pair_model(baseline={"Na": 1}).fit([_ion_pair(3.0)], energies=[-1.0])
    with pytest.raises(ValueError, match=r"species \['Cl'\] in structure 0 are not in the Coulomb baseline's"):
        _pair_model(baseline=CoulombBaseline({"Na": 1})).fit([_ion_pair(3.0)], energies=[-1.0])


# ------------------------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def ion_pairs_file(tmp_path_factory):
    frames = []
    for r in np.linspace(2.2, 4.5, 10):
        atoms = _ion_pair(r)
        energy, forces = _born_mayer_coulomb(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        frames.append(atoms)
    path = tmp_path_factory.mktemp("coulomb") / "pairs.extxyz"
    write(path, frames)
    return path


GAP_2B = ("{distance_2b cutoff=5.0 cutoff_transition_width=1.0 n_sparse=15 covariance_type=ard_se delta=1.0 "
          "theta_uniform=0.4 sparse_method=uniform}")


def test_cli_fit_with_coulomb_then_evaluate_and_md_need_no_flag(ion_pairs_file, tmp_path, capsys):
    model_path = tmp_path / "pairs.kpot"
    assert main(["fit", str(ion_pairs_file), "-o", str(model_path), "--gap", GAP_2B, "--e0", "0",
                 "--default-sigma", "0.0001,0.001,0.01", "--coulomb", "Na:+1 Cl:-1", "--quiet"]) == 0
    assert load_model(model_path).baseline == CoulombBaseline({"Na": 1, "Cl": -1})
    far = [_ion_pair(r) for r in (7.0, 9.0)]
    for atoms in far:
        atoms.calc = SinglePointCalculator(atoms, energy=_born_mayer_coulomb(atoms)[0],
                                           forces=_born_mayer_coulomb(atoms)[1])
    test_path = tmp_path / "far.extxyz"
    write(test_path, far)
    capsys.readouterr()
    assert main(["evaluate", str(model_path), str(test_path), "--json", "--quiet"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["energy_rmse"] < 1e-3  # eV/atom: the Coulomb tail comes from the stored baseline
    start = tmp_path / "start.extxyz"
    write(start, _ion_pair(3.0))
    assert main(["md", str(model_path), str(start), "--steps", "5", "--quiet", "--temperature", "100"]) == 0


@pytest.mark.parametrize("flags, message", [
    (["--coulomb", "Na:+1 Xx:-1"], "unknown species 'Xx'"),
    (["--coulomb", "Na:+1"], r"species \['Cl'\] in structure 0 are not in the Coulomb baseline's charge table"),
    (["--coulomb", "Na:+1 Cl:-0.5"], r"structure 0 \(ClNa\) gets a net charge of \+0.5 e"),
    (["--coulomb", "Na:+1 Cl:-1", "--coulomb-widths", "Na:-1 Cl:1"], "`widths` must be > 0"),
    (["--coulomb-widths", "0.5"], "--coulomb-widths needs --coulomb"),
    (["--coulomb", "Na=1"], "entries must look like 'Na:"),
])
def test_cli_coulomb_errors(ion_pairs_file, tmp_path, capsys, flags, message):
    code = main(["fit", str(ion_pairs_file), "-o", str(tmp_path / "x.kpot"), "--gap", GAP_2B, "--quiet", *flags])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("kernelpot fit: error:") and len(error.strip().splitlines()) == 1
    import re

    assert re.search(message, error), error
    assert not (tmp_path / "x.kpot").exists()
