"""Packing many ASE ``Atoms`` into flat arrays, validated once.

Every descriptor consumes :class:`PackedStructures`: atoms of all structures
are concatenated in input order, so row ``i`` of a per-atom feature matrix is
atom ``i`` of this packing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

__all__ = ["PackedStructures", "pack", "as_atoms_list", "structure_chunks", "sub_packing"]


@dataclass(frozen=True)
class PackedStructures:
    """Flat arrays describing a list of structures.

    Attributes
    ----------
    positions : ndarray of shape (n_atoms, 3), float64
        Cartesian positions in Å, all structures concatenated in input order.
    numbers : ndarray of shape (n_atoms,), int64
        Atomic numbers.
    cells : ndarray of shape (n_structures, 3, 3), float64
        Lattice vectors as rows, in Å (all zero for a molecule without a cell).
    pbc : ndarray of shape (n_structures, 3), bool
        Periodicity along each lattice vector.
    offsets : ndarray of shape (n_structures + 1,), int64
        Atoms of structure ``s`` are rows ``offsets[s]:offsets[s + 1]``.
    first_structure : int, default=0
        Index of structure 0 in the caller's input (a :func:`sub_packing`
        of structures ``first:last`` has ``first``), so error messages
        name structures as the caller numbers them.
    """

    positions: np.ndarray
    numbers: np.ndarray
    cells: np.ndarray
    pbc: np.ndarray
    offsets: np.ndarray
    first_structure: int = 0

    @property
    def n_structures(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def structure_index(self) -> np.ndarray:
        """ndarray of shape (n_atoms,): the structure each atom belongs to."""
        return np.repeat(np.arange(self.n_structures), np.diff(self.offsets))


def as_atoms_list(atoms) -> list[Atoms]:
    """Return ``atoms`` as a list of ``Atoms`` (a single ``Atoms`` becomes a one-element list)."""
    if isinstance(atoms, Atoms):
        return [atoms]
    if isinstance(atoms, PackedStructures):
        raise TypeError("expected ASE Atoms or a list of them, got PackedStructures")
    try:
        atoms_list = list(atoms)
    except TypeError:
        raise TypeError(
            f"expected ASE Atoms or a list of Atoms, got {type(atoms).__name__}"
        ) from None
    for index, item in enumerate(atoms_list):
        if not isinstance(item, Atoms):
            raise TypeError(
                f"structure {index} is a {type(item).__name__}, not an ase.Atoms"
            )
    return atoms_list


def pack(atoms, *, allow_empty: bool = False) -> PackedStructures:
    """Validate and pack one or many ASE ``Atoms`` into flat arrays.

    Parameters
    ----------
    atoms : ase.Atoms or sequence of ase.Atoms
        Structures; positions in Å.
    allow_empty : bool, default=False
        Accept structures with no atoms.

    Returns
    -------
    PackedStructures

    Raises
    ------
    ValueError
        No structures; a structure without atoms; non-finite positions or
        cell; a periodic direction whose lattice vector is zero or a cell of
        zero volume with every direction periodic.
    """
    if isinstance(atoms, PackedStructures):
        return atoms
    atoms_list = as_atoms_list(atoms)
    if len(atoms_list) == 0:
        raise ValueError("no structures given: expected at least one ase.Atoms")
    n_structures = len(atoms_list)
    counts = np.array([len(a) for a in atoms_list], dtype=np.int64)
    offsets = np.zeros(n_structures + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    positions = np.empty((offsets[-1], 3), dtype=np.float64)
    numbers = np.empty(offsets[-1], dtype=np.int64)
    cells = np.zeros((n_structures, 3, 3), dtype=np.float64)
    pbc = np.zeros((n_structures, 3), dtype=bool)
    for s, structure in enumerate(atoms_list):
        if counts[s] == 0 and not allow_empty:
            raise ValueError(f"structure {s} has no atoms")
        pos = np.asarray(structure.positions, dtype=np.float64)
        if not np.all(np.isfinite(pos)):
            bad = np.unique(np.nonzero(~np.isfinite(pos))[0])
            raise ValueError(
                f"structure {s} has non-finite (NaN or inf) positions for atoms {bad.tolist()}"
            )
        cell = np.asarray(structure.cell.array, dtype=np.float64)
        if not np.all(np.isfinite(cell)):
            raise ValueError(f"structure {s} has a non-finite cell: {cell.tolist()}")
        periodic = np.asarray(structure.pbc, dtype=bool)
        _check_cell(s, cell, periodic)
        positions[offsets[s] : offsets[s + 1]] = pos
        numbers[offsets[s] : offsets[s + 1]] = structure.numbers
        cells[s] = cell
        pbc[s] = periodic
    return PackedStructures(positions, numbers, cells, pbc, offsets)


def _check_cell(index: int, cell: np.ndarray, periodic: np.ndarray) -> None:
    lengths = np.linalg.norm(cell, axis=1)
    for axis in range(3):
        if periodic[axis] and lengths[axis] < 1e-12:
            raise ValueError(
                f"structure {index} is periodic along lattice vector {axis} "
                f"but that vector is zero: cell={cell.tolist()}"
            )
    if periodic.any():
        # The periodic vectors must be linearly independent, otherwise images overlap.
        vectors = cell[periodic]
        gram_det = np.linalg.det(vectors @ vectors.T)
        scale = np.prod(lengths[periodic]) ** 2
        if gram_det <= 1e-12 * scale:
            raise ValueError(
                f"structure {index} has a periodic cell of zero volume (its periodic "
                f"lattice vectors are linearly dependent): cell={cell.tolist()}"
            )


def structure_chunks(offsets: np.ndarray, max_atoms: int):
    """Yield consecutive structure ranges ``(first, last)`` of at most ``max_atoms`` atoms.

    A structure larger than ``max_atoms`` is a chunk on its own. Used to
    bound the memory of per-pair arrays (descriptor gradients).
    """
    first, n_structures = 0, len(offsets) - 1
    while first < n_structures:
        last = int(np.searchsorted(offsets, offsets[first] + max_atoms, side="right")) - 1
        last = min(max(last, first + 1), n_structures)
        yield first, last
        first = last


def atom_budget_groups(atoms_list, max_atoms: int) -> list[list[int]]:
    """Indices of ``atoms_list`` in consecutive groups of at most ``max_atoms`` atoms (see :func:`structure_chunks`)."""
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in atoms_list])])
    return [list(range(first, last)) for first, last in structure_chunks(offsets, max_atoms)] or [[]]


def sub_packing(packed: PackedStructures, first: int, last: int):
    """Structures ``first:last`` of ``packed`` as their own packing.

    Returns
    -------
    sub : PackedStructures
    start, stop : int
        The global atom range of ``sub`` in ``packed``.
    """
    start, stop = int(packed.offsets[first]), int(packed.offsets[last])
    if first == 0 and last == packed.n_structures:
        return packed, start, stop
    sub = PackedStructures(
        positions=packed.positions[start:stop], numbers=packed.numbers[start:stop],
        cells=packed.cells[first:last], pbc=packed.pbc[first:last],
        offsets=packed.offsets[first : last + 1] - start, first_structure=packed.first_structure + first,
    )
    return sub, start, stop
