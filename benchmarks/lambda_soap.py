"""λ-SOAP timings on the TENSOAP Zundel cations, beside dscribe's SOAP and a dense einsum.

There is no installed λ-SOAP peer (featomic/librascal are not dependencies), so
the script prints two reference points on the same 1,000 structures:

* dscribe's SOAP power spectrum with the same density expansion (λ = 0 up to a
  scale and order, see :mod:`kernelpot.descriptors.lambda_soap`);
* the obvious NumPy implementation of the coupling (dense real CG tensors and
  ``einsum`` over the same coefficients, all (n1, n2) of every block, so about
  1.3x the work of the non-redundant features), timed on a tenth and scaled.

Cold-cache compile time is measured in a subprocess with an empty
``NUMBA_CACHE_DIR``.

Usage: ``python benchmarks/lambda_soap.py [n_structures]`` (default 1000).
Parameters: n_max=8, l_max=6, r_cut=4, sigma=0.3 (the TENSOAP files are in
atomic units: lengths are taken as they are).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ase.io
import numpy as np

from kernelpot.bench.timing import first_calls, measure

DATA = Path(__file__).resolve().parents[2] / "shared/data/tensors/tensoap/water_zundel_coords_1000.xyz"
PARAMS = dict(species=["H", "O"], r_cut=4.0, n_max=8, l_max=6, sigma=0.3)

COLD_START = """
import time, ase.io
t = time.perf_counter()
from kernelpot.descriptors.lambda_soap import LambdaSOAP
frames = ase.io.read({path!r}, ":2")
LambdaSOAP(**{params!r}, lambda_=2).transform(frames, gradients=True)
print(time.perf_counter() - t)
"""


def _best_of(function, repeat=2):
    """Best wall and CPU (all threads) times in s of ``repeat`` calls, and the result."""
    timing = measure(function, repeat)
    return timing.wall, timing.cpu, timing.result


def _dense_einsum(descriptor, frames):
    """Coupling with dense real CG tensors and einsum: the straightforward NumPy version."""
    from kernelpot.symmetry.clebsch_gordan import real_clebsch_gordan

    params = descriptor._validate()
    c = descriptor._density_coefficients(frames)
    lam, blocks = descriptor.lambda_, []
    labels = descriptor.feature_labels()
    numbers = sorted({int(z) for z in labels[:, 0]} | {int(z) for z in labels[:, 3]})
    for a in range(len(numbers)):
        for b in range(a, len(numbers)):
            for l1 in range(params["l_max"] + 1):
                for l2 in range(params["l_max"] + 1):
                    if abs(l1 - l2) <= lam <= l1 + l2 and (l1 + l2 + lam) % 2 == 0:
                        cg = real_clebsch_gordan(l1, l2, lam)
                        x1 = c[:, a, :, l1 * l1 : (l1 + 1) ** 2]
                        x2 = c[:, b, :, l2 * l2 : (l2 + 1) ** 2]
                        blocks.append(np.einsum("ijk,api,aqj->akpq", cg, x1, x2, optimize=True))
    return blocks


def main(n_structures: int = 1000) -> None:
    from dscribe.descriptors import SOAP as DscribeSOAP

    from kernelpot.descriptors.lambda_soap import LambdaSOAP

    frames = ase.io.read(DATA, f":{n_structures}")
    for atoms in frames:  # all-zero cell in the file: molecules
        atoms.pbc = False
    print(f"{len(frames)} Zundel cations, {sum(len(a) for a in frames)} atoms; {PARAMS}")

    cold = first_calls(COLD_START.format(path=str(DATA), params=PARAMS), runs=1)[0]
    print(f"cold start (import + compile all kernels + 2 structures): {cold} s")

    dscribe = DscribeSOAP(**PARAMS, rbf="gto", periodic=False)
    t_dscribe, cpu_dscribe, _ = _best_of(lambda: dscribe.create(frames, n_jobs=1))
    print(f"dscribe SOAP power spectrum (n_jobs=1): wall {t_dscribe:.2f} s, CPU {cpu_dscribe:.2f} s")

    for lam in (0, 1, 2):
        descriptor = LambdaSOAP(**PARAMS, lambda_=lam)
        descriptor.transform(frames[:2], gradients=True)  # compile / load cache
        t_ours, cpu_ours, x = _best_of(lambda: descriptor.transform(frames))
        subset = frames[: max(1, len(frames) // 10)]
        _, cpu_dense, _ = _best_of(lambda: _dense_einsum(descriptor, subset), repeat=1)
        cpu_dense *= len(frames) / len(subset)
        print(
            f"kernelpot λ-SOAP λ={lam}: wall {t_ours:.2f} s, CPU {cpu_ours:.2f} s, shape {x.shape}; "
            f"CPU ratios: {cpu_ours / cpu_dscribe:.2f}x dscribe SOAP, "
            f"dense einsum {cpu_dense / cpu_ours:.1f}x slower"
        )
        grad_frames = frames[:100]
        t_grad, cpu_grad, (_, g) = _best_of(
            lambda: descriptor.transform(grad_frames, gradients=True), 1
        )
        print(f"    with gradients, 100 structures: wall {t_grad:.2f} s, CPU {cpu_grad:.2f} s, "
              f"values {g.values.shape}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n_structures", nargs="?", type=int, default=1000,
                        help="Zundel structures timed (default 1000)")
    main(parser.parse_args().n_structures)
