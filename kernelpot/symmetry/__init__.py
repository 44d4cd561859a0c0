"""Rotation machinery shared by kernelpot: real spherical harmonics, real Wigner D matrices, Clebsch–Gordan.

One real-spherical-harmonics convention for the whole package, documented and
implemented in :mod:`kernelpot.symmetry.harmonics` (components ``m = -l..l``;
switch :data:`kernelpot.symmetry.harmonics.CONDON_SHORTLEY`); :mod:`.wigner`
and :mod:`.clebsch_gordan` follow it. Names are imported on first use
(:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "CONDON_SHORTLEY": "harmonics",
    "convention_signs": "harmonics",
    "complex_to_real_matrix": "harmonics",
    "reference_real_spherical_harmonics": "harmonics",
    "real_spherical_harmonics": "harmonics",
    "real_solid_harmonics": "harmonics",
    "real_solid_harmonics_with_gradients": "harmonics",
    "clebsch_gordan_complex": "clebsch_gordan",
    "real_clebsch_gordan": "clebsch_gordan",
    "real_clebsch_gordan_sparse": "clebsch_gordan",
    "random_rotation": "wigner",
    "wigner_d_real": "wigner",
    "wigner_d_real_all": "wigner",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
