"""Tests of kernelpot.models.krr.KernelRidge and kernelpot.models.gpr.GaussianProcessRegressor.

Checked: scikit-learn estimator conformance on vectors, parity with
scikit-learn's GaussianProcessRegressor (LML, gradient, predictions, std,
fitted hyperparameters) and with qmllib's local-kernel KRR on FCHL19, the
analytic LML gradient on per-atom input, Pipelines/GridSearchCV/cross_val_score
on lists of ASE Atoms, and every input-validation branch.
"""

import warnings

import numpy as np
import pytest
from ase import Atoms
from conftest import qm7
from scipy.linalg import cho_factor, cho_solve
from sklearn.base import clone
from sklearn.gaussian_process import GaussianProcessRegressor as SklearnGPR
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from kernelpot.descriptors.base import AtomicFeatures, Descriptor
from kernelpot.kernels.local import LocalKernel, as_local_features
from kernelpot.kernels.vector import Gaussian, Linear, NormalizedDotProduct
from kernelpot.models.gpr import GaussianProcessRegressor
from kernelpot.models.krr import KernelRidge


@parametrize_with_checks([KernelRidge(), GaussianProcessRegressor()])
def test_sklearn_conformance(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


# -- a tiny per-atom descriptor and toy molecules --------------------------------
class RadialToy(Descriptor):
    """Per-atom radial-Gaussian features ``f_k(i) = Σ_j w(Z_j) exp(-(r_ij - μ_k)²/2w²)`` (Å)."""

    def __init__(self, n_basis=6, width=0.5):
        self.n_basis = n_basis
        self.width = width

    def transform(self, X, *, gradients=False):
        structures = [X] if isinstance(X, Atoms) else list(X)
        mus = np.linspace(0.8, 3.5, self.n_basis)
        rows = []
        for atoms in structures:
            d = atoms.get_all_distances()
            weight = np.where(atoms.numbers == 1, 1.0, 2.0)
            g = np.exp(-((d[:, :, None] - mus) ** 2) / (2 * self.width**2)) * weight[None, :, None]
            g[np.arange(len(atoms)), np.arange(len(atoms))] = 0.0
            rows.append(g.sum(axis=1))
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in structures])])
        numbers = np.concatenate([a.numbers for a in structures])
        return AtomicFeatures(np.concatenate(rows), offsets, numbers)


def toy_molecules(n, seed=0):
    """Random 3-6 atom C/H clusters with a smooth pair-potential 'energy' (eV)."""
    rng = np.random.default_rng(seed)
    molecules, energies = [], []
    while len(molecules) < n:
        k = rng.integers(3, 7)
        positions = rng.uniform(0, 3.0, size=(k, 3))
        d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
        if np.min(d + 10 * np.eye(k)) < 0.9:
            continue
        numbers = rng.choice([1, 6], size=k)
        depth = np.where((numbers[:, None] == 6) & (numbers[None] == 6), 1.5, 0.7)
        ratio = 1.2 / (d + np.eye(k))
        pair = depth * (ratio**6 - 2 * ratio**3)
        molecules.append(Atoms(numbers=numbers, positions=positions))
        energies.append(np.sum(np.triu(pair, 1)))
    return molecules, np.array(energies)


@pytest.fixture(scope="module")
def toy_data():
    molecules, energies = toy_molecules(36)
    return molecules, energies, RadialToy().transform(molecules)


# -- KernelRidge -------------------------------------------------------------------
def test_krr_pipeline_gridsearch_and_cross_val_on_atoms(toy_data):
    molecules, energies, _ = toy_data
    pipe = make_pipeline(RadialToy(), KernelRidge(kernel="local_gaussian", sigma=2.0, alpha=1e-6))
    pipe.fit(molecules[:30], energies[:30])
    assert pipe.predict(molecules[30:]).shape == (6,)
    np.testing.assert_allclose(pipe.predict(molecules[:30]), energies[:30], atol=1e-3 * np.ptp(energies))
    search = GridSearchCV(clone(pipe), {"kernelridge__sigma": [0.5, 2.0, 8.0]}, cv=KFold(3))
    search.fit(molecules, energies)
    assert search.best_params_["kernelridge__sigma"] in (0.5, 2.0, 8.0)
    scores = cross_val_score(clone(pipe), molecules, energies, cv=KFold(3))
    assert scores.shape == (3,) and np.all(np.isfinite(scores))


def test_krr_predicts_structure_sums_of_atom_kernels(toy_data):
    _, energies, features = toy_data
    model = KernelRidge(kernel="local_dot_product", zeta=2, alpha=1e-3).fit(features, energies)
    K = LocalKernel(NormalizedDotProduct(2))(features)
    dual = np.linalg.solve(K + 1e-3 * np.eye(len(K)), energies)
    np.testing.assert_allclose(model.dual_coef_, dual, rtol=1e-7)
    np.testing.assert_allclose(model.predict(features), K @ dual, rtol=1e-9)


def test_krr_accepts_kernel_objects_and_multioutput():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    by_name = KernelRidge(alpha=0.1, kernel="gaussian", sigma=1.5).fit(X, Y)
    by_object = KernelRidge(alpha=0.1, kernel=Gaussian(1.5)).fit(X, Y)
    by_sklearn = KernelRidge(alpha=0.1, kernel=RBF(1.5)).fit(X, Y)
    np.testing.assert_allclose(by_name.predict(X), by_object.predict(X), rtol=1e-12)
    np.testing.assert_allclose(by_name.predict(X), by_sklearn.predict(X), rtol=1e-10)
    assert by_name.predict(X).shape == (20, 2)


@pytest.mark.peers
def test_krr_matches_qmllib_local_kernel_krr(qm7_molecules):
    representations = pytest.importorskip("qmllib.representations")
    qk = pytest.importorskip("qmllib.kernels")
    molecules = qm7(qm7_molecules, range(60))
    energies = np.array([m.info["hof_pbe0_kcal_mol"] for m in molecules])
    elements = sorted({int(z) for m in molecules for z in m.numbers})
    pad = max(len(m) for m in molecules)
    padded = np.array(
        [representations.generate_fchl19(m.numbers, m.positions, elements=elements, pad=pad) for m in molecules]
    )
    charges = [m.numbers for m in molecules]

    def atomic(sel):
        counts = [len(charges[i]) for i in sel]
        return AtomicFeatures(
            np.concatenate([padded[i, : len(charges[i])] for i in sel]),
            np.concatenate([[0], np.cumsum(counts)]),
            np.concatenate([charges[i] for i in sel]),
        )

    train, test = np.arange(45), np.arange(45, 60)
    sigma, regularisation = 2.0, 1e-8
    K = qk.get_local_symmetric_kernel(padded[train], [charges[i] for i in train], sigma)
    K[np.diag_indices_from(K)] += regularisation
    weights = cho_solve(cho_factor(K), energies[train])
    q_train, q_test = [charges[i] for i in train], [charges[i] for i in test]
    K_test = qk.get_local_kernel(padded[train], padded[test], q_train, q_test, sigma)
    reference = K_test @ weights  # qmllib returns (n_test, n_train)

    model = KernelRidge(kernel="local_gaussian", sigma=sigma, alpha=regularisation)
    prediction = model.fit(atomic(train), energies[train]).predict(atomic(test))
    np.testing.assert_allclose(prediction, reference, rtol=1e-6)


def test_krr_bad_input(toy_data):
    _, energies, features = toy_data
    model = KernelRidge(kernel="local_gaussian")
    with pytest.raises(ValueError, match="`X` has 36 structures but `y` has 35 rows"):
        model.fit(features, energies[:-1])
    y_nan = energies.copy()
    y_nan[3] = np.nan
    with pytest.raises(ValueError, match=r"`y` contains NaN or infinity \(first at index \(3,\)\)"):
        model.fit(features, y_nan)
    with pytest.raises(ValueError, match="AtomicFeatures without `offsets`"):
        model.fit(features[:10], energies[:10])
    with pytest.raises(ValueError, match="at least one structure"):
        model.fit((np.zeros((0, 6)), [0], []), [])
    with pytest.raises(TypeError, match="a local kernel needs per-atom features"):
        model.fit(np.ones((4, 2)), np.ones(4))
    with pytest.raises(TypeError, match="kernel is not local"):
        KernelRidge().fit(features, energies)
    with pytest.raises(ValueError, match="`X` has 4 samples but `y` has 3 rows"):
        KernelRidge().fit(np.ones((4, 2)), np.ones(3))
    with pytest.raises(ValueError, match="0 sample"):
        KernelRidge().fit(np.ones((0, 2)), np.ones(0))
    with pytest.raises(ValueError, match="NaN"):
        KernelRidge().fit(np.ones((3, 2)), [1.0, np.nan, 2.0])
    with pytest.raises(InvalidParameterError, match="'alpha' parameter"):
        KernelRidge(alpha=-1.0).fit(np.ones((3, 2)), np.ones(3))
    with pytest.raises(InvalidParameterError, match="'kernel' parameter"):
        KernelRidge(kernel="rbf").fit(np.ones((3, 2)), np.ones(3))
    with pytest.raises(np.linalg.LinAlgError, match=r"increase `alpha` \(got 0.0\)"):
        KernelRidge(alpha=0.0, kernel=Linear()).fit(np.zeros((3, 2)), np.ones(3))
    fitted = KernelRidge(kernel="local_gaussian").fit(features, energies)
    with pytest.raises(ValueError, match="`X` has 4 features per atom, but the model was fitted with 6"):
        fitted.predict((np.ones((2, 4)), [0, 2], [1, 1]))
    with pytest.raises(TypeError, match="fitted on per-atom features"):
        fitted.predict(np.ones((2, 6)))
    with pytest.raises(TypeError, match="fitted on plain vectors"):
        KernelRidge().fit(np.ones((3, 6)), np.ones(3)).predict(features)


# -- GaussianProcessRegressor on vectors: parity with scikit-learn ------------------
@pytest.mark.parametrize("normalize_y", [False, True])
@pytest.mark.parametrize("n_restarts", [0, 2])
def test_gpr_matches_sklearn(normalize_y, n_restarts):
    rng = np.random.default_rng(1)
    X = rng.uniform(-3, 3, size=(30, 2))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1] ** 2 + 0.05 * rng.normal(size=30)
    X_test = rng.uniform(-3, 3, size=(8, 2))
    kernel = ConstantKernel(1.0) * RBF(1.0) + WhiteKernel(0.01)
    options = dict(n_restarts_optimizer=n_restarts, normalize_y=normalize_y, random_state=3, alpha=1e-10)
    ours = GaussianProcessRegressor(kernel, **options).fit(X, y)
    ref = SklearnGPR(kernel, **options).fit(X, y)
    np.testing.assert_allclose(ours.kernel_.theta, ref.kernel_.theta, rtol=1e-8)
    np.testing.assert_allclose(ours.log_marginal_likelihood_value_, ref.log_marginal_likelihood_value_, rtol=1e-8)
    mean, std = ours.predict(X_test, return_std=True)
    ref_mean, ref_std = ref.predict(X_test, return_std=True)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(std, ref_std, rtol=1e-8, atol=1e-10)
    cov, ref_cov = ours.predict(X_test, return_cov=True)[1], ref.predict(X_test, return_cov=True)[1]
    np.testing.assert_allclose(cov, ref_cov, atol=1e-10)
    theta = ref.kernel_.theta + 0.2
    lml, grad = ours.log_marginal_likelihood(theta, eval_gradient=True)
    ref_lml, ref_grad = ref.log_marginal_likelihood(theta, eval_gradient=True)
    np.testing.assert_allclose(lml, ref_lml, rtol=1e-8)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-8, atol=1e-10)


def test_gpr_matches_sklearn_multioutput_and_fixed_kernel():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(15, 3)), rng.normal(size=(15, 2))
    kernel = ConstantKernel(2.0) * RBF(1.5)
    ours = GaussianProcessRegressor(kernel, optimizer=None, alpha=1e-2).fit(X, Y)
    ref = SklearnGPR(kernel, optimizer=None, alpha=1e-2).fit(X, Y)
    np.testing.assert_allclose(ours.log_marginal_likelihood_value_, ref.log_marginal_likelihood_value_, rtol=1e-10)
    for ours_out, ref_out in zip(ours.predict(X[:4], return_std=True), ref.predict(X[:4], return_std=True)):
        np.testing.assert_allclose(ours_out, ref_out, rtol=1e-9, atol=1e-12)


# -- GaussianProcessRegressor on per-atom features ----------------------------------
def test_gpr_local_lml_gradient_and_optimisation(toy_data):
    _, energies, features = toy_data
    kernel = ConstantKernel(1.0) * LocalKernel(Gaussian(1.0)) + WhiteKernel(0.1)
    fixed = GaussianProcessRegressor(kernel, optimizer=None, normalize_y=True).fit(features, energies)
    theta = np.log([0.7, 1.3, 0.05])
    lml, grad = fixed.log_marginal_likelihood(theta, eval_gradient=True)
    h = 1e-6
    numeric = [
        (fixed.log_marginal_likelihood(theta + h * e) - fixed.log_marginal_likelihood(theta - h * e)) / (2 * h)
        for e in np.eye(3)
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)
    fitted = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=1, random_state=0).fit(
        features, energies
    )
    assert fitted.log_marginal_likelihood_value_ > fixed.log_marginal_likelihood_value_
    assert len(fitted.kernel_.theta) == 3  # signal variance, σ and noise all optimised
    mean, std = fitted.predict(features, return_std=True)
    assert mean.shape == std.shape == (36,) and np.all(std >= 0)
    # Posterior mean is the structure kernel against the training set times alpha_. Composite
    # kernels need LocalFeatures (len = n_structures) so that ConstantKernel sizes itself right.
    K_trans = fitted.kernel_(as_local_features(features), fitted.X_train_)
    np.testing.assert_allclose(mean, np.std(energies) * K_trans @ fitted.alpha_ + energies.mean(), rtol=1e-10)


def test_gpr_default_kernel_in_pipeline_and_clone(toy_data):
    molecules, energies, _ = toy_data
    pipe = make_pipeline(RadialToy(), GaussianProcessRegressor(normalize_y=True))
    pipe.fit(molecules[:30], energies[:30])
    gp = pipe[-1]
    assert "LocalKernel" in repr(gp.kernel_) and gp.kernel is None
    assert pipe.predict(molecules[30:]).shape == (6,)
    scores = cross_val_score(clone(pipe), molecules, energies, cv=KFold(3))
    assert np.all(np.isfinite(scores))


def test_gpr_bad_input(toy_data):
    _, energies, features = toy_data
    gp = GaussianProcessRegressor()
    with pytest.raises(ValueError, match="`X` has 36 structures but `y` has 30 rows"):
        gp.fit(features, energies[:30])
    with pytest.raises(ValueError, match="`y` contains NaN"):
        gp.fit(features, np.full(36, np.nan))
    with pytest.raises(ValueError, match="AtomicFeatures without `offsets`"):
        gp.fit(features[5:], energies[:5])
    with pytest.raises(TypeError, match="kernel is not local"):
        GaussianProcessRegressor(RBF()).fit(features, energies)
    with pytest.raises(TypeError, match="a local kernel needs per-atom features"):
        GaussianProcessRegressor(LocalKernel(Gaussian())).fit(np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match=r"`alpha` must be a scalar or have shape \(3,\)"):
        GaussianProcessRegressor(alpha=np.ones(2)).fit(np.eye(3), np.ones(3))
    with pytest.raises(ValueError, match="`n_restarts_optimizer` > 0 needs finite bounds"):
        GaussianProcessRegressor(RBF(1.0, (1e-2, np.inf)), n_restarts_optimizer=1).fit(np.eye(3), np.ones(3))
    fitted = GaussianProcessRegressor().fit(np.eye(3), np.ones(3))
    with pytest.raises(ValueError, match="at most one of `return_std` and `return_cov`"):
        fitted.predict(np.eye(3), return_std=True, return_cov=True)
    with pytest.raises(ValueError, match="needs an explicit `theta`"):
        fitted.log_marginal_likelihood(eval_gradient=True)
    with pytest.raises(np.linalg.LinAlgError, match="increase `alpha`"):
        GaussianProcessRegressor(ConstantKernel(1.0, "fixed") * Linear(), alpha=0.0).fit(np.zeros((3, 2)), np.ones(3))
