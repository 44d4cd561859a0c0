"""Uncertainty of kernelpot models: calibration, committees, novelty (import from the submodules)."""
