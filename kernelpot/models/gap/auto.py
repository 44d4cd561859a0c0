"""Automatic choice of the sparse points and the noise of a GAP fit, from the training data alone.

:class:`AutoChoice` is the ``auto`` parameter of
:class:`~kernelpot.models.gap.SparseGPR`. With it, ``fit``:

1. carves a validation split from the training structures (a seeded random
   ``validation_fraction`` of them; the test set is never seen, since ``fit``
   is never given it);
2. orders each term's candidate sparse points once, by FPS or CUR in pick
   order, among the descriptor rows of the fitting part, so that the set of
   ``k`` points is the first ``k`` of the set of ``k' > k`` (nested);
3. grows the sparse set along ``sparse_ladder`` (total points of the grown
   terms, shared among them in proportion to their ``n_sparse``, which is each
   term's upper bound) in *stages*: a stage accumulates the QR factors of the
   fitting part's design rows once at its largest count, separately for
   energies, forces and virials, and from them every smaller ladder count and
   every noise candidate is a cheap solve (the R factor of the first ``k``
   columns is the leading block of the R factor of all columns;
   energy/force noise factors rescale the group factors before they are
   stacked and re-triangularised). A stage ends with one pass over the
   validation structures that predicts with every candidate at once;
4. stops at the first ladder count whose successor improves the validation
   force MAE (best noise at each count) by no more than ``tolerance``
   (relative), or when the next stage would exceed ``budget_minutes`` or
   the model's ``max_memory``, or the terms' ``n_sparse`` are reached;
5. optionally first compares ``zetas`` (dot-product kernel exponents) at the
   first stage and continues with the best;
6. refits on all training structures with the choice: the validation
   structures' rows are added to the stage's factors (exact: the same
   least-squares problem as a plain fit on all structures with the chosen
   sparse points and noise), so the refit costs one triangular solve.

The cost is planned before any fit (:mod:`.auto_plan`: a probe times the
design rows of a few structures and one QR update, and the plan scales them
with the counts; estimates in CPU minutes of this process) and printed; a
``budget_minutes`` that cannot cover even the first stage is refused.

Choices made on purpose:

* The reference energies ``e0`` are computed from the fitting part only and
  kept in the final model, so no validation label enters the candidates.
* The sparse points are chosen among the fitting part's environments; the
  final model keeps them (the validation structures contribute rows, not
  points).
* With one grown term (the usual SOAP term) the counts are exact prefixes;
  with several, each ladder count keeps the same share per term and the
  candidate's factor is re-triangularised from the stage's (still exact).
* δ (a term's energy scale) is not searched separately: with one term the
  mean depends on δ and the noise only through their ratio, which the
  noise candidates already vary.
* With several grown terms (e.g. one per centre species, gap_fit's ``Z=``)
  their counts keep the proportions of their ``n_sparse``; the table gives
  the per-term counts.
* The learned noise is reported in ``auto_choice_["default_sigma"]``; the
  model's ``default_sigma`` parameter is never changed by ``fit``
  (scikit-learn's rule). :meth:`AutoChoice.chosen_parameters` gives the
  parameters of the equivalent plain fit.
"""

from __future__ import annotations

import copy
import time

import numpy as np

from ...kernels import NormalizedDotProductCovariance
from ...utils.estimators import Estimator
from .accumulators import GroupFactor, combined_factor, solve_columns
from .auto_plan import affordable_stages, describe_plan, plan_auto
from .design import DesignBuilder
from .labels import Labels, check_sigma, resolve_e0
from .sparse import choose_sparse
from .terms import FittedTerm, factor_kmm, row_weights

__all__ = ["AutoChoice", "holdout_indices", "choose_count", "plan_fit", "fit_auto", "format_auto_table"]

#: Total sparse points of the grown terms tried, in order (capped by the terms' ``n_sparse``).
DEFAULT_LADDER = (250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6500, 8000, 10000, 13000, 16000)
_GROWN = ("fps", "cur")


def holdout_indices(n_structures, fraction, seed):
    """``(kept, held_out)`` structure indices, each sorted: a seeded random ``fraction`` held out.

    At least one structure lands on each side; fewer than 2 structures cannot be split.
    """
    if n_structures < 2:
        raise ValueError(f"a hold-out split needs at least 2 structures; got {n_structures}")
    n_held = min(max(int(round(fraction * n_structures)), 1), n_structures - 1)
    order = np.random.default_rng(seed).permutation(n_structures)
    return np.sort(order[n_held:]), np.sort(order[:n_held])


class AutoChoice(Estimator):
    """Settings of the automatic choice of sparse counts and noise (``SparseGPR(auto=AutoChoice())``).

    Parameters
    ----------
    validation_fraction : float, default=0.2
        Share of the training structures held out for validation (at least
        one structure; at least one must remain to fit).
    sparse_ladder : sequence of int, default=DEFAULT_LADDER
        Increasing total numbers of sparse points of the grown terms (those
        with ``sparse_method`` "fps" or "cur" and no ``sparse_points``) to
        try; counts above the sum of their ``n_sparse`` are dropped and that
        sum is the last count.
    stage_growth : float, default=2.0
        A stage's largest count is the first ladder count at least this
        times the previous stage's: larger values mean fewer, bigger stages.
    tolerance : float, default=0.02
        A count improves when its pooled validation force MAE (best noise) is below
        ``1 - tolerance`` times the best of the smaller counts.
    patience : int, default=2
        Growth stops after this many counts in a row that do not improve;
        the last count that did is chosen (:func:`choose_count`).
    force_sigma_factors, energy_sigma_factors : sequence of float, default=(0.5, 1, 2)
        Multipliers of the model's ``default_sigma`` force and energy noise
        tried at every count (all combinations); from the second stage on
        they multiply the previous stage's best noise instead, so a best
        value at the edge of the grid moves the grid. Virial noise is not
        varied.
    energy_weight : float, default=1.0
        How the noise candidates of a count are ranked: lowest
        ``log(validation force MAE) + energy_weight * log(validation energy
        MAE)``, so with 1 a 10 % lower force error is worth a 10 % higher
        energy error. 0 ranks by the force MAE alone (the energy MAE only
        breaks ties within ``FORCE_TIE``): on mlearn Si that chose an energy
        noise 8x the default and tripled the test energy error for a 17 %
        lower force error. The sparse count is grown on the force MAE of the
        best candidate either way.
    zetas : sequence of int or None, default=None
        Exponents of the dot-product kernels compared at the first stage
        (None: keep the terms' own).
    budget_minutes : float or None, default=None
        CPU minutes (of this process) for the whole choice and refit: the
        descriptors and the ordering of the sparse points (measured) plus
        the planned stages (estimated from a probe); stages that would
        exceed it are not run, and a budget below the first stage is refused
        with the minutes it needs.
    balance_config_types : bool, default=True
        Average the validation errors over the structures' config types
        (``config_types`` / extxyz ``config_type``; structures without one
        form one group), each type counting once, so that a type with few
        structures (surfaces among bulk cells) weighs as much as a common
        one. Without config types, or with one, it changes nothing. The
        noise candidates are ranked on these balanced errors; the sparse
        count is grown on the pooled force MAE of all validation atoms
        (``val_force_mae_pooled`` in the table), the least noisy figure.
    random_state : int, default=0
        Seed of the validation split.
    """

    def __init__(self, *, validation_fraction=0.2, sparse_ladder=DEFAULT_LADDER, stage_growth=2.0, tolerance=0.02,
                 patience=2, force_sigma_factors=(0.5, 1.0, 2.0), energy_sigma_factors=(0.5, 1.0, 2.0),
                 energy_weight=1.0, zetas=None, budget_minutes=None, balance_config_types=True, random_state=0):
        self.validation_fraction = validation_fraction
        self.sparse_ladder = sparse_ladder
        self.stage_growth = stage_growth
        self.tolerance = tolerance
        self.patience = patience
        self.force_sigma_factors = force_sigma_factors
        self.energy_sigma_factors = energy_sigma_factors
        self.energy_weight = energy_weight
        self.balance_config_types = balance_config_types
        self.zetas = zetas
        self.budget_minutes = budget_minutes
        self.random_state = random_state

    def validate(self):
        """Check the settings; errors name the parameter."""
        fraction = self.validation_fraction
        if not (isinstance(fraction, (int, float, np.number)) and 0 < fraction < 1):
            raise ValueError(f"`auto.validation_fraction` must be in (0, 1); got {fraction!r}")
        ladder = list(self.sparse_ladder)
        if not ladder or any(int(k) != k or k < 1 for k in ladder) or any(b <= a for a, b in zip(ladder, ladder[1:])):
            raise ValueError(f"`auto.sparse_ladder` must be increasing integers >= 1; got {self.sparse_ladder!r}")
        if not (isinstance(self.stage_growth, (int, float)) and self.stage_growth > 1):
            raise ValueError(f"`auto.stage_growth` must be a number > 1; got {self.stage_growth!r}")
        if not (isinstance(self.tolerance, (int, float)) and 0 <= self.tolerance < 1):
            raise ValueError(f"`auto.tolerance` must be in [0, 1); got {self.tolerance!r}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, (int, np.integer)) or self.patience < 1:
            raise ValueError(f"`auto.patience` must be an integer >= 1; got {self.patience!r}")
        for name in ("force_sigma_factors", "energy_sigma_factors"):
            values = list(getattr(self, name))
            if not values or not all(isinstance(v, (int, float, np.number)) and v > 0 for v in values):
                raise ValueError(f"`auto.{name}` must be numbers > 0; got {getattr(self, name)!r}")
        weight = self.energy_weight
        if isinstance(weight, bool) or not (isinstance(weight, (int, float, np.number)) and 0 <= weight < np.inf):
            raise ValueError(f"`auto.energy_weight` must be a number >= 0; got {weight!r}")
        if not isinstance(self.balance_config_types, (bool, np.bool_)):
            raise ValueError(f"`auto.balance_config_types` must be True or False; got {self.balance_config_types!r}")
        if self.zetas is not None and (not list(self.zetas) or any(int(z) != z or z < 1 for z in self.zetas)):
            raise ValueError(f"`auto.zetas` must be None or integers >= 1; got {self.zetas!r}")
        budget = self.budget_minutes
        if budget is not None and not (isinstance(budget, (int, float, np.number)) and budget > 0):
            raise ValueError(f"`auto.budget_minutes` must be None or a number > 0; got {budget!r}")

    def split(self, n_structures):
        """(fit, validation) structure indices, each sorted: a seeded random ``validation_fraction``."""
        if n_structures < 2:
            raise ValueError(f"auto mode needs at least 2 training structures (one to validate); got {n_structures}")
        return holdout_indices(n_structures, self.validation_fraction, self.random_state)

    @staticmethod
    def chosen_parameters(model):
        """Parameters of a plain ``SparseGPR`` fit equivalent to ``model``'s auto fit (after ``fit``).

        ``{"default_sigma": (E, F, V), "n_sparse": [per term], "zeta": int or None}``; ``zeta`` is None
        when ``zetas`` was not searched (the terms keep their own).
        """
        choice = model.auto_choice_
        return {"default_sigma": tuple(choice["default_sigma"]), "n_sparse": list(choice["n_sparse"]),
                "zeta": choice["zeta"]}


def choose_count(errors, tolerance, patience=2):
    """Index of the chosen ladder count, and whether growth stopped on the tolerance.

    A count *improves* when its error is below ``(1 - tolerance)`` times the
    best error of the smaller counts. Growth stops after ``patience``
    consecutive counts that do not improve; the chosen count is the last one
    that did (the first count when none did).

    Parameters
    ----------
    errors : sequence of float
        Validation errors at increasing counts (the best noise at each).
    tolerance : float
        Relative improvement at or below which a count does not count as better.
    patience : int, default=2
        Non-improving counts in a row that stop the growth.

    Returns
    -------
    index : int
        The chosen count.
    stopped : bool
        Whether growth stopped on the tolerance (False: it ran out of counts,
        so larger counts might still help).
    """
    chosen, best, waiting = 0, errors[0], 0
    for i in range(1, len(errors)):
        if errors[i] < (1.0 - tolerance) * best:
            chosen, best, waiting = i, errors[i], 0
        else:
            waiting += 1
            if waiting >= patience:
                return chosen, True
    return chosen, False


def _subset_labels(labels, index):
    return Labels(*[[getattr(labels, field)[s] for s in index]
                    for field in ("energies", "forces", "virials", "config_types")])


def _row_layout(builder, structures, labels, atoms_list):
    """Where each kind of label sits in a block of :meth:`DesignBuilder.rows`.

    Returns the row ranges of energies, forces and virials, and the structures (indices into ``atoms_list``) whose
    energies and whose forces are observed, in row order.
    """
    has_e, has_f, _ = builder.observed(structures, labels)
    with_energy = [s for s, e in zip(structures, has_e) if e]
    with_forces = [s for s, f in zip(structures, has_f) if f]
    n_e = len(with_energy)
    n_f = 3 * sum(len(atoms_list[s]) for s in with_forces)
    slices = (slice(0, n_e), slice(n_e, n_e + n_f), slice(n_e + n_f, None))
    return slices, with_energy, with_forces


class _Problem:
    """The data of one auto fit: the split, the ordered candidate points of every term, the builders."""

    def __init__(self, model, atoms_list, labels, sigma_table, auto):
        self.model, self.auto = model, auto
        self.fit_index, self.val_index = auto.split(len(atoms_list))
        self.fit_atoms = [atoms_list[s] for s in self.fit_index]
        self.val_atoms = [atoms_list[s] for s in self.val_index]
        self.fit_labels = _subset_labels(labels, self.fit_index)
        self.val_labels = _subset_labels(labels, self.val_index)
        self.e0 = resolve_e0(model.e0, self.fit_atoms, self.fit_labels)
        self.sigma_table = sigma_table
        self.unit_sigma = check_sigma((1.0, 1.0, 1.0), None)
        self.jitter = model._term_jitter(model.terms)
        self.block_bytes = model.max_block_memory * 2**20
        rng = np.random.default_rng(model.random_state)
        self.points, self.weights, self.grown, self.selection_info = [], [], [], []
        for index, term in enumerate(model.terms):
            descriptor = term.descriptor
            grown = term.sparse_points is None and term.sparse_method in _GROWN
            if term.sparse_points is not None:
                Z = np.array(term.sparse_points, dtype=np.float64)
                self.selection_info.append({"n_rows": None, "n_features": Z.shape[1], "streamed": False,
                                            "held_bytes": 0})
            else:
                X = np.asarray(descriptor.transform(self.fit_atoms), dtype=np.float64)
                Z, _ = choose_sparse(X, int(term.n_sparse), term.sparse_method, rng, keep_order=grown,
                                     where=f"terms[{index}] ({type(descriptor).__name__})")
                self.selection_info.append({"n_rows": len(X), "n_features": X.shape[1], "streamed": False,
                                            "held_bytes": X.nbytes})
                del X
            w = row_weights(descriptor, Z)[0]
            keep = w > 0
            if not keep.any():
                raise ValueError(f"terms[{index}]: every sparse point has zero cutoff weight")
            self.points.append(Z[keep])
            self.weights.append(w[keep])
            self.grown.append(grown)
        if not any(self.grown):
            raise ValueError("auto mode grows terms with sparse_method 'fps' or 'cur' (and no sparse_points); "
                             "the model has none")
        self.ladder = self._ladder()

    def _ladder(self):
        """Per-term counts of every ladder step: list of tuples (one count per term)."""
        caps = [len(p) for p in self.points]
        grown_total = sum(c for c, g in zip(caps, self.grown) if g)
        totals = [int(k) for k in self.auto.sparse_ladder if k < grown_total] + [grown_total]
        steps = []
        for total in totals:
            counts = tuple(max(1, min(cap, int(round(total * cap / grown_total)))) if g else cap
                           for cap, g in zip(caps, self.grown))
            if not steps or counts != steps[-1]:
                steps.append(counts)
        return steps

    def stage_tops(self):
        """Ladder indices at which stages accumulate."""
        tops, previous = [], 0
        totals = [self.grown_total(step) for step in self.ladder]
        for i, total in enumerate(totals):
            if not tops and i == min(2, len(totals) - 1) or tops and total >= self.auto.stage_growth * previous:
                tops.append(i)
                previous = total
        if tops[-1] != len(totals) - 1:
            tops.append(len(totals) - 1)
        return tops

    def grown_total(self, counts):
        return sum(c for c, g in zip(counts, self.grown) if g)

    def fitted_terms(self, counts, kernels=None):
        """FittedTerm of every term with the first ``counts[t]`` of its ordered points."""
        terms = []
        for t, term in enumerate(self.model.terms):
            kernel = copy.deepcopy(term.kernel if kernels is None else kernels[t])
            terms.append(FittedTerm(copy.deepcopy(term.descriptor), kernel, float(term.delta),
                                    self.points[t][: counts[t]], self.weights[t][: counts[t]]))
        return terms

    def columns(self, stage_counts, counts):
        """Column indices, in the stage's layout, of a candidate's sparse points."""
        offsets = np.concatenate([[0], np.cumsum(stage_counts)])
        return np.concatenate([offsets[t] + np.arange(c) for t, c in enumerate(counts)]).astype(np.int64)

    def builder(self, terms, whitened):
        table = self.sigma_table if whitened else self.unit_sigma
        return DesignBuilder(terms, self.e0, table, self.model.sigma_per_atom if whitened else False,
                             self.block_bytes)


def _accumulate(problem, terms, atoms_list, labels, whitened_builder, m, progress=None):
    """Group factors (energies, forces, virials) of the whitened design rows of ``atoms_list``."""
    groups = [GroupFactor(m) for _ in range(3)]
    per_atom = whitened_builder.gradient_bytes_per_atom(atoms_list)[0]
    blocks, _ = whitened_builder.plan_blocks(atoms_list, labels, per_atom)
    for structures, _ in blocks:
        A, b = whitened_builder.rows(atoms_list, structures, labels)
        for group, rows in zip(groups, _row_layout(whitened_builder, structures, labels, atoms_list)[0]):
            group.add(A[rows], b[rows])
        del A, b
        if progress is not None:
            progress(len(structures))
    return groups


def _validate(problem, terms, coefficients, m):
    """Validation energy MAE (eV/atom) and force MAE (eV/Å) of every coefficient column, and the val groups.

    The energy error is per atom, the materials convention (mlearn, GAP papers): per structure, a set of mixed sizes
    would weigh a 54-atom cell's error nine times a 6-atom surface slab's, and the choice would neglect the small
    structures. For structures of one size (a molecule's frames) the two differ by a constant factor, which does not
    change the ranking (:func:`_best_row` ranks on logarithms). With ``auto.balance_config_types`` both errors are
    the mean over config types of each type's MAE.

    ``coefficients`` is (m, n_candidates) in the stage's column layout.
    """
    plain = problem.builder(terms, whitened=False)
    whitened = problem.builder(terms, whitened=True)
    atoms_list, labels = problem.val_atoms, problem.val_labels
    types = [c if problem.auto.balance_config_types else None for c in labels.config_types]
    type_index = {t: i for i, t in enumerate(dict.fromkeys(types))}
    structure_type = np.array([type_index[t] for t in types], dtype=np.int64)
    groups = [GroupFactor(m) for _ in range(3)]
    per_atom = plain.gradient_bytes_per_atom(atoms_list)[0]
    blocks, _ = plain.plan_blocks(atoms_list, labels, per_atom)
    errors = {kind: _TypeErrors(len(type_index), coefficients.shape[1]) for kind in ("energy", "forces")}
    for structures, _ in blocks:
        A, b = plain.rows(atoms_list, structures, labels)
        slices, with_energy, with_forces = _row_layout(plain, structures, labels, atoms_list)
        e_rows, f_rows, _ = slices
        atoms_per_energy = np.array([len(atoms_list[s]) for s in with_energy], dtype=float)
        residual = A @ coefficients - b[:, None]
        errors["energy"].add(np.abs(residual[e_rows] / atoms_per_energy[:, None]), structure_type[with_energy])
        errors["forces"].add(np.abs(residual[f_rows]), np.repeat(structure_type[with_forces],
                                                                 [3 * len(atoms_list[s]) for s in with_forces]))
        del residual
        sigma = whitened.row_sigmas(atoms_list, structures, labels)
        A /= sigma[:, None]
        b /= sigma
        for group, rows in zip(groups, slices):
            group.add(A[rows], b[rows])
        del A, b
    return errors["energy"].mean(), errors["forces"].mean(), errors["forces"].pooled(), groups


class _TypeErrors:
    """Sums and counts of absolute errors per config type; :meth:`mean` averages the types' MAEs."""

    def __init__(self, n_types, n_candidates):
        self.total = np.zeros((n_types, n_candidates))
        self.count = np.zeros(n_types)

    def add(self, absolute_errors, row_types):
        for t in np.unique(row_types):
            rows = row_types == t
            self.total[t] += absolute_errors[rows].sum(axis=0)
            self.count[t] += rows.sum()

    def pooled(self):
        """MAE over all rows, whatever their type."""
        if not self.count.any():
            return np.full(self.total.shape[1], np.nan)
        return self.total.sum(axis=0) / self.count.sum()

    def mean(self):
        seen = self.count > 0
        if not seen.any():
            return np.full(self.total.shape[1], np.nan)
        return (self.total[seen] / self.count[seen, None]).mean(axis=0)


def _sigma_candidates(auto, sigma_table, center):
    """(energy, force) noise factors of a stage: the grid times ``center``, and the base ``default_sigma``."""
    base = sigma_table["default"]
    return [(float(fe * center[0]), float(ff * center[1])) for ff in auto.force_sigma_factors
            for fe in auto.energy_sigma_factors], [float(v) for v in base]


def _run_stage(problem, stage_counts, steps, kernels, say, center=(1.0, 1.0)):
    """Accumulate one stage and evaluate every (ladder step <= it, noise) candidate. Returns rows and state."""
    auto = problem.auto
    terms = problem.fitted_terms(stage_counts, kernels)
    m = sum(stage_counts)
    start = time.process_time()
    whitened = problem.builder(terms, whitened=True)
    fit_groups = _accumulate(problem, terms, problem.fit_atoms, problem.fit_labels, whitened, m)
    _, L = factor_kmm(terms, problem.jitter, keep_kmm=False)
    Lt = np.ascontiguousarray(L.T)
    candidates, base = _sigma_candidates(auto, problem.sigma_table, center)
    columns = [problem.columns(stage_counts, counts) for counts in steps]
    coefficients = np.zeros((m, len(candidates) * len(steps)))
    energy_rows, force_rows, virial_rows = fit_groups
    shared = {}  # the forces and virials (the large factor) once per force noise; energies (few rows) per pair
    for c, (fe, ff) in enumerate(candidates):
        if ff not in shared:
            shared.clear()
            shared[ff] = combined_factor(Lt, [[force_rows], [virial_rows]], (ff, 1.0))
        R = combined_factor(Lt, [[energy_rows]], (fe,), start=shared[ff])
        for s, cols in enumerate(columns):
            coefficients[cols, c * len(steps) + s] = solve_columns(R, cols)[0]
        del R
    shared.clear()
    energy, forces, pooled_forces, val_groups = _validate(problem, terms, coefficients, m)
    seconds = time.process_time() - start
    rows = []
    for c, (fe, ff) in enumerate(candidates):
        for s, counts in enumerate(steps):
            rows.append({"n_sparse": list(counts), "n_sparse_total": int(sum(counts)),
                         "zeta": _zeta(kernels), "sigma_energy": base[0] * fe, "sigma_forces": base[1] * ff,
                         "val_force_mae": float(forces[c * len(steps) + s]),
                         "val_force_mae_pooled": float(pooled_forces[c * len(steps) + s]),
                         "val_energy_mae": float(energy[c * len(steps) + s]), "stage_top": int(m)})
    say(f"auto: stage with {m} sparse points{'' if kernels is None else f' (zeta {_zeta(kernels)})'}: "
        f"{len(rows)} candidates in {seconds:.0f} s CPU; best validation force MAE "
        f"{1e3 * np.nanmin(forces):.2f} meV/Å")
    state = {"terms": terms, "Lt": Lt, "fit_groups": fit_groups, "val_groups": val_groups, "m": m,
             "stage_counts": stage_counts, "seconds": seconds}
    return rows, state


def _zeta(kernels):
    if kernels is None:
        return None
    zetas = {int(k.zeta) for k in kernels if isinstance(k, NormalizedDotProductCovariance)}
    return zetas.pop() if len(zetas) == 1 else None


def _kernels_with_zeta(model, zeta):
    kernels = []
    for term in model.terms:
        kernel = copy.deepcopy(term.kernel)
        if zeta is not None and isinstance(kernel, NormalizedDotProductCovariance):
            kernel = NormalizedDotProductCovariance(int(zeta))
        kernels.append(kernel)
    return kernels


# Force MAEs within this fraction of the best count as a tie, broken by the energy MAE: the energy noise
# hardly changes the forces (one energy row per structure against 3 per atom), so without this its choice (and
# the grid of the next stage, centred on it) would follow round-off-level differences of the force MAE.
FORCE_TIE = 0.002


def _best_row(rows, energy_weight):
    """The row with the lowest ``log(force MAE) + energy_weight * log(energy MAE)`` (validation); with weight 0,
    or without energy errors (no energy labels), the lowest force MAE, ties (within FORCE_TIE) broken by the
    energy MAE."""
    forces = np.array([np.nan_to_num(r["val_force_mae"], nan=np.inf) for r in rows])
    energies = np.array([np.nan_to_num(r["val_energy_mae"], nan=np.inf) for r in rows])
    if energy_weight > 0 and np.isfinite(energies).any():  # a failed candidate (inf) just scores inf
        tiny = np.finfo(float).tiny  # an exact fit's zero error must not make the score -inf
        with np.errstate(invalid="ignore"):  # inf force errors (failed candidates) stay inf
            score = np.log(np.maximum(forces, tiny)) + energy_weight * np.log(np.maximum(energies, tiny))
        return rows[int(np.argmin(np.nan_to_num(score, nan=np.inf)))]
    tied = np.flatnonzero(forces <= (1.0 + FORCE_TIE) * forces.min())
    return rows[int(tied[np.argmin(energies[tied])])]


def _best_per_step(rows, steps, energy_weight):
    """Best row (:func:`_best_row`) of every ladder step, in ladder order."""
    return [_best_row([r for r in rows if tuple(r["n_sparse"]) == tuple(counts)], energy_weight) for counts in steps]


# ---------------------------------------------------------------------------------------------- the fit
def _prepare(model, atoms_list, labels, sigma_table, memory_budget, in_use):
    """The problem, the ζ candidates, the plan and how many of its stages the budgets allow (or a refusal)."""
    auto = model.auto
    auto.validate()
    if auto.zetas is not None and not any(isinstance(t.kernel, NormalizedDotProductCovariance)
                                          for t in model.terms):
        raise ValueError("`auto.zetas` needs a term with a NormalizedDotProductCovariance kernel")
    start = time.process_time()
    problem = _Problem(model, atoms_list, labels, sigma_table, auto)
    zetas = [None] if auto.zetas is None else list(auto.zetas)
    plan = plan_auto(problem, kernels_count=len(zetas))
    # the descriptors, the ordering of the sparse points and the probe are spent already: they count too
    plan["setup_seconds"] = time.process_time() - start
    return problem, zetas, plan, affordable_stages(plan, memory_budget, in_use)


def plan_fit(model, atoms_list, *, energies=None, forces=None, virials=None, config_types=None):
    """What ``model.fit`` (with ``auto``) would run on these data, without fitting.

    Orders the sparse points and times the probe as the fit does (a few
    percent of its cost), then stops.

    Returns
    -------
    plan : dict
        As :func:`plan_auto`, with ``"n_affordable"``: the stages the budgets allow.
    text : str
        The plan as the fit prints it.

    Raises
    ------
    ValueError
        The budget cannot cover the first stage (as ``fit`` would).
    """
    from ...structures.packing import as_atoms_list
    from ...utils.memory import parse_memory, resident_bytes
    from .labels import check_labels, residual_labels

    if model.auto is None:
        raise ValueError("plan_fit needs a SparseGPR with `auto` set (an AutoChoice)")
    sigma_table = model._check_params()
    atoms_list = as_atoms_list(atoms_list)
    labels = residual_labels(check_labels(atoms_list, energies, forces, virials, config_types), atoms_list,
                             model.baseline)
    budget = None if model.max_memory is None else parse_memory(model.max_memory, "max_memory")
    _, _, plan, n_affordable = _prepare(model, atoms_list, labels, sigma_table, budget, resident_bytes())
    return {**plan, "n_affordable": n_affordable}, describe_plan(plan, n_affordable)


def fit_auto(model, atoms_list, labels, sigma_table, *, memory_budget=None, in_use=0.0):
    """Fill ``model``'s fitted attributes by the auto choice (called by :meth:`SparseGPR.fit`)."""
    auto = model.auto
    clock = time.process_time()
    problem, zetas, plan, n_affordable = _prepare(model, atoms_list, labels, sigma_table, memory_budget, in_use)
    model._say(describe_plan(plan, n_affordable))
    tops = problem.stage_tops()[:n_affordable]
    table, stop_reason, previous = [], None, 0
    kernels, state, center = None, None, (1.0, 1.0)
    base = sigma_table["default"]
    for i, top in enumerate(tops):
        steps = problem.ladder[previous : top + 1]
        stage_counts = problem.ladder[top]
        if i == 0 and len(zetas) > 1:
            results = []
            for zeta in zetas:
                rows, st = _run_stage(problem, stage_counts, steps, _kernels_with_zeta(model, zeta), model._say)
                table.extend(rows)
                results.append((_best_row(rows, auto.energy_weight), zeta, rows, st))
            # the exponent whose best candidate wins by the same ranking as the noise candidates
            winner = _best_row([result[0] for result in results], auto.energy_weight)
            _, zeta, rows, state = next(result for result in results if result[0] is winner)
            kernels = _kernels_with_zeta(model, zeta)
        else:
            if i == 0 and zetas[0] is not None:
                kernels = _kernels_with_zeta(model, zetas[0])
            rows, state = _run_stage(problem, stage_counts, steps, kernels, model._say, center)
            table.extend(rows)
        # the next stage's noise grid is centred on this stage's best, so a best value at an edge moves the grid
        best_row = _best_row(rows, auto.energy_weight)
        center = (best_row["sigma_energy"] / base[0], best_row["sigma_forces"] / base[1])
        previous = top + 1
        evaluated = problem.ladder[: top + 1]
        chosen_zeta = _zeta(kernels)
        best = _best_per_step([r for r in table if r["zeta"] == chosen_zeta], evaluated, auto.energy_weight)
        # the count (capacity) is grown on the pooled force MAE, the validation set's least noisy figure: per-type
        # means of rare types jump from count to count; the noise (a trade-off between types) is ranked balanced
        index, stopped = choose_count([r["val_force_mae_pooled"] for r in best],
                                      auto.tolerance, auto.patience)
        if stopped:
            stop_reason = (f"the next {auto.patience} larger counts did not improve the validation force MAE by "
                           f"more than {100 * auto.tolerance:g} %")
            break
    else:
        if n_affordable < len(problem.stage_tops()):
            stop_reason = "the time or memory budget was reached"
        else:
            stop_reason = "the largest sparse count (the terms' n_sparse) was reached"
    chosen = best[index]
    _refit(model, problem, state, chosen, kernels)
    for row in table:
        row["chosen"] = row is chosen
    model.auto_table_ = table
    model.auto_plan_ = plan
    model.auto_choice_ = {
        "n_sparse": [int(c) for c in chosen["n_sparse"]], "n_sparse_total": chosen["n_sparse_total"],
        "default_sigma": [chosen["sigma_energy"], chosen["sigma_forces"], float(sigma_table["default"][2])],
        # multipliers of every energy and force sigma (config types too): DesignBuilder.from_model applies them
        "sigma_factors": [chosen["sigma_energy"] / sigma_table["default"][0],
                          chosen["sigma_forces"] / sigma_table["default"][1]],
        "zeta": chosen["zeta"], "val_force_mae": chosen["val_force_mae"], "val_energy_mae": chosen["val_energy_mae"],
        "stop_reason": stop_reason, "validation_structures": [int(s) for s in problem.val_index],
        "n_fit": len(problem.fit_index), "n_validation": len(problem.val_index),
        "settings": auto.get_params(), "cpu_seconds": time.process_time() - clock,
    }
    model._say(format_auto_table(model))
    return model


def _refit(model, problem, state, chosen, kernels):
    """The final model: the stage's factors plus the validation rows, with the chosen noise and points."""
    sigma = problem.sigma_table["default"]
    factors = (chosen["sigma_energy"] / sigma[0], chosen["sigma_forces"] / sigma[1], 1.0)
    groups = [[fit, val] for fit, val in zip(state["fit_groups"], state["val_groups"])]
    R = combined_factor(state["Lt"], groups, factors)
    stage_counts = state["stage_counts"]
    state.clear()  # the stage's factors are no longer needed
    counts = tuple(chosen["n_sparse"])
    columns = problem.columns(stage_counts, counts)
    alpha, Rs = solve_columns(R, columns)
    del R
    terms = problem.fitted_terms(counts, kernels)
    _, L = factor_kmm(terms, problem.jitter, keep_kmm=False)
    start = 0
    for term in terms:
        term.alpha = alpha[start : start + term.n_sparse]
        start += term.n_sparse
    model.terms_ = terms
    model.e0_ = problem.e0
    model.alpha_ = alpha
    model.kmm_cholesky_ = L
    model.posterior_factor_ = Rs
    model.selection_info_ = problem.selection_info
    builder = DesignBuilder(terms, problem.e0, problem.sigma_table, model.sigma_per_atom, problem.block_bytes)
    model.memory_estimate_ = {"descriptor_gradients_per_atom": int(builder.gradient_bytes_per_atom(
        problem.fit_atoms)[0]), "block_budget": float(problem.block_bytes)}


def format_auto_table(model):
    """The candidates of ``model``'s auto fit as a text table (force MAE meV/Å, energy MAE meV/atom)."""
    table = model.auto_table_
    lines = [f"{'sparse':>8}{'zeta':>6}{'sigma_E':>10}{'sigma_F':>10}{'val F MAE':>11}{'val E MAE':>11}",
             f"{'':>8}{'':>6}{'eV/atom':>10}{'eV/Å':>10}{'meV/Å':>11}{'meV/atom':>11}"]
    for row in sorted(table, key=lambda r: (r["zeta"] or 0, r["n_sparse_total"], r["sigma_forces"],
                                            r["sigma_energy"])):
        mark = "  <- chosen" if row.get("chosen") else ""
        zeta = "-" if row["zeta"] is None else str(row["zeta"])
        lines.append(f"{row['n_sparse_total']:>8}{zeta:>6}{row['sigma_energy']:>10.4g}{row['sigma_forces']:>10.4g}"
                     f"{1e3 * row['val_force_mae']:>11.2f}{1e3 * row['val_energy_mae']:>11.2f}{mark}")
    choice = getattr(model, "auto_choice_", None)
    if choice:
        lines.append(f"chosen: {choice['n_sparse']} sparse points, default_sigma {choice['default_sigma']}"
                     + ("" if choice["zeta"] is None else f", zeta {choice['zeta']}")
                     + f"; stopped because {choice['stop_reason']}")
    return "\n".join(lines)
