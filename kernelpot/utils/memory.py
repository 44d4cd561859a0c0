"""Memory sizes: parsing ``"4GB"``-style budgets and the resident memory of this process."""

from __future__ import annotations

import re

import numpy as np

__all__ = ["parse_memory", "resident_bytes", "release_freed_memory", "return_large_frees_at_once"]

_UNITS = {"": 2**20, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6,
          "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}


def parse_memory(value, name="max_memory"):
    """Bytes of a memory size: a number of MiB, or a string such as ``"4GB"``, ``"512 MiB"``.

    Decimal units (kB, MB, GB, TB) are powers of 1000, binary ones (KiB,
    MiB, GiB, TiB) powers of 1024; a bare number is MiB.

    Returns
    -------
    int
    """
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a number of MiB or a string like '4GB'; got {value!r}")
    if isinstance(value, (int, float, np.number)):
        number, unit = float(value), ""
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*", value)
        if match is None or match.group(2).lower() not in _UNITS:
            raise ValueError(f"`{name}` must be a size like '4GB', '512MiB' or a number of MiB; got {value!r}")
        number, unit = float(match.group(1)), match.group(2).lower()
    else:
        raise TypeError(f"`{name}` must be a number of MiB or a string like '4GB'; got {value!r}")
    if not (np.isfinite(number) and number > 0):
        raise ValueError(f"`{name}` must be > 0; got {value!r}")
    return int(number * _UNITS[unit])


def resident_bytes():
    """Resident memory (RSS) of this process now, in bytes, as the operating system reports it (psutil).

    Returns
    -------
    int
    """
    import psutil

    return int(psutil.Process().memory_info().rss)


def _libc():
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def release_freed_memory() -> None:
    """Give memory that Python and NumPy have freed back to the operating system (glibc's ``malloc_trim``).

    glibc keeps freed heap memory for reuse, and raises its threshold for
    serving large arrays by ``mmap`` after each one is freed, so a loop that
    allocates and frees blocks of arrays (a fit) sees its resident memory
    creep above what it holds. A no-op where the C library has no
    ``malloc_trim`` (macOS, Windows, musl).
    """
    try:
        libc = _libc()
        trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    except OSError:  # pragma: no cover - no loadable C library
        return
    if trim is not None:
        trim(0)


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# Allocations from this size on are served by mmap and unmapped when freed (glibc's default is 128 KiB, raised
# automatically up to 32 MiB each time such a block is freed, after which freed arrays stay in the heap).
_MMAP_THRESHOLD = 256 * 2**10


def return_large_frees_at_once() -> None:
    """Make this process's freed arrays of 256 KiB and more leave its resident memory at once (glibc only).

    Fixes glibc's mmap threshold at 256 KiB (which switches off its
    automatic raising) and its trim threshold at 1 MiB. A process that
    asked for a memory budget (``SparseGPR(max_memory=...)``) gets this, so
    its resident memory follows the arrays it holds; the cost is a page
    fault per page of each large array, which the fit's arrays pay anyway
    when they are filled. A no-op without glibc.
    """
    try:
        libc = _libc()
        mallopt = getattr(libc, "mallopt", None) if libc is not None else None
    except OSError:  # pragma: no cover
        return
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        mallopt(_M_TRIM_THRESHOLD, 2**20)
