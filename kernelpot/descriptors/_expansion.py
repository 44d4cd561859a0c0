"""Expansion of species-resolved atomic densities on radial × real-harmonic bases.

This is the common first step of SOAP (power spectrum) and λ-SOAP
(equivariant features). Conventions are those of dscribe 2.1 (see
:mod:`._radial` for the radial bases and :mod:`kernelpot.symmetry.harmonics` for the
real spherical harmonics).

API
---
``expand_density(packed, neighbours, species_numbers, n_max, l_max, sigma,
rbf, r_cut, gradients=False) -> DensityExpansion``

``packed`` : :class:`kernelpot.structures.packing.PackedStructures`
    The structures, whose ``pbc`` decides periodicity (pass a copy with
    ``pbc`` set to False for a non-periodic treatment).
``neighbours`` : :class:`kernelpot.structures.NeighbourList`
    Built on ``packed`` with cutoff ``r_cut + cutoff_padding(sigma)`` (see
    :func:`._radial.cutoff_padding`; a larger cutoff is accepted and
    filtered, a smaller one is an error).
``species_numbers`` : sorted sequence of int
    Atomic numbers of the density channels; every atom's species must be in it.

:class:`DensityExpansion` (frozen dataclass):

``coefficients`` : (n_atoms_total, n_species, n_max, (l_max+1)**2) float64
    ``c[i, Z, n, lm] = ∫ dr g_nl(r) Y_lm(r̂) Σ_{j ∈ Z} exp(-|r - r_ij|² / 2σ²)``
    with ``r_ij = r_j - r_i`` over all neighbours (images included) within
    ``r_cut + padding`` *and the centre's own atom* (r_ii = 0, which only
    feeds l = 0). Column ``lm = l*l + l + m``, m = -l..l; real harmonics
    without Condon–Shortley phase (l = 1 block ∝ (y, z, x)). The Gaussians
    are unnormalised and the integral runs over all space (GTO) or over
    [0, r_cut] by quadrature (polynomial), exactly as in dscribe; dscribe's
    SOAP is then ``π sqrt(8/(2l+1)) Σ_m c[i,Z,n,lm] c[i,Z',n',lm]``.
``pair_center``, ``pair_neighbour``, ``pair_species`` : (n_pairs,) int64
    One entry per neighbour image (the pairs of ``neighbours``, in its
    order): global centre index, global neighbour index, and the species
    *index* (position in ``species_numbers``) of the neighbour.
``pair_gradients`` : (n_pairs, 3, n_max, (l_max+1)**2) float64 or None
    ``d coefficients[center, pair_species, :, :] / d r_neighbour`` (per Å)
    with the centre held fixed (only with ``gradients=True``). The total
    derivative with respect to the centre's own position is minus the sum
    of its pairs' gradients (per species channel).

Everything is computed for all atoms given: to bound memory on large
inputs, call it on chunks of structures (as :class:`..soap.SOAP` does).
GTO radial functions are evaluated from a quintic Hermite table accurate to
~1e-11 of their scale (:func:`._radial.make_radial_basis`), so coefficients
agree with the exact Gaussian integrals (and dscribe) to ~1e-10 relative.

The real harmonics are those of :mod:`kernelpot.symmetry.harmonics`
(convention above). Also exported: ``cutoff_padding``, and the building blocks
SOAP shares (``center_expansion``, ``make_workspace``, ``run_over_centers``).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, uint64

from ..symmetry.harmonics import harmonic_prefactors, solid_harmonics_batch
from ._radial import RadialBasis, cutoff_padding, make_radial_basis, radial_batch

__all__ = [
    "DensityExpansion",
    "expand_density",
    "run_over_centers",
    "make_workspace",
    "center_expansion",
    "cutoff_padding",
    "write_pair_gradients",
]

_Y00 = 0.28209479177387814  # 1 / (2 sqrt(π))


@dataclass(frozen=True)
class DensityExpansion:
    """Density expansion coefficients and their sparse pair gradients (see module docstring)."""

    coefficients: np.ndarray
    pair_center: np.ndarray
    pair_neighbour: np.ndarray
    pair_species: np.ndarray
    pair_gradients: np.ndarray | None


@njit(cache=True, nogil=True)
def runtime_flag(value):
    """``value`` as a run-time boolean rather than a literal constant: Numba compiles a callee once per
    literal argument value, so the forward kernels (False) and the gradient kernels (True) would each compile
    their own copy of :func:`center_expansion` and everything below it (about 4 s of the cold start)."""
    return bool(value)


@njit(cache=True, nogil=True)
def make_workspace(first, last, pair_offsets, l_max, n_max, n_species, with_gradients):
    """Scratch arrays for :func:`center_expansion`, sized for the centres first..last-1.

    Allocated once per block of centres: allocating them per centre costs
    more than the arithmetic (fresh heap pages fault).
    """
    max_pairs = 1
    for i in range(first, last):
        max_pairs = max(max_pairs, pair_offsets[i + 1] - pair_offsets[i])
    n_lm = (l_max + 1) ** 2
    # Flat buffers: center_expansion reshapes the first P·k entries, which
    # keeps every array C-contiguous (and its loops vectorisable).
    coordinates = np.empty(4 * max_pairs)
    position = np.empty(max_pairs, dtype=np.int64)
    harmonics = np.empty(n_lm * max_pairs)
    harmonic_grad = np.empty(3 * n_lm * max_pairs if with_gradients else 0)
    q = np.empty((l_max + 1) * (l_max + 2) * max_pairs)
    cos_sin = np.empty(2 * (l_max + 1) * max_pairs)
    rho = np.empty(max_pairs * (l_max + 1) * n_max)
    drho = np.empty(max_pairs * (l_max + 1) * n_max)
    bessel = np.empty((2, l_max + 1, 100))
    coefficients = np.empty((n_species, n_lm, n_max))
    species_start = np.empty(n_species + 1, dtype=np.int64)
    return (coordinates, position, harmonics, harmonic_grad, q, cos_sin, rho, drho, bessel,
            coefficients, species_start)


@njit(cache=True, nogil=True)
def center_expansion(
    i, vectors, pair_offsets, pair_species, center_species,
    kind, eta, table_a, table_b, spline, inv_spacing, self_density, r_cut, transition_width,
    l_max, n_max, n_species, prefactors, with_gradients, workspace,
):
    """Density coefficients of centre ``i`` and the per-pair pieces of their gradients.

    The P pairs of ``i`` are reordered by neighbour species (column ``k`` of
    the per-pair arrays is pair ``pair_offsets[i] + order[k]``), so that each
    species' coefficients are sums over a contiguous range.

    Returns
    -------
    coefficients : (n_species, (l_max+1)**2, n_max)
        Transposed layout ``c[Z, lm, n]`` (n last, so loops over n vectorise).
    harmonics : ((l_max+1)**2, P)
        Solid harmonics ``S_lm`` of the neighbour vectors.
    harmonic_grad : (3, (l_max+1)**2, P)
        ``∂S_lm/∂r`` (only filled when ``with_gradients``).
    rho, drho : (P, (l_max+1) n_max)
        Radial functions ``ρ_ln`` and ``(1/r) dρ_ln/dr`` (the latter only
        filled when ``with_gradients``).
    position : (P,) int64
        Column of each pair (in the pair list's order).
    """
    start = pair_offsets[i]
    n_pairs = pair_offsets[i + 1] - start
    (coordinates, position, harmonics, harmonic_grad, q, cos_sin, rho, drho, bessel,
     coefficients, species_start) = workspace
    n_lm = (l_max + 1) ** 2
    n_radial = (l_max + 1) * n_max
    coordinates = coordinates[: 4 * n_pairs].reshape((4, n_pairs))
    x, y, z, r = coordinates[0], coordinates[1], coordinates[2], coordinates[3]
    position = position[:n_pairs]
    harmonics = harmonics[: n_lm * n_pairs].reshape((n_lm, n_pairs))
    n_grad = 3 * n_lm * n_pairs if with_gradients else 0
    harmonic_grad = harmonic_grad[:n_grad].reshape((3, n_lm if with_gradients else 0, n_pairs))
    q = q[: (l_max + 1) * (l_max + 2) * n_pairs].reshape((l_max + 1, l_max + 2, n_pairs))
    cos_sin = cos_sin[: 2 * (l_max + 1) * n_pairs].reshape((2, l_max + 1, n_pairs))
    rho = rho[: n_pairs * n_radial].reshape((n_pairs, n_radial))
    drho = drho[: n_pairs * n_radial].reshape((n_pairs, n_radial))
    # Counting sort of the pairs by species.
    species_start[:] = 0
    for p in range(n_pairs):
        species_start[pair_species[start + p] + 1] += 1
    for s in range(n_species):
        species_start[s + 1] += species_start[s]
    fill = species_start[:-1].copy()
    for p in range(n_pairs):
        s = pair_species[start + p]
        k = fill[s]
        fill[s] += 1
        position[p] = k
        x[k] = vectors[start + p, 0]
        y[k] = vectors[start + p, 1]
        z[k] = vectors[start + p, 2]
        r[k] = math.sqrt(x[k] * x[k] + y[k] * y[k] + z[k] * z[k])
    solid_harmonics_batch(
        x, y, z, l_max, prefactors, harmonics, harmonic_grad, q, cos_sin[0], cos_sin[1], with_gradients,
    )
    radial_batch(
        kind, r, eta, table_a, table_b, spline, inv_spacing, l_max, n_max, rho, drho,
        bessel[0], bessel[1], with_gradients,
    )
    if transition_width > 0.0:
        _apply_cutoff_function(r, r_cut, transition_width, rho, drho, with_gradients)
    coefficients[:] = 0.0
    for s in range(n_species):
        _accumulate(harmonics, rho, species_start[s], species_start[s + 1], l_max, n_max, coefficients[s])
    # The centre's own Gaussian sits at r = 0 and only has an l = 0 component.
    own = coefficients[center_species[i], 0]
    for n in range(n_max):
        own[n] += self_density[n] * _Y00
    return coefficients, harmonics, harmonic_grad, rho, drho, position


@njit(cache=True, nogil=True)
def _apply_cutoff_function(r, r_cut, width, rho, drho, with_gradients):
    """Weight the radial functions of each pair by GAP's cosine cutoff ``f_c(r)``.

    ``f_c = 1`` for ``r <= r_cut - width``, ``(1 + cos(π (r - r_cut + width) / width)) / 2``
    up to ``r_cut`` and 0 beyond (QUIP/GAP ``coordination_function``). The
    weighted functions are ``f_c ρ_ln`` and, since ``drho`` is ``(1/r) dρ/dr``,
    ``f_c ρ'_ln + (f_c'(r) / r) ρ_ln`` (the product rule, so analytic
    gradients include ``df_c/dr``).
    """
    start = r_cut - width
    for k in range(r.shape[0]):
        distance = r[k]
        if distance <= start:
            continue
        if distance >= r_cut:
            weight = 0.0
            slope = 0.0
        else:
            phase = math.pi * (distance - start) / width
            weight = 0.5 * (math.cos(phase) + 1.0)
            slope = -0.5 * math.pi / width * math.sin(phase) / distance
        values = rho[k]
        if with_gradients:
            derivatives = drho[k]
            for j in range(values.shape[0]):
                derivatives[j] = weight * derivatives[j] + slope * values[j]
        for j in range(values.shape[0]):
            values[j] *= weight


@njit(cache=True, nogil=True)
def _accumulate(harmonics, rho, first, last, l_max, n_max, out):
    """``out[lm, n] += Σ_{p in first..last-1} S_lm(p) ρ_ln(p)``.

    Two harmonics × four radial channels at a time in independent
    accumulators: the sums stay in registers and each load feeds several
    multiply-adds. Indices are unsigned so that numba emits no
    negative-index wraparound code in the loop.
    """
    N = uint64(n_max)
    one, two, three, four = uint64(1), uint64(2), uint64(3), uint64(4)
    lo, hi = uint64(first), uint64(last)
    for l in range(uint64(l_max + 1)):
        base = l * N
        lm = l * l
        stop = (l + one) * (l + one)
        while lm < stop:
            pair = lm + one < stop
            lm1 = lm + one if pair else lm
            n = uint64(0)
            while n < N:
                c0 = base + n
                if n + four <= N:
                    a0 = a1 = a2 = a3 = 0.0
                    b0 = b1 = b2 = b3 = 0.0
                    for p in range(lo, hi):
                        h0 = harmonics[lm, p]
                        h1 = harmonics[lm1, p]
                        r0 = rho[p, c0]
                        r1 = rho[p, c0 + one]
                        r2 = rho[p, c0 + two]
                        r3 = rho[p, c0 + three]
                        a0 += h0 * r0
                        a1 += h0 * r1
                        a2 += h0 * r2
                        a3 += h0 * r3
                        b0 += h1 * r0
                        b1 += h1 * r1
                        b2 += h1 * r2
                        b3 += h1 * r3
                    out[lm, n] += a0
                    out[lm, n + one] += a1
                    out[lm, n + two] += a2
                    out[lm, n + three] += a3
                    if pair:
                        out[lm1, n] += b0
                        out[lm1, n + one] += b1
                        out[lm1, n + two] += b2
                        out[lm1, n + three] += b3
                    n += four
                else:
                    a0 = b0 = 0.0
                    for p in range(lo, hi):
                        r0 = rho[p, c0]
                        a0 += harmonics[lm, p] * r0
                        b0 += harmonics[lm1, p] * r0
                    out[lm, n] += a0
                    if pair:
                        out[lm1, n] += b0
                    n += one
            lm += two


@njit(cache=True, nogil=True)
def coefficients_kernel(
    first, last, vectors, pair_offsets, pair_species, center_species,
    kind, eta, table_a, table_b, spline, inv_spacing, self_density, l_max, n_max, out,
):
    """Fill ``out[first:last]`` (of shape (n_centers, n_species, n_max, (l_max+1)**2))."""
    prefactors = harmonic_prefactors(l_max)
    n_species = out.shape[1]
    workspace = make_workspace(first, last, pair_offsets, l_max, n_max, n_species, runtime_flag(False))
    for i in range(first, last):
        c = center_expansion(
            i, vectors, pair_offsets, pair_species, center_species,
            kind, eta, table_a, table_b, spline, inv_spacing, self_density, 0.0, 0.0,
            l_max, n_max, n_species, prefactors, runtime_flag(False), workspace,
        )[0]
        for a in range(n_species):
            for lm in range(c.shape[1]):
                for n in range(n_max):
                    out[i, a, n, lm] = c[a, lm, n]


@njit(cache=True, nogil=True)
def pair_gradients_kernel(
    first, last, vectors, pair_offsets, kind, eta, table_a, table_b, spline, inv_spacing, l_max, n_max, out
):
    """``out[p, a, n, lm] = ∂(ρ_ln(r) S_lm(r))/∂r_a`` for the pairs of centres first..last-1."""
    prefactors = harmonic_prefactors(l_max)
    n_centers = pair_offsets.shape[0] - 1
    dummy_species = np.zeros(vectors.shape[0], dtype=np.int64)
    dummy_center = np.zeros(n_centers, dtype=np.int64)
    workspace = make_workspace(first, last, pair_offsets, l_max, n_max, 1, runtime_flag(True))
    for i in range(first, last):
        _, harmonics, grad, rho, drho, position = center_expansion(
            i, vectors, pair_offsets, dummy_species, dummy_center,
            kind, eta, table_a, table_b, spline, inv_spacing, np.zeros(n_max), 0.0, 0.0,
            l_max, n_max, 1, prefactors, runtime_flag(True), workspace,
        )
        write_pair_gradients(i, vectors, pair_offsets, harmonics, grad, rho, drho, position, l_max, n_max, out)


@njit(cache=True, nogil=True)
def write_pair_gradients(i, vectors, pair_offsets, harmonics, grad, rho, drho, position, l_max, n_max, out):
    """Pair gradients of centre i: ``out[p, a, n, lm] = ρ_ln ∂_a S_lm + ρ'_ln r_a S_lm``.

    p runs over the pairs of centre i as :func:`center_expansion` lays them out.
    """
    start = pair_offsets[i]
    for p in range(pair_offsets[i + 1] - start):
        k = position[p]
        for a in range(3):
            d = vectors[start + p, a]
            for l in range(l_max + 1):
                for n in range(n_max):
                    radial = rho[k, l * n_max + n]
                    radial_d = drho[k, l * n_max + n] * d
                    for lm in range(l * l, (l + 1) * (l + 1)):
                        out[start + p, a, n, lm] = radial * grad[a, lm, k] + radial_d * harmonics[lm, k]


def run_over_centers(kernel, n_centers: int, *arguments) -> None:
    """Call ``kernel(first, last, *arguments)`` on blocks of centres, in ``numba.get_num_threads()`` threads.

    The kernels are ``nogil`` and write disjoint outputs per centre, so the
    outer loop over centres runs in parallel without Numba's parfor machinery
    (which would multiply the first-call compile time).
    """
    n_threads = max(1, min(numba.get_num_threads(), n_centers))
    if n_threads == 1:
        kernel(0, n_centers, *arguments)
        return
    # An empty call first, in this thread: Numba compiles (or loads from the
    # cache) on the first call, and doing that from several threads at once crashes.
    kernel(0, 0, *arguments)
    bounds = np.linspace(0, n_centers, 4 * n_threads + 1).astype(np.int64)
    with ThreadPoolExecutor(n_threads) as pool:
        jobs = [
            pool.submit(kernel, int(a), int(b), *arguments)
            for a, b in zip(bounds[:-1], bounds[1:]) if b > a
        ]
        for job in jobs:
            job.result()


def species_indices(numbers: np.ndarray, species_numbers: np.ndarray) -> np.ndarray:
    """Position of each atomic number in the sorted ``species_numbers`` (caller validated membership)."""
    return np.searchsorted(species_numbers, numbers).astype(np.int64)


def restrict_neighbours(neighbours, cutoff: float):
    """Pair arrays of ``neighbours`` within ``cutoff`` (Å); errors if the list is too short."""
    if neighbours.cutoff < cutoff * (1.0 - 1e-12):
        raise ValueError(
            f"`neighbours` was built with cutoff {neighbours.cutoff} Å but the density "
            f"expansion needs {cutoff} Å (r_cut + padding)"
        )
    if neighbours.cutoff <= cutoff * (1.0 + 1e-12):
        return neighbours.center, neighbours.neighbour, neighbours.vectors, neighbours.pair_offsets
    keep = neighbours.distances < cutoff
    center = neighbours.center[keep]
    n_atoms = len(neighbours.pair_offsets) - 1
    offsets = np.zeros(n_atoms + 1, dtype=np.int64)
    np.cumsum(np.bincount(center, minlength=n_atoms), out=offsets[1:])
    return center, neighbours.neighbour[keep], np.ascontiguousarray(neighbours.vectors[keep]), offsets


def expand_density(
    packed, neighbours, species_numbers, n_max, l_max, sigma, rbf, r_cut, gradients=False
) -> DensityExpansion:
    """Density expansion coefficients (and pair gradients) of every atom in ``packed``.

    See the module docstring for the arguments and the result. Inputs are
    assumed validated (species present in ``species_numbers``, parameters in
    range); :class:`kernelpot.descriptors.soap.SOAP` does that.
    """
    species_numbers = np.asarray(species_numbers, dtype=np.int64)
    basis: RadialBasis = make_radial_basis(rbf, float(r_cut), int(n_max), int(l_max), float(sigma))
    center, neighbour, vectors, offsets = restrict_neighbours(neighbours, float(r_cut) + cutoff_padding(float(sigma)))
    atom_species = species_indices(packed.numbers, species_numbers)
    pair_species = atom_species[neighbour]
    vectors = np.ascontiguousarray(vectors, dtype=np.float64)
    coefficients = np.empty((packed.n_atoms, len(species_numbers), n_max, (l_max + 1) ** 2))
    tables = (basis.kind, basis.eta, basis.table_a, basis.table_b, basis.spline, basis.inv_spacing)
    run_over_centers(
        coefficients_kernel, packed.n_atoms, vectors, offsets, pair_species, atom_species,
        *tables, basis.self_density, int(l_max), int(n_max), coefficients,
    )
    pair_gradients = None
    if gradients:
        pair_gradients = np.empty((len(center), 3, n_max, (l_max + 1) ** 2))
        run_over_centers(
            pair_gradients_kernel, packed.n_atoms, vectors, offsets, *tables,
            int(l_max), int(n_max), pair_gradients,
        )
    return DensityExpansion(
        coefficients,
        np.asarray(center, dtype=np.int64),
        np.asarray(neighbour, dtype=np.int64),
        pair_species,
        pair_gradients,
    )
