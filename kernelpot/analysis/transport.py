"""Transport from MD frames: self-diffusion with uncertainties (kinisi), Yeh–Hummer correction, Nernst–Einstein.

Self-diffusion coefficients come from the mean-squared displacement through ``kinisi`` (``pip install
"kernelpot[analysis]"``): it models the covariance of the MSD between time intervals (overlapping windows
of one trajectory are strongly correlated) and samples the posterior of ``D`` by MCMC, so the error bar
reflects how much independent information the run holds, which an ordinary least-squares fit to the
MSD does not. kernelpot only picks the frames and the fitting window and converts units.

Finite periodic boxes slow diffusion down by the hydrodynamic self-interaction; Yeh & Hummer (J. Phys.
Chem. B 108, 15873 (2004)) give ``D_∞ = D_PBC + k_B T ξ / (6 π η L)`` for a cubic box of side ``L`` and
shear viscosity ``η``, ξ = 2.837297; for other box shapes ``ξ / L`` is the Ewald self-potential of the lattice
(:func:`periodic_self_potential`). (kinisi's ``YehHummer`` fits ``D_∞`` and η from several box sizes; with one
box η has to be known.) The Nernst–Einstein conductivity ``σ = e² / (V k_B T) Σ_i N_i z_i² D_i`` neglects
ion–ion velocity correlations (the distinct terms), which an ideal, dilute solution does not have.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "YEH_HUMMER_XI",
    "Diffusion",
    "combine_diffusions",
    "nernst_einstein_conductivity",
    "periodic_self_potential",
    "self_diffusion",
    "yeh_hummer_correction",
]

#: Ewald-sum constant of the Yeh–Hummer correction for a cubic box.
YEH_HUMMER_XI = 2.837297
_BOLTZMANN = 1.380649e-23  # J/K
_ELEMENTARY_CHARGE = 1.602176634e-19  # C


@dataclass
class Diffusion:
    """Self-diffusion of one species.

    Attributes
    ----------
    species : str
    D : float
        Posterior mean, m²/s.
    D_std : float
        Posterior standard deviation, m²/s.
    D_interval : tuple of float
        2.5 % and 97.5 % quantiles, m²/s.
    samples : ndarray
        Posterior samples of D, m²/s.
    time : ndarray or None
        Time intervals of the MSD, ps (None: a summary of an earlier run, e.g. read back from a results file,
        with its posterior and no MSD).
    msd : ndarray or None
        Mean-squared displacement, Å² (over atoms and time origins).
    msd_std : ndarray
        Its standard deviation as kinisi estimates it, Å².
    start : float
        ps; the fit uses intervals from here on (the diffusive regime).
    n_atoms : int
    duration : float
        ps covered by the frames.
    fit : ndarray of shape (n_samples, n_times)
        MSD lines of posterior samples (for credible bands), Å².
    """

    species: str
    D: float
    D_std: float
    D_interval: tuple
    samples: np.ndarray
    time: np.ndarray
    msd: np.ndarray
    msd_std: np.ndarray
    start: float
    n_atoms: int
    duration: float
    fit: np.ndarray = field(repr=False, default=None)

    def corrected(self, shift):
        """A copy with ``shift`` (m²/s, e.g. :func:`yeh_hummer_correction`) added to every D value."""
        import dataclasses

        return dataclasses.replace(self, D=self.D + shift, D_interval=tuple(np.add(self.D_interval, shift)),
                                   samples=self.samples + shift)


def _frame_times(frames, frame_interval):
    """ps of each frame: ``info["time_fs"]`` (ResumableMD frames) or a constant ``frame_interval`` fs."""
    if frame_interval is not None:
        if not (isinstance(frame_interval, (int, float, np.number)) and frame_interval > 0):
            raise ValueError(f"`frame_interval` must be a number > 0 fs; got {frame_interval!r}")
        return np.arange(len(frames)) * float(frame_interval) / 1000.0
    if not all("time_fs" in f.info for f in frames):
        raise ValueError("the frames carry no info['time_fs'] (written by kernelpot md --output / ResumableMD); "
                         "give `frame_interval` (fs between frames)")
    return np.array([f.info["time_fs"] for f in frames], dtype=float) / 1000.0


def self_diffusion(frames, species, *, frame_interval=None, start=None, max_interval=0.5, n_samples=1000,
                   random_state=0, progress=False):
    """Self-diffusion coefficient of one species with its posterior (kinisi), from equally spaced frames.

    Parameters
    ----------
    frames : sequence of ase.Atoms
        Consecutive MD frames, equally spaced in time, periodic, positions wrapped or not (kinisi unwraps;
        no atom may move by half a cell between frames). The centre-of-mass drift of the whole system is
        removed.
    species : str
        Chemical symbol, e.g. ``"O"`` for water (its oxygens), ``"Na"``.
    frame_interval : float or None
        fs between frames; None: from ``info["time_fs"]``.
    start : float or None
        ps; intervals shorter than this are left out of the fit (ballistic and caged motion). None: 10 % of
        the longest interval used, at least 2 frame intervals.
    max_interval : float, default=0.5
        Longest interval used, as a fraction of the run (longer ones have too few independent origins).
    n_samples : int, default=1000
        MCMC samples (per walker, before thinning, as kinisi counts them).
    random_state : int, default=0

    Returns
    -------
    Diffusion
    """
    try:
        import scipp as sc
        from kinisi.analyze import DiffusionAnalyzer
    except ImportError:
        raise ImportError("self_diffusion needs kinisi: pip install 'kernelpot[analysis]'") from None
    frames = list(frames)
    if len(frames) < 10:
        raise ValueError(f"`frames` has {len(frames)} frames; a diffusion coefficient needs at least 10")
    symbols = set(frames[0].get_chemical_symbols())
    if species not in symbols:
        raise ValueError(f"species {species!r} is not in the frames (they hold {sorted(symbols)})")
    if any(len(f) != len(frames[0]) or np.any(f.numbers != frames[0].numbers) for f in frames):
        raise ValueError("the frames must all hold the same atoms in the same order")
    times = _frame_times(frames, frame_interval)
    steps = np.diff(times)
    if np.any(steps <= 0) or np.ptp(steps) > 1e-6 * max(steps.mean(), 1e-12):
        raise ValueError("the frames must be equally spaced in time (info['time_fs'] differs between them); "
                         "pass frames of one run with a constant output interval")
    if not (0 < max_interval <= 1):
        raise ValueError(f"`max_interval` must be in (0, 1]; got {max_interval!r}")
    dt_frame = float(steps.mean())
    n_max = max(3, int(max_interval * (len(frames) - 1)))
    start = max(2 * dt_frame, 0.1 * n_max * dt_frame) if start is None else float(start)
    if not (0 < start < n_max * dt_frame):
        raise ValueError(f"`start` must be in (0, {n_max * dt_frame:.4g}) ps (the longest interval used); "
                         f"got {start!r}")
    intervals = sc.array(dims=["time interval"], values=np.arange(1, n_max + 1) * dt_frame, unit="ps")
    analyzer = DiffusionAnalyzer.from_ase(frames, specie=species, time_step=sc.scalar(dt_frame, unit="ps"),
                                          step_skip=sc.scalar(1), dt=intervals, progress=progress)
    analyzer.diffusion(sc.scalar(start, unit="ps"), n_samples=int(n_samples), progress=progress,
                       random_state=np.random.RandomState(random_state))
    samples = np.asarray(sc.to_unit(analyzer.D, "m^2/s").values, dtype=float)  # kinisi reports cm²/s
    msd = analyzer.msd
    return Diffusion(species=species, D=float(samples.mean()), D_std=float(samples.std()),
                     D_interval=tuple(float(q) for q in np.percentile(samples, [2.5, 97.5])), samples=samples,
                     time=np.asarray(analyzer.da.coords["time interval"].values, dtype=float),
                     msd=np.asarray(msd.values, dtype=float),
                     msd_std=np.sqrt(np.asarray(msd.variances, dtype=float)) if msd.variances is not None else None,
                     start=start, n_atoms=frames[0].get_chemical_symbols().count(species),
                     duration=float(times[-1] - times[0]), fit=np.asarray(analyzer.distributions).T)


def combine_diffusions(runs, random_state=0):
    """One diffusion coefficient from independent runs of the same system, each weighted by what it observed.

    Run ``i`` gets the weight ``n_atoms_i × duration_i`` (atom-picoseconds of motion), the share its frames
    would have in the MSD of one run holding all of them. The weights do not depend on the runs' estimates:
    an inverse-variance mean would, and is biased low, because a diffusion posterior's spread grows with its
    own D (the MSD's variance goes as (6 D t)²), so a run whose ions happened to move little reports a small
    error bar and takes most of the weight. Two 25 ps runs of two chlorides each, D = 0.46 ± 0.24 and
    1.59 ± 0.64 × 10⁻⁹ m²/s, have the inverse-variance mean 0.60, far below their average; here they give 1.03.

    The combined posterior samples are the same weighted mean of the runs' samples, each run's samples
    shuffled independently (the runs share no trajectory, so their errors are independent): its spread is
    ``sqrt(Σ w_i² σ_i²)``.

    Parameters
    ----------
    runs : sequence of Diffusion
        One per run, all of the same species, from frames equally spaced by the same interval (e.g.
        :func:`self_diffusion` on each trajectory). A run without an MSD (``time`` None: the posterior of
        an earlier run, kept as a summary) counts in ``D`` only.
    random_state : int, default=0
        Seeds the shuffles.

    Returns
    -------
    Diffusion
        ``D``, ``D_std``, ``D_interval`` and ``samples`` (as many as the shortest run's) of the weighted mean;
        ``time`` and ``msd``: the MSDs of the runs that have one, averaged with their weights over the
        intervals all of them have (None if no run has one); ``msd_std`` and ``fit`` None; ``start`` the
        latest of the runs'; ``n_atoms`` summed; ``duration`` summed (ps of trajectory used).
    """
    runs = list(runs)
    if not runs:
        raise ValueError("`runs` is empty")
    species = {run.species for run in runs}
    if len(species) > 1:
        raise ValueError(f"the runs are of different species {sorted(species)}; combine one species at a time")
    with_msd = [i for i, run in enumerate(runs) if run.time is not None]
    short = [i for i in with_msd if runs[i].time.size < 2]
    if short:
        raise ValueError(f"run(s) {short} have an MSD at fewer than two time intervals; a run needs frames at "
                         "several intervals to give a diffusion coefficient")
    steps = [float(runs[i].time[1] - runs[i].time[0]) for i in with_msd]
    if steps and not np.allclose(steps, steps[0], rtol=1e-6):
        raise ValueError(f"the runs' MSDs are sampled at different intervals ({steps} ps); write the frames of "
                         "every run at the same interval")
    observed = np.array([run.n_atoms * run.duration for run in runs], dtype=float)
    if not np.all(np.isfinite(observed) & (observed > 0)):
        raise ValueError(f"every run needs n_atoms > 0 and duration > 0 ps to be weighted; got atom-ps {observed}")
    weights = observed / observed.sum()
    rng = np.random.default_rng(random_state)
    n = min(run.samples.size for run in runs)
    samples = sum(w * rng.permutation(run.samples)[:n] for w, run in zip(weights, runs))
    time = msd = None
    if with_msd:
        length = min(runs[i].time.size for i in with_msd)
        msd_weights = weights[with_msd] / weights[with_msd].sum()
        msd = sum(w * runs[i].msd[:length] for w, i in zip(msd_weights, with_msd))
        time = runs[with_msd[0]].time[:length]
    return Diffusion(species=runs[0].species, D=float(samples.mean()), D_std=float(samples.std()),
                     D_interval=tuple(float(q) for q in np.percentile(samples, [2.5, 97.5])), samples=samples,
                     time=time, msd=msd, msd_std=None, start=max(run.start for run in runs),
                     n_atoms=sum(run.n_atoms for run in runs), duration=sum(run.duration for run in runs))


def periodic_self_potential(cell):
    """Potential (1/Å) that a unit point charge feels from its own periodic images in a neutralising background.

    ``ψ = lim_{r→0} [φ_periodic(r) - 1/r]`` by Ewald summation (real-space images, reciprocal lattice, the
    self term and the background term; independent of the splitting parameter). For a cube of side ``L``
    ``ψ = -2.837297 / L`` (:data:`YEH_HUMMER_XI`). The same lattice sum is the trace of the periodic Oseen tensor's
    self term (Hasimoto 1959), so ``-ψ`` replaces ``ξ / L`` in the Yeh–Hummer correction of any box shape.

    Parameters
    ----------
    cell : array-like, (3, 3) or (3,)
        Cell vectors as rows, Å, or the three lengths of an orthorhombic cell.
    """
    from scipy.special import erfc

    cell = np.asarray(cell, dtype=float)
    cell = np.diag(cell) if cell.shape == (3,) else cell
    if cell.shape != (3, 3) or not np.all(np.isfinite(cell)) or abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError(f"`cell` must be three lengths or a (3, 3) matrix of a non-degenerate cell, Å; got {cell!r}")
    volume = abs(np.linalg.det(cell))
    alpha = np.sqrt(np.pi) / np.cbrt(volume)  # balances the two sums; the result does not depend on it
    reciprocal = 2.0 * np.pi * np.linalg.inv(cell).T
    # erfc(alpha r) and exp(-k^2 / 4 alpha^2) below 1e-16 beyond these many cells along each vector
    reach = 6.0 / alpha
    n_real = np.ceil(reach * np.linalg.norm(np.linalg.inv(cell), axis=0)).astype(int)
    n_reci = np.ceil(2.0 * alpha * 6.0 / (2.0 * np.pi) * np.linalg.norm(cell, axis=1)).astype(int)

    def lattice(vectors, n):
        grid = np.stack(np.meshgrid(*[np.arange(-m, m + 1) for m in n], indexing="ij"), -1).reshape(-1, 3)
        points = grid[np.any(grid != 0, axis=1)] @ vectors
        return np.linalg.norm(points, axis=1)

    r = lattice(cell, n_real)
    k = lattice(reciprocal, n_reci)
    real = np.sum(erfc(alpha * r) / r)
    recip = 4.0 * np.pi / volume * np.sum(np.exp(-(k**2) / (4.0 * alpha**2)) / k**2)
    return float(real + recip - 2.0 * alpha / np.sqrt(np.pi) - np.pi / (alpha**2 * volume))


def yeh_hummer_correction(box, temperature, viscosity):
    """``k_B T ξ / (6 π η L)``: add it to a diffusion coefficient from a periodic box, m²/s.

    Parameters
    ----------
    box : float or array-like
        Å: the side of a cube, or a cell ((3, 3) rows or three orthorhombic lengths). For a box that is not a
        cube, ``ξ / L`` becomes ``-ψ`` of :func:`periodic_self_potential`: the correction of the
        direction-averaged D (the MSD of all three directions) for that box shape (Kikugawa et al., J. Chem.
        Phys. 143, 024507 (2015), give the per-direction corrections).
    temperature : float
        K.
    viscosity : float
        Shear viscosity η, Pa·s (water at 298 K: 0.89e-3; use the model's own η when known).
    """
    for name, value in (("temperature", temperature), ("viscosity", viscosity)):
        if not (isinstance(value, (int, float, np.number)) and np.isfinite(value) and value > 0):
            raise ValueError(f"`{name}` must be a number > 0; got {value!r}")
    if np.ndim(box) == 0:
        if not (isinstance(box, (int, float, np.number)) and np.isfinite(box) and box > 0):
            raise ValueError(f"`box` must be a cube side > 0 (Å) or a cell; got {box!r}")
        inverse_length = YEH_HUMMER_XI / float(box)
    else:
        inverse_length = -periodic_self_potential(box)
    return _BOLTZMANN * temperature * inverse_length / (6.0 * np.pi * viscosity * 1e-10)


def nernst_einstein_conductivity(diffusion, counts, charges, volume, temperature):
    """Ideal (Nernst–Einstein) ionic conductivity ``e² / (V k_B T) Σ_i N_i z_i² D_i``, S/m.

    Parameters
    ----------
    diffusion : dict
        Species -> D, m²/s (a number or an array of posterior samples: the result then is samples too).
    counts : dict
        Species -> number of ions in the box.
    charges : dict
        Species -> charge number z (e.g. ``{"Na": 1, "Cl": -1}``).
    volume : float
        Box volume, Å³.
    temperature : float
        K.
    """
    missing = sorted(set(diffusion) - set(counts) | set(diffusion) - set(charges))
    if missing:
        raise ValueError(f"no count or charge for species {missing}")
    if not (volume > 0 and temperature > 0):
        raise ValueError(f"`volume` and `temperature` must be > 0; got {volume!r}, {temperature!r}")
    total = sum(counts[s] * charges[s] ** 2 * np.asarray(d, dtype=float) for s, d in diffusion.items())
    return _ELEMENTARY_CHARGE**2 / (volume * 1e-30 * _BOLTZMANN * temperature) * total
