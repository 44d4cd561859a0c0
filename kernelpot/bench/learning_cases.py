"""Learning benchmarks: FPS/CUR against skmatter, Gaussian process regression against scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np

from .results import Row
from .timing import measure


def _identical(ours, theirs) -> str:
    a, b = np.asarray(ours.selected_idx_), np.asarray(theirs.selected_idx_)
    return "identical selections" if a.shape == b.shape and np.array_equal(a, b) else "SELECTIONS DIFFER"


def _water_soap_matrix(n_rows: int) -> np.ndarray:
    """Per-atom SOAP features of water boxes (H/O, r_cut 5 Å, n_max 6, l_max 6): the first 500 of 546 columns."""
    from kernelpot.descriptors.soap import SOAP

    from .systems import water_box

    soap = SOAP(species=[1, 8], r_cut=5.0, n_max=6, l_max=6, sigma=0.5, periodic=True)
    boxes = [water_box(seed=seed) for seed in range(-(-n_rows // 192))]
    return np.ascontiguousarray(np.asarray(soap.transform(boxes))[:n_rows, :500])


def _time_selectors(ours, theirs, X) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return measure(lambda: ours.fit(X)).wall, measure(lambda: theirs.fit(X)).wall


def selection_vs_skmatter(quick: bool) -> list[Row]:
    """FPS and CUR sample selection on an n × 500 standard-normal matrix (seed 0), and FPS on SOAP features.

    Random Gaussian rows are FPS's worst case: all distances are alike, so the
    triangle inequality prunes nothing and only the lazy search (rows that
    cannot be the next pick are not updated) saves work; on atomic-environment
    features both prune most distance evaluations.
    """
    from skmatter import sample_selection

    from kernelpot.selection.cur import CUR
    from kernelpot.selection.fps import FPS

    n_rows, n_cur, n_fps = (2000, 20, 200) if quick else (20000, 200, 500)
    X = np.random.default_rng(0).standard_normal((n_rows, 500))
    FPS(3).fit(X[:50, :20])
    CUR(3).fit(X[:50, :20])  # compile or load the cache outside the timings
    rows = []
    for name, ours, theirs in (("FPS", FPS(n_fps), sample_selection.FPS(n_to_select=n_fps)),
                               ("CUR", CUR(n_cur), sample_selection.CUR(n_to_select=n_cur))):
        t_ours, t_theirs = _time_selectors(ours, theirs, X)
        rows.append(Row("skmatter", f"{name} sample selection, {ours.n_to_select} of {n_rows} x 500 random",
                        "wall time", "s", t_ours, t_theirs, "lower", _identical(ours, theirs)))
    soap = _water_soap_matrix(n_rows)
    ours, theirs = FPS(n_fps), sample_selection.FPS(n_to_select=n_fps)
    t_ours, t_theirs = _time_selectors(ours, theirs, soap)
    rows.append(Row("skmatter", f"FPS sample selection, {n_fps} of {n_rows} x 500 water SOAP features",
                    "wall time", "s", t_ours, t_theirs, "lower", _identical(ours, theirs)))
    return rows


def gpr_vs_sklearn(quick: bool) -> list[Row]:
    """GaussianProcessRegressor with ConstantKernel·RBF + WhiteKernel, hyperparameters by marginal likelihood."""
    from sklearn.gaussian_process import GaussianProcessRegressor as SklearnGPR
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    from kernelpot.models.gpr import GaussianProcessRegressor

    rng = np.random.default_rng(0)
    n = 400 if quick else 1500
    X = rng.uniform(-3, 3, (n + 500, 6))
    y = np.sin(X).sum(1) + 0.1 * rng.standard_normal(len(X))
    kernel = ConstantKernel(1.0) * RBF(1.0) + WhiteKernel(0.01)
    ours, theirs = GaussianProcessRegressor(kernel=kernel), SklearnGPR(kernel=kernel)
    timings = {}
    for name, model in (("kernelpot", ours), ("sklearn", theirs)):
        run = measure(lambda: model.fit(X[:n], y[:n]).predict(X[n:], return_std=True))
        timings[name] = (run.wall, *run.result)
    mean_difference = np.abs(timings["kernelpot"][1] - timings["sklearn"][1]).max()
    lml = (ours.log_marginal_likelihood_value_, theirs.log_marginal_likelihood_value_)
    return [Row("scikit-learn", f"GPR fit (L-BFGS-B) + predict with std, {n} train / 500 test, 6-d",
                "wall time", "s", timings["kernelpot"][0], timings["sklearn"][0], "lower",
                f"LML {lml[0]:.6f} vs {lml[1]:.6f}; max |Δ mean| {mean_difference:.1e}")]
