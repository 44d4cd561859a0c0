"""LODE descriptor: physics contracts, gradients, featomic parity, bad input."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from scipy.integrate import trapezoid

from kernelpot.descriptors import LODE, SOAP
from kernelpot.descriptors._expansion import expand_density
from kernelpot.descriptors._lode_basis import lode_radial_basis
from kernelpot.structures.neighbours import neighbour_list
from kernelpot.structures.packing import pack
from kernelpot.symmetry import random_rotation

SPECIES = ["H", "O", "Na", "Cl"]
BASIS = dict(r_cut=2.0, n_max=3, l_max=2, smearing=1.0)
# ξ of the simple cubic lattice: potential of a unit charge at its own site from its images
# and the compensating background, in units of 1/L (zero-average convention, tin foil).
WIGNER_CUBIC = -2.837297479480619

REFERENCE_MODULE = Path(__file__).resolve().parent / "reference" / "lode" / "featomic_reference.py"


def _reference_module():
    spec = importlib.util.spec_from_file_location("featomic_lode_reference", REFERENCE_MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ions(periodic, seed=3):
    """Na, Cl and two waters, rattled: 8 atoms, in a triclinic cell if periodic."""
    rng = np.random.default_rng(seed)
    positions = np.array([[0.0, 0.0, 0.0], [2.9, 0.3, 0.2], [1.2, 2.6, 0.4], [1.9, 3.0, 0.9], [0.6, 3.1, -0.3],
                          [-1.5, -1.6, 1.8], [-2.2, -1.1, 2.2], [-1.4, -2.4, 2.3]])
    positions += rng.normal(scale=0.1, size=positions.shape)
    atoms = Atoms("NaClOHHOHH", positions=positions)
    if periodic:
        atoms.cell = [[7.5, 0.0, 0.0], [0.8, 7.0, 0.0], [-0.6, 0.7, 7.8]]
        atoms.pbc = True
    return atoms


def _multiscale(periodic):
    density = SOAP(SPECIES, r_cut=3.0, n_max=3, l_max=2, sigma=0.4, periodic=periodic, cutoff_transition_width=0.5)
    return LODE(SPECIES, **BASIS, periodic=periodic, density=density, tolerance=1e-10)


@pytest.mark.parametrize("periodic", [False, True], ids=["open", "periodic"])
def test_gradients_equal_central_differences(periodic):
    atoms = _ions(periodic)
    lode = _multiscale(periodic)
    _, G = lode.transform(atoms, gradients=True)
    n = len(atoms)
    assert G.n_pairs == n * n and G.vectors is None
    dense = G.to_dense(n)
    h = 1e-5
    for j in range(n):
        for x in range(3):
            shifted = [atoms.copy(), atoms.copy()]
            shifted[0].positions[j, x] += h
            shifted[1].positions[j, x] -= h
            plus, minus = (np.asarray(lode.transform(a)) for a in shifted)
            np.testing.assert_allclose(dense[:, j, x], (plus - minus) / (2 * h), rtol=0, atol=2e-8)
    # translation invariance: every centre's rows sum to zero
    np.testing.assert_allclose(dense.sum(axis=1), 0.0, atol=1e-10)


@pytest.mark.parametrize("periodic", [False, True], ids=["open", "periodic"])
def test_invariants_do_not_change_under_rotation(periodic):
    atoms = _ions(periodic)
    lode = _multiscale(periodic)
    rotation = random_rotation(np.random.default_rng(11))
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ rotation.T
    if periodic:
        rotated.cell = np.asarray(atoms.cell) @ rotation.T
    before, after = np.asarray(lode.transform(atoms)), np.asarray(lode.transform(rotated))
    assert np.abs(before).max() > 0.1
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-8 * np.abs(before).max())


def test_supercell_gives_the_same_features_per_atom():
    atoms = _ions(True)
    lode = _multiscale(True)
    single = np.asarray(lode.transform(atoms))
    double = np.asarray(lode.transform(atoms.repeat((2, 1, 1))))
    # the k = 0 convention (zero cell average per species) is supercell-invariant
    np.testing.assert_allclose(double[: len(atoms)], single, rtol=0, atol=1e-7 * np.abs(single).max())
    np.testing.assert_allclose(double[len(atoms):], single, rtol=0, atol=1e-7 * np.abs(single).max())


def test_permuting_like_atoms_permutes_rows():
    atoms = _ions(False)
    lode = _multiscale(False)
    order = np.array([0, 1, 5, 3, 4, 2, 7, 6])  # swap the two oxygens and two hydrogens
    np.testing.assert_allclose(np.asarray(lode.transform(atoms[order])), np.asarray(lode.transform(atoms))[order],
                               atol=1e-12)


def test_matches_featomic_frozen_reference():
    reference = _reference_module()
    data = np.load(reference.REFERENCE)
    settings = reference.SETTINGS
    lode = LODE(settings["species"], settings["r_cut"], settings["n_max"], settings["l_max"], settings["smearing"],
                periodic=True, tolerance=1e-10)
    for index in range(2):
        atoms = Atoms(numbers=data[f"numbers_{index}"], positions=data[f"positions_{index}"],
                      cell=data[f"cell_{index}"], pbc=True)
        expected = data[f"coefficients_{index}"]
        if index == 0:
            coefficients, G = lode.expansion(atoms, gradients=True)
            rows = G.to_dense(len(atoms)).reshape(data["gradients_0"].shape)
            np.testing.assert_allclose(rows, data["gradients_0"], rtol=0, atol=1e-9)
        else:
            coefficients = lode.expansion(atoms)
        np.testing.assert_allclose(coefficients, expected, rtol=0, atol=1e-9 * np.abs(expected).max())


def test_matches_featomic_live():
    pytest.importorskip("featomic", reason="featomic (optional peer) not installed; the frozen reference still runs")
    reference = _reference_module()
    settings = dict(species=[1, 8, 11, 17], r_cut=3.0, n_max=3, l_max=2, smearing=1.5)
    atoms = _ions(True, seed=5)
    expected, _ = reference.featomic_coefficients(atoms, **settings)
    lode = LODE(settings["species"], settings["r_cut"], settings["n_max"], settings["l_max"], settings["smearing"],
                periodic=True, tolerance=1e-10)
    np.testing.assert_allclose(lode.expansion(atoms), expected, rtol=0, atol=1e-9 * np.abs(expected).max())


def _moments(basis, power):
    r = np.linspace(0.0, 40.0, 40001)
    return trapezoid(r[:, None] ** power * basis.values(r), r, axis=0)


def test_open_and_periodic_differ_by_the_k0_terms_of_a_cubic_box():
    """In a cube of side L, dropping k = 0 changes V_a by Σ_j [ξ/L + (2π/3V)(|x - r_ij|² + 3σ²)] + O(L^-5).

    That is the potential of the images and of the compensating background, shifted to a zero
    cell average (ξ: the simple-cubic Wigner constant); it projects on l = 0 and l = 1 only.
    """
    mol = molecule("CH3CH2OH")
    species, sigma = [1, 6, 8], 1.0
    settings = dict(r_cut=2.0, n_max=3, l_max=1, smearing=sigma)
    basis = lode_radial_basis(2.0, 3, 1)
    m0, m1, m2 = (_moments(basis, p) for p in (2, 3, 4))
    open_ = LODE(species, **settings).expansion(mol)
    residuals = []
    for side in (18.0, 27.0):
        box = mol.copy()
        box.cell, box.pbc = [side] * 3, True
        box.center()
        periodic = LODE(species, **settings, periodic=True, tolerance=1e-10).expansion(box)
        volume = side**3
        correction = np.zeros_like(periodic)
        for a, z in enumerate(species):
            members = box.positions[box.numbers == z]
            for i, centre in enumerate(box.positions):
                rij = members - centre
                constant = (len(members) * WIGNER_CUBIC / side
                            + 2 * math.pi / (3 * volume) * np.sum(np.sum(rij**2, axis=1) + 3 * sigma**2))
                linear = -4 * math.pi / (3 * volume) * rij.sum(axis=0)
                quadratic = 2 * math.pi / (3 * volume) * len(members)
                correction[i, a, :, 0] = math.sqrt(4 * math.pi) * (constant * m0 + quadratic * m2)
                correction[i, a, :, 1:4] = math.sqrt(4 * math.pi / 3) * np.outer(m1, linear[[1, 2, 0]])
        raw = np.abs(periodic - open_).max()
        residuals.append(np.abs(periodic - open_ - correction).max())
        assert residuals[-1] < 0.01 * raw
    # the remainder is the cubic harmonic of order 4: it falls like L^-5
    assert residuals[0] / residuals[1] > 1.5**4.5


def test_far_atom_projects_as_a_point_charge():
    """Beyond the overlap, a smeared unit charge at distance d gives v_n00 = √(4π) M_n0 / d."""
    basis = lode_radial_basis(2.0, 3, 2)
    m0 = _moments(basis, 2)
    lode = LODE(["H", "O"], **BASIS, invariants="potential")
    for d in (9.0, 25.0, 60.0):
        pair = Atoms("HO", positions=[[0, 0, 0], [d, 0, 0]])
        X = np.asarray(lode.transform(pair))
        expected = math.sqrt(4 * math.pi) * m0 / d  # (M_n0 by quadrature, to ~1e-9 of the largest)
        np.testing.assert_allclose(X[0, 3:], expected, rtol=0, atol=1e-8 * np.abs(expected).max())


def test_multiscale_invariants_contract_the_two_expansions():
    atoms = _ions(False)
    soap = SOAP(SPECIES, r_cut=3.0, n_max=3, l_max=2, sigma=0.4)  # dscribe's density, as expand_density's
    lode = LODE(SPECIES, **BASIS, density=soap)
    features = np.asarray(lode.transform(atoms))
    v = lode.expansion(atoms)
    packed = pack(atoms)
    rho = expand_density(packed, neighbour_list(packed, soap._search_cutoff()), [1, 8, 11, 17],
                         3, 2, 0.4, "gto", 3.0).coefficients
    n_potential = 4 * 3
    np.testing.assert_allclose(features[:, :n_potential], v[:, :, :, 0].reshape(len(atoms), -1))
    expected = np.stack([(-1) ** l / math.sqrt(2 * l + 1)
                         * np.einsum("ianm,ibkm->iabnk", rho[..., l * l:(l + 1) ** 2], v[..., l * l:(l + 1) ** 2])
                         for l in range(3)], axis=3).reshape(len(atoms), -1)
    np.testing.assert_allclose(features[:, n_potential:], expected, rtol=1e-10, atol=1e-13)
    assert lode.n_features == features.shape[1] == n_potential + 4 * 4 * 3 * 3 * 3


def test_periodic_false_ignores_cells_and_mixes_molecules_and_crystals():
    water = molecule("H2O")
    water.pbc = True  # zero cell: fine without periodic boundaries
    lode = LODE(SPECIES, **BASIS)
    X = lode.transform([water, _ions(False)])
    assert X.shape == (11, lode.n_features) and X.n_structures == 2
    periodic = LODE(SPECIES, **BASIS, periodic=True, tolerance=1e-8)
    mixed = periodic.transform([_ions(False), _ions(True)])
    np.testing.assert_allclose(np.asarray(mixed)[:8], np.asarray(lode.transform(_ions(False))), atol=1e-12)


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(exponent=2), ValueError, r"`exponent` must be 1"),
        (dict(exponent=1.0), TypeError, r"`exponent` must be an integer"),
        (dict(smearing=0.0), ValueError, r"`smearing` must be a finite number > 0"),
        (dict(r_cut=True), TypeError, r"`r_cut` must be a number"),
        (dict(n_max=0), ValueError, r"`n_max` must be >= 1"),
        (dict(l_max=-1), ValueError, r"`l_max` must be >= 0"),
        (dict(periodic="yes"), TypeError, r"`periodic` must be True or False"),
        (dict(tolerance=0.0), ValueError, r"`tolerance` must be in \[1e-14, 1\)"),
        (dict(invariants=["potential", "dipole"]), ValueError, r"`invariants` must be distinct items"),
        (dict(invariants="multiscale"), ValueError, r"needs `density`"),
        (dict(density="soap"), TypeError, r"`density` must be a kernelpot SOAP"),
        (dict(density=SOAP(SPECIES, 3.0, 3, 2, periodic=True)), ValueError, r"`density.periodic` \(True\) must equal"),
        (dict(species=["H", "Xx"]), ValueError, r"unknown chemical symbol 'Xx'"),
    ],
)
def test_bad_parameters_name_the_parameter(change, error, match):
    parameters = dict(species=SPECIES, **BASIS)
    parameters.update(change)
    with pytest.raises(error, match=match):
        LODE(**parameters).transform(_ions(False))


def test_bad_structures_are_named():
    with pytest.raises(ValueError, match=r"species \[6\] in structure 1 are not in species"):
        LODE(SPECIES, **BASIS).transform([_ions(False), molecule("CH4")])
    density = SOAP(["H", "O"], 3.0, 3, 2)
    with pytest.raises(ValueError, match=r"species \[11, 17\] in structure 0 are not in density.species"):
        LODE(SPECIES, **BASIS, density=density).transform(_ions(False))
    slab = _ions(True)
    slab.pbc = [True, True, False]
    with pytest.raises(ValueError, match=r"structure 0 is periodic along some directions only"):
        LODE(SPECIES, **BASIS, periodic=True).transform(slab)


def test_sparse_gpr_with_a_linear_lode_term_beside_soap(tmp_path):
    """A LODE term fits beside SOAP: forces are -dE/dr, the .kpot file round-trips, virials are refused."""
    from kernelpot.kernels import LinearCovariance, NormalizedDotProductCovariance
    from kernelpot.models.gap import GAPTerm, SparseGPR
    from kernelpot.potential.serialization import load_model, save_model

    rng = np.random.default_rng(2)
    frames = []
    for _ in range(6):
        atoms = _ions(False, seed=int(rng.integers(1000)))
        atoms.positions[:2] += rng.normal(scale=0.4, size=(2, 3))  # move the ions
        frames.append(atoms)
    distance = np.array([np.linalg.norm(a.positions[0] - a.positions[1]) for a in frames])
    energies = -14.4 / distance  # an ion pair's Coulomb energy, eV
    soap = SOAP(SPECIES, r_cut=3.0, n_max=3, l_max=2, sigma=0.4, cutoff_transition_width=0.5)
    lode = LODE(SPECIES, **BASIS, density=soap)
    model = SparseGPR([GAPTerm(soap, NormalizedDotProductCovariance(2), n_sparse=20),
                       GAPTerm(lode, LinearCovariance(), delta=0.1, n_sparse=30)],
                      default_sigma=(0.001, 0.05, 0.05), sigma_per_atom=False)
    model.fit(frames, energies=energies)
    atoms = frames[0]
    result = model.predict([atoms], properties=("energy", "forces"))
    h = 1e-5
    for j, x in [(0, 0), (1, 2), (4, 1), (7, 0)]:  # both ions and two water atoms
        shifted = [atoms.copy(), atoms.copy()]
        shifted[0].positions[j, x] += h
        shifted[1].positions[j, x] -= h
        plus, minus = (model.predict([a])["energy"][0] for a in shifted)
        assert result["forces"][j, x] == pytest.approx(-(plus - minus) / (2 * h), abs=1e-6)
    path = tmp_path / "lode.kpot"
    save_model(model, path)
    np.testing.assert_allclose(load_model(path).predict([atoms])["energy"], result["energy"], rtol=1e-12)
    with pytest.raises(ValueError, match=r"LODE returns no gradient `vectors`"):
        model.fit(frames, energies=energies, virials=np.zeros((len(frames), 3, 3)))
