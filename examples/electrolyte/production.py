"""Step 3: production MD of NaCl in water with a kernelpot GAP, resumable, written as extended XYZ.

Model (``--model``): a ``.kpot`` file, e.g. the final model of a learning loop
(``<work>/learn/<run>/model.kpot``), or ``revpbe0`` (default): a GAP fitted here on frames of the bundled
revPBE0-D3 data set of O'Neill et al. (1 NaCl + 62 H2O, 12.42 Å cubic; shared data
``electrolytes/nacl_water/revPBE0-D3_gen1e.data``) — the physically meaningful level of theory (hybrid DFT
with dispersion); the xTB model is the workflow test. The fit is cached in ``<work>/md/revpbe0.kpot`` with its
validation errors on held-out frames in ``revpbe0.json``.

MD: NVT at ``--temperature`` (300 K), ``--timestep`` fs with protium masses (diffusion depends on them).
``--thermostat langevin`` (default) with weak friction (``--friction`` 1/fs: 0.002 = 0.5 ps damping, a few %
slower diffusion than NVE), or ``--thermostat bussi``: stochastic velocity rescaling (``--taut`` fs), one global
noise on the kinetic energy, which leaves single-particle dynamics, hence diffusion, essentially as in NVE. A
frame every ``--interval`` steps in ``<work>/md/<name>.extxyz`` (:class:`kernelpot.potential.ResumableMD`:
kill it and run the same command to continue; a larger ``--ps`` extends it). The start is a revPBE0-D3 frame
(already liquid); ``analyse.py --skip`` drops the equilibration. Equivalent command line for a saved model::

    kernelpot md MODEL.kpot start.extxyz --thermostat langevin --temperature 300 --timestep 1 \\
        --friction 0.002 --interval 10 --steps 50000 --output md.extxyz \
        --min-distance 'O-O:2.0,H-H:1.0,H-O:0.75,Na-O:1.7,Cl-O:2.2,H-Na:1.6,Cl-H:1.3,Cl-Na:1.9,*:0.7'

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 nohup nice -n 10 python examples/electrolyte/production.py --ps 50 &
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SPECIES, default_oracle, force_errors, min_distances, work_parser

SOURCE = Path("electrolytes") / "nacl_water" / "revPBE0-D3_gen1e.data"
#: GAP of the revPBE0-D3 model: a species-blind pair term (short-range repulsion keeps MD sane where SOAP
#: data are thin) plus SOAP (ζ = 4, CUR sparse points).
REVPBE0_GAP = ("distance_2b cutoff=5.0 cutoff_transition_width=1.0 covariance_type=ard_se delta=0.5 "
               "theta_uniform=1.0 sparse_method=uniform n_sparse=20 : "
               "soap l_max=4 n_max=6 atom_sigma=0.5 cutoff=4.5 cutoff_transition_width=1.0 delta=0.2 "
               "covariance_type=dot_product zeta=4 n_sparse={n_sparse} sparse_method=cur_points")


def revpbe0_frames():
    """The revPBE0-D3 frames: the shared-data file, else (CI, a fresh checkout) the bundled 10-frame subset."""
    from kernelpot.structures import read_runner

    return read_runner(source_path())


def source_path():
    root = Path(os.environ.get("KERNELPOT_SHARED_DATA", "/work/shared/data"))
    path = root / SOURCE
    if path.is_file():
        return path
    bundled = Path(__file__).resolve().parents[2] / "data" / "nacl_water" / "revPBE0-D3_gen1_subset.data"
    print(f"{path} not found; using the bundled subset {bundled} (10 frames)", flush=True)
    return bundled


def fit_revpbe0(folder, *, n_train, n_valid, n_sparse, seed=0):
    """Fit (or load) the revPBE0-D3 GAP on ``n_train`` frames; validation errors on ``n_valid`` others."""
    from kernelpot.models.gap import SparseGPR
    from kernelpot.potential import load_model, save_model, terms_from_gap_string

    path = folder / "revpbe0.kpot"
    if path.is_file():
        return load_model(path), revpbe0_frames()
    frames = revpbe0_frames()
    order = np.random.default_rng(seed).permutation(len(frames))
    train, valid = [frames[i] for i in order[:n_train]], [frames[i] for i in order[n_train:n_train + n_valid]]
    terms = terms_from_gap_string(REVPBE0_GAP.format(n_sparse=n_sparse), SPECIES, periodic=True)
    model = SparseGPR(terms, default_sigma=(0.002, 0.08, 0.05), random_state=seed, verbose=True)
    started = time.perf_counter()
    model.fit(train, energies=[a.get_potential_energy() for a in train], forces=[a.get_forces() for a in train])
    seconds = time.perf_counter() - started
    table = force_errors(model, valid)
    table["train"] = force_errors(model, train)
    save_model(model, path)
    summary = {"n_train": n_train, "n_valid": n_valid, "fit_seconds": seconds, "gap": REVPBE0_GAP.format(
        n_sparse=n_sparse), "validation": table, "load_average": os.getloadavg()[0]}
    (folder / "revpbe0.json").write_text(json.dumps(summary, indent=1, default=float))
    print(json.dumps(summary, indent=1, default=float), flush=True)
    return model, frames


def main(argv=None):
    parser = work_parser(__doc__)
    parser.add_argument("--model", default="revpbe0", help="'revpbe0' or a .kpot file")
    parser.add_argument("--name", default=None, help="trajectory name (default: the model's)")
    parser.add_argument("--ps", type=float, default=50.0, help="total length, ps (extendable)")
    parser.add_argument("--temperature", type=float, default=300.0)
    parser.add_argument("--timestep", type=float, default=1.0, help="fs")
    parser.add_argument("--thermostat", default="langevin", choices=["langevin", "bussi"])
    parser.add_argument("--friction", type=float, default=0.002, help="Langevin friction, 1/fs")
    parser.add_argument("--taut", type=float, default=100.0, help="Bussi time constant, fs")
    parser.add_argument("--interval", type=int, default=10, help="steps between frames")
    parser.add_argument("--n-train", type=int, default=40, help="revpbe0: training frames")
    parser.add_argument("--n-valid", type=int, default=20, help="revpbe0: validation frames")
    parser.add_argument("--n-sparse", type=int, default=600, help="revpbe0: SOAP sparse points")
    parser.add_argument("--start", type=int, default=0, help="revpbe0 frame the MD starts from")
    parser.add_argument("--start-file", type=Path, default=None, help="start structure file instead (any ASE format)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    from kernelpot.potential import GAPCalculator, ResumableMD, load_model

    folder = args.work / "md"
    folder.mkdir(parents=True, exist_ok=True)
    if args.model == "revpbe0":
        model, frames = fit_revpbe0(folder, n_train=args.n_train, n_valid=args.n_valid, n_sparse=args.n_sparse,
                                    seed=args.seed)
        start = frames[args.start]
    else:
        model = load_model(args.model)
        start = revpbe0_frames()[args.start]
    if args.start_file is not None:
        import ase.io

        start = ase.io.read(args.start_file)
    start.calc = None
    name = args.name or Path(args.model).stem
    md = ResumableMD(folder / f"{name}.extxyz", temperature=args.temperature, timestep=args.timestep,
                     thermostat=args.thermostat, friction=args.friction, taut=args.taut, interval=args.interval,
                     random_state=args.seed, min_distance=min_distances(args.oracle or default_oracle()),
                     progress=not args.quiet, log_every=10)
    steps = int(round(args.ps * 1000.0 / args.timestep))
    md.run(start, GAPCalculator(model, uncertainty=False), steps)
    print(f"{md.trajectory}: step {md.step_} of {steps} ({md.step_ * args.timestep / 1000:.3f} ps); "
          f"{md.seconds_per_step_:.3g} s per step in this run; load average {os.getloadavg()[0]:.1f}"
          + (f"; stopped: {md.stopped_}" if md.stopped_ else ""), flush=True)


if __name__ == "__main__":
    main()
