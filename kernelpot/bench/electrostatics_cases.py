"""Electrostatics benchmarks: Ewald and smooth PME against torch-pme on random neutral boxes.

Both codes compute energy, forces and stress (torch-pme: forces and virial by
autograd, its neighbour list by vesin, float64) at the same tolerance, which in
both means the RMS force error relative to the force between two unit charges
1 Å apart. torch-pme is tuned by its own ``torchpme.tuning.tune_pme`` (a grid
search over spline nodes and mesh spacing, timed, for each of a few real-space
cutoffs; the fastest is kept). The accuracy each code really reaches is measured
against a kernelpot PME reference at tolerance 1e-10 and printed beside the times.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings

import numpy as np

from .results import PeerUnavailable, Row
from .timing import Timing, measure

# Atoms per Å³ of liquid water (3 atoms per 29.9 Å³): "liquid-like density".
LIQUID_DENSITY = 0.1
# Real-space cutoffs (Å) torch-pme is tuned for; the fastest tuned one is used.
TORCHPME_CUTOFFS = (6.0, 8.0, 10.0)


def random_box(n_atoms: int, seed: int = 0, density: float = LIQUID_DENSITY):
    """(positions Å, charges e, cubic cell Å) of ``n_atoms`` random ±1 e charges, net charge 0."""
    rng = np.random.default_rng(seed)
    length = (n_atoms / density) ** (1.0 / 3.0)
    positions = rng.uniform(0.0, length, (n_atoms, 3))
    charges = np.where(np.arange(n_atoms) % 2 == 0, 1.0, -1.0)
    if n_atoms % 2:
        charges[-1] = 0.0
    return positions, rng.permutation(charges), length * np.eye(3)


def kernelpot_engine(method, positions, charges, cell, tolerance):
    """An Ewald or PME engine tuned for these charges (built outside the timings)."""
    from kernelpot.electrostatics import PME, Ewald

    engine = {"ewald": Ewald, "pme": PME}[method]
    return engine.from_tolerance(cell, len(positions), tolerance=tolerance, charges=charges)


def errors(result_forces, result_energy, reference, n_atoms):
    """(RMS force error / k_e, |ΔE| per atom in eV) against a reference CoulombResult."""
    from kernelpot.electrostatics import COULOMB_CONSTANT

    rms = np.sqrt(np.mean(np.sum((result_forces - reference.forces) ** 2, axis=1))) / COULOMB_CONSTANT
    return float(rms), abs(result_energy - reference.energy) / n_atoms


class TorchPME:
    """torch-pme's PMECalculator with vesin neighbour lists, energy + forces + virial by autograd."""

    def __init__(self, positions, charges, cell, tolerance, cutoffs=TORCHPME_CUTOFFS):
        try:
            import torch
            import torchpme
            import vesin
        except ImportError as error:
            raise PeerUnavailable(f"torch-pme or vesin is not installed ({error})") from None
        self._torch, self._torchpme, self._vesin = torch, torchpme, vesin
        best = None
        for cutoff in cutoffs:
            indices, distances = self._neighbours(positions, cell, cutoff)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                smearing, parameters, seconds = torchpme.tuning.tune_pme(
                    self._tensor(charges)[:, None], self._tensor(cell), self._tensor(positions), cutoff,
                    indices, distances, accuracy=tolerance)
            if best is None or seconds < best[0]:
                best = (seconds, cutoff, smearing, parameters)
        _, self.cutoff, self.smearing, self.parameters = best
        self.calculator = torchpme.PMECalculator(torchpme.CoulombPotential(smearing=self.smearing),
                                                 **self.parameters)
        self.calculator.to(dtype=torch.float64)

    def _tensor(self, array):
        return self._torch.tensor(np.asarray(array), dtype=self._torch.float64)

    def _neighbours(self, positions, cell, cutoff):
        pairs = self._vesin.NeighborList(cutoff=cutoff, full_list=False)
        i, j, shifts = pairs.compute(points=positions, box=cell, periodic=True, quantities="ijS")
        vectors = positions[j] - positions[i] + shifts @ cell
        indices = self._torch.tensor(np.stack([i, j], axis=1).astype(np.int64))
        return indices, self._tensor(np.linalg.norm(vectors, axis=1))

    def __call__(self, positions, charges, cell):
        """(energy eV, forces eV/Å, virial eV) with kernelpot's Coulomb constant."""
        from kernelpot.electrostatics import COULOMB_CONSTANT

        torch = self._torch
        pairs = self._vesin.NeighborList(cutoff=self.cutoff, full_list=False)
        i, j, shifts = pairs.compute(points=positions, box=cell, periodic=True, quantities="ijS")
        points = self._tensor(positions).requires_grad_(True)
        strain = torch.zeros((3, 3), dtype=torch.float64, requires_grad=True)
        deformation = torch.eye(3, dtype=torch.float64) + strain
        strained, box = points @ deformation, self._tensor(cell) @ deformation
        first, second = torch.tensor(i.astype(np.int64)), torch.tensor(j.astype(np.int64))
        distances = torch.linalg.norm(strained[second] - strained[first] + self._tensor(shifts) @ box, dim=1)
        q = self._tensor(charges)[:, None]
        potentials = self.calculator(q, box, strained, torch.stack([first, second], dim=1), distances)
        energy = COULOMB_CONSTANT * (q * potentials).sum()
        energy.backward()
        return float(energy.detach()), -points.grad.numpy(), -strain.grad.numpy()


@dataclasses.dataclass
class Comparison:
    """One box: times (s) and errors of kernelpot's PME and of torch-pme at one tolerance."""

    n_atoms: int
    ours: Timing
    peer: Timing
    ours_errors: tuple
    peer_errors: tuple
    peer_setup: str
    ours_setup: str


@contextlib.contextmanager
def threads(count: int):
    """Run Numba and torch with ``count`` threads each (restored afterwards)."""
    import numba

    try:
        import torch
    except ImportError:
        torch = None
    previous = numba.get_num_threads(), torch.get_num_threads() if torch else None
    numba.set_num_threads(count)
    if torch:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        numba.set_num_threads(previous[0])
        if torch:
            torch.set_num_threads(previous[1])


def compare_with_torchpme(sizes, tolerance=1e-6, tune_size=10000, repeat=3, progress=None) -> list[Comparison]:
    """kernelpot PME vs torch-pme on :func:`random_box` boxes of each size (module docstring).

    torch-pme is tuned on every box up to ``tune_size`` atoms; larger boxes reuse the
    last tuning (its parameters are intensive at fixed density, and tuning a 10⁵-atom
    box takes many minutes).
    """
    peer = None
    out = []
    for n in sizes:
        positions, charges, cell = random_box(n)
        if peer is None or n <= tune_size:
            peer = TorchPME(*random_box(min(n, tune_size)), tolerance)
        ours = kernelpot_engine("pme", positions, charges, cell, tolerance)
        reference = kernelpot_engine("pme", positions, charges, cell, 1e-10).compute(positions, charges)
        ours_time = measure(functools.partial(ours.compute, positions, charges), repeat=repeat)
        peer_time = measure(functools.partial(peer, positions, charges, cell), repeat=repeat)
        comparison = Comparison(
            n, ours_time, peer_time, errors(ours_time.result.forces, ours_time.result.energy, reference, n),
            errors(peer_time.result[1], peer_time.result[0], reference, n),
            f"cutoff {peer.cutoff:g} Å, smearing {peer.smearing:.3g} Å, {peer.parameters}",
            f"{ours.parameters}")
        out.append(comparison)
        if progress:
            progress(comparison)
    return out


def pme_vs_torchpme(quick: bool) -> list[Row]:
    """Smooth PME, energy + forces + stress at tolerance 1e-6, vs torch-pme on random ±1 e boxes."""
    sizes = (1000, 3000) if quick else (1000, 10000, 30000)  # torch-pme at 10⁵: > 15 GB
    with threads(1):
        comparisons = compare_with_torchpme(sizes, tune_size=3000 if quick else 10000)
    rows = []
    for c in comparisons:
        note = (f"1 thread each; RMS force error/k_e: kernelpot {c.ours_errors[0]:.2g}, torch-pme "
                f"{c.peer_errors[0]:.2g}; |ΔE| per atom vs a 1e-10 reference: {c.ours_errors[1]:.2g} and "
                f"{c.peer_errors[1]:.2g} eV; torch-pme {c.peer_setup}")
        rows.append(Row("torch-pme", f"PME energy+forces+stress, {c.n_atoms} random charges, tolerance 1e-6",
                        "CPU time", "s", c.ours.cpu, c.peer.cpu, "lower", note))
    return rows
