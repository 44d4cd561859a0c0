"""``kernelpot fit``: fit a GAP-style potential to an extxyz file and write a ``.kpot`` model.

Speaks gap_fit's language (``--gap "{distance_2b ... : soap ...}"``,
``--default-sigma E,F,V,H``) so that GAP users can move their commands over.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

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

__all__ = ["add_parser", "run", "fit_and_save"]


def add_parser(sub) -> None:
    fit = sub.add_parser("fit", help="fit a GAP-style potential to an extxyz file", epilog=recipe_help,
                         description="Fit a GAP-style sparse GPR potential to the energies, forces and stresses\n"
                                     "(virials) of an extxyz file and write it as a .kpot model.")
    fit.add_argument("train", type=Path, help="extxyz file with energies (eV), forces (eV/Å) and, if any, stresses")
    fit.add_argument("-o", "--output", type=Path, default=Path("model.kpot"),
                     help="model file to write; checked before the fit starts")
    add_model_options(fit)
    add_auto_options(fit)
    add_quiet(fit)
    add_label_keys(fit)
    fit.set_defaults(handler=run)


def run(args) -> int:
    from ..potential.recipe import DEFAULT_GAP

    # Refused now, not after an hour of fitting: an input, a folder, a missing folder, a file that is no model.
    check_output(args.output, inputs=[args.train], model=True)
    data = read_labels(args.train, args, required=("energy",))
    report_skips(data, args.quiet)
    model = make_model(args, data.atoms)
    fit_and_save(model, data, args.output, {"training_file": str(args.train), "gap": args.gap or DEFAULT_GAP},
                 quiet=args.quiet)
    return 0


def fit_and_save(model, data, output, metadata: dict, *, quiet: bool) -> None:
    """Fit ``model`` to the labelled structures ``data`` and write it to ``output`` (``fit`` and ``gap_fit``)."""
    from ..exceptions import ForceOutlierWarning
    from ..models.gap.labels import warn_force_outliers
    from ..potential.serialization import save_model

    # Said here with the frames' places in the file; the fit would name them by their index among those kept.
    source = metadata.get("training_file", "training file")
    warn_force_outliers(data.forces, data.atoms, names=[f"{source} frame {i}" for i in data.indices])
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ForceOutlierWarning)
        model.fit(data.atoms, energies=data.energies, forces=data.forces, virials=data.virials,
                  config_types=data.config_types)
    elapsed = time.perf_counter() - start
    save_model(model, output, metadata={**metadata, "n_structures": len(data.atoms), "fit_seconds": elapsed})
    if not quiet:
        print(f"fitted {len(data.atoms)} structures in {elapsed:.1f} s; wrote {output}")
