"""Uncertainty of kernelpot models: calibration metrics and recalibration, committees, descriptor novelty.

Names are imported on first use (:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "recalibrate": "calibration",
    "calibration_summary": "calibration",
    "coverage": "calibration",
    "fit_std_scale": "calibration",
    "fit_std_scale_floor": "calibration",
    "gaussian_nll": "calibration",
    "observed_std": "calibration",
    "reliability_diagram": "calibration",
    "spearman": "calibration",
    "z_scores": "calibration",
    "CommitteeSparseGPR": "committee",
    "kernel_distance": "novelty",
    "novelty": "novelty",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
