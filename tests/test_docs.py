"""The documentation builds with warnings as errors, and its generated pages cover the package.

The same build as ``python -m sphinx -W -b html docs docs/_build/html`` (docs/installation.md), into a
temporary folder. Sphinx, numpydoc and myst-parser are in the ``test`` extra: a broken docstring fails here.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import kernelpot

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    doctrees = tmp_path_factory.mktemp("doctrees")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                             "-d", str(doctrees), str(ROOT / "docs"), str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, f"sphinx -W failed:\n{result.stderr[-5000:]}"
    return out


def _text(path: Path) -> str:
    return re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))


def test_every_everyday_name_has_an_api_page(html):
    index = (html / "api" / "index.html").read_text(encoding="utf-8")
    missing = [name for name in kernelpot.__all__ if name != "__version__" and f">{name}<" not in index]
    assert not missing, f"everyday names without an API entry: {missing}"
    page = _text(html / "api" / "generated" / "kernelpot.models.SparseGPR.html")
    assert "Parameters" in page and "default_sigma" in page and "eV" in page  # numpydoc rendered the sections


def test_cli_page_is_the_parser(html):
    from kernelpot.cli.parser import _COMMANDS

    page = _text(html / "cli.html")
    for command in _COMMANDS:
        name = command.__name__.rsplit(".", 1)[-1]
        assert f"kernelpot {name}" in page, f"CLI page lacks `kernelpot {name}`"
    assert "--config-type-sigma" in page and "at_file" in page


def test_every_example_is_in_the_gallery(html):
    examples = [p for p in (ROOT / "examples").rglob("*.py") if not p.stem.endswith("_common")]
    pages = {p.stem for p in (html / "gallery").glob("*.html")}
    for path in examples:
        name = path.relative_to(ROOT / "examples").with_suffix("").as_posix().replace("/", "_")
        assert name in pages, f"{path} has no gallery page"
    for folder in sorted(p for p in (ROOT / "docs" / "gallery_output").glob("*") if p.is_dir()):
        assert folder.name in pages, f"stored output {folder} belongs to no example"
        n_stored = len(list(folder.glob("*.png")))
        n_shown = (html / "gallery" / f"{folder.name}.html").read_text(encoding="utf-8").count("<img ")
        assert n_shown == n_stored, f"{folder.name}: {n_stored} stored figures, {n_shown} shown"
