"""Electron densities by symmetry-adapted Gaussian process regression (SALTED-style).

The density of a structure is expanded on an atom-centred auxiliary basis
(:class:`~kernelpot.density.basis.AuxiliaryBasis`),
``ρ(r) = Σ_{i n λ μ} c_{i n λ μ} φ_{n λ μ}(r − R_i)``. Each coefficient block
``c_{i n λ}`` (2λ+1 components) transforms like a spherical tensor of order
λ, so it is predicted by SA-GPR (Grisafi et al., PRL 120, 036002 (2018),
doi:10.1103/PhysRevLett.120.036002) from the λ-SOAP features of atom ``i``::

    c_{i n λ} = b_{a n} δ_{λ0} + Σ_{M ∈ sparse(a)} k^λ(i, M) w_{a n λ M},

one channel per (species a, radial index n, λ), with ``k^λ`` the equivariant
kernel of :func:`kernelpot.kernels.equivariant.equivariant_kernel` and
``b_{a n}`` the mean λ = 0 coefficient of the training atoms of species a.
Sparse environments are picked per species by farthest-point sampling on
the λ = 0 features. Following SALTED (Grisafi, Lewis, Rossi, Ceriotti,
J. Chem. Theory Comput. 19, 4451 (2023), doi:10.1021/acs.jctc.2c00850; the
density model of Grisafi et al., ACS Cent. Sci. 5, 57 (2019),
doi:10.1021/acscentsci.8b00551) the weights minimise the density error in
the overlap metric of the basis, which couples all coefficients of a
structure::

    Σ_s (c_s − Ψ_s w)ᵀ S_s (c_s − Ψ_s w) + α wᵀ K_MM w.

The kernel is used through the orthogonalised (Nyström) features
``Φ = K_NM U Λ^(-1/2)`` of each (a, λ), keeping eigenvalues above
``eigen_tolerance`` times the largest, so the prior term becomes ``α |w|²``
and the problem is ridge regression on rows ``L_sᵀ Ψ_s`` (``S_s = L_s L_sᵀ``).
``α`` is chosen on a held-out part of the training structures.

With ``moment_weight`` w > 0 the training metric also weighs the error of
each training structure's electron count and dipole (about its centre of
nuclear charge, e·Bohr)::

    δcᵀ S δc + w (δN² + |δμ|²),   δN = qᵀδc,   δμ = Dᵀδc,

i.e. ``S`` is replaced by ``S + w (q qᵀ + D Dᵀ)``, four more rows per
structure. The overlap metric weighs core coefficients most; the low
multipoles, which decide the dipole of an assembly of molecules through
small charge and polarisation shifts on every molecule, then count too
(the Coulomb metric of the reference fit has the same emphasis).
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from ..density import DensitySet, closed_shell_electrons
from ..density.basis import BOHR
from ..density.grid import molecular_grid
from ..descriptors.lambda_soap import LambdaSOAP
from ..exceptions import warn_reduced
from ..kernels.equivariant import equivariant_kernel
from ..selection.cur import CUR
from ..selection.fps import FPS
from ..structures.packing import as_atoms_list
from ..utils.estimators import reset_fitted

__all__ = ["DensityModel"]

# Structures whose rows are stacked before one BLAS update of the normal equations.
_BATCH = 16


class DensityModel(BaseEstimator):
    """SA-GPR model of electron-density coefficients on an auxiliary basis.

    Parameters
    ----------
    r_cut : float, default=4.0
        λ-SOAP cutoff, Å.
    n_max, l_max : int, default=6, 4
        λ-SOAP radial and angular expansion sizes (``l_max >= λ_max / 2``).
    sigma : float, default=0.3
        λ-SOAP Gaussian width, Å.
    zeta : int, default=2
        Kernel exponent: ``k^λ · k_0^(ζ-1)``.
    n_sparse : int, default=100
        Sparse environments per species (all if fewer, with a
        :class:`~kernelpot.exceptions.ReducedRequestWarning`).
    selection : {"fps", "cur"}, default="fps"
        How sparse environments are picked from the λ = 0 features
        (:class:`~kernelpot.selection.fps.FPS` or :class:`~kernelpot.selection.cur.CUR`).
    eigen_tolerance : float, default=1e-8
        Relative eigenvalue cutoff of each ``K_MM`` (rank of the Nyström features).
    alphas : sequence of float, default=(1e-10, ..., 1e-2)
        Candidate regularisation strengths, relative to the mean diagonal of
        the normal matrix; the one with the lowest validation error is used.
    validation_fraction : float, default=0.2
        Fraction of the training structures held out to choose ``alpha``.
    moment_weight : float, default=0.0
        Weight w (Bohr⁻³ for the electron count, Bohr⁻⁵ for the dipole in
        e·Bohr) of the electron-count and dipole errors of each training
        structure in the training metric (see the module docstring); 0 is
        the plain overlap metric.
    renormalize : bool, default=False
        Shift predicted coefficients (least change in the coefficients) so
        that each predicted density integrates to the neutral closed-shell
        electron count ``Σ Z``.
    random_state : int or None, default=0
        Seed of the validation split.

    Attributes
    ----------
    basis_ : AuxiliaryBasis
    species_ : list of int
    best_alpha_ : float
        The relative regularisation chosen from ``alphas`` (``alpha_`` in
        kernelpot 0.1; kernelpot's ``alpha_`` are dual coefficients, as in
        scikit-learn's GaussianProcessRegressor).
    validation_errors_ : ndarray of shape (n_alphas,)
        For each alpha, the error on the held-out structures relative to
        their deviation from the species baseline, in %, in the training
        metric (``100 sqrt(Σ δcᵀSδc / Σ (c − b)ᵀS(c − b))``, with ``S`` plus
        the moment terms if ``moment_weight > 0``); NaN without validation.
    n_weights_ : int
    coef_ : ndarray of shape (`n_weights_`,)
        Weights of the orthogonalised kernel features of every (species, λ,
        radial index) channel (``weights_`` in kernelpot 0.1).

    Examples
    --------
    >>> from kernelpot.datasets import load_water_density
    >>> train, test = load_water_density()
    >>> model = DensityModel().fit(train)  # doctest: +SKIP
    >>> model.score(test)  # doctest: +SKIP
    0.985...
    >>> model.error_summary(test)["l1_percent"]  # doctest: +SKIP
    """

    def __init__(self, *, r_cut=4.0, n_max=6, l_max=4, sigma=0.3, zeta=2, n_sparse=100,
                 selection="fps", eigen_tolerance=1e-8, alphas=None, validation_fraction=0.2, moment_weight=0.0,
                 renormalize=False, random_state=0):
        self.r_cut = r_cut
        self.n_max = n_max
        self.l_max = l_max
        self.sigma = sigma
        self.zeta = zeta
        self.n_sparse = n_sparse
        self.selection = selection
        self.eigen_tolerance = eigen_tolerance
        self.alphas = alphas
        self.validation_fraction = validation_fraction
        self.moment_weight = moment_weight
        self.renormalize = renormalize
        self.random_state = random_state

    # --------------------------------------------------------------------- fit
    def fit(self, dataset: DensitySet) -> DensityModel:
        """Learn the density coefficients of ``dataset``.

        Parameters
        ----------
        dataset : DensitySet
            Structures with reference coefficients and overlaps.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            ``dataset`` is not a DensitySet.
        ValueError
            Invalid hyperparameters; an odd electron count (closed-shell
            references only); fewer than 2 structures.
        """
        self._check_dataset(dataset, "dataset")
        alphas = self._validate()
        reset_fitted(self)
        if len(dataset) < 2:
            raise ValueError(f"`dataset` must hold at least 2 structures; got {len(dataset)}")
        self.basis_ = dataset.basis
        numbers = np.concatenate([a.numbers for a in dataset.structures])
        self.species_ = sorted(set(numbers.tolist()))
        self.lambdas_ = list(range(max(max(self.basis_.radial_counts(z)) for z in self.species_) + 1))
        features = self._features(dataset.structures)
        self._select_sparse(features, numbers)
        self._baseline(dataset, numbers)
        phi = self._nystrom(features, numbers)
        offsets = np.cumsum([0] + [len(a) for a in dataset.structures])
        order = check_random_state(self.random_state).permutation(len(dataset))
        n_val = int(round(self.validation_fraction * len(dataset)))
        n_val = min(max(n_val, 1), len(dataset) - 1) if self.validation_fraction > 0 else 0
        parts = [self._normal_equations(dataset, idx, phi, numbers, offsets)
                 for idx in (order[n_val:], order[:n_val])]
        scale = np.mean(np.diag(parts[0][0]))
        if n_val:
            self.validation_errors_ = _validation_curve(parts[0], parts[1], alphas * scale)
            self.best_alpha_ = float(alphas[int(np.argmin(self.validation_errors_))])
        else:
            self.validation_errors_ = np.full(len(alphas), np.nan)
            self.best_alpha_ = float(alphas[0])
        a_all = parts[0][0] + parts[1][0] if n_val else parts[0][0]
        b_all = parts[0][1] + parts[1][1] if n_val else parts[0][1]
        a_all[np.diag_indices_from(a_all)] += self.best_alpha_ * scale
        self.coef_ = scipy.linalg.solve(a_all, b_all, assume_a="pos")
        return self

    # ----------------------------------------------------------------- predict
    def predict(self, X) -> list:
        """Predicted density coefficients of each structure.

        Parameters
        ----------
        X : ase.Atoms, list of ase.Atoms or DensitySet
            Molecules, positions in Å.

        Returns
        -------
        list of ndarray of shape (n_functions_s,)
            Coefficients on ``basis_`` (e·Bohr^(-3/2)), in its function order.

        Raises
        ------
        ValueError
            A species the model was not trained on; with ``renormalize``, a
            structure with an odd electron count.
        """
        self._check_fitted()
        structures = X.structures if isinstance(X, DensitySet) else as_atoms_list(X)
        numbers = np.concatenate([a.numbers for a in structures])
        missing = sorted(set(numbers.tolist()) - set(self.species_))
        if missing:
            raise ValueError(f"species {missing} in `X` are not in the model's species={self.species_}")
        counts = [closed_shell_electrons(a, i) for i, a in enumerate(structures)] if self.renormalize else None
        phi = self._nystrom(self._features(structures), numbers)
        offsets = np.cumsum([0] + [len(a) for a in structures])
        out = []
        for s, atoms in enumerate(structures):
            rows = self._rows(atoms.numbers, offsets[s], phi)
            c = self._baseline_of(atoms.numbers).copy()
            for idx, block, weights in rows:
                c[idx] += block @ self.coef_[weights]
            if counts is not None:
                q = self.basis_.integrals(atoms.numbers)
                c += (counts[s] - q @ c) / (q @ q) * q
            out.append(c)
        return out

    def errors(self, dataset: DensitySet, *, n_radial: int = 50, n_theta: int = 12) -> dict:
        """Per-structure errors of the predicted densities.

        Returns
        -------
        dict of str to ndarray of shape (n_structures,)
            ``l2_percent`` (100 sqrt(δcᵀSδc / cᵀSc)), ``l1_percent``
            (100 ∫|ρ_ML − ρ_ref| dr / N_e on a Becke grid, see
            :func:`~kernelpot.density.grid.molecular_grid`), ``dipole_percent``
            (100 |μ_ML − μ_ref| / |μ_ref| with μ_ref the dataset's SCF dipole),
            ``dipoles`` (n, 3) predicted dipoles in e·Å, ``electron_error``
            (predicted minus reference electron count).
        """
        self._check_dataset(dataset, "dataset")
        self._check_basis(dataset)
        predicted = self.predict(dataset)
        out = {key: [] for key in ("l2_percent", "l1_percent", "dipole_percent", "dipoles", "electron_error")}
        for atoms, c_ml, c_ref, s, n_e, mu_ref in zip(dataset.structures, predicted, dataset.coefficients,
                                                      dataset.overlaps, dataset.n_electrons, dataset.dipoles):
            delta = c_ml - c_ref
            out["l2_percent"].append(100 * np.sqrt((delta @ s @ delta) / (c_ref @ s @ c_ref)))
            positions = atoms.positions / BOHR
            points, weights = molecular_grid(positions, n_radial=n_radial, n_theta=n_theta)
            diff = self.basis_.density(delta, positions, atoms.numbers, points)
            out["l1_percent"].append(100 * weights @ np.abs(diff) / n_e)
            mu = (atoms.numbers @ positions - c_ml @ self.basis_.dipole_integrals(positions, atoms.numbers)) * BOHR
            out["dipoles"].append(mu)
            out["dipole_percent"].append(100 * np.linalg.norm(mu - mu_ref) / np.linalg.norm(mu_ref))
            out["electron_error"].append(self.basis_.integrals(atoms.numbers) @ c_ml - n_e)
        return {key: np.array(value) for key, value in out.items()}

    def score(self, dataset: DensitySet) -> float:
        """Fraction of the density variation beyond the atomic baseline that the model explains (higher is better).

        scikit-learn's contract for ``score`` (a float, larger is better, so
        ``cross_val_score`` and ``GridSearchCV`` work on a DensitySet): the
        coefficient of determination in the overlap metric of the basis,
        ``1 - Σ_s δc_sᵀ S_s δc_s / Σ_s (c_s − b_s)ᵀ S_s (c_s − b_s)`` with
        ``δc`` the error of the predicted coefficients and ``b`` the species
        baseline the model starts from (the mean λ = 0 coefficients of its
        training atoms). 1 is a perfect prediction, 0 no better than the
        baseline; the quantity ``fit`` chooses ``alpha`` on. For the errors in
        percent (L1 on a grid, L2, dipoles) see :meth:`error_summary`.

        Parameters
        ----------
        dataset : DensitySet
            Structures with reference coefficients and overlaps.

        Returns
        -------
        float
        """
        self._check_dataset(dataset, "dataset")
        self._check_basis(dataset)
        residual = deviation = 0.0
        for atoms, c_ml, c_ref, overlap in zip(dataset.structures, self.predict(dataset), dataset.coefficients,
                                                dataset.overlaps):
            delta, spread = c_ml - c_ref, c_ref - self._baseline_of(atoms.numbers)
            residual += delta @ overlap @ delta
            deviation += spread @ overlap @ spread
        return float(1.0 - residual / deviation)

    def error_summary(self, dataset: DensitySet, **grid) -> dict:
        """Mean errors over the structures of ``dataset`` (see :meth:`errors`), in percent.

        Parameters
        ----------
        dataset : DensitySet
        **grid
            ``n_radial``, ``n_theta`` of the integration grid (:meth:`errors`).

        Returns
        -------
        dict of str to float
            ``l1_percent``, ``l2_percent``, ``dipole_percent``, ``max_l1_percent``,
            ``n_structures``.
        """
        errors = self.errors(dataset, **grid)
        return {"l1_percent": float(np.mean(errors["l1_percent"])),
                "l2_percent": float(np.mean(errors["l2_percent"])),
                "dipole_percent": float(np.mean(errors["dipole_percent"])),
                "max_l1_percent": float(np.max(errors["l1_percent"])),
                "n_structures": len(dataset)}

    # ----------------------------------------------------------------- helpers
    def _features(self, structures) -> dict:
        """λ-SOAP features ``{λ: (n_atoms, 2λ+1, F_λ)}`` of all atoms."""
        return {lam: np.asarray(LambdaSOAP(self.species_, self.r_cut, self.n_max, self.l_max,
                                           sigma=self.sigma, lambda_=lam).transform(structures))
                for lam in self.lambdas_}

    def _select_sparse(self, features, numbers) -> None:
        self.sparse_ = {}
        for z in self.species_:
            atoms = np.flatnonzero(numbers == z)
            n_pick = min(self.n_sparse, len(atoms))
            if n_pick < self.n_sparse:
                warn_reduced("n_sparse", self.n_sparse, n_pick, f"the training set has only {len(atoms)} atoms "
                             f"of Z={int(z)}, all of which are sparse environments", where="DensityModel",
                             stacklevel=4)
            scalar = features[0][atoms, 0, :]
            selector = FPS(n_pick) if self.selection == "fps" else CUR(n_pick)
            picks = selector.fit(scalar).selected_idx_ if n_pick < len(atoms) else np.arange(len(atoms))
            self.sparse_[z] = {lam: features[lam][atoms[picks]] for lam in self.lambdas_}
        self.projectors_ = {}
        for z in self.species_:
            for lam in self.basis_.radial_counts(z):
                xm = self.sparse_[z][lam]
                k = equivariant_kernel(xm, zeta=self.zeta, scalar_A=self._scalar(self.sparse_[z][0]))
                k = k.reshape(len(xm) * (2 * lam + 1), -1)
                values, vectors = np.linalg.eigh(k)
                keep = values > self.eigen_tolerance * values[-1]
                self.projectors_[z, lam] = vectors[:, keep] / np.sqrt(values[keep])
        # Weight layout: one block of rank(z, λ) weights per (species, λ, radial index).
        self.weight_slices_, start = {}, 0
        for z in self.species_:
            for lam, count in sorted(self.basis_.radial_counts(z).items()):
                rank = self.projectors_[z, lam].shape[1]
                for n in range(count):
                    self.weight_slices_[z, lam, n] = slice(start, start + rank)
                    start += rank
        self.n_weights_ = start

    @staticmethod
    def _scalar(lambda0):
        return lambda0[:, 0, :]

    def _nystrom(self, features, numbers) -> dict:
        """Orthogonalised kernel features ``{(z, λ): (n_atoms_z, 2λ+1, rank)}`` and atom → row maps."""
        phi = {"row": np.zeros(len(numbers), dtype=np.int64)}
        for z in self.species_:
            atoms = np.flatnonzero(numbers == z)
            phi["row"][atoms] = np.arange(len(atoms))
            scalar = self._scalar(features[0][atoms])
            for lam in self.basis_.radial_counts(z):
                k = equivariant_kernel(features[lam][atoms], self.sparse_[z][lam], zeta=self.zeta,
                                       scalar_A=scalar, scalar_B=self._scalar(self.sparse_[z][0]))
                width = 2 * lam + 1
                projected = k.reshape(len(atoms) * width, -1) @ self.projectors_[z, lam]
                phi[z, lam] = projected.reshape(len(atoms), width, -1)
        return phi

    def _rows(self, numbers, first_atom, phi):
        """``(function indices, Φ rows, weight slice)`` for every channel of one structure."""
        layout = self.basis_.layout(numbers)
        out = []
        keys = np.stack([layout["species"], layout["l"], layout["n"]], axis=1)
        for z, lam, n in np.unique(keys, axis=0):
            idx = np.flatnonzero((keys[:, 0] == z) & (keys[:, 1] == lam) & (keys[:, 2] == n))
            atoms = phi["row"][first_atom + layout["atom"][idx]]
            block = phi[int(z), int(lam)][atoms, layout["m"][idx] + lam, :]
            out.append((idx, block, self.weight_slices_[int(z), int(lam), int(n)]))
        return out

    def _baseline(self, dataset, numbers) -> None:
        """Mean λ = 0 coefficient of each (species, radial index) over the training atoms."""
        sums, counts = {}, {}
        for atoms, c in zip(dataset.structures, dataset.coefficients):
            layout = self.basis_.layout(atoms.numbers)
            for row in np.flatnonzero(layout["l"] == 0):
                key = (int(layout["species"][row]), int(layout["n"][row]))
                sums[key] = sums.get(key, 0.0) + c[row]
                counts[key] = counts.get(key, 0) + 1
        self.baseline_ = {key: sums[key] / counts[key] for key in sums}

    def _baseline_of(self, numbers) -> np.ndarray:
        layout = self.basis_.layout(numbers)
        out = np.zeros(len(layout["l"]))
        for row in np.flatnonzero(layout["l"] == 0):
            out[row] = self.baseline_[int(layout["species"][row]), int(layout["n"][row])]
        return out

    def _normal_equations(self, dataset, indices, phi, numbers, offsets):
        """``(ΨᵀSΨ, ΨᵀS y, yᵀS y)`` summed over ``indices`` (y = c − baseline)."""
        a = np.zeros((self.n_weights_, self.n_weights_))
        b = np.zeros(self.n_weights_)
        yy = 0.0
        for start in range(0, len(indices), _BATCH):
            rows, targets = [], []
            for s in indices[start:start + _BATCH]:
                atoms = dataset.structures[s]
                design = np.zeros((len(dataset.coefficients[s]), self.n_weights_))
                for idx, block, weights in self._rows(atoms.numbers, offsets[s], phi):
                    design[idx, weights] = block
                factor = _cholesky(dataset.overlaps[s], s)
                target = dataset.coefficients[s] - self._baseline_of(atoms.numbers)
                rows.append(factor.T @ design)
                targets.append(factor.T @ target)
                if self.moment_weight > 0:
                    moments = np.sqrt(self.moment_weight) * self._moments(atoms)
                    rows.append(moments @ design)
                    targets.append(moments @ target)
            rows, targets = np.vstack(rows), np.concatenate(targets)
            a += rows.T @ rows
            b += rows.T @ targets
            yy += targets @ targets
        return a, b, yy

    def _moments(self, atoms) -> np.ndarray:
        """(4, n_functions): electron count and dipole (e·Bohr, about the centre of nuclear charge) per coefficient."""
        positions = atoms.positions / BOHR
        centre = atoms.numbers @ positions / np.sum(atoms.numbers)
        return np.vstack([self.basis_.integrals(atoms.numbers),
                          self.basis_.dipole_integrals(positions - centre, atoms.numbers).T])

    # -------------------------------------------------------------- validation
    def _validate(self) -> np.ndarray:
        value = self.moment_weight
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
            raise ValueError(f"`moment_weight` must be a number >= 0; got {value!r}")
        for name in ("r_cut", "sigma", "eigen_tolerance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f"`{name}` must be a number > 0; got {value!r}")
        for name, low in (("n_max", 1), ("l_max", 0), ("zeta", 1), ("n_sparse", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"`{name}` must be an integer >= {low}; got {value!r}")
        if not (isinstance(self.validation_fraction, numbers.Real) and 0 <= self.validation_fraction < 1):
            raise ValueError(f"`validation_fraction` must be in [0, 1); got {self.validation_fraction!r}")
        if self.selection not in ("fps", "cur"):
            raise ValueError(f"`selection` must be one of 'fps', 'cur'; got {self.selection!r}")
        if not isinstance(self.renormalize, (bool, np.bool_)):
            raise TypeError(f"`renormalize` must be a bool; got {self.renormalize!r}")
        alphas = np.logspace(-10, -2, 9) if self.alphas is None else np.asarray(self.alphas, dtype=float)
        if alphas.ndim != 1 or len(alphas) == 0 or not np.all(alphas > 0):
            raise ValueError(f"`alphas` must be a non-empty sequence of numbers > 0; got {self.alphas!r}")
        return alphas

    @staticmethod
    def _check_dataset(dataset, name) -> None:
        if not isinstance(dataset, DensitySet):
            raise TypeError(f"`{name}` must be a DensitySet (see kernelpot.datasets.load_water_density); "
                            f"got {type(dataset).__name__}")
        for i, (atoms, n_e) in enumerate(zip(dataset.structures, dataset.n_electrons)):
            if n_e % 2:
                raise ValueError(f"structure {i} of `{name}` has {n_e} electrons: odd counts have no "
                                 f"closed-shell reference")
            closed_shell_electrons(atoms, i, charge=int(np.sum(atoms.numbers)) - int(n_e))

    def _check_basis(self, dataset) -> None:
        self._check_fitted()
        if dataset.basis != self.basis_:
            raise ValueError(f"`dataset` uses auxiliary basis {dataset.basis!r} but the model was "
                             f"trained on {self.basis_!r}: basis mismatch")

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise ValueError("this DensityModel is not fitted yet: call fit(dataset) first")


def _cholesky(overlap, index):
    try:
        return np.linalg.cholesky(overlap)
    except np.linalg.LinAlgError as error:
        raise ValueError(f"the overlap matrix of structure {index} is not positive definite") from error


def _validation_curve(fit_part, val_part, alphas) -> np.ndarray:
    """Validation error (% of the baseline-subtracted targets, overlap metric) for each absolute ``alpha``."""
    a_fit, b_fit, _ = fit_part
    a_val, b_val, yy_val = val_part
    values, vectors = np.linalg.eigh(a_fit)
    projected = vectors.T @ b_fit
    errors = []
    for alpha in alphas:
        w = vectors @ (projected / (values + alpha))
        errors.append(100 * np.sqrt(max(w @ a_val @ w - 2 * b_val @ w + yy_val, 0.0) / yy_val))
    return np.array(errors)
