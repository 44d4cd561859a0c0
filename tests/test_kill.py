"""Kill tests: ``fit`` and ``learn`` SIGKILLed at random points, restarted, compared (issue 18).

Every command runs in its own process on a tiny system (4-atom Cu cells, EMT labels), single-threaded so that
the runs are deterministic. A kill lands at a random moment after the process has shown progress; the same
command is then run again. Nothing paid for may be relabelled or lost, no temporary file may stay behind, and
the result must equal the uninterrupted run's: the model's predictions bit for bit for ``fit`` and ``learn``
(a stored-label oracle: ASE's EMT keeps state between calls, which changes last digits). The default run kills
each command once or twice; the ``slow`` variants kill more often.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

REPO = Path(__file__).resolve().parents[1]
GAP = ("{distance_2b cutoff=4.0 n_sparse=8 covariance_type=ard_se delta=1.0 theta_uniform=0.5 "
       "sparse_method=uniform : soap l_max=2 n_max=3 atom_sigma=0.5 cutoff=3.5 delta=0.1 covariance_type=dot_product "
       "zeta=2 n_sparse=8 sparse_method=cur_points}")
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _command(*args):
    return [sys.executable, "-m", "kernelpot.cli", *map(str, args)]


def _run(args, cwd):
    start = time.monotonic()
    result = subprocess.run(_command(*args), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    result.seconds = time.monotonic() - start
    return result


def _kill_repeatedly(args, cwd, progress, rng, spread, kills):
    """Kill the command ``kills`` times (retrying when it finished first); the number of kills that landed."""
    landed = 0
    for _ in range(3 * kills):
        if landed == kills:
            break
        landed += _kill(args, cwd, progress(), rng, spread)
    return landed


def _kill(args, cwd, progress, rng, spread):
    """Start the command, wait until ``progress()`` is true, SIGKILL it ``U(0, spread)`` s later.

    Returns False if the command finished before the kill (then it simply completed).
    """
    process = subprocess.Popen(_command(*args), cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        while process.poll() is None and not progress():
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, spread))
        if process.poll() is not None:
            return False
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        return True
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _cu(seed, amp=0.05):
    atoms = bulk("Cu", "fcc", a=3.58 + 0.01 * (seed % 5), cubic=True)
    atoms.rattle(amp, seed=seed)
    work = atoms.copy()
    work.calc = EMT()
    atoms.calc = SinglePointCalculator(atoms, energy=work.get_potential_energy(), forces=work.get_forces())
    return atoms


def _temporaries(folder):
    return sorted(p.name for p in Path(folder).rglob(".*.tmp"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kill")
    write(folder / "train.extxyz", [_cu(s) for s in range(8)])
    write(folder / "pool.extxyz", [_cu(100 + s, amp=0.08) for s in range(12)])
    write(folder / "probe.extxyz", [_cu(200 + s, amp=0.1) for s in range(3)])
    return folder


def _predictions(model_path, probe):
    code = ("import sys, numpy as np; from ase.io import read; from kernelpot import load_model; "
            "p = load_model(sys.argv[1]).predict(read(sys.argv[2], ':'), properties=('energy', 'forces')); "
            "np.savez(sys.argv[3], **p)")
    out = Path(model_path).with_suffix(".npz")
    subprocess.run([sys.executable, "-c", code, str(model_path), str(probe), str(out)], env=ENV, check=True)
    with np.load(out) as loaded:
        return {key: loaded[key] for key in loaded.files}


def _assert_same_predictions(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


# ----------------------------------------------------------------------------- fit
def _fit_args(output):
    return ["fit", "train.extxyz", "-o", output, "--gap", GAP, "--seed", "3", "--virial-key", "none",
            "--stress-key", "none"]


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_fit_killed_and_run_again(data, tmp_path, seed):
    """A killed fit leaves no model or a complete one (never a torn one); run again, it writes the same model."""
    reference = tmp_path / "reference.kpot"
    seconds = _run(_fit_args(reference), data).seconds
    output = tmp_path / "out" / "model.kpot"
    output.parent.mkdir()
    rng = random.Random(seed)
    assert _kill_repeatedly(_fit_args(output), data, lambda: lambda: True, rng, seconds, kills=1) == 1
    if output.exists():
        _predictions(output, data / "probe.extxyz")  # whatever is there is a whole model
    _run(_fit_args(output), data)
    assert _temporaries(output.parent) == []
    _assert_same_predictions(_predictions(output, data / "probe.extxyz"),
                             _predictions(reference, data / "probe.extxyz"))


# --------------------------------------------------------------------------- learn
def _learn_args(folder):
    return ["learn", folder, "--pool", "pool.extxyz", "--gap", GAP, "--budget", "9", "--strategy", "variance",
            "--seed", "1", "--quiet"]


def _journal_frames(folder):
    path = Path(folder) / "labelled.extxyz"
    return path.read_text().count("active_key") if path.exists() else 0


@pytest.mark.parametrize("seed, kills", [(0, 2), pytest.param(1, 4, marks=pytest.mark.slow),
                                         pytest.param(2, 4, marks=pytest.mark.slow)])
def test_learn_killed_and_resumed(data, tmp_path, seed, kills):
    reference = tmp_path / "reference"
    seconds = _run(_learn_args(reference), data).seconds
    run = tmp_path / "run"
    rng = random.Random(seed)

    def after_a_new_label():  # then the kill lands in a refit, a commit or the next oracle call
        before = _journal_frames(run)
        return lambda: _journal_frames(run) > before

    assert _kill_repeatedly(_learn_args(run), data, after_a_new_label, rng, seconds / 4, kills) >= 1
    _run(_learn_args(run), data)
    from kernelpot.active.checkpoint import Checkpoint

    journal = Checkpoint(run).load_labelled()
    keys = [str(a.info["active_key"]) for a in journal]
    assert len(keys) == len(set(keys)), "a structure was labelled twice"
    log = Checkpoint(run).read_log()
    calls = [r for r in log if r["kind"] == "call"]
    assert len(calls) == 9  # the budget counts every call
    assert _temporaries(run) == []
    labelled = {(int(r["iteration"]), r["key"]) for r in calls} - {(int(r["iteration"]), r["key"]) for r in log
                                                                     if r["kind"] == "failure"}
    if len(labelled) == len(calls):  # no call was cut short by a kill: the run is the uninterrupted one
        assert keys == [str(a.info["active_key"]) for a in Checkpoint(reference).load_labelled()]
        _assert_same_predictions(_predictions(run / "model.kpot", data / "probe.extxyz"),
                                 _predictions(reference / "model.kpot", data / "probe.extxyz"))
