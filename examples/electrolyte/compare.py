"""Step 2b: learning curves — force RMSE on the xTB test set against oracle calls, per strategy and seed.

For every learning run in ``<work>/learn/`` (``<strategy>_seed<k>``) and every number of calls n in
``--calls``, the example's GAP recipe is fitted afresh on the first n structures the run labelled (the order
of its checkpoint journal; failed oracle calls count as calls but give no structure), and so is the (c)
control on the first n frames of the relabelled AIMD pool (``relabel_aimd.py``; a prefix of its van der
Corput order is n nearly equally spaced frames). A fresh full fit at every n treats all arms alike (the loop
itself refits incrementally). Writes ``<work>/compare/curves.json``, ``curves.md`` and ``curves.png``
(``curves_<test file stem>.*`` for a test set given with ``--test``, e.g. ``model_reference.py``'s).

    python examples/electrolyte/compare.py --calls 4,12,20,40,60,90,120,150
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import force_errors, gap_string, gap_template, work_parser

LABELS = {"variance": "(a) σ-driven (calibrated force σ)", "random": "(b) random frames of the model's MD",
          "committee": "committee disagreement", "distance": "descriptor distance",
          "pool": "(c) equally spaced AIMD frames"}


def _read(path):
    import ase.io

    return list(ase.io.read(path, index=":")) if path.is_file() and path.stat().st_size else []


def frames_digest(test):
    """8 hex digits of the test frames' species, positions and forces: the test set's identity."""
    digest = hashlib.sha1()
    for atoms in test:
        for array in (atoms.numbers, atoms.positions, atoms.get_forces()):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:8]


def runs(work):
    """``{run name: (labelled structures in labelling order, oracle calls, failures)}`` of each learning run."""
    from kernelpot.active.checkpoint import Checkpoint

    out = {}
    for folder in sorted((work / "learn").glob("*_seed*")):
        if not (folder / "labelled.extxyz").is_file():
            continue
        labelled = Checkpoint(folder).load_labelled()
        log = Checkpoint(folder).read_log()
        failures = [r for r in log if r.get("kind") == "failure"]
        # Oracle calls spent when each structure was labelled: the rank of its call in the journal, which records
        # every call before it is made (failed calls, and a call cut off by a kill and made again, count too).
        calls = [r["key"] for r in log if r.get("kind") == "call"]
        rank = {key: k + 1 for k, key in enumerate(calls)}  # the last call of a key is the one that labelled it
        spent = [rank.get(a.info.get("active_key"), k + 1) for k, a in enumerate(labelled)]
        n_calls = max(len(calls), len(labelled) + len(failures))
        out[folder.name] = (labelled, spent, n_calls, len(failures))
    return out


def curve(frames, calls, test, *, n_sparse, seed, cache=None, fit=True, spent=None):
    """Rows ``{calls, atoms_labelled, forces_rmse, ...}``; each is cached in ``cache/<n>.json`` (resumable, and
    several processes may share the work: ``--runs``). ``spent[k]``: oracle calls made when ``frames[k]`` was
    labelled (default k + 1: no failures); n calls give the frames labelled within them."""
    spent = list(range(1, len(frames) + 1)) if spent is None else spent
    rows = []
    for n in calls:
        if not spent or n > spent[-1]:
            break
        n_frames = sum(c <= n for c in spent)
        path = None if cache is None else cache / f"{n}.json"
        if path is not None and path.is_file():
            rows.append(json.loads(path.read_text()))
            continue
        if not fit:
            continue
        train = frames[:n_frames]
        started = time.process_time()
        model = gap_template(n_sparse=n_sparse, random_state=seed).fit(
            train, energies=[a.get_potential_energy() for a in train], forces=[a.get_forces() for a in train])
        rows.append({"calls": n, "labelled": n_frames, "atoms_labelled": int(sum(len(a) for a in train)),
                     "n_test": len(test),
                     "fit_cpu_seconds": time.process_time() - started, **force_errors(model, test)})
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rows[-1]))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def plot(curves, path, *, title, zero_forces=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(5.8, 4.2))
    colours = {"variance": "C0", "random": "C1", "pool": "C2", "committee": "C3", "distance": "C4"}
    for name, rows in sorted(curves.items()):
        if not rows:
            continue
        strategy, _, seed = name.partition("_seed")
        marker = "os^vD"[int(seed) % 5] if seed.isdigit() else "o"  # the colour tells the strategy, the marker the seed
        ax.plot([r["calls"] for r in rows], [r["forces_rmse"] * 1000 for r in rows], marker + "-",
                color=colours.get(strategy, "k"), alpha=0.85,
                label=LABELS.get(strategy, strategy) + (f", seed{seed}" if seed else ""))
    ax.axhline(100, color="0.6", ls=":", lw=1)
    if zero_forces is not None:  # the error of predicting F = 0: a model above it has learnt nothing usable
        ax.axhline(zero_forces * 1000, color="0.3", ls="--", lw=1, label="F = 0 (RMS force of the test set)")
    ax.set_xlabel("oracle calls (GFN2-xTB)")
    ax.set_ylabel("force RMSE on the test set (meV/Å)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv=None):
    parser = work_parser(__doc__)
    parser.add_argument("--calls", default="4,12,20,40,60,90,120,150", help="numbers of oracle calls to evaluate")
    parser.add_argument("--test", type=Path, default=None, help="test set (default: reference/test_aimd.extxyz, "
                        "else reference/test.extxyz)")
    parser.add_argument("--pool", type=Path, default=None, help="(c) pool (default: reference/pool_aimd.extxyz)")
    parser.add_argument("--n-sparse", type=int, default=1000)
    parser.add_argument("--runs", default=None,
                        help="comma-separated runs to fit (names in learn/, or 'pool'); others are only read from "
                             "the cache (so several processes can share the work)")
    args = parser.parse_args(argv)
    calls = [int(c) for c in args.calls.split(",")]
    reference = args.work / "reference"
    test_path = args.test or next((p for p in (reference / "test_aimd.extxyz", reference / "test.extxyz")
                                   if p.is_file()), None)
    if test_path is None:
        raise SystemExit(f"no test set in {reference}; run relabel_aimd.py (or make_reference.py) first")
    test = _read(test_path)
    pool = _read(args.pool or reference / "pool_aimd.extxyz")
    out = args.work / "compare"
    out.mkdir(parents=True, exist_ok=True)
    curves, meta = {}, {}
    chosen = None if args.runs is None else set(args.runs.split(","))
    # The cache is keyed by the test set's content and the recipe: results on another test set (two sets of 40
    # frames once shared one key) or of another GAP string are never reused.
    recipe = hashlib.sha1(gap_string(n_sparse=args.n_sparse).encode()).hexdigest()[:8]
    cache = out / "cache" / f"{test_path.stem}{len(test)}_{frames_digest(test)}_sparse{args.n_sparse}_{recipe}"
    for name, (labelled, spent, n_calls, n_failures) in runs(args.work).items():
        print(f"{name}: {len(labelled)} labelled, {n_calls} oracle calls ({n_failures} failed)", flush=True)
        curves[name] = curve(labelled, calls, test, n_sparse=args.n_sparse, seed=0, cache=cache / name,
                             fit=chosen is None or name in chosen, spent=spent)
        meta[name] = {"labelled": len(labelled), "oracle_calls": n_calls, "failures": n_failures}
    if pool:
        print(f"pool: {len(pool)} relabelled AIMD frames", flush=True)
        curves["pool"] = curve(pool, calls, test, n_sparse=args.n_sparse, seed=0, cache=cache / "pool",
                               fit=chosen is None or "pool" in chosen)
    zero_forces = float(np.sqrt(np.mean(np.concatenate([a.get_forces() for a in test]) ** 2)))
    summary = {"test": str(test_path), "n_test": len(test), "test_atoms": int(sum(len(a) for a in test)),
               "test_rms_force": zero_forces,
               "calls": calls, "curves": curves, "runs": meta, "load_average": os.getloadavg()[0]}
    stem = "curves" if args.test is None else f"curves_{test_path.stem}"
    (out / f"{stem}.json").write_text(json.dumps(summary, indent=1))
    lines = ["| run | " + " | ".join(f"{n} calls" for n in calls) + " |", "|---|" + "---|" * len(calls)]
    for name, rows in sorted(curves.items()):
        by_calls = {r["calls"]: r["forces_rmse"] * 1000 for r in rows}
        lines.append(f"| {name} | " + " | ".join(f"{by_calls[n]:.0f}" if n in by_calls else "–" for n in calls)
                     + " |")
    table = "\n".join(lines)
    (out / f"{stem}.md").write_text(f"Force RMSE (meV/Å) on {len(test)} test frames ({test_path.name}); predicting "
                                   f"F = 0 gives {zero_forces * 1000:.0f}\n\n{table}\n")
    print(table)
    plot(curves, out / f"{stem}.png", title=f"NaCl + water, GFN2-xTB labels; test: {len(test)} frames "
         f"({test_path.name})", zero_forces=zero_forces)
    print(f"wrote {out / stem}.png")


if __name__ == "__main__":
    main()
