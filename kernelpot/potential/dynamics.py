"""Resumable molecular dynamics with any ASE calculator, written as extended XYZ, guarded against explosions.

Long runs here (hours of GFN2-xTB, days of GAP MD on two shared cores) are killed and resumed.
:class:`ResumableMD` appends a frame every ``interval`` steps to an extended-XYZ file (positions, momenta,
masses when set, the calculator's energy/forces/stress, ``info["step"]``/``info["time_fs"]``, read by ASE,
OVITO, MDAnalysis and kinisi) and, after each frame, atomically rewrites a small JSON sidecar
``<trajectory>.state.json`` (step, byte length of the complete frames, the thermostat's random-generator
state, the run's parameters). Calling :meth:`ResumableMD.run` again with a larger ``steps`` continues from
the last complete frame; a frame torn by a kill is cut off. At most ``interval`` steps are repeated.

:class:`GeometryGuard` stops a run that explodes: two atoms closer than ``min_distance`` or a non-finite
energy/force. The run then ends with :class:`MDExplosion`; the frames so far stay in the trajectory and the
last ``n_suggest`` of them are written to ``<trajectory>.to_label.extxyz``, ready to be labelled (e.g. as
a ``kernelpot learn --pool``) before the model is refitted and the run resumed.
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np
from ase import units

from ..utils.jsonable import jsonable

__all__ = ["GeometryGuard", "MDExplosion", "ResumableMD", "closest_pair", "pair_limits", "read_frames", "too_close"]

_THERMOSTATS = ("langevin", "bussi", "nve")
#: Parameters a resumed run must share with the run that wrote the trajectory.
_FIXED = ("timestep", "thermostat", "interval", "numbers")


class MDExplosion(RuntimeError):
    """A run left the region where its forces can be trusted.

    Attributes
    ----------
    step : int
        Dynamics step at which it was detected.
    reason : str
    """

    def __init__(self, step, reason):
        super().__init__(f"step {step}: {reason}")
        self.step, self.reason = int(step), reason


def closest_pair(atoms, cutoff):
    """The closest pair of atoms within ``cutoff`` (Å), minimum image, as ``(i, j, distance)``; None if none.

    Parameters
    ----------
    atoms : ase.Atoms
    cutoff : float
        Å.
    """
    from ase.neighborlist import neighbor_list

    if len(atoms) < 2:
        return None
    i, j, d = neighbor_list("ijd", atoms, float(cutoff))
    if d.size == 0:
        return None
    k = int(np.argmin(d))
    return int(i[k]), int(j[k]), float(d[k])


def pair_limits(min_distance):
    """Minimum distances per species pair from a number or a table.

    Parameters
    ----------
    min_distance : float or dict
        Å. A number: one limit for every pair. A dict: species pairs to limits, keys ``"O-O"``,
        ``("Na", "O")`` or ``(11, 8)`` in either order, plus an optional ``"*"`` for the pairs it does not
        name (default 0: not checked). Liquid water is the reason for a table: an O–O pair at 1.5 Å is as
        unphysical as an H–H pair at 0.5 Å, yet a single limit low enough for bonded O–H (0.96 Å) never sees it.

    Returns
    -------
    default : float
        Å, for pairs the table does not name.
    table : dict
        ``{(z1, z2): Å}`` with ``z1 <= z2``.
    """
    from ase.data import atomic_numbers

    def number(species):
        if isinstance(species, (int, np.integer)) and not isinstance(species, bool) and 0 < species < 119:
            return int(species)
        if isinstance(species, str) and species.strip() in atomic_numbers:
            return atomic_numbers[species.strip()]
        raise ValueError(f"`min_distance`: unknown species {species!r} (a chemical symbol or atomic number)")

    def limit(value, key):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value >= 0:
            raise ValueError(f"`min_distance`: the limit of {key!r} must be a number >= 0 Å; got {value!r}")
        return float(value)

    if not isinstance(min_distance, dict):
        return limit(min_distance, "every pair"), {}
    default, table = 0.0, {}
    for key, value in min_distance.items():
        if key == "*":
            default = limit(value, key)
            continue
        pair = key.split("-") if isinstance(key, str) else key
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"`min_distance`: keys are species pairs like 'O-O', ('Na', 'O') or (11, 8), or '*'; "
                             f"got {key!r}")
        a, b = sorted(number(z) for z in pair)
        table[(a, b)] = limit(value, key)
    return default, table


def too_close(atoms, min_distance):
    """The pair of atoms furthest below its minimum distance (minimum image), or None if none is.

    Parameters
    ----------
    atoms : ase.Atoms
    min_distance : float or dict
        Å; see :func:`pair_limits`.

    Returns
    -------
    tuple or None
        ``(i, j, distance, limit)`` of the pair with the smallest ``distance / limit`` below 1.
    """
    default, table = pair_limits(min_distance)
    if not table:
        pair = closest_pair(atoms, default) if default > 0 else None
        return None if pair is None else (*pair, default)
    cutoff = max([default, *table.values()])
    if len(atoms) < 2 or cutoff <= 0:
        return None
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, cutoff)
    zi, zj = atoms.numbers[i], atoms.numbers[j]
    lo, hi = np.minimum(zi, zj), np.maximum(zi, zj)
    limits = np.full(d.shape, default)
    for (a, b), value in table.items():
        limits[(lo == a) & (hi == b)] = value
    ratio = np.where(limits > 0, d / np.where(limits > 0, limits, 1.0), np.inf)
    if not ratio.size or ratio.min() >= 1.0:
        return None
    k = int(np.argmin(ratio))
    return int(i[k]), int(j[k]), float(d[k]), float(limits[k])


def describe_close_pair(atoms, found, name="the minimum distance", per_pair=False):
    """One line naming the pair :func:`too_close` found: ``atoms 3 (O) and 7 (O) are 1.520 Å apart, ...``."""
    i, j, d, limit = found
    symbols = atoms.get_chemical_symbols()
    pair = f" for {symbols[i]}–{symbols[j]}" if per_pair else ""
    return f"atoms {i} ({symbols[i]}) and {j} ({symbols[j]}) are {d:.3f} Å apart, closer than {name} {limit:g} Å{pair}"


class GeometryGuard:
    """ASE dynamics observer raising :class:`MDExplosion` when the structure is no longer physical.

    Parameters
    ----------
    dynamics : ase.md.md.MolecularDynamics
        The guard attaches itself to it.
    min_distance : float or dict, default=0.5
        Å. Two atoms closer than this (minimum image) end the run. Bonded H–H in water is 1.5 Å, O–H 0.96 Å;
        0.5 Å is never reached by a sound potential at room temperature. A dict gives a limit per species
        pair (:func:`pair_limits`), e.g. ``{"O-O": 2.0, "Cl-O": 2.2, "*": 0.7}``: a water model that lets two
        oxygens meet at 1.5 Å has failed long before any pair reaches 0.5 Å.
    interval : int, default=1
        Steps between checks (a check costs one neighbour search with a cutoff of ``min_distance``).
    """

    def __init__(self, dynamics, *, min_distance=0.5, interval=1):
        if not isinstance(min_distance, dict) and not (
                isinstance(min_distance, (int, float, np.number)) and min_distance > 0):
            raise ValueError(f"`min_distance` must be a number > 0 Å or a table per species pair; got "
                             f"{min_distance!r}")
        pair_limits(min_distance)  # a bad table fails here, not at the first step
        self.dynamics = dynamics
        self.min_distance = min_distance if isinstance(min_distance, dict) else float(min_distance)
        dynamics.attach(self, interval=int(interval))

    def __call__(self):
        atoms = self.dynamics.atoms
        step = int(self.dynamics.nsteps)
        results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
        for name in ("energy", "forces"):
            if name in results and not np.all(np.isfinite(results[name])):
                raise MDExplosion(step, f"non-finite {name} from the calculator")
        if not np.all(np.isfinite(atoms.positions)):
            raise MDExplosion(step, "non-finite positions")
        found = too_close(atoms, self.min_distance)
        if found is not None:
            raise MDExplosion(step, describe_close_pair(atoms, found, per_pair=isinstance(self.min_distance, dict)))


def _atomic_write_text(path, text):
    from ..utils.files import atomic_write

    atomic_write(path, text.encode())


def read_frames(path, index=":"):
    """Frames of a trajectory written by :class:`ResumableMD`, up to its last complete frame.

    Parameters
    ----------
    path : str or Path
    index : str or int, default=":"
        ASE index syntax.

    Returns
    -------
    list of ase.Atoms or ase.Atoms
    """
    import ase.io

    path = Path(path)
    state_path = ResumableMD.state_path_of(path)
    if state_path.is_file():
        length = json.loads(state_path.read_text())["bytes"]
        with open(path, "rb") as stream:
            text = stream.read(length).decode()
        return ase.io.read(io.StringIO(text), index=index, format="extxyz")
    return ase.io.read(path, index=index, format="extxyz")


class ResumableMD:
    """Molecular dynamics (Langevin, Bussi or NVE velocity Verlet) written frame by frame and resumable.

    Parameters
    ----------
    trajectory : str or Path
        Extended-XYZ file the frames are appended to; its sidecar ``<trajectory>.state.json`` holds the
        state. An existing trajectory without a sidecar is refused (never overwritten).
    temperature : float, default=300.0
        K: initial velocities (Maxwell–Boltzmann, centre of mass at rest) and the thermostat's target. A resumed
        run may change it (e.g. a heating schedule).
    timestep : float, default=1.0
        fs.
    thermostat : {"langevin", "bussi", "nve"}, default="langevin"
        ``"bussi"``: stochastic velocity rescaling (Bussi, Donadio & Parrinello, J. Chem. Phys. 126, 014101
        (2007); ASE's ``Bussi``): canonical sampling with one global noise on the kinetic energy, so single-particle
        dynamics (diffusion) are barely disturbed, unlike Langevin friction on every atom.
    friction : float, default=0.01
        Langevin friction, 1/fs.
    taut : float, default=100.0
        Bussi time constant, fs.
    interval : int, default=10
        Steps between frames (and between state saves).
    min_distance : float, dict or None, default=0.5
        Å, for the :class:`GeometryGuard` (checked every step): one limit, or one per species pair
        (:func:`pair_limits`); None: no guard.
    n_suggest : int, default=5
        Frames written to ``<trajectory>.to_label.extxyz`` when the run explodes.
    random_state : int, default=0
        Seeds the initial velocities and the thermostat's noise; the generator's state is saved with each frame.
    fixcm : bool, default=True
        Keep the centre of mass at rest (Langevin and Bussi; by an ``ase.constraints.FixCom`` on the working copy).
    progress : bool, default=True
        Progress bar (tqdm, with the remaining time) and a log line every ``log_every`` frames.
    log_every : int, default=10
        Frames between log lines (printed, flushed: readable in a background job's log).

    Attributes
    ----------
    step_ : int
        Steps done so far (all runs of this trajectory).
    stopped_ : str or None
        Why the last call stopped early (an explosion), else None.
    seconds_per_step_ : float
        Wall time per step of the last call.
    """

    def __init__(self, trajectory, *, temperature=300.0, timestep=1.0, thermostat="langevin", friction=0.01,
                 taut=100.0, interval=10, min_distance=0.5, n_suggest=5, random_state=0, fixcm=True, progress=True,
                 log_every=10):
        self.trajectory = Path(trajectory)
        self.temperature = temperature
        self.timestep = timestep
        self.thermostat = thermostat
        self.friction = friction
        self.taut = taut
        self.interval = interval
        self.min_distance = min_distance
        self.n_suggest = n_suggest
        self.random_state = random_state
        self.fixcm = fixcm
        self.progress = progress
        self.log_every = log_every

    @staticmethod
    def state_path_of(trajectory):
        trajectory = Path(trajectory)
        return trajectory.with_name(trajectory.name + ".state.json")

    @property
    def state_path(self):
        return self.state_path_of(self.trajectory)

    @property
    def suggest_path(self):
        return self.trajectory.with_name(self.trajectory.stem + ".to_label.extxyz")

    def _check_params(self):
        if self.thermostat not in _THERMOSTATS:
            raise ValueError(f"`thermostat` must be one of {list(_THERMOSTATS)}; got {self.thermostat!r}")
        for name in ("temperature", "timestep", "friction", "taut"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float, np.number)) and np.isfinite(value) and value > 0):
                raise ValueError(f"`{name}` must be a number > 0; got {value!r}")
        for name in ("interval", "n_suggest", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1; got {value!r}")
        if self.trajectory.suffix not in (".xyz", ".extxyz"):
            raise ValueError(f"`trajectory` must be an extended-XYZ file (.extxyz or .xyz); got {self.trajectory}")
        if not self.trajectory.parent.is_dir():
            raise FileNotFoundError(f"the folder of `trajectory` does not exist: {self.trajectory.parent}")

    # ------------------------------------------------------------------ state
    def load_state(self):
        """The sidecar's content, or None for a new trajectory."""
        if not self.state_path.is_file():
            if self.trajectory.exists() and self.trajectory.stat().st_size > 0:
                raise FileExistsError(f"{self.trajectory} exists but has no {self.state_path.name}: it was not "
                                      "written by ResumableMD (or its state was removed); refusing to overwrite "
                                      "it. Move it away or choose another trajectory path")
            return None
        return json.loads(self.state_path.read_text())

    def _restore(self, state, atoms):
        import ase.io

        if list(atoms.numbers) != list(state["numbers"]):
            raise ValueError(f"{self.trajectory} holds a different system ({len(state['numbers'])} atoms, "
                             f"{_formula(state['numbers'])}) than the structure given ({len(atoms)} atoms, "
                             f"{atoms.get_chemical_formula()})")
        for name in ("timestep", "thermostat", "interval"):
            if state["parameters"][name] != getattr(self, name):
                raise ValueError(f"{self.trajectory} was run with {name}={state['parameters'][name]!r}; resuming "
                                 f"with {name}={getattr(self, name)!r} would mix two runs in one file")
        with open(self.trajectory, "r+b") as stream:
            stream.seek(state["last_frame"])
            text = stream.read(state["bytes"] - state["last_frame"]).decode()
            stream.truncate(state["bytes"])  # a frame torn by a kill
        frame = ase.io.read(io.StringIO(text), format="extxyz")
        restored = atoms.copy()
        restored.set_masses(frame.get_masses())
        # The frame's text keeps 8 decimals; the state keeps the exact floats of the same frame, so a resumed
        # run continues bit for bit (a state written before exact positions were kept: the frame's values).
        exact = state.get("exact", {})
        restored.positions = np.asarray(exact.get("positions", frame.positions), dtype=np.float64)
        restored.cell = np.asarray(exact.get("cell", frame.cell[:]), dtype=np.float64)
        restored.set_momenta(np.asarray(exact.get("momenta", frame.get_momenta()), dtype=np.float64))
        return restored

    def _write_frame(self, atoms, step, offsets):
        import ase.io
        from ase.calculators.singlepoint import SinglePointCalculator

        frame = atoms.copy()
        frame.constraints = []
        frame.info = {"step": int(step), "time_fs": float(step * self.timestep),
                      "temperature_K": float(atoms.get_temperature())}
        results = {k: v for k, v in atoms.calc.results.items() if k in ("energy", "forces", "stress", "free_energy")}
        frame.calc = SinglePointCalculator(frame, **results)
        for name in ("forces_std", "local_energy_std"):   # the σ the calculator computed for this step
            if name in atoms.calc.results:
                frame.arrays[name] = np.asarray(atoms.calc.results[name], dtype=np.float64)
        buffer = io.StringIO()
        ase.io.write(buffer, frame, format="extxyz")
        data = buffer.getvalue().encode()
        with open(self.trajectory, "ab") as stream:
            stream.seek(0, os.SEEK_END)
            start = stream.tell()
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        offsets["last_frame"], offsets["bytes"] = start, start + len(data)

    def _save_state(self, atoms, step, offsets, rng, n_frames, calls, seconds):
        state = {"step": int(step), "n_frames": int(n_frames), "bytes": offsets["bytes"],
                 "last_frame": offsets["last_frame"], "numbers": atoms.numbers.tolist(),
                 "rng": rng.bit_generator.state, "calculator_calls": int(calls), "wall_seconds": float(seconds),
                 # JSON writes each float's shortest exact repr: the last frame's state, unrounded
                 "exact": {"positions": atoms.positions, "momenta": atoms.get_momenta(), "cell": atoms.cell[:]},
                 "parameters": {"timestep": self.timestep, "thermostat": self.thermostat, "interval": self.interval,
                                "temperature": self.temperature, "friction": self.friction, "taut": self.taut,
                                "random_state": self.random_state}}
        _atomic_write_text(self.state_path, json.dumps(jsonable(state), indent=1))

    # -------------------------------------------------------------------- run
    def run(self, atoms, calculator, steps, *, observers=(), stop_on=()):
        """Run (or continue) the dynamics until ``steps`` steps in total have been done.

        Parameters
        ----------
        atoms : ase.Atoms
            Starting structure (Å; masses and, if set, momenta are used). On a resumed run only its atomic
            numbers are checked: the dynamics continue from the trajectory's last frame.
        calculator : ase calculator
        steps : int
            Total number of steps of the trajectory (not of this call): a resumed run does the rest, and a
            finished run with a larger ``steps`` is extended.
        observers : sequence of callables, default=()
            Each is called with the dynamics object before the run (e.g. to attach a
            :class:`~kernelpot.potential.watch.UncertaintyWatch`).
        stop_on : tuple of exception types, default=()
            Besides :class:`MDExplosion`, exceptions raised by observers that end the run the same way
            (frames kept, last frames suggested for labelling).

        Returns
        -------
        self
        """
        from ase.md.langevin import Langevin
        from ase.md.velocitydistribution import Stationary
        from ase.md.verlet import VelocityVerlet

        from ..parallel.progress import progress_bar
        from ..utils.ase_compat import thermalize

        self._check_params()
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"`steps` must be an integer >= 0; got {steps!r}")
        state = self.load_state()
        rng = np.random.default_rng(self.random_state)
        offsets = {"bytes": 0, "last_frame": 0}
        if state is None:
            work = atoms.copy()
            done, n_frames, calls, seconds = 0, 0, 0, 0.0
            if not np.any(work.get_momenta()):
                thermalize(work, float(self.temperature), rng)
                Stationary(work)
        else:
            work = self._restore(state, atoms)
            done, n_frames = int(state["step"]), int(state["n_frames"])
            calls, seconds = int(state["calculator_calls"]), float(state["wall_seconds"])
            rng.bit_generator.state = state["rng"]
            offsets = {"bytes": state["bytes"], "last_frame": state["last_frame"]}
        self.step_, self.stopped_, self.seconds_per_step_ = done, None, float("nan")
        if done >= steps and state is not None:
            return self
        work.calc = calculator
        if self.thermostat == "nve":
            dynamics = VelocityVerlet(work, timestep=self.timestep * units.fs)
        else:
            if self.fixcm:  # ASE >= 3.28: FixCom samples NVT correctly, Langevin(fixcm=True) does not quite
                from ase.constraints import FixCom

                if not any(isinstance(c, FixCom) for c in work.constraints):
                    # before Bussi is built: it counts 3N - 3 degrees of freedom for its target kinetic energy
                    work.set_constraint(list(work.constraints) + [FixCom()])
            if self.thermostat == "bussi":
                from ase.md.bussi import Bussi

                dynamics = Bussi(work, timestep=self.timestep * units.fs, temperature_K=float(self.temperature),
                                 taut=float(self.taut) * units.fs, rng=rng)
            else:
                dynamics = Langevin(work, timestep=self.timestep * units.fs, temperature_K=float(self.temperature),
                                    friction=float(self.friction) / units.fs, fixcm=False, rng=rng)
        dynamics.nsteps = done  # frames and observers keep the trajectory's global step numbers
        if self.min_distance is not None:  # first: an exploded structure is never written
            GeometryGuard(dynamics, min_distance=self.min_distance)
        bar = progress_bar(int(steps), desc=f"MD {self.trajectory.name}", enabled=self.progress)
        bar.update(done)
        clock = {"start": time.perf_counter(), "steps": 0, "base": seconds}

        def on_frame():
            nonlocal n_frames
            step = int(dynamics.nsteps)
            if state is not None and step == done:
                return  # the frame the run resumed from is already written
            self._write_frame(work, step, offsets)
            n_frames += 1
            elapsed = time.perf_counter() - clock["start"]
            self._save_state(work, step, offsets, rng, n_frames, calls + step - done, clock["base"] + elapsed)
            if self.progress and n_frames % int(self.log_every) == 0 and step > done:
                rate = elapsed / (step - done)
                print(f"step {step}/{steps} ({step * self.timestep / 1000:.3f} ps)  Epot "
                      f"{work.get_potential_energy():.4f} eV  T {work.get_temperature():.0f} K  {rate:.3g} s/step  "
                      f"remaining ~{_duration(rate * (steps - step))}", flush=True)

        def on_step():
            if dynamics.nsteps > done:
                bar.update(1)

        dynamics.attach(on_frame, interval=int(self.interval))
        dynamics.attach(on_step, interval=1)
        for observer in observers:  # after the frame writer: a frame a watch stops at is kept (to be labelled)
            observer(dynamics)
        try:
            dynamics.run(int(steps) - done)
        except (MDExplosion, *stop_on) as error:
            self.stopped_ = str(error)
            self._suggest(error)
        finally:
            bar.close()
            self.step_ = int(dynamics.nsteps)
            if self.step_ > done:
                self.seconds_per_step_ = (time.perf_counter() - clock["start"]) / (self.step_ - done)
        return self

    def _suggest(self, error):
        """Write the last frames before the explosion for labelling; print what to do."""
        import ase.io

        frames = read_frames(self.trajectory, index=f"-{int(self.n_suggest)}:") if self.trajectory.exists() else []
        if frames:
            buffer = io.StringIO()
            ase.io.write(buffer, frames, format="extxyz")
            _atomic_write_text(self.suggest_path, buffer.getvalue())
        print(f"MD stopped: {error}. The {_count(frames)} before it are kept in {self.trajectory}"
              + (f"; the last {len(frames)} are in {self.suggest_path}: label them (e.g. kernelpot learn CHECKPOINT "
                 f"--pool {self.suggest_path} --oracle ...), refit, and run again to resume from the last frame"
                 if frames else ""), flush=True)


def _count(frames):
    return f"{len(frames)} frame(s)" if frames else "frames written"


def _formula(numbers):
    from ase import Atoms

    return Atoms(numbers=numbers).get_chemical_formula()


def _duration(seconds):
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
