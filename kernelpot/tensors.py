"""Cartesian tensors ↔ their irreducible spherical parts (λ components).

Conventions
-----------
Spherical components follow kernelpot's real spherical harmonics
(:mod:`kernelpot.symmetry.wigner`: ``μ = -λ..λ``, no Condon–Shortley
phase), so each part of a rotated tensor is the part of the original
rotated by the real Wigner matrix: ``part_λ(R·T) = D^λ(R) @ part_λ(T)``,
exactly the transformation of λ-SOAP features and kernels.

* Vectors (rank 1): the λ = 1 part is ``(v_y, v_z, v_x)`` (a permutation,
  because ``Y_1 ∝ (y, z, x)``).
* Rank 2 (3×3): ``1 ⊗ 1 = 0 ⊕ 1 ⊕ 2`` by the real Clebsch–Gordan
  coefficients of :func:`kernelpot.symmetry.clebsch_gordan.real_clebsch_gordan`.
  The λ = 0 part is ``-tr(T)/√3`` (the CG sign), the λ = 1 part is the
  antisymmetric part (zero for a symmetric tensor such as a
  polarizability), the λ = 2 part the symmetric traceless part.
* Rank 3 (3×3×3, e.g. a hyperpolarizability β_ijk): the last two indices
  are coupled first (``j ⊗ k → l_jk``), then with the first
  (``i ⊗ l_jk → λ``); parts are keyed ``(l_jk, λ)``: (0, 1), (1, 0), (1, 1),
  (1, 2), (2, 1), (2, 2), (2, 3). A β symmetric in ``j, k`` has only
  ``l_jk ∈ {0, 2}``; a fully symmetric one only λ ∈ {1, 3}.

Every map is orthogonal: the squared Frobenius norm of a tensor is the sum
of the squared norms of its parts, and the inverse is the transpose.
Values keep the units of the input (e.g. atomic units for the TENSOAP data).
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np

from kernelpot.symmetry.clebsch_gordan import real_clebsch_gordan

__all__ = [
    "RANK2_PARTS",
    "RANK3_PARTS",
    "rank2_to_spherical",
    "rank3_to_spherical",
    "spherical_to_rank2",
    "spherical_to_rank3",
    "spherical_to_vector",
    "symmetrize",
    "vector_to_spherical",
]

#: Keys of :func:`rank2_to_spherical`, in the order of the rows of its matrix.
RANK2_PARTS = (0, 1, 2)
#: Keys ``(l_jk, λ)`` of :func:`rank3_to_spherical`, in the order of its matrix rows.
RANK3_PARTS = ((0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2), (2, 3))

# Row m + 1 holds the Cartesian axis of real harmonic m: (y, z, x).
_P = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


@cache
def _rank2_matrix() -> np.ndarray:
    """Orthogonal (9, 9) map from row-major 3×3 to the parts λ = 0, 1, 2 concatenated."""
    rows = []
    for lam in RANK2_PARTS:
        C = real_clebsch_gordan(1, 1, lam)
        block = np.einsum("abm,ai,bj->mij", C, _P, _P).reshape(2 * lam + 1, 9)
        rows.append(block / np.linalg.norm(block, axis=1, keepdims=True))
    matrix = np.concatenate(rows)
    matrix.setflags(write=False)
    return matrix


@cache
def _rank3_matrix() -> np.ndarray:
    """Orthogonal (27, 27) map from row-major 3×3×3 to the parts of RANK3_PARTS."""
    inner = _rank2_matrix().reshape(9, 3, 3)
    starts = np.cumsum([0] + [2 * lam + 1 for lam in RANK2_PARTS])
    rows = []
    for l_jk, lam in RANK3_PARTS:
        C = real_clebsch_gordan(1, l_jk, lam)
        inner_part = inner[starts[l_jk]:starts[l_jk + 1]]
        block = np.einsum("anm,ai,njk->mijk", C, _P, inner_part).reshape(2 * lam + 1, 27)
        rows.append(block / np.linalg.norm(block, axis=1, keepdims=True))
    matrix = np.concatenate(rows)
    matrix.setflags(write=False)
    return matrix


def _as_tensor(T, rank: int, name: str) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.ndim < rank or T.shape[-rank:] != (3,) * rank:
        shape = ", ".join(["3"] * rank)
        raise ValueError(f"`{name}` must have shape (..., {shape}); got {T.shape}")
    return T


def vector_to_spherical(v) -> np.ndarray:
    """λ = 1 components of Cartesian vectors.

    Parameters
    ----------
    v : array_like of shape (..., 3)
        Cartesian vectors (x, y, z), any units.

    Returns
    -------
    ndarray of shape (..., 3)
        Components ``μ = -1, 0, 1``, i.e. ``(v_y, v_z, v_x)``.
    """
    return _as_tensor(v, 1, "v")[..., [1, 2, 0]]


def spherical_to_vector(s) -> np.ndarray:
    """Inverse of :func:`vector_to_spherical`: shape (..., 3) → Cartesian (..., 3)."""
    return _as_tensor(s, 1, "s")[..., [2, 0, 1]]


def rank2_to_spherical(T) -> dict:
    """Irreducible parts of 3×3 tensors.

    Parameters
    ----------
    T : array_like of shape (..., 3, 3)
        Cartesian rank-2 tensors (e.g. polarizabilities), any units.

    Returns
    -------
    dict {λ: ndarray of shape (..., 2λ+1)}
        Parts λ = 0 (``-tr T/√3``), 1 (antisymmetric), 2 (symmetric traceless).
    """
    T = _as_tensor(T, 2, "T")
    flat = T.reshape(T.shape[:-2] + (9,)) @ _rank2_matrix().T
    starts = np.cumsum([0] + [2 * lam + 1 for lam in RANK2_PARTS])
    return {lam: flat[..., starts[i]:starts[i + 1]] for i, lam in enumerate(RANK2_PARTS)}


def spherical_to_rank2(parts: dict) -> np.ndarray:
    """Inverse of :func:`rank2_to_spherical`; missing parts count as zero.

    Parameters
    ----------
    parts : dict {λ: array_like of shape (..., 2λ+1)}
        Keys among 0, 1, 2, all with the same leading shape.

    Returns
    -------
    ndarray of shape (..., 3, 3)
    """
    flat = _concatenate_parts(parts, RANK2_PARTS, lambda key: key, "parts")
    return (flat @ _rank2_matrix()).reshape(flat.shape[:-1] + (3, 3))


def rank3_to_spherical(T) -> dict:
    """Irreducible parts of 3×3×3 tensors (e.g. first hyperpolarizabilities).

    Parameters
    ----------
    T : array_like of shape (..., 3, 3, 3)
        Cartesian rank-3 tensors, any units.

    Returns
    -------
    dict {(l_jk, λ): ndarray of shape (..., 2λ+1)}
        Keys :data:`RANK3_PARTS` (see the module docstring).
    """
    T = _as_tensor(T, 3, "T")
    flat = T.reshape(T.shape[:-3] + (27,)) @ _rank3_matrix().T
    sizes = [2 * lam + 1 for _, lam in RANK3_PARTS]
    starts = np.cumsum([0] + sizes)
    return {key: flat[..., starts[i]:starts[i + 1]] for i, key in enumerate(RANK3_PARTS)}


def spherical_to_rank3(parts: dict) -> np.ndarray:
    """Inverse of :func:`rank3_to_spherical`; missing parts count as zero.

    Returns
    -------
    ndarray of shape (..., 3, 3, 3)
    """
    flat = _concatenate_parts(parts, RANK3_PARTS, lambda key: key[1], "parts")
    return (flat @ _rank3_matrix()).reshape(flat.shape[:-1] + (3, 3, 3))


def _concatenate_parts(parts, keys, degree, name):
    if not isinstance(parts, dict) or not parts:
        raise TypeError(f"`{name}` must be a non-empty dict keyed by {list(keys)}; got {parts!r}")
    unknown = [key for key in parts if key not in keys]
    if unknown:
        raise ValueError(f"`{name}` keys must be among {list(keys)}; got {unknown}")
    arrays = {key: np.asarray(value, dtype=np.float64) for key, value in parts.items()}
    lead = next(iter(arrays.values())).shape[:-1]
    for key, value in arrays.items():
        if value.shape != lead + (2 * degree(key) + 1,):
            raise ValueError(
                f"`{name}[{key!r}]` must have shape {lead + (2 * degree(key) + 1,)}; got {value.shape}"
            )
    return np.concatenate(
        [arrays.get(key, np.zeros(lead + (2 * degree(key) + 1,))) for key in keys], axis=-1
    )


def symmetrize(T, *, name: str = "T", rtol: float = 1e-6):
    """Symmetric part of 3×3 tensors, warning if they were not symmetric.

    Parameters
    ----------
    T : array_like of shape (..., 3, 3)
        Tensors that should be symmetric (e.g. polarizabilities).
    name : str
        Name used in the warning.
    rtol : float
        Asymmetries up to ``rtol`` times the largest ``|T|`` pass silently.

    Returns
    -------
    symmetric : ndarray of shape (..., 3, 3)
        ``(T + T^T) / 2``.
    asymmetry : float
        Largest ``|T_ij - T_ji| / 2`` over all tensors (units of ``T``).

    Warns
    -----
    UserWarning
        When ``asymmetry`` exceeds the tolerance; it reports the value, the
        index of the worst tensor and says the tensors were symmetrised.
    """
    T = _as_tensor(T, 2, name)
    antisymmetric = 0.5 * np.abs(T - np.swapaxes(T, -1, -2))
    asymmetry = float(antisymmetric.max()) if T.size else 0.0
    scale = float(np.abs(T).max()) if T.size else 0.0
    if asymmetry > rtol * scale:
        worst = np.unravel_index(int(np.argmax(antisymmetric)), antisymmetric.shape)[:-2]
        warnings.warn(
            f"`{name}` is not symmetric: largest |T_ij - T_ji|/2 = {asymmetry:.3g} (tensor "
            f"{tuple(int(i) for i in worst)}, largest |T| = {scale:.3g}); using the symmetric "
            "part (T + T^T)/2",
            UserWarning, stacklevel=2,
        )
    return 0.5 * (T + np.swapaxes(T, -1, -2)), asymmetry
