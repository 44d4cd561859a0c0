"""Numba kernels of the GAP covariances (private): the elementwise part of a dot-product contraction."""

from __future__ import annotations

import math

from numba import njit

__all__ = ["dot_power_weights"]


@njit(cache=True, nogil=True)
def dot_power_weights(c, weights, zeta, values, out):
    """From cosines ``c`` (n, m), clipped to [-1, 1] in place: ``values[i] = Σ_m w_m c_im^ζ`` and
    ``out[i, m] = ζ w_m c_im^(ζ-1)``, in one pass (integer ζ <= 8 by repeated products, else ``pow``)."""
    n, m = c.shape
    integer = zeta == math.floor(zeta) and 1.0 <= zeta <= 8.0
    k = int(zeta) - 1
    for i in range(n):
        row = c[i]
        total = 0.0
        for j in range(m):
            x = min(max(row[j], -1.0), 1.0)
            row[j] = x
            if integer:
                power = 1.0
                for _ in range(k):
                    power *= x
            else:
                power = x ** (zeta - 1.0)
            w = weights[j]
            total += w * power * x
            out[i, j] = zeta * w * power
        values[i] = total
