"""``kernelpot learn``: the active-learning loop from the command line.

Pool-based, labels stored in the pool file and revealed on request::

    kernelpot learn run1 --pool pool.extxyz --validation test.extxyz --strategy variance --budget 200

On the fly, MD with the current model, EMT (or any calculator) as oracle::

    kernelpot learn run2 --md start.xyz --oracle emt --schedule 300:1000,900:1000 --threshold 0.05

Running the same command again resumes from the checkpoint folder (the
first argument) without relabelling anything.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from .options import (
    add_label_keys,
    add_model_options,
    add_quiet,
    check_output,
    make_model,
    min_distance_value,
    positive_float,
    positive_int,
    read_labels,
    recipe_help,
    report_skips,
)

__all__ = ["add_parser", "run", "make_oracle"]


def _schedule(text):
    try:
        stages = [(float(t), int(n)) for t, n in (item.split(":") for item in text.split(","))]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected temperature:steps pairs such as 300:1000,900:1000; "
                                         f"got {text!r}") from None
    return stages


def _refit_every(text):
    """``--refit-every``: auto, never, or an integer >= 1."""
    if text in ("auto", "never"):
        return {"auto": "auto", "never": None}[text]
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be auto, never or an integer >= 1; got {text!r}") from None


def make_oracle(spec, kwargs_json):
    """An ASE calculator from ``"emt"`` or ``"module:Class"`` (called with the JSON keyword arguments)."""
    try:
        kwargs = json.loads(kwargs_json) if kwargs_json else {}
    except ValueError as error:
        raise ValueError(f"--oracle-kwargs must be a JSON object; got {kwargs_json!r} ({error})") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--oracle-kwargs must be a JSON object; got {kwargs_json!r}")
    if spec == "emt":
        from ase.calculators.emt import EMT

        cls = EMT
    elif ":" in spec:
        module, name = spec.split(":", 1)
        cls = getattr(importlib.import_module(module), name, None)
        if cls is None:
            raise ValueError(f"--oracle {spec!r}: module {module} has no {name!r}")
    else:
        raise ValueError(f"--oracle must be 'stored', 'emt' or 'module:Class'; got {spec!r}")
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ValueError(f"--oracle {spec!r} does not take --oracle-kwargs {kwargs_json!r}: {error}") from None


def _read_plain(path):
    from ..io import read_structures

    return read_structures(path, index=":")


def run(args) -> int:
    from ..active.explorers import MDExplorer, PoolExplorer
    from ..active.loop import ActiveLearner
    from ..active.oracles import StoredLabels

    if (args.pool is None) == (args.md is None):
        raise ValueError("give exactly one of --pool FILE and --md FILE")
    check_output(args.checkpoint, inputs=[args.pool, args.md, args.validation], option="checkpoint folder",
                 folder=True)
    if args.pool is not None:
        if args.oracle == "stored":
            data = read_labels(args.pool, args, required=("energy", "forces"))
            report_skips(data, args.quiet)
            structures = data.atoms
            oracle = StoredLabels(data.atoms, data.energies, data.forces)
        else:
            structures = _read_plain(args.pool)
            oracle = make_oracle(args.oracle, args.oracle_kwargs)
        explorer = PoolExplorer(structures, max_candidates=args.max_candidates)
    else:
        if args.oracle == "stored":
            raise ValueError("--md needs a real oracle: --oracle emt or --oracle module:Class")
        structures = _read_plain(args.md)[:1]
        oracle = make_oracle(args.oracle, args.oracle_kwargs)
        explorer = MDExplorer(structures[0], schedule=args.schedule, timestep=args.timestep,
                              interval=args.interval, threshold=args.threshold, segment=args.segment,
                              max_score=args.max_score, min_pair_distance=args.min_distance,
                              random_state=args.seed)
    validation = None
    if args.validation is not None:
        validation = read_labels(args.validation, args, required=("energy", "forces"))
        report_skips(validation, args.quiet)
    model = make_model(args, structures)
    model.set_params(verbose=False)  # the loop reports progress itself
    strategy = args.strategy
    if args.calibrate:
        if args.strategy != "variance":
            raise ValueError(f"--calibrate calibrates the force σ of --strategy variance; got --strategy {strategy}")
        from ..active.strategies import PredictiveVariance

        strategy = PredictiveVariance(quantity="forces", calibrate=True, random_state=args.seed)
    learner = ActiveLearner(model, explorer, oracle, strategy=strategy, batch_size=args.batch_size,
                            budget=args.budget, n_initial=args.n_initial, validation=validation,
                            target_error=args.target_error, target_metric=args.target_metric,
                            stop_score=args.stop_score,
                            refit_every=args.refit_every, checkpoint=args.checkpoint, random_state=args.seed,
                            verbose=not args.quiet)
    learner.run()
    last = learner.history_[-1]
    summary = {"stop_reason": learner.stop_reason_, "n_labelled": len(learner.labelled_),
               "oracle_calls": learner.oracle_calls_, "n_failures": len(learner.failures_),
               "validation": last.get("validation"), "checkpoint": str(args.checkpoint)}
    print(json.dumps(summary, indent=2))
    return 0


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``learn`` subcommand to the ``kernelpot`` subparsers ``sub``."""
    from ..active.strategies import STRATEGIES

    learn = sub.add_parser("learn", help="active learning: explore, select, label, refit (resumable)",
                           epilog=recipe_help)
    learn.add_argument("checkpoint", type=Path, help="checkpoint folder (created; resumed if it exists)")
    source = learn.add_argument_group("explorer (one of)")
    source.add_argument("--pool", type=Path, help="extxyz pool of candidate structures")
    source.add_argument("--md", type=Path, help="start structure for on-the-fly MD (any ASE format)")
    learn.add_argument("--oracle", default="stored",
                       help="stored (labels in the pool file) | emt | module:Class (an ASE calculator)")
    learn.add_argument("--oracle-kwargs", default="",
                       help="JSON keyword arguments of the oracle class (default: none)")
    learn.add_argument("--strategy", default="variance", choices=sorted(STRATEGIES),
                       help="how candidates are scored and picked")
    learn.add_argument("--batch-size", type=positive_int, default=1, help="structures labelled per iteration")
    learn.add_argument("--budget", type=positive_int, default=100,
                       help="oracle calls, all counted: the initial labels, failures and calls a crash cut short")
    learn.add_argument("--n-initial", type=positive_int, default=2,
                       help="structures labelled before the first fit")
    learn.add_argument("--validation", type=Path, help="labelled extxyz for the error after each iteration")
    learn.add_argument("--target-error", type=positive_float,
                       help="stop at this validation error (eV/Å or eV/atom)")
    learn.add_argument("--target-metric", default="forces_rmse",
                       choices=["forces_rmse", "forces_mae", "energy_rmse", "energy_mae"],
                       help="validation error compared with --target-error")
    learn.add_argument("--stop-score", type=float,
                       help="stop when no candidate scores above this (strategy units, e.g. eV/Å of force σ)")
    learn.add_argument("--calibrate", action="store_true",
                       help="variance strategy: calibrate the force σ online on the loop's own labels")
    learn.add_argument("--refit-every", type=_refit_every, default="auto",
                       help="full refit with new sparse points: auto (when the labelled set has doubled while a "
                            "term has fewer sparse points than asked for), never, or every k iterations")
    learn.add_argument("--max-candidates", type=positive_int, help="pool: score at most this many per iteration")
    learn.add_argument("--schedule", type=_schedule, default=[(300.0, 1000), (900.0, 1000)],
                       help="md: temperature:steps stages (default: 300:1000,900:1000)")
    learn.add_argument("--timestep", type=positive_float, default=2.0, help="md: fs")
    learn.add_argument("--interval", type=positive_int, default=10, help="md: steps between scored snapshots")
    learn.add_argument("--segment", type=positive_int, default=100,
                       help="md without threshold: steps per iteration")
    learn.add_argument("--threshold", type=float, help="md: label when the strategy score exceeds this")
    learn.add_argument("--max-score", type=float,
                       help="md: a snapshot scoring above this is an explosion (σ far beyond the calibrated range)")
    learn.add_argument("--min-distance", type=min_distance_value, default=0.7,
                       help="md: Å; a snapshot with two atoms closer than this is an explosion (never labelled). Or "
                            "a limit per species pair, e.g. 'O-O:2.0,H-H:1.0,*:0.7' ('*': the pairs not named)")
    add_model_options(learn)
    add_quiet(learn)
    add_label_keys(learn)
    learn.set_defaults(handler=run)
    return learn
