"""Local FCHL19 kernel: kernelpot against qmllib, same process, same representations.

Usage::

    python benchmarks/kernels.py [--n 400] [--n-peer 100] [--n-memory 3000] [--cold]

* qmllib's ``get_local_kernel`` on ``n_peer x n_peer`` QM7 molecules (qmllib's
  own FCHL19 representations, padded) and kernelpot's ``LocalKernel(Gaussian)``
  with element screening on ``n x n`` molecules (the same arrays with padding
  dropped); throughput is in atom pairs per second (all pairs of atoms of the
  two sets, as the loops visit them), first on one thread, then on all cores.
* kernelpot's BLAS path (per-element Gram blocks + Numba reduction) against a
  pure Numba double loop, to justify the choice.
* peak memory (tracemalloc) of a symmetric ``n_memory x n_memory`` kernel
  against the size of the kernel matrix itself.
* ``--cold`` compiles the Numba kernels into an empty cache directory, so the
  first-call time is the real compile time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from kernelpot.bench.timing import measure

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm" / "qm7_qml" / "qm7_pbe0_7101.extxyz"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400, help="molecules per side for kernelpot")
    parser.add_argument("--n-peer", type=int, default=100, help="molecules per side for qmllib (it is slow)")
    parser.add_argument("--n-memory", type=int, default=3000, help="molecules for the memory check")
    parser.add_argument("--sigma", type=float, default=2.0)
    parser.add_argument("--cold", action="store_true", help="compile into an empty Numba cache")
    return parser.parse_args()


def load(n_total):
    """qmllib FCHL19 (padded) of the first ``n_total`` QM7 molecules, their charges and atom counts."""
    import ase.io
    import numpy as np
    from qmllib.representations import generate_fchl19

    molecules = ase.io.read(DATA, index=f":{n_total}")
    elements = sorted({int(z) for m in molecules for z in m.numbers})
    pad = max(len(m) for m in molecules)
    t0 = time.perf_counter()
    padded = np.array([generate_fchl19(m.numbers, m.positions, elements=elements, pad=pad) for m in molecules])
    elapsed = time.perf_counter() - t0
    print(f"{len(molecules)} QM7 molecules, FCHL19 ({padded.shape[2]} features) by qmllib in {elapsed:.1f} s")
    charges = [m.numbers for m in molecules]
    return padded, charges, np.array([len(q) for q in charges])


def per_atom_slicer(padded, charges, counts):
    """``per_atom(start, stop)``: LocalFeatures of molecules start:stop, padding rows dropped."""
    import numpy as np

    from kernelpot.kernels.local import as_local_features

    def per_atom(start, stop):
        offsets = np.concatenate([[0], np.cumsum(counts[start:stop])])
        feats = np.concatenate([padded[i, : counts[i]] for i in range(start, stop)])
        return as_local_features((feats, offsets, np.concatenate(charges[start:stop])))

    return per_atom


def timed(func):
    """``(result, wall time in s)`` of one call (:func:`kernelpot.bench.timing.measure`)."""
    timing = measure(func)
    return timing.result, timing.wall


def compare_with_qmllib(kernel, padded, charges, per_atom, n, m, sigma, threads):
    """Throughput of qmllib (m x m) and kernelpot (n x n) with ``threads`` threads; returns the rates."""
    import numba
    import numpy as np
    from qmllib.kernels import get_local_kernel
    from threadpoolctl import threadpool_limits

    A, B = per_atom(0, n), per_atom(n, 2 * n)
    pairs = A.n_atoms * B.n_atoms
    small_a, small_b = per_atom(0, m), per_atom(m, 2 * m)
    pairs_peer = small_a.n_atoms * small_b.n_atoms
    numba.set_num_threads(threads)
    with threadpool_limits(limits=threads):
        K_peer, t_peer = timed(
            lambda: get_local_kernel(padded[:m], padded[m : 2 * m], charges[:m], charges[m : 2 * m], sigma)
        )
        K_small = kernel(small_a, small_b)
        _, t_ours = timed(lambda: kernel(A, B))
        _, t_sym = timed(lambda: kernel(A))
    rate_peer, rate_ours = pairs_peer / t_peer, pairs / t_ours
    error = np.max(np.abs(K_small - K_peer.T) / np.abs(K_peer.T))
    print(f"\n[{threads} thread(s)]")
    print(f"  qmllib    {m}x{m}: {t_peer:8.2f} s  {rate_peer / 1e6:8.2f} M atom pairs/s")
    print(f"  kernelpot {n}x{n}: {t_ours:8.2f} s  {rate_ours / 1e6:8.2f} M atom pairs/s")
    print(f"  kernelpot {n}x{n} symmetric K(A, A): {t_sym:.2f} s")
    print(f"  speed-up kernelpot / qmllib: {rate_ours / rate_peer:.1f}x   max rel. diff {error:.1e}")
    return rate_peer, rate_ours


def blas_versus_loop(kernel, per_atom, sigma):
    """One thread, 100 x 100: per-element Gram blocks (BLAS) against a pure Numba double loop."""
    import numba
    import numpy as np
    from threadpoolctl import threadpool_limits

    from kernelpot.kernels import _local_kernels as _lk
    from kernelpot.kernels import _vector_kernels as _vk

    a, b = per_atom(0, 100), per_atom(100, 200)
    norms = [np.einsum("ij,ij->i", x.features, x.features) for x in (a, b)]
    K_loop = np.zeros((100, 100))
    loop_args = (a.features, a.offsets, a.numbers, norms[0], b.features, b.offsets, b.numbers, norms[1])
    loop_args += (_vk.GAUSSIAN, -0.5 / sigma**2, 0.0, 0.0, True, False, K_loop, np.zeros((0, 0)))
    numba.set_num_threads(1)
    with threadpool_limits(limits=1):
        _, t_loop = timed(lambda: _lk.direct_structure_kernel(*loop_args))
        _, t_blas = timed(lambda: kernel(a, b))
    print(f"\n[1 thread, 100x100] BLAS Gram blocks {t_blas:.3f} s, pure Numba loop {t_loop:.3f} s", end="")
    print(f": BLAS {t_loop / t_blas:.1f}x faster")


def peak_memory(kernel, features) -> dict:
    """Peak memory of the symmetric structure kernel of ``features`` beyond what existed before.

    Two measures: tracemalloc (NumPy allocations made by the call) and the growth
    of the process's peak resident set (ru_maxrss, which also sees Numba's own
    allocations); the kernel matrix itself is n_structures² float64.
    """
    import resource

    from kernelpot.kernels.local import as_local_features

    features = as_local_features(features)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    t = time.perf_counter()
    K = kernel(features)
    elapsed = time.perf_counter() - t
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    n = K.shape[0]
    print(
        f"\nmemory, symmetric {n}x{n} ({features.n_atoms} atoms, {features.n_features} features, {elapsed:.0f} s): "
        f"kernel matrix {K.nbytes / 1e6:.1f} MB; tracemalloc peak {traced_peak / 1e6:.1f} MB "
        f"(overhead {(traced_peak - K.nbytes) / 1e6:.1f} MB); peak RSS growth {rss_growth / 1e6:.1f} MB "
        f"(overhead {(rss_growth - K.nbytes) / 1e6:.1f} MB); input features {features.features.nbytes / 1e6:.1f} MB "
        "(allocated before)"
    )
    return {"matrix": K.nbytes, "traced_peak": traced_peak, "rss_growth": rss_growth}


def main():
    args = parse_args()
    if args.cold:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="kernelpot-numba-")
    import numba

    from kernelpot.kernels.local import LocalKernel
    from kernelpot.kernels.vector import Gaussian

    padded, charges, counts = load(max(2 * args.n, 2 * args.n_peer, args.n_memory))
    per_atom = per_atom_slicer(padded, charges, counts)

    kernel = LocalKernel(Gaussian(args.sigma), same_element_only=True)
    _, t_first = timed(lambda: (kernel(per_atom(0, 5), per_atom(5, 10)), kernel(per_atom(0, 5))))
    what = "cold cache: compile" if args.cold else "compile or cache load"
    print(f"kernelpot first call ({what}): {t_first:.2f} s")

    rates = {}
    for threads in sorted({1, os.cpu_count()}):
        rates[threads] = compare_with_qmllib(kernel, padded, charges, per_atom, args.n, args.n_peer, args.sigma,
                                             threads)
    blas_versus_loop(kernel, per_atom, args.sigma)

    numba.set_num_threads(os.cpu_count())
    peak_memory(kernel, per_atom(0, args.n_memory))
    print(f"kernelpot scaling 1 -> {os.cpu_count()} threads: {rates[os.cpu_count()][1] / rates[1][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
