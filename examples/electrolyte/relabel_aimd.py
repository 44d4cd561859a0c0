"""Step 1 (the reachable substitute): an xTB test set and (c) pool from an existing NaCl–water AIMD data set.

The issue's test set (≥ 40 frames ≥ 2 ps apart of a direct 330 K xTB MD, i.e. 80 ps) and a direct xTB MD for
the (c) control cost days of one core here (4.8 s per xTB call on 98 atoms; ~1.3 h per ps).
:mod:`make_reference` makes them when time allows. This script makes a substitute in minutes of CPU: frames
of 1 NaCl + 62 H2O (188 atoms, 12.42 Å cubic) from the revPBE0-D3 data set of O'Neill et al. (bundled in the
shared data as ``electrolytes/nacl_water/revPBE0-D3_gen1e.data``, CC BY-SA 4.0; liquid configurations from
their MD) relabelled with GFN2-xTB:

* ``reference/test_aimd.extxyz``: ``--n-test`` frames chosen greedily so that their MD times are at least
  ``--spacing`` apart (the file's ``time`` comment);
* ``reference/pool_aimd.extxyz``: other frames of the same file (none within ``--exclude`` of a test frame),
  equally spaced in time: the (c) control "label frames of an existing AIMD trajectory".

Both sets are labelled in van der Corput order (0, n/2, n/4, 3n/4, ...), one frame of each in turn, so the
first k frames of either are k nearly equally spaced frames of its span: stopped early, the run still leaves
a spread-out test set and a pool whose prefixes are the (c) control at any number of calls.

The model is local (SOAP 3 Å, pair terms 4.5 Å), so a model learned on the 98-atom box is tested on these 188-atom
boxes as is (forces; energies differ by the box). Resumable: each labelled frame is appended at once; an
xTB failure (tblite raises or returns NaN) is logged in ``<file>.failures.json``, counted and skipped.

    OMP_NUM_THREADS=1 nohup nice -n 19 python examples/electrolyte/relabel_aimd.py > relabel.log 2>&1 &
"""

from __future__ import annotations

import io
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import default_oracle, make_oracle, work_parser


def source_frames(path):
    """Frames of the RuNNer file with their MD time (from the ``comment ... time = t`` line)."""
    from kernelpot.structures import read_runner

    frames = read_runner(path)
    times = []
    for k, atoms in enumerate(frames):
        match = re.search(r"time\s*=\s*([-0-9.eE+]+)", str(atoms.info.get("comment", "")))
        times.append(float(match.group(1)) if match else float(k))  # no time stamp: the block order
    return frames, np.array(times)


def spaced(times, spacing, n):
    """Indices of up to ``n`` frames, greedily in time order, at least ``spacing`` apart."""
    order = [i for i in np.argsort(times) if np.isfinite(times[i])]
    chosen = []
    for i in order:
        if not chosen or times[i] - times[chosen[-1]] >= spacing:
            chosen.append(int(i))
    if len(chosen) > n:  # keep n spread over the whole span
        chosen = [chosen[k] for k in np.linspace(0, len(chosen) - 1, n).round().astype(int)]
    return chosen


def van_der_corput(n):
    """0, n/2, n/4, 3n/4, ...: an order of range(n) whose prefixes are nearly equally spaced."""
    def radical(k):
        value, base = 0.0, 0.5
        while k:
            value += base * (k & 1)
            k >>= 1
            base /= 2
        return value

    order, seen = [], set()
    k = 0
    while len(order) < n:
        index = int(radical(k) * n)
        if index not in seen:
            seen.add(index)
            order.append(index)
        k += 1
    return order


def _read(path):
    import ase.io

    return list(ase.io.read(path, index=":")) if path.is_file() and path.stat().st_size else []


def label_interleaved(jobs, oracle):
    """Label the frames of several sets in turn (one of each per round), each appended to its file at once.

    ``jobs`` is a list of ``(path, frames, name)``; frames already in a file (same ``source_index``) or
    failed before (``<file>.failures.json``) are skipped, so a killed run resumes. Interleaving (and the
    spread-out order of each set) makes whatever exists when the run is stopped a usable test set and pool.
    """
    import ase.io

    from kernelpot.active.oracles import label

    queues = []
    for path, frames, name in jobs:
        failures_path = path.with_name(path.name + ".failures.json")
        failures = json.loads(failures_path.read_text()) if failures_path.is_file() else []
        done = {a.info.get("source_index") for a in _read(path)} | {f["source_index"] for f in failures}
        todo = [a for a in frames if a.info["source_index"] not in done]
        queues.append((path, todo, name, failures, failures_path, len(frames)))
    while any(q[1] for q in queues):
        for path, todo, name, failures, failures_path, total in queues:
            if not todo:
                continue
            atoms = todo.pop(0)
            started = time.process_time()
            labelled, reason = label(atoms, oracle)
            seconds = time.process_time() - started
            count = total - len(todo)
            if labelled is None:
                failures.append({"source_index": atoms.info["source_index"], "reason": reason})
                failures_path.write_text(json.dumps(failures, indent=1))
                print(f"{name} {count}/{total}: xTB failed ({reason}); skipped", flush=True)
                continue
            labelled.info.update({key: atoms.info[key] for key in ("source_index", "md_time")})
            labelled.info["xtb_cpu_seconds"] = seconds
            buffer = io.StringIO()
            ase.io.write(buffer, labelled, format="extxyz")
            with open(path, "a") as stream:
                stream.write(buffer.getvalue())
            print(f"{name} {count}/{total}: {seconds:.1f} s CPU", flush=True)


def main(argv=None):
    parser = work_parser(__doc__)
    parser.add_argument("--source", type=Path, default=None,
                        help="RuNNer file (default: the shared gen1e file, else the bundled subset)")
    parser.add_argument("--n-test", type=int, default=40)
    parser.add_argument("--spacing", type=float, default=400.0, help="minimum MD-time spacing of test frames")
    parser.add_argument("--n-pool", type=int, default=40)
    parser.add_argument("--exclude", type=float, default=100.0, help="pool frames keep this far from test frames")
    parser.add_argument("--label-test", type=int, default=None,
                        help="label only the first k test frames of their spread-out order (default: all)")
    parser.add_argument("--label-pool", type=int, default=None, help="label only the first k pool frames")
    args = parser.parse_args(argv)
    from production import source_path

    source = args.source or source_path()
    frames, times = source_frames(source)
    for i, atoms in enumerate(frames):
        atoms.info = {"source_index": i, "md_time": float(times[i])}
    test = spaced(times, args.spacing, args.n_test)
    near = np.array([np.min(np.abs(times[test] - t)) < args.exclude for t in times])
    rest = [i for i in np.argsort(times) if not near[i] and i not in test]
    pool = [rest[k] for k in np.linspace(0, len(rest) - 1, min(args.n_pool, len(rest))).round().astype(int)]
    pool = [pool[k] for k in van_der_corput(len(pool))]
    test = [test[k] for k in van_der_corput(len(test))]  # any prefix spans the whole trajectory
    folder = args.work / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    summary = {"source": str(source), "n_test": len(test), "test_times": times[test].tolist(),
               "n_pool": len(pool), "pool_times": times[pool].tolist(), "spacing": args.spacing}
    (folder / "aimd_split.json").write_text(json.dumps(summary, indent=1))
    print(f"test: {len(test)} frames, times {times[test].min():.0f}..{times[test].max():.0f}; pool: {len(pool)}",
          flush=True)
    oracle = make_oracle(args.oracle or default_oracle())
    label_interleaved([(folder / "test_aimd.extxyz", [frames[i] for i in test[:args.label_test]], "test"),
                       (folder / "pool_aimd.extxyz", [frames[i] for i in pool[:args.label_pool]], "pool")], oracle)


if __name__ == "__main__":
    main()
