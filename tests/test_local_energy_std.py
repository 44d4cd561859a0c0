"""The local-energy σ of the fast path (LocalEnergyVariance) against the explicit path and a brute-force DTC.

The brute force builds every atom's covariance with the sparse points from the descriptor rows and the
terms' kernels alone (a per-atom row to its centre, half of a pair row to each of its atoms), its prior
from the kernels on those rows, and evaluates ``k** - k*ᵀ K_MM⁻¹ k* + k*ᵀ Σ k*`` with triangular solves
against the fit's two factors — none of the model's variance code. The models are those of ``test_fast_predict`` (per-centre-species SOAP
with absent feature blocks, pair terms per species pair, ζ = 1, 2, 4, linear).
"""

import numpy as np
import pytest
import scipy.linalg as sla
from test_fast_predict import CASES, _model

from kernelpot.descriptors import CentreSpecies
from kernelpot.models.gap.local_variance import LocalEnergyVariance, _ldl, _quadratic_form
from kernelpot.models.gap.predictor import GAPPredictor
from kernelpot.models.gap.terms import row_weights


@pytest.fixture(scope="module", params=CASES)
def case(request):
    return request.param, *_model(request.param)


def _brute_force(model, atoms):
    """(n_atoms,) DTC variances of the local energies, from dense matrices."""
    n = len(atoms)
    k_star, prior = [], np.zeros(n)
    for term in model.terms_:
        descriptor = term.descriptor
        if getattr(descriptor, "rows_are_pairs", False):
            X, G = descriptor.transform([atoms], gradients=True)
            share = np.zeros((n, X.shape[0]))
            np.add.at(share, (G.neighbour, G.center), 0.5)   # each row has one gradient entry per atom
        else:
            X = descriptor.transform([atoms])
            if isinstance(descriptor, CentreSpecies):
                centres = np.flatnonzero(np.isin(atoms.numbers, [int(z) for z in np.atleast_1d(descriptor.species)]))
            else:
                centres = np.arange(n)
            share = np.zeros((n, X.shape[0]))
            share[centres, np.arange(X.shape[0])] = 1.0
        X = np.asarray(X)
        w = row_weights(descriptor, X)[0]
        K_rows = term.delta**2 * w[:, None] * w[None, :] * term.kernel(X, X)
        prior += np.einsum("ip,pq,iq->i", share, K_rows, share)
        k_star.append(share @ (term.delta**2 * w[:, None] * term.sparse_weight[None, :]
                               * term.kernel(X, term.sparse_X)))
    k_star = np.hstack(k_star)
    # K_MM = L Lᵀ and Σ⁻¹ = RᵀR through their triangular factors: a pair term's K_MM is too ill-conditioned
    # (1-d points 0.4 Å apart, jitter-bound) for a dense inverse to leave the ~1e-5 of the prior that σ² is
    L, R = model.kmm_cholesky_, model.posterior_factor_
    return (prior - (sla.solve_triangular(L, k_star.T, lower=True) ** 2).sum(0)
            + (sla.solve_triangular(R, k_star.T, trans="T") ** 2).sum(0))


def test_fast_local_energy_std_equals_the_explicit_path_and_brute_force(case):
    name, model, test = case
    fast = GAPPredictor(model).predict(test, ("energy", "forces", "local_energy", "local_energy_std"))
    explicit = model.predict(test, properties=("local_energy",), return_std=True)
    np.testing.assert_allclose(fast["local_energy"], explicit["local_energy"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast["local_energy_std"], explicit["local_energy_std"], rtol=1e-6, err_msg=name)
    start = 0
    for atoms in test:
        sigma = fast["local_energy_std"][start:start + len(atoms)]
        expected = _brute_force(model, atoms)
        assert expected.min() > 1e-8 * expected.max() >= 0   # genuinely uncertain: the test means something
        np.testing.assert_allclose(sigma**2, expected, rtol=1e-5, atol=1e-10 * expected.max(), err_msg=name)
        start += len(atoms)


def test_local_energy_std_scales_with_the_recalibration_and_is_cached(case):
    name, model, test = case
    predictor = GAPPredictor(model)
    before = predictor.predict(test[:1], ("local_energy_std",))["local_energy_std"]
    assert LocalEnergyVariance.for_model(model) is LocalEnergyVariance.for_model(model)
    cached = LocalEnergyVariance.for_model(model)
    model.posterior_factor_ = model.posterior_factor_.copy()   # a refit replaces the factor: built again
    assert LocalEnergyVariance.for_model(model) is not cached
    model.std_scale_ = 2.0
    try:
        after = predictor.predict(test[:1], ("local_energy_std",))["local_energy_std"]
    finally:
        del model.std_scale_
    np.testing.assert_allclose(after, 2.0 * before, rtol=1e-12)


def test_two_threads_give_the_same_local_energy_std(monkeypatch):
    from numba import get_num_threads, set_num_threads

    import kernelpot.models.gap.predictor as predictor
    import kernelpot.models.gap.terms as terms

    model, test = _model("molecules-per-species-zeta4-absent-blocks")
    one = GAPPredictor(model).predict(test, ("local_energy_std",))["local_energy_std"]
    # small enough that these tiny terms split: rows between threads, sparse points into slices
    monkeypatch.setattr(predictor, "_MIN_ROWS_PER_THREAD", 2)
    monkeypatch.setattr(terms, "MIN_SPARSE_PER_PART", 1)
    threads = get_num_threads()
    set_num_threads(min(2, threads))
    try:
        two = GAPPredictor(model).predict(test, ("local_energy_std",))["local_energy_std"]
    finally:
        set_num_threads(threads)
    np.testing.assert_allclose(two, one, rtol=1e-10)


def test_a_model_without_posterior_has_no_local_energy_std():
    model, test = _model("metal-2b-soap-gap-zeta4")
    model.posterior_factor_ = None
    with pytest.raises(ValueError, match="no posterior covariance"):
        GAPPredictor(model).predict(test, ("energy", "local_energy_std"))


@pytest.mark.parametrize("seed", range(3))
def test_quadratic_forms_through_the_symmetric_indefinite_factor(seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(30, 30))
    for B in (A + A.T, A @ A.T):     # indefinite (2x2 pivots) and positive definite (1x1 only)
        K = rng.normal(size=(5, 30))
        np.testing.assert_allclose(_quadratic_form(_ldl(B), K), np.einsum("ij,jk,ik->i", K, B, K),
                                   rtol=1e-10, atol=1e-10 * np.abs(B).max())
