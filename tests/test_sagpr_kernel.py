"""Equivariant λ kernels (kernelpot.kernels.equivariant): parity with einsum, symmetry, validation."""

import numpy as np
import pytest
from ase import Atoms

from kernelpot.descriptors.lambda_soap import LambdaSOAP
from kernelpot.kernels.equivariant import equivariant_kernel, equivariant_kernel_diag
from kernelpot.symmetry.wigner import random_rotation, wigner_d_real


def _brute(XA, XB, SA, SB, zeta, oA=None, oB=None, cA=None, cB=None):
    """Obviously right reference: all pairs by einsum, then sums over structures."""
    k = np.einsum("amf,bnf->ambn", XA, XB)
    if zeta > 1:
        sa = SA / np.linalg.norm(SA, axis=1, keepdims=True)
        sb = SB / np.linalg.norm(SB, axis=1, keepdims=True)
        k = k * ((sa @ sb.T) ** (zeta - 1))[:, None, :, None]
    if cA is not None:
        k = k * (cA[:, None] == cB[None, :])[:, None, :, None]
    if oA is not None:
        k = np.add.reduceat(k, oA[:-1], axis=0)
    if oB is not None:
        k = np.add.reduceat(k, oB[:-1], axis=2)
    return k


@pytest.fixture
def random_features():
    rng = np.random.default_rng(3)
    return {"XA": rng.normal(size=(9, 5, 7)), "XB": rng.normal(size=(6, 5, 7)), "SA": rng.normal(size=(9, 4)),
                "SB": rng.normal(size=(6, 4)), "cA": rng.integers(1, 3, 9), "cB": rng.integers(1, 3, 6),
                "oA": np.array([0, 2, 3, 9]), "oB": np.array([0, 4, 6])}


@pytest.mark.parametrize("zeta", [1, 2, 3])
@pytest.mark.parametrize("species", [False, True])
def test_matches_einsum_local_structure_and_symmetric(random_features, zeta, species):
    f = random_features
    cA, cB = (f["cA"], f["cB"]) if species else (None, None)
    ref = _brute(f["XA"], f["XB"], f["SA"], f["SB"], zeta, f["oA"], f["oB"], cA, cB)
    got = equivariant_kernel(f["XA"], f["XB"], zeta=zeta, scalar_A=f["SA"], scalar_B=f["SB"],
                             offsets_A=f["oA"], offsets_B=f["oB"], centers_A=cA, centers_B=cB)
    np.testing.assert_allclose(got, ref, atol=1e-12)
    local = equivariant_kernel(f["XA"], f["XB"], zeta=zeta, scalar_A=f["SA"], scalar_B=f["SB"],
                               centers_A=cA, centers_B=cB)
    np.testing.assert_allclose(local, _brute(f["XA"], f["XB"], f["SA"], f["SB"], zeta, cA=cA, cB=cB), atol=1e-12)
    same = equivariant_kernel(f["XA"], zeta=zeta, scalar_A=f["SA"], offsets_A=f["oA"], centers_A=cA)
    np.testing.assert_allclose(same, _brute(f["XA"], f["XA"], f["SA"], f["SA"], zeta, f["oA"], f["oA"], cA, cA),
                               atol=1e-12)
    diag = equivariant_kernel_diag(f["XA"], zeta=zeta, scalar=f["SA"], offsets=f["oA"], centers=cA)
    np.testing.assert_allclose(diag, np.stack([same[i, :, i, :] for i in range(3)]), atol=1e-12)


def test_lambda0_defaults_scalar_to_its_own_features(random_features):
    X = random_features["XA"][:, :1, :]
    np.testing.assert_allclose(equivariant_kernel(X, zeta=2), _brute(X, X, X[:, 0], X[:, 0], 2), atol=1e-12)


def test_chunked_assembly_matches_one_block(monkeypatch, random_features):
    import kernelpot.kernels.equivariant as module

    f = random_features
    whole = equivariant_kernel(f["XA"], zeta=2, scalar_A=f["SA"], offsets_A=f["oA"])
    monkeypatch.setattr(module, "_CHUNK_BYTES", 1)
    np.testing.assert_allclose(equivariant_kernel(f["XA"], zeta=2, scalar_A=f["SA"], offsets_A=f["oA"]),
                               whole, atol=1e-12)


def _molecules(rng, n):
    """Small random H/O clusters (Å) of 3-5 atoms."""
    frames = []
    for _ in range(n):
        k = int(rng.integers(3, 6))
        numbers = rng.choice([1, 8], size=k)
        frames.append(Atoms(numbers=numbers, positions=rng.uniform(-1.3, 1.3, size=(k, 3))))
    return frames


def _features(frames, lam):
    params = {"species": [1, 8], "r_cut": 3.0, "n_max": 3, "l_max": 3, "sigma": 0.4}
    X = LambdaSOAP(**params, lambda_=lam).transform(frames)
    S = LambdaSOAP(**params, lambda_=0).transform(frames)
    return np.asarray(X), np.asarray(S)[:, 0], X.offsets, np.asarray(X.numbers)


@pytest.mark.parametrize("lam", [1, 2, 3])
def test_structure_kernel_is_exactly_equivariant(lam):
    rng = np.random.default_rng(11)
    A, B = _molecules(rng, 3), _molecules(rng, 2)
    R, Q = random_rotation(rng), random_rotation(rng)
    def rotate(frames, M):
        return [Atoms(numbers=a.numbers, positions=a.positions @ M.T) for a in frames]

    def kernel(fa, fb):
        XA, SA, oA, cA = _features(fa, lam)
        XB, SB, oB, cB = _features(fb, lam)
        return equivariant_kernel(XA, XB, zeta=2, scalar_A=SA, scalar_B=SB, offsets_A=oA, offsets_B=oB,
                                  centers_A=cA, centers_B=cB)

    K = kernel(A, B)
    assert np.abs(K).max() > 1e-3
    expected = np.einsum("mi,aibj,nj->ambn", wigner_d_real(R, lam), K, wigner_d_real(Q, lam))
    np.testing.assert_allclose(kernel(rotate(A, R), rotate(B, Q)), expected, atol=1e-8 * np.abs(K).max())


def test_structure_kernel_is_permutation_invariant():
    rng = np.random.default_rng(5)
    A = _molecules(rng, 2)
    XA, SA, oA, cA = _features(A, 2)
    K = equivariant_kernel(XA, zeta=2, scalar_A=SA, offsets_A=oA, centers_A=cA)
    permuted = [a[rng.permutation(len(a))] for a in A]
    XP, SP, oP, cP = _features(permuted, 2)
    np.testing.assert_allclose(equivariant_kernel(XP, zeta=2, scalar_A=SP, offsets_A=oP, centers_A=cP), K,
                               atol=1e-12 * np.abs(K).max())


def test_validation_messages(random_features):
    f = random_features
    X, S = f["XA"], f["SA"]
    with pytest.raises(TypeError, match=r"`zeta` must be an integer >= 1; got 1.5"):
        equivariant_kernel(X, zeta=1.5, scalar_A=S)
    with pytest.raises(ValueError, match=r"`zeta` must be an integer >= 1; got 0"):
        equivariant_kernel(X, zeta=0)
    with pytest.raises(ValueError, match=r"`XA` must have shape \(n_atoms, 2λ\+1, n_features\); got \(9, 4, 7\)"):
        equivariant_kernel(X[:, :4], zeta=1)
    with pytest.raises(ValueError, match="`XA` contains non-finite values"):
        equivariant_kernel(np.full((2, 3, 4), np.nan), zeta=1)
    with pytest.raises(ValueError, match=r"`scalar_A` \(λ = 0 features\) is required for zeta=2"):
        equivariant_kernel(X, zeta=2)
    with pytest.raises(ValueError, match=r"`scalar_A` must have shape \(9, n_scalar_features\)"):
        equivariant_kernel(X, zeta=2, scalar_A=S[:3])
    with pytest.raises(ValueError, match="`scalar_B` contains non-finite values"):
        equivariant_kernel(X, f["XB"], zeta=2, scalar_A=S, scalar_B=np.full((6, 4), np.inf))
    with pytest.raises(ValueError, match=r"`offsets_A` must start at 0, end at the number of atoms \(9\)"):
        equivariant_kernel(X, zeta=1, offsets_A=[0, 4, 8])
    with pytest.raises(ValueError, match="`offsets_A` must be a 1-D integer array"):
        equivariant_kernel(X, zeta=1, offsets_A=[0.0, 9.0])
    with pytest.raises(ValueError, match="`scalar_B` must be None when `XB` is None"):
        equivariant_kernel(X, zeta=2, scalar_A=S, scalar_B=S)
    with pytest.raises(ValueError, match=r"`XA` and `XB` must have the same \(2λ\+1, n_features\)"):
        equivariant_kernel(X, f["XB"][:, :3], zeta=1)
    with pytest.raises(ValueError, match="`scalar_A` and `scalar_B` must have the same number of features"):
        equivariant_kernel(X, f["XB"], zeta=2, scalar_A=S, scalar_B=f["SB"][:, :2])
    with pytest.raises(ValueError, match="`centers_A` and `centers_B` must be given together"):
        equivariant_kernel(X, f["XB"], zeta=1, centers_A=f["cA"])
    with pytest.raises(ValueError, match=r"`centers_A` must be 9 integers \(atomic numbers\)"):
        equivariant_kernel(X, zeta=1, centers_A=np.ones(9))
