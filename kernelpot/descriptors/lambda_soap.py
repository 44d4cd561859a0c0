"""λ-SOAP: equivariant (symmetry-adapted) SOAP features of order λ.

Definition
----------
With ``c^a_{n l m}`` the expansion of the species-``a`` neighbour density of
an environment on radial functions ``g_n`` and real spherical harmonics
``Y_{lm}`` (exactly the coefficients of kernelpot's SOAP, see
:mod:`kernelpot.descriptors._expansion`), the λ-SOAP features are the
Clebsch–Gordan products

.. math::

    X^{λ}_{μ}(a n_1 l_1; b n_2 l_2) = \\sum_{m_1 m_2}
        C^{λ μ}_{l_1 m_1, l_2 m_2}\\, c^a_{n_1 l_1 m_1} c^b_{n_2 l_2 m_2},

with the real-basis coefficients of :mod:`kernelpot.symmetry.clebsch_gordan`,
in the real harmonics ``μ = -λ..λ`` of :mod:`kernelpot.symmetry.wigner`.
Under a rotation ``R`` of a structure every environment's block transforms
as ``X(R·A) = D^λ(R) @ X(A)`` (real Wigner matrix of R); the features are
invariant under translations and follow permutations of like atoms.

Conventions (as in SA-GPR / TENSOAP)
------------------------------------
* Only ``l1 + l2 + λ`` even is kept: these products are *proper* tensors,
  ``X(-A) = (-1)^λ X(A)`` under inversion (the ``σ = +1`` sector of
  Grisafi et al.; odd sums would be pseudo-tensors).
* Swapping the two factors maps a feature onto itself (the CG symmetry
  sign ``(-1)^(l1+l2-λ)`` is +1 here), so each unordered pair is kept once:
  species pairs ``a <= b`` (in the order of ``species``), and for ``a == b``
  only ``(l1, n1) <= (l2, n2)`` lexicographically. No √2 weights are added
  to the off-diagonal pairs (as in dscribe's SOAP).
* ``normalize=True`` (default, as in SA-GPR) divides each environment's
  block by its Frobenius norm over ``μ`` and features, which is rotation
  invariant, so equivariance is kept. A block that vanishes by symmetry
  (an atom of diamond at λ = 1, an isolated atom at λ > 0) is computed as
  round-off of size ~1e-16 whose direction is noise, so a block is set to
  zero, with zero gradients, when its norm is at most
  ``ZERO_BLOCK_TOLERANCE = 1e-6`` times ``s = Σ_{a n l m} (c^a_{nlm})²``,
  the environment's squared coefficient norm (an upper bound of the block
  norm, so the threshold scales with σ, r_cut and the density). An
  environment then counts as symmetric when it is within roughly 1e-6 Å
  of a symmetric one (diamond Si, r_cut = 4 Å: the λ = 1 block grows as
  0.16 s per Å of displacement); above that the normalised block is the
  well-defined direction of the distortion.
* λ = 0 reproduces the SOAP power spectrum: ``X^0(a n1 l; b n2 l) =
  (-1)^l / sqrt(2l + 1) Σ_m c^a_{n1 l m} c^b_{n2 l m}``, i.e. dscribe's
  ``p`` times ``(-1)^l / (π √8)``, in a different feature order.

Feature order: blocks ``(a, b, l1, l2)`` in lexicographic order, inside
each block ``(n1, n2)`` row-major; :meth:`LambdaSOAP.feature_labels` lists
them.

References
----------
A. Grisafi, D. M. Wilkins, G. Csányi, M. Ceriotti, "Symmetry-adapted machine
learning for tensorial properties of atomistic systems", Phys. Rev. Lett.
120, 036002 (2018), doi:10.1103/PhysRevLett.120.036002.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ..structures.neighbours import MAX_NEIGHBOURS, check_distinct_positions, check_max_neighbours, neighbour_list
from ..structures.packing import as_atoms_list, pack, structure_chunks, sub_packing
from ..symmetry.clebsch_gordan import real_clebsch_gordan_sparse
from . import _expansion
from . import _lambda_soap_kernels as _k
from .base import AtomicFeatures, Descriptor, SparseGradients, species_numbers

__all__ = ["LambdaSOAP"]

# Structures are processed in chunks of about this many atoms, so that neighbour
# lists, expansion coefficients and their pair gradients stay small.
_CHUNK_ATOMS = 2048
#: With ``normalize``, a block whose norm is at most this times the environment's
#: squared coefficient norm is zero (it vanishes by symmetry; module docstring).
ZERO_BLOCK_TOLERANCE = 1e-6


class LambdaSOAP(Descriptor):
    """Equivariant λ-SOAP features of every atomic environment.

    Parameters
    ----------
    species : sequence of int or str
        Chemical species (atomic numbers or symbols) that may occur; each
        gets its own density channel, in increasing atomic number (order and
        repeats do not matter). Every atom of the input must be one.
    r_cut : float
        Cutoff radius of the radial basis, in Å (> 1 Å for ``rbf="gto"``).
        Neighbours are searched within ``r_cut + σ sqrt(-2 ln 10⁻³)``, as in
        SOAP and dscribe.
    n_max : int
        Number of radial basis functions, >= 1.
    l_max : int
        Largest degree of the density expansion, >= 0.
    sigma : float, default=1.0
        Width of the atomic Gaussians, in Å.
    rbf : {"gto", "polynomial"}, default="gto"
        Radial basis (as in SOAP).
    periodic : bool, default=False
        As in SOAP: a direction is periodic only if ``periodic`` is True and
        the structure's ``pbc`` is True along it. With False every structure
        is a finite cluster and its cell is ignored (so molecules read with
        ``pbc=True`` and a zero cell, as in the TENSOAP files, are accepted).
    lambda_ : int, default=1
        Angular order λ of the features, ``0 <= λ <= 2 l_max``; the block of
        each environment has ``2λ + 1`` components.
    normalize : bool, default=True
        Divide each environment's block by its Frobenius norm (as SA-GPR
        does; rotation invariant, so equivariance is kept). Blocks that
        vanish by symmetry stay zero (module docstring,
        :data:`ZERO_BLOCK_TOLERANCE`).
    max_neighbours : int, default=10000
        Largest number of neighbours (periodic images included) of one atom
        within the cutoff. A structure with more (a 0.1 Å periodic cell, a
        cell in Bohr read as Å) is refused with a ``ValueError`` naming the
        count and the cell instead of running for hours; see
        :data:`kernelpot.structures.neighbours.MAX_NEIGHBOURS`.

    Attributes
    ----------
    n_features : int
        Length of the last axis of a feature block.

    Notes
    -----
    Memory: features take ``8 (2λ+1) n_features`` bytes per atom and
    gradients that times 3 per neighbour pair (e.g. 1,000 Zundel cations,
    n_max=8, l_max=6, λ=2: 0.59 GB of features, 12 GB of gradients); pass
    structures in batches when gradients are needed for large sets.

    Examples
    --------
    >>> from ase import Atoms
    >>> water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    >>> descriptor = LambdaSOAP(["H", "O"], r_cut=3.0, n_max=2, l_max=2, lambda_=1)
    >>> descriptor.transform(water).shape
    (3, 3, 32)
    """

    def __init__(self, species, r_cut, n_max, l_max, sigma=1.0, rbf="gto", periodic=False,
                 lambda_=1, normalize=True, max_neighbours=MAX_NEIGHBOURS):
        self.species = species
        self.r_cut = r_cut
        self.n_max = n_max
        self.l_max = l_max
        self.sigma = sigma
        self.rbf = rbf
        self.periodic = periodic
        self.lambda_ = lambda_
        self.normalize = normalize
        self.max_neighbours = max_neighbours

    @property
    def n_features(self) -> int:
        """Number of features per component ``μ`` (last axis of :meth:`transform`)."""
        return len(self._layout()["feature_n1"])

    def feature_labels(self) -> np.ndarray:
        """What each feature couples.

        Returns
        -------
        ndarray of shape (n_features, 6), int64
            Columns ``(Z1, n1, l1, Z2, n2, l2)``: atomic numbers, radial
            and angular indices of the two coupled density coefficients.
        """
        layout = self._layout()
        numbers = np.asarray(self._species_numbers())
        return np.stack(
            [numbers[layout["feature_a"]], layout["feature_n1"], layout["feature_l1"],
             numbers[layout["feature_b"]], layout["feature_n2"], layout["feature_l2"]], axis=1
        )

    def transform(self, X, *, gradients: bool = False):
        """λ-SOAP features (and optionally their position gradients).

        Parameters
        ----------
        X : ase.Atoms or list of ase.Atoms
            Structures; positions (and cells if ``periodic``) in Å.
        gradients : bool, default=False
            Also return the derivatives with respect to atomic positions.

        Returns
        -------
        features : AtomicFeatures of shape (n_atoms_total, 2λ+1, n_features), float64
            Row ``i`` is atom ``i`` of the input (structures concatenated),
            axis 1 is ``μ = -λ..λ``. Units: squared density coefficients
            (Å³: unnormalised Gaussians on an orthonormal basis), or
            dimensionless with ``normalize``.
        gradients : SparseGradients, only if ``gradients=True``
            ``values`` of shape (n_pairs, 3, 2λ+1, n_features), per Å, with
            the pair layout of :mod:`kernelpot.descriptors.base`: pairs sorted
            by (center, neighbour), the self pair holding the total
            derivative, periodic images of a neighbour summed (no ``vectors``).

        Raises
        ------
        ValueError
            Invalid hyperparameters (each named in the message); an atom whose
            species is not in ``species``; non-finite positions; a periodic
            cell of zero volume (with ``periodic=True``); two atoms at one
            position (closer than 1e-8 Å); an atom with more than
            ``max_neighbours`` neighbours.
        TypeError
            A hyperparameter or ``gradients`` of the wrong type.
        """
        if not isinstance(gradients, (bool, np.bool_)):
            raise TypeError(f"`gradients` must be a bool; got {gradients!r}")
        params = self._validate()
        packed = self._pack(X)
        unknown = sorted(set(np.unique(packed.numbers).tolist()) - set(params["species"]))
        if unknown:
            structures = np.unique(packed.structure_index[np.isin(packed.numbers, unknown)])
            raise ValueError(
                f"species {unknown} in structure {int(structures[0])} are not in "
                f"species={list(params['species'])}"
            )
        layout = self._layout()
        args = _kernel_arguments(layout)
        n_features = int(layout["block_start"][-1])
        features = np.zeros((packed.n_atoms, 2 * params["lam"] + 1, n_features))
        norms = np.ones(packed.n_atoms)
        # Chunks of structures bound the memory of neighbour lists and expansions.
        chunks = [
            sub_packing(packed, first, last) for first, last in structure_chunks(packed.offsets, _CHUNK_ATOMS)
        ]
        plans = [self._plan(sub, params, gradients) for sub, _, _ in chunks]
        values = center = neighbour = None
        if gradients:
            n_rows = 0
            for plan in plans:
                plan["row_start"] = n_rows
                n_rows += len(plan["keys"])
            values = np.zeros((n_rows, 3) + features.shape[1:])
            center = np.empty(n_rows, dtype=np.int64)
            neighbour = np.empty(n_rows, dtype=np.int64)
        for (sub, start, stop), plan in zip(chunks, plans):
            expansion = self._expand(sub, plan["neighbours"], params, gradients)
            # Radial index last: the kernels' inner loops then read contiguous memory.
            coefficients = np.ascontiguousarray(np.swapaxes(expansion.coefficients, 2, 3))
            _k.lambda_soap_features(coefficients, *args, features[start:stop])
            if self.normalize:
                scales = np.einsum("ialn,ialn->i", coefficients, coefficients)
                _k.normalize_features(features[start:stop], scales, ZERO_BLOCK_TOLERANCE, norms[start:stop])
            if gradients:
                rows = slice(plan["row_start"], plan["row_start"] + len(plan["keys"]))
                center[rows] = plan["keys"] // sub.n_atoms + start
                neighbour[rows] = plan["keys"] % sub.n_atoms + start
                self._gradients_chunk(expansion, coefficients, features[start:stop],
                                      norms[start:stop], plan, args, values[rows])
        result = AtomicFeatures(features, packed.offsets, packed.numbers)
        if not gradients:
            return result
        return result, SparseGradients(values, center, neighbour)

    def _plan(self, sub, params, gradients):
        """Neighbour list of a chunk and, for gradients, its output rows (keys ``i * n + j``, local)."""
        cutoff = params["r_cut"] + _expansion.cutoff_padding(params["sigma"])
        plan = {"neighbours": neighbour_list(sub, cutoff, max_neighbours=params["max_neighbours"]),
                "row_start": 0, "keys": ()}
        check_distinct_positions(sub, plan["neighbours"])
        if gradients:
            n = sub.n_atoms
            self_keys = np.arange(n, dtype=np.int64) * (n + 1)
            pair_keys = plan["neighbours"].center * n + plan["neighbours"].neighbour
            plan["keys"] = np.unique(np.concatenate([pair_keys, self_keys]))
        return plan

    def _gradients_chunk(self, expansion, coefficients, features, norms, plan, args, values):
        """Fill ``values`` (rows of one chunk, sorted by (center, neighbour)) for that chunk."""
        n_atoms = coefficients.shape[0]
        keys = plan["keys"]
        pair_center = np.asarray(expansion.pair_center, dtype=np.int64)
        pair_neighbour = np.asarray(expansion.pair_neighbour, dtype=np.int64)
        pair_slot = np.searchsorted(keys, pair_center * n_atoms + pair_neighbour)
        self_slot = np.searchsorted(keys, np.arange(n_atoms, dtype=np.int64) * (n_atoms + 1))
        out_offsets = np.searchsorted(keys // n_atoms, np.arange(n_atoms + 1))
        pair_order = np.argsort(pair_center, kind="stable")
        pair_offsets = np.searchsorted(pair_center[pair_order], np.arange(n_atoms + 1))
        _k.lambda_soap_gradients(
            coefficients, np.ascontiguousarray(np.swapaxes(expansion.pair_gradients, 2, 3)),
            np.asarray(expansion.pair_species, dtype=np.int64), pair_neighbour, pair_order,
            pair_offsets, pair_slot, self_slot, out_offsets, *args, values,
        )
        if self.normalize:
            _k.normalize_gradients(features, norms, out_offsets, values)

    def _pack(self, X):
        if self.periodic:
            return pack(X)
        # Cells are ignored, so a molecule whose file says pbc=True with a zero cell
        # (e.g. the TENSOAP sets) is accepted; fresh Atoms leave the caller's untouched.
        return pack([Atoms(numbers=a.numbers, positions=a.positions) for a in as_atoms_list(X)])

    def _density_coefficients(self, X) -> np.ndarray:
        """Density expansion ``c[i, a, n, lm]`` of every atom of ``X`` (for tests and checks)."""
        params = self._validate()
        packed = self._pack(X)
        neighbours = self._plan(packed, params, False)["neighbours"]
        return self._expand(packed, neighbours, params, False).coefficients

    def _expand(self, packed, neighbours, params, gradients):
        """The only call into the density expansion (kept in one place so it can be swapped).

        ``neighbours`` must be built with cutoff ``r_cut + cutoff_padding(sigma)``
        exactly, so that the expansion's pairs are those of ``neighbours``.
        """
        return _expansion.expand_density(
            packed, neighbours, np.asarray(params["species"], dtype=np.int64), params["n_max"],
            params["l_max"], params["sigma"], params["rbf"], params["r_cut"], gradients=gradients,
        )

    def _species_numbers(self):
        """Sorted distinct atomic numbers of ``species`` (order and repeats do not matter)."""
        return species_numbers(self.species)

    def _validate(self) -> dict:
        species = self._species_numbers().tolist()
        r_cut = _positive_number(self.r_cut, "r_cut", "Å")
        sigma = _positive_number(self.sigma, "sigma", "Å")
        n_max = _integer(self.n_max, "n_max", 1)
        l_max = _integer(self.l_max, "l_max", 0)
        lam = _integer(self.lambda_, "lambda_", 0)
        if lam > 2 * l_max:
            raise ValueError(
                f"`lambda_` must be <= 2 * l_max = {2 * l_max} (no pair l1, l2 <= l_max "
                f"couples to it); got {lam}"
            )
        if self.rbf not in ("gto", "polynomial"):
            raise ValueError(f"`rbf` must be one of 'gto', 'polynomial'; got {self.rbf!r}")
        if self.rbf == "gto" and r_cut <= 1.0:
            raise ValueError(
                f"`r_cut` must be > 1 Å with rbf='gto' (the GTO decay radii span 1 Å to r_cut); "
                f"got {r_cut}"
            )
        for name in ("periodic", "normalize"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"`{name}` must be a bool; got {getattr(self, name)!r}")
        return dict(species=species, r_cut=r_cut, sigma=sigma, n_max=n_max, l_max=l_max,
                    max_neighbours=check_max_neighbours(self.max_neighbours),
                    lam=lam, rbf=self.rbf)

    def _layout(self) -> dict:
        params = self._validate()
        return _feature_layout(len(params["species"]), params["n_max"], params["l_max"], params["lam"])


def _positive_number(value, name: str, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a number ({unit}); got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a finite number > 0 {unit}; got {value}")
    return float(value)


def _integer(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer; got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}")
    return int(value)


def _feature_layout(n_species: int, n_max: int, l_max: int, lam: int) -> dict:
    """Blocks ``(a, b, l1, l2)``, their features ``(n1, n2)`` and sparse CG entries.

    See the module docstring for which couplings are kept and in what order.
    """
    blocks, cg_parts, features = [], [], []
    for a in range(n_species):
        for b in range(a, n_species):
            for l1 in range(l_max + 1):
                for l2 in range(l_max + 1):
                    if not abs(l1 - l2) <= lam <= l1 + l2 or (l1 + l2 + lam) % 2:
                        continue
                    if a == b and l1 > l2:
                        continue
                    pairs = [(n1, n2) for n1 in range(n_max) for n2 in range(n_max)
                             if not (a == b and l1 == l2 and n1 > n2)]
                    blocks.append((a, b, l1, l2, len(features)))
                    features.extend((a, n1, l1, b, n2, l2) for n1, n2 in pairs)
                    m1, m2, mu, values = real_clebsch_gordan_sparse(l1, l2, lam)
                    # Positions m + l become columns l*l + l + m = l*l + position.
                    cg_parts.append((m1 + l1 * l1, m2 + l2 * l2, mu, values))
    feature_table = np.array(features, dtype=np.int64).reshape(-1, 6)
    block_start = np.array([blk[4] for blk in blocks] + [len(features)], dtype=np.int64)
    groups = [_group_entries(*part) for part in cg_parts]
    group_counts = [len(group[0]) for group in groups]
    entry_offsets = np.cumsum([0] + [len(group[2]) for group in groups])
    return {
        "block_a": np.array([blk[0] for blk in blocks], dtype=np.int64),
        "block_b": np.array([blk[1] for blk in blocks], dtype=np.int64),
        "block_start": block_start,
        "block_triangular": np.array([blk[0] == blk[1] and blk[2] == blk[3] for blk in blocks],
                                     dtype=np.bool_),
        "block_group_start": np.concatenate([[0], np.cumsum(group_counts)]).astype(np.int64),
        "feature_a": feature_table[:, 0].copy(),
        "feature_n1": feature_table[:, 1].copy(),
        "feature_l1": feature_table[:, 2].copy(),
        "feature_b": feature_table[:, 3].copy(),
        "feature_n2": feature_table[:, 4].copy(),
        "feature_l2": feature_table[:, 5].copy(),
        "group_mu": np.concatenate([g[0] for g in groups]).astype(np.int64),
        "group_lm1": np.concatenate([g[1] for g in groups]).astype(np.int64),
        "group_entry_start": np.concatenate(
            [g[4][:-1] + offset for g, offset in zip(groups, entry_offsets)] + [entry_offsets[-1:]]
        ).astype(np.int64),
        "entry_lm2": np.concatenate([g[2] for g in groups]).astype(np.int64),
        "entry_values": np.concatenate([g[3] for g in groups]).astype(np.float64),
    }


def _group_entries(lm1, lm2, mu, values):
    """Group sparse CG entries (sorted by μ, then lm1) by ``(μ, lm1)``.

    Returns ``group_mu``, ``group_lm1``, ``entry_lm2``, ``entry_values`` and
    ``group_start`` (n_groups + 1, local entry offsets).
    """
    new_group = np.ones(len(mu), dtype=bool)
    new_group[1:] = (mu[1:] != mu[:-1]) | (lm1[1:] != lm1[:-1])
    first = np.flatnonzero(new_group)
    group_start = np.append(first, len(mu)).astype(np.int64)
    return mu[first], lm1[first], lm2, values, group_start


def _kernel_arguments(layout: dict) -> tuple:
    """Layout arrays in the order the compiled kernels take them (built in one place)."""
    return tuple(
        layout[name]
        for name in ("block_a", "block_b", "block_start", "block_triangular", "block_group_start",
                     "group_mu", "group_lm1", "group_entry_start", "entry_lm2", "entry_values")
    )
