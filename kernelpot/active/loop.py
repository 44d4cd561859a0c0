"""The active-learning loop: explore → score → select → label → refit → stop.

:class:`ActiveLearner` runs the loop around a sparse GPR (GAP) model:

1. the explorer (:mod:`kernelpot.active.explorers`) offers candidates;
2. the strategy (:mod:`kernelpot.active.strategies`) scores them and picks
   a diverse batch;
3. the oracle (any ASE calculator) labels the picks; a failure (exception
   or NaN) is logged and the structure skipped;
4. the model is refitted incrementally
   (:class:`~kernelpot.models.gap.incremental.IncrementalSparseGPR`), or fully,
   with a new sparse set, every ``refit_every`` iterations;
5. the run stops at the label budget, at the target validation error or
   when the explorer has nothing left.

Each iteration is checkpointed (:mod:`kernelpot.active.checkpoint`);
running the same learner again on the same folder resumes without
relabelling anything.
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np

from ..io import LabelledStructures
from ..models.gap import IncrementalSparseGPR, SparseGPR
from ..potential.metrics import error_table
from .checkpoint import Checkpoint
from .oracles import label
from .strategies import make_strategy

__all__ = ["ActiveLearner"]

logger = logging.getLogger(__name__)
_METRICS = ("forces_rmse", "forces_mae", "energy_rmse", "energy_mae")


def _as_labelled_structures(data):
    if data is None or isinstance(data, LabelledStructures):
        return data
    atoms = list(data)
    energies = [a.calc.results["energy"] for a in atoms]
    forces = [a.calc.results["forces"] for a in atoms]
    return LabelledStructures(atoms, energies, forces, [None] * len(atoms), [None] * len(atoms),
                              np.arange(len(atoms)))


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}")


class ActiveLearner:
    """Active learning of a GAP-style potential.

    Parameters
    ----------
    model : SparseGPR
        Template (unfitted) model: terms and hyperparameters. It is not
        modified; fitted copies are kept in ``model_``.
    explorer : PoolExplorer or MDExplorer
    oracle : ase calculator
        Labels structures with ``energy`` (eV) and ``forces`` (eV/Å).
    strategy : {"variance", "committee", "distance", "doptimal", "random"} or Strategy, default="variance"
    batch_size : int, default=1
        Structures labelled per iteration.
    budget : int, default=100
        Largest number of oracle calls of the loop after the initial fit
        (failed calls count; the initial structures do not).
    n_initial : int, default=2
        Structures labelled before the first fit when ``initial`` is None
        (drawn from the pool, or the MD start and rattled copies).
    initial : list of ase.Atoms or None, default=None
        Initial structures; those carrying energy and forces
        (``atoms.calc.results``) are used as labelled, the others are
        labelled by the oracle.
    validation : list of ase.Atoms (with calc results), LabelledStructures or None
        Reference structures for the error after each iteration.
    target_error : float or None, default=None
        Stop when the validation ``target_metric`` is at or below it
        (eV/Å for forces, eV/atom for energies). Needs ``validation``.
    target_metric : {"forces_rmse", "forces_mae", "energy_rmse", "energy_mae"}, default="forces_rmse"
    refit_every : int or None, default=None
        Full refit with newly chosen sparse points every this many
        iterations; otherwise (and if None, always) the refit is
        incremental on the current sparse set.
    min_distance : float or "auto", default="auto"
        Smallest fingerprint distance between two picks of a batch
        (see :func:`kernelpot.active.strategies.fingerprints`).
    checkpoint : str, Path or None, default=None
        Folder for the checkpoint; an existing one is resumed.
    random_state : int or None, default=0
    verbose : bool, default=False

    Attributes
    ----------
    model_ : IncrementalSparseGPR
    labelled_ : list of ase.Atoms
        Labelled structures (``SinglePointCalculator`` results).
    history_ : list of dict
        One record per iteration (also the checkpoint log).
    oracle_calls_ : int
        Oracle calls made by the loop (including failures; not initial ones).
    failures_ : list of dict
        ``{"key", "reason"}`` of structures the oracle failed on.
    stop_reason_ : str
    """

    def __init__(self, model, explorer, oracle, *, strategy="variance", batch_size=1, budget=100, n_initial=2,
                 initial=None, validation=None, target_error=None, target_metric="forces_rmse",
                 refit_every=None, min_distance="auto", checkpoint=None, random_state=0, verbose=False):
        self.model = model
        self.explorer = explorer
        self.oracle = oracle
        self.strategy = strategy
        self.batch_size = batch_size
        self.budget = budget
        self.n_initial = n_initial
        self.initial = initial
        self.validation = validation
        self.target_error = target_error
        self.target_metric = target_metric
        self.refit_every = refit_every
        self.min_distance = min_distance
        self.checkpoint = checkpoint
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        if not isinstance(self.model, SparseGPR):
            raise TypeError(f"`model` must be a SparseGPR (template); got {type(self.model).__name__}")
        _check_int("budget", self.budget, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("n_initial", self.n_initial, 1)
        if self.refit_every is not None:
            _check_int("refit_every", self.refit_every, 1)
        if self.target_metric not in _METRICS:
            raise ValueError(f"`target_metric` must be one of {list(_METRICS)}; got {self.target_metric!r}")
        if self.target_error is not None:
            if not (isinstance(self.target_error, (int, float, np.number)) and self.target_error > 0):
                raise ValueError(f"`target_error` must be a number > 0; got {self.target_error!r}")
            if self.validation is None:
                raise ValueError("`target_error` needs `validation` structures to measure the error on")
        if not (self.min_distance == "auto" or (isinstance(self.min_distance, (int, float, np.number))
                                                 and self.min_distance >= 0)):
            raise ValueError(f"`min_distance` must be 'auto' or a number >= 0; got {self.min_distance!r}")
        if not callable(getattr(self.oracle, "get_property", None)) and not callable(
                getattr(self.oracle, "calculate", None)):
            raise TypeError(f"`oracle` must be an ASE calculator; got {type(self.oracle).__name__}")
        strategy = make_strategy(self.strategy, self.random_state)
        self.explorer.check_batch(int(self.batch_size))
        return strategy

    def _say(self, message):
        logger.info(message)
        if self.verbose:
            print(message, flush=True)

    # -------------------------------------------------------------------- run
    def run(self):
        """Run (or resume) the loop until a stopping rule fires.

        Returns
        -------
        self
        """
        strategy = self._check_params()
        self.strategy_ = strategy
        self.rng_ = np.random.default_rng(self.random_state)
        self.validation_ = _as_labelled_structures(self.validation)
        store = Checkpoint(self.checkpoint) if self.checkpoint is not None else None
        self.history_, self.failures_, self.oracle_calls_, self.iteration_ = [], [], 0, 0
        if store is not None and store.exists():
            self._resume(store)
        else:
            self._start(store)
        self.stop_reason_ = self._stop_reason()
        while self.stop_reason_ is None:
            self._iterate(store)
            self.stop_reason_ = self._stop_reason()
        self._say(f"stopped: {self.stop_reason_}")
        return self

    def _stop_reason(self):
        if self.oracle_calls_ >= self.budget:
            return f"budget of {self.budget} oracle calls reached"
        last = self.history_[-1] if self.history_ else None
        if self.target_error is not None and last is not None and last.get("validation"):
            value = last["validation"].get(self.target_metric)
            if value is not None and value <= self.target_error:
                return f"target {self.target_metric} <= {self.target_error} reached ({value:.4g})"
        if self.explorer.exhausted:
            return "explorer exhausted"
        if last is not None and last.get("n_candidates") == 0:
            return "no candidates"
        return None

    # ----------------------------------------------------------------- start
    def _start(self, store):
        if self.initial is not None:
            structures = list(self.initial)
            keys = [f"initial:{i}" for i in range(len(structures))]
        else:
            keys, structures = self.explorer.initial(int(self.n_initial), self.rng_)
        self.labelled_ = []
        for key, atoms in zip(keys, structures):
            results = atoms.calc.results if atoms.calc is not None else {}
            if "energy" in results and "forces" in results:
                labelled, _ = label(atoms, atoms.calc)
            else:
                labelled, reason = label(atoms, self.oracle)
                if labelled is None:
                    self._fail(store, key, reason, iteration=0)
            if labelled is not None:
                labelled.info.update(active_key=key, active_iteration=0)
                self.labelled_.append(labelled)
            if self.initial is None:  # it came from the explorer
                self.explorer.mark(key, labelled is not None)
        if not self.labelled_:
            raise ValueError("no initial structure could be labelled; see the failures in the log")
        start = time.perf_counter()
        self.model_ = self._full_fit()
        record = self._record(0, keys, [], "full", time.perf_counter() - start, n_candidates=None)
        self._commit(store, record)

    def _full_fit(self):
        params = copy.deepcopy(self.model.get_params(deep=False))
        energies = [a.calc.results["energy"] for a in self.labelled_]
        forces = [a.calc.results["forces"] for a in self.labelled_]
        return IncrementalSparseGPR(**params).fit(self.labelled_, energies=energies, forces=forces)

    def _resume(self, store):
        state = store.load_state() or {}
        self.labelled_ = store.load_labelled()
        log = store.read_log()
        self.history_ = [r for r in log if r.get("kind") == "iteration"]
        self.failures_ = [r for r in log if r.get("kind") == "failure"]
        self.iteration_ = int(state.get("iteration", len(self.history_) - 1))
        self.oracle_calls_ = int(state.get("oracle_calls", 0))
        if "explorer" in state:
            self.explorer.restore(state["explorer"])
        if "rng" in state:
            self.rng_.bit_generator.state = state["rng"]
        # Labels and failures written after the last state file are still paid for.
        done = {str(a.info.get("active_key")) for a in self.labelled_} | {str(f["key"]) for f in self.failures_}
        for key in list(getattr(self.explorer, "available", [])):
            if str(key) in done:
                self.explorer.mark(key, True)
        stored = store.load_model()
        if stored is None:
            self.model_ = self._full_fit()
        else:
            self.model_ = IncrementalSparseGPR.from_model(stored)
            seen = int(stored.metadata_.get("n_labelled", len(self.labelled_)))
            self.model_.n_structures_seen_ = seen
            extra = self.labelled_[seen:]
            if extra:
                self.model_.partial_fit(extra, energies=[a.calc.results["energy"] for a in extra],
                                        forces=[a.calc.results["forces"] for a in extra])
        self.oracle_calls_ = max(self.oracle_calls_, len([a for a in self.labelled_
                                                           if int(a.info.get("active_iteration", 0)) > 0])
                                 + len([f for f in self.failures_ if int(f.get("iteration", 0)) > 0]))
        self._say(f"resumed from {store.directory}: iteration {self.iteration_}, {len(self.labelled_)} labelled, "
                  f"{self.oracle_calls_} oracle calls")

    # ------------------------------------------------------------- iteration
    def _iterate(self, store):
        self.iteration_ += 1
        it = self.iteration_
        self.strategy_.prepare(self.model_, self.labelled_)
        keys, candidates = self.explorer.candidates(self.model_, self.strategy_, self.rng_)
        picked_keys, scores = [], []
        new = []
        if candidates:
            all_scores = np.asarray(self.strategy_.score(candidates))
            room = min(int(self.batch_size), self.budget - self.oracle_calls_)
            picks = self.strategy_.select(candidates, all_scores, room, self.min_distance)
            for i in picks:
                self.oracle_calls_ += 1
                labelled, reason = label(candidates[i], self.oracle)
                self.explorer.mark(keys[i], labelled is not None)
                if labelled is None:
                    self._fail(store, keys[i], reason, iteration=it)
                    continue
                labelled.info.update(active_key=keys[i], active_iteration=it)
                new.append(labelled)
                picked_keys.append(keys[i])
                scores.append(float(all_scores[i]))
        self.labelled_.extend(new)
        start = time.perf_counter()
        kind = "none"
        if new:
            if self.refit_every is not None and it % int(self.refit_every) == 0:
                self.model_, kind = self._full_fit(), "full"
            else:
                self.model_.partial_fit(new, energies=[a.calc.results["energy"] for a in new],
                                        forces=[a.calc.results["forces"] for a in new])
                kind = "incremental"
        record = self._record(it, picked_keys, scores, kind, time.perf_counter() - start,
                              n_candidates=len(candidates))
        self._commit(store, record)

    def _fail(self, store, key, reason, iteration):
        failure = {"kind": "failure", "iteration": iteration, "key": str(key), "reason": reason}
        self.failures_.append(failure)
        self._say(f"oracle failed on {key}: {reason} (skipped)")
        if store is not None:
            store.append_log(failure)

    def _record(self, iteration, keys, scores, refit, seconds, n_candidates):
        record = {"kind": "iteration", "iteration": iteration, "picked": [str(k) for k in keys],
                  "scores": scores, "score_units": self.strategy_.score_units, "strategy": self.strategy_.name,
                  "n_candidates": n_candidates, "n_labelled": len(self.labelled_),
                  "oracle_calls": self.oracle_calls_, "n_failures": len(self.failures_), "refit": refit,
                  "refit_seconds": seconds, "n_sparse": int(self.model_.alpha_.size), "time": time.time()}
        if self.validation_ is not None:
            table = error_table(self.model_, self.validation_)
            record["validation"] = {k: table[k] for k in _METRICS}
        self._say(f"iteration {iteration}: {len(keys)} labelled ({self.oracle_calls_} oracle calls, "
                  f"{len(self.labelled_)} in training, refit {refit} {seconds:.2f} s)"
                  + (f", validation forces RMSE {record['validation']['forces_rmse']:.4f} eV/Å"
                     if "validation" in record else ""))
        return record

    def _commit(self, store, record):
        self.history_.append(record)
        if store is None:
            return
        # Order matters for resuming: labels first (they cost), then model, log, state.
        store.save_labelled(self.labelled_)
        store.save_model(self.model_, {"n_labelled": len(self.labelled_), "iteration": record["iteration"]})
        store.append_log(record)
        store.save_state({"iteration": record["iteration"], "oracle_calls": self.oracle_calls_,
                          "n_labelled": len(self.labelled_), "explorer": self.explorer.state(),
                          "rng": self.rng_.bit_generator.state, "strategy": self.strategy_.name})
