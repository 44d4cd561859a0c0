"""Equivariant (symmetry-adapted) kernels between λ-SOAP environments and structures.

Definition
----------
For λ-SOAP blocks ``X_a`` of shape ``(2λ+1, F)`` (one per atomic environment,
see :class:`kernelpot.descriptors.lambda_soap.LambdaSOAP`) and scalar
(λ = 0, SOAP power spectrum) features ``p_a`` the λ kernel between two
environments is the ``(2λ+1) × (2λ+1)`` block

.. math::

    k^{λ}_{μν}(a, b) = \\Big[\\sum_f X_a[μ, f]\\, X_b[ν, f]\\Big]\\,
        k_0(a, b)^{ζ - 1},
    \\qquad k_0(a, b) = \\frac{p_a \\cdot p_b}{|p_a|\\,|p_b|},

the nonlinear form of SA-GPR (Grisafi et al. 2018; TENSOAP's
``sagpr_get_kernel -z``). Because ``X(R·A) = D^λ(R) X(A)`` and ``k_0`` is
invariant, ``k^λ(R·a, R'·b) = D^λ(R) k^λ(a, b) D^λ(R')^T``: a regression
``y(A) = Σ_b k^λ(A, b) w_b`` rotates with the structure. Structure kernels
sum the blocks over the atoms of each structure (``offsets``), which makes
the model extensive (a dipole or polarizability is a sum of atomic terms).

Assembly: all atom-pair products of a chunk come from one BLAS product
``X_A X_B^T`` of the ``(n (2λ+1), F)`` matrices; a Numba pass multiplies by
``k_0^{ζ-1}`` and adds each block to its structure. With ``ζ = 1`` the
features are summed per structure first (exact and much cheaper). When both
sides are the same atoms only the upper triangle is computed.

References
----------
A. Grisafi, D. M. Wilkins, G. Csányi, M. Ceriotti, Phys. Rev. Lett. 120,
036002 (2018), doi:10.1103/PhysRevLett.120.036002.
"""

from __future__ import annotations

import numbers

import numpy as np

from kernelpot.kernels import _equivariant_kernels as _ek

__all__ = ["equivariant_kernel", "equivariant_kernel_diag"]

# The block of atom-pair products of one chunk is kept under this many bytes.
_CHUNK_BYTES = 64 * 2**20


def equivariant_kernel(XA, XB=None, *, zeta=2, scalar_A=None, scalar_B=None, offsets_A=None,
                       offsets_B=None, centers_A=None, centers_B=None):
    """λ kernel blocks between environments (local) or structures (summed over atoms).

    Parameters
    ----------
    XA : array_like of shape (n_atoms_A, 2λ+1, n_features)
        λ-SOAP features of the A environments (any units; usually normalised).
    XB : array_like of shape (n_atoms_B, 2λ+1, n_features), optional
        Same for B. ``None`` means B is A (then ``scalar_B``, ``offsets_B``
        and ``centers_B`` must be None and only half the pairs are computed).
    zeta : int, default=2
        Exponent ζ >= 1 of the nonlinearity ``k_0^{ζ-1}``.
    scalar_A, scalar_B : array_like of shape (n_atoms, n_scalar_features), optional
        Invariant (λ = 0) features defining ``k_0`` (normalised here; a zero
        row gives ``k_0 = 0``). Required when ``ζ > 1``, except for λ = 0
        where the λ features themselves are used.
    offsets_A, offsets_B : array_like of shape (n_structures + 1,), int, optional
        Atoms of structure ``s`` are rows ``offsets[s]:offsets[s+1]``; the
        blocks are then summed over the atoms of each structure. ``None``:
        one output row per atom (local kernel).
    centers_A, centers_B : array_like of shape (n_atoms,), int, optional
        Species (atomic numbers) of the central atoms. If given (both, or
        ``centers_A`` alone when ``XB`` is None), only environments with the
        same central species are compared (as in SOAP-GAP).

    Returns
    -------
    ndarray of shape (n_A, 2λ+1, n_B, 2λ+1), float64
        ``K[i, μ, j, ν]``; ``n_A`` is the number of structures (with
        ``offsets_A``) or atoms of A, likewise ``n_B``. Units: those of
        ``X_A X_B`` (dimensionless for normalised features).

    Raises
    ------
    ValueError
        Arrays of the wrong shape, non-finite features, invalid ``offsets``,
        ``zeta < 1``, a missing scalar for ``ζ > 1`` and λ > 0.
    TypeError
        ``zeta`` not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(4, 3, 5))
    >>> equivariant_kernel(X, zeta=1, offsets_A=[0, 1, 4]).shape
    (2, 3, 2, 3)
    """
    A = _side(XA, scalar_A, offsets_A, centers_A, zeta, "A")
    if XB is None:
        for name, value in (("scalar_B", scalar_B), ("offsets_B", offsets_B), ("centers_B", centers_B)):
            if value is not None:
                raise ValueError(f"`{name}` must be None when `XB` is None (B is A); got an array")
        B = A
    else:
        B = _side(XB, scalar_B, offsets_B, centers_B, zeta, "B")
        if B["X"].shape[1:] != A["X"].shape[1:]:
            raise ValueError(
                f"`XA` and `XB` must have the same (2λ+1, n_features); got {A['X'].shape[1:]} "
                f"and {B['X'].shape[1:]}"
            )
        if zeta > 1 and A["S"].shape[1] != B["S"].shape[1]:
            raise ValueError(
                f"`scalar_A` and `scalar_B` must have the same number of features; got "
                f"{A['S'].shape[1]} and {B['S'].shape[1]}"
            )
        if (A["centers"] is None) != (B["centers"] is None):
            raise ValueError("`centers_A` and `centers_B` must be given together (or both None)")
    n_l = A["X"].shape[1]
    out = np.zeros((A["n_out"], n_l, B["n_out"], n_l))
    for rows_a, rows_b in _species_groups(A, B):
        if zeta == 1:
            _add_summed(A, B, rows_a, rows_b, out)
        else:
            _add_pairs(A, B, rows_a, rows_b, zeta - 1, B is A, out)
    if B is A and zeta > 1:
        out += out.transpose(2, 3, 0, 1)
    return out


def equivariant_kernel_diag(X, *, zeta=2, scalar=None, offsets=None, centers=None):
    """Diagonal blocks ``K[i, :, i, :]`` of :func:`equivariant_kernel` (X with itself).

    Parameters
    ----------
    X, zeta, scalar, offsets, centers
        As ``XA``, ``zeta``, ``scalar_A``, ``offsets_A``, ``centers_A`` of
        :func:`equivariant_kernel`.

    Returns
    -------
    ndarray of shape (n, 2λ+1, 2λ+1), float64
        One block per structure (or per atom without ``offsets``).
    """
    side = _side(X, scalar, offsets, centers, zeta, "A")
    offsets = side["offsets"]
    if offsets is None:
        offsets = np.arange(side["X"].shape[0] + 1, dtype=np.int64)
    n_l = side["X"].shape[1]
    out = np.empty((len(offsets) - 1, n_l, n_l))
    centers = side["centers"] if side["centers"] is not None else np.zeros(len(side["X"]), np.int64)
    _ek.diagonal_blocks(side["X"], side["S"], zeta - 1, offsets, centers,
                        side["centers"] is not None, out)
    return out


def _side(X, scalar, offsets, centers, zeta, tag):
    """Validated arrays of one side: features, unit scalars, output row of each atom."""
    if isinstance(zeta, bool) or not isinstance(zeta, numbers.Integral):
        raise TypeError(f"`zeta` must be an integer >= 1; got {zeta!r}")
    if zeta < 1:
        raise ValueError(f"`zeta` must be an integer >= 1; got {zeta}")
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 3 or X.shape[1] % 2 != 1:
        raise ValueError(f"`X{tag}` must have shape (n_atoms, 2λ+1, n_features); got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"`X{tag}` contains non-finite values")
    n = X.shape[0]
    S = np.zeros((n, 0))
    if zeta > 1:
        if scalar is None:
            if X.shape[1] != 1:
                raise ValueError(
                    f"`scalar_{tag}` (λ = 0 features) is required for zeta={zeta} > 1 with "
                    f"λ = {X.shape[1] // 2} > 0"
                )
            scalar = X[:, 0, :]
        S = np.array(scalar, dtype=np.float64)
        if S.ndim != 2 or S.shape[0] != n:
            raise ValueError(f"`scalar_{tag}` must have shape ({n}, n_scalar_features); got {S.shape}")
        if not np.all(np.isfinite(S)):
            raise ValueError(f"`scalar_{tag}` contains non-finite values")
        norms = np.linalg.norm(S, axis=1)
        S[norms > 0] /= norms[norms > 0, None]
    row = np.arange(n, dtype=np.int64)
    n_out = n
    if offsets is not None:
        offsets = _check_offsets(offsets, n, f"offsets_{tag}")
        row = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
        n_out = len(offsets) - 1
    if centers is not None:
        centers = np.asarray(centers)
        if centers.shape != (n,) or not np.issubdtype(centers.dtype, np.integer):
            raise ValueError(f"`centers_{tag}` must be {n} integers (atomic numbers); got shape "
                             f"{centers.shape}, dtype {centers.dtype}")
        centers = centers.astype(np.int64)
    return {"X": X, "S": S, "row": row, "n_out": n_out, "offsets": offsets, "centers": centers}


def _check_offsets(offsets, n_atoms, name):
    offsets = np.asarray(offsets)
    if offsets.ndim != 1 or len(offsets) < 1 or not np.issubdtype(offsets.dtype, np.integer):
        raise ValueError(f"`{name}` must be a 1-D integer array (n_structures + 1,); got {offsets!r}")
    offsets = offsets.astype(np.int64)
    if offsets[0] != 0 or offsets[-1] != n_atoms or np.any(np.diff(offsets) < 0):
        raise ValueError(
            f"`{name}` must start at 0, end at the number of atoms ({n_atoms}) and not decrease; "
            f"got {offsets.tolist() if len(offsets) < 12 else offsets}"
        )
    return offsets


def _species_groups(A, B):
    """Pairs of row index arrays (sorted) whose environments are compared."""
    if A["centers"] is None:
        yield np.arange(len(A["X"])), np.arange(len(B["X"]))
        return
    for z in np.intersect1d(A["centers"], B["centers"]):
        yield np.flatnonzero(A["centers"] == z), np.flatnonzero(B["centers"] == z)


def _add_summed(A, B, rows_a, rows_b, out):
    """ζ = 1: the kernel is bilinear, so sum features per output row first."""
    n_l, n_f = A["X"].shape[1:]
    summed_a = np.zeros((A["n_out"], n_l, n_f))
    np.add.at(summed_a, A["row"][rows_a], A["X"][rows_a])
    if B is A:
        summed_b = summed_a
    else:
        summed_b = np.zeros((B["n_out"], n_l, n_f))
        np.add.at(summed_b, B["row"][rows_b], B["X"][rows_b])
    gram = summed_a.reshape(-1, n_f) @ summed_b.reshape(-1, n_f).T
    out += gram.reshape(out.shape)


def _add_pairs(A, B, rows_a, rows_b, power, same, out):
    """ζ > 1: BLAS products of atom chunks, then the Numba weighting and summation."""
    n_l, n_f = A["X"].shape[1:]
    XB = B["X"][rows_b].reshape(-1, n_f)
    SB = B["S"][rows_b]
    chunk = max(1, int(_CHUNK_BYTES // (8 * n_l * n_l * max(len(rows_b), 1))))
    for start in range(0, len(rows_a), chunk):
        rows = rows_a[start:start + chunk]
        first = start if same else 0
        # Triangular: columns from this chunk's first row on (positions in rows_b == rows_a).
        cols = slice(first, None)
        G = A["X"][rows].reshape(-1, n_f) @ XB[first * n_l:].T
        G = G.reshape(len(rows), n_l, -1, n_l)
        k0 = A["S"][rows] @ SB[cols].T
        out_rows = A["row"][rows]
        boundaries = np.flatnonzero(np.diff(out_rows)) + 1
        segment_start = np.concatenate([[0], boundaries, [len(rows)]]).astype(np.int64)
        col_row = B["row"][rows_b][cols]
        col_position = np.arange(first, len(rows_b), dtype=np.int64)
        _ek.accumulate_blocks(G, k0, power, segment_start, out_rows[segment_start[:-1]],
                              col_row, col_position, start, same, out)
