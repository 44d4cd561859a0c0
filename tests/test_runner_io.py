"""RuNNer/n2p2 ``input.data`` reader and writer: units, layout, round trip, errors naming the line."""

import numpy as np
import pytest
from ase import units
from ase.build import molecule

from kernelpot.io import read_labelled
from kernelpot.structures.runner import (
    RunnerFormatError,
    is_runner_file,
    read_runner,
    write_runner,
)

BOHR, HARTREE = units.Bohr, units.Hartree

# Two blocks: a periodic NaCl pair with comments, per-atom charges and a total charge, and a
# molecule (no lattice lines) with no charge line.
HAND_WRITTEN = """\
begin
comment first frame
comment   second  comment line
lattice 10.0 0.0 0.0
lattice 0.0 12.0 0.0
lattice 1.0 0.0 14.0
atom 1.0 2.0 3.0 Na 0.8 0.0 0.01 -0.02 0.03
atom 4.0 5.0 6.0 Cl -0.8 0.0 -0.01 0.02 -0.03
energy -10.5
charge 0.0
end

begin
atom 0.0 0.0 0.0 O 0.0 0.0 0.0 0.0 0.5
atom 0.0 0.0 1.8 H 0.0 0.0 0.0 0.0 -0.25
atom 1.7 0.0 -0.6 H 0.0 0.0 0.0 0.0 -0.25
energy -76.25
end
"""


@pytest.fixture
def hand_written(tmp_path):
    path = tmp_path / "input.data"
    path.write_text(HAND_WRITTEN)
    return path


def test_hand_written_file_exact_numbers(hand_written):
    first, second = read_runner(hand_written)
    assert first.get_chemical_symbols() == ["Na", "Cl"] and second.get_chemical_symbols() == ["O", "H", "H"]
    np.testing.assert_allclose(first.positions, np.array([[1, 2, 3], [4, 5, 6.0]]) * BOHR, rtol=1e-15)
    np.testing.assert_allclose(first.cell.array, np.array([[10, 0, 0], [0, 12, 0], [1, 0, 14.0]]) * BOHR,
                               rtol=1e-15)
    assert first.pbc.all() and not second.pbc.any()
    assert first.get_potential_energy() == pytest.approx(-10.5 * HARTREE, rel=1e-15)
    assert second.get_potential_energy() == pytest.approx(-76.25 * HARTREE, rel=1e-15)
    np.testing.assert_allclose(first.get_forces(), np.array([[0.01, -0.02, 0.03], [-0.01, 0.02, -0.03]])
                               * HARTREE / BOHR, rtol=1e-15)
    np.testing.assert_allclose(first.calc.results["charges"], [0.8, -0.8])
    assert "charges" not in second.calc.results  # an all-zero charge column is "no charges"
    assert first.info == {"charge": 0.0, "comment": "first frame\nsecond comment line"}
    assert second.info == {"charge": 0.0}
    # ASE's conversion constants: 1 Bohr = 0.529177 Å, 1 Hartree = 27.2114 eV.
    assert first.positions[0, 0] == pytest.approx(0.529177, abs=1e-6)
    assert first.get_potential_energy() == pytest.approx(-285.7196, abs=1e-3)


def test_metal_units_read_numbers_as_written(hand_written):
    first = read_runner(hand_written, 0, units="metal")
    np.testing.assert_array_equal(first.positions, [[1, 2, 3], [4, 5, 6.0]])
    assert first.get_potential_energy() == -10.5


def test_index_selects_frames(hand_written):
    assert len(read_runner(hand_written, "1:")) == 1
    assert read_runner(hand_written, -1).get_chemical_symbols() == ["O", "H", "H"]
    with pytest.raises(IndexError, match="frame 5 out of range: the file has 2 frames"):
        read_runner(hand_written, 5)
    with pytest.raises(ValueError, match="`units` must be one of"):
        read_runner(hand_written, units="si")


def test_read_labelled_and_total_charge(hand_written):
    assert is_runner_file(hand_written)
    data = read_labelled(hand_written)
    assert data.energies == pytest.approx([-10.5 * HARTREE, -76.25 * HARTREE], rel=1e-15)
    np.testing.assert_allclose(data.forces[1][:, 2], np.array([0.5, -0.25, -0.25]) * HARTREE / BOHR)
    assert data.atoms[0].info["charge"] == 0.0


def test_round_trip(tmp_path):
    water = molecule("H2O", cell=np.diag([7.0, 8.0, 9.0]) + 0.3 * np.eye(3)[[1, 2, 0]], pbc=True)
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(3)
    water.calc = SinglePointCalculator(water, energy=-470.123456, forces=rng.normal(size=(3, 3)),
                                       charges=np.array([-0.8, 0.4, 0.4]))
    water.info.update(charge=0.0, comment="round trip")
    ion = molecule("H2O")
    ion.calc = SinglePointCalculator(ion, energy=-400.5, forces=np.zeros((3, 3)))
    ion.info["charge"] = 1.0
    path = tmp_path / "out.data"
    write_runner(path, [water, ion])
    back = read_runner(path)
    for before, after in zip([water, ion], back):
        np.testing.assert_allclose(after.positions, before.positions, atol=1e-9)
        np.testing.assert_allclose(after.cell.array, before.cell.array, atol=1e-9)
        assert after.get_potential_energy() == pytest.approx(before.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(after.get_forces(), before.get_forces(), atol=1e-9)
        assert after.info["charge"] == before.info["charge"]
    np.testing.assert_allclose(back[0].calc.results["charges"], [-0.8, 0.4, 0.4])
    assert back[0].info["comment"] == "round trip" and not back[1].pbc.any()


def test_real_nacl_water_frame(bundled_data, tmp_path):
    """First frame of the revPBE0-D3 gen1a set (O'Neill et al.): 8 NaCl + 48 H2O in a 12.42 Å cube."""
    path = bundled_data / "nacl_water" / "revPBE0-D3_gen1_subset.data"
    frames = read_runner(path)
    assert len(frames) == 10
    atoms = frames[0]
    symbols = atoms.get_chemical_symbols()
    assert (symbols.count("Na"), symbols.count("Cl"), symbols.count("O"), symbols.count("H")) == (8, 8, 48, 96)
    np.testing.assert_allclose(atoms.cell.lengths(), 23.470398 * BOHR, rtol=1e-12)
    assert atoms.cell.lengths()[0] == pytest.approx(12.42, abs=1e-6)
    # The first atom line and the energy line of the file, converted by hand.
    np.testing.assert_allclose(atoms.positions[0], np.array([21.443754, -5.715504, 17.832912]) * BOHR)
    np.testing.assert_allclose(atoms.get_forces()[0], np.array([0.000512, -0.006680, -0.000809]) * HARTREE / BOHR)
    assert atoms.get_potential_energy() == pytest.approx(-1326.486777 * HARTREE, rel=1e-12)
    assert atoms.info["charge"] == 0.0
    # Writing and reading back keeps every number.
    write_runner(tmp_path / "copy.data", frames)
    for before, after in zip(frames, read_runner(tmp_path / "copy.data")):
        np.testing.assert_allclose(after.positions, before.positions, atol=1e-9)
        np.testing.assert_allclose(after.get_forces(), before.get_forces(), atol=1e-9)
        assert after.get_potential_energy() == pytest.approx(before.get_potential_energy(), abs=1e-8)


def test_cli_fit_reads_runner_file(bundled_data, tmp_path):
    from kernelpot.cli import main

    out = tmp_path / "nacl.kpot"
    gap = ("{distance_2b cutoff=4.0 covariance_type=ard_se delta=0.5 theta_uniform=1.0 sparse_method=uniform "
           "n_sparse=8}")
    assert main(["fit", str(bundled_data / "nacl_water" / "revPBE0-D3_gen1_subset.data"), "-o", str(out),
                 "--gap", gap, "--quiet"]) == 0
    assert out.is_file()


@pytest.mark.parametrize("text, message", [
    ("begin\natom 0 0 0 H 0 0 0 0\nenergy 1\nend\n", "line 2: `atom` needs 9 fields"),
    ("begin\natom 0 0 0 Xx 0 0 0 0 0\nenergy 1\nend\n", "line 2: unknown element 'Xx'"),
    ("begin\natom 0 0 zero H 0 0 0 0 0\nenergy 1\nend\n", "line 2: `atom` coordinates, charge and forces must be"),
    ("begin\natom 0 0 0 H 0 0 0 0 0\nend\n", "line 3: the block begun on line 1 has no `energy` line"),
    ("begin\natom 0 0 0 H 0 0 0 0 0\nenergy 1\n", "line 3: file ends inside the block begun on line 1"),
    ("begin\natom 0 0 0 H 0 0 0 0 0\nbegin\n", "line 3: `begin` inside the block begun on line 1"),
    ("atom 0 0 0 H 0 0 0 0 0\n", "line 1: expected `begin`, got 'atom'"),
    ("begin\nlattice 1 0 0\natom 0 0 0 H 0 0 0 0 0\nenergy 1\nend\n", "line 5: the block begun on line 1 has 1"),
    ("begin\nlattice 1 0\n", "line 2: a block has 0 or 3 `lattice` lines of 3 numbers; got 2 numbers"),
    ("begin\n" + "lattice 1 0 0\n" * 4, "line 5: .* got a fourth"),
    ("begin\natom 0 0 0 H 0 0 0 0 0\nenergy 1 2\nend\n", "line 3: `energy` needs one number"),
    ("begin\natom 0 0 0 H 0 0 0 0 0\nenergy 1\nenergy 2\nend\n", "line 4: second `energy` line"),
    ("begin\natom 0 0 0 H 0 0 0 0 0\nenergy 1\ncharge x\nend\n", "line 4: `charge` must be numbers"),
    ("begin\nweight 1\n", "line 2: unknown keyword 'weight'"),
    ("begin\nenergy 1\nend\n", "line 3: the block begun on line 1 has no `atom` lines"),
    ("begin\nlattice 1 0 0\nlattice 2 0 0\nlattice 0 0 1\natom 0 0 0 H 0 0 0 0 0\nenergy 1\nend\n",
     "line 7: the lattice of the block begun on line 1 is singular"),
    ("\n# nothing\n", "no `begin` … `end` block found"),
])
def test_malformed_blocks_name_the_line(tmp_path, text, message):
    path = tmp_path / "bad.data"
    path.write_text(text)
    with pytest.raises(RunnerFormatError, match=message):
        read_runner(path)


def test_writer_refuses_what_the_format_cannot_hold(tmp_path):
    water = molecule("H2O")
    with pytest.raises(ValueError, match="structure 0 has no energy"):
        write_runner(tmp_path / "x.data", [water])
    from ase.calculators.singlepoint import SinglePointCalculator

    water.cell, water.pbc = np.eye(3) * 5, [True, True, False]
    water.calc = SinglePointCalculator(water, energy=1.0)
    with pytest.raises(ValueError, match="periodic in some directions only"):
        write_runner(tmp_path / "x.data", [water])
    with pytest.raises(FileNotFoundError, match="RuNNer file not found"):
        read_runner(tmp_path / "missing.data")
