"""Tensor targets of SA-GPR: validation and Cartesian ↔ λ-component maps (private).

Each supported λ has one Cartesian target form; the model learns the λ
part of it (in kernelpot's real-harmonic basis, :mod:`kernelpot.tensors`)
and returns predictions in the same Cartesian form:

===  ==========================  ===============================================
λ    target shape                what is learned / returned
===  ==========================  ===============================================
0    (n,) or (n, 3, 3)           the scalar, or ``tr(T)/3`` returned as ``(tr/3) I``
1    (n, 3)                      the vector (e.g. a dipole)
2    (n, 3, 3)                   the symmetric traceless part of ``T``
3    (n, 3, 3, 3)                the λ = 3 part (``(l_jk, λ) = (2, 3)``)
===  ==========================  ===============================================
"""

from __future__ import annotations

import numpy as np

from kernelpot import tensors

SUPPORTED_LAMBDAS = (0, 1, 2, 3)
_DESCRIPTION = {
    0: "(n_structures,) scalars or (n_structures, 3, 3) tensors",
    1: "(n_structures, 3) Cartesian vectors (e.g. dipoles)",
    2: "(n_structures, 3, 3) symmetric tensors (e.g. polarizabilities)",
    3: "(n_structures, 3, 3, 3) rank-3 tensors (e.g. hyperpolarizabilities)",
}


def to_spherical(y, lam: int, n_structures: int, name: str = "y"):
    """Validated λ components of the targets.

    Returns
    -------
    spherical : ndarray of shape (n_structures, 2λ+1)
    rank : int
        Cartesian rank of the input (0 for plain scalars).
    """
    y = np.asarray(y, dtype=np.float64)
    allowed = {0: [(), (3, 3)], 1: [(3,)], 2: [(3, 3)], 3: [(3, 3, 3)]}[lam]
    if y.ndim < 1 or y.shape[0] != n_structures or y.shape[1:] not in allowed:
        raise ValueError(
            f"`{name}` must have shape {_DESCRIPTION[lam]} for lambda_={lam} with "
            f"{n_structures} structures; got shape {y.shape}"
        )
    if not np.all(np.isfinite(y)):
        raise ValueError(f"`{name}` contains non-finite values")
    rank = y.ndim - 1
    if rank == 0:
        return y[:, None].copy(), 0
    if rank == 1:
        return tensors.vector_to_spherical(y), 1
    if rank == 2:
        symmetric, _ = tensors.symmetrize(y, name=name)
        return tensors.rank2_to_spherical(symmetric)[lam], 2
    return tensors.rank3_to_spherical(y)[(2, 3)], 3


def spherical_matrix(lam: int, rank: int) -> np.ndarray:
    """Matrix ``M`` (2λ+1, 3**rank) with Cartesian ``t = s @ M`` for λ components ``s``."""
    if rank == 0:
        return np.ones((1, 1))
    if rank == 1:
        return np.eye(3)[[1, 2, 0]]
    if rank == 2:
        parts = {lam: np.eye(2 * lam + 1)}
        return tensors.spherical_to_rank2(parts).reshape(2 * lam + 1, 9)
    return tensors.spherical_to_rank3({(2, 3): np.eye(7)}).reshape(7, 27)


def to_cartesian(spherical, lam: int, rank: int, covariance=None):
    """Cartesian predictions (and standard deviations from (n, 2λ+1, 2λ+1) covariances)."""
    M = spherical_matrix(lam, rank)
    shape = (len(spherical),) + (3,) * rank
    values = (spherical @ M).reshape(shape)
    if covariance is None:
        return values, None
    variance = np.einsum("mi,nmk,ki->ni", M, covariance, M)
    return values, np.sqrt(np.maximum(variance, 0.0)).reshape(shape)
