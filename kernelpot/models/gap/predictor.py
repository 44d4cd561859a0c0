"""Fast GAP predictions: energies, forces and virials by reverse mode, sharing descriptors between terms.

:meth:`SparseGPR.predict <kernelpot.models.gap.SparseGPR.predict>` (without ``return_std``) and the ASE
calculator go through :class:`GAPPredictor`. For a structure,

.. math:: E = \\sum_t \\sum_{i \\in t} \\varepsilon_t(x_i), \\qquad
          \\frac{\\partial E}{\\partial r} = \\sum_i \\frac{\\partial E}{\\partial x_i} \\cdot
          \\frac{\\partial x_i}{\\partial r},

and the second factor is never formed: each term gives the adjoint
``∂E/∂x_i`` of its rows (:meth:`FittedTerm.local_energies`, from the sparse
points' contribution prepared once, :meth:`FittedTerm.energy_contraction`),
and the descriptor maps the summed adjoint to position derivatives and the
virial in one pass (``transform_vjp``, e.g. :meth:`SOAP.transform_vjp
<kernelpot.descriptors.soap.SOAP.transform_vjp>`, through the density
coefficients). Terms that share a descriptor — gap_fit's per-centre-species
SOAP terms (:class:`~kernelpot.descriptors.CentreSpecies` around one SOAP)
— share one descriptor evaluation and one reverse pass; every descriptor
asks one neighbour-list provider, which may keep its list between MD
steps (:class:`~kernelpot.structures.neighbours.VerletNeighbours`).

A model's ``baseline`` (an exact additive model under the GAP, e.g.
:class:`~kernelpot.potential.coulomb_baseline.CoulombBaseline`) is added as
on the explicit path. The results equal the explicit-gradient path
(``_predict_explicit`` of the model) to round-off; ``tests/test_fast_predict.py`` checks that on
periodic and finite, one- and many-species systems, with and without pair
terms, for ζ = 1, 2, 4.
"""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ...descriptors.centre_species import CentreSpecies, descriptor_signature
from ...structures.neighbours import VerletNeighbours
from ...structures.packing import as_atoms_list, pack
from .local_variance import LocalEnergyVariance
from .terms import VIRIAL_COMPONENTS, structure_of_rows

__all__ = ["GAPPredictor", "supports_fast_path"]

_PLANS = weakref.WeakKeyDictionary()   # model -> (key, groups): built once per fitted state
_PLANS_LOCK = threading.Lock()


# Rows below which a term's contraction runs in the calling thread (a thread hand-off costs ~50 µs).
_MIN_ROWS_PER_THREAD = 32


class _OneThreadBLAS:
    """BLAS limited to one thread while any prediction runs (reference-counted across threads).

    A prediction's matrix products are small (rows of one structure against the sparse points); BLAS's own
    threads then spend more than they save, and on a busy machine they spin against Numba's: measured on
    2 cores at load 13, 216-atom Si, 2 threads: 1,546 atoms/s with 2 BLAS threads, 11,175 with one. The
    parallelism comes from Numba's ``prange`` in the descriptors and from :func:`_rows_in_parallel`.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._count = 0
        self._controller = None
        self._limiter = None

    def __enter__(self):
        with self._lock:
            if self._count == 0:
                if self._controller is None:
                    from threadpoolctl import ThreadpoolController

                    self._controller = ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._count += 1
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._count -= 1
            if self._count == 0:
                self._limiter.restore_original_limits()
                self._limiter = None


_ONE_THREAD_BLAS = _OneThreadBLAS()
_EXECUTOR = {"pool": None, "workers": 0}
_EXECUTOR_LOCK = threading.Lock()


def _thread_count():
    from numba import get_num_threads

    return get_num_threads()


def _pool(n_workers):
    """The shared thread pool, grown to at least ``n_workers`` workers."""
    with _EXECUTOR_LOCK:
        if _EXECUTOR["workers"] < n_workers:
            if _EXECUTOR["pool"] is not None:
                _EXECUTOR["pool"].shutdown(wait=False)
            _EXECUTOR["pool"] = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="kernelpot-rows")
            _EXECUTOR["workers"] = n_workers
        return _EXECUTOR["pool"]


def _rows_in_parallel(function, X, n_threads):
    """``function(X)`` (an array or a tuple of arrays, each with one row per row of ``X``) on row chunks in
    ``n_threads`` Python threads (BLAS releases the GIL), concatenated; the same numbers as one call (each
    row's result depends on that row only)."""
    X = np.asarray(X)
    n_chunks = min(n_threads, len(X) // _MIN_ROWS_PER_THREAD)
    if n_chunks <= 1:
        return function(X)
    pool = _pool(n_chunks)
    bounds = np.linspace(0, len(X), n_chunks + 1).astype(int)
    parts = list(pool.map(lambda k: function(X[bounds[k]:bounds[k + 1]]), range(n_chunks)))
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(pieces) for pieces in zip(*parts))
    return np.concatenate(parts)


def _block_starts(root):
    """First column of each feature block whose absence (all zero in a row) fixes it (``feature_blocks``), or None."""
    blocks = getattr(root, "feature_blocks", None)
    return None if blocks is None else np.asarray(blocks(), dtype=np.int64)


def _active_blocks(X, starts):
    """``(starts, active)`` for :meth:`FittedTerm.local_energies`, or None when every block is non-zero."""
    if starts is None or len(X) == 0:
        return None
    active = np.logical_or.reduceat(X != 0, starts, axis=1)        # (n_rows, n_blocks)
    return None if active.all() else (starts, active)


def _term_local_energies(term, starts, X, n_threads, covariance=False):
    """Local energies and adjoints (and with ``covariance`` their covariances with the sparse points) of one
    term's rows in ``n_threads`` threads.

    Where the cost grows with the sparse points (ζ > 2, Gaussian), each thread takes a slice of them for all
    rows (:meth:`FittedTerm.energy_contraction_parts`): one structure has few rows per term and many sparse
    points, and so each thread reads only its part of them. Otherwise the rows are split between threads.
    """
    parts = term.energy_contraction_parts(n_threads) if n_threads > 1 and len(X) else None
    if parts is not None:
        return term.local_energies(X, _active_blocks(X, starts), parts=parts, run=_pool(len(parts)).map,
                                   covariance=covariance)
    return _rows_in_parallel(lambda rows: term.local_energies(rows, _active_blocks(rows, starts),
                                                              covariance=covariance), X, n_threads)


def supports_fast_path(model) -> bool:
    """Whether every term's descriptor has a reverse-mode pass (``transform_vjp``)."""
    return all(callable(getattr(t.descriptor, "transform_vjp", None)) for t in model.terms_)


def _root(descriptor):
    """The descriptor actually evaluated, and the row filter of the term (None: all rows)."""
    if isinstance(descriptor, CentreSpecies) and callable(getattr(descriptor.descriptor, "transform_vjp", None)):
        return descriptor.descriptor, descriptor
    return descriptor, None


def _groups(model):
    """``[(root descriptor, [(term, row filter or None), ...]), ...]``, terms grouped by equal root descriptors."""
    key = tuple(id(t) for t in model.terms_)
    with _PLANS_LOCK:
        cached = _PLANS.get(model)
        if cached is not None and cached[0] == key:
            return cached[1]
    groups = {}
    for term in model.terms_:
        root, selector = _root(term.descriptor)
        groups.setdefault(descriptor_signature(root), (root, []))[1].append((term, selector))
    plan = list(groups.values())
    with _PLANS_LOCK:
        _PLANS[model] = (key, plan)
    return plan


class GAPPredictor:
    """Energies, forces, virials and local energies of a fitted :class:`SparseGPR` by reverse mode.

    Parameters
    ----------
    model : SparseGPR
        A fitted model whose descriptors have ``transform_vjp``
        (:func:`supports_fast_path`).
    neighbours : callable or None, default=None
        Neighbour-list provider ``neighbours(packed, cutoff)`` shared by all
        descriptors, e.g. :class:`~kernelpot.structures.neighbours.VerletNeighbours`
        to keep lists across MD steps; None searches afresh every call.
    force_variance : SubsetForceVariance or None, default=None
        With it, ``"forces_std"`` among the ``properties`` of :meth:`predict`
        gives its approximate force σ (:mod:`kernelpot.models.gap.subset_variance`)
        from the same descriptor pass as the forces.

    Notes
    -----
    Holds no state besides the provider: one predictor per thread when the
    provider is a Verlet list (it is not thread-safe).
    """

    def __init__(self, model, *, neighbours=None, force_variance=None):
        if not hasattr(model, "alpha_"):
            raise ValueError("this SparseGPR is not fitted yet; call fit first")
        if not supports_fast_path(model):
            names = sorted({type(t.descriptor).__name__ for t in model.terms_
                            if not callable(getattr(t.descriptor, "transform_vjp", None))})
            raise TypeError(f"descriptors {names} have no transform_vjp; use SparseGPR.predict")
        if force_variance is not None and force_variance.model is not model:
            raise ValueError("`force_variance` was built for another model")
        self.model = model
        self.neighbours = neighbours
        self.force_variance = force_variance

    def predict(self, atoms_list, properties=("energy",)):
        """Predictions as :meth:`SparseGPR.predict` without ``return_std`` (same keys, units and shapes).

        Positions and cells are validated by the descriptors; property
        names and stress requests by the caller (:meth:`SparseGPR.predict`,
        the calculator).

        ``"local_energy_std"`` among ``properties`` adds the exact DTC
        standard deviation of every atom's local energy, ndarray
        (n_atoms_total,) in eV (times the model's ``std_scale_``), equal to
        ``SparseGPR.predict(..., properties=("local_energy",),
        return_std=True)["local_energy_std"]`` but from the kernel values the
        mean already computes (:mod:`kernelpot.models.gap.local_variance`):
        a local-energy σ, not a force σ.

        ``"forces_std"`` (with ``force_variance`` given) adds the approximate
        force σ of :class:`~kernelpot.models.gap.subset_variance.SubsetForceVariance`,
        ndarray (n_atoms_total, 3) in eV/Å; the forces are computed with it.

        Raises
        ------
        ValueError
            A species the model was not trained on; ``"forces_std"`` without ``force_variance``.
        """
        atoms_list = as_atoms_list(atoms_list)
        packed = pack(atoms_list)  # validated once, shared by every descriptor
        model = self.model
        need_virial = "virial" in properties or "stress" in properties
        force_variance = self.force_variance if "forces_std" in properties else None
        if "forces_std" in properties and force_variance is None:
            raise ValueError("'forces_std' on the fast path needs GAPPredictor(..., force_variance="
                             "SubsetForceVariance(model)); the exact σ is SparseGPR.predict(..., return_std=True)")
        need_gradient = "forces" in properties or need_virial or force_variance is not None
        need_local = "local_energy" in properties
        local_std = LocalEnergyVariance.for_model(model) if "local_energy_std" in properties else None
        residual_model = None if force_variance is None else force_variance.residual_model()
        n_structures = len(atoms_list)
        numbers = packed.numbers
        n_atoms = len(numbers)
        unknown = sorted(set(np.unique(numbers).tolist()) - set(model.e0_))
        if unknown:
            raise ValueError(f"species Z={unknown} were not in the training set (no e0 for them)")
        energy = np.array([sum(model.e0_[int(z)] for z in a.numbers) for a in atoms_list], dtype=np.float64)
        dE_dr = np.zeros((n_atoms, 3))
        virial = np.zeros((n_structures, 3, 3))
        local = np.array([model.e0_[int(z)] for z in numbers], dtype=np.float64) if need_local else None
        # Without a provider, the descriptors of this call still share one search per packing.
        neighbours = self.neighbours if self.neighbours is not None else VerletNeighbours(0.0)
        # {term index: (k_star, first atom, second atom or None)} and the prior variances, for local_std
        need_covariances = local_std is not None or residual_model is not None
        covariances = {} if need_covariances else None
        prior = np.zeros(n_atoms) if need_covariances else None
        unit_dE_dr = None if force_variance is None else np.zeros((force_variance.n_subset, n_atoms, 3))
        with _ONE_THREAD_BLAS:
            self._contract(packed, neighbours, need_gradient, need_virial, need_local, energy, dE_dr, virial, local,
                           covariances, prior, unit_dE_dr)
            n_threads = _thread_count()
            residual = None if residual_model is None else residual_model.variance(
                numbers, covariances, prior, lambda function, rows: _rows_in_parallel(function, rows, n_threads))
            force_std = None if force_variance is None else np.sqrt(force_variance.variance(unit_dE_dr, residual))
            if local_std is not None:
                variance = local_std.variance(numbers, covariances, prior,
                                              lambda function, rows: _rows_in_parallel(function, rows, n_threads))
        baseline = getattr(model, "baseline", None)
        if baseline is not None:  # an exact additive model under the GAP (e.g. fixed-charge Coulomb)
            baseline.check(atoms_list)
            extra = baseline.evaluate(atoms_list, forces="forces" in properties, virial=need_virial,
                                      local_energy=need_local)
            energy += extra["energy"]
            if "forces" in properties:
                dE_dr -= extra["forces"]
            if need_virial:
                virial += extra["virial"]
            if need_local:
                local += extra["local_energy"]
        out = {"energy": energy}
        if "forces" in properties:
            out["forces"] = -dE_dr
        if "virial" in properties:
            out["virial"] = virial
        if "stress" in properties:
            volume = np.array([a.get_volume() for a in atoms_list])
            stress = -virial / volume[:, None, None]
            out["stress"] = np.stack([stress[:, a, b] for a, b in VIRIAL_COMPONENTS], axis=1)
        if need_local:
            out["local_energy"] = local
        if local_std is not None:
            out["local_energy_std"] = float(getattr(model, "std_scale_", 1.0)) * np.sqrt(variance)
        if force_std is not None:
            out["forces_std"] = force_std
        return out

    def _contract(self, packed, neighbours, need_gradient, need_virial, need_local, energy, dE_dr, virial, local,
                  covariances=None, prior=None, unit_dE_dr=None):
        """Add every descriptor group's energies (and position derivatives, virials, local energies) in place.

        ``covariances`` (a dict) and ``prior`` (n_atoms,), if given, receive what the local-energy variance needs
        (:meth:`LocalEnergyVariance.variance`); ``unit_dE_dr`` (n_subset, n_atoms, 3), if given, the position
        derivatives of the unit-weight energies of ``self.force_variance``'s points (one batched reverse pass
        per term).
        """
        n_structures, n_atoms = len(energy), len(packed.numbers)
        n_threads = _thread_count()
        index = {id(term): t for t, term in enumerate(self.model.terms_)}
        for root, terms in _groups(self.model):
            X, vjp = root.transform_vjp(packed, neighbours=neighbours)
            pair_atoms = getattr(vjp, "pair_atoms", None)   # pair rows: each row's two atoms
            if (need_local or covariances is not None) and pair_atoms is None and X.shape[0] != n_atoms:
                raise ValueError(f"local energies need one descriptor row per atom; {type(root).__name__} gives "
                                 f"{X.shape[0]} rows for {n_atoms} atoms")
            row_structure = structure_of_rows(X.offsets)
            adjoint = np.zeros(X.shape) if need_gradient else None
            factored = []   # (term index, points, alpha, rows, beta, atoms) of the σ's unit-weight energies
            starts = _block_starts(root)
            for term, selector in terms:
                rows = None if selector is None else selector.kept_rows(X)
                X_term = np.asarray(X) if rows is None else np.asarray(X)[rows]
                out = _term_local_energies(term, starts, X_term, n_threads, covariance=covariances is not None)
                values, gradients = out[0], out[1]
                structure = row_structure if rows is None else row_structure[rows]
                energy += np.bincount(structure, weights=values, minlength=n_structures)
                if pair_atoms is not None:
                    first, second = (pair_atoms[0], pair_atoms[1]) if rows is None else \
                        (pair_atoms[0][rows], pair_atoms[1][rows])
                else:
                    first, second = (np.arange(n_atoms) if rows is None else np.flatnonzero(rows)), None
                if need_local:
                    if second is None:
                        local[first] += values
                    else:   # a pair row's energy is split equally between its two atoms
                        local += 0.5 * (np.bincount(first, weights=values, minlength=n_atoms)
                                        + np.bincount(second, weights=values, minlength=n_atoms))
                if covariances is not None:
                    covariances[index[id(term)]] = (out[2], first, second)
                    prior += LocalEnergyVariance.term_prior(term, X_term, first, second, n_atoms)
                if need_gradient:
                    if rows is None:
                        adjoint += gradients
                    else:
                        adjoint[rows] += gradients
                if unit_dE_dr is not None:
                    factors = self._unit_derivatives(index[id(term)], X_term, X.shape, rows, first, vjp, unit_dE_dr)
                    if factors is not None:
                        factored.append(factors)
            if need_gradient:
                if factored:   # the σ's unit-weight energies in the mean's reverse pass
                    derivative, group_virial, units = vjp.batched(adjoint, [f[1:] for f in factored],
                                                                  virial=need_virial)
                    start = 0
                    for t, points, *_ in factored:
                        unit_dE_dr[self.force_variance.term_slices()[t]] += units[start:start + len(points)]
                        start += len(points)
                else:
                    derivative, group_virial = vjp(adjoint, virial=need_virial)
                dE_dr += derivative
                if need_virial:
                    virial += group_virial

    def _unit_derivatives(self, t, X_term, shape, rows, atoms, vjp, unit_dE_dr):
        """The position derivatives of term ``t``'s unit-weight energies (``self.force_variance``): as factored
        feature gradients ``(t, points, alpha, rows, beta, atoms)`` for the mean's reverse pass where the
        descriptor takes them (SOAP: ``vjp.batched``), else added to ``unit_dE_dr`` here by one reverse pass per
        point (pair terms: a handful of points, one feature) and None returned."""
        variance = self.force_variance
        if getattr(vjp, "batched", None) is not None and shape[0] == unit_dE_dr.shape[1]:
            parts = variance.unit_factors(t, X_term)
            if parts is not None:
                return (t, *parts, atoms)
        target = unit_dE_dr[variance.term_slices()[t]]
        for m, unit in enumerate(variance.unit_adjoints(t, X_term)):
            if rows is not None:
                full = np.zeros(shape)
                full[rows] = unit
                unit = full
            target[m] += vjp(unit)[0]
        return None
