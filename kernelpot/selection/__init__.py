"""Greedy selection of samples (environments, structures) or features: FPS and CUR."""

from ._base import SelectionWarning
from .cur import CUR
from .fps import FPS

__all__ = ["FPS", "CUR", "SelectionWarning"]
