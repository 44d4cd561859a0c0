"""SparseGPR fits whose blocks run on a Dask cluster (2 worker processes on loopback) equal serial fits."""

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from test_scale import _fit, _terms  # noqa: E402
from test_sparse_gpr import _cu, _emt_labels  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local


@pytest.fixture(scope="module")
def cu():
    structures = [_cu(s, a=3.5 + 0.03 * s) for s in range(8)]
    return structures, *_emt_labels(structures)


def _assert_same_model(model, reference, structures):
    p1 = reference.predict(structures, properties=("energy", "forces", "virial"))
    p2 = model.predict(structures, properties=("energy", "forces", "virial"))
    for key in ("energy", "forces", "virial"):
        np.testing.assert_allclose(p2[key], p1[key], rtol=0, atol=1e-10 * np.abs(p1[key]).max())


# The normal equations square the condition number, and summing the blocks in
# another grouping changes the result by ~1e-16 cond(H): the Cholesky case
# uses a better-conditioned problem (cond ~ 1e7) so that 1e-10 is meaningful.
def test_dask_fit_with_a_client_equals_serial_fit(cu, cluster):
    serial = _fit(cu, _terms(), max_block_memory=1e-3)
    with distributed.Client(cluster, set_as_default=False) as client:
        remote = _fit(cu, _terms(), max_block_memory=1e-3, scheduler=client)
    assert remote.memory_estimate_["block"] < remote.memory_estimate_["full_K_NM"]  # several blocks
    _assert_same_model(remote, serial, cu[0])
    np.testing.assert_allclose(remote.alpha_, serial.alpha_, rtol=0, atol=1e-10 * np.abs(serial.alpha_).max())


def test_dask_fit_from_a_scheduler_address_equals_serial_fit(cu, cluster):
    params = {"solver": "cholesky", "jitter": 1.0, "default_sigma": (0.05, 0.3, 0.3), "max_block_memory": 1e-3}
    serial = _fit(cu, _terms(), **params)
    remote = _fit(cu, _terms(), scheduler=cluster.scheduler_address, **params)
    assert remote.scheduler == cluster.scheduler_address  # parameters are not changed by fit
    _assert_same_model(remote, serial, cu[0])
