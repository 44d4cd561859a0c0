"""Learning curves: test errors of one recipe fitted at several training-set sizes, and their log–log plot.

The training sets are nested (the first ``n`` structures of one seeded
permutation of the training pool), so a larger set only adds structures;
every size is fitted from scratch by a fresh model of the same recipe
(``make_model``), and all are measured on the same test structures with
:func:`kernelpot.potential.metrics.error_table`.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..models.gap.auto import holdout_indices
from ..utils.files import save_figure
from .metrics import error_table

__all__ = ["learning_curve", "plot_learning_curve", "split_holdout"]


def _subset(data, index):
    index = list(index)
    return replace(data, atoms=[data.atoms[s] for s in index], energies=[data.energies[s] for s in index],
                   forces=[data.forces[s] for s in index], virials=[data.virials[s] for s in index],
                   config_types=[data.config_types[s] for s in index], indices=np.asarray(data.indices)[index],
                   skipped={})


def split_holdout(data, fraction, seed=0):
    """``(pool, test)``: a seeded random ``fraction`` of ``data``'s structures held out as the test set."""
    if not 0 < fraction < 1:
        raise ValueError(f"`fraction` must be between 0 and 1; got {fraction!r}")
    kept, held_out = holdout_indices(len(data), fraction, seed)
    return _subset(data, kept), _subset(data, held_out)


def learning_curve(make_model, train, test, sizes, *, seed=0, verbose=False):
    """Fit ``make_model(structures)`` on nested training subsets and measure each on ``test``.

    Parameters
    ----------
    make_model : callable
        ``make_model(list of ase.Atoms) -> unfitted SparseGPR`` (the recipe).
    train, test : kernelpot.io.LabelledStructures
        Training pool and test structures.
    sizes : sequence of int
        Training-set sizes, increasing, each at most ``len(train)``.
    seed : int, default=0
        Seeds the permutation of the training pool.
    verbose : bool, default=False
        Print one line per size.

    Returns
    -------
    list of dict
        One row per size: ``"n_train"``, ``"energy_mae"`` (eV/atom),
        ``"energy_per_structure_mae"`` (eV), ``"forces_mae"`` (eV/Å),
        their RMSEs, ``"n_sparse"`` and ``"fit_seconds"`` (CPU seconds).
    """
    sizes = [int(n) for n in sizes]
    if not sizes or any(n < 1 for n in sizes) or any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"`sizes` must be increasing integers >= 1; got {sizes}")
    if sizes[-1] > len(train):
        raise ValueError(f"the largest training size {sizes[-1]} exceeds the {len(train)} training structures")
    order = np.random.default_rng(seed).permutation(len(train))
    rows = []
    for n in sizes:
        subset = _subset(train, np.sort(order[:n]))
        model = make_model(subset.atoms)
        start = time.process_time()
        model.fit(subset.atoms, **subset.labels())
        seconds = time.process_time() - start
        errors = error_table(model, test)
        row = {"n_train": n, "n_sparse": int(model.alpha_.size), "fit_seconds": seconds}
        row.update({key: errors[key] for key in ("energy_mae", "energy_rmse", "energy_per_structure_mae",
                                                  "energy_per_structure_rmse", "forces_mae", "forces_rmse")})
        rows.append(row)
        if verbose:
            forces = "-" if row["forces_mae"] is None else f"{1e3 * row['forces_mae']:.2f} meV/Å"
            print(f"learning curve: {n} structures, {row['n_sparse']} sparse points: force MAE {forces}, "
                  f"energy MAE {1e3 * row['energy_mae']:.3f} meV/atom ({seconds:.0f} s CPU)", flush=True)
    return rows


def plot_learning_curve(rows, path, *, title=None):
    """Write a log–log PNG of the force and energy MAE against the training-set size.

    Parameters
    ----------
    rows : list of dict
        From :func:`learning_curve`.
    path : str or Path
        PNG file to write.
    title : str, optional
    """
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [row["n_train"] for row in rows]
    panels = [("forces_mae", "force MAE (meV/Å)"), ("energy_mae", "energy MAE (meV/atom)")]
    panels = [(key, label) for key, label in panels if all(row[key] is not None for row in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        ax.loglog(n, [1e3 * row[key] for row in rows], "o-")
        ax.set_xticks(n, [str(size) for size in n])  # the sizes themselves, not powers of ten
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("training structures")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
