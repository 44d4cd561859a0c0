"""On-the-fly active learning of fcc Cu (108 atoms) with ASE's EMT as the oracle.

Molecular dynamics driven by the current model (Langevin, 300 K then
900 K) proposes snapshots; each strategy picks one per MD segment (or, in
the FLARE-style ``variance-otf`` run, the dynamics stop at the first
snapshot whose predicted force uncertainty exceeds ``--threshold``). The
loop starts from 2 labelled structures. The force RMSE is measured after
every oracle call on an independent EMT MD test set (300 K and 900 K
frames). Output in ``--output``: ``curves.json``, ``curves.png`` (error
versus oracle calls per strategy) and the checkpoint folders.

    python examples/active_cu_otf.py --strategies variance random distance doptimal committee variance-otf
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from active_common import plot_curves
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin

from kernelpot.active.explorers import MDExplorer
from kernelpot.active.loop import ActiveLearner
from kernelpot.models.gap import SparseGPR
from kernelpot.potential.recipe import terms_from_gap_string
from kernelpot.utils.ase_compat import thermalize

GAP = ("{distance_2b cutoff=4.0 n_sparse=15 delta=0.5 theta_uniform=1.0 sparse_method=uniform : "
       "soap l_max=3 n_max=4 atom_sigma=0.5 cutoff=4.0 delta=0.05 zeta=4 n_sparse=200 sparse_method=cur}")


def cu108():
    return bulk("Cu", "fcc", a=3.61, cubic=True) * (3, 3, 3)


def emt_test_set(n_per_temperature, seed):
    """EMT Langevin MD frames at 300 K and 900 K, independent of the loop (other seed, frames 50 fs apart)."""
    frames = []
    for temperature in (300.0, 900.0):
        atoms = cu108()
        atoms.calc = EMT()
        rng = np.random.default_rng(seed + int(temperature))
        thermalize(atoms, temperature, rng)
        dynamics = Langevin(atoms, timestep=2.0 * units.fs, temperature_K=temperature, friction=0.02 / units.fs,
                            fixcm=False, rng=rng)
        dynamics.run(200)  # equilibrate
        for _ in range(n_per_temperature):
            dynamics.run(25)
            frame = atoms.copy()
            frame.calc = EMT()
            frame.get_forces()
            frames.append(frame)
    return frames


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", nargs="+", default=["variance", "random"])
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--steps", type=int, default=400, help="MD steps at each temperature")
    parser.add_argument("--segment", type=int, default=8, help="MD steps per iteration (one label each)")
    parser.add_argument("--interval", type=int, default=4, help="steps between scored snapshots")
    parser.add_argument("--threshold", type=float, default=0.05,
                        help="variance-otf: label when max |forces_std| exceeds this (eV/Å)")
    parser.add_argument("--n-test", type=int, default=5, help="test frames per temperature")
    parser.add_argument("--target", type=float, default=0.05, help="force RMSE target, eV/Å")
    parser.add_argument("--stop-at-target", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("active_cu_out"))
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    test = emt_test_set(args.n_test, seed=1000 + args.seed)
    template = SparseGPR(terms_from_gap_string(GAP, [29]), default_sigma=(0.001, 0.02, 0.05),
                         random_state=args.seed)
    curves_path = args.output / "curves.json"
    curves = json.loads(curves_path.read_text()) if curves_path.is_file() else {}
    for name in args.strategies:
        strategy, threshold = (name, None) if name != "variance-otf" else ("variance", args.threshold)
        explorer = MDExplorer(cu108(), schedule=((300.0, args.steps), (900.0, args.steps)), timestep=2.0,
                              interval=args.interval, segment=args.segment, threshold=threshold,
                              random_state=args.seed)
        start = time.perf_counter()
        learner = ActiveLearner(template, explorer, EMT(), strategy=strategy, batch_size=1, budget=args.budget,
                                n_initial=2, validation=test, refit_every=10,
                                target_error=args.target if args.stop_at_target else None,
                                checkpoint=args.output / f"checkpoint_{name}", random_state=args.seed,
                                verbose=True).run()
        curves[name] = [(h["oracle_calls"], 1e3 * h["validation"]["forces_rmse"]) for h in learner.history_]
        reached = next((calls for calls, rmse in curves[name] if rmse <= 1e3 * args.target), None)
        print(f"{name}: {learner.stop_reason_}; force RMSE {curves[name][-1][1]:.1f} meV/Å after "
              f"{learner.oracle_calls_} oracle calls; <= {1e3 * args.target:.0f} meV/Å first at {reached} calls; "
              f"{time.perf_counter() - start:.0f} s")
        curves_path.write_text(json.dumps(curves, indent=1))
    plot_curves(curves, args.output / "curves.png", xlabel="oracle (EMT) calls after the 2 initial structures",
                ylabel="force RMSE on EMT MD test set (meV/Å)",
                title="fcc Cu 108 atoms, on-the-fly, 300 K then 900 K", target=1e3 * args.target, marker=".")


if __name__ == "__main__":
    main()
