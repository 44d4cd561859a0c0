"""Lazy package exports (PEP 562): a name's module is imported on first use.

Every kernelpot package lists its public names in its ``__init__`` the same
way::

    _EXPORTS = {"SOAP": "soap", ...}          # name -> submodule that defines it
    __all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

Lazy rather than eager because start-up time is part of the interface:
``kernelpot evaluate`` or ``from kernelpot.descriptors import SOAP`` should
load what they use, not every descriptor's, model's and peer's imports (each
Numba module and scikit-learn add tenths of a second).
"""

from __future__ import annotations

import importlib

__all__ = ["lazy_exports", "lazy_getattr"]


def lazy_getattr(package: str, exports: dict[str, str], namespace: dict):
    """A module ``__getattr__`` resolving ``exports`` (name → submodule of ``package``) on first use."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    return __getattr__


def lazy_exports(package: str, exports: dict[str, str], namespace: dict):
    """``(__all__, __getattr__, __dir__)`` of a package whose public names are ``exports``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict of str to str
        Public name → submodule (relative to ``package``, dots allowed) that defines it.
    namespace : dict
        The package's ``globals()``; resolved names are cached there.
    """
    names = list(exports)

    def __dir__():
        return sorted(set(namespace) | set(names))

    return names, lazy_getattr(package, exports, namespace), __dir__
