"""``kernelpot learn``: a pool run from an extxyz file with stored labels, resumed by the same command."""

import json

import ase.io
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from kernelpot.active.checkpoint import Checkpoint
from kernelpot.cli import main

GAP = ("{distance_2b cutoff=4.0 n_sparse=8 delta=1.0 theta_uniform=0.5 sparse_method=uniform : "
       "soap l_max=2 n_max=3 atom_sigma=0.5 cutoff=4.0 delta=0.1 zeta=2 n_sparse=20 sparse_method=cur}")


def _write_pool(path, n, seed0):
    frames = []
    for s in range(n):
        atoms = bulk("Cu", "fcc", a=3.58 + 0.01 * (s % 5), cubic=True)
        atoms.rattle(0.05, seed=seed0 + s)
        work = atoms.copy()
        work.calc = EMT()
        atoms.calc = SinglePointCalculator(atoms, energy=work.get_potential_energy(), forces=work.get_forces())
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


def test_learn_pool_resumes(tmp_path, capsys):
    _write_pool(tmp_path / "pool.extxyz", 8, 0)
    _write_pool(tmp_path / "test.extxyz", 3, 100)
    args = ["learn", str(tmp_path / "run"), "--pool", str(tmp_path / "pool.extxyz"), "--validation",
            str(tmp_path / "test.extxyz"), "--gap", GAP, "--strategy", "distance", "--batch-size", "2",
            "--default-sigma", "0.002,0.05,0.05", "--quiet"]
    assert main(args + ["--budget", "4"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["n_labelled"] == 4 and first["oracle_calls"] == 4  # the 2 initial labels count
    assert first["validation"]["forces_rmse"] > 0
    assert main(args + ["--budget", "6"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["n_labelled"] == 6 and second["oracle_calls"] == 6
    labelled = Checkpoint(tmp_path / "run").load_labelled()
    keys = [a.info["active_key"] for a in labelled]
    assert len(set(keys)) == len(keys) == 6


def test_learn_errors(tmp_path, capsys):
    _write_pool(tmp_path / "pool.extxyz", 3, 0)
    assert main(["learn", str(tmp_path / "run"), "--gap", GAP, "--quiet"]) == 2
    assert "exactly one of --pool FILE and --md FILE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:  # refused by the parser
        main(["learn", str(tmp_path / "run"), "--pool", str(tmp_path / "pool.extxyz"), "--gap", GAP,
              "--budget", "0", "--quiet"])
    assert raised.value.code == 2
    assert "argument --budget: must be an integer >= 1; got '0'" in capsys.readouterr().err
    assert main(["learn", str(tmp_path / "run2"), "--md", str(tmp_path / "pool.extxyz"), "--gap", GAP, "--quiet"]) == 2
    assert "--md needs a real oracle" in capsys.readouterr().err
