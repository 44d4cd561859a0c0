"""Saving and loading fitted models: :class:`~kernelpot.models.gap.SparseGPR` in its GAP layout, any other
kernelpot estimator through :mod:`kernelpot.potential.estimator_file`.

The model goes into a ``.kpot`` file (:mod:`kernelpot.potential.model_file`):
the header records, for every term, the descriptor and covariance classes
with their hyperparameters and the term's energy scale ``delta`` (eV); the
arrays hold the sparse points, their cutoff weights, the coefficients and
the factors needed for predictive variances. Only classes listed in
:data:`_CLASSES` can be named by a file, so loading never imports or runs
arbitrary code; files written before the covariances were renamed
(``SquaredExponential(theta)``, ``NormalisedDotProduct``) load through
:data:`_RENAMED`. A model with a ``baseline`` (a fixed-charge Coulomb model,
:class:`~kernelpot.potential.coulomb_baseline.CoulombBaseline`, or learned kQEq
charges, :class:`~kernelpot.models.charges.KernelChargeEquilibration`) stores its
description in the header (``"baseline"``, format version 2) and, for kQEq, its
arrays as ``baseline_*``; loading rebuilds it, so the loaded model (and a
calculator or ``kernelpot evaluate``/``md`` using it) predicts baseline + GAP as
the saved one did.
"""

from __future__ import annotations

import importlib
import inspect

import numpy as np
from ase.data import chemical_symbols

from ..descriptors import CentreSpecies
from ..descriptors.distance_2b import Distance2B
from ..descriptors.soap import SOAP
from ..kernels import GaussianCovariance, LinearCovariance, NormalizedDotProductCovariance
from ..models.gap import FittedTerm, GAPTerm, SparseGPR
from ..utils.jsonable import jsonable
from .core_repulsion import BaselineSum, CoreRepulsion, HydrogenBondWall, LennardJones, PairBarrier, UnbridgedPairWall
from .coulomb_baseline import CoulombBaseline
from .estimator_file import ESTIMATOR_KIND, load_estimator, save_estimator
from .model_file import ModelFileError, load_model_file, save_model_file

__all__ = ["save_model", "load_model"]

_MODEL_KIND = "SparseGPR"
#: Classes a file can name. An entry may be a ``"module:Class"`` path, imported only when a file names it
#: (LODE loads the electrostatics engine, which a SOAP model never needs at start-up).
_CLASSES = {cls.__name__: cls for cls in (SOAP, Distance2B, CentreSpecies, GaussianCovariance,
                                          NormalizedDotProductCovariance, LinearCovariance)}
_CLASSES["LODE"] = "kernelpot.descriptors.lode:LODE"
_CLASSES["Angle3B"] = "kernelpot.descriptors.angle_3b:Angle3B"
# Class names written by kernelpot 0.1.0 before the GAP covariances moved to kernelpot.kernels and took the
# naming scheme of the vector kernels: old name -> (class, {old parameter: new parameter}).
_RENAMED = {
    "SquaredExponential": (GaussianCovariance, {"theta": "sigma"}),
    "NormalisedDotProduct": (NormalizedDotProductCovariance, {}),
}
#: Baselines a file can name (``header["baseline"]["kind"]``): loading builds only these.
#: A learned baseline (kQEq) also stores its descriptor and kernel in the header and its arrays as
#: ``baseline_<name>`` (``baseline.arrays()``), and is rebuilt by ``from_dict(spec, arrays, descriptor=, kernel=)``.
#: kQEq is named by module path and imported only when a file holds one (it loads the electrostatics).
#: ``"sum"`` (:class:`BaselineSum`) holds a list of fixed baselines of the other kinds.
_BASELINES = {"coulomb": CoulombBaseline, "kqeq": "kernelpot.models.charges:KernelChargeEquilibration",
              "core_repulsion": CoreRepulsion, "pair_barrier": PairBarrier, "lennard_jones": LennardJones,
              "hydrogen_bond_wall": HydrogenBondWall, "unbridged_pair_wall": UnbridgedPairWall,
              "sum": BaselineSum}


def _resolve(entry):
    """A registry entry as a class: itself, or the class a ``"module:Class"`` path names (imported now)."""
    if isinstance(entry, str):
        module, name = entry.split(":")
        entry = getattr(importlib.import_module(module), name)
    return entry


def _baseline_class(kind):
    return _resolve(_BASELINES[kind])
_MODEL_PARAMS = ("default_sigma", "config_type_sigma", "sigma_per_atom", "e0", "jitter", "solver")


def _describe(obj) -> dict:
    name = type(obj).__name__
    if name not in _CLASSES:
        raise TypeError(f"cannot save a model that uses {name}; savable classes: {sorted(_CLASSES)}")
    names = [p for p in inspect.signature(type(obj).__init__).parameters if p != "self"]
    params = {p: getattr(obj, p) for p in names}
    # a parameter that is itself an estimator (CentreSpecies wraps a SOAP) is described the same way
    return {"class": name, "params": {p: _describe(v) if hasattr(v, "get_params") else jsonable(v)
                                      for p, v in params.items()}}


def _build(spec: dict, path) -> object:
    name = spec.get("class")
    cls, renamed = _RENAMED.get(name, (_CLASSES.get(name), {}))
    cls = _resolve(cls)
    if cls is None:
        raise ModelFileError(f"{str(path)!r} names an unknown class {name!r}; known: {sorted(_CLASSES)}")
    params = {renamed.get(p, p): _build(v, path) if isinstance(v, dict) and "class" in v else v
              for p, v in spec.get("params", {}).items()}
    return cls(**params)


def save_model(model, path, *, metadata: dict | None = None):
    """Write a fitted model to ``path`` (``.kpot``), atomically and without pickles.

    A ``SparseGPR`` (and its subclasses: an ``IncrementalSparseGPR`` loads as
    the ``SparseGPR`` it predicts as, ``IncrementalSparseGPR.from_model`` makes
    it incremental again) is written in the GAP layout that the calculator,
    ``kernelpot evaluate`` and ``kernelpot md`` read; every other
    kernelpot estimator (``KernelRidge``, ``GaussianProcessRegressor``,
    ``SymmetryAdaptedGPR``, ``TensorRegressor``, ``DensityModel``,
    ``CommitteeSparseGPR``, ``FPS``, ``CUR``) with its complete state
    (:mod:`kernelpot.potential.estimator_file`). :func:`load_model` reads both.

    Parameters
    ----------
    model : SparseGPR or kernelpot estimator
        A fitted model.
    path : str or Path
    metadata : dict, optional
        Extra JSON-serialisable information kept in the header (training
        file, units, calibration, ...).
    """
    if not isinstance(model, SparseGPR):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(model)  # NotFittedError (a ValueError) names the estimator
        return save_estimator(model, path, metadata=metadata)
    if not hasattr(model, "alpha_"):
        raise ValueError("the model is not fitted; call fit before saving it")
    terms, arrays = [], {}
    for index, term in enumerate(model.terms_):
        terms.append({"descriptor": _describe(term.descriptor), "kernel": _describe(term.kernel),
                      "delta": float(term.delta)})
        arrays[f"term{index}_sparse_X"] = term.sparse_X
        arrays[f"term{index}_sparse_weight"] = term.sparse_weight
        arrays[f"term{index}_alpha"] = term.alpha
    if model.posterior_factor_ is not None:  # None: imported mean-only model (GAP XML), no variances
        arrays["factor_L"] = model.kmm_cholesky_
        arrays["factor_R"] = model.posterior_factor_
    if hasattr(model, "fitc_factor_"):
        arrays["factor_R_fitc"] = model.fitc_factor_
    header = {
        "model": _MODEL_KIND,
        "units": {"energy": "eV", "length": "Å", "forces": "eV/Å", "stress": "eV/Å³"},
        "terms": terms,
        "e0": {str(z): float(e) for z, e in model.e0_.items()},
        "species": sorted(int(z) for z in model.e0_),
        "solver": model.solver,
        "parameters": {p: jsonable(getattr(model, p)) for p in _MODEL_PARAMS},
        "metadata": jsonable(metadata or {}),
    }
    # The fit's block plan: a loaded model then chunks its sums (predict, partial_fit) exactly as the saved one.
    header["memory_estimate"] = {key: float(value) for key, value in getattr(model, "memory_estimate_", {}).items()
                                 if isinstance(value, (int, float, np.number))}
    if hasattr(model, "std_scale_"):
        header["std_scale"] = float(model.std_scale_)  # recalibration of predicted σ
    if getattr(model, "std_floor_", None):
        header["std_floor"] = {key: float(value) for key, value in model.std_floor_.items()}  # σ floors
    if hasattr(model, "auto_choice_"):  # SparseGPR(auto=...): what it chose, every candidate, the plan
        header["auto"] = jsonable({"settings": model.auto.get_params(), "choice": model.auto_choice_,
                                   "table": model.auto_table_, "plan": model.auto_plan_})
    if model.baseline is not None:
        # Format 2: a version-1 reader would drop the baseline and predict the residual alone.
        header["baseline"] = jsonable(model.baseline.to_dict())
        if callable(getattr(model.baseline, "arrays", None)):
            header["baseline"]["descriptor"] = _describe(model.baseline.descriptor)
            header["baseline"]["kernel"] = _describe(model.baseline.kernel_)
            arrays.update({f"baseline_{name}": value for name, value in model.baseline.arrays().items()})
        return save_model_file(path, header, arrays, format_version=2)
    return save_model_file(path, header, arrays, format_version=1)


def _load_baseline(header, arrays, path):
    """The baseline a header describes (None if it has none); an unknown kind is a ModelFileError."""
    spec = header.get("baseline")
    if spec is None:
        return None
    if header.get("format_version", 1) < 2:
        raise ModelFileError(f"{str(path)!r} declares format version 1 but holds a baseline (written by a "
                             "modified kernelpot?)")
    if not isinstance(spec, dict) or spec.get("kind") not in _BASELINES:
        raise ModelFileError(f"{str(path)!r} has a baseline of unknown kind "
                             f"{spec.get('kind') if isinstance(spec, dict) else spec!r}; known: {sorted(_BASELINES)}")
    try:
        if "descriptor" in spec:  # a learned baseline
            own = {name[len("baseline_"):]: value for name, value in arrays.items() if name.startswith("baseline_")}
            return _baseline_class(spec["kind"]).from_dict(spec, own, descriptor=_build(spec["descriptor"], path),
                                                           kernel=_build(spec["kernel"], path))
        return _fixed_baseline(spec)
    except (ValueError, TypeError, KeyError) as error:
        raise ModelFileError(f"{str(path)!r} has an unreadable baseline: {error}") from None


def _fixed_baseline(spec):
    """A fixed (array-free) baseline from its description; a sum's parts the same way."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in _BASELINES or kind == "kqeq":
        raise ValueError(f"unknown fixed baseline kind {kind!r}")
    if kind == "sum":
        return BaselineSum.from_dict(spec, _fixed_baseline)
    return _baseline_class(kind).from_dict(spec)


def load_model(path, *, model_type: type | None = None):
    """Read a model saved by :func:`save_model`; it predicts exactly as the saved one.

    Parameters
    ----------
    path : str or Path
        A ``.kpot`` file.
    model_type : type, optional
        The class the caller needs (e.g. ``SparseGPR`` for a calculator): a
        file holding another model is a :class:`ModelFileError` naming both.

    Returns
    -------
    SparseGPR or kernelpot estimator

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError
        Anything that is not a consistent model file: besides the checks of
        :func:`~kernelpot.potential.model_file.load_model_file`, for a
        SparseGPR unknown classes or hyperparameters, a malformed ``e0``, and
        arrays whose shapes do not fit the terms (sparse points, coefficients
        and factors must agree) or that hold NaN or inf; for another
        estimator a class outside kernelpot or an unreadable state
        (:mod:`kernelpot.potential.estimator_file`).
    """
    header, arrays = load_model_file(path)
    if header.get("model") == ESTIMATOR_KIND:
        model = load_estimator(path, header, arrays)
    else:
        model = _load_sparse_gpr(path, header, arrays)
    if model_type is not None and not isinstance(model, model_type):
        raise ModelFileError(f"{str(path)!r} holds a {type(model).__name__}, not a {model_type.__name__}")
    return model


def _load_sparse_gpr(path, header, arrays) -> SparseGPR:
    where = repr(str(path))
    if header.get("model") != _MODEL_KIND:
        raise ModelFileError(f"{where} holds a {header.get('model')!r} model, not a {_MODEL_KIND}")
    try:
        model = _model_from(header, arrays, path)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise ModelFileError(f"{where} is an incomplete or inconsistent SparseGPR file "
                             f"({type(error).__name__}: {error})") from None
    _check_arrays(model, where)
    return model


def _e0(values, where, name, symbols=False) -> dict:
    """Per-species reference energies of the header: atomic-number keys (or, with ``symbols``, chemical
    symbols, kept as given), finite eV values."""
    if not isinstance(values, dict):
        raise ModelFileError(f"{where}: `{name}` must map atomic numbers to energies (eV); got {values!r}")
    e0 = {}
    for key, value in values.items():
        is_number = isinstance(key, str) and key.isdigit() and 1 <= int(key) <= 118
        if not is_number and not (symbols and key in chemical_symbols[1:]):
            raise ModelFileError(f"{where}: `{name}` has the key {key!r}, which is not an atomic number 1..118"
                                 + (" or a chemical symbol" if symbols else ""))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ModelFileError(f"{where}: `{name}` of Z={key} must be a finite energy (eV); got {value!r}")
        e0[int(key) if is_number else key] = float(value)
    return e0


def _model_from(header, arrays, path) -> SparseGPR:
    where = repr(str(path))
    fitted, specs = [], []
    for index, spec in enumerate(header["terms"]):
        descriptor, kernel = _build(spec["descriptor"], path), _build(spec["kernel"], path)
        term = FittedTerm(descriptor, kernel, float(spec["delta"]), arrays[f"term{index}_sparse_X"],
                          arrays[f"term{index}_sparse_weight"], arrays[f"term{index}_alpha"])
        fitted.append(term)
        specs.append(GAPTerm(descriptor, kernel, delta=term.delta, n_sparse=term.n_sparse))
    params = dict(header["parameters"])
    if isinstance(params.get("e0"), dict):
        params["e0"] = _e0(params["e0"], where, "parameters.e0", symbols=True)
    auto = header.get("auto")
    if auto is not None:
        from ..models.gap import AutoChoice

        # files written before the per-config-type balance chose without it
        settings = {"balance_config_types": False, **auto["settings"]}
        params["auto"] = AutoChoice(**{key: tuple(value) if isinstance(value, list) else value
                                       for key, value in settings.items()})
    model = SparseGPR(specs, baseline=_load_baseline(header, arrays, path), **params)
    model.terms_ = fitted
    model.e0_ = _e0(header["e0"], where, "e0")
    model.alpha_ = np.concatenate([t.alpha for t in fitted])
    # a mean-only model (imported from GAP XML) has neither factor; a kernelpot fit has both
    model.kmm_cholesky_, model.posterior_factor_ = arrays.get("factor_L"), arrays.get("factor_R")
    if (model.kmm_cholesky_ is None) != (model.posterior_factor_ is None):
        raise KeyError("factor_L" if model.kmm_cholesky_ is None else "factor_R")
    model.memory_estimate_ = {"descriptor_gradients_per_atom": 0}
    if isinstance(header.get("memory_estimate"), dict):  # older files have none
        model.memory_estimate_.update({str(k): float(v) for k, v in header["memory_estimate"].items()})
        model.memory_estimate_["descriptor_gradients_per_atom"] = int(
            model.memory_estimate_["descriptor_gradients_per_atom"])
    model.metadata_ = header.get("metadata", {})
    if "std_scale" in header:
        model.std_scale_ = float(header["std_scale"])
    if "std_floor" in header:  # older files have none: no floor
        model.std_floor_ = {str(key): float(value) for key, value in header["std_floor"].items()}
    if "factor_R_fitc" in arrays:
        model.fitc_factor_ = arrays["factor_R_fitc"]
    if auto is not None:
        model.auto_choice_, model.auto_table_, model.auto_plan_ = auto["choice"], auto["table"], auto["plan"]
    return model


def _check_arrays(model, where) -> None:
    """Finite values; shapes that must agree between the terms, the coefficients and the factors."""
    for name, value in [("alpha_", model.alpha_), ("kmm_cholesky_", model.kmm_cholesky_),
                        ("posterior_factor_", model.posterior_factor_)] + [
            (f"term {i} sparse points", t.sparse_X) for i, t in enumerate(model.terms_)]:
        if value is not None and not np.all(np.isfinite(value)):
            raise ModelFileError(f"{where}: {name} holds NaN or inf")
    for index, term in enumerate(model.terms_):
        X, weight, alpha = term.sparse_X, term.sparse_weight, term.alpha
        if X.ndim != 2 or weight.shape != (len(X),) or alpha.shape != (len(X),):
            raise ModelFileError(
                f"{where}: term {index} has sparse points of shape {X.shape}, weights {weight.shape} and "
                f"coefficients {alpha.shape}; expected (m, n_features), (m,) and (m,)")
        try:
            n_features = term.descriptor.n_features  # validates the descriptor's hyperparameters
            term.kernel.diag(X[:1])
            term.kernel(X[:1], X[:1])  # validates the covariance's hyperparameters
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"{where}: term {index} has invalid hyperparameters ({error})") from None
        if X.shape[1] != n_features:
            raise ModelFileError(f"{where}: term {index} has sparse points with {X.shape[1]} features but its "
                                 f"{type(term.descriptor).__name__} gives {n_features}")
    m = len(model.alpha_)
    for name in ("kmm_cholesky_", "posterior_factor_", "fitc_factor_"):
        factor = getattr(model, name, None)
        if factor is not None and factor.shape != (m, m):
            raise ModelFileError(f"{where}: the factor {name} has shape {factor.shape}; the terms have {m} "
                                 f"sparse points, so it must be ({m}, {m})")
