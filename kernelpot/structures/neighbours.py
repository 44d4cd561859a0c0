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

from ._neighbour_kernels import (_BRUTE_FORCE_MAX_ATOMS, count_pairs, decode_recorded, fill_pairs, moved_pairs,
                                 record_pairs)
from .packing import PackedStructures

__all__ = ["NeighbourList", "neighbour_list", "restrict", "VerletNeighbours"]


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
    if packed.n_structures == 1 and (pbc.any() or n_atoms > _BRUTE_FORCE_MAX_ATOMS):
        return _one_structure(positions, cells[0], pbc[0], cutoff)
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


def _one_structure(positions, cell, pbc, cutoff):
    """One structure in a single cell-list pass (no counting pass): pairs appended, then grouped by centre.

    The buffers are sized from the mean density (30 % spare); a denser
    structure overflows them, and the pass runs once more at the exact size.
    """
    n_atoms = len(positions)
    span = np.ptp(positions, axis=0) if len(positions) else np.zeros(3)
    volume = abs(np.linalg.det(cell)) if pbc.all() else float(np.prod(np.maximum(span, cutoff)))
    expected = n_atoms * n_atoms / max(volume, 1e-300) * (4.0 / 3.0) * np.pi * cutoff**3
    capacity = int(min(1.3 * expected, 1e12)) + 64
    starts = np.empty(n_atoms, dtype=np.int64)
    counts = np.empty(n_atoms, dtype=np.int64)
    length = np.zeros(1, dtype=np.int64)
    for _ in range(2):
        keys = np.empty(capacity, dtype=np.int64)
        wraps, radix = record_pairs(positions, cell, pbc, cutoff, keys, starts, counts, length)
        n_pairs = int(length[0])
        if n_pairs <= capacity:
            break
        capacity = n_pairs
    pair_offsets = np.empty(n_atoms + 1, dtype=np.int64)
    sorted_keys = np.empty(n_pairs, dtype=np.int64)
    neighbour = np.empty(n_pairs, dtype=np.int64)
    shifts = np.empty((n_pairs, 3), dtype=np.int64)
    vectors = np.empty((n_pairs, 3), dtype=np.float64)
    distances = np.empty(n_pairs, dtype=np.float64)
    decode_recorded(positions, cell, keys, starts, counts, wraps, radix, pair_offsets, sorted_keys,
                    neighbour, shifts, vectors, distances)
    center = np.repeat(np.arange(n_atoms, dtype=np.int64), np.diff(pair_offsets))
    return NeighbourList(center, neighbour, shifts, vectors, distances, pair_offsets, cutoff)


def restrict(neighbours: NeighbourList, cutoff: float) -> NeighbourList:
    """The pairs of ``neighbours`` closer than ``cutoff`` (Å), in the same order.

    Raises
    ------
    ValueError
        ``neighbours`` was built with a smaller cutoff (it may miss pairs).
    """
    if neighbours.cutoff < cutoff * (1.0 - 1e-12):
        raise ValueError(f"`neighbours` was built with cutoff {neighbours.cutoff} Å, below the {cutoff} Å asked for")
    if neighbours.cutoff <= cutoff * (1.0 + 1e-12):
        return neighbours
    keep = neighbours.distances < cutoff
    center = neighbours.center[keep]
    n_atoms = len(neighbours.pair_offsets) - 1
    offsets = np.zeros(n_atoms + 1, dtype=np.int64)
    np.cumsum(np.bincount(center, minlength=n_atoms), out=offsets[1:])
    return NeighbourList(center, neighbours.neighbour[keep], neighbours.shifts[keep],
                         np.ascontiguousarray(neighbours.vectors[keep]), neighbours.distances[keep], offsets,
                         float(cutoff))


class VerletNeighbours:
    """Neighbour lists kept between calls while atoms move less than half a skin (a Verlet list).

    Called like :func:`neighbour_list` (``provider(packed, cutoff)``), it
    returns the exact list of pairs closer than ``cutoff``. The first call
    on a set of structures searches ``cutoff + skin``; later calls on the
    same atoms (same numbers, cells and periodicity) recompute the vectors
    of the stored pairs from the new positions and keep those closer than
    ``cutoff``, which is exact as long as no atom has moved more than
    ``skin / 2`` since the search (checked every call; otherwise, or when a
    larger cutoff is asked for, it searches again). Positions are used as
    given: wrapping atoms back into the cell moves them by a cell vector,
    which starts a new search. Lists of a few different packings (e.g. with
    and without periodicity) are kept side by side.

    Parameters
    ----------
    skin : float, default=1.0
        Extra search radius in Å (>= 0). Larger skins search less often and
        filter more pairs per call; 10–20 % of the cutoff is typical. 0
        reuses a list only for unchanged positions (several descriptors of
        one prediction sharing one search).

    Attributes
    ----------
    n_builds, n_calls : int
        Searches done and lists served (``n_calls - n_builds`` were reused).

    Notes
    -----
    Not thread-safe: give each thread (each MD run) its own instance.
    """

    _MAX_ENTRIES = 4

    def __init__(self, skin: float = 1.0):
        if isinstance(skin, bool) or not isinstance(skin, numbers.Real) or not (np.isfinite(skin) and skin >= 0):
            raise ValueError(f"`skin` must be a finite number >= 0 Å; got {skin!r}")
        self.skin = float(skin)
        self.n_builds = 0
        self.n_calls = 0
        self._stored = {}  # packing key -> (reference positions, NeighbourList at the search radius)
        self._last = None  # (key, cutoff, positions, list) of the last call

    @staticmethod
    def _key(packed: PackedStructures):
        return (packed.offsets.tobytes(), packed.numbers.tobytes(), packed.cells.tobytes(), packed.pbc.tobytes())

    def __call__(self, packed: PackedStructures, cutoff: float) -> NeighbourList:
        self.n_calls += 1
        key = self._key(packed)
        last = self._last
        if last is not None and last[0] == key and last[1] == cutoff and np.array_equal(last[2], packed.positions):
            return last[3]  # several descriptors of one prediction asking for the same list
        result = self._serve(key, packed, cutoff)
        self._last = (key, cutoff, np.array(packed.positions, dtype=np.float64), result)
        return result

    def _serve(self, key, packed, cutoff):
        stored = self._stored.get(key)
        if stored is not None and stored[1].cutoff >= cutoff + self.skin * (1.0 - 1e-12):
            moved = packed.positions - stored[0]
            if np.einsum("ij,ij->i", moved, moved).max(initial=0.0) <= (0.5 * self.skin) ** 2:
                if self.skin == 0.0:
                    return restrict(stored[1], cutoff)
                return restrict(_moved(stored[1], packed), cutoff)
        searched = neighbour_list(packed, cutoff + self.skin)
        self.n_builds += 1
        if len(self._stored) >= self._MAX_ENTRIES:
            self._stored.clear()
        self._stored[key] = (np.array(packed.positions, dtype=np.float64), searched)
        return restrict(searched, cutoff)


def _moved(neighbours: NeighbourList, packed: PackedStructures) -> NeighbourList:
    """``neighbours`` with vectors and distances recomputed at ``packed``'s positions (same pairs, same cells)."""
    vectors = np.empty_like(neighbours.vectors)
    distances = np.empty_like(neighbours.distances)
    moved_pairs(np.ascontiguousarray(packed.positions, dtype=np.float64), np.ascontiguousarray(packed.cells),
                packed.structure_index, neighbours.center, neighbours.neighbour, neighbours.shifts, vectors, distances)
    return NeighbourList(neighbours.center, neighbours.neighbour, neighbours.shifts, vectors, distances,
                         neighbours.pair_offsets, neighbours.cutoff)
