r"""Charge equilibration (QEq) of one structure: charges that minimise a quadratic energy under charge constraints.

With electronegativities :math:`\chi_i` (eV/e), hardnesses :math:`J_i` (eV/e²) and
Gaussian charges of widths :math:`\sigma_i` (Å), the QEq energy of charges ``q`` (e) is

.. math::

    E_{QEq}(q) = \sum_i \left(\chi_i q_i + \tfrac12 J_i q_i^2\right) + \tfrac12 q^\top A q
               = \chi^\top q + \tfrac12 q^\top \bar A q, \qquad \bar A = A + \operatorname{diag}(J),

with ``A`` the interaction matrix of :func:`~kernelpot.electrostatics.coulomb_matrix`
(eV/e²; off-diagonal ``k_e erf(r_ij/γ_ij)/r_ij`` summed over periodic images, diagonal the
Gaussian self-energy ``k_e/(σ_i√π)``), as in kQEq (Staacke et al., Mach. Learn.: Sci.
Technol. 3, 015032 (2022), doi:10.1088/2632-2153/ac568d) and the 4G-HDNNP. The charges
minimise it subject to linear constraints ``C q = Q``: by default one, the total charge
``Σq = atoms.info["charge"]``; optionally one per fragment (``atoms.arrays["fragment"]``,
integer labels 0..k-1, with ``atoms.info["fragment_charges"]``), which keeps separated
molecules or ions at their own net charge (plain QEq spreads fractional charge between
fragments at any distance).

The minimum is one linear solve. Writing ``P = Z (Zᵀ Ā Z)⁻¹ Zᵀ`` (``Z`` a basis of the
constraint null space), the solution is linear in χ,

.. math:: q^* = -P\chi + q_0, \qquad q_0 = \bar A^{-1} C^\top (C \bar A^{-1} C^\top)^{-1} Q,

which is what makes kQEq trainable in closed form (:meth:`QEqSystem.response` gives ``P B``).
``Ā`` need only be positive definite on the constraint null space; the solver factors
``Ā + s CᵀC`` (``s`` the largest diagonal element), which has the same minimiser and is
positive definite exactly when that holds, and raises a ``ValueError`` naming the structure
otherwise.

Forces: ``q*`` is a constrained stationary point and the constraints do not depend on the
positions, so ``dE*/dr = ∂E/∂r`` at fixed charges (Hellmann–Feynman): the forces of fixed
χ are those of :func:`~kernelpot.electrostatics.coulomb` at ``q*``, and a position-dependent
χ adds ``-Σ_i q_i ∂χ_i/∂r`` (:mod:`kernelpot.models.charges`).
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.linalg as sla

from ..utils.linalg import cholesky
from ._setup import CHARGE_TOLERANCE

__all__ = ["QEqSystem", "declared_charges"]


def _integer_charge(value, what: str, index: int, formula: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"structure {index} ({formula}): {what} must be a number (e); got {value!r}") from None
    value = float(value)
    if not np.isfinite(value) or abs(value - round(value)) > CHARGE_TOLERANCE:
        raise ValueError(f"structure {index} ({formula}): {what} = {value!r} e is not an integer multiple of e "
                         f"(within {CHARGE_TOLERANCE:g} e)")
    return float(round(value))


def declared_charges(atoms, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The charge constraints a structure declares: a group label per atom and each group's charge.

    Parameters
    ----------
    atoms : ase.Atoms
        ``info["charge"]`` (e, default 0) is the total charge. With
        ``arrays["fragment"]`` (ints 0..k-1 per atom) and ``info["fragment_charges"]``
        (k numbers, e) each fragment keeps its own net charge.
    index : int
        Position of the structure in its list (named in errors).

    Returns
    -------
    groups : ndarray of int, shape (n_atoms,)
    totals : ndarray of shape (n_groups,)
        Integer-valued charges (e).

    Raises
    ------
    ValueError
        A charge that is not an integer multiple of e within 1e-6 e, fragment labels that
        are not 0..k-1, a fragment-charge list of the wrong length, or fragment charges that
        do not add up to ``info["charge"]``.
    """
    formula = atoms.get_chemical_formula()
    total = atoms.info.get("charge", 0.0)
    total = _integer_charge(0.0 if total is None else total, 'info["charge"]', index, formula)
    n = len(atoms)
    if "fragment" not in atoms.arrays:
        if "fragment_charges" in atoms.info:
            raise ValueError(f"structure {index} ({formula}) has info['fragment_charges'] but no "
                             "arrays['fragment'] saying which atom belongs to which fragment")
        return np.zeros(n, dtype=np.int64), np.array([total])
    labels = np.asarray(atoms.arrays["fragment"])
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"structure {index} ({formula}): arrays['fragment'] must hold one integer per atom; "
                         f"got dtype {labels.dtype}, shape {labels.shape}")
    k = int(labels.max()) + 1 if n else 0
    if n and (labels.min() < 0 or len(np.unique(labels)) != k):
        raise ValueError(f"structure {index} ({formula}): fragment labels must be 0..k-1, each used; "
                         f"got {sorted(set(labels.tolist()))}")
    if "fragment_charges" not in atoms.info:
        raise ValueError(f"structure {index} ({formula}) has arrays['fragment'] but no "
                         "info['fragment_charges'] (one charge in e per fragment)")
    raw = np.atleast_1d(np.asarray(atoms.info["fragment_charges"], dtype=object))
    if raw.shape != (k,):
        raise ValueError(f"structure {index} ({formula}): info['fragment_charges'] must have {k} entries "
                         f"(one per fragment); got {raw.tolist()}")
    totals = np.array([_integer_charge(v, f"fragment {f}'s charge", index, formula) for f, v in enumerate(raw)])
    if abs(totals.sum() - total) > CHARGE_TOLERANCE and "charge" in atoms.info:
        raise ValueError(f"structure {index} ({formula}): fragment charges {totals.tolist()} sum to "
                         f"{totals.sum():g} e but info['charge'] is {total:g} e")
    return labels.astype(np.int64), totals


class QEqSystem:
    """The charge-equilibration problem of one structure, factorised once.

    Parameters
    ----------
    matrix : ndarray of shape (n_atoms, n_atoms)
        ``Ā = A + diag(J)`` in eV/e² (symmetric).
    groups : ndarray of int, shape (n_atoms,)
        Constraint group of each atom (0..k-1).
    totals : ndarray of shape (k,)
        Charge of each group, e.
    name : str
        How errors name the structure (e.g. ``"structure 3 (H2O)"``).
    species : sequence of str, optional
        Chemical symbol of each atom, for error messages.

    Raises
    ------
    ValueError
        ``Ā`` is not positive definite on the space of charges that satisfy the
        constraints (the QEq energy has no minimum): the message names the structure and
        the species with the smallest diagonal ``J_i + k_e/(σ_i√π)``.
    """

    def __init__(self, matrix, groups, totals, *, name="structure", species=None):
        matrix = np.asarray(matrix, dtype=np.float64)
        n = matrix.shape[0]
        self.n_atoms = n
        self.matrix = matrix
        self.groups = np.asarray(groups, dtype=np.int64)
        self.totals = np.asarray(totals, dtype=np.float64)
        C = np.zeros((len(self.totals), n))
        C[self.groups, np.arange(n)] = 1.0
        self.constraints = C
        # Ā + s CᵀC: same minimiser on {Cq = Q}, positive definite iff Ā is on the null space of C.
        shift = max(float(np.max(np.diag(matrix))), 1.0) if n else 1.0
        try:
            self._factor = (cholesky(matrix + shift * (C.T @ C), check_finite=True), True)
        except np.linalg.LinAlgError:
            diagonal = np.diag(matrix)
            worst = int(np.argmin(diagonal))
            who = f"atom {worst}" if species is None else f"atom {worst} ({species[worst]})"
            raise ValueError(
                f"{name}: the QEq matrix A + diag(hardness) is not positive definite on the charges allowed by "
                f"the constraints, so the QEq energy has no minimum; smallest diagonal J + k_e/(σ√π) = "
                f"{diagonal[worst]:.6g} eV/e² at {who}: increase that species' hardness") from None
        self._constraint_solve = sla.cho_solve(self._factor, C.T)          # Ā'⁻¹ Cᵀ  (n, k)
        self._schur = sla.cho_factor(C @ self._constraint_solve, lower=True)  # C Ā'⁻¹ Cᵀ
        self.base_charges = self._constraint_solve @ sla.cho_solve(self._schur, self.totals)

    def response(self, B) -> np.ndarray:
        """``P B`` for ``B`` of shape (n_atoms,) or (n_atoms, m): the charges respond as ``q = -P χ + q0``."""
        Y = sla.cho_solve(self._factor, B)
        return Y - self._constraint_solve @ sla.cho_solve(self._schur, self.constraints @ Y)

    def charges(self, electronegativity) -> np.ndarray:
        """Equilibrated charges (e), shape (n_atoms,), for electronegativities χ (eV/e)."""
        return self.base_charges - self.response(np.asarray(electronegativity, dtype=np.float64))

    def energy(self, electronegativity, charges) -> float:
        """``χᵀq + ½ qᵀĀq`` in eV."""
        return float(electronegativity @ charges + 0.5 * charges @ (self.matrix @ charges))

    def chemical_potentials(self, electronegativity, charges) -> np.ndarray:
        """``∂E/∂q_i = χ_i + (Āq)_i`` averaged per constraint group (V); equal on the group at the minimum."""
        gradient = np.asarray(electronegativity) + self.matrix @ charges
        counts = np.bincount(self.groups, minlength=len(self.totals))
        return np.bincount(self.groups, weights=gradient, minlength=len(self.totals)) / counts
