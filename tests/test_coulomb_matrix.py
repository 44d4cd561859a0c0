"""Coulomb matrix: hand values, invariances, parity with dscribe 2.1, validation."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from conftest import qm7 as qm7_subset

from kernelpot.descriptors.coulomb_matrix import CoulombMatrix

N_MAX = 23  # the largest QM7 molecule


@pytest.fixture(scope="module")
def qm7(qm7_molecules):
    return qm7_subset(qm7_molecules, range(300))


def _has_near_tied_norms(atoms, rtol=1e-9):
    """Row norms equal to ~round-off: the sorted order is then arbitrary."""
    matrix = CoulombMatrix(n_atoms_max=len(atoms), permutation="none").transform(atoms)
    norms = np.sort(np.linalg.norm(matrix.reshape(len(atoms), len(atoms)), axis=1))
    return bool(np.any(np.diff(norms) <= rtol * norms[1:]))


def test_hand_computed_h2_and_padding():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    out = CoulombMatrix(n_atoms_max=3).transform(atoms).reshape(3, 3)
    expected = np.zeros((3, 3))
    expected[:2, :2] = [[0.5, 1 / 0.74], [1 / 0.74, 0.5]]
    assert np.allclose(out, expected, rtol=1e-14, atol=0)
    spectrum = CoulombMatrix(n_atoms_max=3, permutation="eigenspectrum").transform(atoms)[0]
    assert np.allclose(spectrum, [0.5 + 1 / 0.74, 0.5 - 1 / 0.74, 0.0], rtol=1e-14, atol=1e-15)


def test_sorted_rows_have_descending_norms_and_diagonal_formula():
    atoms = molecule("CH3CH2OH")
    out = CoulombMatrix(n_atoms_max=12).transform(atoms).reshape(12, 12)[:9, :9]
    norms = np.linalg.norm(out, axis=1)
    assert np.all(np.diff(norms) <= 0)
    assert sorted(np.diag(out)) == pytest.approx(sorted(0.5 * atoms.numbers.astype(float) ** 2.4))


@pytest.mark.parametrize("permutation", ["sorted_l2", "eigenspectrum"])
def test_invariant_to_rigid_motion_and_permutation(qm7, permutation):
    cm = CoulombMatrix(n_atoms_max=N_MAX, permutation=permutation)
    atoms = next(a for a in qm7[100:] if len(a) > 12 and not _has_near_tied_norms(a))
    reference = cm.transform(atoms)
    moved = atoms.copy()
    moved.rotate(71.0, (0.3, 1.0, -0.4))
    moved.translate((3.0, -1.0, 12.0))
    permuted = atoms[np.random.default_rng(0).permutation(len(atoms))]
    for other in (moved, permuted):
        assert np.allclose(cm.transform(other), reference, rtol=1e-11, atol=1e-12)


@pytest.mark.peers
@pytest.mark.parametrize("permutation", ["sorted_l2", "eigenspectrum", "none"])
def test_parity_with_dscribe(qm7, permutation):
    descriptors = pytest.importorskip("dscribe.descriptors")
    structures = qm7
    if permutation == "sorted_l2":
        # With exactly tied row norms (symmetric molecules) either order is
        # correct and the two codes' round-off picks one; compared separately.
        structures = [a for a in qm7 if not _has_near_tied_norms(a)]
        assert len(structures) > 250
    ours = CoulombMatrix(n_atoms_max=N_MAX, permutation=permutation).transform(structures)
    theirs = descriptors.CoulombMatrix(n_atoms_max=N_MAX, permutation=permutation).create(structures)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() / np.abs(theirs).max() <= 1e-10


@pytest.mark.peers
def test_tied_norms_still_give_a_valid_sorted_matrix(qm7):
    descriptors = pytest.importorskip("dscribe.descriptors")
    tied = [a for a in qm7 if _has_near_tied_norms(a)]
    assert tied  # e.g. C4H2 (butadiyne) among the first 300
    for atoms in tied:
        n = len(atoms)
        ours = CoulombMatrix(n_atoms_max=n).transform(atoms).reshape(n, n)
        theirs = descriptors.CoulombMatrix(n_atoms_max=n).create(atoms).reshape(n, n)
        assert np.allclose(np.linalg.norm(ours, axis=1), np.linalg.norm(theirs, axis=1), rtol=1e-12)
        assert np.allclose(np.linalg.eigvalsh(ours), np.linalg.eigvalsh(theirs), rtol=1e-10)


def test_feature_count_and_create_alias():
    assert CoulombMatrix(n_atoms_max=4).get_number_of_features() == 16
    assert CoulombMatrix(n_atoms_max=4, permutation="eigenspectrum").get_number_of_features() == 4
    cm = CoulombMatrix(n_atoms_max=6)
    assert np.array_equal(cm.create(molecule("CH4")), cm.transform([molecule("CH4")]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_atoms_max=0), r"`n_atoms_max` must be an integer >= 1; got 0"),
        (dict(n_atoms_max=5.0), r"`n_atoms_max` must be an integer >= 1; got 5.0"),
        (dict(n_atoms_max=None), r"`n_atoms_max` must be an integer >= 1; got None"),
        (dict(n_atoms_max=5, permutation="random"), r"`permutation` must be one of .*got 'random'"),
    ],
)
def test_invalid_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CoulombMatrix(**kwargs).transform(molecule("CH4"))


def test_too_many_atoms_raises():
    with pytest.raises(ValueError, match=r"structure 1 has 5 atoms, more than `n_atoms_max`=3"):
        CoulombMatrix(n_atoms_max=3).transform([molecule("H2O"), molecule("CH4")])


def test_gradients_are_refused():
    with pytest.raises(ValueError, match="`gradients`=True is not supported by CoulombMatrix"):
        CoulombMatrix(n_atoms_max=5).transform(molecule("CH4"), gradients=True)
