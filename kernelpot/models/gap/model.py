"""Sparse Gaussian process regression of total energies, forces and virials (GAP).

The model is a sum of terms (:class:`~kernelpot.models.gap.terms.GAPTerm`),
each a descriptor, a covariance and a set of sparse points. The energy of a
structure is the sum of local energies of its descriptor rows plus
per-species reference energies ``e0``; forces and virials are its
derivatives. The fit is the projected-process (DTC) approximation of
Quiñonero-Candela & Rasmussen, JMLR 6, 1939 (2005), as in GAP:

.. math::

    \\min_\\alpha \\; \\lVert \\Sigma^{-1/2}(y - K_{NM}\\alpha)\\rVert^2
    + \\alpha^\\top K_{MM} \\alpha,

solved from the QR factorisation of the stacked system
``[Sigma^{-1/2} K_NM; L^T]`` (``K_MM = L L^T``), accumulated block by block
over structures (``R`` of the stacked blocks, TSQR), so the full ``K_NM``
is never held. ``solver="cholesky"`` accumulates the normal equations
instead (cheaper, squares the condition number).

With a ``baseline`` (e.g. a fixed-charge Coulomb model,
:class:`kernelpot.potential.coulomb_baseline.CoulombBaseline`) the terms
learn the residual ``y - baseline(y)`` and every prediction is baseline +
GAP; the baseline is deterministic, so the variances are the GAP's alone.

References
----------
A. P. Bartók, M. C. Payne, R. Kondor, G. Csányi, Phys. Rev. Lett. 104,
136403 (2010), doi:10.1103/PhysRevLett.104.136403.
V. L. Deringer et al., Chem. Rev. 121, 10073 (2021), doi:10.1021/acs.chemrev.1c00022.
"""

from __future__ import annotations

import copy
import logging

import numpy as np

from ...descriptors.centre_species import SharedDescriptors
from ...exceptions import warn_reduced
from ...parallel.blocks import check_scheduler
from ...parallel.progress import progress_bar
from ...structures.packing import as_atoms_list, atom_budget_groups, pack
from ...utils.estimators import Estimator, reset_fitted
from ...utils.memory import parse_memory, release_freed_memory, resident_bytes
from .accumulators import NormalAccumulator, QRAccumulator, accumulate_parallel
from .budget import SELECTION_COPIES, budgeted_blocks, plan_fit_blocks, select_streamed, warm_up
from .design import DesignBuilder
from .labels import check_labels, check_sigma, residual_labels, resolve_e0
from .predictor import GAPPredictor, supports_fast_path
from .terms import (
    VIRIAL_COMPONENTS,
    FittedTerm,
    GAPTerm,
    factor_kmm,
    row_weights,
    rows_to_atoms,
    structure_of_rows,
    sum_per_structure,
)
from .variance import VARIANCES, StdRequest, dtc_variance, std_outputs, term_std_inputs

__all__ = ["SparseGPR"]

logger = logging.getLogger(__name__)

_PROPERTIES = ("energy", "forces", "virial", "stress", "local_energy")
_SOLVERS = ("qr", "cholesky")


class SparseGPR(Estimator):
    """GAP-style sparse GPR potential learning from energies, forces and virials.

    Parameters
    ----------
    terms : list of GAPTerm
        Additive terms (e.g. a ``distance_2b`` term and a SOAP term).
    default_sigma : sequence of 3 or 4 floats, default=(0.002, 0.1, 0.05)
        Noise (regularisation) of energies (eV/atom), forces (eV/Å),
        virials (eV/atom) and, ignored, Hessians, as gap_fit's
        ``default_sigma``. With ``sigma_per_atom`` the energy and virial
        sigmas are multiplied by ``sqrt(n_atoms)`` of each structure.
    config_type_sigma : dict or None, default=None
        ``{config_type: (sigma_E, sigma_F, sigma_V)}`` overriding
        ``default_sigma`` for structures of that config type.
    sigma_per_atom : bool, default=True
        gap_fit's ``sigma_per_atom``: see ``default_sigma``.
    e0 : {"average", "composition", "isolated"}, float or dict, default="average"
        Per-species reference energy (eV) subtracted before the fit:
        the mean energy per atom, a least-squares fit of the energies on
        the atom counts of each species (for data mixing compositions,
        e.g. salt in water), the energies of one-atom structures in the
        training set, one number for all, or ``{Z or symbol: eV}``. With a
        ``baseline`` it is computed from the energies minus the baseline.
    jitter : float or sequence of float, default=1e-10
        Added to the diagonal of each term's ``K_MM``, relative to
        ``delta**2``: one value for every term, or one per term.
        gap_fit's ``sparse_jitter`` is absolute (eV²);
        :func:`kernelpot.potential.recipe.gap_fit_jitter` converts it.
    solver : {"qr", "cholesky"}, default="qr"
    max_block_memory : float, default=256
        MiB allowed for one block of design-matrix rows; the training set
        is processed in blocks of whole structures within this budget.
        Used when ``max_memory`` is None (sparse selection then sees all
        descriptor rows at once).
    max_memory : float, str or None, default=None
        Budget for the whole process during the fit, as MiB or a string
        (``"4GB"``, ``"512MiB"``; kB/MB/GB are powers of 1000, KiB/MiB/GiB
        of 1024). The block size is then the largest whose estimated peak
        (memory in use when ``fit`` starts + sparse factors + one block,
        see ``memory_estimate_``) fits; a budget too small for even one
        structure per block is a ``ValueError``. Peak memory is
        ``O(M^2 + block)``, never ``O(N M)``; sparse selection then holds
        at most ``(max_memory - in use) / 5`` of descriptor rows and, for
        more rows, selects block by block (merge and reduce: exact for
        "uniform", an approximation of FPS/CUR over all rows).
    n_jobs : int or None, default=None
        Local processes (joblib) building the fit's blocks; None builds them
        in this process, where descriptors use Numba threads and the linear
        algebra BLAS threads (faster on one machine, see
        ``benchmarks/scale.py``).
    scheduler : str, distributed.Client or None, default=None
        Build the blocks on a Dask cluster (``"tcp://HOST:PORT"`` or a
        client; needs ``pip install kernelpot[distributed]``); the partial
        normal equations / R factors are reduced here. An address string
        keeps the estimator clonable and picklable.
    baseline : object or None, default=None
        A fixed physical model underneath the GAP, e.g.
        :class:`~kernelpot.potential.coulomb_baseline.CoulombBaseline`: the
        terms are fitted to the labels minus the baseline's energies,
        forces and virials, and ``predict`` returns baseline + GAP (the
        variances are the GAP's: the baseline has none). It needs
        ``check(atoms_list)`` (raise on structures it cannot handle),
        ``evaluate(atoms_list, forces=, virial=, local_energy=)`` returning
        a dict of ``"energy"`` (n_structures,) eV, ``"forces"`` (n_atoms, 3)
        eV/Å, ``"virial"`` (n_structures, 3, 3) eV and ``"local_energy"``
        (n_atoms,) eV, and ``to_dict()`` to be saved in a ``.kpot`` file.
    auto : AutoChoice or None, default=None
        Choose the number of sparse points of every "fps"/"cur" term (its
        ``n_sparse`` is then the upper bound) and the energy and force noise
        (multipliers of ``default_sigma``), optionally the dot-product ζ, on
        a seeded validation split of the training structures, then refit on
        all of them (:mod:`kernelpot.models.gap.auto`; the plan and its
        cost are printed with ``verbose``). Serial only (``n_jobs`` and
        ``scheduler`` are not used); ``max_memory`` bounds the stages.
    random_state : int, Generator or None, default=None
        Seeds ``sparse_method`` "random" and the first FPS point.
    verbose : bool, default=False
        Print the memory estimate and show progress bars (also sent to ``logging``).

    Attributes
    ----------
    terms_ : list of FittedTerm
        Sparse points and coefficients ``alpha`` of each term.
    e0_ : dict
        ``{Z: eV}`` reference energies used.
    alpha_ : ndarray of shape (n_sparse_total,)
        All coefficients, terms side by side (1/eV).
    kmm_cholesky_ : ndarray of shape (n_sparse_total, n_sparse_total)
        Lower Cholesky factor ``L`` of ``K_MM`` + jitter (eV).
    posterior_factor_ : ndarray of shape (n_sparse_total, n_sparse_total)
        Upper triangular ``R`` with ``R^T R = K_MM + K_MN Sigma^-1 K_NM``;
        the posterior covariance of the weights is ``(R^T R)^-1``.
    memory_estimate_ : dict
        Bytes of the main arrays of the fit (see :meth:`fit`): ``"baseline"``
        (resident when ``fit`` started, after a warm-up of the libraries
        when ``max_memory`` is set), ``"selection"`` (above it, while sparse
        points are chosen), ``"blocks_baseline"`` (resident when the blocks
        start), ``"solve"`` (above that, the blocks and the factors),
        ``"peak"`` (the larger of the two sums, the estimated process peak),
        ``"block_budget"``.
    selection_info_ : list of dict
        Per term: descriptor rows seen, features, whether they were reduced
        block by block (``"streamed"``) and the row bytes held at once.
    auto_choice_ : dict
        With ``auto``: the chosen ``"n_sparse"`` (per term),
        ``"default_sigma"``, ``"zeta"``, their validation errors, why growth
        stopped, the validation structures and the CPU seconds.
    auto_table_ : list of dict
        With ``auto``: every candidate tried (sparse points, ζ, noise,
        validation force MAE eV/Å and energy MAE eV/structure).
    auto_plan_ : dict
        With ``auto``: the planned stages with their estimated cost.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from kernelpot.descriptors.distance_2b import Distance2B
    >>> from kernelpot.kernels import GaussianCovariance
    >>> from kernelpot.models.gap import GAPTerm, SparseGPR
    >>> atoms = [bulk("Si", "diamond", a=a) for a in (5.3, 5.4, 5.5)]
    >>> term = GAPTerm(Distance2B(cutoff=4.0), GaussianCovariance(0.5), n_sparse=10,
    ...                sparse_method="uniform")
    >>> model = SparseGPR([term], e0=0.0).fit(atoms, energies=[-10.5, -10.8, -10.7])
    >>> model.predict(atoms)["energy"].shape
    (3,)
    """

    def __init__(self, terms, *, default_sigma=(0.002, 0.1, 0.05), config_type_sigma=None,
                 sigma_per_atom=True, e0="average", jitter=1e-10, solver="qr",
                 max_block_memory=256.0, max_memory=None, n_jobs=None, scheduler=None, baseline=None,
                 auto=None, random_state=None, verbose=False):
        self.terms = terms
        self.default_sigma = default_sigma
        self.config_type_sigma = config_type_sigma
        self.sigma_per_atom = sigma_per_atom
        self.e0 = e0
        self.jitter = jitter
        self.solver = solver
        self.max_block_memory = max_block_memory
        self.max_memory = max_memory
        self.n_jobs = n_jobs
        self.scheduler = scheduler
        self.baseline = baseline
        self.auto = auto
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        terms = self.terms
        if isinstance(terms, GAPTerm):
            raise TypeError("`terms` must be a list of GAPTerm; got a single GAPTerm (wrap it in a list)")
        if not isinstance(terms, (list, tuple)) or len(terms) == 0:
            raise ValueError(f"`terms` must be a non-empty list of GAPTerm; got {terms!r}")
        for index, term in enumerate(terms):
            if not isinstance(term, GAPTerm):
                raise TypeError(f"`terms[{index}]` must be a GAPTerm; got {type(term).__name__}")
            term.validate(index)
        if self.solver not in _SOLVERS:
            raise ValueError(f"`solver` must be one of {list(_SOLVERS)}; got {self.solver!r}")
        self._term_jitter(terms)  # validates `jitter`
        mem = self.max_block_memory
        if isinstance(mem, bool) or not isinstance(mem, (int, float, np.number)) or not mem > 0:
            raise ValueError(f"`max_block_memory` must be a number > 0 (MiB); got {mem!r}")
        if self.max_memory is not None:
            parse_memory(self.max_memory, "max_memory")
        n_jobs = self.n_jobs
        if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer))
                                   or not (n_jobs >= 1 or n_jobs == -1)):
            raise ValueError(f"`n_jobs` must be None, -1 or an integer >= 1; got {n_jobs!r}")
        check_scheduler(self.scheduler)
        if self.auto is not None and not callable(getattr(self.auto, "validate", None)):
            raise TypeError(f"`auto` must be None or an AutoChoice; got {type(self.auto).__name__}")
        if not isinstance(self.sigma_per_atom, (bool, np.bool_)):
            raise TypeError(f"`sigma_per_atom` must be a bool; got {self.sigma_per_atom!r}")
        if self.baseline is not None and not all(
                callable(getattr(self.baseline, name, None)) for name in ("check", "evaluate", "to_dict")):
            raise TypeError(f"`baseline` must be None or an object with check, evaluate and to_dict methods "
                            f"(e.g. CoulombBaseline); got {type(self.baseline).__name__}")
        return check_sigma(self.default_sigma, self.config_type_sigma)

    def _term_jitter(self, terms) -> np.ndarray:
        """``jitter`` as one relative value per term, validated."""
        jitter = self.jitter
        values = [jitter] if np.ndim(jitter) == 0 else list(jitter) if isinstance(jitter, (list, tuple, np.ndarray)) \
            else None
        if values is None or not all(not isinstance(v, bool) and isinstance(v, (int, float, np.number))
                                     and np.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"`jitter` must be a finite number >= 0 or one such number per term; got {jitter!r}")
        if len(values) not in (1, len(terms)):
            raise ValueError(f"`jitter` has {len(values)} values but the model has {len(terms)} terms; give one "
                             "value, or one per term")
        return np.broadcast_to(np.asarray(values, dtype=np.float64), (len(terms),))

    def _say(self, message):
        logger.info(message)
        if self.verbose:
            print(message)

    # --------------------------------------------------------------------- fit
    def fit(self, atoms_list, *, energies=None, forces=None, virials=None, config_types=None):
        """Choose sparse points and solve for the coefficients.

        Parameters
        ----------
        atoms_list : ase.Atoms or list of ase.Atoms
            Training structures (Å).
        energies : array-like of shape (n_structures,) or None
            Total energies in eV; an entry ``None`` means not observed.
        forces : list of ndarray of shape (n_atoms_s, 3), ndarray of shape (n_atoms_total, 3), or None
            Forces in eV/Å; a list entry ``None`` means not observed.
        virials : array-like of shape (n_structures, 3, 3), list with None entries, or None
            Virials in eV, ``virial = -dE/d(strain)`` (= ``-stress * volume``);
            the 6 independent components of the symmetrised virial are fitted.
        config_types : sequence of str or None
            Selects ``config_type_sigma`` entries; ``None`` is ``"default"``.

        Returns
        -------
        self
        """
        sigma_table = self._check_params()
        atoms_list = as_atoms_list(atoms_list)
        pack(atoms_list)  # validates positions and cells once
        labels = residual_labels(check_labels(atoms_list, energies, forces, virials, config_types), atoms_list,
                                 self.baseline)
        reset_fitted(self)  # a refit keeps nothing of an earlier fit, FITC factor and recalibration included
        budget = None if self.max_memory is None else parse_memory(self.max_memory, "max_memory")
        if self.auto is not None:
            from .auto import fit_auto

            return fit_auto(self, atoms_list, labels, sigma_table, memory_budget=budget, in_use=resident_bytes())
        self.e0_ = resolve_e0(self.e0, atoms_list, labels)
        rng = np.random.default_rng(self.random_state)
        if budget is not None:
            warm_up(self.terms, atoms_list)  # libraries' lasting memory belongs to the baseline, not the fit
        in_use = resident_bytes()
        # Selection holds descriptor rows (and SELECTION_COPIES working copies) before any M x M array
        # exists; without max_memory it holds all rows (the picks do not depend on the block size).
        selection_budget = np.inf if budget is None else max(budget - in_use, 0) / SELECTION_COPIES
        self.terms_ = self._choose_sparse(atoms_list, rng, selection_budget)
        builder = DesignBuilder(self.terms_, self.e0_, sigma_table, self.sigma_per_atom,
                                self.max_block_memory * 2**20)
        want_gradients = any(f is not None for f in labels.forces) or any(v is not None for v in labels.virials)
        per_atom = builder.gradient_bytes_per_atom(atoms_list) if want_gradients else (0.0, 0.0)
        if budget is not None:
            # The blocks are planned from the memory resident when they start: the selection's rows are
            # freed, but an allocator keeps some of what a process has used (thread arenas, fragments).
            release_freed_memory()
        blocks, self.memory_estimate_, message = plan_fit_blocks(self, builder, atoms_list, labels, per_atom,
                                                                 budget, resident_bytes(), in_use)
        self._say(message)
        builder.block_bytes = self.memory_estimate_["block_budget"]
        kmm, L = factor_kmm(self.terms_, self._term_jitter(self.terms_), keep_kmm=self.solver != "qr")
        accumulate = QRAccumulator(L.T) if self.solver == "qr" else NormalAccumulator(kmm)
        del kmm  # the accumulator holds what it needs
        if self.scheduler is None and self.n_jobs in (None, 1):
            groups = [b[0] for b in blocks] if budget is None else \
                budgeted_blocks(self, builder, atoms_list, labels, per_atom, budget)
            bar = progress_bar(sum(len(b[0]) for b in blocks), desc="SparseGPR fit (structures)",
                               enabled=bool(self.verbose))
            for structures in groups:
                A, y = builder.rows(atoms_list, structures, labels)
                accumulate.add(A, y)
                del A, y  # the next block is built without this one alive
                bar.update(len(structures))
            bar.close()
        else:
            accumulate_parallel(self, builder, atoms_list, labels, blocks, accumulate)
        self.posterior_factor_, alpha = accumulate.solve()
        self.kmm_cholesky_ = L
        self.alpha_ = alpha
        start = 0
        for term in self.terms_:
            term.alpha = alpha[start : start + term.n_sparse]
            start += term.n_sparse
        return self

    def _choose_sparse(self, atoms_list, rng, budget=None):
        """Sparse points of every term, holding at most ``budget`` bytes (default: all) of descriptor rows."""
        budget = np.inf if budget is None else budget
        fitted, self.selection_info_ = [], []
        for index, term in enumerate(self.terms):
            descriptor = copy.deepcopy(term.descriptor)
            if term.sparse_points is not None:
                Z = np.array(term.sparse_points, dtype=np.float64)
                n_features = np.asarray(descriptor.transform([min(atoms_list, key=len)])).shape[1]
                if Z.shape[1] != n_features:
                    raise ValueError(f"terms[{index}].sparse_points have {Z.shape[1]} features but the "
                                     f"descriptor gives {n_features}")
                info = {"n_rows": None, "n_features": n_features, "streamed": False, "held_bytes": 0}
            else:
                Z, info = select_streamed(descriptor, atoms_list, int(term.n_sparse), term.sparse_method, rng,
                                          budget, verbose=bool(self.verbose),
                                          label=f"terms[{index}] ({type(term.descriptor).__name__})")
            self.selection_info_.append(info)
            w = row_weights(descriptor, Z)[0]
            keep = w > 0  # a point with zero weight (at the cutoff) adds nothing
            if not keep.any():
                raise ValueError(f"terms[{index}]: every sparse point has zero cutoff weight")
            if term.sparse_points is None and keep.sum() < term.n_sparse:
                reason = _shortfall_reason(term.sparse_method, int(term.n_sparse), len(Z), int((~keep).sum()), info)
                warn_reduced("n_sparse", int(term.n_sparse), int(keep.sum()), reason,
                             where=f"terms[{index}] ({type(term.descriptor).__name__})", stacklevel=4)
            fitted.append(FittedTerm(descriptor, copy.deepcopy(term.kernel), float(term.delta),
                                     Z[keep], w[keep]))
            method = "given" if term.sparse_points is not None else term.sparse_method
            among = "" if info["n_rows"] is None else f" among {info['n_rows']} rows" + (
                " (selected block by block within the memory budget)" if info["streamed"] else "")
            self._say(f"term {index}: {keep.sum()} sparse points ({method}){among}")
        return fitted

    # ----------------------------------------------------------------- predict
    def predict(self, atoms_list, *, properties=("energy",), return_std=False, variance="dtc"):
        """Energies and, on request, forces, virials and stresses, with their uncertainties.

        Parameters
        ----------
        atoms_list : ase.Atoms or list of ase.Atoms
        properties : sequence of {"energy", "forces", "virial", "stress", "local_energy"}, default=("energy",)
        return_std : bool, default=False
            Also return the predictive standard deviation of the latent
            (noise-free) value of every requested property:
            ``"energy_std"`` always, and ``"forces_std"``, ``"virial_std"``,
            ``"stress_std"``, ``"local_energy_std"`` for the properties
            asked for; all multiplied by ``std_scale_`` when the model was
            recalibrated (:func:`kernelpot.uncertainty.calibration.recalibrate`),
            and energy/forces σ combined in quadrature with ``std_floor_``
            if that recalibration fitted a floor.
        variance : {"dtc", "sor", "fitc"}, default="dtc"
            Approximation of the variance (see
            :mod:`kernelpot.models.gap.variance`): projected process (GAP's
            own, includes the prior variance not explained by the sparse
            points), subset of regressors (overconfident far from the data;
            for comparison), or FITC (needs
            :func:`kernelpot.models.gap.variance.fitc_factor` first). A
            predict argument rather than a constructor parameter because all
            three share one fit (FITC adds a factor, not a new mean), so one
            model can be compared under each.

        Returns
        -------
        dict
            ``"energy"``: ndarray (n_structures,) in eV (always present);
            ``"forces"``: ndarray (n_atoms_total, 3) in eV/Å, rows in input order;
            ``"virial"``: ndarray (n_structures, 3, 3) in eV;
            ``"stress"``: ndarray (n_structures, 6) in eV/Å³, Voigt order
            (xx, yy, zz, yz, xz, xy), ASE sign (``-virial / volume``);
            ``"local_energy"``: ndarray (n_atoms_total,) in eV, per-atom
            energies (e0 and the baseline's included) summing to ``"energy"``;
            the energy of a pair row (``distance_2b``) is split equally
            between its two atoms;
            ``"energy_std"``: ndarray (n_structures,) in eV;
            ``"forces_std"``: ndarray (n_atoms_total, 3) in eV/Å;
            ``"virial_std"``: ndarray (n_structures, 3, 3) in eV;
            ``"stress_std"``: ndarray (n_structures, 6) in eV/Å³ (Voigt);
            ``"local_energy_std"``: ndarray (n_atoms_total,) in eV.
        """
        if not hasattr(self, "alpha_"):
            raise ValueError("this SparseGPR is not fitted yet; call fit first")
        if isinstance(properties, str):
            properties = (properties,)
        unknown = [p for p in properties if p not in _PROPERTIES]
        if unknown:
            raise ValueError(f"`properties` must be among {list(_PROPERTIES)}; got {unknown}")
        factor = self._variance_factor(variance) if return_std else None
        atoms_list = as_atoms_list(atoms_list)
        packed = pack(atoms_list)
        unknown_z = sorted({int(z) for z in packed.numbers} - set(self.e0_))
        if unknown_z:
            raise ValueError(f"species Z={unknown_z} were not in the training set (no e0 for them)")
        if "stress" in properties:
            for s, atoms in enumerate(atoms_list):
                if not atoms.pbc.all():
                    raise ValueError(f"stress needs a periodic cell; structure {s} has pbc={atoms.pbc.tolist()}")
        if not return_std and supports_fast_path(self):
            return GAPPredictor(self).predict(atoms_list, properties)
        return self._predict_explicit(atoms_list, packed, properties, return_std, variance, factor)

    def _predict_explicit(self, atoms_list, packed, properties, return_std, variance, factor):
        """``predict`` through explicit descriptor gradients (needed for variances; the reference of the fast path)."""
        need_virial = "virial" in properties or "stress" in properties
        need_local = "local_energy" in properties
        need_gradient = "forces" in properties or need_virial or (
            need_local and any(_rows_span_atoms(t.descriptor) for t in self.terms_))
        n_s = len(atoms_list)
        acc = {
            "energy": np.array([sum(self.e0_[int(z)] for z in a.numbers) for a in atoms_list]),
            "forces": np.zeros((packed.n_atoms, 3)),
            "virial": np.zeros((n_s, 3, 3)),
            "local_energy": np.array([self.e0_[int(z)] for z in packed.numbers]) if need_local else None,
            "request": StdRequest("forces" in properties, need_virial, need_local) if return_std else None,
            "factor": factor,
            "variance": variance,
            "var": {"energy": np.zeros(n_s), "forces": np.zeros(3 * packed.n_atoms), "virial": np.zeros(6 * n_s),
                    "local": np.zeros(packed.n_atoms)},
        }
        builder = DesignBuilder.from_model(self)
        acc["pair_chunk"] = builder.pair_chunk()
        for block in self._predict_blocks(atoms_list, need_gradient, builder):
            self._predict_block(atoms_list, packed, block, need_gradient, need_virial, acc)
        if self.baseline is not None:
            self._add_baseline(atoms_list, "forces" in properties, need_virial, need_local, acc)
        virial = acc["virial"]
        out = {"energy": acc["energy"]}
        for key in ("forces", "virial", "local_energy"):
            if key in properties:
                out[key] = acc[key]
        if "stress" in properties:
            volume = np.array([a.get_volume() for a in atoms_list])
            stress = -virial / volume[:, None, None]
            out["stress"] = np.stack([stress[:, a, b] for a, b in VIRIAL_COMPONENTS], axis=1)
        if return_std:
            out.update(std_outputs(acc["var"], properties, atoms_list, float(getattr(self, "std_scale_", 1.0)),
                                   getattr(self, "std_floor_", None)))
        return out

    def _add_baseline(self, atoms_list, forces, virial, local_energy, acc):
        """Add the baseline's energies and requested derivatives to the GAP's (no variance: it is exact)."""
        self.baseline.check(atoms_list)
        extra = self.baseline.evaluate(atoms_list, forces=forces, virial=virial, local_energy=local_energy)
        acc["energy"] += extra["energy"]
        if forces:
            acc["forces"] += extra["forces"]
        if virial:
            acc["virial"] += extra["virial"]
        if local_energy:
            acc["local_energy"] += extra["local_energy"]

    def _variance_factor(self, variance):
        """Upper factor R of the weights' posterior precision used by ``variance``."""
        if variance not in VARIANCES:
            raise ValueError(f"`variance` must be one of {list(VARIANCES)}; got {variance!r}")
        if getattr(self, "posterior_factor_", None) is None:
            raise ValueError("this model has no posterior covariance (it was imported from a file that stores "
                             "the mean only, e.g. a GAP XML): predictive standard deviations need a model "
                             "fitted by kernelpot")
        if variance != "fitc":
            return self.posterior_factor_
        if not hasattr(self, "fitc_factor_"):
            raise ValueError("variance='fitc' needs the FITC factor: call "
                             "kernelpot.models.gap.fitc_factor(model, training data) first")
        return self.fitc_factor_

    def _predict_blocks(self, atoms_list, need_gradient, builder):
        n_sparse = sum(t.n_sparse for t in self.terms_)
        budget = self.max_block_memory * 2**20
        per_atom = 8 * 3 * n_sparse
        if need_gradient and len(atoms_list) > 1:
            # Measured in fit when it used gradients; a single structure is one block anyway.
            known = self.memory_estimate_["descriptor_gradients_per_atom"]
            per_atom += known if known else builder.gradient_bytes_per_atom(atoms_list)[0]
        return atom_budget_groups(atoms_list, max(1, int(budget / per_atom)))

    def _predict_block(self, atoms_list, packed, block, need_gradient, need_virial, acc):
        energy, forces, virial, request = acc["energy"], acc["forces"], acc["virial"], acc["request"]
        sub = [atoms_list[s] for s in block]
        atom_start = packed.offsets[block[0]]
        n_atoms = sum(len(a) for a in sub)
        std_inputs = []
        shared = SharedDescriptors()  # per-centre-species terms evaluate their SOAP once
        for term in self.terms_:
            if need_gradient:
                X, G = shared.get(term.descriptor, sub, True)
            else:
                X, G = shared.get(term.descriptor, sub, False), None
            local, dE_dr, pair_dE = term.predict_block(X, G, n_atoms, need_gradient)
            rows_structure = structure_of_rows(X.offsets)
            energy[block] += sum_per_structure(local, X.offsets)
            if acc["local_energy"] is not None:
                acc["local_energy"][atom_start : atom_start + n_atoms] += rows_to_atoms(
                    term.descriptor, X, G, packed.numbers[atom_start : atom_start + n_atoms]) @ local
            if need_gradient:
                forces[atom_start : atom_start + n_atoms] -= dE_dr
            if need_virial:
                if G.vectors is None:
                    raise ValueError(f"{type(term.descriptor).__name__} gives no gradient `vectors`; "
                                     "virial and stress are not available with it")
                pair_s = rows_structure[G.center]
                contribution = -np.einsum("pa,pb->pab", G.vectors, pair_dE)
                for a in range(3):
                    for b in range(3):
                        virial[block, a, b] += np.bincount(pair_s, weights=contribution[:, a, b],
                                                           minlength=len(block))
            if request is not None:
                design = term.design_rows(X, G, n_atoms, request.forces, request.virial, acc["pair_chunk"])
                std_inputs.append(term_std_inputs(term, X, G, n_atoms, request, design,
                                                  packed.numbers[atom_start : atom_start + n_atoms]))
        if request is not None:
            atoms = slice(atom_start, atom_start + n_atoms)
            where = {"energy": block, "forces": slice(3 * atom_start, 3 * (atom_start + n_atoms)),
                     "virial": np.ravel(6 * np.asarray(block)[:, None] + np.arange(6)), "local": atoms}
            for key in std_inputs[0]:
                k_star = np.hstack([inputs[key][0] for inputs in std_inputs])
                prior = sum(inputs[key][1] for inputs in std_inputs)
                acc["var"][key][where[key]] = dtc_variance(prior, k_star, self.kmm_cholesky_, acc["factor"],
                                                           acc["variance"])


def _shortfall_reason(method, n_requested, n_chosen, n_zero_weight, info):
    """Why a term got fewer sparse points than its ``n_sparse``, in words."""
    reasons = []
    n_distinct = info.get("n_distinct", n_chosen)
    if n_chosen < n_requested and method == "uniform":
        reasons.append(f"all {info['n_rows']} training rows have the same value, so the uniform grid is one point")
    elif n_chosen < n_requested and n_distinct == n_chosen:
        among = (f" distinct descriptor rows among {info['n_rows']} (symmetry-equivalent environments count once)"
                 if n_distinct < info["n_rows"] else " descriptor rows")
        reasons.append(f"the training structures have only {n_distinct}{among}; add structures or lower n_sparse")
    elif n_chosen < n_requested:
        reasons.append(f"{method} selection stopped after {n_chosen} of {n_distinct} distinct rows: "
                       f"{info.get('stop_reason') or 'the rest coincide with chosen ones'}")
    if n_zero_weight:
        reasons.append(f"{n_zero_weight} chosen point(s) lay at the cutoff (zero covariance weight) and were dropped")
    return "; ".join(reasons)


def _rows_span_atoms(descriptor):
    """Whether a row's atoms (to which its local energy goes) are read from its gradient entries: pairs, triplets."""
    return bool(getattr(descriptor, "rows_are_pairs", False)) or hasattr(descriptor, "row_centres")
