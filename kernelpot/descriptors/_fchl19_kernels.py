"""Numba kernels of the FCHL19 descriptor (see :mod:`kernelpot.descriptors.fchl19`).

Every kernel takes only arrays and scalars. The public class validates the
input, builds the neighbour list and allocates the outputs; these functions
only fill them. ``error_model="numpy"``: divisions are not checked for a zero
divisor (about a quarter of the run time); the class has already rejected
atoms closer than 1e-8 Å, the only way to divide by zero here.

Notation used below, for a center ``i`` and two of its neighbours ``j``,
``k`` (possibly periodic images): ``a = r_ij``, ``b = r_ik``, ``c = r_jk``
(Å), ``theta`` the angle j-i-k, ``s = (a + b) / 2``. A three-body term is a
function of ``(a, b, c)`` only, so its Cartesian gradient follows from its
three partial derivatives by the chain rule through the unit vectors
``u_ij``, ``u_ik``, ``u_jk``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# Lower bound of (r_ij r_ik sin(theta))**2 in Å^4 when dividing by sin(theta):
# the same regularisation as qmllib's FCHL19 gradient, so that gradients of
# (nearly) linear triplets agree with it.
_SIN_REGULARISATION = 1e-10


@njit(cache=True, nogil=True, error_model="numpy")
def _cutoff(r, r_cut):
    """Cosine cutoff 0.5 (cos(pi r / r_cut) + 1) and its derivative (per Å)."""
    x = math.pi / r_cut
    return 0.5 * (math.cos(x * r) + 1.0), -0.5 * x * math.sin(x * r)


@njit(cache=True, nogil=True, error_model="numpy")
def _two_body(r, log_rs2, rs2, eta2, r_cut, decay, values, derivatives, with_derivatives):
    """Log-normal two-body functions of one pair, times cutoff and r**-decay.

    ``values[k]`` receives the function of grid point ``rs2[k]`` at distance
    ``r`` (Å); ``derivatives[k]`` its derivative in r (per Å) when
    ``with_derivatives``.
    """
    sigma2 = math.log(1.0 + eta2 / (r * r))
    sigma = math.sqrt(sigma2)
    log_r = math.log(r)
    mu = log_r - 0.5 * sigma2
    fc, dfc = _cutoff(r, r_cut)
    scale = math.exp(-decay * log_r)
    h = fc * scale
    norm = 1.0 / (sigma * math.sqrt(2.0 * math.pi))
    dsigma2 = -2.0 * eta2 / (r * (r * r + eta2))
    dmu = 1.0 / r - 0.5 * dsigma2
    dh = (dfc - decay * fc / r) * scale
    inv2s2 = -0.5 / sigma2
    for k in range(len(rs2)):
        offset = log_rs2[k] - mu
        g = norm / rs2[k] * math.exp(offset * offset * inv2s2)
        values[k] = g * h
        if with_derivatives:
            # d ln g / dr, with g = exp(-offset^2 / (2 sigma^2)) / sigma
            dlng = (
                offset * dmu / sigma2
                + offset * offset * dsigma2 / (2.0 * sigma2 * sigma2)
                - dsigma2 / (2.0 * sigma2)
            )
            derivatives[k] = g * (dlng * h + dh)


@njit(cache=True, nogil=True, error_model="numpy")
def _gaussian_grid(s, rs3, step, eta3, values):
    """``values[l] = exp(-eta3 (s - rs3[l])**2)`` on the uniform grid ``rs3`` (Å).

    Three exponentials instead of one per grid point: starting from the
    point nearest to ``s``, neighbouring values differ by factors that
    themselves change by the constant exp(-2 eta3 step**2). Every factor is
    <= 1 away from the peak, so nothing overflows, and a factor that
    underflows only does so where the true value is below 1e-300.
    """
    n = len(rs3)
    nearest = int(round((s - rs3[0]) / step)) if n > 1 else 0
    nearest = min(max(nearest, 0), n - 1)
    x = s - rs3[nearest]
    peak = math.exp(-eta3 * x * x)
    values[nearest] = peak
    if n == 1:
        return
    shrink = math.exp(-2.0 * eta3 * step * step)
    up = math.exp(-eta3 * step * (step - 2.0 * x))
    value = peak
    for index in range(nearest + 1, n):
        value *= up
        up *= shrink
        values[index] = value
    down = math.exp(-eta3 * step * (step + 2.0 * x))
    value = peak
    for index in range(nearest - 1, -1, -1):
        value *= down
        down *= shrink
        values[index] = value


@njit(cache=True, nogil=True, error_model="numpy")
def _angular(cos_theta, sin_theta, sin_reg_inv, weights, values, derivatives):
    """Odd Fourier terms of the angle and their derivative in cos(theta).

    ``values[2 m] = w_m cos(o theta)``, ``values[2 m + 1] = w_m sin(o theta)``
    with ``o = 2 m + 1`` and ``w_m = 2 exp(-(zeta o)**2 / 2)``.
    ``derivatives`` are d/d(cos theta), with 1/sin(theta) replaced by the
    regularised ``sin_reg_inv``.
    """
    # The multiple angles come from powers of exp(i theta): no acos, cos or sin.
    c2 = cos_theta * cos_theta - sin_theta * sin_theta
    s2 = 2.0 * cos_theta * sin_theta
    c = cos_theta
    s = sin_theta
    for m in range(len(weights)):
        order = 2 * m + 1
        values[2 * m] = weights[m] * c
        values[2 * m + 1] = weights[m] * s
        # d theta / d cos(theta) = -1 / sin(theta)
        derivatives[2 * m] = weights[m] * order * s * sin_reg_inv
        derivatives[2 * m + 1] = -weights[m] * order * c * sin_reg_inv
        c, s = c * c2 - s * s2, s * c2 + c * s2


@njit(cache=True, nogil=True, error_model="numpy")
def _triangle(vj, vk, a, b):
    """Side r_jk (Å), the three cosines, sin(theta_i) and the regularised 1/sin(theta_i).

    sin(theta_i) comes from the cross product, not from cos(theta_i): it stays
    accurate for (nearly) linear triplets, such as an atom between two images
    of the same neighbour, where it is exactly 0.
    """
    ejk0 = vk[0] - vj[0]
    ejk1 = vk[1] - vj[1]
    ejk2 = vk[2] - vj[2]
    c = math.sqrt(ejk0 * ejk0 + ejk1 * ejk1 + ejk2 * ejk2)
    dot_i = vj[0] * vk[0] + vj[1] * vk[1] + vj[2] * vk[2]
    dot_j = -(vj[0] * ejk0 + vj[1] * ejk1 + vj[2] * ejk2)
    dot_k = vk[0] * ejk0 + vk[1] * ejk1 + vk[2] * ejk2
    x0 = vj[1] * vk[2] - vj[2] * vk[1]
    x1 = vj[2] * vk[0] - vj[0] * vk[2]
    x2 = vj[0] * vk[1] - vj[1] * vk[0]
    cross2 = x0 * x0 + x1 * x1 + x2 * x2
    ab = a * b
    # theta_i = acos(cos_i) in [0, pi], clipped like qmllib
    cos_i = min(1.0, max(-1.0, dot_i / ab))
    sin_i = math.sqrt(cross2) / ab
    cos_j = dot_j / (a * c)
    cos_k = dot_k / (b * c)
    # |v_j x v_k|^2 = (ab)^2 - dot_i^2 = (ab sin)^2
    return c, cos_i, cos_j, cos_k, sin_i, ab / math.sqrt(max(_SIN_REGULARISATION, cross2))


@njit(cache=True, nogil=True, error_model="numpy")
def _three_body_weight(a, b, c, cos_i, cos_j, cos_k, decay, weight):
    """Axilrod-Teller-Muto factor w (1 + 3 cos_i cos_j cos_k) / (a b c)**decay."""
    return weight * (1.0 + 3.0 * cos_i * cos_j * cos_k) * math.exp(-decay * math.log(a * b * c))


@njit(cache=True, nogil=True, error_model="numpy")
def _three_body_weight_derivatives(a, b, c, cos_i, cos_j, cos_k, decay, weight, w, partials):
    """Partial derivatives of the ATM factor ``w`` and of cos_i in a, b, c (per Å).

    Fills ``partials[0:3]`` with dw/d(a, b, c) and ``partials[3:6]`` with
    d cos_i / d(a, b, c).
    """
    # Law of cosines: the cosines are functions of the three sides.
    ci_a = 1.0 / b - cos_i / a
    ci_b = 1.0 / a - cos_i / b
    ci_c = -c / (a * b)
    cj_a = 1.0 / c - cos_j / a
    cj_b = -b / (a * c)
    cj_c = 1.0 / a - cos_j / c
    ck_a = -a / (b * c)
    ck_b = 1.0 / c - cos_k / b
    ck_c = 1.0 / b - cos_k / c
    g = 3.0 * weight * math.exp(-decay * math.log(a * b * c))
    partials[0] = g * (ci_a * cos_j * cos_k + cos_i * cj_a * cos_k + cos_i * cos_j * ck_a) - decay * w / a
    partials[1] = g * (ci_b * cos_j * cos_k + cos_i * cj_b * cos_k + cos_i * cos_j * ck_b) - decay * w / b
    partials[2] = g * (ci_c * cos_j * cos_k + cos_i * cj_c * cos_k + cos_i * cos_j * ck_c) - decay * w / c
    partials[3] = ci_a
    partials[4] = ci_b
    partials[5] = ci_c


@njit(cache=True, nogil=True, error_model="numpy")
def _three_body_pairs(start, stop, distances, r_cut, selected, cutoffs, cutoff_derivatives):
    """Pairs of one center within the three-body cutoff; returns their count."""
    count = 0
    for p in range(start, stop):
        if distances[p] <= r_cut:
            selected[count] = p
            cutoffs[count], cutoff_derivatives[count] = _cutoff(distances[p], r_cut)
            count += 1
    return count


@njit(cache=True, nogil=True, error_model="numpy")
def _triplet_value(vj, vk, a, b, log_ab, decay, weight):
    """cos(theta_i), sin(theta_i) and the ATM factor of one triplet, values only.

    The lean form of :func:`_triangle` and :func:`_three_body_weight`:
    with v_j.(v_j - v_k) = a^2 - dot and v_k.(v_k - v_j) = b^2 - dot,
    cos_i cos_j cos_k = dot (a^2 - dot)(b^2 - dot) / (a b c)^2, so r_jk is
    needed only squared, and log(a b) comes precomputed per pair.
    """
    ejk0 = vk[0] - vj[0]
    ejk1 = vk[1] - vj[1]
    ejk2 = vk[2] - vj[2]
    c2 = ejk0 * ejk0 + ejk1 * ejk1 + ejk2 * ejk2
    dot = vj[0] * vk[0] + vj[1] * vk[1] + vj[2] * vk[2]
    x0 = vj[1] * vk[2] - vj[2] * vk[1]
    x1 = vj[2] * vk[0] - vj[0] * vk[2]
    x2 = vj[0] * vk[1] - vj[1] * vk[0]
    ab = a * b
    inv_ab = 1.0 / ab
    cos_i = min(1.0, max(-1.0, dot * inv_ab))
    sin_i = math.sqrt(x0 * x0 + x1 * x1 + x2 * x2) * inv_ab
    product = dot * (a * a - dot) * (b * b - dot) / (ab * ab * c2)
    w = weight * (1.0 + 3.0 * product) * math.exp(-decay * (log_ab + 0.5 * math.log(c2)))
    return cos_i, sin_i, w


@njit(cache=True, nogil=True, error_model="numpy")
def _center_features(
    i, pair_offsets, neighbour, vectors, distances, species, block3,
    log_rs2, rs2, rs3, step3, angular_weights, eta2, eta3, rcut, acut,
    decay2, decay3, weight3, row,
):
    """Add the FCHL19 features of center ``i`` to ``row`` (zeroed by the caller)."""
    start, stop = pair_offsets[i], pair_offsets[i + 1]
    n_rs2, n_rs3, n_angular = len(rs2), len(rs3), 2 * len(angular_weights)
    g2 = np.empty(n_rs2)
    for p in range(start, stop):
        if distances[p] <= rcut:
            _two_body(distances[p], log_rs2, rs2, eta2, rcut, decay2, g2, g2, False)
            column = species[neighbour[p]] * n_rs2
            for k in range(n_rs2):
                row[column + k] += g2[k]
    selected = np.empty(stop - start, dtype=np.int64)
    fc = np.empty(stop - start)
    dfc = np.empty(stop - start)
    count = _three_body_pairs(start, stop, distances, acut, selected, fc, dfc)
    log_r = np.empty(count)
    for jj in range(count):
        log_r[jj] = math.log(distances[selected[jj]])
    radial = np.empty(n_rs3)
    angular = np.empty(n_angular)
    scratch = np.empty(n_angular)
    scaled = np.empty(n_angular)
    for jj in range(count):
        pj = selected[jj]
        a = distances[pj]
        for kk in range(jj + 1, count):
            pk = selected[kk]
            b = distances[pk]
            cos_i, sin_i, w = _triplet_value(
                vectors[pj], vectors[pk], a, b, log_r[jj] + log_r[kk], decay3, weight3
            )
            _angular(cos_i, sin_i, 0.0, angular_weights, angular, scratch)
            _gaussian_grid(0.5 * (a + b), rs3, step3, eta3, radial)
            h = w * fc[jj] * fc[kk]
            for o in range(n_angular):
                scaled[o] = angular[o] * h
            column = block3[species[neighbour[pj]], species[neighbour[pk]]]
            for l in range(n_rs3):
                for o in range(n_angular):
                    row[column + o] += scaled[o] * radial[l]
                column += n_angular


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def fchl19_features(
    pair_offsets, neighbour, vectors, distances, species, block3,
    log_rs2, rs2, rs3, step3, angular_weights, eta2, eta3, rcut, acut,
    decay2, decay3, weight3, out,
):
    """Fill ``out`` (n_atoms, n_features), zeroed, with the FCHL19 features of every atom."""
    for i in prange(len(pair_offsets) - 1):
        _center_features(
            i, pair_offsets, neighbour, vectors, distances, species, block3,
            log_rs2, rs2, rs3, step3, angular_weights, eta2, eta3, rcut, acut,
            decay2, decay3, weight3, out[i],
        )


@njit(cache=True, nogil=True, error_model="numpy")
def _add_triplet_gradients(
    grad, row_j, row_k, column, radial, offsets, alpha_a, alpha_b, alpha_c, beta, u_j, u_k, u_jk
):
    """Scatter the Cartesian gradient of one triplet's block into rows j and k.

    With T = A(theta) G_l(s) H(a, b, c): dT/da = G_l (alpha_a + beta (s - R_l)),
    likewise for b, and dT/dc = G_l alpha_c, where ``offsets[l] = s - R_l``.
    """
    n_angular = len(beta)
    for l in range(len(radial)):
        g = radial[l]
        gs = radial[l] * offsets[l]
        for o in range(n_angular):
            t_a = g * alpha_a[o] + gs * beta[o]
            t_b = g * alpha_b[o] + gs * beta[o]
            t_c = g * alpha_c[o]
            for x in range(3):
                grad[row_j, x, column] += t_a * u_j[x] - t_c * u_jk[x]
                grad[row_k, x, column] += t_b * u_k[x] + t_c * u_jk[x]
            column += 1


@njit(cache=True, nogil=True, error_model="numpy")
def _center_two_body_gradients(
    i, pair_offsets, neighbour, vectors, distances, species, log_rs2, rs2, eta2, rcut, decay2,
    row, grad,
):
    """Two-body features of center ``i`` and their gradients (rows after the self row)."""
    start, stop = pair_offsets[i], pair_offsets[i + 1]
    n_rs2 = len(rs2)
    g2 = np.empty(n_rs2)
    d2 = np.empty(n_rs2)
    for p in range(start, stop):
        r = distances[p]
        if r <= rcut:
            _two_body(r, log_rs2, rs2, eta2, rcut, decay2, g2, d2, True)
            column = species[neighbour[p]] * n_rs2
            target = p + i + 1
            for k in range(n_rs2):
                row[column + k] += g2[k]
            for x in range(3):
                u = vectors[p, x] / r
                for k in range(n_rs2):
                    grad[target, x, column + k] += d2[k] * u


@njit(cache=True, nogil=True, error_model="numpy")
def _center_three_body_gradients(
    i, pair_offsets, neighbour, vectors, distances, species, block3,
    rs3, step3, angular_weights, eta3, acut, decay3, weight3, row, grad,
):
    """Three-body features of center ``i`` and their gradients (rows after the self row)."""
    start, stop = pair_offsets[i], pair_offsets[i + 1]
    n_rs3, n_angular = len(rs3), 2 * len(angular_weights)
    selected = np.empty(stop - start, dtype=np.int64)
    fc = np.empty(stop - start)
    dfc = np.empty(stop - start)
    count = _three_body_pairs(start, stop, distances, acut, selected, fc, dfc)
    radial = np.empty(n_rs3)
    offsets = np.empty(n_rs3)
    angular = np.empty(n_angular)
    d_angular = np.empty(n_angular)
    alpha_a = np.empty(n_angular)
    alpha_b = np.empty(n_angular)
    alpha_c = np.empty(n_angular)
    beta = np.empty(n_angular)
    partials = np.empty(6)
    u_j = np.empty(3)
    u_k = np.empty(3)
    u_jk = np.empty(3)
    for jj in range(count):
        pj = selected[jj]
        a = distances[pj]
        for kk in range(jj + 1, count):
            pk = selected[kk]
            b = distances[pk]
            c, cos_i, cos_j, cos_k, sin_i, sin_inv = _triangle(vectors[pj], vectors[pk], a, b)
            w = _three_body_weight(a, b, c, cos_i, cos_j, cos_k, decay3, weight3)
            _three_body_weight_derivatives(a, b, c, cos_i, cos_j, cos_k, decay3, weight3, w, partials)
            _angular(cos_i, sin_i, sin_inv, angular_weights, angular, d_angular)
            s = 0.5 * (a + b)
            _gaussian_grid(s, rs3, step3, eta3, radial)
            for l in range(n_rs3):
                offsets[l] = s - rs3[l]
            f = fc[jj] * fc[kk]
            h = w * f
            h_a = partials[0] * f + w * dfc[jj] * fc[kk]
            h_b = partials[1] * f + w * fc[jj] * dfc[kk]
            h_c = partials[2] * f
            for o in range(n_angular):
                alpha_a[o] = d_angular[o] * partials[3] * h + angular[o] * h_a
                alpha_b[o] = d_angular[o] * partials[4] * h + angular[o] * h_b
                alpha_c[o] = d_angular[o] * partials[5] * h + angular[o] * h_c
                beta[o] = -eta3 * angular[o] * h
            for x in range(3):
                u_j[x] = vectors[pj, x] / a
                u_k[x] = vectors[pk, x] / b
                u_jk[x] = (vectors[pk, x] - vectors[pj, x]) / c
            column = block3[species[neighbour[pj]], species[neighbour[pk]]]
            start_column = column
            for l in range(n_rs3):
                for o in range(n_angular):
                    row[column] += angular[o] * h * radial[l]
                    column += 1
            _add_triplet_gradients(
                grad, pj + i + 1, pk + i + 1, start_column, radial, offsets,
                alpha_a, alpha_b, alpha_c, beta, u_j, u_k, u_jk,
            )


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def fchl19_features_and_gradients(
    pair_offsets, neighbour, vectors, distances, species, block3,
    log_rs2, rs2, rs3, step3, angular_weights, eta2, eta3, rcut, acut,
    decay2, decay3, weight3, out, grad,
):
    """Fill ``out`` (n_atoms, n_features) and ``grad`` (n_pairs + n_atoms, 3, n_features), zeroed.

    Rows of ``grad`` for center ``i`` start at ``pair_offsets[i] + i``: first
    the self row (total derivative in the center's own position), then one
    row per neighbour-list pair of ``i``, in pair order.
    """
    for i in prange(len(pair_offsets) - 1):
        _center_two_body_gradients(
            i, pair_offsets, neighbour, vectors, distances, species, log_rs2, rs2, eta2, rcut,
            decay2, out[i], grad,
        )
        _center_three_body_gradients(
            i, pair_offsets, neighbour, vectors, distances, species, block3,
            rs3, step3, angular_weights, eta3, acut, decay3, weight3, out[i], grad,
        )
        # Translation invariance: the center's own derivative is minus the sum
        # of all the others (periodic images of i included among the others).
        first = pair_offsets[i] + i
        last = pair_offsets[i + 1] + i + 1
        for target in range(first + 1, last):
            for x in range(3):
                for k in range(grad.shape[2]):
                    grad[first, x, k] -= grad[target, x, k]
