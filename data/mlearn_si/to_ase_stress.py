"""Rewrite mlearn's ``virial_stress_kbar`` (kbar, VASP's sign: compressive positive) as ASE's ``stress``.

    python to_ase_stress.py ORIGINAL.extxyz BUNDLED.extxyz

Only that entry of each frame's comment line changes:
``stress = -virial_stress_kbar x 0.1 GPa`` in eV/Å³ (``ase.units.GPa``; tensile positive, row-major 3x3,
12 significant digits), the key ``ase.io.read`` puts on each frame's calculator (``atoms.get_stress()``) and
``kernelpot fit`` reads by default. Everything else is copied byte for byte.
"""

import re
import sys

from ase import units

_ENTRY = re.compile(r'virial_stress_kbar="([^"]*)"')


def convert_comment(line: str) -> str:
    match = _ENTRY.search(line)
    if match is None:
        raise ValueError(f"no virial_stress_kbar in comment line: {line[:80]!r}")
    kbar = [float(value) for value in match.group(1).split()]
    if len(kbar) != 9:
        raise ValueError(f"virial_stress_kbar must have 9 values; got {len(kbar)}")
    stress = " ".join(f"{-value * 0.1 * units.GPa:.12g}" for value in kbar)
    return line[: match.start()] + f'stress="{stress}"' + line[match.end():]


def convert(text: str) -> str:
    lines, out, i = text.splitlines(keepends=True), [], 0
    while i < len(lines):
        n_atoms = int(lines[i])
        out += [lines[i], convert_comment(lines[i + 1])] + lines[i + 2 : i + 2 + n_atoms]
        i += 2 + n_atoms
    return "".join(out)


if __name__ == "__main__":
    source, target = sys.argv[1:3]
    with open(source) as handle:
        converted = convert(handle.read())
    with open(target, "w") as handle:
        handle.write(converted)
