"""Sparse Gaussian process regression of total energies, forces and virials (GAP).

The model is a sum of terms (:class:`~kernelpot.models._gap_terms.GAPTerm`),
each a descriptor, a covariance and a set of sparse points. The energy of a
structure is the sum of local energies of its descriptor rows plus
per-species reference energies ``e0``; forces and virials are its
derivatives. The fit is the projected-process (DTC) approximation of
Quiñonero-Candela & Rasmussen, JMLR 6, 1939 (2005), as in GAP:

.. math::

    \\min_\\alpha \\; \\lVert \\Sigma^{-1/2}(y - K_{NM}\\alpha)\\rVert^2
    + \\alpha^\\top K_{MM} \\alpha,

solved from the QR factorisation of the stacked system
``[Sigma^{-1/2} K_NM; L^T]`` (``K_MM = L L^T``), accumulated block by block
over structures (``R`` of the stacked blocks, TSQR), so the full ``K_NM``
is never held. ``solver="cholesky"`` accumulates the normal equations
instead (cheaper, squares the condition number).

References
----------
A. P. Bartók, M. C. Payne, R. Kondor, G. Csányi, Phys. Rev. Lett. 104,
136403 (2010), doi:10.1103/PhysRevLett.104.136403.
V. L. Deringer et al., Chem. Rev. 121, 10073 (2021), doi:10.1021/acs.chemrev.1c00022.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from ..structures.packing import as_atoms_list, pack
from ._gap_covariance import NormalisedDotProduct, SquaredExponential
from ._gap_labels import check_labels, check_sigma, resolve_e0, structure_sigmas
from ._gap_sparse import select_sparse
from ._gap_terms import (VIRIAL_COMPONENTS, FittedTerm, GAPTerm, row_weights, structure_of_rows,
                         sum_per_structure)

__all__ = ["SparseGPR", "GAPTerm", "SquaredExponential", "NormalisedDotProduct"]

logger = logging.getLogger(__name__)

_PROPERTIES = ("energy", "forces", "virial", "stress", "local_energy")
_SOLVERS = ("qr", "cholesky")


class SparseGPR(BaseEstimator):
    """GAP-style sparse GPR potential learning from energies, forces and virials.

    Parameters
    ----------
    terms : list of GAPTerm
        Additive terms (e.g. a ``distance_2b`` term and a SOAP term).
    default_sigma : sequence of 3 or 4 floats, default=(0.002, 0.1, 0.05)
        Noise (regularisation) of energies (eV/atom), forces (eV/Å),
        virials (eV/atom) and, ignored, Hessians, as gap_fit's
        ``default_sigma``. With ``sigma_per_atom`` the energy and virial
        sigmas are multiplied by ``sqrt(n_atoms)`` of each structure.
    config_type_sigma : dict or None, default=None
        ``{config_type: (sigma_E, sigma_F, sigma_V)}`` overriding
        ``default_sigma`` for structures of that config type.
    sigma_per_atom : bool, default=True
        gap_fit's ``sigma_per_atom``: see ``default_sigma``.
    e0 : {"average", "isolated"}, float or dict, default="average"
        Per-species reference energy (eV) subtracted before the fit:
        the mean energy per atom, the energies of one-atom structures in
        the training set, one number for all, or ``{Z or symbol: eV}``.
    jitter : float, default=1e-10
        Added to the diagonal of each term's ``K_MM``, relative to
        ``delta**2`` (gap_fit's ``sparse_jitter``).
    solver : {"qr", "cholesky"}, default="qr"
    max_block_memory : float, default=256
        MiB allowed for one block of design-matrix rows; the training set
        is processed in blocks of whole structures within this budget.
    random_state : int, Generator or None, default=None
        Seeds ``sparse_method`` "random" and the first FPS point.
    verbose : bool, default=False
        Print the memory estimate and progress (also sent to ``logging``).

    Attributes
    ----------
    terms_ : list of FittedTerm
        Sparse points and coefficients ``alpha`` of each term.
    e0_ : dict
        ``{Z: eV}`` reference energies used.
    alpha_ : ndarray of shape (n_sparse_total,)
        All coefficients, terms side by side (1/eV).
    kmm_cholesky_ : ndarray of shape (n_sparse_total, n_sparse_total)
        Lower Cholesky factor ``L`` of ``K_MM`` + jitter (eV).
    posterior_factor_ : ndarray of shape (n_sparse_total, n_sparse_total)
        Upper triangular ``R`` with ``R^T R = K_MM + K_MN Sigma^-1 K_NM``;
        the posterior covariance of the weights is ``(R^T R)^-1``.
    memory_estimate_ : dict
        Bytes of the main arrays of the fit (see :meth:`fit`).

    Examples
    --------
    >>> from ase.build import bulk
    >>> from kernelpot.descriptors.distance_2b import Distance2B
    >>> from kernelpot.models.sparse_gpr import GAPTerm, SparseGPR, SquaredExponential
    >>> atoms = [bulk("Si", "diamond", a=a) for a in (5.3, 5.4, 5.5)]
    >>> term = GAPTerm(Distance2B(cutoff=4.0), SquaredExponential(0.5), n_sparse=10,
    ...                sparse_method="uniform")
    >>> model = SparseGPR([term], e0=0.0).fit(atoms, energies=[-10.5, -10.8, -10.7])
    >>> model.predict(atoms)["energy"].shape
    (3,)
    """

    def __init__(self, terms, *, default_sigma=(0.002, 0.1, 0.05), config_type_sigma=None,
                 sigma_per_atom=True, e0="average", jitter=1e-10, solver="qr",
                 max_block_memory=256.0, random_state=None, verbose=False):
        self.terms = terms
        self.default_sigma = default_sigma
        self.config_type_sigma = config_type_sigma
        self.sigma_per_atom = sigma_per_atom
        self.e0 = e0
        self.jitter = jitter
        self.solver = solver
        self.max_block_memory = max_block_memory
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        terms = self.terms
        if isinstance(terms, GAPTerm):
            raise TypeError("`terms` must be a list of GAPTerm; got a single GAPTerm (wrap it in a list)")
        if not isinstance(terms, (list, tuple)) or len(terms) == 0:
            raise ValueError(f"`terms` must be a non-empty list of GAPTerm; got {terms!r}")
        for index, term in enumerate(terms):
            if not isinstance(term, GAPTerm):
                raise TypeError(f"`terms[{index}]` must be a GAPTerm; got {type(term).__name__}")
            term.validate(index)
        if self.solver not in _SOLVERS:
            raise ValueError(f"`solver` must be one of {list(_SOLVERS)}; got {self.solver!r}")
        jitter = self.jitter
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float, np.number)) or not (
            np.isfinite(jitter) and jitter >= 0
        ):
            raise ValueError(f"`jitter` must be a finite number >= 0; got {jitter!r}")
        mem = self.max_block_memory
        if isinstance(mem, bool) or not isinstance(mem, (int, float, np.number)) or not mem > 0:
            raise ValueError(f"`max_block_memory` must be a number > 0 (MiB); got {mem!r}")
        if not isinstance(self.sigma_per_atom, (bool, np.bool_)):
            raise TypeError(f"`sigma_per_atom` must be a bool; got {self.sigma_per_atom!r}")
        return check_sigma(self.default_sigma, self.config_type_sigma)

    def _say(self, message):
        logger.info(message)
        if self.verbose:
            print(message)

    # --------------------------------------------------------------------- fit
    def fit(self, atoms_list, *, energies=None, forces=None, virials=None, config_types=None):
        """Choose sparse points and solve for the coefficients.

        Parameters
        ----------
        atoms_list : ase.Atoms or list of ase.Atoms
            Training structures (Å).
        energies : array-like of shape (n_structures,) or None
            Total energies in eV; an entry ``None`` means not observed.
        forces : list of ndarray of shape (n_atoms_s, 3), ndarray of shape (n_atoms_total, 3), or None
            Forces in eV/Å; a list entry ``None`` means not observed.
        virials : array-like of shape (n_structures, 3, 3), list with None entries, or None
            Virials in eV, ``virial = -dE/d(strain)`` (= ``-stress * volume``);
            the 6 independent components of the symmetrised virial are fitted.
        config_types : sequence of str or None
            Selects ``config_type_sigma`` entries; ``None`` is ``"default"``.

        Returns
        -------
        self
        """
        sigma_table = self._check_params()
        atoms_list = as_atoms_list(atoms_list)
        pack(atoms_list)  # validates positions and cells once
        labels = check_labels(atoms_list, energies, forces, virials, config_types)
        self.e0_ = resolve_e0(self.e0, atoms_list, labels)
        rng = np.random.default_rng(self.random_state)
        self.terms_ = self._choose_sparse(atoms_list, rng)
        want_gradients = any(f is not None for f in labels.forces) or any(v is not None for v in labels.virials)
        per_atom = self._gradient_bytes_per_atom(atoms_list) if want_gradients else 0.0
        blocks, n_obs = self._plan_blocks(atoms_list, labels, per_atom)
        n_sparse = sum(t.n_sparse for t in self.terms_)
        self.memory_estimate_ = {
            "full_K_NM": 8 * n_obs * n_sparse,
            "block": 8 * max(b[1] for b in blocks) * n_sparse,
            "normal_matrix": 8 * n_sparse * (n_sparse + 1),
            "descriptor_gradients_per_atom": int(per_atom),
        }
        self._say(
            f"SparseGPR: {n_obs} observations x {n_sparse} sparse points; full K_NM would be "
            f"{self.memory_estimate_['full_K_NM'] / 2**20:.1f} MiB, fitted in {len(blocks)} blocks "
            f"of <= {self.memory_estimate_['block'] / 2**20:.1f} MiB (descriptor gradients "
            f"{per_atom / 1024:.1f} KiB/atom; + "
            f"{2 * self.memory_estimate_['normal_matrix'] / 2**20:.1f} MiB for the {self.solver} factor)"
        )
        kmm, L = self._factor_kmm()
        accumulate = _QRAccumulator(L.T) if self.solver == "qr" else _NormalAccumulator(kmm)
        for structures, _ in blocks:
            A, y = self._design(atoms_list, structures, labels, sigma_table)
            accumulate.add(A, y)
        self.posterior_factor_, alpha = accumulate.solve()
        self.kmm_cholesky_ = L
        self.alpha_ = alpha
        start = 0
        for term in self.terms_:
            term.alpha = alpha[start : start + term.n_sparse]
            start += term.n_sparse
        return self

    def _factor_kmm(self):
        """Block-diagonal K_MM of all terms (+ jitter) and its Cholesky factor."""
        kmm = sla.block_diag(*[t.kmm() for t in self.terms_])
        kmm[np.diag_indices_from(kmm)] += self.jitter * np.concatenate(
            [np.full(t.n_sparse, t.delta**2) for t in self.terms_])
        try:
            return kmm, np.linalg.cholesky(kmm)
        except np.linalg.LinAlgError:
            raise np.linalg.LinAlgError(
                "K_MM (covariance of the sparse points) is not positive definite; increase `jitter` "
                f"(now {self.jitter}) or use fewer / more distinct sparse points"
            ) from None

    def _choose_sparse(self, atoms_list, rng):
        fitted = []
        for index, term in enumerate(self.terms):
            descriptor = copy.deepcopy(term.descriptor)
            X = np.asarray(descriptor.transform(atoms_list))
            if term.sparse_points is not None:
                Z = np.array(term.sparse_points, dtype=np.float64)
                if Z.shape[1] != X.shape[1]:
                    raise ValueError(f"terms[{index}].sparse_points have {Z.shape[1]} features but the "
                                     f"descriptor gives {X.shape[1]}")
            else:
                Z = select_sparse(X, int(term.n_sparse), term.sparse_method, rng)
            w = row_weights(descriptor, Z)[0]
            keep = w > 0  # a point with zero weight (at the cutoff) adds nothing
            if not keep.any():
                raise ValueError(f"terms[{index}]: every sparse point has zero cutoff weight")
            fitted.append(FittedTerm(descriptor, copy.deepcopy(term.kernel), float(term.delta),
                                     Z[keep], w[keep]))
            method = "given" if term.sparse_points is not None else term.sparse_method
            self._say(f"term {index}: {keep.sum()} sparse points ({method}) "
                      f"among {len(X)} rows")
        return fitted

    def _gradient_bytes_per_atom(self, atoms_list):
        """Bytes of descriptor gradients per atom, measured on the largest structure."""
        probe = max(atoms_list, key=len)
        total = 0
        for term in self.terms_:
            _, G = term.descriptor.transform([probe], gradients=True)
            total += G.values.nbytes + 3 * G.center.nbytes + (0 if G.vectors is None else G.vectors.nbytes)
        return total / max(1, len(probe))

    def _plan_blocks(self, atoms_list, labels, bytes_per_atom):
        """Group structures so that design rows and descriptor gradients each fit the budget."""
        n_sparse = sum(t.n_sparse for t in self.terms_)
        budget = self.max_block_memory * 2**20
        max_rows = max(1, int(budget / (8 * n_sparse)))
        max_atoms = max(1, int(budget / max(bytes_per_atom, 1.0)))
        blocks, current, rows, atoms, total = [], [], 0, 0, 0
        for s, structure in enumerate(atoms_list):
            n = ((labels.energies[s] is not None) + 3 * len(structure) * (labels.forces[s] is not None)
                 + 6 * (labels.virials[s] is not None))
            total += n
            if not n:
                continue
            if current and (rows + n > max_rows or atoms + len(structure) > max_atoms):
                blocks.append((current, rows))
                current, rows, atoms = [], 0, 0
            current.append(s)
            rows += n
            atoms += len(structure)
        if current:
            blocks.append((current, rows))
        return blocks, total

    def _design(self, atoms_list, structures, labels, sigma_table):
        """Whitened design rows ``Sigma^{-1/2} K_NM`` and targets of some structures.

        Row order: energies, then dE/dr (atom-major, x y z), then the 6
        virial components of each structure.
        """
        sub = [atoms_list[s] for s in structures]
        n_atoms = np.array([len(a) for a in sub])
        has_e = np.array([labels.energies[s] is not None for s in structures])
        has_f = np.array([labels.forces[s] is not None for s in structures])
        has_v = np.array([labels.virials[s] is not None for s in structures])
        sig = np.array([structure_sigmas(sigma_table, labels.config_types[s], len(atoms_list[s]),
                                         self.sigma_per_atom) for s in structures])
        force_mask = np.repeat(has_f, 3 * n_atoms)
        pair_chunk = self._pair_chunk()
        columns = []
        for term in self.terms_:
            X, G = term.descriptor.transform(sub, gradients=True)
            e, f, v = term.design_rows(X, G, int(n_atoms.sum()), has_f.any(), has_v.any(), pair_chunk)
            rows = [e[has_e]]
            if has_f.any():
                rows.append(f[force_mask])
            if has_v.any():
                rows.append(v[has_v].reshape(-1, term.n_sparse))
            columns.append(np.vstack(rows))
        e0 = np.array([sum(self.e0_[int(z)] for z in a.numbers) for a in sub])
        targets = [np.array([labels.energies[s] for s in structures if labels.energies[s] is not None])
                   - e0[has_e]]
        sigmas = [sig[has_e, 0]]
        if has_f.any():
            targets.append(np.concatenate([-labels.forces[s].ravel() for s in structures
                                           if labels.forces[s] is not None]))
            sigmas.append(np.repeat(sig[:, 1], 3 * n_atoms)[force_mask])
        if has_v.any():
            targets.append(np.array([0.5 * (labels.virials[s][a, b] + labels.virials[s][b, a])
                                     for s in structures if labels.virials[s] is not None
                                     for a, b in VIRIAL_COMPONENTS]))
            sigmas.append(np.repeat(sig[has_v, 2], 6))
        sigma = np.concatenate(sigmas)
        return np.hstack(columns) / sigma[:, None], np.concatenate(targets) / sigma

    def _pair_chunk(self):
        # Bounds the (chunk, 3, n_sparse) kernel-derivative temporaries of design_rows.
        m = max(t.n_sparse for t in self.terms_)
        return max(1024, int(self.max_block_memory * 2**20 / (8 * 3 * 4 * m)))

    # ----------------------------------------------------------------- predict
    def predict(self, atoms_list, *, properties=("energy",), return_std=False):
        """Energies and, on request, forces, virials and stresses.

        Parameters
        ----------
        atoms_list : ase.Atoms or list of ase.Atoms
        properties : sequence of {"energy", "forces", "virial", "stress", "local_energy"}, default=("energy",)
        return_std : bool, default=False
            Also return ``"energy_std"``: the DTC predictive standard
            deviation of the latent energy (eV, without the noise).

        Returns
        -------
        dict
            ``"energy"``: ndarray (n_structures,) in eV (always present);
            ``"forces"``: ndarray (n_atoms_total, 3) in eV/Å, rows in input order;
            ``"virial"``: ndarray (n_structures, 3, 3) in eV;
            ``"stress"``: ndarray (n_structures, 6) in eV/Å³, Voigt order
            (xx, yy, zz, yz, xz, xy), ASE sign (``-virial / volume``);
            ``"local_energy"``: ndarray (n_atoms_total,) in eV, per-atom
            energies (e0 included) summing to ``"energy"``; the energy of a
            pair row (``distance_2b``) is split equally between its two atoms;
            ``"energy_std"``: ndarray (n_structures,) in eV.
        """
        if not hasattr(self, "alpha_"):
            raise ValueError("this SparseGPR is not fitted yet; call fit first")
        if isinstance(properties, str):
            properties = (properties,)
        unknown = [p for p in properties if p not in _PROPERTIES]
        if unknown:
            raise ValueError(f"`properties` must be among {list(_PROPERTIES)}; got {unknown}")
        atoms_list = as_atoms_list(atoms_list)
        packed = pack(atoms_list)
        unknown_z = sorted({int(z) for z in packed.numbers} - set(self.e0_))
        if unknown_z:
            raise ValueError(f"species Z={unknown_z} were not in the training set (no e0 for them)")
        need_virial = "virial" in properties or "stress" in properties
        if "stress" in properties:
            for s, atoms in enumerate(atoms_list):
                if not atoms.pbc.all():
                    raise ValueError(f"stress needs a periodic cell; structure {s} has pbc={atoms.pbc.tolist()}")
        need_local = "local_energy" in properties
        need_gradient = "forces" in properties or need_virial or (
            need_local and any(_rows_are_pairs(t.descriptor) for t in self.terms_))
        n_s = len(atoms_list)
        acc = {
            "energy": np.array([sum(self.e0_[int(z)] for z in a.numbers) for a in atoms_list]),
            "forces": np.zeros((packed.n_atoms, 3)),
            "virial": np.zeros((n_s, 3, 3)),
            "var": np.zeros(n_s) if return_std else None,
            "local_energy": np.array([self.e0_[int(z)] for z in packed.numbers]) if need_local else None,
        }
        for block in self._predict_blocks(atoms_list, need_gradient):
            self._predict_block(atoms_list, packed, block, need_gradient, need_virial, acc)
        virial = acc["virial"]
        out = {"energy": acc["energy"]}
        for key in ("forces", "virial", "local_energy"):
            if key in properties:
                out[key] = acc[key]
        if "stress" in properties:
            volume = np.array([a.get_volume() for a in atoms_list])
            stress = -virial / volume[:, None, None]
            out["stress"] = np.stack([stress[:, a, b] for a, b in VIRIAL_COMPONENTS], axis=1)
        if return_std:
            out["energy_std"] = np.sqrt(np.maximum(acc["var"], 0.0))
        return out

    def _predict_blocks(self, atoms_list, need_gradient):
        n_sparse = sum(t.n_sparse for t in self.terms_)
        budget = self.max_block_memory * 2**20
        per_atom = 8 * 3 * n_sparse
        if need_gradient and len(atoms_list) > 1:
            # Measured in fit when it used gradients; a single structure is one block anyway.
            known = self.memory_estimate_["descriptor_gradients_per_atom"]
            per_atom += known if known else self._gradient_bytes_per_atom(atoms_list)
        max_atoms = max(1, int(budget / per_atom))
        blocks, current, atoms = [], [], 0
        for s, a in enumerate(atoms_list):
            if current and atoms + len(a) > max_atoms:
                blocks.append(current)
                current, atoms = [], 0
            current.append(s)
            atoms += len(a)
        blocks.append(current)
        return blocks

    def _predict_block(self, atoms_list, packed, block, need_gradient, need_virial, acc):
        energy, forces, virial, var = acc["energy"], acc["forces"], acc["virial"], acc["var"]
        sub = [atoms_list[s] for s in block]
        atom_start = packed.offsets[block[0]]
        n_atoms = sum(len(a) for a in sub)
        k_star, prior = [], np.zeros(len(block))
        for term in self.terms_:
            if need_gradient:
                X, G = term.descriptor.transform(sub, gradients=True)
            else:
                X, G = term.descriptor.transform(sub), None
            local, dE_dr, pair_dE = term.predict_block(X, G, n_atoms, need_gradient)
            rows_structure = structure_of_rows(X.offsets)
            energy[block] += sum_per_structure(local, X.offsets)
            if acc["local_energy"] is not None:
                acc["local_energy"][atom_start : atom_start + n_atoms] += _rows_to_atoms(
                    term.descriptor, X, G, n_atoms) @ local
            if need_gradient:
                forces[atom_start : atom_start + n_atoms] -= dE_dr
            if need_virial:
                if G.vectors is None:
                    raise ValueError(f"{type(term.descriptor).__name__} gives no gradient `vectors`; "
                                     "virial and stress are not available with it")
                pair_s = rows_structure[G.center]
                contribution = -np.einsum("pa,pb->pab", G.vectors, pair_dE)
                for a in range(3):
                    for b in range(3):
                        virial[block, a, b] += np.bincount(pair_s, weights=contribution[:, a, b],
                                                           minlength=len(block))
            if var is not None:
                Kw = term.knm(np.asarray(X))[0]
                k_star.append(sum_per_structure(Kw, X.offsets))
                prior += term.self_covariance(np.asarray(X), X.offsets)
        if var is not None:
            k = np.hstack(k_star).T                                 # (M, n_block)
            q = sla.solve_triangular(self.kmm_cholesky_, k, lower=True)   # L^-1 k
            p = sla.solve_triangular(self.posterior_factor_, k, trans="T")  # R^-T k
            var[block] = prior - (q**2).sum(0) + (p**2).sum(0)


def _rows_are_pairs(descriptor):
    return bool(getattr(descriptor, "rows_are_pairs", False))


def _rows_to_atoms(descriptor, X, G, n_atoms):
    """Sparse (n_atoms, n_rows) map sharing each row's local energy among atoms."""
    n_rows = X.shape[0]
    if _rows_are_pairs(descriptor):
        # Each pair row has one gradient entry per atom of the pair.
        return sp.csr_matrix((np.full(G.n_pairs, 0.5), (G.neighbour, G.center)), shape=(n_atoms, n_rows))
    if n_rows != n_atoms:
        raise ValueError(f"local energies need one descriptor row per atom; {type(descriptor).__name__} "
                         f"gives {n_rows} rows for {n_atoms} atoms")
    return sp.identity(n_atoms, format="csr")


class _QRAccumulator:
    """R factor of ``[[L^T, 0], [A_1, b_1], [A_2, b_2], ...]``, one block at a time (TSQR)."""

    def __init__(self, Lt):
        m = Lt.shape[0]
        self.m = m
        self.R = np.hstack([Lt, np.zeros((m, 1))])

    def add(self, A, b):
        stacked = np.vstack([self.R, np.hstack([A, b[:, None]])])
        self.R = np.linalg.qr(stacked, mode="r")

    def solve(self):
        m = self.m
        R, z = self.R[:m, :m], self.R[:m, m]
        return R, sla.solve_triangular(R, z)


class _NormalAccumulator:
    """``A^T A + K_MM`` and ``A^T b`` summed over blocks, solved by Cholesky."""

    def __init__(self, kmm):
        self.H = kmm.copy()
        self.r = np.zeros(kmm.shape[0])

    def add(self, A, b):
        self.H += A.T @ A
        self.r += A.T @ b

    def solve(self):
        try:
            U = sla.cholesky(self.H, lower=False)
        except np.linalg.LinAlgError:
            raise np.linalg.LinAlgError(
                "the normal equations are not positive definite; use solver='qr' or increase `jitter`"
            ) from None
        alpha = sla.cho_solve((U, False), self.r)
        return U, alpha
