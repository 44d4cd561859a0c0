"""Estimator conventions shared by kernelpot's models (scikit-learn's): the protocol, and ``fit`` starting from
nothing learned.

:class:`Estimator` is the scikit-learn estimator protocol without importing scikit-learn:
``sklearn.base.BaseEstimator`` costs about a second to import (it loads ``scipy.stats`` and pandas when
present), which a ``kernelpot evaluate`` or an MD run loading a model would pay for nothing. Arguments of
``__init__`` are stored under their own names; ``get_params`` / ``set_params`` (``name__sub`` for nested
estimators) and a ``repr`` follow, so ``sklearn.base.clone``, pipelines and grid searches work unchanged.
"""

from __future__ import annotations

import inspect

__all__ = ["Estimator", "reset_fitted"]


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


class Estimator:
    """Base class: hyperparameters are the ``__init__`` arguments, stored under their own names."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Names of the ``__init__`` parameters, sorted (the hyperparameters)."""
        init = cls.__init__
        if init is object.__init__:
            return []
        names = []
        for parameter in inspect.signature(init).parameters.values():
            if parameter.name == "self":
                continue
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(
                    f"{cls.__name__}.__init__ must list its hyperparameters explicitly; "
                    f"got *{parameter.name}"
                )
            names.append(parameter.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict:
        """Hyperparameters as a dict (``deep``: also ``name__sub`` of nested estimators)."""
        params = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                for sub, sub_value in value.get_params(deep=True).items():
                    params[f"{name}__{sub}"] = sub_value
            params[name] = value
        return params

    def set_params(self, **params):
        """Set hyperparameters (``name`` or nested ``name__sub``); returns ``self``."""
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; "
                    f"valid parameters are {sorted(self._get_param_names())}"
                )
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
                valid[name] = value
        for name, sub_params in nested.items():
            valid[name].set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        items = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._get_param_names())
        return f"{type(self).__name__}({items})"
