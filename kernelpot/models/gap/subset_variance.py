"""An approximate per-atom force σ at a few mean-force costs: the posterior of a subset of the sparse points.

The exact DTC force variance (:mod:`kernelpot.models.gap.variance`)

.. math:: \\sigma^2_{i\\alpha} = k_{**} - k_*^\\top K_{MM}^{-1} k_* + k_*^\\top \\Sigma\\, k_*,
          \\qquad \\Sigma = (K_{MM} + K_{MN}\\Lambda^{-1}K_{NM})^{-1} = (R^\\top R)^{-1},

needs every force component's covariance ``k_*`` with all M sparse points (a product over neighbour pairs,
features and sparse points), the mixed second derivative of the prior for ``k_**`` and two ``M × M`` solves
against the ``3 n_atoms`` components: 30–70 mean-force calls on the benchmark models. This module gives

.. math:: \\hat\\sigma^2_{i\\alpha} = \\kappa\\; k_{S,i\\alpha}^\\top \\big[(R^\\top R)_{SS}\\big]^{-1} k_{S,i\\alpha}

for a subset ``S`` of ``n_points`` sparse points (per term in proportion to its size, each term's chosen by
pivoted Cholesky of its ``K_MM``: the most mutually distinct first). ``(RᵀR)_SS = K_SS + K_SN Λ⁻¹ K_NS`` is
exactly the posterior precision of the model fitted to the same data with the points ``S`` only, so the
quadratic form is that smaller model's subset-of-regressors (posterior) force variance — no truncation of a
factor, no sampling noise. One factor ``κ``, calibrated against the exact ``forces_std`` on chosen structures
(:meth:`SubsetForceVariance.calibrate`: the median over atoms of the exact per-atom variance over this
one), stands in for what the subset leaves out: the ``k** − Q**`` part (about 40 % of σ² on the NaCl–water
benchmark box, 35 % on the Si cell) and the rest of the sparse points. **It is an approximation with a
measured error, not the DTC σ**: ``benchmarks/predict.py --cases subsetsigma`` prints its cost and its error
against the exact σ (median and 95th-percentile relative error per atom, Spearman rank correlation, and
which atoms a threshold at the exact σ's 90th percentile flags).

Cost: the columns ``k_S`` are the position derivatives of ``n_points`` energies, one per unit weight on a
point of ``S``; each is one more adjoint in the mean's own reverse-mode pass (SOAP's ``vjp.batched``: a
centre's density expansion is computed once for the mean and all of them, and their feature adjoints
``α ẑ_m + β x̂_i`` are never formed as an array). No descriptor gradient rows, no solves beyond one
``|S| × |S|`` triangle per call. An adjoint costs about a tenth of a mean-force call (Si) or less
(NaCl–water, where each point's adjoint touches only its own species' centres), so ``n_points`` sets the
trade-off between cost and error.

Measured (``benchmarks/predict.py --cases subsetsigma`` and two more runs, 1 thread, CPU time against the
forces alone, load 5–6.5; κ calibrated on another structure; per atom, median / 95th-percentile relative error of σ and
Spearman rank correlation with the exact σ):

* NaCl–water box (194 atoms, 4,400 sparse points; exact σ 64–72×): 40 points 1.8–1.9×, 12 % / 32 %, 0.73;
  72 points 2.5–2.6×, 11 % / 29 %, 0.81; 132 points 3.8–4.1×, 8 % / 22 %, 0.90.
* Si cell (216 atoms, 1,020 sparse points; exact σ 30–31×): 9 points 1.8–1.9×, 16 % / 42 %, 0.56; 32 points
  4.2×, 5 % / 17 %, 0.83; 64 points 7.3×, 3 % / 11 %, 0.92.

κ, fitted to the median, compresses the tail: of the atoms above the exact σ's 90th percentile the
estimate puts only 20–35 % above that same value on NaCl–water (precision 0.6–1.0); rank the estimate
(its top 10 %) rather than thresholding it at an exact-σ value.

**Per frame, κ alone misses the outlier frames** — what an MD stop/flag threshold on the largest σ of a
step is for. Measured on NaCl–water over 21 frames (15 gen3 frames and 6 with one water or ion moved: O–H
at 0.82×, a water rattled by 0.15 / 0.3 Å or pushed 0.6 Å towards another, Na–Cl at 2.4 Å, all atoms
rattled by 0.08 Å; κ from a 22nd gen3 frame) and on Si over 30 (the mlearn test set, two rattled cells, one
atom moved 0.67 Å, a vacancy, 5 % compression, rattled by 0.15 Å; κ from the benchmark cell): Spearman of
the per-frame largest σ with the exact one 0.62–0.69 (NaCl, 12–40 points) and 0.82–0.92 (Si, 3–9 points);
the frame with the largest exact σ (NaCl: a gen3 frame at 0.344 eV/Å, the next 0.205; Si: the 0.15 Å
rattle at 0.434, the next 0.081) ranks 4th–11th (NaCl) and 2nd–11th (Si) among the estimated maxima; the
same largest-σ atom in 33–43 % / 10 % of the frames. The environment that makes the outlier is far from
every sparse point, and ``n_points`` of them do not see it: at the outlier's largest-σ atom ``k** − Q**``
is only 20 % of the exact σ² — the missing part is the SoR part of the points outside ``S``.

``residual=True`` adds what does see it, each atom's local-energy Nyström residual
``r_a = k_aa − k_aᵀ K_MM⁻¹ k_a`` (exact, from the kernel values the mean forms; about half a mean-force
call: one triangular product per species as in :mod:`~kernelpot.models.gap.local_variance`), with a second
factor: ``σ̂²_aα = κ |C⁻¹ k_S|² + λ r_a / 3``, ``κ, λ ≥ 0`` by non-negative least squares of the per-atom
relative error on the calibration structure. Same frames and calibration (per-frame Spearman of the largest
σ, rank of the outlier frame, same largest-σ atom, per-atom median / 95th-percentile relative error and
Spearman; cost from ``benchmarks/predict.py --cases subsetsigma`` and a separate interleaved run, 1 thread,
load 6.5–8; "points" is ``n_points`` as passed, the subset rounds it per term):

* NaCl–water, 16 points + r: 1.92–1.95× the forces (12 + r 1.89×): 0.91, 1st, 67 %, 9 % / 26 %, 0.89 — against
  16 points alone (1.46×): 0.66, 7th, 38 %, 18 % / 43 %, 0.70, and 40 points alone (1.94×): 0.69, 4th, 33 %,
  17 % / 38 %, 0.82. 40 + r (2.4×): 0.93, 1st, 57 %, 8 % / 22 %, 0.91.
* Si, 3 points + r: 1.97–2.14× in two runs (at the 2× budget: the residual's product over 1,020 points
  costs 0.6–0.7× of this cheap model's forces): 0.98, 1st, 33 %, 15 % / 124 %, 0.59 — against 9 points
  alone (1.9–2.0×): 0.92, 2nd, 10 %, 20 % / 53 %, 0.57. 9 + r (2.7×): 0.97, 1st, 30 %, 13 % / 107 %, 0.67.
  The residual over-weights some atoms of the small mlearn cells (vacancies, surfaces): the per-atom 95th
  percentile doubles while the frame order and the outlier improve.

A local-energy σ (``K_MM⁻¹ − Σ`` instead of ``K_MM⁻¹``) in place of ``r_a`` does not work on NaCl–water (its
fitted ``λ`` is ~0: the frame order stays at 0.7), nor do a Nyström residual against a pivoted subset of up
to 128 points, the nearest sparse point's kernel value, per-species κ or sums over the neighbours
(measured the same way, on the same frames).

``residual_points=q`` makes the residual cheap where its product over all points is what costs (one species,
``J`` = 1,000 points against 252 features: the Si model, where ``n J²`` is 0.5–0.7 of a force call): each atom
is projected onto its own ``q`` most similar points of every large term only (a ``q × q`` Cholesky per atom,
:class:`~kernelpot.models.gap.local_variance.LocalEnergyVariance` ``nearest=q``). That residual is not the
exact one — it is an upper bound, 40–100× larger on the Si cell for ``q`` = 8–16, and exactly ``r_a`` once
``q`` covers every term — but it still grows for environments far from every sparse point, and ``λ`` is
fitted to it. Si, same 29 frames and calibration (``benchmarks/predict.py --cases subsetsigma``, 1 thread,
medians of 5 interleaved rounds, load 8): 7 points + r(8 nearest) 1.90× the forces (``sigma_points=7,
sigma_residual_points=8``): per frame 0.96, outlier frame 1st, 21 %; per atom 14 % / 51 %, 0.60; 8 points +
r(8) 2.0×: 0.98, 1st, 12 % / 45 %. The outlier's largest σ is underestimated 5× (0.21 of the exact, against
0.7 with the exact residual) but still ranks first. On NaCl–water the nearest points do not work (offline, the
same 21 frames: 16 points + r(8–64 nearest) order the frames with Spearman 0.75–0.81 and rank the outlier 2nd–
5th, against 0.91 / 1st with the exact residual, which there costs less than half a force call): keep
``residual_points=None`` there.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.optimize import nnls

from .terms import row_weights

__all__ = ["SubsetForceVariance", "CALIBRATION_FLOOR"]

#: eV/Å: atoms whose exact force σ is below this do not calibrate ``κ``. A perfect crystal's σ is zero by
#: symmetry and its computed value round-off (~1e-7 eV/Å on the test Si model), whose ratios are noise.
CALIBRATION_FLOOR = 1e-5


def _pivoted_points(factor, count):
    """Indices of ``count`` points chosen by greedy pivoted Cholesky of ``K = factor factorᵀ`` (largest residual
    variance first, so every new point is the one the chosen ones explain least); ``K`` is never formed."""
    residual = (factor**2).sum(1)
    basis = np.zeros((len(factor), count))
    chosen = []
    for j in range(count):
        pivot = int(np.argmax(residual))
        chosen.append(pivot)
        column = (factor @ factor[pivot] - basis[:, :j] @ basis[pivot, :j]) / np.sqrt(residual[pivot])
        basis[:, j] = column
        residual -= column**2
        residual[chosen] = -np.inf
    return np.array(chosen, dtype=np.int64)


class SubsetForceVariance:
    """Approximate force variances of a fitted GAP from the posterior of ``n_points`` of its sparse points.

    See the module docstring for what it computes and why. Pass it to
    :class:`~kernelpot.models.gap.predictor.GAPPredictor` (``force_variance=``), which then returns
    ``"forces_std"`` from the same call as the forces, or use ``GAPCalculator(uncertainty="forces_subset")``.

    Parameters
    ----------
    model : SparseGPR
        Fitted, with a posterior (``posterior_factor_``).
    n_points : int, default=32
        Sparse points in the subset (all terms together; each term gets at least one). The cost of a call
        grows by about one reverse-mode adjoint per point; ``n_points`` ≥ the model's total gives the SoR
        part of the exact variance.
    residual : bool, default=False
        Also add a per-atom estimate of the part the subset cannot see, ``k** − Q**`` (which grows for
        environments far from every sparse point: the outliers an MD stop/flag threshold is for): the Nyström
        residual ``r_a = k_aa − k_aᵀ K_MM⁻¹ k_a`` of atom ``a``'s local energy
        (:class:`~kernelpot.models.gap.local_variance.LocalEnergyVariance` with ``posterior=False``, from the
        kernel values the mean already forms, about half a mean-force call), so that
        ``σ̂²_aα = κ |C⁻¹ k_S|² + λ r_a / 3`` with ``κ, λ ≥ 0`` fitted by :meth:`calibrate`.
    residual_points : int or None, default=None
        With ``residual=True``: None computes ``r_a`` against all sparse points (one ``n_s J_s²`` triangular
        product per species); an integer ``q`` against each atom's own ``q`` most similar points of every term
        of more than ``q`` points instead (:class:`LocalEnergyVariance` ``nearest=q``: a ``q``-point Cholesky
        per atom and term, no product over all points; an upper bound on ``r_a``, equal to it when ``q`` ≥
        every term's size). For models where that product costs much of the forces (one species, ``J`` of
        a thousand points or more against a few hundred features: the Si benchmark model, where it is 0.5–0.7
        of a force call); see the module docstring for what it does to the error.

    Attributes
    ----------
    points : list of ndarray
        Per term, the indices (into that term's sparse points) of the subset.
    columns : ndarray of shape (n_subset,)
        The same as indices into all sparse points (the model's ``K_MM`` order).
    whitening : ndarray of shape (n_subset, n_subset)
        Lower Cholesky factor ``C`` of ``(RᵀR)_SS`` (eV⁻²): the variance is ``κ |C⁻¹ k_S|²``.
    kappa_ : float or None
        Calibration factor, None until :meth:`calibrate` (the variance is then the subset's posterior part
        alone, ``κ = 1``, an underestimate); after it the subset's posterior variance times ``kappa_`` is the
        estimate of the model's ``forces_std²``.
    residual_weight_ : float or None
        With ``residual=True``: ``λ`` (Å⁻²: eV² of local-energy residual to (eV/Å)² of force variance), None
        until :meth:`calibrate` (the residual is then left out).
    """

    def __init__(self, model, n_points=32, residual=False, residual_points=None):
        if getattr(model, "posterior_factor_", None) is None:
            raise ValueError("the model stores no posterior (posterior_factor_); refit it with kernelpot")
        if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 1:
            raise ValueError(f"`n_points` must be an integer >= 1; got {n_points!r}")
        sizes = np.array([t.n_sparse for t in model.terms_])
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        share = max(len(sizes), min(int(n_points), int(offsets[-1])))
        counts = np.minimum(sizes, np.maximum(1, np.round(sizes * share / offsets[-1]).astype(int)))
        L = model.kmm_cholesky_
        self.points = [_pivoted_points(L[a:b, a:b], n) for a, b, n in zip(offsets[:-1], offsets[1:], counts)]
        self.columns = np.concatenate([a + p for a, p in zip(offsets[:-1], self.points)])
        # (RᵀR)_SS = TᵀT from a QR of R's columns S: forming RᵀR would square its condition number
        T = sla.qr(model.posterior_factor_[:, self.columns], mode="r")[0][: len(self.columns)]
        self.whitening = (T * np.sign(np.diag(T))[:, None]).T
        self.kappa_ = None
        self.residual = bool(residual)
        if residual_points is not None and (isinstance(residual_points, bool) or
                                            not isinstance(residual_points, (int, np.integer)) or residual_points < 1):
            raise ValueError(f"`residual_points` must be an integer >= 1 or None; got {residual_points!r}")
        self.residual_points = None if residual_points is None else int(residual_points)
        self.residual_weight_ = None
        self._record = None   # calibrate(): the uncalibrated parts of each variance() call
        self.model = model
        self.n_points = n_points

    @property
    def n_subset(self):
        """int: points in the subset (``n_points`` rounded per term)."""
        return len(self.columns)

    def term_slices(self):
        """Per term, the slice of the subset (rows of :meth:`variance`'s input) holding its points."""
        bounds = np.concatenate([[0], np.cumsum([len(p) for p in self.points])])
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def unit_factors(self, index, X):
        """The feature gradients of the term's rows ``X`` (n_rows, n_features) for the energy
        ``ε_m(x) = δ² w(x) w(z_m) k(x, z_m)`` of a unit weight on each of the term's subset points ``z_m``, as
        ``(points, alpha, rows, beta)`` with ``∂ε_m/∂x_i = alpha[m, i] points[m] + beta[m, i] rows[i]`` (eV per
        feature unit; :meth:`~kernelpot.kernels.GaussianCovariance.point_gradient_factors`), or None when the
        descriptor's cutoff weight has a gradient of its own (``distance_2b``: use :meth:`unit_adjoints`)."""
        term = self.model.terms_[index]
        X = np.asarray(X)
        w, dw = row_weights(term.descriptor, X)
        if dw is not None:
            return None
        points, alpha, rows, beta = term.kernel.point_gradient_factors(X, term.sparse_X[self.points[index]])
        scale = (term.delta**2 * term.sparse_weight[self.points[index]])[:, None] * w[None, :]
        return points, alpha * scale, rows, beta * scale

    def unit_adjoints(self, index, X):
        """The same gradients as :meth:`unit_factors`, as one ndarray (n_points_of_term, n_rows, n_features),
        including a cutoff weight's own gradient (``δ² w(z_m) k(x, z_m) ∇w(x)``)."""
        term = self.model.terms_[index]
        X = np.asarray(X)
        Z = term.sparse_X[self.points[index]]
        w, dw = row_weights(term.descriptor, X)
        points, alpha, rows, beta = term.kernel.point_gradient_factors(X, Z)
        adjoints = (alpha[:, :, None] * points[:, None, :] + beta[:, :, None] * rows[None, :, :]) * w[None, :, None]
        if dw is not None:
            adjoints += term.kernel(X, Z).T[:, :, None] * dw[None, :, :]
        return adjoints * (term.delta**2 * term.sparse_weight[self.points[index]])[:, None, None]

    def residual_model(self):
        """The :class:`~kernelpot.models.gap.local_variance.LocalEnergyVariance` (``posterior=False``,
        ``nearest=residual_points``) giving the local energies' Nyström residuals with ``residual=True``, else
        None."""
        if not self.residual:
            return None
        from .local_variance import LocalEnergyVariance

        return LocalEnergyVariance.for_model(self.model, posterior=False, nearest=self.residual_points)

    def variance(self, unit_dE_dr, residual=None):
        """Force variances (n_atoms, 3) in (eV/Å)², ``κ |C⁻¹ k_S|² (+ λ r_a / 3)`` per component.

        Parameters
        ----------
        unit_dE_dr : ndarray of shape (n_subset, n_atoms, 3)
            Position derivatives (eV/Å) of the unit-weight energies of the subset's points, in
            :attr:`columns` order: the columns ``k_S`` of every force component.
        residual : ndarray of shape (n_atoms,) or None
            With ``residual=True``: the atoms' local-energy Nyström residuals ``r_a`` (eV²,
            :meth:`residual_model`), required then.
        """
        k = np.asarray(unit_dE_dr).reshape(self.n_subset, -1)
        whitened = sla.solve_triangular(self.whitening, k, lower=True)
        subset = (whitened**2).sum(0).reshape(-1, 3)
        if self.residual:
            if residual is None:
                raise ValueError("SubsetForceVariance(residual=True) needs the atoms' Nyström residuals")
            residual = np.asarray(residual, dtype=np.float64)
            if self._record is not None:
                self._record.append((subset.sum(1), residual))
            if self.residual_weight_ is not None:
                return (1.0 if self.kappa_ is None else self.kappa_) * subset + \
                    self.residual_weight_ * residual[:, None] / 3.0
        elif self._record is not None:
            self._record.append((subset.sum(1), None))
        return (1.0 if self.kappa_ is None else self.kappa_) * subset

    def calibrate(self, atoms_list, exact_std=None, predictor=None):
        """Set :attr:`kappa_` from the exact ``forces_std`` of some structures; returns self.

        ``κ`` = median over atoms of ``Σ_α σ²_exact / Σ_α σ̂²`` with ``κ = 1``: the exact over the subset's
        per-atom variance, over the atoms whose exact σ exceeds :data:`CALIBRATION_FLOOR`. With
        ``residual=True``, ``κ`` and ``λ`` instead minimise the squared relative error of the per-atom variance
        ``κ s_a + λ r_a`` over those atoms, both ≥ 0 (non-negative least squares). Calibrate on
        structures like those the estimate will be used on (the first frame of an MD run, held-out frames of
        the training distribution).

        Parameters
        ----------
        atoms_list : ase.Atoms or list of ase.Atoms
        exact_std : ndarray of shape (n_atoms_total, 3) or None
            Their exact ``forces_std`` (eV/Å) if already computed; None computes it
            (``model.predict(..., return_std=True)``: tens of mean-force calls).
        predictor : GAPPredictor or None
            The predictor to evaluate the subset variance with (e.g. one keeping neighbour lists); None makes
            one.
        """
        from ...structures.packing import as_atoms_list
        from .predictor import GAPPredictor

        atoms_list = as_atoms_list(atoms_list)
        if exact_std is None:
            exact_std = self.model.predict(atoms_list, properties=("energy", "forces"), return_std=True)["forces_std"]
        if predictor is None:
            predictor = GAPPredictor(self.model, force_variance=self)
        self._record = []
        try:
            predictor.predict(atoms_list, ("energy", "forces", "forces_std"))
            raw_atom = np.concatenate([r[0] for r in self._record])
            residual = np.concatenate([r[1] for r in self._record]) if self.residual else None
        finally:
            self._record = None
        exact_atom = (np.asarray(exact_std) ** 2).sum(1)
        usable = (raw_atom > 0) & (exact_atom > CALIBRATION_FLOOR**2)
        if not usable.any():
            raise ValueError(f"no atom of the calibration structures has an exact force σ above {CALIBRATION_FLOOR} "
                             "eV/Å and a non-zero subset σ (a perfect crystal's σ is zero by symmetry); calibrate "
                             "on a moved structure")
        if not self.residual:
            self.kappa_ = float(np.median(exact_atom[usable] / raw_atom[usable]))
            return self
        parts = np.stack([raw_atom[usable], residual[usable]], axis=1) / exact_atom[usable, None]
        scales = np.maximum(parts.max(0), 1e-300)   # columns of comparable size for the solver
        weights = nnls(parts / scales, np.ones(int(usable.sum())))[0] / scales
        if weights[0] <= 0 and weights[1] <= 0:
            weights[0] = np.median(exact_atom[usable] / raw_atom[usable])
        self.kappa_, self.residual_weight_ = float(weights[0]), float(weights[1])
        return self
