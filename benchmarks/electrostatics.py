"""Electrostatics speed: Ewald vs smooth PME, kernelpot vs torch-pme, an NaCl–water box, compile time.

Energy + forces + stress at tolerance 1e-6 (RMS force error relative to the force
between two unit charges 1 Å apart, the same meaning as torch-pme's ``accuracy``)
on random neutral boxes of ±1 e charges at liquid-like density (0.1 atoms/Å³).

Prints, with the machine and its load average:

1. Numba's first-call cost: compiling every electrostatics kernel from scratch (a
   fresh ``NUMBA_CACHE_DIR``), and loading them from the on-disk cache.
2. Ewald and PME times for 250-10⁵ charges (Ewald only while it takes < ~30 s),
   the measured crossover, and what ``method="auto"`` picks.
3. kernelpot PME vs torch-pme (tuned with its own ``tune_pme``; forces and virial by
   autograd; vesin neighbour lists) on 10³-3·10⁴ charges: CPU times, their ratio, and
   the accuracy each reached against a tolerance-1e-10 reference (RMS force error / k_e
   and |ΔE| per atom).
4. The 194-atom NaCl–water box of the revPBE0-D3 gen3 data (64 H2O + NaCl,
   19.7 × 9.9 × 9.9 Å; charges O -0.834, H 0.417, Na +1, Cl -1): time per call,
   to set against a GAP force prediction (target: electrostatics ≤ 10 % of it).

Timings are the best of 3 calls (``kernelpot.bench.timing.measure``), CPU time of
the process: on a shared machine that is the fairer number for single-threaded runs.

Usage::

    python benchmarks/electrostatics.py                # full: up to 10⁵ charges (~30 min)
    python benchmarks/electrostatics.py --quick        # up to 3·10³ charges (~5 min)
    python benchmarks/electrostatics.py --sections 3,4 --threads 2
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import resource
from pathlib import Path

import numpy as np

from kernelpot.bench.electrostatics_cases import (
    compare_with_torchpme,
    kernelpot_engine,
    random_box,
    threads,
)
from kernelpot.bench.results import machine
from kernelpot.bench.timing import first_calls, measure

REPOSITORY = Path(__file__).resolve().parents[1]
NACL_FRAME = REPOSITORY / "data" / "nacl_water" / "revPBE0-D3_gen3_subset.data"
NACL_CHARGES = {"O": -0.834, "H": 0.417, "Na": 1.0, "Cl": -1.0}

_COMPILE_SCRIPT = """
import json, time
start, start_cpu = time.perf_counter(), time.process_time()
import numpy as np
from kernelpot.electrostatics import coulomb, coulomb_matrix
imported, imported_cpu = time.perf_counter(), time.process_time()
rng = np.random.default_rng(0)
positions = rng.uniform(0, 8, (12, 3)); charges = rng.normal(size=12); charges -= charges.mean()
cell = 8.0 * np.eye(3)
for widths in (None, 0.8):
    coulomb(positions, charges, widths=widths, compute_potential=True)
    coulomb_matrix(positions, widths=widths)
    for method in ("ewald", "pme"):
        coulomb(positions, charges, cell=cell, pbc=True, widths=widths, method=method, compute_potential=True)
    coulomb_matrix(positions, cell=cell, pbc=True, widths=widths)
done, done_cpu = time.perf_counter(), time.process_time()
print(json.dumps({"import": imported - start, "first calls": done - imported,
                  "import cpu": imported_cpu - start_cpu, "first calls cpu": done_cpu - imported_cpu}))
"""


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def compile_times() -> dict:
    """Seconds (wall and CPU) for import and for the first calls of every kernel: cold cache, then warm."""
    lines = first_calls(_COMPILE_SCRIPT, env={"PYTHONPATH": str(REPOSITORY)})
    return {label: json.loads(line) for label, line in zip(("cold (compile)", "warm (load from cache)"), lines)}


def ewald_vs_pme(sizes, tolerance, max_ewald_seconds):
    """Rows (n, Ewald CPU s or None, PME CPU s, auto's choice, PME parameters)."""
    from kernelpot.electrostatics import coulomb
    from kernelpot.electrostatics.parameters import ewald_parameters, ewald_seconds

    rows = []
    for n in sizes:
        positions, charges, cell = random_box(n)
        pme = kernelpot_engine("pme", positions, charges, cell, tolerance)
        pme_time = measure(functools.partial(pme.compute, positions, charges), repeat=3).cpu
        modelled = ewald_seconds(ewald_parameters(cell, n, tolerance, sum_squared_charges=float(charges @ charges)),
                                 cell, n)
        ewald_time = None
        if modelled < max_ewald_seconds:
            ewald = kernelpot_engine("ewald", positions, charges, cell, tolerance)
            ewald_time = measure(functools.partial(ewald.compute, positions, charges),
                                 repeat=3 if modelled < 3 else 1).cpu
        auto = coulomb(positions, charges, cell=cell, pbc=True, tolerance=tolerance, compute_forces=False,
                       compute_stress=False).method
        rows.append((n, ewald_time, pme_time, auto, modelled, pme.parameters))
        print(f"  {n:>7d} {'' if ewald_time is None else f'{ewald_time:10.4f}':>10} "
              f"{pme_time:10.4f}  {auto:>5}   (Ewald modelled {modelled:.3g} s; PME {pme.parameters})", flush=True)
    return rows


def crossover(rows):
    """Size where Ewald and PME times cross (log-log interpolation), or a bound."""
    measured = [(n, e, p) for n, e, p, *_ in rows if e is not None]
    for (n1, e1, p1), (n2, e2, p2) in itertools.pairwise(measured):
        r1, r2 = math.log(e1 / p1), math.log(e2 / p2)
        if r1 <= 0 < r2 or r1 < 0 <= r2:
            crossover = math.exp(math.log(n1) + (math.log(n2) - math.log(n1)) * -r1 / (r2 - r1))
            return f"PME is faster from about {crossover:.0f} charges"
    if measured and all(e > p for _, e, p in measured):
        return f"PME is faster at every measured size (from {measured[0][0]} charges)"
    return f"Ewald is faster at every measured size (up to {measured[-1][0]} charges)"


def nacl_water_box(tolerance):
    """Time per call (s) of energy + forces + stress on the 194-atom gen3 frame."""
    from kernelpot.electrostatics import coulomb
    from kernelpot.structures import read_runner

    atoms = read_runner(NACL_FRAME, index=0)
    coulomb(atoms, NACL_CHARGES, tolerance=tolerance)
    timing = measure(lambda: coulomb(atoms, NACL_CHARGES, tolerance=tolerance), repeat=20)
    return atoms, timing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes up to 3000 charges")
    parser.add_argument("--threads", type=int, default=1, help="threads for kernelpot and torch-pme (default 1)")
    parser.add_argument("--sections", type=lambda text: {int(x) for x in text.split(",")}, default={1, 2, 3, 4},
                        help="comma-separated sections to run (default 1,2,3,4)")
    args = parser.parse_args(argv)
    tolerance = 1e-6
    info = machine()
    print(f"machine: {info}\n{load_average()}\n")

    if 1 in args.sections:
        print("1. Numba first-call cost (every electrostatics kernel, a subprocess each):")
        for label, seconds in compile_times().items():
            print(f"  {label:<24s} import {seconds['import']:.2f} s, first calls {seconds['first calls']:.2f} s "
                  f"(CPU {seconds['import cpu']:.2f} s and {seconds['first calls cpu']:.2f} s)")
        print(f"  {load_average()}\n")

    sizes = (250, 500, 1000, 2000, 3000) if args.quick else (250, 500, 1000, 2000, 5000, 10000, 30000, 100000)
    with threads(args.threads):
        if 2 in args.sections:
            ewald_and_pme(sizes, tolerance, args)
        if 3 in args.sections:
            against_torchpme(tolerance, args)
        if 4 in args.sections:
            atoms, timing = nacl_water_box(tolerance)
            print(f"4. NaCl–water box, {len(atoms)} atoms ({atoms.get_chemical_formula()}), cell "
                  f"{np.round(atoms.cell.lengths(), 2).tolist()} Å, tolerance {tolerance:g}, {args.threads} thread(s):")
            print(f"  energy+forces+stress: {timing.cpu * 1e3:.2f} ms CPU, {timing.wall * 1e3:.2f} ms wall per call "
                  f"(method {timing.result.method}, {timing.result.parameters})")
            print(f"  {load_average()}")


def ewald_and_pme(sizes, tolerance, args):
    print(f"2. Ewald vs PME, energy+forces+stress, tolerance {tolerance:g}, {args.threads} thread(s), "
          "CPU time per call (s):")
    print(f"  {'charges':>7} {'Ewald':>10} {'PME':>10}  auto")
    rows = ewald_vs_pme(sizes, tolerance, max_ewald_seconds=10.0 if args.quick else 30.0)
    print(f"  crossover: {crossover(rows)}\n  {load_average()}\n")


def against_torchpme(tolerance, args):
    # Up to 3·10⁴ charges: torch-pme's autograd run at 10⁵ (cutoff 8 Å, 10⁷ pairs) grew past
    # 15 GB and was killed on this shared 24 GB machine.
    sizes = (1000, 3000) if args.quick else (1000, 10000, 30000)
    print(f"3. kernelpot PME vs torch-pme, tolerance {tolerance:g}, {args.threads} thread(s) each:")
    print(f"  {'charges':>7} {'kernelpot s':>11} {'torch-pme s':>11} {'ratio':>6}  "
          f"{'force err k/t':>17}  {'|dE|/atom eV k/t':>19}  {'peak RSS':>8}")

    def show(c):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"  {c.n_atoms:>7d} {c.ours.cpu:11.4f} {c.peer.cpu:11.4f} {c.ours.cpu / c.peer.cpu:6.3f}  "
              f"{c.ours_errors[0]:8.2g}/{c.peer_errors[0]:<8.2g}  {c.ours_errors[1]:9.2g}/{c.peer_errors[1]:<9.2g}  "
              f"{peak:6.1f} GB   torch-pme {c.peer_setup}", flush=True)

    compare_with_torchpme(sizes, tolerance, tune_size=3000 if args.quick else 10000, progress=show)
    print(f"  (wall times differ from CPU times by the machine load) {load_average()}\n")


if __name__ == "__main__":
    main()
