"""Pair-distance descriptor of GAP's 2-body term (``distance_2b``).

One feature row per interatomic pair within the cutoff: ``X[q] = [r_q]``
(Å). Each unordered pair (including a periodic image of an atom with
itself) gives one row, so a pair energy model sums a function of ``r``
once per pair. The smooth cosine cutoff of GAP,

.. math::

    f_c(r) = \\begin{cases} 1 & r \\le r_c - w \\\\
    \\tfrac12\\left[1 + \\cos\\left(\\pi \\frac{r - r_c + w}{w}\\right)\\right]
    & r_c - w < r < r_c \\\\ 0 & r \\ge r_c \\end{cases}

is not folded into the feature: it is the covariance weight returned by
:meth:`Distance2B.cutoff_weight`, so that a Gaussian-process covariance
becomes ``f_c(r) f_c(r') k(r, r')`` as in GAP.

Convention difference from QUIP/GAP: GAP's ``distance_2b`` keeps both
directions of every pair (two rows per pair), we keep one. A GAP model
with ``delta`` equals a kernelpot model with ``2 * delta``.

References
----------
A. P. Bartók, G. Csányi, "Gaussian approximation potentials: a brief
tutorial introduction", Int. J. Quantum Chem. 115, 1051 (2015),
doi:10.1002/qua.24927.
"""

from __future__ import annotations

import numpy as np

from ..structures.neighbours import (
    MAX_NEIGHBOURS,
    check_distinct_positions,
    check_max_neighbours,
    neighbour_list,
    restrict,
)
from ..structures.packing import pack
from . import _distance_2b_kernels as _k
from ._pair_derivatives import sum_pair_derivatives
from .base import AtomicFeatures, Descriptor, SparseGradients

__all__ = ["Distance2B", "check_cutoff_and_species", "cosine_cutoff"]


def check_cutoff_and_species(descriptor, species_names):
    """Validated ``(cutoff, cutoff_transition_width, atomic numbers)`` of a GAP pair or triplet descriptor.

    ``species_names`` name its species attributes (None: any, returned as 0); the last two must be given
    together (a pair's two species, a triplet's two neighbours). ``max_neighbours`` is checked too.
    """
    cutoff, width = descriptor.cutoff, descriptor.cutoff_transition_width
    for name, value in (("cutoff", cutoff), ("cutoff_transition_width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"`{name}` must be a number (Å); got {value!r}")
    if not np.isfinite(cutoff) or cutoff <= 0:
        raise ValueError(f"`cutoff` must be a finite number > 0 Å; got {cutoff}")
    if not (0 < width <= cutoff):
        raise ValueError(f"`cutoff_transition_width` must be in (0, cutoff={cutoff}] Å; got {width}")
    first, second = species_names[-2:]
    if (getattr(descriptor, first) is None) != (getattr(descriptor, second) is None):
        raise ValueError(f"`{first}` and `{second}` must be given together or both None; got "
                         f"{first}={getattr(descriptor, first)}, {second}={getattr(descriptor, second)}")
    for name in species_names:
        z = getattr(descriptor, name)
        if z is not None and (isinstance(z, bool) or int(z) != z or not 1 <= z <= 118):
            raise ValueError(f"`{name}` must be an atomic number in 1..118 or None; got {z!r}")
    check_max_neighbours(descriptor.max_neighbours)
    return float(cutoff), float(width), tuple(0 if getattr(descriptor, n) is None else int(getattr(descriptor, n))
                                              for n in species_names)


def cosine_cutoff(r, cutoff, width):
    """GAP's cosine cutoff ``f_c(r)`` and its derivative.

    Parameters
    ----------
    r : ndarray of shape (n,)
        Distances in Å.
    cutoff : float
        ``r_c`` in Å.
    width : float
        Transition width ``w`` in Å (``0 < w <= r_c``).

    Returns
    -------
    fc : ndarray of shape (n,)
        Weight in [0, 1].
    dfc : ndarray of shape (n,)
        ``d f_c / d r`` in 1/Å.
    """
    r = np.asarray(r, dtype=np.float64)
    t = np.clip((r - cutoff + width) / width, 0.0, 1.0)
    fc = 0.5 * (1.0 + np.cos(np.pi * t))
    inside = (t > 0.0) & (t < 1.0)
    dfc = np.where(inside, -0.5 * np.pi / width * np.sin(np.pi * t), 0.0)
    return fc, dfc


class Distance2B(Descriptor):
    """Interatomic distances of all pairs within a cutoff (GAP ``distance_2b``).

    Parameters
    ----------
    cutoff : float, default=5.0
        Cutoff radius ``r_c`` in Å; pairs with ``r < cutoff`` give rows.
    cutoff_transition_width : float, default=0.5
        Width ``w`` (Å) of the cosine decay of the covariance weight to zero
        at ``cutoff``; ``0 < w <= cutoff``.
    Z1, Z2 : int or None, default=None
        Keep only pairs of these two species (either order). Both ``None``:
        keep every pair whatever the species. Give both or neither.
    max_neighbours : int, default=10000
        Largest number of neighbours (periodic images included) of one atom
        within the cutoff. A structure with more (a 0.1 Å periodic cell, a
        cell in Bohr read as Å) is refused with a ``ValueError`` naming the
        count and the cell instead of running for hours; see
        :data:`kernelpot.structures.neighbours.MAX_NEIGHBOURS`.

    Examples
    --------
    >>> from ase import Atoms
    >>> d = Distance2B(cutoff=3.0, cutoff_transition_width=0.5)
    >>> X = d.transform(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]))
    >>> X.shape, round(float(X[0, 0]), 2)
    ((1, 1), 0.74)
    """

    #: Rows are atom pairs, not atoms (a model splits a row's energy between its two atoms).
    rows_are_pairs = True

    def __init__(self, cutoff=5.0, cutoff_transition_width=0.5, Z1=None, Z2=None, max_neighbours=MAX_NEIGHBOURS):
        self.cutoff = cutoff
        self.cutoff_transition_width = cutoff_transition_width
        self.Z1 = Z1
        self.Z2 = Z2
        self.max_neighbours = max_neighbours

    @property
    def n_features(self) -> int:
        """1 (the distance); validates the hyperparameters."""
        self._validate()
        return 1

    def _validate(self):
        cutoff, width, (z1, z2) = check_cutoff_and_species(self, ("Z1", "Z2"))
        return cutoff, width, z1, z2

    def cutoff_weight(self, X):
        """Covariance weight ``f_c(r)`` of each row and its feature derivative.

        Parameters
        ----------
        X : ndarray of shape (n_rows, 1)
            Distances in Å, as returned by :meth:`transform`.

        Returns
        -------
        weight : ndarray of shape (n_rows,)
        dweight_dX : ndarray of shape (n_rows, 1)
            Derivative of the weight with respect to the feature (1/Å).
        """
        cutoff, width, _, _ = self._validate()
        X = np.asarray(X, dtype=np.float64)
        fc, dfc = cosine_cutoff(X[:, 0], cutoff, width)
        return fc, dfc[:, None]

    def transform(self, X, *, gradients: bool = False):
        """Distances of the kept pairs of every structure.

        Parameters
        ----------
        X : ase.Atoms or list of ase.Atoms
            Structures (positions in Å).
        gradients : bool, default=False
            Also return the position gradients of every row.

        Returns
        -------
        features : AtomicFeatures of shape (n_pairs, 1)
            Pair distances in Å; ``features.offsets`` delimits the rows of
            each structure and ``features.numbers`` is the atomic number of
            the pair's first atom.
        gradients : SparseGradients, only if ``gradients=True``
            Two entries per row (its two atoms, unit vectors ∓û) with
            ``vectors`` (zero for the first atom, the pair vector in Å for
            the second), so the virial is available.
        """
        packed = pack(X)
        features, center, neighbour, vectors, distances = self._rows(packed, neighbour_list)
        if not gradients:
            return features
        n_rows = len(distances)
        values = np.empty((2 * n_rows, 3, 1))
        grad_center = np.empty(2 * n_rows, dtype=np.int64)
        grad_neighbour = np.empty(2 * n_rows, dtype=np.int64)
        grad_vectors = np.empty((2 * n_rows, 3))
        _k.fill_pair_gradients(center, neighbour, vectors, distances, values, grad_center,
                               grad_neighbour, grad_vectors)
        return features, SparseGradients(values, grad_center, grad_neighbour, grad_vectors)

    def _rows(self, packed, search):
        """Features and the (center, neighbour, vector, distance) of every kept pair row."""
        cutoff, _, z1, z2 = self._validate()
        nl = restrict(search(packed, cutoff, max_neighbours=self.max_neighbours), cutoff)
        check_distinct_positions(packed, nl)
        keep = np.empty(nl.n_pairs, dtype=np.bool_)
        _k.half_pair_mask(nl.center, nl.neighbour, nl.shifts, packed.numbers, z1, z2, keep)
        center = nl.center[keep]
        neighbour = nl.neighbour[keep]
        vectors = np.ascontiguousarray(nl.vectors[keep])
        distances = np.ascontiguousarray(nl.distances[keep])
        # Pairs are sorted by center atom, and atoms by structure, so rows are grouped by structure.
        counts = np.bincount(packed.structure_index[center], minlength=packed.n_structures)
        offsets = np.zeros(packed.n_structures + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        features = AtomicFeatures(distances[:, None].copy(), offsets, packed.numbers[center])
        return features, center, neighbour, vectors, distances

    def transform_vjp(self, X, *, neighbours=None):
        """Distances and a reverse-mode pass to position derivatives (see :meth:`SOAP.transform_vjp`).

        Parameters
        ----------
        X : ase.Atoms or sequence of ase.Atoms
        neighbours : callable or None, default=None
            ``neighbours(packed, cutoff, max_neighbours=...) -> NeighbourList``; None searches afresh.

        Returns
        -------
        features : AtomicFeatures of shape (n_rows, 1)
            Equal to ``transform(X)``.
        vjp : callable
            ``vjp(adjoint, *, virial=False) -> (dE_dr, virial)`` with
            ``adjoint`` (n_rows, 1) = ``∂E/∂r_q`` of every pair row: each row
            pushes ``±adjoint_q r̂_q`` onto its two atoms. ``vjp.pair_atoms``
            is ``(first, second)``, each (n_rows,): the two atoms (indices into
            the packed structures) of every row, for splitting a row's local
            energy (and its covariances) between them.
        """
        packed = pack(X)
        features, center, neighbour, vectors, distances = self._rows(
            packed, neighbour_list if neighbours is None else neighbours)

        def vjp(adjoint, *, virial=False):
            adjoint = np.asarray(adjoint, dtype=np.float64)
            if adjoint.shape != features.shape:
                raise ValueError(f"`adjoint` must have shape {features.shape}; got {adjoint.shape}")
            pair_dE = vectors * (adjoint[:, 0] / distances)[:, None]
            return sum_pair_derivatives(center, neighbour, vectors, pair_dE, packed, virial)

        vjp.pair_atoms = (center, neighbour)
        return features, vjp
