"""Greedy selection of samples (environments, structures) or features: FPS and CUR.

Names are imported on first use (:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {"FPS": "fps", "CUR": "cur", "SelectionWarning": "_base"}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
