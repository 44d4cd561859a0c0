"""On-the-fly active learning of a small electrolyte cluster labelled by GFN2-xTB.

A Na⁺/Cl⁻ contact pair solvated by a few water molecules (a neutral,
non-periodic cluster) runs Langevin dynamics with the current kernelpot
model; snapshots chosen by the strategy are labelled by tblite's GFN2-xTB
(``pip install tblite``; a semi-empirical ASE calculator). The force RMSE
is measured on an independent short xTB MD test trajectory. Runs in a few
minutes; not a CI test.

    python examples/active_electrolyte_xtb.py --n-water 6 --budget 20
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import molecule
from ase.md.langevin import Langevin

from kernelpot.active.explorers import MDExplorer
from kernelpot.active.loop import ActiveLearner
from kernelpot.descriptors.soap import SOAP
from kernelpot.kernels import NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.utils.ase_compat import thermalize


def xtb():
    from tblite.ase import TBLite

    return TBLite(method="GFN2-xTB", verbosity=0)


def cluster(n_water, seed):
    """Na⁺ and Cl⁻ 2.8 Å apart with ``n_water`` randomly oriented waters about 3 Å from the ions."""
    rng = np.random.default_rng(seed)
    atoms = Atoms("NaCl", positions=[[0.0, 0.0, 0.0], [2.8, 0.0, 0.0]])
    water = molecule("H2O")
    water.positions -= water.positions[0]  # oxygen at the origin
    while sum(1 for z in atoms.numbers if z == 8) < n_water:
        ion = atoms.positions[int(rng.integers(2))]
        direction = rng.normal(size=3)
        candidate = water.copy()
        candidate.rotate(float(rng.uniform(0, 360)), rng.normal(size=3))
        candidate.positions += ion + 3.0 * direction / np.linalg.norm(direction)
        d = np.linalg.norm(atoms.positions[:, None] - candidate.positions[None], axis=-1)
        if d.min() > 2.2:
            atoms += candidate
    atoms.center(vacuum=6.0)
    atoms.pbc = False
    return atoms


def test_set(start, n_frames, seed):
    atoms = start.copy()
    atoms.calc = xtb()
    rng = np.random.default_rng(seed)
    thermalize(atoms, 300.0, rng)
    dynamics = Langevin(atoms, timestep=0.5 * units.fs, temperature_K=300.0, friction=0.02 / units.fs,
                        fixcm=False, rng=rng)
    frames = []
    for _ in range(n_frames):
        dynamics.run(20)
        frame = atoms.copy()
        frame.calc = xtb()
        frame.get_forces()
        frames.append(frame)
    return frames


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-water", type=int, default=6)
    parser.add_argument("--strategy", default="variance")
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200, help="MD steps (0.5 fs) at 300 K")
    parser.add_argument("--segment", type=int, default=10)
    parser.add_argument("--n-test", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("active_electrolyte_out"))
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    start = cluster(args.n_water, args.seed)
    test = test_set(start, args.n_test, seed=args.seed + 1)
    soap = SOAP(species=[1, 8, 11, 17], r_cut=4.5, n_max=4, l_max=3, sigma=0.5)
    term = GAPTerm(soap, NormalizedDotProductCovariance(4), delta=1.0, n_sparse=150, sparse_method="cur")
    template = SparseGPR([term],
                         default_sigma=(0.002, 0.05, 0.05), random_state=args.seed)
    explorer = MDExplorer(start, schedule=[(300.0, args.steps)], timestep=0.5, interval=5, segment=args.segment,
                          random_state=args.seed)
    learner = ActiveLearner(template, explorer, xtb(), strategy=args.strategy, budget=args.budget, n_initial=2,
                            validation=test, refit_every=5, checkpoint=args.output / f"checkpoint_{args.strategy}",
                            random_state=args.seed, verbose=True).run()
    curve = [(h["oracle_calls"], 1e3 * h["validation"]["forces_rmse"]) for h in learner.history_]
    (args.output / "curve.json").write_text(json.dumps(curve, indent=1))
    print(f"{len(start)} atoms ({args.n_water} H2O + Na+ Cl-): force RMSE {curve[0][1]:.0f} -> {curve[-1][1]:.0f} "
          f"meV/Å with {learner.oracle_calls_} xTB calls ({learner.stop_reason_})")


if __name__ == "__main__":
    main()
