"""What MD with a fitted GAP costs: kernelpot against quippy, featomic, vesin and ASE in one run (issue 17).

Runs the prediction cases of ``kernelpot bench`` (:mod:`kernelpot.bench.predict_cases`) and prints every row
with its ratio, the load average before and after, and two analyses behind the numbers:

* ``si``: forces of a rattled 216-atom Si cell (2-body + SOAP l6 n8, 1000 CUR points, fitted by kernelpot and
  by gap_fit on the same 60 mlearn Si structures): kernelpot's calculator vs quippy's ``Potential``, 1 and 2
  threads, interleaved, best of N, MD-like calls; forces with their DTC σ against forces alone; the parallel
  efficiency of 2 threads.
* ``nacl``: the same for a 4-species NaCl–water model (10 ``distance_2b`` + 4 per-species SOAP terms,
  > 4,000 sparse points) on the bundled 194-atom box, against the 5,000 atoms/s target.
* ``featomic``: SOAP features and features + gradients on 64-water boxes, matched settings, 1 thread.
* ``neighbours``: neighbour lists of 10²–10⁵-atom boxes against vesin and ASE, 1 thread.
* ``startup``: ``kernelpot evaluate`` in a fresh process, warm and cold Numba cache.
* ``lowrank``: how much of the exact SoR force variance a rank-r factor of the posterior covariance keeps
  (the eigenvectors of the whitened training force rows, r = 8 ... 512): the evidence for computing σ
  exactly rather than through a small number of extra reverse-mode passes.
* ``sampling``: the NaCl–water box's exact DTC force σ split into its two parts, and how well S weight
  vectors drawn from the posterior over the sparse weights (``α + R⁻¹ε``; each one's forces are one more
  reverse-mode contraction) estimate it: the posterior part ``|R⁻ᵀk*|²`` is only about half of σ², the rest
  (``K** − Q**``) needs the descriptor gradients, and S samples cost about 1 + 0.4 S mean-force calls.

Result of ``sampling`` (session 3, 194-atom box, 4,400 sparse points, 582 force components, 20 draws per S):
posterior part of σ² median 0.57 (0.29–0.74); relative σ error, samples alone (missing K** − Q**): median
0.41 / 0.33 / 0.27 / 0.25 for S = 2 / 4 / 16 / 256 (biased: it converges to the missing half); with the
exact K** − Q** added: median 0.18 / 0.13 / 0.06 / 0.016, worst 1.78 / 1.03 / 0.55 / 0.11, largest-σ atom
right in 5 / 4 / 7 / 16 of 20 draws. Within 2x the mean cost (S <= 2) no estimator of this kind is usable.

* ``subsetsigma``: the approximate force σ of ``GAPCalculator(uncertainty="forces_subset")`` (the posterior of
  n sparse points, scaled by one factor calibrated on another structure): its cost over the forces alone and
  its per-atom error against the exact σ, n = 8 ... 128.

Result of ``subsetsigma`` (session 5, 1 thread, CPU time, load 4.4-6.5): NaCl-water 40 points 1.84x, median /
95th-percentile relative σ error 0.12 / 0.32, Spearman 0.73; 72 points 2.59x, 0.11 / 0.29, 0.81; 132 points
4.14x, 0.08 / 0.22, 0.90 (exact 72x). Si 9 points 1.82x, 0.16 / 0.42, 0.56; 32 points 4.17x, 0.05 / 0.17,
0.83; 64 points 7.29x, 0.03 / 0.11, 0.92 (exact 31x). Within 2x the σ ranks atoms only roughly (Spearman
0.56-0.73), and the recall of "above the exact 90th percentile" is 0.2-0.35 on NaCl-water.
Per frame (``sigma_frames``: 21 NaCl-water frames, gen3 and 6 with one water or ion moved, κ from a gen3
frame; 29 Si frames, the mlearn test set and perturbed cells, κ from the benchmark cell; session 5, load
5-8), Spearman of the largest σ per frame with the exact one / rank of the frame with the largest exact σ
among the estimates / same largest-σ atom / per-atom median and p95 relative error, Spearman:
NaCl-water 22-40 points 1.41-1.77x: 0.62-0.68 / 5th-11th / 0.33-0.43 / 0.18-0.19, 0.40-0.43, 0.67-0.79 (72
points 2.42x: 0.77 / 1st); with the Nyström residual (``sigma_residual=True``, label ``+r``), 24+r 1.92x: 0.91
/ 1st / 0.67 / 0.087, 0.256, 0.889 (22+r 1.84x the same to 0.01). Si 9 points 1.85x: 0.92 / 1st / 0.10 /
0.23, 0.58, 0.54, but 17 and 32 points (2.6x, 3.8x) rank the outlier 3rd and 10th; 4+r 1.97x: 0.98 / 1st /
0.34 / 0.16, 1.31, 0.59 (the residual over-weights atoms of the small mlearn cells: p95 > 1).
Session 6 (load 8-9, medians of 5 interleaved rounds; bench_subsetsigma1.log in the speed notes): the residual
against each atom's 8 most similar sparse points (``sigma_residual_points=8``, label ``+r8``) instead of all
of them: Si 7 points (label 8+r8) 1.90x: per frame 0.96 / 1st / 0.21, per atom 0.141, 0.505, 0.604; 8 points
(9+r8) 2.00x: 0.98 / 1st / 0.24 / 0.120, 0.445, 0.622 (the exact residual with 16 points, 17+r: 3.08x). On
NaCl-water the nearest points lose the outlier frame (24+r8 1.59x: 0.75 / 5th), the default 24+r stays at
0.91 / 1st / 0.087, 0.256, 0.889 and now costs 1.85x (the pair rows' covariances scattered in Numba).

* ``localsigma``: the exact DTC σ of every atom's local energy (``GAPCalculator(uncertainty="local_energy")``,
  FLARE's on-the-fly trigger) against the exact force σ and the actual force errors, per frame, on held-out
  labelled frames, rattled copies and short MD of the NaCl–water and Si models; and whether computing the
  exact ``forces_std`` only on the frames the local σ flags keeps the decision "max |σF| > τ".

Result of ``localsigma`` (session 4, load 8, 18 frames per model; the σE cost is in the ``si``/``nacl`` rows:
1.44–1.53x the mean forces in CPU time, 1 and 2 threads, against 30x (Si) and 58x (NaCl) for the exact
``forces_std``): per atom, Spearman(σE, |σF|) median 0.09 on NaCl–water (within one species -0.47) and 0.30
on Si, top-10 % overlap 0.16 / 0.25 (chance: 0.10); against the actual force errors of held-out frames, σE
-0.00 / 0.10 and the exact σF 0.53 / 0.16. Per frame, Spearman(max σE, max |σF|) 0.49 / 0.96: on NaCl the
largest σE stays at 0.15–0.17 eV on every in-domain frame while the largest σF ranges 0.07–0.29 eV/Å, and both
jump together when the MD leaves the training domain (σE 0.6–1.3 eV, σF 2–4.5 eV/Å). The in-domain maximum
is always the Na or Cl atom's (one of each in the 13 training frames); over water atoms alone the frames'
Spearman is 0.38 (12 held-out and rattled frames). Screening with σE keeps
every "max |σF| > median" decision only at thresholds that skip 6 % (NaCl) / 50 % (Si) of the exact
evaluations. The local-energy σ is a cheap extrapolation alarm, not a per-atom force σ.

Usage::

    python benchmarks/predict.py [--quick] \\
        [--cases si,nacl,featomic,neighbours,startup,lowrank,sampling,localsigma,subsetsigma]

Fitted models are cached in ``$KERNELPOT_BENCH_CACHE`` (default ``~/.cache/kernelpot/bench``); the first run
fits them (gap_fit's Si fit takes several minutes).
"""

import argparse
import os
import time

import numpy as np

from kernelpot.bench import predict_cases as cases
from kernelpot.bench.sigma_cases import frame_metrics, sigma_frames

CASES = {
    "si": cases.si_forces_vs_quippy,
    "nacl": cases.nacl_forces,
    "featomic": cases.soap_vs_featomic,
    "neighbours": cases.neighbours_vs_vesin,
    "startup": cases.startup,
}


def lowrank(quick):
    """Fraction of the exact SoR force σ kept by a rank-r posterior factor, on held-out structures."""
    import scipy.linalg as sla
    from ase.io import read

    from kernelpot.models.gap.design import DesignBuilder
    from kernelpot.potential.serialization import load_model

    kpot, _ = cases.si_models(quick)
    model = load_model(kpot)
    builder = DesignBuilder.from_model(model)
    train = cases.si_training(quick)[::2]
    test = read(cases.DATA / "mlearn_si" / "mlearn_Si_test.extxyz", ":")[:6] + [cases.rattled_si()]

    def whitened_force_rows(structures):
        rows, sigma = builder.unlabelled_rows(structures)
        k_star = (rows * sigma[:, None])[len(structures):]          # force rows, unwhitened
        return sla.solve_triangular(model.posterior_factor_, k_star.T, trans="T")   # R^-T k*

    basis, singular, _ = np.linalg.svd(whitened_force_rows(train), full_matrices=False)
    held_out = whitened_force_rows(test)
    exact = (held_out**2).sum(0)
    print(f"\nSoR force σ kept by a rank-r factor (basis: {len(train)} training structures; "
          f"{held_out.shape[1]} held-out force components)")
    print(f"{'rank':>6} {'median σ_r/σ':>14} {'min σ_r/σ':>11}")
    for rank in (8, 16, 32, 64, 128, 256, 512):
        if rank > basis.shape[1]:
            break
        kept = np.sqrt(((basis[:, :rank].T @ held_out) ** 2).sum(0) / exact)
        print(f"{rank:>6} {np.median(kept):>14.3f} {kept.min():>11.3f}")
    print("each rank costs one extra reverse pass through the kernel (an n x m x d product) per call")


def sampling(quick):
    """Exact DTC force σ of the NaCl box against estimates from S posterior draws of the sparse weights."""
    import scipy.linalg as sla

    import kernelpot.models.gap.model as gap_model
    from kernelpot.potential.serialization import load_model

    model = load_model(cases.nacl_model(quick))
    box = cases.nacl_box()
    captured = []
    exact_variance = gap_model.dtc_variance

    def capture(prior, k_star, *factors, **kwargs):
        captured.append((prior.copy(), k_star.copy()))
        return exact_variance(prior, k_star, *factors, **kwargs)

    gap_model.dtc_variance = capture
    try:
        exact_std = model.predict([box], properties=("energy", "forces"), return_std=True)["forces_std"]
    finally:
        gap_model.dtc_variance = exact_variance
    prior, k_star = next(c for c in captured if len(c[0]) == 3 * len(box))
    L, R = model.kmm_cholesky_, model.posterior_factor_
    residual = prior - (sla.solve_triangular(L, k_star.T, lower=True) ** 2).sum(0)       # K** - Q**
    posterior = (sla.solve_triangular(R, k_star.T, trans="T") ** 2).sum(0)               # |R^-T k*|²
    exact = np.sqrt(np.maximum(residual + posterior, 0.0))
    assert np.allclose(exact.reshape(-1, 3), exact_std, rtol=1e-8, atol=1e-12)
    share = posterior / exact**2
    print(f"\nposterior part of the exact force σ²: median {np.median(share):.2f} (min {share.min():.2f}, "
          f"max {share.max():.2f}); {len(exact)} force components, {k_star.shape[1]} sparse points")
    print(f"{'S':>5} {'samples alone: median':>22} {'+ exact K**-Q**: median':>24} {'worst':>7} {'argmax atom':>12}")
    rng = np.random.default_rng(0)
    largest = np.argmax(np.linalg.norm(exact.reshape(-1, 3), axis=1))
    for n_samples in (2, 4, 16, 256):
        alone, completed, agree = [], [], 0
        for _ in range(5 if quick else 20):
            draws = sla.solve_triangular(R, rng.standard_normal((R.shape[0], n_samples)))   # R⁻¹ε
            estimate = ((k_star @ draws) ** 2).mean(1)         # the draws' forces: k*ᵀ R⁻¹ε per component
            alone.append(np.abs(np.sqrt(estimate) / exact - 1))
            full = np.sqrt(np.maximum(residual + estimate, 0.0))
            completed.append(np.abs(full / exact - 1))
            agree += int(np.argmax(np.linalg.norm(full.reshape(-1, 3), axis=1)) == largest)
        alone, completed = np.array(alone), np.array(completed)
        print(f"{n_samples:>5} {np.median(alone):>22.3f} {np.median(completed):>24.3f} {completed.max():>7.3f} "
              f"{agree:>7}/{len(completed)}")


def _spearman(a, b):
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _top_overlap(a, b, fraction=0.1):
    """Share of the top ``fraction`` atoms by ``a`` that are also in the top ``fraction`` by ``b``."""
    n = max(1, int(round(fraction * len(a))))
    return len(set(np.argsort(a)[-n:]) & set(np.argsort(b)[-n:])) / n


def _md_frames(model, start, temperature, n_frames, every, seed=0):
    """Frames of a short Langevin run (1 fs) with the model's mean forces."""
    from ase import units
    from ase.md.langevin import Langevin

    from kernelpot.potential.calculator import GAPCalculator
    from kernelpot.utils.ase_compat import thermalize

    atoms = start.copy()
    atoms.calc = GAPCalculator(model, uncertainty=False)
    thermalize(atoms, temperature, np.random.default_rng(seed))
    dynamics = Langevin(atoms, timestep=1.0 * units.fs, temperature_K=temperature, friction=0.02 / units.fs,
                        fixcm=False, rng=np.random.default_rng(seed))
    frames = []
    for _ in range(n_frames):
        dynamics.run(every)
        frame = atoms.copy()
        frame.calc = None
        frames.append(frame)
    return frames


def _held_out_nacl(count):
    """Labelled NaCl–water frames of the shared revPBE0-D3 gen3 set that the benchmark model was not fitted on."""
    from pathlib import Path

    from kernelpot.structures import read_runner

    path = Path(os.environ.get("KERNELPOT_SHARED_DATA", "/work/shared/data")) / "electrolytes" / "nacl_water" / \
        "revPBE0-D3_gen3.data"
    if not path.exists():
        print(f"({path} absent: no held-out NaCl frames, only rattled and MD ones)")
        return []
    trained = cases.nacl_frames()
    frames = []
    for frame in read_runner(path)[5::7]:
        if any(len(t) == len(frame) and np.allclose(t.positions, frame.positions) for t in trained):
            continue
        frames.append(frame)
        if len(frames) == count:
            break
    return frames


def localsigma(quick):
    """Local-energy σ (fast, exact DTC for local energies) against the exact force σ and the real force errors.

    Per frame: Spearman rank correlation between every atom's local-energy σ and its |forces_std|, and the
    share of the top-10 % atoms by one that are top-10 % by the other; on labelled held-out frames also each
    σ's rank correlation with the atoms' actual force errors |F - F_ref|. Per case: the frames' largest σ of
    each kind, and whether computing the exact forces_std only on frames the local σ flags keeps the
    on-the-fly decision "max |forces_std| > threshold" (FLARE's use of it).
    """
    from ase.io import read

    from kernelpot.bench.timing import measure
    from kernelpot.datasets import data_path
    from kernelpot.models.gap.predictor import GAPPredictor
    from kernelpot.potential.serialization import load_model

    n = 2 if quick else 4
    for name in ("nacl", "si"):
        if name == "nacl":
            model, start = load_model(cases.nacl_model(quick)), cases.nacl_box()
            labelled = _held_out_nacl(3 if quick else 8)
            temperature = 300.0
        else:
            model, start = load_model(cases.si_models(quick)[0]), cases.rattled_si()
            labelled = read(data_path("mlearn_si", "mlearn_Si_test.extxyz"), ":")[:: 3 if quick else 2][:n * 2]
            temperature = 1200.0
        frames = [("held-out", f) for f in labelled]
        for amplitude in (0.03, 0.1, 0.2):
            for seed in range(n // 2):
                frame = start.copy()
                frame.positions += np.random.default_rng(seed).normal(0.0, amplitude, frame.positions.shape)
                frames.append((f"rattled {amplitude} Å", frame))
        frames += [("MD", f) for f in _md_frames(model, start, temperature, n, 50)]
        predictor = GAPPredictor(model)
        predictor.predict([start], ("energy", "forces", "local_energy_std"))   # builds the per-species matrices
        print(f"\n{name}: {len(frames)} frames; per frame: atoms, largest σE (eV) and |σF| (eV/Å), "
              "Spearman(σE, |σF|), top-10 % overlap, CPU s: mean+σE, exact forces_std, [held-out: "
              "Spearman(σE, |ΔF|), Spearman(|σF|, |ΔF|)]")
        scores = []
        rho, overlap, rho_e, rho_f, within = [], [], [], [], []
        for kind, frame in frames:
            bare = frame.copy()
            bare.calc = None
            fast_timing = measure(lambda b=bare: predictor.predict([b], ("energy", "forces", "local_energy_std")))
            fast = fast_timing.result
            exact_timing = measure(lambda b=bare: model.predict([b], properties=("forces",), return_std=True))
            exact = exact_timing.result
            sigma_e, sigma_f = fast["local_energy_std"], np.linalg.norm(exact["forces_std"], axis=1)
            scores.append((sigma_e.max(), sigma_f.max()))
            rho.append(_spearman(sigma_e, sigma_f))
            overlap.append(_top_overlap(sigma_e, sigma_f))
            within += [_spearman(sigma_e[bare.numbers == z], sigma_f[bare.numbers == z])
                       for z in np.unique(bare.numbers) if np.sum(bare.numbers == z) >= 10]
            line = (f"  {kind:>16} {len(bare):>4} {scores[-1][0]:>7.4f} {scores[-1][1]:>7.4f} {rho[-1]:>6.2f} "
                    f"{overlap[-1]:>5.2f}  {fast_timing.cpu:.3f} {exact_timing.cpu:.2f}")
            if kind == "held-out":
                error = np.linalg.norm(fast["forces"] - frame.get_forces(), axis=1)
                rho_e.append(_spearman(sigma_e, error))
                rho_f.append(_spearman(sigma_f, error))
                line += f"  {rho_e[-1]:>6.2f} {rho_f[-1]:>6.2f}"
            print(line)
        print(f"  median Spearman(σE, |σF|) {np.median(rho):.2f} (min {min(rho):.2f}); median top-10 % overlap "
              f"{np.median(overlap):.2f} (min {min(overlap):.2f}); within one species (>= 10 atoms), median "
              f"Spearman {np.median(within):.2f}")
        if rho_e:
            print(f"  held-out, median Spearman with |ΔF|: local-energy σ {np.median(rho_e):.2f}, "
                  f"force σ {np.median(rho_f):.2f}")
        scores = np.array(scores)
        print(f"  frames: Spearman(max σE, max |σF|) {_spearman(scores[:, 0], scores[:, 1]):.2f}")
        _screening(scores)


def _screening(scores):
    """Does computing the exact force σ only where the local σ flags keep the decision max |σF| > τ_F?"""
    rng = np.random.default_rng(0)
    for quantile in (0.5, 0.75):
        tau_f = float(np.quantile(scores[:, 1], quantile))
        trigger = scores[:, 1] > tau_f
        # the largest local-σ threshold that misses no triggered frame (chosen knowing the answer)
        tau_e = scores[trigger, 0].min() if trigger.any() else np.inf
        saved = np.mean(scores[:, 0] < tau_e)
        # honest: the threshold from a random half, applied to the other half
        order = rng.permutation(len(scores))
        calibrate, test = order[: len(order) // 2], order[len(order) // 2:]
        calibration = scores[calibrate][trigger[calibrate], 0]
        tau_half = calibration.min() if len(calibration) else np.inf
        missed = int(np.sum(trigger[test] & (scores[test, 0] < tau_half)))
        print(f"  τ_F = {tau_f:.4g} eV/Å ({quantile:.0%} quantile, {int(trigger.sum())} of {len(scores)} frames "
              f"trigger): local-σ screen at {tau_e:.4g} eV misses none and skips the exact σ on {saved:.0%} of "
              f"frames; calibrated on half the frames ({tau_half:.4g} eV): {missed} of {int(trigger[test].sum())} "
              f"triggers missed on the other half, exact σ skipped on "
              f"{np.mean(scores[test, 0] < tau_half):.0%} of them")


def _sigma_errors(estimate, exact):
    """Median and 95th-percentile relative error of per-atom σ, Spearman, and the precision / recall of
    flagging atoms above the exact σ's 90th percentile with the estimate (the same threshold value)."""
    relative = np.abs(estimate / exact - 1.0)
    threshold = np.percentile(exact, 90)
    flagged, truth = estimate > threshold, exact > threshold
    both = np.sum(flagged & truth)
    return (float(np.median(relative)), float(np.percentile(relative, 95)), _spearman(estimate, exact),
            both / max(flagged.sum(), 1), both / max(truth.sum(), 1))


def subsetsigma(quick):
    """The approximate force σ of ``GAPCalculator(uncertainty="forces_subset")`` against the exact one: cost
    (CPU time, 1 thread, interleaved with the mean forces) and error per atom, for n_points sparse points,
    with and without the Nyström residual (``sigma_residual=True``, against all sparse points or, label +r<q>,
    each atom's q most similar ones); then per frame (:func:`kernelpot.bench.sigma_cases.sigma_frames`, calibrated
    on the first): does the largest σ of a frame order the frames and find the outlier frame.

    κ is calibrated on a different structure (Si: another rattled cell; NaCl–water: the box rattled by
    0.05 Å), the error measured on the benchmark structure (and on held-out frames for NaCl–water).
    """
    import numba
    from threadpoolctl import threadpool_limits

    from kernelpot.bench.timing import interleaved_cpu
    from kernelpot.models.gap.predictor import GAPPredictor
    from kernelpot.models.gap.subset_variance import SubsetForceVariance
    from kernelpot.potential.serialization import load_model

    numba.set_num_threads(1)
    sizes = (8, 32) if quick else (8, 16, 32)
    # (n_points, residual, residual_points): the residual against all sparse points, or against each atom's q
    # most similar ones (label +r<q>)
    variants = [(n, False, None) for n in sizes] + [(n, True, None) for n in ((3, 16) if quick else (3, 8, 16))] + \
        [(n, True, 8) for n in ((7,) if quick else (6, 7, 8, 16))] + ([] if quick else [(16, True, 32)])
    for name in ("si", "nacl"):
        if name == "nacl":
            model, bench = load_model(cases.nacl_model(quick)), cases.nacl_box()
            calibration = bench.copy()
            calibration.positions += np.random.default_rng(1).normal(0.0, 0.05, bench.positions.shape)
            others = [("held-out", f) for f in _held_out_nacl(1 if quick else 3)]
        else:
            model, bench, calibration, others = load_model(cases.si_models(quick)[0]), cases.rattled_si(), \
                cases.rattled_si(1), []
        with threadpool_limits(limits=1):
            def exact(atoms):
                return model.predict([atoms], properties=("energy", "forces"), return_std=True)["forces_std"]

            mean = GAPPredictor(model)
            calls = {"mean": lambda: mean.predict([bench], ("energy", "forces"))}
            exact_calibration = exact(calibration)
            references = [("benchmark", bench, exact(bench))] + [(k, f, exact(f)) for k, f in others]
            frames = sigma_frames(name, quick)
            frame_exact = [np.linalg.norm(exact(f), axis=1) for _, f in frames]
            print(f"\n{name}: {len(bench)} atoms, {sum(t.n_sparse for t in model.terms_)} sparse points; κ "
                  f"(and λ, +r: with the Nyström residual) calibrated on another structure; per atom: median / "
                  f"95th-percentile relative σ error, Spearman, precision / recall of 'σ > exact 90th percentile'")
            print(f"{'n_points':>9} {'kappa':>8} {'frame':>10} {'median':>7} {'p95':>6} {'rho':>6} {'prec':>5} "
                  f"{'rec':>5}")
            per_frame = []
            for n_points, residual, residual_points in variants:
                variance = SubsetForceVariance(model, n_points, residual=residual, residual_points=residual_points)
                label = f"{variance.n_subset}{'+r' if residual else ''}{residual_points or ''}"
                predictor = GAPPredictor(model, force_variance=variance)
                variance.calibrate([calibration], exact_std=exact_calibration, predictor=predictor)
                for kind, frame, reference in references:
                    sigma = predictor.predict([frame], ("energy", "forces", "forces_std"))["forces_std"]
                    errors = _sigma_errors(np.linalg.norm(sigma, axis=1), np.linalg.norm(reference, axis=1))
                    print(f"{label:>9} {variance.kappa_:>8.3g} {kind:>10} " +
                          " ".join(f"{e:>{w}.{p}f}" for e, w, p in zip(errors, (7, 6, 6, 5, 5), (3, 3, 3, 2, 2))))
                calls[f"subset {label}"] = lambda p=predictor: p.predict([bench], ("energy", "forces", "forces_std"))
                if len(frames) > 2:
                    variance.calibrate([frames[0][1]], exact_std=exact(frames[0][1]), predictor=predictor)
                    estimates = [np.linalg.norm(predictor.predict([f], ("energy", "forces", "forces_std"))
                                                ["forces_std"], axis=1) for _, f in frames[1:]]
                    per_frame.append((label, frame_metrics(estimates, frame_exact[1:], [k for k, _ in frames[1:]])))
            calls["exact"] = lambda: exact(bench)
            times = interleaved_cpu(calls, 2 if quick else 5)
        mean_time = float(np.median(times["mean"]))
        print(f"cost, CPU s per call over the mean forces' ({mean_time * 1e3:.1f} ms), 1 thread, medians of "
              f"{len(times['mean'])} interleaved rounds, load {os.getloadavg()[0]:.1f}: " +
              ", ".join(f"{k} {np.median(v) / mean_time:.2f}x" for k, v in times.items() if k != "mean"))
        if per_frame:
            print(f"per frame ({len(frames) - 1} frames, calibrated on {frames[0][0]}; exact largest σ per frame: " +
                  ", ".join(f"{k} {e.max():.3f}" for (k, _), e in zip(frames[1:], frame_exact[1:])) + " eV/Å)")
            print(f"{'n_points':>9} {'max-σ rho':>9} {'outlier rank':>12} {'ratio':>6} {'same argmax':>11} "
                  f"{'atom median':>11} {'p95':>6} {'rho':>6}")
            for label, (rho_max, rank, kind, ratio, same, median, p95, rho) in per_frame:
                print(f"{label:>9} {rho_max:>9.2f} {rank:>4} ({kind}) {ratio:>6.2f} {same:>11.2f} {median:>11.3f} "
                      f"{p95:>6.3f} {rho:>6.3f}")


ANALYSES = {"lowrank": lowrank, "sampling": sampling, "localsigma": localsigma, "subsetsigma": subsetsigma}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cases",
                        default="si,nacl,featomic,neighbours,startup,lowrank,sampling,localsigma,subsetsigma")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
    for name in args.cases.split(","):
        start = time.perf_counter()
        print(f"\n== {name}")
        if name in ANALYSES:
            ANALYSES[name](args.quick)
            continue
        for row in CASES[name](args.quick):
            print(f"{row.task} | {row.metric}: kernelpot {row.kernelpot:.4g} {row.unit}, {row.peer} "
                  f"{row.peer_value:.4g}, ratio {row.ratio:.3g} ({row.better} is better) {row.note}")
        print(f"({time.perf_counter() - start:.0f} s)")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
