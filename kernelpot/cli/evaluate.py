"""``kernelpot evaluate``: errors of a model on a labelled extxyz file, by config type."""

from __future__ import annotations

import json
from pathlib import Path

from .options import add_label_keys, add_quiet, read_labels, report_skips

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    evaluate = sub.add_parser("evaluate", help="errors of a model on a labelled extxyz file")
    evaluate.add_argument("model", type=Path)
    evaluate.add_argument("test", type=Path)
    evaluate.add_argument("--json", action="store_true", help="print the errors as JSON")
    add_quiet(evaluate)
    add_label_keys(evaluate)
    evaluate.set_defaults(handler=run)


def run(args) -> int:
    from ..potential.metrics import error_table
    from ..potential.serialization import load_model

    model = load_model(args.model)
    data = read_labels(args.test, args, required=("energy",))
    report_skips(data, args.quiet)
    table = error_table(model, data, verbose=not args.quiet)
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        _print_table(table)
    return 0


def _print_table(table: dict) -> None:
    rows = [("all", table)] + list(table["by_config_type"].items())
    header = f"{'config_type':<16}{'n':>5}{'E RMSE':>12}{'E MAE':>12}{'F RMSE':>12}{'F MAE':>12}"
    print(header + "\n" + "-" * len(header))
    for name, row in rows:
        def fmt(key, scale):
            value = row.get(key)
            return f"{value * scale:>12.2f}" if value is not None else f"{'-':>12}"
        print(f"{name:<16}{row['n_structures']:>5}{fmt('energy_rmse', 1e3)}{fmt('energy_mae', 1e3)}"
              f"{fmt('forces_rmse', 1e3)}{fmt('forces_mae', 1e3)}")
    print("energies in meV/atom, forces in meV/Å")
    if table.get("stress_rmse") is not None:
        print(f"stress RMSE {table['stress_rmse'] * 160.21766:.3f} GPa")
