"""Symmetry-adapted Gaussian process regression (SA-GPR) of tensors: dipoles, polarizabilities.

A λ component ``t(A)`` (2λ+1 numbers) of a tensorial property of structure
``A`` is modelled as a sum of atomic contributions with an equivariant
prior: ``cov(t(A), t(B)) = σ² K^λ(A, B)``, the structure-summed λ-SOAP
kernel of :func:`kernelpot.kernels.equivariant.equivariant_kernel`. The
posterior mean ``t(A) = Σ_B K^λ(A, B) w_B`` then rotates exactly with the
structure, ``t(R·A) = D^λ(R) t(A)``, and is invariant under permutations of
like atoms. Cartesian targets are split into λ parts and predictions are
returned in Cartesian form (:mod:`kernelpot.models._sagpr_targets`).

Full GPR solves ``(K/s + α I) w = t`` by Cholesky, with ``s`` the mean of
the diagonal of ``K`` (so ``α`` is a noise-to-signal variance ratio that
does not depend on the size of the structures). The sparse form
(``n_sparse``) keeps ``M`` atomic environments chosen by FPS or CUR on the
invariant (λ = 0) features and solves the projected-process (DTC) system
``(K_MN K_NM + α s K_MM) w = K_MN t`` (Quiñonero-Candela & Rasmussen 2005).

References
----------
A. Grisafi, D. M. Wilkins, G. Csányi, M. Ceriotti, "Symmetry-adapted machine
learning for tensorial properties of atomistic systems", Phys. Rev. Lett. 120,
036002 (2018), doi:10.1103/PhysRevLett.120.036002.
J. Quiñonero-Candela, C. E. Rasmussen, J. Mach. Learn. Res. 6, 1939 (2005).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from ase import Atoms
from scipy.linalg import cho_solve, solve_triangular
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from kernelpot.descriptors.base import species_numbers
from kernelpot.descriptors.lambda_soap import LambdaSOAP
from kernelpot.kernels.equivariant import equivariant_kernel, equivariant_kernel_diag
from kernelpot.models import _sagpr_targets as _targets
from kernelpot.models.krr import cholesky_with_jitter_hint
from kernelpot.selection.cur import CUR
from kernelpot.selection.fps import FPS
from kernelpot.tensors import symmetrize
from kernelpot.utils.estimators import reset_fitted
from kernelpot.utils.linalg import cholesky

__all__ = ["SymmetryAdaptedGPR", "TensorRegressor"]

# Structures are described in batches of about this many atoms (bounds feature memory).
_BATCH_ATOMS = 20000


class SymmetryAdaptedGPR(RegressorMixin, BaseEstimator):
    """Gaussian process regression of one λ component of a tensor with λ-SOAP kernels.

    Parameters
    ----------
    lambda_ : {0, 1, 2, 3}, default=1
        Angular order learned. Targets (see ``fit``): λ = 1 vectors
        ``(n, 3)``; λ = 2 the symmetric traceless part of ``(n, 3, 3)``
        tensors; λ = 0 scalars ``(n,)`` or the isotropic part of ``(n, 3, 3)``;
        λ = 3 the λ = 3 part of ``(n, 3, 3, 3)`` tensors.
    species : sequence of int or str, optional
        Species the model may see. Default: those of the training set.
    r_cut : float, default=4.0
        λ-SOAP cutoff in Å (TENSOAP default).
    n_max, l_max : int, default=8, 6
        Radial and angular basis sizes of λ-SOAP.
    sigma : float or sequence of float, default=0.3
        Gaussian width of the atomic densities in Å. A sequence is a grid
        searched by ``fit`` (see ``search``); the chosen width is
        ``best_sigma_``.
    zeta : int, default=2
        Exponent of the scalar kernel in the nonlinearity ``k_0^{ζ-1}``.
    alpha : float or sequence of float, default=1e-6
        Regulariser: noise variance relative to the mean prior variance of
        a structure (dimensionless, > 0). 1e-8 suits smooth targets (monomer
        polarizabilities, Zundel dipoles), 1e-4..1e-3 targets with a part the
        local kernel cannot see (λ = 2 of water dimers, whose molecules are
        often farther apart than ``r_cut``). A sequence is a grid searched by
        ``fit`` together with ``sigma``; the chosen value is ``best_alpha_``.
    centers : sequence of int or str, optional
        Only environments centred on these species enter the kernel (TENSOAP
        ``-c``). Default: all atoms.
    same_center_species : bool, default=True
        Compare only environments whose central atoms are of the same species.
    n_sparse : int, optional
        Number of sparse (representative) environments; ``None`` = full GPR.
    selection : {"fps", "cur"}, default="fps"
        How sparse environments are chosen (on the invariant λ = 0 features).
    search : {"likelihood", "cv"}, default="likelihood"
        How ``fit`` chooses among the ``sigma`` × ``alpha`` grid (ignored
        with one value of each): "likelihood" maximises the log marginal
        likelihood of the training targets, with the prior variance σ² at its
        maximum-likelihood value (as scikit-learn's
        ``GaussianProcessRegressor`` chooses its kernel's hyperparameters;
        one kernel per ``sigma``, one Cholesky factorisation per pair);
        "cv" minimises the RMSE of ``cv``-fold cross-validation on the
        training structures (consecutive folds in the given order, as
        scikit-learn's ``KFold``; about ``cv`` fits per pair). Either way the
        model is then fitted on all training structures with the chosen pair.
    cv : int, default=5
        Number of folds of ``search="cv"``, >= 2.

    Attributes
    ----------
    species_ : ndarray of int
        Atomic numbers the model accepts.
    target_rank_ : int
        Cartesian rank of the training targets (predictions have the same).
    baseline_ : float
        λ = 0 only: mean per-atom value subtracted before the fit (target units).
    kernel_scale_ : float
        ``s``, the mean diagonal of the training structure kernel.
    prior_variance_ : float
        Maximum-likelihood ``σ²`` of the prior (target units squared).
    alpha_ : ndarray of shape (n_train or n_sparse, 2λ+1)
        Dual coefficients, as scikit-learn's ``GaussianProcessRegressor.alpha_``:
        the weights of the kernel between a structure and each training
        structure (or sparse environment), so the prediction is
        ``Σ_B K^λ(A, B) alpha_[B]`` (target units per kernel unit). Named
        ``weights_`` in kernelpot 0.1.
    sparse_indices_ : ndarray of int
        Environments kept as sparse points (indices into the training atoms
        used as centres); only with ``n_sparse``.
    best_sigma_, best_alpha_ : float
        The ``sigma`` and ``alpha`` of the fitted model (the given values, or
        the ones the search chose).
    log_marginal_likelihood_value_ : float
        Log marginal likelihood of the training targets (λ components, after
        the λ = 0 baseline) under the fitted model, σ² profiled out; for
        sparse models that of the projected-process (DTC) approximation.
    search_scores_ : ndarray of shape (n_sigma, n_alpha) or None
        The score of every grid pair: log marginal likelihood (higher is
        better) or cross-validated RMSE in target units (lower is better),
        as ``search`` says; None without a grid.

    Examples
    --------
    >>> model = SymmetryAdaptedGPR(lambda_=1)  # doctest: +SKIP
    >>> model.fit(train_atoms, dipoles).predict(test_atoms).shape  # doctest: +SKIP
    (800, 3)
    >>> tuned = SymmetryAdaptedGPR(1, sigma=[0.3, 0.4, 0.5], alpha=[1e-8, 1e-6, 1e-4])  # doctest: +SKIP
    >>> tuned.fit(train_atoms, dipoles).best_sigma_  # doctest: +SKIP
    """

    _parameter_constraints = {
        "lambda_": [Interval(Integral, 0, 3, closed="both")],
        "species": [None, "array-like", str, Integral],
        "r_cut": [Interval(Real, 1.0, None, closed="neither")],
        "n_max": [Interval(Integral, 1, None, closed="left")],
        "l_max": [Interval(Integral, 0, None, closed="left")],
        "sigma": [Interval(Real, 0.0, None, closed="neither"), "array-like"],
        "zeta": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0.0, None, closed="neither"), "array-like"],
        "centers": [None, "array-like", str, Integral],
        "same_center_species": ["boolean"],
        "n_sparse": [None, Interval(Integral, 1, None, closed="left")],
        "selection": [StrOptions({"fps", "cur"})],
        "search": [StrOptions({"likelihood", "cv"})],
        "cv": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(self, lambda_=1, *, species=None, r_cut=4.0, n_max=8, l_max=6, sigma=0.3, zeta=2,
                 alpha=1e-6, centers=None, same_center_species=True, n_sparse=None, selection="fps",
                 search="likelihood", cv=5):
        self.lambda_ = lambda_
        self.species = species
        self.r_cut = r_cut
        self.n_max = n_max
        self.l_max = l_max
        self.sigma = sigma
        self.zeta = zeta
        self.alpha = alpha
        self.centers = centers
        self.same_center_species = same_center_species
        self.n_sparse = n_sparse
        self.selection = selection
        self.search = search
        self.cv = cv

    # -- fitting -------------------------------------------------------------
    def fit(self, X, y):
        """Fit the λ part of tensor targets.

        Parameters
        ----------
        X : list of ase.Atoms
            Training structures (Å). Molecules with a zero cell (as ASE reads
            the TENSOAP files) are treated as non-periodic.
        y : ndarray
            Targets of shape ``(n, 3)`` (λ = 1), ``(n, 3, 3)`` (λ = 2; a
            non-symmetric tensor is symmetrised with a warning), ``(n,)`` or
            ``(n, 3, 3)`` (λ = 0), ``(n, 3, 3, 3)`` (λ = 3); any units.

        Returns
        -------
        self : SymmetryAdaptedGPR
        """
        self._validate_params()
        reset_fitted(self)
        if 2 * self.l_max < self.lambda_:
            raise ValueError(f"`l_max` must be >= lambda_/2 = {self.lambda_ / 2}; got {self.l_max}")
        atoms = _atoms_list(X, "X")
        t, self.target_rank_ = _targets.to_spherical(y, self.lambda_, len(atoms))
        found = np.unique(np.concatenate([a.numbers for a in atoms]))
        self.species_ = found if self.species is None else species_numbers(self.species)
        self._check_species(atoms)
        self._centers = None if self.centers is None else species_numbers(self.centers, "centers")
        sigmas, alphas = _grid(self.sigma, "sigma"), _grid(self.alpha, "alpha")
        n_atoms = np.array([len(a) for a in atoms], dtype=np.float64)
        self.search_scores_ = None
        if len(sigmas) * len(alphas) > 1:
            if self.search == "cv" and len(atoms) < self.cv:
                raise ValueError(f"`cv`={self.cv} folds need at least {self.cv} training structures; "
                                 f"got {len(atoms)}")
            scores = np.empty((len(sigmas), len(alphas)))
            for i, sigma in enumerate(sigmas):
                env = self._environments(atoms, sigma)
                for j, alpha in enumerate(alphas):
                    self.best_sigma_, self.best_alpha_ = float(sigma), float(alpha)
                    scores[i, j] = self._cv_rmse(env, t, n_atoms) if self.search == "cv" else \
                        self._fit_environments(env, t, n_atoms).log_marginal_likelihood_value_
            best = np.argmax(scores) if self.search == "likelihood" else np.argmin(scores)
            i, j = np.unravel_index(best, scores.shape)
            sigmas, alphas = sigmas[i:i + 1], alphas[j:j + 1]
            self.search_scores_ = scores
        self.best_sigma_, self.best_alpha_ = float(sigmas[0]), float(alphas[0])
        return self._fit_environments(self._environments(atoms, self.best_sigma_), t, n_atoms)

    def _fit_environments(self, env, t, n_atoms):
        """Fit on described structures with ``best_sigma_`` and ``best_alpha_`` (targets before the baseline)."""
        if np.any(np.diff(env["offsets"]) == 0):
            empty = int(np.flatnonzero(np.diff(env["offsets"]) == 0)[0])
            raise ValueError(f"structure {empty} of `X` has no atom of `centers`={self.centers!r}")
        self.baseline_ = float(np.mean(t[:, 0] / n_atoms)) if self.lambda_ == 0 else 0.0
        if self.lambda_ == 0:
            t = t - self.baseline_ * n_atoms[:, None]
        diag = equivariant_kernel_diag(env["X"], zeta=self.zeta, scalar=env["S"], offsets=env["offsets"],
                                       centers=env["centers"])
        self.kernel_scale_ = float(np.mean(np.trace(diag, axis1=1, axis2=2))) / (2 * self.lambda_ + 1)
        if not self.kernel_scale_ > 0:
            raise ValueError("the training kernel is zero (no λ-SOAP signal, e.g. isolated atoms at λ > 0)")
        if self.n_sparse is None:
            self._fit_full(env, t)
        else:
            self._fit_sparse(env, t)
        return self

    def _cv_rmse(self, env, t, n_atoms):
        """RMSE of ``cv``-fold cross-validation (consecutive folds) with ``best_sigma_`` and ``best_alpha_``."""
        squared, count = 0.0, 0
        for fold in np.array_split(np.arange(len(t)), self.cv):
            train = np.setdiff1d(np.arange(len(t)), fold)
            self._fit_environments(_structures(env, train), t[train], n_atoms[train])
            predicted, _ = self._predict_environments(_structures(env, fold), n_atoms[fold])
            squared += float(np.sum((predicted - t[fold]) ** 2))
            count += t[fold].size
        return np.sqrt(squared / count)

    def _fit_full(self, env, t):
        n_l = 2 * self.lambda_ + 1
        K = self._kernel(env, None).reshape(len(t) * n_l, -1) / self.kernel_scale_
        K[np.diag_indices_from(K)] += self.best_alpha_
        self._L = cholesky_with_jitter_hint(K, self.best_alpha_)
        flat = cho_solve((self._L, True), t.ravel(), check_finite=False)
        self.prior_variance_ = float(t.ravel() @ flat) / t.size
        self.alpha_ = flat.reshape(len(t), n_l) / self.kernel_scale_
        self._basis = env
        # log N(t | 0, σ² (K/s + αI)) at the maximum-likelihood σ²
        log_det = 2.0 * np.sum(np.log(np.diag(self._L)))
        self.log_marginal_likelihood_value_ = _profiled_log_likelihood(t.size, self.prior_variance_, log_det)

    def _fit_sparse(self, env, t):
        n_l = 2 * self.lambda_ + 1
        n_env = len(env["X"])
        if self.n_sparse > n_env:
            raise ValueError(f"`n_sparse` must be <= the number of training environments ({n_env}); "
                             f"got {self.n_sparse}")
        selector = FPS if self.selection == "fps" else CUR
        scalar = env["S"] / np.maximum(np.linalg.norm(env["S"], axis=1, keepdims=True), 1e-300)
        self.sparse_indices_ = np.sort(selector(n_to_select=self.n_sparse).fit(scalar).selected_idx_)
        basis = _subset(env, self.sparse_indices_)
        s = self.kernel_scale_
        K_nm = self._kernel(env, basis).reshape(len(t) * n_l, -1) / s
        K_mm = self._kernel(basis, None).reshape(self.n_sparse * n_l, -1) / s
        alpha = self.best_alpha_
        self._L_mm = _jittered_cholesky(K_mm, alpha)
        self._L = _jittered_cholesky(K_nm.T @ K_nm + alpha * K_mm, alpha)
        flat = cho_solve((self._L, True), K_nm.T @ t.ravel(), check_finite=False)
        residual = t.ravel() - K_nm @ flat
        self.prior_variance_ = float(t.ravel() @ residual) / (alpha * t.size)
        self.alpha_ = flat.reshape(self.n_sparse, n_l) / s
        self._basis = basis
        self.log_marginal_likelihood_value_ = _dtc_log_likelihood(K_nm, K_mm, t.ravel(), alpha)

    # -- prediction ------------------------------------------------------------
    def predict(self, X, return_std=False):
        """Predicted tensors (Cartesian, the λ part only) and optionally their std.

        Parameters
        ----------
        X : list of ase.Atoms
            Structures (Å); species must be among ``species_``.
        return_std : bool, default=False
            Also return the posterior standard deviation of each Cartesian
            component (from the full ``(2λ+1)²`` posterior covariance).

        Returns
        -------
        y : ndarray of shape (n, 3), (n, 3, 3), (n,) or (n, 3, 3, 3)
            Same form as the training targets, target units.
        std : ndarray of the same shape, only if ``return_std``
        """
        check_is_fitted(self, "alpha_")
        if not isinstance(return_std, (bool, np.bool_)):
            raise TypeError(f"`return_std` must be a bool; got {return_std!r}")
        atoms = _atoms_list(X, "X")
        self._check_species(atoms)
        env = self._environments(atoms, self.best_sigma_)
        n_atoms = np.array([len(a) for a in atoms], dtype=np.float64)
        mean, covariance = self._predict_environments(env, n_atoms, return_covariance=return_std)
        values, std = _targets.to_cartesian(mean, self.lambda_, self.target_rank_, covariance)
        return (values, std) if return_std else values

    def _predict_environments(self, env, n_atoms, *, return_covariance=False):
        """Spherical λ components of described structures (and their (2λ+1)² covariances)."""
        n_l = 2 * self.lambda_ + 1
        K = self._kernel(env, self._basis)
        mean = np.einsum("imjn,jn->im", K, self.alpha_)
        mean[:, 0] += self.baseline_ * n_atoms
        if not return_covariance:
            return mean, None
        n = len(n_atoms)
        K = K.reshape(n * n_l, -1) / self.kernel_scale_
        prior = equivariant_kernel_diag(env["X"], zeta=self.zeta, scalar=env["S"], offsets=env["offsets"],
                                        centers=env["centers"]) / self.kernel_scale_
        return mean, self.prior_variance_ * (prior - self._explained(K, n, n_l))

    def score(self, X, y, sample_weight=None):
        """R² of the predictions against the λ part of ``y``, over all Cartesian components.

        Parameters
        ----------
        X : list of ase.Atoms
        y : ndarray
            Targets in the form ``fit`` accepts.
        sample_weight : ndarray of shape (n,), optional

        Returns
        -------
        float
        """
        predicted = self.predict(X)
        spherical, rank = _targets.to_spherical(y, self.lambda_, len(predicted))
        reference = _targets.to_cartesian(spherical, self.lambda_, rank)[0]
        return _flat_r2(reference, predicted, sample_weight)

    def _explained(self, K, n, n_l):
        """Per-structure ``(2λ+1)²`` blocks of the covariance removed by the data."""
        V = solve_triangular(self._L, K.T, lower=True, check_finite=False)
        if self.n_sparse is None:
            return np.einsum("kim,kin->imn", V.reshape(-1, n, n_l), V.reshape(-1, n, n_l))
        # DTC: k** - Q** + α K*M A⁻¹ KM*, with Q** = K*M K_MM⁻¹ KM*
        W = solve_triangular(self._L_mm, K.T, lower=True, check_finite=False)
        q = np.einsum("kim,kin->imn", W.reshape(-1, n, n_l), W.reshape(-1, n, n_l))
        v = np.einsum("kim,kin->imn", V.reshape(-1, n, n_l), V.reshape(-1, n, n_l))
        return q - self.best_alpha_ * v

    # -- helpers ---------------------------------------------------------------
    def _kernel(self, env, basis):
        """Structure (or local, for sparse bases) λ kernel between ``env`` and ``basis`` (None: itself)."""
        if basis is None:
            return equivariant_kernel(env["X"], zeta=self.zeta, scalar_A=env["S"], offsets_A=env["offsets"],
                                      centers_A=env["centers"])
        return equivariant_kernel(env["X"], basis["X"], zeta=self.zeta, scalar_A=env["S"], scalar_B=basis["S"],
                                  offsets_A=env["offsets"], offsets_B=basis["offsets"],
                                  centers_A=env["centers"], centers_B=basis["centers"])

    def _check_species(self, atoms):
        allowed = set(self.species_.tolist())
        for index, a in enumerate(atoms):
            unknown = sorted(set(a.numbers.tolist()) - allowed)
            if unknown:
                raise ValueError(f"species {unknown} in structure {index} are not in the model's "
                                 f"species {sorted(allowed)} (set `species` when fitting to allow them)")

    def _environments(self, atoms, sigma):
        """λ and λ = 0 features (density width ``sigma``) of the centre atoms, batch by batch, with offsets."""
        params = {"species": self.species_.tolist(), "r_cut": self.r_cut, "n_max": self.n_max, "l_max": self.l_max,
                  "sigma": float(sigma), "periodic": True}
        descriptor = LambdaSOAP(**params, lambda_=self.lambda_)
        scalar = descriptor if self.lambda_ == 0 else LambdaSOAP(**params, lambda_=0)
        parts, counts = [], []
        for batch in _batches(atoms):
            X = descriptor.transform(batch)
            S = X if scalar is descriptor else scalar.transform(batch)
            numbers = np.asarray(X.numbers)
            keep = np.ones(len(numbers), bool) if self._centers is None else np.isin(numbers, self._centers)
            structure = np.repeat(np.arange(len(batch)), np.diff(X.offsets))
            counts.append(np.bincount(structure[keep], minlength=len(batch)))
            parts.append((np.asarray(X)[keep], np.asarray(S)[keep, 0, :], numbers[keep]))
        return {
            "X": np.concatenate([p[0] for p in parts]),
            "S": np.concatenate([p[1] for p in parts]),
            "offsets": np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64),
            "centers": np.concatenate([p[2] for p in parts]) if self.same_center_species else None,
            "numbers": np.concatenate([p[2] for p in parts]),
        }


class TensorRegressor(RegressorMixin, BaseEstimator):
    """Whole symmetric rank-2 tensors (e.g. polarizabilities) from λ = 0 and λ = 2 SA-GPR models.

    Parameters
    ----------
    alpha : float, sequence of float or dict {0: ..., 2: ...}, default=1e-6
        Regulariser of each λ model (see :class:`SymmetryAdaptedGPR`); a
        sequence is a grid each λ model searches on its own.
    **kwargs of SymmetryAdaptedGPR
        ``species, r_cut, n_max, l_max, sigma, zeta, centers,
        same_center_species, n_sparse, selection, search, cv``, shared by
        both models (a ``sigma`` grid is searched by each λ model).

    Attributes
    ----------
    models_ : dict {0: SymmetryAdaptedGPR, 2: SymmetryAdaptedGPR}
    asymmetry_ : float
        Largest ``|T_ij - T_ji|/2`` of the training tensors (target units);
        non-symmetric input is symmetrised with a warning.
    """

    _shared = ("species", "r_cut", "n_max", "l_max", "sigma", "zeta", "centers", "same_center_species",
               "n_sparse", "selection", "search", "cv")

    def __init__(self, *, alpha=1e-6, species=None, r_cut=4.0, n_max=8, l_max=6, sigma=0.3, zeta=2,
                 centers=None, same_center_species=True, n_sparse=None, selection="fps", search="likelihood", cv=5):
        self.alpha = alpha
        self.species = species
        self.r_cut = r_cut
        self.n_max = n_max
        self.l_max = l_max
        self.sigma = sigma
        self.zeta = zeta
        self.centers = centers
        self.same_center_species = same_center_species
        self.n_sparse = n_sparse
        self.selection = selection
        self.search = search
        self.cv = cv

    def fit(self, X, y):
        """Fit ``(n, 3, 3)`` tensors (any units); returns self."""
        reset_fitted(self)
        atoms = _atoms_list(X, "X")
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (len(atoms), 3, 3):
            raise ValueError(f"`y` must have shape (n_structures, 3, 3) = ({len(atoms)}, 3, 3) for a "
                             f"TensorRegressor; got {y.shape}")
        y, self.asymmetry_ = symmetrize(y, name="y")
        alphas = self._alphas()
        shared = {name: getattr(self, name) for name in self._shared}
        self.models_ = {lam: SymmetryAdaptedGPR(lam, alpha=alphas[lam], **shared).fit(atoms, y)
                        for lam in (0, 2)}
        return self

    def _alphas(self):
        if isinstance(self.alpha, dict):
            if set(self.alpha) != {0, 2}:
                raise ValueError(f"`alpha` as a dict must have keys {{0, 2}}; got {sorted(self.alpha)}")
            return self.alpha
        if isinstance(self.alpha, (list, tuple, np.ndarray)):
            return {0: self.alpha, 2: self.alpha}  # a grid: SymmetryAdaptedGPR checks its values
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, Real) or not self.alpha > 0:
            raise ValueError(f"`alpha` must be a float > 0, a sequence of them or a dict {{0: ..., 2: ...}}; "
                             f"got {self.alpha!r}")
        return {0: self.alpha, 2: self.alpha}

    def score(self, X, y, sample_weight=None):
        """R² over all components of the ``(n, 3, 3)`` tensors (symmetrised ``y``)."""
        return _flat_r2(symmetrize(y, name="y")[0], self.predict(X), sample_weight)

    def predict(self, X, return_std=False):
        """Predicted ``(n, 3, 3)`` tensors (and the std of each component, λ parts independent)."""
        check_is_fitted(self, "models_")
        results = [self.models_[lam].predict(X, return_std=return_std) for lam in (0, 2)]
        if not return_std:
            return results[0] + results[1]
        mean = results[0][0] + results[1][0]
        return mean, np.sqrt(results[0][1] ** 2 + results[1][1] ** 2)


def _flat_r2(reference, predicted, sample_weight):
    n = len(predicted)
    return r2_score(np.reshape(reference, (n, -1)), predicted.reshape(n, -1), sample_weight=sample_weight)


def _jittered_cholesky(A, alpha):
    """Cholesky factor of a PSD matrix that may be singular (sparse environments with few features).

    Jitter relative to the mean diagonal is added only when needed, from 1e-12 up to 1e-8.
    """
    scale = float(np.mean(np.diag(A)))
    for jitter in (0.0, 1e-12, 1e-10, 1e-8):
        try:
            return cholesky(A + jitter * scale * np.eye(len(A)), lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            continue
    return cholesky_with_jitter_hint(A, alpha)


def _atoms_list(X, name):
    atoms = [X] if isinstance(X, Atoms) else list(X) if isinstance(X, (list, tuple)) else None
    if not atoms or not all(isinstance(a, Atoms) for a in atoms):
        raise TypeError(f"`{name}` must be a non-empty list of ase.Atoms; got {type(X).__name__}")
    return [_as_finite_or_periodic(a) for a in atoms]


def _as_finite_or_periodic(a):
    """A zero cell means a molecule (TENSOAP files read by ASE have pbc=True and a zero cell)."""
    if np.any(a.pbc) and abs(np.linalg.det(np.asarray(a.cell[:]))) > 1e-12:
        return a
    return Atoms(numbers=a.numbers, positions=a.positions, pbc=False)


def _batches(atoms):
    start, count = 0, 0
    for index, a in enumerate(atoms):
        count += len(a)
        if count >= _BATCH_ATOMS:
            yield atoms[start:index + 1]
            start, count = index + 1, 0
    if start < len(atoms):
        yield atoms[start:]


def _grid(value, name):
    """The values of a hyperparameter given as a number or a sequence (a grid to search), as floats > 0."""
    values = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"`{name}` must be a number > 0 or a non-empty sequence of them; got {value!r}")
    return values


def _profiled_log_likelihood(n, prior_variance, log_det):
    """``log N(t | 0, σ² C)`` at ``σ² = tᵀC⁻¹t / n`` (``prior_variance``), with ``log_det = log|C|``."""
    return float(-0.5 * n * (np.log(2.0 * np.pi * prior_variance) + 1.0) - 0.5 * log_det)


def _dtc_log_likelihood(K_nm, K_mm, t, alpha):
    """Profiled log marginal likelihood of the projected-process (DTC) model, ``cov = σ² (Q + αI)``.

    ``Q = K_nm K_mm⁻¹ K_mn`` through the eigenvectors of ``K_mm`` above 1e-10 of
    its largest eigenvalue (``Q = ΦΦᵀ``): sparse λ-SOAP environments often give a
    singular ``K_mm``, whose null space does not enter ``Q`` but would enter
    ``log|K_mm|`` through whatever jitter a Cholesky factor needs. Then
    ``log|Q + αI| = (n − r) log α + log|αI + ΦᵀΦ|`` and
    ``tᵀ(Q + αI)⁻¹t = (tᵀt − tᵀΦ (αI + ΦᵀΦ)⁻¹ Φᵀt) / α``.
    """
    values, vectors = np.linalg.eigh(K_mm)
    keep = values > 1e-10 * values[-1]
    phi = K_nm @ (vectors[:, keep] / np.sqrt(values[keep]))
    inner = cholesky(alpha * np.eye(phi.shape[1]) + phi.T @ phi, lower=True, check_finite=False)
    projected = solve_triangular(inner, phi.T @ t, lower=True, check_finite=False)
    quadratic = (t @ t - projected @ projected) / alpha
    log_det = (len(t) - phi.shape[1]) * np.log(alpha) + 2.0 * np.sum(np.log(np.diag(inner)))
    return _profiled_log_likelihood(len(t), quadratic / len(t), log_det)


def _structures(env, indices):
    """The described environments of structures ``indices`` (with new offsets)."""
    offsets = env["offsets"]
    rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in indices])
    counts = np.diff(offsets)[indices]
    return {"X": env["X"][rows], "S": env["S"][rows],
            "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            "centers": None if env["centers"] is None else env["centers"][rows], "numbers": env["numbers"][rows]}


def _subset(env, indices):
    """Selected environments as a local (one row per atom) basis."""
    return {"X": env["X"][indices], "S": env["S"][indices], "offsets": None,
            "centers": None if env["centers"] is None else env["centers"][indices],
            "numbers": env["numbers"][indices]}
