"""Reading labelled structures (energies, forces, virials) from extxyz and RuNNer files.

ASE's extxyz reader puts the keys it recognises as calculator results
(``energy``, ``forces``, ``stress``, ...) on a ``SinglePointCalculator``
(``atoms.calc.results``) and everything else in ``atoms.info`` (per
structure) or ``atoms.arrays`` (per atom). :func:`read_labelled` looks in
all three, so a key is found wherever ASE put it. RuNNer/n2p2 ``input.data``
files (recognised by their first line, ``begin``) are read by
:func:`kernelpot.structures.runner.read_runner`, which puts the labels in
the same places.

Labels are never dropped without a word: forces named by a key that no
structure has are an error listing the per-atom arrays that do exist (the
C-GAP-17 files call them ``force``); a key found in only some structures,
and stress or virial data under other names than the ones asked for
(mlearn's ``virial_stress_kbar``), are a :class:`LabelWarning` saying what
was found and how to use it or switch it off.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units

__all__ = ["LabelledStructures", "LabelWarning", "read_labelled", "read_structures"]

_STRESS_UNITS = {"eV/A^3": 1.0, "eV/Å^3": 1.0, "GPa": units.GPa, "kbar": 0.1 * units.GPa}
_STRESS_SIGNS = {"ase": 1.0, "pressure": -1.0}
_ON_MISSING = ("raise", "skip")
_PROPERTIES = ("energy", "forces", "virial")


class LabelWarning(UserWarning):
    """Labels found in only some structures, or label-like data that is not used."""


@dataclass
class LabelledStructures:
    """Structures and their labels, ready for ``SparseGPR.fit(**data.labels())``.

    Attributes
    ----------
    atoms : list of ase.Atoms
        Structures (Å), without calculators.
    energies : list of float or None
        Total energies in eV (``None``: not labelled).
    forces : list of ndarray of shape (n_atoms_s, 3) or None
        eV/Å.
    virials : list of ndarray of shape (3, 3) or None
        eV, ``virial = -stress * volume`` (ASE stress sign).
    config_types : list of str or None
    indices : ndarray of shape (n_structures,)
        Position of each kept structure in the source.
    skipped : dict
        ``{source index: reason}`` of structures left out (``on_missing="skip"``).
    """

    atoms: list
    energies: list
    forces: list
    virials: list
    config_types: list
    indices: np.ndarray
    skipped: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.atoms)

    def labels(self):
        """Keyword arguments of ``SparseGPR.fit`` (without the structures)."""
        return {"energies": self.energies, "forces": self.forces, "virials": self.virials,
                "config_types": self.config_types}


def read_structures(path, index=":"):
    """Structures of a file (any format ASE reads), or a ``ValueError`` that says what is wrong with it.

    Parameters
    ----------
    path : str or Path
    index : int, str or slice, default=":"
        Which frames: an integer (negative counts from the end), or a
        slice (``":"``, ``"2:"``, ``slice(...)``).

    Returns
    -------
    list of ase.Atoms, or ase.Atoms for an integer ``index``

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A folder, an empty file, one ASE cannot parse (the message names
        the file and ASE's complaint), or an integer ``index`` past the
        last frame (the message gives the number of frames).
    """
    from ase.io import read

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not a structure file")
    if not path.is_file():
        raise FileNotFoundError(f"structure file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{str(path)!r} is empty")
    if isinstance(index, str):
        try:
            index = int(index)
        except ValueError:
            pass
    try:
        # An integer is taken from the list of all frames: ASE's own lookup raises StopIteration
        # past the end and wraps some negative indices around.
        frames = read(path, index=":" if isinstance(index, (int, np.integer)) else index)
    except (MemoryError, RecursionError):
        raise
    except Exception as error:  # each ASE format parser fails in its own way
        raise ValueError(f"{str(path)!r} cannot be read as structures ({type(error).__name__}: "
                         f"{str(error)[:200]})") from None
    frames = [frames] if isinstance(frames, Atoms) else list(frames)
    if not frames:
        raise ValueError(f"{str(path)!r} holds no structure for index {index!r}")
    if isinstance(index, (int, np.integer)):
        if not -len(frames) <= index < len(frames):
            raise ValueError(f"{str(path)!r} has {len(frames)} frame(s); frame {index} is past the end")
        return frames[index]
    return frames


def _lookup(atoms, key, per_atom):
    """Value of ``key`` from calc.results, arrays or info, or None (also for ``key=None``: not read)."""
    if key is None:
        return None
    results = atoms.calc.results if atoms.calc is not None else {}
    if key in results:
        return results[key]
    if per_atom and key in atoms.arrays:
        return atoms.arrays[key]
    if key in atoms.info:
        return atoms.info[key]
    return None


def _present_keys(atoms):
    results = sorted(atoms.calc.results) if atoms.calc is not None else []
    arrays = sorted(k for k in atoms.arrays if k not in ("numbers", "positions"))
    return f"calculator results {results}, info {sorted(atoms.info)}, arrays {arrays}"


def _as_3x3(value, name, index):
    array = np.asarray(value, dtype=np.float64).ravel()
    if array.size == 9:
        return array.reshape(3, 3)
    if array.size == 6:  # Voigt xx yy zz yz xz xy
        xx, yy, zz, yz, xz, xy = array
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    raise ValueError(f"`{name}` of structure {index} must have 6 (Voigt) or 9 values; got {array.size}")


def _count_keys(frames, keys_of) -> dict:
    counts = {}
    for atoms in frames:
        for key in keys_of(atoms):
            counts[key] = counts.get(key, 0) + 1
    return counts


def _format_counts(counts: dict, n: int) -> str:
    return ", ".join(f"{key!r} ({count} of {n})" for key, count in sorted(counts.items())) or "none"


def _per_atom_keys(atoms):
    keys = {k for k in atoms.arrays if k not in ("numbers", "positions")}
    results = atoms.calc.results if atoms.calc is not None else {}
    keys |= {k for k, v in results.items() if np.ndim(v) == 2 and np.shape(v)[0] == len(atoms)}
    return keys


def _stress_like_keys(atoms):
    results = atoms.calc.results if atoms.calc is not None else {}
    return {k for k in list(results) + list(atoms.info) if "stress" in k.lower() or "virial" in k.lower()}


def _check_coverage(frames, keys, required) -> None:
    """Forces absent from every structure: error; labels in only some, or unused stress data: a LabelWarning."""
    n = len(frames)
    if keys["forces"] is not None and n:
        have = sum(_lookup(a, keys["forces"], per_atom=True) is not None for a in frames)
        if have == 0:
            raise ValueError(
                f"no structure has forces under `forces_key`={keys['forces']!r}; per-atom arrays found: "
                f"{_format_counts(_count_keys(frames, _per_atom_keys), n)}. Name the forces' key "
                f"(forces_key=..., --forces-key ...), or fit without forces: forces_key=None (--forces-key none)")
        if have < n and "forces" not in required:
            warnings.warn(f"forces `{keys['forces']}` found in {have} of {n} structures; the other {n - have} are "
                          "used without forces", LabelWarning, stacklevel=3)
    if keys["virial"] is None and keys["stress"] is None:
        return
    periodic = [a for a in frames if a.pbc.all()]
    have = sum(_lookup(a, keys["virial"], False) is not None or _lookup(a, keys["stress"], False) is not None
               for a in periodic)
    asked = f"`virial_key`={keys['virial']!r} and `stress_key`={keys['stress']!r}"
    if have == 0 and periodic:
        unused = {k: c for k, c in _count_keys(periodic, _stress_like_keys).items()
                  if k not in (keys["virial"], keys["stress"])}
        if unused:
            warnings.warn(
                f"stress/virial data found but not used: {_format_counts(unused, len(periodic))} periodic structures "
                f"have it, none has {asked}. To fit it, name it with its units and sign (stress_key=..., "
                f"stress_units=..., stress_sign=...; CLI --stress-key --stress-units --stress-sign); to fit without "
                f"it, virial_key=None and stress_key=None (--virial-key none --stress-key none)",
                LabelWarning, stacklevel=3)
    elif 0 < have < len(periodic) and "virial" not in required:
        warnings.warn(f"virials/stresses ({asked}) found in {have} of {len(periodic)} periodic structures; the "
                      f"other {len(periodic) - have} are used without them", LabelWarning, stacklevel=3)


class _Missing(Exception):
    pass


def _read_one(atoms, index, keys, stress_factor, required):
    energy = _lookup(atoms, keys["energy"], per_atom=False)
    forces = _lookup(atoms, keys["forces"], per_atom=True)
    virial = _lookup(atoms, keys["virial"], per_atom=False)
    if virial is not None:
        virial = _as_3x3(virial, keys["virial"], index)
    else:
        stress = _lookup(atoms, keys["stress"], per_atom=False)
        if stress is not None:
            if not atoms.pbc.all():
                raise ValueError(f"structure {index} has a `{keys['stress']}` but is not periodic (pbc="
                                 f"{atoms.pbc.tolist()}), so its volume is undefined")
            virial = -_as_3x3(stress, keys["stress"], index) * stress_factor * atoms.get_volume()
    found = {"energy": energy, "forces": forces, "virial": virial}
    for name in required:
        if found[name] is None:
            key = keys[name] if name != "virial" else f"{keys['virial']}' or '{keys['stress']}"
            raise _Missing(f"structure {index} has no '{key}' (required {name}); present: {_present_keys(atoms)}")
    if energy is not None:
        if np.ndim(energy) != 0:
            raise ValueError(f"`{keys['energy']}` of structure {index} must be a scalar; got {energy!r}")
        energy = float(energy)
        if not np.isfinite(energy):
            raise _Missing(f"structure {index} has a non-finite '{keys['energy']}': {energy}")
    if forces is not None:
        forces = np.array(forces, dtype=np.float64)
        if forces.shape != (len(atoms), 3):
            raise ValueError(f"`{keys['forces']}` of structure {index} must have shape ({len(atoms)}, 3); "
                             f"got {forces.shape}")
        if not np.all(np.isfinite(forces)):
            raise _Missing(f"structure {index} has non-finite '{keys['forces']}'")
    if virial is not None and not np.all(np.isfinite(virial)):
        raise _Missing(f"structure {index} has a non-finite virial")
    return energy, forces, virial


def read_labelled(source, *, energy_key="energy", forces_key="forces", virial_key="virial",
                  stress_key="stress", config_type_key="config_type", stress_units="eV/A^3",
                  stress_sign="ase", required=("energy", "forces"), on_missing="raise", index=":",
                  runner_units="atomic"):
    """Read structures and their energy, force and virial labels.

    Parameters
    ----------
    source : str, pathlib.Path, ase.Atoms or list of ase.Atoms
        A file or structures. A RuNNer/n2p2 file (first line ``begin``) is
        read with :func:`~kernelpot.structures.runner.read_runner`, any
        other file with ``ase.io.read(source, index)`` (extxyz and every
        format ASE knows).
    energy_key, forces_key, virial_key, stress_key, config_type_key : str
        Names of the labels. The virial (eV; 9 values row-major or 6 Voigt)
        is taken from ``virial_key`` if present, else derived from the
        stress as ``virial = -stress * volume``. ``forces_key``,
        ``virial_key`` and ``stress_key`` may be None (or ``"none"``): that
        label is not read. A ``forces_key`` that no structure has is an
        error listing the per-atom arrays found; forces or stresses found
        in only some structures, and stress-like data under other keys
        (e.g. mlearn's ``virial_stress_kbar``), give a :class:`LabelWarning`.
    stress_units : {"eV/A^3", "GPa", "kbar"}, default="eV/A^3"
    stress_sign : {"ase", "pressure"}, default="ase"
        ``"ase"``: tensile stress positive (ASE, the extxyz ``stress`` key);
        ``"pressure"``: compressive positive (VASP's ``in kB`` lines, and
        the mlearn ``virial_stress_kbar``).
    required : sequence of {"energy", "forces", "virial"}, default=("energy", "forces")
        Labels every structure must have; other labels are read when present.
    on_missing : {"raise", "skip"}, default="raise"
        What to do with a structure lacking a required label or with a
        non-finite one: raise a ``ValueError``, or leave it out and record
        it in ``skipped``.
    index : str or int, default=":"
        Which frames of a file to read.
    runner_units : {"atomic", "metal"}, default="atomic"
        Units of a RuNNer file: Bohr/Hartree (converted to Å/eV) or Å/eV.

    Returns
    -------
    LabelledStructures

    Raises
    ------
    ValueError
        Invalid options; no structure with forces under ``forces_key``; a
        structure lacking a required label (``on_missing="raise"``).

    Warns
    -----
    LabelWarning
        Forces or stresses in only some structures; stress or virial data
        found under keys that are not used.
    """
    forces_key, virial_key, stress_key = (None if key is None or str(key).lower() == "none" else key
                                          for key in (forces_key, virial_key, stress_key))
    if stress_units not in _STRESS_UNITS:
        raise ValueError(f"`stress_units` must be one of {list(_STRESS_UNITS)}; got {stress_units!r}")
    if stress_sign not in _STRESS_SIGNS:
        raise ValueError(f"`stress_sign` must be one of {list(_STRESS_SIGNS)}; got {stress_sign!r}")
    if on_missing not in _ON_MISSING:
        raise ValueError(f"`on_missing` must be one of {list(_ON_MISSING)}; got {on_missing!r}")
    if isinstance(required, str):
        required = (required,)
    bad = [r for r in required if r not in _PROPERTIES]
    if bad:
        raise ValueError(f"`required` entries must be among {list(_PROPERTIES)}; got {bad}")
    if "forces" in required and forces_key is None:
        raise ValueError("`required` includes 'forces' but `forces_key` is None (forces not read)")
    if "virial" in required and virial_key is None and stress_key is None:
        raise ValueError("`required` includes 'virial' but `virial_key` and `stress_key` are None (not read)")
    if isinstance(source, (str, Path)):
        from .structures.runner import is_runner_file, read_runner

        if Path(source).is_file() and is_runner_file(source):
            frames = read_runner(source, index=index, units=runner_units)
        else:
            frames = read_structures(source, index=index)
    else:
        frames = source
    frames = [frames] if isinstance(frames, Atoms) else list(frames)
    for i, atoms in enumerate(frames):
        if not isinstance(atoms, Atoms):
            raise TypeError(f"structure {i} is a {type(atoms).__name__}, not an ase.Atoms")
    keys = {"energy": energy_key, "forces": forces_key, "virial": virial_key, "stress": stress_key}
    _check_coverage(frames, keys, required)
    factor = _STRESS_UNITS[stress_units] * _STRESS_SIGNS[stress_sign]
    out = LabelledStructures([], [], [], [], [], np.zeros(0, dtype=np.int64))
    kept = []
    for i, atoms in enumerate(frames):
        try:
            energy, forces, virial = _read_one(atoms, i, keys, factor, required)
        except _Missing as error:
            if on_missing == "raise":
                raise ValueError(str(error)) from None
            out.skipped[i] = str(error)
            continue
        config_type = atoms.info.get(config_type_key)
        clean = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        clean.info.update({k: v for k, v in atoms.info.items()})
        out.atoms.append(clean)
        out.energies.append(energy)
        out.forces.append(forces)
        out.virials.append(virial)
        out.config_types.append(None if config_type is None else str(config_type))
        kept.append(i)
    out.indices = np.array(kept, dtype=np.int64)
    if not out.atoms:
        raise ValueError(f"no structure left: all {len(frames)} were skipped ({next(iter(out.skipped.values()), '')})")
    return out
