"""Readers for tensorial datasets: TENSOAP (SA-GPR) water sets and the QM7-X subsets.

The TENSOAP molecular files (water monomers, dimers, Zundel cations) carry an
all-zero ``Lattice=``, which makes ASE set ``pbc=True`` with a zero cell,
and :func:`kernelpot.structures.packing.pack` rightly rejects such a
structure. :func:`read_tensor_data` returns them as finite molecules
(``pbc=False``, zero cell); structures with a real cell (bulk water) keep it.

Units are kept as stored: the TENSOAP targets are in atomic units (dipole in
e·bohr, polarizability in bohr³), positions in Å. The QM7-X files do not
state their units (see ``PROVENANCE.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

__all__ = ["QM7X_FILES", "TENSOAP_FILES", "TensorDataset", "read_tensor_data"]

#: Files of the shared data directory (relative to ``tensors/``) by short name.
TENSOAP_FILES = {
    "water_monomer": "tensoap/water_monomer_coords_1000.xyz",
    "water_dimer": "tensoap/water_dimer_coords_1000.xyz",
    "water_zundel": "tensoap/water_zundel_coords_1000.xyz",
    "water_bulk": "tensoap/water_bulk_coords_1000.xyz",
}
QM7X_FILES = {
    "qm7x_chno": "qm7x/qm7x_reduced_100_CHNO.xyz",
    "qm7x_c5h7ns": "qm7x/qm7x_reduced_100_C5NH7.xyz",
}

# Flat lengths of per-structure values and the Cartesian shape they stand for.
_SHAPES = {3: (3,), 9: (3, 3), 27: (3, 3, 3)}


@dataclass
class TensorDataset:
    """Structures and their tensorial labels.

    Attributes
    ----------
    atoms : list of ase.Atoms
        Structures (positions in Å); molecules have ``pbc=False`` and a zero cell.
    targets : dict of str to ndarray
        Every numeric per-structure key of the file, shaped by its length:
        1 → (n,), 3 → (n, 3) (vectors, e.g. ``mu``), 9 → (n, 3, 3) (row-major,
        e.g. ``alpha``), 27 → (n, 3, 3, 3) (e.g. ``beta``). Units as stored.
    source : str
        The file read.
    skipped_keys : dict of str to str
        Per-structure keys not turned into targets, with the reason.
    """

    atoms: list
    targets: dict
    source: str
    skipped_keys: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.atoms)


def read_tensor_data(path, *, index=":") -> TensorDataset:
    """Read an extxyz file of structures with tensor labels.

    Parameters
    ----------
    path : str or Path
        extxyz file (e.g. a TENSOAP ``coords_1000.xyz`` or a QM7-X subset).
    index : str or int, default=":"
        ASE index of the structures to read.

    Returns
    -------
    TensorDataset

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file holds no structure, or a key has different lengths in
        different structures (it is then skipped, not raised, unless no
        key is usable: see ``skipped_keys``).

    Examples
    --------
    >>> data = read_tensor_data("water_zundel_coords_1000.xyz")  # doctest: +SKIP
    >>> data.targets["mu"].shape, data.atoms[0].pbc.any()  # doctest: +SKIP
    ((1000, 3), False)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`path` does not exist: {path}")
    frames = ase.io.read(path, index=index)
    if isinstance(frames, Atoms):
        frames = [frames]
    if not frames:
        raise ValueError(f"`path` holds no structures: {path}")
    atoms = [_clean(frame) for frame in frames]
    targets, skipped = _collect_targets(frames)
    return TensorDataset(atoms=atoms, targets=targets, source=str(path), skipped_keys=skipped)


def _clean(frame: Atoms) -> Atoms:
    """A fresh Atoms without calculator; a zero (or singular) cell becomes non-periodic."""
    cell = np.asarray(frame.cell[:], dtype=float)
    periodic = bool(np.any(frame.pbc)) and abs(np.linalg.det(cell)) > 1e-12
    if periodic:
        return Atoms(numbers=frame.numbers, positions=frame.positions, cell=cell, pbc=frame.pbc)
    return Atoms(numbers=frame.numbers, positions=frame.positions, pbc=False)


def _collect_targets(frames):
    targets, skipped = {}, {}
    keys = [key for key in frames[0].info if key != "pbc"]
    for key in keys:
        values = []
        for frame in frames:
            value = frame.info.get(key)
            try:
                values.append(np.atleast_1d(np.asarray(value, dtype=np.float64)))
            except (TypeError, ValueError):
                values = None
                break
        if values is None:
            skipped[key] = "not numeric in every structure"
            continue
        lengths = {len(v) for v in values}
        if len(lengths) != 1:
            skipped[key] = f"lengths differ between structures: {sorted(lengths)}"
            continue
        length = lengths.pop()
        stacked = np.stack(values)
        if length == 1:
            targets[key] = stacked[:, 0]
        elif length in _SHAPES:
            targets[key] = stacked.reshape((len(frames),) + _SHAPES[length])
        else:
            skipped[key] = f"length {length} is not 1, 3, 9 or 27"
    return targets, skipped
