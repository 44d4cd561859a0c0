"""What MD with a fitted GAP costs: kernelpot against quippy, featomic, vesin and ASE in one run (issue 17).

Runs the prediction cases of ``kernelpot bench`` (:mod:`kernelpot.bench.predict_cases`) and prints every row
with its ratio, the load average before and after, and two analyses behind the numbers:

* ``si``: forces of a rattled 216-atom Si cell (2-body + SOAP l6 n8, 1000 CUR points, fitted by kernelpot and
  by gap_fit on the same 60 mlearn Si structures): kernelpot's calculator vs quippy's ``Potential``, 1 and 2
  threads, interleaved, best of N, MD-like calls; forces with their DTC σ against forces alone; the parallel
  efficiency of 2 threads.
* ``nacl``: the same for a 4-species NaCl–water model (10 ``distance_2b`` + 4 per-species SOAP terms,
  > 4,000 sparse points) on the bundled 194-atom box, against the 5,000 atoms/s target.
* ``featomic``: SOAP features and features + gradients on 64-water boxes, matched settings, 1 thread.
* ``neighbours``: neighbour lists of 10²–10⁵-atom boxes against vesin and ASE, 1 thread.
* ``startup``: ``kernelpot evaluate`` in a fresh process, warm and cold Numba cache.
* ``lowrank``: how much of the exact SoR force variance a rank-r factor of the posterior covariance keeps
  (the eigenvectors of the whitened training force rows, r = 8 ... 512): the evidence for computing σ
  exactly rather than through a small number of extra reverse-mode passes.

Usage::

    python benchmarks/predict.py [--quick] [--cases si,nacl,featomic,neighbours,startup,lowrank]

Fitted models are cached in ``$KERNELPOT_BENCH_CACHE`` (default ``~/.cache/kernelpot/bench``); the first run
fits them (gap_fit's Si fit takes several minutes).
"""

import argparse
import os
import time

import numpy as np

from kernelpot.bench import predict_cases as cases

CASES = {
    "si": cases.si_forces_vs_quippy,
    "nacl": cases.nacl_forces,
    "featomic": cases.soap_vs_featomic,
    "neighbours": cases.neighbours_vs_vesin,
    "startup": cases.startup,
}


def lowrank(quick):
    """Fraction of the exact SoR force σ kept by a rank-r posterior factor, on held-out structures."""
    import scipy.linalg as sla
    from ase.io import read

    from kernelpot.models.gap.design import DesignBuilder
    from kernelpot.potential.serialization import load_model

    kpot, _ = cases.si_models(quick)
    model = load_model(kpot)
    builder = DesignBuilder.from_model(model)
    train = cases.si_training(quick)[::2]
    test = read(cases.DATA / "mlearn_si" / "mlearn_Si_test.extxyz", ":")[:6] + [cases.rattled_si()]

    def whitened_force_rows(structures):
        rows, sigma = builder.unlabelled_rows(structures)
        k_star = (rows * sigma[:, None])[len(structures):]          # force rows, unwhitened
        return sla.solve_triangular(model.posterior_factor_, k_star.T, trans="T")   # R^-T k*

    basis, singular, _ = np.linalg.svd(whitened_force_rows(train), full_matrices=False)
    held_out = whitened_force_rows(test)
    exact = (held_out**2).sum(0)
    print(f"\nSoR force σ kept by a rank-r factor (basis: {len(train)} training structures; "
          f"{held_out.shape[1]} held-out force components)")
    print(f"{'rank':>6} {'median σ_r/σ':>14} {'min σ_r/σ':>11}")
    for rank in (8, 16, 32, 64, 128, 256, 512):
        if rank > basis.shape[1]:
            break
        kept = np.sqrt(((basis[:, :rank].T @ held_out) ** 2).sum(0) / exact)
        print(f"{rank:>6} {np.median(kept):>14.3f} {kept.min():>11.3f}")
    print("each rank costs one extra reverse pass through the kernel (an n x m x d product) per call")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cases", default="si,nacl,featomic,neighbours,startup,lowrank")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
    for name in args.cases.split(","):
        start = time.perf_counter()
        print(f"\n== {name}")
        if name == "lowrank":
            lowrank(args.quick)
            continue
        for row in CASES[name](args.quick):
            print(f"{row.task} | {row.metric}: kernelpot {row.kernelpot:.4g} {row.unit}, {row.peer} "
                  f"{row.peer_value:.4g}, ratio {row.ratio:.3g} ({row.better} is better) {row.note}")
        print(f"({time.perf_counter() - start:.0f} s)")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
