"""Memory-bounded SparseGPR fits: budgets, streamed sparse selection, block accumulation."""

import numpy as np
import pytest
from test_sparse_gpr import RadialGaussians, _cu, _emt_labels

from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.models.gap.accumulators import NormalAccumulator, QRAccumulator
from kernelpot.models.gap.budget import select_streamed
from kernelpot.models.gap.sparse import select_sparse
from kernelpot.utils.memory import parse_memory, resident_bytes


@pytest.fixture(scope="module")
def cu():
    structures = [_cu(s, a=3.5 + 0.03 * s) for s in range(8)]
    return structures, *_emt_labels(structures)


def _terms(sparse_points=(None, None)):
    return [GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(1.0), delta=1.0, n_sparse=8, sparse_method="uniform",
                    sparse_points=sparse_points[0]),
            GAPTerm(RadialGaussians(), NormalizedDotProductCovariance(4), delta=0.5, n_sparse=20, sparse_method="fps",
                    sparse_points=sparse_points[1])]


def _fit(cu, terms, **kwargs):
    structures, energies, forces, virials = cu
    params = dict(e0=0.0, jitter=1e-3, random_state=0)
    params.update(kwargs)
    return SparseGPR(terms, **params).fit(structures, energies=energies, forces=forces, virials=virials)


def _above_baseline(mib):
    """A max_memory (MiB) that leaves ``mib`` MiB above what this process uses now."""
    return resident_bytes() / 2**20 + mib


BASELINE_MIB = 100.0


@pytest.fixture
def fixed_baseline(monkeypatch):
    """The fit sees BASELINE_MIB in use (also between its blocks) and arrays take no page slack, so budgets
    above it are exact in tests."""
    import kernelpot.models.gap.budget as budget
    import kernelpot.models.gap.model as model

    for module in (model, budget):
        monkeypatch.setattr(module, "resident_bytes", lambda: int(BASELINE_MIB * 2**20))
    monkeypatch.setattr(budget, "PAGE_SLACK", 0)


@pytest.mark.parametrize("value, expected", [
    ("4GB", 4 * 10**9), ("4 GiB", 4 * 2**30), ("512MiB", 512 * 2**20), ("1.5e3 kB", 1500 * 10**3),
    (100, 100 * 2**20), (0.5, 2**19), ("100", 100 * 2**20), ("7b", 7),
])
def test_parse_memory_units(value, expected):
    assert parse_memory(value) == expected


@pytest.mark.parametrize("value, error, match", [
    ("4XB", ValueError, r"`max_memory` must be a size like '4GB', '512MiB' or a number of MiB; got '4XB'"),
    ("-1GB", ValueError, r"`max_memory` must be a size like .* got '-1GB'"),
    ("0GB", ValueError, r"`max_memory` must be > 0; got '0GB'"),
    (0, ValueError, r"`max_memory` must be > 0; got 0"),
    (float("nan"), ValueError, r"`max_memory` must be > 0; got nan"),
    (True, TypeError, r"`max_memory` must be a number of MiB or a string like '4GB'; got True"),
    ([4], TypeError, r"`max_memory` must be a number of MiB or a string like '4GB'; got \[4\]"),
])
def test_parse_memory_rejects(value, error, match):
    with pytest.raises(error, match=match):
        parse_memory(value)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"max_memory": "lots"}, ValueError, r"`max_memory` must be a size like .* got 'lots'"),
    ({"n_jobs": 0}, ValueError, r"`n_jobs` must be None, -1 or an integer >= 1; got 0"),
    ({"n_jobs": True}, ValueError, r"`n_jobs` must be None, -1 or an integer >= 1; got True"),
    ({"n_jobs": 1.5}, ValueError, r"`n_jobs` must be None, -1 or an integer >= 1; got 1.5"),
    ({"scheduler": 5}, TypeError, r"`scheduler` must be None, an address string or a distributed.Client; got int"),
    ({"scheduler": "nowhere"}, ValueError, r"`scheduler` must be an address like 'tcp://HOST:PORT'.*got 'nowhere'"),
])
def test_scale_parameter_validation(cu, kwargs, error, match):
    with pytest.raises(error, match=match):
        _fit(cu, _terms(), **kwargs)


def test_too_small_max_memory_names_the_need(cu, fixed_baseline):
    with pytest.raises(ValueError, match=r"`max_memory` = 100.1 is too small for 28 sparse points: the fit needs "
                                         r"at least 0.10 GiB \(0.10 GiB already in use\)"):
        _fit(cu, _terms(), max_memory=BASELINE_MIB + 0.1)


def test_bounded_fit_predicts_like_the_in_memory_fit(cu, fixed_baseline):
    one = _fit(cu, _terms(), max_block_memory=1e4)
    points = [t.sparse_X for t in one.terms_]
    bounded = _fit(cu, _terms(points), max_memory=BASELINE_MIB + 0.3)
    assert bounded.memory_estimate_["block"] < one.memory_estimate_["block"]
    assert bounded.memory_estimate_["peak"] <= parse_memory(bounded.max_memory)
    estimate = bounded.memory_estimate_
    assert estimate["peak"] == max(estimate["baseline"] + estimate["selection"],
                                   estimate["blocks_baseline"] + estimate["solve"])
    structures = cu[0]
    p1 = one.predict(structures, properties=("energy", "forces", "virial"))
    p2 = bounded.predict(structures, properties=("energy", "forces", "virial"))
    for key in ("energy", "forces", "virial"):
        np.testing.assert_allclose(p2[key], p1[key], rtol=0, atol=1e-8 * np.abs(p1[key]).max())


def test_more_memory_gives_larger_blocks(cu, fixed_baseline):
    small = _fit(cu, _terms(), max_memory=BASELINE_MIB + 0.3)
    large = _fit(cu, _terms(), max_memory=BASELINE_MIB + 2)
    assert small.memory_estimate_["block"] < large.memory_estimate_["block"]
    assert large.memory_estimate_["block"] == large.memory_estimate_["full_K_NM"]  # one block


def _rows(descriptor, structures):
    return np.asarray(descriptor.transform(structures))


def test_streamed_uniform_selection_is_exact(cu):
    structures = cu[0]
    X = _rows(Distance2B(4.0, 1.0), structures)
    rng = np.random.default_rng(0)
    Z, info = select_streamed(Distance2B(4.0, 1.0), structures, 8, "uniform", rng, budget=X.nbytes / 5)
    assert info["streamed"] and info["n_rows"] == len(X) and info["held_bytes"] < X.nbytes
    np.testing.assert_array_equal(Z, select_sparse(X, 8, "uniform", rng))


def test_selection_within_budget_equals_select_sparse(cu):
    structures = cu[0]
    X = _rows(RadialGaussians(), structures)
    Z, info = select_streamed(RadialGaussians(), structures, 10, "fps", np.random.default_rng(3), budget=np.inf)
    assert not info["streamed"]
    np.testing.assert_array_equal(Z, select_sparse(X, 10, "fps", np.random.default_rng(3)))


@pytest.mark.parametrize("method", ["fps", "cur", "random"])
def test_streamed_selection_picks_distinct_training_rows(cu, method):
    structures = cu[0]
    X = _rows(RadialGaussians(), structures)
    Z, info = select_streamed(RadialGaussians(), structures, 10, method, np.random.default_rng(1),
                              budget=X.nbytes / 4)
    assert info["streamed"] and Z.shape == (10, X.shape[1])
    distance = np.abs(Z[:, None, :] - X[None, :, :]).max(-1)
    assert np.all(distance.min(1) == 0)                    # every pick is a training row
    assert len(np.unique(Z, axis=0)) == 10                 # no repeats


def test_streamed_fps_covers_the_rows_about_as_well(cu):
    # Merge-and-reduce FPS is an approximation: its covering radius (largest
    # distance of a row to its nearest pick) stays close to exact FPS.
    structures = cu[0]
    X = _rows(RadialGaussians(), structures)

    def radius(Z):
        return np.sqrt(((X[:, None, :] - Z[None, :, :]) ** 2).sum(-1)).min(1).max()

    exact = select_sparse(X, 10, "fps", np.random.default_rng(0))
    streamed, _ = select_streamed(RadialGaussians(), structures, 10, "fps", np.random.default_rng(0),
                                  budget=X.nbytes / 4)
    assert radius(streamed) <= 2.0 * radius(exact)


def test_fit_selects_within_max_memory(cu, fixed_baseline, monkeypatch):
    import kernelpot.models.gap.model as module

    assert [i["streamed"] for i in _fit(cu, _terms(), max_memory=BASELINE_MIB + 1).selection_info_] == [False] * 2
    # Selection may hold (max_memory - in use) / SELECTION_COPIES of rows: make that a few hundred bytes.
    monkeypatch.setattr(module, "SELECTION_COPIES", 4e3)
    model = _fit(cu, _terms(), max_memory=BASELINE_MIB + 1)
    assert [info["streamed"] for info in model.selection_info_] == [True, True]
    assert [t.n_sparse for t in model.terms_] == [8, 20]


@pytest.mark.parametrize("solver", ["qr", "cholesky"])
def test_merged_partial_factors_equal_sequential_accumulation(solver):
    rng = np.random.default_rng(0)
    m = 6
    kmm = np.cov(rng.normal(size=(m, 20))) + np.eye(m)
    A, b = rng.normal(size=(50, m)), rng.normal(size=50)
    serial = QRAccumulator(np.linalg.cholesky(kmm).T) if solver == "qr" else NormalAccumulator(kmm)
    merged = QRAccumulator(np.linalg.cholesky(kmm).T) if solver == "qr" else NormalAccumulator(kmm)
    for rows in (slice(0, 3), slice(3, 30), slice(30, 50)):
        serial.add(A[rows], b[rows])
        part = QRAccumulator.empty(m) if solver == "qr" else NormalAccumulator.empty(m)
        part.add(A[rows], b[rows])
        merged.merge(part.state())
    R1, a1 = serial.solve()
    R2, a2 = merged.solve()
    exact = np.linalg.solve(kmm + A.T @ A, A.T @ b)
    np.testing.assert_allclose(a1, exact, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a2, exact, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(R2, R1, rtol=0, atol=1e-12 * np.abs(R1).max())
    assert np.all(np.diag(R1) > 0)
    np.testing.assert_allclose(R1.T @ R1, kmm + A.T @ A, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_joblib_processes_give_the_serial_model(cu):
    serial = _fit(cu, _terms(), max_block_memory=1e-3)
    parallel = _fit(cu, _terms(), max_block_memory=1e-3, n_jobs=2)
    structures = cu[0]
    p1 = serial.predict(structures, properties=("energy", "forces"))
    p2 = parallel.predict(structures, properties=("energy", "forces"))
    for key in ("energy", "forces"):
        np.testing.assert_allclose(p2[key], p1[key], rtol=0, atol=1e-10 * np.abs(p1[key]).max())


def test_cli_fit_with_max_memory(tmp_path, cu):
    from ase.io import write

    from kernelpot.cli import build_parser, main
    from kernelpot.potential.serialization import load_model

    structures, energies, forces, _ = cu
    frames = []
    for atoms, e, f in zip(structures, energies, forces):
        atoms = atoms.copy()
        atoms.info["energy"] = e
        atoms.arrays["forces"] = f
        frames.append(atoms)
    write(tmp_path / "train.xyz", frames, format="extxyz")
    args = build_parser().parse_args(["fit", "train.xyz", "--max-memory", "4GB", "--scheduler", "tcp://h:1"])
    assert (args.max_memory, args.scheduler, args.n_jobs) == ("4GB", "tcp://h:1", None)
    gap = ("{distance_2b cutoff=4.0 n_sparse=8 covariance_type=ard_se delta=1.0 theta_uniform=1.0 "
           "sparse_method=uniform}")
    out = tmp_path / "m.kpot"
    code = main(["fit", str(tmp_path / "train.xyz"), "-o", str(out), "--gap", gap, "--e0", "0",
                 "--max-memory", f"{_above_baseline(100):.0f}MiB", "--quiet"])
    assert code == 0 and load_model(out).alpha_.size == 8
    assert main(["fit", str(tmp_path / "train.xyz"), "-o", str(out), "--gap", gap, "--max-memory", "1kB",
                 "--quiet"]) == 2


def test_progress_bars_are_silent_when_disabled(capsys):
    from kernelpot.parallel.progress import progress, progress_bar

    assert list(progress(range(3), desc="steps", enabled=False, delay=0)) == [0, 1, 2]
    bar = progress_bar(3, desc="md", enabled=False, delay=0)
    bar.update(3)
    bar.close()
    assert capsys.readouterr().err == ""
    assert list(progress(range(3), desc="steps", enabled=True, delay=0)) == [0, 1, 2]
    assert "steps" in capsys.readouterr().err


def test_quiet_fit_prints_nothing_and_verbose_fit_prints_the_estimate(cu, capsys):
    _fit(cu, _terms(), max_block_memory=1e-3)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    _fit(cu, _terms(), max_block_memory=1e-3, verbose=True)
    assert "estimated peak memory" in capsys.readouterr().out
