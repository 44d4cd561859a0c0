"""SA-GPR timings on the TENSOAP Zundel cations: λ = 2 kernel, fit and predict on one core.

Target: building the λ = 2 kernel of 1,000 Zundel cations, fitting
and predicting in under a minute on one core. Everything runs with one BLAS
thread and one Numba thread; wall and CPU times are printed (on a shared
machine the CPU time is the more stable number).

There is no installed SA-GPR peer (TENSOAP is a Python 2/3 script collection,
not a dependency), so the reference point is the straightforward NumPy
kernel, one ``einsum`` per pair of structures (what TENSOAP's
``sagpr_get_kernel`` does), timed on a 10×10 block and scaled to 1000².

Cold-cache compile time of the kernel module is measured in a subprocess
with an empty ``NUMBA_CACHE_DIR``.

Usage: ``python benchmarks/sagpr.py [n_structures] [--full]`` (default 1000).
Parameters: TENSOAP defaults n_max=8, l_max=6, r_cut=4 Å, sigma=0.3 Å, ζ=2.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from kernelpot.bench.timing import first_calls

DATA = Path(__file__).resolve().parents[2] / "shared/data/tensors/tensoap/water_zundel_coords_1000.xyz"
PARAMS = {"species": [1, 8], "r_cut": 4.0, "n_max": 8, "l_max": 6, "sigma": 0.3}

COLD_START = """
import time
import numpy as np
from kernelpot.kernels.equivariant import equivariant_kernel, equivariant_kernel_diag
t, c = time.perf_counter(), time.process_time()
X = np.random.default_rng(0).normal(size=(6, 5, 10)); S = np.abs(X[:, 0, :4])
equivariant_kernel(X, zeta=2, scalar_A=S, offsets_A=[0, 3, 6])
equivariant_kernel_diag(X, zeta=2, scalar=S, offsets=[0, 3, 6])
print(time.perf_counter() - t, time.process_time() - c)
"""


def _timed(function):
    start, start_cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - start, time.process_time() - start_cpu, result


def _cold_compile_seconds() -> tuple[float, float]:
    line = first_calls(COLD_START, runs=1, env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})[0]
    wall, cpu = line.split()
    return float(wall), float(cpu)


def _naive_pair_kernel(X, S, offsets, pairs):
    """One einsum per structure pair (TENSOAP-style), on the given structure pairs."""
    S = S / np.linalg.norm(S, axis=1, keepdims=True)
    out = []
    for i, j in pairs:
        a, b = slice(offsets[i], offsets[i + 1]), slice(offsets[j], offsets[j + 1])
        k0 = S[a] @ S[b].T
        out.append(np.einsum("amf,bnf,ab->mn", X[a], X[b], k0, optimize=True))
    return out


def main(n_structures: int = 1000, full: bool = False) -> None:
    import numba
    from threadpoolctl import threadpool_limits

    from kernelpot.datasets.tensors import read_tensor_data
    from kernelpot.descriptors.lambda_soap import LambdaSOAP
    from kernelpot.kernels.equivariant import equivariant_kernel
    from kernelpot.tensors import rank2_to_spherical

    wall, cpu = _cold_compile_seconds()
    print(f"cold-cache compile of the equivariant kernels (first calls, import excluded): {wall:.1f} s wall "
          f"/ {cpu:.1f} s CPU")
    data = read_tensor_data(DATA, index=f":{n_structures}")
    frames, alpha = data.atoms, data.targets["alpha"]
    numba.set_num_threads(1)
    with threadpool_limits(1):
        LambdaSOAP(**PARAMS, lambda_=2).transform(frames[:2])  # load cached compiled code
        wall0, cpu0, X0 = _timed(lambda: LambdaSOAP(**PARAMS, lambda_=0).transform(frames))
        wall2, cpu2, X2 = _timed(lambda: LambdaSOAP(**PARAMS, lambda_=2).transform(frames))
        S = np.asarray(X0)[:, 0]
        print(f"λ-SOAP features, {n_structures} structures: λ=0 {wall0:.1f} s wall / {cpu0:.1f} s CPU, "
              f"λ=2 {wall2:.1f} s / {cpu2:.1f} s; n_features λ=2: {X2.shape[2]}")
        numbers = np.asarray(X2.numbers)
        # The model's default (same-species centres) last, so that its kernel is the one fitted below.
        variants = (("all centre pairs", None),) if full else ()
        for label, centers in variants + (("same-species centres", numbers),):
            wall, cpu, K = _timed(lambda centers=centers: equivariant_kernel(
                X2, zeta=2, scalar_A=S, offsets_A=X2.offsets, centers_A=centers))
            print(f"λ=2 kernel {n_structures}x{n_structures} ({label}): {wall:.1f} s wall / {cpu:.1f} s CPU")
        t = rank2_to_spherical(alpha)[2]
        n_train = int(0.2 * n_structures)

        def fit_predict():
            flat = K.reshape(5 * n_structures, -1)
            train = np.arange(5 * n_train)
            scale = np.mean(np.diag(flat)[train])
            A = flat[np.ix_(train, train)] / scale + 1e-8 * np.eye(len(train))
            w = np.linalg.solve(A, t[:n_train].ravel())
            return (flat[5 * n_train:, train] / scale @ w).reshape(-1, 5)

        wall, cpu, pred = _timed(fit_predict)
        err = np.sqrt(np.mean((pred - t[n_train:]) ** 2)) / np.std(t[n_train:]) * 100
        print(f"fit ({n_train}) + predict ({n_structures - n_train}) from that kernel: {wall:.2f} s wall "
              f"/ {cpu:.2f} s CPU; λ=2 RMSE {err:.2f} % of the test std")
        if full:
            _end_to_end(frames, alpha, n_train)
        n_ref = 10
        pairs = [(i, j) for i in range(n_ref) for j in range(i, n_ref)]
        wall, cpu, ref = _timed(lambda: _naive_pair_kernel(np.asarray(X2), S, X2.offsets, pairs))
        ours = equivariant_kernel(X2[: int(X2.offsets[n_ref])], zeta=2, scalar_A=S[: int(X2.offsets[n_ref])],
                                  offsets_A=X2.offsets[: n_ref + 1])
        diff = max(np.abs(ours[i, :, j, :] - r).max() for (i, j), r in zip(pairs, ref))
        scaled = cpu * (n_structures * (n_structures + 1) / 2) / len(pairs)
        print(f"naive einsum per structure pair (all centre pairs): {cpu:.2f} s CPU for {len(pairs)} pairs, "
              f"scaled to {n_structures}²/2: {scaled:.0f} s; max |difference| {diff:.1e}")


def _end_to_end(frames, alpha, n_train):
    from kernelpot.models.sagpr import SymmetryAdaptedGPR

    model = SymmetryAdaptedGPR(2, **{k: v for k, v in PARAMS.items() if k != "species"})
    wall, cpu, _ = _timed(lambda: model.fit(frames[:n_train], alpha[:n_train]).predict(frames[n_train:]))
    print(f"SymmetryAdaptedGPR(2) end to end (features + kernels + fit {n_train} + predict "
          f"{len(frames) - n_train}): {wall:.1f} s wall / {cpu:.1f} s CPU")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_structures", nargs="?", type=int, default=1000)
    parser.add_argument("--full", action="store_true",
                        help="also time the all-centre-pairs kernel and SymmetryAdaptedGPR end to end")
    args = parser.parse_args()
    main(args.n_structures, args.full)
