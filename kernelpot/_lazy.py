"""Lazy package exports (PEP 562): a name's module is imported on first use.

Start-up time is part of the interface: ``from kernelpot.descriptors import
SOAP`` should load SOAP's modules, not every descriptor's and model's.
"""

from __future__ import annotations

import importlib


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
