"""Coulomb matrix of whole molecules, compatible with dscribe 2.1.

The Coulomb matrix [1]_ of a structure with atomic numbers ``Z`` and
positions ``r`` (Å) is

.. math::

    C_{ii} = \\tfrac12 Z_i^{2.4}, \\qquad
    C_{ij} = \\frac{Z_i Z_j}{\\lVert r_i - r_j \\rVert} \\quad (i \\ne j),

in units of e²/Å, exactly as dscribe's ``CoulombMatrix`` (no conversion to
Bohr). Permutation invariance comes from sorting rows and columns by
descending row norm (``"sorted_l2"``) or from keeping only the eigenvalues
sorted by descending magnitude (``"eigenspectrum"``) [2]_. Smaller
structures are padded with zeros up to ``n_atoms_max`` atoms.

References
----------
.. [1] M. Rupp, A. Tkatchenko, K.-R. Müller and O. A. von Lilienfeld, Phys.
   Rev. Lett. 108, 058301 (2012), doi:10.1103/PhysRevLett.108.058301.
.. [2] G. Montavon et al., "Learning invariant representations of molecules
   for atomization energy prediction", NeurIPS 25 (2012).
"""

from __future__ import annotations

import dataclasses
import numbers as _numbers

import numpy as np

from kernelpot.descriptors import _coulomb_matrix_kernels as _kernels
from kernelpot.descriptors.base import Descriptor
from kernelpot.structures.neighbours import COINCIDENT_DISTANCE, check_distinct_positions, neighbour_list
from kernelpot.structures.packing import pack

__all__ = ["CoulombMatrix"]

_PERMUTATIONS = {
    "none": _kernels.PERMUTATION_NONE,
    "sorted_l2": _kernels.PERMUTATION_SORTED_L2,
    "eigenspectrum": _kernels.PERMUTATION_EIGENSPECTRUM,
}


class CoulombMatrix(Descriptor):
    """Coulomb matrix (sorted or eigenspectrum) of each structure.

    Parameters
    ----------
    n_atoms_max : int
        Largest number of atoms of any structure; outputs are zero-padded
        to this size.
    permutation : {"sorted_l2", "eigenspectrum", "none"}, default="sorted_l2"
        ``"sorted_l2"``: rows and columns ordered by descending Euclidean
        row norm (a stable sort, so exactly equal norms keep the input
        order); ``"eigenspectrum"``: eigenvalues ordered by descending
        absolute value; ``"none"``: input order (not permutation invariant).
        dscribe's ``"random"`` is not provided.

    Notes
    -----
    Periodicity is ignored (as in dscribe): the matrix of the atoms in the
    cell is returned. Output is always dense float64. Every atom interacts
    with every other, so ``n_atoms_max`` is this descriptor's bound on the
    work per structure (the other descriptors' ``max_neighbours``). Two
    atoms closer than 1e-8 Å (an infinite entry) are refused.

    Examples
    --------
    >>> from ase.build import molecule
    >>> cm = CoulombMatrix(n_atoms_max=5, permutation="eigenspectrum")
    >>> cm.transform(molecule("CH4")).shape
    (1, 5)
    """

    def __init__(self, n_atoms_max=None, permutation="sorted_l2"):
        self.n_atoms_max = n_atoms_max
        self.permutation = permutation

    def _validate(self) -> tuple[int, int]:
        n_max = self.n_atoms_max
        if isinstance(n_max, bool) or not isinstance(n_max, _numbers.Integral) or n_max < 1:
            raise ValueError(f"`n_atoms_max` must be an integer >= 1; got {n_max!r}")
        if self.permutation not in _PERMUTATIONS:
            raise ValueError(
                f"`permutation` must be one of {sorted(_PERMUTATIONS)}; got {self.permutation!r}"
            )
        return int(n_max), _PERMUTATIONS[self.permutation]

    def get_number_of_features(self) -> int:
        """``n_atoms_max`` for the eigenspectrum, else ``n_atoms_max**2``."""
        n_max, permutation = self._validate()
        return n_max if permutation == _kernels.PERMUTATION_EIGENSPECTRUM else n_max * n_max

    def create(self, system) -> np.ndarray:
        """dscribe-style alias of :meth:`transform`."""
        return self.transform(system)

    def transform(self, X, *, gradients: bool = False) -> np.ndarray:
        """Coulomb matrix of each structure.

        Parameters
        ----------
        X : ase.Atoms or sequence of ase.Atoms
            Structures (positions in Å), each with at most ``n_atoms_max`` atoms.
        gradients : bool, default=False
            Not supported (the sorted matrix is not differentiable where the
            order changes); True raises ``ValueError``.

        Returns
        -------
        ndarray of shape (n_structures, n_features), float64
            Flattened row-major ``(n_atoms_max, n_atoms_max)`` matrices (units
            e²/Å), or ``n_atoms_max`` eigenvalues for ``"eigenspectrum"``.

        Raises
        ------
        ValueError
            Invalid parameters; a structure with more than ``n_atoms_max``
            atoms; two atoms at one position (closer than 1e-8 Å), named by
            structure and atom indices.
        """
        if gradients:
            raise ValueError("`gradients`=True is not supported by CoulombMatrix; use False")
        n_max, permutation = self._validate()
        packed = pack(X)
        counts = np.diff(packed.offsets)
        if counts.max() > n_max:
            structure = int(np.argmax(counts > n_max))
            raise ValueError(
                f"structure {structure} has {counts[structure]} atoms, more than "
                f"`n_atoms_max`={n_max}"
            )
        cluster = dataclasses.replace(packed, pbc=np.zeros_like(packed.pbc))  # images do not enter
        check_distinct_positions(cluster, neighbour_list(cluster, COINCIDENT_DISTANCE))
        out = np.zeros((packed.n_structures, self.get_number_of_features()))
        if permutation == _kernels.PERMUTATION_EIGENSPECTRUM:
            _kernels.eigenspectrum_kernel(out, packed.positions, packed.numbers, packed.offsets)
        else:
            _kernels.sorted_matrix_kernel(
                out, packed.positions, packed.numbers, packed.offsets, n_max,
                permutation == _kernels.PERMUTATION_SORTED_L2,
            )
        return out
