"""Throughput of kernelpot's MBTR (k2 + k3) on QM7 molecules, against dscribe 2.1.

dscribe 2.1.2's MBTR does not run with ase >= 3.26, which kernelpot's
environment has, so the two cannot share a process: dscribe is timed in a
subprocess of a separate environment with ase 3.25 (the one that makes the
frozen test references)::

    python3 -m venv /tmp/mbtr-ref-venv
    /tmp/mbtr-ref-venv/bin/pip install "ase==3.25.*" "dscribe==2.1.2" numpy
    python benchmarks/mbtr.py --n-molecules 1000

Both sides time only the descriptor call on already-read structures (best of
``--repeats``); dscribe runs serially (``n_jobs=1``), kernelpot with Numba's
default thread count and with one thread. The first-call (cold cache)
compile time is measured in a fresh process with an empty Numba cache. The
dscribe outputs are also compared with kernelpot's (max |diff| / max |value|).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from kernelpot.bench.timing import first_calls, measure

REPO = Path(__file__).resolve().parents[1]
QM7 = REPO.parent / "shared" / "data" / "qm" / "qm7_qml" / "qm7_pbe0_7101.extxyz"
SPECIES = ["H", "C", "N", "O", "S"]
SETTINGS = {
    "k2": dict(geometry={"function": "inverse_distance"},
               grid={"min": 0.0, "max": 1.0, "n": 100, "sigma": 0.1},
               weighting={"function": "exp", "scale": 0.5, "threshold": 1e-3},
               normalization="l2"),
    "k3": dict(geometry={"function": "cosine"},
               grid={"min": -1.0, "max": 1.0, "n": 100, "sigma": 0.1},
               weighting={"function": "exp", "scale": 0.5, "threshold": 1e-3},
               normalization="l2"),
}

_DSCRIBE_SIDE = r"""
import json, sys, time
import numpy as np, ase.io
from dscribe.descriptors import MBTR
path, n, repeats, species, settings, out = sys.argv[1:7]
structures = ase.io.read(path, index=":" + n)
results = {}
arrays = {}
for name, setting in json.loads(settings).items():
    descriptor = MBTR(species=json.loads(species), periodic=False, **setting)
    best = float("inf")
    for _ in range(int(repeats)):
        start = time.perf_counter()
        arrays[name] = descriptor.create(structures, n_jobs=1)
        best = min(best, time.perf_counter() - start)
    results[name] = best
np.savez(out, **arrays)
print(json.dumps(results))
"""

_COLD_SIDE = r"""
import json, sys, time
def clock():
    return time.perf_counter(), time.process_time()
t0 = clock()
from ase.build import molecule
from kernelpot.descriptors.mbtr import MBTR
from kernelpot.structures.neighbours import neighbour_list
from kernelpot.structures.packing import pack
t1 = clock()
neighbour_list(pack(molecule("CH3OH")), 3.0)  # shared kernels, compiled once for all descriptors
t2 = clock()
result = {"import": (t1[0] - t0[0], t1[1] - t0[1]), "neighbour_list": (t2[0] - t1[0], t2[1] - t1[1])}
for name, setting in json.loads(sys.argv[1]).items():
    before = clock()
    MBTR(species=["H", "C", "N", "O", "S"], **setting).transform([molecule("CH3OH")])
    after = clock()
    result[name] = (after[0] - before[0], after[1] - before[1])
print(json.dumps(result))
"""


def _time_kernelpot(structures, repeats):
    from kernelpot.descriptors.mbtr import MBTR

    timings, outputs = {}, {}
    for name, setting in SETTINGS.items():
        descriptor = MBTR(species=SPECIES, **setting)
        descriptor.transform(structures[:2])  # compile / load the cache
        timing = measure(lambda: descriptor.transform(structures), repeats)
        timings[name], outputs[name] = timing.wall, timing.result
    return timings, outputs


def _cold_compile():
    return json.loads(first_calls(_COLD_SIDE, json.dumps(SETTINGS), runs=1)[0])


def _time_dscribe(python, n_molecules, repeats):
    with tempfile.TemporaryDirectory() as work:
        script = Path(work) / "dscribe_side.py"
        script.write_text(_DSCRIBE_SIDE)
        out = Path(work) / "dscribe.npz"
        done = subprocess.run(
            [python, "-W", "ignore", str(script), str(QM7), str(n_molecules), str(repeats),
             json.dumps(SPECIES), json.dumps(SETTINGS), str(out)],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            return None, None, done.stderr.strip().splitlines()[-1]
        with np.load(out) as data:
            arrays = {name: data[name] for name in data.files}
        return json.loads(done.stdout.strip().splitlines()[-1]), arrays, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-molecules", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dscribe-python", default="/tmp/mbtr-ref-venv/bin/python",
                        help="Python of an environment with dscribe 2.1.2 and ase 3.25")
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold-compile run")
    args = parser.parse_args()

    import ase.io
    import numba

    structures = ase.io.read(QM7, index=f":{args.n_molecules}")
    n_atoms = sum(len(a) for a in structures)
    print(f"{len(structures)} QM7 molecules ({n_atoms} atoms), species {SPECIES}, "
          f"grid n=100, exp weighting (scale 0.5, threshold 1e-3), l2 normalisation")
    if not args.skip_cold:
        cold = _cold_compile()
        print("cold start (empty Numba cache), wall / CPU seconds: " + ", ".join(
            f"{step} {wall:.1f} / {cpu:.1f}" for step, (wall, cpu) in cold.items()))
    threads = numba.get_num_threads()
    ours, outputs = _time_kernelpot(structures, args.repeats)
    numba.set_num_threads(1)
    ours_serial, _ = _time_kernelpot(structures, args.repeats)
    numba.set_num_threads(threads)

    theirs, reference, error = None, None, "no dscribe environment"
    if Path(args.dscribe_python).exists():
        theirs, reference, error = _time_dscribe(args.dscribe_python, args.n_molecules, args.repeats)
    for name in SETTINGS:
        line = (f"{name}: kernelpot {ours[name]:.3f} s ({len(structures) / ours[name]:.0f} mol/s, "
                f"{threads} threads), {ours_serial[name]:.3f} s (1 thread)")
        if theirs is not None:
            diff = np.abs(outputs[name] - reference[name]).max() / np.abs(reference[name]).max()
            line += (f"; dscribe {theirs[name]:.3f} s (subprocess, ase 3.25 venv); "
                     f"speed-up {theirs[name] / ours[name]:.1f}x ({theirs[name] / ours_serial[name]:.1f}x "
                     f"single thread); max rel diff {diff:.1e}")
        print(line)
    if theirs is None:
        print(f"dscribe not timed: {error}")


if __name__ == "__main__":
    main()
