"""5-fold cross-validated SA-GPR on a QM7-X subset: dipole vectors and polarizability tensors.

``qm7x/qm7x_reduced_100_CHNO.xyz``: 100 small organic molecules (C, H, N, O)
with PBE0+MBD dipoles ``mu`` and polarizabilities ``alpha``. The file does
not state units (QM7-X uses atomic units: e·bohr, bohr³), so errors are given
in the file's units and as % of the standard deviation of the λ components.

Kernels of the 100 molecules are built once per λ and σ; in each outer fold
σ and the regulariser are chosen by an inner 5-fold CV on the 80 training
molecules only, then the held-out 20 are predicted.

Usage: ``python examples/sagpr_qm7x_cv.py``
"""

from __future__ import annotations

import numpy as np
from sagpr_common import (
    SHARED,
    choose_alpha,
    environments,
    full_gpr,
    kernel,
    percent_of_std,
)

from kernelpot.datasets.tensors import QM7X_FILES, read_tensor_data
from kernelpot.tensors import rank2_to_spherical, vector_to_spherical

SIGMAS = (0.3, 0.5)
ALPHAS = (1e-8, 1e-6, 1e-4, 1e-3, 1e-2)
BASIS = {"species": [1, 6, 7, 8], "r_cut": 4.0, "n_max": 8, "l_max": 6}


def outer_cv(kernels, y, lam, n_atoms, n_folds=5, seed=0):
    """Predictions of every molecule from the fold that held it out (σ and alpha by inner CV).

    λ = 0 targets (extensive) get a per-atom mean baseline, as in SymmetryAdaptedGPR.
    """
    folds = np.array_split(np.random.default_rng(seed).permutation(len(y)), n_folds)
    predicted = np.zeros_like(y)
    for fold in folds:
        train = np.setdiff1d(np.arange(len(y)), fold)
        best = None
        for K in kernels.values():
            def predict(tr, rows, alpha, K=K):
                per_atom = np.mean(y[tr, 0] / n_atoms[tr]) if lam == 0 else 0.0
                baseline = np.zeros_like(y)
                baseline[:, 0] = per_atom * n_atoms
                return baseline[rows] + full_gpr(K, y - baseline, tr, rows, alpha)

            alpha, inner = choose_alpha(predict, y, train, ALPHAS)
            if best is None or inner < best[0]:
                best = (inner, predict, alpha)
        predicted[fold] = best[1](train, fold, best[2])
    return predicted


def main() -> None:
    data = read_tensor_data(SHARED / QM7X_FILES["qm7x_chno"])
    targets = {("dipole", 1): vector_to_spherical(data.targets["mu"])}
    parts = rank2_to_spherical(data.targets["alpha"])
    targets.update({("polarizability", 0): parts[0], ("polarizability", 2): parts[2]})
    predictions = {}
    n_atoms = np.array([len(a) for a in data.atoms], dtype=float)
    for (name, lam), y in targets.items():
        kernels = {sigma: kernel(environments(data.atoms, lam, sigma=sigma, **BASIS)) for sigma in SIGMAS}
        predictions[name, lam] = outer_cv(kernels, y, lam, n_atoms)
        err = np.sqrt(np.mean((predictions[name, lam] - y) ** 2))
        print(f"{name} λ={lam}: 5-fold CV RMSE {err:.4f} per component "
              f"({percent_of_std(predictions[name, lam], y):.1f} % of the std)", flush=True)
    mu_err = np.sqrt(np.mean(np.sum((predictions["dipole", 1] - targets["dipole", 1]) ** 2, axis=1)))
    rms = np.sqrt(np.mean(np.sum(data.targets["mu"] ** 2, axis=1)))
    print(f"dipole vector RMSE {mu_err:.4f} = {100 * mu_err / rms:.1f} % of the RMS dipole ({rms:.4f})")


if __name__ == "__main__":
    main()
