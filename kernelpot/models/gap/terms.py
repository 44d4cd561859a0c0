"""One additive term of a GAP model: descriptor + covariance + sparse points.

The local energy of descriptor row ``x`` (an atom's environment, or a pair
for ``distance_2b``) is

.. math:: \\varepsilon(x) = \\delta^2 \\sum_s \\alpha_s\\, w(x)\\, w(x_s)\\, k(x, x_s),

where ``w`` is the descriptor's covariance weight (GAP's cosine cutoff of
``distance_2b``; 1 for descriptors without one) and ``x_s`` the sparse
points. The total energy of a structure sums ``varepsilon`` over its rows.
This module turns descriptor output into the rows of the design matrix
(energies, forces, virials) and into predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ...descriptors.base import species_numbers
from ...descriptors.centre_species import CentreSpecies
from ...kernels import GaussianCovariance, LinearCovariance, NormalizedDotProductCovariance
from ...utils.linalg import cholesky
from ._design_kernels import accumulate_pair_rows

__all__ = ["GAPTerm", "FittedTerm", "VIRIAL_COMPONENTS", "rows_to_atoms", "sum_per_structure", "factor_kmm"]

_SPARSE_METHODS = ("cur", "fps", "uniform", "random")
# Sparse points below which a thread gets no slice of its own (energy_contraction_parts).
MIN_SPARSE_PER_PART = 64
# Order of the 6 independent virial components used as observations.
VIRIAL_COMPONENTS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


class GAPTerm:
    """Specification of one GAP term (one braced entry of gap_fit's ``gap={...}`` string).

    Parameters
    ----------
    descriptor : Descriptor
        Object with ``transform(atoms_list, gradients=True) -> (X, G)``
        (``X`` an :class:`~kernelpot.descriptors.base.AtomicFeatures`,
        ``G`` a :class:`~kernelpot.descriptors.base.SparseGradients`) and,
        optionally, ``cutoff_weight(X) -> (w, dw_dX)``.
    kernel : GaussianCovariance, NormalizedDotProductCovariance or LinearCovariance
        Covariance between descriptor rows (GAP ``ard_se`` / ``dot_product``).
    delta : float, default=1.0
        Energy scale of the term in eV (prior std of a local energy).
    n_sparse : int, default=100
        Number of sparse points (representative rows). Fewer distinct
        training rows than this (symmetric crystals repeat environments)
        give fewer points, with a
        :class:`~kernelpot.exceptions.ReducedRequestWarning` saying how many
        and why.
    sparse_method : {"cur", "fps", "uniform", "random"}, default="cur"
        How the sparse points are chosen among the training rows;
        ``"uniform"`` is a grid over the observed range of a 1-feature
        descriptor (GAP ``sparse_method=uniform`` for ``distance_2b``).
        Ignored when ``sparse_points`` is given.
    sparse_points : array-like of shape (n_points, n_features) or None, default=None
        Use these sparse points instead of choosing them (GAP ``sparse_file``).
    """

    def __init__(self, descriptor, kernel, *, delta=1.0, n_sparse=100, sparse_method="cur",
                 sparse_points=None):
        self.descriptor = descriptor
        self.kernel = kernel
        self.delta = delta
        self.n_sparse = n_sparse
        self.sparse_method = sparse_method
        self.sparse_points = sparse_points

    def __repr__(self):
        return (f"GAPTerm({self.descriptor!r}, {self.kernel!r}, delta={self.delta!r}, "
                f"n_sparse={self.n_sparse!r}, sparse_method={self.sparse_method!r}, "
                f"sparse_points={'None' if self.sparse_points is None else 'array'})")

    def validate(self, index):
        """Check the parameters; ``index`` names the term in error messages."""
        where = f"terms[{index}]"
        if not callable(getattr(self.descriptor, "transform", None)):
            raise TypeError(f"{where}.descriptor must have a transform method; got {self.descriptor!r}")
        if not isinstance(self.kernel, (GaussianCovariance, NormalizedDotProductCovariance, LinearCovariance)):
            raise TypeError(
                f"{where}.kernel must be GaussianCovariance, NormalizedDotProductCovariance or LinearCovariance; "
                f"got {self.kernel!r}"
            )
        delta = self.delta
        if isinstance(delta, bool) or not isinstance(delta, (int, float, np.number)) or not (
            np.isfinite(delta) and delta > 0
        ):
            raise ValueError(f"{where}.delta must be a finite number > 0 eV; got {delta!r}")
        n = self.n_sparse
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{where}.n_sparse must be an integer >= 1; got {n!r}")
        if self.sparse_method not in _SPARSE_METHODS:
            raise ValueError(
                f"{where}.sparse_method must be one of {list(_SPARSE_METHODS)}; got {self.sparse_method!r}"
            )
        if self.sparse_points is not None:
            points = np.asarray(self.sparse_points, dtype=np.float64)
            if points.ndim != 2 or points.shape[0] == 0 or not np.all(np.isfinite(points)):
                raise ValueError(
                    f"{where}.sparse_points must be a finite 2-D array (n_points, n_features); "
                    f"got shape {points.shape}"
                )


def row_weights(descriptor, X):
    """Covariance weight of every row and its feature gradient (None when constant 1)."""
    weight_fn = getattr(descriptor, "cutoff_weight", None)
    if weight_fn is None:
        return np.ones(X.shape[0]), None
    w, dw = weight_fn(X)
    return np.asarray(w, dtype=np.float64), np.asarray(dw, dtype=np.float64)


def rows_to_atoms(descriptor, X, G, numbers):
    """Sparse (n_atoms, n_rows) map sharing each row's local energy among the atoms of a block.

    A pair row (``distance_2b``) gives half to each of its two atoms (read from its gradient entries ``G``), a row
    of a descriptor with ``row_centres(G)`` (``angle_3b``) all to its centre,
    a :class:`~kernelpot.descriptors.CentreSpecies` row all to its centre (the block's atoms of those
    species, in order), any other per-atom row all to its atom. ``numbers`` (n_atoms,) are the block's.
    """
    n_atoms, n_rows = len(numbers), X.shape[0]
    row_centres = getattr(descriptor, "row_centres", None)
    if row_centres is not None:  # rows of several atoms whose energy is one atom's (angle_3b triplets)
        return sp.csr_matrix((np.ones(n_rows), (row_centres(G), np.arange(n_rows))), shape=(n_atoms, n_rows))
    if getattr(descriptor, "rows_are_pairs", False):
        # Each pair row has one gradient entry per atom of the pair.
        return sp.csr_matrix((np.full(G.n_pairs, 0.5), (G.neighbour, G.center)), shape=(n_atoms, n_rows))
    atoms = np.arange(n_atoms)
    if isinstance(descriptor, CentreSpecies):
        atoms = np.flatnonzero(np.isin(numbers, species_numbers(descriptor.species, "species")))
    if len(atoms) != n_rows:
        raise ValueError(f"local energies need one descriptor row per atom; {type(descriptor).__name__} "
                         f"gives {n_rows} rows for {len(atoms)} atoms")
    return sp.csr_matrix((np.ones(n_rows), (atoms, np.arange(n_rows))), shape=(n_atoms, n_rows))


def structure_of_rows(offsets):
    """ndarray of shape (n_rows,): structure (within the block) of each row."""
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def sum_per_structure(values, offsets):
    """Sum the rows of ``values`` (n_rows, ...) over each structure -> (n_structures, ...)."""
    n_rows = offsets[-1]
    S = sp.csr_matrix((np.ones(n_rows), (structure_of_rows(offsets), np.arange(n_rows))),
                      shape=(len(offsets) - 1, n_rows))
    values = np.asarray(values)
    flat = values.reshape(n_rows, int(np.prod(values.shape[1:])))
    return np.asarray(S @ flat).reshape((len(offsets) - 1,) + np.shape(values)[1:])


@dataclass
class FittedTerm:
    """A term after fitting: its sparse points and weights ``alpha``.

    Attributes
    ----------
    descriptor, kernel : as in :class:`GAPTerm`
    delta : float
        eV.
    sparse_X : ndarray of shape (n_sparse, n_features)
    sparse_weight : ndarray of shape (n_sparse,)
        Covariance weight ``w(x_s)`` of each sparse point.
    alpha : ndarray of shape (n_sparse,) or None
        Coefficients (1/eV); None before the solve.
    """

    descriptor: object
    kernel: object
    delta: float
    sparse_X: np.ndarray
    sparse_weight: np.ndarray
    alpha: np.ndarray | None = None

    @property
    def n_sparse(self):
        return self.sparse_X.shape[0]

    def kmm(self):
        """ndarray (n_sparse, n_sparse): covariance of the sparse points, eV²."""
        w = self.sparse_weight
        scaled_w = self.delta**2 * w
        K = np.asarray(self.kernel(self.sparse_X, self.sparse_X), dtype=np.float64)
        # scaled in place, a band of rows at a time: an (m, m) temporary would be 2.6 GB at m = 18,000
        for start in range(0, len(w), _KMM_ROW_BAND):
            rows = slice(start, start + _KMM_ROW_BAND)
            K[rows] *= scaled_w[rows, None] * w[None, :]
        return K

    def knm(self, X, w=None):
        """ndarray (n_rows, n_sparse): covariance of rows with sparse points, and the raw kernel."""
        if w is None:
            w = row_weights(self.descriptor, X)[0]
        K = self.kernel(X, self.sparse_X)
        return self.delta**2 * w[:, None] * self.sparse_weight[None, :] * K, K

    def self_covariance(self, X, offsets):
        """ndarray (n_structures,): prior variance of each structure's energy (eV²)."""
        w = row_weights(self.descriptor, X)[0]
        out = np.zeros(len(offsets) - 1)
        for s in range(len(out)):
            a, b = offsets[s], offsets[s + 1]
            if b > a:
                Xs = np.asarray(X[a:b])
                out[s] = self.delta**2 * self.kernel.quadratic_form(Xs, w[a:b])
        return out

    def design_rows(self, X, G, n_atoms, want_forces, want_virials, pair_chunk, row_scale=None):
        """Design-matrix rows of one block of structures for this term.

        Parameters
        ----------
        X : AtomicFeatures of shape (n_rows, n_features)
        G : SparseGradients or None
        n_atoms : int
            Atoms in the block (gradient ``neighbour`` indexes them).
        want_forces, want_virials : bool
        pair_chunk : int
            Gradient pairs processed at once (bounds the (chunk, 3, m) temporary).
        row_scale : ndarray of shape (n_rows,), optional
            Multiplies each row's local energy: the rows are then those of
            ``sum_i row_scale[i] * varepsilon(x_i)`` (kernel charge
            equilibration, whose energy at fixed charges is ``sum_i q_i chi_i``).

        Returns
        -------
        energy : ndarray (n_structures, n_sparse)
            d E_s / d alpha (eV per unit alpha).
        dE_dr : ndarray (n_atoms * 3, n_sparse) or None
            d (dE/dr_{j,a}) / d alpha, row ``3 j + a``.
        virial : ndarray (n_structures, 6, n_sparse) or None
            Derivative of the 6 virial components (``VIRIAL_COMPONENTS``).
        """
        offsets = X.offsets
        n_structures = len(offsets) - 1
        Xa = np.asarray(X)
        w, dw = row_weights(self.descriptor, Xa)
        if row_scale is not None:
            # every use of a row's weight below is linear in it: scaling w and dw scales the row
            w = w * row_scale
            dw = None if dw is None else dw * row_scale[:, None]
        Kw, K = self.knm(Xa, w)
        row_structure = structure_of_rows(offsets)
        energy = sum_per_structure(Kw, offsets)
        if not (want_forces or want_virials):
            return energy, None, None
        m = self.n_sparse
        dE_dr = np.zeros((n_atoms, 3, m)) if want_forces else None
        virial = np.zeros((n_structures, 3, 3, m)) if want_virials else None
        if want_virials and G.vectors is None:
            raise ValueError(
                f"virials were given but {type(self.descriptor).__name__} returns no gradient "
                "`vectors`, so its virial is unknown; fit without virials"
            )
        context = self.kernel.pair_context(Xa, self.sparse_X, K)
        W, C = self.kernel.pair_weights(context)
        W = W * w[:, None]
        scale = self.delta**2 * self.sparse_weight
        # Outputs not asked for: small stand-ins the kernel does not touch.
        forces_out = dE_dr if want_forces else np.zeros((1, 3, m))
        virial_out = virial if want_virials else np.zeros((1, 3, 3, m))
        for start in range(0, G.n_pairs, pair_chunk):
            sl = slice(start, min(start + pair_chunk, G.n_pairs))
            rows = G.center[sl]
            Gv = G.values[sl]
            GZ, u = self.kernel.pair_factors(Xa, self.sparse_X, Gv, rows, context)
            vectors = G.vectors[sl] if want_virials else np.zeros((len(rows), 3))
            accumulate_pair_rows(GZ, u, W, C, scale, rows, G.neighbour[sl], vectors, row_structure, forces_out,
                                 virial_out, want_forces, want_virials)
            if dw is not None:
                # the cutoff weight's own gradient: dw·Gv times k (distance_2b)
                gw = np.einsum("pak,pk->pa", Gv, dw[rows])
                extra = gw[:, :, None] * K[rows][:, None, :] * scale[None, None, :]
                if want_forces:
                    np.add.at(dE_dr, G.neighbour[sl], extra)
                if want_virials:
                    np.add.at(virial, row_structure[rows], np.einsum("px,pam->pxam", G.vectors[sl], extra))
        if want_forces:
            dE_dr = dE_dr.reshape(n_atoms * 3, m)
        if want_virials:
            # virial_ab = -sum_p vectors[p, a] dE/dr_{p, b}, symmetrised.
            full = -virial
            virial = np.stack([0.5 * (full[:, a, b] + full[:, b, a]) for a, b in VIRIAL_COMPONENTS], axis=1)
        return energy, dE_dr, virial

    def energy_contraction(self):
        """What the sparse points contribute to the local energy, prepared once per ``alpha``.

        A callable ``X -> (values, gradients)`` of the covariance
        (:meth:`~kernelpot.kernels.GaussianCovariance.contraction`) with
        weights ``δ² α_s w(x_s)``; cached on the term and rebuilt when
        ``alpha`` or the sparse points are replaced.
        """
        key = (id(self.alpha), id(self.sparse_X), hash(np.asarray(self.alpha).tobytes()))
        cached = self.__dict__.get("_contraction")
        if cached is None or cached[0] != key:
            weights = self.delta**2 * self.alpha * self.sparse_weight
            cached = (key, self.kernel.contraction(self.sparse_X, weights))
            self.__dict__["_contraction"] = cached
        return cached[1]

    def energy_contraction_parts(self, n_parts):
        """:meth:`energy_contraction` as ``n_parts`` contractions over slices of the sparse points, or None.

        Their values and gradients sum to the whole (to round-off), so threads can share one block of rows
        with every thread streaming only its slice of the sparse points. None when the contraction cost does
        not grow with the sparse points (ζ = 1, 2 matrix route, linear) or there are fewer than 64 per part.
        """
        whole = self.energy_contraction()
        if n_parts < 2 or not hasattr(whole, "split") or self.n_sparse < MIN_SPARSE_PER_PART * n_parts:
            return None
        cached = self.__dict__.get("_contraction_parts")
        if cached is None or cached[0] is not whole or len(cached[1]) != n_parts:
            bounds = np.linspace(0, self.n_sparse, n_parts + 1).astype(np.int64)
            cached = (whole, whole.split(bounds))
            self.__dict__["_contraction_parts"] = cached
        return cached[1]

    def local_energies(self, X, blocks=None, parts=None, run=map, covariance=False):
        """Local energies (n_rows,) in eV and their feature gradients (n_rows, n_features) of rows ``X``.

        ``ε(x) = w(x) Σ_s δ² α_s w(x_s) k(x, x_s)`` (module docstring) and
        ``∂ε/∂x = w ∇Σ + ∇w Σ``, from :meth:`energy_contraction`.

        ``blocks``, if given, is ``(starts, active)``: the first column of each feature block (n_blocks,) and
        which blocks are non-zero in each row (n_rows, n_blocks) bool, for descriptors whose all-zero blocks
        have zero position derivatives (:meth:`SOAP.feature_blocks
        <kernelpot.descriptors.soap.SOAP.feature_blocks>`). Contractions that can (the dot-product one with
        ζ > 2) then skip the inactive blocks and leave their gradients at zero; the values are unchanged to
        round-off.

        ``parts`` (from :meth:`energy_contraction_parts`), if given, are evaluated with ``run`` (e.g. a
        thread pool's ``map``) and summed.

        ``covariance=True`` also returns the covariances ``k_*`` (n_rows, n_sparse) of the rows' local
        energies with the sparse points (``δ² w(x) w(x_s) k(x, x_s)``, eV², the rows of :meth:`knm`), taken
        from the contraction's own kernel values where it forms them (ζ > 2, Gaussian) and computed
        otherwise.
        """
        X = np.asarray(X)

        def contract(contraction):
            if blocks is not None and hasattr(contraction, "blocked"):
                return contraction.blocked(X, *blocks, **({"covariance": True} if covariance else {}))
            if covariance and getattr(contraction, "gives_covariance", False):
                return contraction(X, covariance=True)
            return contraction(X)

        if parts is None:
            outputs = [contract(self.energy_contraction())]
        else:
            outputs = list(run(contract, parts))
        values = np.sum([out[0] for out in outputs], axis=0)
        gradients = np.sum([out[1] for out in outputs], axis=0)
        w, dw = row_weights(self.descriptor, X)
        if dw is not None:
            gradients = w[:, None] * gradients + dw * values[:, None]
            values = w * values
        if not covariance:
            return values, gradients
        if len(outputs[0]) == 3:   # parts are consecutive slices of the sparse points
            K = outputs[0][2] if len(outputs) == 1 else np.hstack([out[2] for out in outputs])
        else:
            K = self.kernel(X, self.sparse_X)
        K *= self.delta**2 * self.sparse_weight[None, :]
        if dw is not None:
            K *= w[:, None]
        return values, gradients, K

    def predict_block(self, X, G, n_atoms, want_gradient, row_scale=None):
        """Local energies and position gradients of one block.

        ``row_scale`` (n_rows,), if given, weights each row in the gradients:
        ``dE_dr`` and ``pair_dE`` are then those of ``sum_i row_scale[i] *
        varepsilon(x_i)`` (``local`` stays unscaled).

        Returns
        -------
        local : ndarray (n_rows,)
            Local energies in eV (without e0).
        dE_dr : ndarray (n_atoms, 3) or None
            dE/dr in eV/Å (forces are minus this).
        pair_dE : ndarray (n_pairs, 3) or None
            Contribution of each gradient pair to dE/dr of its moving atom
            (for the virial).
        """
        Xa = np.asarray(X)
        w, dw = row_weights(self.descriptor, Xa)
        Kw, K = self.knm(Xa, w)
        local = Kw @ self.alpha
        if not want_gradient:
            return local, None, None
        coef = self.delta**2 * (self.alpha * self.sparse_weight)[None, :]
        g = w[:, None] * self.kernel.gradient_dot(Xa, self.sparse_X, coef, K=K)
        if dw is not None:
            g += dw * (K @ (self.delta**2 * self.alpha * self.sparse_weight))[:, None]
        if row_scale is not None:
            g *= row_scale[:, None]
        pair_dE = np.einsum("pak,pk->pa", G.values, g[G.center])
        dE_dr = np.stack([np.bincount(G.neighbour, weights=pair_dE[:, a], minlength=n_atoms)
                          for a in range(3)], axis=1)
        return local, dE_dr, pair_dE


_KMM_ROW_BAND = 1024


def factor_kmm(terms, jitter, *, keep_kmm=True):
    """Block-diagonal ``K_MM`` of fitted terms (+ ``jitter`` × delta² on the diagonal) and its lower Cholesky factor.

    ``jitter`` is one relative value or one per term. ``K_MM`` is block-diagonal (one block per term), so its factor
    is the block-diagonal of the terms' own factors: each block is factored in place, one at a time, so that the
    peak memory is the factor plus one term's block (not three ``M × M`` arrays: at 29,000 sparse points those
    were 21 GB, and NumPy's Cholesky crashed), and the work is the sum of the terms' ``m³/3``, not ``M³/3``.

    Parameters
    ----------
    terms : list of FittedTerm
    jitter : float or sequence of float
    keep_kmm : bool, default=True
        Also return ``K_MM`` (the normal-equation solver needs it); False returns None in its place and saves
        one ``M × M`` array.

    Returns
    -------
    kmm : ndarray of shape (M, M) or None
    L : ndarray of shape (M, M)
        Lower triangular, ``L @ L.T == kmm``.

    Raises
    ------
    numpy.linalg.LinAlgError
        Naming the term whose sparse points' covariance is not positive definite.
    """
    per_term = np.broadcast_to(np.asarray(jitter, dtype=np.float64), (len(terms),))
    starts = np.concatenate([[0], np.cumsum([t.n_sparse for t in terms])]).astype(int)
    M = int(starts[-1])
    kmm = L = None
    # the largest block first, before the M x M arrays exist: its kernel evaluation (two m x m temporaries) is
    # then the peak, not an addition to the factor; with one term its block, factored in place, is L itself
    for index in sorted(range(len(terms)), key=lambda i: -terms[i].n_sparse):
        term, rows = terms[index], slice(starts[index], starts[index + 1])
        block = term.kmm()
        block[np.diag_indices_from(block)] += per_term[index] * term.delta**2
        if keep_kmm:
            if kmm is None:
                kmm = np.zeros((M, M))
            kmm[rows, rows] = block
        try:
            # block.T is the Fortran-ordered view of the same memory: LAPACK factors it in place. Its upper
            # triangle is the block's lower one, which is what NumPy's (lower) Cholesky read.
            upper = cholesky(block.T, lower=False, overwrite_a=True)
        except np.linalg.LinAlgError:
            shown = per_term[0] if np.ndim(jitter) == 0 else per_term.tolist()
            raise np.linalg.LinAlgError(
                f"terms[{index}]: K_MM (covariance of the sparse points) is not positive definite; increase "
                f"`jitter` (now {shown}) or use fewer / more distinct sparse points"
            ) from None
        if len(terms) == 1:
            return kmm, upper.T
        if L is None:
            L = np.zeros((M, M))
        L[rows, rows] = upper.T
        del block, upper
    return kmm, L
