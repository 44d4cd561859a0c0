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
from sklearn.base import clone
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel
from threadpoolctl import threadpool_limits

from kernelpot.descriptors.base import AtomicFeatures, SparseGradients
from kernelpot.kernels import _local_kernels as _lk
from kernelpot.kernels import _vector_kernels as _vk
from kernelpot.kernels.vector import VectorKernel

__all__ = ["LocalFeatures", "LocalKernel", "as_local_features"]

# Atoms per side of one Gram block: 2048² float64 = 32 MB at most.
_BLOCK_ATOMS = 2048
_EMPTY = np.zeros((0, 0))
# Largest structure (atoms) for which force-force blocks of a Gaussian kernel use
# dense per-structure gradients and BLAS: (n, 3n, n_features) floats per structure.
_DENSE_FORCE_MAX_ATOMS = 40


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
            self._gram_assembly(A, B, symmetric, screen, [(kind, p0, p1, p2, K, dK)])
        return (K, dK) if eval_gradient else K

    def structure_kernels(self, X, Y=None, *, sigmas):
        """Structure kernels for several length scales ``sigma`` of ``base`` in one pass.

        The Gram blocks of the atom features, the costly part, are computed
        once and shared by every ``sigma`` (as qmllib's ``get_local_kernels``
        does), so a hyperparameter scan costs little more than one kernel.

        Parameters
        ----------
        X, Y : AtomicFeatures, LocalFeatures or (features, offsets, numbers)
            Per-atom features; ``Y`` defaults to ``X`` (then one triangle is computed).
        sigmas : sequence of float
            Length scales (> 0, units of the features) replacing ``base.sigma``.

        Returns
        -------
        ndarray of shape (n_sigmas, n_structures_X, n_structures_Y)
            ``K[s]`` equals ``structure_kernel`` with ``base.sigma = sigmas[s]``.
        """
        if not getattr(self.base, "has_sigma", False):
            raise TypeError(f"`sigmas` need a base kernel with a length scale; got {type(self.base).__name__}")
        sigmas = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
        if sigmas.ndim != 1 or len(sigmas) == 0 or not np.all(np.isfinite(sigmas) & (sigmas > 0)):
            raise ValueError(f"`sigmas` must be a non-empty 1-D sequence of finite values > 0; got {sigmas!r}")
        kernels = [LocalKernel(clone(self.base).set_params(sigma=float(s)), same_element_only=self.same_element_only)
                   for s in sigmas]
        if self.base._kind == _vk.LAPLACIAN:
            return np.stack([kernel.structure_kernel(X, Y) for kernel in kernels])
        A = as_local_features(X, "X")
        symmetric = Y is None or Y is X
        B = A if symmetric else as_local_features(Y, "Y")
        if A.n_features != B.n_features:
            raise ValueError(f"`X` and `Y` must have the same n_features; got {A.n_features} and {B.n_features}")
        out = np.zeros((len(sigmas), A.n_structures, B.n_structures))
        targets = []
        for kernel, K in zip(kernels, out):
            kind, p0, p1, p2, _ = kernel._setup()
            targets.append((kind, p0, p1, p2, K, _EMPTY))
        self._gram_assembly(A, B, symmetric, bool(self.same_element_only), targets)
        return out

    def _gram_assembly(self, A, B, symmetric, screen, targets):
        """Fill every ``(kind, p0, p1, p2, K, dK)`` of ``targets`` from shared Gram blocks."""
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
                for z, (xa, na, row_start, _) in rows_a.items():
                    if z not in groups_b.rows:
                        continue
                    xb, nb, col_start, col_struct = rows_a[z] if upper else groups_b.block(z, b0, b1)
                    if len(xa) == 0 or len(xb) == 0:
                        continue
                    G = xa @ xb.T
                    for kind, p0, p1, p2, K, dK in targets:
                        dKb = dK[a0:a1, b0:b1] if dK.shape[0] == K.shape[0] else _EMPTY
                        _lk.reduce_gram_block(
                            G, na, nb, row_start, col_start, col_struct, kind, p0, p1, p2, upper, K[a0:a1, b0:b1], dKb
                        )
                if symmetric:
                    for *_, K, dK in targets:
                        _mirror_block(K, a0, a1, b0, b1, upper)
                        if dK.shape[0] == K.shape[0]:
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
        if kind == _vk.GAUSSIAN and max(_largest(A), _largest(B)) <= _DENSE_FORCE_MAX_ATOMS:
            # Many small products: threaded BLAS only adds synchronisation (40x slower on a busy machine).
            with threadpool_limits(limits=1):
                _DenseGradients(A, vA, nbrA, startA).gaussian_force_force(
                    _DenseGradients(B, vB, nbrB, startB), p0, screen, K
                )
            return K
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


def _largest(lf: LocalFeatures) -> int:
    return int(np.max(np.diff(lf.offsets)))


class _DenseGradients:
    """Feature gradients of each structure as a dense (n, 3 n, n_features) array (images summed).

    For small structures (molecules) this turns the force-force contraction into
    a few BLAS products per pair of structures instead of per pair of atoms.
    """

    def __init__(self, lf: LocalFeatures, values, nbr, start):
        self.lf = lf
        self.values, self.nbr, self.start = values, nbr, start
        self.center = np.repeat(np.arange(lf.n_atoms), np.diff(start))
        self._cache = {}

    def structure(self, s: int):
        """Dense gradients D (n, 3n, nf), features x (n, nf) and D_i x_i (n, 3n) of structure ``s``."""
        if s in self._cache:
            return self._cache[s]
        o0, o1 = int(self.lf.offsets[s]), int(self.lf.offsets[s + 1])
        n, nf = o1 - o0, self.lf.n_features
        pairs = slice(self.start[o0], self.start[o1])
        D = np.zeros((n, n, 3, nf))
        np.add.at(D, (self.center[pairs] - o0, self.nbr[pairs] - o0), self.values[pairs])
        D = D.reshape(n, 3 * n, nf)
        x = self.lf.features[o0:o1]
        out = (D, x, np.einsum("icf,if->ic", D, x), self.lf.numbers[o0:o1])
        if len(self._cache) < 4096:
            self._cache[s] = out
        return out

    def gaussian_force_force(self, other: _DenseGradients, p0: float, screen: bool, K: np.ndarray) -> None:
        """Fill ``K`` (3 n_atoms_A, 3 n_atoms_B) for ``k = exp(p0 |x - y|²)``, ``p0 = -1/(2σ²)``.

        ``∂²k/∂x∂y = k (I/σ² - d dᵀ/σ⁴)`` with ``d = x_i - y_j``, so per pair of structures
        ``K_ab = Σ_ij D_i [k_ij/σ²] D_jᵀ - Σ_ij (k_ij/σ⁴) (D_i d_ij)(D_j d_ij)ᵀ``.
        """
        inv_s2 = -2.0 * p0
        nf = self.lf.n_features
        for a in range(self.lf.n_structures):
            Da, xa, Pa, za = self.structure(a)
            na = len(xa)
            rows = slice(3 * int(self.lf.offsets[a]), 3 * int(self.lf.offsets[a + 1]))
            Da_by_row = Da.transpose(1, 0, 2).reshape(3 * na, na * nf)
            for b in range(other.lf.n_structures):
                Db, xb, Pb, zb = other.structure(b)
                nb = len(xb)
                d2 = np.einsum("if,if->i", xa, xa)[:, None] + np.einsum("jf,jf->j", xb, xb)[None, :] - 2 * xa @ xb.T
                k = np.exp(p0 * np.maximum(d2, 0.0))
                if screen:
                    k *= za[:, None] == zb[None, :]
                W = (k @ Db.reshape(nb, -1)).reshape(na, 3 * nb, nf)  # Σ_j k_ij D_j
                first = Da_by_row @ W.transpose(1, 0, 2).reshape(3 * nb, na * nf).T
                u = Pa[:, :, None] - (Da.reshape(-1, nf) @ xb.T).reshape(na, 3 * na, nb)  # D_i (x_i - y_j)
                v = (Db.reshape(-1, nf) @ xa.T).reshape(nb, 3 * nb, na) - Pb[:, :, None]  # D_j (x_i - y_j)
                u = (u * k[:, None, :]).transpose(1, 0, 2).reshape(3 * na, na * nb)
                v = v.transpose(1, 2, 0).reshape(3 * nb, na * nb)
                cols = slice(3 * int(other.lf.offsets[b]), 3 * int(other.lf.offsets[b + 1]))
                K[rows, cols] = inv_s2 * first - inv_s2 * inv_s2 * (u @ v.T)
