"""Neighbour list speed: kernelpot's Numba cell list vs ``ase.neighborlist.neighbor_list``.

Both run in this process on the same structures:

* 20 periodic boxes of 64 water molecules at 1 g/cm³ (L ≈ 12.4 Å; molecules on a
  4×4×4 grid with random orientations and jitter), cutoff 6.9 Å; also one box of
  512 molecules (L ≈ 24.8 Å), where ASE's own binning is no longer degenerate;
* the first 1,000 QM7 molecules (``qm/qm7_qml/qm7_pbe0_7101.extxyz``), cutoff 8 Å.

Also the time of the first call in a fresh interpreter, with an empty Numba
cache (cold: compilation) and with the cache just written (warm: load).
ASE is timed structure by structure, as a user would call it; kernelpot gets
the packed list. Run: ``python benchmarks/neighbours.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ase import Atoms
from ase.io import read
from ase.neighborlist import neighbor_list

from kernelpot.bench.systems import water_box
from kernelpot.bench.timing import best_time, first_calls
from kernelpot.structures.neighbours import neighbour_list
from kernelpot.structures.packing import pack

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
QM7 = SHARED_DATA / "qm" / "qm7_qml" / "qm7_pbe0_7101.extxyz"

def compare(name: str, structures: list[Atoms], cutoff: float, repeat: int, ase_repeat: int) -> None:
    packed = pack(structures)
    neighbour_list(packed, cutoff)  # compile or load outside the timing
    n_pairs = neighbour_list(packed, cutoff).n_pairs
    n_ase = sum(len(neighbor_list("i", atoms, cutoff)) for atoms in structures)
    assert n_pairs == n_ase, (n_pairs, n_ase)
    t_ase = best_time(lambda: [neighbor_list("ijSdD", atoms, cutoff) for atoms in structures], ase_repeat)
    t_kp = best_time(lambda: neighbour_list(packed, cutoff), repeat)
    t_pack = best_time(lambda: neighbour_list(pack(structures), cutoff), repeat)
    print(f"{name:34s} pairs {n_pairs:9d}   ase {t_ase * 1e3:8.1f} ms   kernelpot {t_kp * 1e3:7.1f} ms "
          f"(with pack {t_pack * 1e3:7.1f} ms)   ase/kernelpot {t_ase / t_kp:6.1f}x")


FIRST_CALL = """
import time
t0 = time.perf_counter()
from ase.build import bulk, molecule
from kernelpot.structures.packing import pack
from kernelpot.bench.systems import water_box
from kernelpot.bench.timing import best_time, first_calls
from kernelpot.structures.neighbours import neighbour_list
t1 = time.perf_counter()
c1 = time.process_time()
neighbour_list(pack([bulk('Si'), molecule('CH4')]), 5.0)
t2 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {time.process_time() - c1:.2f}")
"""


def first_call_times() -> None:
    for label, line in zip(("cold (empty Numba cache)", "warm (cache on disk)"), first_calls(FIRST_CALL)):
        out = line.split()
        print(f"first call, {label:26s}: import {float(out[0]):5.2f} s, "
              f"first neighbour_list {float(out[1]):6.2f} s wall, {float(out[2]):6.2f} s CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="kernelpot timings: best of N")
    parser.add_argument("--ase-repeat", type=int, default=1, help="ASE timings: best of N")
    parser.add_argument("--no-first-call", action="store_true", help="skip the cold/warm compile timing")
    args = parser.parse_args()
    import numba

    print(f"numba {numba.__version__}, {numba.get_num_threads()} threads; "
          f"best of {args.repeat} (kernelpot) and {args.ase_repeat} (ASE)")
    rep = (args.repeat, args.ase_repeat)
    boxes = [water_box(seed=seed) for seed in range(20)]
    compare("20 water boxes (192 atoms), 6.9 A", boxes, 6.9, *rep)
    compare("1 water box (192 atoms), 6.9 A", boxes[:1], 6.9, *rep)
    compare("1 water box (1536 atoms), 6.9 A", [water_box(n_side=8)], 6.9, *rep)
    if QM7.is_file():
        molecules = read(QM7, index=":1000")
        compare("1000 QM7 molecules, 8 A", molecules, 8.0, *rep)
        everything = read(QM7, index=":")
        compare(f"{len(everything)} QM7 molecules, 8 A", everything, 8.0, *rep)
    else:
        print(f"QM7 not found at {QM7}; skipped")
    if not args.no_first_call:
        first_call_times()


if __name__ == "__main__":
    main()
