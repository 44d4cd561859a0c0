"""Clebsch–Gordan coefficients for coupling real spherical harmonics.

Complex coefficients ``<l1 m1; l2 m2 | λ μ>`` come from Racah's closed
formula evaluated in exact rational arithmetic (one rounding, in the final
square root), so they are correct to machine precision for any degree.
The real-basis coefficients are their image under the change of basis of
:func:`kernelpot.symmetry.harmonics.complex_to_real_matrix`::

    C[m1, m2, μ] = sum U_λ[μ, μ'] <l1 m1'; l2 m2' | λ μ'> U_l1*[m1, m1'] U_l2*[m2, m2']

With ``a`` and ``b`` real components of degrees ``l1``, ``l2`` that rotate
with ``D^l1``, ``D^l2`` (:func:`~kernelpot.symmetry.wigner.wigner_d_real`),
``t[μ] = sum_{m1 m2} C[m1, m2, μ] a[m1] b[m2]`` rotates with ``D^λ``.
``C`` is real when ``l1 + l2 + λ`` is even; when it is odd the complex-basis
result is purely imaginary and this module returns its imaginary part, which
couples just as well (a constant factor does not affect equivariance) but
gives a pseudo-tensor (odd under inversion relative to a proper tensor).

Real coefficients are sparse (for each ``μ`` at most four ``(m1, m2)`` per
``m1``), hence :func:`real_clebsch_gordan_sparse` for compiled kernels.
Results are cached per ``(l1, l2, λ)``; the returned arrays are read-only.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache
from math import factorial, lcm

import numpy as np

from .harmonics import check_degree, complex_to_real_matrix

__all__ = [
    "clebsch_gordan_complex",
    "real_clebsch_gordan",
    "real_clebsch_gordan_sparse",
]


def clebsch_gordan_complex(l1: int, m1: int, l2: int, m2: int, lam: int, mu: int) -> float:
    """One complex-basis Clebsch–Gordan coefficient ``<l1 m1; l2 m2 | λ μ>``.

    Condon–Shortley phase convention (the usual one of quantum mechanics
    texts and of :mod:`sympy.physics.quantum.cg`).

    Parameters
    ----------
    l1, m1, l2, m2, lam, mu : int
        Integer degrees (>= 0) and orders (``|m| <= l``).

    Returns
    -------
    float
        Zero unless ``m1 + m2 == μ`` and ``|l1 - l2| <= λ <= l1 + l2``.
    """
    for name, value in (("l1", l1), ("l2", l2), ("lam", lam)):
        check_degree(value, name)
    if m1 + m2 != mu or abs(m1) > l1 or abs(m2) > l2 or abs(mu) > lam:
        return 0.0
    if not abs(l1 - l2) <= lam <= l1 + l2:
        return 0.0
    return _racah(l1, m1, l2, m2, lam, mu)


def real_clebsch_gordan(l1: int, l2: int, lam: int) -> np.ndarray:
    """Real-basis coupling tensor of degrees ``l1 ⊗ l2 → λ``.

    Parameters
    ----------
    l1, l2, lam : int
        Degrees, >= 0, with ``|l1 - l2| <= lam <= l1 + l2``.

    Returns
    -------
    ndarray of shape (2 l1 + 1, 2 l2 + 1, 2 lam + 1), float64, read-only
        ``C[m1 + l1, m2 + l2, μ + λ]`` in kernelpot's real harmonics (see the
        module docstring for odd ``l1 + l2 + λ``).

    Examples
    --------
    Two vectors couple to a scalar through their dot product, ``-a·b/√3``:

    >>> import numpy as np
    >>> a, b = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    >>> coupled = np.einsum("ijk,i,j->k", real_clebsch_gordan(1, 1, 0), a, b)
    >>> bool(np.isclose(coupled[0], -a @ b / np.sqrt(3)))
    True
    """
    return _real_cached(*_check_triangle(l1, l2, lam))


def real_clebsch_gordan_sparse(l1: int, l2: int, lam: int):
    """Nonzero entries of :func:`real_clebsch_gordan`, for compiled kernels.

    Parameters
    ----------
    l1, l2, lam : int
        Degrees, >= 0, with ``|l1 - l2| <= lam <= l1 + l2``.

    Returns
    -------
    m1, m2, mu : ndarray of shape (n_nonzero,), int64
        Array positions ``m + l`` (0..2l) of each nonzero entry, sorted by ``mu``.
    values : ndarray of shape (n_nonzero,), float64
        The coefficients.
    """
    return _sparse_cached(*_check_triangle(l1, l2, lam))


def _check_triangle(l1, l2, lam):
    for name, value in (("l1", l1), ("l2", l2), ("lam", lam)):
        check_degree(value, name)
    if not abs(l1 - l2) <= lam <= l1 + l2:
        raise ValueError(
            f"degrees must satisfy |l1 - l2| <= lam <= l1 + l2; got l1={l1}, l2={l2}, lam={lam}"
        )
    return int(l1), int(l2), int(lam)


@cache
def _real_cached(l1: int, l2: int, lam: int) -> np.ndarray:
    complex_cg = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * lam + 1))
    for m1 in range(-l1, l1 + 1):
        for m2 in range(max(-l2, -lam - m1), min(l2, lam - m1) + 1):
            complex_cg[m1 + l1, m2 + l2, m1 + m2 + lam] = _racah(l1, m1, l2, m2, lam, m1 + m2)
    u1 = complex_to_real_matrix(l1).conj()
    u2 = complex_to_real_matrix(l2).conj()
    u_lam = complex_to_real_matrix(lam)
    real = np.einsum("ia,abc->ibc", u1, complex_cg)
    real = np.einsum("jb,ibc->ijc", u2, real) @ u_lam.T
    # Parity of l1 + l2 + λ decides whether the result is real or imaginary.
    out = real.real if (l1 + l2 + lam) % 2 == 0 else real.imag
    # Entries that are zero by symmetry come out at rounding level; make them exact.
    out = np.where(np.abs(out) > 1e-14, out, 0.0)
    out.setflags(write=False)
    return out


@cache
def _sparse_cached(l1: int, l2: int, lam: int):
    dense = _real_cached(l1, l2, lam)
    m1, m2, mu = np.nonzero(dense)
    order = np.lexsort((m2, m1, mu))
    m1, m2, mu = m1[order], m2[order], mu[order]
    arrays = [m1.astype(np.int64), m2.astype(np.int64), mu.astype(np.int64), dense[m1, m2, mu]]
    for array in arrays:
        array.setflags(write=False)
    return tuple(arrays)


def _racah(l1: int, m1: int, l2: int, m2: int, lam: int, mu: int) -> float:
    """Racah's formula, exact in rationals until the final square root."""
    f = factorial
    prefactor = Fraction(
        (2 * lam + 1) * f(lam + l1 - l2) * f(lam - l1 + l2) * f(l1 + l2 - lam),
        f(l1 + l2 + lam + 1),
    )
    prefactor *= f(lam + mu) * f(lam - mu) * f(l1 - m1) * f(l1 + m1) * f(l2 - m2) * f(l2 + m2)
    k_min = max(0, l2 - lam - m1, l1 - lam + m2)
    k_max = min(l1 + l2 - lam, l1 - m1, l2 + m2)
    denominators = [
        f(k) * f(l1 + l2 - lam - k) * f(l1 - m1 - k) * f(l2 + m2 - k)
        * f(lam - l2 + m1 + k) * f(lam - l1 - m2 + k)
        for k in range(k_min, k_max + 1)
    ]
    if not denominators:
        return 0.0
    # Sum of (-1)^k / d_k over a common denominator, in integers (Fraction is slow).
    common = lcm(*denominators)
    numerator = sum((-1) ** k * (common // d) for k, d in zip(range(k_min, k_max + 1), denominators))
    if numerator == 0:
        return 0.0
    magnitude = float(prefactor * Fraction(numerator * numerator, common * common)) ** 0.5
    return magnitude if numerator > 0 else -magnitude
