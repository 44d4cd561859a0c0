"""README.md as a new user meets it.

Fast checks: every fenced Python block parses and its imports resolve; every ``kernelpot`` command of a fenced
bash block parses with the real command line and names files that exist; the lines that state facts the code
owns (the default recipe, the scikit-learn pin of the ``peers`` extra, the data's stress convention) say what the
code says. The slow check runs the README top to bottom as a new user would: a copy of the checkout, a fresh
``python -m venv``, every fenced bash block in it (``pip install`` included), every fenced Python block with that
venv's interpreter, in document order (``python -m pytest -m slow tests/test_readme.py``; it downloads the
dependencies and runs the test suite inside, so it takes about half an hour).
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def fenced_blocks(text: str) -> list[tuple[str, str, int]]:
    """``(language, code, line number)`` of every fenced code block, in order."""
    return [(match.group(1).lower(), match.group(2), text.count("\n", 0, match.start()) + 1)
            for match in _FENCE.finditer(text)]


def _blocks(language):
    return [(code, line) for lang, code, line in fenced_blocks(README.read_text()) if lang == language]


def _commands(code: str) -> list[list[str]]:
    """The simple commands of a bash block (split at ``&&``, ``;`` and new lines), as argument lists."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|;", line):
            if part.strip() and not part.strip().startswith("#"):
                commands.append(shlex.split(part))
    return commands


def test_readme_has_the_two_commands_first_and_every_block_is_runnable():
    blocks = fenced_blocks(README.read_text())
    assert [lang for lang, _, _ in blocks[:2]] == ["bash", "bash"]
    assert "kernelpot fit" in blocks[0][1] and "kernelpot evaluate" in blocks[0][1]
    assert "pytest" in blocks[1][1]
    ci = _commands((REPO_ROOT / ".ci" / "run").read_text())
    for command in _commands(blocks[1][1]):  # .ci/run runs exactly the README's test command
        assert command in ci, f".ci/run does not run the README's {shlex.join(command)}"
    # Blocks the slow test would not run must say they are not commands (```text).
    assert {lang for lang, _, _ in blocks} <= {"bash", "python", "text"}


@pytest.mark.parametrize("code, line", [pytest.param(code, line, id=f"README.md:{line}")
                                        for code, line in _blocks("python")])
def test_python_block_parses_and_its_imports_resolve(code, line):
    tree = ast.parse(code, filename=f"README.md:{line}")
    imported = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
                imported += 1
        elif isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                    f"README.md:{line}: `from {node.module} import {alias.name}` does not resolve")
                imported += 1
    assert imported > 0


def _extras() -> set[str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def test_bash_commands_parse_and_name_existing_files():
    from kernelpot.cli import build_parser

    parser, written = build_parser(), set()
    for code, line in _blocks("bash"):
        for command in _commands(code):
            if command[:1] == ["kernelpot"]:
                try:
                    args = parser.parse_args(command[1:])
                except SystemExit:
                    pytest.fail(f"README.md:{line}: {shlex.join(command)} does not parse")
                outputs = {getattr(args, name, None) for name in ("output", "trajectory")}
                for value in vars(args).values():
                    if isinstance(value, Path) and value not in outputs:
                        assert value in written or (REPO_ROOT / value).exists(), (
                            f"README.md:{line}: {value} does not exist and no earlier command writes it")
                written |= outputs - {None}
            elif "pip" in command and "install" in command:
                for spec in command[command.index("install") + 1:]:
                    extras = re.fullmatch(r"\.\[([\w,]+)\]", spec)
                    if extras:
                        assert set(extras.group(1).split(",")) <= _extras(), f"README.md:{line}: unknown extra"


def _paragraph_with(text: str, needle: str) -> str:
    paragraphs = text.split("\n\n")
    return next(p for p in paragraphs if needle in p)


def test_readme_shows_the_default_recipe_as_the_code_builds_it():
    from kernelpot.potential.recipe import DEFAULT_SIGMA, describe_recipe

    text = README.read_text()
    recipe = describe_recipe()
    assert any(code.strip() == recipe for lang, code, _ in fenced_blocks(text) if lang == "text"), (
        "README's default recipe differs from kernelpot.potential.recipe.describe_recipe(); paste its output")
    assert f"virial noise of {DEFAULT_SIGMA[2]:g} eV/atom" in text


def test_readme_says_the_peers_extra_downgrades_scikit_learn():
    text = README.read_text()
    first = min(text.index("[peers]") if "[peers]" in text else len(text), text.index(",peers]"))
    note = _paragraph_with(text[first:], "scikit-learn")
    assert "downgrades scikit-learn" in note and "skmatter" in note
    assert 'pip install -e ".[test]"' in note  # how to test against the newest scikit-learn
    try:
        from importlib.metadata import PackageNotFoundError, requires
        pins = [r for r in requires("skmatter") or [] if r.replace("_", "-").startswith("scikit-learn")]
    except PackageNotFoundError:
        pytest.skip("skmatter is not installed: cannot check its scikit-learn pin")
    upper = re.search(r"<\s*([\d.]+)", pins[0]) if pins else None
    assert upper is not None, f"skmatter no longer caps scikit-learn ({pins}); update the README note"
    assert f"scikit-learn < {upper.group(1)}" in note


def test_readme_stress_flags_for_the_original_mlearn_files_parse():
    from kernelpot.cli import build_parser

    text = README.read_text()
    flags = re.search(r"`(--stress-key virial_stress_kbar[^`]*)`", text)
    assert flags is not None
    args = build_parser().parse_args(["fit", "x.extxyz", *shlex.split(flags.group(1))])
    assert (args.stress_key, args.stress_units, args.stress_sign) == ("virial_stress_kbar", "kbar", "pressure")


def _readme_evaluate_table() -> list[str]:
    """The lines of the README's example output of ``kernelpot evaluate``."""
    (table,) = [code for lang, code, _ in fenced_blocks(README.read_text())
                if lang == "text" and code.startswith("config_type")]
    return table.splitlines()


def test_readme_evaluate_output_has_the_command_s_columns(capsys):
    from kernelpot.cli.evaluate import _print_table
    from kernelpot.potential.metrics import UNITS

    _print_table({"n_structures": 1, "by_config_type": {}, **dict.fromkeys(UNITS, 0.0)})
    printed = capsys.readouterr().out.splitlines()
    shown = _readme_evaluate_table()
    assert shown[:3] == printed[:3] and shown[-1] == printed[-1]
    assert "meV/struct" in shown[1] and "meV/atom" in shown[1]  # energies per atom and per structure


# --------------------------------------------------------------------------------------------- slow
def _checkout_copy(target: Path) -> None:
    """The files a clone would have (tracked and new, not ignored) copied to ``target``."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                            capture_output=True, check=False)
    if listed.returncode != 0:  # not a git checkout (an sdist): everything but caches
        shutil.copytree(REPO_ROOT, target, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info",
                                                                          "*.kpot", "build"))
        return
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO_ROOT / name
        if source.is_symlink():  # kept a link, as a clone keeps it (kernelpot/data -> ../data: the bundled data)
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(source), target / name)
        elif source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.mark.slow
def test_readme_top_to_bottom_in_a_fresh_venv():
    # Its own folder, not pytest's tmp_path: other pytest sessions prune old tmp_path folders, and this
    # test runs for half an hour. Kept when the test fails, to look at the logs.
    tmp_path = Path(tempfile.mkdtemp(prefix="kernelpot-readme-"))
    _run_readme(tmp_path)
    shutil.rmtree(tmp_path, ignore_errors=True)


def _run_readme(tmp_path: Path) -> None:
    # The copy must not be called "kernelpot": a folder of that name next to the block scripts would be
    # imported instead of the installed package.
    checkout, venv, scripts = tmp_path / "checkout", tmp_path / "venv", tmp_path / "blocks"
    scripts.mkdir()
    _checkout_copy(checkout)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    for index, (language, code, line) in enumerate(fenced_blocks(README.read_text())):
        if language == "bash":
            command = ["bash", "-e", "-o", "pipefail", "-c", code]
        elif language == "python":
            script = scripts / f"readme_block_{index}.py"
            script.write_text(code)
            command = [str(venv / "bin" / "python"), str(script)]
        else:
            continue
        log = scripts / f"readme_block_{index}.log"
        with open(log, "w") as handle:
            status = subprocess.run(command, cwd=checkout, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                    check=False).returncode
        output = log.read_text()
        print(f"--- README.md:{line} ({language}) exit {status}\n{output[-3000:]}", flush=True)
        assert status == 0, (f"README.md:{line} ({language}) failed with exit code {status} (logs in {scripts}):"
                             f"\n{output[-3000:]}")
        if index == 0:  # the main job: its errors are the ones the README shows
            _check_main_job_errors(output)


def _all_row(lines) -> list[float]:
    row = next(line for line in lines if line.startswith("all "))
    return [float(value) for value in row.split()[1:]]


def _check_main_job_errors(output: str) -> None:
    """The fresh run's overall errors agree with the README's table to 3 % (BLAS and thread counts differ)."""
    shown, measured = _all_row(_readme_evaluate_table()), _all_row(output.splitlines())
    assert measured[0] == shown[0]  # structures
    for name, a, b in zip(["E RMSE", "E MAE", "E RMSE/struct", "E MAE/struct", "F RMSE", "F MAE", "S RMSE"],
                          measured[1:], shown[1:]):
        assert abs(a - b) <= 0.03 * abs(b) + 0.01, f"main job {name}: {a} here, README says {b}"
