"""The one timing helper of ``kernelpot bench`` and of the scripts in ``benchmarks/``.

Both codes of a comparison run in the same process and are timed the same
way: the best of ``repeat`` calls, as wall time and as process CPU time (all
threads). On a shared machine the CPU time of a single-threaded call is the
fairer measure; the wall time is what a user waits. Calls of a few ms, whose
differences are as small as a shared machine's spikes, are compared through
the medians of interleaved rounds (:func:`interleaved_cpu`).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

__all__ = ["Timing", "measure", "best_time", "first_calls", "interleaved_cpu"]


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


def first_calls(code: str, *arguments: str, runs: int = 2, env: dict | None = None) -> list[str]:
    """Numba's first-call cost: run ``python -c code *arguments`` ``runs`` times in fresh processes sharing one
    new, empty ``NUMBA_CACHE_DIR``, so the first run compiles every kernel it calls (cold) and later runs load
    them from the on-disk cache (warm).

    Parameters
    ----------
    code : str
        A script that times what it measures and prints the result on its last line of output.
    *arguments : str
        Its command-line arguments (``sys.argv[1:]``).
    runs : int, default=2
        1: the cold run only; 2: cold, then warm.
    env : dict or None
        Extra environment variables (e.g. thread counts) over this process's.

    Returns
    -------
    list of str
        The last line each run printed, cold first.
    """
    lines = []
    with tempfile.TemporaryDirectory(prefix="kernelpot-numba-") as cache:
        environment = {**os.environ, **(env or {}), "NUMBA_CACHE_DIR": cache}
        for _ in range(runs):
            done = subprocess.run([sys.executable, "-c", code, *map(str, arguments)], env=environment,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"the first-call script failed:\n{done.stderr[-2000:]}")
            lines.append(done.stdout.strip().splitlines()[-1])
    return lines


def interleaved_cpu(calls: dict, repeats: int, target: float = 0.02) -> dict:
    """CPU seconds per call of each function in each of ``repeats`` rounds: ``{name: [s, ...]}``.

    Every round times every function once, in alternating order (so neither always runs right after the
    other); a timing repeats its function enough times to last about ``target`` s, so that small boxes are
    not measured at the clock's resolution. Medians over rounds of these are robust to the spikes a shared
    machine adds to single calls.
    """
    loops = {}
    for name, call in calls.items():
        call()                                        # warm: compile, caches
        loops[name] = max(1, math.ceil(target / max(measure(call).cpu, 1e-6)))
    samples = {name: [] for name in calls}
    names = list(calls)
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            start = time.process_time()
            for _ in range(loops[name]):
                calls[name]()
            samples[name].append((time.process_time() - start) / loops[name])
    return samples
