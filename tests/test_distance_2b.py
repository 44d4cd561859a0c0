"""Physics and validation of the distance_2b descriptor (GAP's 2-body term)."""

import numpy as np
import pytest
from _finite_differences import strain_derivative
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

from kernelpot.descriptors.distance_2b import Distance2B, cosine_cutoff


def _rattled_si(seed=0, size=(1, 1, 1)):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * size
    atoms.rattle(0.05, seed=seed)
    return atoms


def _nacl():
    atoms = bulk("NaCl", "rocksalt", a=5.64) * (1, 1, 1)
    atoms.rattle(0.05, seed=3)
    return atoms


def test_rows_are_the_half_pair_list():
    atoms = _rattled_si()
    X = Distance2B(cutoff=4.5).transform(atoms)
    d = neighbor_list("d", atoms, 4.5)
    assert X.shape == (len(d) // 2, 1)
    np.testing.assert_allclose(np.sort(X[:, 0]), np.sort(d)[::2], atol=1e-12)
    assert X.offsets.tolist() == [0, len(d) // 2]


def test_self_images_of_a_small_cell_are_counted_once():
    atoms = Atoms("Si", positions=[[0, 0, 0]], cell=np.eye(3) * 2.5, pbc=True)
    X = Distance2B(cutoff=3.0, cutoff_transition_width=0.5).transform(atoms)
    # 6 images at 2.5 Å, counted once per +/- pair.
    np.testing.assert_allclose(X[:, 0], [2.5, 2.5, 2.5])


def test_offsets_group_rows_by_structure():
    a, b = _rattled_si(1), Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    X = Distance2B(cutoff=4.0).transform([a, b, a])
    n_a = len(Distance2B(cutoff=4.0).transform(a))
    assert X.offsets.tolist() == [0, n_a, n_a + 1, 2 * n_a + 1]
    assert X[n_a, 0] == pytest.approx(0.74)


def test_species_pairs_partition_all_pairs():
    atoms = _nacl()
    total = len(Distance2B(cutoff=5.0).transform(atoms))
    parts = [len(Distance2B(cutoff=5.0, Z1=z1, Z2=z2).transform(atoms)) for z1, z2 in ((11, 11), (11, 17), (17, 17))]
    assert sum(parts) == total and min(parts) > 0
    assert len(Distance2B(cutoff=5.0, Z1=17, Z2=11).transform(atoms)) == parts[1]


def test_invariant_under_rotation_translation_permutation():
    atoms = _rattled_si(2)
    reference = np.sort(Distance2B(cutoff=5.0).transform(atoms)[:, 0])
    moved = atoms.copy()
    moved.rotate(37, "x", rotate_cell=True)
    moved.rotate(11, "z", rotate_cell=True)
    moved.translate([0.3, -1.2, 2.0])
    permuted = moved[[7, 3, 0, 1, 6, 5, 4, 2]]
    for other in (moved, permuted):
        np.testing.assert_allclose(np.sort(Distance2B(cutoff=5.0).transform(other)[:, 0]), reference, atol=1e-10)


def test_gradients_match_finite_differences():
    atoms = _rattled_si(3)
    d = Distance2B(cutoff=4.5)
    X, G = d.transform(atoms, gradients=True)
    dense = G.to_dense(len(atoms))
    h = 1e-6
    for i in range(len(atoms)):
        for a in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, a] += h
            minus.positions[i, a] -= h
            fd = (d.transform(plus)[:, 0] - d.transform(minus)[:, 0]) / (2 * h)
            np.testing.assert_allclose(dense[:, i, a, 0], fd, atol=1e-8)


def _pair_energy(r, cutoff, width):
    fc, dfc = cosine_cutoff(r, cutoff, width)
    return fc * np.exp(-r), dfc * np.exp(-r) - fc * np.exp(-r)


def test_vectors_give_the_strain_derivative():
    atoms = _rattled_si(4)
    d = Distance2B(cutoff=4.0, cutoff_transition_width=1.0)
    X, G = d.transform(atoms, gradients=True)
    _, de = _pair_energy(X[:, 0], 4.0, 1.0)
    dE_dr_pairs = G.values[:, :, 0] * de[G.center][:, None]
    virial = -np.einsum("pa,pb->ab", G.vectors, dE_dr_pairs)
    fd = -strain_derivative(lambda s: _pair_energy(d.transform(s)[:, 0], 4.0, 1.0)[0].sum(), atoms, 1e-6)
    np.testing.assert_allclose(virial, fd, atol=1e-7)


def test_self_gradients_cancel_for_self_images():
    atoms = Atoms("Si", positions=[[0, 0, 0]], cell=np.eye(3) * 2.5, pbc=True)
    X, G = Distance2B(cutoff=3.0).transform(atoms, gradients=True)
    np.testing.assert_allclose(G.to_dense(1), 0.0, atol=1e-15)
    assert np.abs(G.vectors).max() == pytest.approx(2.5)


def test_cosine_cutoff_values_and_derivative():
    r = np.array([1.0, 3.0, 3.5, 4.0, 4.5])
    fc, dfc = cosine_cutoff(r, 4.0, 1.0)
    np.testing.assert_allclose(fc, [1.0, 1.0, 0.5, 0.0, 0.0], atol=1e-15)
    h = 1e-6
    grid = np.linspace(2.9, 4.1, 50)
    fd = (cosine_cutoff(grid + h, 4.0, 1.0)[0] - cosine_cutoff(grid - h, 4.0, 1.0)[0]) / (2 * h)
    np.testing.assert_allclose(cosine_cutoff(grid, 4.0, 1.0)[1], fd, atol=1e-6)
    w, dw = Distance2B(cutoff=4.0, cutoff_transition_width=1.0).cutoff_weight(r[:, None])
    np.testing.assert_allclose(w, fc)
    assert dw.shape == (5, 1)


@pytest.mark.peers
def test_parity_with_quippy_distance_2b():
    descriptors = pytest.importorskip("quippy.descriptors")
    atoms = _rattled_si(5)
    gap = descriptors.Descriptor("distance_2b cutoff=4.0 cutoff_transition_width=1.0").calc(atoms)
    X = Distance2B(cutoff=4.0, cutoff_transition_width=1.0).transform(atoms)
    # GAP keeps both directions of each pair.
    np.testing.assert_allclose(np.sort(gap["data"][:, 0])[::2], np.sort(X[:, 0]), atol=1e-10)
    order = np.argsort(gap["data"][:, 0])[::2]
    w, _ = Distance2B(cutoff=4.0, cutoff_transition_width=1.0).cutoff_weight(X)
    np.testing.assert_allclose(np.sort(gap["covariance_cutoff"][order]), np.sort(w), atol=1e-10)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"cutoff": -1.0}, ValueError, r"`cutoff` must be a finite number > 0 Å; got -1.0"),
        ({"cutoff": "5"}, TypeError, r"`cutoff` must be a number"),
        ({"cutoff_transition_width": 0.0}, ValueError, r"`cutoff_transition_width` must be in \(0, cutoff"),
        ({"cutoff_transition_width": 6.0}, ValueError, r"`cutoff_transition_width` must be in"),
        ({"cutoff_transition_width": None}, TypeError, r"`cutoff_transition_width` must be a number"),
        ({"Z1": 14}, ValueError, r"`Z1` and `Z2` must be given together"),
        ({"Z1": 14, "Z2": 0}, ValueError, r"`Z2` must be an atomic number"),
        ({"Z1": 1.5, "Z2": 14}, ValueError, r"`Z1` must be an atomic number"),
    ],
)
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        Distance2B(**kwargs).transform(_rattled_si())
