"""Exact DTC standard deviation of every atom's local energy, at a fraction of a mean-force call.

The local energy of atom ``i`` is the model's ``"local_energy"``: its own
rows' energies (one SOAP row, in the term of its centre species) plus half
of the energy of every pair row (``distance_2b``) it belongs to. It is a
linear functional of the latent function like every other prediction, so
its DTC variance is (:mod:`kernelpot.models.gap.variance`)

.. math::

    \\sigma_i^2 = k_{ii} - k_i^\\top (K_{MM}^{-1} - \\Sigma)\\, k_i,
    \\qquad \\Sigma = (K_{MM} + K_{MN}\\Lambda^{-1}K_{NM})^{-1},

with ``k_i`` its covariance with the sparse points and ``Σ`` the posterior
covariance of the sparse-point values. This is the uncertainty FLARE's
on-the-fly learning uses as its trigger (Vandermause et al., npj Comput.
Mater. 6, 20 (2020); 8, 135 (2022)): a property of local energies, **not**
a force σ. It shares everything with the mean: the covariances ``k_i`` are
the kernel values the mean's contraction already forms (``c^ζ`` from its
cosines), and ``k_i`` is non-zero only on the sparse points of the terms
that touch atom ``i`` — its centre species' SOAP term and the pair terms of
its species. The matrix ``B_s = (K_MM⁻¹ − Σ)`` restricted to those columns
is computed once per model and species (``K_MM`` is block-diagonal over
terms, so its part is per-term) and factored (symmetric indefinite,
``B_s = P T D Tᵀ Pᵀ``); a call then costs one triangular product
``Tᵀ K_sᵀ`` per species ``s`` (``n_s J_s²`` flops) — no descriptor
gradients, no solves against force rows. Pair terms (tens of sparse points)
are whitened first (``L_t⁻¹ k``), because their ``K_t⁻¹`` is jitter-bound:
a pair prior of ~400 eV² leaves σ² ~ 0.01 eV².

Nothing is truncated: the result is
:meth:`SparseGPR.predict <kernelpot.models.gap.SparseGPR.predict>`'s
``local_energy_std`` up to round-off, which is what σ² ≪ prior leaves:
measured 2e-9 relative on the NaCl–water benchmark box (σ² ~ 5 % of the
SOAP prior) and 8e-5 on the rattled Si cell (σ² ~ 1e-5 of it; there the
exact path and a fully whitened evaluation differ by 1e-5 from each other
too).

Forces are what MD integrates, and a force σ differs from this one (its
prior and covariances are those of position derivatives): use it as a cheap
per-step screen and compute the exact ``forces_std`` on the steps it flags
(``benchmarks/predict.py --cases localsigma`` measures how well the two
agree on NaCl–water and Si).
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.linalg.blas import dtrmm

from ...descriptors.base import species_numbers
from ...descriptors.centre_species import CentreSpecies
from ._residual_kernels import nearest_nystrom, scatter_pair_halves
from .terms import row_weights

__all__ = ["LocalEnergyVariance"]

_CACHE = weakref.WeakKeyDictionary()   # model -> {posterior: (key, LocalEnergyVariance)}
_CACHE_LOCK = threading.Lock()
# Terms with at most this many sparse points are whitened (see LocalEnergyVariance.whitened): a solve per row
# against an (m, m) factor costs m² per row, negligible for pair terms (tens of points), not for SOAP (thousands).
_WHITEN_MAX = 256


def _term_species(term):
    """Atomic numbers whose local energies this term can touch, or None for all."""
    descriptor = term.descriptor
    if isinstance(descriptor, CentreSpecies):
        return {int(z) for z in species_numbers(descriptor.species, "species")}
    z1, z2 = getattr(descriptor, "Z1", None), getattr(descriptor, "Z2", None)
    if getattr(descriptor, "rows_are_pairs", False) and z1 is not None and z2 is not None:
        return {int(z1), int(z2)}
    return None


def _inverse(L, a, b):
    """``K_t⁻¹ = L_t⁻ᵀ L_t⁻¹`` of the diagonal block ``a:b`` of a block-diagonal lower factor."""
    inverse = sla.solve_triangular(L[a:b, a:b], np.eye(b - a), lower=True)
    return inverse.T @ inverse


def _ldl(B):
    """``(perm, T, D)`` with ``kᵀ B k = yᵀ D y``, ``y = Tᵀ k[perm]`` (Bunch–Kaufman, ``scipy.linalg.ldl``:
    ``T`` unit lower triangular in Fortran order, ``D`` block-diagonal with 1×1 and 2×2 blocks: its diagonal
    when all blocks are 1×1, else a sparse matrix).

    ``B`` is positive semi-definite in exact arithmetic, but round-off leaves eigenvalues of ±1e-6 against a
    largest of ~1e6 (NaCl–water), so a Cholesky factor need not exist; this one does, and a product with a
    triangle costs half of the full ``K B``.
    """
    if len(B) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), order="F"), np.zeros(0)
    lu, d, perm = sla.ldl(B, lower=True)            # B = lu d luᵀ, lu[perm] triangular
    T = np.asfortranarray(lu[perm])
    D = np.diag(d).copy() if not np.any(np.diag(d, -1)) else sp.csr_matrix(d)
    return perm, T, D


def _quadratic_form(factor, K):
    """``diag(K B Kᵀ)`` (n,) of rows ``K`` (n, J) from :func:`_ldl`'s factor of ``B``."""
    perm, T, D = factor
    if T.shape[0] == 0:
        return np.zeros(len(K))
    Y = dtrmm(1.0, T, K[:, perm].T, side=0, lower=1, trans_a=1, diag=1)   # Tᵀ Pᵀ Kᵀ, (J, n)
    if isinstance(D, np.ndarray):
        return np.einsum("jn,j,jn->n", Y, D, Y)
    return np.einsum("jn,jn->n", np.asarray(D @ Y), Y)


def _is_block_diagonal(L, offsets):
    """Whether the lower factor ``L`` has no entries coupling different terms' sparse points."""
    return all(not np.any(L[a:b, :a]) for a, b in zip(offsets[:-1], offsets[1:]))


class LocalEnergyVariance:
    """Per-species matrices ``B_s = (K_MM⁻¹ − Σ)[J_s, J_s]`` of a fitted model and the variance they give.

    Build it with :meth:`for_model` (cached per model and fitted state); the first call costs a few
    ``M³`` operations (M = all sparse points: 4,400 take about 5 s on one core).

    Parameters
    ----------
    model : SparseGPR
        Fitted, with a posterior (``posterior_factor_``).
    posterior : bool, default=True
        False drops ``Σ``: ``B_s = K_MM⁻¹[J_s, J_s]`` and :meth:`variance` gives each local energy's Nyström
        residual ``k_ii − k_iᵀ K_MM⁻¹ k_i`` (the prior variance the sparse points do not explain), the
        distance-from-the-sparse-set part of σ² that :class:`~kernelpot.models.gap.subset_variance.
        SubsetForceVariance` (``residual=True``) adds to its force variance.
    nearest : int or None, default=None
        With ``posterior=False`` only: project each atom's covariances with a term of more than 256 sparse
        points (a smaller term's exact product costs little) onto that atom's own ``nearest`` most similar
        points of the term (largest ``k(x, z_m) / √k(z_m, z_m)``) instead of onto all of them: ``k_qᵀ K_qq⁻¹
        k_q`` per atom and term (a ``nearest``-point Cholesky each, no ``J_s²`` product), so that
        :meth:`variance` gives the Nyström residual of each atom against its nearest points of the large terms
        — an upper bound on the residual against all, equal to it when ``nearest`` ≥ every term's size. None:
        all points (the exact residual).

    Attributes
    ----------
    columns : dict
        ``{Z: [(term index, first column in B_Z), ...]}``: the terms that touch atoms of species ``Z``.
    factors : dict
        ``{Z: (perm, T, D)}``: the symmetric indefinite factor of ``B_Z`` (J_Z × J_Z, eV⁻²; with the
        whitened terms' rows and columns in their whitened coordinates), see :func:`_ldl`.
    nearest_terms : dict
        With ``nearest``: ``{term index: (K_t, 1 / √diag K_t)}`` of the terms projected per atom (they have no
        columns in ``B_Z``; their entries in :attr:`columns` have None for the first column).
    """

    def __init__(self, model, posterior=True, nearest=None):
        if getattr(model, "posterior_factor_", None) is None:
            raise ValueError("this model has no posterior covariance (imported from a file that stores the mean "
                             "only): local-energy σ needs a model fitted by kernelpot")
        terms = model.terms_
        sizes = [t.n_sparse for t in terms]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        L, R = model.kmm_cholesky_, model.posterior_factor_
        if not _is_block_diagonal(L, offsets):
            raise ValueError("local-energy σ needs K_MM block-diagonal over terms (as SparseGPR fits it)")
        n = L.shape[0]
        self.posterior = bool(posterior)
        if nearest is not None:
            if isinstance(nearest, bool) or not isinstance(nearest, (int, np.integer)) or nearest < 1:
                raise ValueError(f"`nearest` must be an integer >= 1 or None; got {nearest!r}")
            if self.posterior:
                raise ValueError("`nearest` gives a Nyström residual: it needs posterior=False")
        self.nearest = None if nearest is None else int(nearest)
        self.nearest_terms = {}
        for t, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
            if self.nearest is not None and b - a > _WHITEN_MAX:
                gram = L[a:b, a:b] @ L[a:b, a:b].T
                self.nearest_terms[t] = (gram, 1.0 / np.sqrt(np.diag(gram)))
        r_inverse = sla.solve_triangular(R, np.eye(n)) if posterior else np.zeros((n, 0))   # Σ = R⁻¹R⁻ᵀ
        #: {term index: lower factor L_t}: terms whose covariances are whitened (u = L_t⁻¹ k) before the
        #: product, so that their part of B is I - L_tᵀ Σ L_t (entries <= 1) instead of K_t⁻¹ - Σ (entries up
        #: to 1/jitter: a pair term's prior of ~400 eV² then leaves σ² ~ 0.01 eV² to round-off).
        self.whitened = {t: np.ascontiguousarray(L[a:b, a:b]) for t, (a, b) in
                         enumerate(zip(offsets[:-1], offsets[1:])) if b - a <= _WHITEN_MAX and
                         t not in self.nearest_terms}
        transformed = r_inverse.copy()                                       # Tᵀ R⁻¹ rows
        for t, factor in self.whitened.items():
            transformed[offsets[t]:offsets[t + 1]] = factor.T @ r_inverse[offsets[t]:offsets[t + 1]]
        del r_inverse
        species = sorted(int(z) for z in model.e0_)
        self.columns, self.factors = {}, {}
        kmm_inverse = {}
        for z in species:
            every = [t for t, term in enumerate(terms) if (_term_species(term) or {z}) >= {z}]
            touching = [t for t in every if t not in self.nearest_terms]     # the terms with columns in B_Z
            J = np.concatenate([np.arange(offsets[t], offsets[t + 1]) for t in touching]) if touching else \
                np.zeros(0, dtype=np.int64)
            for t in touching:
                if t not in kmm_inverse:
                    kmm_inverse[t] = np.eye(sizes[t]) if t in self.whitened else _inverse(L, offsets[t],
                                                                                          offsets[t + 1])
            B = sla.block_diag(*[kmm_inverse[t] for t in touching]) if touching else np.zeros((0, 0))
            if posterior:
                B -= transformed[J] @ transformed[J].T
            self.factors[z] = _ldl(0.5 * (B + B.T))
            self.columns[z] = list(zip(touching, np.concatenate([[0], np.cumsum([sizes[t] for t in touching])])))
            self.columns[z] += [(t, None) for t in every if t in self.nearest_terms]

    @classmethod
    def for_model(cls, model, posterior=True, nearest=None):
        """The instance of ``model`` in its current fitted state (built on first use, then cached)."""
        # The objects themselves, compared by identity: held here, they cannot be freed and their ids reused by
        # the arrays of a refit (IncrementalSparseGPR.update replaces posterior_factor_ with a new array).
        key = (model.posterior_factor_, model.kmm_cholesky_, *model.terms_)
        kind = (bool(posterior), None if nearest is None else int(nearest))
        with _CACHE_LOCK:
            cached = _CACHE.get(model, {}).get(kind)
            if cached is not None and len(cached[0]) == len(key) and all(a is b for a, b in zip(cached[0], key)):
                return cached[1]
        built = cls(model, posterior, nearest)
        with _CACHE_LOCK:
            _CACHE.setdefault(model, {})[kind] = (key, built)
        return built

    @staticmethod
    def term_prior(term, X, first, second, n_atoms):
        """Prior variance (n_atoms,) of every atom's share of this term's local energies, eV².

        ``first`` (n_rows,): the atom of each row; ``second`` None for per-atom rows, else the other atom of
        each pair row (each atom then gets half of the row: ``¼ Σ_{p,q∋i} δ² w_p w_q k(x_p, x_q)``).
        """
        X = np.asarray(X)
        w = row_weights(term.descriptor, X)[0]
        prior = np.zeros(n_atoms)
        if second is None:
            np.add.at(prior, first, term.delta**2 * w**2 * term.kernel.diag(X))
            return prior
        ends = np.concatenate([first, second])
        order = np.argsort(ends, kind="stable")
        members = np.concatenate([np.arange(len(first))] * 2)[order]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(ends, minlength=n_atoms))])
        grouped = getattr(term.kernel, "grouped_quadratic_forms", None)
        if grouped is not None:
            forms = grouped(X, w, indptr, members)
        else:
            forms = np.array([term.kernel.quadratic_form(X[members[a:b]], w[members[a:b]]) if b > a else 0.0
                              for a, b in zip(indptr[:-1], indptr[1:])])
        return prior + 0.25 * term.delta**2 * forms

    def variance(self, numbers, rows, prior, rows_in_parallel=None):
        """Latent DTC variance of every atom's local energy, eV² (n_atoms,), clipped at 0 against round-off.

        Parameters
        ----------
        numbers : ndarray (n_atoms,)
        rows : dict
            ``{term index: (k_star, first, second)}``: the covariances (n_rows, n_sparse of the term) of the
            term's rows with its sparse points (:meth:`FittedTerm.local_energies` with ``covariance=True``)
            and the atoms of the rows as in :meth:`term_prior`.
        prior : ndarray (n_atoms,)
            Summed :meth:`term_prior` of all terms.
        rows_in_parallel : callable or None
            ``rows_in_parallel(function, array) -> function(array)`` computed over row chunks (threads).
        """
        n_atoms = len(numbers)
        explained = np.zeros(n_atoms)
        for z, layout in self.columns.items():
            atoms = np.flatnonzero(numbers == z)
            if len(atoms) == 0:
                continue
            perm = self.factors[z][0]
            position = np.full(n_atoms, -1, dtype=np.int64)
            position[atoms] = np.arange(len(atoms))
            K = np.zeros((len(atoms), len(perm)))
            for t, column in layout:
                if t not in rows:
                    continue
                block = _atom_covariances(*rows[t], position, len(atoms))
                if column is None:          # projected onto each atom's nearest points (self.nearest)
                    gram, inverse_norm = self.nearest_terms[t]

                    def projected(chunk, gram=gram, inverse_norm=inverse_norm):
                        return nearest_nystrom(chunk, gram, inverse_norm, self.nearest)

                    explained[atoms] += projected(block) if rows_in_parallel is None else \
                        rows_in_parallel(projected, block)
                    continue
                if t in self.whitened:
                    block = sla.solve_triangular(self.whitened[t], block.T, lower=True).T
                K[:, column:column + block.shape[1]] = block
            if K.shape[1] == 0:
                continue

            def quadratic(chunk, factor=self.factors[z]):
                return _quadratic_form(factor, chunk)

            explained[atoms] += quadratic(K) if rows_in_parallel is None else rows_in_parallel(quadratic, K)
        return np.maximum(prior - explained, 0.0)


def _atom_covariances(k_star, first, second, position, n_atoms):
    """The covariances (n_atoms, n_sparse of the term) of the local energies of the atoms with
    ``position >= 0`` (in that order) from a term's rows ``k_star`` (see :meth:`LocalEnergyVariance.variance`)."""
    if second is None:
        here = position[first] >= 0
        if here.all() and len(first) == n_atoms and np.array_equal(position[first], np.arange(n_atoms)):
            return k_star                                           # every row is one of the atoms, in order
        block = np.zeros((n_atoms, k_star.shape[1]))
        block[position[first[here]]] = k_star[here]
        return block
    block = np.zeros((n_atoms, k_star.shape[1]))
    scatter_pair_halves(np.ascontiguousarray(k_star, dtype=np.float64), np.asarray(first, dtype=np.int64),
                        np.asarray(second, dtype=np.int64), position, block)
    return block
