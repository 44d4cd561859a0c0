"""GAP's own SOAP: ``SOAP(rbf="gap")`` against quippy, its radial basis, gradients and the gap_fit recipe."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.special
from ase import Atoms
from ase.build import bulk, molecule
from scipy.integrate import trapezoid
from test_soap import check_gradients

from kernelpot.descriptors import _radial
from kernelpot.descriptors.soap import SOAP
from kernelpot.kernels import NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.potential.gap_xml import gap_soap_columns
from kernelpot.potential.recipe import terms_from_gap_string
from kernelpot.potential.serialization import load_model, save_model

REFERENCE = Path(__file__).parent / "reference" / "gap_soap" / "reference.npz"
# kernelpot's power spectrum carries dscribe's π sqrt(8 / (2l + 1)), GAP's 1 / sqrt(2l + 1).
GAP_SCALE = math.pi * math.sqrt(8.0)
# (descriptor settings, species) of the frozen cases, as in tests/reference/gap_soap/make_reference.py
CASES = {
    "mo": (dict(r_cut=4.5, n_max=4, l_max=3, sigma=0.5, cutoff_transition_width=1.0, periodic=True), [42]),
    "ethanol": (dict(r_cut=4.0, n_max=3, l_max=3, sigma=0.5, cutoff_transition_width=1.0, central_weight=0.5),
                [1, 6, 8]),
}


def gap_order(n_species, n_max, l_max):
    """kernelpot's column of each GAP feature (GAP: channel pairs (ia, jb <= ia), l fastest)."""
    return gap_soap_columns(list(range(1, n_species + 1)), n_max, l_max)


def reference_case(name):
    ref = np.load(REFERENCE)
    atoms = Atoms(numbers=ref[f"{name}_numbers"], positions=ref[f"{name}_positions"], cell=ref[f"{name}_cell"],
                  pbc=bool(np.any(ref[f"{name}_cell"])))
    return atoms, ref[f"{name}_features"], ref[f"{name}_moved"], ref[f"{name}_gradients"]


def in_gap_order(descriptor, atoms, moved):
    X, G = descriptor.transform(atoms, gradients=True)
    order = gap_order(len(descriptor.species), descriptor.n_max, descriptor.l_max)
    dense = G.to_dense(len(atoms))[:, moved]
    return np.asarray(X)[:, order] / GAP_SCALE, dense[..., order] / GAP_SCALE


# ---------------------------------------------------------------------------- parity with GAP
@pytest.mark.parametrize("name", sorted(CASES))
def test_features_and_gradients_equal_frozen_quippy_values(name):
    settings, species = CASES[name]
    atoms, features, moved, gradients = reference_case(name)
    X, dX = in_gap_order(SOAP(species, rbf="gap", **settings), atoms, moved)
    np.testing.assert_allclose(X, features, rtol=0, atol=1e-11 * np.abs(features).max())
    # the radial functions are a quintic table accurate to 1e-11 of their scale
    np.testing.assert_allclose(dX, gradients, rtol=0, atol=1e-8 * np.abs(gradients).max())


def test_normalised_rows_equal_live_quippy_on_a_vacancy_cell():
    descriptors = pytest.importorskip("quippy.descriptors")
    atoms = bulk("Mo", "bcc", a=3.16, cubic=True).repeat((3, 2, 2))
    del atoms[5]
    atoms.rattle(0.05, seed=2)
    args = "soap l_max=4 n_max=6 atom_sigma=0.5 cutoff=5.0 cutoff_transition_width=1.0"
    expected = np.asarray(descriptors.Descriptor(args).calc(atoms)["data"])[:, :-1]
    soap = SOAP([42], r_cut=5.0, n_max=6, l_max=4, sigma=0.5, rbf="gap", periodic=True,
                cutoff_transition_width=1.0)
    X = np.asarray(soap.transform(atoms))[:, gap_order(1, 6, 4)]
    np.testing.assert_allclose(X / np.linalg.norm(X, axis=1, keepdims=True), expected, rtol=0, atol=1e-11)


def test_default_basis_is_not_gaps():
    """The weighting and basis are rbf='gap' only: dscribe's default keeps its own numbers."""
    settings, species = CASES["mo"]
    atoms, features, _, _ = reference_case("mo")
    X = np.asarray(SOAP(species, **settings).transform(atoms))[:, gap_order(1, 4, 3)]
    cosine = np.sum(X * features, axis=1) / np.linalg.norm(X, axis=1) / np.linalg.norm(features, axis=1)
    assert cosine.min() < 0.9


# ---------------------------------------------------------------------------- gradients
def test_gradients_match_finite_differences_for_a_molecule():
    ethanol = molecule("CH3CH2OH")
    ethanol.rattle(0.05, seed=4)
    soap = SOAP(["H", "C", "O"], r_cut=4.0, n_max=4, l_max=3, sigma=0.5, rbf="gap", cutoff_transition_width=2.0,
                central_weight=0.7)
    check_gradients(soap, ethanol)


def test_gradients_match_finite_differences_in_a_small_periodic_cell():
    silicon = bulk("Si", "diamond", a=5.43)
    silicon.rattle(0.05, seed=3)
    check_gradients(SOAP(["Si"], r_cut=4.5, n_max=5, l_max=4, sigma=0.6, rbf="gap", periodic=True,
                         cutoff_transition_width=1.0), silicon)


# ---------------------------------------------------------------------------- radial basis
def test_scaled_bessel_ratios_equal_scipys_spherical_bessel_functions():
    x = np.concatenate([np.geomspace(1e-3, 0.999, 30), np.linspace(1.0, 60.0, 40)])
    values = _radial._scaled_bessel_ratios(x, 8)
    for l in range(9):
        expected = np.exp(-x) * scipy.special.spherical_in(l, x) / x**l
        np.testing.assert_allclose(values[l], expected, rtol=1e-12)
    at_zero = _radial._scaled_bessel_ratios(np.zeros(1), 3)[:, 0]
    np.testing.assert_allclose(at_zero, [1.0, 1 / 3, 1 / 15, 1 / 105], rtol=1e-15)


def test_tabulated_radial_functions_equal_the_exact_ones():
    r_cut, n_max, l_max, sigma = 5.0, 8, 6, 0.5
    basis = _radial.make_radial_basis("gap", r_cut, n_max, l_max, sigma)
    centres, transform = basis.table_a[0], basis.table_b[0]
    r = np.random.default_rng(0).uniform(0.05, r_cut, 200)
    exact, exact_d, _ = _radial._gap_exact(r, centres, transform, basis.eta, l_max)
    rho, drho = np.empty_like(exact), np.empty_like(exact)
    scratch = np.empty((l_max + 1, 100))
    _radial.radial_batch(basis.kind, r, basis.eta, basis.table_a, basis.table_b, basis.spline, basis.inv_spacing,
                         l_max, n_max, rho, drho, scratch, scratch.copy(), True)
    scale = np.abs(exact).max()
    np.testing.assert_allclose(rho, exact, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(drho, exact_d / r[:, None], rtol=0, atol=1e-9 * np.abs(exact_d / r[:, None]).max())
    # derivatives of the exact functions by central differences
    h = 1e-5
    numerical = (_radial._gap_exact(r + h, centres, transform, basis.eta, l_max)[0]
                 - _radial._gap_exact(r - h, centres, transform, basis.eta, l_max)[0]) / (2 * h)
    np.testing.assert_allclose(exact_d, numerical, rtol=0, atol=1e-8 * np.abs(exact_d).max())


def test_coefficients_are_orthonormal_in_the_radial_metric():
    """T = C⁻¹ L: the coefficients of the interpolated profile w are Lᵀ w, so |c|² = wᵀ S w."""
    centres, transform = _radial.gap_basis(5.0, 6, 0.5)
    eta = 2.0
    interpolation = np.exp(-eta * (centres[:, None] - centres[None, :]) ** 2)
    cholesky = interpolation @ transform
    assert np.allclose(np.triu(cholesky, 1), 0.0, atol=1e-12)
    r = np.linspace(0.0, 20.0, 40001)
    gaussians = np.exp(-eta * (r[None, :] - centres[:, None]) ** 2)
    overlap = trapezoid(r**2 * gaussians[:, None] * gaussians[None, :], r, axis=-1)
    np.testing.assert_allclose(cholesky @ cholesky.T, overlap, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(centres[1], (5.0 + 0.5 * math.sqrt(20 * math.log(10))) / 6, rtol=1e-15)


def test_centre_density_is_the_radial_function_at_zero():
    basis = _radial.make_radial_basis("gap", 4.0, 5, 3, 0.4)
    centres, transform = _radial.gap_basis(4.0, 5, 0.4)
    expected = np.exp(-basis.eta * centres**2) @ transform  # = first row of the Cholesky factor, (L_00, 0, ...)
    np.testing.assert_allclose(basis.self_density, expected, rtol=0, atol=1e-13 * np.abs(expected).max())
    assert np.all(np.abs(basis.self_density[1:]) < 1e-12 * basis.self_density[0])


@pytest.mark.parametrize("n_species, n_max, l_max", [(1, 8, 6), (2, 3, 2), (3, 4, 1)])
def test_gap_weights_are_root_two_off_the_channel_diagonal(n_species, n_max, l_max):
    weights = _radial.gap_feature_weights(n_species, n_max, l_max)
    assert len(weights) == SOAP(list(range(1, n_species + 1)), 3.0, n_max, l_max, rbf="gap").n_features
    n_diagonal = n_species * n_max * (l_max + 1)
    assert np.count_nonzero(weights == 1.0) == n_diagonal
    np.testing.assert_array_equal(weights[weights != 1.0], math.sqrt(2.0))


# ---------------------------------------------------------------------------- recipe and model files
def test_gap_fit_strings_give_gaps_soap():
    (term,) = terms_from_gap_string("{soap cutoff=4.0 n_max=4 l_max=3 atom_sigma=0.5}", [14])
    assert term.descriptor.rbf == "gap"
    (term,) = terms_from_gap_string("{soap cutoff=4.0 n_max=4 l_max=3 radial_basis=EQUISPACED_GAUSS}", [14])
    assert term.descriptor.rbf == "gap"


def test_other_gap_radial_bases_are_rejected():
    with pytest.raises(ValueError, match=r"soap: radial_basis must be 'EQUISPACED_GAUSS' .*; got 'GTO'"):
        terms_from_gap_string("{soap cutoff=4.0 radial_basis=GTO}", [14])


def test_rbf_error_lists_gap():
    with pytest.raises(ValueError, match=r"`rbf` must be one of \['gto', 'polynomial', 'gap'\]; got 'bessel'"):
        SOAP([14], 4.0, 3, 2, rbf="bessel").transform(bulk("Si"))


def test_saved_gap_soap_model_predicts_identically(tmp_path):
    from ase.calculators.lj import LennardJones

    frames = []
    for seed in range(6):
        atoms = bulk("Si", "diamond", a=5.43).repeat((2, 1, 1))
        atoms.rattle(0.1, seed=seed)
        atoms.calc = LennardJones(sigma=2.1, epsilon=0.1, rc=4.5)
        frames.append(atoms)
    soap = SOAP([14], r_cut=4.0, n_max=4, l_max=3, sigma=0.5, rbf="gap", periodic=True, cutoff_transition_width=1.0)
    model = SparseGPR([GAPTerm(soap, NormalizedDotProductCovariance(4), delta=0.2, n_sparse=20)], random_state=0)
    model.fit(frames, energies=[a.get_potential_energy() for a in frames], forces=[a.get_forces() for a in frames])
    loaded = load_model(save_model(model, tmp_path / "gap_soap.kpot"))
    assert loaded.terms[0].descriptor.get_params()["rbf"] == "gap"
    before = model.predict(frames, properties=("energy", "forces"))
    after = loaded.predict(frames, properties=("energy", "forces"))
    for key in ("energy", "forces"):
        np.testing.assert_array_equal(after[key], before[key])
