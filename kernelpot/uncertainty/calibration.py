"""Is a predicted σ trustworthy? Coverage, likelihood, z-scores, reliability diagrams, recalibration.

All functions take ``errors = predicted - reference`` and the predicted
standard deviations ``std`` of the same shape (any shape; they are
flattened), in the same unit (eV, eV/Å, ...). Values whose σ is zero (to
1e-8 of the largest σ) are left out: their prediction is fixed by
symmetry, e.g. the forces on atoms of a perfect crystal, which the model
gets exactly (zero) whatever its weights. For a calibrated Gaussian
predictor the z-scores ``errors / std`` are standard normal: 68.3 % of
them within ±1 and 95.4 % within ±2.

Recalibration fits one factor ``s`` multiplying every σ of a model by
maximum likelihood on a validation set. For Gaussian errors the
likelihood of ``e_i ~ N(0, s² σ_i²)`` is maximal at
``s² = mean(z_i²)`` (the scale only; the ranking of σ is unchanged).
See Kuleshov et al., ICML 2018 (arXiv:1807.00263) and Musil et al.,
J. Chem. Theory Comput. 15, 906 (2019), doi:10.1021/acs.jctc.8b00959.

That one factor is at the mercy of values whose σ is tiny but not zero:
forces on atoms that are *almost* fixed by symmetry (strained crystals,
mlearn Si "Elastic") have σ ~ 1e-6 eV/Å while the reference carries
~1e-4 eV/Å of numerical noise, so a handful of z-scores of 1e3 set
``mean(z²)`` and the fitted σ are several times too wide everywhere else.
``recalibrate(..., floor=True)`` therefore fits
``σ² = s² σ_model² + f²`` (``f``: a floor per property, in its unit) by
maximum likelihood; ``f`` absorbs the label noise the latent σ lacks.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

__all__ = [
    "calibration_summary",
    "coverage",
    "fit_std_scale",
    "fit_std_scale_floor",
    "gaussian_nll",
    "observed_std",
    "recalibrate",
    "reliability_diagram",
    "spearman",
    "z_scores",
]

_SYMMETRY_ZERO = 1e-8  # σ below this fraction of the largest σ counts as exactly zero


def _validated(errors, std):
    """Flattened float64 ``errors`` and ``std``, checked: same size, non-empty, finite, ``std >= 0``."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    s = np.asarray(std, dtype=np.float64).ravel()
    if e.shape != s.shape:
        raise ValueError(f"`errors` and `std` must have the same number of values; got {e.size} and {s.size}")
    if e.size == 0:
        raise ValueError("`errors` must not be empty")
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(s))):
        raise ValueError("`errors` and `std` must be finite")
    if np.any(s < 0):
        raise ValueError(f"`std` must be >= 0 everywhere; got min {float(s.min())}")
    return e, s


def _pair(errors, std):
    e, s = _validated(errors, std)
    # σ = 0 (to round-off) marks a value fixed by symmetry (forces in a
    # perfect crystal): no z-score, left out.
    keep = s > _SYMMETRY_ZERO * s.max()
    if not keep.any():
        raise ValueError("`std` is zero everywhere; nothing to calibrate")
    return e[keep], s[keep]


def observed_std(std, noise):
    """σ of a *label* ``sqrt(std² + noise²)``: latent σ (from ``predict``) plus the label noise.

    The latent σ of a GP says how uncertain the model's function is; a
    reference label also carries noise and model misfit (the fit's
    ``default_sigma``). Where the errors are dominated by that floor (dense
    training data, e.g. mlearn Si), calibrate ``observed_std`` instead.
    """
    return np.sqrt(np.square(np.asarray(std, dtype=np.float64)) + float(noise) ** 2)


def z_scores(errors, std):
    """ndarray (n,): ``errors / std``, flattened."""
    e, s = _pair(errors, std)
    return e / s


def coverage(errors, std, widths=(1.0, 2.0)):
    """Fraction of ``|error| <= width * std`` for each width.

    Returns
    -------
    dict
        ``{width: fraction}``; a calibrated Gaussian gives 0.683 and 0.954.
    """
    z = np.abs(z_scores(errors, std))
    return {float(w): float(np.mean(z <= w)) for w in widths}


def gaussian_nll(errors, std):
    """Mean negative log likelihood of ``errors ~ N(0, std²)`` (per value, in nats)."""
    e, s = _pair(errors, std)
    return float(np.mean(0.5 * np.log(2 * np.pi * s**2) + 0.5 * (e / s) ** 2))


def fit_std_scale(errors, std):
    """Maximum-likelihood factor ``s`` so that ``errors ~ N(0, (s std)²)``: ``sqrt(mean(z²))``."""
    return float(np.sqrt(np.mean(z_scores(errors, std) ** 2)))


def _finite_pairs(errors, std):
    """Like ``_pair`` but keeps σ = 0 values (a floor gives them a width)."""
    e, s = _validated(errors, std)
    if not np.any(e != 0):
        raise ValueError("`errors` are zero everywhere; nothing to calibrate")
    return e, s


def _floor_nll(params, groups):
    """Mean NLL (up to a constant) and gradient in ``(log s, log f_1, ..., log f_g)``."""
    s2 = np.exp(2 * params[0])
    value, grad, n = 0.0, np.zeros_like(params), sum(e.size for e, _ in groups)
    for g, (e, std) in enumerate(groups):
        f2 = np.exp(2 * params[g + 1])
        v = s2 * std**2 + f2
        r = 1.0 / v - e**2 / v**2          # d(log v + e²/v)/dv
        value += 0.5 * np.sum(np.log(v) + e**2 / v)
        grad[0] += np.sum(r * s2 * std**2)
        grad[g + 1] = np.sum(r * f2)
    return value / n, grad / n


def _fit_scale_floors(groups):
    """ML ``s`` and one floor per group of ``(errors, std)``; returns ``(s, [f_1, ...])``."""
    rms = [float(np.sqrt(np.mean(e**2))) for e, _ in groups]
    z2 = np.concatenate([(e[s > 0] / s[s > 0]) ** 2 for e, s in groups])
    s0 = float(np.sqrt(np.median(z2))) / 0.6745 if z2.size else 1.0
    # Floors below 1e-9 of the RMS error are zero for any purpose; bounded so log f stays finite.
    bounds = [(np.log(s0) - 30, np.log(s0) + 30)] + [(np.log(1e-9 * r), np.log(10 * r)) for r in rms]
    best = None
    for fraction in (1e-3, 1e-1, 1.0):  # the likelihood is not convex in (log s, log f): a few starts
        start = np.array([np.log(s0)] + [np.log(fraction * r) for r in rms])
        result = optimize.minimize(_floor_nll, start, args=(groups,), jac=True, method="L-BFGS-B", bounds=bounds)
        if best is None or result.fun < best.fun:
            best = result
    return float(np.exp(best.x[0])), [float(np.exp(x)) for x in best.x[1:]]


def fit_std_scale_floor(errors, std):
    """Maximum-likelihood ``(s, f)`` so that ``errors ~ N(0, s² std² + f²)``.

    Parameters
    ----------
    errors, std : array-like of the same shape
        Predicted minus reference values and the model's σ (same unit);
        σ = 0 values are kept (the floor ``f`` gives them a width).

    Returns
    -------
    tuple of float
        The scale ``s`` (dimensionless) and the floor ``f`` (unit of
        ``errors``).
    """
    s, (f,) = _fit_scale_floors([_finite_pairs(errors, std)])
    return s, f


def spearman(std, abs_errors):
    """Spearman rank correlation of predicted σ and observed ``|error|`` (one value per structure, say)."""
    s, e = np.asarray(std, dtype=np.float64).ravel(), np.asarray(abs_errors, dtype=np.float64).ravel()
    if s.shape != e.shape or s.size < 3:
        raise ValueError(f"`std` and `abs_errors` must have the same size >= 3; got {s.size} and {e.size}")
    return float(stats.spearmanr(s, e).statistic)


def calibration_summary(errors, std):
    """Coverage at 1σ and 2σ, NLL, and the mean and std of the z-scores.

    Returns
    -------
    dict
        ``coverage_1sigma``, ``coverage_2sigma``, ``nll``, ``z_mean``,
        ``z_std``, ``z_abs_median`` (0.674 for a calibrated Gaussian).
    """
    z = z_scores(errors, std)
    cov = coverage(errors, std)
    return {"coverage_1sigma": cov[1.0], "coverage_2sigma": cov[2.0], "nll": gaussian_nll(errors, std),
            "z_mean": float(z.mean()), "z_std": float(z.std()), "z_abs_median": float(np.median(np.abs(z)))}


def recalibrate(model, atoms_list, *, energies=None, forces=None, floor=False):
    """Fit ``model.std_scale_`` (and ``std_floor_``) on validation data so that its σ are calibrated.

    Parameters
    ----------
    model : estimator
        Fitted, with ``predict(atoms, properties=..., return_std=True)``
        giving ``"energy_std"`` / ``"forces_std"`` (a ``SparseGPR`` or a
        :class:`~kernelpot.uncertainty.committee.CommitteeSparseGPR`).
    atoms_list : list of ase.Atoms
        Validation structures, not used in the fit.
    energies : array-like of shape (n_structures,) or None
        Reference energies (eV).
    forces : ndarray of shape (n_atoms_total, 3), list of (n_atoms_s, 3), or None
        Reference forces (eV/Å). At least one of ``energies``/``forces``;
        with both, one factor serves both (z-scores pooled).
    floor : bool, default=False
        ``False``: one factor, ``σ -> s σ`` (maximum likelihood,
        ``s² = mean(z²)``). ``True``: ``σ -> sqrt(s² σ² + f²)`` with one
        floor ``f`` per given property (``std_floor_["energy"]`` in eV per
        structure, ``std_floor_["forces"]`` in eV/Å), all by maximum
        likelihood; use it when some σ are near zero or the labels are
        noisy (see the module notes).

    Returns
    -------
    model
        The same object, with ``std_scale_`` set and ``std_floor_`` set
        (``floor=True``) or removed (``floor=False``); ``predict`` and the
        calculator apply both. Recalibrating starts from the raw σ (it does
        not compound); a refit removes both (like every learned
        attribute), so recalibrate after every fit.
    """
    if energies is None and forces is None:
        raise ValueError("`energies` or `forces` must be given to recalibrate")
    properties = ("energy", "forces") if forces is not None else ("energy",)
    saved = {key: getattr(model, key) for key in ("std_scale_", "std_floor_") if hasattr(model, key)}
    model.std_scale_, model.std_floor_ = 1.0, {}
    try:
        prediction = model.predict(atoms_list, properties=properties, return_std=True)
    finally:
        for key in ("std_scale_", "std_floor_"):
            if key in saved:
                setattr(model, key, saved[key])
            else:
                delattr(model, key)
    groups = {}
    if energies is not None:
        groups["energy"] = (prediction["energy"] - np.asarray(energies, dtype=np.float64),
                            prediction["energy_std"])
    if forces is not None:
        reference = np.concatenate([np.asarray(f, dtype=np.float64).reshape(-1, 3) for f in forces]) \
            if isinstance(forces, (list, tuple)) else np.asarray(forces, dtype=np.float64)
        if reference.shape != prediction["forces"].shape:
            raise ValueError(f"`forces` must have shape {prediction['forces'].shape} (all atoms); "
                             f"got {reference.shape}")
        groups["forces"] = (prediction["forces"] - reference, prediction["forces_std"])
    if floor:
        scale, floors = _fit_scale_floors([_finite_pairs(*pair) for pair in groups.values()])
        model.std_scale_, model.std_floor_ = scale, dict(zip(groups, floors))
        return model
    model.std_scale_ = fit_std_scale(np.concatenate([e.ravel() for e, _ in groups.values()]),
                                     np.concatenate([s.ravel() for _, s in groups.values()]))
    if hasattr(model, "std_floor_"):
        del model.std_floor_
    return model


def reliability_diagram(errors, std, path, *, title=None, n_levels=19, n_bins=10):
    """Save a reliability diagram PNG: interval coverage, binned RMSE vs σ, and the z histogram.

    Parameters
    ----------
    errors, std : array-like of the same shape
    path : str or Path
        Output PNG.
    title : str or None
    n_levels : int, default=19
        Confidence levels 0.05 ... 0.95 of the coverage curve.
    n_bins : int, default=10
        Quantile bins of σ for the RMSE-vs-σ panel.

    Returns
    -------
    dict
        The plotted data: ``levels``, ``observed`` coverage, ``bin_std``
        (RMS σ per bin), ``bin_rmse``.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("reliability_diagram needs matplotlib: pip install kernelpot[examples]") from None
    e, s = _pair(errors, std)
    z = np.abs(e / s)
    levels = np.linspace(0.05, 0.95, n_levels)
    observed = np.array([np.mean(z <= stats.norm.ppf(0.5 + level / 2)) for level in levels])
    edges = np.quantile(s, np.linspace(0, 1, n_bins + 1))
    which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, n_bins - 1)
    bin_std = np.array([np.sqrt(np.mean(s[which == b] ** 2)) if np.any(which == b) else np.nan for b in range(n_bins)])
    bin_rmse = np.array([np.sqrt(np.mean(e[which == b] ** 2)) if np.any(which == b) else np.nan for b in range(n_bins)])
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    axes[0].plot([0, 1], [0, 1], "k--", lw=1)
    axes[0].plot(levels, observed, "o-")
    axes[0].set(xlabel="expected coverage of central interval", ylabel="observed coverage", title="coverage")
    top = np.nanmax([bin_std.max(), bin_rmse.max()])
    axes[1].plot([0, top], [0, top], "k--", lw=1)
    axes[1].plot(bin_std, bin_rmse, "o-")
    axes[1].set(xlabel="RMS predicted σ (bin)", ylabel="RMSE (bin)", title="error vs σ")
    grid = np.linspace(-5, 5, 201)
    axes[2].hist(np.clip(e / s, -5, 5), bins=50, density=True, alpha=0.6)
    axes[2].plot(grid, stats.norm.pdf(grid), "k-", lw=1)
    axes[2].set(xlabel="z = error / σ", ylabel="density", title="z-scores")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return {"levels": levels, "observed": observed, "bin_std": bin_std, "bin_rmse": bin_rmse}
