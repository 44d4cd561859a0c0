"""Tests of kernelpot.selection: FPS and CUR against skmatter 0.4.1 and by construction."""

import doctest
import warnings

import numpy as np
import pytest
from conftest import rmd17
from sklearn.base import clone

import kernelpot.selection.cur as cur_module
import kernelpot.selection.fps as fps_module
from kernelpot.selection._base import SelectionWarning
from kernelpot.selection.cur import CUR
from kernelpot.selection.fps import FPS

SELECTORS = (FPS, CUR)


def _random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _skmatter(name, selection_type):
    if selection_type == "sample":
        module = pytest.importorskip("skmatter.sample_selection")
    else:
        module = pytest.importorskip("skmatter.feature_selection")
    return getattr(module, name)


def _skmatter_idx(name, selection_type, X, **params):
    peer = _skmatter(name, selection_type)(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peer.fit(X).selected_idx_, peer


@pytest.fixture(scope="module")
def soap_aspirin():
    """Per-atom SOAP features (630, 180) of 30 rMD17 aspirin frames, via dscribe."""
    pytest.importorskip("dscribe")
    from ase import Atoms
    from dscribe.descriptors import SOAP

    data = rmd17("rmd17_aspirin_train_01")
    frames = [Atoms(numbers=data["nuclear_charges"], positions=r)
              for r in data["coords"][::33][:30]]
    soap = SOAP(species=[1, 6, 8], r_cut=4.0, n_max=3, l_max=3, periodic=False)
    X = np.asarray(soap.create(frames, n_jobs=1)).reshape(-1, soap.get_number_of_features())
    return X


# ------------------------------------------------------------ parity with skmatter
@pytest.mark.peers
@pytest.mark.parametrize("shape", [(300, 40), (40, 300), (90, 90)])
@pytest.mark.parametrize("selection_type", ["sample", "feature"])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_cur_matches_skmatter_random(shape, selection_type, k):
    X = _random(shape, seed=shape[0] + k)
    n = 30
    ours = CUR(n, selection_type=selection_type, k=k).fit(X).selected_idx_
    ref, _ = _skmatter_idx("CUR", selection_type, X, n_to_select=n, k=k)
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.peers
@pytest.mark.parametrize("selection_type", ["sample", "feature"])
def test_cur_lanczos_path_matches_skmatter(selection_type):
    # eigenproblems wider than cur._DENSE_EIGH_MAX use warm-started Lanczos
    X = _random((420, 300), seed=21)
    assert min(X.shape) > cur_module._DENSE_EIGH_MAX
    ours = CUR(25, selection_type=selection_type, k=2).fit(X).selected_idx_
    ref, _ = _skmatter_idx("CUR", selection_type, X, n_to_select=25, k=2)
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.peers
@pytest.mark.parametrize("recompute_every", [0, 3])
def test_cur_recompute_every_matches_skmatter(recompute_every):
    X = _random((200, 30), seed=3)
    ours = CUR(20, recompute_every=recompute_every).fit(X).selected_idx_
    ref, _ = _skmatter_idx("CUR", "sample", X, n_to_select=20,
                           recompute_every=recompute_every)
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.peers
@pytest.mark.parametrize("selection_type", ["sample", "feature"])
@pytest.mark.parametrize("initialize", [0, 17, [5, 3, 11]])
def test_fps_matches_skmatter_random(selection_type, initialize):
    X = _random((250, 60), seed=1)
    ours = FPS(40, selection_type=selection_type, initialize=initialize).fit(X)
    ref, peer = _skmatter_idx("FPS", selection_type, X, n_to_select=40,
                              initialize=initialize)
    np.testing.assert_array_equal(ours.selected_idx_, ref)
    # skmatter stores squared distances at selection
    np.testing.assert_allclose(ours.hausdorff_at_select_ ** 2, peer.get_select_distance(),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.peers
def test_fps_pruned_path_matches_skmatter():
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((30, 8)) * 10.0
    X = centres[rng.integers(0, 30, 3000)] + rng.standard_normal((3000, 8))
    ours = FPS(100).fit(X)
    assert not ours._use_gram
    ref, _ = _skmatter_idx("FPS", "sample", X, n_to_select=100)
    np.testing.assert_array_equal(ours.selected_idx_, ref)


@pytest.mark.peers
def test_fps_random_initialize_matches_skmatter():
    X = _random((120, 10), seed=2)
    ours = FPS(15, initialize="random", random_state=7).fit(X).selected_idx_
    ref, _ = _skmatter_idx("FPS", "sample", X, n_to_select=15, initialize="random",
                           random_state=7)
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.peers
@pytest.mark.parametrize("selection_type,n", [("sample", 60), ("feature", 40)])
@pytest.mark.parametrize("k", [1, 2])
def test_cur_matches_skmatter_soap(soap_aspirin, selection_type, n, k):
    ours = CUR(n, selection_type=selection_type, k=k).fit(soap_aspirin).selected_idx_
    ref, _ = _skmatter_idx("CUR", selection_type, soap_aspirin, n_to_select=n, k=k)
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.peers
@pytest.mark.parametrize("selection_type,n", [("sample", 70), ("sample", 150),
                                              ("feature", 60)])
def test_fps_matches_skmatter_soap(soap_aspirin, selection_type, n):
    # sample 70 of 630 rows: pruned path; 150 rows and features: Gram path
    ours = FPS(n, selection_type=selection_type).fit(soap_aspirin).selected_idx_
    ref, _ = _skmatter_idx("FPS", selection_type, soap_aspirin, n_to_select=n)
    np.testing.assert_array_equal(ours, ref)


# ---------------------------------------------------------------- by construction
def test_fps_hausdorff_is_distance_to_selection():
    X = _random((200, 5), seed=4)
    fps = FPS(25).fit(X)
    d = np.linalg.norm(X[:, None, :] - X[None, fps.selected_idx_, :], axis=-1)
    np.testing.assert_allclose(fps.hausdorff_, d.min(axis=1), atol=1e-7)
    assert fps.hausdorff_at_select_[0] == np.inf
    # each pick was the farthest point when picked: distances never increase
    assert np.all(np.diff(fps.hausdorff_at_select_[1:]) <= 1e-12)
    assert fps.hausdorff_at_select_[-1] >= fps.hausdorff_.max()


def test_fps_pruning_agrees_with_brute_force():
    # clustered data: the triangle-inequality pruning skips most rows
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((30, 8)) * 10.0
    X = centres[rng.integers(0, 30, 3000)] + rng.standard_normal((3000, 8))
    fps = FPS(120).fit(X)
    assert fps._n_distance_evaluations < 0.5 * 120 * 3000
    d2 = np.full(len(X), np.inf)
    brute = [0]
    for _ in range(119):
        d2 = np.minimum(d2, ((X - X[brute[-1]]) ** 2).sum(axis=1))
        d2[brute] = -np.inf
        brute.append(int(np.argmax(d2)))
    np.testing.assert_array_equal(fps.selected_idx_, brute)


def _clustered(n_rows, seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, 8)) * 10.0
    return centres[rng.integers(0, 30, n_rows)] + rng.standard_normal((n_rows, 8))


@pytest.mark.parametrize("data", ["noise", "clustered", "ties"])
@pytest.mark.parametrize("initialize", [0, [7, 3, 900]])
def test_fps_lazy_search_equals_eager(monkeypatch, data, initialize):
    # the lazy search only skips distances; picks, distances at selection and the
    # final distances must be those of the eager search that evaluates them all
    if data == "noise":
        X = _random((3000, 60), seed=20)  # final distances by one matrix product
    else:
        X = _clustered(3000, seed=21)  # final distances with the triangle inequality
    if data == "ties":
        X = np.repeat(np.round(X[:1000], 0), 3, axis=0)  # exact ties and duplicates
    lazy = FPS(150, initialize=initialize).fit(X)
    assert lazy._lazy
    monkeypatch.setattr(fps_module, "_LAZY_MAX_PICKS", 0)
    eager = FPS(150, initialize=initialize).fit(X)
    assert not eager._lazy and not eager._use_gram
    np.testing.assert_array_equal(lazy.selected_idx_, eager.selected_idx_)
    np.testing.assert_array_equal(lazy.hausdorff_at_select_, eager.hausdorff_at_select_)
    np.testing.assert_allclose(lazy.hausdorff_, eager.hausdorff_, rtol=0, atol=1e-6)
    assert lazy._n_distance_evaluations < eager._n_distance_evaluations or data == "noise"


def test_fps_lazy_refit_on_other_data_uses_fresh_buffers():
    fps = FPS(40).fit(_random((500, 30), seed=22))
    X = _random((400, 12), seed=23)
    np.testing.assert_array_equal(fps.fit(X).selected_idx_, FPS(40).fit(X).selected_idx_)
    d = np.linalg.norm(X[:, None, :] - X[None, fps.selected_idx_, :], axis=-1)
    np.testing.assert_allclose(fps.hausdorff_, d.min(axis=1), atol=1e-7)


@pytest.mark.parametrize("selection_type", ["sample", "feature"])
def test_fps_precomputed_kernel_equals_linear_features(selection_type):
    X = _random((150, 70), seed=6)
    K = X @ X.T if selection_type == "sample" else X.T @ X
    on_features = FPS(30, selection_type=selection_type).fit(X)
    on_kernel = FPS(30, kernel="precomputed").fit(K)
    np.testing.assert_array_equal(on_kernel.selected_idx_, on_features.selected_idx_)
    np.testing.assert_allclose(on_kernel.hausdorff_, on_features.hausdorff_, atol=1e-6)


@pytest.mark.parametrize("shape", [(150, 70), (60, 200)])
def test_cur_precomputed_kernel_equals_linear_features(shape):
    X = _random(shape, seed=7)
    on_features = CUR(25, k=2).fit(X).selected_idx_
    on_kernel = CUR(25, k=2, kernel="precomputed").fit(X @ X.T).selected_idx_
    np.testing.assert_array_equal(on_kernel, on_features)


@pytest.mark.parametrize("shape", [(120, 30), (30, 120)])
@pytest.mark.parametrize("k", [1, 3])
def test_cur_leverage_scores_are_top_singular_vectors(shape, k):
    X = _random(shape, seed=8)
    cur = CUR(5, k=k).fit(X)
    U = np.linalg.svd(X, full_matrices=False)[0][:, :k]
    np.testing.assert_allclose(cur.leverage_, (U ** 2).sum(axis=1), atol=1e-12)
    assert cur.leverage_at_select_[0] == pytest.approx(cur.leverage_.max())
    assert cur.leverage_.sum() == pytest.approx(k)


def test_cur_selected_residual_rows_are_orthogonalised():
    # after selecting rows S, every later pick maximises the leverage of
    # X projected orthogonally to span(X[S]) (brute force, k=1)
    X = _random((80, 12), seed=9)
    sel = CUR(6).fit(X).selected_idx_
    for m in range(1, 6):
        B = X[sel[:m]]
        P = np.eye(12) - B.T @ np.linalg.pinv(B @ B.T) @ B
        u = np.linalg.svd(X @ P, full_matrices=False)[0][:, 0]
        scores = u ** 2
        scores[sel[:m]] = -np.inf
        assert sel[m] == np.argmax(scores)


@pytest.mark.parametrize("selector", [FPS(), CUR(), CUR(k=2), CUR(recompute_every=2)],
                         ids=["FPS", "CUR", "CUR-k2", "CUR-r2"])
@pytest.mark.parametrize("shape", [(200, 20), (20, 200)])
def test_warm_start_continues_same_sequence(selector, shape):
    X = _random(shape, seed=10)
    straight = clone(selector).set_params(n_to_select=15).fit(X).selected_idx_
    warm = clone(selector).set_params(n_to_select=6, warm_start=True).fit(X)
    warm.set_params(n_to_select=11).fit(X)
    warm.set_params(n_to_select=15).fit(X)
    np.testing.assert_array_equal(warm.selected_idx_, straight)


@pytest.mark.parametrize("selection_type", ["sample", "feature"])
def test_transform(selection_type):
    X = _random((30, 20), seed=11)
    for cls in SELECTORS:
        sel = cls(5, selection_type=selection_type).fit(X)
        if selection_type == "feature":
            np.testing.assert_array_equal(sel.transform(X), X[:, np.sort(sel.selected_idx_)])
            np.testing.assert_array_equal(sel.get_support(indices=True),
                                          np.sort(sel.selected_idx_))
        else:
            np.testing.assert_array_equal(sel.transform(X), X[sel.selected_idx_])


def test_inputs_are_not_mutated():
    X = _random((40, 10), seed=12)
    K = X @ X.T
    X0, K0 = X.copy(), K.copy()
    for cls in SELECTORS:
        cls(8).fit(X)
        cls(8, selection_type="feature").fit(X)
        cls(8, kernel="precomputed").fit(K)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(K, K0)


# ----------------------------------------------------------------- rank deficiency
@pytest.mark.parametrize("shape", [(60, 20), (20, 60)])
@pytest.mark.parametrize("selection_type", ["sample", "feature"])
def test_cur_rank_deficient_stops_with_warning(shape, selection_type):
    rng = np.random.default_rng(13)
    X = rng.standard_normal((shape[0], 5)) @ rng.standard_normal((5, shape[1]))
    with pytest.warns(SelectionWarning, match=r"CUR stopped after 5 of 9 selections"):
        cur = CUR(9, selection_type=selection_type).fit(X)
    assert cur.n_selected_ == 5
    assert len(set(cur.selected_idx_)) == 5
    ref, _ = _skmatter_idx("CUR", selection_type, X, n_to_select=5)
    np.testing.assert_array_equal(cur.selected_idx_, ref)


def test_cur_full_rank_has_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert CUR(20).fit(_random((40, 20), seed=14)).n_selected_ == 20


def test_fps_duplicate_points_stop_with_warning():
    X = np.repeat(_random((4, 3), seed=15), 5, axis=0)
    with pytest.warns(SelectionWarning, match=r"FPS stopped after 4 of 6 .*coincide"):
        fps = FPS(6).fit(X)
    assert fps.n_selected_ == 4
    assert len(set(X[fps.selected_idx_, 0])) == 4


def test_warm_start_after_exhaustion_warns_again():
    rng = np.random.default_rng(16)
    X = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 10))
    with pytest.warns(SelectionWarning):
        cur = CUR(4, warm_start=True).fit(X)
    with pytest.warns(SelectionWarning, match="stopped after 3 of 6"):
        cur.set_params(n_to_select=6).fit(X)
    assert cur.n_selected_ == 3


# --------------------------------------------------------------------- validation
@pytest.mark.parametrize("cls", SELECTORS)
@pytest.mark.parametrize("n,error,match", [
    (31, ValueError, r"`n_to_select` must be in \[1, 30\].*got 31"),
    (0, ValueError, r"`n_to_select` must be in \[1, 30\].*got 0"),
    (-2, ValueError, r"`n_to_select` must be in \[1, 30\].*got -2"),
    (1.5, ValueError, r"fraction and must be in \(0, 1\]; got 1.5"),
    (0.0, ValueError, r"fraction and must be in \(0, 1\]; got 0.0"),
    ("10", TypeError, r"`n_to_select` must be an int, a float or None; got '10'"),
    (True, TypeError, r"`n_to_select` must be an int, a float or None; got True"),
])
def test_bad_n_to_select(cls, n, error, match):
    with pytest.raises(error, match=match):
        cls(n).fit(_random((30, 8)))


@pytest.mark.parametrize("cls", SELECTORS)
def test_n_to_select_counts_features_for_feature_selection(cls):
    with pytest.raises(ValueError, match=r"in \[1, 8\] \(the number of features\); got 9"):
        cls(9, selection_type="feature").fit(_random((30, 8)))


@pytest.mark.parametrize("cls", SELECTORS)
def test_n_to_select_fraction_and_default(cls):
    X = _random((30, 40))
    assert cls(0.2).fit(X).n_selected_ == 6
    assert cls().fit(X).n_selected_ == 15


@pytest.mark.parametrize("cls", SELECTORS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_X(cls, bad):
    X = _random((30, 8))
    X[4, 2] = bad
    with pytest.raises(ValueError, match=r"`X` must be finite.*at X\[4, 2\]"):
        cls(3).fit(X)


@pytest.mark.parametrize("cls", SELECTORS)
def test_unknown_selection_type(cls):
    with pytest.raises(ValueError, match=r"`selection_type` must be one of .*got 'rows'"):
        cls(3, selection_type="rows").fit(_random((30, 8)))


@pytest.mark.parametrize("cls", SELECTORS)
def test_unknown_kernel(cls):
    with pytest.raises(ValueError, match=r"`kernel` must be one of .*got 'rbf'"):
        cls(3, kernel="rbf").fit(_random((30, 8)))


@pytest.mark.parametrize("cls", SELECTORS)
def test_X_must_be_2d(cls):
    with pytest.raises(ValueError, match=r"`X` must be a 2-D array; got 1 dimension"):
        cls(3).fit(np.ones(10))


@pytest.mark.parametrize("cls", SELECTORS)
def test_X_too_small(cls):
    with pytest.raises(ValueError, match=r"at least 2 samples and 2 features; got shape"):
        cls(1).fit(np.ones((10, 1)))


@pytest.mark.parametrize("cls", SELECTORS)
def test_X_not_numeric(cls):
    with pytest.raises(TypeError, match=r"`X` must be a numeric array; got dtype"):
        cls(1).fit(np.array([["a", "b"], ["c", "d"]]))


@pytest.mark.parametrize("cls", SELECTORS)
def test_precomputed_kernel_must_be_square(cls):
    with pytest.raises(ValueError, match=r"must be a square kernel matrix; got shape"):
        cls(3, kernel="precomputed").fit(_random((30, 8)))


@pytest.mark.parametrize("cls", SELECTORS)
def test_precomputed_kernel_must_be_symmetric(cls):
    with pytest.raises(ValueError, match=r"must be symmetric; max \|X - X.T\|"):
        cls(3, kernel="precomputed").fit(_random((10, 10)))


@pytest.mark.parametrize("cls", SELECTORS)
def test_warm_start_must_be_bool(cls):
    with pytest.raises(TypeError, match=r"`warm_start` must be a bool; got 'yes'"):
        cls(3, warm_start="yes").fit(_random((30, 8)))


@pytest.mark.parametrize("cls", SELECTORS)
def test_warm_start_needs_same_X(cls):
    sel = cls(3, warm_start=True).fit(_random((30, 8)))
    with pytest.raises(ValueError, match=r"needs the same `X` as the previous fit"):
        sel.set_params(n_to_select=5).fit(_random((30, 8), seed=1))


@pytest.mark.parametrize("cls,param", [(FPS, {"initialize": 3}), (CUR, {"k": 2}),
                                       (CUR, {"selection_type": "feature"})])
def test_warm_start_needs_same_parameters(cls, param):
    X = _random((30, 8))
    sel = cls(3, warm_start=True).fit(X)
    with pytest.raises(ValueError, match=r"parameters changed since the previous fit: "
                                         rf"\['{list(param)[0]}'\]"):
        sel.set_params(n_to_select=5, **param).fit(X)


@pytest.mark.parametrize("cls", SELECTORS)
def test_warm_start_cannot_shrink(cls):
    X = _random((30, 8))
    sel = cls(5, warm_start=True).fit(X)
    with pytest.raises(ValueError, match=r"must be >= the 5 items already selected; got 3"):
        sel.set_params(n_to_select=3).fit(X)


@pytest.mark.parametrize("cls", SELECTORS)
def test_transform_checks_shape(cls):
    X = _random((30, 8))
    with pytest.raises(ValueError, match=r"`X` must have 30 rows \(as in fit\); got 29"):
        cls(3).fit(X).transform(X[:29])
    with pytest.raises(ValueError, match=r"`X` must have 8 columns \(as in fit\); got 7"):
        cls(3, selection_type="feature").fit(X).transform(X[:, :7])


@pytest.mark.parametrize("k,error,match", [
    (0, ValueError, r"`k` must be in \[1, 7\].*got 0"),
    (8, ValueError, r"`k` must be in \[1, 7\].*got 8"),
    (1.0, TypeError, r"`k` must be an int; got 1.0"),
])
def test_cur_bad_k(k, error, match):
    with pytest.raises(error, match=match):
        CUR(3, k=k).fit(_random((30, 8)))


@pytest.mark.parametrize("value", [-1, 1.5])
def test_cur_bad_recompute_every(value):
    with pytest.raises(ValueError, match=r"`recompute_every` must be an int >= 0; got"):
        CUR(3, recompute_every=value).fit(_random((30, 8)))


@pytest.mark.parametrize("value", [-1e-3, 1.0, np.nan, "small"])
def test_cur_bad_tolerance(value):
    with pytest.raises(ValueError, match=r"`tolerance` must be a float in \[0, 1\); got"):
        CUR(3, tolerance=value).fit(_random((30, 8)))


@pytest.mark.parametrize("init,match", [
    ("first", r"`initialize` must be an int, 'random' or a list of ints; got 'first'"),
    (1.5, r"`initialize` must be an int, 'random' or a non-empty list of ints; got 1.5"),
    ([], r"non-empty list of ints; got \[\]"),
    (30, r"`initialize` indices must be in \[0, 30\); got 30"),
    ([1, -1], r"`initialize` indices must be in \[0, 30\); got -1"),
    ([2, 2], r"`initialize` must not repeat an index; got \[2, 2\]"),
    ([1, 2, 3, 4], r"`initialize` has 4 indices, more than n_to_select=3"),
])
def test_fps_bad_initialize(init, match):
    with pytest.raises(ValueError, match=match):
        FPS(3, initialize=init).fit(_random((30, 8)))


def test_parameters_are_not_changed_by_fit():
    for sel in (FPS(5, initialize=[1, 2]), CUR(5, k=2)):
        before = sel.get_params()
        sel.fit(_random((30, 8)))
        assert sel.get_params() == before


@pytest.mark.parametrize("module", [fps_module, cur_module])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_parallel_kernels_equal_serial_ones():
    # The threaded variants only run on large inputs; check them directly. They agree to round-off, not
    # bitwise: inside prange Numba lowers np.dot to its own sequential loop, while the serial kernel's
    # np.dot is NumPy's (BLAS) dot product, whose summation order differs (measured: 13/300 distances
    # differ by <= 3.6e-15 on a fresh machine). The serial kernel keeps NumPy's order so that FPS picks
    # equal skmatter's.
    from kernelpot.selection import _selection_kernels as kern

    rng = np.random.default_rng(17)
    A = rng.standard_normal((300, 7))
    norms = np.einsum("ij,ij->i", A, A)
    candidates = rng.permutation(300)[:200].astype(np.int64)
    start = rng.uniform(5.0, 30.0, 300)
    out = []
    for update in (kern.fps_update_rows, kern.fps_update_rows_parallel):
        d2, nearest = start.copy(), np.zeros(300, dtype=np.int64)
        update(A, norms, 3, candidates, 200, d2, nearest, 1)
        out.append((d2, nearest))
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-14, atol=0)
    np.testing.assert_array_equal(out[0][1], out[1][1])
    expected = np.minimum(start[candidates], ((A[candidates] - A[3]) ** 2).sum(axis=1))
    np.testing.assert_allclose(out[0][0][candidates], expected, rtol=1e-12)
    G = A.T @ A
    q, z = rng.standard_normal(7), rng.standard_normal(7)
    pairs = [(kern.symmetric_rank1_downdate, kern.symmetric_rank1_downdate_parallel,
              (z, 0.5), G - 0.5 * np.outer(z, z)),
             (kern.symmetric_rank2_downdate, kern.symmetric_rank2_downdate_parallel,
              (q, z), G - np.outer(q, z) - np.outer(z, q))]
    for serial, parallel, args, expected in pairs:
        a, b = G.copy(), G.copy()
        serial(a, *args)
        parallel(b, *args)
        np.testing.assert_allclose(a, expected, rtol=1e-13, atol=1e-12)
        np.testing.assert_array_equal(a, b)
