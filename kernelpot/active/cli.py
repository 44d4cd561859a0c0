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

__all__ = ["add_learn_parser"]


def _schedule(text):
    try:
        stages = [(float(t), int(n)) for t, n in (item.split(":") for item in text.split(","))]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected temperature:steps pairs such as 300:1000,900:1000; "
                                         f"got {text!r}") from None
    return stages


def make_oracle(spec, kwargs_json):
    """An ASE calculator from ``"emt"`` or ``"module:Class"`` (called with the JSON keyword arguments)."""
    kwargs = json.loads(kwargs_json) if kwargs_json else {}
    if spec == "emt":
        from ase.calculators.emt import EMT

        return EMT(**kwargs)
    if ":" not in spec:
        raise ValueError(f"--oracle must be 'stored', 'emt' or 'module:Class'; got {spec!r}")
    module, name = spec.split(":", 1)
    return getattr(importlib.import_module(module), name)(**kwargs)


def _read_plain(path):
    from ase.io import read

    return list(read(path, index=":"))


def _learn(args) -> int:
    from ..models.sparse_gpr import SparseGPR
    from ..potential.recipe import DEFAULT_GAP, terms_from_gap_string
    from .explorers import MDExplorer, PoolExplorer
    from .loop import ActiveLearner
    from .oracles import StoredLabels

    if (args.pool is None) == (args.md is None):
        raise ValueError("give exactly one of --pool FILE and --md FILE")
    if args.pool is not None:
        if args.oracle == "stored":
            from ..io import read_labelled

            data = read_labelled(args.pool, required=("energy", "forces"))
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
                              random_state=args.seed)
    validation = None
    if args.validation is not None:
        from ..io import read_labelled

        validation = read_labelled(args.validation, required=("energy", "forces"))
    species = sorted({int(z) for a in structures for z in a.numbers})
    periodic = bool(all(a.pbc.all() for a in structures))
    terms = terms_from_gap_string(args.gap or DEFAULT_GAP, species, periodic=periodic)
    try:
        e0 = float(args.e0)
    except ValueError:
        e0 = args.e0
    model = SparseGPR(terms, default_sigma=tuple(args.default_sigma[:3]), e0=e0, random_state=args.seed)
    learner = ActiveLearner(model, explorer, oracle, strategy=args.strategy, batch_size=args.batch_size,
                            budget=args.budget, n_initial=args.n_initial, validation=validation,
                            target_error=args.target_error, target_metric=args.target_metric,
                            refit_every=args.refit_every, checkpoint=args.checkpoint, random_state=args.seed,
                            verbose=not args.quiet)
    learner.run()
    last = learner.history_[-1]
    summary = {"stop_reason": learner.stop_reason_, "n_labelled": len(learner.labelled_),
               "oracle_calls": learner.oracle_calls_, "n_failures": len(learner.failures_),
               "validation": last.get("validation"), "checkpoint": str(args.checkpoint)}
    print(json.dumps(summary, indent=2))
    return 0


def add_learn_parser(sub) -> argparse.ArgumentParser:
    """Add the ``learn`` subcommand to the ``kernelpot`` subparsers ``sub``."""
    from .strategies import STRATEGIES

    learn = sub.add_parser("learn", help="active learning: explore, select, label, refit (resumable)")
    learn.add_argument("checkpoint", type=Path, help="checkpoint folder (created; resumed if it exists)")
    source = learn.add_argument_group("explorer (one of)")
    source.add_argument("--pool", type=Path, help="extxyz pool of candidate structures")
    source.add_argument("--md", type=Path, help="start structure for on-the-fly MD (any ASE format)")
    learn.add_argument("--oracle", default="stored",
                       help="stored (labels in the pool file) | emt | module:Class (an ASE calculator)")
    learn.add_argument("--oracle-kwargs", default="", help="JSON keyword arguments of the oracle class")
    learn.add_argument("--strategy", default="variance", choices=sorted(STRATEGIES))
    learn.add_argument("--batch-size", type=int, default=1)
    learn.add_argument("--budget", type=int, default=100, help="oracle calls of the loop")
    learn.add_argument("--n-initial", type=int, default=2, help="structures labelled before the first fit")
    learn.add_argument("--validation", type=Path, help="labelled extxyz for the error after each iteration")
    learn.add_argument("--target-error", type=float, help="stop at this validation error (eV/Å or eV/atom)")
    learn.add_argument("--target-metric", default="forces_rmse",
                       choices=["forces_rmse", "forces_mae", "energy_rmse", "energy_mae"])
    learn.add_argument("--refit-every", type=int, help="full refit with new sparse points every k iterations")
    learn.add_argument("--max-candidates", type=int, help="pool: score at most this many per iteration")
    learn.add_argument("--schedule", type=_schedule, default=[(300.0, 1000), (900.0, 1000)],
                       help="md: temperature:steps stages, e.g. 300:1000,900:1000")
    learn.add_argument("--timestep", type=float, default=2.0, help="md: fs")
    learn.add_argument("--interval", type=int, default=10, help="md: steps between scored snapshots")
    learn.add_argument("--segment", type=int, default=100, help="md without threshold: steps per iteration")
    learn.add_argument("--threshold", type=float, help="md: label when the strategy score exceeds this")
    learn.add_argument("--gap", help="gap_fit descriptor string (default: kernelpot's DEFAULT_GAP)")
    learn.add_argument("--default-sigma", type=lambda t: [float(v) for v in t.split(",")],
                       default=[0.002, 0.1, 0.05], help="energy (eV/atom), force (eV/Å), virial (eV/atom)")
    learn.add_argument("--e0", default="average", help="average | isolated | a number (eV)")
    learn.add_argument("--seed", type=int, default=0)
    learn.add_argument("--quiet", action="store_true")
    learn.set_defaults(handler=_learn)
    return learn
