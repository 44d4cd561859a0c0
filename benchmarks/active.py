"""Cost of an incremental refit (IncrementalSparseGPR.partial_fit) against a full refit on the union.

An active-learning loop adds a few labelled structures per iteration; with
the sparse set unchanged, ``partial_fit`` only builds the new design rows
and updates the R factor (O(n_new m^2)), while a full refit rebuilds all
rows (O(N m^2)). Prints both times, their ratio, and the largest force
difference between the two models (the same model up to rounding).

    python benchmarks/active.py --n-start 40 --n-add 5 --size 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

from kernelpot.models.gap import IncrementalSparseGPR, SparseGPR, frozen_sparse_terms
from kernelpot.potential.recipe import terms_from_gap_string

GAP = ("{distance_2b cutoff=4.0 n_sparse=15 delta=0.5 theta_uniform=1.0 sparse_method=uniform : "
       "soap l_max=4 n_max=6 atom_sigma=0.5 cutoff=4.0 delta=0.05 zeta=4 n_sparse=300 sparse_method=cur}")


def structures(n, size, seed):
    out = []
    for s in range(n):
        atoms = bulk("Cu", "fcc", a=3.58 + 0.01 * (s % 5), cubic=True) * (size, size, size)
        atoms.rattle(0.05, seed=seed + s)
        atoms.calc = EMT()
        out.append((atoms, atoms.get_potential_energy(), atoms.get_forces()))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-start", type=int, default=40)
    parser.add_argument("--n-add", type=int, default=5, help="structures added per update")
    parser.add_argument("--size", type=int, default=2, help="supercell of the 4-atom cubic cell")
    args = parser.parse_args()
    data = structures(args.n_start + args.n_add, args.size, 0)
    atoms, energies, forces = (list(x) for x in zip(*data))
    kwargs = dict(default_sigma=(0.001, 0.02, 0.05), random_state=0)

    start = time.perf_counter()
    model = IncrementalSparseGPR(terms_from_gap_string(GAP, [29]), **kwargs)
    model.fit(atoms[: args.n_start], energies=energies[: args.n_start], forces=forces[: args.n_start])
    first_fit = time.perf_counter() - start  # includes Numba compilation on a cold cache

    new = slice(args.n_start, None)
    start = time.perf_counter()
    model.partial_fit(atoms[new], energies=energies[new], forces=forces[new])
    incremental = time.perf_counter() - start

    full = SparseGPR(frozen_sparse_terms(model), e0=model.e0_, **kwargs)
    start = time.perf_counter()
    full.fit(atoms, energies=energies, forces=forces)
    refit = time.perf_counter() - start

    probe = structures(2, args.size, 1000)
    difference = np.abs(model.predict([p[0] for p in probe], properties=("forces",))["forces"]
                        - full.predict([p[0] for p in probe], properties=("forces",))["forces"]).max()
    n_atoms = len(atoms[0])
    print(f"{args.n_start} + {args.n_add} structures of {n_atoms} Cu atoms, {model.alpha_.size} sparse points")
    print(f"first fit (cold, with compilation) {first_fit:.2f} s")
    print(f"partial_fit of {args.n_add}: {incremental:.2f} s; full refit on {len(atoms)}: {refit:.2f} s; "
          f"ratio full/incremental {refit / incremental:.1f}")
    print(f"largest force difference incremental vs full refit: {difference:.2e} eV/Å")


if __name__ == "__main__":
    main()
