"""Descriptor-distance novelty: how far an environment is from what the model was built on.

The distance is the kernel-induced metric of one GAP term,
``d(x, z)² = k(x, x) + k(z, z) - 2 k(x, z)`` (so ``2 - 2 k`` for the
normalised covariances of kernelpot, whose diagonal is 1), to the nearest
reference environment: the term's sparse points by default, or given
training rows. It is a model-free alternative to the predictive variance
(as FPS is to variance-based selection): large for environments unlike
any reference, blind to how well the labels constrain the model.
"""

from __future__ import annotations

import numpy as np

from ..structures.packing import as_atoms_list

__all__ = ["kernel_distance", "novelty"]


def kernel_distance(kernel, X, Z, chunk=4096):
    """ndarray (n_rows,): distance of each row of ``X`` to its nearest row of ``Z`` in the metric of ``kernel``.

    Parameters
    ----------
    kernel : GaussianCovariance or NormalizedDotProductCovariance
    X : ndarray of shape (n_rows, n_features)
    Z : ndarray of shape (n_reference, n_features)
    chunk : int
        Rows per kernel block (bounds memory to ``chunk * n_reference``).
    """
    X, Z = np.asarray(X, dtype=np.float64), np.asarray(Z, dtype=np.float64)
    kzz = kernel.diag(Z)
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], chunk):
        part = X[start:start + chunk]
        d2 = kernel.diag(part)[:, None] + kzz[None, :] - 2.0 * kernel(part, Z)
        out[start:start + chunk] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


def novelty(model, atoms_list, *, term=None, reference=None):
    """Per-atom and per-structure novelty of structures with respect to a fitted SparseGPR.

    Parameters
    ----------
    model : SparseGPR
        Fitted.
    atoms_list : ase.Atoms or list of ase.Atoms
    term : int or None, default=None
        Which term's descriptor and covariance; None takes the first term
        whose rows are atoms (e.g. SOAP, not ``distance_2b``).
    reference : ndarray of shape (n_reference, n_features) or None
        Reference rows (e.g. all training environments); None uses the
        term's sparse points.

    Returns
    -------
    dict
        ``"atom"``: ndarray (n_atoms_total,), dimensionless distance of each
        atom's environment; ``"structure"``: ndarray (n_structures,), the
        largest over its atoms.
    """
    if not hasattr(model, "terms_"):
        raise ValueError("`model` is not fitted; call fit first")
    if term is None:
        candidates = [i for i, t in enumerate(model.terms_) if not getattr(t.descriptor, "rows_are_pairs", False)]
        if not candidates:
            raise ValueError("no term of `model` has one descriptor row per atom; pass `term`")
        term = candidates[0]
    if isinstance(term, bool) or not isinstance(term, (int, np.integer)) or not 0 <= term < len(model.terms_):
        raise ValueError(f"`term` must be an index in [0, {len(model.terms_)}); got {term!r}")
    fitted = model.terms_[term]
    X = fitted.descriptor.transform(as_atoms_list(atoms_list))
    if X.shape[0] != X.offsets[-1] or getattr(fitted.descriptor, "rows_are_pairs", False):
        raise ValueError(f"terms[{term}] does not have one descriptor row per atom")
    Z = fitted.sparse_X if reference is None else np.asarray(reference, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[1] != X.shape[1]:
        raise ValueError(f"`reference` must have shape (n, {X.shape[1]}); got {Z.shape}")
    atom = kernel_distance(fitted.kernel, np.asarray(X), Z)
    structure = np.maximum.reduceat(atom, X.offsets[:-1]) if len(atom) else np.zeros(0)
    return {"atom": atom, "structure": structure}
