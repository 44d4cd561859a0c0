"""The ``kernelpot`` command: options shared by commands are defined once, with one set of defaults."""

import pytest

from kernelpot.cli import build_parser, main
from kernelpot.potential.defaults import DEFAULT_SIGMA

SHARED = ("energy_key", "forces_key", "virial_key", "stress_key", "stress_units", "stress_sign", "config_type_key",
          "on_missing", "gap", "default_sigma", "e0", "max_block_memory", "max_memory", "n_jobs", "scheduler",
          "seed", "quiet")


def _defaults(argv):
    args = build_parser().parse_args(argv)
    return {name: getattr(args, name) for name in SHARED}


def test_fit_and_learn_share_options_and_defaults(tmp_path):
    fit = _defaults(["fit", "train.xyz"])
    learn = _defaults(["learn", str(tmp_path / "run")])
    assert fit == learn
    assert fit["default_sigma"] == list(DEFAULT_SIGMA) and fit["e0"] == "average" and fit["seed"] == 0
    assert build_parser().parse_args(["fit", "t.xyz", "--e0", "-1.5"]).e0 == -1.5
    assert build_parser().parse_args(["learn", "run", "--e0", "isolated"]).e0 == "isolated"


def test_bad_input_is_one_line_but_a_type_error_is_a_bug(monkeypatch, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.kpot"), "test.xyz"]) == 2
    assert capsys.readouterr().err.startswith("kernelpot evaluate: error: model file")

    from kernelpot.cli import evaluate

    def broken(args):
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(evaluate, "run", broken)
    with pytest.raises(TypeError, match="unsupported operand"):
        main(["evaluate", "model.kpot", "test.xyz"])
