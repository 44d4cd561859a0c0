"""The command line meets bad input with one line and a non-zero exit, never a traceback (issue 18, items 2, 12).

Each case is one user error; the output path checks run before any fit starts (an hour of fitting is not
thrown away for a bad ``-o``). ``--debug`` shows the traceback.
"""

import re
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from kernelpot.cli import main
from kernelpot.models.gap import SparseGPR

GAP = ("{distance_2b cutoff=4.0 n_sparse=6 covariance_type=ard_se delta=1.0 theta_uniform=0.5 "
       "sparse_method=uniform : soap l_max=2 n_max=2 atom_sigma=0.5 cutoff=3.5 delta=0.1 covariance_type=dot_product "
       "zeta=2 n_sparse=6 sparse_method=fps}")
NO_STRESS = ["--virial-key", "none", "--stress-key", "none"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    frames = []
    for seed in range(3):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=seed)
        atoms.calc = EMT()
        atoms.get_forces()
        frames.append(atoms)
    write(folder / "train.extxyz", frames)
    (folder / "empty.extxyz").write_bytes(b"")
    (folder / "garbage.extxyz").write_bytes(b"\x00\x01 this is not a structure\n")
    (folder / "notes.txt").write_text("my notes")
    (folder / "garbage.kpot").write_bytes(b"PK\x03\x04 not a zip")
    assert main(["fit", str(folder / "train.extxyz"), "-o", str(folder / "cu.kpot"), "--gap", GAP, "--quiet",
                 *NO_STRESS]) == 0
    return folder


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


def _one_line_error(argv, capsys, pattern):
    code, err = _run(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"kernelpot {argv[0]}: error: ")
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture
def no_fit(monkeypatch):
    """Any fit fails the test: the output checks must come first."""
    def fit(*args, **kwargs):
        raise AssertionError("the fit started before the output path was checked")

    monkeypatch.setattr(SparseGPR, "fit", fit)


@pytest.mark.parametrize("output, pattern", [
    ("train.extxyz", r"-o '.*train.extxyz' is the input file .*: it would be overwritten"),
    (".", r"-o '.*' is a folder; give a file name"),
    ("missing/m.kpot", r"the folder '.*missing' does not exist"),
    ("notes.txt", r"-o '.*notes.txt' exists and is not a kernelpot model file: not overwriting it"),
], ids=["input", "folder", "missing-folder", "other-file"])
def test_fit_refuses_the_output_before_fitting(files, capsys, no_fit, output, pattern):
    _one_line_error(["fit", str(files / "train.extxyz"), "-o", str(files / output), "--gap", GAP, "--quiet"],
                    capsys, pattern)
    assert (files / "notes.txt").read_text() == "my notes"


def test_fit_may_overwrite_its_own_model(files, capsys):
    code, err = _run(["fit", str(files / "train.extxyz"), "-o", str(files / "cu.kpot"), "--gap", GAP, "--quiet",
                      *NO_STRESS], capsys)
    assert code == 0, err


@pytest.mark.parametrize("train, pattern", [
    ("empty.extxyz", r"'.*empty.extxyz' is empty"),
    ("garbage.extxyz", r"'.*garbage.extxyz' cannot be read as structures \("),
    ("absent.extxyz", r"structure file '.*absent.extxyz' does not exist"),
    (".", r"'.*' is a folder, not a structure file"),
], ids=["empty", "garbage", "absent", "folder"])
def test_fit_on_a_file_that_holds_no_structures(files, capsys, train, pattern):
    _one_line_error(["fit", str(files / train), "-o", str(files / "out.kpot"), "--quiet"], capsys, pattern)


@pytest.mark.parametrize("extra, pattern", [
    (["--frame", "99"], r"'.*train.extxyz' has 3 frame\(s\); frame 99 is past the end"),
    (["--frame", "-4"], r"has 3 frame\(s\); frame -4 is past the end"),
    (["--steps", "-5"], r"argument --steps: must be an integer >= 1; got '-5'"),
    (["--steps", "0"], r"argument --steps: must be an integer >= 1; got '0'"),
    (["--timestep", "0"], r"argument --timestep: must be a finite number > 0; got '0'"),
    (["--timestep", "nan"], r"argument --timestep: must be a finite number > 0; got 'nan'"),
    (["--interval", "0"], r"argument --interval: must be an integer >= 1; got '0'"),
    (["--temperature", "-1"], r"argument --temperature: must be a finite number >= 0; got '-1'"),
    (["--trajectory", "train.extxyz"], r"--trajectory '.*train.extxyz' is the input file"),
    (["--output", "train.extxyz"], r"--output '.*train.extxyz' is the input file"),
], ids=["frame-past-end", "negative-frame", "negative-steps", "zero-steps", "zero-timestep", "nan-timestep",
        "zero-interval", "negative-temperature", "trajectory-is-input", "output-is-input"])
def test_md_input_errors(files, capsys, monkeypatch, extra, pattern):
    monkeypatch.chdir(files)
    argv = ["md", "cu.kpot", "train.extxyz", *extra, "--quiet"]
    if "--steps" in extra and int(extra[1]) < 1 or "--timestep" in extra or "--interval" in extra \
            or "--temperature" in extra:
        with pytest.raises(SystemExit) as raised:  # argparse: one line, exit 2
            main(argv)
        assert raised.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "usage:" not in err
        assert re.search(pattern, err), err
    else:
        _one_line_error(argv, capsys, pattern)


@pytest.mark.parametrize("command, pattern", [
    (["md", "garbage.kpot", "train.extxyz"], r"'.*garbage.kpot' is not a kernelpot model file"),
    (["md", "absent.kpot", "train.extxyz"], r"model file '.*absent.kpot' does not exist"),
    (["evaluate", "garbage.kpot", "train.extxyz"], r"is not a kernelpot model file"),
    (["evaluate", "cu.kpot", "empty.extxyz"], r"'.*empty.extxyz' is empty"),
    (["md", "cu.kpot", "garbage.extxyz"], r"cannot be read as structures"),
], ids=["md-garbage-model", "md-absent-model", "evaluate-garbage-model", "evaluate-empty", "md-garbage-start"])
def test_model_and_structure_files(files, capsys, monkeypatch, command, pattern):
    monkeypatch.chdir(files)
    _one_line_error(command + ["--quiet"], capsys, pattern)


@pytest.mark.parametrize("extra, pattern", [
    (["--refit-every", "sometimes"], r"argument --refit-every: must be auto, never or an integer >= 1"),
    (["--budget", "0"], r"argument --budget: must be an integer >= 1; got '0'"),
    (["--oracle", "emt", "--oracle-kwargs", "{bad"], r"--oracle-kwargs must be a JSON object"),
    (["--oracle", "ase.calculators.emt:NoSuchClass"], r"module ase.calculators.emt has no 'NoSuchClass'"),
    (["--oracle", "emt", "--oracle-kwargs", "[1, 2]"], r"--oracle-kwargs must be a JSON object; got '\[1, 2\]'"),
], ids=["refit-every", "budget", "kwargs-json", "oracle-class", "kwargs-list"])
def test_learn_input_errors(files, capsys, tmp_path, extra, pattern):
    argv = ["learn", str(tmp_path / "run"), "--pool", str(files / "train.extxyz"), "--gap", GAP, *extra, "--quiet"]
    if extra[0] in ("--refit-every", "--budget"):
        with pytest.raises(SystemExit):
            main(argv)
        assert re.search(pattern, capsys.readouterr().err)
    else:
        _one_line_error(argv, capsys, pattern)


def test_learn_checkpoint_that_is_a_file(files, capsys):
    _one_line_error(["learn", str(files / "notes.txt"), "--pool", str(files / "train.extxyz"), "--quiet"], capsys,
                    r"checkpoint folder '.*notes.txt' is a file, not a folder")


def test_warnings_are_one_line(files, capsys):
    """mlearn-style stresses under another key: the reader's warning is one line of the command's output."""
    frames = []
    for seed in range(3):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=seed)
        atoms.calc = EMT()
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        atoms.info["virial_stress_kbar"] = np.zeros(9)  # EMT's own stress is not kept
        frames.append(atoms)
    write(files / "stress.extxyz", frames)
    code, err = _run(["fit", str(files / "stress.extxyz"), "-o", str(files / "s.kpot"), "--gap", GAP, "--quiet"],
                     capsys)
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kernelpot fit: warning: stress/virial data found but not used")


def test_debug_shows_the_traceback(files, capsys):
    code, err = _run(["fit", str(files / "empty.extxyz"), "-o", str(files / "out.kpot"), "--debug"], capsys)
    assert code == 2 and "Traceback (most recent call last)" in err and "is empty" in err.splitlines()[-1]


def test_console_command_exit_code_and_stderr(files):
    """The installed entry point behaves the same in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-m", "kernelpot.cli", "md", str(files / "cu.kpot"),
                             str(files / "train.extxyz"), "--frame", "99"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"kernelpot md: error: '{files / 'train.extxyz'}' has 3 frame(s); frame 99 is past the end"]


def test_truncated_model_file(files, capsys):
    bad = files / "truncated.kpot"
    data = (files / "cu.kpot").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    _one_line_error(["evaluate", str(bad), str(files / "train.extxyz"), "--quiet"], capsys,
                    r"'.*truncated.kpot' is not a kernelpot model file \(not a zip archive")
