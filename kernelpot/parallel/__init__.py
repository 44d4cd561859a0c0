"""Parallel and distributed execution of independent blocks of work, and progress bars.

Names are imported on first use (:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "map_ordered": "blocks",
    "check_scheduler": "blocks",
    "dask_client": "blocks",
    "n_workers": "blocks",
    "progress": "progress",
    "progress_bar": "progress",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
