"""Input handling shared by the kernel models (private).

A model sees either plain feature vectors (one row per sample; the
scikit-learn path) or per-atom features of structures (``AtomicFeatures``,
``LocalFeatures`` or a ``(features, offsets, numbers)`` tuple), which need a
:class:`~kernelpot.kernels.local.LocalKernel` somewhere in the kernel.
"""

from __future__ import annotations

import numpy as np
from sklearn.gaussian_process.kernels import Kernel
from sklearn.utils.validation import validate_data

from kernelpot.descriptors.base import AtomicFeatures
from kernelpot.kernels.local import LocalFeatures, LocalKernel, as_local_features


def is_per_atom(X) -> bool:
    """Whether ``X`` is per-atom input (AtomicFeatures, LocalFeatures or a 3-tuple)."""
    return isinstance(X, (AtomicFeatures, LocalFeatures)) or (isinstance(X, tuple) and len(X) == 3)


def contains_local(kernel) -> bool:
    """Whether a (possibly composite) scikit-learn kernel contains a LocalKernel."""
    if isinstance(kernel, LocalKernel):
        return True
    children = [getattr(kernel, name, None) for name in ("k1", "k2", "kernel")]
    return any(isinstance(child, Kernel) and contains_local(child) for child in children)


def check_targets(y, n_samples: int, what: str = "structures") -> np.ndarray:
    """Validate targets for per-atom input: finite floats, 1-D or 2-D, one row per sample."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in (1, 2):
        raise ValueError(f"`y` must be 1-D (n_samples,) or 2-D (n_samples, n_targets); got shape {y.shape}")
    if len(y) != n_samples:
        raise ValueError(f"`X` has {n_samples} {what} but `y` has {len(y)} rows; they must match")
    bad = ~np.isfinite(y)
    if bad.any():
        index = np.argwhere(bad)[0]
        raise ValueError(f"`y` contains NaN or infinity (first at index {tuple(int(i) for i in index)})")
    return y


def regressor_tags(tags):
    """Tags shared by the kernel regressors: multi-output targets are supported."""
    tags.target_tags.multi_output = True
    return tags


def check_fit_input(estimator, X, y, *, local: bool):
    """Validate ``X, y`` for ``fit``; returns (X as LocalFeatures or ndarray, y)."""
    if local:
        if not is_per_atom(X):
            raise TypeError(
                "a local kernel needs per-atom features: AtomicFeatures from a kernelpot descriptor, "
                f"LocalFeatures or (features, offsets, numbers); got {type(X).__name__}"
            )
        lf = as_local_features(X, "X")
        y = check_targets(y, lf.n_structures)
        estimator.n_features_in_ = lf.n_features
        return lf, y
    if is_per_atom(X) and not isinstance(X, AtomicFeatures):
        raise TypeError("per-atom input (LocalFeatures or a tuple) needs a local kernel such as 'local_gaussian'")
    if isinstance(X, AtomicFeatures):
        raise TypeError(
            "got per-atom AtomicFeatures but the kernel is not local; use a local kernel "
            "(e.g. kernel='local_gaussian') to sum atomic contributions per structure"
        )
    n_x = _length(X)
    n_y = _length(y)
    if n_x is not None and n_y is not None and n_x != n_y:
        raise ValueError(f"`X` has {n_x} samples but `y` has {n_y} rows; they must match")
    return validate_data(estimator, X, y, multi_output=True, y_numeric=True)


def _length(a):
    shape = getattr(a, "shape", None)
    if shape is not None and len(shape) > 0:
        return shape[0]
    return len(a) if hasattr(a, "__len__") else None


def check_predict_input(estimator, X, *, local: bool):
    """Validate ``X`` for ``predict`` against the training input type and width."""
    if local:
        lf = as_local_features(X, "X") if is_per_atom(X) else None
        if lf is None:
            raise TypeError(
                f"this model was fitted on per-atom features; `X` must be per-atom too, got {type(X).__name__}"
            )
        if lf.n_features != estimator.n_features_in_:
            raise ValueError(
                f"`X` has {lf.n_features} features per atom, but the model was fitted with {estimator.n_features_in_}"
            )
        return lf
    if isinstance(X, AtomicFeatures) or is_per_atom(X):
        raise TypeError("this model was fitted on plain vectors; got per-atom input")
    return validate_data(estimator, X, reset=False)


def check_forces(forces, offsets: np.ndarray) -> np.ndarray:
    """Validate per-structure forces and return them as one (n_atoms_total, 3) float64 array.

    ``forces`` is a sequence with one (n_atoms_s, 3) array per structure (a list, or
    an ndarray of shape (n_structures, n_atoms, 3) when all structures have the same
    size), so that scikit-learn's cross-validation splits it like ``X`` and ``y``.
    """
    n_structures = len(offsets) - 1
    if isinstance(forces, np.ndarray) and forces.ndim == 2:
        raise ValueError(
            "`forces` must hold one (n_atoms, 3) array per structure (a list, or an array of shape "
            f"(n_structures, n_atoms, 3)); got a 2-D array of shape {forces.shape}"
        )
    try:
        n_given = len(forces)
    except TypeError:
        raise TypeError(f"`forces` must be a sequence of (n_atoms, 3) arrays; got {type(forces).__name__}") from None
    if n_given != n_structures:
        raise ValueError(f"`X` has {n_structures} structures but `forces` has {n_given} entries; they must match")
    blocks = []
    for s, block in enumerate(forces):
        block = np.asarray(block, dtype=np.float64)
        n_atoms = int(offsets[s + 1] - offsets[s])
        if block.shape != (n_atoms, 3):
            raise ValueError(f"`forces[{s}]` must have shape ({n_atoms}, 3) for structure {s}; got {block.shape}")
        if not np.all(np.isfinite(block)):
            raise ValueError(f"`forces[{s}]` contains NaN or infinity")
        blocks.append(block)
    return np.concatenate(blocks)
