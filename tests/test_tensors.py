"""Cartesian ↔ spherical tensors (kernelpot.tensors) and the tensor dataset reader."""

import itertools

import numpy as np
import pytest

from kernelpot import tensors
from kernelpot.datasets.tensors import QM7X_FILES, TENSOAP_FILES, read_tensor_data
from kernelpot.symmetry.wigner import random_rotation, wigner_d_real


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_vector_is_y_z_x_and_rotates_with_wigner_d(rng):
    v = rng.normal(size=(5, 3))
    assert np.array_equal(tensors.vector_to_spherical(v), v[:, [1, 2, 0]])
    assert np.array_equal(tensors.spherical_to_vector(tensors.vector_to_spherical(v)), v)
    R = random_rotation(rng)
    rotated = tensors.vector_to_spherical(v @ R.T)
    np.testing.assert_allclose(rotated, tensors.vector_to_spherical(v) @ wigner_d_real(R, 1).T, atol=1e-13)


def test_rank2_parts_are_orthogonal_and_equivariant(rng):
    T = rng.normal(size=(4, 3, 3))
    parts = tensors.rank2_to_spherical(T)
    assert [parts[lam].shape for lam in (0, 1, 2)] == [(4, 1), (4, 3), (4, 5)]
    np.testing.assert_allclose(sum((p ** 2).sum(-1) for p in parts.values()), (T ** 2).sum((1, 2)))
    np.testing.assert_allclose(tensors.spherical_to_rank2(parts), T, atol=1e-14)
    np.testing.assert_allclose(parts[0][:, 0], -np.trace(T, axis1=1, axis2=2) / np.sqrt(3), atol=1e-14)
    R = random_rotation(rng)
    rotated = tensors.rank2_to_spherical(R @ T @ R.T)
    for lam in (0, 1, 2):
        np.testing.assert_allclose(rotated[lam], parts[lam] @ wigner_d_real(R, lam).T, atol=1e-13)


def test_symmetric_rank2_has_no_lambda1_and_traceless_part_maps_back(rng):
    A = rng.normal(size=(3, 3, 3))
    S = A + np.swapaxes(A, 1, 2)
    parts = tensors.rank2_to_spherical(S)
    assert np.abs(parts[1]).max() < 1e-14
    traceless = S - np.trace(S, axis1=1, axis2=2)[:, None, None] * np.eye(3) / 3
    np.testing.assert_allclose(tensors.spherical_to_rank2({2: parts[2]}), traceless, atol=1e-14)


def test_rank3_parts_equivariant_and_fully_symmetric_has_lambda_1_and_3(rng):
    B = rng.normal(size=(2, 3, 3, 3))
    parts = tensors.rank3_to_spherical(B)
    np.testing.assert_allclose(tensors.spherical_to_rank3(parts), B, atol=1e-14)
    R = random_rotation(rng)
    rotated = tensors.rank3_to_spherical(np.einsum("ai,bj,ck,nijk->nabc", R, R, R, B))
    for key in tensors.RANK3_PARTS:
        np.testing.assert_allclose(rotated[key], parts[key] @ wigner_d_real(R, key[1]).T, atol=1e-13)
    full = sum(B.transpose((0,) + tuple(1 + np.array(p))) for p in itertools.permutations(range(3)))
    sym = tensors.rank3_to_spherical(full)
    assert all(np.abs(sym[key]).max() < 1e-12 for key in ((1, 0), (1, 1), (1, 2), (2, 2)))
    assert np.abs(sym[(2, 3)]).max() > 1e-3


def test_symmetrize_warns_and_reports_asymmetry():
    T = np.eye(3)[None].repeat(2, axis=0)
    T[1, 0, 1] = 0.2
    with pytest.warns(UserWarning, match=r"`alpha` is not symmetric: largest \|T_ij - T_ji\|/2 = 0.1 \(tensor \(1,\)"):
        S, asym = tensors.symmetrize(T, name="alpha")
    assert asym == pytest.approx(0.1)
    np.testing.assert_allclose(S[1, 0, 1], 0.1)


def test_bad_shapes_and_parts_are_named():
    with pytest.raises(ValueError, match=r"`T` must have shape \(\.\.\., 3, 3\); got \(3, 4\)"):
        tensors.rank2_to_spherical(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"`v` must have shape \(\.\.\., 3\)"):
        tensors.vector_to_spherical(np.zeros(9))
    with pytest.raises(ValueError, match=r"keys must be among \[0, 1, 2\]; got \[3\]"):
        tensors.spherical_to_rank2({3: np.zeros(7)})
    with pytest.raises(ValueError, match=r"`parts\[2\]` must have shape \(5,\); got \(3,\)"):
        tensors.spherical_to_rank2({2: np.zeros(3)})
    with pytest.raises(TypeError, match="non-empty dict"):
        tensors.spherical_to_rank3({})


def test_read_tensoap_molecules_are_finite_and_bulk_periodic(shared_data):
    root = shared_data / "tensors"
    zundel = read_tensor_data(root / TENSOAP_FILES["water_zundel"], index=":5")
    assert zundel.targets["mu"].shape == (5, 3)
    assert zundel.targets["alpha"].shape == (5, 3, 3)
    assert zundel.targets["beta"].shape == (5, 3, 3, 3)
    assert not zundel.atoms[0].pbc.any() and zundel.atoms[0].cell.volume == 0.0
    np.testing.assert_allclose(zundel.targets["mu"][0], [0.241269, 0.405941, 0.373674])
    bulk = read_tensor_data(root / TENSOAP_FILES["water_bulk"], index=":2")
    assert bulk.atoms[0].pbc.all() and bulk.atoms[0].cell.volume == pytest.approx(9.67446 ** 3)
    qm7x = read_tensor_data(root / QM7X_FILES["qm7x_chno"], index=":3")
    assert set(qm7x.targets) == {"mu", "alpha"}


def test_read_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="`path` does not exist"):
        read_tensor_data(tmp_path / "nope.xyz")
