"""Local (atom-pair) kernels summed to structure kernels, with force (gradient) blocks.

For structures ``A`` and ``B`` with per-atom features ``x_i``::

    K(A, B) = Σ_{i∈A} Σ_{j∈B} k(x_i, x_j)            [· δ(Z_i, Z_j) with element screening]

where ``k`` is any :mod:`kernelpot.kernels.vector` kernel. With a Gaussian
``k`` and ``same_element_only=True`` this is qmllib's ``get_local_kernel``
(FCHL19 papers: Christensen et al., J. Chem. Phys. 152, 044107 (2020),
doi:10.1063/1.5126701).

Learning from forces needs the covariances of energies and forces
(``F = -dE/dr``), given sparse feature gradients
(:class:`kernelpot.descriptors.base.SparseGradients`)::

    cov(E_A, F_{m,β}) = -Σ_{i∈A} Σ_j ∇_y k(x_i, x_j) · ∂x_j/∂r_{m,β}          (energy_force)
    cov(F_{l,α}, F_{m,β}) = Σ_i Σ_j (∂x_i/∂r_{l,α})^T ∂²k/∂x∂y (∂x_j/∂r_{m,β})  (force_force)

Structure kernels are assembled in blocks of structures: per element, one
BLAS product of the block's feature rows and one Numba pass that applies
``k`` and sums into structures, so the peak memory is the kernel matrix
plus one block. A symmetric kernel ``K(A, A)`` computes one triangle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from kernelpot.descriptors.base import AtomicFeatures, SparseGradients
from kernelpot.kernels import _local_kernels as _lk
from kernelpot.kernels import _vector_kernels as _vk
from kernelpot.kernels.vector import VectorKernel

__all__ = ["LocalFeatures", "LocalKernel", "as_local_features"]

# Atoms per side of one Gram block: 2048² float64 = 32 MB at most.
_BLOCK_ATOMS = 2048
_EMPTY = np.zeros((0, 0))


@dataclass(frozen=True, eq=False)
class LocalFeatures:
    """Per-atom features of a set of structures, as one object per set.

    ``len()`` is the number of structures, so scikit-learn's
    ``ConstantKernel`` and ``WhiteKernel`` size their matrices correctly
    when combined with a :class:`LocalKernel`.

    Attributes
    ----------
    features : ndarray of shape (n_atoms_total, n_features), float64, C order
    offsets : ndarray of shape (n_structures + 1,), int64
        Rows of structure ``s`` are ``offsets[s]:offsets[s + 1]``.
    numbers : ndarray of shape (n_atoms_total,), int64
        Atomic number of each row.
    """

    features: np.ndarray
    offsets: np.ndarray
    numbers: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_structures(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_atoms(self) -> int:
        return self.features.shape[0]

    @property
    def n_features(self) -> int:
        return self.features.shape[1]

    @property
    def structure_index(self) -> np.ndarray:
        """Structure of each row, shape (n_atoms_total,)."""
        return np.repeat(np.arange(self.n_structures), np.diff(self.offsets))


def as_local_features(X, name: str = "X") -> LocalFeatures:
    """Validate per-atom input and return it as :class:`LocalFeatures`.

    Parameters
    ----------
    X : AtomicFeatures, LocalFeatures or tuple (features, offsets, numbers)
        ``features`` (n_atoms_total, n_features); ``offsets`` (n_structures + 1,)
        starting at 0, non-decreasing, ending at n_atoms_total; ``numbers``
        (n_atoms_total,) atomic numbers.
    name : str
        Name of the argument, for error messages.
    """
    if isinstance(X, LocalFeatures):
        return X
    if isinstance(X, AtomicFeatures):
        if X.offsets is None or X.numbers is None:
            raise ValueError(
                f"`{name}` is an AtomicFeatures without `offsets`/`numbers` (slicing or arithmetic "
                "drops them); pass the array the descriptor returned, or (features, offsets, numbers)"
            )
        features, offsets, numbers = np.asarray(X), X.offsets, X.numbers
    elif isinstance(X, tuple) and len(X) == 3:
        features, offsets, numbers = X
    else:
        raise TypeError(
            f"`{name}` must be AtomicFeatures, LocalFeatures or a tuple (features, offsets, numbers); "
            f"got {type(X).__name__}"
        )
    features = np.ascontiguousarray(features, dtype=np.float64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    numbers = np.ascontiguousarray(numbers, dtype=np.int64)
    if features.ndim != 2:
        raise ValueError(f"`{name}` features must be 2-D (n_atoms, n_features); got shape {features.shape}")
    if offsets.ndim != 1 or len(offsets) < 2:
        raise ValueError(f"`{name}` must hold at least one structure; got offsets {offsets!r}")
    if offsets[0] != 0 or offsets[-1] != len(features) or np.any(np.diff(offsets) < 0):
        raise ValueError(
            f"`{name}` offsets must start at 0, not decrease and end at n_atoms={len(features)}; "
            f"got {offsets[:5]!r}...{offsets[-1]}"
        )
    if numbers.shape != (len(features),):
        raise ValueError(f"`{name}` numbers must have shape ({len(features)},); got {numbers.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"`{name}` features contain NaN or infinity")
    return LocalFeatures(features, offsets, numbers)


def _structure_blocks(offsets: np.ndarray, max_atoms: int) -> list[tuple[int, int]]:
    """Split structures into consecutive ranges of at most ``max_atoms`` atoms (>= 1 structure each)."""
    blocks, start = [], 0
    n = len(offsets) - 1
    while start < n:
        stop = int(np.searchsorted(offsets, offsets[start] + max_atoms, side="right")) - 1
        stop = min(max(stop, start + 1), n)
        blocks.append((start, stop))
        start = stop
    return blocks


class _ElementGroups:
    """Rows of one feature set grouped by element (or all rows as one group)."""

    def __init__(self, lf: LocalFeatures, screen: bool):
        self.lf = lf
        keys = np.unique(lf.numbers) if screen else np.array([-1])
        self.rows = {int(z): (np.flatnonzero(lf.numbers == z) if screen else np.arange(lf.n_atoms)) for z in keys}
        self.struct = lf.structure_index

    def block(self, z: int, s0: int, s1: int):
        """Features, squared norms, structure starts and structure index of element ``z`` in s0:s1."""
        rows = self.rows[z]
        bounds = np.searchsorted(rows, self.lf.offsets[s0 : s1 + 1])
        sel = rows[bounds[0] : bounds[-1]]
        x = self.lf.features[sel]
        return x, np.einsum("ij,ij->i", x, x), bounds - bounds[0], self.struct[sel] - s0


def _sorted_gradients(grad: SparseGradients, lf: LocalFeatures, name: str):
    """Gradient pairs sorted by centre, with per-centre starts, after validation."""
    if not isinstance(grad, SparseGradients):
        raise TypeError(f"`{name}` must be SparseGradients; got {type(grad).__name__}")
    values = np.asarray(grad.values, dtype=np.float64)
    center = np.asarray(grad.center, dtype=np.int64)
    nbr = np.asarray(grad.neighbour, dtype=np.int64)
    if values.shape != (len(center), 3, lf.n_features) or nbr.shape != center.shape:
        raise ValueError(
            f"`{name}` values must have shape (n_pairs, 3, {lf.n_features}) matching center/neighbour; "
            f"got {values.shape}"
        )
    for arr, what in ((center, "center"), (nbr, "neighbour")):
        if len(arr) and (arr.min() < 0 or arr.max() >= lf.n_atoms):
            raise ValueError(f"`{name}.{what}` indices must lie in [0, {lf.n_atoms}); got {arr.min()}..{arr.max()}")
    struct = lf.structure_index
    if np.any(struct[center] != struct[nbr]):
        raise ValueError(f"`{name}` has pairs whose centre and neighbour are in different structures")
    order = np.argsort(center, kind="stable")
    start = np.searchsorted(center[order], np.arange(lf.n_atoms + 1)).astype(np.int64)
    return np.ascontiguousarray(values[order]), np.ascontiguousarray(nbr[order]), start


class LocalKernel(Kernel):
    """Structure kernel summed over atom pairs: ``K(A, B) = Σ_{i∈A} Σ_{j∈B} k(x_i, x_j)``.

    Parameters
    ----------
    base : VectorKernel
        The atom-pair kernel ``k``, e.g. ``Gaussian(sigma=2.0)`` or
        ``NormalizedDotProduct(zeta=2)``. Its hyperparameters appear here as
        ``base__<name>`` (``get_params``, ``set_params``, ``theta``).
    same_element_only : bool
        Only pairs of atoms of the same element contribute (qmllib's
        element screening).

    Examples
    --------
    >>> import numpy as np
    >>> from kernelpot.kernels.vector import Gaussian
    >>> X = (np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), [0, 2, 3], [1, 8, 1])
    >>> K = LocalKernel(Gaussian(sigma=1.0), same_element_only=True)(X)
    >>> K.shape
    (2, 2)
    """

    def __init__(self, base, *, same_element_only=True):
        self.base = base
        self.same_element_only = same_element_only

    # -- hyperparameters, delegated to ``base`` ----------------------------
    def get_params(self, deep=True):
        params = {"base": self.base, "same_element_only": self.same_element_only}
        if deep and hasattr(self.base, "get_params"):
            params.update(("base__" + k, v) for k, v in self.base.get_params().items())
        return params

    @property
    def hyperparameters(self):
        return [
            Hyperparameter("base__" + h.name, h.value_type, h.bounds, h.n_elements) for h in self.base.hyperparameters
        ]

    @property
    def theta(self):
        return self.base.theta

    @theta.setter
    def theta(self, theta):
        self.base.theta = theta

    @property
    def bounds(self):
        return self.base.bounds

    def _check_bounds_params(self):
        self.base._check_bounds_params()

    @property
    def requires_vector_input(self):
        return False

    def is_stationary(self):
        return False

    def __eq__(self, other):
        return (
            type(self) is type(other)
            and self.base == other.base
            and self.same_element_only == other.same_element_only
        )

    def __repr__(self):
        return f"LocalKernel({self.base!r}, same_element_only={self.same_element_only})"

    def _setup(self):
        if not isinstance(self.base, VectorKernel):
            raise TypeError(
                f"`base` must be a kernelpot vector kernel (Gaussian, Laplacian, ...); got {type(self.base).__name__}"
            )
        self.base._check_sigma()
        kind = self.base._kind
        return (kind, *self.base._parameters(), bool(self.same_element_only))

    # -- structure kernels -------------------------------------------------
    def structure_kernel(self, X, Y=None, *, eval_gradient=False):
        """Structure kernel ``K[a, b] = K(X_a, Y_b)`` and optionally ``dK/dlogσ``.

        Parameters
        ----------
        X, Y : AtomicFeatures, LocalFeatures or (features, offsets, numbers)
            Per-atom features; ``Y`` defaults to ``X`` (then one triangle is computed).
        eval_gradient : bool
            Also return the derivative with respect to ``log(base.sigma)``
            (zeros when ``base`` has no length scale).

        Returns
        -------
        K : ndarray of shape (n_structures_X, n_structures_Y)
        dK : ndarray of shape (n_structures_X, n_structures_Y), only if ``eval_gradient``
        """
        kind, p0, p1, p2, screen = self._setup()
        A = as_local_features(X, "X")
        symmetric = Y is None or Y is X
        B = A if symmetric else as_local_features(Y, "Y")
        if A.n_features != B.n_features:
            raise ValueError(f"`X` and `Y` must have the same n_features; got {A.n_features} and {B.n_features}")
        K = np.zeros((A.n_structures, B.n_structures))
        dK = np.zeros_like(K) if eval_gradient else _EMPTY
        if kind == _vk.LAPLACIAN:
            nA = np.einsum("ij,ij->i", A.features, A.features)
            nB = nA if symmetric else np.einsum("ij,ij->i", B.features, B.features)
            _lk.direct_structure_kernel(
                A.features, A.offsets, A.numbers, nA, B.features, B.offsets, B.numbers, nB,
                kind, p0, p1, p2, screen, symmetric, K, dK,
            )  # fmt: skip
        else:
            self._gram_assembly(A, B, symmetric, (kind, p0, p1, p2, screen), K, dK)
        return (K, dK) if eval_gradient else K

    def _gram_assembly(self, A, B, symmetric, args, K, dK):
        kind, p0, p1, p2, screen = args
        want_grad = dK.shape[0] == K.shape[0]
        groups_a = _ElementGroups(A, screen)
        groups_b = groups_a if symmetric else _ElementGroups(B, screen)
        blocks_a = _structure_blocks(A.offsets, _BLOCK_ATOMS)
        blocks_b = blocks_a if symmetric else _structure_blocks(B.offsets, _BLOCK_ATOMS)
        for ia, (a0, a1) in enumerate(blocks_a):
            rows_a = {z: groups_a.block(z, a0, a1) for z in groups_a.rows}
            for ib, (b0, b1) in enumerate(blocks_b):
                if symmetric and ib < ia:
                    continue
                upper = symmetric and ib == ia
                Kb = K[a0:a1, b0:b1]
                dKb = dK[a0:a1, b0:b1] if want_grad else _EMPTY
                for z, (xa, na, row_start, _) in rows_a.items():
                    if z not in groups_b.rows:
                        continue
                    xb, nb, col_start, col_struct = rows_a[z] if upper else groups_b.block(z, b0, b1)
                    if len(xa) == 0 or len(xb) == 0:
                        continue
                    G = xa @ xb.T
                    _lk.reduce_gram_block(
                        G, na, nb, row_start, col_start, col_struct, kind, p0, p1, p2, upper, Kb, dKb
                    )
                if symmetric:
                    _mirror_block(K, a0, a1, b0, b1, upper)
                    if want_grad:
                        _mirror_block(dK, a0, a1, b0, b1, upper)

    def __call__(self, X, Y=None, eval_gradient=False):
        """scikit-learn interface: ``K`` and, with ``eval_gradient``, ``dK/dθ`` of shape (n, n, n_free)."""
        if eval_gradient and Y is not None:
            raise ValueError("`eval_gradient=True` is only supported when `Y` is None")
        if not eval_gradient:
            return self.structure_kernel(X, Y)
        K, dK = self.structure_kernel(X, eval_gradient=True)
        if self.base.sigma_is_free:
            return K, dK[:, :, np.newaxis]
        return K, np.empty((K.shape[0], K.shape[1], 0))

    def diag(self, X):
        """``K(A, A)`` for every structure, shape (n_structures,)."""
        kind, p0, p1, p2, screen = self._setup()
        lf = as_local_features(X, "X")
        out = np.empty(lf.n_structures)
        n2 = np.einsum("ij,ij->i", lf.features, lf.features)
        _lk.structure_diagonal(lf.features, lf.offsets, lf.numbers, n2, kind, p0, p1, p2, screen, out)
        return out

    # -- gradient kernels --------------------------------------------------
    def energy_force(self, X, Y, gradients_Y):
        """Covariance of structure energies of ``X`` with atomic forces of ``Y``.

        Parameters
        ----------
        X : per-atom features of the energy structures (see :func:`as_local_features`)
        Y : per-atom features of the force structures
        gradients_Y : SparseGradients
            ``dY/dr`` over neighbour pairs of ``Y`` (per Å), global rows of ``Y``.

        Returns
        -------
        ndarray of shape (n_structures_X, 3 * n_atoms_Y)
            ``K[a, 3 m + β] = cov(E_a, F_{m,β}) = -∂K(X_a, Y_s)/∂r_{m,β}`` (units of k per Å).
        """
        kind, p0, p1, p2, screen = self._setup()
        A = as_local_features(X, "X")
        B = as_local_features(Y, "Y")
        values, nbr, start = _sorted_gradients(gradients_Y, B, "gradients_Y")
        nA = np.einsum("ij,ij->i", A.features, A.features)
        nB = np.einsum("ij,ij->i", B.features, B.features)
        K = np.zeros((A.n_structures, 3 * B.n_atoms))
        _lk.energy_force_kernel(
            A.features, A.offsets, A.numbers, nA, B.features, B.numbers, nB,
            values, nbr, start, kind, p0, p1, p2, screen, K,
        )  # fmt: skip
        return K

    def force_force(self, X, gradients_X, Y=None, gradients_Y=None):
        """Covariance of atomic forces of ``X`` with atomic forces of ``Y``.

        Parameters
        ----------
        X, Y : per-atom features (``Y`` defaults to ``X``)
        gradients_X, gradients_Y : SparseGradients
            Feature gradients (per Å); ``gradients_Y`` defaults to ``gradients_X``.

        Returns
        -------
        ndarray of shape (3 * n_atoms_X, 3 * n_atoms_Y)
            ``K[3 l + α, 3 m + β] = cov(F_{l,α}, F_{m,β}) = ∂²K/∂r_{l,α}∂r_{m,β}`` (units of k per Å²).
        """
        kind, p0, p1, p2, screen = self._setup()
        A = as_local_features(X, "X")
        if Y is None:
            B, gradients_Y = A, gradients_X
        else:
            B = as_local_features(Y, "Y")
            if gradients_Y is None:
                raise ValueError("`gradients_Y` is required when `Y` is given")
        vA, nbrA, startA = _sorted_gradients(gradients_X, A, "gradients_X")
        vB, nbrB, startB = (vA, nbrA, startA) if B is A else _sorted_gradients(gradients_Y, B, "gradients_Y")
        nA = np.einsum("ij,ij->i", A.features, A.features)
        nB = np.einsum("ij,ij->i", B.features, B.features)
        K = np.zeros((3 * A.n_atoms, 3 * B.n_atoms))
        _lk.force_force_kernel(
            A.features, A.offsets, A.numbers, nA, vA, nbrA, startA,
            B.features, B.numbers, nB, vB, nbrB, startB, kind, p0, p1, p2, screen, K,
        )  # fmt: skip
        return K


def _mirror_block(K, a0, a1, b0, b1, diagonal):
    """Copy the computed upper block ``K[a0:a1, b0:b1]`` to its lower-triangle place."""
    if diagonal:
        block = K[a0:a1, a0:a1]
        block += np.triu(block, 1).T
    else:
        K[b0:b1, a0:a1] = K[a0:a1, b0:b1].T
