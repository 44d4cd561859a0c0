"""MD with a fitted model: the force-σ watch (calculator, ``kernelpot md``, MDExplorer) and NVE energy conservation."""

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError
from ase.io import read, write
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

from kernelpot.active.explorers import MDExplorer
from kernelpot.active.strategies import make_strategy
from kernelpot.cli import main
from kernelpot.models.gap import SparseGPR
from kernelpot.potential.calculator import GAPCalculator
from kernelpot.potential.recipe import terms_from_gap_string
from kernelpot.potential.serialization import save_model
from kernelpot.potential.watch import (
    UncertaintyExceeded,
    UncertaintyWatch,
    max_force_std,
    max_local_energy_std,
)
from kernelpot.utils.ase_compat import thermalize

SMALL_GAP = ("{distance_2b cutoff=5.0 n_sparse=15 covariance_type=ard_se delta=2.0 theta_uniform=1.0 "
             "sparse_method=uniform : soap l_max=4 n_max=6 atom_sigma=0.5 cutoff=5.0 cutoff_transition_width=1.0 "
             "delta=0.2 covariance_type=dot_product zeta=4 n_sparse=150 sparse_method=cur_points}")


@pytest.fixture(scope="module")
def si_model(bundled_data):
    frames = read(bundled_data / "mlearn_si" / "mlearn_Si_training.extxyz", ":")[::8]
    model = SparseGPR(terms_from_gap_string(SMALL_GAP, [14]), default_sigma=(0.002, 0.1, 0.05), random_state=0)
    return model.fit(frames, energies=[a.get_potential_energy() for a in frames],
                     forces=[a.get_forces() for a in frames])


def _hot_si(seed=0, temperature=600.0):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    thermalize(atoms, temperature, np.random.default_rng(seed))
    Stationary(atoms)
    return atoms


def test_watch_records_the_sigma_of_every_step(si_model):
    atoms = _hot_si()
    atoms.calc = GAPCalculator(si_model, uncertainty=True)
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    watch = UncertaintyWatch(dynamics)
    frames = []
    dynamics.attach(lambda: frames.append(atoms.copy()), interval=1)
    dynamics.run(4)
    assert watch.steps == [0, 1, 2, 3, 4]
    for frame, sigma in zip(frames, watch.sigma):
        expected = si_model.predict([frame], properties=("forces",), return_std=True)["forces_std"]
        assert sigma == pytest.approx(max_force_std(expected), rel=1e-10)
    assert watch.flagged == []


def test_watch_stops_at_the_first_step_above_the_threshold(si_model):
    atoms = _hot_si()
    atoms.calc = GAPCalculator(si_model, uncertainty=True)
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    sigma0 = max_force_std(si_model.predict([atoms], properties=("forces",), return_std=True)["forces_std"])
    watch = UncertaintyWatch(dynamics, threshold=0.5 * sigma0, stop=True)
    with pytest.raises(UncertaintyExceeded) as stopped:
        dynamics.run(10)
    assert stopped.value.step == 0 and watch.flagged == [0]
    assert stopped.value.sigma == pytest.approx(sigma0)


def _count_explicit_calls(monkeypatch):
    """Record ``return_std`` of every ``SparseGPR.predict`` call (the explicit path; the fast path does not call
    it); returns the list and the original method."""
    calls = []
    original = SparseGPR.predict

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("return_std", False))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SparseGPR, "predict", counting)
    return calls, original


def test_requested_mode_computes_sigma_only_when_asked(si_model, monkeypatch):
    atoms = _hot_si()
    atoms.calc = GAPCalculator(si_model, uncertainty="requested")
    calls, original = _count_explicit_calls(monkeypatch)
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    assert calls == [] and "forces_std" not in atoms.calc.results   # the fast path, no σ
    sigma = atoms.calc.get_property("forces_std", atoms)
    assert calls == [True]
    expected = original(si_model, [atoms], properties=("forces",), return_std=True)
    np.testing.assert_allclose(sigma, expected["forces_std"], rtol=1e-10)
    # the σ call keeps the step's stress and gives the same forces (to round-off)
    np.testing.assert_allclose(atoms.get_stress(), stress, rtol=0, atol=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), forces, rtol=0, atol=1e-10)
    assert calls == [True]
    with pytest.raises(ValueError, match="requested"):
        GAPCalculator(si_model, uncertainty="sometimes")


def test_watch_interval_reads_sigma_on_its_steps_only(si_model):
    atoms = _hot_si()
    atoms.calc = GAPCalculator(si_model, uncertainty="requested")
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    with_std = []
    dynamics.attach(lambda: with_std.append("forces_std" in atoms.calc.results), interval=1)
    watch = UncertaintyWatch(dynamics, interval=3)
    dynamics.run(7)
    assert watch.steps == [0, 3, 6]
    # observers run in attachment order: the recorder sees each step before the watch asks for σ
    assert with_std == [False] * 8


def test_local_energy_mode_screens_every_step_and_confirms_with_the_force_sigma(si_model, monkeypatch):
    atoms = _hot_si(seed=3)
    atoms.calc = GAPCalculator(si_model, uncertainty="local_energy")
    explicit_calls, original = _count_explicit_calls(monkeypatch)
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    frames = []
    dynamics.attach(lambda: frames.append(atoms.copy()), interval=1)
    # a local threshold below every step's σ: each step is screened in, then confirmed by its exact force σ
    watch = UncertaintyWatch(dynamics, quantity="local_energy", threshold=1e-9, force_threshold=1e3)
    dynamics.run(3)
    assert explicit_calls == [True] * 4                # one exact force σ per screened-in step, nothing else
    assert watch.flagged == [] and sorted(watch.force_sigma) == [0, 1, 2, 3]
    monkeypatch.setattr(SparseGPR, "predict", original)
    for frame, sigma, step in zip(frames, watch.sigma, watch.steps):
        expected = si_model.predict([frame], properties=("local_energy",), return_std=True)
        # σ² here is ~1e-5 of the prior: the two evaluations agree to round-off of that size
        assert sigma == pytest.approx(max_local_energy_std(expected["local_energy_std"]), rel=1e-4)
        exact = si_model.predict([frame], properties=("forces",), return_std=True)["forces_std"]
        assert watch.force_sigma[step] == pytest.approx(max_force_std(exact), rel=1e-10)
    # stop on the local σ alone
    watch = UncertaintyWatch(dynamics, quantity="local_energy", threshold=0.5 * watch.sigma[-1], stop=True)
    with pytest.raises(UncertaintyExceeded, match="local_energy_std .* eV > threshold"):
        dynamics.run(2)


def test_local_energy_calculator_results(si_model):
    atoms = _hot_si(seed=4)
    atoms.calc = GAPCalculator(si_model, uncertainty="local_energy")
    forces = atoms.get_forces()
    sigma = atoms.calc.results["local_energy_std"]
    expected = si_model.predict([atoms], properties=("forces", "local_energy"), return_std=True)
    np.testing.assert_allclose(forces, expected["forces"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(sigma, expected["local_energy_std"], rtol=1e-4)
    assert "forces_std" not in atoms.calc.results
    np.testing.assert_allclose(atoms.calc.get_property("forces_std", atoms), expected["forces_std"], rtol=1e-10)
    off = _hot_si(seed=4)
    off.calc = GAPCalculator(si_model, uncertainty=False)
    off.get_forces()
    with pytest.raises(PropertyNotImplementedError, match="local_energy_std was switched off"):
        off.calc.get_property("local_energy_std", off)


@pytest.mark.parametrize("kwargs, message", [({"threshold": -1.0}, "threshold"), ({"stop": True}, "needs a"),
                                             ({"interval": 0}, "interval"), ({"quantity": "energy"}, "quantity"),
                                             ({"threshold": 1.0, "force_threshold": 0.1}, "force_threshold")])
def test_watch_rejects_bad_settings(si_model, kwargs, message):
    atoms = _hot_si()
    atoms.calc = GAPCalculator(si_model, uncertainty=True)
    with pytest.raises(ValueError, match=message):
        UncertaintyWatch(VelocityVerlet(atoms, timestep=1.0 * units.fs), **kwargs)


def test_md_cli_flags_and_stops(si_model, tmp_path, capsys):
    save_model(si_model, tmp_path / "si.kpot")
    write(tmp_path / "start.xyz", bulk("Si", "diamond", a=5.43, cubic=True))
    code = main(["md", str(tmp_path / "si.kpot"), str(tmp_path / "start.xyz"), "--steps", "20", "--interval", "5",
                 "--std-threshold", "1e-6", "--stop", "--flagged", str(tmp_path / "flagged.xyz"), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    # a perfect crystal has σ = 0 by symmetry at step 0; the first moved step is above 1e-6 eV/Å
    assert "stopped: step 1:" in out and "1 flagged structure(s)" in out
    assert len(read(tmp_path / "flagged.xyz", ":")) == 1
    assert main(["md", str(tmp_path / "si.kpot"), str(tmp_path / "start.xyz"), "--stop", "--quiet"]) == 2


def test_md_cli_local_energy_sigma(si_model, tmp_path, capsys):
    save_model(si_model, tmp_path / "si.kpot")
    write(tmp_path / "start.xyz", bulk("Si", "diamond", a=5.43, cubic=True))
    code = main(["md", str(tmp_path / "si.kpot"), str(tmp_path / "start.xyz"), "--steps", "6", "--interval", "3",
                 "--std-kind", "local_energy", "--std-threshold", "1e-9", "--force-threshold", "1e3", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "largest per-atom local_energy_std over 7 steps" in out
    assert "0 step(s) above 1e-09 eV whose exact |forces_std| exceeds 1000.0 eV/Å (7 checked)" in out
    assert main(["md", str(tmp_path / "si.kpot"), str(tmp_path / "start.xyz"), "--force-threshold", "0.1",
                 "--std-threshold", "0.1", "--quiet"]) == 2
    # the resumable trajectory keeps every written frame's local σ
    assert main(["md", str(tmp_path / "si.kpot"), str(tmp_path / "start.xyz"), "--steps", "4", "--interval", "2",
                 "--std-kind", "local_energy", "--uncertainty", "--output", str(tmp_path / "run.extxyz"),
                 "--quiet"]) == 0
    frames = read(tmp_path / "run.extxyz", ":")
    assert len(frames) >= 2 and all(f.arrays["local_energy_std"].shape == (len(f),) for f in frames)
    assert frames[-1].arrays["local_energy_std"].max() > 0
    code = main(["md", str(tmp_path / "si.kpot"), str(tmp_path / "start.xyz"), "--steps", "6", "--interval", "3",
                 "--uncertainty", "--std-interval", "3"])
    assert code == 0
    assert "over 3 steps" in capsys.readouterr().out   # steps 0, 3, 6
    assert main(["md", str(tmp_path / "si.kpot"), str(tmp_path / "start.xyz"), "--uncertainty",
                 "--std-interval", "0", "--quiet"]) == 2


def test_md_cli_subset_force_sigma_every_step(si_model, tmp_path, capsys):
    save_model(si_model, tmp_path / "si.kpot")
    write(tmp_path / "start.xyz", bulk("Si", "diamond", a=5.43, cubic=True))
    calls = []
    exact = SparseGPR.predict

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("return_std", False))
        return exact(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SparseGPR, "predict", counting)
        code = main(["md", str(tmp_path / "si.kpot"), str(tmp_path / "start.xyz"), "--steps", "6", "--interval", "3",
                     "--std-kind", "forces_subset", "--sigma-points", "8", "--no-sigma-residual", "--uncertainty",
                     "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "largest per-atom |forces_std| (approximate) over 7 steps" in out
    # the perfect crystal of step 0 has σ = 0 (no calibration), step 1 calibrates: two exact σ, then the fast path
    assert sum(calls) == 2
    calls.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SparseGPR, "predict", counting)
        assert main(["md", str(tmp_path / "si.kpot"), str(tmp_path / "start.xyz"), "--steps", "4", "--interval", "2",
                     "--std-kind", "forces_subset", "--sigma-points", "4", "--sigma-residual",
                     "--sigma-residual-points", "3", "--uncertainty", "--quiet"]) == 0
    assert "largest per-atom |forces_std| (approximate) over 5 steps" in capsys.readouterr().out
    assert sum(calls) == 2
    for bad in (["--sigma-points", "0"], ["--sigma-residual-points", "0"]):
        with pytest.raises(SystemExit):
            main(["md", str(tmp_path / "si.kpot"), str(tmp_path / "start.xyz"), "--std-kind", "forces_subset", *bad,
                  "--uncertainty", "--quiet"])


def test_md_explorer_watches_every_step(si_model):
    explorer = MDExplorer(_hot_si(), schedule=((600.0, 30),), timestep=1.0, interval=10, threshold=1e-6,
                          every_step=True, random_state=0)
    strategy = make_strategy("variance")
    strategy.prepare(si_model, [])
    keys, frames = explorer.candidates(si_model, strategy, np.random.default_rng(0))
    # the perfect crystal of step 0 has σ = 0 by symmetry; step 1 is above 1e-6 eV/Å: it stops there, not at
    # the end of the 10-step interval
    assert len(frames) == 1 and keys == ["md:1"]
    # a local-energy screen below every step's σ: the exact force σ is checked at every step, same stop
    screened = MDExplorer(_hot_si(), schedule=((600.0, 30),), timestep=1.0, interval=10, threshold=1e-6,
                          every_step=True, local_screen=1e-9, random_state=0)
    assert screened.candidates(si_model, strategy, np.random.default_rng(0))[0] == ["md:1"]
    # a screen above every step's local σ never asks for the force σ: the schedule runs out, nothing offered
    unscreened = MDExplorer(_hot_si(), schedule=((600.0, 30),), timestep=1.0, interval=10, threshold=1e-6,
                            every_step=True, local_screen=1e3, random_state=0)
    assert unscreened.candidates(si_model, strategy, np.random.default_rng(0))[0] == []
    assert unscreened.exhausted and unscreened.total_steps == 30
    with pytest.raises(ValueError, match="local_screen"):
        MDExplorer(_hot_si(), threshold=1.0, local_screen=0.1)
    other = make_strategy("variance")
    other.quantity = "energy"
    other.prepare(si_model, [])
    with pytest.raises(ValueError, match="variance"):
        MDExplorer(_hot_si(), threshold=1.0, every_step=True).candidates(si_model, other, np.random.default_rng(0))


@pytest.mark.slow
def test_nve_energy_drift_below_1_mev_per_atom_per_ps(si_model):
    """Velocity Verlet, 1 fs, 64 Si atoms from 300 K, 1 ps: the fitted forces conserve the total energy."""
    atoms = _hot_si(seed=1, temperature=600.0)
    atoms.calc = GAPCalculator(si_model, uncertainty=False)
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    times, totals = [], []
    dynamics.attach(lambda: (times.append(dynamics.nsteps * 1e-3),
                             totals.append(atoms.get_total_energy() / len(atoms))), interval=10)
    dynamics.run(1000)
    drift = np.polyfit(times, totals, 1)[0]  # eV/atom/ps
    assert abs(drift) < 1e-3, drift
