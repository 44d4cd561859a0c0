"""Estimator conventions shared by kernelpot's models (scikit-learn's): ``fit`` starts from nothing learned."""

from __future__ import annotations

__all__ = ["reset_fitted"]


def reset_fitted(estimator) -> None:
    """Delete every learned attribute of ``estimator``: the instance attributes whose names end in ``_``.

    Parameters whose name ends in ``_`` (``SymmetryAdaptedGPR(lambda_=1)``:
    ``lambda`` is a Python keyword) are kept.

    Every ``fit`` calls it once its parameters and inputs are checked, so that
    nothing learned before (a FITC factor, a recalibration scale or floor, the
    sparse-GPR attributes of a dense fit, ...) survives a refit: a refit
    equals a fit of a fresh estimator with the same parameters.
    """
    parameters = set(estimator.get_params(deep=False)) if hasattr(estimator, "get_params") else set()
    for name in [name for name in vars(estimator)
                 if name.endswith("_") and not name.startswith("__") and name not in parameters]:
        delattr(estimator, name)
