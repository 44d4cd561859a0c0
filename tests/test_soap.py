"""SOAP: parity with dscribe 2.1, analytic gradients, symmetries and input validation."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from _finite_differences import strain_derivative
from ase import Atoms
from ase.build import bulk, molecule
from conftest import rmd17
from scipy.spatial.transform import Rotation

from kernelpot.descriptors import soap as soap_module
from kernelpot.descriptors._expansion import cutoff_padding, expand_density
from kernelpot.descriptors.base import AtomicFeatures, SparseGradients
from kernelpot.descriptors.soap import SOAP
from kernelpot.structures.neighbours import neighbour_list
from kernelpot.structures.packing import pack
from kernelpot.symmetry.harmonics import real_solid_harmonics_with_gradients, real_spherical_harmonics

SMALL = dict(r_cut=4.0, n_max=3, l_max=3, sigma=0.5)


def relative_error(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def water_box(n_molecules, seed, density=1.0):
    """Periodic cubic box of rigid waters at `density` g/cm³: random orientations, no contacts < 1.6 Å."""
    rng = np.random.default_rng(seed)
    length = (n_molecules * 18.015 / 6.02214076e23 / density * 1e24) ** (1 / 3)
    angle = np.deg2rad(104.52)
    water = np.array([[0, 0, 0], [0.9572, 0, 0], [0.9572 * np.cos(angle), 0.9572 * np.sin(angle), 0]])
    water -= water.mean(axis=0)
    placed = np.empty((0, 3))
    while len(placed) < 3 * n_molecules:
        candidate = Rotation.random(random_state=int(rng.integers(2**31))).apply(water)
        candidate += rng.uniform(0, length, 3)
        delta = candidate[:, None, :] - placed[None, :, :]
        delta -= length * np.round(delta / length)
        if not (np.einsum("ijk,ijk->ij", delta, delta) < 1.6**2).any():
            placed = np.vstack([placed, candidate])
    return Atoms("OH2" * n_molecules, positions=placed, cell=np.eye(3) * length, pbc=True)


@pytest.fixture(scope="module")
def aspirin():
    data = rmd17("rmd17_aspirin_train_01")
    return [Atoms(numbers=data["nuclear_charges"], positions=data["coords"][i]) for i in (0, 500)]


@pytest.fixture(scope="module")
def water():
    return [water_box(8, seed=1), water_box(12, seed=2)]


@pytest.fixture(scope="module")
def tiny_cells():
    silicon = bulk("Si", "diamond", a=5.43)  # primitive fcc cell: every atom sees its own images
    silicon.rattle(0.05, seed=3)
    hydride = Atoms("LiH", positions=[[0, 0, 0], [1.1, 1.3, 0.9]], cell=[[2.6, 0, 0], [0.7, 2.9, 0], [0.4, 0.5, 3.1]], pbc=True)
    return silicon, hydride


def dscribe_soap(**kwargs):
    dscribe = pytest.importorskip("dscribe.descriptors")
    return dscribe.SOAP(**kwargs)


def dscribe_create(atoms, **kwargs):
    out = dscribe_soap(**kwargs).create(atoms)
    return np.concatenate(out) if isinstance(out, list) or out.ndim == 3 else out


# ---------------------------------------------------------------------------- parity
@pytest.mark.parametrize(
    "settings",
    [dict(r_cut=5.0, n_max=8, l_max=6, sigma=0.5), dict(r_cut=3.5, n_max=4, l_max=9, sigma=1.0)],
)
@pytest.mark.parametrize("rbf, tolerance", [("gto", 1e-6), ("polynomial", 1e-4)])
def test_matches_dscribe_on_aspirin(aspirin, settings, rbf, tolerance):
    species = ["H", "C", "O"]
    X = SOAP(species, rbf=rbf, **settings).transform(aspirin)
    reference = dscribe_create(aspirin, species=species, rbf=rbf, **settings)
    assert X.shape == reference.shape
    assert relative_error(X, reference) <= tolerance


@pytest.mark.parametrize("rbf, tolerance", [("gto", 1e-6), ("polynomial", 1e-4)])
def test_matches_dscribe_on_periodic_water(water, rbf, tolerance):
    settings = dict(species=[1, 8], r_cut=5.0, n_max=6, l_max=5, sigma=0.5, rbf=rbf, periodic=True)
    X = SOAP(**settings).transform(water)
    assert relative_error(X, dscribe_create(water, **settings)) <= tolerance


@pytest.mark.parametrize("rbf, tolerance", [("gto", 1e-6), ("polynomial", 1e-4)])
def test_matches_dscribe_on_tiny_periodic_cells(tiny_cells, rbf, tolerance):
    silicon, hydride = tiny_cells
    for atoms, species in ((silicon, ["Si"]), (hydride, ["H", "Li"])):
        settings = dict(species=species, r_cut=4.5, n_max=5, l_max=4, sigma=0.6, rbf=rbf, periodic=True)
        X = SOAP(**settings).transform(atoms)
        assert relative_error(X, dscribe_create(atoms, **settings)) <= tolerance


def test_feature_count_matches_dscribe():
    for species, n_max, l_max in ((["H"], 1, 0), (["H", "O"], 8, 6), ([1, 6, 7, 8], 4, 3)):
        ours = SOAP(species, r_cut=4.0, n_max=n_max, l_max=l_max).n_features
        theirs = dscribe_soap(species=species, r_cut=4.0, n_max=n_max, l_max=l_max).get_number_of_features()
        assert ours == theirs
        hydrogen = Atoms("H2", [[0, 0, 0], [0.7, 0, 0]])
        assert SOAP(species, 4.0, n_max, l_max).transform(hydrogen).shape == (2, ours)


def test_output_is_atomic_features_in_input_order(aspirin, water):
    structures = [aspirin[0], water[0], aspirin[1]]
    X = SOAP(["H", "C", "O"], periodic=True, **SMALL).transform(structures)
    assert isinstance(X, AtomicFeatures) and X.dtype == np.float64
    np.testing.assert_array_equal(X.offsets, np.cumsum([0] + [len(a) for a in structures]))
    np.testing.assert_array_equal(X.numbers, np.concatenate([a.numbers for a in structures]))
    alone = SOAP(["H", "C", "O"], periodic=True, **SMALL).transform(water[0])
    np.testing.assert_allclose(X[21:21 + len(water[0])], alone, rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------- gradients
def finite_difference(descriptor, atoms, moved, step=1e-4):
    """Central differences (n_centres, len(moved), 3, n_features) of `descriptor.transform`."""
    dense = np.zeros((len(atoms), len(moved), 3, descriptor.n_features))
    for k, j in enumerate(moved):
        for a in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[j, a] += step
            minus.positions[j, a] -= step
            dense[:, k, a] = (descriptor.transform(plus) - descriptor.transform(minus)) / (2 * step)
    return dense


def check_gradients(descriptor, atoms, tolerance=1e-6, n_moved=8):
    X, G = descriptor.transform(atoms, gradients=True)
    assert isinstance(G, SparseGradients)
    np.testing.assert_allclose(X, descriptor.transform(atoms), rtol=0, atol=1e-12 * np.abs(X).max())
    # One self row per centre (vector 0), then one row per neighbour image with its vector.
    is_self = np.all(G.vectors == 0.0, axis=1)
    assert np.array_equal(np.sort(G.center[is_self]), np.arange(len(atoms)))
    assert np.array_equal(G.neighbour[is_self], G.center[is_self])
    keys = np.column_stack([G.center, G.neighbour, np.round(G.vectors, 8)])
    assert len(np.unique(keys, axis=0)) == G.n_pairs
    distances = np.linalg.norm(G.vectors[~is_self], axis=1)
    assert distances.min() > 0 and distances.max() < descriptor.r_cut + 4 * descriptor.sigma
    dense = G.to_dense(len(atoms))
    # Every species, centre-and-neighbour and (in periodic cells) self-image case
    # appears among a few atoms; all centres are compared.
    moved = np.unique(np.linspace(0, len(atoms) - 1, min(n_moved, len(atoms))).astype(int))
    assert relative_error(dense[:, moved], finite_difference(descriptor, atoms, moved)) <= tolerance
    # Translation invariance: the self term is minus the sum of the others.
    np.testing.assert_allclose(dense.sum(axis=1), 0.0, atol=1e-9 * np.abs(dense).max())
    return G


@pytest.mark.parametrize("rbf", ["gto", "polynomial"])
def test_gradients_match_finite_differences_for_a_molecule(aspirin, rbf):
    check_gradients(SOAP(["H", "C", "O"], rbf=rbf, **SMALL), aspirin[0])


@pytest.mark.parametrize("rbf", ["gto", "polynomial"])
def test_gradients_match_finite_differences_for_a_periodic_box(water, rbf):
    check_gradients(SOAP(["H", "O"], periodic=True, r_cut=4.5, n_max=4, l_max=4, sigma=0.5, rbf=rbf), water[0])


def test_gradients_match_finite_differences_in_tiny_cells(tiny_cells):
    silicon, hydride = tiny_cells
    G = check_gradients(SOAP(["Si"], periodic=True, r_cut=4.5, n_max=4, l_max=4, sigma=0.6), silicon)
    # Dozens of images of each of the two atoms, each its own pair (with its own vector).
    assert G.n_pairs > 40 and set(zip(G.center, G.neighbour)) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    check_gradients(SOAP(["H", "Li"], periodic=True, r_cut=3.0, n_max=3, l_max=3, sigma=0.4), hydride)


def test_gradients_equal_dscribe_analytical(aspirin):
    settings = dict(species=["H", "C", "O"], r_cut=4.0, n_max=4, l_max=4, sigma=0.5)
    atoms = aspirin[0]
    _, G = SOAP(**settings).transform(atoms, gradients=True)
    ours = G.to_dense(len(atoms))
    theirs = dscribe_soap(**settings).derivatives(atoms, method="analytical", return_descriptor=False)
    others = ~np.eye(len(atoms), dtype=bool)
    assert relative_error(ours[others], theirs[others]) <= 1e-6
    # dscribe keeps the centre fixed (attach=False): its self term is the
    # derivative of the centre's own Gaussian only. Ours is the total
    # derivative, which is dscribe's self term minus the sum of all of dscribe's
    # terms of that centre, i.e. minus the sum over the other atoms.
    diagonal = np.arange(len(atoms))
    expected_self = -(theirs.sum(axis=1) - theirs[diagonal, diagonal])
    assert relative_error(ours[diagonal, diagonal], expected_self) <= 1e-6
    assert relative_error(ours[diagonal, diagonal], theirs[diagonal, diagonal]) > 1e-2
    attached = dscribe_soap(**settings).derivatives(atoms, method="analytical", attach=True, return_descriptor=False)
    assert relative_error(ours, attached) <= 1e-6


def test_chunked_and_threaded_results_equal_single_pass(monkeypatch, aspirin, water):
    structures = [aspirin[0], water[0], aspirin[1]]
    descriptor = SOAP(["H", "C", "O"], periodic=True, **SMALL)
    X, G = descriptor.transform(structures, gradients=True)
    monkeypatch.setattr(soap_module, "_CHUNK_ATOMS", 25)
    threads = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        X2, G2 = descriptor.transform(structures, gradients=True)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(G.center, G2.center)
    np.testing.assert_array_equal(G.neighbour, G2.neighbour)
    np.testing.assert_array_equal(G.values, G2.values)


# ---------------------------------------------------------------------------- symmetries
def test_rotation_permutation_and_translation(aspirin):
    descriptor = SOAP(["H", "C", "O"], **SMALL)
    atoms = aspirin[0]
    X = descriptor.transform(atoms)
    rotated = atoms.copy()
    rotated.positions = Rotation.from_euler("zyx", [0.3, -1.1, 2.0]).apply(atoms.positions)
    np.testing.assert_allclose(descriptor.transform(rotated), X, rtol=0, atol=1e-10 * np.abs(X).max())
    moved = atoms.copy()
    moved.positions += [3.0, -7.5, 0.2]
    np.testing.assert_allclose(descriptor.transform(moved), X, rtol=0, atol=1e-10 * np.abs(X).max())
    hydrogens = np.flatnonzero(atoms.numbers == 1)
    order = np.arange(len(atoms))
    order[hydrogens] = hydrogens[::-1]
    np.testing.assert_allclose(descriptor.transform(atoms[order]), X[order], rtol=0, atol=1e-12 * np.abs(X).max())


def test_periodic_flag_follows_dscribe(water):
    box = water[0]
    cluster = box.copy()
    cluster.pbc = False
    periodic = SOAP(["H", "O"], periodic=True, **SMALL)
    finite = SOAP(["H", "O"], periodic=False, **SMALL)
    # periodic=False ignores pbc; periodic=True on a structure without pbc computes a cluster.
    np.testing.assert_array_equal(finite.transform(box), finite.transform(cluster))
    np.testing.assert_array_equal(periodic.transform(cluster), finite.transform(cluster))
    assert relative_error(periodic.transform(box), finite.transform(box)) > 1e-2
    np.testing.assert_array_equal(box.pbc, [True] * 3)  # input untouched
    # Without periodicity, a structure's cell is irrelevant even if pack() would reject it.
    flat = molecule("H2O")
    flat.pbc = True
    np.testing.assert_array_equal(finite.transform(flat), finite.transform(molecule("H2O")))


# ---------------------------------------------------------------------------- expansion API
def test_real_spherical_harmonics_convention():
    from scipy.special import sph_harm_y

    vectors = np.random.default_rng(4).normal(size=(15, 3))
    Y = real_spherical_harmonics(vectors, 6)
    r = np.linalg.norm(vectors, axis=1)
    theta, phi = np.arccos(vectors[:, 2] / r), np.arctan2(vectors[:, 1], vectors[:, 0])
    for l in range(7):
        for m in range(-l, l + 1):
            complex_y = sph_harm_y(l, abs(m), theta, phi)  # Condon–Shortley phase included
            sign = (-1) ** m
            expected = {1: np.sqrt(2) * sign * complex_y.real, -1: np.sqrt(2) * sign * complex_y.imag, 0: complex_y.real}[int(np.sign(m))]
            np.testing.assert_allclose(Y[:, l * l + l + m], expected, atol=1e-13)
    np.testing.assert_allclose(Y[:, 1:4], np.sqrt(3 / (4 * np.pi)) * vectors[:, [1, 2, 0]] / r[:, None], atol=1e-14)
    values, gradients = real_solid_harmonics_with_gradients(vectors, 6)
    step = 1e-6
    for a in range(3):
        shift = np.zeros(3)
        shift[a] = step
        fd = (real_solid_harmonics_with_gradients(vectors + shift, 6)[0] - real_solid_harmonics_with_gradients(vectors - shift, 6)[0]) / (2 * step)
        np.testing.assert_allclose(gradients[:, a], fd, atol=1e-7 * np.abs(gradients).max())


@pytest.mark.parametrize("rbf", ["gto", "polynomial"])
def test_expand_density_pair_gradients_hold_the_centre_fixed(tiny_cells, rbf):
    _, atoms = tiny_cells
    settings = dict(n_max=3, l_max=3, sigma=0.4, rbf=rbf, r_cut=2.5)
    species = np.array([1, 3])

    def expand(structure, gradients=False):
        packed = pack(structure)
        neighbours = neighbour_list(packed, settings["r_cut"] + cutoff_padding(settings["sigma"]) + 0.5)
        return expand_density(packed, neighbours, species, gradients=gradients, **settings)

    expansion = expand(atoms, gradients=True)
    assert expansion.coefficients.shape == (2, 2, 3, 16)
    assert expansion.pair_gradients.shape == (len(expansion.pair_center), 3, 3, 16)
    np.testing.assert_array_equal(expansion.pair_species, np.searchsorted(species, atoms.numbers[expansion.pair_neighbour]))
    # Moving atom 1 changes centre 0's coefficients through every image of atom 1.
    step = 1e-5
    plus, minus = atoms.copy(), atoms.copy()
    plus.positions[1, 2] += step
    minus.positions[1, 2] -= step
    channel = int(np.searchsorted(species, atoms.numbers[1]))
    fd = (expand(plus).coefficients[0, channel] - expand(minus).coefficients[0, channel]) / (2 * step)
    pairs = (expansion.pair_center == 0) & (expansion.pair_neighbour == 1)
    analytic = expansion.pair_gradients[pairs, 2].sum(axis=0)
    assert relative_error(analytic, fd) <= 1e-6


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(r_cut=0.0), ValueError, r"`r_cut` must be finite and > 0 Å; got 0.0"),
        (dict(r_cut=-1.0), ValueError, r"`r_cut` must be finite and > 0 Å; got -1.0"),
        (dict(r_cut=1.0), ValueError, r"`r_cut` must be > 1 Å with rbf='gto'.*got 1.0"),
        (dict(r_cut="5"), TypeError, r"`r_cut` must be a real number"),
        (dict(n_max=0), ValueError, r"`n_max` must be >= 1; got 0"),
        (dict(n_max=2.5), TypeError, r"`n_max` must be an integer; got 2.5"),
        (dict(l_max=-1), ValueError, r"`l_max` must be >= 0; got -1"),
        (dict(sigma=0.0), ValueError, r"`sigma` must be finite and > 0 Å; got 0.0"),
        (dict(sigma=float("nan")), ValueError, r"`sigma` must be finite and > 0 Å; got nan"),
        (dict(rbf="gaussian"), ValueError, r"`rbf` must be one of \['gto', 'polynomial'.*\]; got 'gaussian'"),
        (dict(species=[]), ValueError, r"`species` must name at least one"),
        (dict(species=["H", "Xx"]), ValueError, r"unknown chemical symbol 'Xx'"),
        (dict(species=[1, 0]), ValueError, r"invalid atomic number 0"),
        (dict(periodic="yes"), TypeError, r"`periodic` must be True or False"),
    ],
)
def test_invalid_parameters_are_rejected(change, error, message):
    parameters = dict(species=["H", "O"], r_cut=4.0, n_max=3, l_max=3, sigma=0.5, rbf="gto", periodic=False)
    parameters.update(change)
    descriptor = SOAP(**parameters)  # __init__ only stores
    with pytest.raises(error, match=message):
        descriptor.transform(molecule("H2O"))


def test_polynomial_accepts_small_cutoff():
    X = SOAP(["H", "O"], r_cut=0.9, n_max=2, l_max=1, rbf="polynomial").transform(molecule("H2O"))
    assert np.all(np.isfinite(X))


def test_unknown_species_are_named_with_their_structure():
    descriptor = SOAP(["H", "O"], **SMALL)
    with pytest.raises(ValueError, match=r"species \[6, 7\] in structure 1 .* not in species=\[1, 8\]"):
        descriptor.transform([molecule("H2O"), molecule("CH3CN"), molecule("NH3")])


def test_non_finite_positions_are_rejected():
    atoms = molecule("H2O")
    atoms.positions[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"structure 0 has non-finite \(NaN or inf\) positions for atoms \[1\]"):
        SOAP(["H", "O"], **SMALL).transform(atoms)
    atoms.positions[1, 0] = np.inf
    with pytest.raises(ValueError, match=r"non-finite"):
        SOAP(["H", "O"], **SMALL).transform([molecule("H2O"), atoms])


def test_zero_volume_periodic_cell_is_rejected():
    atoms = molecule("H2O")
    atoms.cell = [[3, 0, 0], [0, 3, 0], [3, 3, 0]]
    atoms.pbc = True
    with pytest.raises(ValueError, match=r"structure 0 has a periodic cell of zero volume"):
        SOAP(["H", "O"], periodic=True, **SMALL).transform(atoms)


def test_linearly_dependent_radial_basis_is_reported():
    with pytest.raises(ValueError, match=r"polynomial radial basis cannot be orthonormalised.*`n_max`"):
        SOAP(["H"], r_cut=5.0, n_max=16, l_max=1, rbf="polynomial").transform(Atoms("H"))
    with pytest.raises(ValueError, match=r"gto radial basis cannot be orthonormalised"):
        SOAP(["H"], r_cut=5.0, n_max=20, l_max=1).transform(Atoms("H"))


def test_gradient_vectors_give_the_strain_derivative(tiny_cells):
    """Σ_p vectors ⊗ values is the derivative of the features under homogeneous strain."""
    silicon, _ = tiny_cells
    atoms = silicon.copy()
    atoms.rattle(0.05, seed=1)
    descriptor = SOAP(["Si"], periodic=True, r_cut=4.0, n_max=3, l_max=3, sigma=0.5)
    X, G = descriptor.transform(atoms, gradients=True)
    analytic = np.zeros((len(atoms), 3, 3, descriptor.n_features))
    np.add.at(analytic, G.center, np.einsum("pa,pbk->pabk", G.vectors, G.values))
    numerical = strain_derivative(descriptor.transform, atoms, 1e-5)
    for a in range(3):
        for b in range(3):
            assert relative_error(analytic[:, a, b], numerical[a, b]) <= 1e-6
