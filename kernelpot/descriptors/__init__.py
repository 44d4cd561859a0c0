"""Descriptors: per-atom (SOAP, λ-SOAP, LODE, FCHL19, distance_2b, angle_3b) and global (MBTR, Coulomb matrix) features.

``CentreSpecies`` restricts a per-atom descriptor to centres of some species (gap_fit's per-species terms);
``SharedDescriptors`` evaluates a descriptor that several such terms wrap once per block.

The names below are imported on first use (PEP 562, :mod:`kernelpot.utils.lazy`), so that
``from kernelpot.descriptors import SOAP`` loads only SOAP's modules: start-up
time is part of the interface (a short script should not pay for every
descriptor's imports).
"""

from __future__ import annotations

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "AtomicFeatures": "base",
    "Descriptor": "base",
    "SparseGradients": "base",
    "SOAP": "soap",
    "LambdaSOAP": "lambda_soap",
    "LODE": "lode",
    "FCHL19": "fchl19",
    "MBTR": "mbtr",
    "CoulombMatrix": "coulomb_matrix",
    "Distance2B": "distance_2b",
    "Angle3B": "angle_3b",
    "DscribeDescriptor": "dscribe_adapter",
    "from_dscribe": "dscribe_adapter",
    "CentreSpecies": "centre_species",
    "SharedDescriptors": "centre_species",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
