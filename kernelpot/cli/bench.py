"""``kernelpot bench``: benchmark kernelpot against every installed peer code (see :mod:`kernelpot.bench`)."""

from __future__ import annotations

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    from ..bench import runner  # light: imports peers only when run

    bench = sub.add_parser("bench", help="benchmark kernelpot against every installed peer code; writes RESULTS.md")
    runner.add_arguments(bench)
    bench.set_defaults(handler=runner.run)
