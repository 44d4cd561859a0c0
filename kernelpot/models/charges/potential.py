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
    Gauss–Newton step that can go uphill. A backtracking line search therefore evaluates the
    exact objective (kQEq re-equilibrated at the trial α, the GAP's design rows of the pass
    times the trial weights) at step fractions 1, ½, ¼, … ≥ 1/32 and takes the first that
    lowers it; when none does, the iterations stop. The objective never increases. At the end the GAP is refitted
    given the final α (the ``v``-block of the joint optimum is exactly that conditional fit), keeping its sparse
    points and ``e0``. Energies alone cannot fix the sign of charges in neutral structures (``E_QEq`` is even in α),
    so the joint scheme too starts from reference dipoles or charges; pass a large ``charge_sigma`` on the charge
    model to use them only as a weak anchor.

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
        Joint scheme, one entry per iterate: its exact objective (``"objective"``, data part
        ``"residual"``; ``None`` when the iterate was not linearised again), the same objective as the line
        search that chose the iterate measured it (``"line_search_objective"``), the line-search trials
        ``"steps"`` as (step fraction, objective) and seconds. The objectives decrease strictly.
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
        """Fixed-charge Gauss–Newton iterations on (GAP weights, α) with a backtracking line search."""
        kqeq = self.charge_model_
        L = sla.block_diag(self.short_range_.kmm_cholesky_, kqeq.kmm_cholesky_)
        builder = DesignBuilder.from_model(self.short_range_)
        m_gap = builder.n_sparse
        dipoles, charges = kqeq._check_targets(atoms_list, dipoles, charges)
        current = np.concatenate([self.short_range_.alpha_, kqeq.alpha_])
        searched = None  # the objective of `current` as the last line search measured it
        for iteration in range(self.max_iterations + 1):
            tick = time.perf_counter()
            problem = _JointProblem(self, atoms_list, labels, dipoles, charges, builder, L, current)
            entry = {"iteration": iteration, "objective": problem.objective, "residual": problem.residual,
                     "line_search_objective": searched, "steps": [], "seconds": 0.0}
            self.history_.append(entry)
            if iteration == self.max_iterations:
                entry["seconds"] = time.perf_counter() - tick
                break
            # Backtracking: the force rows leave out the charges' response to positions, so the full
            # step can go uphill; take the longest of 1, 1/2, 1/4, ... that lowers the exact objective.
            accepted = None
            step = 1.0
            while step >= _SMALLEST_STEP:
                trial = current + step * (problem.solution - current)
                value = problem.objective_at(trial)
                entry["steps"].append((step, value))
                if value < problem.objective:
                    accepted = (trial, value)
                    break
                step *= 0.5
            entry["seconds"] = time.perf_counter() - tick
            self._say(f"joint kQEq + GAP, iterate {iteration}: objective {problem.objective:.6g} "
                      f"(data {problem.residual:.6g}); line search "
                      + ", ".join(f"{t:g}: {v:.6g}" for t, v in entry["steps"]) + f"; {entry['seconds']:.0f} s")
            if accepted is None:  # no descent along the step: `current` is as good as this method gets
                break
            current, searched = accepted
            if problem.objective - searched < self.tol * problem.objective:
                self.history_.append({"iteration": iteration + 1, "objective": searched, "residual": None,
                                      "line_search_objective": searched, "steps": [], "seconds": 0.0})
                break
        kqeq.set_alpha(current[m_gap:])
        # The GAP given the final α: the v-block of the joint optimum, with the same sparse points and e0
        # (it can only lower the objective further).
        template = clone(self.short_range).set_params(e0=dict(self.short_range_.e0_))
        template.set_params(terms=[_with_points(term, fitted) for term, fitted in
                                   zip(template.terms, self.short_range_.terms_)])
        self.short_range_ = self._fit_short_range(template, atoms_list, labels)

    def _fixed_charge_labels(self, atoms_list, labels):
        """Labels minus the α-independent QEq energy at the current charges (``½ qᵀĀq``) and its forces.

        Returns the shifted labels and, per structure, the charges, that energy and those forces.
        """
        kqeq = self.charge_model_
        energies, forces, all_charges, constants, coulomb_forces = [], [], [], [], []
        for index, atoms in enumerate(atoms_list):
            system = kqeq.qeq_system(atoms, index)
            q = system.charges(kqeq.environments(atoms).electronegativity())
            all_charges.append(q)
            constant = 0.5 * q @ (system.matrix @ q)
            constants.append(constant)
            energies.append(None if labels.energies[index] is None else labels.energies[index] - constant)
            if labels.forces[index] is None:
                forces.append(None)
                coulomb_forces.append(None)
            else:
                result = coulomb(atoms, q, widths=kqeq._per_atom(kqeq.widths_, atoms), tolerance=kqeq.tolerance,
                                 total_charge=float(system.totals.sum()), compute_stress=False)
                forces.append(labels.forces[index] - result.forces)
                coulomb_forces.append(result.forces)
        shifted = type(labels)(energies, forces, labels.virials, labels.config_types)
        return shifted, {"charges": all_charges, "energies": constants, "forces": coulomb_forces}

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


# Above this many bytes of GAP design rows the line search rebuilds them per trial instead of keeping them.
_CACHED_ROW_BYTES = 2**30
# The shortest step the line search tries (fraction of the Gauss–Newton step).
_SMALLEST_STEP = 1 / 32


class _JointProblem:
    """The joint fit linearised at fixed charges around ``current``, and its exact objective anywhere.

    Building it is one pass over the data: the GAP's design rows beside the charge-weighted kQEq rows
    (QR-accumulated; :attr:`solution` is the linearised optimum) and the exact objective of ``current``
    (at ``current`` the fixed-charge rows give the exact QEq energies and forces). :meth:`objective_at`
    evaluates the exact objective elsewhere: kQEq re-equilibrated at the trial α (one kQEq prediction
    pass) plus the GAP rows times the trial weights (kept from the pass while they fit in
    ``_CACHED_ROW_BYTES``, else rebuilt).
    """

    def __init__(self, potential, atoms_list, labels, dipoles, charges, builder, L, current):
        self.potential, self.atoms_list, self.labels, self.builder, self.L = potential, atoms_list, labels, builder, L
        kqeq = potential.charge_model_
        m_gap = builder.n_sparse
        accumulate = RowBuffer(QRAccumulator(L.T))
        shifted, extra = potential._fixed_charge_labels(atoms_list, labels)
        want = any(f is not None for f in labels.forces)
        per_atom = builder.gradient_bytes_per_atom(atoms_list)[0] if want else 0.0
        self.blocks, _ = builder.plan_blocks(atoms_list, shifted, per_atom)
        self.targets, self.sigmas, self.gap_rows = [], [], []
        cached_bytes = 0
        residual = 0.0
        for structures, _ in self.blocks:
            A_gap, b = builder.rows(atoms_list, structures, shifted)
            sigma = builder.row_sigmas(atoms_list, structures, shifted)
            A_chi = potential._charge_rows(atoms_list, structures, shifted, extra["charges"]) / sigma[:, None]
            A = np.hstack([A_gap, A_chi])
            residual += float(np.sum((b - A @ current) ** 2))
            accumulate.add(A, b)
            # the unshifted targets: add back the fixed-charge QEq energy and forces taken out of the labels
            offsets = self._rows(structures, [extra["energies"][s] for s in structures],
                                 [None if extra["forces"][s] is None else -extra["forces"][s] for s in structures])
            self.targets.append(b + offsets / sigma)
            self.sigmas.append(sigma)
            cached_bytes += A_gap.nbytes
            self.gap_rows.append(A_gap if cached_bytes <= _CACHED_ROW_BYTES else None)
        self.closed_form = []
        for index, atoms in enumerate(atoms_list):
            rows, targets = kqeq.closed_form_rows(atoms, index, None if dipoles is None else dipoles[index],
                                                  None if charges is None else charges[index])
            if len(targets):
                A = np.hstack([np.zeros((len(targets), m_gap)), rows])
                residual += float(np.sum((targets - A @ current) ** 2))
                accumulate.add(A, targets)
                self.closed_form.append((rows, targets))
        self.solution = accumulate.solve()[1]
        self.residual = residual
        self.objective = residual + float(np.sum((L.T @ current) ** 2))

    def _rows(self, structures, energies, forces):
        """Values of ``structures`` (``energies[i]``, ``forces[i]`` of ``structures[i]``) laid out as the
        design rows: energies, then forces (atom-major, x y z)."""
        labels = self.labels
        parts = [np.array([e for s, e in zip(structures, energies) if labels.energies[s] is not None], dtype=float)]
        parts += [np.asarray(f, dtype=float).ravel() for s, f in zip(structures, forces)
                  if labels.forces[s] is not None]
        return np.concatenate(parts)

    def objective_at(self, x):
        """The exact joint objective at weights ``x`` (GAP's, then kQEq's); leaves kQEq's α at ``x``."""
        kqeq = self.potential.charge_model_
        m_gap = self.builder.n_sparse
        kqeq.set_alpha(x[m_gap:])
        value = float(np.sum((self.L.T @ x) ** 2))
        for (structures, _), targets, sigma, A_gap in zip(self.blocks, self.targets, self.sigmas, self.gap_rows):
            if A_gap is None:
                A_gap = self.builder.rows(self.atoms_list, structures, self.labels)[0]
            want_forces = any(self.labels.forces[s] is not None for s in structures)
            predicted = kqeq.evaluate([self.atoms_list[s] for s in structures], forces=want_forces)
            split = np.cumsum([len(self.atoms_list[s]) for s in structures])[:-1]
            forces = np.split(-predicted["forces"], split) if want_forces else [None] * len(structures)
            qeq = self._rows(structures, predicted["energy"], forces)
            value += float(np.sum((targets - A_gap @ x[:m_gap] - qeq / sigma) ** 2))
        for rows, targets in self.closed_form:
            value += float(np.sum((targets - rows @ x[m_gap:]) ** 2))
        return value


def _with_points(term, fitted):
    """A copy of GAP term ``term`` whose sparse points are those its fit chose (``fitted.sparse_X``)."""
    clone_term = type(term)(term.descriptor, term.kernel, delta=term.delta, n_sparse=fitted.n_sparse,
                            sparse_method=term.sparse_method, sparse_points=fitted.sparse_X)
    return clone_term
