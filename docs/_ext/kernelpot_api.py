"""Sphinx extension: the API reference pages, written from each package's ``__all__``.

One page per public package (in the order of the pipeline), each an
autosummary table of the package's public names, so a name added to an
``_EXPORTS`` table appears in the reference without editing the docs. A name
exported by several packages (``kernelpot.models.SparseGPR`` and
``kernelpot.models.gap.SparseGPR``) is documented once, on the first page that
lists it; the top-level page links the everyday names to those pages.
"""

import importlib
from pathlib import Path

#: (package, one-line role) in the order structures -> descriptors -> kernels -> models -> applications.
PACKAGES = [
    ("kernelpot.structures", "Structures"),
    ("kernelpot.io", "Reading labelled data"),
    ("kernelpot.symmetry", "Rotations and spherical harmonics"),
    ("kernelpot.descriptors", "Descriptors"),
    ("kernelpot.kernels", "Kernels"),
    ("kernelpot.selection", "Selection of samples (FPS, CUR)"),
    ("kernelpot.models", "Models"),
    ("kernelpot.models.gap", "GAP: sparse GPR of energies, forces and virials"),
    ("kernelpot.tensors", "Cartesian and spherical tensors"),
    ("kernelpot.potential", "Potentials: recipes, model files, ASE calculator"),
    ("kernelpot.electrostatics", "Electrostatics"),
    ("kernelpot.uncertainty", "Uncertainty"),
    ("kernelpot.active", "Active learning"),
    ("kernelpot.density", "Electron densities"),
    ("kernelpot.analysis", "Analysis of trajectories"),
    ("kernelpot.datasets", "Datasets"),
    ("kernelpot.parallel", "Parallel and distributed execution"),
    ("kernelpot.exceptions", "Warnings and exceptions"),
    ("kernelpot.utils", "Shared helpers"),
]


def _page(package: str, names: list[str]) -> str:
    """The page of ``package``: its docstring, then an autosummary table (one generated page per name)."""
    lines = [f"{package}", "=" * len(package), "", f".. automodule:: {package}", "   :no-members:", "",
             f".. currentmodule:: {package}", ""]
    if names:
        lines += [".. autosummary::", "   :toctree: generated/", "   :template: object.rst", ""]
        lines += [f"   {name}" for name in names]
    lines.append("")
    return "\n".join(lines)


def write_api_pages(app, config=None):
    out = Path(app.srcdir) / "api"
    out.mkdir(exist_ok=True)
    documented = {}  # id(object) -> "package.name" of its page
    entries = []
    for package, title in PACKAGES:
        try:
            module = importlib.import_module(package)
        except ImportError:  # a package of another branch (e.g. analysis) not present here
            continue
        names = []
        for name in getattr(module, "__all__", []):
            if name.startswith("_"):
                continue
            obj = getattr(module, name)
            if not callable(obj) and not isinstance(obj, type):
                continue  # constants are described in their package's docstring
            if id(obj) in documented:
                continue
            documented[id(obj)] = f"{package}.{name}"
            names.append(name)
        text = _page(package, names)
        path = out / f"{package}.rst"
        if not path.exists() or path.read_text() != text:  # unchanged pages keep Sphinx's cache
            path.write_text(text)
        entries.append((package, title))
    top = importlib.import_module("kernelpot")
    rows = []
    for name in top.__all__:
        target = documented.get(id(getattr(top, name)))
        if target is not None:
            rows.append(f"   * - :obj:`{name} <{target}>`\n     - ``{target.rsplit('.', 1)[0]}``")
    index = ["API reference", "=============", "",
             "Every public name, one page per package, in the order of the pipeline",
             "(structures → descriptors → kernels → models → applications). Each page is",
             "generated from the package's ``__all__`` and the numpydoc docstrings.", "",
             "Everyday names, also importable from ``kernelpot`` itself", "-" * 58, "",
             ".. list-table::", "   :header-rows: 1", "", "   * - name", "     - documented in", *rows, "",
             "Packages", "--------", "", ".. toctree::", "   :maxdepth: 1", ""]
    index += [f"   {title} <{package}>" for package, title in entries]
    index.append("")
    text = "\n".join(index)
    path = out / "index.rst"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def setup(app):
    app.connect("config-inited", write_api_pages)  # before Sphinx lists the source files
    return {"parallel_read_safe": True, "version": "1"}
