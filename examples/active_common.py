"""Plotting shared by the active-learning examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_curves(curves: dict, path: Path, *, xlabel: str, ylabel: str, title: str, target=None, marker=None) -> None:
    """Error against labels, one line per strategy, log y; a PNG at ``path`` (skipped without matplotlib).

    Parameters
    ----------
    curves : dict
        ``{strategy name: [(labels, error), ...]}``.
    target : float or None
        Draws a dashed horizontal line at this error (same units as the curves).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, curve in curves.items():
        labels, error = np.array(curve).T
        ax.plot(labels, error, marker=marker, label=name)
    if target is not None:
        ax.axhline(target, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
