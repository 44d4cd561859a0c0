"""Choosing the sparse points of a GAP term among the training rows (FPS and CUR from :mod:`kernelpot.selection`)."""

from __future__ import annotations

import warnings

import numpy as np

from ... import selection  # FPS, CUR: scikit-learn estimators, imported on first use (start-up time)

__all__ = ["select_sparse", "choose_sparse", "count_distinct", "no_rows_error"]


def _unique_rows(X):
    # Symmetry-equivalent environments (perfect crystals) repeat exactly; a
    # repeated sparse point makes K_MM singular, so select among distinct rows.
    scale = max(float(np.abs(X).max()), 1e-300)
    _, index = np.unique(np.round(X / scale, 10), axis=0, return_index=True)
    return np.sort(index)


def count_distinct(X):
    """Number of distinct rows of ``X`` (equal to 1e-10 of the largest entry count as one)."""
    return len(_unique_rows(np.asarray(X, dtype=np.float64)))


def _select(selector, X):
    """Indices picked by ``selector`` and, if it stopped early, why (else None)."""
    # Selection stops early (with a SelectionWarning) once the rows are
    # exhausted, e.g. CUR at the rank of X; fewer sparse points is then right,
    # and the caller says so once, for the whole term.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", selection.SelectionWarning)
        selector.fit(X)
    return selector.selected_idx_, selector.stop_reason_


def select_sparse(X, n_sparse, method, rng):
    """Pick sparse points among the rows of ``X``: the points of :func:`choose_sparse`."""
    return choose_sparse(X, n_sparse, method, rng)[0]


def no_rows_error(where=None):
    """The error for a term whose descriptor gives no rows on the training structures (``where`` names it)."""
    return ValueError(f"{where + ': ' if where else ''}no descriptor rows in the training structures to choose "
                      "sparse points from (no structure has this term's species, pairs or triplets within its "
                      "cutoff): remove the term or add structures that have them")


def choose_sparse(X, n_sparse, method, rng, *, keep_order=False, where=None):
    """Pick sparse points among the rows of ``X``, and say why there are fewer than ``n_sparse``.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Training rows of one term.
    n_sparse : int
    method : {"cur", "fps", "uniform", "random"}
    rng : numpy.random.Generator
    keep_order : bool, default=False
        Return the points in the order they were picked (FPS and CUR are
        greedy, so the first ``k`` are the selection of ``k`` points: nested
        sets for :mod:`kernelpot.models.gap.auto`); otherwise in row order.
    where : str, optional
        The term, named in the error when ``X`` has no rows.

    Returns
    -------
    Z : ndarray of shape (n_chosen, n_features)
        The sparse points (``n_chosen = min(n_sparse, distinct rows)``,
        exactly ``n_sparse`` for ``"uniform"``). ``"cur"`` completes its
        picks by FPS when the feature matrix has lower rank than ``n_sparse``.
    stop_reason : str or None
        Why FPS/CUR stopped before ``min(n_sparse, distinct rows)`` points
        (the remaining rows coincide with chosen ones), else None.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] == 0:
        raise no_rows_error(where)
    if method == "uniform":
        if X.shape[1] != 1:
            raise ValueError(
                f"sparse_method='uniform' needs a 1-feature descriptor (e.g. distance_2b); got "
                f"{X.shape[1]} features"
            )
        lo, hi = float(X.min()), float(X.max())
        return (np.linspace(lo, hi, n_sparse)[:, None] if hi > lo else X[:1].copy()), None
    distinct = _unique_rows(X)
    Xd = X[distinct]
    n = min(n_sparse, len(distinct))
    stop_reason = None
    if method == "random":
        index = rng.choice(len(distinct), size=n, replace=False)
    elif n == len(distinct) and not keep_order:
        index = np.arange(n)
    else:
        # The selectors need 2 features; for 1-feature rows (distance_2b) a zero column changes no distance
        # (FPS) and no rank (CUR).
        Xs = Xd if Xd.shape[1] > 1 else np.hstack([Xd, np.zeros_like(Xd)])
        if method == "fps":
            index, stop_reason = _select(selection.FPS(n, initialize=int(rng.integers(len(distinct)))), Xs)
        else:
            index, _ = _select(selection.CUR(n), Xs)
            if len(index) < n:
                # CUR stops at the numerical rank of the features (often below
                # n_sparse for SOAP); complete the set by FPS from those picks.
                index, stop_reason = _select(selection.FPS(n, initialize=[int(i) for i in index]), Xs)
    return Xd[np.asarray(index) if keep_order else np.sort(index)].copy(), stop_reason
