"""QM7 learning curve: FCHL19 + kernel ridge regression with a local Gaussian kernel.

Data: the 7,101 QM7 molecules of the qml test suite (``shared/data/qm/qm7_qml``),
PBE0 heats of formation in kcal/mol (column ``hof_pbe0_kcal_mol``). One random
split (``--seed``) gives a fixed test set of ``--n-test`` molecules and a training
pool; the training set of size N is the first N molecules of the pool, so the
sets are nested. For every N, the length scale ``sigma`` and the regulariser
``alpha`` are chosen by k-fold cross-validation *inside the training set*; the
test set is used only to report the MAE of that choice.

Cost: the FCHL19 features are computed once; the structure kernels (pool x pool
and test x pool) once for all ``sigma`` values together (``LocalKernel.structure_kernels``
shares the atom Gram blocks); every fold, alpha and N then only slices them and
solves a Cholesky system, as qmllib's examples do.

Reference: A. S. Christensen et al., "FCHL revisited: Faster and more accurate
quantum machine learning", J. Chem. Phys. 152, 044107 (2020), doi:10.1063/1.5126701.

Usage::

    python examples/qm7_learning_curve.py [--sizes 500 1000 2000 4000] [--n-test 1000]
        [--folds 5] [--sigmas 1 2 4 8 16] [--alphas 1e-10 1e-8 1e-6 1e-4]
        [--output qm7_learning_curve.png] [--seed 0]

The plot needs matplotlib (``pip install kernelpot[examples]``); without it the
table is still printed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.linalg import LinAlgError, cho_solve, cholesky

QM7 = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm" / "qm7_qml" / "qm7_pbe0_7101.extxyz"
ELEMENTS = [1, 6, 7, 8, 16]


def load_qm7(path: Path = QM7):
    """QM7 molecules (ase.Atoms, Å) and their PBE0 heats of formation, shape (n,), kcal/mol."""
    from ase.io import read

    molecules = read(path, index=":")
    return molecules, np.array([m.info["hof_pbe0_kcal_mol"] for m in molecules])


def split(n_total: int, n_test: int, n_pool: int, seed: int):
    """Indices of a fixed test set (n_test,) and of a training pool (n_pool,), disjoint."""
    if n_test + n_pool > n_total:
        raise ValueError(f"`n_test` + training pool must be <= {n_total} molecules; got {n_test} + {n_pool}")
    order = np.random.default_rng(seed).permutation(n_total)
    return order[:n_test], order[n_test : n_test + n_pool]


def krr_weights(K: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray | None:
    """``(K + alpha I)⁻¹ y`` by Cholesky, or None if ``K + alpha I`` is not positive definite."""
    try:
        L = cholesky(K + alpha * np.eye(len(K)), lower=True, check_finite=False)
    except LinAlgError:
        return None
    return cho_solve((L, True), y, check_finite=False)


def cross_validated_mae(K: np.ndarray, y: np.ndarray, alpha: float, folds: int) -> float:
    """Mean absolute error of k-fold cross-validation on a precomputed kernel (units of y).

    The rows are assumed to be in random order already, so folds are contiguous.
    """
    errors = []
    for held_out in np.array_split(np.arange(len(y)), folds):
        train = np.setdiff1d(np.arange(len(y)), held_out)
        weights = krr_weights(K[np.ix_(train, train)], y[train], alpha)
        if weights is None:
            return np.inf
        errors.append(np.abs(K[np.ix_(held_out, train)] @ weights - y[held_out]))
    return float(np.mean(np.concatenate(errors)))


def learning_curve(features_pool, y_pool, features_test, y_test, sizes, sigmas, alphas, folds, log=print):
    """Cross-validated and test MAE for every (N, sigma, alpha).

    Returns
    -------
    cv, test : ndarray of shape (len(sizes), len(sigmas), len(alphas))
        MAEs in the units of ``y`` (inf where the Cholesky factorisation failed).
    """
    from kernelpot.kernels.local import LocalKernel
    from kernelpot.kernels.vector import Gaussian

    n_max = max(sizes)
    cv = np.full((len(sizes), len(sigmas), len(alphas)), np.inf)
    test = np.full_like(cv, np.inf)
    start = time.perf_counter()
    # One pass over the atom pairs gives the kernels of every sigma (shared Gram blocks).
    kernel = LocalKernel(Gaussian(1.0), same_element_only=True)
    K_pool = kernel.structure_kernels(features_pool, sigmas=sigmas)
    K_test = kernel.structure_kernels(features_test, features_pool, sigmas=sigmas)
    log(f"  kernels {n_max}x{n_max} + {len(y_test)}x{n_max} for {len(sigmas)} sigmas in "
        f"{time.perf_counter() - start:.1f} s")
    for s, sigma in enumerate(sigmas):
        for n_index, n in enumerate(sizes):
            for a, alpha in enumerate(alphas):
                cv[n_index, s, a] = cross_validated_mae(K_pool[s, :n, :n], y_pool[:n], alpha, folds)
                weights = krr_weights(K_pool[s, :n, :n], y_pool[:n], alpha)
                if weights is not None:
                    test[n_index, s, a] = np.mean(np.abs(K_test[s, :, :n] @ weights - y_test))
        log(f"  sigma = {sigma:5.2f}: best CV MAE at N={n_max}: {cv[-1, s].min():.2f}")
    return cv, test


def best_choices(cv, test, sigmas, alphas):
    """For each N, the (sigma, alpha) of the lowest CV MAE, with its CV and test MAE."""
    rows = []
    for n_index in range(cv.shape[0]):
        s, a = np.unravel_index(np.argmin(cv[n_index]), cv[n_index].shape)
        rows.append((sigmas[s], alphas[a], cv[n_index, s, a], test[n_index, s, a]))
    return rows


def plot(sizes, test_maes, path: Path) -> None:
    """Log-log learning curve (test MAE against N), saved as a PNG."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (pip install kernelpot[examples]); no plot written")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.loglog(sizes, test_maes, "o-", label="FCHL19 + KRR (kernelpot)")
    ax.set_xlabel("training molecules N")
    ax.set_ylabel("test MAE (kcal/mol)")
    ax.set_title("QM7 heats of formation (PBE0)")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())  # only the N of the table on the axis
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    print(f"plot written to {path}")


def check_with_pipeline(molecules, energies, train, test, sigma, alpha, expected):
    """The same fit through the public estimator API gives the same test MAE."""
    from sklearn.pipeline import make_pipeline

    from kernelpot.descriptors.fchl19 import FCHL19
    from kernelpot.models.krr import KernelRidge

    model = make_pipeline(FCHL19(ELEMENTS), KernelRidge(alpha, kernel="local_gaussian", sigma=sigma))
    model.fit([molecules[i] for i in train], energies[train])
    mae = np.mean(np.abs(model.predict([molecules[i] for i in test]) - energies[test]))
    print(f"pipeline check at N={len(train)}: test MAE {mae:.4f} kcal/mol (table: {expected:.4f})")


def parse_args():
    from kernelpot.cli.options import check_script_outputs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0, 16.0])
    parser.add_argument("--alphas", type=float, nargs="+", default=[1e-10, 1e-8, 1e-6, 1e-4])
    parser.add_argument("--output", type=Path, default=Path("qm7_learning_curve.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    check_script_outputs(parser, {"--output": args.output})  # before the features and kernels, not after them
    return args


def main() -> None:
    from kernelpot.descriptors.fchl19 import FCHL19

    args = parse_args()
    sizes = sorted(args.sizes)
    molecules, energies = load_qm7()
    test, pool = split(len(molecules), args.n_test, max(sizes), args.seed)
    start = time.perf_counter()
    descriptor = FCHL19(ELEMENTS)
    features_pool = descriptor.transform([molecules[i] for i in pool])
    features_test = descriptor.transform([molecules[i] for i in test])
    print(f"QM7: {len(molecules)} molecules; test {len(test)}, pool {len(pool)}; FCHL19 "
          f"({features_pool.shape[1]} features) in {time.perf_counter() - start:.1f} s")
    cv, test_mae = learning_curve(
        features_pool, energies[pool], features_test, energies[test],
        sizes, args.sigmas, args.alphas, args.folds,
    )  # fmt: skip
    rows = best_choices(cv, test_mae, args.sigmas, args.alphas)
    print(f"\n{'N':>6} {'sigma':>6} {'alpha':>8} {'CV MAE':>10} {'test MAE':>10}   (kcal/mol, {args.folds}-fold CV)")
    for n, (sigma, alpha, cv_value, test_value) in zip(sizes, rows):
        print(f"{n:6d} {sigma:6.2f} {alpha:8.0e} {cv_value:10.3f} {test_value:10.3f}")
    sigma, alpha, _, expected = rows[0]
    check_with_pipeline(molecules, energies, pool[: sizes[0]], test, sigma, alpha, expected)
    plot(sizes, [row[3] for row in rows], args.output)


if __name__ == "__main__":
    main()
