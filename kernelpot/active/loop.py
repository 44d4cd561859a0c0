"""The active-learning loop: explore → score → select → label → refit → stop.

:class:`ActiveLearner` runs the loop around a sparse GPR (GAP) model:

1. the explorer (:mod:`kernelpot.active.explorers`) offers candidates;
2. the strategy (:mod:`kernelpot.active.strategies`) scores them and picks
   a diverse batch;
3. the oracle (any ASE calculator) labels the picks; a failure (exception
   or NaN) is logged and the structure skipped;
4. the model is refitted incrementally
   (:class:`~kernelpot.models.gap.incremental.IncrementalSparseGPR`), or fully,
   with a new sparse set (``refit_every``: by default whenever the
   labelled set has doubled while a term has fewer sparse points than it
   asks for, so the sparse set grows with the data);
5. the run stops at the label budget (every oracle call counts, the
   initial labels and failed calls included), at the target validation
   error, when every candidate's score is at most ``stop_score`` (the
   model is sure of everything its MD visits), or when the explorer has
   nothing left or gives up (an MD that keeps exploding).

Nothing paid for is lost (:mod:`kernelpot.active.checkpoint`): each oracle
call is logged before it is made, each label journaled and fsynced the
moment the oracle returns, and the model with the loop state is written
atomically at the end of an iteration (the commit). Running the same
learner again on the same folder resumes from the last commit and replays
the iteration a crash interrupted: the same picks (explorer, random
generator and model are those of the commit), whose labels and failures
are taken from the journal and the log instead of the oracle. Calls cut
short by the crash are counted. So a killed run, resumed, relabels nothing
and ends as an uninterrupted run would.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections import Counter

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


class _Replay:
    """What a crash left of uncommitted iterations, by ``(iteration, key)``: journaled labels, failures, calls."""

    def __init__(self, labels=(), records=()):
        self.labels = {(int(a.info["active_iteration"]), str(a.info["active_key"])): a for a in labels}
        self.failures = {(int(r["iteration"]), str(r["key"])): r["reason"] for r in records
                         if r.get("kind") == "failure"}
        self.calls = Counter((int(r["iteration"]), str(r["key"])) for r in records if r.get("kind") == "call")

    def leftovers(self, iteration):
        """Journaled labels of ``iteration`` that the replay did not pick again (they are kept, not lost)."""
        keys = [k for k in self.labels if k[0] == iteration]
        return [self.labels.pop(k) for k in keys]


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
        Largest number of oracle calls, all counted: the initial labels,
        the loop's, failed calls, and calls cut short by a crash.
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
    stop_score : float or None, default=None
        Stop when the largest score among an iteration's candidates is at or
        below it (the strategy's ``score_units``, e.g. eV/Å of calibrated
        force σ): no oracle is needed to decide that the model is done.
    refit_every : "auto", int or None, default="auto"
        When to refit fully, choosing the sparse points anew; otherwise the
        refit is incremental on the current sparse set. ``"auto"``: when a
        term has fewer sparse points than its ``n_sparse`` (the first fits
        see few environments) and the labelled set has doubled since the
        last full fit, so the sparse set grows to the request at a total
        cost of about twice the last fit. An integer k: every k iterations.
        None: never; the sparse set stays that of the first fit, with a
        warning when it is smaller than requested.
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
        Every oracle call: initial labels, failures and calls a crash cut
        short included (labels given with ``initial`` are not calls).
    failures_ : list of dict
        ``{"key", "reason"}`` of structures the oracle failed on.
    stop_reason_ : str
    """

    def __init__(self, model, explorer, oracle, *, strategy="variance", batch_size=1, budget=100, n_initial=2,
                 initial=None, validation=None, target_error=None, target_metric="forces_rmse",
                 stop_score=None, refit_every="auto", min_distance="auto", checkpoint=None, random_state=0,
                 verbose=False):
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
        self.stop_score = stop_score
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
        if self.refit_every not in (None, "auto"):
            if isinstance(self.refit_every, str):
                raise ValueError(f"`refit_every` must be 'auto', None or an integer >= 1; got {self.refit_every!r}")
            _check_int("refit_every", self.refit_every, 1)
        if self.initial is None and self.n_initial > self.budget:
            raise ValueError(f"`n_initial`={self.n_initial} oracle calls exceed `budget`={self.budget}: the budget "
                             "counts every oracle call, the initial labels included")
        if self.target_metric not in _METRICS:
            raise ValueError(f"`target_metric` must be one of {list(_METRICS)}; got {self.target_metric!r}")
        if self.target_error is not None:
            if not (isinstance(self.target_error, (int, float, np.number)) and self.target_error > 0):
                raise ValueError(f"`target_error` must be a number > 0; got {self.target_error!r}")
            if self.validation is None:
                raise ValueError("`target_error` needs `validation` structures to measure the error on")
        if self.stop_score is not None and not (isinstance(self.stop_score, (int, float, np.number))
                                                and self.stop_score > 0):
            raise ValueError(f"`stop_score` must be None or a number > 0; got {self.stop_score!r}")
        if not (self.min_distance == "auto" or (isinstance(self.min_distance, (int, float, np.number))
                                                 and self.min_distance >= 0)):
            raise ValueError(f"`min_distance` must be 'auto' or a number >= 0; got {self.min_distance!r}")
        if not callable(getattr(self.oracle, "get_property", None)) and not callable(
                getattr(self.oracle, "calculate", None)):
            raise TypeError(f"`oracle` must be an ASE calculator; got {type(self.oracle).__name__}")
        strategy = make_strategy(self.strategy, self.random_state)
        self.explorer.check_batch(int(self.batch_size))
        return strategy

    def _say(self, message, *, warning=False):
        """Print ``message`` when verbose, and log it.

        A ``warning`` (an oracle failure, an MD explosion) is logged as a
        warning when the loop is quiet, so that it is seen once either way:
        Python's fallback handler prints warnings of an unconfigured logger,
        and a verbose loop has printed it already.
        """
        if warning and not self.verbose:
            logger.warning(message)
            return
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
        self.labelled_, self.full_fit_size_, self._replay, self._warned_frozen = [], 0, _Replay(), False
        if not (store is not None and store.exists() and self._resume(store)):
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
        if self.stop_score is not None and last is not None and last.get("max_score") is not None \
                and last["max_score"] <= self.stop_score:
            return (f"largest candidate score {last['max_score']:.4g} <= stop_score {self.stop_score} "
                    f"({last.get('score_units', '')})")
        if getattr(self.explorer, "stop_reason", None):
            return f"explorer stopped: {self.explorer.stop_reason}"
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
            unlabelled = sum(not ({"energy", "forces"} <= set(a.calc.results if a.calc is not None else {}))
                             for a in structures)
            if unlabelled > self.budget:
                raise ValueError(f"{unlabelled} `initial` structures need labels, more oracle calls than "
                                 f"`budget`={self.budget}")
        else:
            keys, structures = self.explorer.initial(int(self.n_initial), self.rng_)
        for key, atoms in zip(keys, structures):
            results = atoms.calc.results if atoms.calc is not None else {}
            if "energy" in results and "forces" in results:
                labelled = self._given(store, key, atoms)
            else:
                labelled = self._obtain(store, key, atoms, iteration=0)
            if labelled is not None:
                self.labelled_.append(labelled)
            if self.initial is None:  # it came from the explorer
                self.explorer.mark(key, labelled is not None)
        self.labelled_.extend(self._replay.leftovers(0))
        if not self.labelled_:
            raise ValueError("no initial structure could be labelled; see the failures in the log")
        start = time.perf_counter()
        self.model_ = self._full_fit()
        record = self._record(0, keys, [], "full", time.perf_counter() - start, n_candidates=None)
        self._commit(store, record)

    # ---------------------------------------------------------------- labels
    def _obtain(self, store, key, atoms, iteration):
        """Label ``atoms`` (one oracle call, logged before and journaled after), or replay what a crash left."""
        slot = (int(iteration), str(key))
        for _ in range(self._replay.calls.pop(slot, 0)):
            self._count_call(store, key, iteration)  # calls of the interrupted run: paid for, counted again
        if slot in self._replay.labels:
            return self._replay.labels.pop(slot)
        if slot in self._replay.failures:
            self._fail(store, key, self._replay.failures.pop(slot), iteration)
            return None
        self._count_call(store, key, iteration)
        labelled, reason = label(atoms, self.oracle)
        if labelled is None:
            self._fail(store, key, reason, iteration)
            return None
        labelled.info.update(active_key=key, active_iteration=iteration, active_source="oracle")
        return self._journal(store, labelled)

    def _given(self, store, key, atoms):
        """An initial structure that came with its labels: journaled, not an oracle call."""
        replayed = self._replay.labels.pop((0, str(key)), None)
        if replayed is not None:
            return replayed
        labelled, _ = label(atoms, atoms.calc)
        labelled.info.update(active_key=key, active_iteration=0, active_source="given")
        return self._journal(store, labelled)

    def _count_call(self, store, key, iteration):
        self.oracle_calls_ += 1
        if store is not None:
            store.append_log({"kind": "call", "iteration": iteration, "key": str(key)})

    @staticmethod
    def _journal(store, labelled):
        return labelled if store is None else store.append_labelled(labelled)

    def _full_fit(self):
        params = copy.deepcopy(self.model.get_params(deep=False))
        energies = [a.calc.results["energy"] for a in self.labelled_]
        forces = [a.calc.results["forces"] for a in self.labelled_]
        self.full_fit_size_ = len(self.labelled_)
        return IncrementalSparseGPR(**params).fit(self.labelled_, energies=energies, forces=forces)

    def _resume(self, store):
        """Restore the last committed iteration; what came after it is replayed. False: nothing committed."""
        journal, log = store.load_labelled(), store.read_log()
        stored = store.load_model()
        state = store.load_state() if stored is None or "loop_state" not in stored.metadata_ else \
            stored.metadata_["loop_state"]
        committed = int(state["iteration"]) if state is not None else -1
        done = [a for a in journal if int(a.info.get("active_iteration", 0)) <= committed]
        kept = [r for r in log if int(r.get("iteration", 0)) <= committed]
        self._replay = _Replay([a for a in journal if int(a.info.get("active_iteration", 0)) > committed],
                               [r for r in log if int(r.get("iteration", 0)) > committed])
        if len(kept) < len(log):
            store.rewrite_log(kept)  # the replay writes the uncommitted records again
        if state is None:
            return False
        if int(state.get("n_labelled", len(done))) != len(done):
            raise ValueError(f"checkpoint {store.directory} is inconsistent: its state counts "
                             f"{state.get('n_labelled')} labelled structures up to iteration {committed}, the "
                             f"journal {len(done)}")
        self.labelled_ = done
        self.history_ = [r for r in kept if r.get("kind") == "iteration"]
        self.failures_ = [r for r in kept if r.get("kind") == "failure"]
        self.iteration_, self.oracle_calls_ = committed, int(state.get("oracle_calls", 0))
        self.full_fit_size_ = int(state.get("full_fit_size", len(done)))
        self.explorer.restore(state["explorer"])
        self.rng_.bit_generator.state = state["rng"]
        if stored is not None and int(stored.metadata_.get("n_labelled", -1)) == len(done):
            self.model_ = IncrementalSparseGPR.from_model(stored)
            self.model_.n_structures_seen_ = len(done)
        else:  # a checkpoint of an older kernelpot whose model and state disagree
            self.model_ = self._full_fit()
        self._say(f"resumed from {store.directory}: iteration {self.iteration_}, {len(self.labelled_)} labelled, "
                  f"{self.oracle_calls_} oracle calls; replaying {len(self._replay.labels)} journaled label(s)")
        return True

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
                labelled = self._obtain(store, keys[i], candidates[i], it)
                self.explorer.mark(keys[i], labelled is not None)
                if labelled is None:
                    continue
                new.append(labelled)
                picked_keys.append(keys[i])
                scores.append(float(all_scores[i]))
        new.extend(self._replay.leftovers(it))
        self.labelled_.extend(new)
        start = time.perf_counter()
        kind = "none"
        if new:
            if self._full_refit_due(it):
                self.model_, kind = self._full_fit(), "full"
            else:
                self.model_.partial_fit(new, energies=[a.calc.results["energy"] for a in new],
                                        forces=[a.calc.results["forces"] for a in new])
                kind = "incremental"
        record = self._record(it, picked_keys, scores, kind, time.perf_counter() - start,
                              n_candidates=len(candidates))
        if candidates:
            record["max_score"] = float(np.max(all_scores))
        explosion = getattr(self.explorer, "last_message", None)
        if explosion:
            record["explorer_message"] = explosion
            self._say(explosion, warning=True)
        self._commit(store, record)

    def _full_refit_due(self, iteration):
        if self.refit_every == "auto":
            return self._sparse_shortfall() is not None and len(self.labelled_) >= 2 * self.full_fit_size_
        if self.refit_every is not None:
            return iteration % int(self.refit_every) == 0
        shortfall = self._sparse_shortfall()
        if shortfall is not None and not self._warned_frozen:
            self._warned_frozen = True
            index, have, want = shortfall
            message = (f"the sparse set is frozen: term {index} has {have} of the {want} sparse points it asks for, "
                       "and with refit_every=None incremental refits never add any; refit_every='auto' (or an "
                       "integer) grows it with full refits")
            warnings.warn(message, UserWarning, stacklevel=4)
            self._say(message)
        return False

    def _sparse_shortfall(self):
        """``(term index, fitted, requested)`` of the first term with fewer sparse points than requested, or None."""
        asked_terms = self.model.terms if isinstance(self.model.terms, (list, tuple)) else [self.model.terms]
        for index, (fitted, asked) in enumerate(zip(self.model_.terms_, asked_terms)):
            if getattr(asked, "sparse_points", None) is None and fitted.n_sparse < int(asked.n_sparse):
                return index, fitted.n_sparse, int(asked.n_sparse)
        return None

    def _fail(self, store, key, reason, iteration):
        failure = {"kind": "failure", "iteration": iteration, "key": str(key), "reason": reason}
        self.failures_.append(failure)
        self._say(f"oracle failed on {key}: {reason} (skipped)", warning=True)
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
        state = {"iteration": record["iteration"], "oracle_calls": self.oracle_calls_,
                 "n_labelled": len(self.labelled_), "full_fit_size": self.full_fit_size_,
                 "explorer": self.explorer.state(), "rng": self.rng_.bit_generator.state,
                 "strategy": self.strategy_.name}
        store.append_log(record)
        # The commit: model and loop state in one atomic write (labels were journaled as they came).
        store.save_model(self.model_, {"n_labelled": len(self.labelled_), "iteration": record["iteration"],
                                       "loop_state": state})
        store.save_state(state)
