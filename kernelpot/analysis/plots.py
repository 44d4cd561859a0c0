"""PNG figures of the analysis: RDFs with running coordination numbers, MSDs with their diffusion fits."""

from __future__ import annotations

import numpy as np

from ..utils.files import save_figure

__all__ = ["plot_close_pairs", "plot_msds", "plot_rdfs"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'kernelpot[analysis]'") from None
    return plt


def _save(plt, figure, path):
    figure.tight_layout()
    path = save_figure(figure, path)
    plt.close(figure)
    return path


def plot_rdfs(rdfs, path, *, title=None):
    """One panel per RDF: g(r) (left axis) and the running coordination number (right axis, dashed).

    Parameters
    ----------
    rdfs : sequence of kernelpot.analysis.RDF
    path : str or Path
        PNG file written.

    Returns
    -------
    Path
    """
    plt = _pyplot()
    n = len(rdfs)
    columns = min(n, 3)
    rows = int(np.ceil(n / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for ax, rdf in zip(axes.ravel(), rdfs):
        ax.plot(rdf.r, rdf.g, color="C0")
        ax.axhline(1.0, color="0.7", lw=0.8)
        ax.set_xlabel("r (Å)")
        ax.set_ylabel(f"g$_{{{rdf.label}}}$(r)")
        shell = rdf.first_shell(r_min=1.2 if rdf.pair[1] == "H" else 0.0)
        if np.isfinite(shell["peak"]):
            ax.axvline(shell["minimum"], color="0.5", ls=":", lw=0.8)
            ax.set_title(f"{rdf.label}: peak {shell['peak']:.2f} Å, n = {shell['coordination']:.1f}", fontsize=9)
        twin = ax.twinx()
        twin.plot(rdf.edges[1:], rdf.running_coordination(), color="C1", ls="--")
        twin.set_ylabel("n(r)", color="C1")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    if title:
        figure.suptitle(title, fontsize=10)
    return _save(plt, figure, path)


def plot_msds(diffusions, path, *, title=None):
    """MSD of each species against time with the band of posterior fits and the fit window.

    Parameters
    ----------
    diffusions : sequence of kernelpot.analysis.Diffusion
    path : str or Path

    Returns
    -------
    Path
    """
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(5.5, 4.0))
    for k, diffusion in enumerate(diffusions):
        colour = f"C{k}"
        label = (f"{diffusion.species}: D = {diffusion.D * 1e9:.2f} ± {diffusion.D_std * 1e9:.2f} "
                 "× 10⁻⁹ m²/s")
        ax.plot(diffusion.time, diffusion.msd, color=colour, label=label)
        if diffusion.msd_std is not None:
            ax.fill_between(diffusion.time, diffusion.msd - diffusion.msd_std, diffusion.msd + diffusion.msd_std,
                            color=colour, alpha=0.15, lw=0)
        if diffusion.fit is not None:
            window = diffusion.time >= diffusion.start
            low, high = np.percentile(diffusion.fit[:, window], [2.5, 97.5], axis=0)
            ax.fill_between(diffusion.time[window], low, high, color=colour, alpha=0.35, lw=0)
        ax.axvline(diffusion.start, color=colour, ls=":", lw=0.8)
    ax.set_xlabel("time interval (ps)")
    ax.set_ylabel("MSD (Å²)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(plt, figure, path)


def plot_close_pairs(time_ps, counts, path, *, label, window_ps=1.0, reference=None, title=None):
    """Close pairs per frame against time (points) with their mean per window (steps) and a reference level.

    Parameters
    ----------
    time_ps : array_like of shape (n_frames,)
        ps.
    counts : array_like of shape (n_frames,)
        E.g. :func:`kernelpot.analysis.close_pair_counts`.
    path : str or Path
        PNG file written.
    label : str
        What is counted, e.g. ``"O–O < 2.55 Å"``.
    window_ps : float, default=1.0
    reference : float or None
        The reference data's mean per frame, drawn as a line.

    Returns
    -------
    Path
    """
    plt = _pyplot()
    time_ps, counts = np.asarray(time_ps, dtype=float), np.asarray(counts, dtype=float)
    figure, ax = plt.subplots(figsize=(6.0, 3.5))
    ax.plot(time_ps, counts, ".", color="0.6", ms=2, label="per frame")
    from .structure import window_means

    windows = window_means(time_ps, counts, window_ps)
    ax.step([w["from_ps"] for w in windows] + [windows[-1]["to_ps"]],
            [w["mean"] for w in windows] + [windows[-1]["mean"]], where="post", color="C0",
            label=f"mean per {window_ps:g} ps")
    if reference is not None:
        ax.axhline(reference, color="C3", ls="--", label=f"reference {reference:.2f}")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel(f"pairs {label} per frame")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(plt, figure, path)
