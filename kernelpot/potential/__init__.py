"""GAP potentials: fitting recipe, ASE calculator, model files."""

from .calculator import GAPCalculator
from .serialization import load_model, save_model

__all__ = ["GAPCalculator", "load_model", "save_model"]
