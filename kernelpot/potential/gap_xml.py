"""QUIP/GAP XML potential files: run existing GAP models in kernelpot, and write kernelpot models for QUIP.

A GAP potential written by ``gap_fit`` is an XML file (plus one
``<file>.sparseX.<label>`` text file per term holding the sparse points)::

    <label>
      <Potential label=... init_args="IP GAP label=..."/>
      <GAP_params label=... gap_version=...>
        <GAP_data do_core="F"> <e0 Z="14" value="-5.14"/> ... </GAP_data>
        <gpSparse n_coordinate="2">
          <gpCoordinates dimensions=... signal_variance=δ signal_mean=... covariance_type=1|2
                         zeta=... n_sparseX=... sparseX_filename=... sparseX_md5sum=...>
            <theta> ... </theta>  <descriptor>distance_2b cutoff=5 ...</descriptor>
            <sparseX i="1" alpha=... sparseCutoff=.../> ...

:func:`load_gap_xml` turns such a file into a fitted
:class:`~kernelpot.models.gap.SparseGPR` that predicts what quippy's
``Potential`` predicts (energies, forces, stresses), for the terms kernelpot
has: ``distance_2b`` with the ``ard_se`` covariance and ``soap`` (GAP's
``EQUISPACED_GAUSS`` radial basis, normalised, ``dot_product`` covariance),
``Z=``-restricted terms (``add_species=T``), per-species ``e0``. Anything
else — another descriptor or covariance, a non-sparse GP, a core potential
(``IP Sum``/``do_core``), PCA, a non-zero GP mean, GAP options that change the
descriptor (``normalise=F``, ``diagonal_radial``, mixing, ...) — is refused
with a :class:`GapXMLError` that names it: kernelpot never builds a model that
predicts something else than the file.

:func:`save_gap_xml` writes the reverse: a kernelpot ``SparseGPR`` whose terms
are ``Distance2B``/``SOAP(rbf="gap")`` (optionally per centre species) as a
GAP XML with its sparse-point files, which quippy (and LAMMPS ``pair_style
quip``) read.

Conventions bridged here:

* ``distance_2b``: GAP counts each pair in both directions, kernelpot once, so
  kernelpot's ``delta`` is twice GAP's ``signal_variance`` and its weights half
  of GAP's ``alpha`` (the same prior and the same predictions).
* ``soap``: GAP orders the power spectrum by channel pairs ``(ia, jb <= ia)``
  with ``l`` fastest and carries a trailing constant (``covariance_sigma0``,
  0 by default); kernelpot orders by species pair, ``l``, ``n``, ``n'``
  (:func:`gap_soap_columns`) and scales every feature by the same constant,
  which the normalised dot-product kernel does not see.
* GAP's sparse-point files are found next to the XML file (quippy looks in
  the working directory); their MD5 sums are checked as quippy does.
"""

from __future__ import annotations

import hashlib
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..descriptors import CentreSpecies
from ..descriptors.distance_2b import Distance2B
from ..descriptors.soap import SOAP
from ..kernels import GaussianCovariance, NormalizedDotProductCovariance
from ..models.gap import FittedTerm, GAPTerm, SparseGPR
from ..utils.files import atomic_write
from .gap_string import parse_gap_string

__all__ = ["GapXMLError", "gap_soap_columns", "load_gap_xml", "load_potential", "save_gap_xml"]

# gp_predict.F90 covariance codes
_ARD_SE, _DOT_PRODUCT = 1, 2
_COVARIANCE_NAMES = {0: "none", 1: "ard_se", 2: "dot_product", 3: "bond_real_space", 4: "pp"}
# GAP versions (gap_version, a date stamp) that changed the soap descriptor (descriptors.F90):
# the 1/sqrt(2l+1) normalisation of the power spectrum from 1423143769 on, and before 1426512068
# multi-species soap added the centre to every species' density (central_reference_all_species=T).
_SOAP_2L_PLUS_1 = 1423143769
_SOAP_CENTRAL_REFERENCE = 1426512068
#: gap_version written by :func:`save_gap_xml` (that of quippy-ase 0.10.3's gap_fit, whose soap kernelpot equals).
WRITTEN_GAP_VERSION = 1769700636

# gap_fit keys of a term that only steer the fit (the fitted numbers are in the XML attributes).
_FIT_ONLY = {"add_species", "config_type_n_sparse", "covariance_type", "energy_scale", "delta", "f0",
             "lengthscale_factor", "theta_fac", "lengthscale_file", "theta_file", "lengthscale_uniform",
             "theta_uniform", "mark_sparse_atoms", "n_sparse", "print_sparse_index", "soap_exponent", "zeta",
             "sparse_file", "sparse_method", "unique_descriptor_tolerance", "unique_hash_tolerance", "theta",
             "sparse_separate_file", "xml_version"}
# Descriptor keys kernelpot reproduces, with the GAP default of each (a different value of a
# key in _MUST_EQUAL is refused).
_DISTANCE_2B_KEYS = {"cutoff", "cutoff_transition_width", "z1", "z2"}
_DISTANCE_2B_DEFAULTS = {"n_exponents": 1, "exponents": 1, "only_intra": False, "only_inter": False}
_SOAP_KEYS = {"cutoff", "cutoff_transition_width", "l_max", "n_max", "atom_sigma", "atom_gaussian_width",
              "central_weight", "n_species", "species_z", "z", "n_z", "central_reference_all_species"}
_SOAP_DEFAULTS = {"normalise": True, "normalize": True, "average": False, "diagonal_radial": False,
                  "covariance_sigma0": 0.0, "basis_error_exponent": 10.0, "cutoff_dexp": 0,
                  "cutoff_scale": 1.0, "cutoff_rate": 1.0, "radial_basis": "EQUISPACED_GAUSS", "nu_r": 2,
                  "nu_s": 2, "z_mix": False, "r_mix": False, "sym_mix": False, "coupling": True, "k": 0,
                  "mix_shift": 0, "z_map": ""}


class GapXMLError(ValueError):
    """A GAP XML file kernelpot cannot read or reproduce exactly (the message names what)."""


# ----------------------------------------------------------------------------- SOAP feature order
def gap_soap_columns(gap_species, n_max: int, l_max: int) -> np.ndarray:
    """kernelpot's column of every GAP soap feature (GAP's trailing constant excluded).

    Parameters
    ----------
    gap_species : sequence of int
        GAP's ``species_Z`` in the order of the file (its channel order).
    n_max, l_max : int

    Returns
    -------
    ndarray of int, shape (n_features,)
        ``order[j]`` is the column of ``SOAP(sorted(gap_species), ...)``
        holding GAP's feature ``j``: GAP's channels are ``ia = (s, a)`` with
        ``s`` the species' position in ``gap_species``, its features the
        pairs ``jb <= ia`` with ``l`` fastest; kernelpot's are species pairs
        ``Z <= Z'`` (sorted), then ``l``, then ``n``, ``n'`` (``n' >= n`` when
        ``Z = Z'``).
    """
    sorted_species = sorted(int(z) for z in gap_species)
    if len(set(sorted_species)) != len(sorted_species):
        raise GapXMLError(f"soap species_Z lists a species twice: {list(gap_species)}")
    n_species = len(sorted_species)
    column, index = {}, 0
    for s1 in range(n_species):
        for s2 in range(s1, n_species):
            for l in range(l_max + 1):
                for n in range(n_max):
                    for m in range(n, n_max) if s1 == s2 else range(n_max):
                        column[(s1, s2, l, n, m)] = index
                        index += 1
    rank = [sorted_species.index(int(z)) for z in gap_species]
    order = []
    for ia in range(n_species * n_max):
        for jb in range(ia + 1):
            (sa, a), (sb, b) = divmod(ia, n_max), divmod(jb, n_max)
            sa, sb = rank[sa], rank[sb]
            for l in range(l_max + 1):
                if sa == sb:
                    key = (sa, sa, l, min(a, b), max(a, b))
                elif sa < sb:
                    key = (sa, sb, l, a, b)
                else:
                    key = (sb, sa, l, b, a)
                order.append(column[key])
    return np.asarray(order)


# ----------------------------------------------------------------------------- reading
def _float(element, name, where):
    value = element.get(name)
    if value is None:
        raise GapXMLError(f"{where}: attribute {name!r} is missing")
    try:
        return float(value.replace("D", "E").replace("d", "e"))
    except ValueError:
        raise GapXMLError(f"{where}: attribute {name}={value!r} is not a number") from None


def _int(element, name, where):
    value = _float(element, name, where)
    if value != int(value):
        raise GapXMLError(f"{where}: attribute {name}={element.get(name)!r} is not an integer")
    return int(value)


def _bool(text) -> bool:
    return str(text).strip().upper() in {"T", "TRUE", "1", ".TRUE."}


def _numbers(text: str) -> np.ndarray:
    return np.array([float(token.replace("D", "E").replace("d", "e")) for token in (text or "").split()])


def _find_gap_params(root, path, label):
    """The ``GAP_params`` element of the file's GAP (refusing core potentials and sums of potentials)."""
    potentials = root.findall("Potential") + ([root] if root.tag == "Potential" else [])
    for potential in potentials:
        init_args = (potential.get("init_args") or "").strip()
        words = init_args.split()
        if len(words) < 2 or words[0] != "IP" or words[1] != "GAP":
            raise GapXMLError(f"{path}: the potential is {init_args!r}, not a plain GAP ('IP GAP'); kernelpot "
                              "reads GAP terms only (no core/baseline IP, no Sum of potentials)")
        for word in words[2:]:
            key, _, value = word.partition("=")
            if key.lower() == "e_scale" and float(value) != 1.0:
                raise GapXMLError(f"{path}: init_args {init_args!r} rescales energies (E_scale); not supported")
            if key.lower() == "r_scale" and float(value) != 1.0:
                raise GapXMLError(f"{path}: init_args {init_args!r} rescales distances (r_scale); not supported")
            if key.lower() == "label" and label is None:
                label = value
    candidates = root.findall("GAP_params") + ([root] if root.tag == "GAP_params" else [])
    if label is not None:
        candidates = [c for c in candidates if c.get("label") == label]
    if not candidates:
        raise GapXMLError(f"{path}: no GAP_params element" + (f" with label {label!r}" if label else "")
                          + " (is this a QUIP GAP XML file?)")
    if len(candidates) > 1:
        raise GapXMLError(f"{path}: {len(candidates)} GAP_params elements; say which with label=")
    return candidates[0]


def _read_e0(gap_params, path):
    data = gap_params.find("GAP_data")
    if data is None:
        raise GapXMLError(f"{path}: GAP_params has no GAP_data element")
    if _bool(data.get("do_core", "F")):
        raise GapXMLError(f"{path}: the GAP has a core potential (GAP_data do_core=T); kernelpot does not "
                          "reproduce QUIP's core IPs, so it refuses the file rather than drop the core")
    if _bool(data.get("do_pca", "F")):
        raise GapXMLError(f"{path}: the GAP uses PCA of its descriptors (do_pca=T); not supported")
    e0 = {}
    if data.get("e0") is not None:  # old single value for every species
        e0 = {z: _float(data, "e0", f"{path}: GAP_data") for z in range(1, 119)}
    for element in data.findall("e0"):
        e0[_int(element, "Z", f"{path}: e0")] = _float(element, "value", f"{path}: e0")
    return e0


def _sparse_points(coordinates, path, where, n_sparse, dimensions):
    """(n_sparse, dimensions) sparse points from the separate file (MD5 checked) or inline ``sparseX`` text."""
    filename = coordinates.get("sparseX_filename")
    if filename is not None:
        candidates = [Path(path).parent / Path(filename).name, Path(filename)]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise GapXMLError(f"{where}: the sparse-point file {filename!r} is missing (looked for "
                              f"{', '.join(str(c) for c in candidates)}); GAP XML models come with their "
                              "*.sparseX.* files")
        raw = found.read_bytes()
        recorded = (coordinates.get("sparseX_md5sum") or "").strip()
        if len(recorded) == 32 and hashlib.md5(raw).hexdigest() != recorded:
            raise GapXMLError(f"{where}: {found} does not match the MD5 sum recorded in the XML "
                              f"({hashlib.md5(raw).hexdigest()} != {recorded}): wrong or modified file")
        values = _numbers(raw.decode())
    else:
        rows = {}  # older files, or sparse_separate_file=F: each sparseX element holds its point
        for element in coordinates.findall("sparseX"):
            slices = element.findall("sparseX_slice")
            text = " ".join(s.text or "" for s in slices) if slices else (element.text or "")
            rows[_int(element, "i", where)] = _numbers(text)
        values = np.concatenate([rows[i] for i in sorted(rows)]) if rows else np.zeros(0)
    if values.size != n_sparse * dimensions:
        raise GapXMLError(f"{where}: {values.size} sparse-point values, expected n_sparseX × dimensions = "
                          f"{n_sparse} × {dimensions}")
    return values.reshape(n_sparse, dimensions)


def _check_keys(params, known, defaults, name, where):
    for key, value in params.items():
        if key in known or key in _FIT_ONLY:
            continue
        if key in defaults:
            default = defaults[key]
            same = (str(value).upper() == str(default).upper() if isinstance(default, str)
                    else _bool(value) == default if isinstance(default, bool)
                    else np.allclose(np.asarray(value, dtype=float), default))
            if not same:
                raise GapXMLError(f"{where}: {name} option {key}={value!r} is not supported by kernelpot "
                                  f"(only the default {key}={default!r})")
            continue
        raise GapXMLError(f"{where}: {name} option {key!r} (={value!r}) is not supported by kernelpot; "
                          f"understood: {sorted(known | set(defaults))}")


def _as_list(value):
    return [value] if not isinstance(value, list) else value


def _distance_2b_term(params, coordinates, alpha, cutoffs, X, delta, where):
    _check_keys(params, _DISTANCE_2B_KEYS, _DISTANCE_2B_DEFAULTS, "distance_2b", where)
    if int(coordinates.get("covariance_type")) != _ARD_SE:
        raise GapXMLError(f"{where}: distance_2b with covariance "
                          f"{_COVARIANCE_NAMES.get(int(coordinates.get('covariance_type')), '?')!r}; kernelpot "
                          "has distance_2b with ard_se only")
    if X.shape[1] != 1:
        raise GapXMLError(f"{where}: distance_2b with {X.shape[1]} dimensions (expected 1)")
    theta = _numbers(coordinates.findtext("theta"))
    if theta.size != 1 or not theta[0] > 0:
        raise GapXMLError(f"{where}: ard_se needs one length scale theta > 0; got {theta.tolist()}")
    z1, z2 = int(params.get("z1", 0)), int(params.get("z2", 0))
    if (z1 == 0) != (z2 == 0):
        raise GapXMLError(f"{where}: distance_2b with one wildcard species (Z1={z1}, Z2={z2}) is not supported")
    if "cutoff" not in params:
        raise GapXMLError(f"{where}: distance_2b without a cutoff")
    descriptor = Distance2B(cutoff=float(params["cutoff"]),
                            cutoff_transition_width=float(params.get("cutoff_transition_width", 0.5)),
                            Z1=z1 or None, Z2=z2 or None)
    # GAP counts both directions of every pair: twice its delta and half its weights in kernelpot.
    term = FittedTerm(descriptor, GaussianCovariance(float(theta[0])), 2.0 * delta, X, cutoffs, alpha / 2.0)
    species = {z1, z2} - {0}
    return term, species


def _soap_term(params, coordinates, alpha, cutoffs, X, delta, version, where):
    _check_keys(params, _SOAP_KEYS, _SOAP_DEFAULTS, "soap", where)
    if int(coordinates.get("covariance_type")) != _DOT_PRODUCT:
        raise GapXMLError(f"{where}: soap with covariance "
                          f"{_COVARIANCE_NAMES.get(int(coordinates.get('covariance_type')), '?')!r}; kernelpot "
                          "has soap with dot_product only")
    zeta = coordinates.get("zeta")
    zeta = float(zeta) if zeta is not None else float(_numbers(coordinates.findtext("theta"))[0])
    if version < _SOAP_2L_PLUS_1:
        raise GapXMLError(f"{where}: written by GAP version {version}, whose soap lacked the 1/sqrt(2l+1) "
                          f"normalisation (before {_SOAP_2L_PLUS_1}); kernelpot has only the newer soap")
    species = [int(z) for z in _as_list(params.get("species_z", 0))]
    n_species = int(params.get("n_species", 1))
    if len(species) != n_species or 0 in species:
        raise GapXMLError(f"{where}: soap needs species_Z with n_species={n_species} atomic numbers; "
                          f"got species_Z={params.get('species_z')!r}")
    central_all = params.get("central_reference_all_species")
    central_all = _bool(central_all) if central_all is not None else version < _SOAP_CENTRAL_REFERENCE
    if central_all and n_species > 1:
        raise GapXMLError(f"{where}: soap with central_reference_all_species=T (the default before GAP version "
                          f"{_SOAP_CENTRAL_REFERENCE}) adds the centre to every species' density; kernelpot "
                          "adds it to its own species only")
    n_max, l_max = int(params["n_max"]), int(params["l_max"])
    sigma = params.get("atom_sigma", params.get("atom_gaussian_width"))
    if sigma is None or "cutoff" not in params:
        raise GapXMLError(f"{where}: soap without cutoff or atom_sigma")
    order = gap_soap_columns(species, n_max, l_max)
    if X.shape[1] != order.size + 1:
        raise GapXMLError(f"{where}: soap sparse points have {X.shape[1]} values, expected {order.size + 1} for "
                          f"n_max={n_max}, l_max={l_max}, {n_species} species")
    if np.any(X[:, -1] != 0.0):
        raise GapXMLError(f"{where}: soap sparse points carry a non-zero constant (covariance_sigma0); "
                          "not supported")
    points = np.empty((X.shape[0], order.size))
    points[:, order] = X[:, :-1]
    descriptor = SOAP(species=sorted(species), r_cut=float(params["cutoff"]), n_max=n_max, l_max=l_max,
                      sigma=float(sigma), rbf="gap", periodic=True,
                      cutoff_transition_width=float(params.get("cutoff_transition_width", 0.5)),
                      central_weight=float(params.get("central_weight", 1.0)))
    centres = [int(z) for z in _as_list(params.get("z", 0))]
    if centres != [0]:
        if 0 in centres:
            raise GapXMLError(f"{where}: soap Z={params.get('z')!r} mixes the wildcard 0 with species")
        descriptor = CentreSpecies(descriptor, centres if len(centres) > 1 else centres[0])
    if not zeta > 0:
        raise GapXMLError(f"{where}: soap zeta must be > 0; got {zeta}")
    term = FittedTerm(descriptor, NormalizedDotProductCovariance(int(zeta) if zeta == int(zeta) else zeta), delta,
                      points, cutoffs, alpha)
    return term, set(species) | (set(centres) - {0})


def _read_term(coordinates, path, index, version):
    where = f"{path}: gpCoordinates {index} ({coordinates.get('label', '?')})"
    descriptor_text = (coordinates.findtext("descriptor") or "").strip()
    if not descriptor_text:
        raise GapXMLError(f"{where}: no descriptor string")
    try:
        ((name, params),) = parse_gap_string(descriptor_text)
    except ValueError as error:
        raise GapXMLError(f"{where}: unreadable descriptor string {descriptor_text!r} ({error})") from None
    if name not in ("distance_2b", "soap"):
        raise GapXMLError(f"{where}: descriptor {name!r} is not available in kernelpot; it reads distance_2b "
                          "and soap terms")
    if not _bool(coordinates.get("sparsified", "T")):
        raise GapXMLError(f"{where}: a full (non-sparse) GP; kernelpot reads sparse GAP models only")
    if _float(coordinates, "signal_mean", where) != 0.0:
        raise GapXMLError(f"{where}: GP mean (signal_mean/f0) = {coordinates.get('signal_mean')}; only 0 is "
                          "supported")
    if _int(coordinates, "n_permutations", where) != 1:
        raise GapXMLError(f"{where}: {coordinates.get('n_permutations')} permutations; kernelpot's terms have one")
    delta = _float(coordinates, "signal_variance", where)
    n_sparse = _int(coordinates, "n_sparseX", where)
    dimensions = _int(coordinates, "dimensions", where)
    alpha, cutoffs = np.zeros(n_sparse), np.zeros(n_sparse)
    seen = np.zeros(n_sparse, dtype=bool)
    for element in coordinates.findall("sparseX"):
        i = _int(element, "i", where) - 1
        if not 0 <= i < n_sparse or seen[i]:
            raise GapXMLError(f"{where}: sparseX i={i + 1} out of range or repeated")
        seen[i] = True
        alpha[i] = _float(element, "alpha", where)
        cutoffs[i] = _float(element, "sparseCutoff", where)
    if not seen.all():
        raise GapXMLError(f"{where}: {int((~seen).sum())} of n_sparseX={n_sparse} sparse points have no sparseX")
    X = _sparse_points(coordinates, path, where, n_sparse, dimensions)
    if name == "distance_2b":
        return _distance_2b_term(params, coordinates, alpha, cutoffs, X, delta, where)
    return _soap_term(params, coordinates, alpha, cutoffs, X, delta, version, where)


def load_gap_xml(path, *, label=None) -> SparseGPR:
    """Read a QUIP/GAP XML potential as a fitted :class:`~kernelpot.models.gap.SparseGPR`.

    Parameters
    ----------
    path : str or Path
        The ``.xml`` written by ``gap_fit`` (its ``*.sparseX.*`` files next to it).
    label : str, optional
        Which ``GAP_params`` to read when the file holds several.

    Returns
    -------
    SparseGPR
        Fitted: predicts energies (eV), forces (eV/Å), virials and stresses
        equal to quippy's ``Potential(param_filename=path)`` up to round-off.
        It holds no posterior covariance (GAP XML files store the mean only),
        so ``predict(..., return_std=True)`` is refused. ``metadata_`` records
        the source file, its GAP version and gap_fit command line.

    Raises
    ------
    GapXMLError
        The file is not a GAP XML, or holds something kernelpot does not
        reproduce exactly (named in the message).
    FileNotFoundError
        No such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GAP XML file {str(path)!r} does not exist")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise GapXMLError(f"{path}: not a readable XML file ({error})") from None
    gap_params = _find_gap_params(root, path, label)
    version = int(gap_params.get("gap_version", "0") or 0)
    e0 = _read_e0(gap_params, path)
    sparse = gap_params.find("gpSparse")
    if sparse is None:
        if gap_params.find("gpFull") is not None:
            raise GapXMLError(f"{path}: a full GP (gpFull); kernelpot reads sparse GAP models only")
        raise GapXMLError(f"{path}: GAP_params has no gpSparse element")
    terms, species = [], set()
    for index, coordinates in enumerate(sparse.findall("gpCoordinates")):
        term, term_species = _read_term(coordinates, path, index, version)
        terms.append(term)
        species |= term_species
    if not terms:
        raise GapXMLError(f"{path}: the GAP has no terms (gpCoordinates)")
    species |= {z for z, value in e0.items() if value != 0.0}
    if not species:
        raise GapXMLError(f"{path}: no term names its species (distance_2b without Z1/Z2 and all e0 zero); "
                          "kernelpot cannot tell which elements the model covers")
    specs = [GAPTerm(t.descriptor, t.kernel, delta=t.delta, n_sparse=t.n_sparse,
                     sparse_points=t.sparse_X) for t in terms]
    model = SparseGPR(specs, e0={int(z): float(e0.get(z, 0.0)) for z in sorted(species)})
    model.terms_ = terms
    model.e0_ = {int(z): float(e0.get(z, 0.0)) for z in sorted(species)}
    model.alpha_ = np.concatenate([t.alpha for t in terms])
    # GAP XML files hold the mean only: no factors for predictive variances.
    model.kmm_cholesky_, model.posterior_factor_ = None, None
    model.memory_estimate_ = {"descriptor_gradients_per_atom": 0}
    command_line = (gap_params.findtext("command_line") or "").strip()
    model.metadata_ = {"source": "gap_xml", "gap_xml": str(path), "gap_label": gap_params.get("label"),
                       "gap_version": version, "gap_fit_command_line": command_line[:4000]}
    return model


def load_potential(path, *, label=None) -> SparseGPR:
    """A GAP potential from a ``.xml`` (:func:`load_gap_xml`) or a ``.kpot`` file (``load_model``)."""
    if Path(path).suffix.lower() == ".xml":
        return load_gap_xml(path, label=label)
    from .serialization import load_model

    return load_model(path, model_type=SparseGPR)


# ----------------------------------------------------------------------------- writing
def _number(value) -> str:
    return repr(float(value))


def _refuse(where, what):
    raise GapXMLError(f"{where}: {what}; QUIP's GAP has no such term, so the model cannot be written as GAP XML")


def _distance_2b_record(term, where):
    descriptor = term.descriptor
    if not isinstance(term.kernel, GaussianCovariance):
        _refuse(where, f"distance_2b with {type(term.kernel).__name__} (GAP: ard_se, a GaussianCovariance)")
    sigma = np.ravel(np.asarray(term.kernel.sigma, dtype=float))
    if sigma.size != 1:
        _refuse(where, f"distance_2b with {sigma.size} length scales")
    words = [f"distance_2b cutoff={_number(descriptor.cutoff)}",
             f"cutoff_transition_width={_number(descriptor.cutoff_transition_width)}"]
    if descriptor.Z1 is not None:
        z1, z2 = (int(z) for z in (descriptor.Z1, descriptor.Z2))
        words.append(f"Z1={z1} Z2={z2}")
    # kernelpot counts each pair once, GAP twice: half the delta, twice the weights.
    return {"descriptor": " ".join(words), "covariance_type": _ARD_SE, "delta": term.delta / 2.0,
            "alpha": 2.0 * term.alpha, "sparse_X": np.asarray(term.sparse_X, dtype=float), "theta": sigma,
            "zeta": None}


def _soap_record(term, where):
    descriptor, centres = term.descriptor, None
    if isinstance(descriptor, CentreSpecies):
        from ..descriptors.base import species_numbers

        centres = [int(z) for z in species_numbers(descriptor.species, "species")]
        descriptor = descriptor.descriptor
    if not isinstance(descriptor, SOAP):
        _refuse(where, f"a term on {type(descriptor).__name__}")
    if descriptor.rbf != "gap" or descriptor.cutoff_transition_width is None:
        _refuse(where, f"SOAP(rbf={descriptor.rbf!r}, cutoff_transition_width={descriptor.cutoff_transition_width})"
                " (GAP's soap is rbf='gap' with a cosine cutoff_transition_width)")
    if not isinstance(term.kernel, NormalizedDotProductCovariance):
        _refuse(where, f"soap with {type(term.kernel).__name__} (GAP: dot_product, a "
                       "NormalizedDotProductCovariance)")
    if not descriptor.periodic:
        warnings.warn(f"{where}: SOAP(periodic=False) is written as GAP's soap, which honours each structure's "
                      "pbc: the two agree on non-periodic structures only", stacklevel=3)
    species = sorted(int(z) for z in descriptor._species_numbers())
    n_max, l_max = int(descriptor.n_max), int(descriptor.l_max)
    order = gap_soap_columns(species, n_max, l_max)
    points = np.asarray(term.sparse_X, dtype=float)
    if points.shape[1] != order.size:
        raise GapXMLError(f"{where}: sparse points have {points.shape[1]} features, the SOAP {order.size}")
    gap_points = points[:, order] / np.linalg.norm(points, axis=1)[:, None]  # GAP stores normalised rows
    gap_points = np.hstack([gap_points, np.zeros((len(points), 1))])        # covariance_sigma0 = 0
    words = [f"soap cutoff={_number(descriptor.r_cut)}",
             f"cutoff_transition_width={_number(descriptor.cutoff_transition_width)}",
             f"l_max={l_max} n_max={n_max} atom_sigma={_number(descriptor.sigma)}",
             f"central_weight={_number(descriptor.central_weight)}",
             f"n_species={len(species)} species_Z={{{' '.join(str(z) for z in species)}}}"]
    if centres is not None:
        words.append(f"n_Z={len(centres)} Z={{{' '.join(str(z) for z in centres)}}}" if len(centres) > 1
                     else f"Z={centres[0]}")
    zeta = term.kernel.checked_zeta()
    return {"descriptor": " ".join(words), "covariance_type": _DOT_PRODUCT, "delta": term.delta,
            "alpha": np.asarray(term.alpha, dtype=float), "sparse_X": gap_points, "theta": None, "zeta": zeta}


def save_gap_xml(model, path, *, label: str = "GAP_kernelpot") -> list[Path]:
    """Write a fitted ``SparseGPR`` as a QUIP/GAP XML potential (for quippy and LAMMPS ``pair_style quip``).

    Parameters
    ----------
    model : SparseGPR
        Fitted, with terms GAP has: ``Distance2B`` with a scalar
        ``GaussianCovariance`` (``ard_se``), ``SOAP(rbf="gap")`` with a
        ``cutoff_transition_width`` (optionally inside ``CentreSpecies``)
        with ``NormalizedDotProductCovariance`` (``dot_product``), and no
        baseline.
    path : str or Path
        The ``.xml`` to write; each term's sparse points go to
        ``<path>.sparseX.<label><i>`` next to it, as gap_fit does.
    label : str, default="GAP_kernelpot"
        GAP label (the ``label=`` of ``pair_style quip``'s ``IP GAP``).

    Returns
    -------
    list of Path
        The files written (the XML last). Each is written atomically.

    Raises
    ------
    GapXMLError
        A term or baseline QUIP's GAP lacks (LODE, linear covariances,
        learned or fixed charges, dscribe-style SOAP), named in the message.
    """
    path = Path(path)
    if not hasattr(model, "alpha_"):
        raise ValueError("the model is not fitted; fit or load it before writing GAP XML")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", label):
        raise ValueError(f"`label` must be a name of letters, digits and _; got {label!r}")
    if getattr(model, "baseline", None) is not None:
        _refuse(str(path), f"a {type(model.baseline).__name__} baseline (charges)")
    records = []
    for index, term in enumerate(model.terms_):
        where = f"term {index}"
        if isinstance(term.descriptor, Distance2B):
            records.append(_distance_2b_record(term, where))
        else:
            records.append(_soap_record(term, where))
    written = []
    root = ET.Element(label)
    ET.SubElement(root, "Potential", label=label, init_args=f"IP GAP label={label}")
    params = ET.SubElement(root, "GAP_params", label=label, gap_version=str(WRITTEN_GAP_VERSION))
    data = ET.SubElement(params, "GAP_data", do_core="F")
    for z, e0 in sorted(model.e0_.items()):
        ET.SubElement(data, "e0", Z=str(int(z)), value=_number(e0))
    sparse = ET.SubElement(params, "gpSparse", label=label, n_coordinate=str(len(records)), fitted="T")
    for index, record in enumerate(records, start=1):
        points = record["sparse_X"]
        sparse_path = path.with_name(f"{path.name}.sparseX.{label}{index}")
        text = "".join(f"{value:.20e}\n" for value in points.ravel())
        atomic_write(sparse_path, text.encode())
        written.append(sparse_path)
        attributes = {"label": f"{label}{index}", "dimensions": str(points.shape[1]),
                      "signal_variance": _number(record["delta"]), "signal_mean": "0.0", "sparsified": "T",
                      "n_permutations": "1", "covariance_type": str(record["covariance_type"])}
        if record["zeta"] is not None:
            attributes["zeta"] = _number(record["zeta"])
        attributes.update({"n_sparseX": str(len(points)), "sparseX_filename": sparse_path.name,
                           "sparseX_md5sum": hashlib.md5(text.encode()).hexdigest()})
        coordinates = ET.SubElement(sparse, "gpCoordinates", attributes)
        if record["theta"] is not None:
            ET.SubElement(coordinates, "theta").text = " ".join(_number(t) for t in record["theta"])
        ET.SubElement(coordinates, "descriptor").text = record["descriptor"]
        ET.SubElement(coordinates, "permutation", i="1").text = "1"
        weights = np.asarray(model.terms_[index - 1].sparse_weight, dtype=float)
        for i, (alpha, weight) in enumerate(zip(record["alpha"], weights), start=1):
            ET.SubElement(coordinates, "sparseX", i=str(i), alpha=_number(alpha), sparseCutoff=_number(weight))
    ET.indent(root)
    atomic_write(path, (ET.tostring(root, encoding="unicode") + "\n").encode())
    written.append(path)
    return written
