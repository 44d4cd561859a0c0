"""Deterministic CUR selection of samples or features by leverage scores.

CUR (Mahoney & Drineas, PNAS 106, 697 (2009), doi:10.1073/pnas.0803205106) in
the greedy, deterministic form used for sparse points and feature reduction
(Imbalzano et al., J. Chem. Phys. 148, 241730 (2018), doi:10.1063/1.5024611):
the candidates are the rows a_i of A (A = X for samples, A = Xᵀ for features).
At each step

1. the leverage score of every candidate is π_i = Σ_{j<k} U_ij², U the top-k
   left singular vectors of the current residual A;
2. the candidate with the largest π (first index among ties) is selected;
3. the residual is orthogonalised to it, A ← A (I − q qᵀ) with
   q = a_c / |a_c| (a_c its current residual row), and π is recomputed
   every ``recompute_every`` selections.

This is the algorithm of ``skmatter.sample_selection.CUR`` /
``skmatter.feature_selection.CUR`` 0.4.1 with the same k and
recompute_every, and it selects the same indices. It is much faster because
it never forms the orthogonalised A nor its SVD: with N candidates of
dimension D it works either on the residual Gram matrix G = A Aᵀ (N ≤ D or a
precomputed kernel), updated as G ← G − g_c g_cᵀ / G_cc, or on the residual
covariance C = Aᵀ A (N > D), updated as C ← (I − q qᵀ) C (I − q qᵀ), with the
leverage scores from the top-k eigenvectors v of C as π = (A P v)² / |A P v|²
(P the projector orthogonal to the selected rows).
"""

import numbers

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from threadpoolctl import ThreadpoolController

from ._base import GreedySelector
from ._selection_kernels import (
    symmetric_rank1_downdate,
    symmetric_rank1_downdate_parallel,
    symmetric_rank2_downdate,
    symmetric_rank2_downdate_parallel,
)

# dense LAPACK below this size; Lanczos (ARPACK) with a warm start above
_DENSE_EIGH_MAX = 256
# matrices at least this wide are updated with threads
_PARALLEL_WIDTH = 1024


_THREADPOOLS = []


def _single_threaded_blas():
    # The eigenproblems are a few hundred wide: BLAS threads only add
    # synchronisation, which costs 10x on a loaded machine.
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1, user_api="blas")


def _top_eigenpairs(M, k, v0):
    """Largest k eigenvalues (descending) and eigenvectors of symmetric M."""
    with _single_threaded_blas():
        return _top_eigenpairs_unlimited(M, k, v0)


def _top_eigenpairs_unlimited(M, k, v0):
    n = M.shape[0]
    if n > _DENSE_EIGH_MAX and k < n // 4:
        try:
            w, V = eigsh(M, k=k, which="LA", v0=v0, tol=0.0,
                         ncv=min(n, max(2 * k + 1, 24)))
        except ArpackNoConvergence:
            w, V = scipy.linalg.eigh(M, subset_by_index=[n - k, n - 1])
    else:
        w, V = scipy.linalg.eigh(M, subset_by_index=[n - k, n - 1])
    order = np.argsort(w)[::-1]
    return w[order], V[:, order]


class CUR(GreedySelector):
    """Deterministic, iterative CUR selection of samples (rows) or features (columns).

    Parameters
    ----------
    n_to_select : int, float or None, default=None
        Number of items to select: an int in [1, n_candidates], a float in
        (0, 1] (fraction of the candidates), or None for half of them.
    selection_type : {"sample", "feature"}, default="sample"
        Select rows (atomic environments, or whole structures when ``X`` holds
        one feature vector per structure) or columns (features) of ``X``.
    k : int, default=1
        Number of singular vectors in the leverage score; 1 <= k < min(X.shape).
    recompute_every : int, default=1
        Orthogonalise the residual after every selection and recompute the
        leverage scores every ``recompute_every`` selections; 0 ranks the
        candidates once by the leverage scores of ``X`` (no orthogonalisation).
    tolerance : float, default=1e-12
        The residual counts as exhausted (numerical rank reached) when its
        largest squared singular value, or the squared residual norm of the
        next pick, is <= ``tolerance`` × the largest squared singular value of
        ``X``. Unlike skmatter's absolute ``tolerance`` (which only silences
        the orthogonaliser), this one is relative and stops the selection.
    kernel : {"linear", "precomputed"}, default="linear"
        ``"precomputed"``: ``X`` is a symmetric PSD kernel matrix between the
        candidates, and CUR runs on the kernel's feature map (kernel CUR).
    warm_start : bool, default=False
        Continue a previous selection on the same ``X`` up to a larger
        ``n_to_select``; gives the same sequence as one longer run.

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
    leverage_ : ndarray of float64, shape (n_candidates,)
        Leverage scores π of all candidates in ``X`` before any selection
        (they sum to k).
    leverage_at_select_ : ndarray of float64, shape (`n_selected_`,)
        Leverage score of each selected item in the residual at the time it
        was selected.
    n_samples_in_, n_features_in_ : int
        Shape of ``X`` seen in ``fit``.

    Notes
    -----
    Rank-deficient input: after r selections (r the numerical rank of ``X``,
    see ``tolerance``) the residual is zero and the leverage scores are noise.
    The selection then stops with a
    :class:`~kernelpot.selection._base.SelectionWarning`: ``n_selected_ = r``
    and the remaining picks are not made (no index is selected twice, and no
    noise-driven pick is made; skmatter continues with picks driven by rounding
    noise). Use FPS, or CUR on a non-linear kernel (``kernel="precomputed"``),
    to select more items than the rank of the features.

    Examples
    --------
    >>> import numpy as np
    >>> from kernelpot.selection.cur import CUR
    >>> X = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [2.9, 0.1, 0.0],
    ...               [0.0, 0.0, 1.0]])
    >>> CUR(n_to_select=3).fit(X).selected_idx_
    array([0, 1, 3])
    """

    def __init__(self, n_to_select=None, *, selection_type="sample", k=1,
                 recompute_every=1, tolerance=1e-12, kernel="linear", warm_start=False):
        super().__init__(n_to_select, selection_type=selection_type, kernel=kernel,
                         warm_start=warm_start)
        self.k = k
        self.recompute_every = recompute_every
        self.tolerance = tolerance

    def _check_cur_params(self, A):
        limit = A.shape[0] if self.kernel == "precomputed" else min(A.shape)
        if not isinstance(self.k, numbers.Integral) or isinstance(self.k, bool):
            raise TypeError(f"`k` must be an int; got {self.k!r}")
        if not 1 <= self.k < limit:
            raise ValueError(f"`k` must be in [1, {limit - 1}] (below min(X.shape) = "
                             f"{limit}); got {self.k}")
        r = self.recompute_every
        if not isinstance(r, numbers.Integral) or isinstance(r, bool) or r < 0:
            raise ValueError(f"`recompute_every` must be an int >= 0; got {r!r}")
        tol = self.tolerance
        if (not isinstance(tol, numbers.Real) or isinstance(tol, bool)
                or not np.isfinite(tol) or not 0.0 <= tol < 1.0):
            raise ValueError(f"`tolerance` must be a float in [0, 1); got {tol!r}")

    def _init_search(self, A, n_target):
        self._check_cur_params(A)
        n, d = A.shape
        self._gram_mode = self.kernel == "precomputed" or n <= d
        if self.kernel == "precomputed":
            self._M = A.copy()
        elif self._gram_mode:
            self._M = A @ A.T
        else:
            self._A = A
            self._M = A.T @ A
            self._Q = np.empty((n_target, d))
        # fixed pseudo-random start mixed into the Lanczos warm start, so that
        # the start is never orthogonal to the wanted eigenvector
        self._v_mix = np.random.default_rng(0).standard_normal(self._M.shape[0])
        self._v_prev = None
        self._n_orth = 0
        self._residual = None
        self._compute_leverage()
        self._lambda_ref = self._lambda_top
        self.leverage_ = self._pi.copy()
        self._pi_at_select = []
        return []

    def _compute_leverage(self):
        M = self._M
        v0 = self._v_mix if self._v_prev is None else (
            self._v_prev + 1e-3 * self._v_mix / np.linalg.norm(self._v_mix))
        w, V = _top_eigenpairs(M, self.k, v0)
        self._v_prev = V[:, 0].copy()
        self._lambda_top = float(w[0])
        if self._gram_mode:
            self._pi = np.einsum("ij,ij->i", V, V)
            return
        Q = self._Q[:self._n_orth]
        W = V - Q.T @ (Q @ V)
        U = self._A @ W
        norms = np.linalg.norm(U, axis=0)
        # an exhausted residual (all picks orthogonalised away) has U = 0
        U /= np.where(norms > 0.0, norms, 1.0)
        self._pi = np.einsum("ij,ij->i", U, U)

    def _score(self):
        return self._pi

    def _exhausted(self, idx):
        if self.recompute_every == 0:
            return None
        floor = self.tolerance * self._lambda_ref
        if self._lambda_top <= floor:
            return (f"the residual is exhausted (largest squared singular value "
                    f"{self._lambda_top:.3g} <= tolerance x {self._lambda_ref:.3g}); "
                    f"the numerical rank of X is {self._n_orth}.")
        if self._gram_mode:
            norm2 = float(self._M[idx, idx])
        else:
            self._residual = (idx, self._residual_row(idx))
            norm2 = float(self._residual[1] @ self._residual[1])
        if norm2 <= floor:
            return (f"the best candidate {idx} has a squared residual norm {norm2:.3g} "
                    f"<= tolerance x {self._lambda_ref:.3g}; the residual is "
                    f"exhausted (numerical rank of X reached).")
        return None

    def _residual_row(self, idx):
        # classical Gram-Schmidt twice: orthogonal to working precision
        r = self._A[idx].copy()
        Q = self._Q[:self._n_orth]
        for _ in range(2):
            r -= Q.T @ (Q @ r)
        return r

    def _update(self, idx):
        self._pi_at_select.append(float(self._pi[idx]))
        if self.recompute_every == 0:
            return
        if self._gram_mode:
            g = self._M[idx].copy()
            downdate = (symmetric_rank1_downdate_parallel if g.size >= _PARALLEL_WIDTH
                        else symmetric_rank1_downdate)
            downdate(self._M, g, 1.0 / g[idx])
        else:
            self._deflate_covariance(idx)
        self._n_orth += 1
        if self._n_orth % self.recompute_every == 0:
            self._compute_leverage()

    def _deflate_covariance(self, idx):
        if self._residual is not None and self._residual[0] == idx:
            r = self._residual[1]
        else:
            r = self._residual_row(idx)
        self._residual = None
        q = r / np.linalg.norm(r)
        if self._n_orth == self._Q.shape[0]:  # warm start beyond the buffer
            self._Q = np.concatenate([self._Q, np.empty_like(self._Q[:max(self._n_orth, 1)])])
        self._Q[self._n_orth] = q
        y = self._M @ q
        downdate = (symmetric_rank2_downdate_parallel if q.size >= _PARALLEL_WIDTH
                    else symmetric_rank2_downdate)
        downdate(self._M, q, y - (0.5 * (q @ y)) * q)

    def _finalize(self):
        self.leverage_at_select_ = np.asarray(self._pi_at_select, dtype=np.float64)
