"""Sphinx configuration of kernelpot's documentation.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (``pip install -e ".[docs]"``);
``tests/test_docs.py`` runs the same build with warnings as errors. The API pages
(``docs/api/``), the CLI page and the gallery pages are generated at build time
from the package's ``__all__`` lists, its argparse parser and ``examples/``, so
they cannot drift from the code; nothing generated is committed.
"""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))  # the checkout's kernelpot, also without an install

import kernelpot  # noqa: E402

project = "kernelpot"
author = "kernelpot developers"
copyright = "kernelpot developers"  # noqa: A001 (Sphinx's own name)
release = version = kernelpot.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "kernelpot_api",
    "kernelpot_cli",
    "kernelpot_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
templates_path = ["_templates"]

# numpydoc renders the docstrings (parameters with units and shapes); autosummary
# writes one page per public object. Class members are listed by the
# autosummary template, not by numpydoc a second time.
autosummary_generate = True
autosummary_imported_members = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_default_options = {"inherited-members": False}
autodoc_typehints = "none"  # the numpydoc sections carry the types, with units and shapes


myst_heading_anchors = 3

try:
    import pydata_sphinx_theme  # noqa: F401

    html_theme = "pydata_sphinx_theme"
    html_theme_options = {"navigation_with_keys": False}
except ImportError:  # the docs build, plainer, with Sphinx's default theme
    html_theme = "alabaster"
html_title = f"kernelpot {version}"
html_static_path = []
