"""Neighbour lists with periodic images.

Temporary reference implementation on top of ``ase.neighborlist``; the
public contract (:class:`NeighbourList`, :func:`neighbour_list`) is what the
rest of kernelpot relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list as _ase_neighbor_list

from .packing import PackedStructures

__all__ = ["NeighbourList", "neighbour_list"]


@dataclass(frozen=True)
class NeighbourList:
    """All (center, neighbour) pairs closer than a cutoff, both directions.

    Pairs are sorted by center; pairs of center ``i`` are
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
    cutoff : float
        Radius in Å; must be > 0.
    """
    if not cutoff > 0:
        raise ValueError(f"`cutoff` must be > 0 Å; got {cutoff}")
    centers, neighbours, shifts = [], [], []
    for s in range(packed.n_structures):
        start, stop = packed.offsets[s], packed.offsets[s + 1]
        atoms = Atoms(
            numbers=packed.numbers[start:stop],
            positions=packed.positions[start:stop],
            cell=packed.cells[s],
            pbc=packed.pbc[s],
        )
        i, j, S = _ase_neighbor_list("ijS", atoms, cutoff)
        centers.append(i + start)
        neighbours.append(j + start)
        shifts.append(S)
    center = np.concatenate(centers).astype(np.int64)
    neighbour = np.concatenate(neighbours).astype(np.int64)
    shift = np.concatenate(shifts).astype(np.int64).reshape(-1, 3)
    order = np.lexsort((neighbour, center))
    center, neighbour, shift = center[order], neighbour[order], shift[order]
    cells = packed.cells[packed.structure_index[center]]
    vectors = (
        packed.positions[neighbour]
        + np.einsum("pk,pkx->px", shift.astype(np.float64), cells)
        - packed.positions[center]
    )
    distances = np.linalg.norm(vectors, axis=1)
    keep = distances < cutoff
    center, neighbour, shift = center[keep], neighbour[keep], shift[keep]
    vectors, distances = vectors[keep], distances[keep]
    pair_offsets = np.zeros(packed.n_atoms + 1, dtype=np.int64)
    np.cumsum(np.bincount(center, minlength=packed.n_atoms), out=pair_offsets[1:])
    return NeighbourList(center, neighbour, shift, vectors, distances, pair_offsets, float(cutoff))
