"""kernelpot against QUIP's gap_fit on the mlearn benchmark (Zuo et al., J. Phys. Chem. A 124, 731 (2020)).

Both codes fit the same gap_fit descriptor string (distance_2b + SOAP, 1000 CUR sparse points) to the
same training file, energies and forces, sigmas 0.002 eV/atom and 0.1 eV/Å, and predict the same test
file. Each fit runs in its own subprocess so that wall time, CPU time (user + system, all threads, from
the children's rusage) and peak memory (max RSS, from wait4) are measured the same way. Prints test
RMSEs, fit times and peak memories, and the kernelpot/gap_fit ratios. On a shared machine compare CPU
times: wall times then depend on the other jobs.

Needs quippy-ase (``pip install -e ".[peers]"``: gap_fit on PATH) and ../shared/data.

    python benchmarks/gap.py [--elements Si Mo] [--threads 2] [--json-out run.json]
    python benchmarks/gap.py --elements Mo --reuse-gap-fit run.json   # refit kernelpot only

``--reuse-gap-fit`` takes gap_fit's numbers from the JSON of an earlier run
(its last line, or ``--json-out``) instead of running gap_fit again; the
fit-time ratio is then only meaningful if both runs saw the same machine load.

Note: gap_fit picks CUR points at random, so two identical gap_fit runs differ by a few per cent.
The recipe builds GAP's own soap descriptor (``SOAP(rbf="gap")``: GAP's radial basis and weighting,
equal to quippy's to ~1e-12), so both codes fit the same features; sparse points, e0 and solver differ.
"""

import argparse
import json
import os
import platform
import resource
import tempfile
from pathlib import Path

import numpy as np
from ase.io import read, write

from kernelpot.bench.gap_cases import fit_gap_fit, fit_kernelpot
from kernelpot.cli.options import check_script_outputs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gap_materials" / "mlearn"
GAP = ("distance_2b cutoff=5.0 n_sparse=20 covariance_type=ard_se delta=2.0 theta_uniform=1.0 "
       "sparse_method=uniform : soap l_max=6 n_max=8 atom_sigma=0.5 cutoff=5.0 cutoff_transition_width=1.0 "
       "delta=0.2 covariance_type=dot_product zeta=4 n_sparse=1000 sparse_method=cur_points")


def errors(predicted_e, predicted_f, frames):
    """Energy RMSE (meV/atom), force RMSE (eV/Å) and energy RMSE by config_type (meV/atom)."""
    de = np.array([(e - a.get_potential_energy()) / len(a) for e, a in zip(predicted_e, frames)])
    df = np.concatenate([(f - a.get_forces()).ravel() for f, a in zip(predicted_f, frames)])
    kinds = np.array([a.info.get("config_type", "default") for a in frames])
    by_kind = {str(k): 1e3 * np.sqrt(np.mean(de[kinds == k] ** 2)) for k in sorted(set(kinds))}
    return {"energy_rmse_meV_atom": 1e3 * np.sqrt(np.mean(de**2)), "forces_rmse_eV_A": np.sqrt(np.mean(df**2)),
            "energy_rmse_by_config_type": by_kind, "energy_errors_meV_atom": (1e3 * de).round(2).tolist()}


def bench(element, threads, reuse=None):
    train_file = DATA / f"mlearn_{element}_training.extxyz"
    test_frames = read(DATA / f"mlearn_{element}_test.extxyz", ":")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS="1")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        frames = read(train_file, ":")
        write(f"{tmp}/train.xyz", frames)  # energy/forces as plain extxyz keys for gap_fit
        if reuse is not None:
            results["gap_fit"] = reuse
        else:
            (wall, rss, e, f), cpu = _with_child_cpu(fit_gap_fit, tmp, GAP, env, test_frames)
            results["gap_fit"] = dict(errors(e, f, test_frames), fit_seconds=wall, fit_cpu_seconds=cpu, peak_MiB=rss)
        (wall, rss, e, f), cpu = _with_child_cpu(fit_kernelpot, tmp, GAP, env, test_frames)
        results["kernelpot"] = dict(errors(e, f, test_frames), fit_seconds=wall, fit_cpu_seconds=cpu, peak_MiB=rss)
    return results


def _with_child_cpu(fit, *args):
    """``fit(*args)`` and the CPU seconds (user + system) of the subprocess it ran and waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = fit(*args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--elements", nargs="+", default=["Si", "Mo"])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--reuse-gap-fit", type=Path, help="JSON of an earlier run: take gap_fit's results from it")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args()
    check_script_outputs(parser, {"--json-out": args.json_out})  # before the fits, not after them
    reused = {}
    if args.reuse_gap_fit is not None:
        lines = args.reuse_gap_fit.read_text().strip().splitlines()
        reused = {element: r["gap_fit"] for element, r in json.loads(lines[-1]).items()}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; threads={args.threads}")
    print(f"gap string: {{{GAP}}}")
    everything = {}
    for element in args.elements:
        r = bench(element, args.threads, reused.get(element))
        everything[element] = r
        g, k = r["gap_fit"], r["kernelpot"]
        print(f"\nmlearn {element}        {'gap_fit':>12} {'kernelpot':>12} {'ratio kp/gap':>13}")
        for key, label in (("energy_rmse_meV_atom", "E RMSE meV/atom"), ("forces_rmse_eV_A", "F RMSE eV/Å"),
                           ("fit_seconds", "fit wall s"), ("fit_cpu_seconds", "fit CPU s"), ("peak_MiB", "peak MiB")):
            if key in g:  # runs reused from older JSON may lack CPU times
                print(f"{label:<18}{g[key]:>12.4g} {k[key]:>12.4g} {k[key] / g[key]:>13.3f}")
        for kind, value in g.get("energy_rmse_by_config_type", {}).items():
            mine = k["energy_rmse_by_config_type"].get(kind, float("nan"))
            print(f"  E {kind:<14}{value:>12.4g} {mine:>12.4g} {mine / value:>13.3f}")
        if element in reused:
            print("(gap_fit numbers reused from", args.reuse_gap_fit, ")")
    print("\n" + json.dumps(everything))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(everything) + "\n")


if __name__ == "__main__":
    main()
