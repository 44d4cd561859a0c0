r"""kQEq + short-range GAP: ``E = E_QEq(q*) + E_GAP``, trained on energies and forces.

The potential energy is the QEq energy of the equilibrated kQEq charges
(:class:`~kernelpot.models.charges.KernelChargeEquilibration`: long-range electrostatics,
charge transfer, polarisation) plus a short-range :class:`~kernelpot.models.gap.SparseGPR`
(everything else). Forces are analytic (Hellmann–Feynman for the QEq part).

How the two are trained (``scheme``)
------------------------------------
``"sequential"``
    kQEq in closed form on reference dipoles and/or charges, then the GAP on the residual
    energies and forces (``E - E_QEq``, ``F - F_QEq``). One linear solve each; the charges
    never see the energies.

``"joint"``
    Starts from the sequential model, then minimises one objective over both the GAP
    weights ``v`` and the electronegativity weights ``α``:

    .. math::

        \sum_s \frac{(E_s - E_s^{QEq}(\alpha) - E_s^{GAP}(v))^2}{\sigma_E^2}
        + \sum \frac{(F - F^{QEq}(\alpha) - F^{GAP}(v))^2}{\sigma_F^2}
        + [\text{dipole and charge terms}] + v^\top K_{MM} v + \alpha^\top K^\chi_{MM} \alpha .

    ``E_QEq`` is quadratic in α (``-½ αᵀKᵀPKα + ...``), so the problem is nonlinear, but
    at *fixed charges* the QEq energy ``Σ_i q_i χ_i + ½ qᵀĀq`` and its Hellmann–Feynman
    forces are linear in α. Each iteration freezes the charges ``q_k = q*(α_k)``, solves
    the linear least-squares problem in ``(v, α)`` with the GAP's own design rows
    (:class:`~kernelpot.models.gap.design.DesignBuilder`) beside the charge-weighted
    kernel rows, and re-equilibrates. Because ``∂E_QEq/∂q = 0`` at the charges'
    minimum, the energy rows are the exact Jacobian ``dE*/dα = Kᵀq*``: for energies and
    dipoles/charges this is Gauss–Newton. For forces it leaves out the response of the
    charges to the positions (``dF/dα`` through ``∂q*/∂r``), so it is an approximate
    Gauss–Newton step; the objective is evaluated exactly at every iterate (the rows of
    the next iteration give the residual of the current model for free) and a step that
    increases it is halved. At the end the GAP is refitted given the final α (the
    ``v``-block of the joint optimum is exactly that conditional fit), keeping its
    sparse points and ``e0``. Energies alone cannot fix the sign of charges in
    neutral structures (``E_QEq`` is even in α), so the joint scheme too starts from
    reference dipoles or charges; pass a large ``charge_sigma`` on the charge model to
    use them only as a weak anchor.

Which is better is measured in ``benchmarks/long_range.py`` (NaCl in water; charged dimers).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.linalg as sla
from sklearn.base import BaseEstimator, clone

from ...electrostatics import coulomb
from ...structures.packing import as_atoms_list
from ...utils.estimators import reset_fitted
from ..gap.accumulators import QRAccumulator
from ..gap.design import DesignBuilder
from ..gap.labels import check_labels
from ..gap.model import SparseGPR
from .environments import RowBuffer
from .model import KernelChargeEquilibration

__all__ = ["SCHEMES", "KQEqPotential"]

logger = logging.getLogger(__name__)

SCHEMES = ("sequential", "joint")


class KQEqPotential(BaseEstimator):
    """Learned charges (kQEq) plus a short-range GAP, fitted sequentially or jointly.

    Parameters
    ----------
    charge_model : KernelChargeEquilibration
        Unfitted template (cloned in ``fit``).
    short_range : SparseGPR
        Unfitted template of the short-range GAP (cloned in ``fit``).
    scheme : {"sequential", "joint"}, default="joint"
        See the module docstring.
    max_iterations : int, default=5
        Joint scheme: the most charge updates.
    tol : float, default=1e-3
        Joint scheme: stop when the objective falls by less than this fraction.
    verbose : bool, default=False

    Attributes
    ----------
    charge_model_ : KernelChargeEquilibration
        The fitted kQEq model.
    short_range_ : SparseGPR
        The fitted GAP with ``baseline=charge_model_``: it learns ``E - E_QEq`` and predicts the whole
        potential (kQEq + GAP), so it is what :func:`~kernelpot.potential.serialization.save_model`, the
        :class:`~kernelpot.potential.calculator.GAPCalculator` and ``kernelpot evaluate``/``md`` take.
    history_ : list of dict
        Joint scheme: per iteration the objective of the iterate (``"objective"``, its
        data part ``"residual"``), the step fraction and seconds.
    """

    def __init__(self, charge_model, short_range, *, scheme="joint", max_iterations=5, tol=1e-3, verbose=False):
        self.charge_model = charge_model
        self.short_range = short_range
        self.scheme = scheme
        self.max_iterations = max_iterations
        self.tol = tol
        self.verbose = verbose

    def _say(self, message):
        logger.info(message)
        if self.verbose:
            print(message, flush=True)

    def _check_params(self):
        if not isinstance(self.charge_model, KernelChargeEquilibration):
            raise TypeError("`charge_model` must be a KernelChargeEquilibration; got "
                            f"{type(self.charge_model).__name__}")
        if not isinstance(self.short_range, SparseGPR):
            raise TypeError(f"`short_range` must be a SparseGPR; got {type(self.short_range).__name__}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"`scheme` must be one of {list(SCHEMES)}; got {self.scheme!r}")
        n = self.max_iterations
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"`max_iterations` must be an integer >= 1; got {n!r}")
        if isinstance(self.tol, bool) or not isinstance(self.tol, (int, float)) or not self.tol > 0:
            raise ValueError(f"`tol` must be a number > 0; got {self.tol!r}")

    # ------------------------------------------------------------------------ fit
    def fit(self, atoms_list, *, energies, forces=None, dipoles=None, charges=None, config_types=None):
        """Fit kQEq and the short-range GAP.

        Parameters
        ----------
        atoms_list : list of ase.Atoms
        energies : array-like of shape (n_structures,)
            Total energies, eV.
        forces : list of ndarray (n_atoms_s, 3) or ndarray (n_atoms_total, 3), optional
            eV/Å.
        dipoles : array-like of shape (n_structures, 3), optional
            Reference dipoles (e·Å), see :meth:`KernelChargeEquilibration.fit`.
        charges : list of ndarray or ndarray (n_atoms_total,), optional
            Reference charges (e). Dipoles or charges are needed to start either scheme.
        config_types : sequence of str, optional
            For the GAP's ``config_type_sigma``.

        Returns
        -------
        self
        """
        self._check_params()
        atoms_list = as_atoms_list(atoms_list)
        labels = check_labels(atoms_list, energies, forces, None, config_types)
        reset_fitted(self)
        start = time.perf_counter()
        self.charge_model_ = clone(self.charge_model).fit(atoms_list, dipoles=dipoles, charges=charges)
        self.short_range_ = self._fit_short_range(clone(self.short_range), atoms_list, labels)
        self._say(f"sequential kQEq + GAP fitted in {time.perf_counter() - start:.1f} s")
        self.history_ = []  # joint iterations (none for the sequential scheme)
        if self.scheme == "joint":
            self._fit_jointly(atoms_list, labels, dipoles, charges)
        return self

    def _fit_short_range(self, model, atoms_list, labels):
        """The GAP with the current kQEq model as its ``baseline``: fitted to the labels minus kQEq's."""
        model.set_params(baseline=self.charge_model_)
        return model.fit(atoms_list, energies=labels.energies, forces=labels.forces, config_types=labels.config_types)

    def _fit_jointly(self, atoms_list, labels, dipoles, charges):
        """Fixed-charge Gauss–Newton iterations on (GAP weights, α); see the module docstring."""
        kqeq = self.charge_model_
        gap_factor = self.short_range_.kmm_cholesky_
        L = sla.block_diag(gap_factor, kqeq.kmm_cholesky_)
        builder = DesignBuilder.from_model(self.short_range_)
        m_gap = builder.n_sparse
        dipoles, charges = kqeq._check_targets(atoms_list, dipoles, charges)
        current = np.concatenate([self.short_range_.alpha_, kqeq.alpha_])
        best = None  # (objective, iterate, the solution of its linearised problem)
        step = 1.0
        for iteration in range(self.max_iterations + 1):
            tick = time.perf_counter()
            solution, residual = self._joint_step(atoms_list, labels, dipoles, charges, builder, L, current)
            objective = residual + float(np.sum((L.T @ current) ** 2))
            self.history_.append({"iteration": iteration, "objective": objective, "residual": residual, "step": step,
                                  "seconds": time.perf_counter() - tick})
            self._say(f"joint kQEq + GAP, iterate {iteration}: objective {objective:.6g} (data {residual:.6g}), "
                      f"step {step:g}, {self.history_[-1]['seconds']:.0f} s")
            if best is not None and objective > best[0]:
                # the approximate Gauss–Newton step went uphill: try half of it, from the best iterate
                step *= 0.5
                if step < 1 / 16:
                    break
                current = best[1] + step * (best[2] - best[1])
                kqeq.set_alpha(current[m_gap:])
                continue
            converged = best is not None and best[0] - objective < self.tol * best[0]
            best = (objective, current, solution)
            if converged or iteration == self.max_iterations:
                break
            step = 1.0
            current = solution
            kqeq.set_alpha(current[m_gap:])
        kqeq.set_alpha(best[1][m_gap:])
        # The GAP given the final α: the v-block of the joint optimum, with the same sparse points and e0.
        template = clone(self.short_range).set_params(e0=dict(self.short_range_.e0_))
        template.set_params(terms=[_with_points(term, fitted) for term, fitted in
                                   zip(template.terms, self.short_range_.terms_)])
        self.short_range_ = self._fit_short_range(template, atoms_list, labels)

    def _joint_step(self, atoms_list, labels, dipoles, charges, builder, L, current):
        """Accumulate the fixed-charge linear problem; return its solution and the data misfit of ``current``."""
        kqeq = self.charge_model_
        m_gap = builder.n_sparse
        residual = 0.0
        accumulate = RowBuffer(QRAccumulator(L.T))
        shifted, extra = self._fixed_charge_labels(atoms_list, labels)
        want = any(f is not None for f in labels.forces)
        per_atom = builder.gradient_bytes_per_atom(atoms_list)[0] if want else 0.0
        blocks, _ = builder.plan_blocks(atoms_list, shifted, per_atom)
        for structures, _ in blocks:
            A_gap, b = builder.rows(atoms_list, structures, shifted)
            sigma = builder.row_sigmas(atoms_list, structures, shifted)
            A_chi = self._charge_rows(atoms_list, structures, shifted, extra["charges"]) / sigma[:, None]
            A = np.hstack([A_gap, A_chi])
            residual += float(np.sum((b - A @ current) ** 2))
            accumulate.add(A, b)
        for index, atoms in enumerate(atoms_list):
            rows, targets = kqeq.closed_form_rows(atoms, index, None if dipoles is None else dipoles[index],
                                                  None if charges is None else charges[index])
            if len(targets):
                A = np.hstack([np.zeros((len(targets), m_gap)), rows])
                residual += float(np.sum((targets - A @ current) ** 2))
                accumulate.add(A, targets)
        return accumulate.solve()[1], residual

    def _fixed_charge_labels(self, atoms_list, labels):
        """Labels minus the α-independent QEq energy at the current charges (``½ qᵀĀq``) and its forces."""
        kqeq = self.charge_model_
        energies, forces, all_charges = [], [], []
        for index, atoms in enumerate(atoms_list):
            system = kqeq.qeq_system(atoms, index)
            q = system.charges(kqeq.environments(atoms).electronegativity())
            all_charges.append(q)
            constant = 0.5 * q @ (system.matrix @ q)
            energies.append(None if labels.energies[index] is None else labels.energies[index] - constant)
            if labels.forces[index] is None:
                forces.append(None)
            else:
                result = coulomb(atoms, q, widths=kqeq._per_atom(kqeq.widths_, atoms), tolerance=kqeq.tolerance,
                                 total_charge=float(system.totals.sum()), compute_stress=False)
                forces.append(labels.forces[index] - result.forces)
        shifted = type(labels)(energies, forces, labels.virials, labels.config_types)
        return shifted, {"charges": all_charges}

    def _charge_rows(self, atoms_list, structures, labels, charges):
        """kQEq design rows at fixed charges, in the GAP rows' order: energies, then forces (dE/dr)."""
        energy_rows, force_rows = [], []
        for s in structures:
            has_f = labels.forces[s] is not None
            environments = self.charge_model_.environments(atoms_list[s], gradients=has_f)
            e, f, _ = environments.weighted_design(charges[s], forces=has_f)
            if labels.energies[s] is not None:
                energy_rows.append(e[None, :])
            if has_f:
                force_rows.append(f)
        return np.vstack(energy_rows + force_rows)

    # -------------------------------------------------------------------- predict
    def _check_fitted(self):
        if not hasattr(self, "short_range_"):
            raise ValueError("this KQEqPotential is not fitted yet; call fit first")

    def predict(self, atoms_list, *, properties=("energy",)):
        """Energies and, on request, forces, virials, stress, charges and dipoles of kQEq + GAP.

        Returns
        -------
        dict
            As :meth:`SparseGPR.predict` for ``"energy"``, ``"forces"``, ``"virial"``,
            ``"stress"``, ``"local_energy"`` (kQEq + GAP), plus ``"charges"`` (e), ``"dipole"``
            (e·Å) and ``"electronegativity"`` (eV/e) of the kQEq model when asked for.
        """
        self._check_fitted()
        properties = (properties,) if isinstance(properties, str) else tuple(properties)
        atoms_list = as_atoms_list(atoms_list)
        own = ("charges", "dipole", "electronegativity")
        wanted = tuple(p for p in properties if p in own)
        out = {}
        if len(wanted) < len(properties) or not wanted:
            out = self.short_range_.predict(atoms_list, properties=tuple(p for p in properties if p not in own))
        if wanted:
            out.update(self.charge_model_.predict(atoms_list, properties=wanted))
        return out

    def score(self, atoms_list, energies) -> float:
        """Coefficient of determination R² of the energies."""
        from sklearn.metrics import r2_score

        return float(r2_score(np.asarray(energies, dtype=float), self.predict(atoms_list)["energy"]))


def _with_points(term, fitted):
    """A copy of GAP term ``term`` whose sparse points are those its fit chose (``fitted.sparse_X``)."""
    clone_term = type(term)(term.descriptor, term.kernel, delta=term.delta, n_sparse=fitted.n_sparse,
                            sparse_method=term.sparse_method, sparse_points=fitted.sparse_X)
    return clone_term
