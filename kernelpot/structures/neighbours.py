"""Neighbour lists with periodic images: a Numba cell list.

:func:`neighbour_list` finds, for every atom of every packed structure, all
atoms and periodic images closer than a cutoff. Work is linear in the number
of atoms at fixed density (binning, see :mod:`._neighbour_kernels`), and one
compiled call handles all structures, so many small molecules cost little
more than one large box.

Conventions follow ``ase.neighborlist.neighbor_list('ijS')``: the vector of a
pair is ``r_j + S @ cell - r_i`` with the raw input positions (atoms need
not be wrapped into the cell), so ``(i, j, S)`` triples are identical.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ._neighbour_kernels import count_pairs, fill_pairs
from .packing import PackedStructures

__all__ = ["NeighbourList", "neighbour_list"]


@dataclass(frozen=True)
class NeighbourList:
    """All (center, neighbour) pairs closer than a cutoff, both directions.

    Pairs are sorted by center, then neighbour, then shift; pairs of center ``i`` are
    ``pair_offsets[i]:pair_offsets[i + 1]``. An atom is never its own
    neighbour with zero shift, but may be with a non-zero cell shift (small
    periodic cells).

    Attributes
    ----------
    center : ndarray of shape (n_pairs,), int64
        Global index (in the packing) of the center atom i.
    neighbour : ndarray of shape (n_pairs,), int64
        Global index of the neighbour atom j.
    shifts : ndarray of shape (n_pairs, 3), int64
        Integer cell shift S of the image of j: r_j + S @ cell.
    vectors : ndarray of shape (n_pairs, 3), float64
        r_j + S @ cell - r_i, in Å.
    distances : ndarray of shape (n_pairs,), float64
        Norm of ``vectors``, in Å.
    pair_offsets : ndarray of shape (n_atoms + 1,), int64
        Start of each center's pairs.
    cutoff : float
        Cutoff radius in Å (pairs with distance < cutoff are kept).
    """

    center: np.ndarray
    neighbour: np.ndarray
    shifts: np.ndarray
    vectors: np.ndarray
    distances: np.ndarray
    pair_offsets: np.ndarray
    cutoff: float

    @property
    def n_pairs(self) -> int:
        return len(self.center)


def neighbour_list(packed: PackedStructures, cutoff: float) -> NeighbourList:
    """Build the full neighbour list of every structure in ``packed``.

    Parameters
    ----------
    packed : PackedStructures
        Structures from :func:`kernelpot.structures.packing.pack`.
    cutoff : float
        Radius in Å; finite and > 0. Pairs with distance < ``cutoff`` are kept.

    Returns
    -------
    NeighbourList
        Both directions of every pair; sorted by center, then neighbour, then
        shift (lexicographically), so the order is deterministic. Pairs never
        cross structures. An atom is its own neighbour only through a non-zero
        shift, which happens when a periodic height of the cell is below
        ``cutoff``; the number of images searched along a periodic direction
        follows from ``cutoff`` over the perpendicular height of the cell, so
        strongly skewed cells are handled.

    Raises
    ------
    TypeError
        ``packed`` is not a :class:`PackedStructures` or ``cutoff`` is not a real number.
    ValueError
        ``cutoff`` is not finite or not > 0.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from kernelpot.structures.packing import pack
    >>> nl = neighbour_list(pack(bulk("Si")), cutoff=2.5)
    >>> nl.n_pairs, int(nl.pair_offsets[1])  # 4 tetrahedral bonds per atom
    (8, 4)
    """
    if not isinstance(packed, PackedStructures):
        raise TypeError(
            "`packed` must be a PackedStructures (use kernelpot.structures.packing.pack); "
            f"got {type(packed).__name__}"
        )
    if isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Real):
        raise TypeError(f"`cutoff` must be a real number in Å; got {cutoff!r}")
    cutoff = float(cutoff)
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"`cutoff` must be finite and > 0 Å; got {cutoff}")
    positions = np.ascontiguousarray(packed.positions, dtype=np.float64)
    cells = np.ascontiguousarray(packed.cells, dtype=np.float64)
    pbc = np.ascontiguousarray(packed.pbc, dtype=np.bool_)
    offsets = np.ascontiguousarray(packed.offsets, dtype=np.int64)
    n_atoms = positions.shape[0]
    counts = np.zeros(n_atoms, dtype=np.int64)
    count_pairs(positions, cells, pbc, offsets, cutoff, counts)
    pair_offsets = np.zeros(n_atoms + 1, dtype=np.int64)
    np.cumsum(counts, out=pair_offsets[1:])
    n_pairs = int(pair_offsets[-1])
    neighbour = np.empty(n_pairs, dtype=np.int64)
    shifts = np.empty((n_pairs, 3), dtype=np.int64)
    vectors = np.empty((n_pairs, 3), dtype=np.float64)
    distances = np.empty(n_pairs, dtype=np.float64)
    keys = np.empty(n_pairs, dtype=np.int64)
    fill_pairs(positions, cells, pbc, offsets, cutoff, pair_offsets, keys,
               neighbour, shifts, vectors, distances)
    center = np.repeat(np.arange(n_atoms, dtype=np.int64), counts)
    return NeighbourList(center, neighbour, shifts, vectors, distances, pair_offsets, cutoff)
