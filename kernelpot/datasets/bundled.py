"""Loaders of the small datasets bundled in the repository's ``data/`` folder."""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_path", "load_water_density"]


def data_path(*parts: str) -> Path:
    """Path of a file of the repository's bundled ``data/`` folder."""
    return Path(__file__).resolve().parents[2].joinpath("data", *parts)


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

    folder = data_path("water_density")
    return DensitySet.load(folder / "train.npz"), DensitySet.load(folder / "test.npz")
