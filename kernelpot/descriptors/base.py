"""What every kernelpot descriptor shares: its result types and base class.

Layout of sparse gradients (documented once, used by every descriptor)
----------------------------------------------------------------------
``G = SparseGradients(values, center, neighbour)`` holds, for each pair
``p``, the derivative of feature row ``center[p]`` with respect to the
Cartesian position of atom ``neighbour[p]``::

    values[p, a, k] = d X[center[p], k] / d r[neighbour[p], a]     (units of X per Å)

Only pairs within the descriptor's cutoff appear (plus the self pair
``center == neighbour``), so memory grows with the number of neighbour
pairs, never with ``n_atoms**2``. The self term is the *total* derivative:
the environment's center moves with its atom, so by translation invariance
``values[self] == -sum(values[other pairs of that center])``.

Rows need not be atoms: a pair descriptor (``distance_2b``) has one row per
pair, and ``center`` is then that row. For stress, a descriptor may also
give ``vectors[p]``: the position of the moving atom's image relative to
the row's reference atom (Å). Then ``-sum_p vectors[p] (x) dE/dr`` over the
pairs is the virial, which is why a descriptor that fills ``vectors`` keeps
one entry per periodic image instead of summing images.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..utils.estimators import Estimator

__all__ = ["AtomicFeatures", "SparseGradients", "Descriptor", "species_numbers"]


def species_numbers(species, name: str = "species") -> np.ndarray:
    """Sorted distinct atomic numbers of a ``species`` parameter (symbols or numbers).

    Order and repeats do not matter. Raises ``TypeError``/``ValueError``
    naming ``name`` for anything that is not a chemical symbol or an
    atomic number 1..118, and for an empty list.
    """
    from ase.data import atomic_numbers, chemical_symbols

    if isinstance(species, (str, numbers.Integral)):
        species = [species]
    try:
        items = list(species)
    except TypeError:
        raise TypeError(
            f"`{name}` must be a sequence of chemical symbols or atomic numbers; got {species!r}"
        ) from None
    if not items:
        raise ValueError(f"`{name}` must name at least one chemical species; got []")
    result = set()
    for item in items:
        if isinstance(item, str):
            if item not in atomic_numbers:
                raise ValueError(f"`{name}` contains an unknown chemical symbol {item!r}")
            result.add(atomic_numbers[item])
        elif isinstance(item, numbers.Integral) and not isinstance(item, bool):
            if not 1 <= int(item) < len(chemical_symbols):
                raise ValueError(f"`{name}` contains an invalid atomic number {item!r}; must be 1..118")
            result.add(int(item))
        else:
            raise TypeError(f"`{name}` items must be chemical symbols or atomic numbers; got {item!r}")
    return np.array(sorted(result), dtype=np.int64)


class AtomicFeatures(np.ndarray):
    """Per-atom feature matrix that remembers which structure each row is from.

    A plain float64 ndarray of shape ``(n_atoms_total, n_features)`` (rows
    in input order) with two extra attributes, so that a model downstream in
    a scikit-learn ``Pipeline`` can sum atomic contributions per structure:

    ``offsets`` : ndarray of shape (n_structures + 1,)
        Rows of structure ``s`` are ``offsets[s]:offsets[s + 1]``.
    ``numbers`` : ndarray of shape (n_atoms_total,)
        Atomic number of each row.

    The attributes live only on the object a descriptor returned: any
    slicing or arithmetic gives an array whose attributes are ``None``,
    because row bookkeeping cannot be trusted after it.
    """

    def __new__(cls, values, offsets, numbers):
        obj = np.asarray(values, dtype=np.float64).view(cls)
        obj.offsets = np.asarray(offsets, dtype=np.int64)
        obj.numbers = np.asarray(numbers, dtype=np.int64)
        return obj

    def __array_finalize__(self, obj):
        self.offsets = None
        self.numbers = None

    def __reduce__(self):
        # Keep the metadata through pickling (joblib, multiprocessing).
        reconstruct, arguments, state = super().__reduce__()
        return reconstruct, arguments, (state, self.offsets, self.numbers)

    def __setstate__(self, state):
        array_state, self.offsets, self.numbers = state
        super().__setstate__(array_state)

    @property
    def n_structures(self) -> int:
        return len(self.offsets) - 1


@dataclass(frozen=True)
class SparseGradients:
    """Position gradients of per-atom features over neighbour pairs.

    Attributes
    ----------
    values : ndarray of shape (n_pairs, 3, n_features), float64
        ``values[p, a, k] = dX[center[p], k] / dr[neighbour[p], a]`` (per Å).
    center : ndarray of shape (n_pairs,), int64
        Global row of the environment (atom index in the packed input).
    neighbour : ndarray of shape (n_pairs,), int64
        Global index of the atom that moves.
    vectors : ndarray of shape (n_pairs, 3), float64, optional
        Position of the moving atom's image relative to the row's reference
        atom, in Å (zero for the self pair); present when the descriptor
        supports stress.
    """

    values: np.ndarray
    center: np.ndarray
    neighbour: np.ndarray
    vectors: np.ndarray | None = None

    @property
    def n_pairs(self) -> int:
        return len(self.center)

    def to_dense(self, n_atoms: int) -> np.ndarray:
        """Dense ``(n_centers, n_atoms, 3, ...)`` array (images summed), for tests and small systems."""
        n_centers = int(self.center.max()) + 1 if self.n_pairs else 0
        dense = np.zeros((n_centers, n_atoms) + self.values.shape[1:])
        np.add.at(dense, (self.center, self.neighbour), self.values)
        return dense


class Descriptor(Estimator):
    """Base class of kernelpot descriptors: a scikit-learn transformer that does not import scikit-learn.

    Subclasses store their hyperparameters in ``__init__`` (scikit-learn
    style) and implement :meth:`transform`. ``fit`` learns nothing and
    exists so that a descriptor can open a ``Pipeline``.

    The estimator protocol (``get_params``/``set_params`` from
    :class:`kernelpot.utils.estimators.Estimator`, ``fit_transform``,
    ``__sklearn_tags__``) is implemented without inheriting from
    ``sklearn.base.BaseEstimator``: importing scikit-learn takes about a
    second (it loads ``scipy.stats``), which would double the start-up time
    of a script that only computes features. ``sklearn.base.clone``,
    ``Pipeline`` and grid searches work unchanged (they only use this
    protocol); scikit-learn is imported only when its tags are asked for.
    """

    def fit(self, X=None, y=None):
        """Do nothing and return ``self`` (descriptors have no learned state)."""
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X, y).transform(X)`` (features only)."""
        return self.fit(X, y, **fit_params).transform(X)

    def transform(self, X, *, gradients: bool = False):  # pragma: no cover - abstract
        raise NotImplementedError

    def __sklearn_tags__(self):
        # Only scikit-learn asks for tags, so it is already imported then.
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(),
            input_tags=InputTags(two_d_array=False),
            requires_fit=False,
        )
