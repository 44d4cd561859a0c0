"""Reference electron densities of water with PySCF (needs ``pip install kernelpot[density]``).

Level of theory: Kohn–Sham PBE / cc-pVDZ (closed shell, density-fitted
Coulomb term, XC grid level 2), density fitted on cc-pVDZ-JKFIT in the
Coulomb metric with the electron count and dipole kept exactly (see
:func:`kernelpot.density.dataset.compute_density_references`).

Structures:

* ``monomers``: water monomers drawn (seed 0) from the TENSOAP set
  (``../shared/data/tensors/tensoap/water_monomer_coords_1000.xyz``, Å),
  without repeated geometries (the file holds 90 rotated copies of one);
* ``dimers``: water dimers drawn (seed 1) from the TENSOAP dimer set;
* ``clusters``: clusters of 4–8 molecules cut from the TENSOAP liquid-water
  boxes: one molecule and its nearest neighbours by O–O minimum-image
  distance, each molecule made whole and brought next to the first
  (``--clusters 4 5 6 7 8`` made the held-out set ``clusters.npz``);
* ``train_clusters/``: training clusters of 3–10 molecules, one batch of
  ``--train-clusters`` sizes per ``--train-seeds`` seed (``TRAIN_BATCHES``),
  from liquid frames away from those of every held-out cluster;
  ``test_clusters/``: more held-out clusters (``--extra-test-clusters 6 7 8
  6 7 8``, then ``8 8 8 8 8 8 --extra-test-seed 13``). One file per
  structure (``<tag>_<index>_<n_molecules>.npz``), skipped if present.

Usage::

    nice -n 5 python examples/density/make_dataset.py --out /tmp/h7_density \\
        --monomers 200 --dimers 60 --clusters 4 4 5 5 6 6 7 7 8 8
    python examples/density/make_dataset.py --out /tmp/h7_density --bundle data/water_density
    nice -n 10 env OMP_NUM_THREADS=1 python examples/density/make_dataset.py --out DIR \
        --extra-test-clusters 6 7 8 6 7 8 --train-seeds 3 5
    nice -n 10 env OMP_NUM_THREADS=1 python examples/density/make_dataset.py --out DIR \
        --train-seeds 7 11 --train-clusters 4 4 4 5 5 5 5 5 5 5 5 5
    nice -n 10 env OMP_NUM_THREADS=1 python examples/density/make_dataset.py --out DIR \
        --extra-test-clusters 8 8 8 8 8 8 --extra-test-seed 13 --train-seeds
    nice -n 10 env OMP_NUM_THREADS=1 python examples/density/make_dataset.py --out DIR \
        --train-seeds 17 19 --train-clusters 6 6 7 7 8 8 9 10
    nice -n 10 env OMP_NUM_THREADS=1 python examples/density/make_dataset.py --out DIR \
        --train-seeds 23 31 41 47 --train-clusters 6 6 7 7 8 8 9 10   # and 29 37 43 53 beside it

(one PBE/cc-pVDZ job on one core: about 1.5 min for 6 molecules, 3 min for
8, 6 min for 10 on a loaded machine).

Each group is written to ``<out>/<group>.npz`` (:meth:`DensitySet.save`),
re-saved every ``--chunk`` structures so that an interrupted run keeps its
work. ``--bundle`` writes the small set shipped with kernelpot (40 + 20
monomers, 3 + 2 dimers; overlaps stored compactly) from finished files.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from kernelpot.density import DensitySet
from kernelpot.density.references import compute_density_references

TENSOAP = Path("/work/shared/data/tensors/tensoap")


def geometry_key(atoms: Atoms) -> tuple:
    """Sorted interatomic distances (1e-4 Å): equal for rotated or permuted copies."""
    distances = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
    return tuple(np.sort(np.round(distances, 4)))


def unique_geometries(structures) -> list[int]:
    """Indices of the structures that are not copies (rotated or not) of an earlier one."""
    seen, keep = set(), []
    for i, atoms in enumerate(structures):
        key = geometry_key(atoms)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


def molecules(name: str, count: int, seed: int) -> list[Atoms]:
    frames = read(TENSOAP / f"water_{name}_coords_1000.xyz", index=":")
    order = np.random.default_rng(seed).permutation(len(frames))
    # The files carry an all-zero Lattice that ASE reads as pbc=True: these are molecules.
    shuffled = [Atoms(numbers=frames[i].numbers, positions=frames[i].positions, pbc=False) for i in order]
    # The monomer file holds 90 rotated copies of one geometry: keep one, so that no
    # test molecule is a training molecule in disguise.
    return [shuffled[i] for i in unique_geometries(shuffled)][:count]


@functools.lru_cache(maxsize=1)
def _liquid_frames() -> list[Atoms]:
    """The TENSOAP liquid-water frames (32 molecules, cubic cell), read once."""
    return read(TENSOAP / "water_bulk_coords_1000.xyz", index=":")


def clusters(sizes, seed: int = 2, exclude_frames=()) -> list[Atoms]:
    """Clusters of ``sizes`` molecules, each cut from a random liquid frame not in ``exclude_frames``.

    The frame index of each cluster is in its ``info["frame"]``.
    """
    frames = _liquid_frames()
    rng = np.random.default_rng(seed)
    excluded = set(int(f) for f in exclude_frames)
    out = []
    for size in sizes:
        frame_index = int(rng.integers(len(frames)))
        while frame_index in excluded:
            frame_index = int(rng.integers(len(frames)))
        frame = frames[frame_index]
        cell = np.diag(frame.cell.array)
        pos = frame.positions.copy().reshape(-1, 3, 3)  # molecules as O, H, H (the cached frame stays intact)
        # Whole molecules: H atoms at the minimum image of their own O.
        pos[:, 1:] -= np.round((pos[:, 1:] - pos[:, :1]) / cell) * cell
        centre = int(rng.integers(len(pos)))
        shift = pos[:, 0] - pos[centre, 0]
        shift -= np.round(shift / cell) * cell
        nearest = np.argsort(np.linalg.norm(shift, axis=1))[:size]
        moved = pos[nearest] - pos[nearest, :1] + (pos[centre, 0] + shift[nearest])[:, None, :]
        atoms = Atoms("OH2" * size, positions=moved.reshape(-1, 3) - pos[centre, 0], pbc=False)
        atoms.info["frame"] = frame_index
        out.append(atoms)
    return out


# Liquid frames of the held-out clusters: ``--clusters 4 5 6 7 8`` (seed 2),
# ``--extra-test-clusters 6 7 8 6 7 8`` (seed 4, drawn away from the first training batch) and
# ``--extra-test-clusters 8 8 8 8 8 8 --extra-test-seed 13`` (away from the training batches of
# seeds 3, 5, 7, 11). Training clusters skip these frames and their neighbours (±5; consecutive
# frames of the file are already decorrelated, RMSD ≈ 4 Å), so no test molecule is seen in training.
TEST_CLUSTER_FRAMES = (837, 109, 413, 451, 334, 726, 881, 940, 970, 607, 376,
                       855, 261, 77, 946, 613, 910)
TRAIN_CLUSTER_SIZES = (3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5)
# Training batches made so far (``--train-seeds S --train-clusters SIZES``): seed -> sizes.
TRAIN_BATCHES = {3: TRAIN_CLUSTER_SIZES, 5: TRAIN_CLUSTER_SIZES,
                 7: (4, 4, 4) + (5,) * 9, 11: (4, 4, 4) + (5,) * 9,
                 **{seed: (6, 6, 7, 7, 8, 8, 9, 10) for seed in (17, 19, 23, 29, 31, 37, 41, 43, 47, 53)}}
# Held-out batches: seed -> (number of TEST_CLUSTER_FRAMES before it, training seeds it avoids).
EXTRA_TEST_BATCHES = {4: (5, (3,)), 13: (11, (3, 5, 7, 11))}


def near_test_frames(window: int = 5) -> list[int]:
    return [f + d for f in TEST_CLUSTER_FRAMES for d in range(-window, window + 1)]


def extra_test_clusters(sizes, seed: int) -> list[Atoms]:
    """Held-out clusters of batch ``seed`` (see ``EXTRA_TEST_BATCHES``), away from earlier test and training frames."""
    n_before, training_seeds = EXTRA_TEST_BATCHES[seed]
    training = [a for s in training_seeds for a in clusters(TRAIN_BATCHES[s], s, near_test_frames())]
    used = [f + d for f in TEST_CLUSTER_FRAMES[:n_before] for d in range(-5, 6)] \
        + [a.info["frame"] + d for a in training for d in range(-5, 6)]
    return clusters(sizes, seed, used)


def compute_each(group: str, structures, out: Path, tag: str) -> None:
    """One file per structure, ``<out>/<group>/<tag>_<index>_<n_molecules>.npz``; finished files are skipped."""
    folder = out / group
    folder.mkdir(parents=True, exist_ok=True)
    for i, atoms in enumerate(structures):
        path = folder / f"{tag}_{i:03d}_{len(atoms) // 3}.npz"
        if path.is_file():
            continue
        part = compute_density_references([atoms], verbose=False)
        part.metadata["frames"] = [int(atoms.info.get("frame", -1))]
        part.save(path)
        print(f"{group} {path.name}: {atoms.get_chemical_formula()} {part.metadata['seconds'][0]:.0f} s, "
              f"DF L1 {part.metadata['df_l1_percent'][0]:.3f}%", flush=True)


def load_each(folder: Path) -> DensitySet:
    """The structures written by :func:`compute_each` into ``folder``, in index order."""
    paths = sorted(Path(folder).glob("*.npz"))
    if not paths:
        raise FileNotFoundError(f"no density files in {str(folder)!r}")
    joined = DensitySet.load(paths[0])
    for path in paths[1:]:
        joined = joined + DensitySet.load(path)
    return joined


def compute(group: str, structures, out: Path, chunk: int) -> None:
    path = out / f"{group}.npz"
    done = DensitySet.load(path) if path.is_file() else None
    start = len(done) if done is not None else 0
    t0 = time.perf_counter()
    for first in range(start, len(structures), chunk):
        part = compute_density_references(structures[first:first + chunk], verbose=True)
        done = part if done is None else done + part
        done.save(path)
        print(f"{group}: {len(done)}/{len(structures)} saved ({time.perf_counter() - t0:.0f} s)", flush=True)


def bundle(out: Path, target: Path) -> None:
    monomers = DensitySet.load(out / "monomers.npz")
    dimers = DensitySet.load(out / "dimers.npz")
    half = len(monomers) // 2  # the first half is the training pool, the second the test pool
    train = monomers.subset(range(40)) + dimers.subset(range(3))
    test = monomers.subset(range(half, half + 20)) + dimers.subset(range(3, 5))
    target.mkdir(parents=True, exist_ok=True)
    train.save(target / "train.npz", compact=True)
    test.save(target / "test.npz", compact=True)
    for name in ("train", "test"):
        print(name, (target / f"{name}.npz").stat().st_size / 1e6, "MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--monomers", type=int, default=0)
    parser.add_argument("--dimers", type=int, default=0)
    parser.add_argument("--clusters", type=int, nargs="*", default=[])
    parser.add_argument("--chunk", type=int, default=20)
    parser.add_argument("--train-clusters", type=int, nargs="*", default=list(TRAIN_CLUSTER_SIZES),
                        help="sizes of training clusters (frames away from the test clusters), one file each")
    parser.add_argument("--train-seeds", type=int, nargs="*", default=[],
                        help="one batch of --train-clusters per seed (the first batch used seed 3)")
    parser.add_argument("--extra-test-clusters", type=int, nargs="*", default=[],
                        help="sizes of further held-out clusters (frames away from all others), one file each")
    parser.add_argument("--extra-test-seed", type=int, default=4, choices=sorted(EXTRA_TEST_BATCHES),
                        help="seed of the --extra-test-clusters batch (see EXTRA_TEST_BATCHES)")
    parser.add_argument("--bundle", type=Path, default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.monomers:
        compute("monomers", molecules("monomer", args.monomers, seed=0), args.out, args.chunk)
    if args.clusters:
        compute("clusters", clusters(args.clusters), args.out, args.chunk)
    for seed in args.train_seeds:
        compute_each("train_clusters", clusters(args.train_clusters, seed, near_test_frames()), args.out,
                     f"s{seed}")
    if args.extra_test_clusters:
        seed = args.extra_test_seed
        compute_each("test_clusters", extra_test_clusters(args.extra_test_clusters, seed), args.out, f"s{seed}")
    if args.dimers:
        compute("dimers", molecules("dimer", args.dimers, seed=1), args.out, args.chunk)
    if args.bundle is not None:
        bundle(args.out, args.bundle)


if __name__ == "__main__":
    main()
