"""The subset force σ (SubsetForceVariance, GAPCalculator(uncertainty="forces_subset")).

Against the explicit path: with every sparse point in the subset and no calibration it is the exact SoR part
of the DTC force variance (``SparseGPR.predict(..., variance="sor")``); with fewer, the brute-force
``|C⁻¹ k_S|²`` of the explicit path's force rows ``k_S``, ``C Cᵀ = (RᵀR)_SS``. The models are those of
``test_fast_predict`` (per-centre-species SOAP with absent feature blocks, pair terms, ζ = 1, 2, 4, linear).
"""

import numpy as np
import pytest
import scipy.linalg as sla
from ase.build import molecule
from test_fast_predict import CASES, _model

import kernelpot.models.gap.model as gap_model
from kernelpot.kernels import GaussianCovariance, LinearCovariance, NormalizedDotProductCovariance
from kernelpot.models.gap.predictor import GAPPredictor
from kernelpot.models.gap.subset_variance import SubsetForceVariance
from kernelpot.potential.calculator import GAPCalculator


@pytest.fixture(scope="module", params=CASES)
def case(request):
    return request.param, *_model(request.param)


def _explicit_force_rows(model, atoms, monkeypatch):
    """``k*`` (3 n_atoms, n_sparse_total) of the explicit path's DTC force variance."""
    captured = []
    exact = gap_model.dtc_variance

    def capture(prior, k_star, *factors, **kwargs):
        captured.append(k_star.copy())
        return exact(prior, k_star, *factors, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(gap_model, "dtc_variance", capture)
        model.predict([atoms], properties=("energy", "forces"), return_std=True)
    return next(k for k in captured if len(k) == 3 * len(atoms))


def _scale(model):
    return float(getattr(model, "std_scale_", 1.0))


def test_all_points_uncalibrated_is_the_exact_sor_force_std(case):
    name, model, test = case
    total = sum(t.n_sparse for t in model.terms_)
    variance = SubsetForceVariance(model, n_points=total)
    assert variance.n_subset == total and variance.kappa_ is None
    fast = GAPPredictor(model, force_variance=variance).predict(test, ("energy", "forces", "forces_std"))
    sor = model.predict(test, properties=("forces",), return_std=True, variance="sor")["forces_std"] / _scale(model)
    assert sor.max() > 0
    np.testing.assert_allclose(fast["forces_std"], sor, rtol=1e-6, atol=1e-9 * sor.max(), err_msg=name)
    mean = GAPPredictor(model).predict(test, ("energy", "forces"))
    np.testing.assert_array_equal(fast["forces"], mean["forces"])   # the σ does not touch the mean


def test_a_subset_equals_the_brute_force_of_its_force_rows(case, monkeypatch):
    name, model, test = case
    atoms = test[0]
    variance = SubsetForceVariance(model, n_points=7)
    assert all(len(p) >= 1 for p in variance.points)   # every term keeps at least one point
    assert len(np.unique(variance.columns)) == variance.n_subset
    k_subset = _explicit_force_rows(model, atoms, monkeypatch)[:, variance.columns]
    # kᵀ((RᵀR)_SS)⁻¹k = |T⁻ᵀk|² with R_S = QT (numpy's QR; RᵀR itself would square the condition number)
    T = np.linalg.qr(model.posterior_factor_[:, variance.columns], mode="r")
    expected = (np.linalg.solve(T.T, k_subset.T) ** 2).sum(0).reshape(-1, 3)
    sigma = GAPPredictor(model, force_variance=variance).predict([atoms], ("forces", "forces_std"))["forces_std"]
    assert np.all(np.isfinite(sigma)) and sigma.min() >= 0
    np.testing.assert_allclose(sigma**2, expected, rtol=1e-6, atol=1e-10 * expected.max(), err_msg=name)


def test_calibration_matches_the_exact_sigma_in_the_median_and_more_points_come_closer():
    model, test = _model("molecules-per-species-zeta4-absent-blocks")
    exact = model.predict(test, properties=("energy", "forces"), return_std=True)["forces_std"]
    exact_atom = np.linalg.norm(exact, axis=1)
    errors = []
    total = sum(t.n_sparse for t in model.terms_)
    for n_points in (4, 12, total):
        variance = SubsetForceVariance(model, n_points=n_points)
        predictor = GAPPredictor(model, force_variance=variance)
        raw = np.linalg.norm(predictor.predict(test, ("forces_std",))["forces_std"], axis=1)
        variance.calibrate(test, exact_std=exact, predictor=predictor)
        assert variance.kappa_ == pytest.approx(np.median(exact_atom**2 / raw**2), rel=1e-12)
        assert variance.kappa_ >= 1.0   # the subset's posterior part is a part of σ²: κ only adds
        sigma = np.linalg.norm(predictor.predict(test, ("forces_std",))["forces_std"], axis=1)
        np.testing.assert_allclose(sigma, np.sqrt(variance.kappa_) * raw, rtol=1e-12)
        errors.append(np.median(np.abs(sigma / exact_atom - 1.0)))
    assert errors[-1] < errors[0]


def test_per_atom_variance_is_invariant_under_rotation_translation_and_permutation():
    model, _ = _model("molecules-per-species-zeta4-absent-blocks")
    variance = SubsetForceVariance(model, n_points=10)
    predictor = GAPPredictor(model, force_variance=variance)
    atoms = molecule("CH3CH2OH")
    atoms.positions += np.random.default_rng(0).normal(0.0, 0.05, atoms.positions.shape)
    reference = (predictor.predict([atoms], ("forces_std",))["forces_std"] ** 2).sum(1)
    moved = atoms.copy()
    moved.rotate(37.0, (1.0, 2.0, -0.5), center="COP")
    moved.translate((0.3, -1.2, 2.0))
    order = np.random.default_rng(1).permutation(len(atoms))
    moved = moved[order]
    trace = (predictor.predict([moved], ("forces_std",))["forces_std"] ** 2).sum(1)
    np.testing.assert_allclose(trace, reference[order], rtol=1e-8, atol=1e-14 * reference.max())


@pytest.mark.parametrize("covariance", [NormalizedDotProductCovariance(4), NormalizedDotProductCovariance(1),
                                        GaussianCovariance(0.7), LinearCovariance()])
def test_point_gradient_factors_are_the_gradients_of_every_point(covariance):
    rng = np.random.default_rng(3)
    X, Z = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    points, alpha, rows, beta = covariance.point_gradient_factors(X, Z)
    gradients = alpha[:, :, None] * points[:, None, :] + beta[:, :, None] * rows[None, :, :]
    coef = rng.normal(size=(5, 3))
    np.testing.assert_allclose(np.einsum("im,mid->id", coef, gradients), covariance.gradient_dot(X, Z, coef),
                               rtol=1e-12, atol=1e-12)
    step = 1e-6   # and they are the derivatives of the covariance
    moved = X.copy()
    moved[2, 1] += step
    numerical = (covariance(moved, Z)[2] - covariance(X, Z)[2]) / step
    np.testing.assert_allclose(gradients[:, 2, 1], numerical, rtol=1e-4, atol=1e-6)


def test_batched_reverse_pass_equals_one_pass_per_energy():
    model, test = _model("molecules-per-species-zeta4-absent-blocks")
    soap = model.terms_[0].descriptor.descriptor
    from kernelpot.structures.packing import pack

    packed = pack(test)
    X, vjp = soap.transform_vjp(packed)
    rng = np.random.default_rng(4)
    mean_adjoint = rng.normal(size=X.shape)
    mean_adjoint[5] = 0.0   # a centre only the factored energies depend on
    groups = []
    for centres, n in ((np.array([0, 3, 4, 9]), 3), (np.array([5, 6]), 2)):
        points, rows = rng.normal(size=(n, X.shape[1])), rng.normal(size=(len(centres), X.shape[1]))
        alpha, beta = rng.normal(size=(n, len(centres))), rng.normal(size=(n, len(centres)))
        alpha[0, 1] = beta[0, 1] = 0.0   # an energy that does not depend on one of the centres
        groups.append((points, alpha, rows, beta, centres))
    mean, mean_virial, units = vjp.batched(mean_adjoint, groups, virial=True)
    one, one_virial = vjp(mean_adjoint, virial=True)
    np.testing.assert_allclose(mean, one, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mean_virial, one_virial, rtol=1e-12, atol=1e-12)
    v = 0
    for points, alpha, rows, beta, centres in groups:
        for k in range(len(points)):
            adjoint = np.zeros(X.shape)
            adjoint[centres] = alpha[k][:, None] * points[k] + beta[k][:, None] * rows
            np.testing.assert_allclose(units[v], vjp(adjoint)[0], rtol=1e-12, atol=1e-12)
            v += 1
    assert v == len(units)


def test_calculator_calibrates_on_its_first_structure_then_takes_the_fast_path():
    model, test = _model("metal-2b-soap-gap-zeta4")
    atoms = test[0]
    calc = GAPCalculator(model, uncertainty="forces_subset", sigma_points=8)
    atoms.calc = calc
    first = atoms.get_forces()
    exact = model.predict([atoms], properties=("energy", "forces"), return_std=True)
    np.testing.assert_allclose(calc.results["forces_std"], exact["forces_std"], rtol=1e-10)   # exact, calibrating
    np.testing.assert_allclose(first, exact["forces"], rtol=1e-8, atol=1e-10)
    variance = calc._subset_variance()
    assert variance.kappa_ is not None and variance.n_subset >= 8
    moved = atoms.copy()
    moved.positions += np.random.default_rng(5).normal(0.0, 0.02, moved.positions.shape)
    moved.calc = calc
    forces = moved.get_forces()
    fast = GAPPredictor(model, force_variance=variance).predict([moved], ("energy", "forces", "forces_std"))
    np.testing.assert_allclose(forces, fast["forces"], rtol=1e-12)
    np.testing.assert_allclose(moved.calc.get_property("forces_std", moved), fast["forces_std"], rtol=1e-12)
    assert np.all(fast["forces_std"] > 0)


def test_bad_arguments_are_refused():
    model, _ = _model("metal-2b-soap-gap-zeta4")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_points"):
            SubsetForceVariance(model, n_points=bad)
        with pytest.raises(ValueError, match="sigma_points"):
            GAPCalculator(model, uncertainty="forces_subset", sigma_points=bad)
        with pytest.raises(ValueError, match="residual_points"):
            SubsetForceVariance(model, 4, residual=True, residual_points=bad)
        with pytest.raises(ValueError, match="sigma_residual_points"):
            GAPCalculator(model, uncertainty="forces_subset", sigma_residual_points=bad)
    with pytest.raises(ValueError, match="force_variance"):
        GAPPredictor(model).predict(_model("metal-2b-soap-gap-zeta4")[1], ("forces", "forces_std"))
    other, _ = _model("metal-linear-and-zeta2")
    with pytest.raises(ValueError, match="another model"):
        GAPPredictor(model, force_variance=SubsetForceVariance(other, 4))
    stripped = _model("metal-2b-soap-gap-zeta4")[0]
    stripped.posterior_factor_ = None
    with pytest.raises(ValueError, match="posterior"):
        SubsetForceVariance(stripped)


def test_whitening_is_the_cholesky_factor_of_the_subset_precision():
    model, _ = _model("alloy-per-species-zeta2-matrix")
    variance = SubsetForceVariance(model, n_points=9)
    R = model.posterior_factor_[:, variance.columns]
    C = variance.whitening
    np.testing.assert_allclose(C @ C.T, R.T @ R, rtol=1e-10, atol=1e-10 * np.abs(R.T @ R).max())
    assert np.allclose(C, np.tril(C)) and np.all(np.diag(C) > 0)
    # the subset's posterior variance of a vector k is |C⁻¹k|² = kᵀ((RᵀR)_SS)⁻¹k
    k = np.random.default_rng(6).normal(size=variance.n_subset)
    assert (sla.solve_triangular(C, k, lower=True) ** 2).sum() == pytest.approx(k @ np.linalg.solve(R.T @ R, k),
                                                                                 rel=1e-6)


def test_two_threads_give_the_same_subset_force_std(monkeypatch):
    from numba import config, get_num_threads, set_num_threads

    import kernelpot.models.gap.predictor as predictor
    import kernelpot.models.gap.terms as terms

    model, test = _model("molecules-per-species-zeta4-absent-blocks")
    variance = SubsetForceVariance(model, n_points=12)
    one = GAPPredictor(model, force_variance=variance).predict(test, ("forces", "forces_std"))
    monkeypatch.setattr(predictor, "_MIN_ROWS_PER_THREAD", 2)
    monkeypatch.setattr(terms, "MIN_SPARSE_PER_PART", 1)
    threads = get_num_threads()
    set_num_threads(min(2, config.NUMBA_NUM_THREADS))   # centres of the reverse passes split between threads
    try:
        two = GAPPredictor(model, force_variance=variance).predict(test, ("forces", "forces_std"))
    finally:
        set_num_threads(threads)
    np.testing.assert_allclose(two["forces"], one["forces"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(two["forces_std"], one["forces_std"], rtol=1e-10, atol=1e-14)


def _explicit_local_rows(model, atoms, monkeypatch):
    """The prior variances ``k_ii`` (n_atoms,) and covariances ``k_i`` (n_atoms, n_sparse_total) of every atom's
    local energy, from the explicit path."""
    captured = []
    exact = gap_model.dtc_variance

    def capture(prior, k_star, *factors, **kwargs):
        captured.append((prior.copy(), k_star.copy()))
        return exact(prior, k_star, *factors, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(gap_model, "dtc_variance", capture)
        model.predict([atoms], properties=("local_energy",), return_std=True)
    return next(c for c in captured if len(c[0]) == len(atoms))


def _explicit_local_residual(model, atoms, monkeypatch):
    """``k_ii − k_iᵀ K_MM⁻¹ k_i`` (n_atoms,) of every atom's local energy, from the explicit path's rows."""
    prior, k = _explicit_local_rows(model, atoms, monkeypatch)
    return prior - (sla.solve_triangular(model.kmm_cholesky_, k.T, lower=True) ** 2).sum(0)


def test_residual_is_the_explicit_local_energy_nystrom_residual(case, monkeypatch):
    name, model, test = case
    atoms = test[0] if isinstance(test, list) else test
    expected = _explicit_local_residual(model, atoms, monkeypatch)
    assert expected.max() > 0
    variance = SubsetForceVariance(model, n_points=4, residual=True)
    variance.kappa_, variance.residual_weight_ = 0.0, 3.0      # σ̂²_aα = r_a in every component
    std = GAPPredictor(model, force_variance=variance).predict([atoms], ("energy", "forces", "forces_std"))["forces_std"]
    np.testing.assert_allclose(std**2, np.repeat(expected[:, None], 3, axis=1), rtol=1e-6,
                               atol=1e-6 * expected.max(), err_msg=name)


def test_residual_calibration_recovers_both_factors():
    model, test = _model("alloy-per-species-zeta2-matrix")
    atoms = test[0] if isinstance(test, list) else test
    variance = SubsetForceVariance(model, n_points=6, residual=True)
    predictor = GAPPredictor(model, force_variance=variance)
    parts = []
    original = variance.variance
    variance.variance = lambda unit, residual: (parts.append((unit, residual)), original(unit, residual))[1]
    predictor.predict([atoms], ("energy", "forces", "forces_std"))
    del variance.variance
    unit, residual = parts[0]
    subset = (sla.solve_triangular(variance.whitening, unit.reshape(variance.n_subset, -1), lower=True) ** 2
              ).sum(0).reshape(-1, 3).sum(1)
    assert subset.min() > 0 and residual.max() > 0
    kappa, weight = 2.5, 0.7 * subset.mean() / residual.mean()
    exact = np.sqrt(np.repeat(((kappa * subset + weight * residual) / 3)[:, None], 3, axis=1))
    variance.calibrate([atoms], exact_std=exact, predictor=predictor)
    assert variance.kappa_ == pytest.approx(kappa, rel=1e-6)
    assert variance.residual_weight_ == pytest.approx(weight, rel=1e-6)
    std = predictor.predict([atoms], ("energy", "forces", "forces_std"))["forces_std"]
    np.testing.assert_allclose((std**2).sum(1), kappa * subset + weight * residual, rtol=1e-6)   # per atom


def test_residual_needs_the_residuals_and_a_separate_cached_factor():
    from kernelpot.models.gap.local_variance import LocalEnergyVariance

    model, _ = _model("alloy-per-species-zeta2-matrix")
    variance = SubsetForceVariance(model, n_points=4, residual=True)
    with pytest.raises(ValueError, match="Nyström residuals"):
        variance.variance(np.zeros((variance.n_subset, 3, 3)))
    assert SubsetForceVariance(model, n_points=4).residual_model() is None
    nystrom = variance.residual_model()
    assert nystrom is LocalEnergyVariance.for_model(model, posterior=False) and not nystrom.posterior
    assert LocalEnergyVariance.for_model(model) is not nystrom and LocalEnergyVariance.for_model(model).posterior


def test_calculator_sigma_residual_calibrates_both_factors():
    model, test = _model("alloy-per-species-zeta2-matrix")
    atoms = (test[0] if isinstance(test, list) else test).copy()
    atoms.calc = GAPCalculator(model, uncertainty="forces_subset", sigma_points=5, sigma_residual=True)
    atoms.get_forces()
    first = atoms.calc.results["forces_std"]
    exact = model.predict([atoms], properties=("energy", "forces"), return_std=True)["forces_std"]
    np.testing.assert_allclose(first, exact, rtol=1e-8)   # the calibration call returns the exact σ
    variance = atoms.calc._subset_variance()
    assert variance.residual and variance.kappa_ is not None and variance.residual_weight_ is not None
    # the residual is the calculator's default; sigma_residual=False is the subset alone
    assert GAPCalculator(model, uncertainty="forces_subset")._subset_variance().residual
    assert not GAPCalculator(model, uncertainty="forces_subset", sigma_residual=False)._subset_variance().residual
    atoms.positions[0] += 0.05
    atoms.get_forces()
    assert np.all(np.isfinite(atoms.calc.results["forces_std"])) and atoms.calc.results["forces_std"].max() > 0


def _nearest_brute_force(K, gram, q):
    """Per row: ``k_qᵀ K_qq⁻¹ k_q`` over the ``q`` columns of largest ``k_m / √gram_mm``, by numpy."""
    scores = K / np.sqrt(np.diag(gram))
    out = []
    for row, score in zip(K, scores):
        top = np.argsort(-score, kind="stable")[:q]
        out.append(row[top] @ np.linalg.solve(gram[np.ix_(top, top)], row[top]))
    return np.array(out)


def test_nearest_nystrom_projects_each_row_onto_its_most_similar_points():
    from kernelpot.models.gap._residual_kernels import nearest_nystrom

    rng = np.random.default_rng(3)
    points = rng.normal(size=(40, 6))
    gram = np.exp(-0.5 * ((points[:, None] - points[None]) ** 2).sum(-1) / 4.0) + 1e-8 * np.eye(40)
    rows = np.exp(-0.5 * ((rng.normal(size=(25, 6))[:, None] - points[None]) ** 2).sum(-1) / 4.0)
    inverse_norm = 1.0 / np.sqrt(np.diag(gram))
    every = np.einsum("im,im->i", rows, np.linalg.solve(gram, rows.T).T)
    for q in (1, 3, 8, 40, 100):
        explained = nearest_nystrom(rows, gram, inverse_norm, q)
        np.testing.assert_allclose(explained, _nearest_brute_force(rows, gram, min(q, 40)), rtol=1e-8)
        assert np.all(explained <= every * (1 + 1e-9))   # a projection onto fewer points explains less
    np.testing.assert_allclose(nearest_nystrom(rows, gram, inverse_norm, 40), every, rtol=1e-8)   # all: exact
    # a point repeated (a singular K_qq) leaves the projection onto the span unchanged
    doubled = np.vstack([points, points[:1]])
    gram2 = np.exp(-0.5 * ((doubled[:, None] - doubled[None]) ** 2).sum(-1) / 4.0)
    rows2 = np.hstack([rows, rows[:, :1]])
    np.testing.assert_allclose(nearest_nystrom(rows2, gram2, 1.0 / np.sqrt(np.diag(gram2)), 41),
                               nearest_nystrom(rows, gram2[:40, :40], inverse_norm, 40), rtol=1e-6)


def test_nearest_residual_is_the_explicit_nystrom_residual_of_each_atoms_nearest_points(case, monkeypatch):
    """``residual_points=q``: every term (the 256-point floor lowered to 0 for these small models) projected
    onto each atom's q most similar points; q at least every term's size gives the exact residual."""
    import kernelpot.models.gap.local_variance as local_variance

    name, model, test = case
    atoms = test[0] if isinstance(test, list) else test
    exact = _explicit_local_residual(model, atoms, monkeypatch)
    prior, k = _explicit_local_rows(model, atoms, monkeypatch)
    L = model.kmm_cholesky_
    bounds = np.concatenate([[0], np.cumsum([t.n_sparse for t in model.terms_])])
    monkeypatch.setattr(local_variance, "_WHITEN_MAX", 0)
    mean = GAPPredictor(model).predict([atoms], ("energy", "forces"))["forces"]
    for q in (2, int(np.diff(bounds).max())):
        variance = SubsetForceVariance(model, n_points=4, residual=True, residual_points=q)
        assert set(variance.residual_model().nearest_terms) == set(range(len(model.terms_)))
        variance.kappa_, variance.residual_weight_ = 0.0, 3.0      # σ̂²_aα = r_a in every component
        out = GAPPredictor(model, force_variance=variance).predict([atoms], ("energy", "forces", "forces_std"))
        np.testing.assert_array_equal(out["forces"], mean)        # the σ does not touch the mean
        explained = sum(_nearest_brute_force(k[:, a:b], L[a:b, a:b] @ L[a:b, a:b].T, min(q, b - a))
                        for a, b in zip(bounds[:-1], bounds[1:]))
        expected = np.maximum(prior - explained, 0.0)
        # round-off of the explained part, k_qᵀ K_qq⁻¹ k_q ≈ prior, is relative to the prior, not to the residual
        tolerance = {"rtol": 1e-6, "atol": 1e-10 * prior.max(), "err_msg": name}
        np.testing.assert_allclose(out["forces_std"][:, 0] ** 2, expected, **tolerance)
        assert np.all(expected >= exact - tolerance["atol"])           # an upper bound on the exact residual
    np.testing.assert_allclose(expected, exact, **tolerance)           # q ≥ every term's size: the exact one


def test_calculator_passes_the_residual_points_on():
    model, _ = _model("alloy-per-species-zeta2-matrix")
    variance = GAPCalculator(model, uncertainty="forces_subset", sigma_residual_points=5)._subset_variance()
    assert variance.residual and variance.residual_points == 5
    assert variance.residual_model().nearest == 5
    assert GAPCalculator(model, uncertainty="forces_subset")._subset_variance().residual_points is None
