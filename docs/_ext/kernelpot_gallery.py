"""Sphinx extension: the gallery of ``examples/``, with their stored plots.

The examples fit real models on real data and take minutes, too long for a
docs build, so they are not executed here (sphinx-gallery's model). Each
example gets a page: its docstring (what it does, the data, the units), the
command that runs it, the figures it wrote when last run (stored in
``docs/gallery_output/<example>/``: the figures, and ``output.txt`` with what it
printed; refreshed by running the example) and its full source. The index shows one thumbnail per example.
"""

import ast
from pathlib import Path

SKIP_SUFFIX = "_common"  # helper modules shared by several examples


def _examples(root: Path):
    for path in sorted((root / "examples").rglob("*.py")):
        if path.stem.endswith(SKIP_SUFFIX) or path.name.startswith("_"):
            continue
        yield path


def _page(path: Path, root: Path, out: Path, images: list[Path], printed: Path | None) -> tuple[str, str]:
    doc = ast.get_docstring(ast.parse(path.read_text())) or path.stem
    title, _, body = doc.partition("\n")
    relative = path.relative_to(root).as_posix()
    lines = [title, "=" * len(title), "", body.strip(), "",
             "Run it from the repository root::", "", f"    python {relative} --help", f"    python {relative}", ""]
    if images or printed:
        lines += ["Output of the last stored run", "-" * 29, ""]
        if printed is not None:
            lines += [f".. literalinclude:: /{printed.relative_to(out.parent).as_posix()}", "   :language: text", ""]
        for image in images:
            lines += [f".. image:: /{image.relative_to(out.parent).as_posix()}", f"   :alt: {image.stem}",
                      "   :width: 80%", ""]
    lines += ["Source", "------", "", f".. literalinclude:: /../{relative}", "   :language: python", ""]
    return title, "\n".join(lines)


def write_gallery(app, config=None):
    docs = Path(app.srcdir)
    root = docs.parent
    out = docs / "gallery"
    out.mkdir(exist_ok=True)
    stored = docs / "gallery_output"
    cards = []
    for path in _examples(root):
        name = path.relative_to(root / "examples").with_suffix("").as_posix().replace("/", "_")
        images = sorted((stored / name).glob("*.png")) if (stored / name).is_dir() else []
        printed = stored / name / "output.txt"
        title, text = _page(path, root, out, images, printed if printed.is_file() else None)
        page = out / f"{name}.rst"
        if not page.exists() or page.read_text() != text:
            page.write_text(text)
        cards.append((name, title, images[0] if images else None))
    index = ["Gallery", "=======", "",
             "The examples in ``examples/``: each fits or uses a model on real data. Figures are from the",
             "last stored run of each example (they take minutes, so the docs build does not run them).", "",
             ".. toctree::", "   :maxdepth: 1", ""] + [f"   {name}" for name, _, _ in cards] + [""]
    thumbnails = [(name, image) for name, _, image in cards if image is not None]
    if thumbnails:
        index += ["Figures", "-------", ""]
        for name, image in thumbnails:
            index += [f".. image:: /{image.relative_to(docs).as_posix()}", "   :width: 30%",
                      f"   :target: {name}.html", f"   :alt: {name}", ""]
    text = "\n".join(index)
    if not (out / "index.rst").exists() or (out / "index.rst").read_text() != text:
        (out / "index.rst").write_text(text)


def setup(app):
    app.connect("config-inited", write_gallery)  # before Sphinx lists the source files
    return {"parallel_read_safe": True, "version": "1"}
