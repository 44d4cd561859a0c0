"""Use any dscribe descriptor as a kernelpot :class:`Descriptor`.

:func:`from_dscribe` wraps a configured dscribe descriptor (``ACSF``,
``SOAP``, ``LMBTR``, ``CoulombMatrix``, ``SineMatrix``, ``MBTR``, ...) so
that it returns kernelpot's result types and can open a scikit-learn
``Pipeline``:

* local descriptors (one row per atom) give :class:`AtomicFeatures` of shape
  ``(n_atoms_total, n_features)`` with ``offsets`` and ``numbers``, so a
  downstream model can sum atomic contributions per structure;
* global descriptors (and local ones with ``average != "off"``) give a
  plain float64 array of shape ``(n_structures, n_features)``.

Gradients come from dscribe's ``derivatives()`` (analytical where dscribe
has them, else its finite differences) and are converted from dscribe's
dense ``(n_centers, n_atoms, 3, n_features)`` layout to kernelpot's sparse
:class:`SparseGradients` (pairs whose derivative is not exactly zero, plus
the self pair).

Centre convention. dscribe's ``derivatives(..., attach=False)`` (its
default, and the only analytical option for SOAP) keeps each centre fixed
at the position its atom had: the entry of the centre's own atom is the
derivative with the atom moving *but not the centre*. kernelpot's self term
is the *total* derivative (the environment moves with its atom). By
translation invariance the two differ by the derivative with respect to
the centre, ``-sum_j d[i, j]``, so the adapter sets
``self = -sum_{j != i} d[i, j]``. Descriptors that only support
``attach=True`` (dscribe's ACSF) already give total derivatives and are
used unchanged.

Limits. In small periodic cells, where an atom has several images within
the cutoff of one centre, dscribe 2.1.2's SOAP derivatives with respect to
that atom disagree with finite differences of its own ``create()`` (seen
for a 4-atom diamond cell with ``r_cut=3``); the adapter converts what
dscribe returns and cannot fix that. ``vectors`` (per-image pair vectors for the virial) cannot be
recovered from dscribe's image-summed derivatives, so they are left
``None``. Several dscribe 2.1.2 descriptors (MBTR, LMBTR, SineMatrix,
ValleOganov, EwaldSumMatrix) fail with ase >= 3.26 inside dscribe; their
errors are re-raised naming the descriptor.
"""

from __future__ import annotations

import numpy as np

from kernelpot.descriptors.base import AtomicFeatures, Descriptor, SparseGradients
from kernelpot.structures.packing import as_atoms_list

__all__ = ["DscribeDescriptor", "from_dscribe"]


def from_dscribe(descriptor) -> DscribeDescriptor:
    """Wrap a dscribe descriptor as a kernelpot :class:`Descriptor`.

    Parameters
    ----------
    descriptor : dscribe.descriptors.descriptor.Descriptor
        A configured dscribe descriptor instance (e.g. ``ACSF(...)``).

    Returns
    -------
    DscribeDescriptor

    Examples
    --------
    >>> from ase.build import molecule
    >>> from dscribe.descriptors import ACSF
    >>> acsf = from_dscribe(ACSF(species=["H", "O"], r_cut=5.0, g2_params=[[1.0, 1.0]]))
    >>> X = acsf.transform([molecule("H2O"), molecule("H2O2")])
    >>> X.shape, X.offsets.tolist()
    ((7, 4), [0, 3, 7])
    """
    wrapped = DscribeDescriptor(descriptor)
    wrapped._check_descriptor()
    return wrapped


class DscribeDescriptor(Descriptor):
    """A dscribe descriptor behind kernelpot's descriptor interface.

    Parameters
    ----------
    descriptor : dscribe.descriptors.descriptor.Descriptor
        The dscribe descriptor; it is used as is and never modified.

    Notes
    -----
    See the module docstring for the result types and the conversion of
    dscribe's fixed-centre derivatives to kernelpot's total self term.
    """

    def __init__(self, descriptor=None):
        self.descriptor = descriptor

    def _check_descriptor(self) -> bool:
        """Validate ``descriptor`` and return whether its output is per atom."""
        _require_dscribe()
        from dscribe.descriptors.descriptor import Descriptor as _DscribeDescriptor
        from dscribe.descriptors.descriptorlocal import DescriptorLocal

        if not isinstance(self.descriptor, _DscribeDescriptor):
            raise TypeError(
                "`descriptor` must be a dscribe descriptor instance (e.g. "
                f"dscribe.descriptors.SOAP(...)); got {type(self.descriptor).__name__}"
            )
        return isinstance(self.descriptor, DescriptorLocal) and (
            getattr(self.descriptor, "average", "off") == "off"
        )

    @property
    def is_local(self) -> bool:
        """Whether rows are atoms (True) or structures (False)."""
        return self._check_descriptor()

    def get_number_of_features(self) -> int:
        """Number of features of one row (dscribe's count)."""
        self._check_descriptor()
        return int(self.descriptor.get_number_of_features())

    def transform(self, X, *, gradients: bool = False):
        """Features (and gradients) of each structure computed by dscribe.

        Parameters
        ----------
        X : ase.Atoms or sequence of ase.Atoms
            Structures (positions in Å).
        gradients : bool, default=False
            Also return position gradients through dscribe's ``derivatives()``.

        Returns
        -------
        features : AtomicFeatures of shape (n_atoms_total, n_features) or ndarray of shape (n_structures, n_features)
            Per-atom rows (local descriptors) in input order, or one row per
            structure (global descriptors, averaged local ones); float64.
        gradients : SparseGradients, only if ``gradients=True``
            ``values[p] = dX[center[p]] / dr[neighbour[p]]`` (units of X per
            Å); ``center`` is the global atom row (local) or the structure
            index (global); the self term is the total derivative.
        """
        local = self._check_descriptor()
        structures = as_atoms_list(X)
        if not structures:
            raise ValueError("`X` holds no structures: expected at least one ase.Atoms")
        rows, blocks = [], []
        atom_offset = 0
        for s, atoms in enumerate(structures):
            if gradients:
                d, c = self._derivatives(atoms)
                blocks.append(_sparse_block(d, atom_offset, s if not local else None, local))
            else:
                c = self._call("create", atoms)
            c = np.asarray(c.todense() if hasattr(c, "todense") else c, dtype=np.float64)
            rows.append(c.reshape(-1, c.shape[-1]))
            atom_offset += len(atoms)
        values = np.concatenate(rows, axis=0)
        if local:
            counts = [len(atoms) for atoms in structures]
            offsets = np.concatenate([[0], np.cumsum(counts)])
            numbers = np.concatenate([atoms.numbers for atoms in structures])
            features = AtomicFeatures(values, offsets, numbers)
        else:
            features = values
        if not gradients:
            return features
        return features, SparseGradients(
            np.concatenate([b[0] for b in blocks], axis=0),
            np.concatenate([b[1] for b in blocks]),
            np.concatenate([b[2] for b in blocks]),
        )

    def _call(self, method: str, atoms, **kwargs):
        try:
            return getattr(self.descriptor, method)(atoms, **kwargs)
        except Exception as error:
            message = f"dscribe's {type(self.descriptor).__name__}.{method}() failed: {error}"
            # Bad input keeps its type (ValueError/TypeError); a failure inside
            # dscribe (e.g. its incompatibility with ase >= 3.26) is a RuntimeError.
            if type(error) in (ValueError, TypeError) and "velocities" not in str(error):
                raise type(error)(message) from error
            raise RuntimeError(f"{message} ({type(error).__name__})") from error

    def _derivatives(self, atoms):
        """dscribe derivatives with a total self term: (d, c)."""
        from dscribe.descriptors.descriptorlocal import DescriptorLocal

        if not isinstance(self.descriptor, DescriptorLocal):
            return self._call("derivatives", atoms)
        if getattr(self.descriptor, "average", "off") != "off":
            # One averaged row: centres must move with their atoms.
            return self._call("derivatives", atoms, attach=True)
        try:
            d, c = self.descriptor.derivatives(atoms, attach=False)
        except ValueError as error:
            if "attach" not in str(error):
                raise RuntimeError(
                    f"dscribe's {type(self.descriptor).__name__}.derivatives() failed: {error}"
                ) from error
            # Only attach=True is offered (dscribe's ACSF): already total derivatives.
            return self._call("derivatives", atoms, attach=True)
        d = np.array(d, dtype=np.float64)  # our own copy: the self term is rewritten
        for i in range(d.shape[0]):
            d[i, i] = -(d[i, :i].sum(axis=0) + d[i, i + 1 :].sum(axis=0))
        return d, c


def _sparse_block(d, atom_offset: int, structure, local: bool):
    """Sparse (values, center, neighbour) of one structure's dense derivatives.

    ``d`` is (n_centers, n_atoms, 3, n_features) for per-atom rows, else
    (n_atoms, 3, n_features) or (1, n_atoms, 3, n_features) for one row.
    """
    d = np.asarray(d.todense() if hasattr(d, "todense") else d, dtype=np.float64)
    if d.ndim == 3:
        d = d[None]
    nonzero = np.any(d != 0.0, axis=(2, 3))
    if local:
        np.fill_diagonal(nonzero, True)  # the self pair is always listed
    rows, atoms = np.nonzero(nonzero)
    if local:
        center = rows + atom_offset
    else:
        center = np.full(len(rows), structure, dtype=np.int64)
    return d[rows, atoms], center.astype(np.int64), (atoms + atom_offset).astype(np.int64)


def _require_dscribe() -> None:
    """dscribe is an optional dependency: say how to install it."""
    try:
        import dscribe  # noqa: F401
    except ImportError as error:
        raise ImportError("DscribeDescriptor needs dscribe, an optional dependency of kernelpot: "
                          "pip install 'kernelpot[dscribe]'") from error
