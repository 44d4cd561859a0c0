"""Structures: packing ASE Atoms into flat arrays, neighbour search, readers for formats ASE lacks (RuNNer/n2p2).

Names are imported on first use (:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "PackedStructures": "packing",
    "pack": "packing",
    "as_atoms_list": "packing",
    "NeighbourList": "neighbours",
    "neighbour_list": "neighbours",
    "VerletNeighbours": "neighbours",
    "read_runner": "runner",
    "write_runner": "runner",
    "RunnerFormatError": "runner",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
