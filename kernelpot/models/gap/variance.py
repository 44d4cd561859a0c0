"""Predictive variances of GAP (sparse GPR) energies, local energies, forces and virials.

Every prediction of a GAP model is a linear functional ``T`` of the latent
local-energy function ``ε ~ GP(0, c)``, with
``c(x, x') = δ² w(x) w(x') k(x, x')``: a sum over rows (energies), a sum
of descriptor-gradient contractions (forces, virials). With ``k_*`` the
covariance of ``T ε`` with the sparse points (the *same* numbers as a
design row of the fit), the projected-process (DTC) latent variance is
(Quiñonero-Candela & Rasmussen, JMLR 6, 1939 (2005), eq. 20b)

.. math::

    \\sigma^2_* = T T' c \\;-\\; k_*^\\top K_{MM}^{-1} k_*
    \\;+\\; k_*^\\top (K_{MM} + K_{MN}\\Sigma^{-1}K_{NM})^{-1} k_*,

evaluated as ``prior - |L^{-1} k_*|^2 + |R^{-T} k_*|^2`` with the two
triangular factors kept by the fit. ``"sor"`` (subset of regressors) keeps
only the last term; it shrinks to zero far from the data and is given for
comparison. ``"fitc"`` uses the same formula with the factor of a
FITC-style refit (:func:`fitc_factor`).

The prior term ``T T' c`` of a force (or virial) component needs the mixed
second derivative of the covariance. For items ``i`` (a descriptor row
``x_i`` and a feature-space vector ``u_i``, e.g. ``dX_row/dr_{j,a}``) it is
``δ² Σ_ij u_i^T ∂_x ∂_z^T [w(x) w(z) k(x, z)] u_j`` at ``x = x_i, z = x_j``,
written out analytically by each covariance
(``second_derivative_pieces`` of :mod:`kernelpot.kernels.covariance`).

Only dot products of the item vectors with each other and with the rows
are needed, so each group (one atom's force, one structure's virial) costs
two small matrix products.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ...structures.packing import as_atoms_list, atom_budget_groups
from .accumulators import QRAccumulator
from .design import DesignBuilder
from .labels import check_labels
from .terms import VIRIAL_COMPONENTS, row_weights, rows_to_atoms

__all__ = [
    "VARIANCES",
    "StdRequest",
    "dtc_variance",
    "fitc_factor",
    "group_gradient_prior",
    "std_outputs",
    "term_std_inputs",
]

#: Predictive variance approximations understood by ``SparseGPR.predict``.
VARIANCES = ("dtc", "sor", "fitc")


class StdRequest:
    """Which standard deviations a prediction needs (energy is always there)."""

    def __init__(self, forces=False, virial=False, local=False):
        self.forces, self.virial, self.local = forces, virial, local


def group_gradient_prior(term, X, U, item_rows, order, offsets):
    """Prior variance of gradient functionals, one value per group and component.

    Parameters
    ----------
    term : FittedTerm
    X : ndarray of shape (n_rows, n_features)
        Descriptor rows.
    U : ndarray of shape (n_items_total, n_components, n_features)
        Feature-space vector of every item and component.
    item_rows : ndarray of shape (n_items_total,)
        Descriptor row of every item.
    order, offsets : ndarray
        Group ``g`` holds items ``order[offsets[g]:offsets[g + 1]]``.

    Returns
    -------
    ndarray of shape (n_groups, n_components)
        ``δ² Σ_ij u_i^T ∂_x∂_z^T [w w' k] u_j`` in (eV/Å)² for forces.
    """
    w, dw = row_weights(term.descriptor, X)
    grouped = getattr(term.kernel, "grouped_gradient_prior", None)
    if grouped is not None:  # one compiled pass over all groups
        raw = grouped(X, U, item_rows, order, offsets, None if dw is None else w, dw)
        if raw is not None:
            return term.delta**2 * raw
    n_groups, n_comp = len(offsets) - 1, U.shape[1]
    out = np.zeros((n_groups, n_comp))
    # Tiny products (tens of rows): BLAS threads only add synchronisation,
    # ~1000x slower on a loaded machine (measured), so one thread here.
    with threadpool_limits(limits=1, user_api="blas"):
        for g in range(n_groups):
            out[g] = _group_prior(term, X, w, dw, U, item_rows, order[offsets[g]:offsets[g + 1]], n_comp)
    return out


def _group_prior(term, X, w, dw, U, item_rows, items, n_comp):
    """Prior variances (n_comp,) of one group; all components in one call (items i, c flattened)."""
    n = len(items)
    if n == 0:
        return 0.0
    rows = np.repeat(item_rows[items], n_comp)
    Xg, wg = X[rows], w[rows]
    Ug = U[items].reshape(n * n_comp, -1)
    k, D, H = term.kernel.second_derivative_pieces(Xg, Ug)
    total = wg[:, None] * wg[None, :] * H
    if dw is not None:
        du = (Ug * dw[rows]).sum(1)          # u_i·∇w(x_i)
        # D.T[i, j] = u_j·∂_z k(x_i, x_j) by the symmetry of k
        total += du[:, None] * wg[None, :] * D.T + wg[:, None] * D * du[None, :] + np.outer(du, du) * k
    # Only the c == c' blocks: variances, not the covariances between components.
    return term.delta**2 * np.einsum("icjc->c", total.reshape(n, n_comp, n, n_comp))


def _force_groups(G, n_atoms):
    order = np.argsort(G.neighbour, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(G.neighbour, minlength=n_atoms))])
    return order, offsets


def _virial_items(G, n_rows):
    """ndarray (n_rows, 6, n_features): ``-Σ_p sym(vectors_p ⊗ values_p)`` per row."""
    P = G.n_pairs
    by_row = [sp.csr_matrix((G.vectors[:, a], (G.center, np.arange(P))), shape=(n_rows, P)) for a in range(3)]
    M = {(a, b): by_row[a] @ G.values[:, b, :] for a in range(3) for b in range(3)}
    return np.stack([-0.5 * (M[a, b] + M[b, a]) for a, b in VIRIAL_COMPONENTS], axis=1)


def term_std_inputs(term, X, G, n_atoms, request, design, numbers=None):
    """``k_*`` rows and prior variances of one term over one block of structures.

    Parameters
    ----------
    term : FittedTerm
    X : AtomicFeatures of shape (n_rows, n_features)
    G : SparseGradients or None
    n_atoms : int
    request : StdRequest
    design : tuple
        ``term.design_rows(...)`` output ``(energy, dE_dr, virial)``.
    numbers : ndarray (n_atoms,) or None
        Atomic numbers of the block (needed for ``request.local``).

    Returns
    -------
    dict
        ``{"energy" | "forces" | "virial" | "local": (k_star, prior)}`` with
        ``k_star`` of shape (n_outputs, n_sparse) and ``prior`` (n_outputs,);
        outputs are structures, ``3 * atom + a`` or ``6 * structure + c``.
    """
    Xa = np.asarray(X)
    energy_rows, dE_dr, virial_rows = design
    out = {"energy": (energy_rows, term.self_covariance(Xa, X.offsets))}
    if request.forces:
        order, offsets = _force_groups(G, n_atoms)
        prior = group_gradient_prior(term, Xa, G.values, G.center, order, offsets)
        out["forces"] = (dE_dr, prior.ravel())
    if request.virial:
        n_s = len(X.offsets) - 1
        h = _virial_items(G, Xa.shape[0])
        prior = group_gradient_prior(term, Xa, h, np.arange(Xa.shape[0]), np.arange(Xa.shape[0]), X.offsets)
        out["virial"] = (None if virial_rows is None else virial_rows.reshape(n_s * 6, -1), prior.ravel())
    if request.local:
        A = rows_to_atoms(term.descriptor, Xa, G, numbers)
        w = row_weights(term.descriptor, Xa)[0]
        if getattr(term.descriptor, "rows_are_pairs", False) or hasattr(term.descriptor, "row_centres"):
            # several rows share an atom (pairs, triplets of one centre): their covariances count
            prior = np.zeros(n_atoms)
            for s in range(len(X.offsets) - 1):
                a, b = X.offsets[s], X.offsets[s + 1]
                if b > a:
                    C = term.delta**2 * w[a:b, None] * w[None, a:b] * term.kernel(Xa[a:b], Xa[a:b])
                    As = A[:, a:b]
                    prior += np.asarray((As @ sp.csr_matrix(C)).multiply(As).sum(1)).ravel()
        else:   # each row is one atom's (A has ones)
            prior = A @ (term.delta**2 * w**2 * term.kernel.diag(Xa))
        out["local"] = (np.asarray(A @ term.knm(Xa, w)[0]), prior)
    return out


def dtc_variance(prior, k_star, kmm_cholesky, posterior_factor, variance="dtc"):
    """Latent predictive variance from the fit's factors (see the module docstring).

    Parameters
    ----------
    prior : ndarray of shape (n,)
    k_star : ndarray of shape (n, n_sparse_total)
    kmm_cholesky : ndarray (n_sparse_total, n_sparse_total), lower ``L``
    posterior_factor : ndarray (n_sparse_total, n_sparse_total), upper ``R``
    variance : {"dtc", "sor", "fitc"}

    Returns
    -------
    ndarray of shape (n,)
        Variances (clipped at 0 against round-off).
    """
    p = sla.solve_triangular(posterior_factor, k_star.T, trans="T")
    explained = (p**2).sum(0)
    if variance == "sor":
        return np.maximum(explained, 0.0)
    q = sla.solve_triangular(kmm_cholesky, k_star.T, lower=True)
    return np.maximum(prior - (q**2).sum(0) + explained, 0.0)


def std_outputs(var, properties, atoms_list, scale, floor=None):
    """Standard deviations in the shapes of ``SparseGPR.predict`` from the accumulated variances.

    Parameters
    ----------
    var : dict
        ``"energy"`` (n_structures,), ``"forces"`` (3 n_atoms,), ``"virial"``
        (6 n_structures,), ``"local"`` (n_atoms,) variances.
    properties : sequence of str
    atoms_list : list of ase.Atoms
    scale : float
        Recalibration factor ``std_scale_``.
    floor : dict or None
        Recalibration floors ``std_floor_`` (``"energy"`` in eV per
        structure, ``"forces"`` in eV/Å), added in quadrature:
        ``sqrt((scale σ)² + floor²)``.
    """
    floor = floor or {}
    n_s = len(atoms_list)
    out = {"energy_std": np.hypot(scale * np.sqrt(var["energy"]), floor.get("energy", 0.0))}
    if "forces" in properties:
        out["forces_std"] = np.hypot(scale * np.sqrt(var["forces"]), floor.get("forces", 0.0)).reshape(-1, 3)
    if "local_energy" in properties:
        out["local_energy_std"] = scale * np.sqrt(var["local"])
    if "virial" in properties or "stress" in properties:
        voigt = scale * np.sqrt(var["virial"]).reshape(n_s, 6)
        virial_std = np.zeros((n_s, 3, 3))
        for c, (a, b) in enumerate(VIRIAL_COMPONENTS):
            virial_std[:, a, b] = virial_std[:, b, a] = voigt[:, c]
        if "virial" in properties:
            out["virial_std"] = virial_std
        if "stress" in properties:
            out["stress_std"] = voigt / np.array([a.get_volume() for a in atoms_list])[:, None]
    return out


def _fitc_prior(model, atoms_list, structures, labels):
    """Prior variances ``K_nn`` of a block's observations, in the design builder's row order."""
    sub = [atoms_list[s] for s in structures]
    n_atoms = int(sum(len(a) for a in sub))
    has_e, has_f, has_v = DesignBuilder.observed(structures, labels)
    request = StdRequest(forces=bool(has_f.any()), virial=bool(has_v.any()))
    prior = {"energy": 0.0, "forces": 0.0, "virial": 0.0}
    for term in model.terms_:
        X, G = term.descriptor.transform(sub, gradients=True)
        empty = (None, None, None)
        inputs = term_std_inputs(term, X, G, n_atoms, request, empty)
        for key, (_, p) in inputs.items():
            prior[key] = prior[key] + p
    n_per = np.array([len(a) for a in sub])
    priors = [prior["energy"][has_e]]
    if has_f.any():
        priors.append(prior["forces"][np.repeat(has_f, 3 * n_per)])
    if has_v.any():
        priors.append(prior["virial"].reshape(-1, 6)[has_v].ravel())
    return np.concatenate(priors)


def fitc_factor(model, atoms_list, *, energies=None, forces=None, virials=None, config_types=None,
                block_atoms=2000):
    """Add ``model.fitc_factor_``: the weight-posterior factor of a FITC-style noise model.

    FITC (Snelson & Ghahramani, NIPS 2005) replaces the noise ``Σ`` of each
    training observation by ``Λ_n = Σ_n + K_nn - Q_nn``: an observation that
    the sparse points represent poorly (large ``K_nn - Q_nn``, computed with
    the same analytic force/virial priors as the predictive variance) counts
    as noisier, so it constrains the posterior less and predictions near it
    keep more variance. The *mean* is left as fitted (GAP's DTC mean);
    only the variance of ``predict(..., variance="fitc")`` uses the new
    factor ``R`` with ``R^T R = K_MM + K_MN Λ^-1 K_NM``.

    Parameters
    ----------
    model : SparseGPR
        Fitted on exactly these data.
    atoms_list, energies, forces, virials, config_types
        The training data, as given to ``fit``.
    block_atoms : int, default=2000
        Structures are processed in blocks of about this many atoms.

    Returns
    -------
    model
        The same object with ``fitc_factor_`` (n_sparse_total, n_sparse_total) set.
    """
    if not hasattr(model, "alpha_"):
        raise ValueError("`model` is not fitted; call fit first")
    atoms_list = as_atoms_list(atoms_list)
    labels = check_labels(atoms_list, energies, forces, virials, config_types)
    builder = DesignBuilder.from_model(model)
    L = model.kmm_cholesky_
    # The prior rows L^T and the inflated rows, accumulated as the fit accumulates its own (targets unused).
    accumulate = QRAccumulator(L.T)
    for block in atom_budget_groups(atoms_list, block_atoms):
        A, _ = builder.rows(atoms_list, block, labels)
        if A.shape[0] == 0:
            continue
        prior, sigma = _fitc_prior(model, atoms_list, block, labels), builder.row_sigmas(atoms_list, block, labels)
        explained = (sla.solve_triangular(L, A.T, lower=True) ** 2).sum(0) * sigma**2   # Q_nn
        inflation = 1.0 + np.maximum(prior - explained, 0.0) / sigma**2                 # Λ_n / Σ_n
        accumulate.add(A / np.sqrt(inflation)[:, None], np.zeros(len(A)))
    model.fitc_factor_ = accumulate.solve()[0]
    return model
