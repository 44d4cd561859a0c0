"""Saving and loading any fitted kernelpot estimator as a ``.kpot`` file, without pickles.

:func:`~kernelpot.potential.serialization.save_model` writes a ``SparseGPR``
in its own layout (terms, sparse points, factors; read by the calculator and
the CLI). Every other estimator — ``KernelRidge``, ``GaussianProcessRegressor``,
``SymmetryAdaptedGPR``, ``TensorRegressor``, ``DensityModel``,
``CommitteeSparseGPR``, ``IncrementalSparseGPR``, ``FPS``/``CUR`` — goes into the
same ``.kpot`` container (:mod:`kernelpot.potential.model_file`: a zip of
``header.json`` and ``.npy`` arrays, written atomically) through this module.

The header's ``"estimator"`` entry is a JSON tree of the estimator's complete
state: each object is ``{"object": "module:QualName", "state": {...}}`` with its
instance attributes (parameters, learned attributes and the private arrays
prediction needs), arrays are references ``{"array": name}`` into the archive,
and lists, tuples and dicts with non-string keys are tagged. Loading rebuilds the
objects with ``cls.__new__`` and their saved attributes, so it runs no
``__init__`` and no code of the file: an object may only be of a class defined
in ``kernelpot`` itself or one of the scikit-learn kernel classes GPR accepts
(:data:`_FOREIGN_CLASSES`); anything else is a :class:`ModelFileError` naming it.
Saving refuses, with the attribute's path, a value it cannot represent (a
function, an open file, an ``ase.Atoms``) instead of writing a file that would not
load.

The state is the instance attributes of the kernelpot version that wrote the
file (recorded in the header); a file from a kernelpot whose estimator has
different attributes loads, and predicts, only if those attributes still mean
the same.
"""

from __future__ import annotations

import importlib

import numpy as np

from .model_file import ModelFileError, load_model_file, save_model_file

__all__ = ["ESTIMATOR_KIND", "save_estimator", "load_estimator"]

#: ``header["model"]`` of a file written by :func:`save_estimator`.
ESTIMATOR_KIND = "estimator"
#: Classes outside kernelpot a file may name: scikit-learn's GP kernels (plain parameters, no code).
_FOREIGN_CLASSES = ("sklearn.gaussian_process.kernels:",)
_SCALARS = (type(None), bool, int, float, str)


def _class_name(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _allowed(name: str) -> bool:
    return name.startswith("kernelpot.") or name.startswith(_FOREIGN_CLASSES)


class _Encoder:
    """Turns an object tree into JSON plus named arrays."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self._seen: dict[int, str] = {}

    def array(self, value: np.ndarray, path: str):
        if value.dtype == object or value.dtype.kind not in "biufcUSM":
            raise TypeError(f"cannot save {path}: an array of dtype {value.dtype} (numbers, strings or datetimes only)")
        name = f"a{len(self.arrays)}"
        self.arrays[name] = value  # memory order kept: BLAS sums a transposed layout in another order
        return {"array": name}

    def encode(self, value, path: str):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, (np.integer,)):
            return {"int": int(value), "dtype": value.dtype.str}
        if isinstance(value, np.floating):
            return {"float": float(value), "dtype": value.dtype.str}
        if isinstance(value, float) and not np.isfinite(value):
            return {"float": repr(value)}  # JSON has no inf/nan
        if isinstance(value, _SCALARS):
            return value
        if isinstance(value, np.ndarray):
            return self.array(value, path)
        if isinstance(value, np.dtype):
            return {"numpy_dtype": value.str}
        if isinstance(value, type):
            if not _allowed(_class_name(value)):
                raise TypeError(f"cannot save {path}: the class {_class_name(value)} (only kernelpot classes)")
            return {"class": _class_name(value)}
        if isinstance(value, np.random.RandomState):
            state = value.get_state(legacy=True)
            return {"random_state": [state[0], self.array(state[1], path), *state[2:]]}
        if isinstance(value, np.random.Generator):
            return {"generator": self.encode(value.bit_generator.state, path)}
        if isinstance(value, slice):
            return {"slice": [value.start, value.stop, value.step]}
        if isinstance(value, list):
            return {"list": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return {"tuple": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, (set, frozenset)):
            return {"set": [self.encode(v, f"{path}{{}}") for v in sorted(value, key=repr)]}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):  # sorted: the order the header's JSON is written in
                return {"dict": {k: self.encode(value[k], f"{path}[{k!r}]") for k in sorted(value)}}
            return {"items": [[self.encode(k, f"{path}.key"), self.encode(v, f"{path}[{k!r}]")]
                              for k, v in value.items()]}
        return self.instance(value, path)

    def instance(self, value, path: str):
        cls = type(value)
        name = _class_name(cls)
        if not _allowed(name) or callable(value) and not hasattr(value, "__dict__"):
            raise TypeError(f"cannot save {path}: a {name} (only kernelpot objects, arrays, numbers, strings "
                            "and containers of them go into a .kpot file)")
        if hasattr(value, "_fields"):  # a NamedTuple: its fields, rebuilt by the constructor
            return {"object": name, "fields": [self.encode(v, f"{path}.{f}") for f, v in zip(value._fields, value)]}
        if id(value) in self._seen:  # the same object twice (e.g. a kernel shared by two terms)
            return {"ref": self._seen[id(value)]}
        state = _instance_state(value, path)
        self._seen[id(value)] = path
        # Keys in sorted order, the order model_file writes (and the decoder reads) the header's JSON in: an
        # object shared by two attributes is written in full where it is first read back, a reference after.
        return {"object": name, "id": path,
                "state": {key: self.encode(state[key], f"{path}.{key}") for key in sorted(state)}}


def _instance_state(value, path: str) -> dict:
    state = {}
    if hasattr(value, "__dict__"):
        state.update(vars(value))
    for cls in type(value).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(value, slot):
                state[slot] = getattr(value, slot)
    if not state and not hasattr(value, "__dict__"):
        raise TypeError(f"cannot save {path}: a {_class_name(type(value))} has no attributes to save")
    return state


class _Decoder:
    def __init__(self, arrays: dict, path):
        self.arrays, self.path = arrays, path
        self._built: dict[str, object] = {}

    def fail(self, message: str):
        raise ModelFileError(f"{str(self.path)!r}: {message}")

    def array(self, node):
        name = node.get("array") if isinstance(node, dict) else None
        if name not in self.arrays:
            self.fail(f"refers to a missing array {name!r}")
        return self.arrays[name]

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not isinstance(node, dict) or len(node) == 0:
            self.fail(f"holds an unreadable value {node!r}")
        if "array" in node:
            return self.array(node)
        if "int" in node:
            return np.dtype(node["dtype"]).type(node["int"])
        if "float" in node:
            value = float(node["float"])
            return np.dtype(node["dtype"]).type(value) if "dtype" in node else value
        if "random_state" in node:
            kind, keys, *rest = node["random_state"]
            state = np.random.RandomState()
            state.set_state((kind, self.array(keys), *rest))
            return state
        if "generator" in node:
            state = self.decode(node["generator"])
            bit_generator = getattr(np.random, str(state.get("bit_generator")), None)
            if bit_generator is None or not isinstance(bit_generator, type):
                self.fail(f"names an unknown bit generator {state.get('bit_generator')!r}")
            generator = bit_generator()
            generator.state = state
            return np.random.Generator(generator)
        if "slice" in node:
            return slice(*node["slice"])
        if "numpy_dtype" in node:
            return np.dtype(node["numpy_dtype"])
        if "class" in node:
            return self.resolve(node["class"])
        if "list" in node:
            return [self.decode(v) for v in node["list"]]
        if "tuple" in node:
            return tuple(self.decode(v) for v in node["tuple"])
        if "set" in node:
            return {self.decode(v) for v in node["set"]}
        if "dict" in node:
            return {k: self.decode(v) for k, v in node["dict"].items()}
        if "items" in node:
            return {_hashable(self.decode(k)): self.decode(v) for k, v in node["items"]}
        if "ref" in node:
            if node["ref"] not in self._built:
                self.fail(f"refers to an object {node['ref']!r} it does not hold")
            return self._built[node["ref"]]
        if "object" in node:
            return self.instance(node)
        self.fail(f"holds an unreadable value with keys {sorted(node)}")

    def instance(self, node):
        cls = self.resolve(node["object"])
        if "fields" in node:
            return cls(*(self.decode(v) for v in node["fields"]))
        value = cls.__new__(cls)
        if "id" in node:
            self._built[node["id"]] = value
        state = {key: self.decode(v) for key, v in node.get("state", {}).items()}
        if hasattr(value, "__dict__"):
            value.__dict__.update({k: v for k, v in state.items() if not _is_slot(cls, k)})
        for key, v in state.items():
            if _is_slot(cls, key):
                object.__setattr__(value, key, v)
        return value

    def resolve(self, name):
        if not isinstance(name, str) or ":" not in name:
            self.fail(f"names an unreadable class {name!r}")
        if not _allowed(name):
            self.fail(f"names the class {name!r}: only kernelpot classes (and scikit-learn's GP kernels) "
                      "can be loaded")
        module, qualname = name.split(":", 1)
        try:
            value = importlib.import_module(module)
            for part in qualname.split("."):
                value = getattr(value, part)
        except (ImportError, AttributeError):
            self.fail(f"names the class {name!r}, which this kernelpot does not have (written by another version?)")
        if not isinstance(value, type):
            self.fail(f"names {name!r}, which is not a class")
        return value


def _is_slot(cls, key) -> bool:
    return any(key in getattr(c, "__slots__", ()) for c in cls.__mro__)


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def save_estimator(estimator, path, *, metadata: dict | None = None):
    """Write a fitted kernelpot estimator to ``path`` (``.kpot``), atomically and without pickles.

    Parameters
    ----------
    estimator : object
        A kernelpot estimator (``KernelRidge``, ``GaussianProcessRegressor``,
        ``SymmetryAdaptedGPR``, ``TensorRegressor``, ``DensityModel``,
        ``CommitteeSparseGPR``, ``IncrementalSparseGPR``, ``FPS``, ``CUR``, ...).
    path : str or Path
    metadata : dict, optional
        JSON-serialisable information kept in the header.

    Returns
    -------
    Path

    Raises
    ------
    TypeError
        If the estimator holds a value a ``.kpot`` file cannot represent
        (the message names the attribute).
    """
    from ..utils.jsonable import jsonable

    encoder = _Encoder()
    tree = encoder.encode(estimator, type(estimator).__name__)
    header = {"model": ESTIMATOR_KIND, "class": _class_name(type(estimator)), "estimator": tree,
              "metadata": jsonable(metadata or {})}
    return save_model_file(path, header, encoder.arrays, format_version=2)


def load_estimator(path, header=None, arrays=None):
    """Read an estimator written by :func:`save_estimator`; it predicts exactly as the saved one.

    Parameters
    ----------
    path : str or Path
    header, arrays : optional
        The file's content when the caller has already read it
        (:func:`~kernelpot.potential.model_file.load_model_file`).

    Returns
    -------
    object
        The estimator, with its parameters and learned attributes.
    """
    if header is None:
        header, arrays = load_model_file(path)
    if header.get("model") != ESTIMATOR_KIND:
        raise ModelFileError(f"{str(path)!r} holds a {header.get('model')!r} model, not a saved estimator")
    decoder = _Decoder(arrays, path)
    try:
        estimator = decoder.decode(header["estimator"])
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, ModelFileError):
            raise
        raise ModelFileError(f"{str(path)!r} is an incomplete or inconsistent estimator file ({error!r})") from None
    if _class_name(type(estimator)) != header.get("class"):
        raise ModelFileError(f"{str(path)!r} declares a {header.get('class')!r} but holds a "
                             f"{_class_name(type(estimator))!r}")
    estimator.metadata_ = header.get("metadata", {})
    return estimator
