"""Step 1c: a test set from the xTB liquid's own region, at an affordable price: 330 K MD of learned xTB models.

The relabelled revPBE0-D3 test set (``relabel_aimd.py``) holds the geometries of another level of theory and
box; they are the (c) pool's own. The issue's test set, a direct 330 K xTB MD (80 ps, ~107 CPU-hours here), is
out of reach. This script makes the nearest thing in minutes: a 330 K Langevin MD (1 fs, deuterium masses, the
loop's 1 NaCl + 32 H2O box) with the final model of each named learning run, then GFN2-xTB labels of frames
``--spacing`` ps apart after ``--equilibrate`` ps (``reference/test_model.extxyz``). The geometries are the
models' liquid, not xTB's: this set favours the learning loops as the relabelled AIMD favours (c). Taking the
models of one σ-driven and one random run (``--models variance_seed0 random_seed0``, half the frames each)
favours neither of (a) and (b); their seeds > 0 see these frames no more than any other.

A model's MD that brings two atoms closer than ``common.MIN_DISTANCES`` (it has left what it learned) goes on
from its last frame with fresh velocities (up to 3 times); the frame that came too close is never kept.
Both steps resume: the MD (one process per model can share the work: ``--md-only``) continues from its last
frame, and labelling skips the frames already labelled (an xTB failure is logged, counted and skipped)::

    OMP_NUM_THREADS=1 python examples/electrolyte/model_reference.py --models variance_seed0 --md-only &
    OMP_NUM_THREADS=1 python examples/electrolyte/model_reference.py --models random_seed0 --md-only &
    OMP_NUM_THREADS=1 python examples/electrolyte/model_reference.py --models variance_seed0 random_seed0
    python examples/electrolyte/compare.py --test <work>/reference/test_model.extxyz
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    REFERENCE_TEMPERATURE,
    default_oracle,
    deuterate,
    make_oracle,
    min_distances,
    nacl_water_box,
    work_parser,
)
from relabel_aimd import _read, label_interleaved, spaced


def run_md(work, run, *, ps, seed, interval, n_water, min_distance, progress, max_restarts=3):
    """330 K MD of the final model of learning run ``run``, ``ps`` long: its frames, times counted from the start.

    A stop (two atoms closer than ``min_distance``: the model has left what it learned) ends a part; the next
    part, ``reference/md_<run>.restart<k>.extxyz``, starts from the part's last frame with fresh velocities
    (seed + k), so that the test set's region is the models' liquid, never an exploding frame. A stopped part
    (its ``.to_label.extxyz`` exists) is never run again: resuming it would replay the same stop."""
    from kernelpot import GAPCalculator, load_model
    from kernelpot.potential.dynamics import ResumableMD, read_frames

    model_path = work / "learn" / run / "model.kpot"
    if not model_path.is_file():
        raise SystemExit(f"no model at {model_path}: run learn.py for {run!r} first")
    calculator = GAPCalculator(load_model(model_path), uncertainty=False)  # σ would cost 25x a step
    start = deuterate(nacl_water_box(n_water, seed=0))
    frames, offset_fs = [], 0.0
    for part in range(max_restarts + 1):
        trajectory = work / "reference" / (f"md_{run}.extxyz" if part == 0 else f"md_{run}.restart{part}.extxyz")
        md = ResumableMD(trajectory, temperature=REFERENCE_TEMPERATURE, timestep=1.0, friction=0.01,
                         interval=interval, min_distance=min_distance, random_state=seed + part, progress=progress,
                         log_every=10)
        steps = round(ps * 1000.0 - offset_fs)
        if not md.suggest_path.is_file():
            md.run(start, calculator, steps)
            ran = "" if np.isnan(md.seconds_per_step_) else f"; {md.seconds_per_step_:.3g} s per step"
            print(f"{run}, part {part}: MD at step {md.step_} of {steps}{ran}", flush=True)
        part_frames = read_frames(trajectory)
        for atoms in part_frames[1 if part else 0:]:  # a restart's first frame is the last one before it
            atoms.info["time_fs"] = atoms.info["time_fs"] + offset_fs
            frames.append(atoms)
        if not md.suggest_path.is_file():
            return frames
        offset_fs = frames[-1].info["time_fs"]
        start = part_frames[-1].copy()
        start.set_momenta(np.zeros_like(start.positions))  # fresh velocities: ResumableMD draws them
        print(f"{run}: the MD stopped {offset_fs / 1000:.2f} ps in (see {md.suggest_path.name}); it goes on from "
              "there with fresh velocities", flush=True)
    raise SystemExit(f"the MD of {run}'s model stopped {max_restarts + 1} times; its model is not fit for "
                     f"{ps} ps at {REFERENCE_TEMPERATURE:g} K: label the frames of the reference/md_{run}*.to_label"
                     ".extxyz files into its run, or name another run")


def spaced_frames(frames, *, run, equilibrate, spacing):
    """Frames ``spacing`` ps apart from ``equilibrate`` ps on (``relabel_aimd.spaced``, on the whole fs of the
    frames' times), tagged with their run and MD time."""
    time_fs = np.array([atoms.info["time_fs"] for atoms in frames], dtype=float)
    time_fs[time_fs < round(equilibrate * 1000.0)] = np.nan  # spaced skips them
    chosen = []
    for i in spaced(time_fs, round(spacing * 1000.0), len(frames)):
        t = time_fs[i] / 1000.0
        copy = frames[i].copy()
        copy.calc = None
        copy.info = {"source_index": f"{run}@{t:g}ps", "md_time": t, "model_run": run}
        chosen.append(copy)
    return chosen


def write_combined(path, parts):
    """The labelled frames of every part, in one file (written atomically: compare.py reads it whole)."""
    import io

    import ase.io

    from kernelpot.utils.files import atomic_write

    buffer = io.StringIO()
    frames = [a for part in parts for a in _read(part)]
    ase.io.write(buffer, frames, format="extxyz")
    atomic_write(path, buffer.getvalue().encode())
    print(f"wrote {path}: {len(frames)} labelled frames", flush=True)


def main(argv=None):
    parser = work_parser(__doc__)
    parser.add_argument("--models", nargs="+", required=True, help="learning runs (names in <work>/learn/)")
    parser.add_argument("--ps", type=float, default=41.0, help="MD length per model, ps (extendable)")
    parser.add_argument("--equilibrate", type=float, default=1.0, help="ps before the first test frame")
    parser.add_argument("--spacing", type=float, default=2.0, help="ps between test frames")
    parser.add_argument("--interval", type=int, default=500, help="MD steps between stored frames")
    parser.add_argument("--seed", type=int, default=100,
                        help="thermostat seed; each run's MD adds a number of its name (stable across invocations)")
    parser.add_argument("--n-water", type=int, default=32)
    parser.add_argument("--md-only", action="store_true", help="only run (or extend) the MD")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.spacing * 1000.0 < args.interval:
        raise SystemExit(f"--spacing {args.spacing} ps is shorter than the stored frames' --interval "
                         f"{args.interval} fs")
    folder = args.work / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    oracle_name = args.oracle or default_oracle()
    chosen = {}
    for run in args.models:
        seed = args.seed + zlib.crc32(run.encode()) % 10_000
        frames = run_md(args.work, run, ps=args.ps, seed=seed, interval=args.interval, n_water=args.n_water,
                        min_distance=min_distances(oracle_name), progress=not args.quiet)
        chosen[run] = spaced_frames(frames, run=run, equilibrate=args.equilibrate, spacing=args.spacing)
    if args.md_only:
        return None
    summary = {"models": args.models, "ps": args.ps, "equilibrate_ps": args.equilibrate, "spacing_ps": args.spacing,
               "temperature_K": REFERENCE_TEMPERATURE, "frames": {run: len(f) for run, f in chosen.items()}}
    (folder / "model_split.json").write_text(json.dumps(summary, indent=1))
    print(f"test frames: {summary['frames']}", flush=True)
    parts = {run: folder / f"test_model_{run}.extxyz" for run in chosen}
    label_interleaved([(parts[run], frames, f"test ({run})") for run, frames in chosen.items()],
                      make_oracle(oracle_name))
    write_combined(folder / "test_model.extxyz", [parts[run] for run in chosen])
    return summary


if __name__ == "__main__":
    main()
