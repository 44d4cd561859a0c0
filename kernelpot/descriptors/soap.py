"""Smooth Overlap of Atomic Positions (SOAP) power spectrum, equal to dscribe 2.1's.

The atomic density of each species around an atom i,
``ρ_i^Z(r) = Σ_{j ∈ Z} exp(-|r - r_ij|² / (2σ²))`` (the atom i itself
included, images of periodic cells included, neighbours within
``r_cut + σ sqrt(-2 ln 10⁻³)`` as in dscribe), is expanded on radial functions
``g_nl`` (GTO or polynomial, :mod:`._radial`) times real spherical harmonics
(:mod:`kernelpot.symmetry.harmonics`), ``c^Z_nlm(i)``, and the rotation invariant
partial power spectrum

    p^{Z Z'}_{n n' l}(i) = π sqrt(8 / (2l + 1)) Σ_m c^Z_nlm(i) c^{Z'}_n'lm(i)

is kept for ``Z <= Z'`` (and ``n' >= n`` when ``Z = Z'``), in dscribe's order
(species pair, then l, then n, n'; see :mod:`._soap_kernels`). The
prefactor is dscribe's (the square root of the l-dependent normalisation of
the SOAP kernel in the erratum of Bartók et al. 2013).

GAP-style smooth cutoff (``cutoff_transition_width=w``): as in QUIP/GAP's
``soap`` descriptor, each neighbour's Gaussian is multiplied by

    f_c(r) = 1                                    r <= r_cut - w
           = (1 + cos(π (r - r_cut + w) / w)) / 2  r_cut - w < r < r_cut
           = 0                                    r >= r_cut

(GAP's ``coordination_function``), atoms at ``r >= r_cut`` are excluded (no
padding), and the centre's own Gaussian is weighted by ``central_weight``
(GAP's ``central_weight``, not tapered; with the default 1.0 the centre
counts like in dscribe and in GAP). The features and their gradients are
then smooth (C¹) as a neighbour crosses ``r_cut``, which dscribe's hard
cutoff is not. The radial basis and normalisation stay dscribe's unless
``rbf="gap"`` (GAP's basis and weighting: then normalised rows are GAP's).

References
----------
A. P. Bartók, R. Kondor, G. Csányi, "On representing chemical environments",
Phys. Rev. B 87, 184115 (2013), doi:10.1103/PhysRevB.87.184115.
L. Himanen et al., "DScribe: Library of descriptors for machine learning in
materials science", Comput. Phys. Commun. 247, 106949 (2020),
doi:10.1016/j.cpc.2019.106949.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from ..structures.neighbours import MAX_NEIGHBOURS, check_distinct_positions, check_max_neighbours, neighbour_list
from ..structures.packing import PackedStructures, as_atoms_list, pack, structure_chunks, sub_packing
from ._expansion import restrict_neighbours, run_over_centers, species_indices
from ._pair_derivatives import sum_pair_derivatives
from ._radial import cutoff_padding, gap_feature_weights, make_radial_basis
from ._soap_kernels import feature_block_offsets, power_spectrum_kernel, soap_gradients_kernel
from ._soap_vjp_kernels import soap_vjp_kernel
from .base import AtomicFeatures, Descriptor, SparseGradients, species_numbers

__all__ = ["SOAP"]

_RBFS = ("gto", "polynomial", "gap")
# Structures are processed in chunks of about this many atoms so that
# neighbour lists and expansion coefficients stay small on large inputs.
_CHUNK_ATOMS = 2048
_NO_TRANSITION = 0.0  # transition width passed to the kernels: dscribe's unweighted density


class SOAP(Descriptor):
    """SOAP power spectrum per atom, number for number equal to dscribe 2.1's ``SOAP``.

    Parameters
    ----------
    species : sequence of str or int
        Every chemical species that may occur, as symbols or atomic numbers
        (order and duplicates do not matter; features follow increasing
        atomic number, like dscribe).
    r_cut : float
        Cutoff radius in Å (> 0; > 1 Å for ``rbf="gto"``, whose primitive
        decay radii run from 1 Å to ``r_cut``). Neighbours are searched within
        ``r_cut + σ sqrt(-2 ln 10⁻³)`` so that Gaussians centred just outside
        still contribute, as in dscribe.
    n_max : int
        Number of radial basis functions (≥ 1).
    l_max : int
        Maximum degree of the spherical harmonics (≥ 0).
    sigma : float, default=1.0
        Width σ of the atomic Gaussians in Å (> 0).
    rbf : {"gto", "polynomial", "gap"}, default="gto"
        Radial basis: orthonormalised Gaussian type orbitals (analytic
        integrals) or polynomials ``(r_cut - r)^(n+2)`` (100-point quadrature
        on [0, r_cut], as in dscribe), or GAP's: QUIP's default ``soap``
        radial basis (equispaced Gaussians, :func:`._radial.gap_basis`) and
        its power-spectrum weighting (√2 on pairs of different channels),
        so that, with ``cutoff_transition_width`` set, normalised rows equal
        quippy's ``soap`` (up to the order of the features).
    periodic : bool, default=False
        Whether to honour periodic boundary conditions. As in dscribe, a
        direction is periodic only if ``periodic`` is True *and* the
        structure's ``pbc`` is True along it: ``periodic=False`` treats every
        structure as a finite cluster whatever its ``pbc``, and
        ``periodic=True`` on a structure with ``pbc=False`` computes it as a
        cluster. (dscribe additionally refuses ``periodic=True`` for a
        structure without a cell of non-zero volume even when its ``pbc`` is
        False; kernelpot computes such a structure as a cluster, so
        molecules and crystals can be mixed in one call.)
    cutoff_transition_width : float or None, default=None
        None: dscribe's density (neighbours unweighted, searched within
        ``r_cut`` plus the Gaussian padding), identical to dscribe. A width
        ``w`` in Å with ``0 < w <= r_cut``: GAP's smooth cutoff, every
        neighbour weighted by ``f_c(r)`` decaying from 1 at ``r_cut - w`` to 0
        at ``r_cut`` (module docstring), atoms beyond ``r_cut`` excluded.
    central_weight : float, default=1.0
        Weight (>= 0) of the centre's own Gaussian in its density (GAP's
        ``central_weight``); 1.0 is dscribe's convention, 0 leaves the
        centre out.
    max_neighbours : int, default=10000
        Largest number of neighbours (periodic images included) of one atom
        within the cutoff. A structure with more (a 0.1 Å periodic cell, a
        cell in Bohr read as Å) is refused with a ``ValueError`` naming the
        count and the cell instead of running for hours; see
        :data:`kernelpot.structures.neighbours.MAX_NEIGHBOURS`.

    Attributes
    ----------
    n_features : int
        Length of a feature row.

    Notes
    -----
    Atom positions exactly ``r_cut + padding`` away are excluded (dscribe
    includes them); the difference is a Gaussian tail of relative size 1e-3
    times a radial function that has long decayed.

    Examples
    --------
    >>> from ase.build import molecule
    >>> soap = SOAP(species=["H", "O"], r_cut=4.0, n_max=4, l_max=3, sigma=0.5)
    >>> X = soap.transform(molecule("H2O"))
    >>> X.shape == (3, soap.n_features)
    True
    >>> X, G = soap.transform(molecule("H2O"), gradients=True)
    >>> G.values.shape == (9, 3, soap.n_features)  # 3 centres x 3 atoms
    True

    GAP's smooth cutoff: neighbours fade out between 3.5 and 4 Å.

    >>> gap = SOAP(["H", "O"], r_cut=4.0, n_max=4, l_max=3, sigma=0.5, cutoff_transition_width=0.5)
    >>> gap.transform(molecule("H2O")).shape == X.shape
    True
    """

    def __init__(
        self, species, r_cut, n_max, l_max, sigma=1.0, rbf="gto", periodic=False,
        cutoff_transition_width=None, central_weight=1.0, max_neighbours=MAX_NEIGHBOURS,
    ):
        self.species = species
        self.r_cut = r_cut
        self.n_max = n_max
        self.l_max = l_max
        self.sigma = sigma
        self.rbf = rbf
        self.periodic = periodic
        self.cutoff_transition_width = cutoff_transition_width
        self.central_weight = central_weight
        self.max_neighbours = max_neighbours

    # ------------------------------------------------------------------ validation
    def _species_numbers(self):
        """Sorted distinct atomic numbers of ``species`` (order and repeats do not matter)."""
        return species_numbers(self.species)

    def _check_parameters(self) -> np.ndarray:
        """Validate every hyperparameter; return the sorted atomic numbers."""
        species = self._species_numbers()
        if self.rbf not in _RBFS:
            raise ValueError(f"`rbf` must be one of {list(_RBFS)}; got {self.rbf!r}")
        for name in ("r_cut", "sigma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"`{name}` must be a real number in Å; got {value!r}")
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"`{name}` must be finite and > 0 Å; got {value}")
        if self.rbf == "gto" and self.r_cut <= 1.0:
            raise ValueError(
                f"`r_cut` must be > 1 Å with rbf='gto' (the GTO decay radii span 1 Å to r_cut); "
                f"got {self.r_cut}"
            )
        for name, low in (("n_max", 1), ("l_max", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"`{name}` must be an integer; got {value!r}")
            if value < low:
                raise ValueError(f"`{name}` must be >= {low}; got {value}")
        if not isinstance(self.periodic, (bool, np.bool_)):
            raise TypeError(f"`periodic` must be True or False; got {self.periodic!r}")
        self._check_gap_weights()
        check_max_neighbours(self.max_neighbours)
        return species

    def _check_gap_weights(self) -> None:
        width = self.cutoff_transition_width
        if width is not None:
            if isinstance(width, bool) or not isinstance(width, numbers.Real):
                raise TypeError(f"`cutoff_transition_width` must be None or a real number in Å; got {width!r}")
            if not (np.isfinite(width) and 0 < width <= self.r_cut):
                raise ValueError(
                    f"`cutoff_transition_width` must be > 0 Å and <= r_cut = {self.r_cut} Å; got {width}"
                )
        weight = self.central_weight
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
            raise TypeError(f"`central_weight` must be a real number; got {weight!r}")
        if not (np.isfinite(weight) and weight >= 0):
            raise ValueError(f"`central_weight` must be finite and >= 0; got {weight}")

    def _search_cutoff(self) -> float:
        """Neighbour-search radius (Å): r_cut (GAP cutoff) or r_cut + Gaussian padding (dscribe)."""
        if self.cutoff_transition_width is not None:
            return float(self.r_cut)
        return float(self.r_cut) + cutoff_padding(float(self.sigma))

    def _weights(self, basis) -> tuple:
        """Centre density, r_cut and transition width for the kernels (after ``_tables``)."""
        self_density = basis.self_density
        if self.central_weight != 1.0:
            self_density = self_density * float(self.central_weight)
        width = self.cutoff_transition_width
        return self_density, float(self.r_cut), _NO_TRANSITION if width is None else float(width)

    def _gap_weighting(self, n_species, features, values=None) -> None:
        """rbf="gap": GAP's √2 on pairs of different channels (:func:`._radial.gap_feature_weights`), in place."""
        if self.rbf != "gap":
            return
        weights = gap_feature_weights(n_species, int(self.n_max), int(self.l_max))
        features *= weights
        if values is not None:
            values *= weights

    def feature_blocks(self) -> np.ndarray:
        """First column of each species-pair block of the features, ascending; ndarray (n_blocks,) of int64.

        In a row, the block of species pair (a, b) is all zero exactly when a or b has no atom within the
        neighbour-search radius of the centre (the centre counts, unless ``central_weight=0``), and then so are
        its position derivatives. Reverse-mode callers (:class:`~kernelpot.models.gap.predictor.GAPPredictor`) skip such
        blocks: in a dilute electrolyte most centres see only H and O, and their dot products with the sparse
        points run over a quarter of the features.
        """
        offsets, _ = feature_block_offsets(len(self._check_parameters()), int(self.n_max), int(self.l_max))
        return np.unique(offsets)

    @property
    def n_features(self) -> int:
        """Number of features, ``(S n_max)(S n_max + 1)/2 (l_max + 1)`` for S species."""
        n_species = len(self._check_parameters())
        n_radial = n_species * self.n_max
        return n_radial * (n_radial + 1) // 2 * (self.l_max + 1)

    def _pack(self, X, species: np.ndarray) -> PackedStructures:
        if not self.periodic and not isinstance(X, PackedStructures):
            # Clusters: drop pbc before packing, so that a cell pack() would
            # reject as periodic (e.g. all zero) does not matter, as in dscribe.
            structures = as_atoms_list(X)
            X = [_without_pbc(atoms) if np.any(atoms.pbc) else atoms for atoms in structures]
        packed = pack(X)
        unknown = ~np.isin(packed.numbers, species)
        if unknown.any():
            structure_index = packed.structure_index
            first = int(structure_index[np.argmax(unknown)])
            bad = sorted(set(packed.numbers[unknown].tolist()))
            in_structures = sorted(set(structure_index[unknown].tolist()))
            raise ValueError(
                f"species {bad} in structure {first} (structures {in_structures[:10]}"
                f"{'...' if len(in_structures) > 10 else ''}) are not in "
                f"species={species.tolist()}"
            )
        if not self.periodic:
            packed = dataclasses.replace(packed, pbc=np.zeros_like(packed.pbc))
        return packed

    # ------------------------------------------------------------------ transform
    def transform(self, X, *, gradients: bool = False):
        """SOAP features (and their position gradients) of every atom.

        Parameters
        ----------
        X : ase.Atoms or sequence of ase.Atoms
            Structures, positions in Å.
        gradients : bool, default=False
            Also return analytic position gradients.

        Returns
        -------
        features : AtomicFeatures of shape (n_atoms_total, n_features), float64
            Rows in input order (dimensionless; scales with the density).
        gradients : SparseGradients, only if ``gradients=True``
            ``values`` (n_pairs, 3, n_features) in 1/Å, ``center``,
            ``neighbour`` (global atom indices), ``vectors`` (Å): for each
            centre its self pair first, which holds the total derivative (the
            centre moves with its atom: ``-Σ`` of the centre's other pairs;
            vector 0), then one pair per neighbour *image* within the search
            cutoff (``r_cut`` + padding, or ``r_cut`` with a
            ``cutoff_transition_width``; images of one atom in small cells
            are separate pairs with their own vectors, so the virial is
            ``-Σ vectors ⊗ dE/dr``).
            Layout in :mod:`kernelpot.descriptors.base`.

        Raises
        ------
        ValueError
            Invalid hyperparameters; an atom whose species is not in
            ``species``; non-finite positions; a periodic cell of zero volume;
            two atoms at one position (closer than 1e-8 Å); an atom with more
            than ``max_neighbours`` neighbours.
        """
        species, packed, basis, block_offsets, n_features, atom_species, cutoff = self._setup(X)
        features = np.empty((packed.n_atoms, n_features))
        chunks = list(structure_chunks(packed.offsets, _CHUNK_ATOMS))
        if not gradients:
            for first, last in chunks:
                sub, start, stop = sub_packing(packed, first, last)
                pairs = self._pairs(sub, cutoff)
                self._features_chunk(pairs, atom_species, len(species), start, stop, basis, features)
            self._gap_weighting(len(species), features)
            return AtomicFeatures(features, packed.offsets, packed.numbers)
        return self._transform_with_gradients(
            packed, chunks, cutoff, atom_species, basis, block_offsets, features
        )

    def _setup(self, X):
        """Checked parameters and packed input: ``(species, packed, basis, block_offsets, n_features,
        atom_species, search cutoff)``."""
        species = self._check_parameters()
        packed = self._pack(X, species)
        basis = make_radial_basis(
            self.rbf, float(self.r_cut), int(self.n_max), int(self.l_max), float(self.sigma)
        )
        block_offsets, n_features = feature_block_offsets(len(species), self.n_max, self.l_max)
        return (species, packed, basis, block_offsets, n_features, species_indices(packed.numbers, species),
                self._search_cutoff())

    def transform_vjp(self, X, *, neighbours=None):
        """Features and a reverse-mode pass to position derivatives, without the gradient rows.

        For ``E = Σ_i e_i(X_i)``, forces need ``Σ_i ∂e_i/∂X_i · ∂X_i/∂r``
        only: this returns the features and a function that maps the
        adjoint ``∂E/∂X`` to ``∂E/∂r`` (and the virial) through the density
        coefficients (:mod:`._soap_vjp_kernels`), at a cost per neighbour
        pair independent of the number of features, with memory
        ``O(n_pairs)`` instead of ``O(n_pairs n_features)``.

        Parameters
        ----------
        X : ase.Atoms or sequence of ase.Atoms
            Structures (Å).
        neighbours : callable or None, default=None
            ``neighbours(packed, cutoff, max_neighbours=...) -> NeighbourList`` (Å), e.g. a
            :class:`~kernelpot.structures.neighbours.VerletNeighbours` kept
            across MD steps; None searches afresh
            (:func:`~kernelpot.structures.neighbours.neighbour_list`). The
            list may reach beyond the cutoff (it is filtered).

        Returns
        -------
        features : AtomicFeatures of shape (n_atoms_total, n_features)
            Equal to ``transform(X)``.
        vjp : callable
            ``vjp(adjoint, *, virial=False) -> (dE_dr, virial)``: ``adjoint``
            of shape (n_atoms_total, n_features) is ``∂E/∂features`` (rows all
            zero are skipped); ``dE_dr`` (n_atoms_total, 3) in energy/Å;
            ``virial`` (n_structures, 3, 3) ``-Σ r ⊗ ∂E/∂r`` in energy units, or
            None unless asked for. ``vjp.batched(adjoint, factored)`` maps
            more energies in the same pass, each centre's density expansion
            computed once for all of them, from adjoints given as
            ``alpha[v, r] points[v] + beta[v, r] rows[r]`` (the feature
            gradients of a dot-product or Gaussian covariance with sparse
            points ``z_v``: :mod:`kernelpot.models.gap.subset_variance`).
        """
        species, packed, basis, _, n_features, atom_species, cutoff = self._setup(X)
        search = neighbour_list if neighbours is None else neighbours
        searched = search(packed, cutoff, max_neighbours=self.max_neighbours)
        check_distinct_positions(packed, searched)
        pairs = restrict_neighbours(searched, cutoff)
        features = np.empty((packed.n_atoms, n_features))
        self._features_chunk(pairs, atom_species, len(species), 0, packed.n_atoms, basis, features)
        self._gap_weighting(len(species), features)
        center, neighbour, vectors, offsets = pairs
        pair_species = atom_species[neighbour]
        weights = gap_feature_weights(len(species), int(self.n_max), int(self.l_max)) if self.rbf == "gap" else None

        def weighted(values):   # the GAP weighting folded into an adjoint
            return values if weights is None else values * weights

        def run(points, alpha, rows, row_set, beta, center_row, virial):
            pair_dE = np.empty((len(points), len(center), 3))
            run_over_centers(
                soap_vjp_kernel, packed.n_atoms, vectors, offsets, pair_species, atom_species,
                *_tables(basis), *self._weights(basis), int(self.l_max), int(self.n_max), len(species),
                np.ascontiguousarray(points, dtype=np.float64), np.ascontiguousarray(alpha, dtype=np.float64),
                np.ascontiguousarray(rows, dtype=np.float64), np.asarray(row_set, dtype=np.int64),
                np.ascontiguousarray(beta, dtype=np.float64), center_row, pair_dE,
            )
            return sum_pair_derivatives(center, neighbour, vectors, pair_dE, packed, virial)

        def checked(adjoint):
            adjoint = np.asarray(adjoint, dtype=np.float64)
            if adjoint.shape != features.shape:
                raise ValueError(f"`adjoint` must have shape {features.shape}; got {adjoint.shape}")
            return adjoint

        def vjp(adjoint, *, virial=False):
            adjoint = checked(adjoint)
            center_row = np.where(np.any(adjoint != 0.0, axis=1), np.arange(len(adjoint)), -1).astype(np.int64)
            zeros = np.zeros((1, len(adjoint)))
            dE_dr, out = run(np.zeros((1, adjoint.shape[1])), zeros, weighted(adjoint)[None], [0], zeros + 1.0,
                             center_row, virial)
            return dE_dr[0], (None if out is None else out[0])

        def batched(adjoint, factored, *, virial=False):
            """``vjp(adjoint, virial=virial)`` and, in the same pass, the position derivatives (n_vectors,
            n_atoms_total, 3) of more energies whose feature adjoints are given factored: ``factored`` is a list
            of ``(points, alpha, rows, beta, centres)``, each meaning ``alpha[v, r] points[v] + beta[v, r]
            rows[r]`` at the atoms ``centres[r]`` (``points`` (n_v, n_features), ``alpha``/``beta`` (n_v, n_r),
            ``rows`` (n_r, n_features)) and zero elsewhere; the energies in the order of the list."""
            adjoint = checked(adjoint)
            n_atoms, n_features = adjoint.shape
            sets = np.zeros((1 + len(factored), n_atoms, n_features))
            sets[0] = weighted(adjoint)
            all_points, all_alpha, all_beta, row_set = [np.zeros((1, n_features))], [np.zeros((1, n_atoms))], \
                [np.ones((1, n_atoms))], [0]
            for k, (points, alpha, rows, beta, centres) in enumerate(factored, start=1):
                centres = np.asarray(centres, dtype=np.int64)
                if np.shape(rows) != (len(centres), n_features) or np.shape(points)[1:] != (n_features,) \
                        or np.shape(alpha) != (len(points), len(centres)) or np.shape(beta) != np.shape(alpha):
                    raise ValueError("inconsistent shapes of a factored adjoint")
                sets[k, centres] = weighted(rows)
                for values, out in ((alpha, all_alpha), (beta, all_beta)):
                    spread = np.zeros((len(points), n_atoms))
                    spread[:, centres] = values
                    out.append(spread)
                all_points.append(weighted(points))
                row_set += [k] * len(points)
            active = np.any(adjoint != 0.0, axis=1)
            for _, _, _, _, centres in factored:
                active[np.asarray(centres, dtype=np.int64)] = True
            center_row = np.where(active, np.arange(n_atoms), -1).astype(np.int64)
            dE_dr, out = run(np.concatenate(all_points), np.concatenate(all_alpha), sets, row_set,
                             np.concatenate(all_beta), center_row, virial)
            return dE_dr[0], (None if out is None else out[0]), dE_dr[1:]

        vjp.batched = batched
        return AtomicFeatures(features, packed.offsets, packed.numbers), vjp

    def _pairs(self, sub: PackedStructures, cutoff: float, grouped: bool = False):
        neighbours = neighbour_list(sub, cutoff, max_neighbours=self.max_neighbours)
        check_distinct_positions(sub, neighbours)
        center, neighbour, vectors, offsets = restrict_neighbours(neighbours, cutoff)
        keys = center * sub.n_atoms + neighbour if grouped else None
        if grouped and np.any(keys[1:] < keys[:-1]):
            # Gradient rows in (centre, neighbour) order, images of one neighbour together.
            order = np.argsort(keys, kind="stable")
            center, neighbour, vectors = center[order], neighbour[order], vectors[order]
        return center, neighbour, np.ascontiguousarray(vectors), offsets

    def _features_chunk(self, pairs, atom_species, n_species, start, stop, basis, features):
        _, neighbour, vectors, offsets = pairs
        run_over_centers(
            power_spectrum_kernel, stop - start, vectors, offsets,
            atom_species[neighbour + start], atom_species[start:stop],
            *_tables(basis), *self._weights(basis), int(self.l_max), int(self.n_max), n_species,
            features[start:stop],
        )

    def _transform_with_gradients(
        self, packed, chunks, cutoff, atom_species, basis, block_offsets, features
    ):
        # Neighbour lists of all chunks first (small next to the gradients),
        # so the gradient array is allocated once at its final size.
        plans = []
        n_rows = 0
        for first, last in chunks:
            sub, start, stop = sub_packing(packed, first, last)
            pairs = self._pairs(sub, cutoff, grouped=True)
            rows = _pair_rows(pairs[0], pairs[3], n_rows)
            plans.append((start, stop, n_rows, pairs, rows))
            n_rows += len(rows[2])
        # Zero pages, faulted in as the kernel writes each row once; the blocks
        # of species absent from a pair stay zero. (Pre-faulting with
        # MAP_POPULATE or huge pages measured slower on a loaded VM.)
        values = np.zeros((n_rows, 3, features.shape[1]))
        center = np.empty(n_rows, dtype=np.int64)
        neighbour = np.empty(n_rows, dtype=np.int64)
        row_vectors = np.zeros((n_rows, 3))
        for start, stop, row_start, pairs, (pair_rows, self_rows, row_center) in plans:
            pair_center, pair_neighbour, vectors, offsets = pairs
            rows = slice(row_start, row_start + len(row_center))
            center[rows] = row_center + start
            neighbour[self_rows] = np.arange(start, stop)
            neighbour[pair_rows] = pair_neighbour + start
            row_vectors[pair_rows] = vectors
            run_over_centers(
                soap_gradients_kernel, stop - start, vectors, offsets,
                atom_species[pair_neighbour + start], atom_species[start:stop],
                pair_rows, self_rows, *_tables(basis), *self._weights(basis),
                int(self.l_max), int(self.n_max), block_offsets,
                features[start:stop], values,
            )
        self._gap_weighting(block_offsets.shape[0], features, values)
        X = AtomicFeatures(features, packed.offsets, packed.numbers)
        return X, SparseGradients(values, center, neighbour, row_vectors)


def _without_pbc(atoms):
    atoms = atoms.copy()
    atoms.pbc = False
    return atoms


def _tables(basis):
    return basis.kind, basis.eta, basis.table_a, basis.table_b, basis.spline, basis.inv_spacing


def _pair_rows(pair_center, pair_offsets, row_start):
    """Gradient rows: each centre's self pair, then one row per neighbour image.

    One row per image (not per neighbour) keeps each image's vector, which
    the virial needs (see ``SparseGradients.vectors``).

    Returns ``pair_rows`` (row of each image pair), ``self_rows`` (row of
    each centre's self pair) and ``row_center`` (local centre of every row).
    """
    n_atoms = len(pair_offsets) - 1
    centers = np.arange(n_atoms, dtype=np.int64)
    self_rows = pair_offsets[:-1] + centers + row_start
    pair_rows = np.arange(len(pair_center), dtype=np.int64) + pair_center + 1 + row_start
    row_center = np.empty(len(pair_center) + n_atoms, dtype=np.int64)
    row_center[self_rows - row_start] = centers
    row_center[pair_rows - row_start] = pair_center
    return pair_rows, self_rows, row_center
