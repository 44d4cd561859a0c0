"""Step 2: on-the-fly active learning of 1 NaCl + 32 H2O with GFN2-xTB as the oracle.

Starts from 4 labelled frames (the packed box and 3 rattled copies), then repeats: Langevin MD of the current
model (300 K, then 360 K so the model must extrapolate; 1 fs, deuterium masses), a snapshot every 5 steps;
score the snapshots of a 60-step segment; label the best 3 (diverse) with xTB; refit (incrementally, fully
with new sparse points every ``--refit-every`` iterations). Stops at the oracle budget, at ``--stop-score``
(no candidate's calibrated force σ above it) or when the schedule ends. Strategies (``--strategy``):

* ``variance``: the calibrated force σ (kernelpot.active.PredictiveVariance(calibrate=True): σ scaled by
  maximum likelihood on the loop's own picks, judged before they joined the fit);
* ``random``: random snapshots of the same MD (the control (b));
* ``committee``, ``distance``: committee disagreement, descriptor distance.

An xTB failure (tblite raises or returns NaN) is logged, counted and skipped; an MD explosion (a pair of atoms
closer than its limit in ``common.MIN_DISTANCES``, e.g. O–O 2.0 Å, H–H 1.0 Å) drops the exploded frame, offers
the last sane snapshots for labelling and restarts from them.
Kill it any time: the same command resumes from ``<work>/learn/<strategy>_seed<k>/`` without relabelling.
The loop from Python and from the command line::

    OMP_NUM_THREADS=1 nice -n 19 python examples/electrolyte/learn.py --strategy variance --seed 0
    kernelpot learn <work>/learn/cli --md start.extxyz --oracle tblite.ase:TBLite \\
        --oracle-kwargs '{"method": "GFN2-xTB", "verbosity": 0}' --strategy variance --calibrate ...

(the second line: the same loop from the command line; ``--print-cli`` prints it in full).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    SIGMA,
    default_oracle,
    deuterate,
    gap_string,
    gap_template,
    make_oracle,
    min_distances,
    nacl_water_box,
    work_parser,
)


def make_strategy(name, seed):
    from kernelpot.active.strategies import PredictiveVariance
    from kernelpot.active.strategies import make_strategy as by_name

    if name == "variance":
        return PredictiveVariance(quantity="forces", calibrate=True, random_state=seed)
    return by_name(name, random_state=seed)


def read_test(work):
    import ase.io

    path = work / "reference" / "test.extxyz"
    return list(ase.io.read(path, index=":")) if path.is_file() else None


def cli_command(args, start_path, run):
    """The ``kernelpot learn`` command that runs the same loop."""
    schedule = ",".join(f"{t:g}:{n}" for t, n in args.schedule)
    oracle = ('--oracle tblite.ase:TBLite --oracle-kwargs \'{"method": "GFN2-xTB", "verbosity": 0}\''
              if (args.oracle or default_oracle()) == "xtb" else
              '--oracle ase.calculators.lj:LennardJones --oracle-kwargs \'{"epsilon": 0.05, "sigma": 0.85, '
              '"rc": 4.0, "smooth": true}\'')
    strategy = "--strategy variance --calibrate" if args.strategy == "variance" else f"--strategy {args.strategy}"
    coulomb = ' --coulomb "Na:+1 Cl:-1 O:-0.834 H:0.417"' if args.coulomb else ""
    limits = min_distances(args.oracle or default_oracle())
    limits = ",".join(f"{k}:{v:g}" for k, v in limits.items()) if isinstance(limits, dict) else f"{limits:g}"
    return (f"kernelpot learn {run} --md {start_path} {oracle} {strategy} --schedule {schedule} --timestep "
            f"{args.timestep} --interval {args.interval} --segment {args.segment} --batch-size {args.batch_size} "
            f"--budget {args.budget} --n-initial {args.n_initial} --refit-every {args.refit_every} --seed {args.seed} "
            f"--min-distance '{limits}' --gap '{gap_string(cutoff=args.cutoff, n_sparse=args.n_sparse)}' "
            "--default-sigma "
            f"{','.join(map(str, SIGMA))} --e0 composition{coulomb}")


def schedule_arg(text):
    return [(float(t), int(n)) for t, n in (item.split(":") for item in text.split(","))]


def main(argv=None):
    parser = work_parser(__doc__)
    parser.add_argument("--strategy", default="variance", choices=["variance", "random", "committee", "distance"])
    parser.add_argument("--seed", type=int, default=0, help="MD, rattling and selection seed (the box is seed 0)")
    parser.add_argument("--budget", type=int, default=150,
                        help="oracle calls in all (the --n-initial frames and failed calls included)")
    parser.add_argument("--n-initial", type=int, default=4, help="labelled frames before the first fit")
    parser.add_argument("--batch-size", type=int, default=3, help="frames labelled per iteration")
    parser.add_argument("--schedule", type=schedule_arg, default=[(300.0, 1500), (360.0, 3000)],
                        help="temperature:steps stages of the model's MD")
    parser.add_argument("--timestep", type=float, default=1.0, help="fs (deuterium masses)")
    parser.add_argument("--interval", type=int, default=5, help="steps between snapshots")
    parser.add_argument("--segment", type=int, default=60, help="MD steps per iteration")
    parser.add_argument("--refit-every", type=int, default=8, help="full refit (new sparse points) every k iterations")
    parser.add_argument("--stop-score", type=float, help="stop when no snapshot's calibrated force σ exceeds this")
    parser.add_argument("--n-sparse", type=int, default=1000, help="sparse points of the SOAP term")
    parser.add_argument("--cutoff", type=float, default=3.0, help="SOAP cutoff, Å (the pair terms reach 4.5 Å)")
    parser.add_argument("--coulomb", action="store_true", help="fit on top of a fixed-charge Coulomb baseline")
    parser.add_argument("--n-water", type=int, default=32)
    parser.add_argument("--no-validation", action="store_true", help="do not evaluate on the test set as it runs")
    parser.add_argument("--print-cli", action="store_true", help="print the equivalent kernelpot learn command")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    from kernelpot.active import ActiveLearner, MDExplorer

    name = f"{args.strategy}{'_coulomb' if args.coulomb else ''}_seed{args.seed}"
    run = args.work / "learn" / name
    run.mkdir(parents=True, exist_ok=True)
    start = deuterate(nacl_water_box(args.n_water, seed=0))
    start_path = args.work / "learn" / "start.extxyz"
    if not start_path.is_file():
        import ase.io

        ase.io.write(start_path, start, format="extxyz")
    if args.print_cli:
        print(cli_command(args, start_path, args.work / "learn" / f"cli_{name}"))
        return None
    oracle_name = args.oracle or default_oracle()
    oracle = make_oracle(oracle_name)
    explorer = MDExplorer(start, schedule=args.schedule, timestep=args.timestep, friction=0.02,
                          interval=args.interval, segment=args.segment, min_pair_distance=min_distances(oracle_name),
                          random_state=args.seed)
    test = None if args.no_validation else read_test(args.work)
    template = gap_template(cutoff=args.cutoff, n_sparse=args.n_sparse, coulomb=args.coulomb, random_state=args.seed)
    started = time.perf_counter()
    learner = ActiveLearner(template, explorer, oracle, strategy=make_strategy(args.strategy, args.seed),
                            batch_size=args.batch_size, budget=args.budget, n_initial=args.n_initial,
                            validation=test, stop_score=args.stop_score, refit_every=args.refit_every,
                            checkpoint=run, random_state=args.seed, verbose=not args.quiet)
    learner.run()
    summary = {"run": str(run), "strategy": args.strategy, "seed": args.seed, "stop_reason": learner.stop_reason_,
               "oracle_calls": learner.oracle_calls_, "n_labelled": len(learner.labelled_),
               "n_failures": len(learner.failures_), "explosions": explorer.explosions,
               "md_steps": explorer.total_steps, "seconds_this_call": time.perf_counter() - started,
               "validation": learner.history_[-1].get("validation")}
    (run / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(json.dumps(summary, indent=1, default=str))
    return learner


if __name__ == "__main__":
    main()
