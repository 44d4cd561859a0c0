"""Triplet descriptor of GAP's 3-body term (``angle_3b``).

One feature row per triplet: a centre atom ``i`` and two of its neighbours ``j``, ``k`` within the cutoff
(periodic images included; ``j`` and ``k`` may be two images of one atom),

.. math::

    x = \\left(r_{ij} + r_{ik},\\; (r_{ij} - r_{ik})^2,\\; r_{jk}\\right) \\quad (Å, Å^2, Å),

symmetric under ``j ↔ k``, with the covariance weight ``f_c(r_ij) f_c(r_ik)`` (GAP's cosine cutoff, see
:func:`~kernelpot.descriptors.distance_2b.cosine_cutoff`). A GAP term sums a Gaussian-process function of ``x``
over the triplets, as QUIP's ``angle_3b`` does with an ``ard_se`` covariance.

Convention against QUIP/GAP (checked against quippy's ``Descriptor("angle_3b ...")`` in
``tests/test_angle_3b.py``): the same three features, the same weight and its default transition width
0.5 Å, the same species selection (``Z`` the centre, ``{Z1, Z2}`` the two neighbours in either order, 0 or
absent = any), but QUIP keeps both orders ``(j, k)`` and ``(k, j)`` of every triplet (two equal rows) and we keep
one. As for ``distance_2b``, a GAP model with ``delta`` equals a kernelpot model with ``2 * delta``
(:func:`kernelpot.potential.recipe.terms_from_gap_string` converts). The local energy of a triplet is its centre's.

References
----------
A. P. Bartók, G. Csányi, "Gaussian approximation potentials: a brief tutorial introduction",
Int. J. Quantum Chem. 115, 1051 (2015), doi:10.1002/qua.24927 (the 2b + 3b + SOAP recipe).
"""

from __future__ import annotations

import numpy as np

from ..structures.neighbours import MAX_NEIGHBOURS, check_distinct_positions, neighbour_list, restrict
from ..structures.packing import pack
from . import _angle_3b_kernels as _k
from ._pair_derivatives import sum_pair_derivatives
from .base import AtomicFeatures, Descriptor, SparseGradients
from .distance_2b import check_cutoff_and_species, cosine_cutoff

__all__ = ["Angle3B"]

# Below this |r_ij - r_ik| (Å) the weight's derivative along (r_ij - r_ik)^2 is its t -> 0 limit (the direct
# quotient would divide two vanishing numbers).
_SMALL_DIFFERENCE = 1e-5


def _cosine_cutoff_second(r, cutoff, width):
    """``d² f_c / d r²`` of GAP's cosine cutoff (1/Å²; zero outside the transition)."""
    t = (r - cutoff + width) / width
    inside = (t > 0.0) & (t < 1.0)
    return np.where(inside, -0.5 * (np.pi / width) ** 2 * np.cos(np.pi * t), 0.0)


class Angle3B(Descriptor):
    """Triplets of a centre and two neighbours within a cutoff (GAP ``angle_3b``).

    Parameters
    ----------
    cutoff : float, default=3.0
        Cutoff radius ``r_c`` (Å) of both bonds ``i-j`` and ``i-k``; ``r_jk`` is not cut.
    cutoff_transition_width : float, default=0.5
        Width ``w`` (Å) of the cosine decay of each bond's weight; ``0 < w <= cutoff`` (QUIP's default).
    Z : int or None, default=None
        Atomic number of the centre ``i`` (None: any).
    Z1, Z2 : int or None, default=None
        Atomic numbers of the two neighbours, in either order (both None: any). Give both or neither.
    max_neighbours : int, default=10000
        Largest number of neighbours of one atom within the cutoff (see
        :data:`kernelpot.structures.neighbours.MAX_NEIGHBOURS`).

    Examples
    --------
    >>> from ase import Atoms
    >>> water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    >>> X = Angle3B(cutoff=3.0, Z=8, Z1=1, Z2=1).transform(water)
    >>> X.shape, [round(float(v), 4) for v in X[0]]
    ((1, 3), [1.9205, 0.0, 1.5182])
    """

    def __init__(self, cutoff=3.0, cutoff_transition_width=0.5, Z=None, Z1=None, Z2=None,
                 max_neighbours=MAX_NEIGHBOURS):
        self.cutoff = cutoff
        self.cutoff_transition_width = cutoff_transition_width
        self.Z = Z
        self.Z1 = Z1
        self.Z2 = Z2
        self.max_neighbours = max_neighbours

    @property
    def n_features(self) -> int:
        """3; validates the hyperparameters."""
        self._validate()
        return 3

    def _validate(self):
        return check_cutoff_and_species(self, ("Z", "Z1", "Z2"))

    def cutoff_weight(self, X):
        """Covariance weight ``f_c(r_ij) f_c(r_ik)`` of each row and its derivative with respect to the features.

        The two bond lengths follow from the features, ``r = (x_0 ± sqrt(x_1)) / 2``.

        Parameters
        ----------
        X : ndarray of shape (n_rows, 3)
            Features as returned by :meth:`transform`.

        Returns
        -------
        weight : ndarray of shape (n_rows,)
        dweight_dX : ndarray of shape (n_rows, 3)
            Derivatives with respect to ``x_0`` (1/Å), ``x_1`` (1/Å²) and ``x_2`` (zero).
        """
        cutoff, width, _ = self._validate()
        X = np.asarray(X, dtype=np.float64)
        total, difference = X[:, 0], np.sqrt(np.maximum(X[:, 1], 0.0))
        a, b = 0.5 * (total + difference), 0.5 * (total - difference)
        fa, dfa = cosine_cutoff(a, cutoff, width)
        fb, dfb = cosine_cutoff(b, cutoff, width)
        dweight = np.zeros(X.shape)
        dweight[:, 0] = 0.5 * (dfa * fb + fa * dfb)
        # d/dx_1 = g'(t) / (2t) with g(t) = f_c((x_0 + t)/2) f_c((x_0 - t)/2), t = sqrt(x_1): even in t, so the
        # quotient tends to g''(0) / 2 = (f_c'' f_c - f_c'^2) / 4 at r = x_0 / 2.
        small = difference < _SMALL_DIFFERENCE
        with np.errstate(divide="ignore", invalid="ignore"):
            dweight[:, 1] = np.where(small, 0.0, 0.5 * (dfa * fb - fa * dfb) / (2.0 * difference))
        if small.any():
            half = 0.5 * total[small]
            f, df = cosine_cutoff(half, cutoff, width)
            dweight[small, 1] = 0.25 * (_cosine_cutoff_second(half, cutoff, width) * f - df**2)
        return fa * fb, dweight

    @staticmethod
    def row_centres(gradients):
        """ndarray (n_rows,): the centre atom of every row, from :meth:`transform`'s gradients (its first entry),
        to which a GAP gives the row's local energy."""
        return gradients.neighbour[0::3]

    def _triplets(self, packed, search):
        """Features and the geometry (centre, j, k, bond vectors and lengths) of every kept triplet."""
        cutoff, _, (zc, z1, z2) = self._validate()
        nl = restrict(search(packed, cutoff, max_neighbours=self.max_neighbours), cutoff)
        check_distinct_positions(packed, nl)
        numbers = np.ascontiguousarray(packed.numbers, dtype=np.int64)
        counts = np.zeros(packed.n_atoms, dtype=np.int64)
        _k.count_triplets(nl.pair_offsets, nl.neighbour, numbers, zc, z1, z2, counts)
        starts = np.zeros(packed.n_atoms + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        first = np.empty(starts[-1], dtype=np.int64)
        second = np.empty(starts[-1], dtype=np.int64)
        _k.fill_triplets(nl.pair_offsets, nl.neighbour, numbers, zc, z1, z2, starts, first, second)
        centre = nl.center[first]
        v_ij, v_ik = np.ascontiguousarray(nl.vectors[first]), np.ascontiguousarray(nl.vectors[second])
        r_ij, r_ik = nl.distances[first], nl.distances[second]
        v_jk = v_ik - v_ij
        r_jk = np.sqrt(np.einsum("ij,ij->i", v_jk, v_jk))
        X = np.column_stack([r_ij + r_ik, (r_ij - r_ik) ** 2, r_jk])
        # Centres are in atom order and atoms in structure order, so rows are grouped by structure.
        offsets = np.zeros(packed.n_structures + 1, dtype=np.int64)
        np.cumsum(np.bincount(packed.structure_index[centre], minlength=packed.n_structures), out=offsets[1:])
        features = AtomicFeatures(X, offsets, packed.numbers[centre])
        geometry = (centre, nl.neighbour[first], nl.neighbour[second], v_ij, v_ik, r_ij, r_ik, v_jk, r_jk)
        return features, geometry

    @staticmethod
    def _neighbour_derivatives(geometry):
        """``(dX/dr_j, dX/dr_k)``, each (n_rows, 3 [xyz], 3 [feature]); ``dX/dr_i = -(dX/dr_j + dX/dr_k)``."""
        _, _, _, v_ij, v_ik, r_ij, r_ik, v_jk, r_jk = geometry
        u_ij, u_ik, u_jk = v_ij / r_ij[:, None], v_ik / r_ik[:, None], v_jk / r_jk[:, None]
        twice = 2.0 * (r_ij - r_ik)[:, None]
        d_j = np.stack([u_ij, twice * u_ij, -u_jk], axis=2)
        d_k = np.stack([u_ik, -twice * u_ik, u_jk], axis=2)
        return d_j, d_k

    def transform(self, X, *, gradients: bool = False):
        """Features of the kept triplets of every structure.

        Parameters
        ----------
        X : ase.Atoms or list of ase.Atoms
            Structures (positions in Å).
        gradients : bool, default=False
            Also return the position gradients of every row.

        Returns
        -------
        features : AtomicFeatures of shape (n_triplets, 3)
            ``(r_ij + r_ik, (r_ij - r_ik)², r_jk)``; ``features.offsets`` delimits each structure's rows and
            ``features.numbers`` is the centre's atomic number.
        gradients : SparseGradients, only if ``gradients=True``
            Three entries per row (centre ``i``, then ``j``, ``k``) with ``vectors`` (zero for the centre, the
            bond vectors for ``j`` and ``k``), so the virial is available.
        """
        packed = pack(X)
        features, geometry = self._triplets(packed, neighbour_list)
        if not gradients:
            return features
        centre, j, k, v_ij, v_ik = geometry[:5]
        d_j, d_k = self._neighbour_derivatives(geometry)
        n_rows = len(centre)
        values = np.stack([-(d_j + d_k), d_j, d_k], axis=1).reshape(3 * n_rows, 3, 3)
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), 3)
        atoms = np.stack([centre, j, k], axis=1).reshape(-1)
        vectors = np.stack([np.zeros_like(v_ij), v_ij, v_ik], axis=1).reshape(3 * n_rows, 3)
        return features, SparseGradients(np.ascontiguousarray(values), rows, atoms, vectors)

    def transform_vjp(self, X, *, neighbours=None):
        """Features and a reverse-mode pass to position derivatives, as :meth:`Distance2B.transform_vjp`
        (``X`` and ``neighbours`` the same).

        Returns
        -------
        features : AtomicFeatures of shape (n_rows, 3)
            Equal to ``transform(X)``.
        vjp : callable
            ``vjp(adjoint, *, virial=False) -> (dE_dr, virial)`` with ``adjoint`` (n_rows, 3) = ``∂E/∂x`` of
            every row. ``vjp.pair_atoms`` is ``(centre, centre)``: a row's local energy is its centre's (the
            predictor splits a row between the two atoms it names).
        """
        packed = pack(X)
        features, geometry = self._triplets(packed, neighbour_list if neighbours is None else neighbours)
        centre, j, k, v_ij, v_ik = geometry[:5]

        def vjp(adjoint, *, virial=False):
            adjoint = np.asarray(adjoint, dtype=np.float64)
            if adjoint.shape != features.shape:
                raise ValueError(f"`adjoint` must have shape {features.shape}; got {adjoint.shape}")
            d_j, d_k = self._neighbour_derivatives(geometry)
            # Each triplet is two bonds from its centre: ∂E/∂r_j and ∂E/∂r_k, the centre moving the opposite way.
            pair_dE = np.concatenate([np.einsum("rak,rk->ra", d_j, adjoint), np.einsum("rak,rk->ra", d_k, adjoint)])
            return sum_pair_derivatives(np.concatenate([centre, centre]), np.concatenate([j, k]),
                                        np.concatenate([v_ij, v_ik]), pair_dE, packed, virial)

        vjp.pair_atoms = (centre, centre)
        return features, vjp
