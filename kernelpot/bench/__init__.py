"""One command that measures kernelpot against every installed peer code (``kernelpot bench``).

Each case runs kernelpot and a peer (dscribe, qmllib, skmatter, scikit-learn,
QUIP's ``gap_fit``) in the same process, or in sibling subprocesses measured the
same way, on the same inputs, and returns :class:`~kernelpot.bench.results.Row`
objects; :mod:`kernelpot.bench.runner` writes them to ``benchmarks/RESULTS.md``.
The detailed, per-topic scripts live in the repository's ``benchmarks/`` folder
and time with the same helper, :mod:`kernelpot.bench.timing`. Names are imported
on first use (:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "measure": "timing",
    "best_time": "timing",
    "Timing": "timing",
    "Row": "results",
    "CASES": "runner",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
