"""Long-range benchmarks: charged dimers and NaCl in water, one table each.

Each benchmark is a registry of rows (``DIMER_ROWS``, ``NACL_ROWS``): a row is a function that fits a model on the
training data and returns predictions for the test data, so a new method (kQEq charges, LODE features) is one more
function and one more registry entry; the tables, splits and metrics are shared.

Benchmark 1, charged dimers
===========================
``water/lode_charged_dimers/charge-charge.xyz`` (bundled in ``data/charged_dimers``): 10 cation–anion pairs
(methylammonium, methyl-/ethylguanidinium with acetate) at 13 centre-of-mass separations each, 3.7–8.7 Å.
Target: the binding energy ``E − E_A − E_B`` (eV). Training: separations < 6 Å (75 dimers); test: ≥ 6 Å (55).
The test measures extrapolation to distances the model has not seen, where the binding is almost pure
electrostatics (about −k/r between the ions).

Every row is a potential and predicts the binding as one: ``f(AB) − f(A) − f(B)``, the monomers cut out of the
dimer. It is fitted to the training binding energies of the dimers and to 0 for each family's two isolated
monomers (the definition of a binding energy), energies only, ``e0 = 0``. (Fitting the binding as an extensive
property of the dimer alone, without the monomers, lets a short-range model hide a family-dependent constant in its
atomic energies: it then "predicts" a binding at separations it cannot see, 0.13 eV MAE, an artefact.)

What the binding tends to at infinite separation
------------------------------------------------
Not quite 0 in this file (scripts and logs: /work/notes/lode/s3/diag_*). The monomers are rigid along each family's
scan (intra-monomer distances constant to 1e-8 Å), but ``energyA``/``energyB`` are not the energies of the dimers'
monomers: families 1, 2, 5, 6 and 8 (methylguanidinium–acetate) share one ``energyA`` and one ``energyB`` to 1 meV
while their rigid monomers differ by up to 0.36 Å in interatomic distances (families 4, 7, 9: the same, A and B
swapped, 8 meV apart). Each family's binding therefore tends to a constant, the deformation energy of its rigid
monomers relative to the file's reference monomers:

* the reference minus the fixed-charge ("group") binding is flat where the partner is out of reach: family 0, the
  only one beyond 8 Å, +0.62 eV (±0.006 over 7.2–8.7 Å); the others −0.08 … −0.38 eV at their largest separation.
  The charges sum to ±1 per monomer and the monopole term has the reference's distance dependence; the 0.62 eV
  error of the fixed-charge row beyond 8 Å is this constant, not wrong charges and not the GAP beyond its cutoff;
* GFN2-xTB (tblite) energies of the eight methylguanidinium–acetate families' rigid monomer pairs spread by
  0.25 eV and follow those plateaus (correlation 0.84; plateau spread 0.31 eV).

So the zero labels on the isolated monomers are wrong by up to ~0.6 eV for some families, and a model that is
physically right at infinite separation cannot be exact on the test. The alternative, ``--pair-offsets``, adds a
free binding at infinite separation per monomer pair (:class:`RigidPairOffset`: one weight per rigid pair, prior
1 eV, fitted with the rest): right for the data, but open to the artefact above. Fitted that way, the short-range
row puts −0.9 … −2.8 eV into the offsets (its binding at 60 Å separation; the fixed-charge row's is +0.23 … −0.70,
the LODE row's −0.02 … −0.82 eV) and reaches 0.094 eV without ever seeing the partner. The default keeps the zero
labels, which cost every long-range row the same constants; the ``--pair-offsets`` table is below.

Rows
----
* **short-range SOAP-GAP**: one SOAP term (all centres, ζ 2). Beyond its cutoff it cannot see the partner: its
  prediction there is 0, its error the whole binding energy.
* **+ fixed-charge baseline**: the binding energy of fixed charges,
  ``E_C(AB) − E_C(A) − E_C(B)`` (open boundaries, :class:`kernelpot.potential.coulomb_baseline.CoulombBaseline`
  on the dimer and on each monomer cut out of it, so only inter-monomer pairs remain), plus the same GAP fitted to
  the residual. The monomers carry their net charge ±1 (``chargeA``/``chargeB``; the cation is the monomer with
  nitrogen), spread as chosen on the training range: ``"uniform"`` (±1/N on every atom of the monomer) or
  ``"group"`` (the cation's charge on its N atoms and the H bonded to them, the anion's on its O atoms).
* **+ long-range features**: the SOAP term plus a linear term (:class:`kernelpot.kernels.LinearCovariance`, one
  sparse point per training environment) on LODE ρ⊗V invariants (:class:`kernelpot.descriptors.LODE`,
  ``DIMER_LODE``: the potential of the atom density smeared by 1 Å, open boundaries, l ≤ 2, with a 3 Å SOAP
  density). Linear in the potential, so the far-field binding extrapolates as −k/r does. **(λ=0)**: l_max 0.
  The LODE settings are the published example's scale, kept after a grid on the inner split below (smearing 1,
  1.5, 2.5 Å × l_max 1, 2 × density cutoff 3, 4 Å; /work/notes/lode/s3/lode_grid.log): no point beat them by more
  than 0.0005 eV (0.0208 against 0.0213; 0.0184 against 0.0188 with the baseline); 2.5 Å smearing was worse
  (0.025–0.038).
* **+ kQEq charges**: learned charges (:class:`kernelpot.models.charges.KQEqPotential`, joint fit): electronegativities
  from a SOAP kernel model, charges by charge equilibration with each monomer held at its ±1 (they polarise as the
  partner approaches), energy = QEq energy + the same SOAP GAP. The charges start from the fixed-charge row's spread
  (a prior of ``charge_sigma`` e per atom, ``DIMER_KQEQ``) and move to fit the binding energies.

Choosing the settings on the training range
-------------------------------------------
Each row's SOAP cutoff, δ and charge spread are chosen on an inner split of the training dimers (:func:`inner_split`,
``--select``), never on the test: every family's three largest training separations are validated (family 0, which
has two, its larger one) and the rest fitted, 47 → 28 dimers at 5.3–6.0 Å. Like the test, each validated dimer
lies beyond its own family's fitted separations. (The earlier split, train < 5 Å and validate 5–6 Å, left family 0
without a single fitted dimer and chose a 4 Å SOAP for the LODE rows, 0.070 eV on the test; the kQEq row's settings
still come from it: its grid costs ~3 min per point.) Validation MAE (eV), r_cut (Å)/δ (eV), ``*`` chosen::

    row                                  3/0.1   3/1     4/0.1   4/1     5/0.1   5/1
    short-range SOAP-GAP                 2.409   2.144   0.752   0.486   0.470   0.383*
    + fixed-charge (uniform)             0.671   0.573   0.201   0.149   0.137   0.121
    + fixed-charge (group)               0.253   0.208   0.112   0.099   0.097   0.081*
    + long-range features                0.021*  0.022   0.022   0.029   0.024   0.036
    + long-range features (λ=0)          0.022   0.032   0.019   0.045   0.016*  0.040
    + fixed charges + l.-r. f. (uniform) 0.019*  0.020   0.019   0.025   0.021   0.030
    + fixed charges + l.-r. f. (group)   0.026   0.028   0.028   0.035   0.030   0.046

Result (``python benchmarks/long_range.py --benchmark dimers``, 1 thread, load average 14.7 on 2 cores; 92 s CPU
for all six rows)::

    row                                  test MAE  test RMSE  MAE 6-7 Å  MAE >= 8 Å  train MAE  fit+predict (s)
    short-range SOAP-GAP                   0.6468     0.8575     0.4400      0.6502     0.0050     68
    + fixed-charge baseline                0.1987     0.3148     0.1200      0.6353     0.0012     26
    + long-range features                  0.0490     0.0661     0.0264      0.1693     0.0018      6
    + long-range features (λ=0)            0.0580     0.0752     0.0326      0.1452     0.0020     29
    + fixed-charge baseline + l.-r. f.     0.0404     0.0528     0.0233      0.1260     0.0017      6
    + kQEq charges                         0.2592     0.3584     0.1925      0.7114     0.0068     28

(eV.) Best long-range row: fixed charges + LODE, 0.040 eV = 0.062 of the short-range row's: both targets (≤ 0.05 eV,
≤ 0.1) **met**. What remains is family 0's far field (0.13 eV beyond 8 Å): the +0.62 eV constant above, which the
zero labels forbid and the LODE term can only imitate with a weaker effective interaction.

With ``--pair-offsets`` (settings chosen by the same grid under that protocol, ``DIMER_SETTINGS_PAIR_OFFSETS``;
load average 15.6)::

    row                                  test MAE  test RMSE  MAE 6-7 Å  MAE >= 8 Å  train MAE  fit+predict (s)
    short-range SOAP-GAP                   0.0936     0.1129     0.0825      0.0808     0.0102     28
    + fixed-charge baseline                0.0897     0.1036     0.0764      0.1789     0.0080      4
    + long-range features                  0.0347     0.0443     0.0289      0.0392     0.0010      8
    + long-range features (λ=0)            0.0617     0.0923     0.0285      0.1835     0.0004     14
    + fixed-charge baseline + l.-r. f.     0.0358     0.0456     0.0277      0.0500     0.0010      5
    + kQEq charges                         0.0423     0.0654     0.0234      0.0382     0.0013     19

The long-range rows do as well or better with the offsets (LODE 0.035 eV, kQEq 0.042), but the short-range row,
using the offsets as described above, gets 0.094 eV, and the ratio target (≤ 0.1) is then out of reach (0.371).
Closing that would need the monomer energies at the dimers' own geometries (two single points per family), which
would make the offsets known instead of fitted.

kQEq row (settings from the earlier split): learned charges do worse than fixed ones here (0.259 against 0.199
eV), and both miss the far field by ~0.6–0.7 eV beyond 8 Å, where the LODE rows miss by 0.13–0.17. With each
monomer held at ±1 the QEq interaction tends to the Coulomb energy of the two charge distributions (≈ −k/R), which
the reference binding energies do not follow (−1.02 eV at R = 8.2 Å against −k/R = −1.76 eV and −1.64 eV for the
group charges) — the +0.62 eV constant of family 0 above; letting charge move between the monomers (constraint
``"total"``) is worse on the earlier inner split (0.174 eV) and on the test (0.274 eV; 1.29 beyond 8 Å: QEq's
fractional charge transfer at separation). (Fitting the binding of the dimer alone, the old protocol, gave 0.049 eV:
the per-family-constant artefact described above.)

Benchmark 2, NaCl in water (revPBE0-D3)
=======================================
``electrolytes/nacl_water`` (../shared/data; PROVENANCE.md §3c): train on ``gen1a``–``gen1e`` (799 frames, 1–8 NaCl
with 48–62 H2O, 12.42 Å cube), test on ``gen3`` (150 frames, 1–3 NaCl with 60–64 H2O in 19.7 × 9.9 × 9.9 Å cells
of varying volume): other concentrations and another cell shape.

Where it stands (session 8): the fixed-charge row reaches **46.8 meV/Å** on all 150 gen3 frames (target ≤ 50)
from 100 gen1 frames with every environment a sparse point, SOAP n 8 l 6 ζ 2 and 400-point 3-body terms (the
command under "Usage"; the path there, session by session, below). The sections that follow keep each session's
numbers as they were measured.

* **GAP**: ``distance_2b`` per species pair + two stiff intramolecular pair terms (O–H, H–H) + one SOAP term per
  centre species (gap_fit's ``Z=``, so each species has its own sparse points); ``NACL_GAP``, chosen on gen1
  (train on the first 80 % of each gen1 file, validate on the last 20 %), never on gen3. See "NaCl recipe".
* **GAP + fixed-charge baseline**: the authors' charges (O −0.834, H +0.417, Na +1, Cl −1; point charges, Ewald
  over all pairs) under the same GAP string: ``SparseGPR(..., baseline=CoulombBaseline(NACL_CHARGES))``.
* **GAP + kQEq**: learned charges (:class:`kernelpot.models.charges.KernelChargeEquilibration`: SOAP kernel model of
  the electronegativities, Gaussian charges of width 1.5 Å, Ewald) anchored on the authors' charges (a prior of
  0.05 e per atom), then the same GAP on the residual (sequential scheme; ``NACL_KQEQ``):
  ``SparseGPR(..., baseline=<fitted kQEq>)``, one .kpot file.

kQEq row, measured (``--train-every 20 --test-every 2``: 40 gen1 frames → 75 gen3 frames, ``NACL_GAP``, 1 thread;
logs /work/notes/kqeq/final*/)::

    row                       E RMSE (meV/atom)   F O    F H   F Na   F Cl  F all (meV/Å)  fit (s)  predict (atoms/s)
    GAP + kQEq (widths 1.5 Å)              3.78  150.3  104.6  161.9  158.0          122.7      765    37 (load 16)
    GAP + kQEq (widths 0.5 Å)              4.12  162.0  117.7  332.8  213.1          138.7      998   392 (load 6)

(The GAP row of the same run: 3.77, 150.3, 104.6, 160.6, 158.0, 122.7; the fixed-charge row: 1.63, 147.3, 102.8,
142.9, 147.1, 120.1.) Learned charges do not beat the short-range row on Na and Cl; the fixed charges do. Measured
on three gen3 frames with the saved models (/work/notes/kqeq/final*/): with 1.5 Å widths, χ varies by
less than 5 meV and the kQEq forces are ~0 (RMS < 0.005 eV/Å) although the charges vary (Gaussians this wide
overlap so much that moving charge between neighbours costs almost no energy): the row is the GAP row, and the
charges drift (Na +0.62…+0.77, Cl −0.33…−0.68, waters up to ±0.34 e). With 0.5 Å widths
the charges are right (Na +1.00 ± 0.04, Cl −1.00 ± 0.03, each water ±0.05 e) and χ varies by 0.13–0.31 eV (std
per species); the kQEq forces (RMS O 0.91, H 0.55, Na 0.32, Cl 0.24 eV/Å) include the Hellmann–Feynman term
``−Σ q_i ∂χ_i/∂r`` of a χ fitted to charges only, never to forces, and the GAP, left to undo it, does worse on
the ions. The joint scheme fits α to energies and forces as well; at one GAP-sized pass per iteration (~15 min
here) it did not fit in this session's CPU. Per-molecule charge constraints (waters neutral, ions ±1, as
``arrays["fragment"]``) would stop the drift of the soft model.

Columns: energy RMSE (meV/atom), force RMSE per species and overall (meV/Å), fit time (s), prediction speed
(atoms/s, energies + forces, one process). Reference energies per species: ``e0="composition"``, a least-squares fit
of the training energies on the atom counts (for the baseline row, of the energies minus the baseline).

NaCl recipe: why the first GAP missed forces by ~290 meV/Å, and what is left
-----------------------------------------------------------------------------
The first recipe (all-pairs 2b θ 1 Å δ 1 eV; SOAP r_c 5 Å, n 6, l 4, σ_at 0.5 Å, ζ 4, δ 0.2 eV; 1,500 sparse
points per O/H term; σ_F 0.04 eV/Å) gave 291 and 286 meV/Å on gen1 validation with 25 and 50 training frames
(load ~4–11, /work/notes/nacl/lc_probe.log). Checked, in order (scripts and logs in /work/notes/nacl/):

* *Units and labels are right.* The reader converts Hartree/Bohr with ``ase.units`` (51.42 eV/Å per a.u.); the
  mean H force along H→O in gen3 equals 2kT⟨1/r⟩ (0.052 vs 0.053 eV/Å), which a wrong unit would miss by its
  factor. Force RMS per file 0.80–0.91 eV/Å (O 1.0–1.1, H 0.70–0.82, Na/Cl 0.26–0.36), typical of liquid water.
  The labels' net force per frame is 0.2–0.9 eV/Å (hybrid-DFT grid noise, ~20 meV/Å per component): small.
  kernelpot and gap_fit give the same errors for the same recipe (5 bundled frames: 155/209 meV/Å train/test),
  so the implementation is not the cause.
* *One outlier.* gen1b frame 156 has forces up to 35 eV/Å (on an H and its O, 1.02 Å apart) at an ordinary
  geometry: a broken label (session 6, :data:`NACL_EXCLUDED`; session 1 read its O's hydrogen bond at 1.78 Å as a
  proton transfer); it sat in that validation subset and inflated its RMSE. gen3 has none (max 6.4 eV/Å).
* *Under-fitting, not label noise.* With 8 training frames and nearly every environment a sparse point, the
  *training* force RMSE is 121–143 meV/Å against σ_F = 40 meV/Å: the model cannot represent the forces it is fitted
  to. The 25 → 50-frame curve was flat because the O/H sparse points stayed capped at 1,500.
* *Candidates* (8 gen1 training frames → 8 validation frames, O/H 400 sparse points, load ~15): first recipe 191
  meV/Å (train 143); SOAP δ 1 eV 195 (137); + O–H/H–H bond terms and δ 1 eV **173** (121), kept.

Result (``--benchmark nacl --train-every 20 --test-every 2 --rows ROW --save-dir ...``, the two rows side by side
in two processes, 1 thread each, load average 10–15 on 2 cores; every 20th gen1 frame = 40 frames, 7,088 atoms;
every 2nd gen3 frame = 75 frames, 14,250 atoms; ``NACL_GAP``: 4,536 sparse points)::

    row                          E RMSE   F O    F H    F Na   F Cl   F all   fit (s)  predict (atoms/s)
                                 meV/at   meV/Å                                         1 thread, loaded
    GAP                          3.77     150.3  104.6  160.6  158.0  122.7   2472     31
    GAP + fixed-charge baseline  1.63     147.3  102.8  142.9  147.1  120.1   2458     30

The fixed-charge baseline helps where it should: Na and Cl forces 11 % and 7 % better, the energy RMSE on the
other concentrations and cell of gen3 less than half. The ≤ 50 meV/Å force target is **not met** (120 meV/Å).
Learning curve of the GAP row on the same 75 gen3 frames (``--train-every 80, 40, 20``): 10 frames 153.2 meV/Å
(O 185, H 132, Na 214, Cl 209; E 3.55 meV/atom; fit 266 s), 20 frames 130.6 (O 158, H 113, Na 172, Cl 166;
E 3.23; fit 775 s), 40 frames 122.7. It flattens (10 → 20: −15 %, 20 → 40: −6 %) as the O/H sparse points hit
their cap of 2,000 (10 frames: 562 O and 1,124 H environments, all sparse; 40 frames: 2,264 O, 4,528 H): more
frames alone will not reach 50 meV/Å.
(The first-session numbers of 286–291 meV/Å were on gen1 validation frames, which are harder than gen3: gen1
comes from a sampler with longer O–H bonds, and that subset held the 30 eV/Å outlier.)

Session 3 (``--recipe``, same 75 gen3 frames, 1 thread, load 8–12; table in RESULTS_long_range.md): sparse points
growing with the data (``sparse=all``) and a finer SOAP (n_max 8, l_max 6) bend the curve: 40 frames, n 6 l 4 all
sparse 109.5 meV/Å; n 8 l 6 all sparse: 10 frames 152.7, 20 frames 99.3, 40 frames **82.2** (O 98.8, H 70.3,
Na 127.5, Cl 128.6; 7,328 sparse points, fit 668 s CPU); a 6 Å cutoff was worse at 10 frames (198.7). The ≤ 50 meV/Å
target is still **not met**; the n 8 l 6 curve (∝ N^−0.27 from 20 to 40 frames) reaches it at about 250 gen1 frames,
~47,000 sparse points (K_MM alone 18 GB); session 4 below measures the cheaper ways.

Session 4 (``--joint``: the GAP and fixed-charge rows and several noise levels σ from one design pass,
:func:`fit_nacl_jointly`, each model equal to its own ``SparseGPR.fit``, tested; σ chosen per row on 10 gen1
frames that are no training frames, ``--validation-every 80 --validation-offset 10``, never on gen3; n 8 l 6;
table in RESULTS_long_range.md, logs in /work/notes/nacl/s4/):

* *Fixed charges under n 8 l 6* (40 frames, every environment sparse, σ_F 0.04 eV/Å): 79.5 meV/Å (O 95.2, H 68.3,
  Na 123.3, Cl 118.7; E 1.17 meV/atom) against the GAP row's 82.2 (98.8, 70.3, 127.5, 128.6; 2.78): better on
  every species, Na −3 %, Cl −8 %, energies −58 %.
* *Noise*: the validation force RMSE falls as σ_F grows (σ_E 0.001 or 0.005 eV/atom changes nothing): 20 frames,
  σ_F 0.02/0.04/0.08: GAP 108.3/105.9/101.8, fixed charges 106.4/104.0/100.1; 40 frames (capped, below)
  σ_F 0.04/0.08/0.16: GAP 98.1/96.6/95.3, fixed charges 95.3/93.9/92.6. The largest σ_F tried won each time: the
  fits want more regularisation (a larger σ_F, or a smaller δ); on gen3 it gains 2 % at 20 frames (99.3 → 97.4)
  and nothing at 40 (all sparse, σ_F 0.16 chosen, 787 s CPU for both rows and two σ: GAP 82.5, fixed charges 79.0,
  against 82.2 and 79.5 at 0.04).
* *Frames against sparse points*: 40 frames with the O/H sparse points capped at 1,200/2,400 (FPS; 4,136 points in
  all) reach 93.6 (fixed charges 89.7) on gen3 at σ_F 0.16, between 20 frames with every environment sparse
  (3,784 points: 97.4, 93.9) and 40 frames with every one (7,328: 82.2, 79.5): at this size both count, the
  sparse points more (half of the H environments cost at least 14 %, σ_F 0.16 against 0.04).
* *CUR is too slow for thousands of points*: choosing 2,400 of 4,528 H environments (3,696 features) took more
  than 10 min CPU, more than the fit; ``--recipe select=fps`` picks them by farthest points in seconds.

Target ≤ 50 meV/Å: **not met**; best 79.0 meV/Å (fixed charges, 40 frames, all 7,328 environments sparse, σ_F
0.16: O 96.8, H 66.3, Na 124.8, Cl 118.8; E 1.01 meV/atom; the GAP row of the same pass 82.5: 101.4, 69.1, 133.1,
122.1; 3.08). Long-range row better than the short-range row on Na and Cl: **met** (124.8 vs 133.1, 118.8 vs 122.1).
What would close it, from these runs (crude: three points, mixed σ): the gen3 error goes roughly as
frames^−0.08 × sparse points^−0.23, so the sparse points are the lever, and with every environment sparse
(frames^−0.27…−0.31) 50 meV/Å needs 160–200 frames and 30,000–37,000 sparse points: 5–10 CPU-h (design pass
∝ frames × M for the kernels and ∝ frames × M² for the QR, each σ's solve ∝ M³) and 20–33 GB for the three M × M
factors, more than this machine has; a cap of 15,000 points cannot get there with the 799 frames. Untried then:
σ_F above 0.16 eV/Å (the edge of every grid), n_max 10 / l_max 8, a 3-body term (session 5, below).

Session 5: per sparse point, the 3-body term is the lever (logs and a table of every run in
/work/notes/nacl/s5/; 1 thread, load 4–6 on 2 cores). Probes at 20 frames, every environment sparse, ``--joint``
(both rows, σ chosen per row on the 10 gen1 validation frames above, never gen3), fixed-charge row, force RMSE
meV/Å validation → gen3:

* n 8 l 6 ζ 4 (the session-4 recipe), σ_F 0.08/0.16/0.32/0.64: 100.1/**98.7**/104.7/122.3 → 94.3 (σ_F 0.16):
  above 0.16 the fit gets worse, so the grid edge was not hiding a gain.
* n 10 l 8: 108.5 → 105.2, 2.5× the CPU: a finer SOAP needs more data than 20 frames (as n 8 l 6 did at 10).
* ζ 2: 92.8 → 87.8 (σ_F 0.08).
* + 3-body terms (``three_body=3.0``: one ``angle_3b`` term per triplet of :data:`NACL_TRIPLETS`, 3 Å, gap_fit's
  δ 0.5 eV, θ 1 (Å, Å², Å), 100 FPS points each: 800 more sparse points, +13 % CPU): 81.5 → **75.3** (O 90.4,
  H 63.4, Na 134.3, Cl 132.8): at 20 frames better than 40 frames without it (79.0).
* ζ 2 + 3-body: 78.0 → **71.9** (σ_F 0.08; O 86.3, H 60.0, Na 132.9, Cl 139.7); with a 4 Å 3-body cutoff
  88.3 → 83.1 (worse).

The O and H forces gain most (−26 %, −24 % from the session-4 recipe); Na and Cl barely move (their triplets are
two of eight). With that recipe (``--recipe "n_max=8 l_max=6 zeta=2 sparse=all three_body=3.0
three_body_sparse=100" --sigmas 0.001/0.08``, the fixed-charge row alone through ``SparseGPR.fit`` with
``--max-memory 8GB``), 40 frames give **63.8** meV/Å on gen3 (O 77.1, H 53.6, Na 117.7, Cl 103.5; E 1.23
meV/atom; 8,128 sparse points; 526 s CPU), against 79.0 before: the target is still **not met**. The budget
planner estimated a peak of 6.93 GiB for that fit; the process peaked at 5.66 GiB.

A third point failed: every 13th frame (65 frames, 12,548 sparse points, 1,424 s CPU) gave 113.0 meV/Å (O 131.9,
H 99.7, Na 175.2, Cl 161.2; E 2.51), most likely because it includes gen1b frame 156, the broken
label with forces of 35 eV/Å (the next largest in those frames: 6.3), which at σ_F 0.08 weighs on every species.
A learning curve must leave it out (every 14th or 11th frame misses it). (Planner: 6.85 GiB estimated, 5.82 GiB
peak.) What would close it, with this recipe: 20 → 40 frames went 71.9 → 63.8, frames^−0.17 (flatter than the
−0.25 of ζ 4 without the 3-body term), so 50 meV/Å needs about 165 frames and 31,000 sparse points if the exponent
holds. That fits this machine: the planner's own formula (``budget.fit_estimate``, single-row QR fit, blocks of
one frame, the gradients per atom and the baseline of the 40-frame run) gives 15.4 GiB at 30,000 sparse points and
37,700 as the most within 24 GiB (``/work/notes/nacl/s5/max_sparse.py``); the joint pass holds a third M × M
matrix, about 30,000. Its cost, scaled from the 40-frame fit (descriptors and kernels ∝ frames × M, the QR
∝ frames × M²): about 4 CPU-hours, more than a session here has.

Session 6: the learning curve without the broken frame, frames against sparse points (logs, JSON, ``curve.py``
and ``big_fit.sh`` in /work/notes/nacl/s6/; 1 thread, nice 10, load 4–8 on 2 cores). The session-5 recipe
(n 8 l 6 ζ 2 + 3-body, σ 0.001/0.08, the fixed-charge row alone through ``SparseGPR.fit``, ``--max-memory 8GB``),
gen3 force RMSE in meV/Å (O, H, Na, Cl, all), fit CPU s:

* 20 frames (every 40th), every environment sparse, 4,584 points: 86.3, 60.0, 132.9, 139.7, **71.9** (session 5)
* 40 frames (every 20th), all sparse, 8,128 points: 77.1, 53.6, 117.7, 103.5, **63.8**; 526 s (session 5)
* 60 frames (every 14th), all sparse, 11,672 points: 71.5, 48.9, 107.0, 96.9, **58.7**; 1,221 s; peak 5.9 GiB
* 40 frames, SOAP points capped at the 20-frame counts (FPS), 4,584 points: 82.8, 57.5, 117.0, 110.8, **68.3**;
  378 s
* 60 frames, capped at the 40-frame counts, 8,128 points: 74.0, 50.6, 107.4, 98.1, **60.7**; 899 s

With every environment sparse the error goes as frames^−0.18 (least squares over the three points; −0.17 from 20 to
40 frames, −0.21 from 40 to 60: no sign of flattening yet). Separately (a fit of log error on log frames and log
sparse points, the five points above, residuals [-0.4, 0.6, 0.2, 0.5, -0.9] %): frames^−0.087 at fixed sparse points
and sparse points^−0.121 at fixed frames. Both count; per doubling the sparse points gain more (8 % against 6 %),
and since the sparse points cannot outnumber the environments, every environment sparse is the cheapest way down:
400 frames capped at 20,000 points are predicted 46.5 meV/Å for ~4.4 CPU-h, 160 frames all sparse 48.1 for ~2.9. So
50 meV/Å needs **130–150 frames all sparse** (24,000–27,500 points; 2-D fit: 133 frames, 49.9) if the exponent
holds, up to ~175 frames if it flattens to −0.15. The fit's CPU time, fitted to the three all-sparse single-row fits
to within 1 %: ≈ 1.40e-3·F·M + 2.79e-8·F·M² s (F frames, M sparse points; descriptor and kernel rows ∝ F·M, the QR ∝
F·M²). Ready to run on an idle machine (``/work/notes/nacl/s6/big_fit.sh``: ``--train-every 5 --checkpoint DIR``,
160 frames, ~29,400 points): predicted 48–50.5 meV/Å (2-D fit 48.1), ~2.9 CPU-h (+ ~10 min for the Cholesky factor
and the test), peak ~15 GiB (the two M × M factors 12.9 GiB), ~13 GiB of disk for the checkpoint. ``--checkpoint``
fits one row frame by frame and saves the QR factor every 10 frames (:func:`fit_nacl_checkpointed`; a killed run
continues where it stopped). Every 4th frame (199 frames, ~36,300 points, predicted 46.0) would need 19.6 GiB for
the two factors alone: too close to 24 GiB.

The 60-frame point needed the broken frame out: gen1b frame 156 (every 13th frame includes it) has |F| 35 eV/Å on
an H and its O at an ordinary geometry; :data:`NACL_EXCLUDED` says why it is a broken label and leaves it out of
every run, and ``SparseGPR.fit`` / ``kernelpot fit`` now warn about labels like it
(:class:`kernelpot.exceptions.ForceOutlierWarning`: a force above 5× the training set's 99th-percentile |F|;
ordinary sets here peak at 1.1–2.8×, this frame at 10×). Untried for lack of CPU (queued in
``/work/notes/nacl/s6/chain3.sh``): the 7 ion triplets (``triplets=ions``) and a per-species budget at equal M (O,
Na, Cl all, H the rest); per-species σ_F would need per-atom noise in ``SparseGPR``.
Target ≤ 50 meV/Å on gen3: **not met**, best **58.7 meV/Å** (60 frames, every environment sparse). Long-range
row better than the short-range row on Na and Cl: met (sessions 4–5).

Session 8: more 3-body sparse points, then 100 frames (logs and JSON in /work/notes/nacl/s8/; 1 thread, load 2–4
on 2 cores; session 7's 160-frame fit was lost with its machine half-way, its checkpoint 13 GiB). 20-frame probes
(every 40th gen1 frame, every environment sparse, σ 0.001/0.08, ``--joint``), each chosen on the 10 gen1
validation frames (``--validation-every 80 --validation-offset 10``, printed now for one σ too), never on gen3;
force RMSE meV/Å of the fixed-charge row, validation → gen3 (O, H, Na, Cl, all), fit CPU:

* ζ 2 + 3-body terms of 100 points (session 5): 78.0 → 86.3, 60.0, 132.9, 139.7, **71.9**; 4,584 points
* the same with SOAP ``atom_sigma`` 0.4 Å: 74.9 → 83.3, 58.1, 134.6, 135.0, **69.6**; 134 s
* 3-body terms of 400 points each (``three_body_sparse=400``): **67.0** → 75.0, 51.6, 130.5, 141.5, **62.9**; 6,984
  points, 152 s
* 1,000 points each: 66.8 → 74.8, 51.4, 130.3, 141.6, **62.8**; 11,486 points, 289 s (saturated)
* 400 points with ``atom_sigma`` 0.4: 69.1 → 77.4, 53.9, 131.5, 135.8, **65.0** (the two do not add)
* 400 points at a 4 Å cutoff (run before validation was printed for one σ; session 5 had 4 Å worse on
  validation): gen3 88.8, 60.8, 141.6, 149.6, **73.7**

Four times the 3-body points cost 50 % more sparse points and no more CPU at 20 frames and gave −14 % on validation,
−12.5 % on gen3 (about what doubling the frames gave before), most on O and H: six of the eight triplets are water's
(``NACL_TRIPLETS``), and 100 farthest points each covered their angles thinly. 1,000 points gain 0.3 %, so 400 (the
smallest within 1 % of the best on validation). With it, 100 frames (``--train-every 8``, every environment sparse,
21,160 points; the fixed-charge row alone through ``SparseGPR.fit``, ``--max-memory 12GB``) on **all 150 gen3
frames** (``--test-every 1``): O 56.0, H 38.2, Na 102.3, Cl 97.1, **46.8 meV/Å**, energy 1.03 meV/atom; 3,878 s CPU
(4,011 s wall), peak 11.9 GiB (planner 10.9), 663 atoms/s predicted (one thread). On the 75 even gen3 frames of the
learning curves above: 48.0 meV/Å (O 58.2, H 39.2, Na 97.0, Cl 92.0; energy 1.05 meV/atom). Target ≤ 50 meV/Å on
gen3: **met**. The long-range row stays better than the short-range row on Na and Cl with this recipe (20 frames,
same pass: 130.5 vs 140.6 and 141.5 vs 145.0).

NaCl MD model (issue 16 §2): what kept MD stable, and what did not
------------------------------------------------------------------
``--md-model FILE [--md-steps N]`` fits (or loads) a model for molecular dynamics and checks it: ``NACL_MD_GAP``
(the pair terms and per-species SOAP l 4, n 6, δ 1 eV of ``NACL_GAP``, 1,500 O/H sparse points, no water bond
terms) over :func:`kernelpot.potential.recipe.stable_baseline` = the authors' fixed charges + a
:class:`~kernelpot.potential.core_repulsion.CoreRepulsion` 0.1 Å below each species pair's closest distance in all
949 frames + a :class:`~kernelpot.potential.core_repulsion.PairBarrier` (0.5 eV) over the O–H distances no frame
visits (1.156–1.353 Å: between the longest bond, 1.136 Å, and the shortest hydrogen bond, 1.373 Å). Training:
55 frames of every generation (every 20th of each gen1 file, gen3 frames 1, 11, ...), ``NACL_MD_TRAIN``; fit 307 s
CPU; validation force RMSE 140 meV/Å on 20 held-out gen1 and 25 gen3 frames (O 170–177, H 117–121, Na 156–162,
Cl 151–192); 0.059 s CPU per force call on 194 atoms (3,300 atoms/s, 1 thread). Then a Langevin run (300 K,
0.5 fs, ``--md-friction``) from gen3 frame 0 (194 atoms). What each piece did (1 thread, load 8–15; logs in
/work/notes/nacl/s3/):

* *Core at the training frames' own closest pairs*: held-out frames of the same data come closer (an H–Na pair
  0.45 Å closer) and met a wall of hundreds of eV/Å (validation F Na 66,682 meV/Å). Onsets from every reference
  frame, 0.1 Å inside: the wall is zero on all data.
* *With the water bond terms* (``WATER_BOND_TERMS``, the benchmark's recipe): the O–H term (cutoff 1.6 Å, δ 10 eV,
  θ 0.15 Å) has no data between 1.136 and 1.373 Å and a hole there. Protons moved in (422 O–H pairs at 1.2–1.3 Å
  per 55 frames after 1.4 ps, none in the data), waters shared them, the term's energy fell by 15 eV and the box
  heated to 460 K (friction 0.002/fs); with a 2 eV barrier added it exploded (H–H 0.67 Å, 1.1 ps). Dropped: 140
  instead of 128 meV/Å on validation frames.
* *Without them, without the barrier*: waters collapsed into shared-proton pairs (O–O 2.16 Å, 19 of 64 O with
  three H within 1.25 Å) and the box reached 400 K in 0.47 ps: the fixed charges pull O and H together where the
  GAP has no data to push back.
* *With a 2 eV barrier*: no collapse; friction 0.002/fs: 315 → 370 K over 1.5 ps, then a proton left its water
  and the box reached 580 K; friction 0.01/fs: the full 2 ps without a stop, T mean 338 K (first ps 323, second
  353, max 461), but one proton transfer and an O–H pair at 0.70 Å. The heating is the integrator's: in NVE at
  0.5 fs the total energy rose 0.48 eV per 100 fs (0.001 at 0.25 fs) as stretched bonds met the narrow, stiff
  barrier; with 0.5 eV the drift is 0.012 eV per 100 fs (``nve_check.log``).
* *With the 0.5 eV barrier* (the recipe; ``--md-model md.kpot --md-steps 4000``, friction 0.01/fs, load 8): 2 ps
  without a stop, T 306 ± 20 K (first ps 309, second 303, max 383; 17.6 K is the canonical spread for 194 atoms),
  every water intact throughout; closest pairs O–O 2.27, O–H 0.87, Na–O 2.13, Cl–O 2.82, H–H 1.33, Na–H 2.26,
  Cl–H 1.83, Na–Cl 3.36 Å (the data's: 2.30, 0.88, 2.06, 2.63, 1.32, 1.75, 1.64, 2.28); 0.059 s CPU per step.
  Not run: the weak 0.002/fs thermostat with this model, and anything longer than 2 ps.

What the barrier stands in for is data where MD goes (revPBE0 labels of stretched bonds and short hydrogen bonds),
i.e. active learning with the revPBE0 oracle, not available here, and a better-fitted GAP (learning curve below).

*Session 4, ``--md-recipe s4``* (issue 16 §2 production; logs in /work/notes/electrolyte/s4/): with this recipe the
water still collapsed. Over 2 ps of the s3 model the O–O pairs below 2.55 Å grew from 6 to 34 per frame (revPBE0-D3
gen3: 0.81, closest 2.43 Å); every one is a linear O–H···O whose H···O sits at 1.33–1.40 Å, on the barrier's outer
edge. Why: on held-out frames the fixed charges *attract* hydrogen-bonded waters along O–O (−0.2 to −0.37 eV/Å at
2.48–2.71 Å) where DFT repels (+0.14 to +1.06 eV/Å), so the GAP must learn DFT − Coulomb = +0.34, +0.64, +0.91,
+1.26 eV/Å at 2.71, 2.62, 2.55, 2.48 Å; the s3 model falls 20 % short at 2.50–2.58 Å and, rigidly compressing the
12 shortest gen3 hydrogen bonds from 2.70 to 2.35 Å, its energy stays flat (0.00 ± 0.01 eV): off the data the GP
returns to the attracting baseline. ``s4`` adds a soft O–O wall to the baseline, 1.85 (2.95 Å − r)³ eV, whose force
matches that DFT − Coulomb mean at all four distances, and the finer SOAP (n 8, l 6; 1,000 O/H sparse points; 78
frames): validation force RMSE 110.1 (gen1) and 111.4 meV/Å (gen3) instead of 140 (gen3: O 141, H 91, Na 131,
Cl 185), fit 1,646 s CPU. In a Bussi 300 K run of a 2-NaCl gen3 box the collapse is ~3× slower but not gone (O–O
pairs < 2.55 Å per frame 3.4, 4.9, 6.0, 9.6 over the first four quarter-ps; again H···O at the barrier edge): the
GAP fitted over the wall keeps an attractive hydrogen environment where no frame has H···O below 1.37 Å. What
would close it is revPBE0-D3 labels of such compressed hydrogen bonds (active learning with the DFT oracle).

*Session 5, ``--md-recipe s5``* (logs in /work/notes/electrolyte/s5/): the baseline itself was the suspect. The
point charges carry no intramolecular exclusions, so on held-out frames the forces left for the GAP (DFT −
baseline) have RMS 3.0 (O) and 2.2 eV/Å (H), three times the bare DFT forces (1.05, 0.74): mostly each water's own
O pulling its H at 1 Å, which the GAP must cancel to a few per cent. ``s5`` puts the same GAP and frames over
Gaussian charges (σ 0.7 Å: RMS left 1.0, 0.72) + TIP3P/Joung–Cheatham Lennard-Jones
(:class:`~kernelpot.potential.core_repulsion.LennardJones`, repelling compressed O–O as a classical water model
does) + core and barrier, no wall (``baseline_probe.log``). The fit is as accurate (validation 110.3 and 111.4
meV/Å; fit 1,598 s CPU) and the collapse is slower still but not gone: O–O pairs < 2.55 Å per frame 3.2 (0–1 ps),
3.1, 4.3 (2–4), 3.3 (4–6), 6.1 (6–8), 11.7 (8–10 ps) in the 10 ps Bussi run (s4: 26–32 at 9–11 ps). Why
(``model_hb_probe.log``, ``md_hb_decompose.log``): on held-out frames both the s4 and the s5 model
push a hydrogen-bonded H away from its acceptor by 0.65 eV/Å at H···O 1.50–1.55 Å where revPBE0-D3 pushes by
1.07 (0.55 against 0.75 at 1.55–1.60 Å); on the s5 MD's own frames at H···O 1.40–1.55 Å the GAP part pulls the H
in (+0.07 to +0.29 eV/Å) against a baseline push of only 0.07–0.12. The GP extrapolates an attraction where the
data thin out, whatever baseline it sits on.

*Session 6, ``--md-recipe s6``* (logs in /work/notes/electrolyte/s6/): the s5 fit plus a
:class:`~kernelpot.potential.core_repulsion.HydrogenBondWall` 9 (1.65 Å − r)³ eV between each H and the oxygens it
is not bonded to, added after the fit. Over all 949 frames 16 intermolecular H···O distances are below 1.45 Å
(0.017 per frame); the s5 MD had 1.4 per frame in its first 2 ps (``data_hb.log``). On held-out frames the wall
supplies the push the GAP lacks: force pushing a hydrogen-bonded H back at H···O 1.50–1.55 / 1.55–1.60 /
1.60–1.70 Å 1.06 / 0.69 / 0.48 eV/Å (s5 0.66 / 0.55 / 0.47, DFT 1.07 / 0.75 / 0.51); validation force RMSE 109.3
(gen1) and 110.0 meV/Å (gen3) instead of 110.3 and 111.4, and 102.3 instead of 103.9 on 45 frames in neither set
(``wall_on_g07lj*.log``). In the same 10 ps run, O–O pairs < 2.55 Å per frame: 1.38 (0–1 ps), 1.03, 1.93 (2–4),
1.70 (4–6), 2.13 (6–8), 3.47 (8–10 ps), 3.0–4.1 per ps to 14 ps (s5 3.2, 3.1, 4.3, 3.3, 6.1, 11.7);
H···O < 1.45 Å 0.01–0.04 per frame up
to 8 ps, 0.10 at 8–10. The collapse is ~3× slower again, not gone, and has changed kind (``oo_kinds.log``): O–O
pairs < 2.55 Å with no H between them (shortest H···O across the pair ≥ 1.7 Å; often two waters of a Cl⁻ shell)
grow 0.11, 0.21, 0.27, 0.41, 0.86 per frame over the five 2 ps windows, where revPBE0-D3 has 0.035. An O–O floor
wall (``CoreRepulsion`` 133 (2.45 Å − r)³ eV, ~0 on the data) alone did not change the first 1.8 ps (3.1, 2.7).
The refit on the 65 further frames with H···O < 1.5 Å (``--short-hb 1.5``) was started and stopped unfinished
(at load 7 it had a third of a core).

*Session 7, ``--md-recipe s7``* (logs in /work/notes/electrolyte/s7/): s6 plus an
:class:`~kernelpot.potential.core_repulsion.UnbridgedPairWall` 50 (2.6 Å − r)³ eV on O–O pairs that no H bridges
(switched off by an H within 1.8 Å of both oxygens, fully on beyond 2.2 Å), attached after the fit: RMS force
over all atoms 7.8 meV/Å on all 949 frames, 33 meV/Å on the s6 MD's frames 8–14 ps; validation force RMSE 109.3
(gen1) and 110.0 meV/Å (gen3), as s6. Same MD from the same start: O–O pairs < 2.55 Å per frame 1.28 (0–1 ps),
1.37 (1–2), 3.98 (2–4), 5.00 (4–6), 5.84 (6–7 ps; stopped there), of them "squeezed" (no H-bond between the pair)
only 0.12–0.41: what collapses are hydrogen-bonded pairs (O–O < 2.45 Å 1.3–3.0 per frame, H···O < 1.45 Å
0.5–1.5; revPBE0-D3 0.017 and 0.017). On those frames the GAP part pulls hydrogen-bonded waters together by
3.8 eV/Å at O–O 2.4–2.5 Å and 5.2 at 2.2–2.4, against a baseline push of 3.7 and 6.0; their net push at
2.4–2.5 Å is −0.1 eV/Å, where revPBE0-D3 pushes such pairs (2.3–2.5 Å) by +0.9 and the same model on the DFT
frames by +1.1. The GP has learned to
cancel the baseline's repulsion and goes on cancelling it, harder, beyond its data. ``--md-recipe s7-floor`` adds an
O–O floor after the fit (``CoreRepulsion`` 133 (2.45 Å − r)³ eV, zero on the validation frames); the same MD gave
1.38, 0.87, 1.19 (2–4 ps), 1.08 (4–6), 1.04 (6–8) and 1.50 (8–10 ps) O–O pairs < 2.55 Å per frame, H···O < 1.45 Å
0.00–0.03: the 10 ps check passes, from one trajectory.

*Session 8, ``--md-recipe s8``*: a second s7-floor run collapsed (the first was luck); s8 (ζ 2 and 400-point
3-body terms) holds the water for 17 ps but one Cl⁻ keeps a water's H at 1.44–1.48 Å, below the data's 1.64 Å
(README, "Session 8"). *Session 9, ``--md-recipe s9``*: a refit of s8 gave the same validation errors to the
last digit (66.0 / 69.6 meV/Å; 1,846 s on 2 threads, 2,298 s CPU), so the fit is deterministic and
``--md-base md_s8.kpot`` puts s9's Cl–H floor on it without a refit. Rigid approach of a hydrogen-bonded water
onto a Cl⁻ (four gen3 frames): s8's energy has a second minimum at Cl–H 1.50–1.55 Å in one of them, held only by
the core; s9's rises monotonically below each profile's minimum (2.0–2.2 Å). The MD with it: README, "Session 9".

Do the NaCl files hold raw DFT labels? Yes
-------------------------------------------
The authors add a fixed-charge Coulomb term (CP2K FIST, SPME, the charges above, no exclusions given) to their
network in MD (``input/nvt.inp`` of github.com/niamhon/nacl-water); neither their README nor ``input.nn`` says
whether the published ``data-sets/revPBE0-D3/BP-NNP/*.data`` labels are DFT or DFT minus that term. The numbers say
**raw DFT** (``benchmarks/nacl_labels.py``; output in the commit that added this file):

1. *Stein identity.* For Boltzmann-sampled configurations ⟨F·∇A⟩ = −kT⟨∇²A⟩ for any smooth A; with A the Coulomb
   energy (harmonic away from the charges) the right side is ≈ 0. Measured ⟨F_label · F_Coulomb⟩ in eV²/Å², gen3
   (sampled consistently with revPBE0): O +0.04 ± 0.06, H −0.01 ± 0.03, Na +0.05 ± 0.03, Cl −0.03 ± 0.02;
   subtracted labels would give −⟨|F_C|²⟩ = −27.8, −14.9, −0.42, −0.53. gen1 ions: Na −0.05 … +0.04, Cl
   −0.15 … +0.01 against −0.39 … −0.69.
2. *Bonded mean force.* Mean force on H along H→O in gen3: +0.052 ± 0.008 eV/Å; 2kT⟨1/r⟩ = +0.053 eV/Å for
   Boltzmann-sampled raw labels; −3.75 eV/Å if the Coulomb term had been subtracted. (gen1: +0.63 eV/Å: its
   configurations come from a sampler with longer O–H bonds, e.g. a GGA; that offset also makes gen1's
   O and H Stein averages positive, +3.7 and +2.1, where subtraction would make them −26 and −14.)
3. *Energies.* A composition fit gives −469.36 eV per water, as raw revPBE0-D3 water in CP2K with the same
   pseudopotentials (−469.4 … −468.4 eV from the 64-water boxes of Cheng et al. 2019); were the labels DFT minus
   the Coulomb energy (−9.6 eV per water, all pairs), DFT would be −479.0. The 160 ``comment`` lines of gen1c are
   CP2K single-point headers (``i = 0``): their energy equals the label to 0.008 meV. (gen1d/e's comments carry
   the sampler's MD energies, 17.9 ± 0.2 eV lower.)

So the baseline row subtracts the Coulomb term itself, as the authors' C-NNP training must have done.

Targets: dimers, the best long-range row at test MAE ≤ 0.05 eV and ≤ 1/10 of the short-range row's;
NaCl, overall force RMSE ≤ 50 meV/Å on gen3 and a long-range row better than the short-range row on Na and Cl.

Usage::

    python benchmarks/long_range.py                      # both benchmarks, full NaCl fit (hours)
    python benchmarks/long_range.py --benchmark dimers   # minutes
    python benchmarks/long_range.py --benchmark dimers --pair-offsets   # the offsets protocol (docstring)
    python benchmarks/long_range.py --benchmark nacl --train-every 20 --test-every 2 --save-dir fitted
    python benchmarks/long_range.py --benchmark nacl --joint --train-every 20 --test-every 2 \
        --validation-every 80 --validation-offset 10 --sigmas 0.001/0.04,0.001/0.08,0.001/0.16 \
        --recipe "n_max=8 l_max=6 sparse=all"     # both rows and three noise levels, one design pass
    python benchmarks/long_range.py --benchmark nacl --train-every 8 --test-every 1 \
        --rows 'GAP + fixed-charge baseline' --sigmas 0.001/0.08 --max-memory 12GB \
        --recipe "n_max=8 l_max=6 zeta=2 sparse=all three_body=3.0 three_body_sparse=400" \
        --save-dir big   # the 46.8 meV/Å fit: 100 frames, 65 min on one core, 12 GiB (--checkpoint DIR resumes)
    python benchmarks/long_range.py --select             # the validation runs behind DIMER_* and NACL_GAP
    python benchmarks/long_range.py --smoke              # CI: bundled data, tiny models, < 1 min
    python benchmarks/long_range.py --md-model md.kpot --md-steps 4000   # the MD model + a 2 ps stability run
    python benchmarks/long_range.py --md-model md_s8.kpot --md-recipe s8  # issue 16 §2: 31 min on 2 threads
    python benchmarks/long_range.py --md-model md_s9.kpot --md-recipe s9 --md-base md_s8.kpot  # + the Cl-H floor
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "data"
SHARED = Path(os.environ.get("KERNELPOT_SHARED_DATA", REPO.parent / "shared" / "data"))
NACL_DIR = SHARED / "electrolytes" / "nacl_water"
DIMER_FILE = BUNDLED / "charged_dimers" / "charge-charge.xyz"
#: The authors' fixed charges (e), from input/nvt.inp of github.com/niamhon/nacl-water.
NACL_CHARGES = {"O": -0.834, "H": 0.417, "Na": 1.0, "Cl": -1.0}
NACL_SPECIES = ("O", "H", "Na", "Cl")
NACL_TRAIN = ("gen1a", "gen1b", "gen1c", "gen1d", "gen1e")
NACL_TEST = "gen3"


# ----------------------------------------------------------------------------------------------- shared helpers
#: Every table printed in this process, in order (``--markdown`` writes them).
PRINTED = []


@dataclass
class Table:
    """A printed table: a title, column names and formatted rows."""

    title: str
    columns: list
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def add(self, name, values, formats):
        self.rows.append([name] + [("-" if v is None else f.format(v)) for v, f in zip(values, formats)])

    def markdown(self):
        """The table as Markdown (title as a bold line, notes below)."""
        lines = [f"**{self.title}**", "", "| " + " | ".join(map(str, self.columns)) + " |",
                 "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines + [""] + self.notes)

    def print(self):
        PRINTED.append(self)
        widths = [max(len(str(c)), *(len(r[i]) for r in self.rows)) for i, c in enumerate(self.columns)]
        line = "  ".join(f"{c:<{widths[0]}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in
                         enumerate(zip(self.columns, widths)))
        print(f"\n{self.title}\n{line}\n{'-' * len(line)}")
        for row in self.rows:
            print("  ".join(f"{v:<{widths[0]}}" if i == 0 else f"{v:>{w}}" for i, (v, w) in
                            enumerate(zip(row, widths))))
        for note in self.notes:
            print(note)


def load_average():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


# ------------------------------------------------------------------------------------- benchmark 1: dimers
@dataclass
class DimerSet:
    """Charged dimers as open-boundary structures with their binding energies and monomer split."""

    dimers: list            # ase.Atoms, pbc False
    binding: np.ndarray     # (n,) eV, E - E_A - E_B
    distance: np.ndarray    # (n,) Å, centre-of-mass separation
    family: np.ndarray      # (n,) int, the cation-anion pair
    monomer: list           # per dimer: (n_atoms,) int, 0 for the cation, 1 for the anion

    def subset(self, index):
        index = np.asarray(index)
        return DimerSet([self.dimers[i] for i in index], self.binding[index], self.distance[index],
                        self.family[index], [self.monomer[i] for i in index])


def _monomers_of(atoms):
    """(n_atoms,) labels of the two covalently bonded fragments: 0 for the one with N (the cation), else 1."""
    from ase.neighborlist import NeighborList, natural_cutoffs
    from scipy.sparse.csgraph import connected_components

    bonds = NeighborList(natural_cutoffs(atoms), self_interaction=False, bothways=True)
    bonds.update(atoms)
    n, labels = connected_components(bonds.get_connectivity_matrix())
    if n != 2:
        return None
    with_n = [c for c in range(2) if 7 in atoms.numbers[labels == c]]
    if len(with_n) != 1:
        raise ValueError(f"cannot tell the cation from the anion in {atoms.get_chemical_formula()}")
    return np.where(labels == with_n[0], 0, 1)


def load_dimers(path=DIMER_FILE):
    """Read the charged-dimer file; each family's monomer split comes from its most separated frame."""
    from ase.io import read

    frames = read(path, ":")
    # A family is a run of frames of one pair at increasing separation: a new one starts where the
    # separation drops or the monomer energies change.
    starts = [i for i in range(1, len(frames)) if frames[i].info["distance"] <= frames[i - 1].info["distance"]
              or (frames[i].info["energyA"], frames[i].info["energyB"])
              != (frames[i - 1].info["energyA"], frames[i - 1].info["energyB"])]
    family = np.cumsum(np.isin(np.arange(len(frames)), starts))
    split = {}
    for f in np.unique(family):
        members = np.where(family == f)[0]
        farthest = frames[members[np.argmax([frames[i].info["distance"] for i in members])]]
        split[f] = _monomers_of(farthest)
        if split[f] is None:
            raise ValueError(f"dimer family {f}: the most separated frame is not two separate molecules")
    dimers = []
    for a in frames:
        if {a.info["chargeA"], a.info["chargeB"]} != {1, -1}:
            raise ValueError(f"expected a +1/-1 pair; got charges {a.info['chargeA']}, {a.info['chargeB']}")
        dimers.append(Atoms(numbers=a.numbers, positions=a.positions, pbc=False))
    for atoms, f in zip(dimers, family):
        atoms.arrays["monomer"] = split[f].copy()
    binding = np.array([a.get_potential_energy() - a.info["energyA"] - a.info["energyB"] for a in frames])
    distance = np.array([a.info["distance"] for a in frames])
    return DimerSet(dimers, binding, distance, family, [split[f] for f in family])


def dimer_charges(atoms, monomer, spread):
    """Per-atom charges (e) giving the cation (monomer 0) +1 and the anion −1.

    ``"uniform"``: ±1/N on every atom of the monomer. ``"group"``: the cation's +1 on its N atoms and the H
    atoms bonded to them, the anion's −1 on its O atoms.
    """
    charges = np.zeros(len(atoms))
    for label, sign in ((0, 1.0), (1, -1.0)):
        members = np.where(monomer == label)[0]
        if spread == "uniform":
            carriers = members
        elif spread == "group":
            heavy = 7 if sign > 0 else 8
            carriers = [i for i in members if atoms.numbers[i] == heavy]
            if sign > 0:
                d = atoms.get_all_distances()
                carriers += [i for i in members if atoms.numbers[i] == 1 and np.min(d[i, carriers]) < 1.2]
        else:
            raise ValueError(f"`spread` must be 'uniform' or 'group'; got {spread!r}")
        charges[np.asarray(carriers)] = sign / len(carriers)
    return charges


def dimer_coulomb_binding(dimers, spread):
    """Fixed-charge binding energies E_C(AB) − E_C(A) − E_C(B) (eV): only inter-monomer pairs."""
    from kernelpot.potential.coulomb_baseline import CoulombBaseline

    baseline = CoulombBaseline("initial_charges")
    out = np.zeros(len(dimers.dimers))
    for k, (atoms, monomer) in enumerate(zip(dimers.dimers, dimers.monomer)):
        charged = atoms.copy()
        charged.set_initial_charges(dimer_charges(atoms, monomer, spread))
        charged.info["charge"] = 0.0
        parts = [charged[monomer == label] for label in (0, 1)]
        for part, q in zip(parts, (1.0, -1.0)):
            part.info["charge"] = q
        energies = baseline.evaluate([charged, *parts], forces=False)["energy"]
        out[k] = energies[0] - energies[1] - energies[2]
    return out


def dimer_gap(r_cut, delta, n_sparse=400):
    """SOAP GAP for binding energies (energies only; e0 = 0: the binding vanishes at infinite separation)."""
    from kernelpot.models import SparseGPR
    from kernelpot.potential.recipe import terms_from_gap_string

    gap = (f"{{soap l_max=4 n_max=6 atom_sigma=0.5 cutoff={r_cut} cutoff_transition_width=1.0 delta={delta} "
           f"covariance_type=dot_product zeta=2 n_sparse={n_sparse} sparse_method=cur_points}}")
    terms = terms_from_gap_string(gap, [1, 6, 7, 8], periodic=False)
    return SparseGPR(terms, default_sigma=(0.002, 0.1, 0.1), e0=0.0, random_state=0)


def _family_monomers(data):
    """The two isolated monomers of every family in ``data`` (binding energy 0 by definition; rigid in the file)."""
    seen, out = set(), []
    for atoms, monomer, family in zip(data.dimers, data.monomer, data.family):
        if family not in seen:
            seen.add(family)
            out += [atoms[monomer == 0], atoms[monomer == 1]]
    return out


class RigidPairOffset:
    """Descriptor of a benchmark-level parameter: the binding of each known rigid monomer pair at infinite separation.

    The file's binding energies subtract monomer energies ``energyA``/``energyB`` computed at one reference geometry
    per molecule, while every family's dimers hold the two molecules rigid in *their own* geometries (the same
    methylguanidinium differs by up to 0.36 Å in its interatomic distances between families, with one ``energyA``).
    Each family's binding therefore tends to a constant at infinite separation: the deformation energy of its rigid
    monomers. One row per atom: the one-hot of the structure's monomer pair divided by its atom count, for a
    structure made of two monomers (``arrays["monomer"]`` 0 and 1) that match a pair of ``pairs``; zeros for anything
    else (an isolated monomer, an unknown pair). With :class:`~kernelpot.kernels.LinearCovariance` the term adds a
    weight per pair to the dimer's energy and nothing to its monomers': ``f(AB) − f(A) − f(B)`` then tends to it.
    """

    def __init__(self, pairs, tolerance=1e-3):
        self.pairs = pairs
        self.tolerance = tolerance

    def get_params(self, deep=True):
        return {"pairs": self.pairs, "tolerance": self.tolerance}

    @staticmethod
    def fingerprint(atoms):
        """(sorted atomic numbers, sorted interatomic distances in Å) of a rigid molecule."""
        d = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
        return np.sort(atoms.numbers), np.sort(d)

    @classmethod
    def of(cls, data):
        """The monomer pairs of a :class:`DimerSet` (one per family)."""
        pairs, seen = [], set()
        for atoms, monomer, family in zip(data.dimers, data.monomer, data.family):
            if family not in seen:
                seen.add(family)
                pairs.append(tuple(cls.fingerprint(atoms[monomer == label]) for label in (0, 1)))
        return cls(pairs)

    def _index(self, atoms):
        labels = atoms.arrays.get("monomer")
        if labels is None or set(np.unique(labels)) != {0, 1}:
            return None
        parts = [self.fingerprint(atoms[labels == label]) for label in (0, 1)]
        for k, pair in enumerate(self.pairs):
            if all(len(p[0]) == len(q[0]) and np.array_equal(p[0], q[0])
                   and np.allclose(p[1], q[1], atol=self.tolerance) for p, q in zip(parts, pair)):
                return k
        return None

    def transform(self, X, *, gradients=False):
        from kernelpot.descriptors.base import AtomicFeatures, SparseGradients

        structures = [X] if isinstance(X, Atoms) else list(X)
        rows, offsets, numbers = [], [0], []
        for atoms in structures:
            block = np.zeros((len(atoms), len(self.pairs)))
            k = self._index(atoms)
            if k is not None:
                block[:, k] = 1.0 / len(atoms)
            rows.append(block)
            offsets.append(offsets[-1] + len(atoms))
            numbers.append(atoms.numbers)
        features = AtomicFeatures(np.concatenate(rows), offsets, np.concatenate(numbers))
        if not gradients:
            return features
        # Constant for rigid monomers: no position dependence.
        return features, SparseGradients(np.zeros((0, 3, len(self.pairs))), np.zeros(0, np.int64),
                                         np.zeros(0, np.int64), np.zeros((0, 3)))


def _offset_term(train, delta=1.0):
    from kernelpot.kernels import LinearCovariance
    from kernelpot.models.gap import GAPTerm

    descriptor = RigidPairOffset.of(train)
    return GAPTerm(descriptor, LinearCovariance(), delta=delta, n_sparse=len(descriptor.pairs),
                   sparse_points=np.eye(len(descriptor.pairs)))


#: Protocol switch (``--pair-offsets``): also fit a free binding at infinite separation per monomer pair
#: (``RigidPairOffset``). Off by default: see "What the binding tends to at infinite separation" in the docstring.
DIMER_PAIR_OFFSETS = False


def fit_binding_gap(train, targets, settings, extra_terms=()):
    """Fit a GAP to binding energies as a potential would see them: ``targets`` (eV) on the dimers and 0 on
    every isolated monomer, so that ``predict_binding`` = f(AB) − f(A) − f(B) vanishes at infinite separation."""
    monomers = _family_monomers(train)
    structures = list(train.dimers) + monomers
    model = dimer_gap(settings["r_cut"], settings["delta"], n_sparse=min(400, sum(len(a) for a in structures)))
    model.terms = list(model.terms) + list(extra_terms)
    if settings.get("offsets", DIMER_PAIR_OFFSETS):
        model.terms.append(_offset_term(train))
    return model.fit(structures, energies=np.concatenate([targets, np.zeros(len(monomers))]))


def predict_binding(model, test):
    """f(AB) − f(A) − f(B) (eV) for every dimer of ``test``, the monomers cut out of the dimer."""
    parts = [[atoms[monomer == label] for atoms, monomer in zip(test.dimers, test.monomer)] for label in (0, 1)]
    return (model.predict(test.dimers)["energy"] - model.predict(parts[0])["energy"]
            - model.predict(parts[1])["energy"])


#: Choices of the inner validation (:func:`inner_split`: every family's 3 largest training separations validated;
#: ``--select``; table in the docstring). Grid: SOAP cutoff 3, 4, 5 Å × δ 0.1, 1 eV (× charge spread uniform, group
#: for the baseline rows). The kQEq row's settings come from the kqeq helper's earlier split (train < 5 Å, validate
#: 5–6 Å; its grid costs ~3 min per point and was not rerun).
DIMER_SETTINGS = {"short-range SOAP-GAP": {"r_cut": 5.0, "delta": 1.0},
                  "+ fixed-charge baseline": {"r_cut": 5.0, "delta": 1.0, "spread": "group"},
                  "+ long-range features": {"r_cut": 3.0, "delta": 0.1},
                  "+ long-range features (λ=0)": {"r_cut": 5.0, "delta": 0.1},
                  "+ fixed-charge baseline + long-range features": {"r_cut": 3.0, "delta": 0.1, "spread": "uniform"},
                  "+ kQEq charges": {"r_cut": 4.0, "delta": 1.0, "spread": "group"}}
#: The same choices under ``--pair-offsets`` (the same grid, that protocol).
DIMER_SETTINGS_PAIR_OFFSETS = {"short-range SOAP-GAP": {"r_cut": 5.0, "delta": 0.1},
                               "+ fixed-charge baseline": {"r_cut": 3.0, "delta": 1.0, "spread": "group"},
                               "+ long-range features": {"r_cut": 3.0, "delta": 0.1},
                               "+ long-range features (λ=0)": {"r_cut": 4.0, "delta": 1.0},
                               "+ fixed-charge baseline + long-range features": {"r_cut": 3.0, "delta": 0.1,
                                                                                 "spread": "group"},
                               "+ kQEq charges": {"r_cut": 4.0, "delta": 1.0, "spread": "group"}}
DIMER_SPREAD = "group"


def dimer_short_range(train, test, settings):
    """Row: SOAP GAP on the binding energies."""
    return predict_binding(fit_binding_gap(train, train.binding, settings), test)


def dimer_fixed_charge(train, test, settings):
    """Row: fixed-charge binding energy + SOAP GAP on the residual."""
    spread = settings.get("spread", DIMER_SPREAD)
    residual = train.binding - dimer_coulomb_binding(train, spread)
    model = fit_binding_gap(train, residual, settings)
    return dimer_coulomb_binding(test, spread) + predict_binding(model, test)


#: LODE settings of the "+ long-range features" rows: the potential of the atom density smeared by 1 Å, projected
#: on 3 radial functions inside 2 Å (the published LODE example's scale; not tuned on the test separations: the
#: inner validation prefers wider smearing, see the docstring), combined with a 3 Å SOAP density into ρ⊗V invariants.
DIMER_LODE = {"r_cut": 2.0, "n_max": 3, "l_max": 2, "smearing": 1.0}
DIMER_LODE_DENSITY = {"r_cut": 3.0, "n_max": 6, "l_max": 2, "sigma": 0.3, "cutoff_transition_width": 0.5}


def _lode_term(train, lode=None):
    from kernelpot.descriptors import LODE, SOAP
    from kernelpot.kernels import LinearCovariance
    from kernelpot.models.gap import GAPTerm

    species = [1, 6, 7, 8]
    descriptor = LODE(species, **{**DIMER_LODE, **(lode or {})}, density=SOAP(species, **DIMER_LODE_DENSITY))
    n_rows = sum(len(a) for a in train.dimers) + sum(len(a) for a in _family_monomers(train))
    return GAPTerm(descriptor, LinearCovariance(), delta=1.0, n_sparse=n_rows)


def dimer_long_range_features(train, test, settings, lode=None):
    """Row: SOAP GAP + a linear LODE ρ⊗V term (its own sparse point per training environment)."""
    return predict_binding(fit_binding_gap(train, train.binding, settings, [_lode_term(train, lode)]), test)


def dimer_long_range_features_l0(train, test, settings):
    """Row: as ``dimer_long_range_features`` with only λ = 0 potential projections (l_max 0)."""
    return dimer_long_range_features(train, test, settings, {"l_max": 0})


def dimer_fixed_charge_long_range_features(train, test, settings):
    """Row: fixed-charge binding energy + SOAP and LODE terms fitted to the residual."""
    spread = settings.get("spread", DIMER_SPREAD)
    residual = train.binding - dimer_coulomb_binding(train, spread)
    model = fit_binding_gap(train, residual, settings, [_lode_term(train)])
    return dimer_coulomb_binding(test, spread) + predict_binding(model, test)


#: The "+ kQEq charges" row beyond its ``DIMER_SETTINGS``: the anchor's weight (``charge_sigma``, e per atom: a prior
#: on the charges, centred on the fixed-charge row's spread of each monomer's ±1), kQEq's own SOAP, sparse points per
#: species and the joint fit's iterations, and the charge constraint (``"fragments"``: each monomer at ±1; ``"total"``:
#: only the dimer's 0). Inner split (train < 5 Å, validate 5–6 Å, δ 1 eV, MAE in eV; /work/notes/kqeq/
#: dimer_select_monomers_s2.log, final/dimers_total_val.log): group spread, charge_sigma 0.1 e: r_cut 3/4/5 Å
#: 0.225/**0.140**/0.158; charge_sigma 1 e: 0.368/0.171/0.161; uniform spread, 0.1 e: r_cut 3/4 Å 0.520/0.232;
#: constraint "total" (r_cut 4, group, 0.1 e): 0.174.
DIMER_KQEQ = {"charge_sigma": 0.1, "constraint": "fragments",
              "soap": {"r_cut": 3.0, "n_max": 4, "l_max": 3, "sigma": 0.4}, "n_sparse": 50,
              "max_iterations": 6}


def _kqeq_dimer(atoms, monomer):
    """A dimer for kQEq: neutral; with ``DIMER_KQEQ["constraint"] == "fragments"`` each monomer is held at its net
    charge (the cation +1, the anion −1), with ``"total"`` only the sum is (charge may move between them)."""
    dimer = atoms.copy()
    dimer.info["charge"] = 0
    if DIMER_KQEQ["constraint"] == "fragments":
        dimer.arrays["fragment"] = monomer.astype(int)
        dimer.info["fragment_charges"] = [1, -1]
    return dimer


def _charged_monomers(atoms, monomer):
    """The cation (+1) and the anion (−1) of one dimer, cut out of it."""
    parts = []
    for label, charge in ((0, 1), (1, -1)):
        part = atoms[monomer == label]
        part.info["charge"] = charge
        parts.append(part)
    return parts


def dimer_kqeq(train, test, settings):
    """Row: kQEq charges + SOAP GAP, fitted jointly (:class:`kernelpot.models.charges.KQEqPotential`).

    Electronegativities from a SOAP kernel model; charges by charge equilibration with each monomer held at its ±1
    (a fragment constraint: charge flows inside a monomer, so the charges polarise as the partner approaches); energy
    = QEq energy + GAP. The charges start from the fixed-charge row's spread (a prior of ``charge_sigma`` e per atom)
    and the joint fit moves them to fit the binding energies. Binding = f(AB) − f(A) − f(B), fitted with the
    monomers at 0, as every row.
    """
    from kernelpot.descriptors import SOAP
    from kernelpot.models.charges import KernelChargeEquilibration, KQEqPotential

    spread = settings.get("spread") or DIMER_SPREAD
    dimers, anchor, monomers, monomer_anchor, seen = [], [], [], [], set()
    for atoms, monomer, family in zip(train.dimers, train.monomer, train.family):
        q = dimer_charges(atoms, monomer, spread)
        dimers.append(_kqeq_dimer(atoms, monomer))
        anchor.append(q)
        if family not in seen:  # each family's isolated monomers, binding 0
            seen.add(family)
            monomers += _charged_monomers(atoms, monomer)
            monomer_anchor += [q[monomer == 0], q[monomer == 1]]
    charges = KernelChargeEquilibration(SOAP(species=[1, 6, 7, 8], **DIMER_KQEQ["soap"]),
                                        n_sparse=DIMER_KQEQ["n_sparse"], charge_sigma=DIMER_KQEQ["charge_sigma"])
    structures, anchor = dimers + monomers, anchor + monomer_anchor
    gap = dimer_gap(settings["r_cut"], settings["delta"], n_sparse=min(400, sum(len(a) for a in structures)))
    if settings.get("offsets", DIMER_PAIR_OFFSETS):
        gap.terms = list(gap.terms) + [_offset_term(train)]
    potential = KQEqPotential(charges, gap, scheme="joint", max_iterations=DIMER_KQEQ["max_iterations"])
    potential.fit(structures, energies=np.concatenate([train.binding, np.zeros(len(monomers))]), charges=anchor)
    test_dimers = [_kqeq_dimer(a, m) for a, m in zip(test.dimers, test.monomer)]
    cations, anions = zip(*(_charged_monomers(a, m) for a, m in zip(test.dimers, test.monomer)))
    return (potential.predict(test_dimers)["energy"] - potential.predict(list(cations))["energy"]
            - potential.predict(list(anions))["energy"])


#: Rows of benchmark 1: ``name -> function(train, test, settings) -> predicted binding energies (eV)``; settings
#: from ``DIMER_SETTINGS``.
DIMER_ROWS = {"short-range SOAP-GAP": dimer_short_range, "+ fixed-charge baseline": dimer_fixed_charge,
              "+ long-range features": dimer_long_range_features,
              "+ long-range features (λ=0)": dimer_long_range_features_l0,
              "+ fixed-charge baseline + long-range features": dimer_fixed_charge_long_range_features,
              "+ kQEq charges": dimer_kqeq}


def inner_split(train, holdout=3):
    """Validation inside the training range that probes extrapolation in distance as the test does: every family's
    ``holdout`` largest training separations are validated (at most all but its smallest), the rest are fitted."""
    fit, val = [], []
    for f in np.unique(train.family):
        members = np.where(train.family == f)[0]
        members = members[np.argsort(train.distance[members])]
        n_val = min(holdout, len(members) - 1)
        fit += list(members[:len(members) - n_val])
        val += list(members[len(members) - n_val:])
    return train.subset(np.sort(fit)), train.subset(np.sort(val))


def select_dimers(data, rows=None, split=6.0, holdout=3, pair_offsets=False):
    """Validation inside the training range (:func:`inner_split`): grid over SOAP cutoff, δ and charge spread."""
    rows = rows or DIMER_ROWS
    fit, val = inner_split(data.subset(np.where(data.distance < split)[0]), holdout)
    table = Table(f"Dimers, inner validation: the {holdout} largest training separations of every family "
                  f"({len(val.dimers)} dimers) from the rest ({len(fit.dimers)}); MAE in eV",
                  ["row", "r_cut", "delta", "spread", "val MAE"])
    for name, row in rows.items():
        spreads = (("uniform", "group") if row in (dimer_fixed_charge, dimer_fixed_charge_long_range_features,
                                                     dimer_kqeq)
                   else (None,))
        for r_cut in (3.0, 4.0, 5.0):
            for delta in (0.1, 1.0):
                for spread in spreads:
                    settings = {"r_cut": r_cut, "delta": delta, "spread": spread, "offsets": pair_offsets}
                    mae = np.mean(np.abs(row(fit, val, settings) - val.binding))
                    table.add(name, [r_cut, delta, spread or "", mae], ["{:.1f}", "{:g}", "{}", "{:.4f}"])
    table.print()
    return table


def run_dimers(data, rows=None, split=6.0, pair_offsets=False):
    """Benchmark 1: fit every row on separations < ``split`` Å and test on the rest."""
    rows = rows or DIMER_ROWS
    train = data.subset(np.where(data.distance < split)[0])
    test = data.subset(np.where(data.distance >= split)[0])
    protocol = "; with pair offsets" if pair_offsets else ""
    table = Table(f"Benchmark 1: charged dimers, binding energy; train {len(train.dimers)} dimers < {split} Å, "
                  f"test {len(test.dimers)} dimers >= {split} Å{protocol}", ["row", "test MAE (eV)", "test RMSE (eV)",
                  "MAE 6-7 Å", "MAE >= 8 Å", "train MAE (eV)", "fit+predict (s)"])
    results = {}
    for name, row in rows.items():
        settings = {**(DIMER_SETTINGS_PAIR_OFFSETS if pair_offsets else DIMER_SETTINGS).get(name, {}),
                    "offsets": pair_offsets}
        start = time.perf_counter()
        predicted = row(train, test, settings)
        seconds = time.perf_counter() - start
        train_mae = np.mean(np.abs(row(train, train, settings) - train.binding))
        error = predicted - test.binding
        near, far = test.distance < 7.0, test.distance >= 8.0
        results[name] = {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2))),
                         "mae_6_7": float(np.mean(np.abs(error[near]))), "mae_ge_8": float(np.mean(np.abs(error[far])))
                         if far.any() else None, "train_mae": float(train_mae), "seconds": seconds}
        r = results[name]
        table.add(name, [r["mae"], r["rmse"], r["mae_6_7"], r["mae_ge_8"], r["train_mae"], seconds],
                  ["{:.4f}", "{:.4f}", "{:.4f}", "{:.4f}", "{:.4f}", "{:.1f}"])
    first = next(iter(results.values()))["mae"]
    best = min(results, key=lambda k: results[k]["mae"])
    table.notes.append(f"best row: {best}, MAE {results[best]['mae']:.4f} eV = "
                       f"{results[best]['mae'] / first:.3f} of the "
                       f"first row's (targets: <= 0.05 eV and <= 0.1); load average {load_average():.1f}")
    table.print()
    return results


# ----------------------------------------------------------------------------------------- benchmark 2: NaCl
@dataclass
class NaClData:
    """NaCl–water frames (wrapped into their cells) with energies (eV) and forces (eV/Å)."""

    atoms: list
    energies: np.ndarray
    forces: list

    def subset(self, index):
        return NaClData([self.atoms[i] for i in index], self.energies[np.asarray(index)],
                        [self.forces[i] for i in index])

    @property
    def n_atoms(self):
        return sum(len(a) for a in self.atoms)


#: Frames (file, index from 0) that no benchmark run trains or validates on, and why. gen1b frame 156 has a broken
#: label (/work/notes/nacl/s6/frame156.log, frame156_xtb.log): forces of 35 and 33 eV/Å on one water's H and O
#: (and 15-17 eV/Å on two neighbours) at an ordinary geometry (no pair distance below the 0.1th percentile of the
#: set's; O-H 1.02 Å, H···O 2.16 Å), 10-20 times what GFN2-xTB gives there, while xTB agrees with the other frames'
#: labels to 0.21 eV/Å RMS (correlation 0.98) but with this frame's remaining 172 atoms only to 0.64 (0.80); and the
#: lowest energy of all 799 frames, 3.5 eV (5.3 σ) below a per-species fit, where forces that large would mean a
#: higher one. The next largest force in the 799 frames is 6.5 eV/Å. It doubled the gen3 force error when it was
#: trained on (every 13th frame: 113 meV/Å instead of ~60); ``SparseGPR.fit`` now warns about such labels
#: (:class:`kernelpot.exceptions.ForceOutlierWarning`).
NACL_EXCLUDED = {("gen1b", 156): "broken label: 35 eV/Å at an ordinary geometry, 10-20x GFN2-xTB's"}


def _file_name(path):
    return Path(path).stem.split("_")[-1]


def load_nacl(paths, every=1, offset=0, exclude=NACL_EXCLUDED):
    """Read RuNNer files (Bohr/Hartree → Å/eV) into :class:`NaClData`: frames ``offset, offset + every, ...`` of
    each file but those of ``exclude`` (:data:`NACL_EXCLUDED`), positions wrapped into the cell."""
    from kernelpot.structures.runner import read_runner

    atoms, energies, forces = [], [], []
    for path in paths:
        frames = read_runner(path, slice(offset, None, every))
        for index, frame in zip(range(offset, offset + every * len(frames), every), frames):
            if (_file_name(path), index) in exclude:
                continue
            energies.append(frame.get_potential_energy())
            forces.append(frame.get_forces())
            clean = Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell, pbc=True)
            clean.info["charge"] = frame.info["charge"]
            clean.wrap()
            atoms.append(clean)
    return NaClData(atoms, np.array(energies), forces)


#: Species triplets (centre, neighbour, neighbour) of the 3-body terms (``three_body=``): water's six, and the
#: ions' first shells (Na⁺ among O, Cl⁻ among H).
NACL_TRIPLETS = (("O", "H", "H"), ("O", "O", "H"), ("O", "O", "O"), ("H", "O", "O"), ("H", "O", "H"),
                 ("H", "H", "H"), ("Na", "O", "O"), ("Cl", "H", "H"))
#: More triplets with an ion (``triplets=ions``): a water's H bonded to Cl⁻ and to its O, a water's O next to Na⁺
#: and its H or another O, the ions' mixed first shells.
NACL_ION_TRIPLETS = (("H", "O", "Cl"), ("H", "H", "Cl"), ("O", "H", "Na"), ("O", "O", "Na"), ("Na", "O", "H"),
                     ("Cl", "O", "H"), ("Cl", "O", "O"))


def nacl_gap_string(*, r_cut=5.0, n_max=6, l_max=4, soap_delta=0.2, zeta=4, atom_sigma=0.5, n_sparse=None,
                    two_body_delta=1.0, two_body_theta=1.0, two_body_cutoff=5.0, two_body_sparse=20, transition=1.0,
                    pairs=None, bonds=False, three_body=None, three_body_delta=0.5, three_body_theta=1.0,
                    three_body_sparse=200, triplets="water"):
    """``distance_2b`` per species pair (``pairs``, default all 10) and one SOAP term per centre species
    (:func:`kernelpot.potential.recipe.species_gap_string`); ``bonds``: with its ``WATER_BOND_TERMS`` (stiff O–H
    and H–H pair terms for water's intramolecular geometry); ``three_body``: a cutoff (Å) for one ``angle_3b``
    term per triplet of :data:`NACL_TRIPLETS` (gap_fit's ``delta`` ``three_body_delta`` eV, ``theta_uniform``
    ``three_body_theta``, ``three_body_sparse`` points by farthest points, transition 0.5 Å; ``triplets="ions"``
    adds :data:`NACL_ION_TRIPLETS`)."""
    from ase.data import atomic_numbers

    from kernelpot.potential.recipe import WATER_BOND_TERMS, species_gap_string

    n_sparse = n_sparse or {"O": 1500, "H": 1500, "Na": 500, "Cl": 500}
    extra = list(WATER_BOND_TERMS) if bonds else []
    if three_body:
        z = atomic_numbers
        extra += [f"angle_3b cutoff={three_body} cutoff_transition_width=0.5 covariance_type=ard_se "
                  f"delta={three_body_delta} theta_uniform={three_body_theta} n_sparse={three_body_sparse} "
                  f"sparse_method=fps Z={z[c]} Z1={z[a]} Z2={z[b]}"
                  for c, a, b in NACL_TRIPLETS + (NACL_ION_TRIPLETS if triplets == "ions" else ())]
    return species_gap_string({s: n_sparse[s] for s in NACL_SPECIES}, pairs=pairs, r_cut=r_cut, n_max=n_max,
                              l_max=l_max, zeta=zeta, soap_delta=soap_delta, atom_sigma=atom_sigma,
                              transition=transition, two_body_cutoff=two_body_cutoff, two_body_delta=two_body_delta,
                              two_body_theta=two_body_theta, two_body_sparse=two_body_sparse, extra_terms=extra)


#: The benchmark's recipe (see "NaCl recipe" in the docstring): bond terms + SOAP δ 1 eV were the best of the
#: candidates tried on gen1 validation; 4,600 SOAP sparse points (more fit the training forces better, the
#: learning-curve limit) + 240 pair points.
NACL_RECIPE = {"bonds": True, "soap_delta": 1.0, "n_sparse": {"O": 2000, "H": 2000, "Na": 300, "Cl": 300}}
NACL_GAP = nacl_gap_string(**NACL_RECIPE)
#: "All environments" as a sparse count: more than any training set here holds (the fit uses every row).
ALL_ENVIRONMENTS = 10**6


def nacl_recipe_gap(text):
    """The gap string of ``--recipe "n_max=8,l_max=6,r_cut=5.5,sparse=all"`` (commas or spaces): :data:`NACL_RECIPE`
    with :func:`nacl_gap_string` keywords changed (``atom_sigma``: the SOAP density width, Å; ``three_body=3.0``:
    3-body terms of that cutoff, ``triplets=ions`` with the ion triplets too); ``sparse=N`` (or ``all``) sets the
    O and H SOAP sparse points (Na and Cl keep theirs, ``all`` makes them all too); ``sparse_O=N`` (or ``all``),
    ``sparse_H``, ... one species' (CUR among that species' environments); ``select=fps`` picks the SOAP sparse
    points by farthest points instead of CUR (CUR of thousands of points among thousands of n 8 l 6 environments
    costs more CPU than the fit: > 10 min for 2,400 of 4,528 H environments)."""
    kwargs = {**NACL_RECIPE, "n_sparse": dict(NACL_RECIPE["n_sparse"])}
    method = "cur_points"
    for entry in text.replace(",", " ").split():
        key, _, value = entry.partition("=")
        if key == "select":
            if value not in ("cur", "fps"):
                raise SystemExit(f"--recipe: select must be cur or fps; got {value!r}")
            method = "cur_points" if value == "cur" else "fps"
        elif key == "sparse":
            count = ALL_ENVIRONMENTS if value == "all" else int(value)
            kwargs["n_sparse"].update({"O": count, "H": count})
            if value == "all":
                kwargs["n_sparse"].update({"Na": count, "Cl": count})
        elif key.startswith("sparse_") and key[7:] in NACL_SPECIES:
            kwargs["n_sparse"][key[7:]] = ALL_ENVIRONMENTS if value == "all" else int(value)
        elif key in ("n_max", "l_max", "zeta", "two_body_sparse", "three_body_sparse"):
            kwargs[key] = int(value)
        elif key in ("r_cut", "soap_delta", "atom_sigma", "two_body_delta", "two_body_theta", "two_body_cutoff",
                     "transition", "three_body", "three_body_delta", "three_body_theta"):
            kwargs[key] = float(value)
        elif key == "triplets":
            if value not in ("water", "ions"):
                raise SystemExit(f"--recipe: triplets must be water or ions; got {value!r}")
            kwargs[key] = value
        else:
            raise SystemExit(f"--recipe: unknown key {key!r} in {text!r}")
    return nacl_gap_string(**kwargs).replace("sparse_method=cur_points", f"sparse_method={method}")
NACL_SIGMA = (0.001, 0.04, 0.05)


def _nacl_model(gap, sigma, baseline, max_memory, verbose):
    from kernelpot.models import SparseGPR
    from kernelpot.potential.recipe import terms_from_gap_string

    terms = terms_from_gap_string(gap, [1, 8, 11, 17], periodic=True)
    kwargs = {} if baseline is None else {"baseline": baseline}
    return SparseGPR(terms, default_sigma=sigma, e0="composition", max_memory=max_memory, random_state=0,
                     verbose=verbose, **kwargs)


def fit_nacl_row(train, settings, baseline=None):
    """Fit a GAP (with ``baseline`` underneath, if any) to NaCl data; e0 from a composition fit of the residual.
    With ``settings["checkpoint"]`` (a folder) the fit is :func:`fit_nacl_checkpointed`."""
    if settings.get("checkpoint"):
        folder = Path(settings["checkpoint"]) / ("no_baseline" if baseline is None else type(baseline).__name__)
        return fit_nacl_checkpointed(train, settings, baseline, folder)
    model = _nacl_model(settings["gap"], settings["sigma"], baseline, settings.get("max_memory"),
                        settings.get("verbose", False))
    return model.fit(train.atoms, energies=list(train.energies), forces=list(train.forces))


def _fitted_nacl_model(settings, sigma, baseline, terms, template, e0, alpha, L, R):
    """The SparseGPR that a fit with these sparse points, ``e0``, coefficients and factors would return."""
    import dataclasses

    model = _nacl_model(settings["gap"], tuple(sigma), baseline, None, False)
    start, fitted = 0, []
    for term in terms:
        fitted.append(dataclasses.replace(term, alpha=alpha[start:start + term.n_sparse].copy()))
        start += term.n_sparse
    model.terms_, model.selection_info_, model.e0_ = fitted, template.selection_info_, e0
    model.alpha_, model.kmm_cholesky_, model.posterior_factor_ = alpha.copy(), L, R
    model.memory_estimate_ = {}
    return model


def _atomic_save(path, array):
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        np.save(handle, array)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def fit_nacl_checkpointed(train, settings, baseline, checkpoint, save_every=10, stop_after=None):
    """``SparseGPR.fit`` of one row (QR solver), one frame at a time, resumable: for fits of hours.

    Every ``save_every`` frames the R factor of the rows so far (``(M + 1)²`` doubles: 7.7 GB at 31,000 sparse
    points) is written atomically to ``checkpoint/qr_state.npy`` with ``qr_state.json`` (frames done and a
    fingerprint of the recipe, σ, training labels and the chosen sparse points); a rerun with the same inputs
    continues after the last saved frame, anything else starts afresh. The sparse points are chosen again on a
    rerun (``sparse=all`` and FPS are deterministic; the fingerprint checks it). ``K_MM`` is freed before R is
    allocated, so the peak is two ``M × M`` arrays (+ one frame's design rows and descriptor gradients), where
    ``SparseGPR.fit`` briefly holds three. ``stop_after``: stop (return None) after that many frames, a test's
    stand-in for a killed run. The model equals ``SparseGPR.fit``'s (tested).
    """
    import hashlib

    from kernelpot.models.gap.accumulators import QRAccumulator
    from kernelpot.models.gap.design import DesignBuilder
    from kernelpot.models.gap.labels import check_labels, residual_labels, resolve_e0
    from kernelpot.models.gap.terms import factor_kmm
    from kernelpot.utils.memory import parse_memory, resident_bytes

    checkpoint = Path(checkpoint)
    checkpoint.mkdir(parents=True, exist_ok=True)
    state_path, meta_path = checkpoint / "qr_state.npy", checkpoint / "qr_state.json"
    verbose = settings.get("verbose", False)
    template = _nacl_model(settings["gap"], settings["sigma"], baseline, None, verbose)
    sigma_table = template._check_params()
    atoms = train.atoms
    labels = residual_labels(check_labels(atoms, list(train.energies), list(train.forces), None, None), atoms,
                             baseline)
    e0 = resolve_e0("composition", atoms, labels)
    terms = template._choose_sparse(atoms, np.random.default_rng(0))
    digest = hashlib.sha256(json.dumps([settings["gap"], list(settings["sigma"]), len(atoms),
                                        None if baseline is None else baseline.to_dict()],
                                       sort_keys=True, default=str).encode())
    digest.update(np.ascontiguousarray(train.energies).tobytes())
    for forces in train.forces:
        digest.update(np.ascontiguousarray(forces).tobytes())
    for term in terms:
        digest.update(np.ascontiguousarray(term.sparse_X).tobytes())
    fingerprint = digest.hexdigest()
    builder = DesignBuilder(terms, e0, sigma_table, template.sigma_per_atom, template.max_block_memory * 2**20)
    m = sum(term.n_sparse for term in terms)
    # Checked before hours of work: L and R (two M x M arrays) and one frame's gradients must fit the budget.
    need = 2 * 8 * (m + 1) ** 2 + max(len(a) for a in atoms) * builder.gradient_bytes_per_atom(atoms)[0]
    print(f"checkpointed fit: {len(atoms)} frames, {m} sparse points; needs about {need / 2**30:.1f} GiB beyond "
          f"the {resident_bytes() / 2**30:.1f} GiB in use, and {8 * (m + 1) ** 2 / 2**30:.1f} GiB of disk per saved "
          f"state (twice while one is replaced)", flush=True)
    if settings.get("max_memory") and resident_bytes() + need > parse_memory(settings["max_memory"]):
        raise SystemExit(f"the checkpointed fit needs about {(resident_bytes() + need) / 2**30:.1f} GiB, more than "
                         f"--max-memory {settings['max_memory']}: use fewer sparse points or frames")
    _, L = factor_kmm(terms, template._term_jitter(terms), keep_kmm=False)
    done = 0
    if meta_path.is_file() and state_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fingerprint:
            done = int(meta["frames_done"])
            accumulate = QRAccumulator.from_state(np.load(state_path))
            print(f"checkpoint {checkpoint}: resuming after {done} of {len(atoms)} frames", flush=True)
        else:
            print(f"checkpoint {checkpoint}: other inputs (fingerprint differs); starting afresh", flush=True)
    if done == 0:
        accumulate = QRAccumulator(L.T)
    for s in range(done, len(atoms)):
        A, y = builder.rows(atoms, [s], labels)
        accumulate.add(A, y)
        del A, y
        if (s + 1) % save_every == 0 or s + 1 == len(atoms):
            _atomic_save(state_path, accumulate.state())
            meta_path.write_text(json.dumps({"fingerprint": fingerprint, "frames_done": s + 1,
                                             "n_frames": len(atoms), "n_sparse": int(L.shape[0]),
                                             "saved": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}))
            if verbose:
                print(f"checkpoint: {s + 1}/{len(atoms)} frames, {time.process_time():.0f} s CPU", flush=True)
        if stop_after is not None and s + 1 - done >= stop_after:
            return None
    R, alpha = accumulate.solve()
    return _fitted_nacl_model(settings, settings["sigma"], baseline, terms, template, e0, alpha, L, R)


def nacl_gap(train, settings):
    """Row: short-range GAP."""
    return fit_nacl_row(train, settings)


def nacl_gap_fixed_charge(train, settings):
    """Row: the authors' fixed-charge Coulomb baseline + GAP on the residual."""
    from kernelpot.potential.coulomb_baseline import CoulombBaseline

    return fit_nacl_row(train, settings, baseline=CoulombBaseline(NACL_CHARGES))


#: kQEq of the "GAP + kQEq" row: its SOAP, sparse environments per species, the anchor's weight (a prior of
#: ``charge_sigma`` e per atom centred on the authors' charges ``NACL_CHARGES``), Gaussian charge widths (Å) and the
#: scheme. Widths 1.5 Å: the Coulomb interaction of the charges is smooth inside a molecule (erf(r/γ)/r, γ ≈ 2.1 Å),
#: so the GAP does not have to undo near-point-charge intramolecular forces, and exact beyond ~5 Å, where the GAP
#: cannot see; widths 0.5 Å fitted far worse (F Na 246, Cl 232 against 140, 155 meV/Å with 1.5 Å; 15 gen1 frames,
#: 10 gen3 frames, /work/notes/kqeq/nacl_rows_s2.log; on the full table too, see the docstring). Sequential: the
#: joint fit costs one GAP-sized pass per step.
NACL_KQEQ = {"soap": {"r_cut": 4.0, "n_max": 4, "l_max": 3, "sigma": 0.5},
             "n_sparse": {"O": 100, "H": 100, "Na": 50, "Cl": 50}, "charge_sigma": 0.05, "widths": 1.5,
             "scheme": "sequential", "max_iterations": 2}


def nacl_gap_kqeq(train, settings):
    """Row: kQEq charges (anchored on the authors' charges) + the same GAP on the residual; returns the
    SparseGPR whose ``baseline`` is the kQEq model (it predicts the whole potential and saves to one .kpot)."""
    from kernelpot.descriptors import SOAP
    from kernelpot.models.charges import KernelChargeEquilibration, KQEqPotential

    kqeq = {**NACL_KQEQ, **settings.get("kqeq", {})}
    charges = KernelChargeEquilibration(SOAP(species=[1, 8, 11, 17], periodic=True, **kqeq["soap"]),
                                        n_sparse=kqeq["n_sparse"], charge_sigma=kqeq["charge_sigma"],
                                        widths=kqeq["widths"], random_state=0)
    gap = _nacl_model(settings["gap"], settings["sigma"], None, settings.get("max_memory"),
                      settings.get("verbose", False))
    anchor = [np.array([NACL_CHARGES[s] for s in a.get_chemical_symbols()]) for a in train.atoms]
    potential = KQEqPotential(charges, gap, scheme=kqeq["scheme"], max_iterations=kqeq["max_iterations"],
                              verbose=settings.get("verbose", False))
    potential.fit(train.atoms, energies=train.energies, forces=train.forces, charges=anchor)
    return potential.short_range_


#: Rows of benchmark 2: ``name -> function(train NaClData, settings) -> fitted model with .predict``.
NACL_ROWS = {"GAP": nacl_gap, "GAP + fixed-charge baseline": nacl_gap_fixed_charge, "GAP + kQEq": nacl_gap_kqeq}
#: Baselines of the rows that :func:`fit_nacl_jointly` can fit in one design pass (a fixed model or None).
NACL_JOINT_BASELINES = {"GAP": lambda: None, "GAP + fixed-charge baseline": lambda: _fixed_charge_baseline()}


def _fixed_charge_baseline():
    from kernelpot.potential.coulomb_baseline import CoulombBaseline

    return CoulombBaseline(NACL_CHARGES)


def fit_nacl_jointly(train, settings, baselines, sigmas):
    """Several GAP rows and noise levels from one pass over the training design rows.

    Rows that differ only in a fixed baseline share descriptors, sparse points (CUR on the descriptors, not the
    labels) and so the whitened design ``A = Σ^{-1/2} K_NM``; only their targets differ (labels minus the
    baseline, ``e0`` from each residual). Changing σ_E or σ_F rescales the energy or the force rows. So the
    energy rows are kept (one per frame) and the force rows reduced to the R factor of ``[A_F, Y_F]`` (TSQR,
    one target column per row); each noise level is then one QR of ``[L^T; A_E/a; R_F/b]``, from which every
    row's coefficients follow. Each model equals ``SparseGPR.fit`` with that baseline and σ (tested).

    Parameters
    ----------
    train : NaClData
    settings : dict
        ``"gap"`` (gap string) and ``"sigma"`` (σ_E eV/atom, σ_F eV/Å, σ_V) of the design pass.
    baselines : dict
        ``{row name: baseline or None}``.
    sigmas : list of tuple
        Noise levels (σ_E, σ_F, σ_V) to solve for.

    Returns
    -------
    dict
        ``{(row name, sigma): fitted SparseGPR}`` (the models share their sparse points).
    """
    import scipy.linalg as sla
    from scipy.linalg import lapack

    from kernelpot.models.gap.accumulators import QRAccumulator
    from kernelpot.models.gap.design import DesignBuilder
    from kernelpot.models.gap.labels import check_labels, residual_labels, resolve_e0
    from kernelpot.models.gap.terms import factor_kmm

    base = tuple(settings["sigma"])
    template = _nacl_model(settings["gap"], base, None, None, settings.get("verbose", False))
    sigma_table = template._check_params()
    atoms, names = train.atoms, list(baselines)
    labels = check_labels(atoms, list(train.energies), list(train.forces), None, None)
    residuals = [residual_labels(labels, atoms, baselines[name]) for name in names]
    e0 = [resolve_e0("composition", atoms, r) for r in residuals]
    terms = template._choose_sparse(atoms, np.random.default_rng(0))
    builder = DesignBuilder(terms, e0[0], sigma_table, template.sigma_per_atom, template.max_block_memory * 2**20)
    _, L = factor_kmm(terms, template._term_jitter(terms), keep_kmm=False)
    m, k = L.shape[0], len(names)
    # The R factor of [A_F, Y_F]: QRAccumulator factors [A, b]; its "A" here is [A_F, Y_F[:, :-1]], the same matrix.
    forces = QRAccumulator.empty(m + k - 1)
    energy_rows, energy_targets = [], []
    for s in range(len(atoms)):
        A, y = builder.rows(atoms, [s], residuals[0])
        sigma = builder.row_sigmas(atoms, [s], residuals[0])
        counts = atoms[s].numbers
        Y = np.column_stack([y] + [np.concatenate([[r.energies[s] - sum(e[int(z)] for z in counts)],
                                                   -r.forces[s].ravel()]) / sigma
                                   for r, e in zip(residuals[1:], e0[1:])])
        energy_rows.append(A[:1])
        energy_targets.append(Y[:1])
        forces.add(np.hstack([A[1:], Y[1:, :-1]]), Y[1:, -1])
        del A, Y
    A_E, Y_E, R_F = np.vstack(energy_rows), np.vstack(energy_targets), forces.state()
    models = {}
    for sigma in sigmas:
        a, b = sigma[0] / base[0], sigma[1] / base[1]
        top = np.zeros((m + k, m + k), order="F")
        top[:m, :m] = L.T
        # [L^T; R_F / b] with both triangular: LAPACK's triangular-pentagonal QR with a triangular lower part
        # (l = m + k) costs a third of a general one.
        top, _, _, info = lapack.dtpqrt(m + k, min(64, m + k), top, np.asfortranarray(R_F / b), overwrite_a=1,
                                        overwrite_b=1)
        solve = QRAccumulator(top[:-1, :-1])
        solve.R = top
        solve.add(np.hstack([A_E, Y_E[:, :-1]]) / a, Y_E[:, -1] / a)
        if info != 0:
            raise np.linalg.LinAlgError(f"LAPACK dtpqrt failed with info={info}")
        R, Z = solve.R[:m, :m], solve.R[:m, m:]
        sign = np.where(np.diag(R) < 0, -1.0, 1.0)
        R, Z = R * sign[:, None], Z * sign[:, None]
        alpha = sla.solve_triangular(R, Z)
        for j, name in enumerate(names):
            models[(name, tuple(sigma))] = _fitted_nacl_model(settings, sigma, baselines[name], terms, template,
                                                              e0[j], alpha[:, j], L, R)
    return models


def nacl_errors(model, test, chunk=8):
    """Energy RMSE (meV/atom), force RMSE per species and overall (meV/Å), prediction atoms/s."""
    e_pred, f_pred, seconds = [], [], 0.0
    for start in range(0, len(test.atoms), chunk):
        block = test.atoms[start:start + chunk]
        t = time.perf_counter()
        prediction = model.predict(block, properties=("energy", "forces"))
        seconds += time.perf_counter() - t
        e_pred.extend(prediction["energy"])
        f_pred.append(prediction["forces"])
    n_atoms = np.array([len(a) for a in test.atoms])
    f_error = np.concatenate(f_pred) - np.concatenate(test.forces)
    symbols = np.concatenate([a.get_chemical_symbols() for a in test.atoms])
    out = {"energy_rmse": 1e3 * float(np.sqrt(np.mean(((np.array(e_pred) - test.energies) / n_atoms) ** 2))),
           "forces_rmse": 1e3 * float(np.sqrt(np.mean(f_error**2))),
           "atoms_per_s": test.n_atoms / seconds}
    for s in NACL_SPECIES:
        out[f"forces_rmse_{s}"] = 1e3 * float(np.sqrt(np.mean(f_error[symbols == s] ** 2)))
    return out


def _nacl_table(title):
    return Table(title, ["row", "E RMSE (meV/atom)", "F O", "F H", "F Na", "F Cl", "F all (meV/Å)", "fit (s)",
                         "fit CPU (s)", "predict (atoms/s)"])


def _add_nacl(table, name, errors, fit_seconds, fit_cpu=None):
    table.add(name, [errors["energy_rmse"]] + [errors[f"forces_rmse_{s}"] for s in NACL_SPECIES]
              + [errors["forces_rmse"], fit_seconds, fit_cpu, errors["atoms_per_s"]],
              ["{:.2f}", "{:.1f}", "{:.1f}", "{:.1f}", "{:.1f}", "{:.1f}", "{:.0f}", "{:.0f}", "{:.0f}"])


def run_nacl(train, test, settings, rows=None, save_dir=None, title=None):
    """Benchmark 2: fit each row on ``train``, errors on ``test``. Fitted models are saved to (and, on a rerun
    with the same settings, loaded from) ``save_dir``, so an interrupted run restarts at the unfinished row."""
    from kernelpot.potential.serialization import load_model, save_model

    rows = rows or NACL_ROWS
    table = _nacl_table(title or f"Benchmark 2: NaCl in water, revPBE0-D3; train {len(train.atoms)} frames "
                        f"({train.n_atoms} atoms), test {len(test.atoms)} frames ({test.n_atoms} atoms)")
    results = {}
    fingerprint = {"gap": settings["gap"], "sigma": list(settings["sigma"]), "n_train": len(train.atoms),
                   "train_energy_sum": round(float(train.energies.sum()), 6)}
    for name, row in rows.items():
        path = None if save_dir is None else Path(save_dir) / (name.replace(" ", "_").replace("+", "plus") + ".kpot")
        model, fit_seconds, fit_cpu, fit_peak = None, None, None, None
        if path is not None and path.is_file():
            stored = load_model(path)
            if stored.metadata_.get("fingerprint") == fingerprint:
                model, fit_seconds = stored, stored.metadata_["fit_seconds"]
                fit_cpu = stored.metadata_.get("fit_cpu_seconds")
                print(f"{name}: loaded the fitted model from {path}", flush=True)
        if model is None:
            start, cpu = time.perf_counter(), time.process_time()
            model = row(train, settings)
            fit_seconds, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
            fit_peak = _peak_rss_gib()   # before the predictions add theirs
            print(f"{name}: fitted in {fit_seconds:.0f} s, {fit_cpu:.0f} s CPU (load average {load_average():.1f})",
                  flush=True)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                save_model(model, path, metadata={"fingerprint": fingerprint, "fit_seconds": fit_seconds,
                                                  "fit_cpu_seconds": fit_cpu})
        results[name] = {**nacl_errors(model, test), "fit_seconds": fit_seconds, "fit_cpu_seconds": fit_cpu,
                         "n_sparse": int(sum(t.n_sparse for t in model.terms_)), "peak_rss_gib": fit_peak}
        estimate = getattr(model, "memory_estimate_", {}).get("peak")
        if fit_peak is not None and estimate is not None:  # the budget planner's pre-fit estimate of the peak
            results[name]["estimated_peak_gib"] = estimate / 2**30
            results[name]["memory_estimate"] = {key: value for key, value in model.memory_estimate_.items()
                                                if isinstance(value, (int, float))}
            table.notes.append(f"{name}: estimated peak {estimate / 2**30:.2f} GiB (budget planner, max_memory "
                               f"{settings.get('max_memory')}); peak RSS of the process after the fit "
                               f"{fit_peak:.2f} GiB (the largest of this and earlier rows' fits)")
        _add_nacl(table, name, results[name], fit_seconds, fit_cpu)
    table.notes.append(f"load average {load_average():.1f}; NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}")
    table.print()
    return results


def run_nacl_joint(train, test, settings, rows, sigmas, validation=None, save_dir=None):
    """Benchmark 2 with the rows fitted in one design pass (:func:`fit_nacl_jointly`) for every noise level in
    ``sigmas``; with several, each row's σ is the one with the lowest force RMSE on ``validation`` (gen1 frames
    that are not training frames; never gen3), and only that model meets the test. Given ``validation``, its
    errors are printed and returned for every σ, also for one (recipes are compared on them, never on gen3)."""
    from kernelpot.potential.serialization import save_model

    unknown = [name for name in rows if name not in NACL_JOINT_BASELINES]
    if unknown:
        raise SystemExit(f"--joint fits only the rows {list(NACL_JOINT_BASELINES)}; not {unknown}")
    if len(sigmas) > 1 and validation is None:
        raise SystemExit("several --sigmas need gen1 validation frames to choose among them")
    start, cpu = time.perf_counter(), time.process_time()
    models = fit_nacl_jointly(train, settings, {name: NACL_JOINT_BASELINES[name]() for name in rows}, sigmas)
    fit_seconds, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    n_sparse = int(sum(t.n_sparse for t in next(iter(models.values())).terms_))
    print(f"joint fit of {len(rows)} rows x {len(sigmas)} noise levels: {fit_seconds:.0f} s, {fit_cpu:.0f} s CPU, "
          f"{n_sparse} sparse points (load average {load_average():.1f})", flush=True)
    results, chosen = {}, {name: sigmas[0] for name in rows}
    if validation is not None:  # also with one σ: recipes are compared on these frames, never on gen3
        table = _nacl_table(f"Noise level chosen on gen1 validation: {len(validation.atoms)} frames "
                            f"({validation.n_atoms} atoms), not in training")
        for name in rows:
            scores = {}
            for sigma in sigmas:
                errors = nacl_errors(models[(name, sigma)], validation)
                scores[sigma] = errors["forces_rmse"]
                _add_nacl(table, f"{name}, σ_E {sigma[0]:g} σ_F {sigma[1]:g}", errors, None)
                results[f"validation {name} {sigma}"] = errors
            chosen[name] = min(scores, key=scores.get)
        table.print()
    table = _nacl_table(f"Benchmark 2: NaCl in water, revPBE0-D3; train {len(train.atoms)} frames "
                        f"({train.n_atoms} atoms), test {len(test.atoms)} frames ({test.n_atoms} atoms); one "
                        f"design pass for {len(rows)} rows x {len(sigmas)} noise levels")
    peak = _peak_rss_gib()
    for name in rows:
        model = models[(name, chosen[name])]
        results[name] = {**nacl_errors(model, test), "fit_seconds": fit_seconds, "fit_cpu_seconds": fit_cpu,
                         "n_sparse": n_sparse, "sigma": chosen[name], "peak_rss_gib": peak}
        _add_nacl(table, f"{name} (σ_E {chosen[name][0]:g}, σ_F {chosen[name][1]:g})", results[name], fit_seconds,
                  fit_cpu)
        if save_dir is not None:
            path = Path(save_dir) / (name.replace(" ", "_").replace("+", "plus") + ".kpot")
            path.parent.mkdir(parents=True, exist_ok=True)
            save_model(model, path, metadata={"gap": settings["gap"], "sigma": list(chosen[name]),
                                              "fit_seconds": fit_seconds, "fit_cpu_seconds": fit_cpu,
                                              "n_train": len(train.atoms), "joint_fit": True})
    table.notes.append(f"fit = the one design pass and every solve; {n_sparse} sparse points; peak RSS {peak:.1f} "
                       f"GiB; load average {load_average():.1f}; NUMBA_NUM_THREADS="
                       f"{os.environ.get('NUMBA_NUM_THREADS')}")
    table.print()
    return results


def _peak_rss_gib():
    """Peak resident memory of this process so far (GiB; Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def parse_sigmas(text):
    """``"0.001/0.04,0.001/0.02"`` → [(σ_E, σ_F, σ_V), ...] (σ_V as in :data:`NACL_SIGMA`)."""
    sigmas = []
    for entry in text.replace(" ", "").split(","):
        parts = entry.split("/")
        if len(parts) != 2:
            raise SystemExit(f"--sigmas: each entry is σ_E/σ_F (eV/atom, eV/Å); got {entry!r}")
        sigmas.append((float(parts[0]), float(parts[1]), NACL_SIGMA[2]))
    return sigmas


def nacl_validation_split(data_by_file, fraction=0.8):
    """First ``fraction`` of each gen1 file for fitting, the rest for validation (time-ordered blocks)."""
    fit_index, val_index, offset = [], [], 0
    for count in data_by_file:
        cut = round(fraction * count)
        fit_index += list(range(offset, offset + cut))
        val_index += list(range(offset + cut, offset + count))
        offset += count
    return fit_index, val_index


# --------------------------------------------------------------------------- NaCl: a model for MD (issue 16)
#: The MD model's GAP: the benchmark's pair terms and per-species SOAP (l 4, n 6, δ 1 eV) with 1,500 O/H SOAP
#: sparse points (prediction ~3,000 atoms/s on one core), *without* the stiff water bond terms: in MD at 300 K the
#: O–H bond term (cutoff 1.6 Å, δ 10 eV, θ 0.15 Å) has a hole between the bond (< 1.15 Å) and the hydrogen bond
#: (> 1.5 Å), where the training data hold few pairs: protons moved into it, waters shared them, and the term's
#: energy fell by 15 eV in 1.45 ps while the box heated to 460 K (see "NaCl MD model" in the docstring).
NACL_MD_GAP = nacl_gap_string(soap_delta=1.0, n_sparse={"O": 1500, "H": 1500, "Na": 300, "Cl": 300})
#: Its training frames, from every generation (compositions 1–8 NaCl, both cells, both samplers): every 20th
#: frame of each gen1 file and gen3 frames 1, 11, 21, ... (odd: the benchmark tests on the even ones).
NACL_MD_TRAIN = {"gen1_every": 20, "gen3": slice(1, None, 10)}
#: Validation frames, disjoint from the training ones: gen1 frames 10, 50, 90, ... of each file, gen3 0, 6, 12, ...
NACL_MD_VALIDATION = {"gen1": slice(10, None, 40), "gen3": slice(0, None, 6)}
#: The MD recipes (``--md-recipe``): ``s3`` is the one above; ``s4`` (issue 16 §2 production, session 4): SOAP
#: n_max 8, l_max 6 (the benchmark's learning curve: 82 instead of 110 meV/Å on gen3 from 40 frames), 1,000 O/H CUR
#: sparse points (a 194-atom force call costs ~0.034 s CPU + ~2.5e-5 s per sparse point on one core, so MD speed
#: caps them), every Na/Cl environment; 78 training frames (every 20th of gen1, gen3 1, 5, 9, ...: odd, disjoint
#: from the validation and the benchmark's test frames); and a soft O–O wall in the baseline
#: (:func:`kernelpot.potential.recipe.stable_baseline` ``soft_walls``): k (2.95 Å - r)³, k = 1.85 eV/Å³, matched to
#: the mean DFT − Coulomb force between hydrogen-bonded waters at O–O 2.48–2.71 Å in held-out frames, so that
#: where the data end (O–O < 2.45 Å) the baseline repels as revPBE0-D3 does instead of the fixed charges pulling
#: hydrogen bonds shut (see "NaCl MD model" in the docstring).
NACL_MD_RECIPES = {
    "s3": {"gap": NACL_MD_GAP, "train": NACL_MD_TRAIN, "soft_walls": None},
    "s4": {"gap": nacl_gap_string(n_max=8, l_max=6, soap_delta=1.0,
                                  n_sparse={"O": 1000, "H": 1000, "Na": ALL_ENVIRONMENTS, "Cl": ALL_ENVIRONMENTS}),
           "train": {"gen1_every": 20, "gen3": slice(1, None, 4)}, "soft_walls": {"O-O": (2.95, 1.85)}},
}
#: ``s5`` (session 5): the s4 GAP and frames over a different baseline: Gaussian charges (σ 0.7 Å for every species)
#: + TIP3P/Joung–Cheatham Lennard-Jones (:data:`kernelpot.potential.core_repulsion.TIP3P_JOUNG_CHEATHAM`) + the
#: core and O–H barrier, no O–O wall. Point charges without exclusions made the GAP learn DFT − baseline forces of
#: RMS 3.0 (O) and 2.2 eV/Å (H) on held-out frames (the bare DFT forces: 1.05 and 0.74), mostly the 1/r² pull of
#: each water's own O on its H, which the GAP has to cancel exactly; Gaussian charges leave 1.03 and 0.72, and with
#: the LJ the baseline is a complete force field that repels compressed hydrogen bonds where the data end.
NACL_MD_RECIPES["s5"] = {**NACL_MD_RECIPES["s4"], "soft_walls": None, "widths": {s: 0.7 for s in NACL_CHARGES},
                         "lennard_jones": "TIP3P_JOUNG_CHEATHAM"}
#: ``s6`` (session 6): the s5 fit with a :class:`kernelpot.potential.core_repulsion.HydrogenBondWall` 9 (1.65 Å − r)³
#: eV between each H and the oxygens it is not bonded to, added to the baseline *after* the fit: on held-out
#: frames it supplies the push on a hydrogen-bonded H that the GAP lacks at H···O 1.50–1.60 Å (0.4 eV/Å at
#: 1.50–1.55), and where the data end (H···O < 1.45 Å) it repels where the GAP pulled hydrogen bonds shut.
NACL_MD_RECIPES["s6"] = {**NACL_MD_RECIPES["s5"], "walls_after_fit": {"H-O": (1.65, 9.0)}}
#: ``s7`` (session 7): s6 plus a :class:`kernelpot.potential.core_repulsion.UnbridgedPairWall` 50 (2.6 Å − r)³ eV on
#: O–O pairs that no H bridges (switched off by an H within 1.8 Å of both oxygens, fully on beyond 2.2 Å), also
#: added after the fit. The s6 MD's new failure mode was such "squeezed" pairs (< 2.55 Å: 0.8 per frame at
#: 8–10 ps, revPBE0-D3 0.035); on all 949 frames the wall's RMS force over all atoms is 7.8 meV/Å, on the s6 MD's
#: frames 8–14 ps 33 meV/Å (``upw_probe2.log``).
NACL_MD_RECIPES["s7"] = {**NACL_MD_RECIPES["s6"],
                         "unbridged_walls_after_fit": {"walls": {"O-O": (2.6, 50.0)}, "bridge": (1.8, 2.2)}}
#: ``s7-floor`` (session 7): s7 plus an O–O floor, :class:`kernelpot.potential.core_repulsion.CoreRepulsion`
#: 133 (2.45 Å − r)³ eV on every O–O pair, after the fit: below 2.45 Å revPBE0-D3 has 0.017 O–O pairs per frame,
#: the s7 MD 1.3–3.0 (hydrogen-bonded pairs the GAP pulls shut where its data end). Zero on the validation frames;
#: on all 949 frames RMS force 34 meV/Å (1.7 % of frames touched; 9.6 eV/Å on the closest pair, 2.295 Å; s6
#: ``wall_probe.log``).
NACL_MD_RECIPES["s7-floor"] = {**NACL_MD_RECIPES["s7"], "floor_after_fit": {"O-O": (2.45, 133.0)}}
#: ``s8`` (session 8): s7-floor with the GAP of issue 15's session-8 learning curve: ζ 2 and one 3-body term per
#: water triplet (3 Å, 400 farthest points each), which on 20 benchmark frames lowered the gen1 validation force
#: RMSE from 78.0 (ζ 2 + 3-body terms of 100 points) to 67.0 meV/Å, most on O and H. A second 10 ps run of the
#: s7-floor model from the same start (another Bussi noise) collapsed after all: O–O < 2.55 Å per frame 1.12, 1.80,
#: 2.69, 2.51 in 2 ps windows (session 7's run: 1.38 … 1.50). With s8 (validation 66.0 / 69.6 meV/Å against
#: 109.3 / 110.0) the water held for 17 ps (0.35–0.73 per frame, revPBE0-D3 0.81), but one Cl⁻ kept a water's H at
#: 1.45 Å, below the data's 1.64 Å minimum (README, "Session 8").
NACL_MD_RECIPES["s8"] = {**NACL_MD_RECIPES["s7-floor"],
                         "gap": nacl_gap_string(n_max=8, l_max=6, soap_delta=1.0, zeta=2, three_body=3.0,
                                                three_body_sparse=400,
                                                n_sparse={"O": 1000, "H": 1000, "Na": ALL_ENVIRONMENTS,
                                                          "Cl": ALL_ENVIRONMENTS})}


#: ``s9`` (session 9): s8 plus a Cl–H floor, ``CoreRepulsion`` 133 (1.75 Å − r)³ eV on every Cl–H pair after the
#: fit (stiffness as the O–O floor's). The 949 revPBE0-D3 frames never bring an H closer to a Cl⁻ than 1.64 Å;
#: 0.4 % of the chlorides have one below 1.75 Å. Moving a hydrogen-bonded water rigidly onto a Cl⁻ along Cl···H
#: (gen3 frames 60, 66, 72, 90; ``--md-base``'s session-9 scan in the README) the s8 model's energy has, in
#: frame 90, a second minimum at Cl–H 1.50–1.55 Å (−0.13 eV against −0.08 at 2.1 Å), held only by the core at
#: 1.54 Å: where the s8 run's chloride kept its H (1.44–1.48 Å, Cl–O 2.55 Å). With the floor every profile
#: rises monotonically below its minimum at 2.0–2.2 Å (frame 90: +0.07 eV at 1.75, +0.44 at 1.55). Same fit
#: as s8 (``--md-base md_s8.kpot`` reuses it).
NACL_MD_RECIPES["s9"] = {**NACL_MD_RECIPES["s8"],
                         "floor_after_fit": {**NACL_MD_RECIPES["s8"]["floor_after_fit"], "Cl-H": (1.75, 133.0)}}


def _nacl_frames(names, index):
    """Frames ``index`` (a slice of the file's frame numbers) of each file, but those of :data:`NACL_EXCLUDED`."""
    data = []
    for name in names:
        whole = load_nacl([NACL_DIR / f"revPBE0-D3_{name}.data"], exclude=())
        data.append(whole.subset([i for i in np.arange(len(whole.atoms))[index] if (name, i) not in NACL_EXCLUDED]))
    return NaClData([a for d in data for a in d.atoms], np.concatenate([d.energies for d in data]),
                    [f for d in data for f in d.forces])


def _joined(*parts):
    return NaClData([a for p in parts for a in p.atoms], np.concatenate([p.energies for p in parts]),
                    [f for p in parts for f in p.forces])


def nacl_reference_structures():
    """Every frame of every NaCl file (positions only): the closest pairs the reference sampled set the MD model's
    repulsive core (see :func:`fit_nacl_md_model`)."""
    from kernelpot.structures.runner import read_runner

    frames = []
    for name in NACL_TRAIN + (NACL_TEST,):
        for frame in read_runner(NACL_DIR / f"revPBE0-D3_{name}.data"):
            frames.append(Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell, pbc=True))
    return frames


def nacl_md_data(train_frames=NACL_MD_TRAIN):
    """(training, gen1 validation, gen3 validation) frames of the MD model (``train_frames``, default
    :data:`NACL_MD_TRAIN`; :data:`NACL_MD_VALIDATION`)."""
    train = _joined(load_nacl([NACL_DIR / f"revPBE0-D3_{name}.data" for name in NACL_TRAIN],
                              every=train_frames["gen1_every"]),
                    _nacl_frames([NACL_TEST], train_frames["gen3"]))
    return (train, _nacl_frames(NACL_TRAIN, NACL_MD_VALIDATION["gen1"]),
            _nacl_frames([NACL_TEST], NACL_MD_VALIDATION["gen3"]))


def fit_nacl_md_model(train, gap=NACL_MD_GAP, sigma=NACL_SIGMA, max_memory=None, verbose=False, reference=None,
                      soft_walls=None, widths=None, lennard_jones=None, walls_after_fit=None,
                      unbridged_walls_after_fit=None, floor_after_fit=None):
    """The MD model: the authors' fixed charges + a repulsive core 0.1 Å below the closest pairs of ``reference``
    + a 0.5 eV barrier over the O–H distances between bond and hydrogen bond that ``reference`` never visits
    (default: the training frames; the MD model uses :func:`nacl_reference_structures`, every frame of the data:
    held-out frames come closer than the training ones) under a GAP fitted to the residual
    (:func:`kernelpot.potential.recipe.stable_baseline`; ``soft_walls``, Gaussian charge ``widths`` and
    ``lennard_jones`` passed on to it). ``walls_after_fit`` (``{pair: (r0, k)}``): a
    :class:`kernelpot.potential.core_repulsion.HydrogenBondWall` added to the baseline after the fit (the GAP
    does not learn it away); ``unbridged_walls_after_fit`` (``{"walls": {pair: (r0, k)}, "bridge": (a, b)}``): a
    :class:`kernelpot.potential.core_repulsion.UnbridgedPairWall` added after that; ``floor_after_fit``
    (``{pair: (onset, k)}``): a :class:`kernelpot.potential.core_repulsion.CoreRepulsion` on those pairs only
    (the others get an onset no pair reaches), last."""
    from kernelpot.potential.recipe import stable_baseline

    reference = train.atoms if reference is None else list(reference) + list(train.atoms)
    baseline = stable_baseline(reference, NACL_CHARGES, barrier_pairs=("H-O",), soft_walls=soft_walls, widths=widths,
                               lennard_jones=lennard_jones)
    model = _nacl_model(gap, sigma, baseline, max_memory, verbose)
    model.fit(train.atoms, energies=list(train.energies), forces=list(train.forces))
    return add_after_fit_terms(model, walls_after_fit=walls_after_fit,
                               unbridged_walls_after_fit=unbridged_walls_after_fit, floor_after_fit=floor_after_fit)


#: The recipe keys that act after the fit (:func:`add_after_fit_terms`): recipes equal in every other key share
#: one fit (``--md-base``).
AFTER_FIT_KEYS = ("walls_after_fit", "unbridged_walls_after_fit", "floor_after_fit")


def _after_fit_terms(parts, *, walls_after_fit=None, unbridged_walls_after_fit=None, floor_after_fit=None):
    """The baseline parts :func:`add_after_fit_terms` appends to a fitted baseline made of ``parts``, in order
    (one list, so that adding them and taking them off again count the same parts)."""
    from kernelpot.potential.core_repulsion import CoreRepulsion, HydrogenBondWall, UnbridgedPairWall, _parse_pair
    from kernelpot.potential.recipe import _NEVER

    after = ([HydrogenBondWall(walls_after_fit)] if walls_after_fit else []) + (
        [UnbridgedPairWall(**unbridged_walls_after_fit)] if unbridged_walls_after_fit else [])
    # each floor acts on its own pair only: every other pair of the fitted core gets an onset no pair reaches
    never = {key: _NEVER for key in next(p for p in parts if type(p) is CoreRepulsion).onsets} if floor_after_fit \
        else {}
    for pair, (onset, k) in (floor_after_fit or {}).items():
        after.append(CoreRepulsion({**never, _parse_pair(pair): float(onset)}, stiffness=float(k)))
    return after


def _baseline_parts(model):
    from kernelpot.potential.core_repulsion import BaselineSum

    return list(model.baseline.parts) if isinstance(model.baseline, BaselineSum) else [model.baseline]


def add_after_fit_terms(model, *, walls_after_fit=None, unbridged_walls_after_fit=None, floor_after_fit=None):
    """Append the after-fit walls of :func:`fit_nacl_md_model` to a fitted model's baseline (in place; returns
    ``model``)."""
    from kernelpot.potential.core_repulsion import BaselineSum

    parts = _baseline_parts(model)
    after = _after_fit_terms(parts, walls_after_fit=walls_after_fit,
                             unbridged_walls_after_fit=unbridged_walls_after_fit, floor_after_fit=floor_after_fit)
    if after:
        model.baseline = BaselineSum([*parts, *after])
    return model


def refit_free_recipe_change(base, recipe_name):
    """The model of recipe ``recipe_name`` from a saved model ``base`` of a recipe that differs from it only in
    :data:`AFTER_FIT_KEYS`: the base's after-fit parts are taken off its baseline and the new recipe's put on
    (the fit is deterministic: a refit gives the same GAP; session 9 refitted s8 to the same validation errors).

    Raises
    ------
    ValueError
        If ``base`` carries no recipe name, or the recipes differ in anything that acts before or in the fit.
    """
    from kernelpot.potential.core_repulsion import BaselineSum

    base_name = base.metadata_.get("recipe")
    if base_name not in NACL_MD_RECIPES:
        raise ValueError(f"--md-base: the model's metadata name no known recipe ({base_name!r}); fit it with "
                         "--md-model ... --md-recipe NAME")
    old, new = NACL_MD_RECIPES[base_name], NACL_MD_RECIPES[recipe_name]
    differ = sorted(k for k in set(old) | set(new) if k not in AFTER_FIT_KEYS and old.get(k) != new.get(k))
    if differ:
        raise ValueError(f"--md-base: recipes {base_name!r} and {recipe_name!r} differ in {differ}, which act in "
                         "the fit: fit the model anew (leave out --md-base)")
    parts = _baseline_parts(base)
    kept = parts[:len(parts) - len(_after_fit_terms(parts, **{k: old.get(k) for k in AFTER_FIT_KEYS}))]
    base.baseline = kept[0] if len(kept) == 1 else BaselineSum(kept)
    return add_after_fit_terms(base, **{k: new.get(k) for k in AFTER_FIT_KEYS})


def nacl_md_stability(model, atoms, trajectory, steps=4000, *, timestep=0.5, temperature=300.0, friction=0.01,
                      interval=10):
    """NVT Langevin MD of ``model`` from ``atoms`` (:class:`kernelpot.potential.ResumableMD`, resumable), then the
    temperature along the run and the closest distance of each species pair over all frames.

    Returns
    -------
    dict
        ``"temperatures"`` (K, one per frame), ``"closest"`` ({"Na-O": Å, ...}), ``"stopped"`` (None or why the
        geometry guard ended the run), ``"steps"``, ``"cpu_seconds_per_step"`` (this call).
    """
    from kernelpot.potential.calculator import GAPCalculator
    from kernelpot.potential.dynamics import ResumableMD, read_frames

    md = ResumableMD(trajectory, temperature=temperature, timestep=timestep, friction=friction, interval=interval,
                     min_distance=0.5, random_state=0, progress=False, log_every=20)
    start = md.load_state()
    done = 0 if start is None else start.get("step", 0)
    cpu = time.process_time()
    md.run(atoms, GAPCalculator(model, uncertainty=False), steps)
    cpu = time.process_time() - cpu
    frames = read_frames(trajectory)
    symbols = np.array(frames[0].get_chemical_symbols())
    closest = {}
    for frame in frames:
        distances = frame.get_all_distances(mic=True)
        np.fill_diagonal(distances, np.inf)
        for i, a in enumerate(NACL_SPECIES):
            for b in NACL_SPECIES[i:]:
                block = distances[np.ix_(symbols == a, symbols == b)]
                if block.size:
                    key = f"{a}-{b}"
                    closest[key] = min(closest.get(key, np.inf), float(block.min()))
    return {"temperatures": [float(f.get_temperature()) for f in frames], "closest": closest,
            "stopped": md.stopped_, "steps": int(md.step_),
            "cpu_seconds_per_step": cpu / max(1, md.step_ - done)}


def _lennard_jones(recipe):
    """A recipe's Lennard-Jones species table (recipes name it, so that the metadata stay short)."""
    from kernelpot.potential import core_repulsion

    name = recipe.get("lennard_jones")
    return None if name is None else getattr(core_repulsion, name)


def _nacl_md_main(args):
    """``--md-model PATH``: fit the MD model, its validation errors, save it, and (``--md-steps``) the MD check."""
    from kernelpot.potential.serialization import load_model, save_model

    recipe = NACL_MD_RECIPES[args.md_recipe]
    train, val1, val3 = nacl_md_data(recipe["train"])
    path = Path(args.md_model)
    if path.is_file():
        model = load_model(path)
        fit_seconds, cpu = model.metadata_.get("fit_seconds"), model.metadata_.get("fit_cpu_seconds")
        print(f"MD model: loaded {path}", flush=True)
    elif args.md_base:
        model = refit_free_recipe_change(load_model(args.md_base), args.md_recipe)
        fit_seconds, cpu = model.metadata_.get("fit_seconds"), model.metadata_.get("fit_cpu_seconds")
        print(f"MD model: the fit of {args.md_base} ({model.metadata_['recipe']}) with the after-fit terms of "
              f"{args.md_recipe}", flush=True)
        save_model(model, path, metadata={**model.metadata_, "recipe": args.md_recipe, "fit_from": str(args.md_base),
                                          **{k: recipe.get(k) for k in AFTER_FIT_KEYS}})
    else:
        start, cpu = time.perf_counter(), time.process_time()
        model = fit_nacl_md_model(train, recipe["gap"], max_memory=args.max_memory, verbose=args.verbose,
                                  reference=nacl_reference_structures(), soft_walls=recipe["soft_walls"],
                                  widths=recipe.get("widths"), lennard_jones=_lennard_jones(recipe),
                                  walls_after_fit=recipe.get("walls_after_fit"),
                                  unbridged_walls_after_fit=recipe.get("unbridged_walls_after_fit"),
                                  floor_after_fit=recipe.get("floor_after_fit"))
        fit_seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"MD model: fitted in {fit_seconds:.0f} s ({cpu:.0f} s CPU, load average {load_average():.1f})")
        save_model(model, path, metadata={"gap": recipe["gap"], "fit_seconds": fit_seconds, "fit_cpu_seconds": cpu,
                                          "recipe": args.md_recipe, "soft_walls": recipe["soft_walls"],
                                          "widths": recipe.get("widths"), "lennard_jones": recipe.get("lennard_jones"),
                                          "walls_after_fit": recipe.get("walls_after_fit"),
                                          "unbridged_walls_after_fit": recipe.get("unbridged_walls_after_fit"),
                                          "floor_after_fit": recipe.get("floor_after_fit"),
                                          "training": f"{len(train.atoms)} frames: {recipe['train']}"})
    table = _nacl_table(f"NaCl MD model: train {len(train.atoms)} frames ({train.n_atoms} atoms, gen1a–e + gen3); "
                        "validation on held-out frames")
    results = {}
    for name, data in ((f"gen1 validation ({len(val1.atoms)} frames)", val1),
                       (f"gen3 validation ({len(val3.atoms)} frames)", val3)):
        results[name] = nacl_errors(model, data)
        _add_nacl(table, name, results[name], fit_seconds, cpu)
    table.notes.append(f"load average {load_average():.1f}; NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}")
    table.print()
    if args.md_steps:
        box = _nacl_frames([NACL_TEST], slice(0, 1)).atoms[0]
        check = nacl_md_stability(model, box, path.with_suffix(".md.extxyz"), args.md_steps,
                                  friction=args.md_friction)
        temperatures = np.array(check["temperatures"])
        half = len(temperatures) // 2
        print(f"MD check, {len(box)} atoms, {check['steps']} steps of 0.5 fs, Langevin 300 K "
              f"(friction {args.md_friction}/fs): stopped "
              f"{check['stopped']}; T mean {temperatures.mean():.0f} K (first half {temperatures[:half].mean():.0f}, "
              f"second {temperatures[half:].mean():.0f}, max {temperatures.max():.0f}); "
              f"{check['cpu_seconds_per_step']:.3f} s CPU/step")
        print("closest pairs (Å): " + ", ".join(f"{k} {v:.2f}" for k, v in check["closest"].items()))
        results["md"] = check
    return results


# ------------------------------------------------------------------------------------------------------ main
def _smoke(args):
    """Tiny versions of both benchmarks on bundled data (CI): they must run, not be accurate."""
    data = load_dimers()
    dimer_settings = {name: {"r_cut": 3.0, "delta": 1.0} for name in DIMER_ROWS}
    train = data.subset(np.where(data.distance < 6.0)[0][::3])
    test = data.subset(np.where(data.distance >= 6.0)[0][::5])
    dimers = {name: float(np.mean(np.abs(row(train, test, dimer_settings[name]) - test.binding)))
              for name, row in DIMER_ROWS.items()}
    print("smoke dimers, test MAE (eV):", json.dumps(dimers))
    gen1 = load_nacl([BUNDLED / "nacl_water" / "revPBE0-D3_gen1_subset.data"])
    gen3 = load_nacl([BUNDLED / "nacl_water" / "revPBE0-D3_gen3_subset.data"])
    gap = nacl_gap_string(r_cut=3.0, n_max=3, l_max=2, n_sparse={"O": 20, "H": 20, "Na": 5, "Cl": 5},
                          two_body_sparse=5, two_body_cutoff=4.0, pairs=[("O", "H"), ("Na", "O"), ("Cl", "H")])
    nacl = run_nacl(gen1, gen3, {"gap": gap, "sigma": NACL_SIGMA},
                    title="smoke: NaCl, 10 bundled gen1 frames -> 3 gen3")
    return {"dimers": dimers, "nacl": nacl}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmark", choices=["dimers", "nacl", "all"], default="all")
    parser.add_argument("--select", action="store_true", help="run the validation behind the chosen settings")
    parser.add_argument("--smoke", action="store_true", help="tiny run on bundled data (CI)")
    parser.add_argument("--train-every", type=int, default=1, help="NaCl: use every n-th training frame")
    parser.add_argument("--test-every", type=int, default=1, help="NaCl: test on every n-th gen3 frame")
    parser.add_argument("--learning-curve", default=None,
                        help="NaCl: comma-separated numbers of training frames, errors on the gen1 validation part")
    parser.add_argument("--gap", default=None, help="NaCl: gap string (default NACL_GAP)")
    parser.add_argument("--recipe", default=None,
                        help="NaCl: NACL_GAP with changes, e.g. 'n_max=8 l_max=6 sparse=all' (see nacl_recipe_gap)")
    parser.add_argument("--joint", action="store_true",
                        help="NaCl: fit the GAP and fixed-charge rows in one design pass (fit_nacl_jointly)")
    parser.add_argument("--sigmas", default=None,
                        help="NaCl --joint: noise levels σ_E/σ_F, comma-separated (e.g. '0.001/0.04,0.001/0.02'); "
                             "each row's chosen on gen1 validation frames (--validation-every); without --joint "
                             "one σ_E/σ_F for every row")
    parser.add_argument("--validation-every", type=int, default=0,
                        help="NaCl --joint: gen1 validation frames train_every//2, +N, ... of each file")
    parser.add_argument("--validation-offset", type=int, default=None,
                        help="NaCl --joint: first validation frame of each file (default train_every // 2)")
    parser.add_argument("--select-frames", type=int, default=8, help="NaCl --select: training frames")
    parser.add_argument("--candidates", default=None, help="NaCl --select: comma-separated candidate names")
    parser.add_argument("--rows", default=None, help="comma-separated row names (default: all)")
    parser.add_argument("--pair-offsets", action="store_true",
                        help="dimers: also fit each monomer pair's binding at infinite separation (see the docstring)")
    parser.add_argument("--max-memory", default="6GB", help="NaCl: SparseGPR max_memory of each fit")
    parser.add_argument("--save-dir", type=Path, default=None, help="NaCl: keep fitted models here (restartable)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="NaCl: fit each row frame by frame, saving the QR factor in this folder every 10 "
                             "frames, and resume from it (fit_nacl_checkpointed; for fits of hours)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also append the printed tables as Markdown to this file (with the command and date)")
    parser.add_argument("--md-model", type=Path, default=None,
                        help="NaCl: fit (or load) the MD model to this .kpot, print its validation errors")
    parser.add_argument("--md-steps", type=int, default=0,
                        help="with --md-model: steps of the 300 K Langevin stability check (0.5 fs)")
    parser.add_argument("--md-friction", type=float, default=0.01, help="with --md-steps: Langevin friction (1/fs)")
    parser.add_argument("--md-recipe", choices=sorted(NACL_MD_RECIPES), default="s3",
                        help="with --md-model: which MD recipe (NACL_MD_RECIPES; s4: the session-4 production model)")
    parser.add_argument("--md-base", type=Path, default=None,
                        help="with --md-model (a new file): take the fit of this saved MD model, whose recipe "
                             "differs from --md-recipe only in the terms added after the fit (AFTER_FIT_KEYS)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    _check_outputs(args, parser)
    if args.smoke:
        results = _smoke(args)
    elif args.md_model:
        results = {"nacl_md": _nacl_md_main(args)}
    else:
        results = {}
        if args.benchmark in ("dimers", "all"):
            rows = _pick(DIMER_ROWS, args.rows)
            data = load_dimers()
            results["dimers"] = (select_dimers(data, rows, pair_offsets=args.pair_offsets).rows if args.select
                                 else run_dimers(data, rows, pair_offsets=args.pair_offsets))
        if args.benchmark in ("nacl", "all"):
            results["nacl"] = _nacl_main(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if args.markdown:
        import shlex
        import sys

        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        command = "python benchmarks/long_range.py " + shlex.join(argv if argv is not None else sys.argv[1:])
        with open(args.markdown, "a") as out:
            out.write(f"\n### `{command}` ({stamp}, load average {load_average():.1f}, NUMBA_NUM_THREADS="
                      f"{os.environ.get('NUMBA_NUM_THREADS')})\n\n" + "\n\n".join(t.markdown() for t in PRINTED) + "\n")
    return results


def _check_outputs(args, parser):
    """Refuse unwritable outputs before any data are loaded or fits start, not at the save after them. A missing
    --save-dir is created now (parents too, as the saves would); an existing --md-model is an input (loaded), so
    it is checked only when it would be written."""
    from kernelpot.cli.options import check_script_outputs

    written_model = args.md_model if args.md_model and not args.md_model.is_file() else None
    check_script_outputs(parser, {"--json": args.json, "--markdown": args.markdown, "--md-model": written_model,
                                  "--save-dir": args.save_dir}, models=["--md-model"], folders=["--save-dir"])


def _pick(registry, names):
    if not names:
        return registry
    chosen = [n.strip() for n in names.split(",")]
    unknown = [n for n in chosen if n not in registry]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; rows: {list(registry)}")
    return {n: registry[n] for n in chosen}


#: Candidates of ``--select`` for NaCl (``nacl_gap_string`` keywords, sigma): the first recipe, then one change at a
#: time. Fitted with the sparse counts of ``NACL_SELECT_SPARSE`` on ``--select-frames`` gen1 frames; the docstring
#: ("NaCl recipe") gives the measured ones (base, soap_delta1, bonds_delta1 with 8 frames).
NACL_CANDIDATES = {
    "base": ("2b θ 1 Å δ 1 eV; SOAP rc 5 Å, n 6, l 4, δ 0.2 eV, ζ 4; σF 0.04 eV/Å", {}, (0.001, 0.04, 0.05)),
    "soap_delta1": ("SOAP δ 1 eV", {"soap_delta": 1.0}, (0.001, 0.04, 0.05)),
    "bonds_delta1": ("+ O–H, H–H bond terms, SOAP δ 1 eV", {"bonds": True, "soap_delta": 1.0}, (0.001, 0.04, 0.05)),
    "stiff2b": ("2b θ 0.5 Å, δ 5 eV, 40 points", {"two_body_theta": 0.5, "two_body_delta": 5.0,
                                                 "two_body_sparse": 40}, (0.001, 0.04, 0.05)),
    "rc6": ("SOAP cutoff 6 Å", {"r_cut": 6.0}, (0.001, 0.04, 0.05)),
    "n8l6": ("SOAP n_max 8, l_max 6", {"n_max": 8, "l_max": 6}, (0.001, 0.04, 0.05)),
}
NACL_SELECT_SPARSE = {"O": 400, "H": 400, "Na": 60, "Cl": 60}


def _nacl_validation_data(paths):
    per_file = [load_nacl([p]) for p in paths]
    whole = NaClData([a for d in per_file for a in d.atoms], np.concatenate([d.energies for d in per_file]),
                     [f for d in per_file for f in d.forces])
    fit_index, val_index = nacl_validation_split([len(d.atoms) for d in per_file])
    return whole, np.array(fit_index), whole.subset(val_index[::4])


def _evenly(index, n):
    return index[np.linspace(0, len(index) - 1, min(n, len(index))).round().astype(int)]


def _nacl_main(args):
    if not NACL_DIR.is_dir():
        raise SystemExit(f"NaCl data not found at {NACL_DIR}; set KERNELPOT_SHARED_DATA")
    rows = _pick(NACL_ROWS, args.rows or (",".join(NACL_JOINT_BASELINES) if args.joint else None))
    if args.gap and args.recipe:
        raise SystemExit("give --gap or --recipe, not both")
    gap = args.gap or (nacl_recipe_gap(args.recipe) if args.recipe else NACL_GAP)
    settings = {"gap": gap, "sigma": NACL_SIGMA, "max_memory": args.max_memory,
                "verbose": args.verbose}
    if args.checkpoint:
        if args.joint:
            raise SystemExit("--checkpoint fits one row at a time; it does not combine with --joint")
        settings["checkpoint"] = args.checkpoint
    paths = [NACL_DIR / f"revPBE0-D3_{name}.data" for name in NACL_TRAIN]
    if args.select:
        whole, fit_index, validation = _nacl_validation_data(paths)
        train = whole.subset(_evenly(fit_index, args.select_frames))
        validation = validation.subset(_evenly(np.arange(len(validation.atoms)), args.select_frames))
        results = {}
        for label, (text, kwargs, sigma) in _pick(NACL_CANDIDATES, args.candidates).items():
            candidate = {**settings, "gap": nacl_gap_string(n_sparse=NACL_SELECT_SPARSE, **kwargs), "sigma": sigma}
            results[label] = run_nacl(train, validation, candidate, rows,
                                      title=f"NaCl selection, {label} ({text}): {len(train.atoms)} gen1 frames "
                                            f"(first 80 % of each file) -> {len(validation.atoms)} of the last 20 %")
        return results
    if args.learning_curve:
        whole, fit_index, validation = _nacl_validation_data(paths)
        return {n: run_nacl(whole.subset(_evenly(fit_index, n)), validation, settings, rows,
                            title=f"NaCl learning curve: {n} gen1 frames (first 80 % of each file) -> "
                                  f"{len(validation.atoms)} frames of the last 20 %")
                for n in (int(v) for v in args.learning_curve.split(","))}
    train = load_nacl(paths, every=args.train_every)
    test = load_nacl([NACL_DIR / f"revPBE0-D3_{NACL_TEST}.data"], every=args.test_every)
    if args.joint:
        validation = None
        if args.validation_every:
            offset = args.train_every // 2 if args.validation_offset is None else args.validation_offset
            if offset % args.train_every == 0 or args.validation_every % args.train_every:
                raise SystemExit("--validation-every must be a multiple of --train-every and --validation-offset "
                                 "not one, so that no validation frame is a training frame")
            validation = load_nacl(paths, every=args.validation_every, offset=offset)
        sigmas = parse_sigmas(args.sigmas) if args.sigmas else [NACL_SIGMA]
        return run_nacl_joint(train, test, settings, rows, sigmas, validation, save_dir=args.save_dir)
    if args.sigmas:
        sigmas = parse_sigmas(args.sigmas)
        if len(sigmas) != 1:
            raise SystemExit("several --sigmas need --joint (one design pass, the σ chosen on validation frames)")
        settings["sigma"] = sigmas[0]
    return run_nacl(train, test, settings, rows, save_dir=args.save_dir)


@dataclass
class _Coulomb:
    energy: float
    forces: np.ndarray


def fixed_charge_coulomb(atoms, charges):
    """Energy (eV) and forces (eV/Å) of fixed point charges, all pairs (for ``nacl_labels.py``)."""
    from kernelpot.potential.coulomb_baseline import CoulombBaseline

    result = CoulombBaseline(charges).evaluate([atoms])
    return _Coulomb(float(result["energy"][0]), result["forces"])


if __name__ == "__main__":
    main()
