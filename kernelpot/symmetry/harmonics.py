"""Real spherical and solid harmonics of kernelpot, in one convention, with Cartesian gradients.

The one home of the real harmonics: the jitted ones used by SOAP, λ-SOAP and
the density basis, and a slow reference built from SciPy's complex ones
(:func:`reference_real_spherical_harmonics`) that defines the convention of
every Wigner D and Clebsch–Gordan matrix of :mod:`kernelpot.symmetry`.

Convention (shared by SOAP, λ-SOAP and anything that builds Wigner matrices
to match them)
----------------------------------------------------------------------------
Orthonormal real spherical harmonics on the unit sphere, **without** the
Condon–Shortley phase, in the column order ``lm = l*l + l + m``
(``m = -l..l``)::

    Y_l0       = N_l0 P_l^0(cos θ)
    Y_lm (m>0) = √2 N_lm P_l^m(cos θ) cos(m φ)
    Y_lm (m<0) = √2 N_l|m| P_l^|m|(cos θ) sin(|m| φ)
    N_lm       = sqrt((2l+1)/(4π) (l-m)!/(l+m)!)

where ``P_l^m`` is the associated Legendre function *without* the
``(-1)^m`` phase (so ``P_1^1(cos θ) = +sin θ``). Thus
``Y_{1,-1}, Y_{1,0}, Y_{1,1} = sqrt(3/4π) (y, z, x)/r``: the l = 1 block is
the Cartesian vector (y, z, x). This is the real basis of e3nn / Wikipedia
("real spherical harmonics", tesseral) and it satisfies
``∫ Y_lm Y_l'm' dΩ = δ_ll' δ_mm'``. (It equals the Condon–Shortley real
basis times ``(-1)^m`` for every m ≠ 0; the SOAP power spectrum, a sum over
m of products, does not depend on that choice.)

The *solid* harmonics are ``S_lm(r) = |r|^l Y_lm(r/|r|)``: homogeneous
polynomials of degree l in x, y, z, regular at r = 0. They are computed by
the recurrence on ``Q_l^m(z, r²) = r^l P_l^m(z/r) / (x² + y²)^(m/2)``::

    Q_l^l     = (2l-1) Q_{l-1}^{l-1}
    Q_l^{l-1} = (2l-1) z Q_{l-1}^{l-1}
    Q_l^m     = ((2l-1) z Q_{l-1}^m - (l+m-1) r² Q_{l-2}^m) / (l-m)

times ``C_m + i S_m = (x + i y)^m``, and differentiated with
``∂Q_l^m/∂x = -x Q_{l-1}^{m+1}``, ``∂Q_l^m/∂y = -y Q_{l-1}^{m+1}``,
``∂Q_l^m/∂z = (l+m) Q_{l-1}^m``.

Relation to the complex harmonics
---------------------------------
Components of degree ``l`` are stored in the order ``m = -l, ..., l``
(column ``l*l + l + m`` when all degrees are concatenated). The *standard*
real harmonics are built from the complex ones ``Y_l^m`` (Condon–Shortley
phase included, as in :func:`scipy.special.sph_harm_y`) as::

    Y_{l m}  = sqrt(2) (-1)^m Re Y_l^m          m > 0
    Y_{l 0}  = Y_l^0
    Y_{l m}  = sqrt(2) (-1)^m Im Y_l^{|m|}       m < 0

so that the phase cancels and, e.g., ``(Y_{1,-1}, Y_{1,0}, Y_{1,1})`` is
``sqrt(3 / 4π) (y, z, x) / r`` with a plus sign. :data:`CONDON_SHORTLEY`
is the single switch to the other common convention, which keeps the
phase (multiplies ``Y_{l m}`` by ``(-1)^m``). Every matrix of this package
(Wigner D, complex-to-real change of basis, Clebsch–Gordan) follows it.

Functions (jitted)
------------------
``real_spherical_harmonics(vectors, l_max)``
    ``Y_lm`` of the directions of ``vectors`` (n, 3), shape (n, (l_max+1)**2).
``real_solid_harmonics(vectors, l_max)``
    ``S_lm`` of ``vectors`` (n, 3), shape (n, (l_max+1)**2).
``real_solid_harmonics_with_gradients(vectors, l_max)``
    ``S_lm`` and ``∂S_lm/∂(x, y, z)``, shapes (n, (l_max+1)**2) and (n, 3, (l_max+1)**2).
``solid_harmonics_batch(x, y, z, l_max, prefactors, out, grad, q, c, s, with_gradients)``
    The kernel behind them, structure-of-arrays so loops over points vectorise:
    ``out`` (L², P), ``grad`` (3, L², P); scratch ``q`` (l_max+1, l_max+2, P),
    ``c``, ``s`` (l_max+1, P); ``prefactors`` from ``harmonic_prefactors(l_max)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "CONDON_SHORTLEY",
    "check_degree",
    "convention_signs",
    "complex_to_real_matrix",
    "reference_real_spherical_harmonics",
    "harmonic_prefactors",
    "solid_harmonics_batch",
    "real_spherical_harmonics",
    "real_solid_harmonics",
    "real_solid_harmonics_with_gradients",
]


@njit(cache=True, nogil=True)
def harmonic_prefactors(l_max):
    """Normalisation ``K_lm`` of the real harmonics, indexed ``l*l + l + m``.

    ``K_l0 = N_l0`` and ``K_l,±m = √2 N_lm`` (see the module docstring).
    """
    out = np.empty((l_max + 1) ** 2)
    for l in range(l_max + 1):
        for m in range(l + 1):
            # (l-m)!/(l+m)! as a running product keeps large l finite.
            ratio = 1.0
            for k in range(l - m + 1, l + m + 1):
                ratio /= k
            norm = math.sqrt((2 * l + 1) / (4.0 * math.pi) * ratio)
            if m == 0:
                out[l * l + l] = norm
            else:
                out[l * l + l + m] = math.sqrt(2.0) * norm
                out[l * l + l - m] = math.sqrt(2.0) * norm
    return out


@njit(cache=True, nogil=True)
def _legendre_q(z, r2, l_max, q):
    """``q[l, m, p] = Q_l^m(z_p, r²_p)`` for m ≤ l (module docstring); q[l, l+1] = 0."""
    n = z.shape[0]
    for p in range(n):
        q[0, 0, p] = 1.0
        q[0, 1, p] = 0.0
    for l in range(1, l_max + 1):
        diagonal = 2 * l - 1.0
        for p in range(n):
            q[l, l, p] = diagonal * q[l - 1, l - 1, p]
            q[l, l - 1, p] = diagonal * z[p] * q[l - 1, l - 1, p]
            q[l, l + 1, p] = 0.0
        for m in range(l - 1):
            a = (2 * l - 1.0) / (l - m)
            b = (l + m - 1.0) / (l - m)
            for p in range(n):
                q[l, m, p] = a * z[p] * q[l - 1, m, p] - b * r2[p] * q[l - 2, m, p]


@njit(cache=True, nogil=True)
def solid_harmonics_batch(x, y, z, l_max, prefactors, out, grad, q, c, s, with_gradients):
    """Real solid harmonics (and gradients) of P points given as coordinate arrays.

    Parameters
    ----------
    x, y, z : ndarray of shape (P,)
        Cartesian coordinates (Å).
    l_max : int
    prefactors : ndarray
        :func:`harmonic_prefactors` (l_max).
    out : ndarray of shape ((l_max+1)**2, P)
        ``S_lm`` (output).
    grad : ndarray of shape (3, (l_max+1)**2, P)
        ``∂S_lm/∂(x, y, z)`` (output, untouched unless ``with_gradients``).
    q, c, s : ndarray
        Scratch of shapes (l_max+1, l_max+2, P), (l_max+1, P), (l_max+1, P).
    with_gradients : bool
    """
    n = x.shape[0]
    r2 = c[0]  # borrowed: c[0] is set to 1 below, after Q is built
    for p in range(n):
        r2[p] = x[p] * x[p] + y[p] * y[p] + z[p] * z[p]
    _legendre_q(z, r2, l_max, q)
    # c[m] + i s[m] = (x + i y)^m
    for p in range(n):
        c[0, p] = 1.0
        s[0, p] = 0.0
    for m in range(1, l_max + 1):
        for p in range(n):
            c[m, p] = x[p] * c[m - 1, p] - y[p] * s[m - 1, p]
            s[m, p] = x[p] * s[m - 1, p] + y[p] * c[m - 1, p]
    for l in range(l_max + 1):
        base = l * l + l
        k0 = prefactors[base]
        for p in range(n):
            out[base, p] = k0 * q[l, 0, p]
        for m in range(1, l + 1):
            k = prefactors[base + m]
            for p in range(n):
                out[base + m, p] = k * q[l, m, p] * c[m, p]
                out[base - m, p] = k * q[l, m, p] * s[m, p]
        if with_gradients:
            _solid_gradients_l(x, y, l, k0, prefactors, q, c, s, grad)


@njit(cache=True, nogil=True)
def _solid_gradients_l(x, y, l, k0, prefactors, q, c, s, grad):
    """Gradients of the degree-l solid harmonics (∂Q from Q_{l-1}, ∂(x+iy)^m = m (x+iy)^(m-1))."""
    n = x.shape[0]
    base = l * l + l
    if l == 0:
        for a in range(3):
            for p in range(n):
                grad[a, 0, p] = 0.0
        return
    for p in range(n):
        # m = 0: ∂Q/∂x = -x Q_{l-1}^1, ∂Q/∂z = l Q_{l-1}^0
        q_up = k0 * q[l - 1, 1, p] if l >= 2 else 0.0
        grad[0, base, p] = -x[p] * q_up
        grad[1, base, p] = -y[p] * q_up
        grad[2, base, p] = k0 * l * q[l - 1, 0, p]
    for m in range(1, l + 1):
        k = prefactors[base + m]
        dz = (l + m) * k
        for p in range(n):
            qv = k * q[l, m, p]
            q_up = k * q[l - 1, m + 1, p] if m + 1 <= l - 1 else 0.0
            q_z = dz * q[l - 1, m, p] if m <= l - 1 else 0.0
            cm, sm, cm1, sm1 = c[m, p], s[m, p], c[m - 1, p], s[m - 1, p]
            grad[0, base + m, p] = -x[p] * q_up * cm + qv * m * cm1
            grad[1, base + m, p] = -y[p] * q_up * cm - qv * m * sm1
            grad[2, base + m, p] = q_z * cm
            grad[0, base - m, p] = -x[p] * q_up * sm + qv * m * sm1
            grad[1, base - m, p] = -y[p] * q_up * sm + qv * m * cm1
            grad[2, base - m, p] = q_z * sm


@njit(cache=True, nogil=True)
def _evaluate(vectors, l_max, with_gradients):
    n = vectors.shape[0]
    n_lm = (l_max + 1) ** 2
    x = np.ascontiguousarray(vectors[:, 0])
    y = np.ascontiguousarray(vectors[:, 1])
    z = np.ascontiguousarray(vectors[:, 2])
    out = np.empty((n_lm, n))
    grad = np.empty((3, n_lm, n) if with_gradients else (3, 0, 0))
    q = np.empty((l_max + 1, l_max + 2, n))
    c = np.empty((l_max + 1, n))
    s = np.empty((l_max + 1, n))
    solid_harmonics_batch(x, y, z, l_max, harmonic_prefactors(l_max), out, grad, q, c, s, with_gradients)
    return out, grad


@njit(cache=True, nogil=True)
def real_solid_harmonics(vectors, l_max):
    """Real solid harmonics of each row of ``vectors``.

    Parameters
    ----------
    vectors : ndarray of shape (n, 3), float64
        Cartesian vectors (Å).
    l_max : int

    Returns
    -------
    ndarray of shape (n, (l_max+1)**2)
        ``S_lm = |r|^l Y_lm(r̂)``, column ``l*l + l + m``.
    """
    out, _ = _evaluate(vectors, l_max, False)
    return out.T.copy()


@njit(cache=True, nogil=True)
def real_solid_harmonics_with_gradients(vectors, l_max):
    """Real solid harmonics and their Cartesian gradients.

    Returns
    -------
    values : ndarray of shape (n, (l_max+1)**2)
    gradients : ndarray of shape (n, 3, (l_max+1)**2)
        ``∂S_lm/∂r_a`` (Å^(l-1)).
    """
    out, grad = _evaluate(vectors, l_max, True)
    return out.T.copy(), np.transpose(grad, (2, 0, 1)).copy()


@njit(cache=True, nogil=True)
def real_spherical_harmonics(vectors, l_max):
    """Real spherical harmonics ``Y_lm`` of the directions of ``vectors``.

    Parameters
    ----------
    vectors : ndarray of shape (n, 3), float64
        Non-zero Cartesian vectors (any length; only the direction counts).
    l_max : int

    Returns
    -------
    ndarray of shape (n, (l_max+1)**2)
        Column ``l*l + l + m``; convention in the module docstring.
    """
    n = vectors.shape[0]
    unit = np.empty((n, 3))
    for i in range(n):
        norm = math.sqrt(vectors[i, 0] ** 2 + vectors[i, 1] ** 2 + vectors[i, 2] ** 2)
        for a in range(3):
            unit[i, a] = vectors[i, a] / norm
    return real_solid_harmonics(unit, l_max)


#: Whether kernelpot's real spherical harmonics carry the Condon–Shortley
#: phase ``(-1)^m`` (see the module docstring). It must agree with the real
#: harmonics of :func:`real_spherical_harmonics` below; a test checks it.
CONDON_SHORTLEY = False


def convention_signs(l: int) -> np.ndarray:
    """Signs ``s_m`` with ``Y_{l m}(kernelpot) = s_m Y_{l m}(standard)``.

    Parameters
    ----------
    l : int
        Degree, >= 0.

    Returns
    -------
    ndarray of shape (2l + 1,), float64
        ``(-1)^m`` for ``m = -l..l`` if :data:`CONDON_SHORTLEY`, else ones.
    """
    m = np.arange(-l, l + 1)
    if CONDON_SHORTLEY:
        return np.where(m % 2 == 0, 1.0, -1.0)
    return np.ones(2 * l + 1)


def complex_to_real_matrix(l: int) -> np.ndarray:
    """Unitary change of basis ``U`` with ``Y_real = U @ Y_complex`` at degree ``l``.

    Parameters
    ----------
    l : int
        Degree, >= 0.

    Returns
    -------
    ndarray of shape (2l + 1, 2l + 1), complex128
        Rows are real components ``m = -l..l``, columns complex ones
        (Condon–Shortley ``Y_l^m``), both in increasing ``m``.
    """
    check_degree(l, "l")
    u = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    u[l, l] = 1.0
    root_half = np.sqrt(0.5)
    for m in range(1, l + 1):
        phase = (-1.0) ** m
        u[l + m, l + m] = phase * root_half
        u[l + m, l - m] = root_half
        u[l - m, l - m] = 1j * root_half
        u[l - m, l + m] = -1j * phase * root_half
    return convention_signs(l)[:, None] * u


def reference_real_spherical_harmonics(vectors, l_max: int) -> np.ndarray:
    """Real spherical harmonics from :func:`scipy.special.sph_harm_y` (slow reference).

    Parameters
    ----------
    vectors : array_like of shape (n, 3)
        Directions (any non-zero length; only the direction matters).
    l_max : int
        Largest degree, >= 0.

    Returns
    -------
    ndarray of shape (n, (l_max + 1)**2), float64
        Column ``l*l + l + m`` holds ``Y_{l m}`` in kernelpot's convention.
    """
    from scipy.special import sph_harm_y

    check_degree(l_max, "l_max")
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    r = np.linalg.norm(vectors, axis=1)
    if np.any(r == 0):
        raise ValueError("`vectors` must be non-zero to define a direction")
    theta = np.arccos(np.clip(vectors[:, 2] / r, -1.0, 1.0))
    phi = np.mod(np.arctan2(vectors[:, 1], vectors[:, 0]), 2 * np.pi)
    out = np.empty((len(vectors), (l_max + 1) ** 2))
    for l in range(l_max + 1):
        m = np.arange(-l, l + 1)
        y_complex = sph_harm_y(l, m[None, :], theta[:, None], phi[:, None])
        out[:, l * l : (l + 1) ** 2] = (y_complex @ complex_to_real_matrix(l).T).real
    return out


def check_degree(value, name: str) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``value`` (the parameter ``name``) is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer; got {value!r}")
    if value < 0:
        raise ValueError(f"`{name}` must be >= 0; got {value}")
