"""kernelpot: kernel-based atomistic machine learning.

The package reads like the pipeline it implements::

    structures -> descriptors -> kernels -> models -> applications

(layout: ``docs/architecture.md``). The everyday names are importable from
here as well as from their packages (``from kernelpot import SOAP, SparseGPR,
GAPCalculator``); like every kernelpot package, this one imports a name's
module only when the name is first used (:mod:`kernelpot.utils.lazy`), so
``import kernelpot`` is cheap.
"""

from .utils.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    # descriptors
    "SOAP": "descriptors",
    "LambdaSOAP": "descriptors",
    "FCHL19": "descriptors",
    "MBTR": "descriptors",
    "CoulombMatrix": "descriptors",
    "Distance2B": "descriptors",
    "Angle3B": "descriptors",
    # kernels
    "Gaussian": "kernels",
    "NormalizedDotProduct": "kernels",
    "LocalKernel": "kernels",
    "GaussianCovariance": "kernels",
    "NormalizedDotProductCovariance": "kernels",
    # models
    "KernelRidge": "models",
    "GaussianProcessRegressor": "models",
    "SparseGPR": "models",
    "GAPTerm": "models",
    "IncrementalSparseGPR": "models",
    "AutoChoice": "models",
    "SymmetryAdaptedGPR": "models",
    "TensorRegressor": "models",
    "DensityModel": "models",
    # selection
    "FPS": "selection",
    "CUR": "selection",
    # potentials
    "GAPCalculator": "potential",
    "CoulombBaseline": "potential",
    "load_model": "potential",
    "save_model": "potential",
    "terms_from_gap_string": "potential",
    # uncertainty
    "recalibrate": "uncertainty",
    "CommitteeSparseGPR": "uncertainty",
    # active learning
    "ActiveLearner": "active",
    # reading labelled data
    "read_labelled": "io",
    # electrostatics
    "coulomb": "electrostatics",
    "coulomb_matrix": "electrostatics",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
__all__ = ["__version__", *__all__]
