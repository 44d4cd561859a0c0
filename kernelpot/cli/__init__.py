"""The ``kernelpot`` command line: ``fit | gap_fit | evaluate | learning_curve | md | bench | learn``.

One module per command (:mod:`.fit`, :mod:`.gap_fit` — gap_fit's own
``key=value`` command line —, :mod:`.evaluate`, :mod:`.learning_curve`, :mod:`.md`,
:mod:`.bench`, :mod:`.learn`), each with ``add_parser(subparsers)`` and
``run(args)``; options shared between commands (label keys, the model and its
memory, seeds, ``--quiet``) are defined once in :mod:`.options`, with the same
defaults everywhere. :func:`main` is the console entry point. Names are
imported on first use (:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {"main": "parser", "build_parser": "parser"}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
