"""Farthest-point sampling (FPS) of samples or features, on features or on a kernel.

FPS picks, one at a time, the candidate farthest from all candidates picked so
far (Eldar et al., IEEE Trans. Image Process. 6, 1305 (1997),
doi:10.1109/83.623193; for atomistic sparse points see Imbalzano et al.,
J. Chem. Phys. 148, 241730 (2018), doi:10.1063/1.5024611). Distances use the
Gram form

    d²(i, j) = K_ii − 2 K_ij + K_jj,

with K = X Xᵀ (samples) or Xᵀ X (features) for ``kernel="linear"``, or a kernel
given with ``kernel="precomputed"`` (then d is the distance in the kernel's
feature space). With the same first point this selects the same indices as
``skmatter.sample_selection.FPS`` / ``skmatter.feature_selection.FPS`` 0.4.1
(up to exact ties of rounded distances).

On feature matrices the search is lazy (:mod:`._fps_lazy_kernels`): each
candidate's distance to the selection is only brought up to date when it could
be the next pick, and the triangle inequality (Elkan, ICML 2003) skips picks
that cannot be a candidate's nearest. skmatter's FPS instead reads all of X
once per pick. On 20,000 × 500 Gaussian noise, 500 picks need a third of the
distances; on SOAP features a few per cent. The distances of the remaining
candidates, needed only for ``hausdorff_``, are computed at the end in one
matrix product (or with the triangle inequality where that skips most). For up
to 2,000 candidates of which at least 1/8 are selected (typically feature
selection), the Gram matrix is formed once instead. Beyond 8,192 picks the
pick-to-pick distance table would be too large and the eager search with the
triangle inequality is used.
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

from . import _fps_lazy_kernels as lazy
from ._base import GreedySelector
from ._selection_kernels import fps_screen, fps_update_kernel, fps_update_rows, fps_update_rows_parallel

# rows closer than this (relative to the largest squared norm) coincide
_COINCIDENT = 1e-13
# safety margin of the pruning test, relative to the largest squared norm
_PRUNE_MARGIN = 1e-10
# above this many rows to evaluate, threads pay off
_PARALLEL_ROWS = 4096
# up to this many candidates, and when at least 1/8 of them are to be selected,
# one Gram matrix (BLAS-3) is cheaper than a matrix-vector product per pick
_GRAM_MAX_CANDIDATES = 2000
_GRAM_MIN_FRACTION = 0.125
# the lazy search keeps a float32 pick-to-pick distance table: 8192 picks = 268 MB
_LAZY_MAX_PICKS = 8192
# float32 rounding of that table, relative to the largest squared norm
_FLOAT32_MARGIN = 1e-6
# rows sampled to decide how the final distances are computed, and the fraction
# of evaluations above which one matrix product beats the triangle inequality
_FINISH_SAMPLE = 256
_FINISH_GEMM_FRACTION = 0.25
_FINISH_BLOCK_ROWS = 4096


class FPS(GreedySelector):
    """Farthest-point sampling over samples (rows) or features (columns).

    Parameters
    ----------
    n_to_select : int, float or None, default=None
        Number of items to select: an int in [1, n_candidates], a float in
        (0, 1] (fraction of the candidates), or None for half of them.
    selection_type : {"sample", "feature"}, default="sample"
        Select rows (atomic environments, or whole structures when ``X`` holds
        one feature vector per structure) or columns (features) of ``X``.
    initialize : int, "random" or sequence of int, default=0
        First selection(s): an index, ``"random"`` (drawn with
        ``random_state``), or a list of indices taken in that order before the
        farthest-point steps start (at most ``n_to_select`` of them, no repeats).
    kernel : {"linear", "precomputed"}, default="linear"
        ``"linear"``: Euclidean distances between rows/columns of ``X``.
        ``"precomputed"``: ``X`` is a symmetric PSD kernel matrix between the
        candidates and d² = K_ii − 2 K_ij + K_jj.
    warm_start : bool, default=False
        Continue a previous selection on the same ``X`` up to a larger
        ``n_to_select``; gives the same sequence as one longer run.
    random_state : int, RandomState or None, default=0
        Only used when ``initialize="random"``.

    Attributes
    ----------
    selected_idx_ : ndarray of int64, shape (`n_selected_`,)
        Selected indices in selection order.
    n_selected_ : int
        Number of selections made (< n_to_select only if the selection stopped
        early, see Notes).
    stop_reason_ : str or None
        Why the selection stopped before ``n_to_select`` (the warning's
        reason), else None.
    support_ : ndarray of bool, shape (n_candidates,)
        Mask of the selected items.
    hausdorff_ : ndarray of float64, shape (n_candidates,)
        Distance (not squared; units of ``X``) of every candidate to its nearest
        selected item; 0 for the selected items. Its maximum over the
        candidates is the Hausdorff distance between the data set and the
        selection.
    hausdorff_at_select_ : ndarray of float64, shape (`n_selected_`,)
        Distance of each selected item to the items selected before it, at the
        time it was selected (``inf`` for the initial picks). skmatter stores the
        squared values.
    n_samples_in_, n_features_in_ : int
        Shape of ``X`` seen in ``fit``.

    Notes
    -----
    If all candidates not yet selected coincide with selected ones (distance
    below 1e-13 × the largest squared norm, e.g. duplicate environments), no
    candidate adds anything: the selection stops with a
    :class:`~kernelpot.selection._base.SelectionWarning`, ``n_selected_`` is the
    number of distinct points found, and the remaining picks are not made (no
    index is selected twice).

    Examples
    --------
    >>> import numpy as np
    >>> from kernelpot.selection.fps import FPS
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [0.1, 0.0], [0.0, 2.0]])
    >>> FPS(n_to_select=3).fit(X).selected_idx_
    array([0, 3, 1])
    """

    def __init__(self, n_to_select=None, *, selection_type="sample", initialize=0,
                 kernel="linear", warm_start=False, random_state=0):
        super().__init__(n_to_select, selection_type=selection_type, kernel=kernel,
                         warm_start=warm_start)
        self.initialize = initialize
        self.random_state = random_state

    def _initial_indices(self, n_candidates, n_target):
        init = self.initialize
        if isinstance(init, str):
            if init != "random":
                raise ValueError("`initialize` must be an int, 'random' or a list of "
                                 f"ints; got {init!r}")
            return [int(check_random_state(self.random_state).randint(n_candidates))]
        if isinstance(init, numbers.Integral) and not isinstance(init, bool):
            indices = [int(init)]
        elif isinstance(init, (list, tuple, np.ndarray)) and len(init) > 0 and all(
                isinstance(i, numbers.Integral) and not isinstance(i, bool)
                for i in np.asarray(init).ravel().tolist()):
            indices = [int(i) for i in np.asarray(init).ravel()]
        else:
            raise ValueError("`initialize` must be an int, 'random' or a non-empty "
                             f"list of ints; got {init!r}")
        for i in indices:
            if not 0 <= i < n_candidates:
                raise ValueError(f"`initialize` indices must be in [0, {n_candidates}); "
                                 f"got {i}")
        if len(set(indices)) != len(indices):
            raise ValueError(f"`initialize` must not repeat an index; got {indices}")
        if len(indices) > n_target:
            raise ValueError(f"`initialize` has {len(indices)} indices, more than "
                             f"n_to_select={n_target}")
        return indices

    def _init_search(self, A, n_target):
        n = A.shape[0]
        initial = self._initial_indices(n, n_target)
        self._use_gram = self.kernel == "precomputed" or (
            n <= _GRAM_MAX_CANDIDATES and n_target >= _GRAM_MIN_FRACTION * n)
        if self._use_gram and self.kernel != "precomputed":
            A = A @ A.T
        self._A = A
        if self._use_gram:
            self._norms = np.ascontiguousarray(np.diag(A))
        else:
            self._norms = np.einsum("ij,ij->i", A, A)
        scale = max(float(np.max(np.abs(self._norms))), np.finfo(float).tiny)
        self._coincident = _COINCIDENT * scale
        self._margin = _PRUNE_MARGIN * scale
        self._lazy_margin = (_PRUNE_MARGIN + _FLOAT32_MARGIN) * scale
        self._d2 = np.full(n, np.inf)
        self._nearest = np.full(n, -1, dtype=np.int64)
        self._d2_at_select = []
        self._order = []
        self._lazy = not self._use_gram and n_target <= _LAZY_MAX_PICKS
        eager = not (self._use_gram or self._lazy)
        self._selected_rows = np.empty((n_target if eager else 0, A.shape[1]))
        self._candidates = np.empty(n if eager else 0, dtype=np.int64)
        self._n_distance_evaluations = 0
        if self._lazy:
            self._upto = np.zeros(n, dtype=np.int64)
            self._centre_norms = np.empty(0)  # no buffers of an earlier fit
            self._reserve(n_target)
        return initial

    def _reserve(self, capacity):
        """Grow the lazy search's pick buffers to ``capacity`` picks (warm starts)."""
        old = getattr(self, "_centre_norms", np.empty(0))
        if capacity <= old.shape[0]:
            return
        m = old.shape[0]
        centres = np.empty((capacity, self._A.shape[1]))
        centre_d2 = np.empty((capacity, capacity), dtype=np.float32)
        if m:
            centres[:m] = self._centres
            centre_d2[:m, :m] = self._centre_d2
        self._centres, self._centre_d2 = centres, centre_d2
        self._centre_norms = np.concatenate([old, np.empty(capacity - m)])
        self._lazy_order = np.empty(capacity, dtype=np.int64)
        self._lazy_d2_at_select = np.empty(capacity)

    def _score(self):
        return self._d2

    def _exhausted(self, idx):
        if self._d2[idx] > self._coincident:
            return None
        return (f"all remaining candidates coincide with selected ones (largest "
                f"squared distance {self._d2[idx]:.3g} <= {self._coincident:.3g}).")

    def _update(self, idx):
        self._d2_at_select.append(float(self._d2[idx]))
        pos = len(self._order)
        if self._use_gram:
            fps_update_kernel(self._A, self._norms, idx, self._d2)
            self._n_distance_evaluations += self._A.shape[0]
        elif self._lazy:
            self._n_distance_evaluations += lazy.refresh_row(
                self._A, self._norms, idx, pos, self._centres, self._centre_norms,
                self._centre_d2, self._lazy_margin, self._d2, self._nearest, self._upto)
            self._d2_at_select[-1] = float(self._d2[idx])
            lazy.add_centre(self._A, self._norms, idx, pos, self._centres, self._centre_norms,
                            self._centre_d2, self._d2, self._nearest, self._upto)
        else:
            self._update_features(idx, pos)
        self._d2[idx] = 0.0
        self._order.append(idx)

    def _lazy_refresh(self, rows):
        """Bring ``rows`` up to date with every pick; return the distances evaluated."""
        return int(lazy.refresh_rows(
            self._A, self._norms, np.asarray(rows, dtype=np.int64), len(self._order),
            self._centres, self._centre_norms, self._centre_d2, self._lazy_margin,
            self._d2, self._nearest, self._upto))

    def _run(self, selected, n_target):
        if not self._lazy:
            return super()._run(selected, n_target)
        self._reserve(n_target)
        start = len(self._order)
        m, evaluated = lazy.lazy_select(
            self._A, self._norms, self._taken, start, n_target, self._coincident,
            self._lazy_margin, self._centres, self._centre_norms, self._centre_d2,
            self._d2, self._nearest, self._upto, self._lazy_order, self._lazy_d2_at_select)
        self._n_distance_evaluations += int(evaluated)
        picks = [int(i) for i in self._lazy_order[start:m]]
        self._order.extend(picks)
        selected.extend(picks)
        self._d2_at_select.extend(float(v) for v in self._lazy_d2_at_select[start:m])
        if m < n_target:
            stale = np.flatnonzero(~self._taken)
            self._lazy_refresh(stale)
            self._stop_reason = self._exhausted(stale[np.argmax(self._d2[stale])])
            self._warn_stopped(m, n_target)

    def _lazy_finish(self):
        """Bring every candidate's distance up to date (for ``hausdorff_``)."""
        m = len(self._order)
        stale = np.flatnonzero((self._upto < m) & ~self._taken)
        if stale.size == 0:
            return
        sample, rest = stale[:_FINISH_SAMPLE], stale[_FINISH_SAMPLE:]
        possible = int(np.sum(m - self._upto[sample]))
        evaluated = self._lazy_refresh(sample)
        self._n_distance_evaluations += evaluated
        if rest.size == 0:
            return
        if evaluated <= _FINISH_GEMM_FRACTION * possible:
            self._n_distance_evaluations += self._lazy_refresh(rest)
            return
        self._n_distance_evaluations += int(np.sum(m - self._upto[rest]))
        centres, centre_norms = self._centres[:m], self._centre_norms[:m]
        for lo in range(0, rest.size, _FINISH_BLOCK_ROWS):
            rows = rest[lo:lo + _FINISH_BLOCK_ROWS]
            d2 = (self._norms[rows, None] + centre_norms) - 2.0 * (self._A[rows] @ centres.T)
            best = np.argmin(d2, axis=1)
            value = d2[np.arange(rows.size), best]
            lower = value < self._d2[rows]
            self._d2[rows[lower]] = value[lower]
            self._nearest[rows[lower]] = best[lower]
            self._upto[rows] = m

    def _update_features(self, idx, pos):
        A, a_s = self._A, self._A[idx]
        if pos == self._selected_rows.shape[0]:  # warm start beyond the buffer
            self._selected_rows = np.concatenate(
                [self._selected_rows, np.empty_like(self._selected_rows[:max(pos, 1)])])
        order = np.asarray(self._order, dtype=np.int64)
        d2_centres = ((self._norms[order] + self._norms[idx])
                      - 2.0 * (self._selected_rows[:pos] @ a_s))
        n = fps_screen(self._d2, self._nearest, d2_centres, self._margin,
                       self._candidates)
        if n > _PARALLEL_ROWS:
            fps_update_rows_parallel(A, self._norms, idx, self._candidates, n,
                                     self._d2, self._nearest, pos)
        else:
            fps_update_rows(A, self._norms, idx, self._candidates, n, self._d2,
                            self._nearest, pos)
        self._n_distance_evaluations += n
        self._nearest[idx] = pos
        self._selected_rows[pos] = a_s

    def _finalize(self):
        if self._lazy:
            self._lazy_finish()
        self.hausdorff_ = np.sqrt(np.maximum(self._d2, 0.0))
        self.hausdorff_[self.support_] = 0.0
        self.hausdorff_at_select_ = np.sqrt(np.maximum(self._d2_at_select, 0.0))
