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
        Starting structure (Å).
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
    min_pair_distance : float, default=0.7
        Å. A snapshot with two atoms closer than this, or non-finite
        model energies, ends the call: the model has failed there; the
        snapshot is offered and the dynamics restart from it with fresh
        velocities.
    every_step : bool, default=False
        With a threshold and the ``"variance"`` strategy on forces: check
        the model's force σ at every MD step, computed with that step's
        forces (:class:`~kernelpot.potential.watch.UncertaintyWatch`), and
        stop at the first step above the threshold, instead of scoring a
        snapshot every ``interval`` steps with a separate prediction.
    random_state : int or None

    Notes
    -----
    Candidate keys are ``"md:<global step>"``.
    """

    def __init__(self, atoms, *, schedule=((300.0, 1000), (900.0, 1000)), timestep=2.0, friction=0.02,
                 interval=10, threshold=None, segment=100, min_pair_distance=0.7, every_step=False,
                 random_state=None):
        if not isinstance(atoms, Atoms):
            raise TypeError(f"`atoms` must be an ase.Atoms; got {type(atoms).__name__}")
        stages = [(float(t), int(n)) for t, n in schedule]
        if not stages or any(t <= 0 or n < 1 for t, n in stages):
            raise ValueError(f"`schedule` must be (temperature K > 0, steps >= 1) pairs; got {schedule!r}")
        for name, value in (("interval", interval), ("segment", segment)):
            if isinstance(value, bool) or int(value) < 1:
                raise ValueError(f"`{name}` must be an integer >= 1; got {value!r}")
        if not timestep > 0:
            raise ValueError(f"`timestep` must be > 0 fs; got {timestep!r}")
        self.atoms = _bare(atoms)
        self.schedule = stages
        self.timestep = float(timestep)
        self.friction = float(friction)
        self.interval = int(interval)
        self.threshold = threshold
        self.segment = int(segment)
        self.min_pair_distance = float(min_pair_distance)
        self.every_step = bool(every_step)
        self.random_state = random_state
        self.stage, self.step_in_stage, self.total_steps = 0, 0, 0
        self.velocities_set = False

    @property
    def exhausted(self):
        return self.stage >= len(self.schedule)

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

    def _sane(self, atoms, energy):
        if not np.isfinite(energy):
            return False
        if len(atoms) < 2:
            return True
        from ase.neighborlist import neighbor_list

        d = neighbor_list("d", atoms, self.min_pair_distance)
        return d.size == 0

    def candidates(self, model, strategy, rng):
        """Run dynamics until a trigger, a failure, the segment end or the schedule end."""
        from ase.md.langevin import Langevin
        from ase.md.velocitydistribution import Stationary

        from ..potential.calculator import GAPCalculator
        from ..utils.ase_compat import thermalize

        thresholded = self.threshold is not None and strategy.thresholded
        watched = self.every_step and thresholded
        if watched and (getattr(strategy, "name", None) != "variance"
                        or getattr(strategy, "quantity", "auto") == "energy"):
            raise ValueError("every_step=True watches the force σ: it needs the 'variance' strategy on forces")
        atoms = self.atoms.copy()
        atoms.calc = GAPCalculator(model, uncertainty=watched)
        if not self.velocities_set and not self.exhausted:
            thermalize(atoms, self.schedule[self.stage][0], rng)
            Stationary(atoms)
        keys, frames, steps = [], [], 0
        while not self.exhausted:
            temperature, n_steps = self.schedule[self.stage]
            dynamics = Langevin(atoms, timestep=self.timestep * units.fs, temperature_K=temperature,
                                friction=self.friction / units.fs, fixcm=False, rng=rng)
            chunk = min(self.interval, n_steps - self.step_in_stage)
            triggered = False
            if watched:
                from ..potential.watch import UncertaintyExceeded, UncertaintyWatch

                UncertaintyWatch(dynamics, threshold=float(self.threshold), stop=True)
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
            frame = _bare(atoms)
            keys.append(f"md:{self.total_steps}")
            frames.append(frame)
            self.atoms, self.velocities_set = frame, True
            if not self._sane(atoms, atoms.get_potential_energy()):
                # Restart from here with fresh velocities once the model has learnt it.
                self.velocities_set = False
                return keys[-1:], frames[-1:]
            if watched:
                if triggered:
                    return keys[-1:], frames[-1:]
                keys, frames = [], []
            elif thresholded:
                strategy_score = float(strategy.score([frame])[0])
                if strategy_score > float(self.threshold):
                    return keys[-1:], frames[-1:]
                keys, frames = [], []
            elif steps >= self.segment:
                break
        return keys, frames

    def mark(self, key, labelled):
        """Nothing to do: the dynamics continue from the last snapshot."""

    def state(self):
        return {"kind": "md", "stage": self.stage, "step_in_stage": self.step_in_stage,
                "total_steps": self.total_steps, "velocities_set": self.velocities_set,
                "numbers": self.atoms.numbers.tolist(), "positions": self.atoms.positions.tolist(),
                "momenta": self.atoms.get_momenta().tolist(), "cell": self.atoms.cell.array.tolist(),
                "pbc": self.atoms.pbc.tolist()}

    def restore(self, state):
        self.stage, self.step_in_stage = int(state["stage"]), int(state["step_in_stage"])
        self.total_steps, self.velocities_set = int(state["total_steps"]), bool(state["velocities_set"])
        atoms = Atoms(numbers=state["numbers"], positions=state["positions"], cell=state["cell"],
                      pbc=state["pbc"])
        atoms.set_momenta(np.array(state["momenta"]))
        self.atoms = atoms
