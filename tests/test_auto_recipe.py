"""SparseGPR(auto=...) and ``kernelpot fit --auto``: sparse counts and noise chosen from the training data alone;
``kernelpot learning_curve``.

Small and fast: the bundled rMD17 ethanol frames (40 training, 41 test; ``data/rmd17_subset``) with a small SOAP,
and Lennard-Jones clusters for the learning curve.
"""

import json

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.morse import MorsePotential
from ase.calculators.singlepoint import SinglePointCalculator
from conftest import rmd17

from kernelpot.cli import main
from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.soap import SOAP
from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
from kernelpot.models.gap import AutoChoice, GAPTerm, SparseGPR
from kernelpot.models.gap.auto import FORCE_TIE, _best_row, choose_count, plan_fit
from kernelpot.potential.serialization import load_model, save_model

EV_PER_KCAL_MOL = 0.0433641153
LADDER = (8, 16, 32, 64, 96)
SIGMA = (0.0005, 0.01, 0.05)
GAP = ("{soap l_max=2 n_max=3 atom_sigma=0.5 cutoff=4.0 delta=1.0 covariance_type=dot_product zeta=4 "
       "n_sparse=96 sparse_method=fps}")


def _ethanol(part):
    data = rmd17(f"rmd17_ethanol_{part}_01")
    frames = np.flatnonzero(~np.isnan(data["energies"]))
    atoms = [Atoms(numbers=data["nuclear_charges"], positions=data["coords"][f]) for f in frames]
    return atoms, data["energies"][frames] * EV_PER_KCAL_MOL, [f * EV_PER_KCAL_MOL for f in data["forces"][frames]]


@pytest.fixture(scope="module")
def ethanol():
    return _ethanol("train")


def _model(auto, n_sparse=96, zeta=4):
    soap = SOAP(species=[1, 6, 8], r_cut=4.0, n_max=3, l_max=2, sigma=0.5)
    term = GAPTerm(soap, NormalizedDotProductCovariance(zeta), n_sparse=n_sparse, sparse_method="fps")
    return SparseGPR([term], default_sigma=SIGMA, random_state=0, auto=auto)


@pytest.fixture(scope="module")
def auto_model(ethanol):
    atoms, energies, forces = ethanol
    return _model(AutoChoice(sparse_ladder=LADDER)).fit(atoms, energies=energies, forces=forces)


def _best_per_count(table):
    counts = sorted({row["n_sparse_total"] for row in table})
    return counts, [_best_row([row for row in table if row["n_sparse_total"] == k], 1.0)["val_force_mae"] for k in counts]


def test_force_ties_are_broken_by_the_energy_error():
    rows = [{"val_force_mae": 1.0, "val_energy_mae": 5.0}, {"val_force_mae": 1.0 + FORCE_TIE / 2,
                                                             "val_energy_mae": 1.0},
            {"val_force_mae": 1.0 + 2 * FORCE_TIE, "val_energy_mae": 0.1}]
    assert _best_row(rows, 0.0) is rows[1]  # within the tie: lower energy error; beyond it: forces decide
    assert _best_row(rows[:1] + rows[2:], 0.0) is rows[0]
    assert _best_row([{"val_force_mae": float("nan"), "val_energy_mae": 0.0}, rows[2]], 0.0) is rows[2]


def test_noise_is_ranked_on_forces_and_energies_together():
    # mlearn Si's 5,020-point candidates (meV/Å, meV): by forces alone the auto fit took the noise that trebled
    # the energy error for 5 % lower force error
    rows = [{"val_force_mae": 53.21, "val_energy_mae": 948.7}, {"val_force_mae": 55.99, "val_energy_mae": 268.8},
            {"val_force_mae": 60.11, "val_energy_mae": 140.7}]
    assert _best_row(rows, 0.0) is rows[0]
    assert _best_row(rows, 1.0) is rows[2]  # 53.21 x 948.7 > 55.99 x 268.8 > 60.11 x 140.7
    assert _best_row(rows, 0.1) is rows[1]
    no_energies = [dict(row, val_energy_mae=float("nan")) for row in rows]  # force-only labels
    assert _best_row(no_energies, 1.0) is no_energies[0]
    exact = [{"val_force_mae": 1.0, "val_energy_mae": 0.0}, {"val_force_mae": 0.9, "val_energy_mae": 0.0}]
    assert _best_row(exact, 1.0) is exact[1]
    with pytest.raises(ValueError, match="energy_weight"):
        AutoChoice(energy_weight=-1).validate()


def test_a_failed_candidate_does_not_switch_off_the_energy_ranking():
    rows = [{"val_force_mae": 53.21, "val_energy_mae": 948.7}, {"val_force_mae": 60.11, "val_energy_mae": 140.7},
            {"val_force_mae": 1.0, "val_energy_mae": float("nan")}]  # a failed solve: no energy error
    assert _best_row(rows, 1.0) is rows[1]


@pytest.mark.parametrize("typed", [False, True])
def test_validation_errors_are_per_atom_and_balanced_over_config_types(typed):
    # 2- to 9-atom Morse clusters: the table's validation errors must equal a plain fit's on the fit split, the
    # energy error per atom (per structure, the big clusters would outweigh the small ones) and, with config types,
    # the mean of the types' MAEs (a rare type counts as much as a common one)
    rng = np.random.default_rng(3)
    grid = 1.05 * np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(2)], dtype=float)
    atoms, energies, forces = [], [], []
    for n in rng.integers(2, 10, size=40):
        cluster = Atoms(f"Ar{n}", positions=grid[:n] + rng.normal(0, 0.05, (n, 3)))
        cluster.calc = MorsePotential(epsilon=1.0, r0=1.0, rho0=3.0, rcut1=2.0, rcut2=2.5)
        atoms.append(cluster)
        energies.append(cluster.get_potential_energy())
        forces.append(cluster.get_forces())
    config_types = ["small" if len(a) <= 3 else "large" for a in atoms] if typed else None
    term = GAPTerm(Distance2B(cutoff=2.6), GaussianCovariance(0.3), n_sparse=24, sparse_method="fps", delta=0.5)
    model = SparseGPR([term], default_sigma=(0.001, 0.01, 0.1), e0=0.0, random_state=0,
                      auto=AutoChoice(sparse_ladder=(6, 12, 24)))
    model.fit(atoms, energies=energies, forces=forces, config_types=config_types)
    chosen = next(row for row in model.auto_table_ if row["chosen"])
    fit, val = model.auto.split(len(atoms))
    fitted = model.terms_[0]
    plain_term = GAPTerm(fitted.descriptor, GaussianCovariance(0.3), n_sparse=fitted.n_sparse,
                         sparse_points=fitted.sparse_X, delta=0.5)
    plain = SparseGPR([plain_term], default_sigma=tuple(model.auto_choice_["default_sigma"]), e0=0.0,
                      random_state=0).fit([atoms[i] for i in fit], energies=[energies[i] for i in fit],
                                          forces=[forces[i] for i in fit])
    predicted = plain.predict([atoms[i] for i in val], properties=("energy", "forces"))
    sizes = np.array([len(atoms[i]) for i in val])
    energy_errors = np.abs((predicted["energy"] - np.array([energies[i] for i in val])) / sizes)
    force_errors = np.abs(np.reshape(predicted["forces"], (-1, 3)) - np.concatenate([forces[i] for i in val]))
    atom_groups = np.repeat(sizes <= 3, sizes)
    assert 0 < (sizes <= 3).sum() < len(val) / 2  # the small type is the rarer one
    if typed:
        expected = [np.mean([errors[group == small].mean() for small in (False, True)])
                    for errors, group in ((energy_errors, sizes <= 3), (force_errors, atom_groups))]
    else:
        expected = [energy_errors.mean(), force_errors.mean()]
    assert [chosen["val_energy_mae"], chosen["val_force_mae"]] == pytest.approx(expected, rel=1e-6)
    assert chosen["val_force_mae_pooled"] == pytest.approx(force_errors.mean(), rel=1e-6)  # grows the count


def test_choose_count_grows_while_the_error_drops_and_stops_after_patience():
    # improves, improves, then two counts within 5 %: stop, keep the last improving count
    assert choose_count([10.0, 8.0, 6.0, 5.9, 5.95, 1.0], 0.05, patience=2) == (2, True)
    # a plateau of one count is waited out when the next count drops again
    assert choose_count([10.0, 9.9, 5.0, 4.0], 0.05, patience=2) == (3, False)
    assert choose_count([10.0, 9.9, 5.0, 4.0], 0.05, patience=1) == (0, True)
    # every count better: the last, and "not stopped" (larger counts might still help)
    assert choose_count([4.0, 3.0, 2.0], 0.05) == (2, False)


@pytest.mark.parametrize("method", ["fps", "cur"])
@pytest.mark.parametrize("n_rows", [40, 60])
def test_ordered_sparse_points_are_nested_even_when_every_row_is_taken(method, n_rows):
    from kernelpot.models.gap.sparse import choose_sparse

    X = np.random.default_rng(0).random((n_rows, 5))
    every, _ = choose_sparse(X, 60, method, np.random.default_rng(1), keep_order=True)
    assert len(every) == min(60, n_rows)
    for k in (1, 7, 20):
        first, _ = choose_sparse(X, k, method, np.random.default_rng(1), keep_order=True)
        np.testing.assert_array_equal(every[:k], first)
    # the first k of all rows are a spread-out selection, not the first rows of the data
    assert not np.array_equal(every[:20], X[:20])


def test_auto_grows_the_sparse_set_while_the_validation_error_drops(auto_model):
    choice, table = auto_model.auto_choice_, auto_model.auto_table_
    counts, errors = _best_per_count(table)
    assert errors[-1] < 0.7 * errors[0]  # on real forces more points help a lot at these sizes
    index, _ = choose_count(errors, 0.02, patience=2)
    assert choice["n_sparse_total"] == counts[index] > counts[0]
    assert choice["val_force_mae"] == pytest.approx(errors[index])
    assert sum(row["chosen"] for row in table) == 1
    assert auto_model.alpha_.size == choice["n_sparse_total"]


def test_each_stage_centres_the_noise_grid_on_the_previous_stage_best(auto_model):
    table = auto_model.auto_table_
    stages = sorted({row["stage_top"] for row in table})
    assert len(stages) == 3
    assert {row["sigma_forces"] for row in table if row["stage_top"] == stages[0]} == {
        f * SIGMA[1] for f in (0.5, 1.0, 2.0)}
    for previous, stage in zip(stages, stages[1:]):
        best = _best_row([r for r in table if r["stage_top"] == previous], 1.0)
        for key in ("sigma_forces", "sigma_energy"):
            grid = sorted({row[key] for row in table if row["stage_top"] == stage})
            assert grid == pytest.approx([f * best[key] for f in (0.5, 1.0, 2.0)])


def test_auto_stops_growing_when_the_error_does_not_drop_enough(ethanol):
    atoms, energies, forces = ethanol
    # nothing counts as an improvement: growth stops after `patience` counts, within the first stage
    model = _model(AutoChoice(sparse_ladder=LADDER, tolerance=0.99, patience=2))
    model.fit(atoms, energies=energies, forces=forces)
    assert model.auto_choice_["n_sparse_total"] == LADDER[0]
    assert "did not improve" in model.auto_choice_["stop_reason"]
    assert {row["stage_top"] for row in model.auto_table_} == {LADDER[2]}  # later stages never ran


def test_auto_refit_equals_a_plain_fit_with_the_chosen_points_and_noise(auto_model, ethanol):
    atoms, energies, forces = ethanol
    choice = auto_model.auto_choice_
    fitted = auto_model.terms_[0]
    term = GAPTerm(fitted.descriptor, NormalizedDotProductCovariance(4), n_sparse=fitted.n_sparse,
                   sparse_points=fitted.sparse_X)
    chosen = AutoChoice.chosen_parameters(auto_model)
    assert chosen == {"default_sigma": tuple(choice["default_sigma"]), "n_sparse": [fitted.n_sparse], "zeta": None}
    plain = SparseGPR([term], default_sigma=chosen["default_sigma"], e0=auto_model.e0_, random_state=0)
    plain.fit(atoms, energies=energies, forces=forces)
    test, *_ = _ethanol("test")
    a = auto_model.predict(test[:6], properties=("energy", "forces"))
    b = plain.predict(test[:6], properties=("energy", "forces"))
    np.testing.assert_allclose(a["forces"], b["forces"], atol=1e-8)
    np.testing.assert_allclose(a["energy"], b["energy"], atol=1e-8)
    np.testing.assert_allclose(auto_model.posterior_factor_, plain.posterior_factor_, atol=1e-6)
    # what uses the fitted model's rows afterwards (FITC, incremental learning) sees the chosen noise too
    from kernelpot.models.gap import IncrementalSparseGPR, fitc_factor

    fitc_factor(auto_model, atoms[:10], energies=energies[:10], forces=forces[:10])
    fitc_factor(plain, atoms[:10], energies=energies[:10], forces=forces[:10])
    np.testing.assert_allclose(auto_model.fitc_factor_, plain.fitc_factor_, atol=1e-6)
    del auto_model.fitc_factor_
    grown = [IncrementalSparseGPR.from_model(m).partial_fit(test[:3], energies=[-97000.0] * 3,
                                                           forces=[np.zeros((9, 3))] * 3) for m in (auto_model, plain)]
    np.testing.assert_allclose(grown[0].alpha_, grown[1].alpha_, rtol=1e-6, atol=1e-8)


def test_auto_with_a_fixed_term_after_the_grown_one_equals_a_plain_fit(ethanol):
    # columns [SOAP (grown), pairs (fixed)]: a smaller SOAP count is not a prefix of the stage's columns,
    # so its factor is re-triangularised from the stage's
    atoms, energies, forces = ethanol
    soap = SOAP(species=[1, 6, 8], r_cut=4.0, n_max=3, l_max=2, sigma=0.5)
    pairs = GAPTerm(Distance2B(cutoff=4.0), GaussianCovariance(0.5), delta=0.5, n_sparse=10, sparse_method="uniform")
    grown = GAPTerm(soap, NormalizedDotProductCovariance(4), n_sparse=64, sparse_method="fps")
    model = SparseGPR([grown, pairs], default_sigma=SIGMA, random_state=0,
                      auto=AutoChoice(sparse_ladder=(8, 16, 32, 48), tolerance=0.0, patience=5,
                                      force_sigma_factors=(1.0,), energy_sigma_factors=(1.0,)))
    model.fit(atoms, energies=energies, forces=forces)
    assert model.auto_choice_["n_sparse"] == [64, 10]  # every count improved: the largest
    plain = SparseGPR([GAPTerm(t.descriptor, t.kernel, delta=t.delta, n_sparse=t.n_sparse, sparse_points=t.sparse_X)
                       for t in model.terms_], default_sigma=SIGMA, e0=model.e0_).fit(atoms, energies=energies,
                                                                                       forces=forces)
    np.testing.assert_allclose(model.alpha_, plain.alpha_, rtol=1e-6, atol=1e-8)
    # a candidate below the stage's top (16 SOAP points + the 10 pair points) against its own plain fit
    row = next(r for r in model.auto_table_ if r["n_sparse"] == [16, 10])
    small = SparseGPR([GAPTerm(t.descriptor, t.kernel, delta=t.delta, n_sparse=n, sparse_points=t.sparse_X[:n])
                       for t, n in zip(model.terms_, (16, 10))], default_sigma=SIGMA, e0=model.e0_)
    fit_part = sorted(set(range(len(atoms))) - set(model.auto_choice_["validation_structures"]))
    small.fit([atoms[s] for s in fit_part], energies=energies[fit_part], forces=[forces[s] for s in fit_part])
    validation = model.auto_choice_["validation_structures"]
    predicted = small.predict([atoms[s] for s in validation], properties=("forces",))["forces"]
    mae = np.abs(predicted - np.concatenate([forces[s] for s in validation])).mean()
    assert row["val_force_mae"] == pytest.approx(mae, rel=1e-6)


def test_auto_chooses_the_noise_and_the_zeta_by_validation(ethanol):
    atoms, energies, forces = ethanol
    model = _model(AutoChoice(sparse_ladder=(16, 32), zetas=(1, 4), force_sigma_factors=(1.0, 8.0),
                              energy_sigma_factors=(1.0,)))
    model.fit(atoms, energies=energies, forces=forces)
    table, choice = model.auto_table_, model.auto_choice_
    assert {row["zeta"] for row in table} == {1, 4}
    assert {row["sigma_forces"] for row in table} == {SIGMA[1], 8 * SIGMA[1]}
    best = min((row for row in table if row["zeta"] == choice["zeta"]), key=lambda r: r["val_force_mae"])
    first_stage = min(table, key=lambda r: r["val_force_mae"])
    assert choice["zeta"] == first_stage["zeta"]
    assert choice["default_sigma"][1] == best["sigma_forces"]
    assert model.terms_[0].kernel.zeta == choice["zeta"]
    assert model.auto.zetas == (1, 4)  # parameters untouched by fit


def test_auto_refuses_a_budget_it_cannot_meet(ethanol):
    atoms, energies, forces = ethanol
    model = _model(AutoChoice(sparse_ladder=LADDER, budget_minutes=1e-7))
    refusal = r"budget-minutes\) = 1e-07 cannot be met: the first stage \(32 sparse"
    with pytest.raises(ValueError, match=refusal):
        model.fit(atoms, energies=energies, forces=forces)
    with pytest.raises(ValueError, match=refusal):
        plan_fit(model, atoms, energies=energies, forces=forces)
    assert not hasattr(model, "alpha_")


def test_plan_fit_plans_the_stages_the_fit_runs(auto_model, ethanol):
    atoms, energies, forces = ethanol
    plan, text = plan_fit(_model(AutoChoice(sparse_ladder=LADDER)), atoms, energies=energies, forces=forces)
    assert [s["n_sparse_total"] for s in plan["stages"]] == [32, 64, 96]
    assert [s["n_sparse_total"] for s in plan["stages"]] == [s["n_sparse_total"] for s in auto_model.auto_plan_["stages"]]
    assert plan["n_affordable"] == 3 and plan["n_fits"] == 9 * len(LADDER)
    assert all(s["seconds"] > 0 and s["bytes"] > 0 for s in plan["stages"])
    assert text.startswith("auto: up to 3 stage(s), 45 candidate fits") and plan["setup_seconds"] > 0
    # a budget between the first stage and all of them: the later stages are planned but not run
    from kernelpot.models.gap.auto_plan import affordable_stages, describe_plan

    plan["budget_seconds"] = plan["setup_seconds"] + plan["stages"][0]["seconds"] + 0.5 * plan["stages"][1]["seconds"]
    assert affordable_stages(plan, None, 0.0) == 1
    assert describe_plan(plan, 1).count("(over budget: not run)") == 2
    assert affordable_stages({**plan, "budget_seconds": None}, plan["stages"][1]["bytes"] + 1, 0.0) == 2  # memory too
    with pytest.raises(ValueError, match="`max_memory` cannot hold the first stage"):
        affordable_stages({**plan, "budget_seconds": None}, plan["stages"][0]["bytes"] / 2, 0.0)


@pytest.mark.parametrize(("settings", "match"), [
    ({"validation_fraction": 1.0}, "validation_fraction"), ({"sparse_ladder": (10, 5)}, "sparse_ladder"),
    ({"tolerance": -0.1}, "tolerance"), ({"patience": 0}, "patience"), ({"zetas": (0,)}, "zetas"),
    ({"force_sigma_factors": ()}, "force_sigma_factors"), ({"budget_minutes": 0}, "budget_minutes"),
    ({"stage_growth": 1.0}, "stage_growth")])
def test_auto_settings_are_checked(ethanol, settings, match):
    atoms, energies, forces = ethanol
    with pytest.raises(ValueError, match=match):
        _model(AutoChoice(**settings)).fit(atoms[:4], energies=energies[:4], forces=forces[:4])


def test_auto_needs_a_term_it_can_grow(ethanol):
    atoms, energies, _ = ethanol
    term = GAPTerm(Distance2B(cutoff=4.0), GaussianCovariance(0.5), n_sparse=10, sparse_method="uniform")
    with pytest.raises(ValueError, match="grows terms with sparse_method 'fps' or 'cur'"):
        SparseGPR([term], auto=AutoChoice()).fit(atoms, energies=energies)


def test_auto_names_a_term_without_descriptor_rows(ethanol):
    atoms, energies, forces = ethanol
    absent_pair = GAPTerm(Distance2B(cutoff=4.0, Z1=8, Z2=17), GaussianCovariance(0.5), n_sparse=10)
    model = SparseGPR([_model(AutoChoice()).terms[0], absent_pair], auto=AutoChoice())
    with pytest.raises(ValueError, match=r"terms\[1\] \(Distance2B\): no descriptor rows"):
        model.fit(atoms[:20], energies=energies[:20], forces=forces[:20])


def test_auto_choices_round_trip_through_the_model_file(auto_model, tmp_path):
    path = tmp_path / "auto.kpot"
    save_model(auto_model, path)
    loaded = load_model(path)
    assert loaded.auto_choice_ == json.loads(json.dumps(auto_model.auto_choice_))
    assert loaded.auto_table_ == json.loads(json.dumps(auto_model.auto_table_))
    assert loaded.auto.get_params() == auto_model.auto.get_params()
    test, *_ = _ethanol("test")
    np.testing.assert_array_equal(loaded.predict(test[:3], properties=("forces",))["forces"],
                                  auto_model.predict(test[:3], properties=("forces",))["forces"])


def _write(path, atoms, energies, forces):
    for a, e, f in zip(atoms, energies, forces):
        a.calc = SinglePointCalculator(a, energy=float(e), forces=f)
    ase.io.write(path, atoms)


def test_cli_choices_do_not_depend_on_the_test_file(tmp_path, ethanol, capsys):
    _write(tmp_path / "train.xyz", *[list(x) for x in ethanol])
    test_atoms, test_energies, test_forces = _ethanol("test")
    _write(tmp_path / "test_a.xyz", test_atoms[:20], test_energies[:20], test_forces[:20])
    rng = np.random.default_rng(1)  # a different "test set": other frames, rattled, with other labels
    _write(tmp_path / "test_b.xyz", [a.copy() for a in test_atoms[20:]], test_energies[20:] + 1.0,
           [f + rng.normal(0, 0.1, f.shape) for f in test_forces[20:]])
    fit = ["fit", str(tmp_path / "train.xyz"), "--gap", GAP, "--default-sigma", "0.0005,0.01,0.05", "--auto",
           "--sparse-ladder", "8,16,32,64"]
    choices = []
    for name, test in (("a", "test_a.xyz"), ("b", "test_b.xyz")):
        assert main([*fit, "-o", str(tmp_path / f"{name}.kpot"), "--quiet"]) == 0
        before = (tmp_path / f"{name}.kpot").read_bytes()
        assert main(["evaluate", str(tmp_path / f"{name}.kpot"), str(tmp_path / test), "--json", "--quiet"]) == 0
        assert (tmp_path / f"{name}.kpot").read_bytes() == before  # evaluate reads the model, never changes it
        model = load_model(tmp_path / f"{name}.kpot")
        choices.append((model.auto_choice_, model.auto_table_))
    capsys.readouterr()
    (choice_a, table_a), (choice_b, table_b) = choices
    for choice in (choice_a, choice_b):
        choice.pop("cpu_seconds")
    assert choice_a == choice_b and table_a == table_b
    assert set(choice_a["validation_structures"]) < set(range(len(ethanol[0])))  # drawn from the training file


def test_cli_prints_the_plan_and_the_table_and_refuses_a_small_budget(tmp_path, ethanol, capsys):
    _write(tmp_path / "train.xyz", *[list(x[:20]) for x in ethanol])
    fit = ["fit", str(tmp_path / "train.xyz"), "--gap", GAP, "--auto", "--sparse-ladder", "8,16,32"]
    assert main([*fit, "-o", str(tmp_path / "m.kpot")]) == 0
    out = capsys.readouterr().out
    assert out.index("auto: up to") < out.index("val F MAE") < out.index("<- chosen")
    assert main([*fit, "-o", str(tmp_path / "m2.kpot"), "--budget-minutes", "1e-7"]) == 2
    assert "cannot be met" in capsys.readouterr().err
    assert not (tmp_path / "m2.kpot").exists()
    assert main(["fit", str(tmp_path / "train.xyz"), "--gap", GAP, "--budget-minutes", "5",
                 "-o", str(tmp_path / "m3.kpot")]) == 2
    assert "--budget-minutes needs --auto" in capsys.readouterr().err



def test_cli_auto_options_reach_the_auto_choice():
    from kernelpot.cli.options import auto_choice
    from kernelpot.cli.parser import build_parser

    base = ["fit", "train.xyz", "-o", "m.kpot", "--auto"]
    assert auto_choice(build_parser().parse_args(base)).balance_config_types is True
    args = build_parser().parse_args([*base, "--no-auto-balance-config-types", "--auto-energy-weight", "0.5"])
    assert (auto_choice(args).balance_config_types, auto_choice(args).energy_weight) == (False, 0.5)


def _morse_clusters(n, seed):
    """A learnable toy: rattled 4-atom clusters of a Morse pair potential (eV, Å)."""
    rng = np.random.default_rng(seed)
    structures, energies, forces = [], [], []
    base = np.array([[0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    while len(structures) < n:
        atoms = Atoms("Ar4", positions=base + rng.normal(0, 0.05, base.shape))
        atoms.calc = MorsePotential(epsilon=1.0, r0=1.0, rho0=3.0, rcut1=2.0, rcut2=2.5)
        structures.append(atoms)
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
    return structures, energies, forces


def test_learning_curve_writes_a_png_whose_errors_decrease(tmp_path, capsys):
    _write(tmp_path / "train.xyz", *_morse_clusters(120, 0))
    _write(tmp_path / "test.xyz", *_morse_clusters(40, 1))
    gap = "{distance_2b cutoff=2.6 n_sparse=30 covariance_type=ard_se delta=0.5 theta_uniform=0.2 sparse_method=uniform}"
    png, rows = tmp_path / "curve.png", tmp_path / "curve.json"
    assert main(["learning_curve", str(tmp_path / "train.xyz"), "--test", str(tmp_path / "test.xyz"),
                 "--sizes", "3,12,48,120", "--gap", gap, "--default-sigma", "0.00001,0.001,0.1", "--e0", "0",
                 "-o", str(png), "--json", str(rows)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    curve = json.loads(rows.read_text())
    assert [row["n_train"] for row in curve] == [3, 12, 48, 120]
    for key in ("forces_mae", "energy_mae"):
        values = [row[key] for row in curve]
        assert all(b < a for a, b in zip(values, values[1:])), (key, values)
    assert "wrote" in capsys.readouterr().out


def test_learning_curve_refuses_sizes_beyond_the_training_set(tmp_path, capsys):
    _write(tmp_path / "train.xyz", *_morse_clusters(10, 0))
    assert main(["learning_curve", str(tmp_path / "train.xyz"), "--sizes", "2,9", "-o",
                 str(tmp_path / "c.png")]) == 2
    assert "exceeds the 8 training structures left after the hold-out" in capsys.readouterr().err


def _benchmark():
    import importlib.util
    import sys
    from pathlib import Path

    if "gap_rmd17_benchmark" not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "benchmarks" / "gap_rmd17.py"
        spec = importlib.util.spec_from_file_location("gap_rmd17_benchmark", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["gap_rmd17_benchmark"]


def test_rmd17_benchmark_runs_its_documented_molecule_sets(monkeypatch):
    benchmark = _benchmark()
    monkeypatch.setattr(benchmark, "_plan", lambda molecule, args: molecule)
    assert benchmark.main(["--auto", "--plan-only"]) == list(benchmark.HAND_SET)
    assert benchmark.main(["--all", "--auto", "--plan-only"]) == sorted(benchmark.PUBLISHED_SOAP_GAP)
    assert benchmark.main(["uracil", "benzene", "--auto", "--plan-only"]) == ["uracil", "benzene"]
    with pytest.raises(SystemExit):
        benchmark.main(["methane", "--auto", "--plan-only"])


def test_rmd17_benchmark_auto_reads_the_test_frames_only_after_the_fit(monkeypatch, tmp_path, capsys, bundled_data):
    benchmark = _benchmark()
    events = []
    load, fit = benchmark.load, SparseGPR.fit

    def recording_load(molecule, part, data_dir):
        events.append(part)
        return load(molecule, part, data_dir)

    def recording_fit(self, *args, **kwargs):
        events.append("fit")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(benchmark, "load", recording_load)
    monkeypatch.setattr(SparseGPR, "fit", recording_fit)
    # the bundled split files hold 40 training and 41 test frames of ethanol
    rows = benchmark.main(["ethanol", "--auto", "--data-dir", str(bundled_data / "rmd17_subset"), "--n-train", "40",
                           "--n-test", "41", "--n-max", "3", "--l-max", "2", "--n-sparse", "64",
                           "--json", str(tmp_path / "rows.json"), "--save-dir", str(tmp_path / "models" / "auto")])
    assert events == ["train", "fit", "test"]
    # the missing --save-dir (and its parent) was created before the fit, and holds the model
    assert (tmp_path / "models" / "auto" / "rmd17_ethanol_auto.kpot").is_file()
    (row,) = rows
    assert row["n_test"] == 41 and row["force_mae_meV_A"] > 0 and row["auto_table"]
    assert "ethanol" in capsys.readouterr().out
    assert json.loads((tmp_path / "rows.json").read_text())[0]["molecule"] == "ethanol"


def test_rmd17_benchmark_refuses_an_unwritable_output_before_any_fit(monkeypatch, tmp_path, capsys):
    benchmark = _benchmark()
    monkeypatch.setattr(benchmark, "run", lambda molecule, args: pytest.fail("fitted before checking its outputs"))
    with pytest.raises(SystemExit):
        benchmark.main(["ethanol", "--auto", "--json", str(tmp_path / "missing" / "rows.json")])
    error = capsys.readouterr().err
    assert "--json" in error and "does not exist" in error
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        benchmark.main(["ethanol", "--auto", "--save-dir", str(tmp_path / "file")])
    error = capsys.readouterr().err
    assert "--save-dir" in error and "is a file, not a folder" in error


def _measured_row(molecule):
    """What gap_rmd17.run returns for a molecule (stand-in numbers), for tests of the bookkeeping around it."""
    return {"molecule": molecule, "n_sparse": 1, "n_train": 1, "n_test": 1, "fit_seconds": 1.0, "cpu_seconds": 1.0,
            "force_mae_meV_A": 1.0, "energy_mae_meV": 1.0, "published_soap_gap": 18.1, "published_fchl19": 6.2}


def test_rmd17_benchmark_keeps_the_other_molecules_when_one_fails(monkeypatch, tmp_path, capsys):
    """A session lost a finished 37-minute fit this way: the first molecule's save failed and took the rest."""
    benchmark = _benchmark()

    def run(molecule, args):
        if molecule == "uracil":
            raise OSError("disk full")
        return _measured_row(molecule)

    monkeypatch.setattr(benchmark, "run", run)
    with pytest.raises(SystemExit, match=r"failed: \['uracil'\]"):
        benchmark.main(["uracil", "ethanol", "--auto", "--json", str(tmp_path / "rows.json")])
    assert "uracil failed: OSError: disk full" in capsys.readouterr().out
    assert [row["molecule"] for row in json.loads((tmp_path / "rows.json").read_text())] == ["ethanol"]


def test_rmd17_benchmark_keeps_a_measured_row_whose_model_cannot_be_saved(monkeypatch, tmp_path, bundled_data):
    """The fit and its test error outlive a failed save (a full disk after an hour of fitting)."""
    import kernelpot.potential.serialization as serialization

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serialization, "save_model", full_disk)
    with pytest.raises(SystemExit, match="measured but not saved.*No space left on device"):
        _benchmark().main(["ethanol", "--auto", "--data-dir", str(bundled_data / "rmd17_subset"), "--n-train", "40",
                           "--n-test", "41", "--n-max", "3", "--l-max", "2", "--n-sparse", "64",
                           "--json", str(tmp_path / "rows.json"), "--save-dir", str(tmp_path / "models")])
    (row,) = json.loads((tmp_path / "rows.json").read_text())
    assert row["molecule"] == "ethanol" and row["force_mae_meV_A"] > 0 and "No space left" in row["save_error"]


def test_rmd17_benchmark_json_keeps_the_rows_of_molecules_not_run_now(monkeypatch, tmp_path):
    """A second run on other molecules with the same --json once rewrote the file with its own rows only."""
    benchmark = _benchmark()
    ran = []

    def run(molecule, args):
        ran.append(molecule)
        return _measured_row(molecule)

    monkeypatch.setattr(benchmark, "run", run)
    path = tmp_path / "rows.json"
    benchmark.main(["uracil", "--auto", "--json", str(path)])
    benchmark.main(["uracil", "--auto", "--json", str(path), "--budget-minutes", "7"])  # other settings: a new row
    benchmark.main(["ethanol", "--auto", "--json", str(path)])
    benchmark.main(["ethanol", "uracil", "--auto", "--json", str(path)])  # both held: resumed, nothing refitted
    assert ran == ["uracil", "uracil", "ethanol"]
    rows = json.loads(path.read_text())
    assert sorted((r["molecule"], r["settings"]["budget_minutes"]) for r in rows) == [
        ("ethanol", "100.0"), ("uracil", "100.0"), ("uracil", "7.0")]
