"""Acquisition strategies: which unlabelled structures are worth a label.

Every strategy follows the same three steps, called by
:class:`~kernelpot.active.loop.ActiveLearner` once per iteration:

1. ``prepare(model, labelled)`` after each refit (committee members, the
   maxvol active set, the labelled environments);
2. ``score(candidates)``: one number per candidate structure, larger is
   more informative (units in ``score_units``);
3. ``select(candidates, scores, batch_size, min_distance)``: a greedy
   batch; picks whose structure fingerprints lie closer than
   ``min_distance`` to an earlier pick of the batch are skipped, so no two
   picks are near-duplicates (:func:`fingerprints`).

Strategies see the model only through ``predict``; how its uncertainty
is computed (DTC variance, FITC, ...) is the model's business.
"""

from __future__ import annotations

import copy

import numpy as np

from ..exceptions import warn_reduced
from ..utils.linalg import cholesky

__all__ = ["STRATEGIES", "make_strategy", "fingerprints", "Strategy", "PredictiveVariance", "VarianceReduction",
           "CommitteeDisagreement", "DescriptorDistance", "DOptimality", "RandomSelection"]


def _linalg():
    """scipy.linalg, imported on first use: building the ``kernelpot`` parser lists the strategies (start-up time)."""
    import scipy.linalg

    return scipy.linalg


def _env_term(model):
    """Index of the term whose rows are atomic environments with the most features (e.g. SOAP)."""
    best, width = None, -1
    for index, term in enumerate(model.terms_):
        if getattr(term.descriptor, "rows_are_pairs", False):
            continue
        if term.sparse_X.shape[1] > width:
            best, width = index, term.sparse_X.shape[1]
    if best is None:
        raise ValueError("this strategy needs a term with one descriptor row per atom (e.g. SOAP); "
                         "the model has only pair terms")
    return best


def _unit_rows(X):
    X = np.asarray(X, dtype=np.float64)
    norm = np.linalg.norm(X, axis=1)
    return X / np.where(norm > 0, norm, 1.0)[:, None]


def fingerprints(model, candidates):
    """Structure fingerprints: mean of the unit-normalised environment features.

    Parameters
    ----------
    model : SparseGPR
        Fitted; its environment term (most features) is used.
    candidates : list of ase.Atoms

    Returns
    -------
    ndarray of shape (n_candidates, n_features)
    """
    term = model.terms_[_env_term(model)]
    X = term.descriptor.transform(candidates)
    U = _unit_rows(X)
    counts = np.diff(X.offsets)
    sums = np.add.reduceat(U, X.offsets[:-1], axis=0) if len(U) else np.zeros((0, U.shape[1]))
    return sums / np.maximum(counts, 1)[:, None]


def auto_min_distance(prints):
    """Half the median nearest-neighbour distance between fingerprints (0 for < 2 candidates)."""
    if len(prints) < 2:
        return 0.0
    d2 = ((prints[:, None, :] - prints[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    return 0.5 * float(np.median(np.sqrt(d2.min(1))))


def _far_enough(prints, picks, i, min_distance):
    if not picks or min_distance <= 0:
        return True
    return float(np.sqrt(((prints[picks] - prints[i]) ** 2).sum(1)).min()) >= min_distance


def greedy_diverse(order, prints, batch_size, min_distance):
    """Take candidates in ``order``, skipping those within ``min_distance`` of a pick."""
    picks = []
    for i in order:
        if _far_enough(prints, picks, int(i), min_distance):
            picks.append(int(i))
            if len(picks) == batch_size:
                break
    return picks


def _next_pick(score, picks, prints, min_distance):
    """Best-scoring candidate not yet picked and not a near-duplicate of a pick, or None."""
    score = np.array(score, dtype=np.float64)
    score[picks] = -np.inf
    for i in np.argsort(-score, kind="stable"):
        if np.isfinite(score[i]) and _far_enough(prints, picks, int(i), min_distance):
            return int(i)
    return None


class Strategy:
    """Base class: rank by score, diverse greedy batch."""

    name = "base"
    score_units = ""
    #: Whether a score threshold is meaningful (on-the-fly MD triggers on it).
    thresholded = True

    def __init__(self, random_state=None):
        self.random_state = random_state

    def prepare(self, model, labelled):
        """Remember the refitted ``model`` and the labelled structures (list of Atoms with calc results)."""
        self.model_ = model
        self.labelled_ = labelled
        if not hasattr(self, "rng_"):
            self.rng_ = np.random.default_rng(self.random_state)
        return self

    def score(self, candidates):
        raise NotImplementedError

    def select(self, candidates, scores, batch_size, min_distance="auto"):
        """Indices of the batch: ``batch_size`` of them, fewer if near-duplicates run out.

        A batch smaller than ``batch_size`` comes with a
        :class:`~kernelpot.exceptions.ReducedRequestWarning` saying why.
        Strategies implement :meth:`_select`.
        """
        picks = self._select(candidates, scores, batch_size, min_distance)
        if len(picks) < batch_size:
            why = (f"only {len(candidates)} candidates" if len(candidates) < batch_size else
                   f"the other {len(candidates) - len(picks)} candidates are near-duplicates of a pick (structure "
                   "fingerprints closer than min_distance) or add nothing")
            warn_reduced("batch_size", batch_size, len(picks), why, where=f"{self.name} strategy")
        return picks

    def _select(self, candidates, scores, batch_size, min_distance):
        """Greedy diverse batch in order of decreasing score."""
        prints = fingerprints(self.model_, candidates)
        if isinstance(min_distance, str):
            min_distance = auto_min_distance(prints)
        order = np.argsort(-np.asarray(scores), kind="stable")
        return greedy_diverse(order, prints, batch_size, min_distance)


class PredictiveVariance(Strategy):
    """The model's own predictive standard deviation, optionally calibrated on the loop's own labels.

    Parameters
    ----------
    quantity : {"auto", "forces", "energy"}, default="auto"
        ``"forces"``: largest norm over the atoms of ``"forces_std"`` (eV/Å);
        ``"energy"``: ``"energy_std"`` per atom (eV/atom, cheaper);
        ``"auto"``: forces when the model's ``predict(..., return_std=True)``
        provides ``"forces_std"``, else energy. ``score_units`` tells which.
    calibrate : bool, default=False
        Forces only. Calibrate σ online, at no oracle cost: every scored
        candidate keeps the model's force prediction and σ in its
        ``arrays["predicted_forces"]``/``arrays["predicted_forces_std"]``
        (so they travel with a labelled structure into the checkpoint), and
        after each refit the labelled structures that carry them are a
        held-out set: their errors before they joined the fit against the σ
        then predicted. ``σ -> sqrt(s² σ² + f²)`` per component is fitted on
        them by maximum likelihood
        (:func:`kernelpot.uncertainty.calibration.fit_std_scale_floor`), so
        the scores (and thresholds on them) are calibrated eV/Å. Until a
        structure scored this way has been labelled, the raw σ is used.
    random_state : int or None

    Attributes
    ----------
    std_scale_, std_floor_ : float
        ``s`` and ``f`` (eV/Å) of the online calibration (1 and 0 before it).
    n_calibration_ : int
        Labelled structures the calibration was fitted on.
    """

    name = "variance"
    _QUANTITIES = ("auto", "forces", "energy")

    def __init__(self, quantity="auto", calibrate=False, random_state=None):
        super().__init__(random_state)
        self.quantity = quantity
        self.calibrate = calibrate

    def prepare(self, model, labelled):
        super().prepare(model, labelled)
        self.std_scale_, self.std_floor_, self.n_calibration_ = 1.0, 0.0, 0
        if self.calibrate:
            self._fit_calibration(labelled)
        return self

    def _fit_calibration(self, labelled):
        from ..uncertainty.calibration import fit_std_scale_floor

        errors, stds = [], []
        for atoms in labelled:
            if "predicted_forces_std" not in atoms.arrays or atoms.calc is None:
                continue
            errors.append(atoms.arrays["predicted_forces"] - np.asarray(atoms.calc.results["forces"]))
            stds.append(atoms.arrays["predicted_forces_std"])
        if not errors:
            return
        errors, stds = np.concatenate(errors).ravel(), np.concatenate(stds).ravel()
        if not np.any(errors != 0):
            return
        self.std_scale_, self.std_floor_ = fit_std_scale_floor(errors, stds)
        self.n_calibration_ = len(stds) // 3

    def score(self, candidates):
        if self.quantity not in self._QUANTITIES:
            raise ValueError(f"`quantity` must be one of {list(self._QUANTITIES)}; got {self.quantity!r}")
        use_forces = self.quantity == "forces"
        if self.quantity == "auto":
            probe = self.model_.predict(candidates[:1], properties=("forces",), return_std=True)
            use_forces = "forces_std" in probe
        if self.calibrate and not use_forces:
            raise ValueError("`calibrate=True` calibrates force σ; it needs quantity 'forces' (or 'auto' with a "
                             "model that predicts forces_std)")
        if use_forces:
            out = self.model_.predict(candidates, properties=("forces",), return_std=True)
            if "forces_std" not in out:
                raise ValueError("quantity='forces' needs a model whose predict gives 'forces_std'")
            offsets = np.cumsum([0] + [len(a) for a in candidates])
            std = out["forces_std"]
            if self.calibrate:
                for k, atoms in enumerate(candidates):  # the held-out record of this prediction
                    atoms.arrays["predicted_forces"] = out["forces"][offsets[k]:offsets[k + 1]].copy()
                    atoms.arrays["predicted_forces_std"] = std[offsets[k]:offsets[k + 1]].copy()
                self.score_units = "eV/Å (max over atoms of calibrated |forces_std|)"
                norms = np.sqrt(self.std_scale_**2 * (std**2).sum(1) + 3.0 * self.std_floor_**2)
            else:
                self.score_units = "eV/Å (max over atoms of |forces_std|)"
                norms = np.linalg.norm(std, axis=1)
            return np.maximum.reduceat(norms, offsets[:-1])
        out = self.model_.predict(candidates, return_std=True)
        self.score_units = "eV/atom (energy_std / n_atoms)"
        return out["energy_std"] / np.array([len(a) for a in candidates])


class VarianceReduction(Strategy):
    """Expected reduction of the predictive variance summed over the candidates.

    Predictive variance alone prefers outliers; this criterion (integrated
    variance / "active learning Cohn", Cohn et al., JAIR 4, 129 (1996),
    doi:10.1613/jair.295) prefers the candidate whose label would most
    reduce the variance of the energies of *all* candidates, so dense
    regions of the pool count. With ``H = R^T R`` (the model's
    ``posterior_factor_``) and ``a_i`` the whitened energy design row of
    candidate ``i``, ``Q = A H^-1 A^T`` and the score of ``c`` is
    ``sum_p sigma_p^2 Q_pc^2 / (1 + Q_cc)`` (eV², by Woodbury). The batch
    is greedy: each pick updates ``Q`` by a rank-one downdate.

    Parameters
    ----------
    quantity : {"energy", "forces"}, default="energy"
        ``"energy"``: a candidate's label is its energy, the integrated
        quantity the candidates' energy variance (cheap: one row each).
        ``"forces"``: a label is the energy *and* all force components
        (the ``1 + 3 n_atoms`` whitened rows of :class:`~kernelpot.models.gap.design.DesignBuilder`), the
        integrated quantity the summed force variance of the candidates'
        force components (eV²/Å²). Each pick is then a block Woodbury update
        ``K -= K V_c (I + V_c^T K V_c)^-1 V_c^T K`` in the whitened space
        (labels are not needed: GP variances do not depend on them). Costs
        ``O(n_rows m^2)`` per batch for ``n_rows`` candidate rows and ``m``
        sparse points: bound the candidates (``PoolExplorer(max_candidates=)``).
        On rMD17 ethanol (3000 sparse points, 200 candidates per batch,
        2 seeds) it reaches 23.3 meV/Å with 260 labels, random 23.7: ~5-10 %
        fewer labels for the same force MAE, far from a factor 2. With 5000
        sparse points (all frames candidates, all force rows integrated) it is
        no better than random (22.3 vs 21.9 at 260 labels): on a pool of
        i.i.d. frames of the test distribution there is little to gain.
    max_rows : int, default=2000
        ``quantity="forces"``: at most this many force components (a random
        subset of all the candidates') stand for the integrated variance.
    random_state : int or None
    """

    name = "variance_reduction"
    score_units = "eV² (expected reduction of the summed energy variance)"
    _QUANTITIES = ("energy", "forces")

    def __init__(self, quantity="energy", max_rows=2000, random_state=None):
        super().__init__(random_state)
        self.quantity = quantity
        self.max_rows = max_rows

    def _check(self):
        if self.quantity not in self._QUANTITIES:
            raise ValueError(f"`quantity` must be one of {list(self._QUANTITIES)}; got {self.quantity!r}")
        if isinstance(self.max_rows, bool) or not isinstance(self.max_rows, (int, np.integer)) or self.max_rows < 1:
            raise ValueError(f"`max_rows` must be an integer >= 1; got {self.max_rows!r}")

    def _q_matrix(self, candidates):
        from ..models.gap.design import DesignBuilder

        # (n, M) energy covariances (eV²) over their noise sigmas (eV, config type "default")
        A, sigma = DesignBuilder.from_model(self.model_).unlabelled_rows(candidates, forces=False)
        V = _linalg().solve_triangular(self.model_.posterior_factor_, A.T, trans="T")  # R^-T a^T
        return V.T @ V, sigma

    @staticmethod
    def _gain(Q, sigma):
        return (sigma[:, None] ** 2 * Q**2).sum(0) / (1.0 + np.diag(Q))

    def _force_system(self, candidates):
        """Whitened ``V = R^-T A^T`` of all candidate rows, each candidate's row block, the integration rows."""
        from ..models.gap.design import DesignBuilder

        model, n = self.model_, len(candidates)
        counts = np.array([len(a) for a in candidates])
        A, sigma = DesignBuilder.from_model(model).unlabelled_rows(candidates)   # rows: n energies, then forces
        V = _linalg().solve_triangular(model.posterior_factor_, A.T, trans="T")
        starts = n + 3 * np.concatenate([[0], np.cumsum(counts)[:-1]])
        blocks = [np.concatenate([[i], starts[i] + np.arange(3 * counts[i])]) for i in range(n)]
        rows = np.arange(n, A.shape[0])
        if len(rows) > self.max_rows:
            rows = np.sort(self.rng_.choice(rows, self.max_rows, replace=False))
        return V, blocks, V[:, rows], float(sigma[n])   # the force sigma (eV/Å) of every candidate

    @staticmethod
    def _force_gains(Q, C, blocks):
        """Summed variance reduction of the integration rows (whitened units) if each candidate were labelled."""
        return np.array([np.trace(np.linalg.solve(np.eye(len(r)) + Q[i], C[:, r].T @ C[:, r]))
                         for i, r in enumerate(blocks)])

    def _select_forces(self, candidates, batch_size, prints, min_distance):
        V, blocks, Vi, _ = self._force_system(candidates)
        Q = [V[:, r].T @ V[:, r] for r in blocks]
        C = Vi.T @ V                                   # integration rows x candidate rows, current metric
        P = np.zeros((V.shape[0], 0))                  # K = I - P P^T: the virtual labels so far
        picks = []
        while len(picks) < batch_size:
            nxt = _next_pick(self._force_gains(Q, C, blocks), picks, prints, min_distance)
            if nxt is None:
                break
            picks.append(nxt)
            v = V[:, blocks[nxt]]
            w = v - P @ (P.T @ v)
            chol = np.linalg.cholesky(np.eye(v.shape[1]) + Q[nxt])
            Pn = _linalg().solve_triangular(chol, w.T, lower=True).T
            P = np.hstack([P, Pn])
            GV = V.T @ Pn
            Q = [q - GV[r] @ GV[r].T for q, r in zip(Q, blocks)]
            C = C - (Vi.T @ Pn) @ GV.T
        return picks

    def score(self, candidates):
        self._check()
        if self.quantity == "forces":
            self.score_units = "eV²/Å² (expected reduction of the summed force variance)"
            V, blocks, Vi, sigma_f = self._force_system(candidates)
            return sigma_f**2 * self._force_gains([V[:, r].T @ V[:, r] for r in blocks], Vi.T @ V, blocks)
        Q, sigma = self._q_matrix(candidates)
        return self._gain(Q, sigma)

    def _select(self, candidates, scores, batch_size, min_distance):
        self._check()
        prints = fingerprints(self.model_, candidates)
        if isinstance(min_distance, str):
            min_distance = auto_min_distance(prints)
        if self.quantity == "forces":
            return self._select_forces(candidates, batch_size, prints, min_distance)
        Q, sigma = self._q_matrix(candidates)
        picks = []
        while len(picks) < batch_size:
            nxt = _next_pick(self._gain(Q, sigma), picks, prints, min_distance)
            if nxt is None:
                break
            picks.append(nxt)
            # Woodbury: the pick's label is now (virtually) known.
            q = Q[:, nxt].copy()
            Q = Q - np.outer(q, q) / (1.0 + q[nxt])
        return picks


def _labels(atoms_list):
    energies = [a.calc.results["energy"] for a in atoms_list]
    forces = [a.calc.results["forces"] for a in atoms_list]
    return energies, forces


class CommitteeDisagreement(Strategy):
    """Query by committee: spread of the forces of sparse GPRs fitted on subsamples.

    Members share the model's sparse points and ``e0_``; each sees every
    labelled structure with probability ``subsample``. Members are rebuilt
    when the model's sparse set changes and otherwise updated
    incrementally with the newly labelled structures (online bagging, Oza
    & Russell, AISTATS 2001), so a long loop does not refit them. Score:
    largest over the atoms of the norm of the per-component standard
    deviation of the members' forces (eV/Å).

    Parameters
    ----------
    n_members : int, default=4
    subsample : float, default=0.8
        Probability that a member sees a labelled structure.
    random_state : int or None
    """

    name = "committee"
    score_units = "eV/Å (max over atoms of committee force spread)"

    def __init__(self, n_members=4, subsample=0.8, random_state=None):
        super().__init__(random_state)
        self.n_members = n_members
        self.subsample = subsample

    def _same_sparse_set(self, model):
        old = getattr(self, "sparse_sets_", None)
        new = [t.sparse_X for t in model.terms_]
        return old is not None and len(old) == len(new) and all(
            a.shape == b.shape and np.array_equal(a, b) for a, b in zip(old, new))

    def prepare(self, model, labelled):
        from ..models.gap import IncrementalSparseGPR, frozen_sparse_terms

        super().prepare(model, labelled)
        if isinstance(self.n_members, bool) or int(self.n_members) < 2:
            raise ValueError(f"`n_members` must be an integer >= 2; got {self.n_members!r}")
        if not 0 < float(self.subsample) <= 1:
            raise ValueError(f"`subsample` must be in (0, 1]; got {self.subsample!r}")
        rebuild = not self._same_sparse_set(model)
        start = 0 if rebuild else self.n_seen_
        if rebuild:
            params = model.get_params(deep=False)
            params.update(e0=dict(model.e0_), random_state=0, verbose=False)
            self.members_ = [None] * int(self.n_members)
            self.sparse_sets_ = [t.sparse_X.copy() for t in model.terms_]
        new = labelled[start:]
        energies, forces = _labels(new)
        for k in range(int(self.n_members)):
            chosen = np.nonzero(self.rng_.random(len(new)) < float(self.subsample))[0]
            if self.members_[k] is None and len(chosen) == 0 and len(new):
                chosen = np.array([int(self.rng_.integers(len(new)))])  # a member needs data
            if len(chosen) == 0:
                continue
            data = ([new[i] for i in chosen], [energies[i] for i in chosen], [forces[i] for i in chosen])
            if self.members_[k] is None:
                params["terms"] = frozen_sparse_terms(model)
                self.members_[k] = IncrementalSparseGPR(**params).fit(data[0], energies=data[1], forces=data[2])
            else:
                self.members_[k].partial_fit(data[0], energies=data[1], forces=data[2])
        self.n_seen_ = len(labelled)
        return self

    def score(self, candidates):
        forces = np.stack([m.predict(candidates, properties=("forces",))["forces"] for m in self.members_])
        spread = np.linalg.norm(forces.std(axis=0), axis=1)
        offsets = np.cumsum([0] + [len(a) for a in candidates])
        return np.maximum.reduceat(spread, offsets[:-1])


class DescriptorDistance(Strategy):
    """Farthest-point sampling in the kernel metric of the environment term.

    Score of a structure: the largest, over its environments, of the kernel
    distance ``d(x, y) = sqrt(k(x,x) + k(y,y) - 2 k(x,y))`` to the nearest
    labelled environment (dimensionless for a normalised dot product).
    The batch is built greedily: each pick's environments join the
    reference set before the next pick (FPS).
    """

    name = "distance"
    score_units = "kernel distance"

    def prepare(self, model, labelled):
        super().prepare(model, labelled)
        self.term_ = model.terms_[_env_term(model)]
        self.reference_ = np.asarray(self.term_.descriptor.transform(labelled))
        return self

    def _min_distance(self, X, reference):
        kernel = self.term_.kernel
        kxx = kernel.diag(X)[:, None]
        out = np.full(len(X), np.inf)
        for start in range(0, len(reference), 4096):
            Y = reference[start : start + 4096]
            d2 = kxx + kernel.diag(Y)[None, :] - 2.0 * kernel(X, Y)
            out = np.minimum(out, np.sqrt(np.maximum(d2, 0.0)).min(1))
        return out

    def score(self, candidates):
        X = self.term_.descriptor.transform(candidates)
        self._candidate_X = (candidates, X)
        env = self._min_distance(np.asarray(X), self.reference_)
        return np.maximum.reduceat(env, X.offsets[:-1])

    def _select(self, candidates, scores, batch_size, min_distance):
        cached = getattr(self, "_candidate_X", None)
        X = cached[1] if cached is not None and cached[0] is candidates else self.term_.descriptor.transform(candidates)
        Xa, offsets = np.asarray(X), X.offsets
        env = self._min_distance(Xa, self.reference_)
        prints = fingerprints(self.model_, candidates)
        if isinstance(min_distance, str):
            min_distance = auto_min_distance(prints)
        picks = []
        while len(picks) < batch_size:
            nxt = _next_pick(np.maximum.reduceat(env, offsets[:-1]), picks, prints, min_distance)
            if nxt is None:
                break
            picks.append(nxt)
            rows = Xa[offsets[nxt] : offsets[nxt + 1]]
            env = np.minimum(env, self._min_distance(Xa, rows))
        return picks


class DOptimality(Strategy):
    """D-optimal design by maxvol on the sparse-kernel (Nyström) features.

    An environment ``x`` has features ``phi(x) = L^-1 k_M(x)`` (``K_MM =
    L L^T`` of the environment term), so ``phi(x)·phi(y)`` approximates
    ``k(x, y)``. The active set ``A`` (``m x m``) is the maxvol submatrix
    (Goreinov et al., 2010, doi:10.1007/978-3-7643-8940-7_12) of the features
    of the sparse points and the labelled environments; the grade of a
    candidate environment is ``max_j |(phi(x) A^-1)_j|`` and > 1 means the
    environment would enlarge the volume (extrapolation), as in
    Podryabinkin & Shapeev, Comput. Mater. Sci. 140, 171 (2017),
    doi:10.1016/j.commatsci.2017.08.031. A structure's grade is its largest.
    Each pick is swapped into the active set before the next (greedy batch).
    """

    name = "doptimal"
    score_units = "maxvol extrapolation grade"

    def __init__(self, tolerance=1.01, max_swaps=1000, random_state=None):
        super().__init__(random_state)
        self.tolerance = tolerance
        self.max_swaps = max_swaps

    def _features(self, atoms_list):
        X = self.term_.descriptor.transform(atoms_list)
        knm = self.term_.knm(np.asarray(X))[0]
        return _linalg().solve_triangular(self.L_, knm.T, lower=True).T, X.offsets

    def prepare(self, model, labelled):
        super().prepare(model, labelled)
        index = _env_term(model)
        self.term_ = model.terms_[index]
        kmm = self.term_.kmm()
        jitter = float(np.broadcast_to(model.jitter, (len(model.terms_),))[index])
        kmm[np.diag_indices_from(kmm)] += max(jitter, 1e-10) * self.term_.delta**2
        self.L_ = cholesky(kmm)
        phi_lab, _ = self._features(labelled)
        # The sparse points' own features are the rows of L: a full-rank start.
        self.A_ = _maxvol(np.vstack([self.L_, phi_lab]), np.arange(len(self.L_)), self.tolerance,
                          int(self.max_swaps))
        return self

    def _grades(self, phi):
        return np.abs(_linalg().solve(self.A_.T, phi.T).T)

    def score(self, candidates):
        phi, offsets = self._features(candidates)
        return np.maximum.reduceat(self._grades(phi).max(1), offsets[:-1])

    def _select(self, candidates, scores, batch_size, min_distance):
        phi, offsets = self._features(candidates)
        prints = fingerprints(self.model_, candidates)
        if isinstance(min_distance, str):
            min_distance = auto_min_distance(prints)
        saved, picks = self.A_, []
        try:
            while len(picks) < batch_size:
                grade = np.maximum.reduceat(self._grades(phi).max(1), offsets[:-1])
                nxt = _next_pick(grade, picks, prints, min_distance)
                if nxt is None:
                    break
                picks.append(nxt)
                # The pick's environments join the active set before the next pick.
                rows = phi[offsets[nxt] : offsets[nxt + 1]]
                self.A_ = _maxvol(np.vstack([self.A_, rows]), np.arange(len(self.A_)), self.tolerance,
                                  int(self.max_swaps))
        finally:
            self.A_ = saved
        return picks


def _maxvol(rows, start, tolerance, max_swaps):
    """Square submatrix of ``rows`` (n, m) of locally maximal |det|, from the rows ``start``."""
    index = np.array(start, dtype=np.int64)
    A = rows[index]
    B = _linalg().solve(A.T, rows.T).T            # rows = B A
    for _ in range(max_swaps):
        i, j = np.unravel_index(np.argmax(np.abs(B)), B.shape)
        pivot = B[i, j]
        if abs(pivot) <= tolerance:
            break
        # Replacing active row j by row i multiplies |det A| by |pivot|.
        update = B[i].copy()
        update[j] -= 1.0
        B -= np.outer(B[:, j], update) / pivot
        index[j] = i
    return rows[index]


class RandomSelection(Strategy):
    """Uniformly random picks (the control). Scores are uniform random numbers."""

    name = "random"
    score_units = "random"
    thresholded = False

    def score(self, candidates):
        return self.rng_.random(len(candidates))


STRATEGIES = {cls.name: cls for cls in (PredictiveVariance, VarianceReduction, CommitteeDisagreement,
                                        DescriptorDistance, DOptimality, RandomSelection)}


def make_strategy(strategy, random_state=None):
    """A strategy object from a name in :data:`STRATEGIES` or a :class:`Strategy` instance (copied)."""
    if isinstance(strategy, Strategy):
        return copy.deepcopy(strategy)
    if isinstance(strategy, str) and strategy in STRATEGIES:
        return STRATEGIES[strategy](random_state=random_state)
    raise ValueError(f"`strategy` must be one of {sorted(STRATEGIES)} or a Strategy instance; got {strategy!r}")
