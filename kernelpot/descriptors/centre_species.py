"""Per-centre-species GAP terms: a descriptor restricted to centre atoms of given species.

gap_fit gives each centre species its own SOAP term (``soap ... Z=6``, or
automatically with ``add_species=T``): environments of different centre
species then never share a sparse point or a covariance, and each term has
its own energy scale ``delta``. A dscribe-style SOAP vector does not encode
the species of its centre, so without this an H and a C environment with
similar neighbourhoods would be treated as alike.
"""

from __future__ import annotations

import numpy as np

from .base import AtomicFeatures, Descriptor, SparseGradients, species_numbers

__all__ = ["CentreSpecies", "SharedDescriptors", "descriptor_signature"]


class CentreSpecies(Descriptor):
    """Rows of a per-atom descriptor for centre atoms of some species only.

    Parameters
    ----------
    descriptor : Descriptor
        A per-atom descriptor (one row per atom, ``numbers`` set on its
        output), e.g. :class:`~kernelpot.descriptors.soap.SOAP`.
    species : int, str or sequence of them
        Centre species kept (atomic numbers or symbols).

    Notes
    -----
    Gradients keep every pair whose row is kept, so forces and virials of
    the kept rows are unchanged; ``neighbour`` still indexes all atoms.
    """

    def __init__(self, descriptor, species):
        self.descriptor = descriptor
        self.species = species

    @property
    def n_features(self) -> int:
        """Length of a row: the wrapped descriptor's (validates ``species`` too)."""
        species_numbers(self.species, "species")
        return self.descriptor.n_features

    def transform(self, X, *, gradients: bool = False):
        """Rows of the centres of ``species``.

        Returns
        -------
        AtomicFeatures of shape (n_kept_rows, n_features)
            ``offsets`` count the kept rows of each structure.
        SparseGradients
            With ``gradients=True``: the pairs of the kept rows, ``center``
            renumbered to the kept rows.
        """
        species_numbers(self.species, "species")  # checked before any work
        if not callable(getattr(self.descriptor, "transform", None)):
            raise TypeError(f"`descriptor` must have a transform method; got {self.descriptor!r}")
        out = self.descriptor.transform(X, gradients=gradients)
        return self.select(*out) if gradients else self.select(out)

    def select(self, features, gradients=None):
        """This term's rows (and their gradient pairs) of the inner descriptor's output.

        So that several terms on one descriptor (gap_fit's one SOAP per centre
        species) can share one evaluation of it. Returns the features, or
        ``(features, gradients)`` when ``gradients`` is given.
        """
        keep = self.kept_rows(features)
        kept = _select(features, keep)
        if gradients is None:
            return kept
        new_row = np.cumsum(keep) - 1
        kept_pairs = keep[gradients.center]
        kept_grads = SparseGradients(gradients.values[kept_pairs], new_row[gradients.center[kept_pairs]],
                                     gradients.neighbour[kept_pairs],
                                     None if gradients.vectors is None else gradients.vectors[kept_pairs])
        return kept, kept_grads

    def kept_rows(self, features):
        """Boolean mask (n_rows,) of the rows of the inner descriptor's ``features`` that this term keeps."""
        keep_z = species_numbers(self.species, "species")
        numbers = getattr(features, "numbers", None)
        offsets = getattr(features, "offsets", None)
        pairs = bool(getattr(self.descriptor, "rows_are_pairs", False))
        if pairs or numbers is None or offsets is None or len(numbers) != features.shape[0]:
            raise ValueError(f"`descriptor` must give one row per atom with `numbers`; "
                             f"{type(self.descriptor).__name__} does not")
        return np.isin(numbers, keep_z)

    def transform_vjp(self, X, *, neighbours=None):
        """Kept rows and a reverse-mode pass (see :meth:`SOAP.transform_vjp`); the inner descriptor must have one."""
        species_numbers(self.species, "species")  # checked before any work
        if not callable(getattr(self.descriptor, "transform_vjp", None)):
            raise TypeError(f"{type(self.descriptor).__name__} has no transform_vjp")
        features, inner_vjp = self.descriptor.transform_vjp(X, neighbours=neighbours)
        keep = self.kept_rows(features)
        kept = _select(features, keep)

        def vjp(adjoint, *, virial=False):
            adjoint = np.asarray(adjoint, dtype=np.float64)
            if adjoint.shape != kept.shape:
                raise ValueError(f"`adjoint` must have shape {kept.shape}; got {adjoint.shape}")
            full = np.zeros(features.shape)
            full[keep] = adjoint
            return inner_vjp(full, virial=virial)

        return kept, vjp


def _select(features, keep):
    """The rows ``keep`` of per-atom ``features``, with their structure offsets and numbers."""
    offsets = features.offsets
    row_structure = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    counts = np.bincount(row_structure[keep], minlength=len(offsets) - 1)
    return AtomicFeatures(np.asarray(features)[keep], np.concatenate([[0], np.cumsum(counts)]),
                          np.asarray(features.numbers)[keep])


def descriptor_signature(descriptor):
    """(class name, sorted parameters): equal for descriptors that compute the same rows."""
    params = descriptor.get_params(deep=False) if hasattr(descriptor, "get_params") else vars(descriptor)
    return type(descriptor).__name__, repr(sorted(params.items()))


class SharedDescriptors:
    """Descriptor outputs of one block of structures, computed once per distinct root descriptor.

    ``get(descriptor, structures, gradients)`` returns what
    ``descriptor.transform(structures, gradients=gradients)`` would, but terms
    whose descriptors share a root (:class:`CentreSpecies` around equal SOAPs)
    evaluate it once and select their rows. One instance per block.
    """

    def __init__(self):
        self._outputs = {}

    def get(self, descriptor, structures, gradients):
        centred = isinstance(descriptor, CentreSpecies)
        root, selector = (descriptor.descriptor, descriptor) if centred else (descriptor, None)
        key = (descriptor_signature(root), bool(gradients))
        if key not in self._outputs:
            self._outputs[key] = root.transform(structures, gradients=True) if gradients else root.transform(structures)
        out = self._outputs[key]
        if selector is None:
            return out
        return selector.select(*out) if gradients else selector.select(out)
