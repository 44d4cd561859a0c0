"""SymmetryAdaptedGPR and TensorRegressor: equivariance, learning, sparse = full limit, bad input."""

import numpy as np
import pytest
from ase import Atoms
from sklearn.base import clone

from kernelpot.models.sagpr import SymmetryAdaptedGPR, TensorRegressor
from kernelpot.symmetry.wigner import random_rotation

FAST = {"r_cut": 3.0, "n_max": 3, "l_max": 3, "sigma": 0.4}
CHARGES = {1: 0.4, 8: -0.8}


def _waters(rng, n):
    """Distorted water molecules (Å) with point-charge dipoles and a toy anisotropic polarizability."""
    frames, dipoles, alphas = [], [], []
    for _ in range(n):
        r1, r2 = rng.uniform(0.9, 1.1, 2)
        angle = np.radians(rng.uniform(95, 115))
        positions = np.array([[0, 0, 0], [r1, 0, 0], [r2 * np.cos(angle), r2 * np.sin(angle), 0]])
        R = random_rotation(rng)
        positions = positions @ R.T + rng.normal(size=3)
        atoms = Atoms("OH2", positions=positions)
        q = np.array([CHARGES[z] for z in atoms.numbers])
        centred = positions - positions.mean(0)
        frames.append(atoms)
        dipoles.append(q @ centred)
        bonds = positions[1:] - positions[0]
        alphas.append(np.eye(3) * (3 + r1 + r2) + sum(np.outer(b, b) * (1 + 0.5 * np.linalg.norm(b)) for b in bonds))
    return frames, np.array(dipoles), np.array(alphas)


@pytest.fixture(scope="module")
def data():
    return _waters(np.random.default_rng(0), 40)


@pytest.fixture(scope="module")
def dipole_model(data):
    frames, dipoles, _ = data
    return SymmetryAdaptedGPR(1, **FAST, alpha=1e-8).fit(frames[:30], dipoles[:30])


def _rotated(frames, R):
    return [Atoms(numbers=a.numbers, positions=a.positions @ R.T) for a in frames]


def test_dipoles_are_learned(data, dipole_model):
    frames, dipoles, _ = data
    predicted = dipole_model.predict(frames[30:])
    assert predicted.shape == (10, 3)
    rmse = np.sqrt(np.mean((predicted - dipoles[30:]) ** 2))
    assert rmse < 0.05 * np.sqrt(np.mean(dipoles[30:] ** 2))


def test_dipole_predictions_rotate_exactly_and_ignore_permutations(data, dipole_model):
    frames = data[0][30:]
    rng = np.random.default_rng(1)
    R = random_rotation(rng)
    predicted = dipole_model.predict(frames)
    np.testing.assert_allclose(dipole_model.predict(_rotated(frames, R)), predicted @ R.T, atol=1e-8)
    permuted = [a[[2, 0, 1]] for a in frames]
    np.testing.assert_allclose(dipole_model.predict(permuted), predicted, atol=1e-10)


def test_polarizability_lambda2_and_tensor_regressor_are_equivariant(data):
    frames, _, alphas = data
    rng = np.random.default_rng(2)
    R = random_rotation(rng)
    model = TensorRegressor(**FAST, alpha=1e-8).fit(frames[:30], alphas[:30])
    predicted = model.predict(frames[30:])
    assert predicted.shape == (10, 3, 3)
    np.testing.assert_allclose(model.predict(_rotated(frames[30:], R)), R @ predicted @ R.T, atol=1e-8)
    error = np.sqrt(np.mean((predicted - alphas[30:]) ** 2))
    assert error < 0.05 * np.std(alphas[30:])
    lam2 = model.models_[2].predict(frames[30:])
    np.testing.assert_allclose(np.trace(lam2, axis1=1, axis2=2), 0.0, atol=1e-10)
    np.testing.assert_allclose(lam2, np.swapaxes(lam2, 1, 2), atol=1e-12)


def test_sparse_with_every_environment_reproduces_full(data):
    frames, dipoles, _ = data
    full = SymmetryAdaptedGPR(1, **FAST, alpha=1e-4).fit(frames[:12], dipoles[:12])
    sparse = SymmetryAdaptedGPR(1, **FAST, alpha=1e-4, n_sparse=36).fit(frames[:12], dipoles[:12])
    assert sparse.alpha_.shape == (36, 3)
    np.testing.assert_allclose(sparse.predict(frames[30:]), full.predict(frames[30:]), atol=1e-5)
    np.testing.assert_allclose(sparse.prior_variance_, full.prior_variance_, rtol=1e-3)
    cur = SymmetryAdaptedGPR(1, **FAST, alpha=1e-4, n_sparse=20, selection="cur").fit(frames[:12], dipoles[:12])
    assert len(np.unique(cur.sparse_indices_)) == 20


@pytest.mark.parametrize("n_sparse", [None, 30])
def test_std_shapes_and_small_on_training_structures(data, n_sparse):
    frames, dipoles, _ = data
    model = SymmetryAdaptedGPR(1, **FAST, alpha=1e-8, n_sparse=n_sparse).fit(frames[:20], dipoles[:20])
    mean, std = model.predict(frames[:20] + frames[30:], return_std=True)
    assert mean.shape == std.shape == (30, 3)
    assert np.all(std >= 0)
    np.testing.assert_allclose(mean, model.predict(frames[:20] + frames[30:]))
    assert std[:20].mean() < std[20:].mean()


def test_lambda0_learns_isotropic_part_with_per_atom_baseline(data):
    frames, _, alphas = data
    model = SymmetryAdaptedGPR(0, **FAST).fit(frames[:30], alphas[:30])
    predicted = model.predict(frames[30:])
    iso = np.trace(alphas[30:], axis1=1, axis2=2) / 3
    np.testing.assert_allclose(predicted, iso[:, None, None] * np.eye(3), atol=0.05 * np.std(iso) + 1e-9)
    scalar = SymmetryAdaptedGPR(0, **FAST).fit(frames[:30], np.trace(alphas[:30], axis1=1, axis2=2) / 3)
    np.testing.assert_allclose(scalar.predict(frames[30:]), iso, atol=0.05 * np.std(iso))
    assert scalar.baseline_ == pytest.approx(np.mean(np.trace(alphas[:30], axis1=1, axis2=2) / 9))


def test_zero_cell_molecules_are_treated_as_finite(data, dipole_model):
    frames = data[0][30:]
    as_read = [Atoms(numbers=a.numbers, positions=a.positions, cell=np.zeros((3, 3)), pbc=True) for a in frames]
    np.testing.assert_allclose(dipole_model.predict(as_read), dipole_model.predict(frames))


def test_fit_leaves_inputs_and_parameters_untouched(data):
    frames, dipoles, _ = data
    y = dipoles[:10].copy()
    positions = frames[0].positions.copy()
    model = SymmetryAdaptedGPR(1, **FAST)
    params = model.get_params()
    model.fit(frames[:10], y)
    assert np.array_equal(y, dipoles[:10]) and np.array_equal(frames[0].positions, positions)
    assert model.get_params() == params
    assert clone(model).get_params() == params


def test_bad_targets_are_named(data):
    frames, dipoles, alphas = data
    with pytest.raises(ValueError, match=r"`y` must have shape \(n_structures, 3\) Cartesian vectors \(e.g. "
                                         r"dipoles\) for lambda_=1 with 5 structures; got shape \(5, 9\)"):
        SymmetryAdaptedGPR(1, **FAST).fit(frames[:5], alphas[:5].reshape(5, 9))
    with pytest.raises(ValueError, match=r"for lambda_=2 with 5 structures; got shape \(5, 3\)"):
        SymmetryAdaptedGPR(2, **FAST).fit(frames[:5], dipoles[:5])
    with pytest.raises(ValueError, match=r"with 5 structures; got shape \(4, 3\)"):
        SymmetryAdaptedGPR(1, **FAST).fit(frames[:5], dipoles[:4])
    with pytest.raises(ValueError, match="`y` contains non-finite values"):
        SymmetryAdaptedGPR(1, **FAST).fit(frames[:5], np.full((5, 3), np.nan))
    with pytest.raises(ValueError, match=r"`y` must have shape \(n_structures, 3, 3\) = \(5, 3, 3\) for a "
                                         r"TensorRegressor; got \(5, 3\)"):
        TensorRegressor(**FAST).fit(frames[:5], dipoles[:5])


def test_non_symmetric_polarizability_warns_and_is_symmetrised(data):
    frames, _, alphas = data
    skewed = alphas[:8].copy()
    skewed[3, 0, 1] += 0.3
    with pytest.warns(UserWarning, match=r"`y` is not symmetric: largest \|T_ij - T_ji\|/2 = 0.15 \(tensor \(3,\)"):
        model = TensorRegressor(**FAST).fit(frames[:8], skewed)
    assert model.asymmetry_ == pytest.approx(0.15)
    reference = TensorRegressor(**FAST).fit(frames[:8], 0.5 * (skewed + np.swapaxes(skewed, 1, 2)))
    np.testing.assert_allclose(model.predict(frames[30:32]), reference.predict(frames[30:32]))


def test_unseen_species_and_other_bad_input(data, dipole_model):
    frames, dipoles, _ = data
    methanol_like = Atoms("CH4", positions=np.random.default_rng(0).normal(size=(5, 3)))
    with pytest.raises(ValueError, match=r"species \[6\] in structure 1 are not in the model's species \[1, 8\]"):
        dipole_model.predict([frames[0], methanol_like])
    with pytest.raises(TypeError, match="`X` must be a non-empty list of ase.Atoms; got ndarray"):
        dipole_model.predict(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"`n_sparse` must be <= the number of training environments \(15\)"):
        SymmetryAdaptedGPR(1, **FAST, n_sparse=16).fit(frames[:5], dipoles[:5])
    with pytest.raises(ValueError, match=r"structure 0 of `X` has no atom of `centers`=\['N'\]"):
        SymmetryAdaptedGPR(1, **FAST, species=[1, 7, 8], centers=["N"]).fit(frames[:5], dipoles[:5])
    with pytest.raises(ValueError, match=r"`l_max` must be >= lambda_/2 = 1.5; got 1"):
        SymmetryAdaptedGPR(3, **{**FAST, "l_max": 1}).fit(frames[:5], np.zeros((5, 3, 3, 3)))
    with pytest.raises(ValueError, match="The 'alpha' parameter of SymmetryAdaptedGPR must be"):
        SymmetryAdaptedGPR(1, **FAST, alpha=-1.0).fit(frames[:5], dipoles[:5])
    with pytest.raises(ValueError, match=r"`alpha` as a dict must have keys \{0, 2\}; got \[0, 1\]"):
        TensorRegressor(**FAST, alpha={0: 1e-8, 1: 1e-8}).fit(frames[:5], np.eye(3)[None].repeat(5, 0))
    with pytest.raises(TypeError, match="`return_std` must be a bool"):
        dipole_model.predict(frames[:2], return_std="yes")


def test_score_compares_with_the_learned_part(data, dipole_model):
    frames, dipoles, alphas = data
    assert dipole_model.score(frames[30:], dipoles[30:]) > 0.99
    model = SymmetryAdaptedGPR(2, **FAST, alpha=1e-8).fit(frames[:30], alphas[:30])
    # The λ = 2 model is scored against the λ = 2 part of the full tensors it was given.
    assert model.score(frames[30:], alphas[30:]) > 0.9


# ------------------------------------------------------------------ hyperparameter search
def _brute_force_log_likelihood(model, frames, dipoles):
    """log N(t | 0, σ² C) with C built from public kernels, σ² = prior_variance_ (the profiled optimum)."""
    from scipy.stats import multivariate_normal

    from kernelpot.tensors import vector_to_spherical

    t = vector_to_spherical(dipoles).ravel()
    env = model._environments(frames, model.best_sigma_)
    n_l = 3
    K = model._kernel(env, None).reshape(len(t), -1) / model.kernel_scale_
    if model.n_sparse is None:
        C = K + model.best_alpha_ * np.eye(len(t))
    else:
        K_nm = model._kernel(env, model._basis).reshape(len(t), -1) / model.kernel_scale_
        K_mm = model._kernel(model._basis, None).reshape(model.n_sparse * n_l, -1) / model.kernel_scale_
        # Q = K_nm K_mm⁺ K_mn: K_mm of these environments is singular, its null space is not in Q
        C = K_nm @ np.linalg.pinv(K_mm, rcond=1e-10, hermitian=True) @ K_nm.T + model.best_alpha_ * np.eye(len(t))
    sigma2 = t @ np.linalg.solve(C, t) / len(t)
    if model.n_sparse is None:
        np.testing.assert_allclose(model.prior_variance_, sigma2, rtol=1e-6)
    return multivariate_normal(mean=np.zeros(len(t)), cov=sigma2 * C, allow_singular=True).logpdf(t)


@pytest.mark.parametrize("n_sparse", [None, 12])
def test_log_marginal_likelihood_is_the_gaussian_density_of_the_targets(data, n_sparse):
    frames, dipoles, _ = data
    model = SymmetryAdaptedGPR(1, **FAST, alpha=1e-3, n_sparse=n_sparse).fit(frames[:20], dipoles[:20])
    expected = _brute_force_log_likelihood(model, frames[:20], dipoles[:20])
    assert model.log_marginal_likelihood_value_ == pytest.approx(expected, rel=1e-6)
    assert model.best_sigma_ == FAST["sigma"] and model.best_alpha_ == 1e-3 and model.search_scores_ is None


def test_likelihood_search_picks_the_best_pair_and_refits_with_it(data):
    frames, dipoles, _ = data
    grid = {**FAST, "sigma": [0.3, 0.5], "alpha": [1e-6, 1e-3, 1e-1]}
    tuned = SymmetryAdaptedGPR(1, **grid).fit(frames[:25], dipoles[:25])
    assert tuned.search_scores_.shape == (2, 3)
    for i, sigma in enumerate(grid["sigma"]):
        for j, alpha in enumerate(grid["alpha"]):
            single = SymmetryAdaptedGPR(1, **{**FAST, "sigma": sigma}, alpha=alpha).fit(frames[:25], dipoles[:25])
            assert tuned.search_scores_[i, j] == pytest.approx(single.log_marginal_likelihood_value_, rel=1e-10)
    i, j = np.unravel_index(np.argmax(tuned.search_scores_), (2, 3))
    assert (tuned.best_sigma_, tuned.best_alpha_) == (grid["sigma"][i], grid["alpha"][j])
    chosen = SymmetryAdaptedGPR(1, **{**FAST, "sigma": tuned.best_sigma_}, alpha=tuned.best_alpha_)
    chosen.fit(frames[:25], dipoles[:25])
    np.testing.assert_allclose(tuned.predict(frames[30:]), chosen.predict(frames[30:]), rtol=1e-12, atol=1e-14)
    assert tuned.get_params()["sigma"] == [0.3, 0.5]  # parameters are left as given
    clone(tuned).fit(frames[:25], dipoles[:25])


def test_cv_search_scores_are_the_folds_errors_of_separate_fits(data):
    frames, dipoles, _ = data
    frames, dipoles = frames[:20], dipoles[:20]
    tuned = SymmetryAdaptedGPR(1, **{**FAST, "sigma": [0.3, 0.5]}, alpha=[1e-6, 1e-2], search="cv",
                               cv=4).fit(frames, dipoles)
    for i, sigma in enumerate([0.3, 0.5]):
        for j, alpha in enumerate([1e-6, 1e-2]):
            squared = []
            for fold in np.array_split(np.arange(20), 4):
                train = np.setdiff1d(np.arange(20), fold)
                model = SymmetryAdaptedGPR(1, **{**FAST, "sigma": sigma}, alpha=alpha)
                model.fit([frames[k] for k in train], dipoles[train])
                squared.append((model.predict([frames[k] for k in fold]) - dipoles[fold]) ** 2)
            # vector_to_spherical is orthogonal: Cartesian and spherical errors have the same RMSE
            expected = np.sqrt(np.mean(np.concatenate(squared)))
            assert tuned.search_scores_[i, j] == pytest.approx(expected, rel=1e-8)
    i, j = np.unravel_index(np.argmin(tuned.search_scores_), (2, 2))
    assert (tuned.best_sigma_, tuned.best_alpha_) == ([0.3, 0.5][i], [1e-6, 1e-2][j])


@pytest.mark.parametrize("params, message", [
    ({"sigma": [0.3, -0.1]}, "`sigma` must be a number > 0"),
    ({"alpha": []}, "`alpha` must be a number > 0"),
    ({"alpha": [1e-6, 1e-3], "search": "cv", "cv": 50}, "`cv`=50 folds need at least 50"),
])
def test_bad_search_grids_are_named(data, params, message):
    frames, dipoles, _ = data
    with pytest.raises(ValueError, match=message):
        SymmetryAdaptedGPR(1, **{**FAST, **params}).fit(frames[:10], dipoles[:10])


def test_tensor_regressor_searches_each_lambda_on_its_own(data):
    frames, _, alphas = data
    tuned = TensorRegressor(**{**FAST, "sigma": [0.3, 0.5]}, alpha=[1e-6, 1e-2]).fit(frames[:20], alphas[:20])
    for lam in (0, 2):
        single = SymmetryAdaptedGPR(lam, **{**FAST, "sigma": [0.3, 0.5]}, alpha=[1e-6, 1e-2])
        single.fit(frames[:20], alphas[:20])
        assert (tuned.models_[lam].best_sigma_, tuned.models_[lam].best_alpha_) == (single.best_sigma_,
                                                                                    single.best_alpha_)
