"""Real Wigner D matrices, in the real-harmonic convention of :mod:`kernelpot.symmetry.harmonics`.

For a proper rotation ``R`` (3×3, acting on column vectors),
:func:`wigner_d_real` returns the orthogonal matrices with::

    Y_l(R @ r) = D^l(R) @ Y_l(r)

so that the density-expansion coefficients of a rotated structure are
``c_l(R·A) = D^l(R) @ c_l(A)``. They are built with the recursion of
J. Ivanic and K. Ruedenberg, J. Phys. Chem. 100, 6342 (1996),
doi:10.1021/jp953350u (with the erratum, J. Phys. Chem. A 102, 9099 (1998),
doi:10.1021/jp9833350), which starts from ``D^1`` (a permutation of ``R``)
and is numerically stable for any ``l``.
"""

from __future__ import annotations

import numpy as np

from .harmonics import check_degree, convention_signs

__all__ = [
    "wigner_d_real",
    "wigner_d_real_all",
    "random_rotation",
]


def wigner_d_real(rotation, l: int) -> np.ndarray:
    """Real Wigner D matrix of degree ``l`` for one or many rotations.

    Parameters
    ----------
    rotation : array_like of shape (3, 3) or (n, 3, 3)
        Proper rotation matrices (orthogonal, determinant +1) acting on
        column vectors: ``r' = R @ r``.
    l : int
        Degree, >= 0.

    Returns
    -------
    ndarray of shape (2l + 1, 2l + 1) or (n, 2l + 1, 2l + 1), float64
        ``D`` with ``Y_l(R @ r) = D @ Y_l(r)`` in kernelpot's real
        harmonics (rows and columns ``m = -l..l``).

    Examples
    --------
    A quarter turn about z maps x to y; the l = 1 block holds (y, z, x):

    >>> import numpy as np
    >>> quarter_turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    >>> wigner_d_real(quarter_turn, 1) @ np.array([0.0, 0.0, 1.0])  # (y, z, x) of x
    array([1., 0., 0.])
    """
    check_degree(l, "l")
    rotation = _check_rotation(rotation)
    single = rotation.ndim == 2
    batch = rotation[None] if single else rotation
    d = _standard_wigner(batch, l)[l]
    signs = convention_signs(l)
    d = signs[:, None] * d * signs[None, :]
    return d[0] if single else d


def wigner_d_real_all(rotation, l_max: int) -> list[np.ndarray]:
    """Real Wigner D matrices of every degree ``0..l_max`` (one recursion).

    Parameters
    ----------
    rotation : array_like of shape (3, 3) or (n, 3, 3)
        Proper rotation matrices, see :func:`wigner_d_real`.
    l_max : int
        Largest degree, >= 0.

    Returns
    -------
    list of ndarray
        Element ``l`` has shape (2l + 1, 2l + 1) or (n, 2l + 1, 2l + 1).
    """
    check_degree(l_max, "l_max")
    rotation = _check_rotation(rotation)
    single = rotation.ndim == 2
    batch = rotation[None] if single else rotation
    out = []
    for l, d in enumerate(_standard_wigner(batch, l_max)):
        signs = convention_signs(l)
        d = signs[:, None] * d * signs[None, :]
        out.append(d[0] if single else d)
    return out


def random_rotation(rng=None) -> np.ndarray:
    """A uniformly distributed proper rotation matrix (for tests and augmentation).

    Parameters
    ----------
    rng : None, int or numpy.random.Generator
        Seed or generator.

    Returns
    -------
    ndarray of shape (3, 3), float64
        Orthogonal, determinant +1.
    """
    rng = np.random.default_rng(rng)
    # QR of a Gaussian matrix with the sign of R's diagonal fixed is Haar-distributed.
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))[None, :]
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _check_rotation(rotation) -> np.ndarray:
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape[-2:] != (3, 3) or rotation.ndim not in (2, 3):
        raise ValueError(
            f"`rotation` must have shape (3, 3) or (n, 3, 3); got {rotation.shape}"
        )
    identity = np.broadcast_to(np.eye(3), rotation.shape)
    error = np.abs(np.swapaxes(rotation, -1, -2) @ rotation - identity).max()
    if not error < 1e-8:
        raise ValueError(
            f"`rotation` must be orthogonal (R.T @ R = 1); deviation {error:.3g}"
        )
    if np.any(np.linalg.det(rotation) < 0):
        raise ValueError(
            "`rotation` must be a proper rotation (determinant +1); for an improper "
            "one use D(-R) times (-1)^l"
        )
    return rotation


def _standard_wigner(rotation: np.ndarray, l_max: int) -> list[np.ndarray]:
    """Ivanic–Ruedenberg recursion in the standard (no phase) real basis.

    ``rotation`` has shape (n, 3, 3); returns matrices of shape
    (n, 2l + 1, 2l + 1) for l = 0..l_max. Indices below run over m, with
    array position ``m + l``.
    """
    n = rotation.shape[0]
    matrices = [np.ones((n, 1, 1))]
    if l_max == 0:
        return matrices
    # Y_1 is proportional to (y, z, x), so D^1 is R with axes permuted.
    order = [1, 2, 0]
    r1 = rotation[:, order][:, :, order]
    matrices.append(r1)
    for l in range(2, l_max + 1):
        matrices.append(_next_degree(r1, matrices[-1], l))
    return matrices


def _next_degree(r1: np.ndarray, previous: np.ndarray, l: int) -> np.ndarray:
    """D^l from D^1 and D^(l-1) (Ivanic & Ruedenberg 1996, Table 2 and eqs 8.1-8.6)."""
    n = r1.shape[0]
    mp = np.arange(-l, l + 1)
    # P[i + 1][:, mu + l - 1, m' + l] is the function P^i_{mu, m'} of the paper.
    p = np.empty((3, n, 2 * l - 1, 2 * l + 1))
    for i in (-1, 0, 1):
        r_i0, r_i1, r_im1 = r1[:, i + 1, 1], r1[:, i + 1, 2], r1[:, i + 1, 0]
        p[i + 1][:, :, 1:-1] = r_i0[:, None, None] * previous
        p[i + 1][:, :, -1] = (
            r_i1[:, None] * previous[:, :, -1] - r_im1[:, None] * previous[:, :, 0]
        )
        p[i + 1][:, :, 0] = (
            r_i1[:, None] * previous[:, :, 0] + r_im1[:, None] * previous[:, :, -1]
        )
    denominator = np.where(np.abs(mp) < l, (l + mp) * (l - mp), 2 * l * (2 * l - 1)).astype(
        np.float64
    )

    def pick(i, mu):  # P^i_{mu, m'} for all m' (shape (n, 2l + 1))
        return p[i + 1][:, mu + l - 1, :]

    out = np.zeros((n, 2 * l + 1, 2 * l + 1))
    for m in range(-l, l + 1):
        am = abs(m)
        row = out[:, m + l, :]
        u = np.sqrt((l + m) * (l - m) / denominator)
        if am < l:
            row += u * pick(0, m)
        delta0 = 1.0 if m == 0 else 0.0
        v = 0.5 * np.sqrt((1 + delta0) * (l + am - 1) * (l + am) / denominator)
        v *= 1 - 2 * delta0
        if m == 0:
            big_v = pick(1, 1) + pick(-1, -1)
        elif m > 0:
            big_v = pick(1, m - 1) * np.sqrt(1.0 + (m == 1))
            if m != 1:
                big_v = big_v - pick(-1, -m + 1)
        else:
            big_v = pick(-1, -m - 1) * np.sqrt(1.0 + (m == -1))
            if m != -1:
                big_v = big_v + pick(1, m + 1)
        row += v * big_v
        if m != 0 and am < l - 1:
            w = -0.5 * np.sqrt((l - am - 1) * (l - am) / denominator)
            if m > 0:
                big_w = pick(1, m + 1) + pick(-1, -m - 1)
            else:
                big_w = pick(1, m - 1) - pick(-1, -m + 1)
            row += w * big_w
    return out
