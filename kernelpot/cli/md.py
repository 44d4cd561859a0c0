"""``kernelpot md``: molecular dynamics (NVE or Langevin) with a fitted model, through ASE."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .options import add_quiet, add_seed

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    md = sub.add_parser("md", help="molecular dynamics with a fitted model")
    md.add_argument("model", type=Path, help="model file (.kpot) written by kernelpot fit")
    md.add_argument("start", type=Path, help="structure file (any ASE format)")
    md.add_argument("--frame", default="0", help="which frame of the start file (default: 0)")
    md.add_argument("--temperature", type=float, default=300.0,
                    help="K: initial velocities drawn at this temperature; the Langevin thermostat's target")
    md.add_argument("--steps", type=int, default=1000, help="number of time steps")
    md.add_argument("--timestep", type=float, default=1.0, help="time step, fs")
    md.add_argument("--thermostat", choices=["nve", "langevin"], default="nve",
                    help="nve: velocity Verlet, constant energy; langevin: constant temperature")
    md.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    md.add_argument("--trajectory", type=Path, help="write an ASE .traj file")
    md.add_argument("--interval", type=int, default=10, help="steps between log lines and frames")
    add_seed(md)
    add_quiet(md)
    md.set_defaults(handler=run)


def run(args) -> int:
    from ase import units
    from ase.io import read
    from ase.io.trajectory import Trajectory
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary
    from ase.md.verlet import VelocityVerlet

    from ..utils.ase_compat import thermalize
    from ..parallel.progress import progress_bar
    from ..potential.calculator import GAPCalculator

    atoms = read(args.start, index=args.frame)
    atoms.calc = GAPCalculator(args.model, uncertainty=False)
    thermalize(atoms, args.temperature, np.random.default_rng(args.seed))
    Stationary(atoms)
    if args.thermostat == "nve":
        dynamics = VelocityVerlet(atoms, timestep=args.timestep * units.fs)
    else:
        dynamics = Langevin(atoms, timestep=args.timestep * units.fs, temperature_K=args.temperature,
                            friction=args.friction / units.fs, rng=np.random.default_rng(args.seed))
    trajectory = Trajectory(args.trajectory, "w", atoms) if args.trajectory else None
    if trajectory is not None:
        dynamics.attach(trajectory.write, interval=args.interval)
    log = []

    def record():
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        log.append((dynamics.nsteps, epot, ekin, ekin / (1.5 * units.kB * len(atoms))))
        if not args.quiet:
            print(f"step {dynamics.nsteps:>7}  Epot {epot:.5f} eV  Etot {epot + ekin:.5f} eV  "
                  f"T {log[-1][3]:.1f} K", flush=True)

    dynamics.attach(record, interval=args.interval)
    bar = progress_bar(args.steps, desc="MD steps", enabled=not args.quiet)

    def advance():  # observers also run once before the first step
        if dynamics.nsteps > 0:
            bar.update(1)

    dynamics.attach(advance, interval=1)
    dynamics.run(args.steps)
    bar.close()
    if trajectory is not None:
        trajectory.close()
    steps, epot, ekin, _ = np.array(log).T
    total = (epot + ekin) / len(atoms)
    duration_ps = (steps[-1] - steps[0]) * args.timestep / 1000.0 if len(steps) > 1 else 0.0
    if duration_ps > 0:
        drift = np.polyfit(steps * args.timestep / 1000.0, total, 1)[0]
        print(f"total-energy drift {drift * 1e3:.3f} meV/atom/ps over {duration_ps:.2f} ps")
    return 0
