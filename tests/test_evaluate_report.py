"""`kernelpot evaluate`'s report: energy errors per atom (meV/atom) and per structure (meV), text and JSON."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from test_potential import model, si_train  # noqa: F401  (fixtures: a small fitted Si model)

from kernelpot.io import read_labelled
from kernelpot.potential.metrics import UNITS, error_table

OFFSETS = np.array([0.010, -0.040, 0.080])  # eV added to the model's energy of each structure


def _labelled_off_by(model, offsets):  # noqa: F811
    """Structures of 2, 8 and 16 atoms labelled with the model's own energies plus ``offsets`` (eV) and forces."""
    structures = [bulk("Si", "diamond", a=5.43), bulk("Si", "diamond", a=5.43, cubic=True),
                  bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 1, 1))]
    for k, atoms in enumerate(structures):
        atoms.rattle(0.03, seed=k)
        atoms.info["config_type"] = "small" if len(atoms) < 10 else "large"
    predicted = model.predict(structures, properties=("energy", "forces"))
    forces = np.split(predicted["forces"], np.cumsum([len(a) for a in structures])[:-1])
    for atoms, energy, force in zip(structures, predicted["energy"] + offsets, forces):
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=force)
    return structures


def test_energy_errors_per_atom_and_per_structure(model):  # noqa: F811
    structures = _labelled_off_by(model, OFFSETS)
    table = error_table(model, read_labelled(structures))
    n_atoms = np.array([len(a) for a in structures])  # 2, 8, 16
    assert table["energy_per_structure_rmse"] == pytest.approx(np.sqrt(np.mean(OFFSETS**2)), rel=1e-9)
    assert table["energy_per_structure_mae"] == pytest.approx(np.mean(np.abs(OFFSETS)), rel=1e-9)
    assert table["energy_rmse"] == pytest.approx(np.sqrt(np.mean((OFFSETS / n_atoms) ** 2)), rel=1e-9)
    assert table["energy_mae"] == pytest.approx(np.mean(np.abs(OFFSETS / n_atoms)), rel=1e-9)
    assert table["forces_rmse"] == pytest.approx(0.0, abs=1e-12)
    large = table["by_config_type"]["large"]
    assert large["n_structures"] == 1 and large["energy_per_structure_rmse"] == pytest.approx(0.080, rel=1e-9)
    assert set(UNITS) <= set(table)
