"""kernelpot.utils.linalg.cholesky: SciPy's factor, on one BLAS thread above the size where threaded OpenBLAS crashes."""

import numpy as np
import pytest
import scipy.linalg as sla
from threadpoolctl import threadpool_info

from kernelpot.utils import linalg


def _spd(n, seed=0):
    X = np.random.default_rng(seed).standard_normal((n, n + 3))
    return X @ X.T + n * np.eye(n)


def _blas_threads():
    return max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


@pytest.mark.parametrize("lower", [True, False])
def test_factor_equals_scipy_and_reconstructs(lower):
    A = _spd(40)
    factor = linalg.cholesky(A, lower=lower)
    np.testing.assert_array_equal(factor, sla.cholesky(A, lower=lower))
    product = factor @ factor.T if lower else factor.T @ factor
    np.testing.assert_allclose(product, A, rtol=1e-12, atol=1e-12 * np.abs(A).max())


def test_large_matrices_are_factored_on_one_blas_thread(monkeypatch):
    """Above THREADED_CHOLESKY_MAX the BLAS runs on one thread during the call, and on its old count after."""
    seen = []
    real = sla.cholesky

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(sla, "cholesky", spy)
    monkeypatch.setattr(linalg, "THREADED_CHOLESKY_MAX", 10)
    before = _blas_threads()
    linalg.cholesky(_spd(8))
    linalg.cholesky(_spd(20))
    assert seen == [before, 1]
    assert _blas_threads() == before


def test_in_place_factor_of_a_fortran_array_and_the_error_on_an_indefinite_matrix():
    A = np.asfortranarray(_spd(30))
    expected = sla.cholesky(A, lower=True)
    factor = linalg.cholesky(A, lower=True, overwrite_a=True)
    assert np.shares_memory(factor, A)
    np.testing.assert_array_equal(factor, expected)
    with pytest.raises(np.linalg.LinAlgError):
        linalg.cholesky(-np.eye(3))
