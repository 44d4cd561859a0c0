"""The electrolyte example's chain in miniature (issue 16 §3): relabel -> learn -> compare -> production MD -> analyse.

A tiny NaCl + 8 H2O box, the Lennard-Jones stand-in oracle instead of GFN2-xTB, the bundled revPBE0-D3 subset
instead of the shared data, a few MD steps: the numbers mean nothing, the chain must not break. Each step is
the script a user runs, in a subprocess, and each is run twice where it resumes (the second run adds nothing).
"""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from conftest import ANALYSIS_EXTRA_MISSING

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "electrolyte"


def _run(script, *args, work):
    env = dict(os.environ, PYTHONPATH=str(ROOT), KERNELPOT_SHARED_DATA=str(work / "no_shared_data"),
               OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, str(EXAMPLE / script), "--work", str(work), "--oracle", "standin",
                             *map(str, args)], check=False, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("electrolyte")


def test_the_chain_runs_and_resumes(work):
    out = _run("relabel_aimd.py", "--n-test", 3, "--n-pool", 3, "--spacing", 0, work=work)
    assert "bundled subset" in out
    test = ase.io.read(work / "reference" / "test_aimd.extxyz", index=":")
    assert len(test) == 3 and all("source_index" in a.info for a in test)
    _run("relabel_aimd.py", "--n-test", 3, "--n-pool", 3, "--spacing", 0, work=work)  # resumes: nothing new
    assert len(ase.io.read(work / "reference" / "test_aimd.extxyz", index=":")) == 3

    learn = ("--strategy", "variance", "--budget", 7, "--n-initial", 4, "--batch-size", 3, "--n-water", 8,
             "--n-sparse", 30, "--schedule", "300:20,360:20", "--segment", 10, "--interval", 5, "--refit-every", 2,
             "--no-validation", "--quiet")
    _run("learn.py", *learn, work=work)
    summary = json.loads((work / "learn" / "variance_seed0" / "summary.json").read_text())
    assert summary["n_labelled"] + summary["n_failures"] <= 4 + 7  # initial frames + budget
    before = (work / "learn" / "variance_seed0" / "labelled.extxyz").read_text()
    _run("learn.py", *learn, work=work)  # a finished run resumes without relabelling
    assert (work / "learn" / "variance_seed0" / "labelled.extxyz").read_text() == before
    cli = _run("learn.py", *learn, "--print-cli", work=work)
    assert cli.startswith("kernelpot learn") and "--calibrate" in cli
    # ... and that command runs the same loop through the CLI
    command = shlex.split(cli.strip())[2:]
    result = subprocess.run([sys.executable, "-m", "kernelpot.cli", "learn", *command, "--quiet"], check=False,
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["oracle_calls"] <= 7

    _run("compare.py", "--calls", "4,7", "--n-sparse", 30, work=work)
    curves = json.loads((work / "compare" / "curves.json").read_text())
    assert curves["n_test"] == 3 and [r["calls"] for r in curves["curves"]["pool"]] == []  # 3 pool frames < 4
    assert curves["curves"]["variance_seed0"][0]["calls"] == 4
    assert (work / "compare" / "curves.png").stat().st_size > 1000
    # the second test set: the learned model's 330 K MD, frames 4 fs apart after 4 fs, labelled by the oracle
    reference = ("--models", "variance_seed0", "--n-water", 8, "--ps", 0.02, "--equilibrate", 0.004,
                 "--spacing", 0.004, "--interval", 2, "--quiet")
    _run("model_reference.py", *reference, work=work)
    test_model = ase.io.read(work / "reference" / "test_model.extxyz", index=":")
    assert [a.info["md_time"] for a in test_model] == pytest.approx([0.004, 0.008, 0.012, 0.016, 0.02])
    assert all(a.info["model_run"] == "variance_seed0" and np.abs(a.get_forces()).max() > 0 for a in test_model)
    made = [work / "reference" / name for name in ("test_model.extxyz", "md_variance_seed0.extxyz")]
    before = [path.read_text() for path in made]
    _run("model_reference.py", *reference, work=work)  # resumes: no MD step, no label made again
    assert [path.read_text() for path in made] == before
    # a test set of the AIMD set's size (3 frames) gets its own fits: the cache was once keyed by the size alone
    ase.io.write(work / "reference" / "test_three.extxyz", test_model[:3], format="extxyz")
    _run("compare.py", "--calls", "4,7", "--n-sparse", 30, "--test", work / "reference" / "test_three.extxyz",
         work=work)
    three = json.loads((work / "compare" / "curves_test_three.json").read_text())
    assert three["n_test"] == 3 and three["curves"]["variance_seed0"][0]["forces_rmse"] != pytest.approx(
        curves["curves"]["variance_seed0"][0]["forces_rmse"], rel=1e-6)
    _run("compare.py", "--calls", "4,7", "--n-sparse", 30, "--test", work / "reference" / "test_model.extxyz",
         work=work)
    on_model = json.loads((work / "compare" / "curves_test_model.json").read_text())
    assert on_model["n_test"] == 5  # in its own files: the AIMD test set's curves are kept
    assert json.loads((work / "compare" / "curves.json").read_text())["n_test"] == 3
    assert on_model["curves"]["variance_seed0"][0]["forces_rmse"] != curves["curves"]["variance_seed0"][0]["forces_rmse"]

    model = work / "learn" / "variance_seed0" / "model.kpot"
    start = work / "learn" / "start.extxyz"
    production = ("--model", model, "--start-file", start, "--interval", 2, "--timestep", 1.0, "--quiet")
    _run("production.py", *production, "--ps", 0.024, work=work)
    assert len(ase.io.read(work / "md" / "model.extxyz", index=":")) == 13
    _run("production.py", *production, "--ps", 0.03, work=work)  # extended
    frames = ase.io.read(work / "md" / "model.extxyz", index=":")
    assert [f.info["step"] for f in frames][-1] == 30 and len(frames) == 16

    if ANALYSIS_EXTRA_MISSING:  # everything above ran; the last step needs the analysis extra
        pytest.skip(f"analyse.py: {ANALYSIS_EXTRA_MISSING}")
    out = _run("analyse.py", "--name", "model", "--skip", 0, work=work)
    results = json.loads((work / "analysis" / "results.json").read_text())
    assert set(results["diffusion_1e-9_m2_s"]) == {"O", "Na", "Cl"} and "Na–O" in results["rdf"]
    assert (work / "analysis" / "rdf.png").is_file() and (work / "analysis" / "msd.png").is_file()
    assert (work / "analysis" / "close_pairs.png").is_file()
    windows = results["close_OO_per_frame"]["model"]["windows"]
    assert windows and all(w["mean"] >= 0 for w in windows) and sum(w["frames"] for w in windows) == 16
    assert "Yeh–Hummer" in out
    # two independent runs of the same box, analysed together
    _run("production.py", *production, "--ps", 0.03, "--name", "again", "--seed", 1, work=work)
    out = _run("analyse.py", "--name", "model", "again", "--skip", 0, work=work)
    folder = work / "analysis" / "model+again"
    both = json.loads((folder / "results.json").read_text())
    assert both["frames"] == 32 and set(both["runs"]) == {"model", "again"}
    assert set(both["diffusion_1e-9_m2_s"]["Na"]["runs"]) == {"model", "again"}
    assert set(both["close_ClH_per_frame"]) == {"model", "again"}
    assert all(0 <= c["frames_with_any"] <= 1 for c in both["close_ClH_per_frame"].values())
    assert {p.name for p in folder.glob("*.png")} >= {"rdf.png", "msd.png", "msd_model.png", "msd_again.png",
                                                      "close_pairs_model.png", "close_pairs_again.png"}
    assert "2 independent runs" in out
    # a later analysis adds the earlier one's runs through their recorded posteriors (trajectories gone)
    (work / "md" / "model.extxyz").rename(work / "md" / "later.extxyz")
    out = _run("analyse.py", "--name", "later", "--skip", 0, "--earlier", folder / "results.json", work=work)
    later = json.loads((work / "analysis" / "results.json").read_text())
    assert set(later["runs"]) == {"later", "model", "again"} and later["runs"]["model"]["earlier"]
    each = later["diffusion_1e-9_m2_s"]["O"]["runs"]
    assert set(each) == {"later", "model", "again"}
    # the earlier runs keep their recorded D; the combination weighs the three by the atom-ps each observed
    assert each["again"]["D_pbc"] == pytest.approx(both["diffusion_1e-9_m2_s"]["O"]["runs"]["again"]["D_pbc"])
    weights = [later["runs"][name]["duration_ps"] for name in ("later", "model", "again")]
    expected = np.average([each[name]["D_pbc"] for name in ("later", "model", "again")], weights=weights)
    assert later["diffusion_1e-9_m2_s"]["O"]["D_pbc"] == pytest.approx(expected, rel=0.05)
    assert "model* " in out and "an earlier run" in out
    # each run's posterior is kept as quantiles, and an earlier run's come back as recorded
    again = later["diffusion_1e-9_m2_s"]["Na"]["runs"]["again"]["quantiles"]
    recorded = both["diffusion_1e-9_m2_s"]["Na"]["runs"]["again"]["quantiles"]
    assert len(again) == len(recorded) == 200 and np.all(np.diff(recorded) >= 0)
    np.testing.assert_allclose(np.percentile(again, [10, 50, 90]), np.percentile(recorded, [10, 50, 90]),
                               rtol=0.05, atol=1e-3)
    with pytest.raises(AssertionError, match="already analysed here"):  # the same run twice
        _run("analyse.py", "--name", "later", "again", "--skip", 0, "--earlier", folder / "results.json", work=work)


def test_an_earlier_runs_skewed_posterior_survives_its_summary():
    # An ion's posterior of D is skewed to the right (its MSD's spread grows with D). Recorded as mean ± std it
    # came back normal: 97.5 % point too low, 2.5 % point too low (even negative). Its quantiles keep both.
    sys.path.insert(0, str(EXAMPLE))
    try:
        from analyse import posterior_quantiles, summary_diffusion
    finally:
        sys.path.remove(str(EXAMPLE))
    posterior = np.random.default_rng(0).lognormal(np.log(1.2e-9), 0.5, 100_000)
    run = {"n_atoms": {"Cl": 2}, "duration_ps": 10.0}
    truth = np.percentile(posterior, [2.5, 97.5])
    kept = summary_diffusion("Cl", {**run, "D": {"Cl": (posterior.mean(), posterior.std(),
                                                        posterior_quantiles(posterior))}})
    np.testing.assert_allclose(kept.D_interval, truth, rtol=0.03)
    normal = summary_diffusion("Cl", {**run, "D": {"Cl": (posterior.mean(), posterior.std(), None)}})
    assert normal.D_interval[1] < 0.9 * truth[1] and normal.D_interval[0] < 0.5 * truth[0]
    assert kept.D == pytest.approx(posterior.mean()) and kept.n_atoms == 2
