"""Small datasets bundled with kernelpot (in the repository's ``data/`` folder)."""

from __future__ import annotations

from pathlib import Path

from .density import DensitySet
from .tensors import QM7X_FILES, TENSOAP_FILES, TensorDataset, read_tensor_data

__all__ = ["DensitySet", "load_water_density", "data_path", "TensorDataset", "read_tensor_data", "TENSOAP_FILES",
           "QM7X_FILES"]


def data_path(*parts: str) -> Path:
    """Path of a file of the repository's bundled ``data/`` folder."""
    return Path(__file__).resolve().parents[2].joinpath("data", *parts)


def load_water_density() -> tuple[DensitySet, DensitySet]:
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
    folder = data_path("water_density")
    return DensitySet.load(folder / "train.npz"), DensitySet.load(folder / "test.npz")
