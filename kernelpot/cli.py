"""Command line: ``kernelpot fit | evaluate | md``.

``kernelpot fit`` speaks gap_fit's language (``--gap "{distance_2b ... :
soap ...}"``, ``--default-sigma E,F,V,H``) so that GAP users can move their
commands over.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace("{", "").replace("}", "").replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas; got {text!r}") from None


def _add_label_keys(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("label keys of the extxyz file")
    group.add_argument("--energy-key", default="energy", help="total energy, eV (default: energy)")
    group.add_argument("--forces-key", default="forces", help="forces, eV/Å (default: forces)")
    group.add_argument("--virial-key", default="virial", help="virial, eV (default: virial)")
    group.add_argument("--stress-key", default="stress", help="stress, used when no virial (default: stress)")
    group.add_argument("--stress-units", default="eV/A^3", choices=["eV/A^3", "GPa", "kbar"])
    group.add_argument("--stress-sign", default="ase", choices=["ase", "pressure"],
                       help="ase: tensile positive; pressure: compressive positive (VASP 'in kB')")
    group.add_argument("--config-type-key", default="config_type")


def _read(path, args, required):
    from .io import read_labelled

    return read_labelled(
        path, energy_key=args.energy_key, forces_key=args.forces_key, virial_key=args.virial_key,
        stress_key=args.stress_key, config_type_key=args.config_type_key, stress_units=args.stress_units,
        stress_sign=args.stress_sign, required=required, on_missing=args.on_missing,
    )


def _report_skips(data, quiet):
    if data.skipped and not quiet:
        print(f"skipped {len(data.skipped)} structure(s): "
              + "; ".join(f"{i}: {why}" for i, why in list(data.skipped.items())[:10]), file=sys.stderr)


def _fit(args) -> int:
    from .models.sparse_gpr import SparseGPR
    from .potential.recipe import DEFAULT_GAP, terms_from_gap_string
    from .potential.serialization import save_model

    data = _read(args.train, args, required=("energy",))
    _report_skips(data, args.quiet)
    species = sorted({int(z) for a in data.atoms for z in a.numbers})
    terms = terms_from_gap_string(args.gap or DEFAULT_GAP, species)
    sigma = args.default_sigma[:3]
    if len(sigma) != 3:
        raise SystemExit("--default-sigma needs at least 3 numbers: energy (eV/atom), force (eV/Å), virial (eV/atom)")
    model = SparseGPR(terms, default_sigma=tuple(sigma), e0=args.e0, max_block_memory=args.max_block_memory,
                      max_memory=args.max_memory, n_jobs=args.n_jobs, scheduler=args.scheduler,
                      random_state=args.seed, verbose=not args.quiet)
    start = time.perf_counter()
    model.fit(data.atoms, energies=data.energies, forces=data.forces, virials=data.virials,
              config_types=data.config_types)
    elapsed = time.perf_counter() - start
    save_model(model, args.output, metadata={"training_file": str(args.train), "gap": args.gap or DEFAULT_GAP,
                                             "n_structures": len(data.atoms), "fit_seconds": elapsed})
    if not args.quiet:
        print(f"fitted {len(data.atoms)} structures in {elapsed:.1f} s; wrote {args.output}")
    return 0


def _evaluate(args) -> int:
    from .potential.metrics import error_table
    from .potential.serialization import load_model

    model = load_model(args.model)
    data = _read(args.test, args, required=("energy",))
    _report_skips(data, args.quiet)
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


def _md(args) -> int:
    from ase import units
    from ase.io import read
    from ase.io.trajectory import Trajectory
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary
    from ase.md.verlet import VelocityVerlet

    from ._ase_compat import thermalize
    from .parallel.progress import progress_bar
    from .potential.calculator import GAPCalculator

    atoms = read(args.start, index=args.frame)
    atoms.calc = GAPCalculator(args.model, uncertainty=False)
    thermalize(atoms, args.temperature, np.random.default_rng(args.seed))
    Stationary(atoms)
    if args.thermostat == "nve":
        dynamics = VelocityVerlet(atoms, timestep=args.timestep * units.fs)
    else:
        dynamics = Langevin(atoms, timestep=args.timestep * units.fs, temperature_K=args.temperature,
                            friction=args.friction / units.fs, rng=np.random.default_rng(args.seed))
    trajectory = Trajectory(args.trajectory, "w", atoms) if args.trajectory else None
    if trajectory is not None:
        dynamics.attach(trajectory.write, interval=args.interval)
    log = []

    def record():
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        log.append((dynamics.nsteps, epot, ekin, ekin / (1.5 * units.kB * len(atoms))))
        if not args.quiet:
            print(f"step {dynamics.nsteps:>7}  Epot {epot:.5f} eV  Etot {epot + ekin:.5f} eV  "
                  f"T {log[-1][3]:.1f} K", flush=True)

    dynamics.attach(record, interval=args.interval)
    bar = progress_bar(args.steps, desc="MD steps", enabled=not args.quiet)

    def advance():  # observers also run once before the first step
        if dynamics.nsteps > 0:
            bar.update(1)

    dynamics.attach(advance, interval=1)
    dynamics.run(args.steps)
    bar.close()
    if trajectory is not None:
        trajectory.close()
    steps, epot, ekin, _ = np.array(log).T
    total = (epot + ekin) / len(atoms)
    duration_ps = (steps[-1] - steps[0]) * args.timestep / 1000.0 if len(steps) > 1 else 0.0
    if duration_ps > 0:
        drift = np.polyfit(steps * args.timestep / 1000.0, total, 1)[0]
        print(f"total-energy drift {drift * 1e3:.3f} meV/atom/ps over {duration_ps:.2f} ps")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kernelpot", description="Kernel-based atomistic machine learning.")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="fit a GAP-style potential to an extxyz file")
    fit.add_argument("train", type=Path, help="extxyz file with energies (eV) and forces (eV/Å)")
    fit.add_argument("-o", "--output", type=Path, default=Path("model.kpot"))
    fit.add_argument("--gap", help="gap_fit descriptor string, e.g. '{distance_2b cutoff=5.0 ... : soap ...}'")
    fit.add_argument("--default-sigma", type=_floats, default=[0.002, 0.1, 0.05, 0.0],
                     help="energy (eV/atom), force (eV/Å), virial (eV/atom)[, hessian: ignored]")
    fit.add_argument("--e0", default="average", help="per-species reference energies: average | isolated | a number")
    fit.add_argument("--max-block-memory", type=float, default=512.0,
                     help="MiB for one block of the fit (used without --max-memory)")
    fit.add_argument("--max-memory", default=None,
                     help="memory budget of the whole fit, e.g. 4GB or 3500MiB: chooses the block size; "
                          "the estimated peak is printed before the fit")
    fit.add_argument("--n-jobs", type=int, default=None,
                     help="local processes building the fit's blocks (default: this process, with threads)")
    fit.add_argument("--scheduler", default=None,
                     help="Dask scheduler address tcp://HOST:PORT: build the blocks on its workers "
                          "(pip install 'kernelpot[distributed]')")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--on-missing", choices=["raise", "skip"], default="raise",
                     help="structures lacking a label: stop with an error, or skip and count them")
    fit.add_argument("--quiet", action="store_true")
    _add_label_keys(fit)
    fit.set_defaults(handler=_fit)

    evaluate = sub.add_parser("evaluate", help="errors of a model on a labelled extxyz file")
    evaluate.add_argument("model", type=Path)
    evaluate.add_argument("test", type=Path)
    evaluate.add_argument("--json", action="store_true", help="print the errors as JSON")
    evaluate.add_argument("--on-missing", choices=["raise", "skip"], default="raise")
    evaluate.add_argument("--quiet", action="store_true")
    _add_label_keys(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    md = sub.add_parser("md", help="molecular dynamics with a fitted model")
    md.add_argument("model", type=Path)
    md.add_argument("start", type=Path, help="structure file (any ASE format)")
    md.add_argument("--frame", default="0", help="which frame of the start file (default: 0)")
    md.add_argument("--temperature", type=float, default=300.0, help="initial/thermostat temperature, K")
    md.add_argument("--steps", type=int, default=1000)
    md.add_argument("--timestep", type=float, default=1.0, help="fs")
    md.add_argument("--thermostat", choices=["nve", "langevin"], default="nve")
    md.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    md.add_argument("--trajectory", type=Path, help="write an ASE .traj file")
    md.add_argument("--interval", type=int, default=10, help="steps between log lines and frames")
    md.add_argument("--seed", type=int, default=0)
    md.add_argument("--quiet", action="store_true")
    md.set_defaults(handler=_md)

    from .bench import runner as bench_runner  # light: imports peers only when run

    bench = sub.add_parser("bench", help="benchmark kernelpot against every installed peer code; writes RESULTS.md")
    bench_runner.add_arguments(bench)
    bench.set_defaults(handler=bench_runner.run)

    from .active.cli import add_learn_parser  # light: the loop is imported only when run

    add_learn_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "e0", None) is not None and args.command == "fit":
        try:
            args.e0 = float(args.e0)
        except ValueError:
            pass
    try:
        return args.handler(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as error:
        print(f"kernelpot {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
