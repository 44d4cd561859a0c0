"""Fit a GAP potential to the bundled mlearn Si data, then run NVE molecular dynamics with it.

Writes ``si_md.traj`` (ASE trajectory) and prints the total-energy drift per atom and picosecond, the
check that forces are the exact derivative of the energy and that the potential is smooth.

    python examples/si_gap_md.py [--model si.kpot] [--picoseconds 5] [--temperature 1000]

With ``--model`` pointing at an existing file (e.g. from ``kernelpot fit``) the fit is skipped.
"""

import argparse
from pathlib import Path

import numpy as np
from ase import units
from ase.build import bulk
from ase.io import read
from ase.io.trajectory import Trajectory
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet
from fit_si_gap import DATA, fit

from kernelpot.models import SparseGPR
from kernelpot.potential import GAPCalculator, load_model
from kernelpot.utils.ase_compat import thermalize


def fitted_model(path: Path) -> SparseGPR:
    """The model in ``path``, or the default recipe fitted to the bundled data (as ``kernelpot fit``), saved there."""
    if path.exists():
        return load_model(path)
    return fit(read(DATA / "mlearn_Si_training.extxyz", ":"), path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("si.kpot"))
    parser.add_argument("--picoseconds", type=float, default=5.0)
    parser.add_argument("--temperature", type=float, default=1000.0, help="initial temperature, K")
    parser.add_argument("--timestep", type=float, default=1.0, help="fs")
    args = parser.parse_args()

    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2))  # 64 atoms
    atoms.calc = GAPCalculator(fitted_model(args.model), uncertainty=False)
    thermalize(atoms, args.temperature, np.random.default_rng(0))
    Stationary(atoms)
    dynamics = VelocityVerlet(atoms, timestep=args.timestep * units.fs)
    times, totals = [], []

    def record():
        times.append(dynamics.nsteps * args.timestep / 1000.0)
        totals.append(atoms.get_total_energy() / len(atoms))

    with Trajectory("si_md.traj", "w", atoms) as trajectory:
        dynamics.attach(trajectory.write, interval=50)
        dynamics.attach(record, interval=10)
        dynamics.run(int(round(args.picoseconds * 1000.0 / args.timestep)))
    drift = np.polyfit(times, totals, 1)[0]
    spread = np.ptp(totals)
    print(f"{len(atoms)} Si atoms, NVE {args.picoseconds} ps from {args.temperature} K: "
          f"total-energy drift {drift * 1e3:.3f} meV/atom/ps, fluctuation range {spread * 1e3:.3f} meV/atom")


if __name__ == "__main__":
    main()
