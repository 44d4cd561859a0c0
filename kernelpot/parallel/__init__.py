"""Parallel and distributed execution of independent blocks of work, and progress bars."""

from .blocks import check_scheduler, dask_client, map_ordered
from .progress import progress, progress_bar

__all__ = ["map_ordered", "check_scheduler", "dask_client", "progress", "progress_bar"]
