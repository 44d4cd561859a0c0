"""Helpers shared by every kernelpot package: lazy exports, JSON conversion, ASE shims, memory sizes, estimators,
atomic files, a Cholesky factor that is safe at large sizes."""

from .lazy import lazy_exports

_EXPORTS = {
    "lazy_exports": "lazy",
    "Estimator": "estimators",
    "jsonable": "jsonable",
    "thermalize": "ase_compat",
    "parse_memory": "memory",
    "resident_bytes": "memory",
    "reset_fitted": "estimators",
    "atomic_write": "files",
    "cholesky": "linalg",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
