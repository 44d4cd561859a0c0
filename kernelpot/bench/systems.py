"""Inputs shared by the benchmarks: water boxes, organic molecules, feature matrices.

Everything here is generated (fixed seeds) or read from files bundled with
kernelpot, so ``kernelpot bench`` needs no external data.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

ORGANIC_ELEMENTS = (1, 6, 7, 8, 16)


def water_box(n_side: int = 4, density: float = 1.0, seed: int = 0, min_distance: float = 1.6) -> Atoms:
    """Periodic cubic box of ``n_side³`` rigid waters on jittered lattice sites, random orientations.

    Parameters
    ----------
    n_side : int
        Molecules per box edge.
    density : float
        g/cm³.
    seed : int
        Seed of the jitter and orientations.
    min_distance : float
        Smallest allowed intermolecular atom–atom distance, Å.
    """
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    n_molecules = n_side**3
    length = (n_molecules * 18.015 / 6.02214076e23 / density * 1e24) ** (1 / 3)
    angle = np.deg2rad(104.52)
    water = np.array([[0, 0, 0], [0.9572, 0, 0], [0.9572 * np.cos(angle), 0.9572 * np.sin(angle), 0]])
    water -= water.mean(axis=0)
    grid = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    sites = (grid + 0.5) * length / n_side + rng.uniform(-0.3, 0.3, (n_molecules, 3))

    def orient():
        return Rotation.random(random_state=int(rng.integers(2**31))).apply(water)

    molecules = np.stack([orient() + s for s in sites])
    same = np.repeat(np.arange(n_molecules), 3)
    for _ in range(10_000):  # redraw one clashing molecule at a time until none clashes
        positions = molecules.reshape(-1, 3)
        delta = positions[:, None] - positions[None]
        delta -= length * np.round(delta / length)
        distance = np.linalg.norm(delta, axis=-1)
        distance[same[:, None] == same[None]] = np.inf
        clash = np.unique(same[np.nonzero(distance < min_distance)[0]])
        if len(clash) == 0:
            return Atoms("OH2" * n_molecules, positions=positions, cell=np.eye(3) * length, pbc=True)
        molecules[clash[0]] = orient() + sites[clash[0]]
    raise RuntimeError("could not place the water molecules without contacts")


def organic_molecules(n: int, seed: int = 0, rattle: float = 0.05) -> list[Atoms]:
    """``n`` small organic molecules (ASE's G2 set restricted to H, C, N, O, S), rattled copies (Å)."""
    from ase.build import molecule
    from ase.collections import g2

    names = [name for name in g2.names
             if len(molecule(name)) > 2 and set(molecule(name).numbers) <= set(ORGANIC_ELEMENTS)]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        atoms = molecule(names[i % len(names)])
        atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
        out.append(atoms)
    return out


def relative_difference(ours, reference) -> float:
    """max |ours − reference| / max |reference|."""
    ours, reference = np.asarray(ours), np.asarray(reference)
    return float(np.abs(ours - reference).max() / np.abs(reference).max())
