"""Greedy selection of samples (rows) or features (columns): the shared base class.

A greedy selector repeats three steps until it has ``n_to_select`` items:
score every candidate (hook ``_score``), take the best candidate not yet taken
(first index among tied maxima, as ``np.argmax``), and update its state with
that choice (hook ``_update``). Farthest-point sampling
(:class:`kernelpot.selection.fps.FPS`) and CUR
(:class:`kernelpot.selection.cur.CUR`) only implement the hooks ``_init_search``,
``_score``, ``_exhausted`` and ``_update``.

Both selectors treat the candidates as the rows of a matrix ``A``: ``A = X`` for
``selection_type="sample"`` and ``A = X.T`` for ``selection_type="feature"``.
With ``kernel="precomputed"``, ``X`` is instead the symmetric kernel (Gram)
matrix between the candidates, ``K_ij = <φ_i, φ_j>``, and both selection types
select among its rows (= columns).
"""

import numbers
import warnings
import zlib

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..exceptions import ReducedRequestWarning
from ..utils.estimators import reset_fitted
from ._selection_kernels import masked_argmax

_SELECTION_TYPES = ("sample", "feature")
_KERNELS = ("linear", "precomputed")


class SelectionWarning(ReducedRequestWarning):
    """A selector stopped early because the remaining candidates add nothing new."""


def _fingerprint(A):
    """Cheap checksum of a matrix, used to check ``warm_start`` refits use the same data."""
    return (A.shape, zlib.adler32(np.ascontiguousarray(A).view(np.uint8).ravel()))


class GreedySelector(TransformerMixin, BaseEstimator):
    """Base class of greedy sample/feature selectors (not for direct use).

    Parameters
    ----------
    n_to_select : int, float or None
        Number of items to select: an int in [1, n_candidates], a float in
        (0, 1] (fraction of the candidates, rounded down, at least 1), or
        ``None`` for half of the candidates.
    selection_type : {"sample", "feature"}
        Select rows (samples: atomic environments or whole structures) or
        columns (features) of ``X``.
    kernel : {"linear", "precomputed"}
        ``"linear"``: ``X`` is a feature matrix (n_samples, n_features).
        ``"precomputed"``: ``X`` is a symmetric positive semi-definite kernel
        matrix (n_candidates, n_candidates).
    warm_start : bool
        If True and the selector was already fitted on the same ``X``, ``fit``
        keeps the previous selection and continues it up to the (larger)
        ``n_to_select``; the result equals one longer run.
    """

    def __init__(self, n_to_select=None, *, selection_type="sample", kernel="linear",
                 warm_start=False):
        self.n_to_select = n_to_select
        self.selection_type = selection_type
        self.kernel = kernel
        self.warm_start = warm_start

    # ------------------------------------------------------------------ hooks
    def _init_search(self, A, n_target):
        """Build the search state for candidates ``A``; return the forced first picks."""
        raise NotImplementedError

    def _score(self):
        """Scores of all candidates, shape (n_candidates,); larger is better."""
        raise NotImplementedError

    def _exhausted(self, idx):
        """Message if candidate ``idx`` adds nothing new (selection stops), else None."""
        raise NotImplementedError

    def _update(self, idx):
        """Update the state after selecting candidate ``idx``."""
        raise NotImplementedError

    def _finalize(self):
        """Set public diagnostics once the selection of this ``fit`` is done."""

    # ------------------------------------------------------------- validation
    def _validate_params(self):
        if self.selection_type not in _SELECTION_TYPES:
            raise ValueError(
                f"`selection_type` must be one of {_SELECTION_TYPES}; "
                f"got {self.selection_type!r}")
        if self.kernel not in _KERNELS:
            raise ValueError(f"`kernel` must be one of {_KERNELS}; got {self.kernel!r}")
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise TypeError(f"`warm_start` must be a bool; got {self.warm_start!r}")

    def _validate_X(self, X):
        """Return the candidate matrix A (rows = candidates, float64, C-contiguous)."""
        X = np.asarray(X)
        if X.dtype == object or not (np.issubdtype(X.dtype, np.number)
                                     or X.dtype == bool):
            raise TypeError(f"`X` must be a numeric array; got dtype {X.dtype}")
        if np.iscomplexobj(X):
            raise TypeError("`X` must be real; got a complex array")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"`X` must be a 2-D array; got {X.ndim} dimension(s), "
                             f"shape {X.shape}")
        if min(X.shape) < 2:
            raise ValueError(f"`X` needs at least 2 samples and 2 features; "
                             f"got shape {X.shape}")
        if not np.isfinite(X).all():
            bad = np.argwhere(~np.isfinite(X))[0]
            raise ValueError(f"`X` must be finite (no NaN or inf); got {X[tuple(bad)]} "
                             f"at X[{bad[0]}, {bad[1]}]")
        if self.kernel == "precomputed":
            if X.shape[0] != X.shape[1]:
                raise ValueError("with kernel='precomputed', `X` must be a square "
                                 f"kernel matrix; got shape {X.shape}")
            scale = np.abs(X).max()
            if not np.allclose(X, X.T, rtol=0.0, atol=1e-10 * max(scale, 1e-300)):
                raise ValueError("with kernel='precomputed', `X` must be symmetric; "
                                 f"max |X - X.T| = {np.abs(X - X.T).max():.3g}")
            return np.ascontiguousarray(X)
        if self.selection_type == "feature":
            return np.ascontiguousarray(X.T)
        return np.ascontiguousarray(X)

    def _resolve_n_to_select(self, n_candidates):
        n = self.n_to_select
        what = "features" if self.selection_type == "feature" else "samples"
        if self.kernel == "precomputed":
            what = "candidates (rows of the kernel)"
        if n is None:
            return max(n_candidates // 2, 1)
        if isinstance(n, (bool, np.bool_)):
            raise TypeError(f"`n_to_select` must be an int, a float or None; got {n!r}")
        if isinstance(n, numbers.Integral):
            if not 1 <= n <= n_candidates:
                raise ValueError(f"`n_to_select` must be in [1, {n_candidates}] (the "
                                 f"number of {what}); got {n}")
            return int(n)
        if isinstance(n, numbers.Real):
            if not 0.0 < n <= 1.0:
                raise ValueError("a float `n_to_select` is a fraction and must be in "
                                 f"(0, 1]; got {n}")
            return max(int(n_candidates * n), 1)
        raise TypeError(f"`n_to_select` must be an int, a float or None; got {n!r}")

    # -------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Select ``n_to_select`` samples or features of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or (n, n) if kernel="precomputed"
            Feature matrix (for example per-atom SOAP features, or per-structure
            features for selecting whole structures), or a kernel matrix.
        y : None
            Ignored; present for scikit-learn compatibility.

        Returns
        -------
        self : object
            The fitted selector.
        """
        self._validate_params()
        A = self._validate_X(X)
        n_target = self._resolve_n_to_select(A.shape[0])
        fingerprint = _fingerprint(A)
        search_params = self._search_params()
        if self.warm_start and hasattr(self, "selected_idx_"):
            changed = sorted(name for name, value in search_params.items()
                             if value != self._search_params_fitted[name])
            if changed:
                raise ValueError("`warm_start=True` only allows a larger `n_to_select`; "
                                 f"parameters changed since the previous fit: {changed}")
            if fingerprint != self._fingerprint:
                raise ValueError("`warm_start=True` needs the same `X` as the previous "
                                 "fit; got a different matrix (shape or values)")
            if n_target < self.n_selected_:
                raise ValueError(f"with `warm_start=True`, `n_to_select` must be >= the "
                                 f"{self.n_selected_} items already selected; "
                                 f"got {n_target}")
            selected = list(self.selected_idx_)
            if self._stop_reason is not None:
                # nothing new can be found; repeat the warning for this call
                self._warn_stopped(len(selected), n_target)
                return self
        else:
            # a new selection: nothing of an earlier fit survives (and a failed fit leaves no
            # previous selection to warm-start from)
            reset_fitted(self)
            self._fingerprint = fingerprint
            self._search_params_fitted = search_params
            self._stop_reason = None
            self._taken = np.zeros(A.shape[0], dtype=bool)
            selected = []
            for idx in self._init_search(A, n_target):
                self._take(int(idx), selected)
        self.n_samples_in_, self.n_features_in_ = np.shape(X)
        self._run(selected, n_target)
        self.selected_idx_ = np.asarray(selected, dtype=np.int64)
        self.n_selected_ = len(selected)
        self.stop_reason_ = self._stop_reason  # why fewer than n_to_select were made, else None
        self.support_ = self._taken.copy()
        self._finalize()
        return self

    def _search_params(self):
        # repr: parameters may be arrays (FPS initialize), which == cannot compare
        return {name: repr(value) for name, value in self.get_params(deep=False).items()
                if name not in ("n_to_select", "warm_start")}

    def _take(self, idx, selected):
        self._update(idx)
        self._taken[idx] = True
        selected.append(idx)

    def _run(self, selected, n_target):
        while len(selected) < n_target:
            idx = int(masked_argmax(self._score(), self._taken))
            reason = self._exhausted(idx)
            if reason is not None:
                self._stop_reason = reason
                self._warn_stopped(len(selected), n_target)
                return
            self._take(idx, selected)

    def _warn_stopped(self, n_selected, n_target):
        warnings.warn(
            f"{type(self).__name__} stopped after {n_selected} of {n_target} "
            f"selections (n_to_select={n_target} requested, {n_selected} made): {self._stop_reason} "
            f"The remaining {n_target - n_selected} picks are not made; `selected_idx_` holds {n_selected} indices.",
            SelectionWarning, stacklevel=4)

    # -------------------------------------------------------------- transform
    def get_support(self, indices=False):
        """Mask or indices of the selected items.

        Parameters
        ----------
        indices : bool, default=False
            If True return sorted integer indices, otherwise a boolean mask.

        Returns
        -------
        ndarray of bool, shape (n_candidates,), or of int64, shape (n_selected_,)
        """
        check_is_fitted(self, "support_")
        if indices:
            return np.flatnonzero(self.support_)
        return self.support_.copy()

    def transform(self, X):
        """Keep the selected features (columns) or samples (rows) of ``X``.

        Feature selection returns ``X[:, get_support()]``: the selected columns
        in increasing index order, as scikit-learn's and skmatter's feature
        selectors do, so the selector works inside a ``Pipeline``.

        Sample selection returns ``X[selected_idx_]``: the selected rows in
        selection order (the sparse/representative points). Unlike scikit-learn
        transformers this changes the number of rows, so do not put a sample
        selector in a ``Pipeline``; skmatter's sample selectors have no transform.

        With ``kernel="precomputed"``, pass a kernel whose rows (sample) or
        columns (feature) are the fitted candidates, e.g. ``K_NN`` gives
        ``K_MN`` (sample) or ``K_NM`` (feature).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Same number of candidates (rows for "sample", columns for "feature")
            as in ``fit``.

        Returns
        -------
        ndarray of float64
            Shape (n_samples, n_selected_) or (n_selected_, n_features).
        """
        check_is_fitted(self, "selected_idx_")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"`X` must be a 2-D array; got shape {X.shape}")
        if self.selection_type == "feature":
            n_fit = self.support_.shape[0]
            if X.shape[1] != n_fit:
                raise ValueError(f"`X` must have {n_fit} columns (as in fit); "
                                 f"got {X.shape[1]}")
            return X[:, self.support_]
        n_fit = self.support_.shape[0]
        if X.shape[0] != n_fit:
            raise ValueError(f"`X` must have {n_fit} rows (as in fit); got {X.shape[0]}")
        return X[self.selected_idx_]
