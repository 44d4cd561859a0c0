"""Electron-density learning: auxiliary basis, grids, dataset files and DensityModel.

The bundled data (data/water_density, PBE/cc-pVDZ densities fitted on
cc-pVDZ-JKFIT by examples/density/make_dataset.py with PySCF 2.14) let
everything but the live PySCF check run without PySCF.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from ase import Atoms

from kernelpot.datasets import load_water_density
from kernelpot.density import DensitySet, closed_shell_electrons
from kernelpot.density.basis import BOHR, AuxiliaryBasis
from kernelpot.density.grid import molecular_grid, write_density_cube
from kernelpot.models.density import DensityModel
from kernelpot.symmetry.wigner import random_rotation


@pytest.fixture(scope="module")
def water():
    return load_water_density()


@pytest.fixture(scope="module")
def model(water):
    return DensityModel().fit(water[0])


def _grid_of(atoms, **kwargs):
    positions = atoms.positions / BOHR
    return positions, *molecular_grid(positions, **kwargs)


# ------------------------------------------------------------------ basis and grid
def test_grid_integrates_reference_density_to_electron_count(water):
    train, _ = water
    for s in (0, len(train) - 1):  # a monomer and a dimer
        atoms = train.structures[s]
        positions, points, weights = _grid_of(atoms)
        rho = train.basis.density(train.coefficients[s], positions, atoms.numbers, points)
        assert weights @ rho == pytest.approx(train.n_electrons[s], abs=2e-4)
        # The constrained fit keeps the electron count exactly; the analytic integrals agree.
        assert train.basis.integrals(atoms.numbers) @ train.coefficients[s] == pytest.approx(
            train.n_electrons[s], abs=1e-8)


def test_basis_overlaps_and_dipoles_match_the_stored_pyscf_values(water):
    """Our evaluation of the functions reproduces PySCF's overlap matrix and SCF dipole."""
    train, _ = water
    atoms, c, s = train.structures[0], train.coefficients[0], train.overlaps[0]
    positions, points, weights = _grid_of(atoms)
    picks = np.random.default_rng(0).choice(len(c), size=8, replace=False)
    values = []
    for p in picks:
        unit = np.zeros(len(c))
        unit[p] = 1.0
        values.append(train.basis.density(unit, positions, atoms.numbers, points))
    values = np.array(values)
    numeric = (values * weights) @ values.T
    # Quadrature error of the tightest O functions is ~1e-4; a wrong sign or order of
    # the m components (PySCF → kernelpot conversion) would be O(1).
    np.testing.assert_allclose(numeric, s[np.ix_(picks, picks)], atol=2e-4)
    mu = (atoms.numbers @ positions - c @ train.basis.dipole_integrals(positions, atoms.numbers)) * BOHR
    np.testing.assert_allclose(mu, train.dipoles[0], atol=1e-6)


def test_basis_functions_are_normalised_and_integrals_analytic(water):
    basis = water[0].basis
    centre = np.zeros((1, 3))
    points, weights = molecular_grid(centre, n_radial=80, n_theta=10)
    for z in basis.species:
        n = basis.functions_per_species(z)
        integrals = basis.integrals([z])
        dipoles = basis.dipole_integrals(centre + 0.3, [z])
        for p in range(0, n, 3):
            unit = np.zeros(n)
            unit[p] = 1.0
            phi = basis.density(unit, centre, [z], points)
            assert weights @ phi ** 2 == pytest.approx(1.0, abs=1e-6)
            assert weights @ phi == pytest.approx(integrals[p], abs=1e-6)
            shifted = basis.density(unit, centre + 0.3, [z], points + 0.3)
            np.testing.assert_allclose((weights * shifted) @ (points + 0.3), dipoles[p], atol=1e-6)


def test_basis_layout_and_validation():
    basis = AuxiliaryBasis("toy", {1: [(0, [1.0], [1.0]), (1, [0.5], [2.0]), (0, [0.2], [1.0])]})
    layout = basis.layout([1, 1])
    assert len(layout["l"]) == basis.n_functions([1, 1]) == 10
    np.testing.assert_array_equal(layout["n"][:5], [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(layout["m"][:4], [0, -1, 0, 1])
    with pytest.raises(ValueError, match=r"species \[8\] in the structure are not in the auxiliary basis"):
        basis.layout([1, 8])
    with pytest.raises(ValueError, match="`shells` of Z=1 must be"):
        AuxiliaryBasis("bad", {1: [(0, [-1.0], [1.0])]})
    with pytest.raises(TypeError, match="`name` must be a str"):
        AuxiliaryBasis(3, {})


def test_grid_validation():
    with pytest.raises(ValueError, match="`n_radial` must be an integer >= 2"):
        molecular_grid(np.zeros((1, 3)), n_radial=1)


# ------------------------------------------------------------------------- files
def test_dataset_round_trip_and_subset(water, tmp_path):
    train, _ = water
    part = train.subset([0, 1, len(train) - 1])
    part.save(tmp_path / "part.npz")
    again = DensitySet.load(tmp_path / "part.npz")
    assert again.basis == part.basis and len(again) == 3
    np.testing.assert_array_equal(again.n_electrons, part.n_electrons)
    for a, b in zip(again.overlaps, part.overlaps):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(again.structures[2].positions, part.structures[2].positions)


def test_dataset_rejects_coefficients_of_another_basis(water):
    train, _ = water
    with pytest.raises(ValueError, match="basis mismatch"):
        DensitySet(train.structures[:1], [train.coefficients[0][:-1]], train.overlaps[:1],
                   train.n_electrons[:1], train.dipoles[:1], train.basis)


def test_dataset_file_of_future_version_is_refused(water, tmp_path):
    train, _ = water
    train.subset([0]).save(tmp_path / "one.npz")
    with np.load(tmp_path / "one.npz") as data:
        arrays = dict(data)
    arrays["format_version"] = np.array(99)
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(ValueError, match="format 99"):
        DensitySet.load(tmp_path / "future.npz")


def test_closed_shell_electron_count_must_be_even():
    assert closed_shell_electrons(Atoms("OH2")) == 10
    with pytest.raises(ValueError, match="structure 0 \\(HO, charge 0\\) has 9 electrons"):
        closed_shell_electrons(Atoms("OH"))


# ------------------------------------------------------------------------- model
def test_bundled_split_accuracy(model, water):
    scores = model.error_summary(water[1], n_radial=40, n_theta=10)
    assert scores["l1_percent"] <= 1.5
    assert scores["l2_percent"] <= 1.0
    assert scores["dipole_percent"] <= 5.0
    assert scores["n_structures"] == len(water[1])
    assert np.isfinite(model.validation_errors_).all() and model.best_alpha_ in np.logspace(-10, -2, 9)


def test_score_is_a_float_with_scikit_learns_contract(model, water):
    """score: higher is better, 1 at a perfect prediction, 0 for the baseline alone; cross_val_score runs."""
    from sklearn.model_selection import cross_val_score

    test = water[1]
    score = model.score(test)
    assert isinstance(score, float) and 0.97 < score < 1.0  # 0.985 on the bundled split
    worse = DensityModel(n_sparse=5, alphas=[1e2], validation_fraction=0.0).fit(water[0].subset(range(12)))
    assert 0.0 < worse.score(test) < score
    # the definition: explained fraction of the deviation from the species baseline, in the overlap metric
    residual = sum(d @ s @ d for d, s in zip((p - c for p, c in zip(model.predict(test), test.coefficients)),
                                             test.overlaps))
    spread = sum((c - model._baseline_of(a.numbers)) @ s @ (c - model._baseline_of(a.numbers))
                 for a, c, s in zip(test.structures, test.coefficients, test.overlaps))
    assert score == pytest.approx(1 - residual / spread, rel=1e-12)
    small = water[0].subset(range(12))
    folds = cross_val_score(DensityModel(n_sparse=5, n_max=3, l_max=2), small, cv=3)
    assert folds.shape == (3,) and np.all(folds < 1.0) and np.all(np.isfinite(folds))


def test_a_density_set_is_indexed_like_an_array_of_structures(water):
    train = water[0]
    assert train.shape == (len(train),)
    assert [len(a) for a in train[[2, 0]].structures] == [len(train.structures[2]), len(train.structures[0])]
    assert len(train[1:4]) == 3 and len(train[np.arange(len(train)) < 5]) == 5 and len(train[3]) == 1
    assert len(train[np.array([1, 2]), ...]) == 2
    with pytest.raises(IndexError, match="indexed by structure only"):
        train[0, 1]
    with pytest.raises(IndexError, match="boolean mask must have"):
        train[np.array([True])]


def test_model_beats_the_species_baseline(water):
    """Learning must matter: with a useless (huge) regularisation the error is much larger."""
    train, test = water[0].subset(range(10)), water[1].subset(range(5))

    def l2(model):
        return [np.sqrt((c - r) @ s @ (c - r) / (r @ s @ r))
                for c, r, s in zip(model.predict(test), test.coefficients, test.overlaps)]

    baseline = DensityModel(alphas=[1e6], validation_fraction=0.0, n_sparse=5).fit(train)
    learnt = DensityModel(n_sparse=5, selection="cur").fit(train)
    assert np.mean(l2(learnt)) < 0.2 * np.mean(l2(baseline))


def _moment_matrix(basis, atoms):
    """(4, n_functions): electron count and dipole (e·Bohr) about the centre of nuclear charge."""
    positions = atoms.positions / BOHR
    centre = atoms.numbers @ positions / atoms.numbers.sum()
    return np.vstack([basis.integrals(atoms.numbers), basis.dipole_integrals(positions - centre, atoms.numbers).T])


def test_moment_weight_is_the_overlap_metric_plus_moment_terms(water):
    """Training with moment_weight=w equals training in the metric S + w (q qᵀ + D Dᵀ)."""
    train = water[0].subset([0, 1, 2, 3, 4, 5, 40, 41])
    w = 3.0
    moments = [_moment_matrix(train.basis, a) for a in train.structures]
    bumped = DensitySet(train.structures, train.coefficients,
                        [s + w * m.T @ m for s, m in zip(train.overlaps, moments)],
                        train.n_electrons, train.dipoles, train.basis)
    params = dict(n_sparse=4, alphas=[1e-6, 1e-3])
    with_moments = DensityModel(moment_weight=w, **params).fit(train)
    by_metric = DensityModel(**params).fit(bumped)
    plain = DensityModel(**params).fit(train)
    test = water[1].structures[:3]
    for a, b in zip(with_moments.predict(test), by_metric.predict(test)):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    assert not np.allclose(with_moments.coef_, plain.coef_)


def test_moment_weight_lowers_training_charge_and_dipole_errors(water):
    train = water[0].subset(list(range(8)) + [40, 41, 42])
    params = dict(n_sparse=4, alphas=[1e-6], validation_fraction=0.0)

    def moment_errors(model):
        return np.mean([np.abs(_moment_matrix(train.basis, a) @ (c - r)).sum()
                        for a, c, r in zip(train.structures, model.predict(train), train.coefficients)])

    plain = DensityModel(**params).fit(train)
    weighted = DensityModel(moment_weight=100.0, **params).fit(train)
    assert moment_errors(weighted) < 0.5 * moment_errors(plain)


def test_predicted_density_rotates_with_the_molecule(model, water):
    atoms = water[1].structures[-1]  # a dimer
    rotation = random_rotation(np.random.default_rng(3))
    moved = Atoms(numbers=atoms.numbers, positions=atoms.positions @ rotation.T + [0.3, -1.0, 2.0])
    c0, c1 = model.predict([atoms, moved])
    points = atoms.positions[0] / BOHR + np.random.default_rng(4).normal(scale=1.5, size=(200, 3))
    rho0 = model.basis_.density(c0, atoms.positions / BOHR, atoms.numbers, points)
    rho1 = model.basis_.density(c1, moved.positions / BOHR, moved.numbers,
                                points @ rotation.T + np.array([0.3, -1.0, 2.0]) / BOHR)
    np.testing.assert_allclose(rho1, rho0, rtol=1e-7, atol=1e-10)


def test_prediction_follows_permutation_of_hydrogens(model, water):
    atoms = water[1].structures[0]
    swapped = atoms[[0, 2, 1]]
    c0, c1 = model.predict([atoms, swapped])
    per_atom = [model.basis_.functions_per_species(z) for z in atoms.numbers]
    blocks = np.split(c0, np.cumsum(per_atom)[:-1])
    np.testing.assert_allclose(c1, np.concatenate([blocks[0], blocks[2], blocks[1]]), atol=1e-12)


def test_renormalize_gives_exact_electron_count(model, water):
    renormalised = copy.copy(model).set_params(renormalize=True)
    atoms = water[1].structures[0]
    c = renormalised.predict(atoms)[0]
    assert model.basis_.integrals(atoms.numbers) @ c == pytest.approx(10.0, abs=1e-10)


def test_cube_file_holds_the_density_at_its_voxels(model, water, tmp_path):
    from ase.io.cube import read_cube_data

    atoms = water[1].structures[0]
    c = model.predict(atoms)[0]
    write_density_cube(tmp_path / "rho.cube", atoms, c, model.basis_, spacing=0.25, padding=2.0)
    data, box = read_cube_data(str(tmp_path / "rho.cube"))
    np.testing.assert_allclose(box.positions, atoms.positions, atol=1e-5)
    np.testing.assert_allclose(box.cell.array / np.array(data.shape)[:, None], 0.25 * np.eye(3), atol=1e-5)
    origin = atoms.positions.min(axis=0) - 2.0
    index = np.random.default_rng(0).integers(0, data.shape, size=(50, 3))
    expected = model.basis_.density(c, atoms.positions / BOHR, atoms.numbers, (origin + 0.25 * index) / BOHR)
    np.testing.assert_allclose(data[tuple(index.T)], expected, rtol=1e-5, atol=1e-10)


# --------------------------------------------------------------------- bad input
def test_score_on_another_basis_is_a_basis_mismatch(model, water):
    test = water[1].subset([0])
    shells = {z: [(l, a * 1.01, d) for l, a, d in test.basis.shells[z]] for z in test.basis.species}
    other = AuxiliaryBasis(test.basis.name, shells)
    wrong = DensitySet(test.structures, test.coefficients, test.overlaps, test.n_electrons, test.dipoles, other)
    with pytest.raises(ValueError, match="basis mismatch"):
        model.score(wrong)
    with pytest.raises(ValueError, match="basis mismatch"):
        model.error_summary(wrong)


def test_predict_unknown_species(model):
    with pytest.raises(ValueError, match=r"species \[6\] in `X` are not in the model's species=\[1, 8\]"):
        model.predict(Atoms("CH4", positions=np.random.default_rng(0).normal(size=(5, 3))))


def test_odd_electron_count_in_training_data(water):
    train = water[0].subset([0, 1])
    train.n_electrons = np.array([10, 9])
    with pytest.raises(ValueError, match="structure 1 of `dataset` has 9 electrons"):
        DensityModel().fit(train)


def test_odd_electron_count_when_renormalising(model):
    renormalised = copy.copy(model).set_params(renormalize=True)
    with pytest.raises(ValueError, match="has 9 electrons"):
        renormalised.predict(Atoms("OH", positions=[[0, 0, 0], [0.97, 0, 0]]))


def test_fit_needs_a_density_set():
    with pytest.raises(TypeError, match="`dataset` must be a DensitySet"):
        DensityModel().fit([Atoms("OH2")])


def test_predict_before_fit():
    with pytest.raises(ValueError, match="not fitted yet"):
        DensityModel().predict(Atoms("OH2"))


@pytest.mark.parametrize("name, value, message", [
    ("r_cut", -1.0, "`r_cut` must be a number > 0"),
    ("n_max", 0, "`n_max` must be an integer >= 1"),
    ("zeta", 0, "`zeta` must be an integer >= 1"),
    ("n_sparse", 0, "`n_sparse` must be an integer >= 1"),
    ("validation_fraction", 1.0, "`validation_fraction` must be in"),
    ("alphas", [-1.0], "`alphas` must be a non-empty sequence"),
    ("selection", "random", "`selection` must be one of 'fps', 'cur'; got 'random'"),
    ("moment_weight", -1.0, "`moment_weight` must be a number >= 0; got -1.0"),
])
def test_hyperparameter_validation(water, name, value, message):
    with pytest.raises(ValueError, match=message):
        DensityModel(**{name: value}).fit(water[0])


def test_renormalize_must_be_bool(water):
    with pytest.raises(TypeError, match="`renormalize` must be a bool"):
        DensityModel(renormalize="yes").fit(water[0])


# ------------------------------------------------------------------- live PySCF
@pytest.mark.slow
def test_pyscf_reference_reproduces_bundled_level_of_theory(water):
    pytest.importorskip("pyscf")
    from kernelpot.density.references import compute_density_references

    train, _ = water
    atoms = train.structures[0]
    fresh = compute_density_references([atoms])
    assert fresh.basis == train.basis
    np.testing.assert_allclose(fresh.coefficients[0], train.coefficients[0], atol=1e-5)
    np.testing.assert_allclose(fresh.dipoles[0], train.dipoles[0], atol=1e-5)
    assert fresh.metadata["df_l1_percent"][0] < 2.0
