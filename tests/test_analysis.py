"""kernelpot.analysis on physics with known answers: an ideal gas (g = 1, n(r) = ρ 4πr³/3), a crystal's shells,
a brute-force histogram, a random walk's diffusion coefficient, the Yeh–Hummer and Nernst–Einstein formulas
against hand-computed numbers and the measured limiting molar conductivity of NaCl."""

import dataclasses

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from conftest import requires_ase_rdf, requires_kinisi

from kernelpot.analysis import (
    Diffusion,
    close_pair_counts,
    combine_diffusions,
    nernst_einstein_conductivity,
    plot_close_pairs,
    plot_msds,
    plot_rdfs,
    radial_distribution,
    rdf_table,
    self_diffusion,
    window_means,
    yeh_hummer_correction,
)


def _gas(seed, n=(60, 40), length=12.0):
    rng = np.random.default_rng(seed)
    symbols = ["Na"] * n[0] + ["Cl"] * n[1]
    return Atoms(symbols, positions=rng.uniform(0, length, (sum(n), 3)), cell=[length] * 3, pbc=True)


@requires_ase_rdf
def test_ideal_gas_rdf_is_one_and_coordination_grows_as_the_volume():
    frames = [_gas(seed) for seed in range(40)]
    rdf = radial_distribution(frames, ("Na", "Cl"), r_max=5.5, n_bins=55)
    assert rdf.pair == ("Na", "Cl") and rdf.n_frames == 40 and rdf.n_centres == 60
    np.testing.assert_allclose(rdf.density, 40 / 12.0**3)
    far = rdf.r > 2.0
    assert abs(rdf.g[far].mean() - 1.0) < 0.03 and np.abs(rdf.g[far] - 1.0).max() < 0.25
    for r in (3.0, 5.0):
        expected = rdf.density * 4.0 * np.pi * r**3 / 3.0
        assert rdf.coordination(r) == pytest.approx(expected, rel=0.06)
    same = radial_distribution(frames, ("Cl", "Na"), r_max=5.5, n_bins=55)
    np.testing.assert_allclose(same.g, rdf.g, rtol=1e-12)  # g_ab = g_ba


@requires_ase_rdf
def test_rdf_equals_a_brute_force_minimum_image_histogram():
    atoms = _gas(3, n=(8, 6), length=9.0)
    rdf = radial_distribution(atoms, ("Na", "Cl"), r_max=4.4, n_bins=22)
    na, cl = atoms.positions[atoms.numbers == 11], atoms.positions[atoms.numbers == 17]
    delta = na[:, None, :] - cl[None, :, :]
    delta -= 9.0 * np.round(delta / 9.0)
    counts, _ = np.histogram(np.linalg.norm(delta, axis=-1), bins=rdf.edges)
    shells = 4.0 * np.pi / 3.0 * (rdf.edges[1:] ** 3 - rdf.edges[:-1] ** 3)
    np.testing.assert_allclose(rdf.g, counts / (8 * (6 / 9.0**3) * shells), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rdf.running_coordination()[-1], counts.sum() / 8, rtol=1e-10)


@requires_ase_rdf
def test_fcc_first_shell_is_twelve_neighbours_at_a_over_root_two():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (3, 3, 3)
    atoms.rattle(0.02, seed=0)
    rdf = radial_distribution(atoms, ("Cu", "Cu"), n_bins=250)
    shell = rdf.first_shell(window=1.0, smooth=1)
    assert shell["peak"] == pytest.approx(3.6 / np.sqrt(2), abs=0.05)
    assert 2.6 < shell["minimum"] < 3.5
    assert shell["coordination"] == pytest.approx(12.0, abs=1e-9)
    rows = rdf_table([rdf])
    assert rows[0]["pair"] == "Cu–Cu" and rows[0]["coordination"] == pytest.approx(12.0)


def test_close_pairs_count_each_pair_once_through_the_boundary():
    # three O on a line in a 10 Å box: 0-1 at 2.4 Å, 1-2 at 2.5 Å, 0-2 at 4.9 Å; an H 2.4 Å from O 0 through the
    # boundary only (7.6 Å directly), 2.7 Å from O 2
    atoms = Atoms("O3H", positions=[[1.0, 5, 5], [3.4, 5, 5], [5.9, 5, 5], [8.6, 5, 5]], cell=[10.0] * 3, pbc=True)
    np.testing.assert_array_equal(close_pair_counts(atoms, ("O", "O"), 2.45), [1])
    np.testing.assert_array_equal(close_pair_counts([atoms, atoms], ("O", "O"), 2.55), [2, 2])
    np.testing.assert_array_equal(close_pair_counts(atoms, ("O", "O"), 5.0), [3])
    np.testing.assert_array_equal(close_pair_counts(atoms, ("H", "O"), 2.6), [1])
    np.testing.assert_array_equal(close_pair_counts(atoms, ("O", "H"), 2.6), [1])
    atoms.pbc = False  # the minimum image only where periodic
    np.testing.assert_array_equal(close_pair_counts(atoms, ("O", "O"), 2.55), [2])
    np.testing.assert_array_equal(close_pair_counts(atoms, ("H", "O"), 2.6), [0])
    np.testing.assert_array_equal(close_pair_counts(atoms, ("Na", "O"), 3.0), [0])
    with pytest.raises(ValueError, match="r_max"):
        close_pair_counts(atoms, ("O", "O"), -1.0)
    with pytest.raises(ValueError, match="unknown chemical symbol 'Xx'"):
        close_pair_counts(atoms, ("O", "Xx"), 2.0)


def test_window_means_by_hand():
    # frames every 0.5 ps from 1 to 4 ps: windows [1, 2.5) and [2.5, 4], the last frame in the last window
    windows = window_means(np.arange(1.0, 4.01, 0.5), [0, 1, 2, 3, 4, 5, 6], 1.5)
    assert windows == [{"from_ps": 1.0, "to_ps": 2.5, "frames": 3, "mean": 1.0},
                       {"from_ps": 2.5, "to_ps": 4.0, "frames": 4, "mean": 4.5}]
    # a shorter last window ends at the last frame
    assert window_means([0.0, 1.0, 2.0], [1, 2, 3], 1.5)[-1] == {"from_ps": 1.5, "to_ps": 2.0, "frames": 1,
                                                                  "mean": 3.0}
    with pytest.raises(ValueError, match="window_ps"):
        window_means([0.0, 1.0], [1, 2], 0.0)


@requires_kinisi
def test_random_walk_diffusion_coefficient_within_its_error_bar():
    rng = np.random.default_rng(0)
    n, steps, length, step_std, interval_fs = 64, 300, 20.0, 0.1, 10.0
    positions = rng.uniform(0, length, (n, 3)) + np.cumsum(rng.normal(0, step_std, (steps, n, 3)), axis=0)
    frames = []
    for k, p in enumerate(positions):
        atoms = Atoms(["O"] * n, positions=p, cell=[length] * 3, pbc=True)
        atoms.wrap()  # kinisi unwraps
        atoms.info["time_fs"] = k * interval_fs
        frames.append(atoms)
    expected = step_std**2 / (2.0 * interval_fs * 1e-15) * 1e-20  # σ² per axis / (2 Δt), m²/s: 5e-9
    result = self_diffusion(frames, "O", n_samples=500)
    assert result.n_atoms == n and result.duration == pytest.approx((steps - 1) * interval_fs / 1000)
    assert result.D_std > 0 and result.D_interval[0] < result.D < result.D_interval[1]
    assert abs(result.D - expected) < max(4 * result.D_std, 0.1 * expected), (result.D, result.D_std, expected)
    # the MSD itself: 6 D t at short times
    np.testing.assert_allclose(result.msd[:5], 6 * expected * 1e20 * result.time[:5] * 1e-12, rtol=0.1)
    # the same frames with the interval given instead of info["time_fs"]
    for atoms in frames:
        del atoms.info["time_fs"]
    again = self_diffusion(frames, "O", frame_interval=interval_fs, n_samples=500)
    assert again.D == pytest.approx(result.D, rel=1e-12)
    shifted = result.corrected(1e-9)
    assert shifted.D == pytest.approx(result.D + 1e-9) and shifted.samples.mean() == pytest.approx(result.D + 1e-9)


def _run(species, mean, std, n_samples, seed, msd_slope=1.0, n_times=20, dt=0.1, n_atoms=2, duration=25.0):
    samples = np.random.default_rng(seed).normal(mean, std, n_samples)
    time = np.arange(1, n_times + 1) * dt
    return Diffusion(species=species, D=float(samples.mean()), D_std=float(samples.std()),
                     D_interval=tuple(np.percentile(samples, [2.5, 97.5])), samples=samples, time=time,
                     msd=msd_slope * time, msd_std=None, start=0.2, n_atoms=n_atoms, duration=duration)


def test_independent_runs_combine_weighted_by_the_atom_picoseconds_each_observed():
    a = _run("Na", 1.0e-9, 0.2e-9, 4000, 0)
    b = _run("Na", 1.6e-9, 0.4e-9, 5000, 1, msd_slope=3.0, n_times=15, n_atoms=4, duration=12.5)
    c = _run("Na", 0.7e-9, 0.3e-9, 6000, 2, n_atoms=1, duration=50.0)
    combined = combine_diffusions([a, b, c])
    weights = np.array([2 * 25.0, 4 * 12.5, 1 * 50.0]) / 150.0  # equal atom-ps: equal weights
    runs = (a, b, c)
    # the mean and the spread of a weighted mean of independent estimates
    assert combined.D == pytest.approx(weights @ [r.D for r in runs], rel=0.02)
    assert combined.D_std == pytest.approx(np.sqrt(np.sum(weights**2 * [r.D_std**2 for r in runs])), rel=0.05)
    assert combined.samples.size == 4000 and combined.n_atoms == 7 and combined.duration == 87.5
    # the MSDs averaged with the same weights over the intervals all runs have
    assert combined.time.size == 15
    np.testing.assert_allclose(combined.msd, (weights @ [1.0, 3.0, 1.0]) * combined.time)
    # a run that observed twice the atom-ps counts twice
    longer = combine_diffusions([a, _run("Na", 1.6e-9, 0.4e-9, 5000, 1, duration=50.0)])
    assert longer.D == pytest.approx((a.D + 2 * 1.6e-9) / 3, rel=0.02)
    # a summary without an MSD (an earlier run's posterior) counts in D, not in the MSD
    summary = dataclasses.replace(c, time=None, msd=None)
    with_summary = combine_diffusions([a, b, summary])
    assert with_summary.D == pytest.approx(combined.D, rel=1e-12)
    np.testing.assert_allclose(with_summary.msd, (np.array([0.5, 0.5]) @ [1.0, 3.0]) * with_summary.time)
    assert combine_diffusions([summary]).time is None
    # one run is itself
    alone = combine_diffusions([a])
    assert alone.D == pytest.approx(a.D) and alone.D_std == pytest.approx(a.D_std)
    with pytest.raises(ValueError, match="different species"):
        combine_diffusions([a, _run("Cl", 1e-9, 1e-10, 10, 2)])
    with pytest.raises(ValueError, match="different intervals"):
        combine_diffusions([a, _run("Na", 1e-9, 1e-10, 10, 2, dt=0.2)])
    with pytest.raises(ValueError, match=r"run\(s\) \[1\] have an MSD at fewer than two time intervals"):
        combine_diffusions([a, _run("Na", 1e-9, 1e-10, 10, 2, n_times=1)])
    with pytest.raises(ValueError, match="n_atoms > 0 and duration > 0"):
        combine_diffusions([a, _run("Na", 1e-9, 1e-10, 10, 2, duration=0.0)])
    with pytest.raises(ValueError, match="empty"):
        combine_diffusions([])


def test_combined_runs_are_unbiased_when_each_error_bar_grows_with_its_own_estimate():
    """Few ions: a run's D scatters by ~45 % and its posterior spread is that fraction of its own D (the MSD's
    variance goes as (6 D t)²). Combining pairs of such runs must not drift low, as an inverse-variance mean
    does (it trusts the run whose ions happened to move least)."""
    rng = np.random.default_rng(0)
    true_d, relative = 1.0e-9, 0.45
    shape = 1 / relative**2  # Gamma draws: mean 1, relative spread 0.45, positive like a diffusion estimate
    combined, inverse_variance = [], []
    for i in range(1000):  # the mean of 2000 runs: ±1 % at one standard error
        estimates = true_d * rng.gamma(shape, 1 / shape, size=2)
        runs = [_run("Cl", d, relative * d, 200, 1000 * i + k) for k, d in enumerate(estimates)]
        combined.append(combine_diffusions(runs, random_state=i).D)
        weights = np.array([1 / r.D_std**2 for r in runs])
        inverse_variance.append(weights @ [r.D for r in runs] / weights.sum())
    assert np.mean(combined) == pytest.approx(true_d, rel=0.04)
    assert np.mean(inverse_variance) < 0.9 * true_d  # ~15 % low: the bias the data weights remove


def test_yeh_hummer_correction_by_hand():
    # k_B T ξ / (6 π η L): water (η = 0.89 mPa s) at 298 K in a 10.18 Å box: 0.684e-9 m²/s
    value = yeh_hummer_correction(10.18, 298.0, 0.89e-3)
    assert value == pytest.approx(1.380649e-23 * 298.0 * 2.837297 / (6 * np.pi * 0.89e-3 * 10.18e-10), rel=1e-12)
    assert value == pytest.approx(0.684e-9, rel=0.01)
    assert yeh_hummer_correction(20.36, 298.0, 0.89e-3) == pytest.approx(value / 2)
    with pytest.raises(ValueError, match="viscosity"):
        yeh_hummer_correction(10.0, 298.0, 0.0)


def test_yeh_hummer_for_any_box_shape_is_the_ewald_self_potential():
    from kernelpot.analysis import periodic_self_potential

    # A cube reproduces Yeh & Hummer's constant (the Wigner/Madelung sum of the simple cubic lattice)
    assert periodic_self_potential([1.0, 1.0, 1.0]) == pytest.approx(-2.837297, abs=2e-6)
    assert yeh_hummer_correction(np.eye(3) * 10.18, 298.0, 0.89e-3) == pytest.approx(
        yeh_hummer_correction(10.18, 298.0, 0.89e-3), rel=1e-6)
    # 1/L scaling, independent of axis order and of the cell's orientation
    box = periodic_self_potential([20.0, 10.0, 10.0])
    assert periodic_self_potential([40.0, 20.0, 20.0]) == pytest.approx(box / 2, rel=1e-9)
    assert periodic_self_potential([10.0, 20.0, 10.0]) == pytest.approx(box, rel=1e-9)
    c, s = np.cos(0.3), np.sin(0.3)
    rotated = np.diag([20.0, 10.0, 10.0]) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T
    assert periodic_self_potential(rotated) == pytest.approx(box, rel=1e-9)
    # A 2:1:1 box corrects less than the cube of its volume (12.6 Å side: 0.225 1/Å): 0.1806 1/Å, a 15.7 Å cube
    assert -box == pytest.approx(0.180584, abs=1e-5) and -box < 2.837297 / np.cbrt(2000.0)
    with pytest.raises(ValueError, match="cell"):
        periodic_self_potential(np.zeros((3, 3)))


def test_nernst_einstein_gives_the_limiting_molar_conductivity_of_nacl():
    # Λ0 = F²/(RT) (D+ + D-) with the measured infinite-dilution D (1.334, 2.032 × 10⁻⁹ m²/s):
    # 126.4 S cm²/mol measured (CRC handbook) -> the formula and its units are right.
    volume = 1.0e5  # Å³: one NaCl pair
    sigma = nernst_einstein_conductivity({"Na": 1.334e-9, "Cl": 2.032e-9}, {"Na": 1, "Cl": 1},
                                         {"Na": 1, "Cl": -1}, volume, 298.15)
    concentration = 1.0 / (6.02214076e23 * volume * 1e-30)  # mol/m³
    assert sigma / concentration * 1e4 == pytest.approx(126.4, rel=0.01)  # S cm²/mol
    samples = nernst_einstein_conductivity({"Na": np.full(5, 1.334e-9), "Cl": np.full(5, 2.032e-9)},
                                           {"Na": 1, "Cl": 1}, {"Na": 1, "Cl": -1}, volume, 298.15)
    np.testing.assert_allclose(samples, sigma)
    with pytest.raises(ValueError, match=r"no count or charge for species \['K'\]"):
        nernst_einstein_conductivity({"K": 1e-9}, {}, {}, volume, 298.15)


@requires_ase_rdf
def test_bad_input_is_named():
    gas = _gas(0)
    with pytest.raises(ValueError, match="r_max"):
        radial_distribution(gas, ("Na", "Cl"), r_max=7.0)
    with pytest.raises(ValueError, match="has no O"):
        radial_distribution(gas, ("Na", "O"))
    with pytest.raises(ValueError, match="unknown chemical symbol 'Xx'"):
        radial_distribution(gas, ("Na", "Xx"))
    open_box = gas.copy()
    open_box.pbc = False
    with pytest.raises(ValueError, match="not periodic"):
        radial_distribution(open_box, ("Na", "Cl"))
    frames = [_gas(s) for s in range(12)]
    with pytest.raises(ValueError, match="time_fs"):
        self_diffusion(frames, "Na")
    with pytest.raises(ValueError, match="species 'O' is not in the frames"):
        self_diffusion(frames, "O", frame_interval=10.0)
    with pytest.raises(ValueError, match="at least 10"):
        self_diffusion(frames[:5], "Na", frame_interval=10.0)


@requires_ase_rdf
@requires_kinisi
def test_plots_are_written(tmp_path):
    frames = [_gas(seed) for seed in range(3)]
    rdfs = [radial_distribution(frames, pair) for pair in (("Na", "Cl"), ("Na", "Na"))]
    assert plot_rdfs(rdfs, tmp_path / "rdf.png", title="gas").stat().st_size > 1000
    rng = np.random.default_rng(1)
    walk = np.cumsum(rng.normal(0, 0.1, (40, 20, 3)), axis=0)
    frames = [Atoms(["Na"] * 20, positions=p, cell=[15.0] * 3, pbc=True) for p in walk]
    diffusion = self_diffusion(frames, "Na", frame_interval=10.0, n_samples=200)
    assert plot_msds([diffusion], tmp_path / "msd.png").stat().st_size > 1000
    path = plot_close_pairs(np.arange(40) * 0.1, np.arange(40) % 3, tmp_path / "close.png", label="O–O < 2.55 Å",
                            reference=0.81)
    assert path.stat().st_size > 1000
