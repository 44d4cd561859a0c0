"""The electron-density dataset container: reference coefficients, overlaps, electron counts, dipoles.

A :class:`DensitySet` holds, for every structure, the coefficients of its
electron density on an auxiliary Gaussian basis (:class:`~kernelpot.density.basis.AuxiliaryBasis`,
kernelpot's function order and real-harmonic convention), the overlap matrix
of that basis, the electron count and the dipole of the reference
calculation. :func:`kernelpot.density.references.compute_density_references`
makes one with PySCF (an optional dependency, the ``[density]`` extra);
:func:`kernelpot.datasets.load_water_density` reads the bundled water set.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from .basis import AuxiliaryBasis

__all__ = ["DensitySet", "closed_shell_electrons"]

FORMAT_VERSION = 1


def closed_shell_electrons(atoms: Atoms, index: int = 0, charge: int = 0) -> int:
    """Electron count of a neutral (or ``charge``) closed-shell structure; odd counts are errors.

    Raises
    ------
    ValueError
        If the count is odd (no closed-shell reference exists) or not positive.
    """
    n_electrons = int(np.sum(atoms.numbers)) - int(charge)
    if n_electrons <= 0 or n_electrons % 2:
        raise ValueError(
            f"structure {index} ({atoms.get_chemical_formula()}, charge {charge}) has "
            f"{n_electrons} electrons: a closed-shell reference needs an even, positive count"
        )
    return n_electrons


@dataclass
class DensitySet:
    """Reference densities of a list of structures on one auxiliary basis.

    Attributes
    ----------
    structures : list of ase.Atoms
        Molecules (non-periodic), positions in Å.
    coefficients : list of ndarray of shape (n_functions_s,)
        Density coefficients of each structure, e·Bohr^(-3/2), in the order of
        ``basis.layout(structure.numbers)``.
    overlaps : list of ndarray of shape (n_functions_s, n_functions_s)
        Overlap matrices ``S_PQ = ∫ φ_P φ_Q dr`` (dimensionless).
    n_electrons : ndarray of shape (n_structures,), int
        Electron count of the reference calculation.
    dipoles : ndarray of shape (n_structures, 3)
        Dipole of the self-consistent reference density plus nuclei, e·Å
        (origin of coordinates; the structures are neutral).
    basis : AuxiliaryBasis
    metadata : dict
        Level of theory, code versions, timings.
    """

    structures: list
    coefficients: list
    overlaps: list
    n_electrons: np.ndarray
    dipoles: np.ndarray
    basis: AuxiliaryBasis
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.structures)
        self.n_electrons = np.asarray(self.n_electrons, dtype=np.int64).reshape(-1)
        self.dipoles = np.asarray(self.dipoles, dtype=np.float64).reshape(-1, 3)
        for name in ("coefficients", "overlaps", "n_electrons", "dipoles"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"`{name}` must have one entry per structure ({n}); "
                                 f"got {len(getattr(self, name))}")
        for i, (atoms, c, s) in enumerate(zip(self.structures, self.coefficients, self.overlaps)):
            self.basis.check_species(atoms.numbers, f"structure {i}")
            size = self.basis.n_functions(atoms.numbers)
            if np.shape(c) != (size,) or np.shape(s) != (size, size):
                raise ValueError(
                    f"structure {i} has coefficients {np.shape(c)} and overlap {np.shape(s)}, but basis "
                    f"{self.basis.name!r} has {size} functions for it: basis mismatch"
                )

    def __len__(self) -> int:
        return len(self.structures)

    @property
    def shape(self) -> tuple[int]:
        """``(n_structures,)``: with :meth:`__getitem__`, scikit-learn's model selection
        (``cross_val_score``, ``KFold`` splits) indexes a DensitySet like an array of samples."""
        return (len(self),)

    def __getitem__(self, key) -> DensitySet:
        """The structures ``key`` (integer indices, a slice or a boolean mask) as a new set; see :meth:`subset`."""
        if isinstance(key, tuple):  # scikit-learn indexes samples as X[key, ...]
            if len(key) != 2 or key[1] is not Ellipsis:
                raise IndexError(f"a DensitySet is indexed by structure only; got {key!r}")
            key = key[0]
        if isinstance(key, slice):
            return self.subset(np.arange(len(self))[key])
        key = np.asarray(key)
        if key.dtype == bool:
            if key.shape != (len(self),):
                raise IndexError(f"a boolean mask must have {len(self)} entries; got shape {key.shape}")
            key = np.flatnonzero(key)
        elif not np.issubdtype(key.dtype, np.integer):
            raise IndexError(f"a DensitySet is indexed by integers, a slice or a boolean mask; got {key.dtype}")
        if key.ndim == 0:
            key = key.reshape(1)
        return self.subset(key)

    def subset(self, indices) -> DensitySet:
        """The structures ``indices`` (a new set sharing the arrays)."""
        indices = np.asarray(indices, dtype=int).reshape(-1)
        # Per-structure metadata (timings, fit errors) follow the structures.
        metadata = {key: [value[i] for i in indices] if isinstance(value, list) and len(value) == len(self)
                    else value for key, value in self.metadata.items()}
        return DensitySet([self.structures[i] for i in indices], [self.coefficients[i] for i in indices],
                          [self.overlaps[i] for i in indices], self.n_electrons[indices],
                          self.dipoles[indices], self.basis, metadata)

    def __add__(self, other: DensitySet) -> DensitySet:
        if not isinstance(other, DensitySet):
            return NotImplemented
        if other.basis != self.basis:
            raise ValueError(f"cannot join density sets on bases {self.basis.name!r} and {other.basis.name!r}")
        return DensitySet(self.structures + other.structures, self.coefficients + other.coefficients,
                          self.overlaps + other.overlaps,
                          np.concatenate([self.n_electrons, other.n_electrons]),
                          np.concatenate([self.dipoles, other.dipoles]), self.basis, _joined(self, other))

    # ---------------------------------------------------------------- files
    def save(self, path, *, compact: bool = False) -> None:
        """Write an ``.npz`` file (compressed).

        Parameters
        ----------
        path : str or Path
        compact : bool, default=False
            Store only the upper triangles of the overlaps, in float32
            (relative error ~1e-7, ample for the error metric and training;
            halves and then halves again the largest part of the file).
        """
        triangles = [s[np.triu_indices(len(s))] for s in self.overlaps]
        arrays = {
            "format_version": np.array(FORMAT_VERSION),
            "numbers": np.concatenate([a.numbers for a in self.structures]).astype(np.int64),
            "positions": np.concatenate([a.positions for a in self.structures]),
            "atom_offsets": np.cumsum([0] + [len(a) for a in self.structures]).astype(np.int64),
            "coefficients": np.concatenate(self.coefficients),
            "overlap_triangles": np.concatenate(triangles).astype(np.float32 if compact else np.float64),
            "n_electrons": self.n_electrons,
            "dipoles": self.dipoles,
            "metadata": np.array(json.dumps(self.metadata)),
        }
        arrays.update(self.basis.to_arrays())
        # Written next to the target and renamed, so a reader never sees half a file.
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(partial, path)

    @classmethod
    def load(cls, path) -> DensitySet:
        """Read a file written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"density dataset {str(path)!r} does not exist")
        with np.load(path, allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}  # each access would decompress again
            version = int(data["format_version"])
            if version > FORMAT_VERSION:
                raise ValueError(f"{path} has density-set format {version}; this kernelpot reads "
                                 f"up to {FORMAT_VERSION}: upgrade kernelpot")
            basis = AuxiliaryBasis.from_arrays(data)
            offsets = data["atom_offsets"]
            structures = [Atoms(numbers=data["numbers"][a:b], positions=data["positions"][a:b])
                          for a, b in zip(offsets[:-1], offsets[1:])]
            sizes = [basis.n_functions(a.numbers) for a in structures]
            bounds = np.cumsum([0] + sizes)
            tri_bounds = np.cumsum([0] + [n * (n + 1) // 2 for n in sizes])
            coefficients = [data["coefficients"][a:b].copy() for a, b in zip(bounds[:-1], bounds[1:])]
            overlaps = []
            for n, a, b in zip(sizes, tri_bounds[:-1], tri_bounds[1:]):
                s = np.zeros((n, n))
                s[np.triu_indices(n)] = data["overlap_triangles"][a:b]
                overlaps.append(s + np.triu(s, 1).T)
            return cls(structures, coefficients, overlaps, data["n_electrons"], data["dipoles"], basis,
                       json.loads(str(data["metadata"])))


def _joined(first: DensitySet, second: DensitySet) -> dict:
    """Metadata of two joined sets: per-structure lists concatenated, other entries from ``first``."""
    out = dict(first.metadata)
    for key, value in second.metadata.items():
        mine = out.get(key)
        if isinstance(mine, list) and isinstance(value, list) and len(mine) == len(first) \
                and len(value) == len(second):
            out[key] = mine + value
    return out
