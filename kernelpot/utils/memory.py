"""Memory sizes: parsing ``"4GB"``-style budgets and the resident memory of this process."""

from __future__ import annotations

import re

import numpy as np

__all__ = ["parse_memory", "resident_bytes"]

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
