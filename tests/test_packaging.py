"""kernelpot as an installable package: true requirements, data inside the wheel, and the wheel itself.

The fast checks read ``pyproject.toml`` and the source: every bundled file the code opens is declared package
data, every third-party import is a declared dependency (or, when imported only where it is used, belongs to an
extra). The wheel test builds a wheel, installs it into a fresh virtual environment and runs kernelpot from a
folder outside the checkout.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "kernelpot"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"sklearn": "scikit-learn", "torchpme": "torch-pme", "quippy": "quippy-ase", "torch": "torch-pme"}


def _requirement_name(requirement: str) -> str:
    for separator in "<>=!~;[ ":
        requirement = requirement.split(separator)[0]
    return requirement.lower()


def _package_data_patterns() -> list[str]:
    return PYPROJECT["tool"]["setuptools"]["package-data"]["kernelpot"]


def _python_files():
    return [path for path in PACKAGE.rglob("*.py") if "data" not in path.relative_to(PACKAGE).parts[:1]]


def _data_path_calls():
    """(file, line, parts) of every ``data_path("a", "b")`` call with literal arguments in kernelpot/."""
    calls = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "data_path":
                parts = [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
                if len(parts) == len(node.args) and parts:
                    calls.append((path.relative_to(REPO), node.lineno, parts))
    return calls


def test_every_bundled_file_the_code_opens_is_package_data():
    calls = _data_path_calls()
    assert {tuple(parts[:1]) for _, _, parts in calls} >= {("water_density",), ("mlearn_si",)}
    patterns = _package_data_patterns()
    for where, line, parts in calls:
        target = REPO / "data" / Path(*parts)
        assert target.exists(), f"{where}:{line} opens data/{'/'.join(parts)}, which does not exist"
        files = [target] if target.is_file() else [p for p in target.rglob("*") if p.is_file()]
        for file in files:
            relative = "data/" + file.relative_to(REPO / "data").as_posix()
            assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), (
                f"{where}:{line} opens {relative}, which no [tool.setuptools.package-data] pattern ships")


def test_the_code_reaches_bundled_data_only_through_data_path():
    offenders = []
    for path in _python_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if ('"data"' in line or "'data'" in line) and ("parents[" in line or "__file__" in line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "use kernelpot.datasets.data_path, which works in an installed wheel:\n" + "\n".join(
        offenders)


def test_the_package_data_folder_is_the_repository_data_folder():
    assert (PACKAGE / "data").resolve() == (REPO / "data").resolve()
    from kernelpot.datasets import data_path

    assert data_path("mlearn_si", "mlearn_Si_test.extxyz").is_file()
    with pytest.raises(FileNotFoundError, match=r"bundled data file 'nothing/here.xyz' not found"):
        data_path("nothing", "here.xyz")


def _imports():
    """(import root, module level?) of every third-party import in kernelpot/."""
    found = set()
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                if root not in sys.stdlib_module_names and root != "kernelpot":
                    found.add((root, node.col_offset == 0, str(path.relative_to(REPO))))
    return found


def test_every_import_is_a_declared_requirement():
    required = {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    optional = {_requirement_name(r) for extra in PYPROJECT["project"]["optional-dependencies"].values()
                for r in extra}
    for root, module_level, where in _imports():
        name = DISTRIBUTIONS.get(root, root).lower()
        if module_level:
            assert name in required, f"{where} imports {root} at module level; it must be in [project] dependencies"
        else:
            assert name in required | optional, f"{where} imports {root}, which no dependency or extra declares"


def test_dscribe_is_an_extra_named_in_the_adapters_error(monkeypatch):
    assert "dscribe" not in {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert any(_requirement_name(r) == "dscribe" for r in PYPROJECT["project"]["optional-dependencies"]["dscribe"])
    from kernelpot.descriptors.dscribe_adapter import DscribeDescriptor

    monkeypatch.setitem(sys.modules, "dscribe", None)
    with pytest.raises(ImportError, match=r"pip install 'kernelpot\[dscribe\]'"):
        DscribeDescriptor(object()).transform([])


def test_resident_memory_comes_from_psutil():
    import psutil

    from kernelpot.utils.memory import resident_bytes

    assert abs(resident_bytes() - psutil.Process().memory_info().rss) < 64 * 2**20


def test_ruff_configuration_is_the_one_in_pyproject():
    stray = [name for name in ("ruff.toml", ".ruff.toml", "setup.cfg", "tox.ini", ".flake8") if (REPO / name).exists()]
    assert not stray, f"lint configuration belongs in pyproject.toml only; found {stray}"
    assert "ruff check" in (REPO / ".ci" / "run").read_text()


def _build_isolation():
    """pip's build-isolation flags: none (reuse this interpreter's setuptools, nothing downloaded) when it meets
    pyproject's build requirements, else pip's default isolated build (a fresh ``python -m venv`` ships
    setuptools 65, older than the PEP 639 license field needs)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    for requirement in map(Requirement, PYPROJECT["build-system"]["requires"]):
        try:
            if version(requirement.name) not in requirement.specifier:
                return []
        except PackageNotFoundError:
            return []
    return ["--no-build-isolation"]


def _run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    """A wheel of this checkout, installed into a fresh virtual environment, finds its data from anywhere.

    The environment sees the current interpreter's site-packages for the dependencies (numpy, numba, ...)
    so nothing is downloaded; kernelpot itself must come from the wheel, not from the checkout.
    """
    # Built from a copy, as from a fresh clone: no build/ or egg-info of the checkout is reused or left behind.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", "_build", ".benchmarks", "*.kpot", "tmp"))
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *_build_isolation(), "-q", "-w", str(wheels),
          str(source)], cwd=tmp_path)
    (wheel,) = wheels.glob("kernelpot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("kernelpot/data/water_density/train.npz", "kernelpot/data/mlearn_si/mlearn_Si_test.extxyz",
                   "kernelpot/data/README.md", "kernelpot/cli/gap_fit.py"):
        assert needed in names, f"{needed} is not in the wheel"
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "examples/")) or n.endswith("to_ase_stress.py")]
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    # --ignore-installed: the kernelpot of the outer environment (an editable checkout) is visible from here
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", str(wheel)])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    script = (
        "import kernelpot, pathlib, sys\n"
        "assert pathlib.Path(kernelpot.__file__).is_relative_to(sys.prefix), kernelpot.__file__\n"
        "from kernelpot.datasets import load_water_density, data_path\n"
        "train, test = load_water_density()\n"
        "print(len(train), len(test))\n"
        "from ase.io import read\n"
        "print(len(read(data_path('mlearn_si', 'mlearn_Si_test.extxyz'), ':')))\n"
    )
    assert _run([python, "-c", script], cwd=outside, env=env).split() == ["43", "22", "25"]
    kernelpot = venv / ("Scripts" if os.name == "nt" else "bin") / "kernelpot"
    assert "gap_fit" in _run([kernelpot, "--help"], cwd=outside, env=env)
