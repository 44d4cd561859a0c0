"""Step 4: structure and transport from the production MD, compared with experiment.

Reads ``<work>/md/<name>.extxyz`` (frames written by production.py / ``kernelpot md --output``), drops the
first ``--skip`` ps (equilibration), and writes to ``<work>/analysis/``:

* ``rdf.png``: g(r) and running coordination numbers of Na–O, Cl–O, Cl–H, O–O, Na–Cl (ASE's histograms);
* ``msd.png``: mean-squared displacements of water O, Na, Cl with the band of kinisi's posterior fits;
* ``close_pairs.png``: water O–O pairs closer than 2.55 Å per frame over the whole run, equilibration included,
  with their mean per ``--window`` ps against the revPBE0-D3 frames' (a model that extrapolates into
  collapsing hydrogen bonds shows it here first);
* ``results.json`` and ``results.md``: first-shell peaks and coordination numbers, self-diffusion coefficients
  with 95 % credible intervals, Yeh–Hummer-corrected (η of water at 298 K by default: ``--viscosity``), the
  Nernst–Einstein conductivity, next to the experimental values the issue quotes.

With one Na⁺ and one Cl⁻ in the box, the ion RDFs average over one ion (first shells are still well
defined after a few ps; Na–Cl is a single pair distance and means little) and the ion diffusion
coefficients have wide error bars: kinisi's intervals say how wide.

    python examples/electrolyte/analyse.py --skip 1
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
    parser.add_argument("--name", default="revpbe0", help="trajectory <work>/md/<name>.extxyz")
    parser.add_argument("--skip", type=float, default=1.0, help="ps of equilibration left out")
    parser.add_argument("--viscosity", type=float, default=WATER_VISCOSITY, help="Pa s, for Yeh–Hummer")
    parser.add_argument("--temperature", type=float, default=None, help="K (default: the frames' mean)")
    parser.add_argument("--window", type=float, default=5.0, help="ps per window of the O–O stability check")
    args = parser.parse_args(argv)

    from kernelpot.analysis import (
        nernst_einstein_conductivity,
        plot_close_pairs,
        plot_msds,
        plot_rdfs,
        radial_distribution,
        self_diffusion,
        yeh_hummer_correction,
    )

    everything, frames = load(args.work / "md" / f"{args.name}.extxyz", args.skip)
    out = args.work / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    stability = close_pair_windows(everything, args.window)
    if stability is not None:
        plot_close_pairs(stability["time_ps"], stability["counts"], out / "close_pairs.png",
                         label=f"O–O < {CLOSE_OO} Å", window_ps=args.window, reference=CLOSE_OO_REFERENCE,
                         title=f"{args.name}: stability (whole run)")
    duration = (frames[-1].info["time_fs"] - frames[0].info["time_fs"]) / 1000.0
    temperature = args.temperature or float(np.mean([f.info.get("temperature_K", np.nan) for f in frames]))
    cell = frames[0].cell
    length = float(np.cbrt(cell.volume))
    species = set(frames[0].get_chemical_symbols())
    pairs = [p for p in PAIRS if set(p) <= species]
    rdfs = [radial_distribution(frames, pair, n_bins=150) for pair in pairs]
    shells = {rdf.label: rdf.first_shell(r_min=1.2 if rdf.pair[1] == "H" else 0.0) for rdf in rdfs}
    plot_rdfs(rdfs, out / "rdf.png", title=f"{args.name}: {len(frames)} frames, {duration:.1f} ps, "
              f"{temperature:.0f} K")
    # the cell, not a cube of its volume: the gen3 boxes are 20 x 10 x 10 Å, which corrects like a 15.7 Å cube
    shift = yeh_hummer_correction(np.asarray(cell[:]), temperature, args.viscosity)
    diffusion = {}
    for symbol in ("O", "Na", "Cl"):
        if symbol in species:
            diffusion[symbol] = self_diffusion(frames, symbol)
    plot_msds(list(diffusion.values()), out / "msd.png", title=f"{args.name}: {duration:.1f} ps after "
              f"{args.skip} ps equilibration")
    counts = {s: frames[0].get_chemical_symbols().count(s) for s in ("Na", "Cl")}
    ions = {s: diffusion[s].corrected(shift).samples for s in ("Na", "Cl") if s in diffusion}
    conductivity = nernst_einstein_conductivity(ions, counts, {"Na": 1, "Cl": -1}, cell.volume, temperature) \
        if ions else None
    results = {"trajectory": args.name, "frames": len(frames), "duration_ps": duration, "temperature_K": temperature,
               "box_length_A": length, "cell_lengths_A": [float(v) for v in cell.lengths()],
               "yeh_hummer_shift_1e-9_m2_s": shift * 1e9, "viscosity_Pa_s": args.viscosity,
               "rdf": shells,
               "diffusion_1e-9_m2_s": {s: {"D_pbc": d.D * 1e9, "std": d.D_std * 1e9,
                                           "interval95": [v * 1e9 for v in d.D_interval],
                                           "D_yeh_hummer": (d.D + shift) * 1e9, "fit_from_ps": d.start,
                                           "experiment": EXPERIMENT["D"][s]} for s, d in diffusion.items()},
               "nernst_einstein_S_per_m": None if conductivity is None else {
                   "mean": float(np.mean(conductivity)), "std": float(np.std(conductivity))},
               "close_OO_per_frame": None if stability is None else {
                   "below_A": CLOSE_OO, "reference": CLOSE_OO_REFERENCE, "window_ps": args.window,
                   "windows": stability["windows"]},
               "load_average": os.getloadavg()[0]}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    lines = [f"{args.name}: {len(frames)} frames over {duration:.2f} ps at {temperature:.0f} K, cell "
             f"{' × '.join(f'{v:.2f}' for v in cell.lengths())} Å",
             "", "| pair | first peak (Å) | first minimum (Å) | coordination | experiment |", "|---|---|---|---|---|"]
    for label, shell in shells.items():
        ref = EXPERIMENT.get(label)
        ref_text = f"{ref['peak']} Å, {ref['coordination']}" if ref else ""
        lines.append(f"| {label} | {shell['peak']:.2f} | {shell['minimum']:.2f} | {shell['coordination']:.2f} | "
                     f"{ref_text} |")
    lines += ["", "| species | D (PBC) | 95 % interval | D + Yeh–Hummer | experiment (298 K) |",
              "|---|---|---|---|---|"]
    for s, d in results["diffusion_1e-9_m2_s"].items():
        lines.append(f"| {s} | {d['D_pbc']:.2f} ± {d['std']:.2f} | {d['interval95'][0]:.2f}–{d['interval95'][1]:.2f}"
                     f" | {d['D_yeh_hummer']:.2f} | {d['experiment']} |")
    lines.append("")
    lines.append("D in 10⁻⁹ m²/s (O: water oxygens). Yeh–Hummer shift "
                 f"{shift * 1e9:.2f} × 10⁻⁹ m²/s (η = {args.viscosity} Pa s, cell "
                 f"{' × '.join(f'{v:.2f}' for v in cell.lengths())} Å).")
    if conductivity is not None:
        lines.append(f"Nernst–Einstein conductivity: {np.mean(conductivity):.2f} ± {np.std(conductivity):.2f} S/m "
                     f"({counts['Na']} NaCl in {cell.volume:.0f} Å³).")
    if stability is not None:
        worst = max(w["mean"] for w in stability["windows"])
        lines += ["", f"Water O–O pairs < {CLOSE_OO} Å per frame (whole run; revPBE0-D3 frames {CLOSE_OO_REFERENCE}, "
                  f"target ≤ {2 * CLOSE_OO_REFERENCE:.1f} in every window): "
                  + ", ".join(f"{w['from_ps']:g}–{w['to_ps']:g} ps {w['mean']:.2f}" for w in stability["windows"])
                  + f"; worst window {worst:.2f}: {'within' if worst <= 2 * CLOSE_OO_REFERENCE else 'beyond'} 2×."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"figures: {out / 'rdf.png'}, {out / 'msd.png'}" + ("" if stability is None else
                                                             f", {out / 'close_pairs.png'}"))


if __name__ == "__main__":
    main()
