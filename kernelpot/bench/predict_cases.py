"""Prediction benchmarks (issue 17): what MD with a fitted model costs, against QUIP, featomic, vesin and ASE.

* ``si_forces_vs_quippy``: forces of a rattled 216-atom Si cell from the same gap_fit recipe (2-body + SOAP,
  1,000 CUR points) fitted by kernelpot and by ``gap_fit`` on 60 bundled mlearn Si structures; kernelpot's
  ASE calculator against quippy's ``Potential``, mean forces, and forces with the exact DTC ``forces_std`` or
  with the exact σ of every atom's local energy (``uncertainty="local_energy"``), 1 and 2 threads.
* ``nacl_forces``: a 4-species NaCl–water model shaped like the electrolyte recipe (a ``distance_2b`` term per
  species pair, one SOAP term per centre species, > 4,000 sparse points) on the bundled 194-atom box.
* ``soap_vs_featomic``: SOAP features and features + gradients on 64-water boxes, featomic's
  ``SoapPowerSpectrum`` with the same cutoff, smoothing, Gaussian width and basis sizes.
* ``neighbours_vs_vesin``: full neighbour lists (i, j, S, vectors, distances) of 10²–10⁵-atom boxes.
* ``startup``: a fresh ``kernelpot evaluate`` on one small structure, warm and cold Numba cache.

Every timing of a comparison runs both codes in one process (a fresh subprocess per thread count, pinned with
``sched_setaffinity`` and the thread variables set before anything is imported), interleaved, best of N, by
:mod:`kernelpot.bench.timing`; the neighbour lists (a few ms per call, where a shared machine's spikes are as
large as the differences) as medians of interleaved rounds (:func:`~kernelpot.bench.timing.interleaved_cpu`).
MD-like calls: each call moves every atom by ~0.005 Å, so caches keyed on positions never serve a result and
kernelpot's calculator keeps its Verlet neighbour list (skin 1 Å) as in MD. Fitted models are cached
(``$KERNELPOT_BENCH_CACHE``, default ``~/.cache/kernelpot/bench``): fitting is not what these cases measure.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..datasets import data_path
from .results import PeerUnavailable, Row
from .timing import interleaved_cpu, measure

SI_FRAMES = 60
NACL_SPECIES = {"H": 1, "O": 8, "Na": 11, "Cl": 17}
# Per centre species, as the electrolyte recipe's one SOAP term per species; Na and Cl are capped by the
# distinct environments of the bundled frames and their rattled copies.
NACL_SPARSE = {"H": 1700, "O": 1700, "Na": 400, "Cl": 400}
MD_STEP = 0.005  # Å: the displacement of every atom between two timed calls
#: ``GAPCalculator(uncertainty="forces_subset", **SUBSET_SIGMA[model])`` in the cost rows, and in the error rows of
#: :mod:`kernelpot.bench.sigma_cases`: the Si model (one species, 1,000 SOAP points) takes each atom's residual
#: against its 8 most similar points, where the product over all of them costs 0.5-0.7 of its cheap forces; the
#: NaCl–water model keeps the calculator's defaults (16 points + the exact residual).
SUBSET_SIGMA = {"si": {"sigma_points": 7, "sigma_residual_points": 8}, "nacl": {}}


def cache_dir() -> Path:
    path = Path(os.environ.get("KERNELPOT_BENCH_CACHE", Path.home() / ".cache" / "kernelpot" / "bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cached(name: str, recipe: str, build) -> Path:
    """``build(path)`` once per recipe; the file lives in :func:`cache_dir`."""
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    stem, suffix = os.path.splitext(name)
    path = cache_dir() / f"{stem}-{digest}{suffix}"
    if not path.exists():
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        build(temporary)
        os.replace(temporary, path)
    return path


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "RAYON_NUM_THREADS"):
        env[key] = str(threads)
    return env


def run_worker(function: str, arguments: dict, threads: int) -> dict:
    """Run ``kernelpot.bench.predict_cases.<function>(**arguments)`` in a fresh process with ``threads`` threads."""
    code = (f"import json, os, sys; os.sched_setaffinity(0, set(range(min({threads:d}, os.cpu_count()))));"
            "from kernelpot.bench import predict_cases as m; "
            f"print('RESULT ' + json.dumps(getattr(m, {function!r})(**json.loads(sys.argv[1]))))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(arguments)], env=thread_env(threads),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{function} failed: {done.stderr.strip().splitlines()[-1] if done.stderr else ''}")
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def load_average() -> str:
    return f"load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""


# ------------------------------------------------------------------------------------------------ Si vs QUIP
def si_training(quick: bool):
    from ase.io import read

    frames = read(data_path("mlearn_si", "mlearn_Si_training.extxyz"), ":")
    return frames[::12][:18] if quick else frames[::3][:SI_FRAMES]


def si_gap_string(quick: bool) -> str:
    from .gap_cases import GAP_STRING

    return GAP_STRING.format(n_sparse=300 if quick else 1000)


def rattled_si(seed: int = 0):
    """The 216-atom diamond Si cell (a = 5.43 Å), every atom moved by N(0, 0.05 Å)."""
    from ase.build import bulk

    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (3, 3, 3)
    atoms.positions += np.random.default_rng(seed).normal(0.0, 0.05, atoms.positions.shape)
    return atoms


def si_models(quick: bool) -> tuple[Path, Path]:
    """(.kpot, gap_fit .xml) of the Si recipe fitted on the same structures, cached."""
    from ase.io import write

    from .gap_cases import GAP_FIT_OPTIONS, run_measured

    if shutil.which("gap_fit") is None:
        raise PeerUnavailable("gap_fit is not on PATH (pip install quippy-ase)")
    train, gap = si_training(quick), si_gap_string(quick)
    recipe = f"{gap}|{len(train)}|{quick}"

    def fit_kernelpot(path):
        from ..models.gap import SparseGPR
        from ..potential.recipe import terms_from_gap_string
        from ..potential.serialization import save_model

        model = SparseGPR(terms_from_gap_string("{" + gap + "}", [14]), default_sigma=(0.002, 0.1, 0.05),
                          random_state=0)
        model.fit(train, energies=[a.get_potential_energy() for a in train], forces=[a.get_forces() for a in train])
        save_model(model, path)

    def fit_quip(folder):
        # A folder: gap.xml names its sparse-point files (gap.xml.sparseX...) by their file names.
        folder.mkdir()
        write(folder / "train.xyz", train)
        run_measured(["gap_fit", "at_file=train.xyz", f"gap={{{gap}}}", *GAP_FIT_OPTIONS, "gp_file=gap.xml"],
                     str(folder), thread_env(os.cpu_count() or 1))

    kpot = _cached("si.kpot", recipe, fit_kernelpot)
    quip = _cached("si-quip", recipe, fit_quip)
    return kpot, quip / "gap.xml"


def _md_like(atoms, calculators, repeats, seed=0):
    """Best wall and CPU seconds per call of each ASE calculator, interleaved, every call a moved structure."""
    rng = np.random.default_rng(seed)
    moved = atoms.copy()
    best = {name: [np.inf, np.inf] for name in calculators}
    for calc in calculators.values():  # first calls: compile, read caches, build lists
        warm = atoms.copy()
        warm.calc = calc
        warm.get_forces()
    for _ in range(repeats):
        moved.positions += rng.normal(0.0, MD_STEP, moved.positions.shape)
        for name, calc in calculators.items():
            frame = moved.copy()
            frame.calc = calc
            timing = measure(frame.get_forces)
            best[name] = [min(best[name][0], timing.wall), min(best[name][1], timing.cpu)]
    return best


def worker_si(kpot: str, xml: str, repeats: int) -> dict:
    from quippy.potential import Potential

    from ..potential.calculator import GAPCalculator
    from ..potential.serialization import load_model

    model = load_model(kpot)
    atoms = rattled_si()
    calculators = {"quippy": Potential(param_filename=xml), "kernelpot": GAPCalculator(model, uncertainty=False),
                   "kernelpot_local": GAPCalculator(model, uncertainty="local_energy"),
                   "kernelpot_subset": GAPCalculator(model, uncertainty="forces_subset", **SUBSET_SIGMA["si"]),
                   "kernelpot_std": GAPCalculator(model, uncertainty=True)}
    times = _md_like(atoms, {k: calculators[k] for k in ("quippy", "kernelpot", "kernelpot_local", "kernelpot_subset")},
                     repeats)
    times.update(_md_like(atoms, {"kernelpot_std": calculators["kernelpot_std"]}, max(2, repeats // 4)))
    reference = atoms.copy()
    reference.calc = calculators["quippy"]
    ours = atoms.copy()
    ours.calc = calculators["kernelpot"]
    difference = float(np.abs(reference.get_forces() - ours.get_forces()).max())
    return {"n_atoms": len(atoms), "times": times, "max_force_difference": difference,
            "load": os.getloadavg()[0]}


def _rates(result, name):
    wall, cpu = result["times"][name]
    return result["n_atoms"] / wall, result["n_atoms"] / cpu


def _sigma_rows(task, threads, result, model):
    """Cost of each σ with the forces over the forces alone (same worker, interleaved with the mean)."""
    n_atoms, mean = result["n_atoms"], _rates(result, "kernelpot")
    settings = {"sigma_points": 16, "sigma_residual": True, **SUBSET_SIGMA[model]}
    rows = []
    for name, metric, note in (
            ("kernelpot_std", "forces + forces_std (DTC, exact)", "the exact force σ"),
            ("kernelpot_local", "forces + local_energy_std (DTC, exact)",
             "σ of every atom's local energy (FLARE's trigger), not a force σ"),
            ("kernelpot_subset", "forces + forces_std (approximate: " +
             ", ".join(f"{k}={v}" for k, v in settings.items()) + ", calibrated)",
             f"the subset force σ (its error against the exact σ: the '{model}_sigma' rows)")):
        rate = _rates(result, name)
        rows.append(Row("kernelpot mean forces", task, f"{metric}, {threads} thread(s)", "s per call",
                        n_atoms / rate[0], n_atoms / mean[0], "lower",
                        f"ratio = cost with {note} over the forces alone (target <= 2); in CPU time "
                        f"{mean[1] / rate[1]:.2f}"))
    return rows


def si_forces_vs_quippy(quick: bool) -> list[Row]:
    """Mean forces (and with σ) of the Si GAP, kernelpot's calculator vs quippy's, 1 and 2 threads."""
    kpot, xml = si_models(quick)
    task = (f"forces, rattled 216-atom Si, 2b + SOAP l6 n8 {300 if quick else 1000} CUR points "
            f"(fit on {len(si_training(quick))} mlearn Si), MD-like calls")
    rows, rate = [], {}
    for threads in (1, 2):
        result = run_worker("worker_si", {"kpot": str(kpot), "xml": str(xml), "repeats": 3 if quick else 10},
                            threads)
        ours, theirs = _rates(result, "kernelpot"), _rates(result, "quippy")
        rate[threads] = ours[0]
        note = (f"CPU-time rates {ours[1]:.0f} vs {theirs[1]:.0f}; max |ΔF| vs quippy "
                f"{result['max_force_difference']:.1e} eV/Å (independent fits); load {result['load']:.1f}")
        rows.append(Row("quippy Potential", task, f"mean forces, {threads} thread(s)", "atoms/s", ours[0],
                        theirs[0], "higher", note))
        rows += _sigma_rows(task, threads, result, "si")
    rows.append(Row("ideal: 2 x kernelpot 1 thread", task, "2 threads: parallel efficiency", "atoms/s", rate[2],
                    2 * rate[1], "higher", "ratio = (rate at 2 threads) / (2 x rate at 1 thread)"))
    return rows


# ------------------------------------------------------------------------------------------------ NaCl–water
def nacl_frames():
    from ..structures import read_runner

    frames = []
    for name in ("revPBE0-D3_gen1_subset.data", "revPBE0-D3_gen3_subset.data"):
        frames += read_runner(data_path("nacl_water", name))
    return frames


def nacl_box():
    """The bundled 194-atom box (1 NaCl + 64 H2O, 19.7 x 9.9 x 9.9 Å), wrapped, without labels."""
    from ase import Atoms

    frame = [a for a in nacl_frames() if len(a) == 194][0]
    box = Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell, pbc=True)
    box.wrap()
    return box


def nacl_gap_string(sparse: dict) -> str:
    """The electrolyte recipe's shape: distance_2b per species pair, SOAP (l4 n6, ζ 4) per centre species."""
    names = list(NACL_SPECIES)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i:]]
    parts = [f"distance_2b cutoff=5.0 cutoff_transition_width=1.0 covariance_type=ard_se delta=1.0 "
             f"theta_uniform=1.0 n_sparse=20 sparse_method=uniform Z1={NACL_SPECIES[a]} Z2={NACL_SPECIES[b]}"
             for a, b in pairs]
    parts += [f"soap l_max=4 n_max=6 atom_sigma=0.5 cutoff=5.0 cutoff_transition_width=1.0 delta=0.2 "
              f"covariance_type=dot_product zeta=4 n_sparse={sparse[s]} sparse_method=cur_points "
              f"Z={NACL_SPECIES[s]}" for s in names]
    return "{" + " : ".join(parts) + "}"


def nacl_model(quick: bool) -> Path:
    """A GAP fitted to the 13 bundled NaCl–water frames (energies, forces); sparse points also from rattled copies."""
    sparse = {k: v // 4 for k, v in NACL_SPARSE.items()} if quick else NACL_SPARSE
    copies = 2 if quick else 8
    gap = nacl_gap_string(sparse)

    def fit(path):
        from ..models.gap import SparseGPR
        from ..potential.recipe import terms_from_gap_string
        from ..potential.serialization import save_model

        frames = nacl_frames()
        energies = [a.get_potential_energy() for a in frames]
        forces = [a.get_forces() for a in frames]
        bare = []
        for frame in frames:
            copy = frame.copy()
            copy.calc = None
            copy.wrap()
            bare.append(copy)
        rng = np.random.default_rng(0)
        # Unlabelled rattled copies: more distinct environments to choose sparse points from (labels None).
        extra = []
        for k in range(copies):
            for frame in bare:
                copy = frame.copy()
                copy.positions += rng.normal(0.0, 0.02 + 0.01 * k, copy.positions.shape)
                extra.append(copy)
        model = SparseGPR(terms_from_gap_string(gap, list(NACL_SPECIES.values())), default_sigma=(0.001, 0.04, 0.05),
                          random_state=0)
        model.fit(bare + extra, energies=energies + [None] * len(extra), forces=forces + [None] * len(extra))
        save_model(model, path)

    return _cached("nacl.kpot", f"{gap}|{copies}", fit)


def worker_nacl(kpot: str, repeats: int) -> dict:
    from ..potential.calculator import GAPCalculator
    from ..potential.serialization import load_model

    model = load_model(kpot)
    atoms = nacl_box()
    times = _md_like(atoms, {"kernelpot": GAPCalculator(model, uncertainty=False),
                             "kernelpot_local": GAPCalculator(model, uncertainty="local_energy"),
                             "kernelpot_subset": GAPCalculator(model, uncertainty="forces_subset",
                                                               **SUBSET_SIGMA["nacl"])}, repeats)
    times.update(_md_like(atoms, {"kernelpot_std": GAPCalculator(model, uncertainty=True)}, max(2, repeats // 5)))
    return {"n_atoms": len(atoms), "times": times, "load": os.getloadavg()[0],
            "n_sparse": int(sum(t.n_sparse for t in model.terms_))}


def nacl_forces(quick: bool) -> list[Row]:
    """Mean forces (and σ) of the NaCl–water model on the 194-atom box, 1 and 2 threads, against the target."""
    kpot = nacl_model(quick)
    rows, rate = [], {}
    for threads in (1, 2):
        result = run_worker("worker_nacl", {"kpot": str(kpot), "repeats": 3 if quick else 10}, threads)
        ours = _rates(result, "kernelpot")
        rate[threads] = ours[0]
        task = (f"forces, 194-atom NaCl-water box (H, O, Na, Cl), 10 distance_2b + 4 SOAP l4 n6 terms, "
                f"{result['n_sparse']} sparse points, MD-like calls")
        rows.append(Row("target (issue 17, 2 threads)", task, f"mean forces, {threads} thread(s)", "atoms/s",
                        ours[0], 5000.0, "higher", f"CPU-time rate {ours[1]:.0f}; load {result['load']:.1f}"))
        rows += _sigma_rows(task, threads, result, "nacl")
    rows.append(Row("ideal: 2 x kernelpot 1 thread", task, "2 threads: parallel efficiency", "atoms/s", rate[2],
                    2 * rate[1], "higher", "ratio = (rate at 2 threads) / (2 x rate at 1 thread)"))
    return rows


# ------------------------------------------------------------------------------------------------ SOAP vs featomic
SOAP_MATCHED = {"r_cut": 5.0, "n_max": 8, "l_max": 6, "sigma": 0.5, "transition": 1.0}


def worker_soap(n_boxes: int, repeats: int) -> dict:
    from featomic import SoapPowerSpectrum
    from featomic.basis import Gto, TensorProduct
    from featomic.cutoff import Cutoff, ShiftedCosine
    from featomic.density import Gaussian

    from ..descriptors.soap import SOAP
    from .systems import water_box

    s = SOAP_MATCHED
    boxes = [water_box(seed=seed) for seed in range(n_boxes)]
    ours = SOAP(["H", "O"], r_cut=s["r_cut"], n_max=s["n_max"], l_max=s["l_max"], sigma=s["sigma"], periodic=True,
                cutoff_transition_width=s["transition"])
    theirs = SoapPowerSpectrum(cutoff=Cutoff(radius=s["r_cut"], smoothing=ShiftedCosine(width=s["transition"])),
                               density=Gaussian(width=s["sigma"]),
                               basis=TensorProduct(max_angular=s["l_max"], radial=Gto(max_radial=s["n_max"] - 1)))
    ours.transform(boxes[:1], gradients=True)
    theirs.compute(boxes[:1], gradients=["positions"])
    out = {"n_atoms": sum(len(b) for b in boxes), "load": os.getloadavg()[0]}
    for gradients in (False, True):
        best = {"kernelpot": [np.inf, np.inf], "featomic": [np.inf, np.inf]}
        for _ in range(repeats):
            for name, call in (("kernelpot", lambda: ours.transform(boxes, gradients=gradients)),
                               ("featomic", lambda: theirs.compute(boxes, gradients=["positions"] if gradients
                                                                   else None))):
                timing = measure(call)
                best[name] = [min(best[name][0], timing.wall), min(best[name][1], timing.cpu)]
        out["gradients" if gradients else "features"] = best
    return out


def soap_vs_featomic(quick: bool) -> list[Row]:
    """SOAP features and features + gradients, 1 thread, the same cutoff, smoothing, width and basis sizes."""
    result = run_worker("worker_soap", {"n_boxes": 2 if quick else 10, "repeats": 2 if quick else 3}, 1)
    n = result["n_atoms"]
    rows = []
    for key, what in (("features", "SOAP features"), ("gradients", "SOAP features + position gradients")):
        ours, theirs = result[key]["kernelpot"], result[key]["featomic"]
        rows.append(Row("featomic", f"{what}, {n // 192} periodic 64-H2O boxes (r_cut 5 Å with a 1 Å cosine "
                        "smoothing, n 8, l 6, σ 0.5 Å, GTO)", "throughput, 1 thread", "atoms/s", n / ours[0],
                        n / theirs[0], "higher",
                        f"CPU-time rates {n / ours[1]:.0f} vs {n / theirs[1]:.0f}; load {result['load']:.1f}"))
    return rows


# ------------------------------------------------------------------------------------------------ neighbour lists
def neighbour_boxes(quick: bool):
    """Periodic boxes of about 10², 10³, 10⁴ (and 10⁵) atoms: diamond Si and liquid-like water, cutoff 5 Å."""
    from ase.build import bulk

    from .systems import water_box

    boxes = []
    for repeat in ((2, 3, 6) if quick else (2, 3, 6, 12, 24)):
        boxes.append(("Si diamond", bulk("Si", "diamond", a=5.43, cubic=True) * ((repeat,) * 3)))
    for repeat in ((1, 2) if quick else (1, 2, 4, 8)):
        boxes.append(("water", water_box() * ((repeat,) * 3)))
    return boxes


def worker_neighbours(quick: bool, repeats: int) -> list:
    from ase.neighborlist import neighbor_list as ase_neighbor_list
    from vesin import NeighborList

    from ..structures.neighbours import neighbour_list
    from ..structures.packing import pack

    out = []
    cutoff = 5.0
    for name, atoms in neighbour_boxes(quick):
        rng = np.random.default_rng(len(atoms))
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        packed = pack(atoms)
        vesin = NeighborList(cutoff=cutoff, full_list=True)
        calls = {"kernelpot": lambda: neighbour_list(packed, cutoff),
                 "vesin": lambda: vesin.compute(points=atoms.positions, box=atoms.cell.array, periodic=True,
                                                quantities="ijSDd")}
        samples = interleaved_cpu(calls, repeats if len(atoms) < 50000 else max(3, repeats // 2))
        cpu = {key: float(np.median(values)) for key, values in samples.items()}
        ratios = np.array(samples["vesin"]) / np.array(samples["kernelpot"])   # > 1: kernelpot faster
        if len(atoms) <= 20000:   # ASE is 10-30x slower: one timed call (after a warm one) is enough
            ase_neighbor_list("ijSDd", atoms, cutoff)
            cpu["ase"] = measure(lambda: ase_neighbor_list("ijSDd", atoms, cutoff)).cpu
        n_pairs = neighbour_list(packed, cutoff).n_pairs
        out.append({"name": name, "n_atoms": len(atoms), "n_pairs": n_pairs, "cpu": cpu, "rounds": len(ratios),
                    "ratio_quartiles": np.quantile(ratios, [0.25, 0.5, 0.75]).tolist()})
    return out


def neighbours_vs_vesin(quick: bool) -> list[Row]:
    """Full neighbour lists with vectors and distances, 1 thread, CPU time: medians of interleaved rounds."""
    results = run_worker("worker_neighbours", {"quick": quick, "repeats": 5 if quick else 15}, 1)
    rows = []
    for r in results:
        task = f"neighbour list, {r['name']} box, {r['n_atoms']} atoms, cutoff 5 Å ({r['n_pairs']} pairs)"
        low, middle, high = r["ratio_quartiles"]
        for peer in ("vesin", "ase"):
            if peer in r["cpu"]:
                note = "same output: i, j, S, vectors, distances; kernelpot's sorted by (i, j, S)"
                if peer == "vesin":
                    note += (f"; median CPU time of {r['rounds']} interleaved rounds, per-round ratio median "
                             f"{middle:.2f} (quartiles {low:.2f}-{high:.2f})")
                rows.append(Row(peer if peer == "vesin" else "ASE", task, "throughput, 1 thread (CPU time)",
                                "atoms/s", r["n_atoms"] / r["cpu"]["kernelpot"], r["n_atoms"] / r["cpu"][peer],
                                "higher", note))
    return rows


# ------------------------------------------------------------------------------------------------ start-up
def startup(quick: bool) -> list[Row]:
    """``kernelpot evaluate`` of the Si model on its smallest test structure, in a fresh process."""
    from ase.io import read, write

    kpot = _cached("startup.kpot", "distance_2b+soap l6 n8, 50 points", _fit_startup_model)
    test = min(read(data_path("mlearn_si", "mlearn_Si_test.extxyz"), ":"), key=len)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "one.xyz"
        write(path, test)
        command = [sys.executable, "-m", "kernelpot.cli", "evaluate", str(kpot), str(path), "--quiet"]
        cold_cache = Path(folder) / "numba-cache"
        env = dict(thread_env(1), NUMBA_CACHE_DIR=str(cold_cache))

        def run(environment):
            start = time.perf_counter()
            subprocess.run(command, env=environment, check=True, capture_output=True)
            return time.perf_counter() - start

        cold = run(env)  # empty cache: every kernel compiles
        warm = min(run(env) for _ in range(2 if quick else 4))  # the same cache, now filled
        baseline = min(run_python_imports() for _ in range(2 if quick else 4))
    note = f"{len(test)}-atom structure; {load_average()}"
    return [
        Row("budget (issue 17)", "fresh `kernelpot evaluate` on one structure, warm Numba cache", "wall time", "s",
            warm, 3.0, "lower", note + f"; Python + numpy + scipy + numba + ase imports alone: {baseline:.2f} s"),
        Row("the same, warm cache", "fresh `kernelpot evaluate` on one structure, cold Numba cache (compiles)",
            "wall time", "s", cold, warm, "lower", "ratio = cold / warm"),
    ]


def run_python_imports() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy, scipy.linalg, numba, ase.io"], env=thread_env(1), check=True)
    return time.perf_counter() - start


def _fit_startup_model(path):
    from ..models.gap import SparseGPR
    from ..potential.recipe import terms_from_gap_string
    from ..potential.serialization import save_model
    from .gap_cases import GAP_STRING

    train = si_training(True)[:6]
    model = SparseGPR(terms_from_gap_string("{" + GAP_STRING.format(n_sparse=50) + "}", [14]), random_state=0)
    model.fit(train, energies=[a.get_potential_energy() for a in train], forces=[a.get_forces() for a in train])
    save_model(model, path)
