"""Shared pieces of the electrolyte example: the box, the oracle, the GAP recipe, the file layout.

The system is one NaCl in 32 waters (98 atoms, cubic, 1 g/cm³, L = 10.18 Å), labelled by GFN2-xTB through
tblite (``pip install "kernelpot[xtb]"``). Without tblite (CI), ``--oracle standin`` uses a cheap
Lennard-Jones stand-in so the chain of scripts runs end to end; its numbers mean nothing physically.

Every step writes into one work folder (``--work``, default ``electrolyte_run/``)::

    reference/xtb_md.extxyz          the direct xTB MD (330 K), frames every 10 fs with energy and forces
    reference/test.extxyz            the test frames cut from it; reference/direct_pool.extxyz the (c) pool
    learn/<strategy>_seed<k>/        one active-learning checkpoint per run (kernelpot.active.Checkpoint)
    compare/                         learning curves (JSON, table, PNG)
    md/<name>.extxyz                 production MD (kernelpot md --output), resumable
    analysis/                        RDFs, coordination numbers, MSDs, diffusion, conductivity (JSON, PNG)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule

#: g/mol
_MOLAR_MASS = {"H2O": 18.015, "NaCl": 58.443}
_AVOGADRO_PER_A3 = 0.60221408  # g/cm³ × Å³ → g/mol: mass(g/mol) / (0.6022 · V(Å³)) = density (g/cm³)
DEUTERIUM_MASS = 2.014

#: xTB-MD temperature of the reference trajectory, K.
REFERENCE_TEMPERATURE = 330.0


def nacl_water_box(n_water=32, n_pairs=1, *, density=1.0, seed=0, min_heavy=2.5, min_any=1.6):
    """A cubic periodic box of ``n_pairs`` NaCl and ``n_water`` water molecules at ``density`` (g/cm³).

    Ions first (Na⁺ and Cl⁻ of a pair half a box diagonal apart, i.e. solvent separated), then randomly
    oriented waters at random positions, rejected when a heavy atom comes within ``min_heavy`` Å of another
    or any atom within ``min_any`` Å (minimum image).

    Returns
    -------
    ase.Atoms
        Ions first, then O, H, H per water (the order the analysis relies on is by species, not index).
    """
    rng = np.random.default_rng(seed)
    mass = n_water * _MOLAR_MASS["H2O"] + n_pairs * _MOLAR_MASS["NaCl"]
    length = (mass / (_AVOGADRO_PER_A3 * density)) ** (1.0 / 3.0)
    atoms = Atoms(cell=[length] * 3, pbc=True)
    for k in range(n_pairs):
        centre = rng.uniform(0.0, length, 3) if k else np.zeros(3)
        atoms += Atoms("NaCl", positions=[centre, centre + 0.5 * length])
    water = molecule("H2O")
    water.positions -= water.positions[0]
    tries = 0
    while (atoms.numbers == 8).sum() < n_water:
        tries += 1
        if tries > 200000:
            raise RuntimeError(f"could not place {n_water} waters at {density} g/cm³; lower min_heavy/min_any")
        candidate = water.copy()
        candidate.rotate(float(rng.uniform(0, 360)), rng.normal(size=3))
        candidate.positions += rng.uniform(0.0, length, 3)
        delta = atoms.positions[None, :, :] - candidate.positions[:, None, :]
        delta -= length * np.round(delta / length)
        distance = np.linalg.norm(delta, axis=-1)  # (3, n)
        if distance.size and (distance.min() < min_any or distance[0][atoms.numbers > 1].min(initial=9) < min_heavy):
            continue
        atoms += candidate
    atoms.wrap()
    return atoms


def deuterate(atoms):
    """A copy with deuterium masses on the hydrogens (halves the fastest vibration's frequency by √2).

    Classical configurational averages (the test set, RDFs) do not depend on masses; dynamics do, so
    production MD for diffusion keeps protium masses.
    """
    atoms = atoms.copy()
    masses = atoms.get_masses()
    masses[atoms.numbers == 1] = DEUTERIUM_MASS
    atoms.set_masses(masses)
    return atoms


class StandIn:
    """Factory of the CI stand-in oracle: one Lennard-Jones potential for all species (ε 0.05 eV, σ 0.85 Å).

    It is not water: it keeps atoms apart and gives smooth forces, so every script runs in seconds.
    """

    def __call__(self):
        from ase.calculators.lj import LennardJones

        return LennardJones(epsilon=0.05, sigma=0.85, rc=4.0, smooth=True)


def make_oracle(name):
    """An ASE calculator: ``"xtb"`` (tblite GFN2-xTB, periodic) or ``"standin"`` (Lennard-Jones, for CI)."""
    if name == "xtb":
        try:
            from tblite.ase import TBLite
        except ImportError:
            raise SystemExit("the xtb oracle needs tblite: pip install 'kernelpot[xtb]' (or --oracle standin)") \
                from None
        return TBLite(method="GFN2-xTB", verbosity=0)
    if name == "standin":
        return StandIn()()
    raise ValueError(f"--oracle must be 'xtb' or 'standin'; got {name!r}")


def default_oracle():
    """``"xtb"`` when tblite is importable, else ``"standin"``."""
    try:
        import tblite.ase  # noqa: F401
    except ImportError:
        return "standin"
    return "xtb"


#: Å: the closest approach per species pair that MD (of the loop's explorer, of production) accepts before it
#: stops as an explosion. Each limit is at most 0.83 × the smallest distance of that pair in 80 frames of the
#: revPBE0-D3 AIMD (O–O 2.44, H–H 1.34, O–H 0.90, Na–O 2.11, Cl–O 2.64, Na–H 2.09, Cl–H 1.65, Na–Cl 2.28 Å).
#: A single 0.7 Å limit let the session-2 loops label frames with O–O at 1.07 Å and H–H at 0.83 Å (forces up to
#: 30 eV/Å), geometries no liquid visits, which then went into the fit.
MIN_DISTANCES = {"O-O": 2.0, "H-H": 1.0, "H-O": 0.75, "Na-O": 1.7, "Cl-O": 2.2, "H-Na": 1.6, "Cl-H": 1.3,
                 "Cl-Na": 1.9, "*": 0.7}

def min_distances(oracle):
    """:data:`MIN_DISTANCES` for water labelled by xTB; 0.5 Å for every pair with the CI stand-in (not water)."""
    return MIN_DISTANCES if oracle == "xtb" else 0.5


#: Species pairs of the example's pair terms. One NaCl: no Na–Na or Cl–Cl pair ever exists, and the ions start
#: 8.8 Å apart (beyond the pair cutoff), so an Na–Cl term would have no rows to fit; SOAP describes Na–Cl contacts.
PAIRS = ((8, 8), (1, 8), (1, 1), (8, 11), (1, 11), (8, 17), (1, 17))

#: The GAP recipe of the example, as a gap_fit string (``kernelpot learn/fit --gap`` take the same text): a short
#: SOAP (3 Å) plus one ``distance_2b`` term per species pair (4.5 Å). Why (session 3,
#: /work/notes/electrolyte/s3/recipe_probe.*): the earlier recipe, one SOAP term of cutoff 4.5 Å alone, cannot
#: represent water's forces at all. Fitted to 4 relabelled 188-atom AIMD frames with *every* environment a
#: sparse point, its training force RMSE was 282 meV/Å (431 with 400 sparse points) and its test RMSE 448–570,
#: worse than predicting F = 0 (734); on the same geometries' revPBE0-D3 labels it failed alike (train 503, test
#: 663), so the labels were not the cause. A normalised SOAP power spectrum of ~40 neighbours within 4.5 Å barely
#: changes when one O–H bond or hydrogen bond stretches, the stiff short-range part that dominates the forces.
#: The same SOAP at 3 Å: train 91, test 170; + pair terms: test 128 (4 frames) and 96 meV/Å (12 frames).
GAP_STRING = ("{{soap l_max=4 n_max=6 atom_sigma=0.5 cutoff={cutoff} cutoff_transition_width=0.5 delta=1.0 "
              "covariance_type=dot_product zeta=4 n_sparse={n_sparse} sparse_method=cur_points : {pairs}}}")
PAIR_TERM = ("distance_2b cutoff={pair_cutoff} cutoff_transition_width=1.0 covariance_type=ard_se delta=1.0 "
             "theta_uniform=1.0 n_sparse=20 sparse_method=uniform Z1={z1} Z2={z2}")
#: Regularisation: energy eV/atom, forces eV/Å, virial eV/atom (``--default-sigma``).
SIGMA = (0.002, 0.05, 0.05)
SPECIES = [1, 8, 11, 17]


def gap_string(*, cutoff=3.0, n_sparse=1000, pair_cutoff=4.5):
    """:data:`GAP_STRING` with the SOAP ``cutoff`` (Å) and sparse points, and the pair terms' cutoff (Å)."""
    pairs = " : ".join(PAIR_TERM.format(pair_cutoff=pair_cutoff, z1=a, z2=b) for a, b in PAIRS)
    return GAP_STRING.format(cutoff=cutoff, n_sparse=n_sparse, pairs=pairs)


def gap_template(*, cutoff=3.0, n_sparse=1000, coulomb=False, random_state=0):
    """The unfitted GAP of the loop: :data:`GAP_STRING` (SOAP + pair terms), :data:`SIGMA`, e0 per species.

    Parameters
    ----------
    coulomb : bool
        Fit on top of a fixed-charge Coulomb baseline (:data:`COULOMB_CHARGES`).
    """
    from kernelpot.models.gap import SparseGPR
    from kernelpot.potential.recipe import terms_from_gap_string

    baseline = None
    if coulomb:
        from kernelpot.potential import CoulombBaseline

        baseline = CoulombBaseline(COULOMB_CHARGES)
    terms = terms_from_gap_string(gap_string(cutoff=cutoff, n_sparse=n_sparse), SPECIES, periodic=True)
    return SparseGPR(terms, default_sigma=SIGMA, e0="composition", baseline=baseline, random_state=random_state,
                     verbose=False)


#: e; TIP3P water, formal ions (the --coulomb baseline of kernelpot fit/learn takes the same table).
COULOMB_CHARGES = {"Na": 1.0, "Cl": -1.0, "O": -0.834, "H": 0.417}


def work_parser(description):
    """An argument parser with the options every step shares (--work, --oracle)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("electrolyte_run"), help="work folder of all steps")
    parser.add_argument("--oracle", default=None, choices=["xtb", "standin"],
                        help="labels: GFN2-xTB (tblite) or the CI stand-in (default: xtb if tblite is installed)")
    return parser


def force_errors(model, frames, *, chunk=10):
    """Force RMSE (eV/Å, all Cartesian components) overall and per species, of ``model`` on labelled frames.

    Energies are left out on purpose: the test frames (188 atoms) and the loop's box (98) differ, and a per-atom
    energy offset is not what an MD run feels.
    """
    predicted, reference, numbers = [], [], []
    for k in range(0, len(frames), chunk):
        block = frames[k:k + chunk]
        predicted.append(np.asarray(model.predict(block, properties=("forces",))["forces"]))
        reference.extend(a.get_forces() for a in block)
        numbers.extend(a.numbers for a in block)
    error = np.concatenate(predicted) - np.concatenate(reference)
    numbers = np.concatenate(numbers)
    from ase.data import chemical_symbols

    out = {"forces_rmse": float(np.sqrt(np.mean(error**2)))}
    for z in np.unique(numbers):
        out[f"forces_rmse_{chemical_symbols[z]}"] = float(np.sqrt(np.mean(error[numbers == z] ** 2)))
    return out
