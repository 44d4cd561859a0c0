"""Step 1: the reference xTB MD of 1 NaCl + 32 H2O at 330 K; the test set and the (c) pool are cut from it.

One direct GFN2-xTB trajectory (tblite, periodic, Langevin 330 K, 1 fs, deuterium masses, a frame with
energy and forces every 10 fs) is written to ``<work>/reference/xtb_md.extxyz`` by
:class:`kernelpot.potential.dynamics.ResumableMD`: kill it at any time, run the same command again and it
continues from the last frame (``--ps`` larger than before extends it). It prints the cost per call and the
remaining time. Then it cuts (``--split`` only does this part):

* the **test set**: after ``--equilibrate`` ps, ``--n-test`` frames ``--test-spacing`` ps apart;
* after a gap of ``--gap`` ps, the **(c) pool**: the rest of the trajectory, whose equally spaced frames are
  what a user without active learning would label. With ``--pool-from NAME`` the pool comes instead from an
  independent trajectory ``NAME`` (made by ``--name NAME --seed <other>``), after its own ``--equilibrate``.

Cost here: 4.8 s per xTB call on one idle core, ~1.3 h per ps. Run it in the background, niced, one thread::

    OMP_NUM_THREADS=1 nohup nice -n 19 python examples/electrolyte/make_reference.py --ps 10 > ref.log 2>&1 &
    python examples/electrolyte/make_reference.py --split          # the test set and pool of what exists
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    REFERENCE_TEMPERATURE,
    default_oracle,
    deuterate,
    make_oracle,
    nacl_water_box,
    work_parser,
)


def start_structure(folder, oracle, *, name, n_water, seed, relax_steps):
    """The packed box relaxed by ``relax_steps`` FIRE steps with the oracle (cached in start_<name>.extxyz)."""
    import ase.io
    from ase.optimize import FIRE

    from kernelpot.utils.files import atomic_write

    path = folder / f"start_{name}.extxyz"
    if path.is_file():
        return ase.io.read(path)
    atoms = nacl_water_box(n_water, seed=seed)
    atoms.calc = oracle
    started = time.perf_counter()
    FIRE(atoms, logfile="-" if relax_steps else None, maxstep=0.1).run(fmax=0.5, steps=relax_steps)
    print(f"start: {len(atoms)} atoms, L = {atoms.cell[0, 0]:.3f} Å, relaxed {relax_steps} FIRE steps in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    atoms.calc = None
    import io

    buffer = io.StringIO()
    ase.io.write(buffer, atoms, format="extxyz")
    atomic_write(path, buffer.getvalue().encode())
    return atoms


def _frames(folder, name):
    from kernelpot.potential.dynamics import read_frames

    path = folder / f"{name}.extxyz"
    if not path.is_file():
        raise SystemExit(f"no trajectory yet at {path}; run this script without --split first")
    frames = read_frames(path)
    return frames, np.array([f.info["time_fs"] for f in frames]) / 1000.0


def split(folder, *, test_from, pool_from, equilibrate, n_test, test_spacing, gap):
    """Cut the test set and the (c) pool from the trajectories; returns a summary dict."""
    import ase.io

    frames, time_ps = _frames(folder, test_from)
    test_times = equilibrate + test_spacing * np.arange(n_test)
    test_index = [int(np.argmin(np.abs(time_ps - t))) for t in test_times if t <= time_ps[-1] + 1e-9]
    if pool_from == test_from:
        pool_frames, pool_time = frames, time_ps
        pool_start = (test_times[-1] if len(test_index) == n_test else np.inf) + gap
    else:
        (pool_frames, pool_time), pool_start = _frames(folder, pool_from), equilibrate
    pool_index = [i for i, t in enumerate(pool_time) if t >= pool_start - 1e-9]
    ase.io.write(folder / "test.extxyz", [frames[i] for i in test_index], format="extxyz")
    ase.io.write(folder / "direct_pool.extxyz", [pool_frames[i] for i in pool_index], format="extxyz")
    summary = {"test_from": test_from, "pool_from": pool_from, "trajectory_ps": float(time_ps[-1]),
               "pool_trajectory_ps": float(pool_time[-1]), "n_frames": len(frames), "n_test": len(test_index),
               "test_span_ps": [float(time_ps[test_index[0]]), float(time_ps[test_index[-1]])] if test_index else None,
               "test_spacing_ps": test_spacing, "n_pool": len(pool_index),
               "pool_span_ps": ([float(pool_time[pool_index[0]]), float(pool_time[pool_index[-1]])]
                                if pool_index else None),
               "complete": len(test_index) == n_test and len(pool_index) > 0}
    (folder / "split.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return summary


def main(argv=None):
    parser = work_parser(__doc__)
    parser.add_argument("--ps", type=float, default=10.0, help="total trajectory length, ps (extendable later)")
    parser.add_argument("--n-water", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1, help="box and thermostat seed (the loop's boxes use 0)")
    parser.add_argument("--relax-steps", type=int, default=20, help="FIRE steps with the oracle before the MD")
    parser.add_argument("--timestep", type=float, default=1.0, help="fs (deuterium masses)")
    parser.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    parser.add_argument("--interval", type=int, default=10, help="steps between stored frames")
    parser.add_argument("--equilibrate", type=float, default=1.0, help="ps discarded before the test frames")
    parser.add_argument("--n-test", type=int, default=40, help="test frames")
    parser.add_argument("--test-spacing", type=float, default=0.1, help="ps between test frames")
    parser.add_argument("--gap", type=float, default=0.5, help="ps between the last test frame and the (c) pool")
    parser.add_argument("--split", action="store_true", help="only cut the test set and pool from what exists")
    parser.add_argument("--name", default="xtb_md", help="trajectory name (reference/<name>.extxyz)")
    parser.add_argument("--test-from", default="xtb_md", help="trajectory the test frames are cut from")
    parser.add_argument("--pool-from", default=None, help="trajectory of the (c) pool (default: --test-from)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    folder = args.work / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    cut = {"test_from": args.test_from, "pool_from": args.pool_from or args.test_from, "equilibrate": args.equilibrate,
               "n_test": args.n_test, "test_spacing": args.test_spacing, "gap": args.gap}
    if args.split:
        return split(folder, **cut)
    from kernelpot.potential.dynamics import ResumableMD

    oracle = make_oracle(args.oracle or default_oracle())
    trajectory = folder / f"{args.name}.extxyz"
    if ResumableMD.state_path_of(trajectory).is_file():  # resuming: the dynamics continue from the last frame
        from kernelpot.potential.dynamics import read_frames

        start = read_frames(trajectory, index=0)
    else:
        start = deuterate(start_structure(folder, oracle, name=args.name, n_water=args.n_water, seed=args.seed,
                                          relax_steps=args.relax_steps))
    md = ResumableMD(trajectory, temperature=REFERENCE_TEMPERATURE, timestep=args.timestep,
                     friction=args.friction, interval=args.interval, random_state=args.seed,
                     progress=not args.quiet, log_every=5)
    steps = round(args.ps * 1000.0 / args.timestep)
    md.run(start, oracle, steps)
    print(f"trajectory at step {md.step_} of {steps} ({md.step_ * args.timestep / 1000:.3f} ps); "
          f"{md.seconds_per_step_:.3g} s per step in this run" + (f"; stopped: {md.stopped_}" if md.stopped_ else ""),
          flush=True)
    return split(folder, **cut)


if __name__ == "__main__":
    main()
