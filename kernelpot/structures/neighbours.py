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

from ._neighbour_kernels import (
    _BRUTE_FORCE_MAX_ATOMS,
    count_pairs,
    decode_recorded,
    fill_pairs,
    moved_pairs,
    record_pairs,
)
from .packing import PackedStructures

__all__ = ["COINCIDENT_DISTANCE", "MAX_NEIGHBOURS", "NeighbourList", "VerletNeighbours", "check_distinct_positions",
           "check_max_neighbours", "neighbour_list", "restrict"]

#: Default ``max_neighbours`` of every descriptor: neighbours (periodic images
#: included) of one atom within the cutoff beyond which a structure is refused.
#: Condensed matter has about 0.1 atoms/Å³, so 10 000 is the count within 29 Å,
#: farther than any descriptor looks; a cell given in the wrong units or a
#: 0.1 Å cell gets there at once (and would otherwise run for hours).
MAX_NEIGHBOURS = 10_000
#: Atoms (or periodic images) closer than this, in Å, coincide: descriptors refuse them.
COINCIDENT_DISTANCE = 1e-8
# A neighbour search whose bin stencil would exceed this many cells first checks a
# lower bound of the neighbour count on the reduced lattice (the stencil costs memory).
_STENCIL_CHECK = 10**6


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


def check_max_neighbours(value) -> int:
    """Validate a descriptor's ``max_neighbours`` (an integer >= 1); return it as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`max_neighbours` must be an integer; got {value!r}")
    if value < 1:
        raise ValueError(f"`max_neighbours` must be >= 1; got {value}")
    return int(value)


def _structure_of(packed: PackedStructures, atom: int) -> tuple[int, int]:
    """(structure index in the caller's input, atom index within it) of a global atom."""
    s = int(np.searchsorted(packed.offsets, atom, side="right") - 1)
    return packed.first_structure + s, atom - int(packed.offsets[s])


def _describe_cell(packed: PackedStructures, s: int) -> str:
    cell = packed.cells[s]
    lengths = ", ".join(f"{v:.3g}" for v in np.linalg.norm(cell, axis=1))
    return f"cell {np.round(cell, 6).tolist()} (lengths {lengths} Å, pbc={packed.pbc[s].tolist()})"


def _too_many(packed, s, atom, count, cutoff, max_neighbours, at_least=False):
    structure = packed.first_structure + s
    where = f"each atom of structure {structure}" if atom is None else f"atom {atom} of structure {structure}"
    return ValueError(
        f"{where} has {'at least ' if at_least else ''}{count:,} neighbours within {cutoff:g} Å (periodic "
        f"images included), more than `max_neighbours`={max_neighbours:,}: {_describe_cell(packed, s)}. No physical "
        f"structure is that dense; are the cell and positions in Å? Raise `max_neighbours` if this is meant."
    )


def _periodic_heights(cells: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """(n_structures, 3) spacing of the lattice planes along each periodic direction (Å; inf if not periodic)."""
    a = cells
    cross = np.stack([np.cross(a[:, (k + 1) % 3], a[:, (k + 2) % 3]) for k in range(3)], axis=1)
    cross_norm = np.linalg.norm(cross, axis=2)
    lengths = np.linalg.norm(a, axis=2)
    volume = np.abs(np.einsum("sx,sx->s", a[:, 0], cross[:, 0]))
    n_periodic = pbc.sum(axis=1)
    heights = np.full(pbc.shape, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(3):
            i, j = (k + 1) % 3, (k + 2) % 3
            full = n_periodic == 3
            heights[full, k] = volume[full] / cross_norm[full, k]
            # two periodic directions k and i (j not): spacing of k's lines within the plane = |a_k x a_i| / |a_i|
            for other, missing in ((i, j), (j, i)):
                plane = (n_periodic == 2) & pbc[:, k] & pbc[:, other]
                heights[plane, k] = cross_norm[plane, missing] / lengths[plane, other]
            line = (n_periodic == 1) & pbc[:, k]
            heights[line, k] = lengths[line, k]
    heights[~pbc] = np.inf
    return heights


def _self_image_lower_bound(cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> int:
    """A lower bound of the periodic images of an atom within ``cutoff`` (excluding itself).

    On the Minkowski-reduced periodic lattice with vector lengths ``l_k``,
    every ``Σ n_k a_k`` with ``|n_k| <= floor(cutoff / (p l_k))`` (p periodic
    directions) is within ``cutoff`` by the triangle inequality.
    """
    from ase.geometry import minkowski_reduce

    reduced = np.asarray(minkowski_reduce(cell, pbc=pbc)[0])
    lengths = np.linalg.norm(reduced[np.asarray(pbc, dtype=bool)], axis=1)
    reach = np.floor(cutoff / (len(lengths) * lengths))
    return int(np.prod(2.0 * np.minimum(reach, 1e6) + 1.0)) - 1


def _refuse_impossible_counts(packed: PackedStructures, cutoff: float, max_neighbours: int) -> None:
    """Before searching: refuse cells whose neighbour counts are surely above the limit.

    Only structures whose bin stencil would be large are examined (a tiny or
    flattened cell), so ordinary inputs cost one vectorised pass.
    """
    periodic = packed.pbc.any(axis=1)
    if not periodic.any():
        return
    heights = _periodic_heights(packed.cells[periodic], packed.pbc[periodic])
    with np.errstate(over="ignore"):
        stencil = np.prod(np.where(np.isfinite(heights), 2.0 * np.ceil(cutoff / heights) + 3.0, 1.0), axis=1)
    for s in np.flatnonzero(periodic)[stencil > _STENCIL_CHECK]:
        bound = _self_image_lower_bound(packed.cells[s], packed.pbc[s], cutoff)
        if bound > max_neighbours:
            raise _too_many(packed, int(s), None, bound, cutoff, max_neighbours, at_least=True)


def check_distinct_positions(packed: PackedStructures, neighbours: NeighbourList,
                             min_distance: float = COINCIDENT_DISTANCE,
                             reason: str = "two atoms at one position: duplicated atoms?") -> None:
    """Raise ``ValueError`` if two atoms (or periodic images) are closer than ``min_distance`` (Å).

    The message names the first such structure, its closest two atoms and
    their distance, ``reason``, and every affected structure.
    ``neighbours`` must be a neighbour list of ``packed`` with a cutoff of
    at least ``min_distance``.
    """
    close = np.flatnonzero(neighbours.distances < min_distance)
    if close.size == 0:
        return
    structures = packed.structure_index[neighbours.center[close]]
    in_first = close[structures == structures.min()]
    p = int(in_first[np.argmin(neighbours.distances[in_first])])
    structure, i = _structure_of(packed, int(neighbours.center[p]))
    _, j = _structure_of(packed, int(neighbours.neighbour[p]))
    affected = np.unique(structures) + packed.first_structure
    image = " (an atom and its own periodic image: is the cell too small?)" if i == j else ""
    raise ValueError(
        f"structure {structure} has atoms {i} and {j} {float(neighbours.distances[p]):.3g} Å apart{image}, closer "
        f"than the minimum distance {min_distance:g} Å ({reason}); {len(affected)} structure(s) affected: "
        f"{affected[:10].tolist()}{'...' if len(affected) > 10 else ''}"
    )


def neighbour_list(packed: PackedStructures, cutoff: float, *, max_neighbours: int | None = None) -> NeighbourList:
    """Build the full neighbour list of every structure in ``packed``.

    Parameters
    ----------
    packed : PackedStructures
        Structures from :func:`kernelpot.structures.packing.pack`.
    cutoff : float
        Radius in Å; finite and > 0. Pairs with distance < ``cutoff`` are kept.
    max_neighbours : int or None, default=None
        Refuse (``ValueError`` naming the structure, atom, count and cell)
        any atom with more neighbours than this, before the pairs are
        stored; tiny periodic cells are refused before they are searched.
        None: no limit. Descriptors pass their ``max_neighbours``.

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
        ``cutoff`` is not finite or not > 0; more neighbours than ``max_neighbours``.

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
    if max_neighbours is not None:
        _refuse_impossible_counts(packed, cutoff, max_neighbours)
    if packed.n_structures == 1 and (pbc.any() or n_atoms > _BRUTE_FORCE_MAX_ATOMS):
        return _one_structure(packed, positions, cells[0], pbc[0], cutoff, max_neighbours)
    counts = np.zeros(n_atoms, dtype=np.int64)
    count_pairs(positions, cells, pbc, offsets, cutoff, counts)
    if max_neighbours is not None and n_atoms and counts.max() > max_neighbours:
        atom = int(np.argmax(counts > max_neighbours))
        structure, local = _structure_of(packed, atom)
        raise _too_many(packed, structure - packed.first_structure, local, int(counts[atom]), cutoff,
                        max_neighbours)
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


def _one_structure(packed, positions, cell, pbc, cutoff, max_neighbours):
    """One structure in a single cell-list pass (no counting pass): pairs appended, then grouped by centre.

    The buffers are sized from the mean density (30 % spare); a denser
    structure overflows them, and the pass runs once more at the exact size,
    after the per-atom counts are checked against ``max_neighbours``.
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
        if max_neighbours is not None and n_atoms and counts.max() > max_neighbours:
            atom = int(np.argmax(counts > max_neighbours))
            raise _too_many(packed, 0, atom, int(counts[atom]), cutoff, max_neighbours)
        if n_pairs <= capacity:
            break
        capacity = n_pairs
    pair_offsets = np.empty(n_atoms + 1, dtype=np.int64)
    neighbour = np.empty(n_pairs, dtype=np.int64)
    shifts = np.empty((n_pairs, 3), dtype=np.int64)
    vectors = np.empty((n_pairs, 3), dtype=np.float64)
    distances = np.empty(n_pairs, dtype=np.float64)
    decode_recorded(positions, cell, keys, starts, counts, wraps, radix, pair_offsets,
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

    def __call__(self, packed: PackedStructures, cutoff: float, *, max_neighbours: int | None = None) -> NeighbourList:
        """The pairs closer than ``cutoff``; ``max_neighbours`` as in :func:`neighbour_list` (checked when
        searching, at the search radius)."""
        self.n_calls += 1
        key = self._key(packed)
        last = self._last
        if last is not None and last[0] == key and last[1] == cutoff and np.array_equal(last[2], packed.positions):
            return last[3]  # several descriptors of one prediction asking for the same list
        result = self._serve(key, packed, cutoff, max_neighbours)
        self._last = (key, cutoff, np.array(packed.positions, dtype=np.float64), result)
        return result

    def _serve(self, key, packed, cutoff, max_neighbours):
        stored = self._stored.get(key)
        if stored is not None and stored[1].cutoff >= cutoff + self.skin * (1.0 - 1e-12):
            moved = packed.positions - stored[0]
            if np.einsum("ij,ij->i", moved, moved).max(initial=0.0) <= (0.5 * self.skin) ** 2:
                if self.skin == 0.0:
                    return restrict(stored[1], cutoff)
                return restrict(_moved(stored[1], packed), cutoff)
        searched = neighbour_list(packed, cutoff + self.skin, max_neighbours=max_neighbours)
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
