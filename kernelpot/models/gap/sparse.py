"""Choosing the sparse points of a GAP term among the training rows.

FPS and CUR come from :mod:`kernelpot.selection`; the small fallbacks here
are used only if that package cannot be imported.
"""

from __future__ import annotations

import warnings

import numpy as np

try:
    from ...selection._base import SelectionWarning
    from ...selection.cur import CUR
    from ...selection.fps import FPS
except ImportError:  # pragma: no cover - selection is part of kernelpot
    FPS = CUR = SelectionWarning = None

__all__ = ["select_sparse"]


def _unique_rows(X):
    # Symmetry-equivalent environments (perfect crystals) repeat exactly; a
    # repeated sparse point makes K_MM singular, so select among distinct rows.
    scale = max(float(np.abs(X).max()), 1e-300)
    _, index = np.unique(np.round(X / scale, 10), axis=0, return_index=True)
    return np.sort(index)


def _fps(X, n, start):
    chosen = [start]
    d2 = ((X - X[start]) ** 2).sum(1)
    for _ in range(1, n):
        nxt = int(np.argmax(d2))
        chosen.append(nxt)
        d2 = np.minimum(d2, ((X - X[nxt]) ** 2).sum(1))
    return np.array(chosen)


def _cur(X, n):
    # Leverage scores of the rows on the leading right-singular vectors;
    # keep the highest (deterministic variant of Mahoney & Drineas, PNAS 106, 697 (2009)).
    Xc = X - X.mean(0)
    U, s, _ = np.linalg.svd(Xc, full_matrices=False)
    k = max(1, min(n, int((s > s[0] * 1e-12).sum()) if s.size and s[0] > 0 else 1))
    leverage = (U[:, :k] ** 2).sum(1)
    return np.argsort(-leverage, kind="stable")[:n]


def _select(selector, X):
    # Selection stops early (with a SelectionWarning) once the rows are
    # exhausted, e.g. CUR at the rank of X; fewer sparse points is then right.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SelectionWarning)
        return selector.fit(X).selected_idx_


def select_sparse(X, n_sparse, method, rng):
    """Pick sparse points among the rows of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Training rows of one term.
    n_sparse : int
    method : {"cur", "fps", "uniform", "random"}
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (n_chosen, n_features)
        The sparse points (``n_chosen = min(n_sparse, distinct rows)``,
        exactly ``n_sparse`` for ``"uniform"``). ``"cur"`` completes its
        picks by FPS when the feature matrix has lower rank than ``n_sparse``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] == 0:
        raise ValueError("no descriptor rows in the training structures to choose sparse points from")
    if method == "uniform":
        if X.shape[1] != 1:
            raise ValueError(
                f"sparse_method='uniform' needs a 1-feature descriptor (e.g. distance_2b); got "
                f"{X.shape[1]} features"
            )
        lo, hi = float(X.min()), float(X.max())
        return np.linspace(lo, hi, n_sparse)[:, None] if hi > lo else X[:1].copy()
    distinct = _unique_rows(X)
    Xd = X[distinct]
    n = min(n_sparse, len(distinct))
    if method == "random":
        index = rng.choice(len(distinct), size=n, replace=False)
    elif n == len(distinct):
        index = np.arange(n)
    elif method == "fps":
        start = int(rng.integers(len(distinct)))
        index = _fps(Xd, n, start) if FPS is None else _select(FPS(n, initialize=start), Xd)
    elif CUR is None:
        index = _cur(Xd, n)
    else:
        index = _select(CUR(n), Xd)
        if len(index) < n:
            # CUR stops at the numerical rank of the features (often below
            # n_sparse for SOAP); complete the set by FPS from those picks.
            index = _select(FPS(n, initialize=[int(i) for i in index]), Xd)
    return Xd[np.sort(index)].copy()
