"""SOAP speed: kernelpot against dscribe 2.1 in one process, on the same structures.

Settings (the GAP-for-water regime): species H and O, r_cut = 5 Å, n_max = 8,
l_max = 6, sigma = 0.5 Å, GTO basis; 20 periodic boxes of 64 rigid water
molecules at 1 g/cm³ (random orientations, fixed seed, no intermolecular
contact below 1.6 Å).

Prints throughputs (atoms/s) and ratios for: features; features with
gradients (dscribe: numerical gradients for periodic input, timed on a few
centres of one box and extrapolated per atom; analytic gradients on a
192-atom cluster); first-call compile time with a cold and a warm Numba
cache (in subprocesses), and the start-up of a fresh interpreter (import,
construct, first small transform; warm cache; target < 2 s). Run as
``python benchmarks/soap.py`` (about 3–5 minutes on 2 cores); ``--quick``
uses 4 boxes.
"""

from __future__ import annotations

import argparse
import os
import textwrap

import numpy as np

from kernelpot.bench.systems import water_box
from kernelpot.bench.timing import first_calls, measure

SETTINGS = dict(r_cut=5.0, n_max=8, l_max=6, sigma=0.5, rbf="gto")
SPECIES = ["H", "O"]


CPU_TIMES: list[float] = []


def best_time(function, repeat: int = 2) -> float:
    """Best wall time of ``repeat`` calls (:func:`kernelpot.bench.timing.measure`); the best CPU time is
    appended to ``CPU_TIMES``.

    On a shared machine the CPU time of a single-threaded call is the fairer
    measure (both codes run in this process, so both are timed alike).
    """
    timing = measure(function, repeat)
    CPU_TIMES.append(timing.cpu)
    return timing.wall


def compile_times() -> None:
    script = textwrap.dedent(
        """
        import time
        start = time.perf_counter()
        from kernelpot.descriptors import SOAP
        imported = time.perf_counter()
        from ase.build import molecule
        soap = SOAP(["H", "O"], r_cut=5.0, n_max=8, l_max=6, sigma=0.5)
        soap.transform(molecule("H2O"))
        features = time.perf_counter()
        soap.transform(molecule("H2O"), gradients=True)
        gradients = time.perf_counter()
        print(f"{imported - start:.2f} {features - imported:.2f} {gradients - features:.2f}")
        """
    )
    for label, line in zip(("cold cache", "warm cache"), first_calls(script)):
        output = line.split()
        startup = float(output[0]) + float(output[1])
        print(
            f"first call, {label}: import {output[0]} s, features {output[1]} s, "
            f"+ gradients {output[2]} s (includes the neighbour-list kernels); "
            f"start-up (import + construct + first transform) {startup:.2f} s"
            + (" [target < 2 s]" if label == "warm cache" else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 boxes instead of 20")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time subprocesses")
    arguments = parser.parse_args()

    import numba
    from dscribe.descriptors import SOAP as DscribeSOAP

    from kernelpot.descriptors.soap import SOAP

    boxes = [water_box(seed=seed) for seed in range(4 if arguments.quick else 20)]
    n_atoms = sum(len(b) for b in boxes)
    ours = SOAP(SPECIES, periodic=True, **SETTINGS)
    theirs = DscribeSOAP(species=SPECIES, periodic=True, **SETTINGS)
    ours.transform(boxes[:1], gradients=True)  # compile (or load the cache) outside the timings

    X = ours.transform(boxes)
    reference = np.concatenate(theirs.create(boxes))
    print(f"{len(boxes)} boxes x {len(boxes[0])} atoms, {ours.n_features} features; "
          f"max |kernelpot - dscribe| / max |dscribe| = {np.abs(X - reference).max() / np.abs(reference).max():.1e}")
    all_cores = os.cpu_count() or 1
    for threads in sorted({1, all_cores}):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        t_ours = best_time(lambda: ours.transform(boxes))
        t_theirs = best_time(lambda: theirs.create(boxes, n_jobs=threads))
        cpu = "" if threads > 1 else (
            f" [CPU time: {n_atoms / CPU_TIMES[-2]:.0f} vs {n_atoms / CPU_TIMES[-1]:.0f} atoms/s, "
            f"ratio {CPU_TIMES[-1] / CPU_TIMES[-2]:.2f}]"
        )
        print(f"features, {threads} thread(s): kernelpot {n_atoms / t_ours:9.0f} atoms/s, dscribe "
              f"{n_atoms / t_theirs:9.0f} atoms/s, ratio {t_theirs / t_ours:5.2f}{cpu}")

        few = boxes[:2]
        t_grad = best_time(lambda: ours.transform(few, gradients=True), repeat=3)
        rate = sum(map(len, few)) / t_grad
        cpu = "" if threads > 1 else (
            f" [CPU time: {sum(map(len, few)) / CPU_TIMES[-1]:.0f} atoms/s, "
            f"{n_atoms / CPU_TIMES[-2] / (sum(map(len, few)) / CPU_TIMES[-1]):.1f}x slower than dscribe's features]"
        )
        _, G = ours.transform(few[:1], gradients=True)
        print(f"features + gradients, {threads} thread(s): kernelpot {rate:7.0f} atoms/s, "
              f"{n_atoms / t_theirs / rate:.1f}x slower than dscribe's features{cpu} "
              f"({G.values.nbytes / G.n_pairs / 1e3:.1f} kB per pair, {G.n_pairs / len(few[0]):.0f} pairs "
              f"per atom, {G.values.nbytes / 1e6:.0f} MB per box: writing the output bounds the speed)")
        del G
    numba.set_num_threads(1)

    # dscribe has only numerical gradients for periodic input: time a few centres, extrapolate per atom.
    centers = list(range(4))
    t_numerical = best_time(lambda: theirs.derivatives(boxes[0], centers=centers, method="numerical", n_jobs=1),
                            repeat=1)
    t_ours = best_time(lambda: ours.transform(boxes[0], gradients=True), repeat=1)
    rate_numerical = len(centers) / t_numerical
    rate_ours = len(boxes[0]) / t_ours
    print(f"periodic gradients, 1 thread: kernelpot {rate_ours:7.0f} atoms/s, dscribe numerical {rate_numerical:7.1f} "
          f"atoms/s (timed on {len(centers)} centres of one box, extrapolated per atom), ratio "
          f"{rate_ours / rate_numerical:6.1f} "
          f"[CPU-time ratio {CPU_TIMES[-2] / len(centers) / (CPU_TIMES[-1] / len(boxes[0])):.1f}]")

    cluster = boxes[0].copy()
    cluster.pbc = False
    finite_ours = SOAP(SPECIES, **SETTINGS)
    finite_theirs = DscribeSOAP(species=SPECIES, **SETTINGS)
    t_ours = best_time(lambda: finite_ours.transform(cluster, gradients=True), repeat=1)
    t_theirs = best_time(lambda: finite_theirs.derivatives(cluster, method="analytical", n_jobs=1), repeat=1)
    print(f"cluster gradients ({len(cluster)} atoms), 1 thread: kernelpot {len(cluster) / t_ours:7.0f} atoms/s, "
          f"dscribe analytical {len(cluster) / t_theirs:7.1f} atoms/s, ratio {t_theirs / t_ours:6.1f} "
          f"[CPU time: {len(cluster) / CPU_TIMES[-2]:.0f} vs {len(cluster) / CPU_TIMES[-1]:.1f} atoms/s]")

    if not arguments.no_compile:
        compile_times()


if __name__ == "__main__":
    main()
