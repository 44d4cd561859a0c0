r"""LODE potential coefficients of one run of structures: open boundaries and Ewald split.

Definitions (units with the Coulomb constant 1: potentials in 1/Å per unit charge)
----------------------------------------------------------------------------------
Species ``a``'s density is a sum of unit Gaussians of width σ (``smearing``) on its
atoms; its potential is ``V_a(r) = Σ_{j∈a} erf(|r - r_j| / (σ√2)) / |r - r_j|``. The
coefficients of centre i are its projections about ``r_i``:

    v^a_nlm(i) = ∫ d³x R_n(|x|) Y_lm(x̂) V_a(r_i + x)

(:mod:`._lode_basis` for R_n; the centre's own Gaussian included, as featomic's
``center_atom_weight = 1``).

Open boundaries
    Direct sum over the atoms of the structure: the tabulated pair function within
    :attr:`._lode_basis.PotentialTable.r_max` (neighbour list), its exact multipole tail
    beyond (all pairs, O(N²)).

Periodic cells (3D, any triclinic)
    Per-species densities are not neutral, so the lattice sum of ``V_a`` diverges; like
    featomic, the ``k = 0`` Fourier component is dropped, i.e. ``V_a`` is the potential of
    the density plus a uniform compensating background, shifted to zero average over the
    cell. It is evaluated by an Ewald split at a width ``σ_L > σ``:

    * real space: pairs (images included) within ``r_c + R_b`` of the short-range
      function ``[erf(r/(σ√2)) - erf(r/(σ_L√2))]/r``, tabulated;
    * reciprocal space: ``(1/V) Σ_{k≠0} 4π e^(-k²σ_L²/2)/k² Σ_{j∈a} e^(-ik·r_ij)``
      projected with ``∫ R_n Y_lm e^(ik·x) = 4π i^l J_nl(k) Y_lm(k̂)``, over one half
      space (each ±k pair once): ``(8π/V) Σ_{k, half} ṽ(k) J_nl Y_lm(k̂) ×
      [(-1)^(l/2) 2 Re z]`` for even l, ``[-(-1)^((l+1)/2) 2 Im z]`` for odd l, with
      ``z = Σ_{j∈a} e^(ik·r_ij)``;
    * the ``k = 0`` term: the real-space sum includes the ``k = 0`` component of the
      short-range function, ``2π(σ_L² - σ²)/V`` per atom; dropping ``k = 0`` from the
      total subtracts it: the constant ``-2π n_a (σ_L² - σ²)/V`` on ``V_a``, which
      projects on l = 0 as ``√(4π) M_n0`` times it.

    σ_L, ``r_c`` and K come from :func:`kernelpot.electrostatics.parameters.ewald_parameters`
    at the descriptor's ``tolerance`` for unit Gaussian charges in the cell (the optimal
    α rounded down to a grid of ratio 2^(1/4), so few tables are built;
    ``σ_L² = σ² + 1/(2α²)``), and ``R_b`` is the extent of the radial basis.

Gradients are dense rows over ordered atom pairs (:mod:`._lode_kernels`).

References
----------
A. Grisafi, M. Ceriotti, J. Chem. Phys. 151, 204105 (2019), doi:10.1063/1.5128375.
P. P. Ewald, Ann. Phys. 369, 253 (1921).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..electrostatics.ewald import half_space_wavevectors
from ..electrostatics.parameters import ewald_parameters
from ..structures.neighbours import neighbour_list
from ..symmetry.harmonics import real_spherical_harmonics
from . import _lode_kernels as _k
from ._expansion import restrict_neighbours, run_over_centers
from ._lode_basis import basis_extent, lode_radial_basis, potential_table, tail_factors
from ._radial import GTO

__all__ = [
    "PotentialSettings",
    "RowPlan",
    "ewald_split",
    "expand_pairs",
    "open_potential",
    "periodic_potential",
]

# The Ewald splitting parameter is rounded down to this grid (ratio 2^(1/4)) so that
# cells of similar size share one tabulated short-range function.
_ALPHA_STEPS_PER_OCTAVE = 4
# Bytes of the per-block temporaries of the reciprocal-space gradient (neighbours j per block follow from it).
_RECIPROCAL_BLOCK_BYTES = 64 * 2**20


@dataclasses.dataclass(frozen=True)
class PotentialSettings:
    """Validated hyperparameters of the potential part."""

    species: np.ndarray  # sorted atomic numbers
    r_cut: float
    n_max: int
    l_max: int
    smearing: float
    tolerance: float


class RowPlan:
    """Dense gradient rows of a run of structures (ordered pairs, one row each).

    Parameters
    ----------
    offsets : ndarray of shape (n_structures + 1,)
        Atom offsets of the run (local indices).
    """

    def __init__(self, offsets):
        offsets = np.asarray(offsets, dtype=np.int64)
        sizes = np.diff(offsets)
        self.offsets = offsets
        self.row_offsets = np.concatenate([[0], np.cumsum(sizes**2)]).astype(np.int64)
        structure = np.repeat(np.arange(len(sizes)), sizes)
        self.first_atom = offsets[structure]
        self.last_atom = offsets[structure + 1]
        local = np.arange(offsets[-1]) - self.first_atom
        self.row_start = self.row_offsets[structure] + local * sizes[structure]
        self.n_rows = int(self.row_offsets[-1])

    def pairs(self):
        """``(center, neighbour)`` of every row (local atom indices), row order."""
        center = np.repeat(np.arange(self.offsets[-1]), self.last_atom - self.first_atom)
        neighbour = np.concatenate([np.arange(self.first_atom[i], self.last_atom[i])
                                    for i in range(self.offsets[-1])]) if len(center) else center
        return center, neighbour.astype(np.int64)

    def set_self_rows(self, rows):
        """Self rows (j == i) become minus the sum of the centre's other rows (in place)."""
        for s in range(len(self.offsets) - 1):
            n = int(self.offsets[s + 1] - self.offsets[s])
            block = rows[self.row_offsets[s]:self.row_offsets[s + 1]].reshape((n, n) + rows.shape[1:])
            diagonal = np.arange(n)
            block[diagonal, diagonal] = 0.0
            block[diagonal, diagonal] = -block.sum(axis=1)


def expand_pairs(sub, cutoff, atom_species, n_species, radial, self_value, weights, l_max, n_max, plan, rows):
    """Pair expansion of ``sub`` within ``cutoff`` (Å): coefficients, and dense rows if ``rows``.

    ``radial`` is ``(kind, eta, table_a, table_b, spline, inv_spacing)``; ``weights`` is
    ``(r_cut, transition_width)`` of GAP's cosine cutoff (``(0, 0)``: none).
    Returns the coefficients ``(n_atoms, n_species, n_max, (l_max+1)**2)``.
    """
    center, neighbour, vectors, offsets = restrict_neighbours(neighbour_list(sub, cutoff), cutoff)
    vectors = np.ascontiguousarray(vectors, dtype=np.float64)
    n_atoms = sub.n_atoms
    pair_species = atom_species[neighbour]
    coefficients = np.empty((n_atoms, n_species, n_max, (l_max + 1) ** 2))
    with_gradients = rows is not None
    pair_gradients = np.empty((len(center) if with_gradients else 0, 3, n_max, (l_max + 1) ** 2))
    run_over_centers(
        _k.pair_expansion_kernel, n_atoms, vectors, offsets, pair_species, atom_species,
        *radial, self_value, float(weights[0]), float(weights[1]), int(l_max), int(n_max), int(n_species),
        with_gradients, coefficients, pair_gradients,
    )
    if with_gradients:
        _k.scatter_pair_rows(np.asarray(center, dtype=np.int64), np.asarray(neighbour, dtype=np.int64),
                             pair_species, pair_gradients, plan.row_start, plan.first_atom, rows)
    return coefficients


def _table_radial(table):
    empty = np.zeros((1, 1))
    return GTO, 0.0, empty, np.zeros((1, 1, 1)), table.spline, float(table.inv_spacing)


def _new_rows(plan, settings, with_gradients):
    if not with_gradients:
        return None
    return np.zeros((plan.n_rows, 3, len(settings.species), settings.n_max, (settings.l_max + 1) ** 2))


def open_potential(sub, atom_species, settings: PotentialSettings, plan: RowPlan | None, with_gradients):
    """Coefficients (and dense rows) of structures with open boundaries (module docstring)."""
    table = potential_table(settings.r_cut, settings.n_max, settings.l_max, settings.smearing, None)
    rows = _new_rows(plan, settings, with_gradients)
    coefficients = expand_pairs(
        sub, table.r_max, atom_species, len(settings.species), _table_radial(table), table.self_value,
        (0.0, 0.0), settings.l_max, settings.n_max, plan, rows,
    )
    factors = tail_factors(settings.r_cut, settings.n_max, settings.l_max)
    first_atom = plan.first_atom if plan is not None else _first_atoms(sub.offsets)
    last_atom = plan.last_atom if plan is not None else _first_atoms(sub.offsets, last=True)
    row_start = plan.row_start if plan is not None else np.zeros(sub.n_atoms, dtype=np.int64)
    dummy = rows if rows is not None else np.zeros((1, 3, 1, 1, 1))
    run_over_centers(
        _k.multipole_tail_kernel, sub.n_atoms, np.ascontiguousarray(sub.positions), first_atom, last_atom,
        atom_species, float(table.r_max), factors, int(settings.l_max), int(settings.n_max), with_gradients,
        row_start, coefficients, dummy,
    )
    return coefficients, rows


def _first_atoms(offsets, last=False):
    sizes = np.diff(offsets)
    structure = np.repeat(np.arange(len(sizes)), sizes)
    return np.asarray(offsets[structure + 1] if last else offsets[structure], dtype=np.int64)


def ewald_split(cell, n_atoms, settings: PotentialSettings):
    """``(σ_L, r_c, K)`` for one cell (module docstring): Å, Å, 1/Å."""
    widths = np.array([settings.smearing / math.sqrt(2.0)])
    best = ewald_parameters(cell, n_atoms, settings.tolerance, widths=widths)
    steps = math.floor(_ALPHA_STEPS_PER_OCTAVE * math.log2(best.alpha))
    alpha = 2.0 ** (steps / _ALPHA_STEPS_PER_OCTAVE)
    fixed = ewald_parameters(cell, n_atoms, settings.tolerance, widths=widths, alpha=alpha)
    split_width = math.sqrt(settings.smearing**2 + 0.5 / alpha**2)
    return split_width, fixed.real_cutoff, fixed.k_cutoff


def periodic_potential(sub, atom_species, settings: PotentialSettings, plan: RowPlan | None, with_gradients):
    """Coefficients (and dense rows) of one periodic structure (module docstring)."""
    cell = np.asarray(sub.cells[0], dtype=np.float64)
    n_atoms = sub.n_atoms
    split_width, real_cutoff, k_cutoff = ewald_split(cell, n_atoms, settings)
    table = potential_table(settings.r_cut, settings.n_max, settings.l_max, settings.smearing, split_width)
    basis = lode_radial_basis(settings.r_cut, settings.n_max, settings.l_max)
    cutoff = min(table.r_max, real_cutoff + basis_extent(basis, settings.tolerance))
    rows = _new_rows(plan, settings, with_gradients)
    coefficients = expand_pairs(
        sub, cutoff, atom_species, len(settings.species), _table_radial(table), table.self_value,
        (0.0, 0.0), settings.l_max, settings.n_max, plan, rows,
    )
    volume = abs(float(np.linalg.det(cell)))
    _reciprocal(sub.positions, atom_species, len(settings.species), cell, volume, k_cutoff, split_width,
                basis, coefficients, rows, plan)
    # k = 0: the real-space sum carried 2π(σ_L² - σ²)/V per atom that the k ≠ 0 potential lacks.
    counts = np.bincount(atom_species, minlength=len(settings.species))
    shift = -2.0 * math.pi * counts * (split_width**2 - settings.smearing**2) / volume
    coefficients[:, :, :, 0] += shift[None, :, None] * (math.sqrt(4.0 * math.pi) * basis.moments()[0])[None, None, :]
    return coefficients, rows


def _reciprocal_weights(kvectors, volume, split_width, basis):
    """``B[k, n, lm]`` for the real (even l) and imaginary (odd l) parts of z (module docstring)."""
    norms = np.linalg.norm(kvectors, axis=1)
    integrals = basis.integrals(norms)  # (k, l, n)
    harmonics = real_spherical_harmonics(np.ascontiguousarray(kvectors), basis.l_max)  # (k, lm)
    weight = (8.0 * math.pi / volume) * 4.0 * math.pi * np.exp(-0.5 * (norms * split_width) ** 2) / norms**2
    n_lm = (basis.l_max + 1) ** 2
    real_part = np.zeros((len(norms), basis.n_max, n_lm))
    imaginary_part = np.zeros_like(real_part)
    for l in range(basis.l_max + 1):
        block = slice(l * l, (l + 1) ** 2)
        values = weight[:, None, None] * integrals[:, l, :, None] * harmonics[:, None, block]
        if l % 2 == 0:
            real_part[:, :, block] = (-1) ** (l // 2) * values
        else:
            imaginary_part[:, :, block] = -((-1) ** ((l + 1) // 2)) * values
    return real_part.reshape(len(norms), -1), imaginary_part.reshape(len(norms), -1)


def _reciprocal(positions, atom_species, n_species, cell, volume, k_cutoff, split_width, basis,
                coefficients, rows, plan):
    """Add the reciprocal-space part (and its gradient rows) of one periodic structure."""
    _, kvectors, _ = half_space_wavevectors(cell, k_cutoff)
    if len(kvectors) == 0:
        return
    real_part, imaginary_part = _reciprocal_weights(kvectors, volume, split_width, basis)
    phases = np.exp(1j * (positions @ kvectors.T))  # (n, n_k): e^(ik·r_j)
    n = len(positions)
    sums = np.zeros((n_species, len(kvectors)), dtype=np.complex128)
    np.add.at(sums, atom_species, phases)
    z = np.conj(phases)[:, None, :] * sums[None]  # z[i, a, k] = Σ_{j∈a} e^(ik·(r_j - r_i))
    flat = z.reshape(n * n_species, -1)
    coefficients += (flat.real @ real_part + flat.imag @ imaginary_part).reshape(coefficients.shape)
    if rows is None:
        return
    # d/dr_j of z's pair term e^(ik·r_ij) (i fixed): d Re = -Im(e^(ik·r_ij)) k, d Im = Re(e^(ik·r_ij)) k. With
    # e^(ik·r_ij) = (c_i c_j + s_i s_j) + i (c_i s_j - s_i c_j) (c, s: cos, sin of k·r) the row of pair (i, j) is
    #   Σ_k s_ik U_jk + c_ik W_jk,  U_jk = k (c_jk B_re + s_jk B_im),  W_jk = k (c_jk B_im - s_jk B_re),
    # two matrix products over k for all pairs at once (per block of neighbours j).
    cosines, sines = phases.real, phases.imag
    n_columns = real_part.shape[1]
    block = max(1, _RECIPROCAL_BLOCK_BYTES // (8 * len(kvectors) * 3 * n_columns))
    for start in range(0, n, block):
        j = np.arange(start, min(start + block, n))
        c_j, s_j = cosines[j].T[:, :, None], sines[j].T[:, :, None]  # (k, j, 1)
        slope = kvectors[:, None, :, None]  # (k, 1, 3, 1)
        u = slope * (c_j * real_part[:, None, :] + s_j * imaginary_part[:, None, :])[:, :, None, :]
        w = slope * (c_j * imaginary_part[:, None, :] - s_j * real_part[:, None, :])[:, :, None, :]
        derivative = sines @ u.reshape(len(kvectors), -1) + cosines @ w.reshape(len(kvectors), -1)
        derivative = derivative.reshape((n * len(j), 3) + coefficients.shape[2:])
        row_index = (plan.row_start[:n, None] + j[None, :] - plan.first_atom[:n, None]).ravel()
        rows[row_index, :, np.tile(atom_species[j], n)] += derivative
