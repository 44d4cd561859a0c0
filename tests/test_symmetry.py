"""Real Wigner D matrices and real Clebsch–Gordan coefficients (kernelpot.symmetry)."""

import numpy as np
import pytest

from kernelpot.symmetry import harmonics
from kernelpot.symmetry.clebsch_gordan import (
    clebsch_gordan_complex,
    real_clebsch_gordan,
    real_clebsch_gordan_sparse,
)
from kernelpot.symmetry.harmonics import complex_to_real_matrix, reference_real_spherical_harmonics
from kernelpot.symmetry.wigner import random_rotation, wigner_d_real, wigner_d_real_all

L_TEST = 12


@pytest.fixture(scope="module")
def directions():
    return np.random.default_rng(7).standard_normal((40, 3))


def _block(values, l):
    return values[..., l * l : (l + 1) ** 2]


def test_reference_harmonics_l1_is_y_z_x(directions):
    y = reference_real_spherical_harmonics(directions, 1)
    unit = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    expected = np.sqrt(3 / (4 * np.pi)) * unit[:, [1, 2, 0]] * harmonics.convention_signs(1)
    np.testing.assert_allclose(y[:, 1:4], expected, atol=1e-14)


def test_reference_harmonics_are_orthonormal():
    # Gauss-Legendre in cos(theta) x uniform phi integrates degree <= 2 L exactly.
    l_max = 6
    x, w = np.polynomial.legendre.leggauss(l_max + 1)
    phi = 2 * np.pi * np.arange(2 * l_max + 1) / (2 * l_max + 1)
    sin = np.sqrt(1 - x**2)
    points = np.stack(
        [np.outer(sin, np.cos(phi)), np.outer(sin, np.sin(phi)), np.outer(x, np.ones_like(phi))], -1
    ).reshape(-1, 3)
    weights = np.repeat(w, len(phi)) * 2 * np.pi / len(phi)
    y = reference_real_spherical_harmonics(points, l_max)
    np.testing.assert_allclose(y.T @ (weights[:, None] * y), np.eye(y.shape[1]), atol=1e-13)


def test_convention_matches_expansion_harmonics(directions):
    # The single switch harmonics.CONDON_SHORTLEY must agree with the jitted harmonics.
    ours = reference_real_spherical_harmonics(directions, L_TEST)
    theirs = harmonics.real_spherical_harmonics(directions, L_TEST)
    np.testing.assert_allclose(theirs, ours, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wigner_rotates_harmonics(directions, seed):
    rotation = random_rotation(seed)
    y = reference_real_spherical_harmonics(directions, L_TEST)
    y_rotated = reference_real_spherical_harmonics(directions @ rotation.T, L_TEST)
    for l, d in enumerate(wigner_d_real_all(rotation, L_TEST)):
        np.testing.assert_allclose(_block(y_rotated, l), _block(y, l) @ d.T, atol=1e-12)


def test_wigner_is_orthogonal_representation():
    r1, r2 = random_rotation(3), random_rotation(4)
    for l in (0, 1, 2, 5, 20):
        d1, d2, d12 = wigner_d_real(r1, l), wigner_d_real(r2, l), wigner_d_real(r1 @ r2, l)
        np.testing.assert_allclose(d1 @ d1.T, np.eye(2 * l + 1), atol=1e-12)
        np.testing.assert_allclose(d12, d1 @ d2, atol=1e-12)
        np.testing.assert_allclose(wigner_d_real(r1.T, l), d1.T, atol=1e-12)


def test_wigner_identity_and_batch():
    rotations = np.stack([np.eye(3), random_rotation(5), random_rotation(6)])
    batch = wigner_d_real(rotations, 4)
    assert batch.shape == (3, 9, 9)
    np.testing.assert_allclose(batch[0], np.eye(9), atol=1e-15)
    np.testing.assert_allclose(batch[2], wigner_d_real(rotations[2], 4), atol=1e-15)


def test_wigner_gimbal_lock_rotation(directions):
    # Rotations about z (Euler beta = 0) are the classic failure of Euler-angle formulas.
    angle = 0.7
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    y = reference_real_spherical_harmonics(directions, 6)
    y_rotated = reference_real_spherical_harmonics(directions @ rotation.T, 6)
    d = wigner_d_real(rotation, 6)
    np.testing.assert_allclose(_block(y_rotated, 6), _block(y, 6) @ d.T, atol=1e-12)


def test_complex_to_real_matrix_is_unitary():
    for l in range(6):
        u = complex_to_real_matrix(l)
        np.testing.assert_allclose(u @ u.conj().T, np.eye(2 * l + 1), atol=1e-15)


def test_wigner_rejects_non_rotation():
    with pytest.raises(ValueError, match="`rotation` must be orthogonal"):
        wigner_d_real(np.diag([1.0, 2.0, 1.0]), 2)


def test_wigner_rejects_improper_rotation():
    with pytest.raises(ValueError, match="proper rotation"):
        wigner_d_real(-np.eye(3), 2)


def test_wigner_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"shape \(3, 3\) or \(n, 3, 3\)"):
        wigner_d_real(np.eye(2), 2)


def test_wigner_rejects_negative_degree():
    with pytest.raises(ValueError, match="`l` must be >= 0; got -1"):
        wigner_d_real(np.eye(3), -1)


def test_wigner_rejects_non_integer_degree():
    with pytest.raises(TypeError, match="`l` must be an integer; got 1.5"):
        wigner_d_real(np.eye(3), 1.5)


@pytest.mark.parametrize(
    "args, expected",
    [
        # Closed forms: <l l; l -l | 0 0> = 1/sqrt(2l+1); stretched <l1 l1; l2 l2 | L L> = 1.
        ((2, 2, 2, -2, 0, 0), 1 / np.sqrt(5)),
        ((1, 0, 1, 0, 0, 0), -1 / np.sqrt(3)),
        ((3, 3, 4, 4, 7, 7), 1.0),
        ((1, 1, 1, -1, 1, 0), 1 / np.sqrt(2)),
        ((1, 0, 1, 0, 1, 0), 0.0),
        ((2, 1, 1, 1, 3, 2), np.sqrt(2 / 3)),
    ],
)
def test_complex_clebsch_gordan_closed_forms(args, expected):
    assert clebsch_gordan_complex(*args) == pytest.approx(expected, abs=1e-15)


def test_complex_clebsch_gordan_matches_sympy():
    cg = pytest.importorskip("sympy.physics.quantum.cg")
    rng = np.random.default_rng(11)
    for _ in range(25):
        l1, l2 = rng.integers(0, 9, size=2)
        lam = rng.integers(abs(l1 - l2), l1 + l2 + 1)
        m1 = rng.integers(-l1, l1 + 1)
        m2 = rng.integers(max(-l2, -lam - m1), min(l2, lam - m1) + 1)
        expected = float(cg.CG(l1, m1, l2, m2, lam, m1 + m2).doit())
        got = clebsch_gordan_complex(int(l1), int(m1), int(l2), int(m2), int(lam), int(m1 + m2))
        assert got == pytest.approx(expected, rel=1e-13, abs=1e-15)


def test_complex_clebsch_gordan_selection_rules():
    assert clebsch_gordan_complex(2, 1, 2, 1, 2, 1) == 0.0  # m1 + m2 != mu
    assert clebsch_gordan_complex(1, 0, 1, 0, 3, 0) == 0.0  # triangle violated


@pytest.mark.parametrize("l1, l2", [(0, 3), (1, 1), (2, 3), (4, 4), (5, 2), (6, 6)])
def test_real_coupling_is_equivariant(l1, l2):
    rng = np.random.default_rng(l1 * 10 + l2)
    rotation = random_rotation(rng)
    a, b = rng.standard_normal(2 * l1 + 1), rng.standard_normal(2 * l2 + 1)
    a_rot, b_rot = wigner_d_real(rotation, l1) @ a, wigner_d_real(rotation, l2) @ b
    for lam in range(abs(l1 - l2), l1 + l2 + 1):
        c = real_clebsch_gordan(l1, l2, lam)
        coupled = np.einsum("ijk,i,j->k", c, a, b)
        coupled_rot = np.einsum("ijk,i,j->k", c, a_rot, b_rot)
        np.testing.assert_allclose(coupled_rot, wigner_d_real(rotation, lam) @ coupled, atol=1e-12)
        assert np.abs(c).max() > 0.1


def test_real_coupling_is_orthogonal_change_of_basis():
    # sum_{m1 m2} C[m1 m2 mu] C[m1 m2 mu'] = delta: CG are unitary, and so is their real image.
    l1, l2 = 3, 4
    blocks = [real_clebsch_gordan(l1, l2, lam) for lam in range(1, 8)]
    full = np.concatenate([b.reshape(-1, b.shape[-1]) for b in blocks], axis=1)
    np.testing.assert_allclose(full.T @ full, np.eye(full.shape[1]), atol=1e-13)


def test_real_coupling_reproduces_product_of_harmonics(directions):
    # Y_l1 Y_l2 = sum_lam sqrt((2l1+1)(2l2+1)/(4 pi (2lam+1))) <l1 0 l2 0|lam 0> C^T Y_lam.
    l1, l2, lam = 2, 3, 3
    y = reference_real_spherical_harmonics(directions, 5)
    coupled = np.einsum("ijk,ni,nj->nk", real_clebsch_gordan(l1, l2, lam), _block(y, l1), _block(y, l2))
    factor = np.sqrt((2 * l1 + 1) * (2 * l2 + 1) / (4 * np.pi * (2 * lam + 1)))
    factor *= clebsch_gordan_complex(l1, 0, l2, 0, lam, 0)
    np.testing.assert_allclose(coupled, factor * _block(y, lam), atol=1e-13)


def test_real_coupling_to_scalar_is_dot_product():
    for l in range(5):
        c = real_clebsch_gordan(l, l, 0)[:, :, 0]
        np.testing.assert_allclose(c, (-1) ** l / np.sqrt(2 * l + 1) * np.eye(2 * l + 1), atol=1e-15)


def test_sparse_matches_dense_and_is_cached():
    dense = real_clebsch_gordan(4, 3, 2)
    m1, m2, mu, values = real_clebsch_gordan_sparse(4, 3, 2)
    rebuilt = np.zeros_like(dense)
    rebuilt[m1, m2, mu] = values
    np.testing.assert_array_equal(rebuilt, dense)
    assert len(values) < dense.size / 3
    assert real_clebsch_gordan_sparse(4, 3, 2)[3] is values
    assert not dense.flags.writeable


def test_real_clebsch_gordan_rejects_triangle_violation():
    with pytest.raises(ValueError, match=r"\|l1 - l2\| <= lam <= l1 \+ l2; got l1=1, l2=1, lam=3"):
        real_clebsch_gordan(1, 1, 3)


def test_real_clebsch_gordan_rejects_negative_degree():
    with pytest.raises(ValueError, match="`l2` must be >= 0; got -2"):
        real_clebsch_gordan(1, -2, 1)
