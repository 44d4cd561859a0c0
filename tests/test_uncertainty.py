"""Calibration tools, recalibration stored in the model, FITC/SoR variants, calculator, committee, novelty."""

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from scipy import stats
from test_sparse_gpr import RadialGaussians, _cu, _emt_labels

from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR, fitc_factor
from kernelpot.potential.calculator import GAPCalculator
from kernelpot.potential.serialization import load_model, save_model
from kernelpot.uncertainty.calibration import (
    calibration_summary,
    coverage,
    fit_std_scale,
    gaussian_nll,
    observed_std,
    recalibrate,
    reliability_diagram,
    spearman,
    z_scores,
)
from kernelpot.uncertainty.committee import CommitteeSparseGPR
from kernelpot.uncertainty.novelty import kernel_distance, novelty


@pytest.fixture(scope="module")
def data():
    structures = [_cu(s, a=3.52 + 0.03 * s) for s in range(6)]
    energies, forces, _ = _emt_labels(structures)
    return structures, energies, forces


def _model(**kwargs):
    terms = [GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(0.7), delta=0.5, n_sparse=6, sparse_method="uniform"),
             GAPTerm(RadialGaussians(), NormalizedDotProductCovariance(4), delta=0.3, n_sparse=10, sparse_method="fps")]
    params = {"e0": 0.0, "jitter": 1e-8, "default_sigma": (0.005, 0.05, 0.05), "random_state": 0}
    params.update(kwargs)
    return SparseGPR(terms, **params)


@pytest.fixture(scope="module")
def fitted(data):
    structures, energies, forces = data
    return _model().fit(structures, energies=energies, forces=forces)


# ------------------------------------------------------------------ calibration metrics
def test_metrics_of_a_calibrated_gaussian():
    rng = np.random.default_rng(0)
    std = rng.uniform(0.1, 2.0, size=200_000)
    errors = rng.normal(size=std.size) * std
    cov = coverage(errors, std)
    assert abs(cov[1.0] - 0.6827) < 0.005 and abs(cov[2.0] - 0.9545) < 0.003
    np.testing.assert_allclose(gaussian_nll(errors, std), -stats.norm.logpdf(errors, scale=std).mean(), rtol=1e-12)
    assert abs(fit_std_scale(3.0 * errors, std) - 3.0) < 0.02
    summary = calibration_summary(errors, std)
    assert abs(summary["z_std"] - 1) < 0.01 and abs(summary["z_abs_median"] - 0.6745) < 0.01
    np.testing.assert_allclose(z_scores(errors, std), errors / std)


def test_observed_std_adds_the_label_noise_in_quadrature():
    np.testing.assert_allclose(observed_std([0.3, 0.0], 0.4), [0.5, 0.4])


def test_values_fixed_by_symmetry_are_left_out():
    # Forces on atoms of a perfect crystal: σ = 0 and error 1e-12, no z-score.
    np.testing.assert_allclose(z_scores([1e-12, 0.5, -1.0], [0.0, 1.0, 2.0]), [0.5, -0.5])
    assert coverage([1e-12, 3.0], [1e-15, 1.0])[2.0] == 0.0


def test_spearman_sees_ranking_only():
    s = np.arange(10.0)
    assert spearman(s, s**3) == pytest.approx(1.0)
    assert spearman(s, -s) == pytest.approx(-1.0)


@pytest.mark.parametrize("errors, std, match", [
    ([1.0, 2.0], [1.0], r"same number of values; got 2 and 1"),
    ([], [], r"`errors` must not be empty"),
    ([np.nan], [1.0], r"must be finite"),
    ([1.0, 1.0], [1.0, -1.0], r"`std` must be >= 0 everywhere; got min -1.0"),
    ([1.0, 1.0], [0.0, 0.0], r"`std` is zero everywhere; nothing to calibrate"),
])
def test_metric_validation(errors, std, match):
    with pytest.raises(ValueError, match=match):
        coverage(errors, std)


def test_spearman_validation():
    with pytest.raises(ValueError, match=r"same size >= 3; got 2 and 2"):
        spearman([1.0, 2.0], [1.0, 2.0])


def test_reliability_diagram_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(1)
    std = rng.uniform(0.5, 1.5, 2000)
    out = reliability_diagram(rng.normal(size=2000) * std, std, tmp_path / "r.png", title="test")
    assert (tmp_path / "r.png").stat().st_size > 1000
    np.testing.assert_allclose(out["observed"], out["levels"], atol=0.05)


# ------------------------------------------------------------------ recalibration in the model
def test_recalibration_is_stored_applied_and_saved(data, tmp_path):
    structures, energies, forces = data
    # Only library descriptors can be saved: a distance_2b model.
    term = GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(0.7), delta=0.5, n_sparse=6, sparse_method="uniform")
    model = SparseGPR([term], e0=0.0, default_sigma=(0.005, 0.05, 0.05)).fit(
        structures[:4], energies=energies[:4], forces=forces[:4])
    fitc_factor(model, structures[:4], energies=energies[:4], forces=forces[:4])
    val = structures[4:]
    raw = model.predict(val, properties=("forces",), return_std=True)
    recalibrate(model, val, forces=forces[4:])
    z = (raw["forces"] - np.concatenate(forces[4:])) / (model.std_scale_ * raw["forces_std"])
    np.testing.assert_allclose(np.mean(z**2), 1.0, rtol=1e-10)
    scaled = model.predict(val, properties=("forces", "stress"), return_std=True)
    np.testing.assert_allclose(scaled["forces_std"], model.std_scale_ * raw["forces_std"], rtol=1e-12)
    np.testing.assert_allclose(scaled["energy_std"], model.std_scale_ * raw["energy_std"], rtol=1e-12)
    # Recalibrating again on the same data does not compound the factor.
    first = model.std_scale_
    recalibrate(model, val, forces=forces[4:])
    assert model.std_scale_ == pytest.approx(first, rel=1e-12)
    save_model(model, tmp_path / "m.kpot")
    loaded = load_model(tmp_path / "m.kpot")
    assert loaded.std_scale_ == model.std_scale_
    again = loaded.predict(val, properties=("forces", "stress"), return_std=True)
    for key in ("energy_std", "forces_std", "stress_std"):
        np.testing.assert_allclose(again[key], scaled[key], rtol=1e-10)
    np.testing.assert_allclose(loaded.predict(val, return_std=True, variance="fitc")["energy_std"],
                               model.predict(val, return_std=True, variance="fitc")["energy_std"], rtol=1e-10)


def test_recalibrate_validation(fitted, data):
    structures = data[0]
    with pytest.raises(ValueError, match=r"`energies` or `forces` must be given"):
        recalibrate(fitted, structures[:1])
    with pytest.raises(ValueError, match=r"`forces` must have shape \(4, 3\) \(all atoms\); got \(3, 3\)"):
        recalibrate(fitted, structures[:1], forces=np.zeros((3, 3)))


# ------------------------------------------------------------------ variance variants
def test_dtc_adds_the_unexplained_prior_to_sor(fitted):
    test = [_cu(30, a=3.6, amp=0.2)]
    dtc = fitted.predict(test, properties=("forces",), return_std=True)
    sor = fitted.predict(test, properties=("forces",), return_std=True, variance="sor")
    assert np.all(dtc["forces_std"] >= sor["forces_std"] - 1e-12)
    assert np.any(dtc["forces_std"] > 1.01 * sor["forces_std"])


def test_fitc_equals_dense_fitc_formula_for_energies():
    structures = [_cu(s, a=3.5 + 0.03 * s) for s in range(6)]
    energies = _emt_labels(structures)[0]
    term = GAPTerm(RadialGaussians(), GaussianCovariance(0.8), delta=0.4, n_sparse=5, sparse_method="fps")
    sigma = 0.01
    model = SparseGPR([term], e0=0.0, jitter=1e-8, default_sigma=(sigma, 1, 1), sigma_per_atom=False,
                      random_state=0).fit(structures, energies=energies)
    fitc_factor(model, structures, energies=energies)
    test = [_cu(40, amp=0.2)]
    got = model.predict(test, return_std=True, variance="fitc")["energy_std"]
    t = model.terms_[0]

    def rows(a):
        X = np.asarray(t.descriptor.transform([a]))
        return X, t.knm(X)[0].sum(0)

    def cov(a, b):
        return t.delta**2 * t.kernel(rows(a)[0], rows(b)[0]).sum()

    kmm = t.kmm() + 1e-8 * t.delta**2 * np.eye(t.n_sparse)
    knm = np.array([rows(a)[1] for a in structures])
    q_nn = knm @ np.linalg.solve(kmm, knm.T)
    lam = sigma**2 + np.array([cov(a, a) for a in structures]) - np.diag(q_nn)
    k_s = rows(test[0])[1]
    q_sn = k_s @ np.linalg.solve(kmm, knm.T)
    expected = cov(test[0], test[0]) - q_sn @ np.linalg.solve(q_nn + np.diag(lam), q_sn)
    assert lam.max() > 10 * sigma**2  # the correction matters here
    np.testing.assert_allclose(got**2, expected, rtol=1e-6)
    dtc = model.predict(test, return_std=True)["energy_std"]
    assert got[0] > dtc[0]


def test_fitc_is_dtc_when_the_sparse_points_are_the_training_rows():
    structures = [_cu(s) for s in range(3)]
    energies = _emt_labels(structures)[0]
    rows = np.asarray(RadialGaussians().transform(structures))
    term = GAPTerm(RadialGaussians(), GaussianCovariance(1.0), delta=0.4, sparse_points=rows)
    model = SparseGPR([term], e0=0.0, jitter=1e-10, default_sigma=(0.01, 1, 1)).fit(structures, energies=energies)
    fitc_factor(model, structures, energies=energies)
    test = [_cu(20)]
    np.testing.assert_allclose(model.predict(test, return_std=True, variance="fitc")["energy_std"],
                               model.predict(test, return_std=True)["energy_std"], rtol=1e-6)


def test_variance_validation(fitted):
    with pytest.raises(ValueError, match=r"`variance` must be one of \['dtc', 'sor', 'fitc'\]; got 'exact'"):
        fitted.predict(_cu(1), return_std=True, variance="exact")
    fresh = _model().fit([_cu(1), _cu(2)], energies=[0.0, 0.1])
    with pytest.raises(ValueError, match=r"variance='fitc' needs the FITC factor"):
        fresh.predict(_cu(1), return_std=True, variance="fitc")
    with pytest.raises(ValueError, match=r"`model` is not fitted"):
        fitc_factor(_model(), [_cu(1)], energies=[0.0])


# ------------------------------------------------------------------ physics of the std
def test_force_std_is_translation_rotation_and_permutation_covariant(fitted):
    atoms = _cu(33, amp=0.15)
    base = fitted.predict(atoms, properties=("forces",), return_std=True)["forces_std"]
    moved = atoms.copy()
    moved.positions += [0.3, -0.7, 1.1]
    np.testing.assert_allclose(fitted.predict(moved, properties=("forces",), return_std=True)["forces_std"], base,
                               rtol=1e-8)
    # The per-atom force covariance rotates as R C R^T: its trace is invariant.
    rotated = atoms.copy()
    rotated.rotate(37, (1, 2, 0.5), rotate_cell=True)
    turned = fitted.predict(rotated, properties=("forces",), return_std=True)["forces_std"]
    np.testing.assert_allclose((turned**2).sum(1), (base**2).sum(1), rtol=1e-8)
    assert not np.allclose(turned, base, rtol=1e-3)
    perm = [2, 0, 3, 1]
    permuted = atoms[perm]
    np.testing.assert_allclose(fitted.predict(permuted, properties=("forces",), return_std=True)["forces_std"],
                               base[perm], rtol=1e-8)


def test_pair_term_local_energy_std_of_a_dimer_is_half_the_energy_std():
    dimers = [Atoms("Cu2", positions=[[0, 0, 0], [0, 0, d]]) for d in (2.2, 2.4, 2.6, 2.8)]
    term = GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(0.5), delta=0.5, n_sparse=4, sparse_method="uniform")
    model = SparseGPR([term], e0=0.0).fit(dimers, energies=[0.3, -0.1, -0.2, -0.1])
    out = model.predict(Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.5]]), properties=("local_energy",),
                        return_std=True)
    np.testing.assert_allclose(out["local_energy_std"], 0.5 * out["energy_std"][0], rtol=1e-10)


def test_std_shrinks_where_there_are_labels(fitted, data):
    seen = fitted.predict(data[0][:1], properties=("forces",), return_std=True)["forces_std"]
    unseen = fitted.predict([_cu(50, a=3.3, amp=0.25)], properties=("forces",), return_std=True)["forces_std"]
    assert seen.mean() < 0.5 * unseen.mean()


# ------------------------------------------------------------------ calculator
def test_calculator_gives_energy_and_force_std(fitted):
    atoms = _cu(44)
    atoms.calc = GAPCalculator(fitted)
    atoms.get_forces()
    expected = fitted.predict(atoms, properties=("forces",), return_std=True)
    assert atoms.calc.results["forces_std"].shape == (4, 3)
    np.testing.assert_allclose(atoms.calc.results["forces_std"], expected["forces_std"], rtol=1e-12)
    assert atoms.calc.results["energy_std"] == pytest.approx(expected["energy_std"][0], rel=1e-12)
    atoms.get_stress()
    stress_std = fitted.predict(atoms, properties=("stress",), return_std=True)["stress_std"][0]
    np.testing.assert_allclose(atoms.calc.results["stress_std"], stress_std, rtol=1e-12)
    atoms.calc = GAPCalculator(fitted, uncertainty=False)
    atoms.get_forces()
    assert "forces_std" not in atoms.calc.results
    with pytest.raises(PropertyNotImplementedError, match=r"forces_std was switched off \(uncertainty=False\)"):
        atoms.calc.get_property("forces_std", atoms)


# ------------------------------------------------------------------ committee
def test_committee_mean_and_spread_are_those_of_its_members(data):
    structures, energies, forces = data
    committee = CommitteeSparseGPR(_model(), n_members=3, subsample=0.5, random_state=0)
    committee.fit(structures, energies=energies, forces=forces)
    assert [len(s) for s in committee.subsets_] == [3, 3, 3]
    assert len({tuple(s) for s in committee.subsets_}) > 1
    test = [_cu(60), _cu(61)]
    out = committee.predict(test, properties=("forces",), return_std=True)
    members = [m.predict(test, properties=("forces",)) for m in committee.members_]
    np.testing.assert_allclose(out["forces"], np.mean([m["forces"] for m in members], 0), rtol=1e-12)
    np.testing.assert_allclose(out["forces_std"], np.std([m["forces"] for m in members], 0, ddof=1), rtol=1e-12)
    recalibrate(committee, [_cu(62)], forces=[_emt_labels([_cu(62)])[1][0]])
    scaled = committee.predict(test, properties=("forces",), return_std=True)
    np.testing.assert_allclose(scaled["forces_std"], committee.std_scale_ * out["forces_std"], rtol=1e-12)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"estimator": "model"}, TypeError, r"`estimator` must be a SparseGPR; got str"),
    ({"n_members": 1}, ValueError, r"`n_members` must be an integer >= 2; got 1"),
    ({"subsample": 0.0}, ValueError, r"`subsample` must be a fraction in \(0, 1\]; got 0.0"),
])
def test_committee_validation(data, kwargs, error, match):
    params = {"estimator": _model(), "n_members": 2}
    params.update(kwargs)
    with pytest.raises(error, match=match):
        CommitteeSparseGPR(**params).fit(data[0], energies=data[1])


def test_committee_needs_per_structure_forces(data):
    with pytest.raises(ValueError, match=r"`forces` must be a list of \(n_atoms_s, 3\) arrays"):
        CommitteeSparseGPR(_model()).fit(data[0], energies=data[1], forces=np.concatenate(data[2]))
    with pytest.raises(ValueError, match=r"not fitted yet"):
        CommitteeSparseGPR(_model()).predict(data[0])


# ------------------------------------------------------------------ novelty
def test_novelty_is_zero_on_reference_rows_and_grows_with_distortion(fitted):
    calm = _cu(70, amp=0.02)
    reference = np.asarray(RadialGaussians().transform([calm]))
    score = novelty(fitted, [calm], reference=reference)
    np.testing.assert_allclose(score["atom"], 0.0, atol=1e-7)
    values = [novelty(fitted, [_cu(70, amp=amp)], reference=reference)["structure"][0] for amp in (0.05, 0.1, 0.2)]
    assert 0 < values[0] < values[1] < values[2]
    default = novelty(fitted, [calm, _cu(71)])
    assert default["atom"].shape == (8,) and default["structure"].shape == (2,)
    np.testing.assert_allclose(default["structure"], [default["atom"][:4].max(), default["atom"][4:].max()])


def test_kernel_distance_is_the_feature_space_metric():
    X, Z = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(kernel_distance(NormalizedDotProductCovariance(1), X, Z), np.sqrt(2 - 2 / np.sqrt(2)))


def test_novelty_validation(fitted):
    with pytest.raises(ValueError, match=r"`term` must be an index in \[0, 2\); got 5"):
        novelty(fitted, [_cu(1)], term=5)
    with pytest.raises(ValueError, match=r"terms\[0\] does not have one descriptor row per atom"):
        novelty(fitted, [_cu(1)], term=0)
    with pytest.raises(ValueError, match=r"`reference` must have shape \(n, 5\); got \(3,\)"):
        novelty(fitted, [_cu(1)], reference=np.zeros(3))
    pair_only = SparseGPR([GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(0.7), n_sparse=4,
                                   sparse_method="uniform")], e0=0.0).fit([_cu(1), _cu(2)], energies=[0.0, 0.1])
    with pytest.raises(ValueError, match=r"no term of `model` has one descriptor row per atom"):
        novelty(pair_only, [_cu(1)])
    with pytest.raises(ValueError, match=r"`model` is not fitted"):
        novelty(_model(), [_cu(1)])
