"""Descriptors: per-atom (SOAP, λ-SOAP, FCHL19, distance_2b) and global (MBTR, Coulomb matrix) features."""

from .base import AtomicFeatures, Descriptor, SparseGradients
from .coulomb_matrix import CoulombMatrix
from .distance_2b import Distance2B
from .dscribe_adapter import DscribeDescriptor, from_dscribe
from .fchl19 import FCHL19
from .lambda_soap import LambdaSOAP
from .mbtr import MBTR
from .soap import SOAP

__all__ = [
    "AtomicFeatures", "Descriptor", "SparseGradients", "SOAP", "LambdaSOAP", "FCHL19", "MBTR",
    "CoulombMatrix", "Distance2B", "DscribeDescriptor", "from_dscribe",
]
