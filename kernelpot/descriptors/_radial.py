"""Radial bases of the SOAP density expansion: GTO and polynomial (dscribe 2.1 conventions).

The atomic density of species Z around a centre i is a sum of *unnormalised*
Gaussians ``exp(-η |r - r_ij|²)``, ``η = 1 / (2 σ²)``, one per neighbour j
(the centre's own atom included) within ``r_cut + padding``. Its expansion
coefficients on ``g_nl(r) Y_lm(r̂)`` (real harmonics of
:mod:`._spherical_harmonics`) are written per neighbour as

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

References
----------
A. P. Bartók, R. Kondor, G. Csányi, Phys. Rev. B 87, 184115 (2013),
doi:10.1103/PhysRevB.87.184115.
L. Himanen et al., Comput. Phys. Commun. 247, 106949 (2020),
doi:10.1016/j.cpc.2019.106949 (DScribe).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from numba import njit
from scipy.special import gamma

__all__ = [
    "GTO",
    "POLYNOMIAL",
    "RadialBasis",
    "gto_basis",
    "polynomial_basis",
    "make_radial_basis",
    "radial_batch",
    "cutoff_padding",
]

GTO = 0
POLYNOMIAL = 1
_DECAY_THRESHOLD = 1e-3  # value both GTO primitives and the density padding decay to
_N_QUADRATURE = 100
_EXP_DROP = 5.0  # Å; dscribe's polynomial integrand drops exp(-η (r ∓ r_ij)²) beyond this


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


@dataclass(frozen=True)
class RadialBasis:
    """Everything the jitted kernels need to evaluate ``ρ_ln`` (see module docstring).

    Attributes
    ----------
    kind : int
        :data:`GTO` or :data:`POLYNOMIAL`.
    eta : float
        ``1 / (2 σ²)`` in 1/Å².
    table_a : ndarray, 2-D float64
        GTO: exponents ``α η / (α + η)`` of shape (l_max + 1, n_max) in 1/Å².
        Polynomial: quadrature nodes, shape (1, 100), Å.
    table_b : ndarray, 3-D float64
        GTO: prefactors of shape (l_max + 1, n_max [k], n_max [n]).
        Polynomial: ``2π r_cut r_w² w_w g_n(r_w)``, shape (1, n_max, 100).
    spline : ndarray of shape (n_intervals, 6, (l_max + 1) n_max)
        GTO only (else empty): quintic Hermite coefficients of ``ρ_ln`` on a
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
    """Quintic Hermite table of the GTO radial functions on [0, r_max].

    ``ρ_ln`` are sums of n_max Gaussians, so evaluating them exactly costs one
    exp per primitive and pair; the table replaces those by a polynomial. The
    grid is halved until, at the interval midpoints, values and derivatives
    agree with the exact ones to ``tolerance`` of the largest magnitude of the
    Gaussian terms of each function (their sum cancels for large n_max, so
    that is also the rounding floor of the exact sum).
    """
    spacing = 0.04
    while True:
        n_intervals = int(math.ceil(r_max / spacing)) + 2
        nodes = spacing * np.arange(n_intervals + 1)
        f, df, d2f = _gto_exact(nodes, exponents, prefactors)
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
        exact, exact_d, _ = _gto_exact(middle, exponents, prefactors)
        value, derivative = _evaluate_table(table, 0.5)
        magnitude, magnitude_d, _ = _gto_exact(nodes, exponents, np.abs(prefactors))
        scale = np.abs(magnitude).max(axis=0)
        scale_d = np.abs(magnitude_d).max(axis=0)
        error = np.max(np.abs(value - exact) / scale)
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
