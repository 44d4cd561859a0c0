"""Do the NaCl–water revPBE0-D3 files hold raw DFT labels or labels minus a Coulomb baseline?

O'Neill et al. (arXiv:2311.01527) run their network with a fixed-charge Coulomb term added in CP2K (``input/nvt.inp``
of github.com/niamhon/nacl-water: FIST, SPME, O −0.834, H +0.417, Na +1, Cl −1, no exclusions). Their README and
n2p2 ``input.nn`` do not say whether the published ``data-sets/revPBE0-D3/BP-NNP/*.data`` files are DFT or DFT minus
that term. This script tests it on the numbers, with the Coulomb energies and forces of those charges
(all pairs, Ewald):

1. **Stein identity.** For configurations sampled from exp(−U/kT), ⟨∇_i U · ∇_i A⟩ = kT ⟨∇_i² A⟩ for any smooth A.
   With A = the Coulomb energy, ∇_i² A = 0 (1/r is harmonic; the periodic background adds 4πk q_i²/V ≈ 0.1 eV/Å²,
   times kT ≈ 0.003 eV²/Å²). So for raw labels ⟨F_label · F_C⟩ ≈ 0 per species, whereas labels = DFT − Coulomb
   give ⟨F_label · F_C⟩ ≈ −⟨|F_C|²⟩ (0.4–0.7 eV²/Å² on the ions, 14–28 on H and O).
2. **Bonded mean force.** The mean force on H along H→O is 2kT⟨1/r⟩ ≈ 0.053 eV/Å for Boltzmann-sampled O–H bonds
   (the r² Jacobian) if the labels are the sampling potential's forces; subtracting the intramolecular Coulomb
   attraction would add about −3.7 eV/Å.
3. **Energies.** The energy per water from a composition fit, against −469.4 eV (CP2K revPBE0-D3 with the same
   GTH pseudopotentials: 64-water boxes of Cheng et al., PNAS 116, 1110 (2019), −30044 … −29976 eV); subtracting
   the Coulomb energy would shift it by +9.6 eV per water (all pairs). Also: the ``comment`` lines of ``gen1c``
   (CP2K single-point headers, ``i = 0``) carry the same energy as the label.
4. Contact mean forces (Na→Cl, Na→O, Cl→H) as they are and as they would be with the Coulomb forces added back.

Run: ``python benchmarks/nacl_labels.py`` (about 2 min; needs ../shared/data and, until
``kernelpot.electrostatics`` is available, torch-pme + vesin).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
from ase import units

sys.path.insert(0, str(Path(__file__).resolve().parent))

from long_range import NACL_CHARGES, NACL_DIR, fixed_charge_coulomb

from kernelpot.structures.runner import read_runner

KT_300K = units.kB * 300.0
GENERATIONS = ("gen1a", "gen1b", "gen1c", "gen1d", "gen1e", "gen3")


def _owner_oxygen(atoms):
    """Index of the nearest O of every H (minimum image)."""
    symbols = np.array(atoms.get_chemical_symbols())
    oxygens, hydrogens = np.where(symbols == "O")[0], np.where(symbols == "H")[0]
    distances = atoms.get_all_distances(mic=True)[np.ix_(hydrogens, oxygens)]
    return hydrogens, oxygens[np.argmin(distances, axis=1)]


def _contact_projections(atoms, forces, coulomb_forces, first, second, r_max):
    """(F_label·u, F_C·u) on every ``first`` atom for each ``second`` atom within r_max (u: first→second)."""
    symbols = np.array(atoms.get_chemical_symbols())
    a_atoms, b_atoms = np.where(symbols == first)[0], np.where(symbols == second)[0]
    rows = []
    for i in a_atoms:
        if len(b_atoms) == 0:
            break
        vectors = atoms.get_distances(i, b_atoms, mic=True, vector=True)
        lengths = np.linalg.norm(vectors, axis=1)
        for k in np.where(lengths < r_max)[0]:
            u = vectors[k] / lengths[k]
            rows.append((forces[i] @ u, coulomb_forces[i] @ u, lengths[k]))
    return rows


def analyse(frames_by_generation):
    """Print the tests above for each generation; returns the per-species Stein averages."""
    stein = {}
    print("1. Stein identity, <F_label . F_C> per species (eV²/Å²): ~0 for raw labels, -<|F_C|²> if subtracted")
    print(f"{'set':<7}" + "".join(f"{s:>26}" for s in ("O", "H", "Na", "Cl")))
    bonded, contacts, energies = {}, {}, []
    for name, frames in frames_by_generation.items():
        sums = {s: [] for s in ("O", "H", "Na", "Cl")}
        for atoms in frames:
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
            coulomb = fixed_charge_coulomb(atoms, NACL_CHARGES)
            symbols = np.array(atoms.get_chemical_symbols())
            for s, collected in sums.items():
                mask = symbols == s
                collected.append(np.c_[np.sum(forces[mask] * coulomb.forces[mask], 1),
                                     np.sum(coulomb.forces[mask] ** 2, 1)])
            hydrogens, owners = _owner_oxygen(atoms)
            vectors = np.array([atoms.get_distance(h, o, mic=True, vector=True) for h, o in zip(hydrogens, owners)])
            lengths = np.linalg.norm(vectors, axis=1)
            bonded.setdefault(name[:4], []).append(
                np.c_[np.sum(forces[hydrogens] * vectors, 1) / lengths,
                      np.sum(coulomb.forces[hydrogens] * vectors, 1) / lengths, 1.0 / lengths])
            for pair, r_max in ((("Na", "Cl"), 3.1), (("Na", "O"), 2.7), (("Cl", "H"), 2.5)):
                contacts.setdefault((pair, name[:4]), []).extend(
                    _contact_projections(atoms, forces, coulomb.forces, *pair, r_max))
            counts = {s: int(np.sum(symbols == s)) for s in ("O", "Na")}
            energies.append((name, energy, coulomb.energy, counts["O"], counts["Na"], atoms.info.get("comment")))
        cells = []
        for s, rows in sums.items():
            rows = np.concatenate(rows)
            mean, sem = rows[:, 0].mean(), rows[:, 0].std() / np.sqrt(len(rows))
            stein[(name, s)] = (mean, sem, rows[:, 1].mean())
            cells.append(f"{mean:+.3f}±{sem:.3f} vs {-rows[:, 1].mean():+.2f}")
        print(f"{name:<7}" + "".join(f"{c:>26}" for c in cells))
    print("\n2. mean force on H along H->O (eV/Å): 2kT<1/r> for Boltzmann-sampled raw labels")
    for gen, rows in bonded.items():
        rows = np.concatenate(rows)
        print(f"  {gen}: label {rows[:, 0].mean():+.3f}±{rows[:, 0].std() / np.sqrt(len(rows)):.3f}   "
              f"2kT<1/r> {2 * KT_300K * rows[:, 2].mean():+.3f}   if Coulomb-subtracted "
              f"{(rows[:, 0] - rows[:, 1]).mean():+.3f}")
    print("\n3. energies")
    names = np.array([e[0] for e in energies])
    label, coulomb_energy, waters, pairs = (np.array([e[i] for e in energies]) for i in (1, 2, 3, 4))
    design = np.c_[waters, pairs]
    for what, mask in (("gen1", names != "gen3"), ("all", np.ones(len(names), bool))):
        mu, *_ = np.linalg.lstsq(design[mask], label[mask], rcond=None)
        print(f"  {what}: E = n_water*{mu[0]:.3f} + n_NaCl*{mu[1]:.3f} eV; per water {mu[0]:.2f} eV "
              f"(revPBE0-D3 water: -469.4 … -468.4); were the labels DFT - Coulomb, DFT would give "
              f"{mu[0] + np.mean(coulomb_energy / waters):.1f}")
    by_set = {}
    for e in energies:
        match = re.search(r"i\s*=\s*(\d+),.*E\s*=\s*(\S+)", e[5] or "")
        if match:
            by_set.setdefault(e[0], []).append((float(match.group(2)) * units.Hartree - e[1], int(match.group(1))))
    for name, rows in by_set.items():
        gap, steps = np.array(rows).T
        print(f"  {name}: {len(rows)} comments 'i = step, E = ...' (steps {int(steps.min())}-{int(steps.max())}): "
              f"E_comment - E_label = {gap.mean() * 1e3:+.3f} ± {gap.std() * 1e3:.3f} meV")
    print("\n4. contact mean forces on the first atom towards the second (eV/Å)")
    for (pair, gen), rows in contacts.items():
        rows = np.array(rows)
        if len(rows):
            print(f"  {pair[0]}->{pair[1]} {gen}: n={len(rows)} <r>={rows[:, 2].mean():.2f} Å  label "
                  f"{rows[:, 0].mean():+.3f}±{rows[:, 0].std() / np.sqrt(len(rows)):.3f}   "
                  f"Coulomb {rows[:, 1].mean():+.3f}"
                  f"   label + Coulomb {(rows[:, 0] + rows[:, 1]).mean():+.3f}")
    return stein


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=NACL_DIR, help="folder of revPBE0-D3_gen*.data")
    parser.add_argument("--every", type=int, default=1, help="use every n-th frame (default: all)")
    args = parser.parse_args(argv)
    frames = {name: read_runner(args.data / f"revPBE0-D3_{name}.data", slice(None, None, args.every))
              for name in GENERATIONS}
    analyse(frames)


if __name__ == "__main__":
    main()
