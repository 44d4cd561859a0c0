"""Learning curves of water polarizabilities (λ = 0 and λ = 2) with SA-GPR: dimers and bulk water.

TENSOAP data (atomic units: polarizability in bohr³). A fixed random test set
of 200 structures; training sets of N = 50, 100, 200, 400, 800 from the other
800. Errors are RMSEs of the λ components as % of their standard deviation
over the test set, written to a PNG and printed. The regulariser of each
λ and N is chosen by 5-fold cross-validation inside that training set.

* Water dimers (12 atoms): full SA-GPR, all atoms as centres, TENSOAP
  defaults (n_max=8, l_max=6, r_cut=4 Å, σ=0.3 Å, ζ=2).
* Bulk water (32 molecules, periodic): oxygen-centred environments, a
  smaller basis (n_max=6, l_max=4) and sparse SA-GPR on M environments
  chosen by FPS over the 800-structure training pool (the full kernel of
  32,000 environments would take hours on one core). The bulk tensors are not
  exactly symmetric (``|α_ij - α_ji|`` up to ~0.01 bohr³); they are symmetrised.

Usage: ``python examples/sagpr_learning_curves.py [--systems dimer bulk] [--output curves.png]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sagpr_common import (
    SHARED,
    choose_alpha,
    environments,
    full_gpr,
    kernel,
    percent_of_std,
    sparse_gpr,
    subset,
)

from kernelpot.cli.options import check_script_outputs
from kernelpot.datasets.tensors import TENSOAP_FILES, read_tensor_data
from kernelpot.kernels.equivariant import equivariant_kernel_diag
from kernelpot.selection.fps import FPS
from kernelpot.tensors import rank2_to_spherical, symmetrize

SIZES = (50, 100, 200, 400, 800)
ALPHAS = (1e-8, 1e-6, 1e-4, 1e-3, 1e-2)


def _split(n, seed):
    order = np.random.default_rng(seed).permutation(n)
    return order[200:], order[:200]


def dimer_curve(seed):
    data = read_tensor_data(SHARED / TENSOAP_FILES["water_dimer"])
    parts = rank2_to_spherical(symmetrize(data.targets["alpha"], name="alpha")[0])
    pool, test = _split(len(data), seed)
    params = {"species": [1, 8], "r_cut": 4.0, "n_max": 8, "l_max": 6, "sigma": 0.3}
    curves = {}
    for lam in (0, 2):
        start = time.perf_counter()
        K = kernel(environments(data.atoms, lam, **params))
        y = parts[lam]

        def predict(train, rows, alpha, K=K, y=y, lam=lam):
            mean = y[train].mean(0) if lam == 0 else 0.0
            return mean + full_gpr(K, y - mean, train, rows, alpha)

        curves[lam] = _curve(predict, y, pool, test)
        print(f"dimer λ={lam}: " + ", ".join(f"N={n}: {e:.2f} %" for n, e in zip(SIZES, curves[lam]))
              + f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    return curves


def bulk_curve(seed, n_sparse, batch=50):
    data = read_tensor_data(SHARED / TENSOAP_FILES["water_bulk"])
    parts = rank2_to_spherical(symmetrize(data.targets["alpha"], name="alpha")[0])
    pool, test = _split(len(data), seed)
    params = {"species": [1, 8], "centers": [8], "r_cut": 4.0, "n_max": 6, "l_max": 4, "sigma": 0.3}
    curves = {}
    starts = range(0, len(data), batch)
    for lam in (0, 2):
        start = time.perf_counter()
        envs = [environments(data.atoms[i:i + batch], lam, **params) for i in starts]
        owner = np.concatenate([i + np.repeat(np.arange(len(e["offsets"]) - 1), np.diff(e["offsets"]))
                                for i, e in zip(starts, envs)])
        merged = {key: np.concatenate([e[key] for e in envs]) for key in ("X", "S", "centers")}
        # Sparse environments: FPS on the invariant features of the training pool only.
        candidates = np.flatnonzero(np.isin(owner, pool))
        chosen = candidates[FPS(n_to_select=n_sparse).fit(merged["S"][candidates]).selected_idx_]
        basis = subset(merged, np.sort(chosen))
        K_nm = np.concatenate([kernel(e, basis, local_b=True) for e in envs])
        K_mm = kernel(basis, basis, local_b=True)
        diag = np.concatenate([equivariant_kernel_diag(e["X"], scalar=e["S"], offsets=e["offsets"],
                                                       centers=e["centers"]) for e in envs])
        scale = np.mean(np.trace(diag, axis1=1, axis2=2)) / (2 * lam + 1)
        y = parts[lam]

        def predict(train, rows, alpha, K_nm=K_nm, K_mm=K_mm, scale=scale, y=y, lam=lam):
            mean = y[train].mean(0) if lam == 0 else 0.0
            return mean + sparse_gpr(K_nm, K_mm, y - mean, train, rows, alpha, scale)

        curves[lam] = _curve(predict, y, pool, test)
        print(f"bulk λ={lam} (M={n_sparse}): " + ", ".join(f"N={n}: {e:.2f} %" for n, e in zip(SIZES, curves[lam]))
              + f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    return curves


def _curve(predict, y, pool, test):
    """Test errors (% of test std) for each N, with alpha chosen by 5-fold CV on the N training structures."""
    errors = []
    for n in SIZES:
        alpha, _ = choose_alpha(predict, y, pool[:n], ALPHAS)
        errors.append(percent_of_std(predict(pool[:n], test, alpha), y[test]))
        print(f"    N={n}: alpha={alpha:g}, {errors[-1]:.2f} %", flush=True)
    return errors


def plot(results, output):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for (system, curves), colour in zip(results.items(), ("C0", "C3")):
        for lam, style in ((0, "o-"), (2, "s--")):
            ax.loglog(SIZES, curves[lam], style, color=colour, label=f"{system} λ={lam}")
    ax.set_xticks(SIZES, [str(n) for n in SIZES])
    ax.set_xticks([], minor=True)
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("training structures N")
    ax.set_ylabel("test RMSE (% of test std)")
    ax.set_title("SA-GPR water polarizability (TENSOAP data)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    print(f"wrote {output}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=["dimer", "bulk"], choices=["dimer", "bulk"])
    parser.add_argument("--n-sparse", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="sagpr_learning_curves.png")
    args = parser.parse_args()
    check_script_outputs(parser, {"--output": args.output})  # before the kernels and fits, not after them
    results = {}
    if "dimer" in args.systems:
        results["water dimer"] = dimer_curve(args.seed)
    if "bulk" in args.systems:
        results["bulk water"] = bulk_curve(args.seed, args.n_sparse)
    plot(results, args.output)


if __name__ == "__main__":
    main()
