"""Loaders of the small datasets bundled with kernelpot.

The files live in the repository's ``data/`` folder; ``kernelpot/data`` links
to it, and the wheel carries them as package data, so they are found through
:mod:`importlib.resources` in a source checkout, an editable install and an
installed wheel alike. Their sources and licences: ``data/README.md``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["data_path", "load_water_density"]


def data_path(*parts: str) -> Path:
    """Path of a bundled data file or folder, e.g. ``data_path("mlearn_si", "mlearn_Si_test.extxyz")``.

    Parameters
    ----------
    *parts : str
        Path components below the data folder.

    Returns
    -------
    Path

    Raises
    ------
    FileNotFoundError
        The file is not bundled (or the installation lacks its data files).
    """
    path = Path(str(resources.files("kernelpot").joinpath("data", *parts)))
    if not path.exists():
        raise FileNotFoundError(f"bundled data file {'/'.join(parts)!r} not found at {path}; kernelpot's data "
                                "files are missing from this installation (reinstall kernelpot)")
    return path


def load_water_density():
    """Bundled water densities (PBE/cc-pVDZ, fitted on cc-pVDZ-JKFIT), without PySCF.

    Returns
    -------
    train : DensitySet
        40 water monomers and 3 dimers.
    test : DensitySet
        20 other monomers and 2 other dimers.

    Notes
    -----
    Made by ``examples/density/make_dataset.py`` (see ``data/water_density/README.md``);
    overlaps are stored in float32.
    """
    from ..density.dataset import DensitySet

    return (DensitySet.load(data_path("water_density", "train.npz")),
            DensitySet.load(data_path("water_density", "test.npz")))
