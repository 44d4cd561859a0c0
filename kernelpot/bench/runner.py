"""``kernelpot bench``: run every benchmark case whose peer is installed and write RESULTS.md."""

from __future__ import annotations

import argparse
import time
import traceback
from pathlib import Path

from . import descriptor_cases, electrostatics_cases, gap_cases, learning_cases, predict_cases, sigma_cases
from .results import PeerUnavailable, Skip, markdown, update_section, write_atomically

# name -> (peer modules that must import, function, what it measures)
CASES = {
    "soap": (("dscribe",), descriptor_cases.soap_vs_dscribe, "SOAP features and gradients vs dscribe"),
    "mbtr": (("dscribe",), descriptor_cases.mbtr_vs_dscribe, "MBTR vs dscribe"),
    "fchl19": (("qmllib",), descriptor_cases.fchl19_vs_qmllib, "FCHL19 and its local kernel vs qmllib"),
    "selection": (("skmatter",), learning_cases.selection_vs_skmatter, "FPS and CUR vs skmatter"),
    "gpr": (("sklearn",), learning_cases.gpr_vs_sklearn, "GPR vs scikit-learn"),
    "gap": (("quippy",), gap_cases.gap_vs_gap_fit, "GAP fit vs QUIP gap_fit"),
    "gap_xml": (("quippy",), gap_cases.gap_xml_prediction, "GAP XML model predicted by quippy and by kernelpot"),
    "electrostatics": (("torchpme", "vesin"), electrostatics_cases.pme_vs_torchpme,
                       "smooth PME energy, forces and stress vs torch-pme"),
    "predict": (("quippy",), predict_cases.si_forces_vs_quippy, "GAP forces (and their σ) vs quippy, Si"),
    "nacl": ((), predict_cases.nacl_forces, "GAP forces (and their σ), NaCl-water"),
    "si_sigma": ((), sigma_cases.si_subset_sigma, "approximate force σ vs the exact DTC σ, Si (per atom, per frame)"),
    "nacl_sigma": ((), sigma_cases.nacl_subset_sigma,
                   "approximate force σ vs the exact DTC σ, NaCl-water (per atom, per frame)"),
    "featomic": (("featomic",), predict_cases.soap_vs_featomic, "SOAP features and gradients vs featomic"),
    "neighbours": (("vesin",), predict_cases.neighbours_vs_vesin, "neighbour lists vs vesin and ASE"),
    "startup": ((), predict_cases.startup, "start-up of kernelpot evaluate"),
}


DEFAULT_OUTPUT = Path("benchmarks") / "RESULTS.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small inputs: the whole run takes a few minutes")
    parser.add_argument("--only", type=lambda s: s.split(","), default=list(CASES),
                        help=f"comma-separated cases among {','.join(CASES)} (default: all)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="Markdown report to write (default: benchmarks/RESULTS.md)")
    parser.add_argument("--update", action="store_true",
                        help="keep the existing report and add (or replace) a section for the cases run, with "
                             "its own machine, load and versions, instead of rewriting the whole file")


def _peer_missing(modules) -> str | None:
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as error:
            return f"{name} is not installed ({error})"
    return None


def run(args) -> int:
    unknown = sorted(set(args.only) - set(CASES))
    if unknown:
        raise ValueError(f"unknown benchmark case(s) {unknown}; choose among {list(CASES)}")
    if args.output != DEFAULT_OUTPUT or args.output.parent.is_dir():  # the default's folder is created
        from ..cli.options import check_output

        check_output(args.output, option="--output")  # before the cases run, not after
    start = time.perf_counter()
    rows, skips = [], []
    for name in args.only:
        modules, function, title = CASES[name]
        missing = _peer_missing(modules)
        if missing:
            skips.append(Skip(title, missing))
            print(f"[skip] {title}: {missing}", flush=True)
            continue
        print(f"[run ] {title} ...", flush=True)
        case_start = time.perf_counter()
        try:
            new = function(args.quick)
        except PeerUnavailable as error:
            skips.append(Skip(title, str(error)))
            print(f"[skip] {title}: {error}", flush=True)
            continue
        except Exception as error:  # a peer crashing must not lose the other results
            reason = f"failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            skips.append(Skip(title, reason))
            print(f"[fail] {title}: {reason}\n{traceback.format_exc(limit=2)}", flush=True)
            continue
        for row in new:
            print(f"       {row.task} | {row.metric}: kernelpot {row.kernelpot:.4g} {row.unit}, "
                  f"{row.peer} {row.peer_value:.4g}, ratio {row.ratio:.3g} ({row.better} is better) {row.note}",
                  flush=True)
        print(f"       ({time.perf_counter() - case_start:.0f} s)", flush=True)
        rows += new
    seconds = time.perf_counter() - start
    if getattr(args, "update", False) and args.output.exists():
        text = update_section(args.output.read_text(), args.only, rows, skips, quick=args.quick, seconds=seconds)
    else:
        text = markdown(rows, skips, quick=args.quick, seconds=seconds)
    write_atomically(args.output, text)
    print(f"wrote {args.output}")
    return 0
