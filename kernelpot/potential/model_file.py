"""The ``.kpot`` model file: one versioned, portable file per model.

A ``.kpot`` file is a zip archive holding ``header.json`` (format version,
kernelpot version, hyperparameters, species, e0, ...) and one ``.npy``
array per learned quantity. It contains no pickles, so loading it runs no
code, and it reads on any platform with NumPy.

Files are written atomically: the archive is written to a temporary file
in the destination folder and renamed over the target, so an interrupted
save never leaves a truncated model behind.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .. import __version__

__all__ = ["FORMAT_VERSION", "ModelFileError", "save_model_file", "load_model_file"]

#: Newest version of the on-disk layout this kernelpot reads and writes. Bump it
#: when the layout changes; readers refuse files of a newer version rather than
#: guess. Version 2 (kernelpot 0.1.0, after 1): the header may hold a
#: ``"baseline"`` (a physical model under the GAP, e.g. fixed-charge Coulomb)
#: that an older reader would silently drop. Writers use the lowest version
#: that holds the model, so files without a baseline stay readable by
#: version-1 readers.
FORMAT_VERSION = 2
_MAGIC = "kernelpot-model"


class ModelFileError(ValueError):
    """A file that is not a readable kernelpot model (corrupt, foreign or too new)."""


def save_model_file(path, header: dict, arrays: dict[str, np.ndarray], *, format_version: int = FORMAT_VERSION) -> Path:
    """Write a model atomically as a ``.kpot`` archive.

    Parameters
    ----------
    path : str or Path
        Destination; its folder must exist.
    header : dict
        JSON-serialisable description of the model (hyperparameters, units,
        species, ...). ``format``, ``format_version`` and
        ``kernelpot_version`` are added.
    arrays : dict of str to ndarray
        Learned arrays; names must be unique and contain no ``/``.
    format_version : int, default=FORMAT_VERSION
        Layout version recorded in the file: the lowest that holds its
        content (1 to :data:`FORMAT_VERSION`).

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    if isinstance(format_version, bool) or format_version not in range(1, FORMAT_VERSION + 1):
        raise ValueError(f"`format_version` must be an integer from 1 to {FORMAT_VERSION}; got {format_version!r}")
    full_header = {
        "format": _MAGIC,
        "format_version": format_version,
        "kernelpot_version": __version__,
        **header,
        "arrays": sorted(arrays),
    }
    try:
        header_text = json.dumps(full_header, indent=2, sort_keys=True)
    except TypeError as error:
        raise TypeError(f"model header is not JSON-serialisable: {error}") from None
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("header.json", header_text)
            for name, value in arrays.items():
                if "/" in name:
                    raise ValueError(f"array name {name!r} must not contain '/'")
                buffer = io.BytesIO()
                np.save(buffer, np.asarray(value), allow_pickle=False)
                archive.writestr(f"arrays/{name}.npy", buffer.getvalue())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_model_file(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a ``.kpot`` archive written by :func:`save_model_file`.

    Returns
    -------
    header : dict
    arrays : dict of str to ndarray

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError
        Not a zip archive, not a kernelpot model, written by a newer format
        version, or with missing/corrupt arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    try:
        archive = zipfile.ZipFile(path, "r")
    except zipfile.BadZipFile:
        raise ModelFileError(
            f"{str(path)!r} is not a kernelpot model file (not a zip archive; corrupt or truncated?)"
        ) from None
    with archive:
        try:
            header = json.loads(archive.read("header.json"))
        except KeyError:
            raise ModelFileError(f"{str(path)!r} is not a kernelpot model file (no header.json)") from None
        except (ValueError, zipfile.BadZipFile) as error:
            raise ModelFileError(f"{str(path)!r} has a corrupt header: {error}") from None
        if header.get("format") != _MAGIC:
            raise ModelFileError(f"{str(path)!r} is not a kernelpot model file (format={header.get('format')!r})")
        version = header.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelFileError(
                f"{str(path)!r} uses model format version {version}, written by kernelpot "
                f"{header.get('kernelpot_version')}; this kernelpot {__version__} reads format versions "
                f"up to {FORMAT_VERSION}: upgrade kernelpot to load it"
            )
        arrays = {}
        for name in header.get("arrays", []):
            try:
                arrays[name] = np.load(io.BytesIO(archive.read(f"arrays/{name}.npy")), allow_pickle=False)
            except (KeyError, ValueError, zipfile.BadZipFile, EOFError) as error:
                raise ModelFileError(f"{str(path)!r}: array {name!r} is missing or corrupt ({error})") from None
    return header, arrays
