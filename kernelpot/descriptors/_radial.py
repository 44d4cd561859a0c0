"""Radial bases of the SOAP density expansion: GTO and polynomial (dscribe 2.1) and GAP's.

The atomic density of species Z around a centre i is a sum of *unnormalised*
Gaussians ``exp(-η |r - r_ij|²)``, ``η = 1 / (2 σ²)``, one per neighbour j
(the centre's own atom included) within ``r_cut + padding``. Its expansion
coefficients on ``g_nl(r) Y_lm(r̂)`` (real harmonics of
:mod:`kernelpot.symmetry.harmonics`) are written per neighbour as

    c_nlm += ρ_ln(r_ij) S_lm(r_ij)        (S_lm = r^l Y_lm, a solid harmonic)

so that every basis reduces to a table of radial functions ``ρ_ln(r)`` and
their derivative ``ρ'_ln(r) = (1/r) dρ_ln/dr`` (then
``∂c_nlm/∂r_ij = ρ ∇S_lm + ρ' S_lm r_ij``).

GTO basis ("gto")
    ``g_nl(r) = Σ_k β_l,nk r^l exp(-α_lk r²)``; the ``α_lk`` make the k-th
    primitive decay to 1e-3 at ``a_k``, with ``a_k`` evenly spaced from 1 Å to
    ``r_cut``: ``α_lk = (ln 1000 + l ln a_k) / a_k²``; ``β_l = S_l^(-1/2)``
    (Löwdin) with the primitive overlap
    ``S_l,kk' = Γ(l + 3/2) / (2 (α_lk + α_lk')^(l + 3/2))``. The overlap of a
    Gaussian at distance r with a primitive is analytic over all space
    (Bartók et al. 2013, Himanen et al. 2020):

        ρ_ln(r) = π^(3/2) Σ_k β_l,nk η^l (α_lk + η)^-(l+3/2) exp(-α_lk η r² / (α_lk + η)).

Polynomial basis ("polynomial")
    ``g_n(r) = Σ_n' β_nn' (r_cut - r)^(n'+2)``, orthonormalised on
    [0, r_cut] with weight r² (``β = S^(-1/2)``). Like dscribe, the radial
    integral is evaluated by 100-point Gauss–Legendre quadrature on
    [0, r_cut] of ``4π r² g_n(r) exp(-η (r² + r_ij²)) i_l(2 η r r_ij)``, with
    the modified spherical Bessel functions ``i_l`` from the upward recurrence
    (negative values clipped to zero, and each of the two Gaussian factors
    ``exp(-η (r ∓ r_ij)²)`` dropped when ``r ∓ r_ij > 5 Å``), so that the
    features agree with dscribe to the accuracy of its quadrature.

GAP basis ("gap", QUIP/GAP's default ``soap`` radial basis, EQUISPACED_GAUSS)
    The angular projection of a neighbour's Gaussian at radius r,
    ``F_l(r; r_a) = exp(-η (r² + r_a²)) i_l(2η r r_a)`` (i_l the modified
    spherical Bessel function), is known at n_max equispaced radii
    ``r_a = a h``, ``h = (r_cut + σ sqrt(20 ln 10)) / n_max`` (the basis
    reaches past r_cut to where a Gaussian has decayed to 1e-10). GAP
    interpolates the profile with Gaussians ``exp(-η (r - r_a)²)`` on these
    radii (weights ``C⁻¹ F``, ``C_ab = exp(-η (r_a - r_b)²)``) and takes
    the weights' coordinates in the Cholesky factor ``L`` of their overlap
    ``S = ∫_0^∞ r² g_a g_b dr``, so coefficient vectors have the norm of the
    interpolated profile:

        ρ_ln(r) = Σ_a F_l(r; r_a) / r^l (C⁻¹ L)_an.

    As for the GTO basis, these are tabulated (quintic Hermite) and the
    centre's own atom is ``ρ_0n(0) = L_0n``. GAP's power spectrum also
    weights pairs of different (species, n) channels by √2
    (:func:`gap_feature_weights`, applied by ``SOAP(rbf="gap")``); with it
    the features equal quippy's up to one constant factor and their order.

References
----------
A. P. Bartók, R. Kondor, G. Csányi, Phys. Rev. B 87, 184115 (2013),
doi:10.1103/PhysRevB.87.184115.
L. Himanen et al., Comput. Phys. Commun. 247, 106949 (2020),
doi:10.1016/j.cpc.2019.106949 (DScribe).
QUIP/GAP ``descriptors.F90``, ``soap_initialise`` and ``soap_calc`` (libAtoms/GAP on GitHub).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.special
from numba import njit
from scipy.special import gamma

__all__ = [
    "GTO",
    "POLYNOMIAL",
    "RadialBasis",
    "gto_basis",
    "polynomial_basis",
    "make_radial_basis",
    "gap_basis",
    "gap_feature_weights",
    "radial_batch",
    "cutoff_padding",
]

GTO = 0
POLYNOMIAL = 1
_DECAY_THRESHOLD = 1e-3  # value both GTO primitives and the density padding decay to
_N_QUADRATURE = 100
_EXP_DROP = 5.0  # Å; dscribe's polynomial integrand drops exp(-η (r ∓ r_ij)²) beyond this
_GAP_BASIS_ERROR_EXPONENT = 10.0  # GAP's default basis_error_exponent


def cutoff_padding(sigma: float) -> float:
    """Extra neighbour-search radius (Å) at which a Gaussian of width σ decays to 1e-3.

    Neighbours are searched within ``r_cut + cutoff_padding(sigma)``, as dscribe does.
    """
    return sigma * math.sqrt(-2.0 * math.log(_DECAY_THRESHOLD))


def _inverse_sqrt(matrix: np.ndarray, what: str) -> np.ndarray:
    """Löwdin ``S^(-1/2)`` of an overlap matrix, as the principal square root of ``S⁻¹``.

    For n_max ≳ 8 both overlaps are badly conditioned (the polynomial one
    hopelessly so), and different numerical routes to ``S^(-1/2)`` give
    visibly different bases. Taking the principal square root of the inverse
    is the route dscribe takes, with SciPy's inverse for the GTO overlap and
    NumPy's for the polynomial one (they differ in the last bits, which the
    polynomial overlap, condition number ~1e17 at n_max = 8, amplifies to
    ~1e-5), so the features agree with it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ill-conditioning warnings: judged by the result below
        inverse = scipy.linalg.inv(matrix) if what == "gto" else np.linalg.inv(matrix)
        root = scipy.linalg.sqrtm(inverse)
    if np.iscomplexobj(root) or not np.all(np.isfinite(root)):
        raise ValueError(
            f"the {what} radial basis cannot be orthonormalised in real numbers "
            "(its overlap matrix is numerically singular); lower `n_max` or increase `r_cut`"
        )
    return np.asarray(root, dtype=np.float64)


def gto_basis(r_cut: float, n_max: int, l_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Exponents and orthonormalisation of the GTO radial basis.

    Returns
    -------
    alphas : ndarray of shape (l_max + 1, n_max)
        ``α_lk`` in 1/Å².
    betas : ndarray of shape (l_max + 1, n_max, n_max)
        ``β_l,nk`` (Löwdin coefficients), so that ``g_nl = Σ_k β_l,nk r^l e^(-α_lk r²)``.
    """
    decay_radii = np.linspace(1.0, r_cut, n_max)
    alphas = np.empty((l_max + 1, n_max))
    betas = np.empty((l_max + 1, n_max, n_max))
    for l in range(l_max + 1):
        # r^l exp(-α r²) = threshold at r = a_k
        alpha = -np.log(_DECAY_THRESHOLD / decay_radii**l) / decay_radii**2
        pair_sums = alpha[:, None] + alpha[None, :]
        overlap = 0.5 * gamma(l + 3.0 / 2.0) * pair_sums ** (-l - 3.0 / 2.0)
        alphas[l] = alpha
        betas[l] = _inverse_sqrt(overlap, "gto")
    return alphas, betas


def polynomial_basis(r_cut: float, n_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quadrature grid and orthonormal polynomial basis values on it.

    Returns
    -------
    nodes : ndarray of shape (100,)
        Gauss–Legendre nodes mapped to [0, r_cut] (Å).
    weights : ndarray of shape (100,)
        Gauss–Legendre weights on [-1, 1] (the Jacobian r_cut/2 is applied by
        the caller).
    values : ndarray of shape (n_max, 100)
        Orthonormalised ``g_n`` at the nodes.
    """
    overlap = np.empty((n_max, n_max))
    for i in range(1, n_max + 1):
        for j in range(1, n_max + 1):
            # ∫_0^rc (rc - r)^(i+2) (rc - r)^(j+2) r² dr. Scalar Python powers on
            # purpose: the matrix is so ill-conditioned (~1e17 at n_max = 8) that
            # a different last bit changes the basis visibly.
            s = i + j
            overlap[i - 1, j - 1] = 2.0 * float(r_cut) ** (7 + s) / ((5 + s) * (6 + s) * (7 + s))
    betas = _inverse_sqrt(overlap, "polynomial")
    x, w = np.polynomial.legendre.leggauss(_N_QUADRATURE)
    nodes = 0.5 * r_cut * (x + 1.0)
    primitives = np.empty((n_max, _N_QUADRATURE))
    for n in range(1, n_max + 1):
        primitives[n - 1] = (r_cut - nodes) ** (n + 2)
    return nodes, w, betas @ primitives


def gap_basis(r_cut: float, n_max: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres and transform of GAP's equispaced-Gaussian radial basis (module docstring).

    Returns
    -------
    centres : ndarray of shape (n_max,)
        ``r_a = a h`` (Å), ``h = (r_cut + σ sqrt(20 ln 10)) / n_max``.
    transform : ndarray of shape (n_max [a], n_max [n])
        ``T = C⁻¹ L``: ``C_ab = exp(-η (r_a - r_b)²)`` interpolates the
        density's radial profile, ``L`` is the Cholesky factor of the overlap
        ``S_ab = ∫_0^∞ r² exp(-η (r - r_a)²) exp(-η (r - r_b)²) dr = (L Lᵀ)_ab``.
    """
    eta = 1.0 / (2.0 * sigma**2)
    # GAP's basis reaches beyond r_cut by the distance at which a Gaussian
    # has decayed to 10^-10 (its basis_error_exponent = 10).
    spacing = (r_cut + sigma * math.sqrt(2.0 * _GAP_BASIS_ERROR_EXPONENT * math.log(10.0))) / n_max
    centres = spacing * np.arange(n_max)
    interpolation = np.exp(-eta * (centres[:, None] - centres[None, :]) ** 2)
    # ∫_0^∞ r² exp(-2η (r - m)²) dr with m the midpoint of r_a and r_b, times
    # the exp(-η (r_a - r_b)² / 2) left over from completing the square.
    beta = 2.0 * eta
    m = 0.5 * (centres[:, None] + centres[None, :])
    tail = 1.0 + scipy.special.erf(math.sqrt(beta) * m)
    moment = (math.sqrt(math.pi) / (2.0 * math.sqrt(beta)) * tail * (m**2 + 1.0 / (2.0 * beta))
              + m * np.exp(-beta * m**2) / (2.0 * beta))
    overlap = moment * np.exp(-0.5 * eta * (centres[:, None] - centres[None, :]) ** 2)
    cholesky = np.linalg.cholesky(overlap)
    return centres, np.linalg.solve(interpolation, cholesky)


def gap_feature_weights(n_species: int, n_max: int, l_max: int) -> np.ndarray:
    """GAP's power-spectrum weights in kernelpot's feature order, shape (n_features,).

    GAP sums its kernel over all ordered pairs of (species, n) channels; kept
    once, as here, a pair of different channels stands for two, so its
    feature is multiplied by √2 (1 for a channel with itself). Order: species
    pairs ``Z <= Z'``, then l, then n and n' (``n' >= n`` when ``Z = Z'``).
    """
    blocks = []
    for a in range(n_species):
        for b in range(a, n_species):
            first, second = np.meshgrid(np.arange(n_max), np.arange(n_max), indexing="ij")
            keep = second >= first if a == b else np.ones_like(first, dtype=bool)
            same = (first == second)[keep] & (a == b)
            blocks.append(np.tile(np.where(same, 1.0, math.sqrt(2.0)), l_max + 1))
    return np.concatenate(blocks)


def _scaled_bessel_ratios(x: np.ndarray, l_top: int) -> np.ndarray:
    """``e^(-x) i_l(x) / x^l`` for l = 0..l_top (modified spherical Bessel i_l), shape (l_top + 1,) + x.shape.

    Power series below x = 1 (all terms positive, so no cancellation, and
    finite at x = 0), exponentially scaled half-integer Bessel functions above.
    """
    out = np.empty((l_top + 1,) + x.shape)
    small = x < 1.0
    xs, xl = x[small], x[~small]
    half_square = 0.5 * xs**2
    for l in range(l_top + 1):
        # Σ_k (x²/2)^k / (k! (2l + 2k + 1)!!); 25 terms reach 1e-40 relative at x = 1.
        term = np.full(xs.shape, 1.0 / scipy.special.factorial2(2 * l + 1, exact=True))
        total = term.copy()
        for k in range(1, 25):
            term = term * half_square / (k * (2 * l + 2 * k + 1))
            total += term
        out[l][small] = total * np.exp(-xs)
        out[l][~small] = np.sqrt(0.5 * math.pi / xl) * _ive(l + 0.5, xl) / xl**l
    return out


def _ive(order: float, x: np.ndarray) -> np.ndarray:
    """``scipy.special.ive`` (``e^(-x) I_order(x)``), by its asymptotic series above x = 1e8, where SciPy
    returns NaN (from about 1e10; very narrow Gaussians, ``sigma`` of 1e-4 Å, reach such arguments)."""
    large = x > 1e8
    out = scipy.special.ive(order, np.where(large, 1.0, x))
    if np.any(large):
        xl, mu = x[large], 4.0 * order**2
        # Σ_k (-1)^k a_k / x^k with a_k = Π_{j<=k} (μ - (2j - 1)²) / (k! 8^k); 4 terms reach round-off here.
        term, total = np.ones_like(xl), np.ones_like(xl)
        for k in range(1, 4):
            term = -term * (mu - (2 * k - 1) ** 2) / (k * 8.0 * xl)
            total += term
        out[large] = total / np.sqrt(2.0 * math.pi * xl)
    return out


def _gap_terms(r, centres, eta, l_max):
    """Terms ``F_la(r) = exp(-η (r² + r_a²)) i_l(2η r r_a) / r^l`` and their r-derivatives, (r, l, a) each.

    With ``x = 2η r_a r``, ``b = (2η r_a)²`` and ``S_k = exp(-η (r² + r_a²)) g_(l+k)(x)``,
    ``g_l = i_l / x^l`` (so ``g_l' = x g_(l+1)``):
    ``F = (2η r_a)^l S_0``, ``F' = (2η r_a)^l (-2η r S_0 + b r S_1)`` and
    ``F'' = (2η r_a)^l ((4η² r² - 2η) S_0 + b (1 - 4η r²) S_1 + b² r² S_2)``.
    """
    r = r[:, None]
    x = 2.0 * eta * r * centres[None, :]
    gauss = np.exp(-eta * (r - centres[None, :]) ** 2)
    s = _scaled_bessel_ratios(x, l_max + 2) * gauss  # (l + 2, r, a)
    ell = np.arange(l_max + 1)[:, None, None]
    power = (2.0 * eta * centres[None, None, :]) ** ell  # 0.0 ** 0 = 1 at r_a = 0
    b = (2.0 * eta * centres) ** 2
    s0, s1, s2 = s[:-2], s[1:-1], s[2:]
    f = power * s0
    df = power * (-2.0 * eta * r * s0 + b * r * s1)
    d2f = power * ((4.0 * eta**2 * r**2 - 2.0 * eta) * s0 + b * (1.0 - 4.0 * eta * r**2) * s1 + b**2 * r**2 * s2)
    return [np.transpose(term, (1, 0, 2)) for term in (f, df, d2f)]


def _gap_exact(r, centres, transform, eta, l_max, absolute=False):
    """ρ_ln(r) and its first two r-derivatives (GAP basis), each (len(r), (l_max + 1) n_max)."""
    weights = np.abs(transform) if absolute else transform
    out = []
    for term in _gap_terms(r, centres, eta, l_max):
        term = np.abs(term) if absolute else term
        out.append(np.einsum("rla,an->rln", term, weights).reshape(len(r), -1))
    return out


@dataclass(frozen=True)
class RadialBasis:
    """Everything the jitted kernels need to evaluate ``ρ_ln`` (see module docstring).

    Attributes
    ----------
    kind : int
        :data:`GTO` (tabulated functions: the GTO and the GAP basis) or :data:`POLYNOMIAL`.
    eta : float
        ``1 / (2 σ²)`` in 1/Å².
    table_a : ndarray, 2-D float64
        GTO: exponents ``α η / (α + η)`` of shape (l_max + 1, n_max) in 1/Å².
        Polynomial: quadrature nodes, shape (1, 100), Å.
        GAP: the Gaussians' centres ``r_a``, shape (1, n_max), Å (not read by the kernels).
    table_b : ndarray, 3-D float64
        GTO: prefactors of shape (l_max + 1, n_max [k], n_max [n]).
        Polynomial: ``2π r_cut r_w² w_w g_n(r_w)``, shape (1, n_max, 100).
        GAP: the transform ``C⁻¹ L``, shape (1, n_max [a], n_max [n]) (not read by the kernels).
    spline : ndarray of shape (n_intervals, 6, (l_max + 1) n_max)
        GTO and GAP (else empty): quintic Hermite coefficients of ``ρ_ln`` on a
        uniform grid in r, ``ρ = Σ_q a_q t^q`` with ``t = r / h - k`` on
        interval k.
    inv_spacing : float
        ``1 / h`` in 1/Å.
    self_density : ndarray of shape (n_max,)
        ``ρ_0n(0)``: the l = 0 radial function at r = 0 (the centre's own atom).
    """

    kind: int
    eta: float
    table_a: np.ndarray
    table_b: np.ndarray
    spline: np.ndarray
    inv_spacing: float
    self_density: np.ndarray


@functools.lru_cache(maxsize=16)
def make_radial_basis(rbf: str, r_cut: float, n_max: int, l_max: int, sigma: float) -> RadialBasis:
    """Tables for :func:`radial_batch` (parameters validated by the caller; cached, read-only)."""
    eta = 1.0 / (2.0 * sigma**2)
    if rbf == "gto":
        alphas, betas = gto_basis(r_cut, n_max, l_max)
        ell = np.arange(l_max + 1)[:, None]
        exponents = alphas * eta / (alphas + eta)
        scale = math.pi**1.5 * eta**ell * (alphas + eta) ** (-(ell + 1.5))  # (l, k)
        # prefactors[l, k, n] = π^(3/2) β_l,nk η^l (α_lk + η)^-(l+3/2); n last for contiguous loops.
        prefactors = np.ascontiguousarray(np.transpose(betas, (0, 2, 1)) * scale[:, :, None])
        self_density = prefactors[0].sum(axis=0)
        spline, spacing = _gto_spline(exponents, prefactors, r_cut + cutoff_padding(sigma))
        return RadialBasis(GTO, eta, exponents, prefactors, spline, 1.0 / spacing, self_density)
    if rbf == "gap":
        centres, transform = gap_basis(r_cut, n_max, sigma)
        spline, spacing = _spline_table(
            lambda r: _gap_exact(r, centres, transform, eta, l_max),
            lambda r: _gap_exact(r, centres, transform, eta, l_max, absolute=True)[:2],
            r_cut + cutoff_padding(sigma),
        )
        self_density = _gap_exact(np.zeros(1), centres, transform, eta, 0)[0][0]
        # Tabulated like the GTO basis, so the GTO code path evaluates it.
        return RadialBasis(GTO, eta, centres[None, :].copy(), transform[None, :, :].copy(), spline,
                           1.0 / spacing, self_density)
    nodes, weights, values = polynomial_basis(r_cut, n_max)
    node_weights = 2.0 * math.pi * r_cut * nodes**2 * weights * values  # (n_max, 100)
    self_density = node_weights @ np.exp(-eta * nodes**2)
    return RadialBasis(
        POLYNOMIAL, eta, nodes[None, :].copy(), node_weights[None, :, :].copy(),
        np.zeros((1, 6, 1)), 1.0, self_density,
    )


def _gto_exact(r: np.ndarray, exponents: np.ndarray, prefactors: np.ndarray):
    """ρ_ln(r) and its first two r-derivatives (GTO basis), each (len(r), (l_max + 1) n_max)."""
    r = r[:, None, None]
    a = exponents[None]
    e = np.exp(-a * r**2)  # (r, l, k)
    terms = (e, -2.0 * a * r * e, (4.0 * a**2 * r**2 - 2.0 * a) * e)
    return [np.einsum("rlk,lkn->rln", term, prefactors).reshape(len(r), -1) for term in terms]


def _gto_spline(exponents, prefactors, r_max, tolerance=1e-11):
    """Quintic Hermite table of the GTO radial functions on [0, r_max] (see :func:`_spline_table`).

    ``ρ_ln`` are sums of n_max Gaussians, so evaluating them exactly costs one
    exp per primitive and pair; the table replaces those by a polynomial.
    """
    magnitude_prefactors = np.abs(prefactors)
    return _spline_table(
        lambda r: _gto_exact(r, exponents, prefactors),
        lambda r: _gto_exact(r, exponents, magnitude_prefactors)[:2],
        r_max, tolerance,
    )


def _spline_table(exact, magnitude, r_max, tolerance=1e-11):
    """Quintic Hermite table of radial functions on [0, r_max].

    ``exact(r)`` returns the functions and their first two r-derivatives,
    each (len(r), n_functions); ``magnitude(r)`` the sums of the absolute
    values of the terms that make up the functions and their derivatives.
    The grid is halved until, at the interval midpoints, values and
    derivatives agree with the exact ones to ``tolerance`` of the largest
    magnitude of the terms of each function (their sum cancels for large
    n_max, so that is also the rounding floor of the exact sum).
    """
    spacing = 0.04
    while True:
        n_intervals = int(math.ceil(r_max / spacing)) + 2
        nodes = spacing * np.arange(n_intervals + 1)
        f, df, d2f = exact(nodes)
        df, d2f = df * spacing, d2f * spacing**2
        f0, f1, d0, d1, s0, s1 = f[:-1], f[1:], df[:-1], df[1:], d2f[:-1], d2f[1:]
        table = np.stack(
            [
                f0,
                d0,
                0.5 * s0,
                10.0 * (f1 - f0) - 6.0 * d0 - 4.0 * d1 - 1.5 * s0 + 0.5 * s1,
                15.0 * (f0 - f1) + 8.0 * d0 + 7.0 * d1 + 1.5 * s0 - s1,
                6.0 * (f1 - f0) - 3.0 * d0 - 3.0 * d1 - 0.5 * s0 + 0.5 * s1,
            ],
            axis=1,
        )
        middle = nodes[:-1] + 0.5 * spacing
        exact_f, exact_d, _ = exact(middle)
        value, derivative = _evaluate_table(table, 0.5)
        magnitude_f, magnitude_d = magnitude(nodes)
        # A function that is zero everywhere (Gaussians far narrower than the grid underflow) is exact at any
        # spacing: relative errors against a zero scale would be NaN and halve the spacing to its floor.
        scale = np.where(np.abs(magnitude_f).max(axis=0) > 0, np.abs(magnitude_f).max(axis=0), 1.0)
        scale_d = np.where(np.abs(magnitude_d).max(axis=0) > 0, np.abs(magnitude_d).max(axis=0), 1.0)
        error = np.max(np.abs(value - exact_f) / scale)
        error_d = np.max(np.abs(derivative / spacing - exact_d) / scale_d)
        if max(error, error_d) <= tolerance or spacing < 1e-3:
            return np.ascontiguousarray(table), spacing
        spacing *= 0.5


def _evaluate_table(table, t):
    """Value and t-derivative of the quintic on every interval at local coordinate t."""
    value = table[:, 5]
    derivative = 5.0 * table[:, 5]
    for power in range(4, -1, -1):
        value = table[:, power] + t * value
        if power >= 1:
            derivative = power * table[:, power] + t * derivative
    return value, derivative


@njit(cache=True, nogil=True)
def _spline_batch(r, spline, inv_spacing, rho, drho, with_derivatives):
    n_functions = spline.shape[2]
    last = spline.shape[0] - 1
    for p in range(r.shape[0]):
        position = r[p] * inv_spacing
        k = min(int(position), last)
        t = position - k
        a0, a1, a2, a3, a4, a5 = spline[k, 0], spline[k, 1], spline[k, 2], spline[k, 3], spline[k, 4], spline[k, 5]
        out = rho[p]
        for j in range(n_functions):
            out[j] = a0[j] + t * (a1[j] + t * (a2[j] + t * (a3[j] + t * (a4[j] + t * a5[j]))))
        if with_derivatives:
            scale = inv_spacing / r[p]
            out = drho[p]
            for j in range(n_functions):
                out[j] = (a1[j] + t * (2.0 * a2[j] + t * (3.0 * a3[j] + t * (4.0 * a4[j] + t * 5.0 * a5[j])))) * scale


@njit(cache=True, nogil=True)
def _polynomial_radial(r, eta, nodes, node_weights, l_max, n_max, rho, drho, bessel, dbessel):
    """ρ_ln(r) = R_ln(r) / r^l and ρ' (flat index l n_max + n) for the polynomial basis."""
    n_nodes = nodes.shape[0]
    for w in range(n_nodes):
        rw = nodes[w]
        a = 1.0 / (4.0 * eta * rw * r)
        da = -a / r
        diff = rw - r
        total = rw + r
        e_minus = math.exp(-eta * diff * diff) if diff <= _EXP_DROP else 0.0
        de_minus = 2.0 * eta * diff * e_minus
        e_plus = math.exp(-eta * total * total) if total <= _EXP_DROP else 0.0
        de_plus = -2.0 * eta * total * e_plus
        f0 = a * (e_minus - e_plus)
        df0 = da * (e_minus - e_plus) + a * (de_minus - de_plus)
        bessel[0, w] = f0
        dbessel[0, w] = df0
        if l_max > 0:
            bessel[1, w] = a * (e_minus + e_plus - 2.0 * f0)
            dbessel[1, w] = da * (e_minus + e_plus - 2.0 * f0) + a * (de_minus + de_plus - 2.0 * df0)
        for l in range(2, l_max + 1):
            value = bessel[l - 2, w] - a * (4 * l - 2) * bessel[l - 1, w]
            if value < 0.0:
                # The upward recurrence is unstable for small arguments; dscribe clips.
                bessel[l, w] = 0.0
                dbessel[l, w] = 0.0
            else:
                bessel[l, w] = value
                dbessel[l, w] = dbessel[l - 2, w] - (4 * l - 2) * (da * bessel[l - 1, w] + a * dbessel[l - 1, w])
    r_power = 1.0
    for l in range(l_max + 1):
        for n in range(n_max):
            value = 0.0
            deriv = 0.0
            for w in range(n_nodes):
                value += node_weights[n, w] * bessel[l, w]
                deriv += node_weights[n, w] * dbessel[l, w]
            rho[l * n_max + n] = value / r_power
            drho[l * n_max + n] = (deriv / r_power - l * value / (r_power * r)) / r
        r_power *= r


@njit(cache=True, nogil=True)
def radial_batch(
    kind, r, eta, table_a, table_b, spline, inv_spacing, l_max, n_max, rho, drho, bessel, dbessel, with_derivatives
):
    """Radial functions of P neighbours: ``rho[p, l n_max + n] = ρ_ln(r_p)``, ``drho = (1/r) dρ/dr``.

    Parameters
    ----------
    kind : int
        :data:`GTO` or :data:`POLYNOMIAL`.
    r : ndarray of shape (P,)
        Neighbour distances (Å), > 0.
    eta, table_a, table_b, spline, inv_spacing
        From :class:`RadialBasis`.
    rho, drho : ndarray of shape (P, (l_max + 1) n_max)
        Outputs (``drho`` is left untouched by the GTO basis unless ``with_derivatives``).
    bessel, dbessel : ndarray of shape (l_max + 1, 100)
        Scratch for the polynomial basis (unused for GTO).
    with_derivatives : bool
    """
    if kind == GTO:
        _spline_batch(r, spline, inv_spacing, rho, drho, with_derivatives)
    else:
        for p in range(r.shape[0]):
            _polynomial_radial(
                r[p], eta, table_a[0], table_b[0], l_max, n_max, rho[p], drho[p], bessel, dbessel
            )
