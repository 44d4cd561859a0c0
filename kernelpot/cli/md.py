"""``kernelpot md``: molecular dynamics (NVE or Langevin) with a fitted model, through ASE."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .options import (
    add_quiet,
    add_seed,
    check_output,
    min_distance_value,
    non_negative_float,
    positive_float,
    positive_int,
)

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    md = sub.add_parser("md", help="molecular dynamics with a fitted model")
    md.add_argument("model", type=Path, help="model file (.kpot) written by kernelpot fit")
    md.add_argument("start", type=Path, help="structure file (any ASE format)")
    md.add_argument("--frame", default="0",
                    help="which frame of the start file: an index, negative counts from the end (default: 0)")
    md.add_argument("--temperature", type=non_negative_float, default=300.0,
                    help="K: initial velocities drawn at this temperature; the Langevin thermostat's target")
    md.add_argument("--steps", type=positive_int, default=1000, help="number of time steps")
    md.add_argument("--timestep", type=positive_float, default=1.0, help="time step, fs")
    md.add_argument("--thermostat", choices=["nve", "langevin", "bussi"], default="nve",
                    help="nve: velocity Verlet, constant energy; langevin: constant temperature, friction on every "
                         "atom; bussi: constant temperature by stochastic velocity rescaling (one global noise: "
                         "diffusion barely disturbed)")
    md.add_argument("--friction", type=non_negative_float, default=0.01, help="Langevin friction, 1/fs")
    md.add_argument("--taut", type=positive_float, default=100.0, help="Bussi time constant, fs")
    md.add_argument("--trajectory", type=Path, help="write an ASE .traj file")
    md.add_argument("--interval", type=positive_int, default=10, help="steps between log lines and frames")
    md.add_argument("--skin", type=non_negative_float, default=1.0,
                    help="Verlet skin of the neighbour lists kept between steps, Å (0: search every step)")
    watch = md.add_argument_group("uncertainty (the model's DTC σ, computed with every step's forces)")
    watch.add_argument("--uncertainty", action="store_true",
                       help="record the largest per-atom σ of every step (see --std-kind)")
    watch.add_argument("--std-kind", choices=["forces", "forces_subset", "local_energy"], default="forces",
                       help="forces: exact |forces_std| (eV/Å; tens of times the cost of a step); forces_subset: "
                            "approximate |forces_std| from the posterior of --sigma-points sparse points and each "
                            "atom's local-energy Nyström residual, calibrated on the first step's exact σ (eV/Å; "
                            "every step, about 2-3x the cost of a step; error "
                            "against the exact σ: benchmarks/predict.py --cases subsetsigma); local_energy: exact σ "
                            "of every atom's local energy (eV; about 1.5x a step; FLARE's trigger, not a force σ)")
    watch.add_argument("--sigma-points", type=positive_int, default=16,
                       help="with --std-kind forces_subset: sparse points of the approximate force σ")
    watch.add_argument("--sigma-residual", action=argparse.BooleanOptionalAction, default=True,
                       help="with --std-kind forces_subset: add every atom's local-energy Nyström residual (a "
                            "second calibrated factor; about half a step more; default): the largest σ of a step "
                            "then finds the environments far from the sparse points, which the subset alone misses")
    watch.add_argument("--sigma-residual-points", type=positive_int, default=None,
                       help="with --sigma-residual: take each atom's residual against its N most similar sparse "
                            "points of every large term instead of all of them (cheaper where the exact residual's "
                            "product over all points costs much of a step: one species, ~1,000 points)")
    watch.add_argument("--std-threshold", type=float,
                       help="flag steps whose largest σ exceeds this, in the unit of --std-kind (implies "
                            "--uncertainty)")
    watch.add_argument("--force-threshold", type=float,
                       help="with --std-kind local_energy: a step above --std-threshold is flagged only if its exact "
                            "largest |forces_std| (computed for that step only) also exceeds this, eV/Å")
    watch.add_argument("--stop", action="store_true", help="stop at the first flagged step (needs --std-threshold)")
    watch.add_argument("--std-interval", type=int, default=1,
                       help="steps between σ checks; the steps in between take the fast mean-only path, so σ "
                            "costs 1/N of its per-step price")
    watch.add_argument("--flagged", type=Path, help="write the flagged structures to this extxyz file")
    md.add_argument("--output", type=Path,
                    help="extended-XYZ trajectory (.extxyz: positions, momenta, energy, forces, step, time; read by "
                         "ASE, OVITO, MDAnalysis, kinisi), resumable: the same command continues a killed run from "
                         "its last frame, a larger --steps extends it")
    md.add_argument("--min-distance", type=min_distance_value, default=0.5,
                    help="with --output: Å; two atoms closer than this stop the run (frames kept, the last ones "
                         "written to <output>.to_label.extxyz). Or a limit per species pair, e.g. "
                         "'O-O:2.0,H-H:1.0,Cl-O:2.2,*:0.7' ('*': the pairs not named)")
    add_seed(md)
    add_quiet(md)
    md.set_defaults(handler=run)


def run(args) -> int:
    from ase import units
    from ase.io.trajectory import Trajectory
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary
    from ase.md.verlet import VelocityVerlet

    from ..io import read_structures
    from ..parallel.progress import progress_bar
    from ..potential.calculator import GAPCalculator
    from ..utils.ase_compat import thermalize

    if args.stop and args.std_threshold is None:
        raise ValueError("--stop needs --std-threshold")
    unit = "eV" if args.std_kind == "local_energy" else "eV/Å"
    if args.std_threshold is not None and not args.std_threshold > 0:
        raise ValueError(f"--std-threshold must be > 0 {unit}; got {args.std_threshold}")
    if args.force_threshold is not None and (args.std_kind != "local_energy" or args.std_threshold is None):
        raise ValueError("--force-threshold confirms the steps the local-energy σ flags: it needs --std-kind "
                         "local_energy and --std-threshold")
    if args.force_threshold is not None and not args.force_threshold > 0:
        raise ValueError(f"--force-threshold must be > 0 eV/Å; got {args.force_threshold}")
    if args.std_interval < 1:
        raise ValueError(f"--std-interval must be an integer >= 1; got {args.std_interval}")
    uncertainty = args.uncertainty or args.std_threshold is not None
    for option, path in (("--trajectory", args.trajectory), ("--flagged", args.flagged), ("--output", args.output)):
        if path is not None:  # refused before the run, not after it
            check_output(path, inputs=[args.model, args.start], option=option)
    atoms = read_structures(args.start, index=args.frame)  # a bad file or --frame: one line, not StopIteration
    # With --std-interval N > 1, σ only on the steps the watch reads it; the others take the fast path.
    if args.std_kind == "local_energy":
        mode = ("local_energy" if args.std_interval == 1 else "requested") if uncertainty else False
    elif args.std_kind == "forces_subset":   # computed with every step's forces (its cost is the point)
        mode = "forces_subset" if uncertainty else False
    else:
        mode = (True if args.std_interval == 1 else "requested") if uncertainty else False
    if args.output is not None:
        return _run_resumable(args, atoms, GAPCalculator(args.model, uncertainty=mode, skin=args.skin,
                                                         sigma_points=args.sigma_points,
                                                         sigma_residual=args.sigma_residual,
                                                         sigma_residual_points=args.sigma_residual_points),
                               uncertainty)
    atoms.calc = GAPCalculator(args.model, uncertainty=mode, skin=args.skin, sigma_points=args.sigma_points,
                               sigma_residual=args.sigma_residual, sigma_residual_points=args.sigma_residual_points)
    thermalize(atoms, args.temperature, np.random.default_rng(args.seed))
    Stationary(atoms)
    if args.thermostat == "nve":
        dynamics = VelocityVerlet(atoms, timestep=args.timestep * units.fs)
    elif args.thermostat == "bussi":
        from ase.md.bussi import Bussi

        dynamics = Bussi(atoms, timestep=args.timestep * units.fs, temperature_K=args.temperature,
                         taut=args.taut * units.fs, rng=np.random.default_rng(args.seed))
    else:
        dynamics = Langevin(atoms, timestep=args.timestep * units.fs, temperature_K=args.temperature,
                            friction=args.friction / units.fs, rng=np.random.default_rng(args.seed))
    trajectory = Trajectory(args.trajectory, "w", atoms) if args.trajectory else None
    if trajectory is not None:
        dynamics.attach(trajectory.write, interval=args.interval)
    log = []
    watch = None
    if uncertainty:
        from ..potential.watch import UncertaintyWatch

        watch = UncertaintyWatch(dynamics, **_watch_options(args))
        flagged_frames = []
        if args.flagged is not None:
            def keep_flagged():
                if watch.flagged and watch.flagged[-1] == dynamics.nsteps:
                    flagged_frames.append(atoms.copy())

            dynamics.attach(keep_flagged, interval=1)

    def record():
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        log.append((dynamics.nsteps, epot, ekin, ekin / (1.5 * units.kB * len(atoms))))
        if not args.quiet:
            sigma = (f"  max {'σE' if args.std_kind == 'local_energy' else '|σF|'} {watch.sigma[-1]:.4f} {unit}"
                     if watch is not None and watch.sigma else "")
            print(f"step {dynamics.nsteps:>7}  Epot {epot:.5f} eV  Etot {epot + ekin:.5f} eV  "
                  f"T {log[-1][3]:.1f} K{sigma}", flush=True)

    dynamics.attach(record, interval=args.interval)
    bar = progress_bar(args.steps, desc="MD steps", enabled=not args.quiet)

    def advance():  # observers also run once before the first step
        if dynamics.nsteps > 0:
            bar.update(1)

    dynamics.attach(advance, interval=1)
    stopped = None
    try:
        dynamics.run(args.steps)
    except Exception as error:  # the watch's stop signal; anything else propagates
        from ..potential.watch import UncertaintyExceeded

        if not isinstance(error, UncertaintyExceeded):
            raise
        stopped = error
        if args.flagged is not None:  # the watch stopped the step before keep_flagged saw it
            flagged_frames.append(atoms.copy())
    bar.close()
    if watch is not None:
        _report_uncertainty(args, watch, stopped, flagged_frames if args.flagged is not None else None)
    if trajectory is not None:
        trajectory.close()
    if not log:
        return 0
    steps, epot, ekin, _ = np.array(log).T
    total = (epot + ekin) / len(atoms)
    duration_ps = (steps[-1] - steps[0]) * args.timestep / 1000.0 if len(steps) > 1 else 0.0
    if duration_ps > 0:
        drift = np.polyfit(steps * args.timestep / 1000.0, total, 1)[0]
        print(f"total-energy drift {drift * 1e3:.3f} meV/atom/ps over {duration_ps:.2f} ps")
    return 0


def _watch_options(args) -> dict:
    """The :class:`~kernelpot.potential.watch.UncertaintyWatch` keywords of the command line."""
    return {"threshold": args.std_threshold, "stop": args.stop, "interval": args.std_interval,
            "quantity": "local_energy" if args.std_kind == "local_energy" else "forces",
            "force_threshold": args.force_threshold}


def _report_uncertainty(args, watch, stopped, flagged_frames) -> None:
    sigma = np.array(watch.sigma)
    name, unit = ("local_energy_std", "eV") if args.std_kind == "local_energy" else (
        "|forces_std| (approximate)" if args.std_kind == "forces_subset" else "|forces_std|", "eV/Å")
    print(f"largest per-atom {name} over {len(sigma)} steps: mean {sigma.mean():.4f}, max {sigma.max():.4f} "
          f"{unit} (step {watch.steps[int(sigma.argmax())]})")
    if args.std_threshold is not None:
        confirmed = (f" whose exact |forces_std| exceeds {args.force_threshold} eV/Å ({len(watch.force_sigma)} "
                     "checked)" if args.force_threshold is not None else "")
        print(f"{len(watch.flagged)} step(s) above {args.std_threshold} {unit}{confirmed}"
              + (f", first {watch.flagged[0]}" if watch.flagged else ""))
    if stopped is not None:
        print(f"stopped: {stopped}")
    if flagged_frames is not None:
        import os

        from ase.io import write

        temporary = args.flagged.with_name(f".{args.flagged.name}.tmp-{os.getpid()}")
        write(temporary, flagged_frames, format="extxyz")
        os.replace(temporary, args.flagged)  # never a half-written file
        print(f"wrote {len(flagged_frames)} flagged structure(s) to {args.flagged}")


def _run_resumable(args, atoms, calculator, uncertainty) -> int:
    """``--output``: the run through :class:`~kernelpot.potential.dynamics.ResumableMD` (the uncertainty watch
    attached as an observer; its stop ends the run like an explosion: frames kept, the last ones suggested)."""
    from ..potential.dynamics import ResumableMD
    from ..potential.watch import UncertaintyExceeded, UncertaintyWatch

    if args.trajectory is not None:
        raise ValueError("give either --trajectory (ASE .traj) or --output (resumable .extxyz), not both")
    if args.flagged is not None:
        raise ValueError("--flagged is for runs without --output; with --output a --stop writes the last frames "
                         "to <output>.to_label.extxyz")
    md = ResumableMD(args.output, temperature=args.temperature, timestep=args.timestep, thermostat=args.thermostat,
                     friction=args.friction, taut=args.taut, interval=args.interval, min_distance=args.min_distance,
                     random_state=args.seed, progress=not args.quiet)
    watches = []
    observers = [lambda dynamics: watches.append(UncertaintyWatch(dynamics, **_watch_options(args)))] \
        if uncertainty else []
    md.run(atoms, calculator, args.steps, observers=observers, stop_on=(UncertaintyExceeded,))
    if watches and watches[0].sigma:
        _report_uncertainty(args, watches[0], md.stopped_, None)
    if not args.quiet:
        print(f"{args.output}: step {md.step_} of {args.steps} ({md.step_ * args.timestep / 1000:.3f} ps)"
              + (f"; {md.seconds_per_step_:.3g} s per step" if np.isfinite(md.seconds_per_step_) else ""))
    return 1 if md.stopped_ else 0
