"""Every `kernelpot <command> --help` shows every option's default; `fit --help` shows the default recipe."""

import argparse
import re

import pytest

from kernelpot.cli import build_parser
from kernelpot.potential.defaults import DEFAULT_GAP, DEFAULT_SIGMA


def _commands() -> dict:
    parser = build_parser()
    (sub,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return sub.choices


def _option_help(parser, option: str) -> str:
    """The help block of one option as ``--help`` prints it, white space collapsed."""
    (action,) = [a for a in parser._actions if option in a.option_strings]
    return " ".join(parser._get_formatter()._format_action(action).split())


def test_every_command_is_checked():
    assert set(_commands()) == {"fit", "gap_fit", "evaluate", "learning_curve", "md", "bench", "learn", "convert",
                                  "serve"}


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_option_of_every_command_shows_its_default(command):
    parser = _commands()[command]
    options = [a for a in parser._actions if a.option_strings and a.default is not argparse.SUPPRESS]
    assert options
    for action in options:
        block = _option_help(parser, action.option_strings[-1])
        assert "default:" in block, f"kernelpot {command} --help: {action.option_strings[-1]} hides its default"
        if isinstance(action.default, (int, float, str)) and not isinstance(action.default, bool) and action.default:
            shown = re.search(r"default: ([^)]*)\)", block).group(1)
            assert str(action.default) in shown or shown.startswith(("kernelpot", "this", "none")), (
                f"{command} {action.option_strings[-1]}: default {action.default!r} shown as {shown!r}")


def test_md_shows_steps_temperature_and_time_step():
    md = _commands()["md"]
    assert "(default: 1000)" in _option_help(md, "--steps")
    assert "(default: 300.0)" in _option_help(md, "--temperature")
    assert "(default: 1.0)" in _option_help(md, "--timestep")


def test_fit_help_shows_the_default_recipe_and_noise():
    from kernelpot.potential.recipe import describe_recipe

    fit = _commands()["fit"]
    text = fit.format_help()
    assert DEFAULT_GAP in text
    for line in describe_recipe().splitlines():
        assert line in text
    sigma = ",".join(str(value) for value in DEFAULT_SIGMA)
    assert f"(default: {sigma})" in _option_help(fit, "--default-sigma")
    assert fit.parse_args(["train.extxyz"]).default_sigma == list(DEFAULT_SIGMA)
