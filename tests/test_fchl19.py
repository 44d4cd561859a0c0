"""FCHL19: parity with qmllib, finite-difference gradients, invariances, periodic images, errors."""

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from conftest import qm7 as qm7_subset
from conftest import rmd17 as rmd17_frames
from scipy.spatial.transform import Rotation
from sklearn.base import clone

from kernelpot.descriptors.base import AtomicFeatures, SparseGradients
from kernelpot.descriptors.fchl19 import FCHL19

ELEMENTS = [1, 6, 7, 8, 16]
RMD17 = ["ethanol", "malonaldehyde", "uracil", "aspirin"]
REFERENCE = Path(__file__).resolve().parent / "reference" / "fchl19"


def relative_error(actual, expected):
    return np.abs(actual - expected).max() / np.abs(expected).max()


def dense_gradients(G, n_atoms):
    """(n_atoms, n_atoms, 3, n_features) with all periodic images of a neighbour summed."""
    dense = np.zeros((n_atoms, n_atoms, 3, G.values.shape[-1]))
    np.add.at(dense, (G.center, G.neighbour), G.values)
    return dense


def finite_differences(descriptor, atoms, h=1e-5):
    """Central differences of every feature in every coordinate (per Å), same layout as above."""
    n = len(atoms)
    result = np.zeros((n, n, 3, descriptor.n_features))
    for a in range(n):
        for x in range(3):
            shifted = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[a, x] += sign * h
                shifted.append(descriptor.transform(moved))
            result[:, a, x, :] = (shifted[0] - shifted[1]) / (2 * h)
    return result


def min_sin_angle(atoms, cutoff):
    """Smallest sin(j-i-k) over triplets within ``cutoff`` (linear triplets have no derivative)."""
    v = atoms.positions[None, :, :] - atoms.positions[:, None, :]
    d = np.linalg.norm(v, axis=-1)
    smallest = 1.0
    for i in range(len(atoms)):
        near = np.nonzero((d[i] > 0) & (d[i] <= cutoff))[0]
        u = v[i, near] / d[i, near, None]
        cos = np.clip(u @ u.T, -1, 1)[np.triu_indices(len(near), 1)]
        if cos.size:
            smallest = min(smallest, np.sqrt(1 - cos**2).min())
    return smallest


@pytest.fixture(scope="module")
def qm7(qm7_molecules):
    molecules = qm7_subset(qm7_molecules, range(0, 7101, 71))
    assert any(16 in m.numbers for m in molecules)  # sulfur blocks are exercised
    return molecules


@pytest.fixture(scope="module")
def rmd17():
    molecules = []
    for name in RMD17:
        data = rmd17_frames(f"rmd17_{name}_test_01")
        for frame in (0, 500):
            molecules.append(Atoms(numbers=data["nuclear_charges"], positions=data["coords"][frame]))
    return molecules


@pytest.fixture
def ethanol(rmd17):
    return rmd17[0]


@pytest.fixture
def periodic():
    """A small, distorted periodic cell: neighbours include images of the atom itself."""
    atoms = bulk("NaCl", "rocksalt", a=4.2) * (1, 1, 2)
    atoms.numbers[1] = 1
    atoms.rattle(0.15, seed=1)
    atoms.cell[0, 1] += 0.3
    return atoms


# --- parity with qmllib ----------------------------------------------------------------------


def qmllib_features(molecules, gradients=False, **params):
    qmllib = pytest.importorskip("qmllib.representations")
    return [
        qmllib.generate_fchl19(m.numbers, m.positions, gradients=gradients, **params)
        for m in molecules
    ]


def test_features_equal_frozen_qmllib_reference():
    # made by tests/reference/fchl19/make_reference.py with qmllib 1.2.0
    reference = np.load(REFERENCE / "fchl19_qmllib.npz")
    offsets = np.cumsum(np.r_[0, reference["counts"]])
    molecules = [
        Atoms(numbers=reference["numbers"][a:b], positions=reference["positions"][a:b])
        for a, b in zip(offsets[:-1], offsets[1:])
    ]
    second = dict(nRs2=10, nRs3=8, nFourier=2, rcut=5.0, acut=4.0, zeta=1.5)
    assert relative_error(FCHL19(ELEMENTS).transform(molecules), reference["default"]) < 1e-10
    assert relative_error(FCHL19(ELEMENTS, **second).transform(molecules), reference["second"]) < 1e-10


@pytest.mark.peers
@pytest.mark.parametrize("dataset", ["qm7", "rmd17"])
def test_features_equal_qmllib(dataset, request):
    molecules = request.getfixturevalue(dataset)
    expected = np.concatenate(qmllib_features(molecules, elements=ELEMENTS))
    X = FCHL19(ELEMENTS).transform(molecules)
    assert isinstance(X, AtomicFeatures) and X.shape == expected.shape
    assert relative_error(X, expected) < 1e-10
    np.testing.assert_array_equal(X.offsets, np.cumsum([0] + [len(m) for m in molecules]))
    np.testing.assert_array_equal(X.numbers, np.concatenate([m.numbers for m in molecules]))


@pytest.mark.peers
def test_non_default_parameters_equal_qmllib(rmd17):
    params = dict(
        nRs2=11, nRs3=7, nFourier=3, eta2=0.5, eta3=1.3, zeta=1.1, rcut=4.5, acut=3.5,
        two_body_decay=1.1, three_body_decay=0.8, three_body_weight=5.0,
    )
    elements = [8, 1, 6, 7]  # qmllib keeps the given order of the blocks
    expected = np.concatenate(qmllib_features(rmd17, elements=elements, **params))
    X = FCHL19(elements, **params).transform(rmd17)
    assert relative_error(X, expected) < 1e-10


@pytest.mark.peers
def test_gradients_equal_qmllib(rmd17, qm7):
    # Linear triplets (sin(theta) = 0) have no derivative: qmllib and kernelpot
    # then agree only to the conditioning of acos, so they are left out here.
    molecules = rmd17[::2] + [m for m in qm7[:40] if min_sin_angle(m, 8.0) > 0.05][:6]
    X, G = FCHL19(ELEMENTS).transform(molecules, gradients=True)
    for s, (values, grad) in enumerate(qmllib_features(molecules, True, elements=ELEMENTS)):
        start, stop = X.offsets[s], X.offsets[s + 1]
        rows = (G.center >= start) & (G.center < stop)
        ours = SparseGradients(G.values[rows], G.center[rows] - start, G.neighbour[rows] - start)
        # qmllib: (n_atoms, n_features, n_atoms, 3)
        expected = grad.transpose(0, 2, 3, 1)
        assert relative_error(dense_gradients(ours, stop - start), expected) < 1e-10
        assert relative_error(X[start:stop], values) < 1e-10


# --- gradients ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params", [{}, dict(nFourier=2, rcut=3.0, acut=2.6, nRs2=9, nRs3=6, zeta=1.5)]
)
def test_gradients_match_finite_differences(ethanol, params):
    descriptor = FCHL19(ELEMENTS, **params)
    X, G = descriptor.transform(ethanol, gradients=True)
    expected = finite_differences(descriptor, ethanol)
    assert relative_error(dense_gradients(G, len(ethanol)), expected) < 1e-6
    np.testing.assert_allclose(X, descriptor.transform(ethanol), rtol=0, atol=1e-14)


def test_gradient_layout(ethanol):
    descriptor = FCHL19(ELEMENTS, rcut=2.0, acut=1.6)
    X, G = descriptor.transform(ethanol, gradients=True)
    distances = ethanol.get_all_distances()
    self_rows = G.center == G.neighbour
    # one self row per atom, and exactly the pairs within max(rcut, acut) otherwise
    assert self_rows.sum() == len(ethanol)
    pairs = {(i, j) for i, j in zip(G.center[~self_rows], G.neighbour[~self_rows])}
    expected = {(i, j) for i, j in zip(*np.nonzero((distances < 2.0) & (distances > 0)))}
    assert pairs == expected
    # the self row is minus the sum of the others (translation invariance)
    totals = np.zeros((len(ethanol), 3, X.shape[1]))
    np.add.at(totals, G.center, G.values)
    assert np.abs(totals).max() < 1e-12 * np.abs(G.values).max()
    np.testing.assert_array_equal(G.vectors[self_rows], 0.0)
    np.testing.assert_allclose(
        G.vectors[~self_rows],
        ethanol.positions[G.neighbour[~self_rows]] - ethanol.positions[G.center[~self_rows]],
    )


# --- invariances ----------------------------------------------------------------------------


def test_rotation_translation_invariance(rmd17):
    aspirin = rmd17[6]
    descriptor = FCHL19(ELEMENTS)
    X, G = descriptor.transform(aspirin, gradients=True)
    R = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    moved = aspirin.copy()
    moved.positions = aspirin.positions @ R.T + np.array([3.0, -7.0, 0.5])
    X2, G2 = descriptor.transform(moved, gradients=True)
    assert relative_error(X2, X) < 1e-12
    # gradients rotate as vectors
    assert relative_error(G2.values, np.einsum("ab,pbk->pak", R, G.values)) < 1e-10


def test_permutation_equivariance(rmd17):
    uracil = rmd17[4]
    order = np.random.default_rng(0).permutation(len(uracil))
    descriptor = FCHL19(ELEMENTS)
    X, G = descriptor.transform(uracil, gradients=True)
    Xp, Gp = descriptor.transform(uracil[order], gradients=True)
    assert relative_error(Xp, X[order]) < 1e-12
    dense = dense_gradients(G, len(uracil))
    assert relative_error(dense_gradients(Gp, len(uracil)), dense[order][:, order]) < 1e-12


def test_features_vanish_smoothly_at_the_cutoff():
    descriptor = FCHL19([1], rcut=3.0, acut=3.0)
    far = descriptor.transform(Atoms("H2", positions=[[0, 0, 0], [0, 0, 3.0 - 1e-6]]))
    assert np.abs(far).max() < 1e-10
    assert np.abs(descriptor.transform(Atoms("H2", positions=[[0, 0, 0], [0, 0, 3.1]]))).max() == 0


def test_isolated_atom_has_zero_features_and_gradients():
    X, G = FCHL19([1, 8]).transform([Atoms("O"), Atoms("H2", positions=[[0, 0, 0], [0, 0, 9]])], gradients=True)
    assert X.shape == (3, FCHL19([1, 8]).n_features) and not X.any()
    np.testing.assert_array_equal(G.center, [0, 1, 2])
    assert G.values.shape == (3, 3, X.shape[1]) and not G.values.any()


# --- periodic structures --------------------------------------------------------------------


def test_periodic_large_box_equals_molecule(ethanol):
    descriptor = FCHL19(ELEMENTS, rcut=5.0, acut=4.0)
    boxed = ethanol.copy()
    boxed.cell = np.diag([30.0, 31.0, 32.0])
    boxed.pbc = True
    assert relative_error(descriptor.transform(boxed), descriptor.transform(ethanol)) < 1e-14


def test_periodic_supercell_consistency(periodic):
    descriptor = FCHL19([1, 11, 17], rcut=5.0, acut=4.0)
    X = descriptor.transform(periodic)
    supercell = descriptor.transform(periodic * (2, 1, 1))
    assert relative_error(supercell, np.concatenate([X, X])) < 1e-12


def test_periodic_gradients_and_invariance(periodic):
    descriptor = FCHL19([1, 11, 17], rcut=4.0, acut=3.5, nRs2=8, nRs3=6)
    X, G = descriptor.transform(periodic, gradients=True)
    images = np.any(G.vectors != 0, axis=1)
    assert (G.neighbour[images] == G.center[images]).any()  # images of the center itself
    expected = finite_differences(descriptor, periodic)
    assert relative_error(dense_gradients(G, len(periodic)), expected) < 1e-6
    R = Rotation.from_euler("zyx", [0.7, 0.2, -0.4]).as_matrix()
    moved = periodic.copy()
    moved.set_cell(periodic.cell.array @ R.T, scale_atoms=False)
    moved.positions = periodic.positions @ R.T + 1.3
    assert relative_error(descriptor.transform(moved), X) < 1e-12


def test_periodic_virial_matches_strain_derivative(periodic):
    descriptor = FCHL19([1, 11, 17], rcut=4.0, acut=3.5, nRs2=8, nRs3=6)
    X, G = descriptor.transform(periodic, gradients=True)
    # d(sum of features)/d(strain e_ab), with r_a -> r_a + e r_b for positions and cell
    analytic = np.einsum("pb,pak->abk", G.vectors, G.values)
    h = 1e-5
    for a, b in [(0, 0), (1, 2), (2, 0)]:
        sums = []
        for sign in (1, -1):
            deformation = np.eye(3)
            deformation[a, b] += sign * h
            strained = periodic.copy()
            strained.set_cell(periodic.cell.array @ deformation.T, scale_atoms=True)
            sums.append(descriptor.transform(strained).sum(axis=0))
        numeric = (sums[0] - sums[1]) / (2 * h)
        assert relative_error(analytic[a, b], numeric) < 1e-6


# --- scikit-learn behaviour and errors --------------------------------------------------------


def test_sklearn_parameters_and_symbols(ethanol):
    descriptor = FCHL19(["H", "C", "O"], nRs3=10)
    assert clone(descriptor).get_params() == descriptor.get_params()
    assert descriptor.fit([ethanol]) is descriptor
    X = descriptor.transform([ethanol, ethanol])
    assert X.shape == (18, descriptor.n_features) == (18, 3 * 24 + 3 * 4 * 10)
    np.testing.assert_array_equal(X, FCHL19([1, 6, 8], nRs3=10).transform([ethanol] * 2))
    assert FCHL19([1, 6, 8]).get_params()["acut"] == 8.0


def test_missing_element_is_named():
    with pytest.raises(ValueError, match=r"species \[9\] in structure 1 are not in elements=\[1, 6\]"):
        FCHL19([1, 6]).transform([molecule("CH4"), molecule("CF4")])


def test_empty_inputs_are_rejected():
    with pytest.raises(ValueError, match="structure 1 has no atoms"):
        FCHL19([1, 6]).transform([molecule("CH4"), Atoms()])
    with pytest.raises(ValueError, match="no structures given"):
        FCHL19([1, 6]).transform([])


def test_coincident_atoms_are_rejected():
    atoms = Atoms("CH2", positions=[[0, 0, 0], [1, 0, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match="structure 0 has atoms 1 and 2 0 Å apart"):
        FCHL19([1, 6]).transform(atoms)


@pytest.mark.parametrize(
    "params, error, message",
    [
        (dict(nRs2=0), ValueError, r"`nRs2` must be >= 1; got 0"),
        (dict(nRs3=2.0), TypeError, r"`nRs3` must be an int; got 2.0"),
        (dict(nFourier=True), TypeError, r"`nFourier` must be an int; got True"),
        (dict(eta2=-0.1), ValueError, r"`eta2` must be > 0; got -0.1"),
        (dict(eta3=0), ValueError, r"`eta3` must be > 0; got 0.0"),
        (dict(zeta="pi"), TypeError, r"`zeta` must be a real number; got 'pi'"),
        (dict(rcut=-1.0), ValueError, r"`rcut` must be > 0; got -1.0"),
        (dict(acut=np.nan), ValueError, r"`acut` must be finite; got nan"),
        (dict(two_body_decay=np.inf), ValueError, r"`two_body_decay` must be finite; got inf"),
        (dict(three_body_decay=None), TypeError, r"`three_body_decay` must be a real number"),
        (dict(three_body_weight=-np.inf), ValueError, r"`three_body_weight` must be finite"),
        (dict(elements=[]), ValueError, r"`elements` must contain at least one element"),
        (dict(elements=[1, 6, 1]), ValueError, r"`elements` must not repeat an element; got \[1, 6, 1\]"),
        (dict(elements="H"), TypeError, r"`elements` must be a sequence of atomic numbers"),
        (dict(elements=6), TypeError, r"`elements` must be a sequence of atomic numbers"),
        (dict(elements=[1, 0]), ValueError, r"`elements` must hold atomic numbers in 1..118; got 0"),
        (dict(elements=["H", "Xx"]), ValueError, r"unknown chemical symbol 'Xx'"),
        (dict(elements=[1, 6.0]), TypeError, r"`elements` must hold ints or chemical symbols; got 6.0"),
    ],
)
def test_invalid_parameters(params, error, message):
    params = {"elements": [1, 6], **params}
    with pytest.raises(error, match=message):
        FCHL19(**params).transform(molecule("CH4"))


def test_invalid_gradients_flag():
    with pytest.raises(TypeError, match=r"`gradients` must be a bool; got 'yes'"):
        FCHL19([1, 6]).transform(molecule("CH4"), gradients="yes")
