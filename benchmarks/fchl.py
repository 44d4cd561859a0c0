"""FCHL19 representations: kernelpot against qmllib 1.2, in one process.

Prints throughput (atoms/s) of the representation and of representation
plus gradients, for kernelpot with 1 and with all Numba threads and for
qmllib (its Fortran runs one thread per call here), and their ratios; then
first-call times of kernelpot in fresh processes, with an empty Numba cache
(cold: compilation) and with the cache just filled (warm: loading); the
neighbour list (shared with other descriptors) is timed apart from FCHL19.

With ``--kernel``, also the local FCHL19 kernel (functions of ``kernels.py``):
kernelpot on 1 and on all Numba threads against qmllib's ``get_local_kernel``
on 1 thread (atom pairs/s), and the peak memory of a symmetric
``--memory-n`` x ``--memory-n`` structure kernel of QM7 molecules (repeated
past the 7,101 of QM7; a reduced FCHL19, nRs2=8 and nRs3=4, keeps that run
short: memory does not depend on the feature length beyond the input itself).

Usage::

    python benchmarks/fchl.py [--molecules 2000] [--gradient-molecules 200] [--repeat 3]
                              [--no-compile-times] [--kernel] [--kernel-n 400]
                              [--kernel-n-peer 100] [--memory-n 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np
from ase.io import read

from kernelpot.bench.timing import first_calls
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
    for label, line in zip(("cold (empty cache)", "warm (cache filled)"), first_calls(_FIRST_CALL)):
        imports, neighbours, values, gradients = map(float, line.split())
        print(
            f"  {label:20s} import {imports:6.2f} s, neighbour list {neighbours:6.2f} s, "
            f"FCHL19 transform {values:6.2f} s, with gradients {gradients:6.2f} s"
        )


def kernel_section(args) -> None:
    """Local kernel: thread scaling, ratio to qmllib on one thread, peak memory of a large kernel."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import kernels as kernel_bench

    from kernelpot.kernels.local import LocalKernel
    from kernelpot.kernels.vector import Gaussian

    n, m = args.kernel_n, args.kernel_n_peer
    padded, charges, counts = kernel_bench.load(2 * max(n, m))
    per_atom = kernel_bench.per_atom_slicer(padded, charges, counts)
    kernel = LocalKernel(Gaussian(2.0), same_element_only=True)
    kernel(per_atom(0, 5), per_atom(5, 10))  # compile or load the cache
    rates = {}
    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        rates[threads] = kernel_bench.compare_with_qmllib(kernel, padded, charges, per_atom, n, m, 2.0, threads)
    peer_one_thread = rates[1][0]
    print("\nlocal kernel summary (atom pairs/s):")
    for threads, (_, ours) in rates.items():
        print(f"  kernelpot {threads} thread(s): {ours / 1e6:8.2f} M/s = x{ours / peer_one_thread:.1f} qmllib "
              f"on 1 thread, x{ours / rates[1][1]:.2f} kernelpot on 1 thread")

    molecules = read(QM7, ":")
    molecules = (molecules * (args.memory_n // len(molecules) + 1))[: args.memory_n]
    features = FCHL19(ELEMENTS, nRs2=8, nRs3=4).transform(molecules)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    kernel_bench.peak_memory(kernel, features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=2000)
    parser.add_argument("--gradient-molecules", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-compile-times", action="store_true")
    parser.add_argument("--kernel", action="store_true", help="also benchmark the local kernel and its memory")
    parser.add_argument("--kernel-n", type=int, default=400, help="molecules per side, kernelpot kernel")
    parser.add_argument("--kernel-n-peer", type=int, default=100, help="molecules per side, qmllib kernel")
    parser.add_argument("--memory-n", type=int, default=10000, help="structures of the memory check")
    parser.add_argument("--skip-representations", action="store_true")
    args = parser.parse_args()
    if args.kernel:
        kernel_section(args)
    if args.skip_representations:
        return

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
