"""The bundled mlearn Si files carry their stresses in ASE's convention (converted from mlearn's kbar, pressure sign)."""

import importlib.util

import numpy as np
import pytest
from ase import units
from ase.io import read
from conftest import BUNDLED_DATA

MLEARN = BUNDLED_DATA / "mlearn_si"
# mlearn's virial_stress_kbar of the first training and the first test structure (original files, VASP "in kB":
# compressive positive).
FIRST_KBAR = {"mlearn_Si_training.extxyz": [[-6.58094686, 9.08682588, -5.41948494], [9.08682588, -9.63365488, -1.60618898],
                                            [-5.41948494, -1.60618898, -2.75897261]],
              "mlearn_Si_test.extxyz": [[-27.23177616, -3.15869869, -1.72155668], [-3.15869869, -4.72612711, -7.84898328],
                                        [-1.72155668, -7.84898328, -18.46493083]]}


def _converter():
    spec = importlib.util.spec_from_file_location("to_ase_stress", MLEARN / "to_ase_stress.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, n_structures", [("mlearn_Si_training.extxyz", 214), ("mlearn_Si_test.extxyz", 25)])
def test_every_bundled_structure_has_an_ase_stress(name, n_structures):
    frames = read(MLEARN / name, ":")
    assert len(frames) == n_structures
    for atoms in frames:
        assert "virial_stress_kbar" not in atoms.info  # one stress, in one convention
        stress = atoms.get_stress(voigt=False)  # eV/Å³ on the SinglePointCalculator
        np.testing.assert_allclose(stress, stress.T)
        assert np.abs(stress).max() < 0.5  # eV/Å³ (80 GPa): not kbar, not GPa


@pytest.mark.parametrize("name", sorted(FIRST_KBAR))
def test_the_stress_is_minus_the_kbar_pressure_in_ev_per_cubic_angstrom(name):
    atoms = read(MLEARN / name, index=0)
    np.testing.assert_allclose(atoms.get_stress(voigt=False), -0.1 * units.GPa * np.array(FIRST_KBAR[name]),
                               rtol=1e-11)


def test_conversion_changes_only_the_stress_entry():
    line = 'Lattice="1 0 0 0 1 0 0 0 1" energy=-1.5 virial_stress_kbar="10 0 0 0 20 0 0 0 -30" config_type=x pbc="T T T"'
    converted = _converter().convert_comment(line)
    before, _, after = converted.partition(' stress="')
    assert before == 'Lattice="1 0 0 0 1 0 0 0 1" energy=-1.5'
    values, _, rest = after.partition('"')
    assert rest == ' config_type=x pbc="T T T"'
    np.testing.assert_allclose([float(v) for v in values.split()],
                               -0.1 * units.GPa * np.array([10, 0, 0, 0, 20, 0, 0, 0, -30]), rtol=1e-11)
