"""``kernelpot evaluate``: errors of a model on a labelled extxyz file, by config type."""

from __future__ import annotations

import json
from pathlib import Path

from .options import add_label_keys, add_quiet, read_labels, report_skips

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    evaluate = sub.add_parser("evaluate", help="errors of a model on a labelled extxyz file")
    evaluate.add_argument("model", type=Path, help="model file: .kpot (kernelpot fit) or a GAP .xml")
    evaluate.add_argument("test", type=Path, help="extxyz file with reference energies (and forces, stresses)")
    evaluate.add_argument("--json", action="store_true", help="print the errors as JSON")
    add_quiet(evaluate)
    add_label_keys(evaluate)
    evaluate.set_defaults(handler=run)


def run(args) -> int:
    from ..potential.gap_xml import load_potential
    from ..potential.metrics import UNITS, error_table

    model = load_potential(args.model)
    data = read_labels(args.test, args, required=("energy",))
    report_skips(data, args.quiet)
    table = error_table(model, data, verbose=not args.quiet)
    if args.json:
        print(json.dumps({**table, "units": UNITS}, indent=2))
    else:
        _print_table(table)
    return 0


# Columns of the text report: (table key, header, unit, scale from the table's eV-based unit).
_COLUMNS = (("energy_rmse", "E RMSE", "meV/atom", 1e3), ("energy_mae", "E MAE", "meV/atom", 1e3),
            ("energy_per_structure_rmse", "E RMSE", "meV/struct", 1e3),
            ("energy_per_structure_mae", "E MAE", "meV/struct", 1e3),
            ("forces_rmse", "F RMSE", "meV/Å", 1e3), ("forces_mae", "F MAE", "meV/Å", 1e3),
            ("stress_rmse", "S RMSE", "GPa", 160.21766208))


def _print_table(table: dict) -> None:
    """Errors overall and per config type, energies per atom and per structure."""
    rows = [("all", table)] + list(table["by_config_type"].items())
    width = 12
    print(f"{'config_type':<16}{'n':>5}" + "".join(f"{header:>{width}}" for _, header, _, _ in _COLUMNS))
    print(f"{'':<21}" + "".join(f"{unit:>{width}}" for _, _, unit, _ in _COLUMNS))
    print("-" * (21 + width * len(_COLUMNS)))
    for name, row in rows:
        cells = "".join(f"{row[key] * scale:>{width}.2f}" if row.get(key) is not None else f"{'-':>{width}}"
                        for key, _, _, scale in _COLUMNS)
        print(f"{name:<16}{row['n_structures']:>5}{cells}")
    print("energy errors per atom and per structure; force and stress errors per Cartesian component "
          "(stress: all 9 of the 3x3 tensor)")
