"""Memory-bounded and parallel SparseGPR fits on mlearn Si: the estimate against the measured peak, the timings.

Subcommands (each fit runs in a fresh subprocess so its peak resident
memory, ``ru_maxrss``, is its own):

``memory``   pre-fit estimate (``memory_estimate_["peak"]``) against the
             measured peak for a few sizes and solvers; also the fit's own
             allocations (tracemalloc peak) against ``"fit_peak"``.
``parity``   predictions of a fit in many blocks against the in-memory fit
             (one block), same sparse points.
``parallel`` wall time of the fit's block loop: this process (Numba + BLAS
             threads) against joblib processes (``n_jobs=2``).
``heavy``    the issue's target: ``--forces`` force components (default
             200,000) with ``--sparse`` (default 5,000) SOAP sparse points
             within ``--max-memory`` (default 8GB). Run once, under ``nice``.

Data: the mlearn Si training set (13,233 atoms, 39,699 force components);
larger sets repeat it with every copy rattled by 0.01 Å (labels kept, which
only matters for accuracy, not memory or time).

    PYTHONPATH=. python benchmarks/scale.py memory
    PYTHONPATH=. nice -n 5 python benchmarks/scale.py heavy
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gap_materials" / "mlearn"
SOAP_GAP = ("distance_2b cutoff=5.0 n_sparse=20 covariance_type=ard_se delta=2.0 theta_uniform=1.0 "
            "sparse_method=uniform : soap l_max={l_max} n_max={n_max} atom_sigma=0.5 cutoff=5.0 delta=0.2 "
            "covariance_type=dot_product zeta=4 n_sparse={sparse} sparse_method={method}")


def _data(n_forces, seed=0):
    from kernelpot.io import read_labelled

    train = read_labelled(DATA / "mlearn_Si_training.extxyz", stress_key="virial_stress_kbar",
                          stress_units="kbar", stress_sign="pressure")
    rng = np.random.default_rng(seed)
    atoms, energies, forces, total, copy_index = [], [], [], 0, 0
    while total < n_forces:
        for a, e, f in zip(train.atoms, train.energies, train.forces):
            if total >= n_forces:
                break
            a = a.copy()
            if copy_index:
                a.positions += rng.normal(0.0, 0.01, a.positions.shape)
            atoms.append(a)
            energies.append(e)
            forces.append(f)
            total += f.size
        copy_index += 1
    return atoms, energies, forces


def _model(args, **kwargs):
    from kernelpot.models.gap import SparseGPR
    from kernelpot.potential.recipe import terms_from_gap_string

    gap = SOAP_GAP.format(l_max=args.l_max, n_max=args.n_max, sparse=args.sparse, method=args.method)
    return SparseGPR(terms_from_gap_string("{" + gap + "}", [14]), default_sigma=(0.005, 0.1, 0.05),
                     e0=-5.0, solver=args.solver, jitter=args.jitter, random_state=0, **kwargs)


def child(args):
    """One fit in this process; prints a JSON line with the estimate and the measured peaks."""
    atoms, energies, forces = _data(args.forces)
    kwargs = {"max_memory": args.max_memory} if args.max_memory else {"max_block_memory": args.block}
    if args.n_jobs:
        kwargs["n_jobs"] = args.n_jobs
    model = _model(args, verbose=args.verbose, **kwargs)
    if args.tracemalloc:
        tracemalloc.start()
    start = time.perf_counter()
    model.fit(atoms, energies=energies, forces=forces)
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    est = model.memory_estimate_
    print(json.dumps({"forces": args.forces, "sparse": int(model.alpha_.size), "solver": args.solver,
                      "blocks_MiB": est["block"] / 2**20, "estimate_peak": est["peak"], "measured_peak": rss,
                      "estimate_fit": est["fit_peak"], "traced_fit": traced, "baseline": est["baseline"],
                      "seconds": seconds, "alpha_norm": float(np.linalg.norm(model.alpha_)),
                      "streamed": [i["streamed"] for i in model.selection_info_]}))


def _run_child(args, **overrides):
    argv = [sys.executable, __file__, "child"]
    options = dict(forces=args.forces, sparse=args.sparse, solver=args.solver, l_max=args.l_max, n_max=args.n_max,
                   jitter=args.jitter,
                   method=args.method, block=args.block, max_memory=args.max_memory, n_jobs=args.n_jobs)
    stream = overrides.pop("stream", False)
    flags = {flag: overrides.pop(flag, getattr(args, flag, False)) for flag in ("tracemalloc", "verbose")}
    options.update(overrides)
    for key, value in options.items():
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    argv += [f"--{flag}" for flag, on in flags.items() if on]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    if stream:
        argv.insert(1, "-u")
        subprocess.run(argv, env=env, check=True)  # the child's JSON line goes to our stdout
        return None
    out = subprocess.run(argv, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    if flags["verbose"]:
        print(out.stdout, out.stderr[-2000:], sep="\n", end="")
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory(args):
    print(f"{'forces':>8} {'M':>6} {'solver':>8} {'block MiB':>10} {'est GiB':>8} {'peak GiB':>9} {'ratio':>6} "
          f"{'est fit MiB':>12} {'traced MiB':>11}")
    for config in args.configs.split(","):
        forces, sparse, solver, mem, *jitter = config.split(":")
        forces, sparse, jitter = int(forces), int(sparse), float(jitter[0]) if jitter else args.jitter
        for trace in (False, True):
            r = _run_child(args, forces=forces, sparse=sparse, solver=solver, max_memory=mem, tracemalloc=trace,
                           jitter=jitter)
            if not trace:
                row = r
            else:
                row["traced_fit"] = r["traced_fit"]
                row["estimate_fit_traced"] = r["estimate_fit"]
        print(f"{forces:>8} {row['sparse']:>6} {solver:>8} {row['blocks_MiB']:>10.1f} "
              f"{row['estimate_peak'] / 2**30:>8.3f} {row['measured_peak'] / 2**30:>9.3f} "
              f"{row['estimate_peak'] / row['measured_peak']:>6.2f} {row['estimate_fit_traced'] / 2**20:>12.1f} "
              f"{row['traced_fit'] / 2**20:>11.1f}", flush=True)


def parity(args):
    from kernelpot.models.gap import GAPTerm

    atoms, energies, forces = _data(args.forces)
    one = _model(args, max_block_memory=1e5).fit(atoms, energies=energies, forces=forces)
    frozen = [GAPTerm(t.descriptor, t.kernel, delta=t.delta, sparse_points=t.sparse_X) for t in one.terms_]
    # Blocks of a tenth of the one-block fit's rows.
    many = _model(args, max_block_memory=one.memory_estimate_["block"] / 2**20 / 10)
    many.set_params(terms=frozen)
    many.fit(atoms, energies=energies, forces=forces)
    test = atoms[::7]
    p1 = one.predict(test, properties=("energy", "forces"))
    p2 = many.predict(test, properties=("energy", "forces"))
    for key in ("energy", "forces"):
        rel = np.abs(p2[key] - p1[key]).max() / np.abs(p1[key]).max()
        print(f"{key}: max |blocked - in-memory| / max |in-memory| = {rel:.2e}")
    print(f"blocks: in-memory {one.memory_estimate_['block'] / 2**20:.1f} MiB (1 block), bounded "
          f"{many.memory_estimate_['block'] / 2**20:.1f} MiB per block "
          f"({many.memory_estimate_['full_K_NM'] / many.memory_estimate_['block']:.0f}+ blocks)")


def parallel(args):
    for n_jobs in (None, 2):
        _run_child(args, n_jobs=n_jobs)  # warm the Numba cache and the page cache
        r = _run_child(args, n_jobs=n_jobs)
        print(f"n_jobs={n_jobs}: fit {r['seconds']:.1f} s ({r['forces']} forces, M={r['sparse']}, "
              f"blocks of {r['blocks_MiB']:.0f} MiB)", flush=True)


def heavy(args):
    # Streamed output (python -u): the estimate line, the block progress bar and
    # the JSON result line appear as the fit runs; the child's VmHWM in
    # /proc/PID/status is its peak so far.
    _run_child(args, verbose=True, stream=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["memory", "parity", "parallel", "heavy", "child"])
    parser.add_argument("--forces", type=int, default=None)
    parser.add_argument("--sparse", type=int, default=None)
    parser.add_argument("--solver", default="qr", choices=["qr", "cholesky"])
    parser.add_argument("--l-max", type=int, default=4)
    parser.add_argument("--n-max", type=int, default=4)
    parser.add_argument("--method", default="cur")
    parser.add_argument("--block", type=float, default=256.0, help="MiB per block without --max-memory")
    parser.add_argument("--max-memory", default=None)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--jitter", type=float, default=1e-8,
                        help="K_MM jitter (relative); the normal equations of SOAP need more than 1e-10")
    parser.add_argument("--configs", default="6000:300:qr:1GB,12000:1000:qr:1.5GB,12000:1000:cholesky:1.5GB,"
                                              "20000:2000:qr:2GB",
                        help="memory mode: forces:M:solver:max_memory[:jitter],...")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    defaults = {"heavy": (200_000, 5000, "8GB"), "parity": (3000, 200, None), "parallel": (12000, 500, None)}
    forces, sparse, mem = defaults.get(args.mode, (6000, 300, None))
    args.forces = args.forces or forces
    args.sparse = args.sparse or sparse
    args.max_memory = args.max_memory or mem
    {"memory": memory, "parity": parity, "parallel": parallel, "heavy": heavy, "child": child}[args.mode](args)


if __name__ == "__main__":
    main()
