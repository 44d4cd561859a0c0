"""Loaders of datasets: the small sets bundled in ``data/`` and the tensor files of TENSOAP / QM7-X.

Loaders only load: the containers live with their concept (:class:`kernelpot.density.DensitySet`), and
reference generation apart (:mod:`kernelpot.density.references`). Names are imported on first use
(:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "data_path": "bundled",
    "load_water_density": "bundled",
    "TensorDataset": "tensors",
    "read_tensor_data": "tensors",
    "TENSOAP_FILES": "tensors",
    "QM7X_FILES": "tensors",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
