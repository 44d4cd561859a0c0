"""Step 4: structure and transport from the production MD, compared with experiment.

Reads ``<work>/md/<name>.extxyz`` (frames written by production.py / ``kernelpot md --output``), drops the
first ``--skip`` ps (equilibration), and writes to ``<work>/analysis/``:

* ``rdf.png``: g(r) and running coordination numbers of Na–O, Cl–O, Cl–H, O–O, Na–Cl (ASE's histograms);
* ``msd.png``: mean-squared displacements of water O, Na, Cl with the band of kinisi's posterior fits;
* ``close_pairs.png``: water O–O pairs closer than 2.55 Å per frame over the whole run, equilibration included,
  with their mean per ``--window`` ps against the revPBE0-D3 frames' (a model that extrapolates into
  collapsing hydrogen bonds shows it here first);
* ``results.json`` and ``results.md``: Cl–H pairs closer than any revPBE0-D3 frame's (1.64 Å) per frame;
  first-shell peaks and coordination numbers, self-diffusion coefficients
  with 95 % credible intervals, Yeh–Hummer-corrected (η of water at 298 K by default: ``--viscosity``), the
  Nernst–Einstein conductivity, next to the experimental values the issue quotes.

With one Na⁺ and one Cl⁻ in the box, the ion RDFs average over one ion (first shells are still well
defined after a few ps; Na–Cl is a single pair distance and means little) and the ion diffusion
coefficients have wide error bars: kinisi's intervals say how wide.

    python examples/electrolyte/analyse.py --skip 1

Several independent runs of the same box (``--name run1 run2``): the RDFs average over all their frames, each
run's diffusion coefficients come from its own MSD and are combined weighted by the atom-picoseconds each
observed (:func:`kernelpot.analysis.combine_diffusions`); figures and tables go to
``<work>/analysis/run1+run2/``, with one ``msd_<name>.png`` and ``close_pairs_<name>.png`` per run.

Runs analysed before, whose trajectories are gone (``--earlier results.json``, the file an earlier analysis
wrote): their per-run diffusion coefficients join the combined ones, each as the posterior its quantiles
record (``QUANTILES`` of them; a file written before they were kept gives a normal posterior of its recorded
mean and spread), with its own Yeh–Hummer shift; the RDFs and MSDs are the new runs' alone. So sessions that
each add a few runs build up one transport estimate:

    python examples/electrolyte/analyse.py --name s9c s9d --skip 1 --earlier docs/.../results.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import work_parser

PAIRS = [("Na", "O"), ("Cl", "O"), ("Cl", "H"), ("O", "O"), ("Na", "Cl")]
#: Experiment as quoted in issue 16 (298 K): first peak Å, coordination; D in 1e-9 m²/s (ions: infinite dilution).
EXPERIMENT = {"Na–O": {"peak": 2.4, "coordination": "5–6"}, "Cl–O": {"peak": 3.2, "coordination": "6–8"},
              "D": {"O": 2.30, "Na": 1.33, "Cl": 2.03}}
#: The stability check: water O–O pairs closer than this (Å) per frame ...
CLOSE_OO = 2.55
#: ... in the 150 revPBE0-D3 gen3 frames (``close_pair_counts`` of the shared data's ``revPBE0-D3_gen3.data``;
#: none below 2.45 Å but one): the target is a run within 2× of it in every window.
CLOSE_OO_REFERENCE = 0.81
#: Cl–H pairs closer than the closest of the 949 revPBE0-D3 frames (1.64 Å): a chloride holding a water's H
#: where no reference frame goes (the s8 model's failure), counted per frame over the whole run.
CLOSE_CLH = 1.64
#: Several runs are analysed together if their volumes differ by at most this fraction (the gen3 start frames of
#: the revPBE0-D3 data come from NPT: 2000 and 2054 Å³ for the same 2 NaCl + 62 H2O).
MAX_VOLUME_MISMATCH = 0.05
#: Quantiles kept of each run's posterior of D in results.json (enough for its 2.5 and 97.5 % points).
QUANTILES = 200
#: Shear viscosity of water at 298 K, Pa s (the Yeh–Hummer default; the model's own η is unknown here).
WATER_VISCOSITY = 0.89e-3


def load(path, skip_ps):
    """(every frame of the trajectory, the frames after the first ``skip_ps`` ps)."""
    from kernelpot.potential import read_frames

    if not path.is_file():
        raise SystemExit(f"no trajectory at {path}; run production.py first")
    frames = read_frames(path)
    start = frames[0].info["time_fs"] + 1000.0 * skip_ps
    kept = [f for f in frames if f.info["time_fs"] >= start]
    if len(kept) < 10:
        raise SystemExit(f"{path} holds {len(frames)} frames ({frames[-1].info['time_fs'] / 1000:.2f} ps); after "
                         f"--skip {skip_ps} ps only {len(kept)} remain: run the MD longer or skip less")
    return frames, kept


def read_earlier(paths, first, names, counts):
    """Per-run summaries of earlier analyses: {name: {"duration_ps", "shift", "volume", "temperature_K",
    "n_atoms": {symbol: n}, "D": {symbol: (mean, std)}}}, D and shifts in m²/s.

    The runs must be of the system of ``first`` (same formula where the file records one; volume within
    MAX_VOLUME_MISMATCH) and named apart from ``names`` and each other."""
    earlier = {}
    for path in paths:
        try:
            results = json.loads(Path(path).read_text())
            diffusion, runs = results["diffusion_1e-9_m2_s"], results["runs"]
            for name, run in runs.items():
                if name in names or name in earlier:
                    raise SystemExit(f"--earlier {path}: run {name!r} is already analysed here; name runs apart")
                formula = run.get("formula", first.get_chemical_formula())
                volume = run.get("volume_A3") or float(np.prod(results["cell_lengths_A"][name]))
                if formula != first.get_chemical_formula() or abs(volume / first.cell.volume - 1) > MAX_VOLUME_MISMATCH:
                    raise SystemExit(f"--earlier {path}: run {name!r} ({formula}, {volume:.0f} Å³) is not the system "
                                     f"of {names[0]!r} ({first.get_chemical_formula()}, {first.cell.volume:.0f} Å³)")
                earlier[name] = {
                    "duration_ps": float(run["duration_ps"]), "volume": volume,
                    "shift": 1e-9 * float(results["yeh_hummer_shift_1e-9_m2_s"][name]),
                    "temperature_K": float(run.get("temperature_K", results["temperature_K"])),
                    "n_atoms": run.get("n_atoms", counts),
                    "D": {s: (1e-9 * d["runs"][name]["D_pbc"], 1e-9 * d["runs"][name]["std"],
                              None if d["runs"][name].get("quantiles") is None
                              else 1e-9 * np.asarray(d["runs"][name]["quantiles"], dtype=float))
                          for s, d in diffusion.items() if name in d["runs"]}}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise SystemExit(f"--earlier {path}: not a results.json of analyse.py ({type(error).__name__}: "
                             f"{error})") from None
    return earlier


def posterior_quantiles(samples):
    """``QUANTILES`` equally spaced quantiles (probabilities (k + ½) / QUANTILES) of posterior samples: what
    ``results.json`` keeps of each run's posterior, so that a later ``--earlier`` keeps its skew (an ion's
    posterior of D is skewed to the right: its MSD's spread grows with D)."""
    return np.quantile(np.asarray(samples, dtype=float), (np.arange(QUANTILES) + 0.5) / QUANTILES)


def summary_diffusion(symbol, run, n_samples=4000, seed=0):
    """An earlier run's posterior of D as a :class:`Diffusion` without an MSD: samples drawn from its recorded
    quantiles (inverse-CDF sampling), or normal samples of its mean and spread in a file without quantiles."""
    from kernelpot.analysis import Diffusion

    mean, std, quantiles = run["D"][symbol]
    rng = np.random.default_rng(seed)
    if quantiles is None:
        samples = rng.normal(mean, std, n_samples)
    else:
        levels = (np.arange(len(quantiles)) + 0.5) / len(quantiles)
        samples = np.interp(rng.uniform(levels[0], levels[-1], n_samples), levels, quantiles)
    return Diffusion(species=symbol, D=mean, D_std=std,
                     D_interval=tuple(float(q) for q in np.percentile(samples, [2.5, 97.5])),
                     samples=samples, time=None, msd=None, msd_std=None, start=0.0,
                     n_atoms=int(run["n_atoms"][symbol]), duration=run["duration_ps"])


def close_pair_windows(frames, window_ps):
    """Water O–O pairs < CLOSE_OO per frame and their mean per ``window_ps`` (None without water O)."""
    from kernelpot.analysis import close_pair_counts, window_means

    if "O" not in frames[0].get_chemical_symbols():
        return None
    counts = close_pair_counts(frames, ("O", "O"), CLOSE_OO)
    time_ps = np.array([f.info["time_fs"] for f in frames]) / 1000.0
    return {"time_ps": time_ps, "counts": counts, "windows": window_means(time_ps, counts, window_ps)}


def main(argv=None):
    parser = work_parser(__doc__)
    parser.add_argument("--name", nargs="+", default=["revpbe0"],
                        help="trajectory <work>/md/<name>.extxyz; several names: independent runs of one system, "
                             "analysed together")
    parser.add_argument("--skip", type=float, default=1.0, help="ps of equilibration left out (of every run)")
    parser.add_argument("--viscosity", type=float, default=WATER_VISCOSITY, help="Pa s, for Yeh–Hummer")
    parser.add_argument("--temperature", type=float, default=None, help="K (default: the frames' mean)")
    parser.add_argument("--window", type=float, default=5.0, help="ps per window of the O–O stability check")
    parser.add_argument("--rdf-every", type=int, default=1,
                        help="RDFs from every n-th frame (frames 10 fs apart are strongly correlated; ASE's "
                             "histogram takes ~0.02 s per frame and pair for 190 atoms)")
    parser.add_argument("--earlier", type=Path, nargs="+", default=[],
                        help="results.json of earlier analyses of the same system: their runs' diffusion "
                             "coefficients join the combined ones")
    args = parser.parse_args(argv)

    from kernelpot.analysis import (
        close_pair_counts,
        combine_diffusions,
        nernst_einstein_conductivity,
        plot_close_pairs,
        plot_msds,
        plot_rdfs,
        radial_distribution,
        self_diffusion,
        yeh_hummer_correction,
    )

    names = list(dict.fromkeys(args.name))
    runs = {name: load(args.work / "md" / f"{name}.extxyz", args.skip) for name in names}
    first = next(iter(runs.values()))[1][0]
    for name, (_, kept) in runs.items():
        # one system: the same composition at nearly the same density (start frames of the reference data may
        # come from NPT runs, with their order of atoms and cells a little apart)
        ratio = kept[0].cell.volume / first.cell.volume
        if kept[0].get_chemical_formula() != first.get_chemical_formula() or abs(ratio - 1) > MAX_VOLUME_MISMATCH:
            raise SystemExit(f"run {name!r} ({kept[0].get_chemical_formula()}, {kept[0].cell.volume:.0f} Å³) is not "
                             f"the system of {names[0]!r} ({first.get_chemical_formula()}, {first.cell.volume:.0f} "
                             f"Å³): several runs must hold the same atoms in volumes within "
                             f"{100 * MAX_VOLUME_MISMATCH:g} %")
    label = "+".join(names)
    out = args.work / "analysis" if len(names) == 1 else args.work / "analysis" / label
    out.mkdir(parents=True, exist_ok=True)
    stability, close_clh = {}, {}
    for name, (everything, _) in runs.items():
        if {"Cl", "H"} <= set(everything[0].get_chemical_symbols()):
            below = close_pair_counts(everything, ("Cl", "H"), CLOSE_CLH)
            close_clh[name] = {"below_A": CLOSE_CLH, "mean": float(below.mean()),
                               "frames_with_any": float(np.mean(below > 0))}
        check = close_pair_windows(everything, args.window)
        if check is not None:
            stability[name] = check
            png = "close_pairs.png" if len(names) == 1 else f"close_pairs_{name}.png"
            plot_close_pairs(check["time_ps"], check["counts"], out / png, label=f"O–O < {CLOSE_OO} Å",
                             window_ps=args.window, reference=CLOSE_OO_REFERENCE,
                             title=f"{name}: stability (whole run)")
    frames = [f for _, kept in runs.values() for f in kept]
    durations = {name: (kept[-1].info["time_fs"] - kept[0].info["time_fs"]) / 1000.0
                 for name, (_, kept) in runs.items()}
    duration = sum(durations.values())
    temperature = args.temperature or float(np.mean([f.info.get("temperature_K", np.nan) for f in frames]))
    cells = {name: kept[0].cell for name, (_, kept) in runs.items()}
    volume = float(np.mean([c.volume for c in cells.values()]))
    length = float(np.cbrt(volume))
    species = set(first.get_chemical_symbols())
    pairs = [p for p in PAIRS if set(p) <= species]
    if args.rdf_every < 1:
        raise SystemExit(f"--rdf-every must be >= 1; got {args.rdf_every}")
    rdf_frames = [f for _, kept in runs.values() for f in kept[::args.rdf_every]]
    rdfs = [radial_distribution(rdf_frames, pair, n_bins=150) for pair in pairs]
    shells = {rdf.label: rdf.first_shell(r_min=1.2 if rdf.pair[1] == "H" else 0.0) for rdf in rdfs}
    runs_text = f"{len(names)} runs, " if len(names) > 1 else ""
    plot_rdfs(rdfs, out / "rdf.png", title=f"{label}: {runs_text}{len(frames)} frames, {duration:.1f} ps, "
              f"{temperature:.0f} K")
    # the cell, not a cube of its volume: the gen3 boxes are 20 x 10 x 10 Å, which corrects like a 15.7 Å cube;
    # each run by its own cell
    shifts = {name: yeh_hummer_correction(np.asarray(c[:]), temperature, args.viscosity) for name, c in cells.items()}
    counts = {s: first.get_chemical_symbols().count(s) for s in ("O", "Na", "Cl")}
    earlier = read_earlier(args.earlier, first, names, counts)
    shifts.update({name: run["shift"] for name, run in earlier.items()})
    per_run, diffusion, corrected = {}, {}, {}
    for symbol in ("O", "Na", "Cl"):
        if symbol in species:
            per_run[symbol] = {name: self_diffusion(kept, symbol) for name, (_, kept) in runs.items()}
            per_run[symbol].update({name: summary_diffusion(symbol, run, seed=k) for k, (name, run)
                                    in enumerate(earlier.items()) if symbol in run["D"]})
            diffusion[symbol] = combine_diffusions(list(per_run[symbol].values()))
            corrected[symbol] = combine_diffusions([d.corrected(shifts[name]) for name, d in per_run[symbol].items()])
    plot_msds(list(diffusion.values()), out / "msd.png", title=f"{label}: {runs_text}{duration:.1f} ps after "
              f"{args.skip} ps equilibration" + (f"; D with {len(earlier)} earlier runs" if earlier else ""))
    if len(names) > 1:
        for name in names:
            plot_msds([runs_of[name] for runs_of in per_run.values()], out / f"msd_{name}.png",
                      title=f"{name}: {durations[name]:.1f} ps after {args.skip} ps equilibration")
    if earlier:  # the conductivity's volume: of every run whose D enters it (the temperature is this run's)
        volume = float(np.mean([c.volume for c in cells.values()] + [run["volume"] for run in earlier.values()]))
    ions = {s: corrected[s].samples for s in ("Na", "Cl") if s in corrected}
    conductivity = nernst_einstein_conductivity(ions, {s: counts[s] for s in ions}, {"Na": 1, "Cl": -1}, volume,
                                                temperature) if ions else None
    runs_record = {name: {"frames": len(runs[name][1]), "duration_ps": durations[name],
                          "formula": first.get_chemical_formula(), "volume_A3": float(cells[name].volume),
                          "temperature_K": float(np.mean([f.info.get("temperature_K", np.nan) for f in runs[name][1]])),
                          "n_atoms": counts} for name in names}
    runs_record.update({name: {"duration_ps": run["duration_ps"], "formula": first.get_chemical_formula(),
                               "volume_A3": run["volume"], "temperature_K": run["temperature_K"],
                               "n_atoms": run["n_atoms"], "earlier": True} for name, run in earlier.items()})
    results = {"trajectory": label, "runs": runs_record, "earlier": [str(path) for path in args.earlier],
               "frames": len(frames), "duration_ps": duration, "temperature_K": temperature,
               "box_length_A": length, "cell_lengths_A": {name: [float(v) for v in c.lengths()]
                                                          for name, c in cells.items()},
               "duration_with_earlier_ps": duration + sum(r["duration_ps"] for r in earlier.values()),
               "yeh_hummer_shift_1e-9_m2_s": {name: v * 1e9 for name, v in shifts.items()},
               "viscosity_Pa_s": args.viscosity,
               "rdf": shells,
               "diffusion_1e-9_m2_s": {s: {"D_pbc": d.D * 1e9, "std": d.D_std * 1e9,
                                           "interval95": [v * 1e9 for v in d.D_interval],
                                           "D_yeh_hummer": corrected[s].D * 1e9,
                                           "D_yeh_hummer_std": corrected[s].D_std * 1e9, "fit_from_ps": d.start,
                                           "experiment": EXPERIMENT["D"][s],
                                           "runs": {name: {"D_pbc": r.D * 1e9, "std": r.D_std * 1e9,
                                                           "quantiles": [float(f"{q * 1e9:.5g}") for q
                                                                         in posterior_quantiles(r.samples)]}
                                                    for name, r in per_run[s].items()}}
                                       for s, d in diffusion.items()},
               "nernst_einstein_S_per_m": None if conductivity is None else {
                   "mean": float(np.mean(conductivity)), "std": float(np.std(conductivity))},
               "close_OO_per_frame": {name: {"below_A": CLOSE_OO, "reference": CLOSE_OO_REFERENCE,
                                             "window_ps": args.window, "windows": check["windows"]}
                                      for name, check in stability.items()} or None,
               "close_ClH_per_frame": close_clh or None,
               "load_average": os.getloadavg()[0]}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    run_list = "; ".join(f"{name} {durations[name]:.2f} ps" for name in names)
    lines = [f"{label}: {len(frames)} frames over {duration:.2f} ps at {temperature:.0f} K"
             + (f" ({len(names)} independent runs: {run_list})" if len(names) > 1 else "") + ", cell "
             + "; ".join(f"{' × '.join(f'{v:.2f}' for v in c.lengths())} Å" for c in cells.values()),
             "", "| pair | first peak (Å) | first minimum (Å) | coordination | experiment |", "|---|---|---|---|---|"]
    for pair_label, shell in shells.items():
        ref = EXPERIMENT.get(pair_label)
        ref_text = f"{ref['peak']} Å, {ref['coordination']}" if ref else ""
        lines.append(f"| {pair_label} | {shell['peak']:.2f} | {shell['minimum']:.2f} | {shell['coordination']:.2f} "
                     f"| {ref_text} |")
    several = len(names) + len(earlier) > 1
    lines += ["", "| species | D (PBC) | 95 % interval | D + Yeh–Hummer | experiment (298 K) |"
              + (" per run (PBC) |" if several else ""), "|---|---|---|---|---|" + ("---|" if several else "")]
    unquantiled = [name for name, run in earlier.items() if any(q is None for _, _, q in run["D"].values())]
    for s, d in results["diffusion_1e-9_m2_s"].items():
        each = ", ".join(f"{name}{'*' * (name in earlier)} {r['D_pbc']:.2f} ± {r['std']:.2f}"
                         for name, r in d["runs"].items())
        lines.append(f"| {s} | {d['D_pbc']:.2f} ± {d['std']:.2f} | {d['interval95'][0]:.2f}–{d['interval95'][1]:.2f}"
                     f" | {d['D_yeh_hummer']:.2f} | {d['experiment']} |" + (f" {each} |" if several else ""))
    lines.append("")
    lines.append("D in 10⁻⁹ m²/s (O: water oxygens)"
                 + ("; several runs: their mean weighted by the atom-ps each observed "
                    "(kernelpot.analysis.combine_diffusions)" if several else "")
                 + ("; * an earlier run (--earlier " + ", ".join(map(str, args.earlier))
                    + f"; {sum(r['duration_ps'] for r in earlier.values()):.2f} ps), the posterior its recorded "
                    "quantiles give" + (f" ({', '.join(unquantiled)}: recorded without them, a normal posterior of "
                                        "D ± std)" if unquantiled else "")
                    + "; RDFs and MSDs are this analysis's runs alone" if earlier else "")
                 + ". Yeh–Hummer shift "
                 + ", ".join(f"{v * 1e9:.3f}" for v in shifts.values())
                 + f" × 10⁻⁹ m²/s (η = {args.viscosity} Pa s; each run's own cell).")
    if conductivity is not None:
        lines.append(f"Nernst–Einstein conductivity: {np.mean(conductivity):.2f} ± {np.std(conductivity):.2f} S/m "
                     f"({counts['Na']} NaCl in {volume:.0f} Å³" + (", the runs' mean" if len(names) > 1 else "")
                     + ").")
    for name, below in close_clh.items():
        lines += ["", f"{name}: Cl–H pairs < {CLOSE_CLH} Å (below every revPBE0-D3 frame) per frame, whole run: "
                  f"{below['mean']:.3f} ({100 * below['frames_with_any']:.1f} % of frames have one)."]
    for name, check in stability.items():
        worst = max(w["mean"] for w in check["windows"])
        lines += ["", f"{name}: water O–O pairs < {CLOSE_OO} Å per frame (whole run; revPBE0-D3 frames "
                  f"{CLOSE_OO_REFERENCE}, target ≤ {2 * CLOSE_OO_REFERENCE:.1f} in every window): "
                  + ", ".join(f"{w['from_ps']:g}–{w['to_ps']:g} ps {w['mean']:.2f}" for w in check["windows"])
                  + f"; worst window {worst:.2f}: {'within' if worst <= 2 * CLOSE_OO_REFERENCE else 'beyond'} 2×."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"figures in {out}: " + ", ".join(sorted(path.name for path in out.glob("*.png"))))


if __name__ == "__main__":
    main()
