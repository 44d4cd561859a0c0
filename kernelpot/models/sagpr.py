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
from scipy.linalg import cho_solve, cholesky, solve_triangular
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
    sigma : float, default=0.3
        Gaussian width of the atomic densities in Å.
    zeta : int, default=2
        Exponent of the scalar kernel in the nonlinearity ``k_0^{ζ-1}``.
    alpha : float, default=1e-6
        Regulariser: noise variance relative to the mean prior variance of
        a structure (dimensionless, > 0). Choose it by cross-validation:
        1e-8 suits smooth targets (monomer polarizabilities, Zundel dipoles),
        1e-4..1e-3 targets with a part the local kernel cannot see (λ = 2 of
        water dimers, whose molecules are often farther apart than ``r_cut``).
    centers : sequence of int or str, optional
        Only environments centred on these species enter the kernel (TENSOAP
        ``-c``). Default: all atoms.
    same_center_species : bool, default=True
        Compare only environments whose central atoms are of the same species.
    n_sparse : int, optional
        Number of sparse (representative) environments; ``None`` = full GPR.
    selection : {"fps", "cur"}, default="fps"
        How sparse environments are chosen (on the invariant λ = 0 features).

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

    Examples
    --------
    >>> model = SymmetryAdaptedGPR(lambda_=1)  # doctest: +SKIP
    >>> model.fit(train_atoms, dipoles).predict(test_atoms).shape  # doctest: +SKIP
    (800, 3)
    """

    _parameter_constraints = {
        "lambda_": [Interval(Integral, 0, 3, closed="both")],
        "species": [None, "array-like", str, Integral],
        "r_cut": [Interval(Real, 1.0, None, closed="neither")],
        "n_max": [Interval(Integral, 1, None, closed="left")],
        "l_max": [Interval(Integral, 0, None, closed="left")],
        "sigma": [Interval(Real, 0.0, None, closed="neither")],
        "zeta": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0.0, None, closed="neither")],
        "centers": [None, "array-like", str, Integral],
        "same_center_species": ["boolean"],
        "n_sparse": [None, Interval(Integral, 1, None, closed="left")],
        "selection": [StrOptions({"fps", "cur"})],
    }

    def __init__(self, lambda_=1, *, species=None, r_cut=4.0, n_max=8, l_max=6, sigma=0.3, zeta=2,
                 alpha=1e-6, centers=None, same_center_species=True, n_sparse=None, selection="fps"):
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
        env = self._environments(atoms)
        if np.any(np.diff(env["offsets"]) == 0):
            empty = int(np.flatnonzero(np.diff(env["offsets"]) == 0)[0])
            raise ValueError(f"structure {empty} of `X` has no atom of `centers`={self.centers!r}")
        n_atoms = np.array([len(a) for a in atoms], dtype=np.float64)
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

    def _fit_full(self, env, t):
        n_l = 2 * self.lambda_ + 1
        K = self._kernel(env, None).reshape(len(t) * n_l, -1) / self.kernel_scale_
        K[np.diag_indices_from(K)] += self.alpha
        self._L = cholesky_with_jitter_hint(K, self.alpha)
        flat = cho_solve((self._L, True), t.ravel(), check_finite=False)
        self.prior_variance_ = float(t.ravel() @ flat) / t.size
        self.alpha_ = flat.reshape(len(t), n_l) / self.kernel_scale_
        self._basis = env

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
        self._L_mm = _jittered_cholesky(K_mm, self.alpha)
        self._L = _jittered_cholesky(K_nm.T @ K_nm + self.alpha * K_mm, self.alpha)
        flat = cho_solve((self._L, True), K_nm.T @ t.ravel(), check_finite=False)
        residual = t.ravel() - K_nm @ flat
        self.prior_variance_ = float(t.ravel() @ residual) / (self.alpha * t.size)
        self.alpha_ = flat.reshape(self.n_sparse, n_l) / s
        self._basis = basis

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
        env = self._environments(atoms)
        n_l = 2 * self.lambda_ + 1
        K = self._kernel(env, self._basis)
        mean = np.einsum("imjn,jn->im", K, self.alpha_)
        n_atoms = np.array([len(a) for a in atoms], dtype=np.float64)
        mean[:, 0] += self.baseline_ * n_atoms
        covariance = None
        if return_std:
            K = K.reshape(len(atoms) * n_l, -1) / self.kernel_scale_
            prior = equivariant_kernel_diag(env["X"], zeta=self.zeta, scalar=env["S"], offsets=env["offsets"],
                                            centers=env["centers"]) / self.kernel_scale_
            covariance = self.prior_variance_ * (prior - self._explained(K, len(atoms), n_l))
        values, std = _targets.to_cartesian(mean, self.lambda_, self.target_rank_, covariance)
        return (values, std) if return_std else values

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
        return q - self.alpha * v

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

    def _environments(self, atoms):
        """λ and λ = 0 features of the centre atoms, batch by batch, with structure offsets."""
        params = {"species": self.species_.tolist(), "r_cut": self.r_cut, "n_max": self.n_max, "l_max": self.l_max,
                      "sigma": self.sigma, "periodic": True}
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
    alpha : float or dict {0: float, 2: float}, default=1e-6
        Regulariser of each λ model (see :class:`SymmetryAdaptedGPR`).
    **kwargs of SymmetryAdaptedGPR
        ``species, r_cut, n_max, l_max, sigma, zeta, centers,
        same_center_species, n_sparse, selection``, shared by both models.

    Attributes
    ----------
    models_ : dict {0: SymmetryAdaptedGPR, 2: SymmetryAdaptedGPR}
    asymmetry_ : float
        Largest ``|T_ij - T_ji|/2`` of the training tensors (target units);
        non-symmetric input is symmetrised with a warning.
    """

    _shared = ("species", "r_cut", "n_max", "l_max", "sigma", "zeta", "centers", "same_center_species",
               "n_sparse", "selection")

    def __init__(self, *, alpha=1e-6, species=None, r_cut=4.0, n_max=8, l_max=6, sigma=0.3, zeta=2,
                 centers=None, same_center_species=True, n_sparse=None, selection="fps"):
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
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, Real) or not self.alpha > 0:
            raise ValueError(f"`alpha` must be a float > 0 or a dict {{0: float, 2: float}}; got {self.alpha!r}")
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


def _subset(env, indices):
    """Selected environments as a local (one row per atom) basis."""
    return {"X": env["X"][indices], "S": env["S"][indices], "offsets": None,
            "centers": None if env["centers"] is None else env["centers"][indices],
            "numbers": env["numbers"][indices]}
