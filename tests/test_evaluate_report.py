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


def test_cli_prints_energy_errors_per_atom_and_per_structure(model, tmp_path, capsys):  # noqa: F811
    import json

    from ase.io import write

    from kernelpot.cli import main
    from kernelpot.potential.serialization import save_model

    model_file = save_model(model, tmp_path / "m.kpot")
    test_file = tmp_path / "test.extxyz"
    write(test_file, _labelled_off_by(model, OFFSETS))
    n_atoms = np.array([2, 8, 16])

    assert main(["evaluate", str(model_file), str(test_file), "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["config_type", "n", "E", "RMSE", "E", "MAE", "E", "RMSE", "E", "MAE",
                                "F", "RMSE", "F", "MAE", "S", "RMSE"]
    assert lines[1].split()[:4] == ["meV/atom", "meV/atom", "meV/struct", "meV/struct"]
    row = lines[3].split()
    assert row[:2] == ["all", "3"]
    expected = [np.sqrt(np.mean((OFFSETS / n_atoms) ** 2)), np.mean(np.abs(OFFSETS / n_atoms)),
                np.sqrt(np.mean(OFFSETS**2)), np.mean(np.abs(OFFSETS))]
    np.testing.assert_allclose([float(v) for v in row[2:6]], 1e3 * np.array(expected), atol=0.006)

    assert main(["evaluate", str(model_file), str(test_file), "--quiet", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    # extxyz keeps ~8 digits of the energies: equal to 1e-6
    assert table["energy_per_structure_rmse"] == pytest.approx(expected[2], rel=1e-6)
    assert table["energy_rmse"] == pytest.approx(expected[0], rel=1e-6)
    assert table["units"]["energy_per_structure_rmse"] == "eV" and table["units"]["energy_rmse"] == "eV/atom"
