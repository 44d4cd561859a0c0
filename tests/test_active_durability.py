"""Active learning keeps every paid label and counts every oracle call (issue 18, items 1 and 8; issue 22, item 6).

Crashes are simulated in-process by raising ``Crash`` (a BaseException, like the KeyboardInterrupt of a killed
job: nothing catches it) at a chosen point; tests/test_kill.py does the same with real SIGKILLs of the CLI.
"""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from kernelpot.active.checkpoint import Checkpoint
from kernelpot.active.explorers import MDExplorer, PoolExplorer
from kernelpot.active.loop import ActiveLearner
from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.soap import SOAP
from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, IncrementalSparseGPR, SparseGPR


class Crash(BaseException):
    """What a SIGKILL does to the Python code after it: nothing more runs."""


class Oracle(Calculator):
    """EMT that records the structures it labelled and can crash inside its n-th calculation.

    A fresh EMT per call: ASE's EMT keeps a neighbour list from call to call, so its last digits depend on
    the structures it saw before, and a resumed run (a new oracle) would differ from the uninterrupted one
    in the 14th digit for that reason alone.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, crash_before=None):
        super().__init__()
        self.crash_before, self.labelled = crash_before, []

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        if len(self.labelled) + 1 == self.crash_before:
            raise Crash("killed during the oracle call")
        super().calculate(atoms, properties, system_changes)
        work = atoms.copy()
        work.calc = EMT()
        self.results = {"energy": work.get_potential_energy(), "forces": work.get_forces()}
        self.labelled.append(atoms.positions.round(6).tobytes())


def _crash_at(monkeypatch, owner, name, n, after):
    """Make ``owner.name`` raise Crash at its n-th call, before running or just after it returned."""
    original, calls = getattr(owner, name), {"n": 0}

    def crashing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n and not after:
            raise Crash(f"killed in {name}")
        result = original(self, *args, **kwargs)
        if calls["n"] == n and after:
            raise Crash(f"killed after {name}")
        return result

    monkeypatch.setattr(owner, name, crashing)
    return lambda: monkeypatch.setattr(owner, name, original)


def _crash_then_resume(monkeypatch, make_learner, folder, owner, name, n, after):
    """Run ``make_learner(oracle, folder)`` until ``owner.name`` crashes at its n-th call, then resume it.

    Returns the oracles of both runs and the resumed learner; the assertion shared by every caller, that the
    resumed run relabels nothing the crashed one labelled, is made here.
    """
    restore = _crash_at(monkeypatch, owner, name, n, after)
    first = Oracle()
    with pytest.raises(Crash):
        make_learner(first, folder).run()
    restore()
    second = Oracle()
    resumed = make_learner(second, folder).run()
    assert not set(first.labelled) & set(second.labelled)
    return first, second, resumed


def _cu(seed):
    atoms = bulk("Cu", "fcc", a=3.58 + 0.01 * (seed % 5), cubic=True)
    atoms.rattle(0.05, seed=seed)
    return atoms


def _template(n_sparse=6):
    terms = [GAPTerm(Distance2B(cutoff=4.0), GaussianCovariance(0.5), delta=1.0, n_sparse=8, sparse_method="uniform"),
             GAPTerm(SOAP(species=[29], r_cut=4.0, n_max=3, l_max=2, sigma=0.5, periodic=True),
                     NormalizedDotProductCovariance(2), delta=0.1, n_sparse=n_sparse, sparse_method="cur")]
    return SparseGPR(terms, default_sigma=(0.002, 0.05, 0.05))


def _learner(oracle, folder, budget=6, **kwargs):
    explorer = PoolExplorer([_cu(200 + s) for s in range(10)])
    settings = dict(strategy="variance", batch_size=1, budget=budget, checkpoint=folder, random_state=0)
    settings.update(kwargs)
    return ActiveLearner(_template(), explorer, oracle, **settings)


def _outcome(learner):
    probe = [_cu(300), _cu(301)]
    prediction = learner.model_.predict(probe, properties=("forces",))
    return ([str(a.info["active_key"]) for a in learner.labelled_], learner.oracle_calls_,
            prediction["energy"], prediction["forces"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    oracle = Oracle()
    learner = _learner(oracle, tmp_path_factory.mktemp("clean") / "run").run()
    return _outcome(learner), len(oracle.labelled)


def _assert_same(outcome, reference):
    keys, calls, energy, forces = outcome
    assert keys == reference[0]
    assert calls == reference[1]
    np.testing.assert_array_equal(energy, reference[2])
    np.testing.assert_array_equal(forces, reference[3])


@pytest.mark.parametrize("n_labels", [1, 2, 3, 5])
def test_a_label_survives_a_crash_right_after_the_oracle_returns(tmp_path, uninterrupted, n_labels, monkeypatch):
    """Killed after the label is journaled, before any refit: the resumed run replays it, never pays twice."""
    restore = _crash_at(monkeypatch, Checkpoint, "append_labelled", n_labels, after=True)
    first = Oracle()
    with pytest.raises(Crash):
        _learner(first, tmp_path / "run").run()
    restore()
    journal = Checkpoint(tmp_path / "run").load_labelled()
    assert len(journal) == len(first.labelled) == n_labels  # appended and fsynced as the oracle returned
    second = Oracle()
    resumed = _learner(second, tmp_path / "run").run()
    assert not set(first.labelled) & set(second.labelled)  # nothing relabelled
    assert len(first.labelled) + len(second.labelled) == uninterrupted[1]
    _assert_same(_outcome(resumed), uninterrupted[0])


@pytest.mark.parametrize("target", ["partial_fit", "save_model", "append_log"])
def test_crash_in_refit_or_commit_resumes_to_the_same_run(tmp_path, uninterrupted, target, monkeypatch):
    """Killed while refitting or committing iteration 2: resumed, it ends exactly as the uninterrupted run."""
    owner = {"partial_fit": IncrementalSparseGPR, "save_model": Checkpoint, "append_log": Checkpoint}[target]
    _, _, resumed = _crash_then_resume(monkeypatch, _learner, tmp_path / "run", owner, target, 4, after=False)
    _assert_same(_outcome(resumed), uninterrupted[0])


def test_a_call_cut_short_is_counted(tmp_path, uninterrupted):
    """Killed inside the 4th oracle call: no label came back, so it is asked again, and both calls count."""
    first = Oracle(crash_before=4)
    with pytest.raises(Crash):
        _learner(first, tmp_path / "run", budget=7).run()
    resumed = _learner(Oracle(), tmp_path / "run", budget=7).run()
    calls = [r for r in Checkpoint(tmp_path / "run").read_log() if r["kind"] == "call"]
    assert resumed.oracle_calls_ == len(calls) == 7
    assert len(resumed.labelled_) == 6  # one of the 7 calls was lost to the crash


def test_every_oracle_call_counts_the_initial_ones_too(tmp_path):
    oracle = Oracle()
    learner = _learner(oracle, tmp_path / "run", budget=5).run()
    assert learner.oracle_calls_ == len(oracle.labelled) == 5 == len(learner.labelled_)
    assert [a.info["active_source"] for a in learner.labelled_] == ["oracle"] * 5
    given = [_cu(0), _cu(1)]
    for atoms in given:
        atoms.calc = EMT()
        atoms.get_forces()
    learner = _learner(Oracle(), tmp_path / "given", budget=3, initial=given).run()
    assert learner.oracle_calls_ == 3 and len(learner.labelled_) == 5  # labels that came with `initial` are free


def test_budget_smaller_than_the_initial_labels():
    with pytest.raises(ValueError, match=r"`n_initial`=2 oracle calls exceed `budget`=1: the budget counts every "
                                         r"oracle call, the initial labels included"):
        _learner(Oracle(), None, budget=1).run()


def test_torn_journal_frame_is_dropped_and_cut_before_the_next_append(tmp_path):
    store = Checkpoint(tmp_path)
    atoms = _cu(0)
    atoms.calc = EMT()
    atoms.get_forces()
    store.append_labelled(atoms)
    with open(store.labelled_path, "ab") as stream:
        stream.write(b"4\nLattice=\"3.6 0 0 0 3.6 0 0 0 3.6\" Properties=species:S:1:pos:R:3 pbc=\"T T T\"\nCu 0 0")
    assert len(Checkpoint(tmp_path).load_labelled()) == 1
    fresh = Checkpoint(tmp_path)
    fresh.append_labelled(atoms)
    assert len(Checkpoint(tmp_path).load_labelled()) == 2


def test_corrupt_journal_frame_in_the_middle_is_an_error(tmp_path):
    store = Checkpoint(tmp_path)
    store.labelled_path.write_bytes(b"1\nProperties=species:S:1:pos:R:3\nCu zero 0 0\n1\nProperties=species:S:1:pos:R:3\n"
                                    b"Cu 0 0 0\n")
    with pytest.raises(ValueError, match=r"labelled.extxyz: frame 0 cannot be read .* the checkpoint is corrupt"):
        store.load_labelled()


# ------------------------------------------------------------------ the sparse set grows (item 8)
def test_sparse_set_grows_with_the_data(tmp_path):
    """2 initial 4-atom cells give 8 SOAP environments for 20 requested sparse points: full refits add more."""
    learner = _learner(Oracle(), tmp_path / "run", budget=10, strategy="random")
    learner.model = _template(n_sparse=20)
    learner.run()
    sparse = [record["n_sparse"] for record in learner.history_]
    refits = [record["refit"] for record in learner.history_]
    assert refits[0] == "full" and refits.count("full") >= 3  # at 2, 4 and 8 labelled structures
    assert sparse[-1] > sparse[0]
    assert learner.model_.terms_[1].n_sparse == 20


def test_frozen_sparse_set_is_announced(tmp_path):
    learner = _learner(Oracle(), tmp_path / "run", budget=4, refit_every=None, strategy="random")
    learner.model = _template(n_sparse=20)
    with pytest.warns(UserWarning, match=r"the sparse set is frozen: term 1 has 8 of the 20 sparse points it asks "
                                         r"for, and with refit_every=None incremental refits never add any"):
        learner.run()
    assert [r["refit"] for r in learner.history_] == ["full", "incremental", "incremental"]


@pytest.mark.parametrize("value, error, message", [
    ("sometimes", ValueError, r"`refit_every` must be 'auto', None or an integer >= 1; got 'sometimes'"),
    (0, ValueError, r"`refit_every` must be an integer >= 1; got 0"),
])
def test_refit_every_is_validated(value, error, message):
    with pytest.raises(error, match=message):
        _learner(Oracle(), None, refit_every=value).run()


def test_on_the_fly_md_resumes_to_the_same_run(tmp_path, monkeypatch):
    """MD exploration: a crash after the 3rd label; the replayed iterations rerun the same dynamics."""
    def learner(oracle, folder):
        explorer = MDExplorer(_cu(0) * (2, 1, 1), schedule=[(300.0, 20), (900.0, 20)], interval=5, segment=10,
                              random_state=0)
        return ActiveLearner(_template(), explorer, oracle, strategy="variance", budget=5, checkpoint=folder)

    reference = _outcome(learner(Oracle(), tmp_path / "clean").run())
    _, _, resumed = _crash_then_resume(monkeypatch, learner, tmp_path / "run", Checkpoint, "append_labelled", 3,
                                       after=True)
    _assert_same(_outcome(resumed), reference)
