"""Rotation machinery shared by kernelpot: real Wigner D matrices and Clebsch–Gordan coefficients.

All matrices follow one real-spherical-harmonics convention, documented in
:mod:`kernelpot.symmetry.wigner` (components ``m = -l..l``; switch
:data:`kernelpot.symmetry.wigner.CONDON_SHORTLEY`).
"""

from .clebsch_gordan import (
    clebsch_gordan_complex,
    real_clebsch_gordan,
    real_clebsch_gordan_sparse,
)
from .wigner import (
    complex_to_real_matrix,
    random_rotation,
    reference_real_spherical_harmonics,
    wigner_d_real,
    wigner_d_real_all,
)

__all__ = [
    "clebsch_gordan_complex",
    "complex_to_real_matrix",
    "random_rotation",
    "real_clebsch_gordan",
    "real_clebsch_gordan_sparse",
    "reference_real_spherical_harmonics",
    "wigner_d_real",
    "wigner_d_real_all",
]
