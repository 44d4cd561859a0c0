r"""Kernel charge equilibration (kQEq): charges from learned, environment-dependent electronegativities.

Model
-----
Each atom gets an electronegativity from a sparse kernel model of its environment
(:mod:`kernelpot.models.charges.environments`; per-species sparse points, any per-atom
descriptor such as SOAP),

.. math:: \chi_i = \sum_{m} \alpha_m\, \delta_{Z_i}^2\, k(x_i, x_m),

and the charges minimise the QEq energy (:mod:`kernelpot.electrostatics.equilibration`)

.. math:: E_{QEq} = \sum_i \left(\chi_i q_i + \tfrac12 J_i q_i^2\right) + \tfrac12 q^\top A q,
          \qquad \sum_i q_i = Q,

with per-species hardness ``J`` (eV/e²) and Gaussian charges of per-species width σ (Å)
in ``A`` (open boundaries or Ewald; Staacke, Wengert, Künkel, Csányi, Reuter, Margraf,
Mach. Learn.: Sci. Technol. 3, 015032 (2022), doi:10.1088/2632-2153/ac568d). ``Q`` is
``atoms.info["charge"]`` (default 0, an integer multiple of e), or one net charge per
fragment (``arrays["fragment"]`` + ``info["fragment_charges"]``).

Training in closed form
-----------------------
The charges are linear in χ and χ is linear in α: ``q = -P K α + q0`` per structure
(``K`` the kernel rows, ``P`` the constrained inverse of the QEq matrix). Dipoles
``μ = Σ q_i (r_i - r_0)`` and charges are therefore linear in α, and the fit is the
projected-process least squares of GAP,

.. math:: \min_\alpha \sum_s \frac{\lVert \mu_s - \mu_s(\alpha)\rVert^2}{\sigma_\mu^2}
          + \sum_i \frac{(q_i - q_i(\alpha))^2}{\sigma_q^2} + \alpha^\top K_{MM}\alpha,

solved by QR as in :class:`~kernelpot.models.gap.SparseGPR`. Training jointly with a
short-range GAP on energies and forces: :class:`~kernelpot.models.charges.KQEqPotential`.

Dipoles of ions
---------------
``μ = Σ q_i (r_i - r_0)`` depends on the origin ``r_0`` when ``Q ≠ 0``. kernelpot takes
``r_0`` = the centre of mass for every structure (the same number as any origin when
``Q = 0``), so predicted dipoles of ions rotate with the molecule and do not depend on where
it sits (the convention of the TENSOAP Zundel data, whose cations sit at their centre of
mass). Dipoles of periodic cells depend on how atoms are wrapped and are refused.

Energies, forces, stress
------------------------
The predicted energy is the QEq energy at the equilibrated charges. Because the charges
minimise it under position-independent constraints, its gradient is the partial gradient
at fixed charges (Hellmann–Feynman):

.. math:: F = -\sum_i q_i \frac{\partial \chi_i}{\partial r} - \frac{\partial}{\partial r}
          \left(\tfrac12 q^\top A q\right)\Big|_q ,

the first term through the descriptor gradients (like GAP forces, each atom weighted by
its charge), the second the Coulomb forces of :func:`~kernelpot.electrostatics.coulomb` at
``q``. The virial (periodic cells: stress) is the same at fixed charges under strain.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
from ase.data import atomic_numbers, chemical_symbols, covalent_radii
from sklearn.base import BaseEstimator

from ...descriptors.centre_species import CentreSpecies
from ...electrostatics import coulomb, coulomb_matrix
from ...electrostatics.equilibration import QEqSystem, declared_charges
from ...electrostatics.result import COULOMB_CONSTANT
from ...kernels import GaussianCovariance, NormalizedDotProductCovariance
from ...structures.packing import as_atoms_list
from ...utils.description import check_description
from ...utils.estimators import reset_fitted
from ..gap.accumulators import QRAccumulator
from ..gap.sparse import select_sparse
from ..gap.terms import VIRIAL_COMPONENTS, FittedTerm, factor_kmm, row_weights
from .environments import RowBuffer, StructureEnvironments

__all__ = ["PROPERTIES", "KernelChargeEquilibration"]

#: What :meth:`KernelChargeEquilibration.predict` can return.
PROPERTIES = ("charges", "dipole", "electronegativity", "energy", "forces", "virial", "stress", "local_energy")
_SPARSE_METHODS = ("cur", "fps", "random")
# Constructor parameters a model file keeps (the descriptor and kernel are described separately).
_SAVED_PARAMETERS = ("n_sparse", "sparse_method", "delta", "hardness", "widths", "dipole_sigma", "charge_sigma",
                     "jitter", "tolerance", "random_state")


def _species_table(value, species, name, unit, default):
    """``{Z: float}`` for ``species`` from None (``default(Z)``), one number, or a ``{symbol or Z: value}`` dict."""
    if value is None:
        if default is None:
            raise ValueError(f"`{name}` must be given ({unit})")
        return {int(z): float(default(z)) for z in species}
    if isinstance(value, dict):
        table = {}
        for key, item in value.items():
            z = (int(key) if key.isdigit() else atomic_numbers.get(key)) if isinstance(key, str) else key
            if isinstance(z, bool) or not isinstance(z, numbers.Integral) or not 0 < z < len(chemical_symbols):
                raise ValueError(f"`{name}` has an unknown species {key!r}")
            table[int(z)] = item
        missing = [chemical_symbols[z] for z in species if z not in table]
        if missing:
            raise ValueError(f"`{name}` gives no value ({unit}) for species {missing}")
    else:
        table = {int(z): value for z in species}
    out = {}
    for z in species:
        item = table[int(z)]
        if isinstance(item, bool) or not isinstance(item, numbers.Real) or not np.isfinite(item):
            raise ValueError(f"`{name}` of {chemical_symbols[z]} must be a finite number ({unit}); got {item!r}")
        out[int(z)] = float(item)
    return out


def _positive(value, name, unit):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a finite number > 0 ({unit}); got {value!r}")
    return float(value)


def _plain(value):
    """A parameter as JSON keeps it: dicts keyed by str, a random Generator as None (it is not stored)."""
    if isinstance(value, dict):
        return {str(key): item for key, item in value.items()}
    if isinstance(value, np.random.Generator):
        return None
    return value


def dipole_origin(atoms):
    """The reference point of dipoles (Å): the centre of mass (see the module docstring)."""
    return atoms.get_center_of_mass()


class KernelChargeEquilibration(BaseEstimator):
    """kQEq: charges, dipoles, QEq energies and forces from learned electronegativities.

    Parameters
    ----------
    descriptor : Descriptor
        Per-atom descriptor with one row per atom (e.g. :class:`~kernelpot.descriptors.SOAP`,
        ``periodic`` as the data); its ``species`` must cover the structures.
    kernel : GaussianCovariance or NormalizedDotProductCovariance, optional
        Covariance between environments; default ``NormalizedDotProductCovariance(zeta=2)``.
    n_sparse : int or dict, default=100
        Sparse environments per species (``{symbol or Z: int}`` for different numbers).
    sparse_method : {"cur", "fps", "random"}, default="cur"
    delta : float or dict, default=1.0
        Prior standard deviation of χ (eV/e), one number or per species.
    hardness : None, float or dict, default=None
        ``J`` of each species (eV/e²) added to the Gaussian self-energy ``k_e/(σ√π)`` on the
        diagonal of the QEq matrix. None: 0 for every species (the self-energy alone, as in
        kQEq). Negative values are allowed while ``J + k_e/(σ√π) > 0`` (checked in ``fit``, the
        error names the species and value) and the matrix of every structure is positive
        definite on the allowed charges (checked per structure, the error names it).
    widths : None, float or dict, default=None
        Gaussian charge widths σ (Å, > 0) per species; None: ASE's covalent radii.
    dipole_sigma : float, default=0.01
        Noise (regularisation) of each dipole component, e·Å.
    charge_sigma : float, default=0.01
        Noise of each reference charge, e.
    jitter : float, default=1e-8
        Added to the diagonal of ``K_MM`` relative to ``delta²``.
    tolerance : float, default=1e-6
        Ewald accuracy of periodic QEq matrices and forces (see
        :func:`~kernelpot.electrostatics.coulomb`).
    random_state : int, Generator or None, default=None
        Seeds sparse selection ("fps" start, "random").

    Attributes
    ----------
    species_ : ndarray of int
        Species of the training structures (the model refuses others).
    terms_ : list of FittedTerm
        One per species of ``species_``: sparse points and ``alpha`` (units 1/eV·e).
    alpha_ : ndarray of shape (n_sparse_total,)
        All coefficients, species side by side.
    hardness_, widths_ : dict
        ``{Z: J in eV/e²}``, ``{Z: σ in Å}`` used.
    kernel_ : covariance
        The kernel used (``kernel`` or the default).
    kmm_cholesky_ : ndarray of shape (n_sparse_total, n_sparse_total)
        Lower Cholesky factor of ``K_MM`` + jitter.
    posterior_factor_ : ndarray of shape (n_sparse_total, n_sparse_total)
        Upper ``R`` with ``RᵀR = K_MM + ΦᵀΣ⁻¹Φ`` of the last closed-form fit.

    Examples
    --------
    >>> from kernelpot.descriptors import SOAP
    >>> soap = SOAP(species=["H", "O"], r_cut=4.0, n_max=4, l_max=3, sigma=0.4)
    >>> model = KernelChargeEquilibration(soap, n_sparse=50)          # doctest: +SKIP
    >>> model.fit(molecules, dipoles=dipoles)                          # doctest: +SKIP
    >>> model.predict(molecules, properties=("charges", "dipole"))     # doctest: +SKIP
    """

    def __init__(self, descriptor, *, kernel=None, n_sparse=100, sparse_method="cur", delta=1.0, hardness=None,
                 widths=None, dipole_sigma=0.01, charge_sigma=0.01, jitter=1e-8, tolerance=1e-6, random_state=None):
        self.descriptor = descriptor
        self.kernel = kernel
        self.n_sparse = n_sparse
        self.sparse_method = sparse_method
        self.delta = delta
        self.hardness = hardness
        self.widths = widths
        self.dipole_sigma = dipole_sigma
        self.charge_sigma = charge_sigma
        self.jitter = jitter
        self.tolerance = tolerance
        self.random_state = random_state

    # ------------------------------------------------------------------ parameters
    def _resolved_parameters(self, species):
        """Validated per-species tables for ``species`` (atomic numbers)."""
        if not callable(getattr(self.descriptor, "transform", None)):
            raise TypeError(f"`descriptor` must have a transform method; got {self.descriptor!r}")
        kernel = NormalizedDotProductCovariance(zeta=2) if self.kernel is None else self.kernel
        if not isinstance(kernel, (GaussianCovariance, NormalizedDotProductCovariance)):
            raise TypeError(f"`kernel` must be GaussianCovariance or NormalizedDotProductCovariance; got {kernel!r}")
        if self.sparse_method not in _SPARSE_METHODS:
            raise ValueError(f"`sparse_method` must be one of {list(_SPARSE_METHODS)}; got {self.sparse_method!r}")
        n_sparse = _species_table(self.n_sparse, species, "n_sparse", "a count", None)
        bad = {chemical_symbols[z]: n for z, n in n_sparse.items() if n < 1 or n != int(n)}
        if bad:
            raise ValueError(f"`n_sparse` must be integers >= 1; got {bad}")
        delta = _species_table(self.delta, species, "delta", "eV/e", None)
        bad = {chemical_symbols[z]: d for z, d in delta.items() if not d > 0}
        if bad:
            raise ValueError(f"`delta` must be > 0 eV/e; got {bad}")
        widths = _species_table(self.widths, species, "widths", "Å", lambda z: covalent_radii[z])
        bad = {chemical_symbols[z]: s for z, s in widths.items() if not s > 0}
        if bad:
            raise ValueError(f"`widths` must be > 0 Å; got {bad}")
        hardness = _species_table(self.hardness, species, "hardness", "eV/e²", lambda z: 0.0)
        for z, J in hardness.items():
            diagonal = J + COULOMB_CONSTANT / (widths[z] * np.sqrt(np.pi))
            if not diagonal > 0:
                raise ValueError(
                    f"`hardness` of {chemical_symbols[z]} is {J!r} eV/e²: with its Gaussian self-energy "
                    f"k_e/(σ√π) = {diagonal - J:.6g} eV/e² (σ = {widths[z]} Å) the QEq matrix has a diagonal of "
                    f"{diagonal:.6g} <= 0, so it is not positive definite; use a hardness > {J - diagonal:.6g}")
        for name, unit in (("dipole_sigma", "e·Å"), ("charge_sigma", "e"), ("tolerance", "relative")):
            _positive(getattr(self, name), name, unit)
        if isinstance(self.jitter, bool) or not isinstance(self.jitter, numbers.Real) or not self.jitter >= 0:
            raise ValueError(f"`jitter` must be a number >= 0; got {self.jitter!r}")
        return kernel, n_sparse, delta, hardness, widths

    # --------------------------------------------------------------------- checks
    def _check_fitted(self):
        if not hasattr(self, "alpha_"):
            raise ValueError("this KernelChargeEquilibration is not fitted yet; call fit first")

    def check(self, atoms_list):
        """Raise a ``ValueError`` naming the first structure the model cannot handle (species, charges)."""
        self._check_fitted()
        for index, atoms in enumerate(as_atoms_list(atoms_list)):
            self._check_structure(atoms, index)

    def _check_structure(self, atoms, index):
        unknown = sorted(set(atoms.get_chemical_symbols()) - {chemical_symbols[z] for z in self.species_})
        if unknown:
            raise ValueError(f"species {unknown} in structure {index} ({atoms.get_chemical_formula()}) are not in "
                             f"the kQEq model's species {[chemical_symbols[z] for z in self.species_]}")
        if atoms.pbc.any() and not atoms.pbc.all():
            raise ValueError(f"structure {index} is periodic in some directions only (pbc={atoms.pbc.tolist()}); "
                             "kQEq needs a cell periodic in all three or in none")
        return declared_charges(atoms, index)

    # ---------------------------------------------------------------- per structure
    def _per_atom(self, table, atoms):
        return np.array([table[int(z)] for z in atoms.numbers])

    def qeq_system(self, atoms, index=0) -> QEqSystem:
        """The factorised QEq problem of one structure (after checking it)."""
        groups, totals = self._check_structure(atoms, index)
        widths = self._per_atom(self.widths_, atoms)
        matrix = coulomb_matrix(atoms, widths=widths, tolerance=self.tolerance) if len(atoms) else np.zeros((0, 0))
        matrix[np.diag_indices_from(matrix)] += self._per_atom(self.hardness_, atoms)
        return QEqSystem(matrix, groups, totals, name=f"structure {index} ({atoms.get_chemical_formula()})",
                         species=atoms.get_chemical_symbols())

    def environments(self, atoms, gradients=False) -> StructureEnvironments:
        """Descriptor rows of one structure split by species (kernel rows, χ, its derivatives)."""
        return StructureEnvironments(self.terms_, self.species_, atoms, gradients)

    def _dipole_arm(self, atoms, index):
        if atoms.pbc.any():
            raise ValueError(f"structure {index} is periodic: its dipole depends on how the atoms are wrapped "
                             "into the cell, so kQEq neither predicts nor fits dipoles of periodic cells")
        return atoms.positions - dipole_origin(atoms)

    # ------------------------------------------------------------------------ fit
    def fit(self, atoms_list, *, dipoles=None, charges=None):
        """Choose sparse environments and solve for α in closed form on dipoles and/or charges.

        Parameters
        ----------
        atoms_list : ase.Atoms or list of ase.Atoms
            Training structures (Å); ``info["charge"]`` their net charge (default 0).
        dipoles : array-like of shape (n_structures, 3), optional
            Reference dipoles in e·Å about the centre of mass (module docstring); rows of
            NaN are not observed. Open boundaries only.
        charges : list of array-like of shape (n_atoms_s,) or ndarray (n_atoms_total,), optional
            Reference charges in e; an entry None is not observed.

        Returns
        -------
        self
        """
        atoms_list = as_atoms_list(atoms_list)
        if dipoles is None and charges is None:
            raise ValueError("give reference `dipoles` and/or `charges` to fit kQEq in closed form (training on "
                             "energies and forces with a short-range GAP: KQEqPotential)")
        species = np.array(sorted({int(z) for a in atoms_list for z in a.numbers}), dtype=np.int64)
        kernel, n_sparse, delta, hardness, widths = self._resolved_parameters(species)
        dipoles, charges = self._check_targets(atoms_list, dipoles, charges)
        reset_fitted(self)
        self.species_, self.hardness_, self.widths_, self.kernel_ = species, hardness, widths, kernel
        rng = np.random.default_rng(self.random_state)
        self.terms_ = self._choose_sparse(atoms_list, kernel, n_sparse, delta, rng)
        L = factor_kmm(self.terms_, self.jitter, keep_kmm=False)[1]
        accumulate = RowBuffer(QRAccumulator(L.T))
        for index, atoms in enumerate(atoms_list):
            rows, targets = self.closed_form_rows(atoms, index, None if dipoles is None else dipoles[index],
                                                  None if charges is None else charges[index])
            accumulate.add(rows, targets)
        self.posterior_factor_, alpha = accumulate.solve()
        self.kmm_cholesky_ = L
        self.set_alpha(alpha)
        return self

    def _check_targets(self, atoms_list, dipoles, charges):
        n = len(atoms_list)
        if dipoles is not None:
            dipoles = np.asarray(dipoles, dtype=np.float64)
            if dipoles.shape != (n, 3):
                raise ValueError(f"`dipoles` must have shape ({n}, 3) (e·Å); got {dipoles.shape}")
        if charges is not None:
            if isinstance(charges, np.ndarray) and charges.ndim == 1:
                offsets = np.cumsum([0] + [len(a) for a in atoms_list])
                if len(charges) != offsets[-1]:
                    raise ValueError(f"`charges` has {len(charges)} entries for {offsets[-1]} atoms")
                charges = [charges[offsets[s]:offsets[s + 1]] for s in range(n)]
            if len(charges) != n:
                raise ValueError(f"`charges` must have one entry per structure ({n}); got {len(charges)}")
            charges = [None if c is None else np.asarray(c, dtype=np.float64) for c in charges]
            for s, (c, atoms) in enumerate(zip(charges, atoms_list)):
                if c is not None and (c.shape != (len(atoms),) or not np.all(np.isfinite(c))):
                    raise ValueError(f"`charges[{s}]` must be {len(atoms)} finite numbers (e); got shape {c.shape}")
        return dipoles, charges

    def closed_form_rows(self, atoms, index, dipole=None, charges=None):
        """Whitened rows (n_obs, M) and targets (n_obs,) of one structure's dipole and/or charges."""
        system = self.qeq_system(atoms, index)
        K = self.environments(atoms).kernel_rows()
        rows, targets = [], []
        if dipole is not None and np.all(np.isfinite(dipole)):
            arm = self._dipole_arm(atoms, index)
            rows.append(-(system.response(arm).T @ K) / self.dipole_sigma)
            targets.append((dipole - arm.T @ system.base_charges) / self.dipole_sigma)
        if charges is not None:
            rows.append(-system.response(K) / self.charge_sigma)
            targets.append((charges - system.base_charges) / self.charge_sigma)
        if not rows:
            return np.zeros((0, K.shape[1])), np.zeros(0)
        return np.vstack(rows), np.concatenate(targets)

    def _choose_sparse(self, atoms_list, kernel, n_sparse, delta, rng):
        """One FittedTerm per species with sparse points chosen among its training environments."""
        X = self.descriptor.transform(atoms_list)
        numbers = np.asarray(X.numbers)
        terms = []
        for z in self.species_:
            rows = np.asarray(X)[numbers == z]
            Z = select_sparse(rows, int(n_sparse[int(z)]), self.sparse_method, rng)
            descriptor = CentreSpecies(copy.deepcopy(self.descriptor), int(z))
            terms.append(FittedTerm(descriptor, copy.deepcopy(kernel), delta[int(z)], Z, row_weights(descriptor, Z)[0]))
        return terms

    def set_alpha(self, alpha):
        """Install coefficients (n_sparse_total,) into the terms (used by the fits)."""
        alpha = np.asarray(alpha, dtype=np.float64)
        self.alpha_ = alpha
        start = 0
        for term in self.terms_:
            term.alpha = alpha[start:start + term.n_sparse]
            start += term.n_sparse

    @property
    def n_sparse_total(self) -> int:
        """All sparse environments (the length of ``alpha_``)."""
        return sum(t.n_sparse for t in self.terms_)

    # -------------------------------------------------------------------- predict
    def predict(self, atoms_list, *, properties=("charges",)):
        """Charges and, on request, dipoles, electronegativities, QEq energies, forces and stress.

        Parameters
        ----------
        atoms_list : ase.Atoms or list of ase.Atoms
        properties : sequence of str, default=("charges",)
            Among :data:`PROPERTIES`.

        Returns
        -------
        dict
            ``"charges"`` (n_atoms_total,) e; ``"dipole"`` (n_structures, 3) e·Å about the
            centre of mass; ``"electronegativity"`` (n_atoms_total,) eV/e; ``"energy"``
            (n_structures,) eV, the QEq energy at the equilibrated charges; ``"forces"``
            (n_atoms_total, 3) eV/Å; ``"virial"`` (n_structures, 3, 3) eV (open boundaries:
            the pair virial); ``"stress"`` (n_structures, 6) eV/Å³, Voigt, ASE sign
            (periodic cells only); ``"local_energy"`` (n_atoms_total,) eV,
            ``χ_i q_i + ½J_i q_i² + ½q_i(Aq)_i``, summing to the energy.
        """
        self._check_fitted()
        properties = (properties,) if isinstance(properties, str) else tuple(properties)
        unknown = [p for p in properties if p not in PROPERTIES]
        if unknown:
            raise ValueError(f"`properties` must be among {list(PROPERTIES)}; got {unknown}")
        atoms_list = as_atoms_list(atoms_list)
        if "stress" in properties:
            for index, atoms in enumerate(atoms_list):
                if not atoms.pbc.all():
                    raise ValueError(f"stress needs a periodic cell; structure {index} has pbc={atoms.pbc.tolist()}")
        results = [self._predict_structure(atoms, index, properties) for index, atoms in enumerate(atoms_list)]
        out = {}
        for key in properties:
            values = [r[key] for r in results]
            out[key] = np.concatenate(values) if key in ("charges", "electronegativity", "forces",
                                                         "local_energy") else np.array(values)
        return out

    def _predict_structure(self, atoms, index, properties):
        want_gradient = any(p in properties for p in ("forces", "virial", "stress"))
        want_virial = "virial" in properties or "stress" in properties
        system = self.qeq_system(atoms, index)
        environments = self.environments(atoms, gradients=want_gradient)
        chi = environments.electronegativity()
        q = system.charges(chi)
        out = {"charges": q, "electronegativity": chi}
        if "dipole" in properties:
            out["dipole"] = self._dipole_arm(atoms, index).T @ q
        if "energy" in properties:
            out["energy"] = system.energy(chi, q)
        if "local_energy" in properties:
            out["local_energy"] = q * (chi + 0.5 * system.matrix @ q)
        if want_gradient:
            result = coulomb(atoms, q, widths=self._per_atom(self.widths_, atoms), tolerance=self.tolerance,
                             total_charge=float(system.totals.sum()), compute_forces=True,
                             compute_stress=want_virial)
            dE_dr, virial = environments.weighted_gradient(q, virial=want_virial)
            out["forces"] = result.forces - dE_dr
            if want_virial:
                virial = virial + result.virial
                out["virial"] = 0.5 * (virial + virial.T)
                if "stress" in properties:
                    stress = -out["virial"] / atoms.get_volume()
                    out["stress"] = np.array([stress[a, b] for a, b in VIRIAL_COMPONENTS])
        return out

    def score(self, atoms_list, dipoles=None, *, charges=None) -> float:
        """Coefficient of determination R² of the predicted dipole components (or charges)."""
        from sklearn.metrics import r2_score

        if (dipoles is None) == (charges is None):
            raise ValueError("score needs exactly one of `dipoles` (e·Å) and `charges` (e)")
        key = "dipole" if dipoles is not None else "charges"
        predicted = self.predict(atoms_list, properties=(key,))[key]
        reference = np.asarray(dipoles if dipoles is not None else np.concatenate(
            [np.asarray(c, dtype=float) for c in charges]), dtype=np.float64)
        return float(r2_score(reference.ravel(), predicted.ravel()))

    # ------------------------------------------------------------------ model files
    def to_dict(self) -> dict:
        """JSON description of the fitted model except the descriptor, kernel and arrays (see :meth:`arrays`).

        The ``.kpot`` writer (:func:`kernelpot.potential.serialization.save_model`) adds the descriptor and
        kernel descriptions and stores :meth:`arrays`; :meth:`from_dict` rebuilds the model from all three.
        """
        self._check_fitted()
        return {"kind": "kqeq", "version": 1, "species": [int(z) for z in self.species_],
                "hardness": {str(z): v for z, v in self.hardness_.items()},
                "widths": {str(z): v for z, v in self.widths_.items()},
                "delta": [float(t.delta) for t in self.terms_],
                "parameters": {name: _plain(getattr(self, name)) for name in _SAVED_PARAMETERS}}

    def arrays(self) -> dict:
        """The learned arrays: per species ``term<i>_sparse_X``, ``term<i>_sparse_weight``, ``term<i>_alpha``."""
        self._check_fitted()
        out = {}
        for index, term in enumerate(self.terms_):
            out[f"term{index}_sparse_X"] = term.sparse_X
            out[f"term{index}_sparse_weight"] = term.sparse_weight
            out[f"term{index}_alpha"] = term.alpha
        return out

    @classmethod
    def from_dict(cls, spec, arrays, *, descriptor, kernel):
        """A fitted model from :meth:`to_dict`, :meth:`arrays` and the rebuilt descriptor and kernel.

        Raises
        ------
        ValueError
            A description of another kind or a newer version, or arrays whose sizes do not fit
            together (number of species, features, sparse points).
        """
        check_description(spec, "kqeq", "kQEq")
        species = [int(z) for z in spec["species"]]
        parameters = dict(spec["parameters"])
        model = cls(descriptor, kernel=kernel, **parameters)
        model.species_ = np.array(species, dtype=np.int64)
        model.kernel_ = kernel
        model.hardness_ = {int(z): float(v) for z, v in spec["hardness"].items()}
        model.widths_ = {int(z): float(v) for z, v in spec["widths"].items()}
        deltas = spec["delta"]
        if len(deltas) != len(species) or set(model.hardness_) != set(species) or set(model.widths_) != set(species):
            raise ValueError(f"kQEq description: {len(species)} species but {len(deltas)} deltas, hardness for "
                             f"{sorted(model.hardness_)}, widths for {sorted(model.widths_)}")
        terms, n_features = [], None
        for index, z in enumerate(species):
            try:
                X = np.asarray(arrays[f"term{index}_sparse_X"], dtype=np.float64)
                weight = np.asarray(arrays[f"term{index}_sparse_weight"], dtype=np.float64)
                alpha = np.asarray(arrays[f"term{index}_alpha"], dtype=np.float64)
            except KeyError as missing:
                raise ValueError(f"kQEq arrays: {missing} is missing") from None
            n_features = X.shape[1] if n_features is None and X.ndim == 2 else n_features
            if X.ndim != 2 or X.shape[1] != n_features or weight.shape != (len(X),) or alpha.shape != (len(X),):
                raise ValueError(f"kQEq arrays of species {chemical_symbols[z]}: sparse points {X.shape}, weights "
                                 f"{weight.shape} and coefficients {alpha.shape} do not fit together "
                                 f"({n_features} features)")
            terms.append(FittedTerm(CentreSpecies(copy.deepcopy(descriptor), z), copy.deepcopy(kernel),
                                    float(deltas[index]), X, weight, alpha))
        model.terms_ = terms
        model.alpha_ = np.concatenate([t.alpha for t in terms])
        return model

    # ------------------------------------------------------------- baseline protocol
    def evaluate(self, atoms_list, *, forces=True, virial=False, local_energy=False):
        """QEq energies and derivatives in the form a :class:`~kernelpot.models.gap.SparseGPR` ``baseline`` gives.

        Returns
        -------
        dict
            ``"energy"`` (n_structures,) eV and, on request, ``"forces"`` (n_atoms_total, 3)
            eV/Å, ``"virial"`` (n_structures, 3, 3) eV, ``"local_energy"`` (n_atoms_total,) eV.
        """
        properties = ["energy"] + ["forces"] * forces + ["virial"] * virial + ["local_energy"] * local_energy
        return self.predict(atoms_list, properties=tuple(properties))
