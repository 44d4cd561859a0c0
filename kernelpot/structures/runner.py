"""RuNNer / n2p2 ``input.data`` files: reading into ASE ``Atoms`` and writing back.

The format (RuNNer manual; n2p2 documentation, "Data set format") is a
sequence of blocks::

    begin
    comment <free text>                         (optional, any number)
    lattice ax ay az                            (0 or 3 lines: the cell rows)
    lattice bx by bz
    lattice cx cy cz
    atom x y z element charge energy fx fy fz   (one per atom)
    energy E                                    (total energy)
    charge Q                                    (total charge)
    end

Neither code fixes the units; RuNNer's convention, used by most published
data sets (e.g. the NaCl–water revPBE0-D3 set of O'Neill et al.,
arXiv:2311.01527), is atomic units: lengths in Bohr, energies in Hartree,
forces in Hartree/Bohr. :func:`read_runner` converts to ASE's Å, eV and
eV/Å (``units="atomic"``, the default) or reads the numbers as they stand
(``units="metal"``: the file already holds Å and eV).

What goes where, as ASE's extxyz reader does it: ``energy`` and ``forces``
on a ``SinglePointCalculator`` (``atoms.calc.results``); per-atom
``charges`` (e) there too when any is non-zero (RuNNer's reference atomic
charges); the total ``charge`` (e) and the joined ``comment`` lines in
``atoms.info``. The per-atom ``energy`` column is unused by RuNNer and
n2p2 (always 0 in practice) and is not read. Positions are kept as written
(RuNNer files often hold unwrapped coordinates); call ``atoms.wrap()`` if
needed. Three ``lattice`` lines make a periodic cell, none a molecule
(``pbc=False``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers

__all__ = ["RUNNER_UNITS", "RunnerFormatError", "is_runner_file", "read_runner", "write_runner"]

#: ``units`` choices: (length in Å, energy in eV) of one file unit.
RUNNER_UNITS = {"atomic": (units.Bohr, units.Hartree), "metal": (1.0, 1.0)}
_ATOM_FIELDS = "x y z element charge energy fx fy fz"


class RunnerFormatError(ValueError):
    """A malformed RuNNer/n2p2 file; the message names the file and line."""


def _unit_factors(units_name):
    if units_name not in RUNNER_UNITS:
        raise ValueError(f"`units` must be one of {list(RUNNER_UNITS)}; got {units_name!r}")
    return RUNNER_UNITS[units_name]


def is_runner_file(path) -> bool:
    """True if the first non-blank line of ``path`` is ``begin`` (a RuNNer/n2p2 data file)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip():
                    return line.split()[0] == "begin"
    except (OSError, IsADirectoryError):
        return False
    return False


class _Block:
    """The lines of one ``begin`` … ``end`` block, checked as they arrive."""

    def __init__(self, where, line_number):
        self.where, self.begin_line = where, line_number
        self.comments, self.lattice, self.symbols = [], [], []
        self.positions, self.charges, self.forces = [], [], []
        self.energy = self.charge = None

    def error(self, line_number, message):
        return RunnerFormatError(f"{self.where} line {line_number}: {message}")

    def floats(self, line_number, fields, what):
        try:
            return [float(v) for v in fields]
        except ValueError:
            raise self.error(line_number, f"{what} must be numbers; got {' '.join(fields)!r}") from None

    def add(self, line_number, keyword, fields):
        if keyword == "comment":
            self.comments.append(" ".join(fields))
        elif keyword == "lattice":
            if len(fields) != 3 or len(self.lattice) == 3:
                raise self.error(line_number, "a block has 0 or 3 `lattice` lines of 3 numbers; got "
                                 + (f"{len(fields)} numbers" if len(fields) != 3 else "a fourth"))
            self.lattice.append(self.floats(line_number, fields, "`lattice` values"))
        elif keyword == "atom":
            if len(fields) != 9:
                raise self.error(line_number, f"`atom` needs 9 fields ({_ATOM_FIELDS}); got {len(fields)}")
            if fields[3] not in atomic_numbers:
                raise self.error(line_number, f"unknown element {fields[3]!r} in `atom` line")
            numbers = self.floats(line_number, fields[:3] + fields[4:], "`atom` coordinates, charge and forces")
            self.symbols.append(fields[3])
            self.positions.append(numbers[:3])
            self.charges.append(numbers[3])
            self.forces.append(numbers[5:])
        elif keyword in ("energy", "charge"):
            if len(fields) != 1:
                raise self.error(line_number, f"`{keyword}` needs one number; got {len(fields)} fields")
            if getattr(self, keyword) is not None:
                raise self.error(line_number, f"second `{keyword}` line in the block begun on line "
                                 f"{self.begin_line}")
            setattr(self, keyword, self.floats(line_number, fields, f"`{keyword}`")[0])
        else:
            raise self.error(line_number, f"unknown keyword {keyword!r} (expected comment, lattice, atom, "
                             "energy, charge or end)")

    def atoms(self, line_number, length, energy_unit):
        if not self.symbols:
            raise self.error(line_number, f"the block begun on line {self.begin_line} has no `atom` lines")
        if len(self.lattice) not in (0, 3):
            raise self.error(line_number, f"the block begun on line {self.begin_line} has "
                             f"{len(self.lattice)} `lattice` lines; need 0 or 3")
        if self.energy is None:
            raise self.error(line_number, f"the block begun on line {self.begin_line} has no `energy` line")
        periodic = len(self.lattice) == 3
        atoms = Atoms(symbols=self.symbols, positions=np.array(self.positions) * length,
                      cell=np.array(self.lattice) * length if periodic else None, pbc=periodic)
        if periodic and abs(np.linalg.det(atoms.cell.array)) < 1e-12:
            raise self.error(line_number, f"the lattice of the block begun on line {self.begin_line} is singular")
        results = {"energy": self.energy * energy_unit,
                   "forces": np.array(self.forces) * (energy_unit / length)}
        charges = np.array(self.charges)
        if np.any(charges != 0.0):
            results["charges"] = charges
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["charge"] = 0.0 if self.charge is None else self.charge
        if self.comments:
            atoms.info["comment"] = "\n".join(self.comments)
        return atoms


def _select(frames_count, index):
    if isinstance(index, str):
        from ase.io.formats import string2index

        index = string2index(index)
    if isinstance(index, (int, np.integer)):
        if not -frames_count <= index < frames_count:
            raise IndexError(f"frame {index} out of range: the file has {frames_count} frames")
        return [int(index) % frames_count], True
    if isinstance(index, slice):
        return list(range(frames_count))[index], False
    raise TypeError(f"`index` must be an int, a slice or a string like ':' or '2:10'; got {index!r}")


def read_runner(path, index=":", *, units="atomic"):
    """Read a RuNNer/n2p2 ``input.data`` file.

    Parameters
    ----------
    path : str or Path
    index : int, slice or str, default=":"
        Which frames (ASE's convention: ``":"``, ``"-1"``, ``"2:10:2"``);
        an integer returns one ``Atoms``, anything else a list.
    units : {"atomic", "metal"}, default="atomic"
        Units of the file: ``"atomic"`` = Bohr, Hartree, Hartree/Bohr
        (RuNNer's convention), converted to Å, eV, eV/Å with ASE's
        constants; ``"metal"`` = Å, eV, eV/Å already.

    Returns
    -------
    ase.Atoms or list of ase.Atoms
        Energies (eV) and forces (eV/Å, shape (n_atoms, 3)) on a
        ``SinglePointCalculator``; per-atom ``charges`` (e) there too when
        the file's charge column is not all zero; ``info["charge"]`` the
        total charge (e, 0 when the block has no ``charge`` line) and
        ``info["comment"]`` the comment lines.

    Raises
    ------
    RunnerFormatError
        A malformed block, naming the file and line: missing ``end`` or
        ``energy``, an ``atom`` line without 9 fields, an unknown element,
        a number that does not parse, 1–2 or 4 ``lattice`` lines, text
        outside a block.
    """
    length, energy_unit = _unit_factors(units)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"RuNNer file not found: {path}")
    frames, block = [], None
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            keyword = fields[0]
            if block is None:
                if keyword != "begin":
                    raise RunnerFormatError(f"{path} line {line_number}: expected `begin`, got {keyword!r} "
                                            "outside a begin … end block")
                block = _Block(path, line_number)
            elif keyword == "begin":
                raise block.error(line_number, f"`begin` inside the block begun on line {block.begin_line} "
                                  "(missing `end`?)")
            elif keyword == "end":
                frames.append(block.atoms(line_number, length, energy_unit))
                block = None
            else:
                block.add(line_number, keyword, fields[1:])
    if block is not None:
        raise block.error(line_number, f"file ends inside the block begun on line {block.begin_line} "
                          "(missing `end`)")
    if not frames:
        raise RunnerFormatError(f"{path}: no `begin` … `end` block found")
    chosen, single = _select(len(frames), index)
    return frames[chosen[0]] if single else [frames[i] for i in chosen]


def write_runner(path, frames, *, units="atomic"):
    """Write structures as a RuNNer/n2p2 ``input.data`` file (the inverse of :func:`read_runner`).

    Parameters
    ----------
    path : str or Path
    frames : ase.Atoms or list of ase.Atoms
        Each needs an energy (eV) on its calculator; forces (eV/Å) and
        per-atom ``charges`` (e) are written when present (else zeros),
        ``info["charge"]`` (e, default 0) and ``info["comment"]`` too.
        Cells are written only for structures periodic in all three
        directions; partly periodic ones are an error (the format has no
        way to say so).
    units : {"atomic", "metal"}, default="atomic"
    """
    from ..utils.files import atomic_write

    length, energy_unit = _unit_factors(units)
    frames = [frames] if isinstance(frames, Atoms) else list(frames)
    lines = []
    for i, atoms in enumerate(frames):
        if atoms.calc is None or "energy" not in atoms.calc.results:
            raise ValueError(f"structure {i} has no energy on its calculator; RuNNer blocks need one")
        if atoms.pbc.any() and not atoms.pbc.all():
            raise ValueError(f"structure {i} is periodic in some directions only (pbc={atoms.pbc.tolist()}); "
                             "RuNNer cells are periodic in all three or absent")
        results = atoms.calc.results
        forces = np.asarray(results.get("forces", np.zeros((len(atoms), 3)))) / (energy_unit / length)
        charges = np.asarray(results.get("charges", np.zeros(len(atoms))))
        lines.append("begin")
        lines.extend(f"comment {text}" for text in str(atoms.info.get("comment", "")).splitlines() if text)
        if atoms.pbc.all():
            lines.extend("lattice " + " ".join(f"{v:.10f}" for v in row) for row in atoms.cell.array / length)
        for symbol, position, charge, force in zip(atoms.get_chemical_symbols(), atoms.positions / length,
                                                   charges, forces):
            lines.append("atom " + " ".join(f"{v:.10f}" for v in position) + f" {symbol} {charge:.10f} 0.0 "
                         + " ".join(f"{v:.10e}" for v in force))
        lines.append(f"energy {results['energy'] / energy_unit:.12f}")
        lines.append(f"charge {float(atoms.info.get('charge', 0.0)):.10f}")
        lines.append("end")
    atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"))
