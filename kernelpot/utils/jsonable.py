"""JSON conversion of NumPy values, shared by model files and active-learning checkpoints."""

from __future__ import annotations

import numpy as np

__all__ = ["jsonable"]


def jsonable(value):
    """``value`` with NumPy arrays and scalars turned into lists and Python numbers (recursively)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
