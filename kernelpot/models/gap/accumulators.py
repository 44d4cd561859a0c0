"""Block-by-block solvers of the sparse-GPR least-squares problem, and the partial factor of a worker.

Both accumulators take whitened design rows ``A = Sigma^{-1/2} K_NM`` and
targets ``b`` one block at a time, so their memory is ``O(M^2)`` whatever
the number of observations. A worker (a local process or a Dask worker)
builds the blocks of some structures into a partial state
(:func:`partial_factor`), and the caller merges the partial states in task
order: a sum of normal equations, or the QR of the stacked R factors (TSQR).

The auto choice (:mod:`kernelpot.models.gap.auto`) keeps one factor per
group of observations (:class:`GroupFactor`: energies, forces, virials),
stacks them rescaled per noise candidate (:func:`combined_factor`) and
solves for any subset of the sparse points (:func:`solve_columns`).
"""

from __future__ import annotations

import os
from contextlib import nullcontext

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

from ...parallel.blocks import dask_client, map_ordered, n_workers
from ...utils.linalg import cholesky
from .labels import Labels

# column block size of dtpqrt (LAPACK recommends 32-64)
_TPQRT_BLOCK = 64

__all__ = ["QRAccumulator", "NormalAccumulator", "partial_factor", "accumulate_parallel", "GroupFactor",
           "combined_factor", "solve_columns"]


class QRAccumulator:
    """R factor of ``[[L^T, 0], [A_1, b_1], [A_2, b_2], ...]``, one block at a time (TSQR).

    Parameters
    ----------
    Lt : ndarray of shape (m, m)
        Upper Cholesky factor of ``K_MM`` (the prior rows); see :meth:`empty`
        for a worker's accumulator without them.
    """

    def __init__(self, Lt):
        m = Lt.shape[0]
        self.m = m
        # square (m + 1) x (m + 1): the zero last row (a zero observation) lets
        # every block be added by the triangular-pentagonal QR below
        self.R = np.zeros((m + 1, m + 1), order="F")
        self.R[:m, :m] = Lt

    @classmethod
    def empty(cls, m):
        """Accumulator of design rows only (a worker's part), for ``m`` sparse points.

        Its R starts at zero: the QR of ``[0; A]`` is that of ``A``.
        """
        return cls(np.zeros((m, m)))

    @classmethod
    def from_state(cls, state):
        """Accumulator continuing from a :meth:`state` (e.g. one saved to disk by a checkpointed fit).

        ``state`` (m + 1, m + 1) is taken over, not copied: it is factored in place by the next :meth:`add`.
        """
        accumulator = cls.__new__(cls)
        accumulator.m = state.shape[0] - 1
        accumulator.R = np.asfortranarray(state)
        return accumulator

    @classmethod
    def from_solution(cls, R, alpha):
        """Accumulator holding a solved problem: its :meth:`solve` output ``R`` (m, m) and coefficients.

        The augmented factor of ``[[L^T, 0], [A, b]]`` is ``[[R, z], [0, r]]``
        with ``z = R alpha``; its residual ``r`` never feeds back into ``R``
        or ``z``, so a zero stands in. Adding rows to it then equals adding
        them to the accumulator that produced ``R`` (incremental learning).
        """
        accumulator = cls(R)
        accumulator.R[: accumulator.m, accumulator.m] = R @ alpha
        return accumulator

    def add(self, A, b):
        """Add rows ``A`` (n, m) with targets ``b`` (n,)."""
        if A.shape[0] == 0:
            return
        m, top = self.m, self.R
        self.R = None  # replaced by the factor of the stacked rows
        block = np.empty((A.shape[0], m + 1), order="F")
        block[:, :m] = A
        block[:, m] = b
        # [R; block] with R upper triangular: LAPACK's triangular-pentagonal
        # QR skips R's zeros, 2 n m² flops instead of (4/3) m³ + 2 n m²
        # for a general QR of the stack, and factors in place.
        R, _, _, info = lapack.dtpqrt(0, min(_TPQRT_BLOCK, m + 1), top, block, overwrite_a=1, overwrite_b=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"LAPACK dtpqrt failed with info={info}")
        self.R = R

    def state(self):
        """ndarray (m + 1, m + 1), Fortran order: the R factor so far (what a worker sends back)."""
        return self.R

    def merge(self, state):
        """Add a worker's :meth:`state` (its R rows are rows of the same least-squares problem)."""
        self.add(state[:, : self.m], state[:, self.m])

    def solve(self):
        """Upper ``R`` (m, m) with ``R^T R = K_MM + A^T A``, positive diagonal, and the coefficients."""
        m = self.m
        R, z = self.R[:m, :m], self.R[:m, m]
        # R is unique up to the signs of its rows: fix them so that serial,
        # blocked and distributed fits give the same factor.
        sign = np.where(np.diag(R) < 0, -1.0, 1.0)
        R, z = R * sign[:, None], z * sign
        return R, sla.solve_triangular(R, z)


class NormalAccumulator:
    """``A^T A + K_MM`` and ``A^T b`` summed over blocks, solved by Cholesky.

    Parameters
    ----------
    kmm : ndarray of shape (m, m)
        Covariance of the sparse points (+ jitter), eV²; see :meth:`empty`.
    """

    def __init__(self, kmm):
        self.H = kmm.copy()
        self.r = np.zeros(kmm.shape[0])

    @classmethod
    def empty(cls, m):
        """Accumulator of design rows only (a worker's part), for ``m`` sparse points."""
        return cls(np.zeros((m, m)))

    @classmethod
    def from_solution(cls, U, alpha):
        """Accumulator holding a solved problem: ``H = U^T U`` and ``A^T b = H alpha`` (incremental learning)."""
        accumulator = cls(U.T @ U)
        accumulator.r = accumulator.H @ alpha
        return accumulator

    def add(self, A, b):
        """Add rows ``A`` (n, m) with targets ``b`` (n,)."""
        self.H += A.T @ A
        self.r += A.T @ b

    def state(self):
        """``(A^T A, A^T b)`` so far (what a worker sends back)."""
        return self.H, self.r

    def merge(self, state):
        """Add a worker's :meth:`state`."""
        H, r = state
        self.H += H
        self.r += r

    def solve(self):
        """Upper Cholesky factor ``U`` of ``K_MM + A^T A`` and the coefficients."""
        try:
            U = cholesky(self.H, lower=False, check_finite=True)
        except np.linalg.LinAlgError:
            raise np.linalg.LinAlgError(
                "the normal equations are not positive definite; use solver='qr' or increase `jitter`"
            ) from None
        alpha = sla.cho_solve((U, False), self.r)
        return U, alpha


def partial_factor(builder, solver, atoms_list, labels, blocks):
    """Partial accumulator state of some blocks of structures (runs on a worker).

    Parameters
    ----------
    builder : DesignBuilder
        Design rows of the model (sparse points and ``e0`` chosen).
    solver : {"qr", "cholesky"}
    atoms_list : list of ase.Atoms
        The structures of this task.
    labels : Labels
        Their labels.
    blocks : list of list of int
        Indices into ``atoms_list``, one list per block.

    Returns
    -------
    ndarray or tuple of ndarray
        :meth:`QRAccumulator.state` or :meth:`NormalAccumulator.state`.
    """
    accumulator = QRAccumulator.empty(builder.n_sparse) if solver == "qr" else NormalAccumulator.empty(builder.n_sparse)
    for structures in blocks:
        A, y = builder.rows(atoms_list, structures, labels)
        accumulator.add(A, y)
        del A, y  # the next block is built without this one alive
    return accumulator.state()


def accumulate_parallel(model, builder, atoms_list, labels, blocks, accumulate):
    """Blocks of ``model``'s fit built by local processes or Dask workers; their partial factors merged here in order.

    The workers receive ``builder`` (what the rows depend on), not the model.
    """
    with dask_client(model.scheduler) if model.scheduler is not None else nullcontext() as client:
        n_tasks = min(len(blocks), n_workers(client) if client is not None else
                      (os.cpu_count() or 1) if model.n_jobs == -1 else model.n_jobs)
        tasks = []
        for group in np.array_split(np.arange(len(blocks)), n_tasks):
            structures = [s for g in group for s in blocks[g][0]]
            local = {s: i for i, s in enumerate(structures)}
            sub_labels = Labels(*[[getattr(labels, f)[s] for s in structures]
                                  for f in ("energies", "forces", "virials", "config_types")])
            tasks.append((model.solver, [atoms_list[s] for s in structures], sub_labels,
                          [[local[s] for s in blocks[g][0]] for g in group]))
        for state in map_ordered(partial_factor, builder, tasks, n_jobs=model.n_jobs, client=client,
                                 desc="SparseGPR fit blocks", verbose=bool(model.verbose)):
            accumulate.merge(state)
            del state


# The stage factors of the auto choice (kernelpot.models.gap.auto): one group of observations per factor,
# rescaled and stacked per noise candidate, solved for any subset of the sparse points.
class GroupFactor:
    """Rows ``[A b]`` of one observation group, kept as rows while fewer than ``m + 1``, else as their R factor."""

    def __init__(self, m):
        self.m = m
        self.rows = np.zeros((0, m + 1))
        self.qr = None

    def add(self, A, b):
        if A.shape[0] == 0:
            return
        if self.qr is None and self.rows.shape[0] + A.shape[0] <= self.m + 1:
            self.rows = np.vstack([self.rows, np.column_stack([A, b])])
            return
        if self.qr is None:
            self.qr = QRAccumulator.empty(self.m)
            self.qr.add(self.rows[:, : self.m], self.rows[:, self.m])
            self.rows = None
        self.qr.add(A, b)

    def stacked(self):
        """ndarray (r, m + 1): rows with the same ``[A b]^T [A b]`` as everything added."""
        return self.rows if self.qr is None else self.qr.R


def combined_factor(Lt, groups, factors, start=None):
    """Upper R (m + 1, m + 1) of ``[[L^T 0]; [A_g b_g] / c_g ...]``: the stage's problem for one noise candidate.

    ``groups`` are lists of :class:`GroupFactor` (fitting part, validation part) with one factor ``c_g``
    each; ``start``, if given, is a factor already holding ``L^T`` and some groups (its R is copied).
    """
    accumulator = QRAccumulator(Lt) if start is None else QRAccumulator.empty(Lt.shape[0])
    if start is not None:
        accumulator.R = np.array(start, order="F")
    for group, factor in zip(groups, factors):
        for part in group:
            rows = part.stacked()
            if rows.shape[0]:
                accumulator.add(rows[:, :-1] / factor, rows[:, -1] / factor)
    return accumulator.R


def solve_columns(R, columns):
    """Coefficients and upper factor (positive diagonal) of the columns ``columns`` of a combined factor."""
    m = R.shape[0] - 1
    if np.array_equal(columns, np.arange(len(columns))):
        Rs, z = R[: len(columns), : len(columns)], R[: len(columns), m]
    else:  # not a prefix: re-triangularise those columns (and the targets) of R
        r = sla.qr(R[:, np.append(columns, m)], mode="r")[0]
        Rs, z = r[: len(columns), : len(columns)], r[: len(columns), len(columns)]
    sign = np.where(np.diag(Rs) < 0, -1.0, 1.0)
    Rs, z = Rs * sign[:, None], z * sign
    return sla.solve_triangular(Rs, z), Rs
