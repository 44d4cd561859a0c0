"""Active learning: incremental refits, strategies, the loop, checkpoints and bad input.

Small periodic Cu cells (4 atoms) labelled by ASE's EMT; a distance_2b +
small SOAP model, so every test runs in seconds.
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
from kernelpot.active.oracles import StoredLabels, label
from kernelpot.active.strategies import (
    STRATEGIES,
    DOptimality,
    PredictiveVariance,
    VarianceReduction,
    _maxvol,
    fingerprints,
    make_strategy,
)
from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.soap import SOAP
from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, IncrementalSparseGPR, SparseGPR, frozen_sparse_terms
from kernelpot.potential.serialization import load_model, save_model


def _cu(seed, amp=0.05):
    atoms = bulk("Cu", "fcc", a=3.58 + 0.01 * (seed % 5), cubic=True)
    atoms.rattle(amp, seed=seed)
    return atoms


def _labelled(structures):
    return [label(a, EMT())[0] for a in structures]


def _terms(n_sparse=20):
    return [GAPTerm(Distance2B(cutoff=4.0), GaussianCovariance(0.5), delta=1.0, n_sparse=8, sparse_method="uniform"),
            GAPTerm(SOAP(species=[29], r_cut=4.0, n_max=3, l_max=2, sigma=0.5, periodic=True),
                    NormalizedDotProductCovariance(2), delta=0.1, n_sparse=n_sparse, sparse_method="cur")]


def _template(**kwargs):
    return SparseGPR(_terms(), default_sigma=(0.002, 0.05, 0.05), **kwargs)


def _fit_args(structures):
    return {"energies": [a.calc.results["energy"] for a in structures],
            "forces": [a.calc.results["forces"] for a in structures]}


@pytest.fixture(scope="module")
def data():
    return _labelled([_cu(s) for s in range(9)])


class CountingEMT(EMT):
    """EMT that counts its calculations (to check that a resumed run relabels nothing)."""

    calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        type(self).calls += 1
        super().calculate(atoms, properties, system_changes)


class FlakyOracle(Calculator):
    """EMT, except that it raises on one structure and returns NaN forces on another."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, raise_on, nan_on):
        super().__init__()
        self.raise_on, self.nan_on = raise_on, nan_on

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if np.allclose(atoms.positions, self.raise_on.positions):
            raise RuntimeError("SCF did not converge")
        work = atoms.copy()
        work.calc = EMT()
        forces = work.get_forces()
        if np.allclose(atoms.positions, self.nan_on.positions):
            forces[0, 0] = np.nan
        self.results = {"energy": work.get_potential_energy(), "forces": forces}


# ----------------------------------------------------------------- incremental
@pytest.mark.parametrize("chunks", [[3, 3, 3], [2, 7]])
def test_incremental_equals_full_refit_on_union(data, chunks):
    model = IncrementalSparseGPR(_terms(), default_sigma=(0.002, 0.05, 0.05))
    bounds = np.cumsum([0] + chunks)
    model.fit(data[: bounds[1]], **_fit_args(data[: bounds[1]]))
    for a, b in zip(bounds[1:-1], bounds[2:]):
        model.partial_fit(data[a:b], **_fit_args(data[a:b]))
    full = SparseGPR(frozen_sparse_terms(model), e0=model.e0_, default_sigma=(0.002, 0.05, 0.05))
    full.fit(data, **_fit_args(data))
    probe = [_cu(100), _cu(101)]
    p_inc = model.predict(probe, properties=("forces",), return_std=True)
    p_full = full.predict(probe, properties=("forces",), return_std=True)
    assert model.n_structures_seen_ == len(data)
    np.testing.assert_allclose(p_inc["energy"], p_full["energy"], rtol=0, atol=1e-10 * len(probe[0]))
    np.testing.assert_allclose(p_inc["forces"], p_full["forces"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(p_inc["energy_std"], p_full["energy_std"], rtol=1e-8, atol=1e-12)
    H_inc = model.posterior_factor_.T @ model.posterior_factor_
    H_full = full.posterior_factor_.T @ full.posterior_factor_
    np.testing.assert_allclose(H_inc, H_full, rtol=1e-10, atol=1e-10 * np.abs(H_full).max())


def test_incremental_cholesky_matches_qr(data):
    # The normal equations square the condition number: compare with the QR answer at that accuracy.
    kwargs = dict(default_sigma=(0.01, 0.1, 0.05), jitter=1e-6)
    model = IncrementalSparseGPR(_terms(), solver="cholesky", **kwargs).fit(data[:4], **_fit_args(data[:4]))
    model.partial_fit(data[4:], **_fit_args(data[4:]))
    qr = SparseGPR(frozen_sparse_terms(model), e0=model.e0_, solver="qr", **kwargs).fit(data, **_fit_args(data))
    probe = [_cu(100)]
    error = np.abs(model.predict(probe, properties=("forces",))["forces"]
                   - qr.predict(probe, properties=("forces",))["forces"]).max()
    assert error < 1e-3


def test_partial_fit_of_a_loaded_model(data, tmp_path):
    model = IncrementalSparseGPR(_terms(), default_sigma=(0.002, 0.05, 0.05)).fit(data[:5], **_fit_args(data[:5]))
    save_model(model, tmp_path / "m.kpot")
    resumed = IncrementalSparseGPR.from_model(load_model(tmp_path / "m.kpot"))
    resumed.partial_fit(data[5:], **_fit_args(data[5:]))
    model.partial_fit(data[5:], **_fit_args(data[5:]))
    probe = [_cu(100)]
    np.testing.assert_allclose(resumed.predict(probe, properties=("forces",))["forces"],
                               model.predict(probe, properties=("forces",))["forces"], atol=1e-10)


def test_partial_fit_errors(data):
    with pytest.raises(ValueError, match="needs a fitted model"):
        IncrementalSparseGPR(_terms()).partial_fit(data[:1], **_fit_args(data[:1]))
    model = IncrementalSparseGPR(_terms()).fit(data[:3], **_fit_args(data[:3]))
    ni = bulk("Ni", "fcc", a=3.5, cubic=True)
    ni.rattle(0.05, seed=1)
    with pytest.raises(ValueError, match=r"species Z=\[28\] have no e0"):
        model.partial_fit([ni], energies=[0.0], forces=[np.zeros((4, 3))])
    with pytest.raises(TypeError, match="`model` must be a SparseGPR"):
        IncrementalSparseGPR.from_model("model.kpot")
    with pytest.raises(ValueError, match="`model` is not fitted"):
        IncrementalSparseGPR.from_model(_template())


# ------------------------------------------------------------------ strategies
@pytest.fixture(scope="module")
def fitted(data):
    return IncrementalSparseGPR(_terms(), default_sigma=(0.002, 0.05, 0.05)).fit(data[:4], **_fit_args(data[:4]))


def test_scores_rank_a_strongly_distorted_structure_first(data, fitted):
    # Candidates: two near-copies of training structures and one far from anything seen.
    candidates = [data[0].copy(), data[1].copy(), _cu(50, amp=0.35)]
    for a in candidates[:2]:
        a.calc = None
        a.positions += 1e-4
    for name in ("variance", "distance", "doptimal", "committee"):
        strategy = make_strategy(name, random_state=0).prepare(fitted, data[:4])
        scores = strategy.score(candidates)
        assert scores.shape == (3,)
        assert np.argmax(scores) == 2, (name, scores)


def test_distance_and_grade_of_labelled_structures(data, fitted):
    distance = make_strategy("distance").prepare(fitted, data[:4])
    np.testing.assert_allclose(distance.score(data[:4]), 0.0, atol=1e-6)
    # Environments already in the maxvol active set or spanned by it have grade <= 1 (+ tolerance).
    dopt = DOptimality(tolerance=1.01).prepare(fitted, data[:4])
    assert np.all(dopt.score(data[:4]) <= 1.01 + 1e-8)


def test_maxvol_finds_the_dominant_rows():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(30, 3))
    rows[[4, 17, 25]] *= 50.0  # these rows span by far the largest volume
    A = _maxvol(rows, np.arange(3), 1.0 + 1e-9, 100)
    chosen = sorted(int(np.nonzero((rows == r).all(1))[0][0]) for r in A)
    assert chosen == [4, 17, 25]


def test_batches_contain_no_near_duplicates(data, fitted):
    base = [_cu(60 + s, amp=0.2) for s in range(4)]
    candidates = []
    for a in base:  # each structure twice, the copy shifted by 1e-5 Å
        twin = a.copy()
        twin.positions += 1e-5
        candidates += [a, twin]
    for name in sorted(STRATEGIES):
        strategy = make_strategy(name, random_state=0).prepare(fitted, data[:4])
        picks = strategy.select(candidates, strategy.score(candidates), 4, min_distance=1e-4)
        assert len(picks) == 4, name
        assert len({p // 2 for p in picks}) == 4, (name, picks)


def test_variance_uses_force_std_when_available(data, fitted):
    strategy = PredictiveVariance().prepare(fitted, data[:4])
    strategy.score([_cu(70)])
    has_forces_std = "forces_std" in fitted.predict([_cu(70)], properties=("forces",), return_std=True)
    assert strategy.score_units.startswith("eV/Å") == has_forces_std
    with pytest.raises(ValueError, match="`quantity` must be one of"):
        PredictiveVariance(quantity="stress").prepare(fitted, data[:4]).score([_cu(70)])


def test_fingerprints_are_invariant_to_atom_order(fitted):
    a = _cu(80)
    b = a[[3, 1, 0, 2]]
    np.testing.assert_allclose(fingerprints(fitted, [a]), fingerprints(fitted, [b]), atol=1e-12)


# ------------------------------------------------------------------------ loop
def _pool(n=10):
    return [_cu(200 + s) for s in range(n)]


def test_pool_loop_labels_budget_and_improves(data, tmp_path):
    validation = data[4:]
    learner = ActiveLearner(_template(), PoolExplorer(_pool()), EMT(), strategy="variance", batch_size=2,
                            budget=6, validation=validation, refit_every=2, checkpoint=tmp_path / "run").run()
    assert learner.oracle_calls_ == 6  # the 2 initial labels count
    assert len(learner.labelled_) == 2 + 4
    keys = [a.info["active_key"] for a in learner.labelled_]
    assert len(set(keys)) == len(keys)
    assert "budget" in learner.stop_reason_
    errors = [h["validation"]["forces_rmse"] for h in learner.history_]
    assert errors[-1] < errors[0]
    assert [h["refit"] for h in learner.history_] == ["full", "incremental", "full"]


def test_resume_relabels_nothing(tmp_path):
    CountingEMT.calls = 0
    kwargs = dict(strategy="distance", batch_size=1, checkpoint=tmp_path / "run", refit_every=2)
    first = ActiveLearner(_template(), PoolExplorer(_pool()), CountingEMT(), budget=5, **kwargs).run()
    calls_first = CountingEMT.calls
    assert calls_first == first.oracle_calls_ == 2 + 3
    # Same command again: nothing to do, no oracle call, same model.
    again = ActiveLearner(_template(), PoolExplorer(_pool()), CountingEMT(), budget=5, **kwargs).run()
    assert CountingEMT.calls == calls_first
    assert len(again.labelled_) == len(first.labelled_)
    probe = [_cu(300)]
    np.testing.assert_allclose(again.model_.predict(probe)["energy"], first.model_.predict(probe)["energy"],
                               atol=1e-10)
    # A larger budget continues where it stopped: only the new labels cost.
    more = ActiveLearner(_template(), PoolExplorer(_pool()), CountingEMT(), budget=7, **kwargs).run()
    assert CountingEMT.calls == calls_first + 2 and more.oracle_calls_ == 7
    keys = [a.info["active_key"] for a in more.labelled_]
    assert len(set(keys)) == len(keys) == 2 + 5
    log = Checkpoint(tmp_path / "run").read_log()
    assert [r["iteration"] for r in log if r["kind"] == "iteration"] == list(range(6))


def test_resume_after_a_crash_between_labels_and_model(tmp_path):
    # Crash simulated: the labels of the last iteration were written, model and state were not.
    kwargs = dict(strategy="random", batch_size=1, checkpoint=tmp_path / "run")
    ActiveLearner(_template(), PoolExplorer(_pool()), EMT(), budget=4, **kwargs).run()
    store = Checkpoint(tmp_path / "run")
    state, model = store.state_path.read_bytes(), store.model_path.read_bytes()
    ActiveLearner(_template(), PoolExplorer(_pool()), EMT(), budget=5, **kwargs).run()
    store.state_path.write_bytes(state)
    store.model_path.write_bytes(model)
    CountingEMT.calls = 0
    resumed = ActiveLearner(_template(), PoolExplorer(_pool()), CountingEMT(), budget=5, **kwargs).run()
    assert CountingEMT.calls == 0
    assert len(resumed.labelled_) == 2 + 3
    assert resumed.model_.n_structures_seen_ == 5


def test_oracle_failures_are_logged_and_skipped(tmp_path):
    pool = _pool(6)
    oracle = FlakyOracle(raise_on=pool[1], nan_on=pool[2])
    learner = ActiveLearner(_template(), PoolExplorer(pool), oracle, strategy="random", batch_size=2, budget=6,
                            initial=_labelled([_cu(0), _cu(1)]), checkpoint=tmp_path / "run").run()
    reasons = {f["key"]: f["reason"] for f in learner.failures_}
    assert set(reasons) == {"1", "2"}
    assert "SCF did not converge" in reasons["1"] and "non-finite" in reasons["2"]
    assert len(learner.labelled_) == 2 + 4
    assert learner.oracle_calls_ == 6
    logged = [r for r in Checkpoint(tmp_path / "run").read_log() if r["kind"] == "failure"]
    assert {r["key"] for r in logged} == {"1", "2"}


def test_target_error_stops_the_loop(data):
    learner = ActiveLearner(_template(), PoolExplorer(_pool()), EMT(), strategy="random", budget=8,
                            validation=data[4:], target_error=10.0).run()
    assert "target forces_rmse" in learner.stop_reason_
    assert learner.oracle_calls_ == 2  # the initial labels only


@pytest.mark.parametrize("kwargs, error, match", [
    ({"budget": 0}, ValueError, r"`budget` must be an integer >= 1; got 0"),
    ({"batch_size": 0}, ValueError, r"`batch_size` must be an integer >= 1; got 0"),
    ({"batch_size": 11}, ValueError, r"the pool has 10 unlabelled structures, fewer than `batch_size`=11"),
    ({"strategy": "entropy"}, ValueError, r"`strategy` must be one of .*'variance'.*; got 'entropy'"),
    ({"target_error": 0.05}, ValueError, r"`target_error` needs `validation`"),
    ({"target_error": -1.0}, ValueError, r"`target_error` must be a number > 0; got -1.0"),
    ({"target_metric": "stress"}, ValueError, r"`target_metric` must be one of"),
    ({"refit_every": 0}, ValueError, r"`refit_every` must be an integer >= 1; got 0"),
    ({"min_distance": -1}, ValueError, r"`min_distance` must be 'auto' or a number >= 0; got -1"),
    ({"oracle": "emt"}, TypeError, r"`oracle` must be an ASE calculator; got str"),
    ({"model": "gap"}, TypeError, r"`model` must be a SparseGPR"),
])
def test_bad_input(kwargs, error, match):
    args = {"model": _template(), "explorer": PoolExplorer(_pool()), "oracle": EMT()}
    args.update({k: kwargs.pop(k) for k in list(kwargs) if k in args})
    with pytest.raises(error, match=match):
        ActiveLearner(args["model"], args["explorer"], args["oracle"], **kwargs).run()


def test_explorer_bad_input():
    with pytest.raises(ValueError, match="`pool` must contain at least one structure"):
        PoolExplorer([])
    with pytest.raises(TypeError, match="`pool` must be a list of ase.Atoms"):
        PoolExplorer(["x"])
    with pytest.raises(ValueError, match="`schedule` must be"):
        MDExplorer(_cu(0), schedule=[(300.0, 0)])
    with pytest.raises(ValueError, match="`interval` must be an integer >= 1; got 0"):
        MDExplorer(_cu(0), interval=0)
    with pytest.raises(ValueError, match="`batch_size` must be 1"):
        MDExplorer(_cu(0), threshold=0.1).check_batch(2)


def test_stored_labels_oracle_reveals_and_refuses(data):
    oracle = StoredLabels(data[:3], *_fit_args(data[:3]).values())
    relabelled, reason = label(data[1], oracle)
    assert reason is None
    np.testing.assert_allclose(relabelled.get_forces(), data[1].get_forces())
    unknown, reason = label(_cu(99), oracle)
    assert unknown is None and "not among the stored" in reason


# ------------------------------------------------------------------------- MD
def test_md_explorer_stops_at_the_threshold_and_resumes_state(fitted):
    explorer = MDExplorer(_cu(0) * (2, 1, 1), schedule=[(300.0, 40), (900.0, 40)], interval=5, threshold=0.0,
                          random_state=0)
    strategy = make_strategy("variance").prepare(fitted, [])
    keys, frames = explorer.candidates(fitted, strategy, np.random.default_rng(0))
    # Every snapshot has a positive std, so the first one triggers.
    assert keys == ["md:5"] and len(frames) == 1
    state = json.loads(json.dumps(explorer.state()))
    copy = MDExplorer(_cu(0) * (2, 1, 1), schedule=[(300.0, 40), (900.0, 40)], interval=5)
    copy.restore(state)
    np.testing.assert_allclose(copy.atoms.get_momenta(), explorer.atoms.get_momenta())
    assert copy.total_steps == 5 and not copy.exhausted
    never = MDExplorer(_cu(0) * (2, 1, 1), schedule=[(300.0, 10), (900.0, 10)], interval=5, threshold=1e9)
    keys, frames = never.candidates(fitted, strategy, np.random.default_rng(0))
    assert keys == [] and never.exhausted


def test_on_the_fly_loop_with_emt(tmp_path):
    explorer = MDExplorer(_cu(0) * (2, 1, 1), schedule=[(300.0, 20), (900.0, 20)], interval=5, segment=10,
                          random_state=0)
    learner = ActiveLearner(_template(), explorer, EMT(), strategy="variance", budget=5,
                            checkpoint=tmp_path / "run").run()
    assert learner.oracle_calls_ == 5
    assert all(str(a.info["active_key"]).startswith(("md:", "init:")) for a in learner.labelled_)
    state = Checkpoint(tmp_path / "run").load_state()
    assert state["explorer"]["kind"] == "md" and state["explorer"]["total_steps"] == 30


# ------------------------------------------------------------------ checkpoint
def test_torn_log_line_is_ignored(tmp_path):
    store = Checkpoint(tmp_path)
    store.append_log({"kind": "iteration", "iteration": 0})
    with open(store.log_path, "a") as stream:
        stream.write('{"kind": "iter')  # crash in the middle of a line
    store.append_log({"kind": "iteration", "iteration": 1})
    assert [r["iteration"] for r in store.read_log()] == [0, 1]


def test_variance_reduction_downdate_equals_refit_with_the_energy_label(data):
    # The greedy batch's rank-one update of Q must equal Q of a model that really saw that energy.
    model = IncrementalSparseGPR(_terms(), default_sigma=(0.002, 0.05, 0.05)).fit(data[:4], **_fit_args(data[:4]))
    candidates = [_cu(400 + s, amp=0.1) for s in range(5)]
    strategy = VarianceReduction().prepare(model, data[:4])
    Q, sigma = strategy._q_matrix(candidates)
    chosen = 2
    q = Q[:, chosen]
    expected = Q - np.outer(q, q) / (1.0 + q[chosen])
    labelled = label(candidates[chosen], EMT())[0]
    model.partial_fit([labelled], energies=[labelled.get_potential_energy()])
    after, _ = VarianceReduction().prepare(model, data[:4])._q_matrix(candidates)
    np.testing.assert_allclose(after, expected, rtol=1e-7, atol=1e-9 * np.abs(Q).max())
    gains = strategy.score(candidates)
    assert np.all(gains > 0)
