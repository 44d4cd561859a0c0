"""LODE speed: kernelpot against featomic 0.6.7's ``LodeSphericalExpansion``, one process, same structures.

Both compute the coefficients ``v^a_nlm(i)`` (featomic's is the reference of
``tests/test_lode.py``) for matched hyperparameters: species H and O, Gaussian smearing
σ = 1.5 Å, exponent 1, GTO radial basis of radius 3 Å with n_max = 4 (featomic
``max_radial`` 3), l_max = 3. Systems: four periodic boxes of 64 rigid waters (192 atoms,
12.4 Å) and the first 20 charged dimers of ``water/lode_charged_dimers`` (15-23 atoms in a
30 Å box; featomic has no open boundaries). Accuracy settings: kernelpot ``tolerance=1e-6``
(Ewald split chosen by :mod:`kernelpot.electrostatics.parameters`), featomic ``k_cutoff`` =
2.6π/σ (its terms there are e^-33 of the largest: converged like ours) and, as a second
row, featomic's default 1.2π/σ (e^-7: ~1e-3 errors). The largest difference between the
two codes is printed with the timings.

Prints throughputs (atoms/s, best of two calls) on one thread (``NUMBA_NUM_THREADS`` and
``RAYON_NUM_THREADS`` set to 1 before the imports) for the coefficients, the coefficients
with position gradients (featomic: all gradient samples, kernelpot: dense pair rows), and
kernelpot's invariants (``"potential"`` + ``"multiscale"`` with a SOAP density, which
featomic builds in Python from two expansions), then the first-call compile time of
kernelpot's kernels with a cold and a warm Numba cache (subprocesses), and the load
average. Run as ``python benchmarks/lode.py`` (a few minutes on 2 cores); ``--quick``
uses one box and 5 dimers.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import argparse  # noqa: E402
import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from kernelpot.bench.systems import water_box  # noqa: E402
from kernelpot.bench.timing import first_calls, measure  # noqa: E402

SETTINGS = dict(r_cut=3.0, n_max=4, l_max=3, smearing=1.5)
SPECIES = [1, 8]
DIMERS = Path(os.environ.get("KERNELPOT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DIMERS = DIMERS / "water" / "lode_charged_dimers" / "charge-charge.xyz"


def featomic_coefficients(calculator, frames, species, gradients):
    """featomic's LODE coefficients as kernelpot's (n, S, n_max, L²) array (what the timing includes)."""
    descriptor = calculator.compute(frames, gradients=["positions"] if gradients else None)
    n_atoms = sum(len(f) for f in frames)
    offsets = np.concatenate([[0], np.cumsum([len(f) for f in frames])])
    out = np.zeros((n_atoms, len(species), SETTINGS["n_max"], (SETTINGS["l_max"] + 1) ** 2))
    for key, block in descriptor.items():
        l = int(key["o3_lambda"])
        rows = offsets[block.samples.column("system")] + block.samples.column("atom")
        out[rows, species.index(int(key["neighbor_type"])), :, l * l:(l + 1) ** 2] = np.swapaxes(block.values, 1, 2)
    return out


def compare(label, frames, ours, density_lode, calculators, repeat=2):
    from kernelpot.descriptors.lode import LODE  # noqa: F401  (imported above by the caller)

    n_atoms = sum(len(f) for f in frames)
    species = sorted(set(np.concatenate([f.numbers for f in frames]).tolist()))
    ours.expansion(frames[:1], gradients=True)  # compile / load the cache and build tables outside the timings
    density_lode.transform(frames[:1], gradients=True)
    mine = measure(lambda: ours.expansion(frames), repeat)
    mine_gradients = measure(lambda: ours.expansion(frames, gradients=True), repeat)
    invariants = measure(lambda: density_lode.transform(frames), repeat)
    invariants_gradients = measure(lambda: density_lode.transform(frames, gradients=True), repeat)
    print(f"\n{label}: {len(frames)} structures, {n_atoms} atoms; kernelpot tolerance {ours.tolerance:g}")
    print(f"  kernelpot coefficients          {n_atoms / mine.wall:9.0f} atoms/s  (+ gradients "
          f"{n_atoms / mine_gradients.wall:8.0f} atoms/s)")
    print(f"  kernelpot invariants ({density_lode.n_features:4d} feat.) {n_atoms / invariants.wall:9.0f} atoms/s  "
          f"(+ gradients {n_atoms / invariants_gradients.wall:8.0f} atoms/s)")
    for name, calculator in calculators:
        theirs = measure(lambda: featomic_coefficients(calculator, frames, species, False), repeat)
        theirs_gradients = measure(lambda: featomic_coefficients(calculator, frames, species, True), repeat)
        difference = np.abs(theirs.result - mine.result).max() / np.abs(theirs.result).max()
        print(f"  featomic, {name:24s}{n_atoms / theirs.wall:9.0f} atoms/s  (+ gradients "
              f"{n_atoms / theirs_gradients.wall:8.0f} atoms/s); kernelpot/featomic speed "
              f"{theirs.wall / mine.wall:5.2f} (+ gradients {theirs_gradients.wall / mine_gradients.wall:5.2f}); "
              f"max |difference| / max |featomic| = {difference:.1e}")


def compile_times() -> None:
    script = textwrap.dedent(
        """
        import time
        start = time.perf_counter()
        from ase.build import molecule
        from kernelpot.descriptors import LODE, SOAP
        imported = time.perf_counter()
        water = molecule("H2O")
        lode = LODE(["H", "O"], 3.0, 4, 3, 1.5, density=SOAP(["H", "O"], 3.0, 4, 3, sigma=0.4))
        lode.transform(water)
        features = time.perf_counter()
        lode.transform(water, gradients=True)
        gradients = time.perf_counter()
        water.cell, water.pbc = [8.0, 8.0, 8.0], True
        LODE(["H", "O"], 3.0, 4, 3, 1.5, periodic=True).transform(water, gradients=True)
        periodic = time.perf_counter()
        print(f"{imported - start:.2f} {features - imported:.2f} {gradients - features:.2f} {periodic - gradients:.2f}")
        """
    )
    for label, line in zip(("cold cache", "warm cache"), first_calls(script)):
        output = line.split()
        print(f"first call, {label}: import {output[0]} s, open-boundary invariants {output[1]} s, "
              f"+ gradients {output[2]} s, periodic expansion with gradients {output[3]} s "
              "(the warm-cache times are the radial tables: ~0.5-1 s per new hyperparameter set)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one water box and 5 dimers")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time subprocesses")
    arguments = parser.parse_args()

    import ase.io
    from featomic import LodeSphericalExpansion

    from kernelpot.descriptors import LODE, SOAP

    def calculator(k_cutoff):
        return LodeSphericalExpansion(
            density={"type": "SmearedPowerLaw", "smearing": SETTINGS["smearing"], "exponent": 1},
            basis={"type": "TensorProduct", "max_angular": SETTINGS["l_max"],
                   "radial": {"type": "Gto", "max_radial": SETTINGS["n_max"] - 1, "radius": SETTINGS["r_cut"]}},
            k_cutoff=k_cutoff,
        )

    calculators = [("k_cutoff 2.6π/σ (converged)", calculator(2.6 * np.pi / SETTINGS["smearing"])),
                   ("k_cutoff 1.2π/σ (default)", calculator(1.2 * np.pi / SETTINGS["smearing"]))]
    boxes = [water_box(seed=seed) for seed in range(1 if arguments.quick else 4)]
    ours = LODE(SPECIES, **SETTINGS, periodic=True)
    density = SOAP(SPECIES, r_cut=4.0, n_max=6, l_max=3, sigma=0.4, periodic=True, cutoff_transition_width=0.5)
    compare("64-water boxes", boxes, ours, LODE(SPECIES, **SETTINGS, periodic=True, density=density), calculators)

    dimers = ase.io.read(DIMERS, f":{5 if arguments.quick else 20}")
    dimer_species = [1, 6, 7, 8]
    ours = LODE(dimer_species, **SETTINGS, periodic=True)
    density = SOAP(dimer_species, r_cut=3.0, n_max=6, l_max=3, sigma=0.3, periodic=True, cutoff_transition_width=0.5)
    with_density = LODE(dimer_species, **SETTINGS, periodic=True, density=density)
    compare("charged dimers (30 Å box)", dimers, ours, with_density, calculators)
    open_ = LODE(dimer_species, **SETTINGS, density=SOAP(dimer_species, r_cut=3.0, n_max=6, l_max=3, sigma=0.3,
                                                         cutoff_transition_width=0.5))
    open_.transform(dimers[:1], gradients=True)
    n_atoms = sum(len(f) for f in dimers)
    plain = measure(lambda: open_.transform(dimers), 2)
    gradients = measure(lambda: open_.transform(dimers, gradients=True), 2)
    print(f"  kernelpot, open boundaries, invariants {n_atoms / plain.wall:9.0f} atoms/s  (+ gradients "
          f"{n_atoms / gradients.wall:8.0f} atoms/s); featomic has no open boundaries")
    if not arguments.no_compile:
        compile_times()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
