"""Liquid structure from MD frames: partial radial distribution functions, first solvation shells, coordination.

The histogramming is ASE's (:func:`ase.geometry.rdf.get_rdf`, partial RDFs normalised as LAMMPS ``compute
rdf``: ``g_ab = g_ba`` and ``g = Σ c_a c_b g_ab``); this module adds what a solvation study reads off an RDF:
the running coordination number ``n_ab(r) = 4π ρ_b ∫_0^r g_ab(s) s² ds`` (ρ_b = N_b/V, the number of b
atoms within r of an a atom on average), the first peak and the first minimum after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["RDF", "close_pair_counts", "radial_distribution", "rdf_table", "window_means"]


def _numbers(pair):
    from ase.data import atomic_numbers

    if len(pair) != 2:
        raise ValueError(f"`pair` must be two species (symbols or atomic numbers); got {pair!r}")
    out = []
    for item in pair:
        if isinstance(item, str):
            if item not in atomic_numbers:
                raise ValueError(f"unknown chemical symbol {item!r} in `pair` {pair!r}")
            out.append(atomic_numbers[item])
        else:
            out.append(int(item))
    return tuple(out)


@dataclass
class RDF:
    """A partial radial distribution function averaged over frames.

    Attributes
    ----------
    pair : tuple of str
        ``(a, b)``: the centre species and the neighbour species.
    r : ndarray of shape (n_bins,)
        Bin centres, Å.
    g : ndarray of shape (n_bins,)
        ``g_ab(r)``.
    edges : ndarray of shape (n_bins + 1,)
        Bin edges, Å.
    density : float
        Mean number density of b atoms, 1/Å³.
    n_centres : int
        a atoms per frame.
    n_frames : int
    """

    pair: tuple
    r: np.ndarray
    g: np.ndarray
    edges: np.ndarray
    density: float
    n_centres: int
    n_frames: int
    extra: dict = field(default_factory=dict)

    @property
    def label(self):
        return f"{self.pair[0]}–{self.pair[1]}"

    def running_coordination(self):
        """``n_ab`` at each bin's upper edge: b atoms within that distance of an a atom, on average."""
        shells = 4.0 * np.pi / 3.0 * (self.edges[1:] ** 3 - self.edges[:-1] ** 3)
        return np.cumsum(self.g * self.density * shells)

    def coordination(self, r_cut):
        """b neighbours of an a atom within ``r_cut`` Å (linear interpolation between bin edges)."""
        if not (self.edges[0] <= r_cut <= self.edges[-1]):
            raise ValueError(f"`r_cut` {r_cut} Å is outside the RDF's range [0, {self.edges[-1]:.3f}] Å")
        running = np.concatenate([[0.0], self.running_coordination()])
        return float(np.interp(r_cut, self.edges, running))

    def first_shell(self, *, r_min=0.0, window=1.5, smooth=3):
        """First peak, first minimum after it and the coordination number up to that minimum.

        Parameters
        ----------
        r_min : float, default=0.0
            Å. The peak is searched beyond it (e.g. 1.2 Å for O–H to skip the intramolecular bond).
        window : float, default=1.5
            Å after the peak in which the first minimum is searched.
        smooth : int, default=3
            Bins of the running mean applied before locating extrema (noise of short runs).

        Returns
        -------
        dict
            ``peak`` (Å), ``peak_height``, ``minimum`` (Å), ``minimum_height``, ``coordination`` (b atoms
            within ``minimum`` of an a atom). NaNs when g never exceeds 0 beyond ``r_min``.
        """
        g = np.convolve(self.g, np.ones(smooth) / smooth, mode="same") if smooth > 1 else self.g
        beyond = np.flatnonzero(self.r > r_min)
        nan = {"peak": np.nan, "peak_height": np.nan, "minimum": np.nan, "minimum_height": np.nan,
               "coordination": np.nan}
        if beyond.size == 0 or not np.any(g[beyond] > 0):
            return nan
        # The first peak: the maximum of the first stretch where g > 1 (the global maximum of a partial RDF
        # can be a later shell); no such stretch (e.g. one ion pair that never meets): the global maximum.
        start = beyond[0]
        above = g[start:] > 1.0
        if above.any():
            first = start + int(np.argmax(above))
            below = np.flatnonzero(~above[first - start:])
            last = first + (int(below[0]) if below.size else g.size - first)
            peak = first + int(np.argmax(g[first:last]))
        else:
            peak = start + int(np.argmax(g[start:]))
        after = np.flatnonzero((self.r > self.r[peak]) & (self.r <= self.r[peak] + window))
        if after.size == 0:
            return {**nan, "peak": float(self.r[peak]), "peak_height": float(self.g[peak])}
        minimum = after[int(np.argmin(g[after]))]
        return {"peak": float(self.r[peak]), "peak_height": float(g[peak]), "minimum": float(self.r[minimum]),
                "minimum_height": float(g[minimum]), "coordination": self.coordination(float(self.r[minimum]))}


def radial_distribution(frames, pair, *, r_max=None, n_bins=200):
    """Partial RDF ``g_ab(r)`` averaged over periodic frames (ASE's histogram).

    Parameters
    ----------
    frames : ase.Atoms or sequence of ase.Atoms
        Periodic in all directions; the cell may change between frames (NPT): each frame is normalised by
        its own volume.
    pair : (str or int, str or int)
        Centre and neighbour species, e.g. ``("Na", "O")``.
    r_max : float or None
        Å. At most half the smallest cell height (minimum image); None: that bound (times 0.999), at most 8 Å.
    n_bins : int, default=200

    Returns
    -------
    RDF
    """
    import ase
    from ase.atoms import Atoms
    from ase.data import chemical_symbols
    from ase.geometry.rdf import get_rdf

    if tuple(int(x) for x in ase.__version__.split(".")[:2]) < (3, 27):
        raise ImportError(f"radial_distribution needs ase >= 3.27 (partial RDFs normalised as LAMMPS); "
                          f"found {ase.__version__}")
    frames = [frames] if isinstance(frames, Atoms) else list(frames)
    if not frames:
        raise ValueError("`frames` is empty")
    a, b = _numbers(pair)
    heights = []
    for k, atoms in enumerate(frames):
        if not np.all(atoms.pbc):
            raise ValueError(f"frame {k} is not periodic in all directions (pbc={atoms.pbc.tolist()}): an RDF "
                             "normalised by the cell volume needs a bulk cell")
        for species in (a, b):
            if not np.any(atoms.numbers == species):
                raise ValueError(f"frame {k} ({atoms.get_chemical_formula()}) has no {chemical_symbols[species]}")
        volume = atoms.cell.volume
        heights.append(min(volume / np.linalg.norm(np.cross(atoms.cell[i - 2], atoms.cell[i - 1])) for i in range(3)))
    bound = 0.5 * min(heights)
    if r_max is None:
        r_max = min(0.999 * bound, 8.0)
    elif not (0 < r_max <= bound):
        raise ValueError(f"`r_max` must be in (0, {bound:.3f}] Å (half the smallest cell height); got {r_max!r}")
    if isinstance(n_bins, bool) or int(n_bins) < 2:
        raise ValueError(f"`n_bins` must be an integer >= 2; got {n_bins!r}")
    g = np.mean([get_rdf(atoms, float(r_max), int(n_bins), elements=(a, b), no_dists=True) for atoms in frames],
                axis=0)
    edges = np.linspace(0.0, float(r_max), int(n_bins) + 1)
    density = float(np.mean([np.count_nonzero(f.numbers == b) / f.cell.volume for f in frames]))
    n_centres = int(np.count_nonzero(frames[0].numbers == a))
    return RDF(pair=(chemical_symbols[a], chemical_symbols[b]), r=0.5 * (edges[1:] + edges[:-1]), g=g, edges=edges,
               density=density, n_centres=n_centres, n_frames=len(frames))


def rdf_table(rdfs, *, r_min=None):
    """First-shell numbers of several RDFs as rows of a table (dicts with the pair's label)."""
    r_min = r_min or {}
    rows = []
    for rdf in rdfs:
        shell = rdf.first_shell(r_min=r_min.get(rdf.label, 0.0))
        rows.append({"pair": rdf.label, **shell, "n_frames": rdf.n_frames})
    return rows


def close_pair_counts(frames, pair, r_max):
    """Number of ``pair`` distances shorter than ``r_max`` in each frame (minimum image): a stability check.

    An MD model that extrapolates badly often shows it first as atoms closer than the reference data ever
    put them (e.g. water O–O pairs below 2.55 Å, which revPBE0-D3 liquid frames hold about once per frame):
    counted per frame and averaged over time windows, a slow collapse is visible long before the RDF changes.

    Parameters
    ----------
    frames : ase.Atoms or sequence of ase.Atoms
        Periodic or not (``pbc`` of each frame is honoured).
    pair : (str or int, str or int)
        The two species, e.g. ``("O", "O")``; a same-species pair counts each pair of atoms once.
    r_max : float
        Å, > 0.

    Returns
    -------
    ndarray of shape (n_frames,), int
    """
    from ase.atoms import Atoms
    from ase.geometry import get_distances

    frames = [frames] if isinstance(frames, Atoms) else list(frames)
    a, b = _numbers(pair)
    if not (np.isfinite(r_max) and r_max > 0):
        raise ValueError(f"`r_max` must be a positive distance in Å; got {r_max!r}")
    counts = np.zeros(len(frames), dtype=int)
    for k, atoms in enumerate(frames):
        first, second = atoms.positions[atoms.numbers == a], atoms.positions[atoms.numbers == b]
        if len(first) == 0 or len(second) == 0:
            continue
        _, distances = get_distances(first, second, cell=atoms.cell, pbc=atoms.pbc)
        close = distances < r_max
        counts[k] = np.count_nonzero(np.triu(close, k=1)) if a == b else np.count_nonzero(close)
    return counts


def window_means(time_ps, values, window_ps):
    """Means of ``values`` over consecutive windows of ``window_ps`` from the first time on (empty windows left out).

    Returns
    -------
    list of dict
        ``from_ps``, ``to_ps`` (the last window ends at the last time), ``frames`` and ``mean`` of each window.
    """
    time_ps, values = np.asarray(time_ps, dtype=float), np.asarray(values, dtype=float)
    if not window_ps > 0:
        raise ValueError(f"`window_ps` must be positive; got {window_ps!r}")
    windows = []
    starts = np.arange(time_ps[0], time_ps[-1], window_ps)
    for k, start in enumerate(starts):
        # the last window keeps the last frame
        end_inside = time_ps <= start + window_ps if k == len(starts) - 1 else time_ps < start + window_ps
        inside = (time_ps >= start) & end_inside
        if np.any(inside):
            windows.append({"from_ps": round(float(start), 3), "to_ps": round(float(min(start + window_ps,
                            time_ps[-1])), 3), "frames": int(inside.sum()), "mean": float(values[inside].mean())})
    return windows
