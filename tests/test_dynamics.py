"""ResumableMD: frames as extended XYZ, resume after a kill (same trajectory as an unbroken run), torn frames,
explosions kept and suggested for labelling, refusal to mix runs or overwrite foreign files."""

import json

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from kernelpot.potential.dynamics import (
    GeometryGuard,
    MDExplosion,
    ResumableMD,
    closest_pair,
    pair_limits,
    read_frames,
    too_close,
)


def _cu():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    atoms.rattle(0.05, seed=1)
    return atoms


def _md(path, **kwargs):
    args = {"temperature": 300.0, "timestep": 2.0, "interval": 5, "random_state": 3, "progress": False}
    args.update(kwargs)
    return ResumableMD(path, **args)


def test_frames_are_extxyz_with_labels_steps_and_momenta(tmp_path):
    path = tmp_path / "run.extxyz"
    md = _md(path).run(_cu(), EMT(), 20)
    frames = ase.io.read(path, index=":")  # plain ASE reads it
    assert [f.info["step"] for f in frames] == [0, 5, 10, 15, 20]
    np.testing.assert_allclose([f.info["time_fs"] for f in frames], [0, 10, 20, 30, 40])
    assert md.step_ == 20 and md.stopped_ is None
    last = frames[-1]
    reference = last.copy()
    reference.calc = EMT()
    np.testing.assert_allclose(last.get_forces(), reference.get_forces(), atol=1e-5)
    assert np.any(last.get_momenta() != 0)
    state = json.loads(md.state_path.read_text())
    assert state["step"] == 20 and state["n_frames"] == 5 and state["bytes"] == path.stat().st_size


def test_a_killed_run_resumes_on_the_unbroken_trajectory(tmp_path):
    straight = _md(tmp_path / "a.extxyz").run(_cu(), EMT(), 30)
    _md(tmp_path / "b.extxyz").run(_cu(), EMT(), 15)
    # A kill mid-frame leaves a torn frame after the last complete one: it is cut off on resume.
    with open(tmp_path / "b.extxyz", "a") as stream:
        stream.write("32\nLattice=\"7.2 0 0 0 7.2 0 0 0 7.2\" Properties=species:S:1:pos:R:3\nCu 0.0 0.")
    resumed = _md(tmp_path / "b.extxyz").run(_cu(), EMT(), 30)
    b = read_frames(tmp_path / "b.extxyz")
    assert [f.info["step"] for f in b] == [0, 5, 10, 15, 20, 25, 30]
    assert len(ase.io.read(tmp_path / "b.extxyz", index=":")) == 7  # the torn text is gone from the file
    # The frames' text keeps 8 decimals, the state the exact floats of the last frame: resumed from those, the run
    # follows the unbroken one to round-off (EMT's neighbour list with a skin sums in another order after a rebuild;
    # tests/test_kill_md.py checks bit for bit with kernelpot's calculator). From the text it drifts by ~1e-9 Å.
    exact_a, exact_b = (json.loads(md.state_path.read_text())["exact"] for md in (straight, resumed))
    for name in ("positions", "momenta", "cell"):
        np.testing.assert_allclose(exact_b[name], exact_a[name], rtol=0, atol=1e-12)
    assert straight.step_ == resumed.step_ == 30
    # A finished run does nothing; a larger total extends it.
    _md(tmp_path / "b.extxyz").run(_cu(), EMT(), 30)
    assert len(read_frames(tmp_path / "b.extxyz")) == 7
    _md(tmp_path / "b.extxyz").run(_cu(), EMT(), 40)
    assert read_frames(tmp_path / "b.extxyz")[-1].info["step"] == 40


def test_bussi_thermostat_reaches_its_target_rescales_only_and_resumes_bit_for_bit(tmp_path):
    # Heat from 100 K (momenta given) to a 600 K target with taut = 20 fs: after 20 taut the kinetic temperature
    # sits at the target (32 Cu atoms: canonical spread 600 * sqrt(2 / 93) = 88 K per frame; mean of 20 frames).
    from ase.md.velocitydistribution import Stationary

    from kernelpot.utils.ase_compat import thermalize

    cold = _cu()
    thermalize(cold, 100.0, np.random.default_rng(0))
    Stationary(cold)
    bussi = {"thermostat": "bussi", "taut": 20.0, "temperature": 600.0, "interval": 10}
    md = _md(tmp_path / "hot.extxyz", **bussi).run(cold, EMT(), 400)
    temperatures = [f.info["temperature_K"] for f in read_frames(tmp_path / "hot.extxyz")]
    assert abs(np.mean(temperatures[-20:]) - 600.0) < 100.0 and temperatures[0] < 150.0
    assert json.loads(md.state_path.read_text())["parameters"]["taut"] == 20.0
    # Rescaling only: the centre of mass stays at rest (Langevin noise on each atom would move it without FixCom).
    last = read_frames(tmp_path / "hot.extxyz")[-1]
    assert np.abs(last.get_momenta().sum(axis=0)).max() < 1e-6  # the frame keeps 8 decimals
    # A stop and resume continues the same trajectory (the thermostat's generator state is restored).
    straight = read_frames(_md(tmp_path / "a.extxyz", **bussi).run(_cu(), EMT(), 60).trajectory)
    _md(tmp_path / "b.extxyz", **bussi).run(_cu(), EMT(), 30)
    resumed = read_frames(_md(tmp_path / "b.extxyz", **bussi).run(_cu(), EMT(), 60).trajectory)
    np.testing.assert_array_equal(straight[-1].positions, resumed[-1].positions)
    with pytest.raises(ValueError, match="taut"):
        _md(tmp_path / "c.extxyz", thermostat="bussi", taut=0.0).run(_cu(), EMT(), 5)


def test_explosion_stops_keeps_frames_and_suggests_the_last_ones(tmp_path, capsys):
    path = tmp_path / "hot.extxyz"
    # Cu neighbours are 2.55 Å apart; with a 2.45 Å minimum distance the first close contact of a hot run stops it.
    md = _md(path, temperature=3000.0, min_distance=2.3, n_suggest=2, interval=2).run(_cu(), EMT(), 400)
    assert md.stopped_ is not None and "closer than the minimum distance 2.3" in md.stopped_
    assert 0 < md.step_ < 400
    frames = read_frames(path)
    assert len(frames) >= 1 and frames[-1].info["step"] <= md.step_
    suggested = ase.io.read(md.suggest_path, index=":")
    assert len(suggested) == min(2, len(frames))
    np.testing.assert_allclose(suggested[-1].positions, frames[-1].positions)
    assert "label them" in capsys.readouterr().out


def test_guard_rejects_non_finite_forces():
    from ase.calculators.calculator import Calculator, all_changes
    from ase.md.verlet import VelocityVerlet

    class NaNForces(Calculator):
        implemented_properties = ["energy", "forces"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            self.results = {"energy": 0.0, "forces": np.full((len(atoms), 3), np.nan)}

    atoms = _cu()
    atoms.calc = NaNForces()
    dynamics = VelocityVerlet(atoms, timestep=1.0)
    GeometryGuard(dynamics, min_distance=0.5)
    with pytest.raises(MDExplosion, match="non-finite forces"):
        dynamics.run(3)
    assert closest_pair(_cu(), 0.5) is None and closest_pair(_cu(), 3.0)[2] < 3.0


def test_bad_input_and_refusals(tmp_path):
    foreign = tmp_path / "foreign.extxyz"
    ase.io.write(foreign, _cu())
    with pytest.raises(FileExistsError, match="not written by ResumableMD"):
        _md(foreign).run(_cu(), EMT(), 5)
    path = tmp_path / "run.extxyz"
    _md(path).run(_cu(), EMT(), 5)
    with pytest.raises(ValueError, match="timestep"):
        _md(path, timestep=1.0).run(_cu(), EMT(), 10)
    with pytest.raises(ValueError, match="different system"):
        _md(path).run(bulk("Cu", "fcc", a=3.6, cubic=True), EMT(), 10)
    with pytest.raises(ValueError, match="thermostat"):
        _md(tmp_path / "x.extxyz", thermostat="berendsen").run(_cu(), EMT(), 5)
    with pytest.raises(ValueError, match="extended-XYZ"):
        _md(tmp_path / "x.traj").run(_cu(), EMT(), 5)
    with pytest.raises(ValueError, match="steps"):
        _md(tmp_path / "y.extxyz").run(_cu(), EMT(), -1)
    with pytest.raises(FileNotFoundError, match="folder"):
        _md(tmp_path / "missing" / "z.extxyz").run(_cu(), EMT(), 5)


def test_cli_md_output_is_resumable_extxyz(tmp_path):
    from kernelpot.cli import main
    from kernelpot.descriptors.distance_2b import Distance2B
    from kernelpot.kernels import GaussianCovariance
    from kernelpot.models.gap import GAPTerm, SparseGPR
    from kernelpot.potential.serialization import save_model

    data = []
    for seed in range(3):
        atoms = _cu()
        atoms.rattle(0.1, seed=seed + 10)
        atoms.calc = EMT()
        atoms.get_forces()
        data.append(atoms)
    model = SparseGPR([GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(1.0), delta=1.0, n_sparse=8,
                               sparse_method="uniform")]).fit(
        data, energies=[a.get_potential_energy() for a in data], forces=[a.get_forces() for a in data])
    save_model(model, tmp_path / "cu.kpot")
    ase.io.write(tmp_path / "start.extxyz", _cu())
    command = ["md", str(tmp_path / "cu.kpot"), str(tmp_path / "start.extxyz"), "--thermostat", "langevin",
               "--interval", "5", "--quiet", "--output", str(tmp_path / "md.extxyz")]
    assert main(command + ["--steps", "10"]) == 0
    assert main(command + ["--steps", "20"]) == 0  # resumes at step 10
    frames = ase.io.read(tmp_path / "md.extxyz", index=":")
    assert [f.info["step"] for f in frames] == [0, 5, 10, 15, 20]
    assert frames[-1].get_forces().shape == (32, 3)
    # the force-σ watch plugs in as an observer: --stop ends the run like an explosion, frames kept
    stop = ["md", str(tmp_path / "cu.kpot"), str(tmp_path / "start.extxyz"), "--thermostat", "langevin",
            "--interval", "5", "--quiet", "--output", str(tmp_path / "watched.extxyz"), "--steps", "20",
            "--std-threshold", "1e-12", "--stop"]
    assert main(stop) == 1
    assert (tmp_path / "watched.to_label.extxyz").is_file()
    assert ase.io.read(tmp_path / "watched.extxyz", index=-1).info["step"] < 20


def _water_pair(distance):
    """Two waters whose oxygens are ``distance`` Å apart (every other pair further than its usual minimum)."""
    from ase import Atoms
    from ase.build import molecule

    first = molecule("H2O")
    second = molecule("H2O")
    second.rotate(180, "z")
    second.positions += [distance, 0, 0]
    return Atoms(first + second, cell=[12, 12, 12], pbc=True)


def test_limits_per_species_pair_catch_what_one_limit_misses():
    squeezed = _water_pair(1.4)  # no liquid has two oxygens this close; every pair is still > 0.7 Å apart
    assert too_close(squeezed, 0.7) is None
    limits = {"O-O": 2.0, ("H", "H"): 1.0, (8, 1): 0.75, "*": 0.5}
    i, j, d, limit = too_close(squeezed, limits)
    assert {squeezed.numbers[i], squeezed.numbers[j]} == {8} and d == pytest.approx(1.4) and limit == 2.0
    assert too_close(_water_pair(2.8), limits) is None
    assert pair_limits(limits) == (0.5, {(8, 8): 2.0, (1, 1): 1.0, (1, 8): 0.75})
    assert pair_limits(0.7) == (0.7, {})

    from ase.md.verlet import VelocityVerlet

    from kernelpot.potential.dynamics import GeometryGuard

    atoms = squeezed.copy()
    atoms.calc = EMT()
    dynamics = VelocityVerlet(atoms, timestep=0.1)
    GeometryGuard(dynamics, min_distance=limits)
    with pytest.raises(MDExplosion, match=r"closer than the minimum distance 2 Å for O–O"):
        dynamics.run(1)


@pytest.mark.parametrize("table, message", [
    ({"O-O-H": 2.0}, "keys are species pairs"),
    ({"O-Xx": 2.0}, "unknown species 'Xx'"),
    ({"O-O": -1.0}, "must be a number >= 0"),
    ({"O-O": "2"}, "must be a number >= 0"),
])
def test_bad_limit_tables_fail_at_once(table, message):
    from kernelpot.active import MDExplorer

    with pytest.raises(ValueError, match=message):
        pair_limits(table)
    with pytest.raises(ValueError, match=message):  # when the explorer is built, not at its first snapshot
        MDExplorer(_cu(), min_pair_distance=table)


def test_min_distance_option_reads_a_number_or_a_table():
    import argparse

    from kernelpot.cli.options import min_distance_value

    assert min_distance_value("0.6") == 0.6
    assert min_distance_value("O-O:2.0,H-H:1,*:0.7") == {"O-O": 2.0, "H-H": 1.0, "*": 0.7}
    for text, message in (("O-O", "entries like"), ("O-O:x", "entries like"), ("0", "> 0"),
                          ("O-Xx:2", "unknown species")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            min_distance_value(text)
