r"""Radial integrals and tabulated pair functions of the LODE descriptor.

Radial basis (featomic's ``Gto`` LODE basis, so that coefficients are comparable)
--------------------------------------------------------------------------------
Primitives ``φ_m(r) = N_m r^m exp(-r² / (2 s_m²))``, ``m = 0..n_max-1``, with widths
``s_m = r_cut max(√m, 1) / n_max`` and ``N_m = sqrt(2 / (s_m^(2m+3) Γ(m + 3/2)))``
(unit norm with weight r²), orthonormalised by Löwdin's symmetric ``S^(-1/2)``:
``R_n(r) = Σ_m T_nm r^m exp(-r²/(2 s_m²))``, ``T = S^(-1/2) diag(N)``. The same
``R_n`` serve every degree l. They are Gaussian-damped, not cut off: ``r_cut`` sets
their extent (the widest primitive peaks near ``r_cut``).

Fourier side
------------
``J_nl(k) = ∫_0^∞ r² R_n(r) j_l(kr) dr`` is analytic per primitive (Gradshteyn 6.631.1)::

    ∫ r^(m+2) e^(-r²/2s²) j_l(kr) dr = √π 2^((m-l-1)/2) s^(m+3) (ks)^l
                                       Γ(a)/Γ(b) ₁F₁(a; b; -k²s²/2),  a = (m+l+3)/2, b = l + 3/2

so that the projection of a plane wave is ``∫ R_n Y_lm e^(ik·x) d³x = 4π i^l J_nl(k) Y_lm(k̂)``.

Pair functions
--------------
A spherical function ``f(|x - d|)`` centred at ``d`` (relative to the centre) projects
on ``R_n(r) Y_lm(x̂)`` as ``F_nl(|d|) Y_lm(d̂)`` (addition theorem), with::

    F_nl(d) = (2/π) ∫_0^∞ k² f̃(k) J_nl(k) j_l(kd) dk.

For the potential of a unit Gaussian of width σ (``erf(r / (σ√2)) / r``, Fourier
transform ``f̃ = 4π e^(-k²σ²/2) / k²``) this is ``F_nl(d) = 8 ∫ e^(-k²σ²/2) J_nl(k)
j_l(kd) dk``; its short-range part (Ewald split at the wider width σ_L, potential
``[erf(r/(σ√2)) - erf(r/(σ_L√2))]/r``) has ``e^(-k²σ²/2) - e^(-k²σ_L²/2)`` instead.
The descriptor kernels want ``G_nl(d) = F_nl(d) / d^l`` (smooth at d = 0; the
solid harmonic ``d^l Y_lm`` supplies the rest, as in :mod:`._radial`), which is::

    G_nl(d) = 8 ∫ w(k) J_nl(k) k^l g_l(kd) dk,     g_l(x) = j_l(x) / x^l,  g_l' = -x g_(l+1),

evaluated by Gauss–Legendre quadrature in k (w decays like a Gaussian, J_nl too)
and tabulated with derivatives as quintic Hermite splines (:func:`._radial._spline_table`,
accuracy 1e-11 of each function's scale). Far from the centre the full potential's
projection is a multipole: ``F_nl(d) → 4π M_nl / ((2l+1) d^(l+1))`` with
``M_nl = ∫ r^(l+2) R_n dr`` (exact up to the Gaussian tails of R_n and of the smeared
charge); open boundaries use it beyond :attr:`PotentialTable.r_max`, where it agrees
with the quadrature to ~1e-11 relative.

References
----------
A. Grisafi, M. Ceriotti, J. Chem. Phys. 151, 204105 (2019), doi:10.1063/1.5128375.
K. K. Huguenin-Dumittan, P. Loche, N. Haoran, M. Ceriotti, J. Phys. Chem. Lett. 14,
9612 (2023), doi:10.1021/acs.jpclett.3c02375 (the radial integrals, featomic).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ._radial import _spline_table

__all__ = ["LodeRadialBasis", "PotentialTable", "basis_extent", "lode_radial_basis", "potential_table", "tail_factors"]

# Quadrature in k reaches where the integrand's Gaussian envelope is below e^-45 (~3e-20).
_ENVELOPE_LOG = 45.0
# Pair functions (and the tail's mismatch) are negligible below this fraction of their peak.
_NEGLIGIBLE = 1e-13
_TABLE_TOLERANCE = 1e-11


@dataclass(frozen=True)
class LodeRadialBasis:
    """Orthonormal GTO radial basis of LODE (module docstring).

    Attributes
    ----------
    r_cut : float
        Radius of the basis (Å): featomic's GTO ``radius``.
    n_max, l_max : int
    widths : ndarray of shape (n_max,)
        Primitive widths ``s_m`` (Å).
    transform : ndarray of shape (n_max, n_max)
        ``T`` with ``R_n = Σ_m T_nm r^m exp(-r²/(2 s_m²))``.
    """

    r_cut: float
    n_max: int
    l_max: int
    widths: np.ndarray
    transform: np.ndarray

    def values(self, r) -> np.ndarray:
        """``R_n(r)``, shape (len(r), n_max) (Å^-3/2)."""
        r = np.asarray(r, dtype=np.float64)[:, None]
        m = np.arange(self.n_max)
        return (r**m * np.exp(-0.5 * r**2 / self.widths**2)) @ self.transform.T

    def integrals(self, k) -> np.ndarray:
        """``J_nl(k) = ∫ r² R_n(r) j_l(kr) dr``, shape (len(k), l_max + 1, n_max) (Å^3/2)."""
        k = np.asarray(k, dtype=np.float64)
        out = np.empty((len(k), self.l_max + 1, self.n_max))
        for l in range(self.l_max + 1):
            primitives = np.empty((len(k), self.n_max))
            for m, s in enumerate(self.widths):
                a, b = 0.5 * (m + l + 3), l + 1.5
                scale = math.sqrt(math.pi) * 2.0 ** (0.5 * (m - l - 1)) * s ** (m + 3)
                ratio = math.exp(special.gammaln(a) - special.gammaln(b))
                primitives[:, m] = scale * ratio * (k * s) ** l * special.hyp1f1(a, b, -0.5 * (k * s) ** 2)
            out[:, l] = primitives @ self.transform.T
        return out

    def moments(self) -> np.ndarray:
        """``M_nl = ∫ r^(l+2) R_n(r) dr``, shape (l_max + 1, n_max) (Å^(l+3/2)).

        ``M_n0`` is also ``J_n0(0)``: the projection of a constant 1 is ``√(4π) M_n0`` on ``Y_00``.
        """
        out = np.empty((self.l_max + 1, self.n_max))
        m = np.arange(self.n_max)
        for l in range(self.l_max + 1):
            p = 0.5 * (m + l + 3)
            out[l] = self.transform @ (0.5 * special.gamma(p) * (2.0 * self.widths**2) ** p)
        return out


@functools.lru_cache(maxsize=16)
def lode_radial_basis(r_cut: float, n_max: int, l_max: int) -> LodeRadialBasis:
    """The orthonormal GTO basis (cached; parameters validated by the caller)."""
    m = np.arange(n_max)
    widths = r_cut * np.maximum(np.sqrt(m), 1.0) / n_max
    norms = np.sqrt(2.0 / (widths ** (2 * m + 3) * special.gamma(m + 1.5)))
    exponents = 0.5 / widths[:, None] ** 2 + 0.5 / widths[None, :] ** 2
    powers = 0.5 * (m[:, None] + m[None, :] + 3)
    overlap = norms[:, None] * norms[None, :] * 0.5 * special.gamma(powers) * exponents ** (-powers)
    eigenvalues, eigenvectors = np.linalg.eigh(overlap)
    if eigenvalues.min() <= 1e3 * np.finfo(float).eps * eigenvalues.max():
        raise ValueError(
            f"the LODE radial basis with n_max={n_max} is numerically linearly dependent "
            "(its overlap matrix is singular); lower `n_max`"
        )
    inverse_root = (eigenvectors / np.sqrt(eigenvalues)) @ eigenvectors.T
    transform = inverse_root @ np.diag(norms)
    return LodeRadialBasis(float(r_cut), int(n_max), int(l_max), widths, transform)


def basis_extent(basis: LodeRadialBasis, fraction: float = _NEGLIGIBLE) -> float:
    """Radius (Å) beyond which every ``r² |R_n(r)|`` stays below ``fraction`` of its peak."""
    r = np.linspace(0.0, 4.0 * basis.r_cut + 12.0 * basis.widths.max(), 4001)
    weight = np.abs(basis.values(r)) * r[:, None] ** 2
    above = np.nonzero(np.any(weight > fraction * weight.max(axis=0), axis=1))[0]
    return float(r[above[-1] + 1])


@dataclass(frozen=True)
class PotentialTable:
    """Tabulated ``G_nl(d)`` of the (full or short-range) smeared Coulomb potential.

    Attributes
    ----------
    spline : ndarray of shape (n_intervals, 6, (l_max + 1) n_max)
        Quintic Hermite coefficients (layout of :class:`._radial.RadialBasis.spline`),
        column ``l n_max + n``.
    inv_spacing : float
        1/Å.
    r_max : float
        Å. Short-range table: the pair function is negligible beyond. Full table: the
        multipole tail ``4π M_nl / ((2l+1) d^(2l+1))`` takes over beyond.
    self_value : ndarray of shape (n_max,)
        ``G_n0(0)``: the centre's own Gaussian (only l = 0).
    """

    spline: np.ndarray
    inv_spacing: float
    r_max: float
    self_value: np.ndarray


def _scaled_bessel(l_top: int, x: np.ndarray) -> np.ndarray:
    """``g_l(x) = j_l(x) / x^l`` for l = 0..l_top, shape (l_top + 1,) + x.shape (series below x = 1)."""
    out = np.empty((l_top + 1,) + x.shape)
    small = x < 1.0
    xs, xl = x[small], x[~small]
    for l in range(l_top + 1):
        term = np.full(xs.shape, 1.0 / special.factorial2(2 * l + 1, exact=True))
        total = term.copy()
        for k in range(1, 25):  # alternating, |terms| < (1/2)^k / k!: 1e-40 after 25
            term = term * (-0.5 * xs**2) / (k * (2 * l + 2 * k + 1))
            total += term
        out[l][small] = total
        out[l][~small] = special.spherical_jn(l, xl) / xl**l
    return out


class _PairIntegral:
    """``G_nl(d)`` and its first two derivatives by quadrature in k (module docstring)."""

    def __init__(self, basis: LodeRadialBasis, weight, smearing: float, r_max: float):
        # The integrand's envelope is e^(-k²(σ² + s_0²)/2) (J_nl decays with the narrowest primitive).
        k_max = math.sqrt(2.0 * _ENVELOPE_LOG / (smearing**2 + basis.widths.min() ** 2))
        n_nodes = int(k_max * r_max) + 120
        x, w = special.roots_legendre(n_nodes)
        self.k = 0.5 * k_max * (x + 1.0)
        integrals = basis.integrals(self.k)  # (k, l, n)
        self.weighted = 8.0 * (0.5 * k_max * w * weight(self.k))[:, None, None] * integrals
        self.l_max, self.n_max = basis.l_max, basis.n_max

    def __call__(self, d, derivatives=True):
        d = np.asarray(d, dtype=np.float64)
        # _spline_table asks for the same nodes twice (values, then magnitudes): remember the last call.
        last = getattr(self, "_last", None)
        if last is not None and last[0] == derivatives and np.array_equal(last[1], d):
            return last[2]
        result = self._evaluate(d, derivatives)
        self._last = (derivatives, d.copy(), result)
        return result

    def _evaluate(self, d, derivatives):
        kd = d[:, None] * self.k[None, :]
        g = _scaled_bessel(self.l_max + 2, kd)  # (l, d, k)
        values, first, second = [], [], []
        for l in range(self.l_max + 1):
            base = self.weighted[:, l, :] * (self.k**l)[:, None]  # (k, n)
            values.append(g[l] @ base)
            if derivatives:
                up = g[l + 1] @ (base * (self.k**2)[:, None])
                up2 = g[l + 2] @ (base * (self.k**4)[:, None])
                first.append(-d[:, None] * up)
                second.append(-up + d[:, None] ** 2 * up2)
        flat = [np.concatenate(part, axis=1) for part in (values, first, second) if part]
        return flat if derivatives else flat[0]


def _decay_radius(pair, basis: LodeRadialBasis, upper: float, fraction: float) -> float:
    """Smallest d beyond which ``|F_nl(d)| = |G_nl(d)| d^l`` stays below ``fraction`` of its peak."""
    d = np.arange(0.0, upper + 0.25, 0.25)
    ell = np.repeat(np.arange(basis.l_max + 1), basis.n_max)
    magnitude = np.abs(pair(d, derivatives=False)) * d[:, None] ** ell
    above = np.nonzero(np.any(magnitude > fraction * magnitude.max(axis=0), axis=1))[0]
    return float(d[min(above[-1] + 1, len(d) - 1)])


def _tail(basis: LodeRadialBasis, d: np.ndarray) -> np.ndarray:
    """Multipole form ``4π M_nl / ((2l+1) d^(2l+1))`` of G_nl, shape (len(d), (l_max+1) n_max)."""
    ell = np.arange(basis.l_max + 1)[:, None]
    factor = (4.0 * math.pi / (2 * ell + 1)) * basis.moments()
    return (factor[None] / d[:, None, None] ** (2 * ell[None] + 1)).reshape(len(d), -1)


@functools.lru_cache(maxsize=32)
def potential_table(r_cut: float, n_max: int, l_max: int, smearing: float,
                    split_width: float | None) -> PotentialTable:
    """Table of G_nl for the full potential (``split_width=None``) or its short-range part.

    Parameters are validated by the caller; ``split_width`` σ_L > ``smearing`` (Å) is
    the width of the Gaussian whose potential the reciprocal-space sum carries.
    Cached: building a table takes ~0.1-1 s.
    """
    basis = lode_radial_basis(r_cut, n_max, l_max)
    extent = basis_extent(basis)
    if split_width is None:
        def weight(k):
            return np.exp(-0.5 * (k * smearing) ** 2)
        reach = extent + math.sqrt(2.0 * _ENVELOPE_LOG) * smearing
    else:
        def weight(k):
            return np.exp(-0.5 * (k * smearing) ** 2) - np.exp(-0.5 * (k * split_width) ** 2)
        reach = extent + math.sqrt(2.0 * _ENVELOPE_LOG) * split_width
    pair = _PairIntegral(basis, weight, smearing, reach + 2.0)
    if split_width is None:
        r_max = _tail_radius(pair, basis, reach)
    else:
        r_max = _decay_radius(pair, basis, reach, _NEGLIGIBLE)
    spline, spacing = _spline_table(
        pair, lambda r: [np.abs(part) for part in pair(r)[:2]], r_max, _TABLE_TOLERANCE
    )
    self_value = pair(np.zeros(1), derivatives=False)[0, :n_max].copy()
    return PotentialTable(spline, 1.0 / spacing, r_max, self_value)


def _tail_radius(pair, basis: LodeRadialBasis, upper: float) -> float:
    """Where the multipole tail equals the full pair function to 1e-10 of the tail's size at that d."""
    d = np.arange(0.5, upper + 0.25, 0.25)
    exact = pair(d, derivatives=False).reshape(len(d), basis.l_max + 1, basis.n_max)
    tail = _tail(basis, d).reshape(exact.shape)
    mismatch = np.max(np.abs(exact - tail).max(axis=2) / np.abs(tail).max(axis=2), axis=1)
    bad = np.nonzero(mismatch > 1e-10)[0]
    return float(d[min(bad[-1] + 1, len(d) - 1)]) if len(bad) else float(d[0])


def tail_factors(r_cut: float, n_max: int, l_max: int) -> np.ndarray:
    """``4π M_nl / (2l+1)``, shape (l_max + 1, n_max): the multipole tail's coefficients."""
    basis = lode_radial_basis(r_cut, n_max, l_max)
    ell = np.arange(l_max + 1)[:, None]
    return np.ascontiguousarray((4.0 * math.pi / (2 * ell + 1)) * basis.moments())
