"""On-the-fly learning when things go wrong: MD explosions, failing oracles, σ stop rule, online σ calibration.

Small periodic Cu cells labelled by ASE's EMT and a small SOAP GAP, as in test_active.py.
"""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from kernelpot.active.checkpoint import Checkpoint
from kernelpot.active.explorers import MDExplorer, PoolExplorer
from kernelpot.active.loop import ActiveLearner
from kernelpot.active.oracles import label
from kernelpot.active.strategies import PredictiveVariance, Strategy
from kernelpot.descriptors.soap import SOAP
from kernelpot.kernels import NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.uncertainty.calibration import fit_std_scale_floor


def _cu(seed, amp=0.05, size=(2, 1, 1)):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * size
    atoms.rattle(amp, seed=seed)
    return atoms


def _template():
    soap = SOAP(species=[29], r_cut=4.0, n_max=3, l_max=2, sigma=0.5, periodic=True)
    return SparseGPR([GAPTerm(soap, NormalizedDotProductCovariance(2), delta=0.1, n_sparse=20, sparse_method="cur")],
                     default_sigma=(0.002, 0.05, 0.05))


@pytest.fixture(scope="module")
def fitted():
    data = [label(_cu(s, amp=0.1), EMT())[0] for s in range(4)]
    return _template().fit(data, energies=[a.get_potential_energy() for a in data],
                           forces=[a.get_forces() for a in data])


class RisingScore(Strategy):
    """Scores 1, 2, 3, ... in the order snapshots are scored (deterministic explosions by σ)."""

    name = "rising"
    score_units = "test units"

    def score(self, candidates):
        self.count = getattr(self, "count", 0)
        out = np.arange(self.count + 1, self.count + 1 + len(candidates), dtype=float)
        self.count += len(candidates)
        return out


def _explorer(**kwargs):
    args = {"schedule": [(300.0, 200)], "interval": 5, "segment": 50, "random_state": 0}
    args.update(kwargs)
    return MDExplorer(_cu(0), **args)


# ------------------------------------------------------------------ explosions
def test_sigma_explosion_offers_the_last_sane_snapshots_and_restarts_there(fitted):
    explorer = _explorer(max_score=3.5, n_keep=2)
    strategy = RisingScore().prepare(fitted, [])
    keys, frames = explorer.candidates(fitted, strategy, np.random.default_rng(0))
    # Snapshots at steps 5, 10, 15 score 1, 2, 3; step 20 scores 4 > 3.5: dropped, the 2 before it offered.
    assert keys == ["md:10", "md:15"] and len(frames) == 2
    assert explorer.explosions[0]["step"] == 20 and "max_score" in explorer.explosions[0]["reason"]
    assert "exploded at step 20" in explorer.last_message
    np.testing.assert_allclose(explorer.atoms.positions, frames[-1].positions)  # restart from md:15
    assert not explorer.velocities_set  # with fresh velocities
    assert explorer.stop_reason is None and not explorer.exhausted


def test_too_close_atoms_are_an_explosion_never_offered(fitted):
    # Cu neighbours sit 2.55 Å apart: a 2.6 Å minimum distance fails at the first snapshot.
    explorer = _explorer(min_pair_distance=2.6, max_explosions=2)
    strategy = PredictiveVariance().prepare(fitted, [])
    keys, _frames = explorer.candidates(fitted, strategy, np.random.default_rng(0))
    assert keys == ["md:0"]  # only the (sane, unlabelled) start
    assert "closer than min_pair_distance 2.6" in explorer.explosions[0]["reason"]
    explorer.mark("md:0", True)
    # The start is now labelled: it is not offered again; after 2 explosions in a row the explorer gives up.
    keys, _ = explorer.candidates(fitted, strategy, np.random.default_rng(1))
    assert keys == [] and explorer.exhausted
    assert "exploded 2 times in a row" in explorer.stop_reason and "md:0" in explorer.stop_reason
    state = json.loads(json.dumps(explorer.state()))
    again = _explorer(min_pair_distance=2.6)
    again.restore(state)
    assert again.stop_reason == explorer.stop_reason and len(again.explosions) == 2


def test_loop_stops_with_the_explorers_reason_and_keeps_its_labels(tmp_path):
    explorer = _explorer(min_pair_distance=2.6, max_explosions=2)
    learner = ActiveLearner(_template(), explorer, EMT(), budget=10, n_initial=2, checkpoint=tmp_path / "run").run()
    assert learner.stop_reason_.startswith("explorer stopped: MD exploded 2 times in a row")
    messages = [r.get("explorer_message") for r in Checkpoint(tmp_path / "run").read_log() if r.get("kind") == "iteration"]
    assert any(m and "exploded" in m for m in messages)
    assert len(Checkpoint(tmp_path / "run").load_labelled()) == len(learner.labelled_) >= 2


@pytest.mark.parametrize("verbose", [True, False])
def test_an_explosion_is_reported_once(tmp_path, capsys, caplog, verbose):
    # Printed when verbose, else logged as a warning (which an unconfigured logger prints): never both, which
    # doubled every explosion message in a verbose run's log.
    explorer = _explorer(min_pair_distance=2.6, max_explosions=2)
    with caplog.at_level("INFO", logger="kernelpot.active"):
        ActiveLearner(_template(), explorer, EMT(), budget=10, n_initial=2, checkpoint=tmp_path / "run",
                      verbose=verbose).run()
    printed = capsys.readouterr().out.count("exploded at step")
    warned = sum("exploded at step" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert (printed, warned) == ((2, 0) if verbose else (0, 2))


def test_explorer_bad_input():
    with pytest.raises(ValueError, match="max_score"):
        _explorer(max_score=0.0)
    with pytest.raises(ValueError, match="must exceed `threshold`"):
        _explorer(threshold=0.5, max_score=0.4)
    with pytest.raises(ValueError, match="n_keep"):
        _explorer(n_keep=0)


# ------------------------------------------------------------- failing oracle
class FailingEvery(Calculator):
    """EMT that raises on every 3rd call and returns NaN energies on every 3rd + 1."""

    implemented_properties = ["energy", "forces"]

    def __init__(self):
        super().__init__()
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        work = atoms.copy()
        work.calc = EMT()
        if self.calls % 3 == 0:
            raise RuntimeError("SCF not converged after 250 iterations")
        energy = np.nan if self.calls % 3 == 1 and self.calls > 3 else work.get_potential_energy()
        self.results = {"energy": energy, "forces": work.get_forces()}


def test_md_loop_with_a_failing_oracle_counts_logs_and_never_fits_failures(tmp_path):
    explorer = _explorer(segment=10)
    oracle = FailingEvery()
    learner = ActiveLearner(_template(), explorer, oracle, budget=8, n_initial=2, checkpoint=tmp_path / "run").run()
    reasons = [f["reason"] for f in learner.failures_]
    assert any("SCF not converged" in r for r in reasons) and any("non-finite" in r for r in reasons)
    assert all(np.isfinite(a.get_potential_energy()) for a in learner.labelled_)
    # every oracle call either labelled a structure or is a logged failure
    assert len(learner.labelled_) + len(learner.failures_) == oracle.calls
    # every failure is in the log, and the model was fitted on exactly the labelled structures
    logged = [r for r in Checkpoint(tmp_path / "run").read_log() if r["kind"] == "failure"]
    assert len(logged) == len(learner.failures_) >= 2
    assert learner.history_[-1]["n_labelled"] == len(learner.labelled_)
    assert learner.model_.n_structures_seen_ == len(learner.labelled_)


# ------------------------------------------------------------ stop on σ score
def test_stop_score_ends_the_loop_when_every_candidate_is_certain(tmp_path):
    explorer = _explorer(segment=10)
    learner = ActiveLearner(_template(), explorer, EMT(), budget=20, n_initial=2, stop_score=1e6).run()
    assert learner.stop_reason_.startswith("largest candidate score")
    # the initial 2 structures and at most one batch of 1: the first iteration already stops it
    assert learner.history_[-1]["max_score"] <= 1e6 and learner.oracle_calls_ <= 2 + 1
    with pytest.raises(ValueError, match="stop_score"):
        ActiveLearner(_template(), _explorer(), EMT(), stop_score=-1.0).run()


# ------------------------------------------------------- online σ calibration
def test_online_calibration_uses_pre_label_predictions_and_survives_a_resume(tmp_path):
    pool = [_cu(100 + s, amp=0.15) for s in range(12)]
    strategy = PredictiveVariance(quantity="forces", calibrate=True)
    kwargs = {"strategy": strategy, "budget": 4, "n_initial": 2, "checkpoint": tmp_path / "run", "random_state": 0}
    learner = ActiveLearner(_template(), PoolExplorer(pool), EMT(), **kwargs).run()
    picked = [a for a in learner.labelled_ if a.info["active_iteration"] > 0]
    assert picked and all("predicted_forces_std" in a.arrays for a in picked)
    # The calibration is the maximum-likelihood (s, f) of the picks' errors before they were fitted.
    used = learner.strategy_
    used.prepare(learner.model_, learner.labelled_)
    errors = np.concatenate([a.arrays["predicted_forces"] - a.get_forces() for a in picked]).ravel()
    stds = np.concatenate([a.arrays["predicted_forces_std"] for a in picked]).ravel()
    np.testing.assert_allclose((used.std_scale_, used.std_floor_), fit_std_scale_floor(errors, stds), rtol=1e-6)
    assert used.n_calibration_ == len(picked) * len(pool[0])
    # The journal keeps the predictions: a fresh strategy on the resumed labels calibrates the same way.
    stored = Checkpoint(tmp_path / "run").load_labelled()
    again = PredictiveVariance(quantity="forces", calibrate=True).prepare(learner.model_, stored)
    np.testing.assert_allclose(again.std_scale_, used.std_scale_, rtol=1e-6)
    # Scores are the calibrated per-atom norms.
    raw = learner.model_.predict(pool[:3], properties=("forces",), return_std=True)["forces_std"]
    expected = np.sqrt(used.std_scale_**2 * (raw**2).sum(1) + 3 * used.std_floor_**2).reshape(3, -1).max(1)
    np.testing.assert_allclose(used.score(pool[:3]), expected, rtol=1e-10)
    assert "calibrated" in used.score_units
    with pytest.raises(ValueError, match="calibrate"):
        PredictiveVariance(quantity="energy", calibrate=True).prepare(learner.model_, stored).score(pool[:1])
