r"""Ewald summation for point and Gaussian charges in any triclinic cell.

Energy (units k_e = 1; the public results are multiplied by
:data:`~kernelpot.electrostatics.COULOMB_CONSTANT`), for charges ``q_i`` with
Gaussian widths ``σ_i`` (0 for point charges), tin-foil boundary conditions::

    E = E_real + E_recip + E_self + E_background

    E_recip = (2π/V) Σ_{k≠0} exp(-k²/(4α²)) / k² · |S(k)|²,
              S(k) = Σ_i q_i exp(-k² σ_i² / 2) exp(i k·r_i)
    E_real  = ½ Σ_{i,j,T}' q_i q_j [erfc(α_ij r) - erfc(r/γ_ij)] / r,   r = |r_j + T - r_i|
    E_self  = Σ_i q_i² (1/(2σ_i√π) - α_ii/√π)
    E_bg    = -π Q² / (2 V α²),   Q = Σ q_i

with ``γ_ij = sqrt(2(σ_i² + σ_j²))`` and ``α_ij = (1/α² + γ_ij²)^(-1/2)``.

How the split works for Gaussians: the pair interaction ``erf(r/γ_ij)/r`` is
written as ``erf(α_ij r)/r + [erf(r/γ_ij) - erf(α_ij r)]/r``. The first term's
Fourier transform is ``4π/k² exp(-k²/(4α²)) exp(-k²(σ_i² + σ_j²)/2)`` — the
Ewald screening combined with both Gaussian widths, a product of per-atom
factors, hence the width-weighted structure factor ``S(k)``. The second term is
short-ranged (it decays like ``erfc(α_ij r)``) and is the real-space sum. For
point charges ``σ = 0``, ``α_ij = α`` and ``erfc(r/γ) = 0``: the textbook Ewald
sum. The reciprocal sum contains each atom's interaction with itself,
``q_i² α_ii/√π``, removed by ``E_self``, which also adds the Gaussian's own
self-energy. The ``k = 0`` term is dropped: for a charged cell this is the energy
with a uniform neutralising background, and ``E_bg`` makes the total independent
of α. (The width-dependent parts of the k → 0 limits of the reciprocal sum and of
the integral of the real-space kernel over the background cancel, so ``E_bg``
is the same for Gaussians as for points.) References: Ewald, Ann. Phys. 369, 253
(1921); de Leeuw, Perram & Smith, Proc. R. Soc. A 373, 27 (1980); Gaussian
charges as in kernel charge equilibration (Staacke et al., Mach. Learn.: Sci.
Technol. 3, 015032 (2022)).

Derivatives are analytic: forces are ``-dE/dr_i``; the virial ``-dE/dε`` of the
reciprocal part is ``δ_ab E_recip - (4π/V) Σ_{k, half} G(k) 2 k_a k_b
[(1/k² + 1/(4α²)) |S|² + Re(T S*)]`` with ``G = exp(-k²/(4α²))/k²`` and
``T(k) = Σ_i q_i σ_i² exp(-k² σ_i²/2) exp(i k·r_i)`` (the widths are fixed
lengths under strain); that of the background is ``E_bg δ_ab``.
"""

from __future__ import annotations

import math

import numpy as np

from ._ewald_kernels import reciprocal_gradients, structure_factors
from ._pair_kernels import ERFCX_TABLE
from ._periodic import PeriodicSum, Reciprocal
from ._real_space_kernels import real_space_sum
from ._setup import (
    WidthGroups,
    as_positions,
    as_widths,
    bin_counts,
    check_tolerance,
    coincident_error,
)
from .parameters import EwaldParameters, ewald_parameters
from .result import COULOMB_CONSTANT

__all__ = ["Ewald", "half_space_wavevectors"]

# Wave vectors per block of the matrix assembly (bounds its memory to 2 n × block floats).
_MATRIX_BLOCK = 2048


def half_space_wavevectors(cell, k_cutoff):
    """Wave vectors ``k = m @ recip`` of one half space with ``0 < |k| <= k_cutoff``.

    The half space is ``m0 > 0``, or ``m0 = 0, m1 > 0``, or ``m0 = m1 = 0, m2 > 0``
    (each ±k pair once; sums over all k ≠ 0 are twice the real part of a sum over
    these). Sorted by (m0, m1, m2). Shared by :class:`Ewald` and the reciprocal-space
    part of the LODE descriptor (:mod:`kernelpot.descriptors.lode`).

    Parameters
    ----------
    cell : array_like of shape (3, 3)
        Lattice vectors as rows, Å.
    k_cutoff : float
        K in 1/Å.

    Returns
    -------
    m : ndarray of shape (n_k, 3), int64
        Integer coordinates on the reciprocal lattice.
    k : ndarray of shape (n_k, 3), float64
        Wave vectors (1/Å); ``recip`` = 2π × the reciprocal basis, ``a_i·recip_j = 2π δ_ij``.
    m_max : ndarray of shape (3,), int64
        Largest ``|m_d|`` searched along each direction.
    """
    cell = np.asarray(cell, dtype=np.float64)
    recip = 2.0 * math.pi * np.linalg.inv(cell).T
    m_max = np.floor(k_cutoff * np.linalg.norm(cell, axis=1) / (2 * math.pi)).astype(np.int64)
    ranges = [np.arange(0, m_max[0] + 1), np.arange(-m_max[1], m_max[1] + 1),
              np.arange(-m_max[2], m_max[2] + 1)]
    m = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    half = (m[:, 0] > 0) | ((m[:, 0] == 0) & (m[:, 1] > 0)) | ((m[:, 0] == 0) & (m[:, 1] == 0) & (m[:, 2] > 0))
    m = m[half]
    k = m @ recip
    keep = np.einsum("ij,ij->i", k, k) <= k_cutoff**2
    # meshgrid order: already sorted by (m0, m1, m2)
    return m[keep], np.ascontiguousarray(k[keep]), m_max


class Ewald(PeriodicSum):
    """Ewald summation in one periodic cell with fixed parameters.

    Build it once per cell (:meth:`from_tolerance` picks the parameters) and call
    :meth:`compute` for every configuration in that cell, e.g. the steps of an NVT
    run; the wave vectors are computed once.

    Parameters
    ----------
    cell : array_like of shape (3, 3)
        Lattice vectors as rows, Å (any triclinic cell).
    parameters : EwaldParameters
        α, real-space cutoff, k cutoff.

    Examples
    --------
    Rock salt, conventional cell of 8 ions, nearest neighbours 1 Å apart:

    >>> import numpy as np
    >>> from kernelpot.electrostatics import Ewald, COULOMB_CONSTANT
    >>> fcc = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]]) / 2
    >>> positions = np.vstack([fcc, fcc + [0.5, 0, 0]]) * 2.0
    >>> charges = [1, 1, 1, 1, -1, -1, -1, -1]
    >>> ewald = Ewald.from_tolerance(2.0 * np.eye(3), 8, tolerance=1e-10)
    >>> result = ewald.compute(positions, charges)
    >>> round(-result.energy / (4 * COULOMB_CONSTANT), 8)  # Madelung constant
    1.74756459
    """

    method = "ewald"

    def __init__(self, cell, parameters: EwaldParameters):
        super().__init__(cell, parameters)
        if not (np.isfinite(parameters.k_cutoff) and parameters.k_cutoff > 0):
            raise ValueError(f"`k_cutoff` must be finite and > 0 (1/Å); got {parameters.k_cutoff!r}")
        self._build_kvectors(parameters.k_cutoff)
        self._width_factors = {}

    @classmethod
    def from_tolerance(cls, cell, n_atoms, *, tolerance=1e-6, charges=None, widths=None) -> Ewald:
        """Ewald with the cheapest parameters meeting ``tolerance``.

        Parameters
        ----------
        cell : array_like of shape (3, 3)
            Lattice vectors as rows, Å.
        n_atoms : int
            Number of charges in the cell.
        tolerance : float
            Target RMS force error relative to k_e e²/Å² (14.4 eV/Å); see
            :mod:`kernelpot.electrostatics.parameters` for the estimates.
        charges : array_like of shape (n_atoms,), optional
            Charges in e the parameters are tuned for (their Σq²); default unit charges.
        widths : float or array_like, optional
            Gaussian widths σ in Å (their extremes set the decay rates).
        """
        tolerance = check_tolerance(tolerance)
        sum_squared = None if charges is None else float(np.sum(np.square(charges)))
        widths = None if widths is None else np.atleast_1d(np.asarray(widths, dtype=np.float64))
        return cls(cell, ewald_parameters(cell, int(n_atoms), tolerance, sum_squared_charges=sum_squared,
                                          widths=widths))

    def _build_kvectors(self, k_cutoff):
        """Half-space wave vectors with |k| ≤ K, sorted in runs of equal (m0, m1)."""
        m, k, m_max = half_space_wavevectors(self.cell, k_cutoff)
        k2 = np.einsum("ij,ij->i", k, k)
        new_run = np.ones(len(m), dtype=bool)
        new_run[1:] = np.any(m[1:, :2] != m[:-1, :2], axis=1)
        starts = np.flatnonzero(new_run)
        self._m_max = m_max
        self._run_m = np.ascontiguousarray(m[starts, :2])
        self._run_m2_first = np.ascontiguousarray(m[starts, 2])
        self._run_start = np.append(starts, len(m)).astype(np.int64)
        self._kvectors = np.ascontiguousarray(k)
        self._k2 = k2
        self._influence = np.exp(-k2 / (4.0 * self.parameters.alpha**2)) / k2

    @property
    def n_kvectors(self) -> int:
        """Number of wave vectors in the half space."""
        return len(self._k2)

    def _factors(self, groups: WidthGroups) -> np.ndarray:
        """``exp(-k² σ_g²/2)``, shape (n_groups, n_k), cached per set of widths."""
        key = groups.widths.tobytes()
        if key not in self._width_factors:
            if len(self._width_factors) > 8:
                self._width_factors.clear()
            self._width_factors[key] = np.exp(-0.5 * np.outer(groups.widths**2, self._k2))
        return self._width_factors[key]

    def _reciprocal(self, positions, charges, groups, threads, want_forces, want_virial, want_potential):
        factors = self._factors(groups)
        n_chunks = max(1, min(threads, len(positions)))
        per_group = structure_factors(positions, charges, groups.groups, groups.n_groups, self.recip,
                                      self._m_max, self._run_m, self._run_start, self._run_m2_first,
                                      n_chunks)
        structure = np.sum(factors * per_group, axis=0)
        power = structure.real**2 + structure.imag**2
        weight = (4.0 * math.pi / self.volume) * self._influence
        energy = float(np.sum(weight * power))
        result = Reciprocal(energy)
        if want_forces or want_potential:
            coefficients = np.ascontiguousarray(2.0 * weight * factors * np.conj(structure))
            n = len(positions)
            forces = np.zeros((n if want_forces else 0, 3))
            potential = np.zeros(n if want_potential else 0)
            reciprocal_gradients(positions, groups.groups, self.recip, self._m_max, self._run_m,
                                 self._run_start, self._run_m2_first, self._kvectors, coefficients,
                                 want_forces, want_potential, forces, potential)
            result.forces = charges[:, None] * forces if want_forces else None
            result.potential = potential if want_potential else None
        if want_virial:
            widths2 = groups.widths**2
            cross = np.sum(widths2[:, None] * factors * per_group, axis=0)
            radial = 2.0 * weight * ((1.0 / self._k2 + 0.25 / self.parameters.alpha**2) * power
                                     + (cross * np.conj(structure)).real)
            result.virial = energy * np.eye(3) - np.einsum("k,ka,kb->ab", radial, self._kvectors,
                                                           self._kvectors)
        return result

    def matrix(self, positions, *, widths=None) -> np.ndarray:
        """Interaction matrix A (eV/e²) with ``E = ½ qᵀ A q`` for any charges q.

        Includes the interactions with all periodic images, the Gaussian self-energies
        and, in every element, the background constant ``-π/(V α²)`` (so ``½ qᵀAq``
        equals :meth:`compute`'s energy also for charged q). Cost O(n² n_k) through two
        real matrix products per block of wave vectors.

        Parameters
        ----------
        positions : array_like of shape (n_atoms, 3)
            Cartesian positions in Å.
        widths : float or array_like of shape (n_atoms,), optional
            Gaussian widths σ in Å; None for point charges.

        Returns
        -------
        ndarray of shape (n_atoms, n_atoms)
            Symmetric; ``A q`` is the potential (V) of :meth:`compute`.
        """
        positions = as_positions(positions)
        n = len(positions)
        groups = WidthGroups(as_widths(widths, n), n)
        alpha = self.parameters.alpha
        matrix = np.zeros((n, n))
        if n == 0:
            return matrix
        a_table, b_table = groups.pair_tables(alpha)
        coincident = np.full(2, -1, dtype=np.int64)
        cutoff = self.parameters.real_cutoff
        # Serial: matrix entries are shared between bins (the O(n² n_k) products dominate anyway).
        empty = np.zeros((0, 3))
        real_space_sum(positions, np.zeros(n), groups.groups, a_table, b_table, ERFCX_TABLE, self.cell,
                       self.inverse, self.heights, cutoff, bin_counts(self.heights, cutoff, n), 1, False, False,
                       False, empty, np.zeros((3, 3)), np.zeros(0), matrix, coincident)
        if coincident[0] >= 0:
            raise coincident_error(coincident)
        factors = self._factors(groups)
        scale = np.sqrt(8.0 * math.pi / self.volume * self._influence)
        for start in range(0, self.n_kvectors, _MATRIX_BLOCK):
            block = slice(start, start + _MATRIX_BLOCK)
            phase = positions @ self._kvectors[block].T
            amplitude = scale[block] * factors[groups.groups, block]
            cosine = np.cos(phase) * amplitude
            sine = np.sin(phase) * amplitude
            matrix += cosine @ cosine.T
            matrix += sine @ sine.T
        matrix[np.diag_indices(n)] += 2.0 * groups.self_coefficients(alpha)
        matrix -= math.pi / (self.volume * alpha**2)
        matrix = 0.5 * (matrix + matrix.T)
        return COULOMB_CONSTANT * matrix
