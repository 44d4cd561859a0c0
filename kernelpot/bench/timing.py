"""The one timing helper of ``kernelpot bench`` and of the scripts in ``benchmarks/``.

Both codes of a comparison run in the same process and are timed the same
way: the best of ``repeat`` calls, as wall time and as process CPU time (all
threads). On a shared machine the CPU time of a single-threaded call is the
fairer measure; the wall time is what a user waits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["Timing", "measure", "best_time"]


@dataclass(frozen=True)
class Timing:
    """Best times of repeated calls.

    Attributes
    ----------
    wall : float
        Smallest wall time of one call, s.
    cpu : float
        Smallest process CPU time (all threads) of one call, s.
    result : object
        What the last call returned.
    """

    wall: float
    cpu: float
    result: object = None


def measure(function, repeat: int = 1) -> Timing:
    """Time ``repeat`` calls of ``function()``; the best wall and CPU times (s) and the last result."""
    if repeat < 1:
        raise ValueError(f"`repeat` must be >= 1; got {repeat}")
    wall = cpu = float("inf")
    result = None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return Timing(wall, cpu, result)


def best_time(function, repeat: int = 2) -> float:
    """Smallest wall time (s) of ``repeat`` calls of ``function()``."""
    return measure(function, repeat).wall
