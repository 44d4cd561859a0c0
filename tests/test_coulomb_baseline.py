"""The fixed-charge Coulomb baseline on its own: charge tables, validation, energies, derivatives, persistence."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from kernelpot.potential.coulomb_baseline import CoulombBaseline, parse_charge_table

K_E = 14.399645351950548  # eV·Å/e², ASE's Hartree·Bohr


def test_parse_charge_table():
    assert parse_charge_table("Na:+1 Cl:-1 O:-0.834 H:0.417") == {"Na": 1.0, "Cl": -1.0, "O": -0.834, "H": 0.417}
    assert parse_charge_table("11:1, 17:-1") == {"Na": 1.0, "Cl": -1.0}


@pytest.mark.parametrize("text, message", [
    ("Na+1", "entries must look like 'Na:\\+1'; got 'Na\\+1'"),
    ("Na:one", "value of 'Na' must be a number; got 'one'"),
    ("Xx:1", "unknown species 'Xx'"),
    ("0:1", "unknown atomic number '0'"),
    ("Na:1 11:2", "gives species 'Na' twice"),
    ("  ", "is empty"),
    ("Na:nan", "value of 'Na' must be a finite number"),
])
def test_charge_table_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_charge_table(text)


def test_ion_pair_energy_forces_and_local_energies():
    pair = Atoms("NaCl", positions=[[0, 0, 0], [0, 0, 2.5]])
    result = CoulombBaseline({"Na": 1, "Cl": -1}).evaluate([pair], virial=True, local_energy=True)
    assert result["energy"][0] == pytest.approx(-K_E / 2.5, rel=1e-12)
    np.testing.assert_allclose(result["forces"], [[0, 0, K_E / 2.5**2], [0, 0, -K_E / 2.5**2]], rtol=1e-12)
    np.testing.assert_allclose(result["local_energy"], [-K_E / 5.0, -K_E / 5.0], rtol=1e-12)
    # Pair virial -r ⊗ dE/dr: only zz, equal to the energy for 1/r.
    assert result["virial"][0][2, 2] == pytest.approx(-K_E / 2.5, rel=1e-12)


def test_gaussian_charges_stay_finite_and_approach_point_charges():
    point, smeared = CoulombBaseline({"Na": 1, "Cl": -1}), CoulombBaseline({"Na": 1, "Cl": -1}, widths=0.5)
    close = Atoms("NaCl", positions=[[0, 0, 0], [0, 0, 0.05]])
    # erf(r/γ)/r -> 2/(γ√π) with γ = sqrt(2(σ²+σ²)) = 1 Å; plus the two self-energies q²/(2σ√π).
    expected = -K_E * 2 / np.sqrt(np.pi) + 2 * K_E / (2 * 0.5 * np.sqrt(np.pi))
    assert smeared.evaluate([close], forces=False)["energy"][0] == pytest.approx(expected, abs=0.05)
    far = Atoms("NaCl", positions=[[0, 0, 0], [0, 0, 8.0]])
    self_energy = 2 * K_E / (2 * 0.5 * np.sqrt(np.pi))
    assert (smeared.evaluate([far])["energy"][0] - self_energy
            == pytest.approx(point.evaluate([far])["energy"][0], rel=1e-8))


def test_periodic_rock_salt_madelung():
    from ase.build import bulk

    crystal = bulk("NaCl", "rocksalt", a=5.64, cubic=True)  # 4 formula units
    energy = CoulombBaseline({"Na": 1, "Cl": -1}, tolerance=1e-8).evaluate([crystal], forces=False)["energy"][0]
    assert energy == pytest.approx(-4 * 1.747565 * K_E / 2.82, rel=1e-6)


def test_forces_and_virial_are_derivatives():
    from ase.build import bulk

    rng = np.random.default_rng(0)
    crystal = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    crystal.positions += rng.normal(scale=0.1, size=crystal.positions.shape)
    baseline = CoulombBaseline({"Na": 1, "Cl": -1}, tolerance=1e-9)
    result = baseline.evaluate([crystal], virial=True)
    h = 1e-5
    for atom, axis in ((0, 0), (5, 2)):
        shifted = []
        for sign in (1, -1):
            moved = crystal.copy()
            moved.positions[atom, axis] += sign * h
            shifted.append(baseline.evaluate([moved], forces=False)["energy"][0])
        assert result["forces"][atom, axis] == pytest.approx(-(shifted[0] - shifted[1]) / (2 * h), rel=1e-5, abs=1e-7)
    strained = []
    for sign in (1, -1):
        deformed = crystal.copy()
        strain = np.eye(3)
        strain[0, 1] = strain[1, 0] = sign * h / 2
        deformed.set_cell(crystal.cell.array @ strain, scale_atoms=True)
        strained.append(baseline.evaluate([deformed], forces=False)["energy"][0])
    assert result["virial"][0][0, 1] == pytest.approx(-(strained[0] - strained[1]) / (2 * h), rel=1e-5, abs=1e-6)


def test_per_atom_charges_from_initial_charges():
    pair = Atoms("HH", positions=[[0, 0, 0], [0, 0, 2.0]])
    pair.set_initial_charges([0.5, -0.5])
    energy = CoulombBaseline("initial_charges").evaluate([pair])["energy"][0]
    assert energy == pytest.approx(-0.25 * K_E / 2.0, rel=1e-12)
    with pytest.raises(ValueError, match="structure 0 has no initial charges"):
        CoulombBaseline("initial_charges").evaluate([molecule("H2O")])
    with pytest.raises(ValueError, match="`charges` must be a"):
        CoulombBaseline("charges").evaluate([pair])


def test_bad_structures_are_named():
    water = molecule("H2O")
    table = {"O": -0.834, "H": 0.417}
    baseline = CoulombBaseline(table)
    with pytest.raises(ValueError, match=r"species \['Na'\] in structure 1 are not in the Coulomb baseline's"):
        baseline.check([water, Atoms("Na", positions=[[0, 0, 0]])])
    hydronium = molecule("H2O") + Atoms("H", positions=[[0, 0, 1.0]])
    with pytest.raises(ValueError, match=r"structure 0 \(H3O\) gets a net charge of \+0.417 e .* declares none"):
        baseline.check([hydronium])
    hydronium.info["charge"] = 1.0
    with pytest.raises(ValueError, match=r"declares a total charge of \+1 e but the Coulomb baseline's charges sum "
                                         r"to \+0.417 e"):
        baseline.check([hydronium])
    hydronium.info["charge"] = "one"
    with pytest.raises(ValueError, match="non-numeric info\\['charge'\\]"):
        baseline.check([hydronium])
    slab = molecule("H2O", cell=[5, 5, 5], pbc=[True, True, False])
    with pytest.raises(ValueError, match="periodic in some directions only"):
        baseline.check([slab])
    ion = Atoms("Na", positions=[[0, 0, 0]])
    ion.info["charge"] = 1
    CoulombBaseline({"Na": 1}).check([ion])  # a declared ion is fine


@pytest.mark.parametrize("kwargs, message", [
    ({"widths": -0.5}, "`widths` must be None, a number > 0"),
    ({"widths": {"Na": 0.0}}, "`widths` must be > 0 Å"),
    ({"widths": {"Qq": 1.0}}, "`widths` has an unknown species 'Qq'"),
    ({"tolerance": 0.0}, "`tolerance` must be a number in \\(0, 1\\)"),
])
def test_parameter_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CoulombBaseline({"Na": 1}, **kwargs).evaluate([Atoms("Na", positions=[[0, 0, 0]], info={"charge": 1})])


def test_description_round_trip_and_version_check():
    baseline = CoulombBaseline({"Na": 1, 17: -1}, widths={"Na": 0.6, "Cl": 0.9}, tolerance=1e-7)
    spec = baseline.to_dict()
    assert spec == {"kind": "coulomb", "version": 1, "charges": {"Na": 1.0, "Cl": -1.0},
                    "widths": {"Na": 0.6, "Cl": 0.9}, "tolerance": 1e-7}
    assert CoulombBaseline.from_dict(spec) == baseline
    with pytest.raises(ValueError, match="version 2 is not supported"):
        CoulombBaseline.from_dict({**spec, "version": 2})
    with pytest.raises(ValueError, match="not a Coulomb baseline description"):
        CoulombBaseline.from_dict({"kind": "lj"})
