"""Kernel ridge regression on feature vectors, on per-atom features, or on structures with forces.

Learning from energies and forces (GDML / FCHL19 operator kernels: S. Chmiela et al.,
Nat. Commun. 9, 3887 (2018), doi:10.1038/s41467-018-06169-2; A. S. Christensen,
O. A. von Lilienfeld, Mach. Learn.: Sci. Technol. 1, 045018 (2020),
doi:10.1088/2632-2153/abba6f): with ``F = -dE/dr`` the labels ``(E, F)`` share
one kernel matrix ::

    [ K_EE        K_EF ]   K_EE = K(A, B),  K_EF = cov(E_A, F_B) = -dK/dr_B,
    [ K_EFᵀ       K_FF ]   K_FF = cov(F_A, F_B) = d²K/dr_A dr_B,

whose blocks come from :class:`~kernelpot.kernels.local.LocalKernel`
(``structure_kernel``, ``energy_force``, ``force_force``) and the descriptor's
sparse position gradients.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy.linalg import cho_solve
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.gaussian_process.kernels import Kernel
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from kernelpot.kernels.local import LocalKernel
from kernelpot.kernels.vector import make_vector_kernel
from kernelpot.models._inputs import (
    check_fit_input,
    check_forces,
    check_predict_input,
    contains_local,
    regressor_tags,
)
from kernelpot.utils.estimators import reset_fitted
from kernelpot.utils.linalg import cholesky

__all__ = ["KernelRidge"]

_VECTOR_NAMES = ("gaussian", "laplacian", "linear", "polynomial", "dot_product")
KERNEL_NAMES = _VECTOR_NAMES + tuple("local_" + name for name in _VECTOR_NAMES)


def cholesky_with_jitter_hint(K: np.ndarray, alpha) -> np.ndarray:
    """Lower Cholesky factor of ``K``, re-raising a failure that names ``alpha``."""
    try:
        return cholesky(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError as exc:
        raise np.linalg.LinAlgError(
            f"the kernel matrix plus `alpha` on its diagonal is not positive definite ({exc}); "
            f"increase `alpha` (got {alpha!r})"
        ) from exc


class KernelRidge(RegressorMixin, BaseEstimator):
    """Kernel ridge regression solved by Cholesky factorisation.

    Minimises ``|y - K c|² + alpha cᵀ K c``, i.e. ``c = (K + alpha I)⁻¹ y``,
    as qmllib does for its KRR examples. With per-atom input the kernel is
    a local (structure) kernel ``K(A, B) = Σ_{i∈A} Σ_{j∈B} k(x_i, x_j)`` and
    the model keeps the training per-atom features to predict.

    With a ``descriptor``, ``X`` is a list of ``ase.Atoms`` and the model can
    also learn from forces (``fit(X, y, forces=...)``) and predict them
    (:meth:`predict_forces`), through the operator kernels of the module
    docstring. Targets are not centred: subtract a baseline first (e.g. the
    mean training energy of a single molecule, or per-element energies).

    Parameters
    ----------
    alpha : float
        Regularisation added to the diagonal of the kernel matrix (units of
        the kernel); for energies, the energy rows. Increase it if the
        Cholesky factorisation fails.
    kernel : str or Kernel
        One of "gaussian", "laplacian", "linear", "polynomial", "dot_product"
        (on vectors) or the same names prefixed with ``local_`` (on per-atom
        features, e.g. ``"local_gaussian"``), or a kernel object: a kernelpot
        vector kernel, a :class:`~kernelpot.kernels.local.LocalKernel`, or a
        scikit-learn kernel. A kernel object ignores ``sigma``, ``zeta``,
        ``degree``, ``coef0`` and ``same_element_only``.
    sigma : float
        Length scale of "gaussian" and "laplacian" (units of the features).
    zeta : int
        Exponent of "dot_product", ``(x·y / |x||y|)^zeta``.
    degree : int
        Degree of "polynomial", ``(x·y + coef0)^degree``.
    coef0 : float
        Offset of "polynomial".
    same_element_only : bool
        For "local_*" kernels: only atom pairs of the same element contribute.
    descriptor : Descriptor or None
        A kernelpot descriptor with position gradients (e.g. ``FCHL19``). Then
        ``X`` in ``fit``, ``predict`` and ``predict_forces`` is an ``ase.Atoms``
        or a list of them (positions in Å), and the kernel must be local. None:
        ``X`` is feature vectors or per-atom features (e.g. after the
        descriptor in a ``Pipeline``), and forces are not available.
    force_alpha : float or None
        Regularisation of the force rows when fitting forces (units of the
        kernel per Å²); None uses ``alpha``.

    Attributes
    ----------
    kernel_ : Kernel
        The kernel object used.
    dual_coef_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Weights ``c`` of the training samples (energy rows).
    force_dual_coef_ : ndarray of shape (n_atoms_total, 3) or None
        Weights of the training force components; None if fitted without forces.
    X_fit_ : ndarray of shape (n_samples, n_features) or LocalFeatures
        Training input (features), needed to predict.
    gradients_fit_ : SparseGradients or None
        Position gradients of the training features (only when fitted with forces).
    descriptor_ : Descriptor or None
        Clone of ``descriptor`` used to compute features.
    n_features_in_ : int
        Number of features (per atom for per-atom input).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(0, 3, 12)[:, None]
    >>> model = KernelRidge(alpha=1e-8, kernel="gaussian", sigma=0.5).fit(X, np.sin(X[:, 0]))
    >>> bool(abs(model.predict([[1.0]])[0] - np.sin(1.0)) < 1e-3)
    True

    Energies and forces of structures (kcal/mol and kcal/mol/Å here)::

        model = KernelRidge(1e-8, kernel="local_gaussian", sigma=10.0, descriptor=FCHL19([1, 6, 8]))
        model.fit(atoms_list, energies - energies.mean(), forces=forces_list)
        forces_pred = model.predict_forces(test_atoms)     # (n_atoms_total, 3)
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "kernel": [StrOptions(set(KERNEL_NAMES)), Kernel],
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "zeta": [Interval(Integral, 1, None, closed="left")],
        "degree": [Interval(Integral, 1, None, closed="left")],
        "coef0": [Real],
        "same_element_only": ["boolean"],
        "descriptor": [None, HasMethods(["transform"])],
        "force_alpha": [None, Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        alpha=1.0,
        *,
        kernel="gaussian",
        sigma=1.0,
        zeta=2,
        degree=2,
        coef0=1.0,
        same_element_only=True,
        descriptor=None,
        force_alpha=None,
    ):
        self.alpha = alpha
        self.kernel = kernel
        self.sigma = sigma
        self.zeta = zeta
        self.degree = degree
        self.coef0 = coef0
        self.same_element_only = same_element_only
        self.descriptor = descriptor
        self.force_alpha = force_alpha

    def _make_kernel(self) -> Kernel:
        if not isinstance(self.kernel, str):
            return clone(self.kernel)
        name = self.kernel.removeprefix("local_")
        base = make_vector_kernel(name, sigma=self.sigma, zeta=self.zeta, degree=self.degree, coef0=self.coef0)
        if self.kernel.startswith("local_"):
            return LocalKernel(base, same_element_only=self.same_element_only)
        return base

    def __sklearn_tags__(self):
        return regressor_tags(super().__sklearn_tags__())

    def fit(self, X, y, *, forces=None):
        """Fit the model.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), per-atom features, or structures
            Per-atom input (``AtomicFeatures`` from a kernelpot descriptor,
            ``LocalFeatures`` or ``(features, offsets, numbers)``) needs a local
            kernel; with ``descriptor`` set, an ``ase.Atoms`` or a list of them.
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Targets, one row per sample or structure (e.g. energies in eV).
        forces : sequence of ndarray of shape (n_atoms_s, 3), optional
            Forces ``-dE/dr`` of every structure (units of ``y`` per Å): a list
            with one array per structure, or an array of shape
            (n_structures, n_atoms, 3). Needs ``descriptor``, a ``LocalKernel``
            and 1-D ``y``.

        Returns
        -------
        self : KernelRidge
        """
        self._validate_params()
        reset_fitted(self)
        kernel = self._make_kernel()
        self._local = contains_local(kernel)
        self.descriptor_ = None if self.descriptor is None else clone(self.descriptor)
        self.force_dual_coef_ = None
        self.gradients_fit_ = None
        if forces is not None and self.descriptor is None:
            raise ValueError(
                "`forces` need position gradients of the features: set `descriptor` (e.g. FCHL19(...)) "
                "and pass ase.Atoms as `X`"
            )
        gradients = None
        if self.descriptor_ is not None:
            self._check_descriptor_kernel(kernel, with_forces=forces is not None)
            X, gradients = self._features(X, gradients=forces is not None)
        X, y = check_fit_input(self, X, y, local=self._local)
        K = kernel(X)
        K[np.diag_indices_from(K)] += self.alpha
        if forces is None:
            L = cholesky_with_jitter_hint(K, self.alpha)
            self.dual_coef_ = cho_solve((L, True), y, check_finite=False)
        else:
            if y.ndim != 1:
                raise ValueError(f"`y` must be 1-D (one energy per structure) with `forces`; got shape {y.shape}")
            F = check_forces(forces, X.offsets)
            K = self._energy_force_matrix(kernel, X, gradients, K)
            L = cholesky_with_jitter_hint(K, self.alpha if self.force_alpha is None else self.force_alpha)
            coef = cho_solve((L, True), np.concatenate([y, F.ravel()]), check_finite=False)
            self.dual_coef_ = coef[: len(y)]
            self.force_dual_coef_ = coef[len(y) :].reshape(-1, 3)
            self.gradients_fit_ = gradients
        self.kernel_ = kernel
        self.X_fit_ = X
        return self

    @staticmethod
    def _check_descriptor_kernel(kernel, *, with_forces: bool):
        if with_forces and not isinstance(kernel, LocalKernel):
            raise TypeError(
                "learning from forces needs `kernel` to be a LocalKernel or a 'local_*' name "
                f"(its energy-force blocks); got {type(kernel).__name__}"
            )
        if not contains_local(kernel):
            raise TypeError(
                f"a `descriptor` gives per-atom features, so `kernel` must be local (e.g. 'local_gaussian'); "
                f"got {kernel!r}"
            )

    def _features(self, X, *, gradients: bool):
        """Per-atom features (and SparseGradients or None) of structures ``X``."""
        if gradients:
            return self.descriptor_.transform(X, gradients=True)
        return self.descriptor_.transform(X), None

    def _energy_force_matrix(self, kernel, X, gradients, K_EE):
        """Joint (energies + forces) kernel matrix with regularised diagonal, (n + 3 n_atoms)²."""
        K_EF = kernel.energy_force(X, X, gradients)
        K_FF = kernel.force_force(X, gradients)
        K_FF[np.diag_indices_from(K_FF)] += self.alpha if self.force_alpha is None else self.force_alpha
        return np.block([[K_EE, K_EF], [K_EF.T, K_FF]])

    def predict(self, X):
        """Predict targets.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), per-atom features, or structures
            Same kind of input as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
            Targets (energies of structures, in the units of ``y``).
        """
        check_is_fitted(self, "dual_coef_")
        if self.descriptor_ is not None:
            X, _ = self._features(X, gradients=False)
        X = check_predict_input(self, X, local=self._local)
        prediction = self.kernel_(X, self.X_fit_) @ self.dual_coef_
        if self.force_dual_coef_ is not None:
            K_EF = self.kernel_.energy_force(X, self.X_fit_, self.gradients_fit_)
            prediction += K_EF @ self.force_dual_coef_.ravel()
        return prediction

    def predict_forces(self, X):
        """Predict forces ``-dE/dr`` on every atom of structures ``X``.

        Available with a ``descriptor`` and a ``LocalKernel``, whether or not
        the model was fitted with forces (an energy-only model gives the
        negative gradient of its energy prediction).

        Parameters
        ----------
        X : ase.Atoms or sequence of ase.Atoms
            Structures, positions in Å.

        Returns
        -------
        ndarray of shape (n_atoms_total, 3)
            Forces in units of ``y`` per Å, rows in the order of the atoms of ``X``.
        """
        check_is_fitted(self, "dual_coef_")
        if self.descriptor_ is None or not isinstance(self.kernel_, LocalKernel):
            raise TypeError(
                "`predict_forces` needs a model fitted with a `descriptor` and a LocalKernel (a 'local_*' kernel)"
            )
        if self.dual_coef_.ndim != 1:
            raise ValueError("`predict_forces` needs a model fitted on 1-D `y` (one energy per structure)")
        features, gradients = self._features(X, gradients=True)
        X = check_predict_input(self, features, local=True)
        # cov(F*, E_train) is the transpose of cov(E_train, F*).
        forces = self.kernel_.energy_force(self.X_fit_, X, gradients).T @ self.dual_coef_
        if self.force_dual_coef_ is not None:
            K_FF = self.kernel_.force_force(X, gradients, self.X_fit_, self.gradients_fit_)
            forces += K_FF @ self.force_dual_coef_.ravel()
        return forces.reshape(-1, 3)
