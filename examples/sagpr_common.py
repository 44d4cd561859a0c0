"""Helpers shared by the SA-GPR examples: kernels computed once, then sliced for many fits.

:class:`kernelpot.models.sagpr.SymmetryAdaptedGPR` is the estimator to use for
one fit. Learning curves and cross-validation refit the same data many times,
so these helpers build the structure kernels once with the same public
building blocks (λ-SOAP features, :func:`equivariant_kernel`) and solve the
SA-GPR equations on slices. The regulariser ``alpha`` has the meaning it has in
the estimator (noise variance relative to the mean diagonal of the kernel).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from kernelpot.descriptors.lambda_soap import LambdaSOAP
from kernelpot.kernels.equivariant import equivariant_kernel

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "tensors"


def environments(frames, lam, *, species, centers=None, **params):
    """λ features, unit λ = 0 features, structure offsets and centre species (optionally only ``centers``)."""
    periodic = any(a.pbc.any() for a in frames)
    X = LambdaSOAP(species, **params, lambda_=lam, periodic=periodic).transform(frames)
    S = X if lam == 0 else LambdaSOAP(species, **params, lambda_=0, periodic=periodic).transform(frames)
    numbers = np.asarray(X.numbers)
    keep = np.ones(len(numbers), bool) if centers is None else np.isin(numbers, centers)
    structure = np.repeat(np.arange(len(frames)), np.diff(X.offsets))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(structure[keep], minlength=len(frames)))])
    return {"X": np.asarray(X)[keep], "S": np.asarray(S)[keep, 0], "offsets": offsets, "centers": numbers[keep]}


def kernel(env_a, env_b=None, *, zeta=2, local_b=False):
    """Structure kernel (n_a, 2λ+1, n_b, 2λ+1); ``local_b``: B environments one by one."""
    if env_b is None:
        return equivariant_kernel(env_a["X"], zeta=zeta, scalar_A=env_a["S"], offsets_A=env_a["offsets"],
                                  centers_A=env_a["centers"])
    return equivariant_kernel(env_a["X"], env_b["X"], zeta=zeta, scalar_A=env_a["S"], scalar_B=env_b["S"],
                              offsets_A=env_a["offsets"], offsets_B=None if local_b else env_b["offsets"],
                              centers_A=env_a["centers"], centers_B=env_b["centers"])


def subset(env, indices):
    """Environments of ``indices`` (positions in env) as a local basis."""
    return {"X": env["X"][indices], "S": env["S"][indices], "offsets": None, "centers": env["centers"][indices]}


def full_gpr(K, y, train, test, alpha):
    """Predictions of full SA-GPR for ``test`` from a precomputed structure kernel.

    K : (n, L, n, L); y : (n, L) λ components; returns (len(test), L).
    """
    n_l = K.shape[1]
    Ktt = K[np.ix_(train, range(n_l), train, range(n_l))].reshape(len(train) * n_l, -1)
    scale = np.mean(np.diag(Ktt))
    w = cho_solve(cho_factor(Ktt / scale + alpha * np.eye(len(Ktt))), y[train].ravel())
    Kst = K[np.ix_(test, range(n_l), train, range(n_l))].reshape(len(test) * n_l, -1)
    return (Kst / scale @ w).reshape(len(test), n_l)


def sparse_gpr(K_nm, K_mm, y, train, test, alpha, scale):
    """Projected-process SA-GPR predictions from K_NM (n, L, m, L) and K_MM (m, L, m, L)."""
    n_l = K_nm.shape[1]
    A = K_nm[train].reshape(len(train) * n_l, -1) / scale
    M = K_mm.reshape(len(A.T), -1) / scale
    lhs = A.T @ A + alpha * M
    lhs[np.diag_indices_from(lhs)] += 1e-10 * np.mean(np.diag(lhs))
    w = cho_solve(cho_factor(lhs), A.T @ y[train].ravel())
    return (K_nm[test].reshape(len(test) * n_l, -1) / scale @ w).reshape(len(test), n_l)


def percent_of_std(predicted, reference):
    """RMSE over all components as % of the standard deviation of the reference components."""
    return 100 * np.sqrt(np.mean((predicted - reference) ** 2)) / np.std(reference)


def choose_alpha(predict, y, train, alphas, n_folds=5, seed=0):
    """Regulariser with the lowest ``n_folds``-fold CV error inside ``train`` (never looks at test data).

    ``predict(train, test, alpha)`` returns predictions for ``test`` (n_test, 2λ+1).
    Returns the alpha and its CV mean squared error.
    """
    folds = np.array_split(np.random.default_rng(seed).permutation(train), n_folds)
    errors = {}
    for alpha in alphas:
        errors[alpha] = np.mean([np.mean((predict(np.setdiff1d(train, fold), fold, alpha) - y[fold]) ** 2)
                                 for fold in folds])
    best = min(errors, key=errors.get)
    return best, errors[best]
