r"""Ewald and PME parameters from one accuracy tolerance.

What the tolerance means
------------------------
``tolerance`` ε bounds the **RMS error of the forces, relative to the force
between two unit charges 1 Å apart** (``k_e e²/Å² = 14.3996 eV/Å``): the
estimated RMS force error is ≤ ε × 14.3996 eV/Å. This is the convention of
LAMMPS' ``kspace_style ewald/pppm <accuracy>`` and of torch-pme's ``accuracy``
(with prefactor 1), so the same number means the same accuracy in all three.
The budget is split evenly between the real-space and the reciprocal-space
errors, ``ΔF_r = ΔF_k = ε/√2``, which add in quadrature.

Error estimates (units with k_e = 1; ``Q = Σ q_i²``, N atoms, volume V)
-----------------------------------------------------------------------
Kolafa & Perram (1992), Mol. Simul. 9, 351, doi:10.1080/08927029208049126,
RMS over atoms, random positions:

- real space, cutoff ``r_c``: ``ΔF_r = 2 Q / sqrt(N r_c V) · exp(-α_r² r_c²)``
- Ewald reciprocal space, all ``|k| ≤ K``:
  ``ΔF_k = Q α_k sqrt(8 / (N V K)) · exp(-K² / (4 α_k²))``
- smooth PME with B-splines of order p (p points per direction) on a mesh of
  ``K_d`` points along lattice vector ``a_d``. Interpolating ``exp(i k·r)`` with
  the splines (and Essmann's ``b(m)`` normalisation) leaves, per direction, the
  true term with amplitude ``c̃_0 = 1/(1 + Σ_l c_l)`` and aliases at ``k + l g_d``
  (``g_d = K_d × 2π b_d`` the mesh's reciprocal vectors) with amplitudes
  ``c̃_l = c_l/(1 + Σ_l c_l)``, ``c_l = (ξ/(ξ + l))^p``, ``ξ = m_d/K_d``. Treating
  the aliases' phases as random (as Kolafa–Perram do for the truncated terms;
  for P3M see Deserno & Holm, J. Chem. Phys. 109, 7694 (1998)), the mean square
  force error is a sum over the mesh's wave vectors::

      ΔF_rp² = (Q²/N) (32π²/V²) Σ_{k, half mesh} G(k)² [ Σ_d Σ_{l=±1,±2} c̃_l,d²
               (|k + l g_d|² + |k|²) + |k|² (1 - Π_d c̃_0,d²)² ],   G = exp(-k²/(4α_k²))/k²

  (the alias of the atom's own phase, that of the other atoms' structure factor,
  and the coherent amplitude error). The atom's aliases also meet its own charge
  in the structure factor, and those terms add up coherently: the PME *self-force*
  ``F_i = (4π/V) q_i² Σ_d Σ_{m=1,2} m g_d sin(m g_d·r_i) (A_m,d + A_-m,d)``,
  ``A_l,d = Σ_k G(k) c̃_l,d c̃_0,d``, whose mean square over positions in a mesh
  cell, ``ΔF_self² = (Σq⁴/N)(4π/V)² Σ_d,m m² |g_d|² (A_m,d + A_-m,d)²/2``, is
  added: ``ΔF_m² = C² (ΔF_rp² + ΔF_self²)``. Measured
  against converged Ewald sums on random boxes of 300-500 charges (±1 or normal),
  cubic and triclinic, p = 4-10, errors 1e-10 to 4e-4, the measured/estimated
  ratio is 0.80-1.18 (0.97-1.03 for ±1 charges); ``C = 1.3`` makes the estimate an
  upper bound there (tests/test_electrostatics_pme.py). Wave vectors beyond the
  mesh (``|k| > π / max_d ℓ_d``, ``ℓ_d = |a_d|/K_d``) add the Ewald truncation
  error above. For choosing α and p, the small-ξ limit of the sum has a closed
  form, ``ΔF_m² ≈ (Q²/N) 16 (2p-3)!! sqrt(π/2) α_k / ((2p+1) V) Σ_d
  (α_k ℓ_d/2π)^(2p-2) (ℓ_d/h'_d)²`` (``h'_d`` the distance between mesh planes):
  it ranks the candidates, and the mesh is then sized with the full sum.

Gaussian charges shift both decay rates (the real-space pair terms decay like
``erfc(α_ij r)`` with ``α_ij = (1/α² + 2(σ_i² + σ_j²))^(-1/2)``, the reciprocal
terms like ``exp(-k²/(4 α_ij²))``): the real-space estimate uses the smallest
``α_r`` (widest pair), the reciprocal ones the largest ``α_k`` (narrowest pair).

Choice
------
For each α on a log grid, the smallest ``r_c``, ``K`` (or mesh) meeting the
error budget are solved for, and the α with the lowest modelled run time
(:data:`COST`, seconds per elementary step, measured on this package's kernels)
is kept. A tolerance whose cheapest parameters would take longer than
:data:`MAX_SECONDS` is refused with an error naming the cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from ._setup import bin_counts, cell_geometry, half_mesh_wavevectors

__all__ = [
    "EwaldParameters",
    "PMEParameters",
    "ewald_parameters",
    "ewald_reciprocal_error",
    "pme_parameters",
    "pme_reciprocal_error",
    "real_space_error",
]

# Modelled seconds per elementary step on one core, measured (CPU time) with this
# package's kernels on 8000 random charges (benchmarks/electrostatics.py --calibrate).
COST = {
    "pair": 31e-9,        # one real-space pair inside the cutoff, with forces and virial
    "visit": 37e-9,       # one (home bin, neighbour bin) visit of the cell list
    "kvector": 4.0e-9,    # one (atom, k) term, structure factor and gradient passes together
    "spline": 8e-9,       # one (atom, mesh point) B-spline term, spreading and gathering
    "fft": 1.0e-9,        # one M log2(M) unit of a forward plus an inverse real FFT
    "mesh": 15e-9,        # one mesh point: allocation, influence pass, scaling
    "blas": 0.2e-9,       # one (atom pair, k) term of the Ewald matrix (two real GEMMs)
}
# Parameters whose modelled cost exceeds this are refused (the tolerance is unreachable
# in practice for the cell).
MAX_SECONDS = 600.0
# PME spline orders tried (even orders only: the Euler spline's denominator vanishes at
# the Nyquist frequency for odd orders).
PME_ORDERS = (4, 6, 8, 10)
# Calibration C of the PME mesh estimate (module docstring): measured errors are
# 0.80-1.18 times the estimate with C = 1, so C = 1.3 bounds them with a margin.
PME_CALIBRATION = 1.3
# Mesh points per direction above which the PME estimate uses a proxy cell.
_PROXY_MESH = 40


@dataclass(frozen=True)
class EwaldParameters:
    """Ewald parameters.

    Attributes
    ----------
    alpha : float
        Splitting parameter α in 1/Å (real-space pairs decay like erfc(α r)).
    real_cutoff : float
        Real-space cutoff r_c in Å (any value; images beyond the cell are summed).
    k_cutoff : float
        Reciprocal-space cutoff K in 1/Å: all wave vectors with ``|k| ≤ K``.
    estimated_error : float
        Kolafa–Perram estimate of the RMS force error relative to k_e e²/Å²
        (module docstring), or NaN for parameters given by hand.
    """

    alpha: float
    real_cutoff: float
    k_cutoff: float
    estimated_error: float = float("nan")


@dataclass(frozen=True)
class PMEParameters:
    """Smooth particle-mesh Ewald parameters.

    Attributes
    ----------
    alpha : float
        Splitting parameter α in 1/Å.
    real_cutoff : float
        Real-space cutoff r_c in Å.
    mesh : tuple of 3 int
        Mesh points along each lattice vector.
    order : int
        B-spline order p (points per direction per atom; p = 4 is cubic).
    estimated_error : float
        Estimated RMS force error relative to k_e e²/Å², or NaN for parameters
        given by hand.
    """

    alpha: float
    real_cutoff: float
    mesh: tuple
    order: int
    estimated_error: float = float("nan")


def _mean_square(sum_squared_charges, n_atoms):
    return n_atoms if sum_squared_charges is None or sum_squared_charges <= 0 else sum_squared_charges


def real_space_error(alpha_r, cutoff, sum_squared_charges, n_atoms, volume):
    """Kolafa–Perram RMS real-space force error (k_e = 1, e²/Å²)."""
    return 2.0 * sum_squared_charges / np.sqrt(n_atoms * cutoff * volume) * np.exp(-(alpha_r * cutoff) ** 2)


def ewald_reciprocal_error(alpha_k, k_cutoff, sum_squared_charges, n_atoms, volume):
    """Kolafa–Perram RMS reciprocal-space force error of Ewald with ``|k| ≤ K`` (k_e = 1)."""
    return (sum_squared_charges * alpha_k * np.sqrt(8.0 / (n_atoms * volume * k_cutoff))
            * np.exp(-k_cutoff**2 / (4.0 * alpha_k**2)))


def _double_factorial(n: int) -> float:
    return float(math.prod(range(n, 0, -2))) if n > 0 else 1.0


def _pme_mesh_coefficient(alpha_k, order, sum_squared_charges, n_atoms, volume):
    """Small-ξ closed form: ΔF_m² / Σ_d (α_k ℓ_d/2π)^(2p-2) (ℓ_d/h'_d)² (module docstring)."""
    return (sum_squared_charges**2 / n_atoms * 16.0 * _double_factorial(2 * order - 3)
            * math.sqrt(math.pi / 2.0) * alpha_k / ((2 * order + 1) * volume))


def _alias_amplitudes(mesh_size, order):
    """Per direction: ``c̃_0`` (K,) and ``c̃_l`` (K, 4) for l = -2, -1, 1, 2 (module docstring)."""
    xi = np.fft.fftfreq(mesh_size)[:, None]
    shifts = np.array([-2.0, -1.0, 1.0, 2.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(xi == 0.0, 0.0, (xi / (xi + shifts)) ** order)
    norm = 1.0 + ratios.sum(axis=1)
    return 1.0 / norm, ratios / norm[:, None], shifts


def pme_reciprocal_error(alpha_k, mesh, order, cell, sum_squared_charges, n_atoms, sum_fourth_charges=None):
    """Estimated RMS reciprocal-space force error of smooth PME (k_e = 1; module docstring).

    ``sum_fourth_charges`` (Σq⁴, e⁴) weights the self-force; default ``Q²/N`` (equal |q|).
    The mesh sums are Riemann sums of smooth integrals; above :data:`_PROXY_MESH` points
    along a direction they are evaluated on a proxy cell with the same mesh spacings and
    fewer points (lattice vectors shortened in proportion) and scaled by the volume ratio,
    so the cost stays below ~10 ms.
    """
    cell = np.asarray(cell, dtype=np.float64)
    volume, _, _, _ = cell_geometry(cell)
    if sum_fourth_charges is None:
        sum_fourth_charges = sum_squared_charges**2 / n_atoms
    proxy_mesh = np.minimum(np.asarray(mesh, dtype=np.int64), _PROXY_MESH)
    proxy_cell = cell * (proxy_mesh / np.asarray(mesh, dtype=np.float64))[:, None]
    proxy_volume, _, _, recip = cell_geometry(proxy_cell)
    k0, k1, k2 = (int(k) for k in proxy_mesh)
    shapes = ((k0, 1, 1), (1, k1, 1), (1, 1, k2 // 2 + 1))
    kx, ksq, multiplicity = half_mesh_wavevectors(recip, proxy_mesh)
    influence = np.exp(-ksq / (4.0 * alpha_k**2)) / ksq
    influence[0, 0, 0] = 0.0
    weighted = multiplicity * influence  # sums over the half mesh = sums over the full mesh
    bracket = np.zeros_like(ksq)
    coherent = np.ones_like(ksq)
    self_force = 0.0
    for d, size in enumerate((k0, k1, k2)):
        true_amplitude, aliases, shifts = _alias_amplitudes(size, order)
        true_amplitude, aliases = true_amplitude[: shapes[d][d]], aliases[: shapes[d][d]]
        g = size * recip[d]
        k_dot_g = kx[0] * g[0] + kx[1] * g[1] + kx[2] * g[2]
        amplitude_sums = {}
        for column, shift in enumerate(shifts):
            alias = aliases[:, column].reshape(shapes[d])
            bracket += alias**2 * (2.0 * ksq + 2.0 * shift * k_dot_g + shift**2 * float(g @ g))
            amplitude_sums[shift] = float(np.sum(weighted * alias * true_amplitude.reshape(shapes[d])))
        coherent = coherent * (true_amplitude**2).reshape(shapes[d])
        for m in (1.0, 2.0):
            self_force += m**2 * float(g @ g) * (amplitude_sums[m] + amplitude_sums[-m]) ** 2 / 2.0
    bracket += ksq * (1.0 - coherent) ** 2
    # Random-phase part: (Q²/N)(32π²/V²) Σ_{half space}; the proxy sum scales with V/V'.
    random_phase = (sum_squared_charges**2 / n_atoms * 32.0 * math.pi**2 / volume**2
                    * 0.5 * float(np.sum(weighted * influence * bracket)) * volume / proxy_volume)
    # Self-force part: (Σq⁴/N)(4π/V)² Σ_d,m m² g² (A_m + A_-m)²/2 with A ∝ V: use V'.
    self_part = sum_fourth_charges / n_atoms * (4.0 * math.pi / proxy_volume) ** 2 * self_force
    mesh_part = PME_CALIBRATION**2 * (random_phase + self_part)
    nyquist = math.pi / float(np.max(np.linalg.norm(cell, axis=1) / np.asarray(mesh, dtype=np.float64)))
    truncation = ewald_reciprocal_error(alpha_k, nyquist, sum_squared_charges, n_atoms, volume)
    return float(np.sqrt(mesh_part + truncation**2))


def _solve_decay(log_prefactor, scale):
    """Solve ``log_prefactor - ¼ log(scale t) - t = 0`` for t > 0 (vectorised Newton).

    Both Kolafa–Perram estimates take this form with ``t = α² r_c²`` (scale 1/α²)
    or ``t = K²/(4α²)`` (scale 4α²); the left side decreases in t.
    """
    t = np.maximum(np.asarray(log_prefactor, dtype=np.float64), 1.0)
    for _ in range(50):
        f = log_prefactor - 0.25 * np.log(scale * t) - t
        t = np.maximum(t + f / (1.0 + 0.25 / t), 1e-8)
    return t


def _alphas_for_widths(alpha, widths):
    """(α_r, α_k): screening of the widest and of the narrowest Gaussian pair."""
    if widths is None:
        return alpha, alpha
    widths = np.asarray(widths, dtype=np.float64)
    return (1.0 / np.sqrt(1.0 / alpha**2 + 4.0 * widths.max() ** 2),
            1.0 / np.sqrt(1.0 / alpha**2 + 4.0 * widths.min() ** 2))


def _real_space_cutoffs(alpha, widths, target, sum_squared, n_atoms, volume):
    alpha_r, _ = _alphas_for_widths(alpha, widths)
    log_prefactor = np.log(2.0 * sum_squared / math.sqrt(n_atoms * volume)) - np.log(target)
    t = _solve_decay(log_prefactor + 0.25 * np.log(alpha_r**2), np.ones_like(alpha))
    # Written with r_c = sqrt(t)/α_r: log(2Q/sqrt(NV)) - ½ log r_c - α_r² r_c² = log(target).
    return np.sqrt(t) / alpha_r


def _real_space_seconds(cutoffs, heights, n_atoms, volume):
    """Modelled time of the real-space sum: pairs inside r_c and bin visits."""
    pairs = n_atoms**2 * (4.0 / 3.0) * math.pi * cutoffs**3 / (2.0 * volume)
    bins = bin_counts(heights, cutoffs, n_atoms).astype(np.float64)
    reach = np.floor(cutoffs[:, None] * bins / heights[None, :]) + 1.0
    visits = np.prod(bins, axis=1) * np.prod(2.0 * reach + 1.0, axis=1) / 2.0
    return COST["pair"] * pairs + COST["visit"] * visits


def _alpha_grid(n_atoms, volume):
    """α candidates around the classic optimum sqrt(π) (N/V²)^(1/6) (1/Å)."""
    centre = math.sqrt(math.pi) * (n_atoms / volume**2) ** (1.0 / 6.0)
    return centre * np.logspace(-1.2, 1.2, 97)


def _unreachable(what, cell, n_atoms, tolerance, seconds, detail):
    return ValueError(
        f"tolerance {tolerance:g} cannot be reached with {what} in the cell "
        f"{np.round(cell, 6).tolist()} Å ({n_atoms} atoms): the cheapest parameters ({detail}) "
        f"would take ~{seconds:.3g} s per call (limit {MAX_SECONDS:g} s). Loosen the tolerance, "
        "or use a supercell if the cell is very small or flat"
    )


def _scan(cell, n_atoms, tolerance, sum_squared_charges, widths, alpha=None):
    """What both choices start from: geometry, Σq², the per-part target, the α grid (or the one
    given ``alpha``) with the real-space cutoff of each α and its modelled time."""
    cell = np.asarray(cell, dtype=np.float64)
    volume, _, heights, _ = cell_geometry(cell)
    sum_squared = _mean_square(sum_squared_charges, n_atoms)
    target = tolerance / math.sqrt(2.0)
    alphas = _alpha_grid(n_atoms, volume) if alpha is None else np.array([float(alpha)])
    cutoffs = _real_space_cutoffs(alphas, widths, target, sum_squared, n_atoms, volume)
    real_seconds = _real_space_seconds(cutoffs, heights, n_atoms, volume)
    return cell, volume, heights, sum_squared, target, alphas, cutoffs, real_seconds


def ewald_parameters(cell, n_atoms, tolerance=1e-6, *, sum_squared_charges=None, widths=None,
                     for_matrix=False, alpha=None) -> EwaldParameters:
    """Cheapest Ewald parameters meeting ``tolerance`` (module docstring).

    Parameters
    ----------
    cell : array_like of shape (3, 3)
        Lattice vectors as rows, Å.
    n_atoms : int
        Number of charges in the cell.
    tolerance : float
        Target RMS force error relative to k_e e²/Å².
    sum_squared_charges : float, optional
        ``Σ q_i²`` in e²; default ``n_atoms`` (unit charges).
    widths : array_like, optional
        Gaussian widths σ in Å (only their minimum and maximum matter).
    for_matrix : bool
        Balance the cost of the interaction matrix (dense, BLAS) instead of energy
        and forces.
    alpha : float, optional
        Fixed splitting parameter α (1/Å): only ``r_c`` and ``K`` are solved for.
        For callers whose precomputed tables depend on α (the LODE descriptor,
        :mod:`kernelpot.descriptors.lode`, tabulates its real-space pair functions
        per α and so takes α from a coarse grid).

    Raises
    ------
    ValueError
        When even the cheapest parameters would exceed :data:`MAX_SECONDS`.
    """
    cell, volume, _, sum_squared, target, alphas, cutoffs, real_seconds = _scan(
        cell, n_atoms, tolerance, sum_squared_charges, widths, alpha)
    _, alpha_k = _alphas_for_widths(alphas, widths)
    log_prefactor = np.log(sum_squared * alpha_k * math.sqrt(8.0 / (n_atoms * volume))) - np.log(target)
    # log(Q α sqrt(8/(NV))) - ½ log K - K²/(4α²) = log(target), with t = K²/(4α²).
    t = _solve_decay(log_prefactor, 4.0 * alpha_k**2)
    k_cutoffs = 2.0 * alpha_k * np.sqrt(t)
    n_kvectors = (4.0 / 3.0) * math.pi * k_cutoffs**3 * volume / (8.0 * math.pi**3) / 2.0
    if for_matrix:
        seconds = 2.0 * real_seconds + COST["blas"] * n_atoms**2 * n_kvectors
    else:
        seconds = real_seconds + COST["kvector"] * n_atoms * n_kvectors
    best = int(np.argmin(seconds))
    if seconds[best] > MAX_SECONDS:
        raise _unreachable("Ewald summation", cell, n_atoms, tolerance, seconds[best],
                           f"α = {alphas[best]:.4g} 1/Å, r_c = {cutoffs[best]:.4g} Å, "
                           f"K = {k_cutoffs[best]:.4g} 1/Å")
    alpha = float(alphas[best])
    alpha_r, alpha_k = _alphas_for_widths(alpha, widths)
    error = math.hypot(
        real_space_error(alpha_r, cutoffs[best], sum_squared, n_atoms, volume),
        ewald_reciprocal_error(alpha_k, k_cutoffs[best], sum_squared, n_atoms, volume),
    )
    return EwaldParameters(alpha, float(cutoffs[best]), float(k_cutoffs[best]), float(error))


def ewald_seconds(parameters: EwaldParameters, cell, n_atoms) -> float:
    """Modelled run time (s) of an Ewald energy + forces call with ``parameters``."""
    volume, _, heights, _ = cell_geometry(np.asarray(cell, dtype=np.float64))
    n_kvectors = (4.0 / 3.0) * math.pi * parameters.k_cutoff**3 * volume / (8.0 * math.pi**3) / 2.0
    real = _real_space_seconds(np.array([parameters.real_cutoff]), heights, n_atoms, volume)[0]
    return float(real + COST["kvector"] * n_atoms * n_kvectors)


def _mesh_for_spacing(lengths, spacing, order):
    return tuple(max(2 * order, scipy.fft.next_fast_len(math.ceil(length / spacing), real=True))
                 for length in lengths)


def _pme_seconds(n_atoms, mesh, order, n_groups):
    points = float(np.prod(mesh))
    return (COST["spline"] * n_atoms * order**3 + COST["fft"] * n_groups * points * math.log2(points)
            + COST["mesh"] * points)


def pme_parameters(cell, n_atoms, tolerance=1e-6, *, sum_squared_charges=None, sum_fourth_charges=None,
                   widths=None, n_groups=1) -> PMEParameters:
    """Cheapest smooth-PME parameters meeting ``tolerance`` (module docstring).

    Parameters are those of :func:`ewald_parameters`; ``sum_fourth_charges`` (Σq⁴, e⁴;
    default ``Q²/N``) weights the PME self-force, ``n_groups`` is the number of
    distinct Gaussian widths (one mesh each).

    Raises
    ------
    ValueError
        When even the cheapest parameters would exceed :data:`MAX_SECONDS`.
    """
    cell, volume, heights, sum_squared, target, alphas, cutoffs, real_seconds = _scan(
        cell, n_atoms, tolerance, sum_squared_charges, widths)
    lengths = np.linalg.norm(cell, axis=1)
    skew2 = float(np.sum((lengths / heights) ** 2))
    _, alpha_k = _alphas_for_widths(alphas, widths)
    # Continuous model first (all α and orders at once), then round the best mesh.
    candidates = []
    for order in PME_ORDERS:
        coefficient = _pme_mesh_coefficient(alpha_k, order, sum_squared, n_atoms, volume) * skew2
        # Equal spacing ℓ along every lattice vector; 0.8 leaves room for the truncation term,
        # whose own bound asks for π/ℓ ≥ 2 α_k sqrt(log(1/target)).
        spacing = (2 * math.pi / alpha_k) * ((0.8 * target) ** 2 / coefficient) ** (1.0 / (2 * order - 2))
        spacing = np.minimum(spacing, math.pi / (2.0 * alpha_k * math.sqrt(max(math.log(1.0 / target), 1.0))))
        points = np.maximum(np.prod(lengths) / spacing**3, float((2 * order) ** 3))
        seconds = (real_seconds + COST["spline"] * n_atoms * order**3
                   + COST["fft"] * n_groups * points * np.log2(points) + COST["mesh"] * points)
        best = int(np.argmin(seconds))
        candidates.append((seconds[best], best, order, spacing[best]))
    # Size the mesh of each order's best α with the full estimate; keep the cheapest.
    best = None
    for _, index, order, spacing in sorted(candidates)[:3]:
        alpha_k_best = float(alpha_k[index])
        mesh, k_error = _size_mesh(alpha_k_best, order, spacing, cell, lengths, target,
                                   (sum_squared, n_atoms, sum_fourth_charges))
        seconds = real_seconds[index] + _pme_seconds(n_atoms, mesh, order, n_groups)
        if best is None or seconds < best[0]:
            best = (seconds, index, order, mesh, k_error)
    seconds, index, order, mesh, k_error = best
    alpha, cutoff = float(alphas[index]), float(cutoffs[index])
    if seconds > MAX_SECONDS or np.prod(mesh) > 2**31:
        raise _unreachable("smooth PME", cell, n_atoms, tolerance, seconds,
                           f"α = {alpha:.4g} 1/Å, r_c = {cutoff:.4g} Å, mesh {mesh}, order {order}")
    alpha_r, _ = _alphas_for_widths(alpha, widths)
    error = math.hypot(real_space_error(alpha_r, cutoff, sum_squared, n_atoms, volume), k_error)
    return PMEParameters(alpha, cutoff, tuple(int(k) for k in mesh), int(order), float(error))


def _size_mesh(alpha_k, order, spacing, cell, lengths, target, charge_moments):
    """The smallest mesh (uniform spacing, FFT-friendly sizes) whose estimated error meets ``target``.

    Starts from the closed-form spacing and rescales it with the asymptotic law
    ΔF_m ∝ ℓ^(p-1) until the full estimate is met (and, if the start was far below
    the target, first grows it).
    """
    feasible, error = None, math.inf
    for attempt in range(12):
        mesh = _mesh_for_spacing(lengths, spacing, order)
        if np.prod(mesh) > 2**31:
            break
        error = pme_reciprocal_error(alpha_k, mesh, order, cell, *charge_moments)
        if error <= target:
            if feasible is None or np.prod(mesh) < np.prod(feasible[0]):
                feasible = (mesh, error)
            if attempt > 0 or error > 0.5 * target:
                break
        spacing *= 0.98 * (target / error) ** (1.0 / (order - 1))
    if feasible is None:
        return mesh, error
    return feasible


def pme_seconds(parameters: PMEParameters, cell, n_atoms, n_groups=1) -> float:
    """Modelled run time (s) of a PME energy + forces call with ``parameters``."""
    volume, _, heights, _ = cell_geometry(np.asarray(cell, dtype=np.float64))
    real = _real_space_seconds(np.array([parameters.real_cutoff]), heights, n_atoms, volume)[0]
    return float(real + _pme_seconds(n_atoms, parameters.mesh, parameters.order, n_groups))
