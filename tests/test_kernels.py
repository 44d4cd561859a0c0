"""Tests of kernelpot.kernels: vector kernels, local structure kernels, gradient blocks.

Physics checked: parity with scikit-learn's pairwise kernels and with qmllib's
local FCHL19 kernel, symmetry, element screening, blocked assembly against a
direct double loop, and force blocks against central finite differences
through a toy differentiable descriptor.
"""

import numpy as np
import pytest
from conftest import qm7
from sklearn.base import clone
from sklearn.metrics import pairwise

from kernelpot.descriptors.base import AtomicFeatures, SparseGradients
from kernelpot.kernels import local as local_module
from kernelpot.kernels.local import LocalFeatures, LocalKernel, as_local_features
from kernelpot.kernels.vector import (
    Gaussian,
    Laplacian,
    Linear,
    NormalizedDotProduct,
    Polynomial,
    make_vector_kernel,
)

ALL_BASES = [
    Gaussian(sigma=1.3),
    Laplacian(sigma=2.5),
    Linear(),
    Polynomial(degree=3, gamma=0.5, coef0=1.0),
    NormalizedDotProduct(zeta=3),
]
IDS = ["gaussian", "laplacian", "linear", "polynomial", "dot_product"]


# -- toy differentiable descriptor ---------------------------------------------
MUS = np.linspace(0.8, 3.2, 5)
WIDTH = 0.6
WEIGHT = {1: 1.0, 6: 1.7, 8: 2.3}


def toy_descriptor(structures):
    """Radial-Gaussian features with analytic sparse gradients.

    ``f_k(i) = Σ_{j≠i} w(Z_j) exp(-(r_ij - μ_k)² / (2 w²))`` (no cutoff; molecules are small).
    ``structures`` is a list of (positions (n, 3) Å, numbers (n,)).
    """
    feats, numbers, offsets = [], [], [0]
    values, center, neighbour = [], [], []
    for positions, Z in structures:
        start = offsets[-1]
        n = len(Z)
        for i in range(n):
            f = np.zeros(len(MUS))
            self_grad = np.zeros((3, len(MUS)))
            rows = []
            for j in range(n):
                if j == i:
                    continue
                rij = positions[j] - positions[i]
                r = np.linalg.norm(rij)
                g = WEIGHT[Z[j]] * np.exp(-((r - MUS) ** 2) / (2 * WIDTH**2))
                f += g
                dg_dr = -(r - MUS) / WIDTH**2 * g
                grad_j = np.outer(rij / r, dg_dr)  # d f / d r_j, (3, n_mu)
                rows.append((start + j, grad_j))
                self_grad -= grad_j
            feats.append(f)
            values.append(self_grad)
            center.append(start + i)
            neighbour.append(start + i)
            for j, grad_j in rows:
                values.append(grad_j)
                center.append(start + i)
                neighbour.append(j)
        numbers.extend(Z)
        offsets.append(start + n)
    lf = (np.array(feats), np.array(offsets), np.array(numbers))
    grads = SparseGradients(np.array(values), np.array(center), np.array(neighbour))
    return lf, grads


def random_structures(seed, sizes):
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        positions = rng.uniform(0.0, 2.5, size=(n, 3))
        Z = rng.choice([1, 6, 8], size=n)
        Z[: min(n, 2)] = [6, 1][: min(n, 2)]
        out.append((positions, Z))
    return out


def naive_structure_kernel(base, A, B, screen):
    A, B = as_local_features(A), as_local_features(B)
    k = base.pairwise(A.features, B.features)
    if screen:
        k = k * (A.numbers[:, None] == B.numbers[None, :])
    K = np.add.reduceat(np.add.reduceat(k, A.offsets[:-1], axis=0), B.offsets[:-1], axis=1)
    return K


# -- vector kernels ----------------------------------------------------------------
def test_vector_kernels_match_sklearn_pairwise():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(7, 4)), rng.normal(size=(5, 4))
    sigma = 1.7
    np.testing.assert_allclose(Gaussian(sigma)(X, Y), pairwise.rbf_kernel(X, Y, gamma=0.5 / sigma**2), rtol=1e-12)
    np.testing.assert_allclose(Laplacian(sigma)(X, Y), pairwise.laplacian_kernel(X, Y, gamma=1 / sigma), rtol=1e-12)
    np.testing.assert_allclose(Linear()(X, Y), X @ Y.T, rtol=1e-12)
    np.testing.assert_allclose(
        Polynomial(3, 0.5, 2.0)(X, Y), pairwise.polynomial_kernel(X, Y, degree=3, gamma=0.5, coef0=2.0), rtol=1e-12
    )
    np.testing.assert_allclose(NormalizedDotProduct(3)(X, Y), pairwise.cosine_similarity(X, Y) ** 3, rtol=1e-12)


@pytest.mark.parametrize("base", ALL_BASES, ids=IDS)
def test_vector_kernel_diag_and_symmetry(base):
    X = np.random.default_rng(1).normal(size=(6, 3))
    K = base(X)
    np.testing.assert_allclose(K, K.T, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(base.diag(X), np.diag(K), rtol=1e-12)


@pytest.mark.parametrize("base", [Gaussian(0.9), Laplacian(1.4)], ids=["gaussian", "laplacian"])
def test_vector_kernel_log_sigma_gradient(base):
    X = np.random.default_rng(2).normal(size=(5, 3))
    K, dK = base(X, eval_gradient=True)
    h = 1e-6
    plus = clone(base).set_params(sigma=base.sigma * np.exp(h))(X)
    minus = clone(base).set_params(sigma=base.sigma * np.exp(-h))(X)
    np.testing.assert_allclose(dK[:, :, 0], (plus - minus) / (2 * h), rtol=1e-6, atol=1e-9)
    assert base.theta.shape == (1,)
    fixed = Gaussian(1.0, sigma_bounds="fixed")
    assert fixed(X, eval_gradient=True)[1].shape == (5, 5, 0)


def test_make_vector_kernel_and_errors():
    assert isinstance(make_vector_kernel("dot_product", zeta=4), NormalizedDotProduct)
    assert make_vector_kernel("gaussian", sigma=3.0).sigma == 3.0
    with pytest.raises(ValueError, match="unknown kernel 'rbf'"):
        make_vector_kernel("rbf")
    X = np.ones((2, 2))
    with pytest.raises(ValueError, match="`sigma` must be a positive scalar; got -1"):
        Gaussian(sigma=-1.0)(X)
    with pytest.raises(ValueError, match="`zeta` must be an integer >= 1; got 1.5"):
        NormalizedDotProduct(zeta=1.5)(X)
    with pytest.raises(ValueError, match="`degree` must be an integer >= 1; got 0"):
        Polynomial(degree=0)(X)
    with pytest.raises(ValueError, match="`gamma` must be > 0; got -2"):
        Polynomial(gamma=-2)(X)
    with pytest.raises(ValueError, match="same number of features"):
        Linear()(X, np.ones((2, 3)))
    with pytest.raises(ValueError, match="2-D array"):
        Linear()(np.ones(3))
    with pytest.raises(ValueError, match="only supported when `Y` is None"):
        Linear()(X, X, eval_gradient=True)


# -- local structure kernels -------------------------------------------------------
@pytest.mark.parametrize("screen", [True, False])
@pytest.mark.parametrize("base", ALL_BASES, ids=IDS)
def test_local_kernel_matches_naive_sum(base, screen, monkeypatch):
    lf_a, _ = toy_descriptor(random_structures(3, [3, 5, 1, 4, 6, 2]))
    lf_b, _ = toy_descriptor(random_structures(4, [4, 2, 5]))
    kernel = LocalKernel(base, same_element_only=screen)
    # Tiny blocks exercise the blocked, one-triangle assembly.
    monkeypatch.setattr(local_module, "_BLOCK_ATOMS", 7)
    np.testing.assert_allclose(kernel(lf_a, lf_b), naive_structure_kernel(base, lf_a, lf_b, screen), rtol=1e-12)
    K = kernel(lf_a)
    np.testing.assert_allclose(K, naive_structure_kernel(base, lf_a, lf_a, screen), rtol=1e-12)
    assert np.array_equal(K, K.T)
    np.testing.assert_allclose(kernel.diag(lf_a), np.diag(K), rtol=1e-12)


def test_local_kernel_sigma_gradient_and_hyperparameters():
    lf, _ = toy_descriptor(random_structures(5, [3, 4, 5]))
    kernel = LocalKernel(Gaussian(sigma=1.1))
    K, dK = kernel(lf, eval_gradient=True)
    h = 1e-6
    plus = kernel.clone_with_theta(kernel.theta + h)(lf)
    minus = kernel.clone_with_theta(kernel.theta - h)(lf)
    np.testing.assert_allclose(dK[:, :, 0], (plus - minus) / (2 * h), rtol=1e-6)
    assert kernel.get_params()["base__sigma"] == 1.1
    assert [h.name for h in kernel.hyperparameters] == ["base__sigma"]
    assert clone(kernel).set_params(base__sigma=2.0).base.sigma == 2.0
    assert kernel.base.sigma == 1.1


def test_element_screening_removes_cross_element_pairs():
    # One H and one O with identical features: only the unscreened kernel couples them.
    X = (np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([0, 1, 2]), np.array([1, 8]))
    screened = LocalKernel(Gaussian(1.0), same_element_only=True)(X)
    full = LocalKernel(Gaussian(1.0), same_element_only=False)(X)
    np.testing.assert_allclose(screened, np.eye(2))
    np.testing.assert_allclose(full, np.ones((2, 2)))


def test_local_input_validation():
    kernel = LocalKernel(Gaussian(1.0))
    features = AtomicFeatures(np.ones((3, 2)), [0, 1, 3], [1, 1, 8])
    assert kernel(features).shape == (2, 2)
    with pytest.raises(ValueError, match="AtomicFeatures without `offsets`"):
        kernel(features[:2])
    with pytest.raises(TypeError, match="must be AtomicFeatures, LocalFeatures or a tuple"):
        kernel(np.ones((3, 2)))
    with pytest.raises(ValueError, match="offsets must start at 0"):
        kernel((np.ones((3, 2)), [0, 1, 2], [1, 1, 1]))
    with pytest.raises(ValueError, match="numbers must have shape"):
        kernel((np.ones((3, 2)), [0, 3], [1, 1]))
    with pytest.raises(ValueError, match="NaN"):
        kernel((np.full((3, 2), np.nan), [0, 3], [1, 1, 1]))
    with pytest.raises(ValueError, match="at least one structure"):
        kernel((np.ones((0, 2)), [0], []))
    with pytest.raises(TypeError, match="`base` must be a kernelpot vector kernel"):
        LocalKernel("gaussian")(features)
    assert isinstance(as_local_features(features), LocalFeatures)
    assert len(as_local_features(features)) == 2


# -- gradient (force) kernels -------------------------------------------------------
def _perturbed(structures, index, axis, h):
    out, count = [], 0
    for positions, Z in structures:
        positions = positions.copy()
        if count <= index < count + len(Z):
            positions[index - count, axis] += h
        out.append((positions, Z))
        count += len(Z)
    return out


@pytest.mark.parametrize("screen", [True, False])
@pytest.mark.parametrize("base", ALL_BASES, ids=IDS)
def test_energy_force_kernel_is_minus_position_derivative(base, screen):
    sa, sb = random_structures(6, [3, 4]), random_structures(7, [3, 4])
    lf_a, _ = toy_descriptor(sa)
    lf_b, grad_b = toy_descriptor(sb)
    kernel = LocalKernel(base, same_element_only=screen)
    EF = kernel.energy_force(lf_a, lf_b, grad_b)
    h = 1e-5
    numeric = np.zeros_like(EF)
    for m in range(len(lf_b[2])):
        for beta in range(3):
            plus = kernel(lf_a, toy_descriptor(_perturbed(sb, m, beta, h))[0])
            minus = kernel(lf_a, toy_descriptor(_perturbed(sb, m, beta, -h))[0])
            numeric[:, 3 * m + beta] = -(plus - minus).sum(axis=1) / (2 * h)
    np.testing.assert_allclose(EF, numeric, rtol=1e-5, atol=1e-7 * np.abs(numeric).max())


@pytest.mark.parametrize("screen", [True, False])
@pytest.mark.parametrize("base", ALL_BASES, ids=IDS)
def test_force_force_kernel_is_mixed_position_derivative(base, screen):
    sa, sb = random_structures(8, [3, 2]), random_structures(9, [4])
    lf_a, grad_a = toy_descriptor(sa)
    lf_b, grad_b = toy_descriptor(sb)
    kernel = LocalKernel(base, same_element_only=screen)
    FF = kernel.force_force(lf_a, grad_a, lf_b, grad_b)
    h = 1e-5
    numeric = np.zeros_like(FF)
    for l in range(len(lf_a[2])):
        for alpha in range(3):
            plus = kernel.energy_force(toy_descriptor(_perturbed(sa, l, alpha, h))[0], lf_b, grad_b)
            minus = kernel.energy_force(toy_descriptor(_perturbed(sa, l, alpha, -h))[0], lf_b, grad_b)
            numeric[3 * l + alpha] = -(plus - minus).sum(axis=0) / (2 * h)
    np.testing.assert_allclose(FF, numeric, rtol=1e-5, atol=1e-7 * np.abs(numeric).max())
    # Self covariance: symmetric and equal to the two-argument form.
    F_self = kernel.force_force(lf_a, grad_a)
    np.testing.assert_allclose(F_self, kernel.force_force(lf_a, grad_a, lf_a, grad_a), rtol=1e-13)
    np.testing.assert_allclose(F_self, F_self.T, rtol=1e-12, atol=1e-14)


def test_gradient_input_validation():
    lf, grad = toy_descriptor(random_structures(10, [3, 3]))
    kernel = LocalKernel(Gaussian(1.0))
    with pytest.raises(TypeError, match="`gradients_Y` must be SparseGradients"):
        kernel.energy_force(lf, lf, grad.values)
    bad = SparseGradients(grad.values[:, :, :2], grad.center, grad.neighbour)
    with pytest.raises(ValueError, match=r"values must have shape \(n_pairs, 3, 5\)"):
        kernel.energy_force(lf, lf, bad)
    bad = SparseGradients(grad.values, grad.center, grad.neighbour + 100)
    with pytest.raises(ValueError, match=r"`gradients_Y.neighbour` indices must lie in \[0, 6\)"):
        kernel.energy_force(lf, lf, bad)
    crossing = grad.neighbour.copy()
    crossing[0] = 5  # centre 0 is in structure 0, atom 5 in structure 1
    bad = SparseGradients(grad.values, grad.center, crossing)
    with pytest.raises(ValueError, match="different structures"):
        kernel.force_force(lf, bad)
    with pytest.raises(ValueError, match="`gradients_Y` is required"):
        kernel.force_force(lf, grad, lf)


# -- parity with qmllib ----------------------------------------------------------
@pytest.fixture(scope="module")
def qm7_fchl19(qm7_molecules):
    representations = pytest.importorskip("qmllib.representations")
    molecules = qm7(qm7_molecules, range(50))
    elements = sorted({int(z) for m in molecules for z in m.numbers})
    max_atoms = max(len(m) for m in molecules)
    padded = np.array(
        [
            representations.generate_fchl19(m.numbers, m.positions, elements=elements, pad=max_atoms)
            for m in molecules
        ]
    )
    charges = [m.numbers for m in molecules]
    counts = np.array([len(m) for m in molecules])
    features = np.concatenate([padded[i, : counts[i]] for i in range(len(molecules))])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return padded, charges, (features, offsets, np.concatenate(charges))


def _subset(lf, start, stop):
    features, offsets, numbers = lf
    rows = slice(offsets[start], offsets[stop])
    return features[rows], offsets[start : stop + 1] - offsets[start], numbers[rows]


@pytest.mark.peers
def test_local_gaussian_matches_qmllib_fchl19(qm7_fchl19):
    qk = pytest.importorskip("qmllib.kernels")
    padded, charges, lf = qm7_fchl19
    sigma = 2.0
    kernel = LocalKernel(Gaussian(sigma), same_element_only=True)
    # qmllib's get_local_kernel(A, B) returns shape (n_B, n_A).
    reference = qk.get_local_kernel(padded[:30], padded[30:], charges[:30], charges[30:], sigma)
    K = kernel(_subset(lf, 0, 30), _subset(lf, 30, 50))
    assert reference.shape == (20, 30)
    np.testing.assert_allclose(K, reference.T, rtol=1e-10)
    reference_sym = qk.get_local_symmetric_kernel(padded, charges, sigma)
    np.testing.assert_allclose(kernel(lf), reference_sym, rtol=1e-10)


@pytest.mark.parametrize("screen", [True, False])
def test_dense_gaussian_force_force_equals_pair_loop(screen, monkeypatch):
    lf_a, grad_a = toy_descriptor(random_structures(11, [3, 5, 2]))
    lf_b, grad_b = toy_descriptor(random_structures(12, [4, 3]))
    kernel = LocalKernel(Gaussian(1.7), same_element_only=screen)
    dense = kernel.force_force(lf_a, grad_a, lf_b, grad_b)
    monkeypatch.setattr(local_module, "_DENSE_FORCE_MAX_ATOMS", 0)  # force the Numba pair loop
    loop = kernel.force_force(lf_a, grad_a, lf_b, grad_b)
    np.testing.assert_allclose(dense, loop, rtol=1e-11, atol=1e-13 * np.abs(loop).max())


@pytest.mark.parametrize("base", [Gaussian(1.0), Laplacian(1.0)], ids=["gaussian", "laplacian"])
def test_structure_kernels_for_several_sigmas(base):
    lf_a, _ = toy_descriptor(random_structures(13, [3, 5, 2, 4]))
    lf_b, _ = toy_descriptor(random_structures(14, [4, 3]))
    kernel = LocalKernel(base, same_element_only=True)
    sigmas = [0.7, 2.0, 5.0]
    many_sym, many = kernel.structure_kernels(lf_a, sigmas=sigmas), kernel.structure_kernels(lf_a, lf_b, sigmas=sigmas)
    assert many.shape == (3, 4, 2)
    for s, sigma in enumerate(sigmas):
        single = LocalKernel(clone(base).set_params(sigma=sigma), same_element_only=True)
        np.testing.assert_allclose(many_sym[s], single(lf_a), rtol=1e-13)
        np.testing.assert_allclose(many[s], single(lf_a, lf_b), rtol=1e-13)
    assert kernel.base.sigma == 1.0  # the kernel itself is unchanged


def test_structure_kernels_validation():
    lf, _ = toy_descriptor(random_structures(15, [3, 3]))
    with pytest.raises(TypeError, match="`sigmas` need a base kernel with a length scale; got Linear"):
        LocalKernel(Linear()).structure_kernels(lf, sigmas=[1.0])
    for bad in ([], [1.0, -2.0], [np.nan], [[1.0, 2.0]]):
        with pytest.raises(ValueError, match="`sigmas` must be a non-empty 1-D sequence of finite values > 0"):
            LocalKernel(Gaussian()).structure_kernels(lf, sigmas=bad)
    with pytest.raises(ValueError, match="`X` and `Y` must have the same n_features; got 5 and 4"):
        LocalKernel(Gaussian()).structure_kernels(lf, (np.ones((2, 4)), [0, 2], [1, 1]), sigmas=[1.0])


def test_grouped_gradient_product_equals_the_dense_product():
    """``_flat_dot`` groups pairs by their non-zero feature columns (SOAP's species blocks); the result is G @ Z.T."""
    from kernelpot.kernels.covariance import _flat_dot

    rng = np.random.default_rng(0)
    P, d, m = 300, 96, 40
    G = rng.standard_normal((P, 3, d))
    blocks = [np.arange(0, 32), np.arange(32, 64), np.arange(64, 96)]
    for p in range(P):   # each pair moves one species block (a third of the features), some none at all
        mask = np.zeros(d, dtype=bool)
        if p % 7:
            mask[blocks[p % 3]] = True
        G[p][:, ~mask] = 0.0
    Z = rng.standard_normal((m, d))
    expected = (G.reshape(3 * P, d) @ Z.T).reshape(P, 3, m)
    np.testing.assert_allclose(_flat_dot(G, Z), expected, rtol=0, atol=1e-12 * np.abs(expected).max())
