"""Explorers: where the candidate structures of an active-learning loop come from.

:class:`PoolExplorer` offers the unlabelled structures of a fixed pool.
:class:`MDExplorer` runs molecular dynamics with the current model
(Langevin thermostat, a schedule of temperatures) and, on the fly as in
FLARE (Vandermause et al., npj Comput. Mater. 6, 20 (2020),
doi:10.1038/s41524-020-0283-z), stops as soon as a snapshot's score
exceeds a threshold; that snapshot is offered for labelling and the
dynamics resume from it with the refitted model.

Both keep their progress in a JSON-serialisable ``state()`` so a
checkpointed run resumes where it stopped.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units

from ..exceptions import warn_reduced

__all__ = ["PoolExplorer", "MDExplorer"]


def _bare(atoms):
    """A copy without calculator (labels must not leak to the strategies)."""
    copy = atoms.copy()
    copy.calc = None
    return copy


class PoolExplorer:
    """Candidates from a fixed pool of structures.

    Parameters
    ----------
    pool : list of ase.Atoms
        Candidate structures (Å); any labels on them are ignored (the
        oracle supplies labels).
    max_candidates : int or None, default=None
        Score at most this many random unlabelled structures per iteration
        (None: all of them).

    Notes
    -----
    Candidate keys are pool indices (int). A structure leaves the pool once
    labelled or once the oracle failed on it.
    """

    def __init__(self, pool, *, max_candidates=None):
        if not isinstance(pool, (list, tuple)) or not all(isinstance(a, Atoms) for a in pool):
            raise TypeError("`pool` must be a list of ase.Atoms")
        if len(pool) == 0:
            raise ValueError("`pool` must contain at least one structure; got an empty list")
        if max_candidates is not None and (isinstance(max_candidates, bool) or int(max_candidates) < 1):
            raise ValueError(f"`max_candidates` must be None or an integer >= 1; got {max_candidates!r}")
        self.pool = [_bare(a) for a in pool]
        self.max_candidates = max_candidates
        self.available = set(range(len(self.pool)))

    def __len__(self):
        return len(self.available)

    @property
    def exhausted(self):
        return not self.available

    def check_batch(self, batch_size):
        if len(self.available) < batch_size:
            raise ValueError(f"the pool has {len(self.available)} unlabelled structures, fewer than "
                             f"`batch_size`={batch_size}; lower batch_size or give a larger pool")

    def candidates(self, model, strategy, rng):
        """``(keys, structures)`` of the unlabelled pool (or a random subset)."""
        keys = sorted(self.available)
        if self.max_candidates is not None and len(keys) > int(self.max_candidates):
            keys = sorted(rng.choice(keys, size=int(self.max_candidates), replace=False).tolist())
        return keys, [self.pool[k] for k in keys]

    def initial(self, n, rng):
        """``(keys, structures)`` of ``n`` random pool structures (an initial training set).

        A pool with fewer than ``n`` unlabelled structures gives all of them,
        with a :class:`~kernelpot.exceptions.ReducedRequestWarning`.
        """
        if n > len(self.available):
            warn_reduced("n_initial", n, len(self.available),
                         f"the pool has only {len(self.available)} unlabelled structures", where="PoolExplorer")
        keys = sorted(rng.choice(sorted(self.available), size=min(n, len(self.available)),
                                 replace=False).tolist())
        return keys, [self.pool[k] for k in keys]

    def mark(self, key, labelled):
        """Take ``key`` out of the pool (``labelled`` or failed alike)."""
        self.available.discard(int(key))

    def state(self):
        return {"kind": "pool", "available": sorted(self.available)}

    def restore(self, state):
        self.available = set(int(k) for k in state["available"])


class MDExplorer:
    """On-the-fly exploration by Langevin dynamics driven by the current model.

    Parameters
    ----------
    atoms : ase.Atoms
        Starting structure (Å; its masses are used, e.g. deuterium for a longer time step).
    schedule : sequence of (float, int), default=((300.0, 1000), (900.0, 1000))
        ``(temperature in K, number of steps)`` stages, run in order.
    timestep : float, default=2.0
        fs.
    friction : float, default=0.02
        Langevin friction, 1/fs.
    interval : int, default=10
        Steps between snapshots (each snapshot is scored).
    threshold : float or None, default=None
        Stop the dynamics at the first snapshot whose strategy score exceeds
        it (units of the strategy's ``score_units``) and offer that snapshot.
        None, or a strategy without thresholds (random): run ``segment``
        steps and offer all their snapshots.
    segment : int, default=100
        Steps per call when not thresholded.
    min_pair_distance : float or dict, default=0.7
        Å. A snapshot with two atoms closer than this, or non-finite model
        energies or forces, is an explosion (below). A dict sets a limit per
        species pair (:func:`kernelpot.potential.dynamics.pair_limits`), e.g.
        ``{"O-O": 2.0, "H-H": 1.0, "*": 0.7}``: without it, a model that lets
        two water oxygens meet at 1.1 Å passes a single 0.7 Å limit, and the
        loop labels (and fits) geometries no liquid ever visits.
    max_score : float or None, default=None
        A snapshot whose strategy score exceeds this (the σ far beyond the
        calibrated range, in ``score_units``) is an explosion too. Scoring
        every snapshot costs a σ prediction each; None: not checked.
        Ignored for strategies without thresholds (random).
    n_keep : int, default=3
        Sane snapshots offered after an explosion.
    max_explosions : int, default=3
        Explosions in a row (no sane snapshot between them) after which the
        explorer gives up: ``stop_reason`` says why and the loop stops.
    every_step : bool, default=False
        With a threshold and the ``"variance"`` strategy on forces: check
        the model's force σ at every MD step, computed with that step's
        forces (:class:`~kernelpot.potential.watch.UncertaintyWatch`), and
        stop at the first step above the threshold, instead of scoring a
        snapshot every ``interval`` steps with a separate prediction.
    local_screen : float or None, default=None
        With ``every_step``: eV. Every step computes only the exact σ of each
        atom's local energy (about 1.5x a mean-force step,
        :mod:`kernelpot.models.gap.local_variance`); the exact force σ is
        computed, and compared with ``threshold``, only on the steps whose
        largest local-energy σ exceeds this — FLARE's use of it. Steps below
        it are never checked: a screen that is too high misses steps the force
        σ would stop at (on NaCl–water the two σ agree loosely:
        ``benchmarks/predict.py --cases localsigma``). None: the exact force σ
        every step.
    random_state : int or None

    Notes
    -----
    Candidate keys are ``"md:<global step>"``.

    An explosion never offers the exploded structure (an oracle would fail on
    it or return forces that wreck the fit). The call ends with a message
    (``last_message``, which the loop reports, and kept in ``explosions``);
    the last ``n_keep`` sane snapshots before it are offered for labelling
    (the loop labels the best of them),
    and the dynamics restart from the last sane one with fresh velocities,
    so the refitted model learns the region where it failed.
    """

    def __init__(self, atoms, *, schedule=((300.0, 1000), (900.0, 1000)), timestep=2.0, friction=0.02,
                 interval=10, threshold=None, segment=100, min_pair_distance=0.7, max_score=None, n_keep=3,
                 max_explosions=3, every_step=False, local_screen=None, random_state=None):
        if not isinstance(atoms, Atoms):
            raise TypeError(f"`atoms` must be an ase.Atoms; got {type(atoms).__name__}")
        stages = [(float(t), int(n)) for t, n in schedule]
        if not stages or any(t <= 0 or n < 1 for t, n in stages):
            raise ValueError(f"`schedule` must be (temperature K > 0, steps >= 1) pairs; got {schedule!r}")
        for name, value in (("interval", interval), ("segment", segment), ("n_keep", n_keep),
                            ("max_explosions", max_explosions)):
            if isinstance(value, bool) or int(value) < 1:
                raise ValueError(f"`{name}` must be an integer >= 1; got {value!r}")
        if not timestep > 0:
            raise ValueError(f"`timestep` must be > 0 fs; got {timestep!r}")
        if max_score is not None and not (isinstance(max_score, (int, float, np.number)) and max_score > 0):
            raise ValueError(f"`max_score` must be None or a number > 0; got {max_score!r}")
        if max_score is not None and threshold is not None and max_score <= threshold:
            raise ValueError(f"`max_score` ({max_score}) must exceed `threshold` ({threshold}): it marks a σ far "
                             "beyond the one that asks for a label")
        if local_screen is not None and not (isinstance(local_screen, (int, float, np.number))
                                             and not isinstance(local_screen, bool) and local_screen > 0):
            raise ValueError(f"`local_screen` must be None or a number > 0 eV; got {local_screen!r}")
        if local_screen is not None and not (every_step and threshold is not None):
            raise ValueError("`local_screen` screens the steps of `every_step=True` before their force σ is "
                             "compared with `threshold`: it needs both")
        self.atoms = _bare(atoms)
        self.schedule = stages
        self.timestep = float(timestep)
        self.friction = float(friction)
        self.interval = int(interval)
        self.threshold = threshold
        self.segment = int(segment)
        from ..potential.dynamics import pair_limits

        pair_limits(min_pair_distance)  # a bad table fails here
        self.min_pair_distance = (min_pair_distance if isinstance(min_pair_distance, dict)
                                  else float(min_pair_distance))
        self.max_score = max_score
        self.n_keep = int(n_keep)
        self.max_explosions = int(max_explosions)
        self.every_step = bool(every_step)
        self.local_screen = local_screen
        self.random_state = random_state
        self.stage, self.step_in_stage, self.total_steps = 0, 0, 0
        self.velocities_set = False
        self.explosions, self.explosions_in_row, self.stop_reason, self.labelled_keys = [], 0, None, []
        self.atoms_key = "md:0"  # key of the structure the dynamics continue from

    @property
    def exhausted(self):
        return self.stage >= len(self.schedule) or self.stop_reason is not None

    def check_batch(self, batch_size):
        if batch_size > 1 and self.threshold is not None:
            raise ValueError(f"on-the-fly MD with a threshold offers one snapshot per stop; `batch_size` must "
                             f"be 1; got {batch_size}")

    def initial(self, n, rng):
        """The starting structure plus ``n - 1`` rattled copies (keys ``"init:<i>"``)."""
        frames = [_bare(self.atoms)]
        for _i in range(1, n):
            frame = _bare(self.atoms)
            frame.positions += rng.normal(0.0, 0.05, frame.positions.shape)
            frames.append(frame)
        return [f"init:{i}" for i in range(n)], frames

    def _failure(self, atoms):
        """Why the model's dynamics have failed at this snapshot (non-finite output, atoms too close), or None."""
        from ..potential.dynamics import describe_close_pair, too_close

        results = atoms.calc.results
        for name in ("energy", "forces"):
            if name in results and not np.all(np.isfinite(results[name])):
                return f"non-finite model {name}"
        if not np.all(np.isfinite(atoms.positions)):
            return "non-finite positions"
        found = too_close(atoms, self.min_pair_distance)
        if found is not None:
            return describe_close_pair(atoms, found, name="min_pair_distance",
                                       per_pair=isinstance(self.min_pair_distance, dict))
        return None

    def _exploded(self, reason, sane):
        """Record an explosion, restart from the last sane snapshot; the snapshots to offer."""
        self.explosions_in_row += 1
        offered = [(key, frame) for key, frame in sane[-self.n_keep:] if key not in self.labelled_keys]
        restart_key, self.atoms, self.velocities_set = sane[-1][0], sane[-1][1], False
        self.atoms_key = restart_key
        self.explosions.append({"step": self.total_steps, "reason": reason,
                                "offered": [key for key, _ in offered]})
        message = (f"MD with the current model exploded at step {self.total_steps}: {reason}. The structure is "
                   f"dropped; {len(offered)} sane snapshot(s) before it are offered for labelling and the dynamics "
                   f"restart from {restart_key} with fresh velocities")
        if self.explosions_in_row >= self.max_explosions:
            self.stop_reason = (f"MD exploded {self.explosions_in_row} times in a row (last at step "
                                f"{self.total_steps}: {reason}); label the last sane snapshots "
                                f"({', '.join(k for k, _ in sane[-self.n_keep:])}), lower the temperature or time "
                                "step, or start from more labelled structures")
            message += "; giving up: " + self.stop_reason
        self.last_message = message  # the loop reports it (once: printed when verbose, else logged as a warning)
        return [k for k, _ in offered], [f for _, f in offered]

    def candidates(self, model, strategy, rng):
        """Run dynamics until a trigger, an explosion, the segment end or the schedule end."""
        from ase.md.langevin import Langevin
        from ase.md.velocitydistribution import Stationary

        from ..potential.calculator import GAPCalculator
        from ..utils.ase_compat import thermalize

        self.last_message = None
        thresholded = self.threshold is not None and strategy.thresholded
        watched = self.every_step and thresholded
        if watched and (getattr(strategy, "name", None) != "variance"
                        or getattr(strategy, "quantity", "auto") == "energy"):
            raise ValueError("every_step=True watches the force σ: it needs the 'variance' strategy on forces")
        # what the calculator computes with every step's forces: the screen's σ, the force σ, or nothing
        mode = ("local_energy" if self.local_screen is not None else True) if watched else False
        atoms = self.atoms.copy()
        atoms.calc = GAPCalculator(model, uncertainty=mode)
        if not self.velocities_set and not self.exhausted:
            thermalize(atoms, self.schedule[self.stage][0], rng)
            Stationary(atoms)
        watch_score = self.max_score is not None and strategy.thresholded
        keys, frames, steps = [], [], 0
        sane = [(self.atoms_key, _bare(self.atoms))]  # the start is sane
        while not self.exhausted:
            temperature, n_steps = self.schedule[self.stage]
            dynamics = Langevin(atoms, timestep=self.timestep * units.fs, temperature_K=temperature,
                                friction=self.friction / units.fs, fixcm=False, rng=rng)
            chunk = min(self.interval, n_steps - self.step_in_stage)
            triggered = False
            if watched:
                from ..potential.watch import UncertaintyExceeded, UncertaintyWatch

                if self.local_screen is None:
                    UncertaintyWatch(dynamics, threshold=float(self.threshold), stop=True)
                else:
                    UncertaintyWatch(dynamics, threshold=float(self.local_screen), quantity="local_energy",
                                     force_threshold=float(self.threshold), stop=True)
                try:
                    dynamics.run(chunk)
                except UncertaintyExceeded:
                    triggered = True
                    chunk = int(dynamics.nsteps)  # the steps actually run
            else:
                dynamics.run(chunk)
            self.step_in_stage += chunk
            self.total_steps += chunk
            steps += chunk
            if self.step_in_stage >= n_steps:
                self.stage, self.step_in_stage = self.stage + 1, 0
            atoms.get_potential_energy()
            frame = _bare(atoms)
            key = f"md:{self.total_steps}"
            reason = self._failure(atoms)
            score = None
            if reason is None and (watch_score or (thresholded and not watched)):
                score = float(strategy.score([frame])[0])
                if watch_score and score > float(self.max_score):
                    reason = (f"score {score:.4g} > max_score {self.max_score} ({strategy.score_units}): σ far "
                              "beyond the calibrated range")
            if reason is not None:
                keys, frames = self._exploded(reason, sane)
                if keys or self.exhausted:
                    return keys, frames
                # Only an already labelled start was sane: restart from it at once.
                atoms = self.atoms.copy()
                atoms.calc = GAPCalculator(model, uncertainty=mode)
                thermalize(atoms, self.schedule[self.stage][0], rng)
                Stationary(atoms)
                sane = sane[-1:]
                continue
            self.explosions_in_row = 0
            sane = (sane + [(key, frame)])[-self.n_keep:]
            self.atoms, self.atoms_key, self.velocities_set = frame, key, True
            if watched:  # the watch checked σ at every step with that step's forces
                if triggered:
                    return [key], [frame]
                continue
            if thresholded:
                if score > float(self.threshold):
                    return [key], [frame]
                continue
            keys.append(key)
            frames.append(frame)
            if steps >= self.segment:
                break
        return keys, frames

    def mark(self, key, labelled):
        """Remember the labelled keys (an explosion never offers them again); the dynamics go on."""
        if labelled:
            self.labelled_keys = (self.labelled_keys + [str(key)])[-self.n_keep - 1:]

    def state(self):
        return {"kind": "md", "stage": self.stage, "step_in_stage": self.step_in_stage,
                "total_steps": self.total_steps, "velocities_set": self.velocities_set,
                "numbers": self.atoms.numbers.tolist(), "positions": self.atoms.positions.tolist(),
                "momenta": self.atoms.get_momenta().tolist(), "masses": self.atoms.get_masses().tolist(),
                "cell": self.atoms.cell.array.tolist(), "pbc": self.atoms.pbc.tolist(),
                "explosions": self.explosions, "explosions_in_row": self.explosions_in_row,
                "stop_reason": self.stop_reason, "labelled_keys": self.labelled_keys, "atoms_key": self.atoms_key}

    def restore(self, state):
        self.stage, self.step_in_stage = int(state["stage"]), int(state["step_in_stage"])
        self.total_steps, self.velocities_set = int(state["total_steps"]), bool(state["velocities_set"])
        atoms = Atoms(numbers=state["numbers"], positions=state["positions"], cell=state["cell"],
                      pbc=state["pbc"])
        if "masses" in state:
            atoms.set_masses(np.array(state["masses"]))
        atoms.set_momenta(np.array(state["momenta"]))
        self.atoms = atoms
        self.explosions = list(state.get("explosions", []))
        self.explosions_in_row = int(state.get("explosions_in_row", 0))
        self.stop_reason = state.get("stop_reason")
        self.labelled_keys = list(state.get("labelled_keys", []))
        self.atoms_key = state.get("atoms_key", f"md:{self.total_steps}")
