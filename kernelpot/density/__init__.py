"""Electron densities: auxiliary Gaussian basis, integration grids and cube files, the dataset container.

* :mod:`.basis` — :class:`AuxiliaryBasis` (kernelpot's function order and real-harmonic convention);
* :mod:`.grid` — molecular integration grids, cube files;
* :mod:`.dataset` — :class:`DensitySet`: reference coefficients, overlaps, electron counts, dipoles;
* :mod:`.references` — making a :class:`DensitySet` with PySCF (optional, ``pip install kernelpot[density]``).

The model is :class:`kernelpot.models.DensityModel`; the bundled water set loads with
:func:`kernelpot.datasets.load_water_density`. Names are imported on first use (:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "AuxiliaryBasis": "basis",
    "BOHR": "basis",
    "molecular_grid": "grid",
    "write_density_cube": "grid",
    "DensitySet": "dataset",
    "closed_shell_electrons": "dataset",
    "compute_density_references": "references",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
