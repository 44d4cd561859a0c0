"""``kernelpot learning_curve``: test errors of one recipe at several training-set sizes, as a log–log PNG."""

from __future__ import annotations

import json
from pathlib import Path

from ..utils.files import atomic_write
from .options import (
    add_auto_options,
    add_label_keys,
    add_model_options,
    add_quiet,
    check_output,
    make_model,
    read_labels,
    recipe_help,
    report_skips,
)

__all__ = ["add_parser", "run"]


def _sizes(text: str) -> list[int]:
    import argparse

    try:
        sizes = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        sizes = []
    if not sizes or any(n < 1 for n in sizes) or any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise argparse.ArgumentTypeError(f"expected increasing integers >= 1 separated by commas; got {text!r}")
    return sizes


def add_parser(sub) -> None:
    curve = sub.add_parser(
        "learning_curve", help="fit at several training-set sizes and plot the test errors (log-log PNG)",
        epilog=recipe_help,
        description="Fit the same recipe (the model options below, --auto included) on nested subsets of the\n"
                    "training file and measure each fit on the test file (or on a held-out share of the\n"
                    "training file): a table, a log-log PNG of force and energy MAE against training size and,\n"
                    "with --json, the numbers.")
    curve.add_argument("train", type=Path, help="extxyz file with energies (eV), forces (eV/Å) and, if any, stresses")
    curve.add_argument("--sizes", type=_sizes, required=True, help="training-set sizes, e.g. 100,200,500,1000")
    curve.add_argument("--test", type=Path, default=None,
                       help="labelled test file (default: --holdout-fraction of the training file, never fitted)")
    curve.add_argument("--holdout-fraction", type=float, default=0.2,
                       help="without --test: share of the training file held out as the test set (seeded by --seed)")
    curve.add_argument("-o", "--output", type=Path, default=Path("learning_curve.png"), help="PNG to write")
    curve.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    add_model_options(curve)
    add_auto_options(curve)
    add_quiet(curve)
    add_label_keys(curve)
    curve.set_defaults(handler=run)


def run(args) -> int:
    from ..potential.learning_curve import learning_curve, plot_learning_curve, split_holdout

    inputs = [args.train, args.test]
    check_output(args.output, inputs=inputs)
    if args.json is not None:
        check_output(args.json, inputs=inputs, option="--json")
    data = read_labels(args.train, args, required=("energy",))
    report_skips(data, args.quiet)
    if args.test is None:
        train, test = split_holdout(data, args.holdout_fraction, seed=args.seed)
    else:
        train, test = data, read_labels(args.test, args, required=("energy",))
    if args.sizes[-1] > len(train):
        raise ValueError(f"--sizes: the largest size {args.sizes[-1]} exceeds the {len(train)} training structures"
                         + ("" if args.test is not None else " left after the hold-out"))
    quiet = args.quiet
    args.quiet = True  # the per-size fits stay silent; one line per size is printed instead
    rows = learning_curve(lambda structures: make_model(args, structures), train, test, args.sizes, seed=args.seed,
                          verbose=not quiet)
    plot_learning_curve(rows, args.output, title=args.train.name)
    if args.json is not None:
        atomic_write(args.json, json.dumps(rows, indent=1).encode())
    if not quiet:
        print(f"{'n_train':>8}{'sparse':>8}{'F MAE meV/Å':>13}{'E MAE meV/atom':>16}{'CPU s':>8}")
        for row in rows:
            forces = "-" if row["forces_mae"] is None else f"{1e3 * row['forces_mae']:.2f}"
            print(f"{row['n_train']:>8}{row['n_sparse']:>8}{forces:>13}{1e3 * row['energy_mae']:>16.3f}"
                  f"{row['fit_seconds']:>8.0f}")
        print(f"wrote {args.output}")
    return 0
