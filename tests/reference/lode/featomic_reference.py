"""featomic's ``LodeSphericalExpansion`` in kernelpot's layout, and the frozen reference made from it.

Run ``python tests/reference/lode/featomic_reference.py`` (featomic installed) to rewrite
``featomic_lode.npz``: two periodic structures (a 9-atom molecule in a 6 Å cube, as in
featomic's own tests, and a rattled triclinic H/O/Na/Cl cell), the coefficients
``v[i, a, n, l*l + l + m]`` and, for the first structure, their position gradients as
dense rows ``[i, j, x, a, n, lm]``. ``tests/test_lode.py`` compares kernelpot's
``LODE.expansion`` with the file, and with featomic itself when it imports.

Matched hyperparameters: featomic's ``SmearedPowerLaw`` (``smearing`` = σ, exponent 1) and
``Gto`` radial basis (``radius`` = ``r_cut``, ``max_radial`` = ``n_max - 1``, no splines),
with ``k_cutoff`` = 2.6π/σ: featomic sums all k ≠ 0 below it, and its terms there are below
e^(-33) of the largest, so the truncation is far below the compared digits.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
from ase import Atoms

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "featomic_lode.npz"
SETTINGS = dict(species=[1, 6, 8, 11, 17], r_cut=2.5, n_max=4, l_max=3, smearing=1.0)


def structures() -> list[Atoms]:
    molecule = Atoms(
        "CHOC4H2",
        positions=[[3.88997, 5.11396, 1.9859], [1.60538, 5.74085, 3.48071], [5.15178, 5.59335, 5.55114],
                   [2.22548, 2.03678, 4.16896], [2.33853, 2.79487, 2.3533], [3.54073, 3.59016, 2.34664],
                   [1.34344, 2.94555, 2.4665], [1.74165, 3.03466, 0.921584], [0.474942, 3.34246, 2.73754]],
        cell=[6.0, 6.0, 6.0], pbc=True,
    )
    rng = np.random.default_rng(7)
    cell = np.array([[7.0, 0.0, 0.0], [1.2, 6.5, 0.0], [-0.8, 0.9, 7.4]])
    fractions = np.array([[0.1, 0.1, 0.1], [0.6, 0.5, 0.5], [0.35, 0.8, 0.2], [0.8, 0.25, 0.7],
                          [0.2, 0.55, 0.8], [0.5, 0.05, 0.35]])
    positions = fractions @ cell + rng.normal(scale=0.15, size=fractions.shape)
    ionic = Atoms("NaClOHHO", positions=positions, cell=cell, pbc=True)
    return [molecule, ionic]


def featomic_calculator(species, r_cut, n_max, l_max, smearing):
    from featomic import LodeSphericalExpansion

    return LodeSphericalExpansion(
        density={"type": "SmearedPowerLaw", "smearing": smearing, "exponent": 1},
        basis={"type": "TensorProduct", "max_angular": l_max,
               "radial": {"type": "Gto", "max_radial": n_max - 1, "radius": r_cut}, "spline_accuracy": None},
        k_cutoff=2.6 * np.pi / smearing,
    )


def featomic_coefficients(atoms: Atoms, species, r_cut, n_max, l_max, smearing, gradients=False):
    """featomic's coefficients as ``(n, S, n_max, (l_max+1)²)`` and, if asked, dense rows ``(n, n, 3, S, n_max, L²)``."""
    calculator = featomic_calculator(species, r_cut, n_max, l_max, smearing)
    descriptor = calculator.compute(atoms, gradients=["positions"] if gradients else None)
    n = len(atoms)
    values = np.zeros((n, len(species), n_max, (l_max + 1) ** 2))
    rows = np.zeros((n, n, 3, len(species), n_max, (l_max + 1) ** 2)) if gradients else None
    for key, block in descriptor.items():
        l, neighbour_type = int(key["o3_lambda"]), int(key["neighbor_type"])
        a = species.index(neighbour_type)
        columns = slice(l * l, (l + 1) ** 2)
        atoms_of_samples = block.samples.column("atom")
        values[atoms_of_samples, a, :, columns] = np.swapaxes(block.values, 1, 2)
        if gradients:
            gradient = block.gradient("positions")
            for (sample, _, j), row in zip(gradient.samples.values, gradient.values):
                rows[atoms_of_samples[sample], j, :, a, :, columns] += np.swapaxes(row, 1, 2)
    return values, rows


def main():
    frames = structures()
    arrays = {}
    for index, atoms in enumerate(frames):
        values, rows = featomic_coefficients(atoms, gradients=index == 0, **SETTINGS)
        arrays[f"positions_{index}"] = atoms.positions
        arrays[f"numbers_{index}"] = atoms.numbers
        arrays[f"cell_{index}"] = np.asarray(atoms.cell)
        arrays[f"coefficients_{index}"] = values
        if rows is not None:
            arrays[f"gradients_{index}"] = rows
    arrays["featomic_version"] = np.array(metadata.version("featomic"))
    np.savez_compressed(REFERENCE, **arrays)
    print(f"wrote {REFERENCE} (featomic {metadata.version('featomic')})")


if __name__ == "__main__":
    main()
