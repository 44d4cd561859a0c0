"""Structures: packing ASE Atoms into flat arrays, neighbour search, readers for formats ASE lacks (RuNNer/n2p2)."""

from .neighbours import NeighbourList, neighbour_list
from .packing import PackedStructures, as_atoms_list, pack
from .runner import RunnerFormatError, read_runner, write_runner

__all__ = ["PackedStructures", "pack", "as_atoms_list", "NeighbourList", "neighbour_list", "read_runner", "write_runner",
           "RunnerFormatError"]
