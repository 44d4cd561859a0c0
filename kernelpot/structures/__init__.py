"""Structures: packing ASE Atoms into flat arrays and neighbour search."""

from .neighbours import NeighbourList, neighbour_list
from .packing import PackedStructures, as_atoms_list, pack

__all__ = ["PackedStructures", "pack", "as_atoms_list", "NeighbourList", "neighbour_list"]
