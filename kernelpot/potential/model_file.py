"""The ``.kpot`` model file: one versioned, portable file per model.

A ``.kpot`` file is a zip archive holding ``header.json`` (format version,
kernelpot version, hyperparameters, species, e0, ...) and one ``.npy``
array per learned quantity. It contains no pickles, so loading it runs no
code, and it reads on any platform with NumPy.

Files are written atomically (:func:`kernelpot.utils.files.atomic_write`): an
interrupted save never leaves a truncated model behind, and the next save
of the same path removes the temporary file a killed one left.

Reading a file from elsewhere is safe: before anything is inflated, every
member the loader will read is checked against limits, so a small hostile
file (a "zip bomb", a header declaring 10¹⁴ elements) cannot take memory
or time out of proportion to its size, and anything malformed is a
:class:`ModelFileError` that says what is wrong:

* only ``header.json`` and the arrays the header lists are read, each
  stored or deflated (no other compression methods);
* ``header.json`` is at most 16 MiB, a JSON object nested at most
  32 levels deep;
* the arrays together may not expand to more than
  ``max(64 MiB, 100 × the archive's size)``: kernelpot's arrays are
  floating-point numbers that deflate by a factor of 1 to ~20;
* each array's ``.npy`` header must describe a plain numeric or boolean
  array (no objects, no records) of at most 8 dimensions whose size is
  exactly the member's declared size, and the data are read in place into
  that array, never inflating past the declared size.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .. import __version__
from ..utils.files import atomic_write

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
_MAX_HEADER_BYTES = 16 * 2**20
_MAX_JSON_DEPTH = 32
_EXPANSION_LIMIT = 100
_FREE_BYTES = 64 * 2**20
_MAX_NDIM = 8
_NUMERIC_KINDS = "biuf"
_READ_CHUNK = 16 * 2**20
# What a corrupt or hostile member can raise while being inflated.
_INFLATE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)


class ModelFileError(ValueError):
    """A file that is not a readable kernelpot model (corrupt, foreign, hostile or too new)."""


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
    for name in arrays:
        if "/" in name:
            raise ValueError(f"array name {name!r} must not contain '/'")

    def write(stream):
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("header.json", header_text)
            for name, value in arrays.items():
                with archive.open(f"arrays/{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)

    return atomic_write(path, write)


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
        version, a malformed header, missing or corrupt arrays, or members
        beyond the limits of the module docstring (the message names the
        member and the limit).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    where = repr(str(path))
    try:
        archive = zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise ModelFileError(f"{where} is not a kernelpot model file (not a zip archive; corrupt or "
                             "truncated?)") from None
    with archive:
        header = _read_header(archive, where)
        names = _array_names(header, where)
        members = [_member(archive, f"arrays/{name}.npy", where) for name in names]
        allowance = max(_FREE_BYTES, _EXPANSION_LIMIT * path.stat().st_size)
        declared = sum(info.file_size for info in members)
        if declared > allowance:
            raise ModelFileError(
                f"{where}: its arrays declare {declared:,} bytes uncompressed from a {path.stat().st_size:,}-byte "
                f"file, more than the limit of max(64 MiB, {_EXPANSION_LIMIT} x the file size) = {allowance:,} "
                "bytes (a zip bomb, or not a kernelpot model)")
        arrays = {name: _read_array(archive, info, where) for name, info in zip(names, members)}
    return header, arrays


def _member(archive, name, where) -> zipfile.ZipInfo:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ModelFileError(f"{where}: {name} is missing") from None
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ModelFileError(f"{where}: {name} uses zip compression method {info.compress_type}; "
                             "kernelpot model files are stored or deflated")
    if info.flag_bits & 0x1:
        raise ModelFileError(f"{where}: {name} is encrypted")
    return info


def _read_header(archive, where) -> dict:
    try:
        info = _member(archive, "header.json", where)
    except ModelFileError:
        if "header.json" not in archive.namelist():
            raise ModelFileError(f"{where} is not a kernelpot model file (no header.json)") from None
        raise
    if info.file_size > _MAX_HEADER_BYTES:
        raise ModelFileError(f"{where}: header.json declares {info.file_size:,} bytes, more than the limit of "
                             f"{_MAX_HEADER_BYTES:,}")
    try:
        with archive.open(info) as stream:
            text = stream.read(_MAX_HEADER_BYTES + 1)
        header = json.loads(text)
    except RecursionError:
        raise ModelFileError(f"{where} has a corrupt header: header.json is nested too deeply") from None
    except (ValueError, *_INFLATE_ERRORS) as error:
        raise ModelFileError(f"{where} has a corrupt header: {error}") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{where} has a corrupt header: header.json holds a JSON {type(header).__name__}, "
                             "not an object")
    if _json_depth(header) > _MAX_JSON_DEPTH:
        raise ModelFileError(f"{where} has a corrupt header: header.json is nested more than {_MAX_JSON_DEPTH} "
                             "levels deep")
    if header.get("format") != _MAGIC:
        raise ModelFileError(f"{where} is not a kernelpot model file (format={header.get('format')!r})")
    version = header.get("format_version")
    if type(version) is not int or version < 1:
        raise ModelFileError(f"{where} has a corrupt header: `format_version` must be an integer >= 1; "
                             f"got {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{where} uses model format version {version}, written by kernelpot "
            f"{header.get('kernelpot_version')}; this kernelpot {__version__} reads format versions "
            f"up to {FORMAT_VERSION}: upgrade kernelpot to load it"
        )
    return header


def _json_depth(value) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > _MAX_JSON_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _array_names(header, where) -> list[str]:
    names = header.get("arrays", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n and "/" not in n for n in names):
        raise ModelFileError(f"{where} has a corrupt header: `arrays` must be a list of array names; "
                             f"got {str(names)[:200]}")
    if len(set(names)) != len(names):
        raise ModelFileError(f"{where} has a corrupt header: `arrays` lists a name twice")
    return names


def _read_array(archive, info, where) -> np.ndarray:
    name = info.filename
    try:
        with archive.open(info) as stream:
            shape, fortran, dtype, offset = _npy_header(stream, name, where)
            count = int(np.prod(shape, dtype=object))
            if offset + count * dtype.itemsize != info.file_size:
                raise ModelFileError(
                    f"{where}: {name} declares a {dtype} array of shape {shape} "
                    f"({count * dtype.itemsize:,} bytes) but the member holds {info.file_size - offset:,} bytes")
            flat = np.empty(count, dtype=dtype)
            buffer = memoryview(flat.view(np.uint8) if count else np.empty(0, np.uint8))
            filled = 0
            while filled < len(buffer):
                got = stream.readinto(buffer[filled : filled + _READ_CHUNK])
                if not got:
                    break
                filled += got
            if filled != len(buffer) or stream.read(1):
                raise ModelFileError(f"{where}: {name} is truncated or longer than declared")
    except _INFLATE_ERRORS as error:
        raise ModelFileError(f"{where}: array {name} is corrupt ({error})") from None
    return flat.reshape(shape, order="F" if fortran else "C")


def _npy_header(stream, name, where):
    """Shape, Fortran order, dtype and data offset of a ``.npy`` stream, all validated."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, TypeError, SyntaxError) as error:
        raise ModelFileError(f"{where}: {name} is not a valid .npy array ({error})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in _NUMERIC_KINDS or dtype.subdtype:
        raise ModelFileError(f"{where}: {name} has dtype {dtype}; model arrays are plain numbers or booleans")
    if len(shape) > _MAX_NDIM or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ModelFileError(f"{where}: {name} has an invalid shape {shape}")
    return tuple(shape), bool(fortran), dtype, stream.tell()
