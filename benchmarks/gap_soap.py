"""GAP's own SOAP: kernelpot's ``SOAP(rbf="gap")`` against quippy's ``soap`` descriptor, same process.

Computes features and analytic gradients of the first structures of the mlearn Mo training set
with both codes and prints the largest difference of the normalised rows (kernelpot's columns
reordered to GAP's, √2 weighting included in both), and the CPU-time ratio. kernelpot's first
call (Numba compile or cache load) is timed separately.

Needs quippy-ase and ../shared/data.

    python benchmarks/gap_soap.py [--structures 20] [--repeats 3]
"""

import argparse
import time
from pathlib import Path

import numpy as np
from ase.io import read

from kernelpot.bench.timing import measure
from kernelpot.descriptors.soap import SOAP

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gap_materials" / "mlearn"
ARGS = "soap l_max=6 n_max=8 atom_sigma=0.5 cutoff=5.0 cutoff_transition_width=1.0"


def gap_order(n_max, l_max):
    """kernelpot column of each GAP feature, one species (GAP: pairs (a, b <= a), l fastest)."""
    column = {}
    for l in range(l_max + 1):
        for n in range(n_max):
            for m in range(n, n_max):
                column[(l, n, m)] = len(column)
    return np.array([column[(l, b, a)] for a in range(n_max) for b in range(a + 1) for l in range(l_max + 1)])


def cpu_best(function, repeats):
    """Best process CPU time (s) of ``repeats`` calls, and the result."""
    timing = measure(function, repeats)
    return timing.cpu, timing.result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--structures", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from quippy.descriptors import Descriptor

    frames = read(DATA / "mlearn_Mo_training.extxyz", f":{args.structures}")
    soap = SOAP([42], r_cut=5.0, n_max=8, l_max=6, sigma=0.5, rbf="gap", periodic=True, cutoff_transition_width=1.0)
    start = time.perf_counter()
    soap.transform(frames[:1], gradients=True)
    first_call = time.perf_counter() - start
    quippy = Descriptor(ARGS)

    def run_quippy():
        return [quippy.calc(atoms, grad=True) for atoms in frames]

    t_quippy, results = cpu_best(run_quippy, args.repeats)
    t_kernelpot, (X, _) = cpu_best(lambda: soap.transform(frames, gradients=True), args.repeats)
    reference = np.concatenate([r["data"][:, :-1] for r in results])
    mine = np.asarray(X)[:, gap_order(8, 6)]
    mine /= np.linalg.norm(mine, axis=1, keepdims=True)
    n_atoms = sum(len(a) for a in frames)
    print(f"{len(frames)} Mo structures, {n_atoms} atoms; {ARGS}; features + gradients")
    print(f"max |normalised row difference| vs quippy: {np.abs(mine - reference).max():.2e}")
    print(f"CPU s (best of {args.repeats}): quippy {t_quippy:.3f}, kernelpot {t_kernelpot:.3f}, "
          f"ratio quippy/kernelpot {t_quippy / t_kernelpot:.2f}")
    print(f"kernelpot first call (compile or cache load + basis tables): {first_call:.2f} s wall")


if __name__ == "__main__":
    main()
