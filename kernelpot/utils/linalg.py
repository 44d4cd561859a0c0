"""Dense linear algebra that stays safe at the sizes kernelpot's fits reach.

OpenBLAS's threaded Cholesky (``dpotrf``) crashes the process (SIGSEGV) on large matrices: measured here with the
OpenBLAS 0.3.30 of SciPy's wheels and the 0.3.31 of NumPy's, on 2 threads, order 15,500 was fine and 16,384, 16,385
and 18,112 crashed, in both libraries; on 1 thread order 18,112 was fine (42 s). A 29,392-point sparse GAP (the NaCl
benchmark with every environment sparse) hit it. :func:`cholesky` therefore factors matrices above
:data:`THREADED_CHOLESKY_MAX` on one BLAS thread: a cost of seconds to minutes next to the hours of a fit of that
size, for a process that does not die.
"""

from __future__ import annotations

import numpy as np

__all__ = ["THREADED_CHOLESKY_MAX", "cholesky"]

#: Largest order factored with the threaded BLAS (half the smallest order seen to crash on 2 threads).
THREADED_CHOLESKY_MAX = 8192


def cholesky(a, *, lower=True, overwrite_a=False, check_finite=False):
    """Cholesky factor of a symmetric positive definite matrix (:func:`scipy.linalg.cholesky`).

    Parameters
    ----------
    a : ndarray of shape (n, n)
    lower : bool, default=True
        Return the lower factor ``L`` (``a = L L^T``); else the upper ``U`` (``a = U^T U``).
    overwrite_a : bool, default=False
        Factor in place when ``a`` is Fortran-ordered (no copy of an ``n × n`` array).
    check_finite : bool, default=False

    Returns
    -------
    ndarray of shape (n, n)
        The factor, with the other triangle zero.

    Raises
    ------
    numpy.linalg.LinAlgError
        When ``a`` is not positive definite.

    Notes
    -----
    Above :data:`THREADED_CHOLESKY_MAX` it runs on one BLAS thread (see the module docstring for why).
    """
    import scipy.linalg as sla  # here: `import kernelpot` and the CLI parser stay light
    from threadpoolctl import threadpool_limits

    if np.shape(a)[0] <= THREADED_CHOLESKY_MAX:
        return sla.cholesky(a, lower=lower, overwrite_a=overwrite_a, check_finite=check_finite)
    with threadpool_limits(limits=1, user_api="blas"):
        return sla.cholesky(a, lower=lower, overwrite_a=overwrite_a, check_finite=check_finite)
