"""FCHL19 representations: kernelpot against qmllib 1.2, in one process.

Prints throughput (atoms/s) of the representation and of representation
plus gradients, for kernelpot with 1 and with all Numba threads and for
qmllib (its Fortran runs one thread per call here), and their ratios; then
first-call times of kernelpot in fresh processes, with an empty Numba cache
(cold: compilation) and with the cache just filled (warm: loading); the
neighbour list (shared with other descriptors) is timed apart from FCHL19.

Usage::

    python benchmarks/fchl.py [--molecules 2000] [--gradient-molecules 200] [--repeat 3]
                              [--no-compile-times]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from ase.io import read

from kernelpot.descriptors.fchl19 import FCHL19

QM7 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qm" / "qm7_qml" / "qm7_pbe0_7101.extxyz"
ELEMENTS = [1, 6, 7, 8, 16]

_FIRST_CALL = """
import time
t0 = time.perf_counter()
from ase.build import molecule
from kernelpot.descriptors.fchl19 import FCHL19
from kernelpot.structures.neighbours import neighbour_list
from kernelpot.structures.packing import pack
atoms = [molecule("CH3CH2OH")]
t1 = time.perf_counter()
neighbour_list(pack(atoms), 8.0)
t2 = time.perf_counter()
d = FCHL19([1, 6, 7, 8, 16])
d.transform(atoms)
t3 = time.perf_counter()
d.transform(atoms, gradients=True)
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""


def qmllib_runner(molecules, gradients: bool):
    from qmllib.representations import generate_fchl19

    def run():
        for m in molecules:
            generate_fchl19(m.numbers, m.positions, elements=ELEMENTS, gradients=gradients)

    return run


def kernelpot_runner(molecules, gradients: bool, n_threads: int):
    descriptor = FCHL19(ELEMENTS)
    descriptor.transform(molecules[:2], gradients=gradients)  # compile or load the cache

    def run():
        numba.set_num_threads(n_threads)
        descriptor.transform(molecules, gradients=gradients)

    return run


def throughput(molecules, gradients: bool, repeat: int) -> dict:
    """Best atoms/s of each code over ``repeat`` rounds, the codes taking turns in each
    round so that a change of load on a shared machine hits them alike."""
    n_atoms = sum(len(m) for m in molecules)
    threads = numba.config.NUMBA_NUM_THREADS
    runners = {
        f"kernelpot ({n} thread{'s' if n > 1 else ''})": kernelpot_runner(molecules, gradients, n)
        for n in sorted({1, threads})
    }
    try:
        runners["qmllib"] = qmllib_runner(molecules, gradients)
    except ImportError:
        pass
    best = dict.fromkeys(runners, np.inf)
    for _ in range(repeat):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    numba.set_num_threads(threads)
    return {name: n_atoms / elapsed for name, elapsed in best.items()}


def report(title: str, rates: dict) -> None:
    print(f"\n{title}")
    reference = rates.get("qmllib")
    for name, rate in rates.items():
        ratio = f"  x{rate / reference:.2f} vs qmllib" if reference and name != "qmllib" else ""
        print(f"  {name:24s} {rate:12,.0f} atoms/s{ratio}")


def first_call_times() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold (empty cache)", "warm (cache filled)"):
            result = subprocess.run(
                [sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True, text=True, check=True
            )
            imports, neighbours, values, gradients = map(float, result.stdout.split())
            print(
                f"  {label:20s} import {imports:6.2f} s, neighbour list {neighbours:6.2f} s, "
                f"FCHL19 transform {values:6.2f} s, with gradients {gradients:6.2f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=2000)
    parser.add_argument("--gradient-molecules", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-compile-times", action="store_true")
    args = parser.parse_args()

    molecules = read(QM7, f":{args.molecules}")
    n_atoms = sum(len(m) for m in molecules)
    print(f"QM7: {len(molecules)} molecules, {n_atoms} atoms; Numba threads available: "
          f"{numba.config.NUMBA_NUM_THREADS}")
    report("FCHL19 representation", throughput(molecules, False, args.repeat))
    gradient_molecules = molecules[: args.gradient_molecules]
    report(
        f"FCHL19 representation + gradients ({len(gradient_molecules)} molecules)",
        throughput(gradient_molecules, True, args.repeat),
    )
    if not args.no_compile_times:
        print("\nkernelpot first call in a fresh process")
        first_call_times()


if __name__ == "__main__":
    main()
