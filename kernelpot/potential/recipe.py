"""From gap_fit's language to kernelpot terms: the GAP fitting recipe.

:func:`terms_from_gap_string` turns a gap_fit ``--gap`` string into
:class:`~kernelpot.models.gap.terms.GAPTerm` objects for the descriptors
kernelpot has (``distance_2b``, ``angle_3b``, ``soap``); :data:`DEFAULT_GAP` is the
recipe used when none is given (2-body + SOAP, as in the mlearn GAP
benchmark of Zuo et al., J. Phys. Chem. A 124, 731 (2020)).

Differences from gap_fit, on purpose or not yet bridged:

* ``soap`` is GAP's own: its equispaced-Gaussian radial basis and
  power-spectrum weighting (``SOAP(rbf="gap")``), its cosine cutoff
  (``cutoff_transition_width``, gap_fit's default 0.5 Å) and
  ``central_weight``; normalised rows equal quippy's to ~1e-12 (the feature
  order differs, which a dot-product kernel does not see). Only GAP's
  default ``radial_basis=EQUISPACED_GAUSS`` is available.
* gap_fit splits a ``soap`` term into one term per centre species
  (``add_species=T``, its default); kernelpot keeps one term for all centres
  unless the string gives ``Z=`` (then
  :class:`~kernelpot.descriptors.centre_species.CentreSpecies`). On rMD17 ethanol
  the split did not help at the same total number of sparse points.
* ``distance_2b``: kernelpot counts each pair once, so its delta is twice
  gap_fit's for the same model. ``distance_Nb order=2`` (with or without
  ``compact_clusters``) is the same pair term and becomes the same
  kernelpot term; higher orders are not available.
* ``angle_3b``: the same features, weight and species selection as
  gap_fit's (:class:`~kernelpot.descriptors.angle_3b.Angle3B`); kernelpot
  counts each triplet once, so its delta is twice gap_fit's; ``theta_fac``
  is not available (give ``theta_uniform`` or ``theta={a b c}``).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..descriptors import CentreSpecies
from ..descriptors.angle_3b import Angle3B
from ..descriptors.distance_2b import Distance2B
from ..descriptors.soap import SOAP
from ..kernels import GaussianCovariance, NormalizedDotProductCovariance
from ..models.gap import GAPTerm
from .defaults import DEFAULT_GAP, DEFAULT_SIGMA
from .gap_string import parse_gap_string

__all__ = ["DEFAULT_GAP", "DEFAULT_SIGMA", "WATER_BOND_TERMS", "describe_recipe", "describe_terms",
           "gap_fit_jitter", "species_gap_string", "stable_baseline", "terms_from_gap_string"]

# Å: the onset of a soft wall for the species pairs it does not act on (no two atoms come this close)
_NEVER = 1e-3
# gap_fit's default width (Å) of the cosine cutoff of its soap descriptor.
_GAP_SOAP_TRANSITION = 0.5

_SPARSE_METHODS = {"cur_points": "cur", "cur": "cur", "fps": "fps", "farthest_point": "fps",
                   "uniform": "uniform", "random": "random"}
# gap_fit keys that change nothing in kernelpot's model: accepted with a warning.
_IGNORED = {"add_species", "print_sparse_index", "mark_sparse_atoms", "unique_descriptor_tolerance",
            "unique_hash_tolerance", "n_species"}


def _take(params: dict, name: str, allowed: set[str]) -> dict:
    unknown = sorted(set(params) - allowed - _IGNORED)
    if unknown:
        raise ValueError(f"{name}: unsupported gap_fit key(s) {unknown}; kernelpot understands "
                         f"{sorted(allowed)}")
    ignored = sorted(set(params) & _IGNORED)
    if ignored:
        warnings.warn(f"{name}: gap_fit key(s) {ignored} have no effect in kernelpot and are ignored",
                      stacklevel=3)
    return params


def _sparse(params: dict, name: str, default: str) -> str:
    method = str(params.get("sparse_method", default)).lower()
    if method not in _SPARSE_METHODS:
        raise ValueError(f"{name}: sparse_method must be one of {sorted(_SPARSE_METHODS)}; got {method!r}")
    return _SPARSE_METHODS[method]


def _covariance(params: dict, name: str, expected: str) -> None:
    covariance = str(params.get("covariance_type", expected)).lower()
    if covariance != expected:
        raise ValueError(f"{name}: covariance_type must be {expected!r} in kernelpot; got {covariance!r}")


def _distance_2b(params: dict) -> GAPTerm:
    name = "distance_2b"
    _take(params, name, {"cutoff", "cutoff_transition_width", "covariance_type", "delta", "theta_uniform",
                         "n_sparse", "sparse_method", "z1", "z2"})
    _covariance(params, name, "ard_se")
    descriptor = Distance2B(cutoff=float(params.get("cutoff", 5.0)),
                            cutoff_transition_width=float(params.get("cutoff_transition_width", 0.5)),
                            Z1=params.get("z1"), Z2=params.get("z2"))
    # gap_fit sums the pair energy over both orderings of each pair, kernelpot over each pair
    # once: the same model needs twice gap_fit's delta (checked against quippy in test_sparse_gpr).
    return GAPTerm(descriptor, GaussianCovariance(float(params.get("theta_uniform", 1.0))),
                   delta=2.0 * float(params.get("delta", 1.0)), n_sparse=int(params.get("n_sparse", 20)),
                   sparse_method=_sparse(params, name, "uniform"))


def _soap(params: dict, species: list[int], periodic: bool) -> GAPTerm:
    name = "soap"
    _take(params, name, {"l_max", "n_max", "atom_sigma", "cutoff", "covariance_type", "delta", "zeta",
                         "n_sparse", "sparse_method", "species_z", "cutoff_transition_width",
                         "central_weight", "z", "radial_basis"})
    _covariance(params, name, "dot_product")
    radial_basis = str(params.get("radial_basis", "equispaced_gauss")).lower()
    if radial_basis != "equispaced_gauss":
        raise ValueError(f"{name}: radial_basis must be 'EQUISPACED_GAUSS' (GAP's default) in kernelpot; "
                         f"got {params['radial_basis']!r}")
    chosen = params.get("species_z", species)
    chosen = [chosen] if isinstance(chosen, int) else list(chosen)
    # As gap_fit: GAP's radial basis and weighting, and its smooth cosine cutoff, 0.5 Å wide unless
    # the string says otherwise.
    descriptor = SOAP(species=sorted(int(z) for z in chosen), r_cut=float(params.get("cutoff", 5.0)),
                      n_max=int(params.get("n_max", 8)), l_max=int(params.get("l_max", 6)),
                      sigma=float(params.get("atom_sigma", 0.5)), rbf="gap", periodic=periodic,
                      cutoff_transition_width=float(params.get("cutoff_transition_width", _GAP_SOAP_TRANSITION)),
                      central_weight=float(params.get("central_weight", 1.0)))
    if "z" in params:
        # gap_fit's Z=...: this term describes only centres of that species.
        descriptor = CentreSpecies(descriptor, params["z"])
    return GAPTerm(descriptor, NormalizedDotProductCovariance(int(params.get("zeta", 4))),
                   delta=float(params.get("delta", 1.0)), n_sparse=int(params.get("n_sparse", 1000)),
                   sparse_method=_sparse(params, name, "cur_points"))


def _distance_nb(params: dict) -> GAPTerm:
    """gap_fit's ``distance_Nb order=2``: the same pair term as ``distance_2b`` (checked against gap_fit)."""
    name = "distance_nb"
    params = dict(params)
    order = params.pop("order", None)
    if order != 2:
        raise ValueError(f"{name}: only order=2 (pairs, the same model as distance_2b) is available in kernelpot; "
                         f"got order={order!r}")
    params.pop("compact_clusters", None)  # the same pair term either way for order=2 (test_gap_fit_command)
    if params.pop("f0", 0.0) != 0.0:
        raise ValueError(f"{name}: f0 (a prior mean of the local energy) must be 0 in kernelpot")
    pair = params.pop("z", None)
    if pair is not None:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise ValueError(f"{name}: Z must name the two species of the pair, Z={{a b}}; got {pair!r}")
        params["z1"], params["z2"] = pair
    return _distance_2b(params)


def _angle_3b(params: dict) -> GAPTerm:
    """gap_fit's ``angle_3b``: a Gaussian (``ard_se``) of the triplet features (:class:`Angle3B`).

    ``theta_uniform`` is one length scale for all three features (Å, Å², Å); ``theta={a b c}`` gives one each
    (as a GAP XML file stores them). gap_fit's ``theta_fac`` (length scales from the data's spread) is not
    available.
    """
    name = "angle_3b"
    _take(params, name, {"cutoff", "cutoff_transition_width", "covariance_type", "delta", "theta_uniform", "theta",
                         "n_sparse", "sparse_method", "z", "z1", "z2"})
    _covariance(params, name, "ard_se")
    if "theta" in params and "theta_uniform" in params:
        raise ValueError(f"{name}: give theta_uniform or theta, not both")
    theta = params.get("theta", params.get("theta_uniform", 1.0))
    theta = float(theta) if np.isscalar(theta) else np.asarray(theta, dtype=np.float64)
    if np.ndim(theta) == 1 and len(theta) != 3:
        raise ValueError(f"{name}: theta must give 3 length scales (one per feature); got {list(theta)}")
    descriptor = Angle3B(cutoff=float(params.get("cutoff", 3.0)),
                         cutoff_transition_width=float(params.get("cutoff_transition_width", 0.5)),
                         Z=params.get("z"), Z1=params.get("z1"), Z2=params.get("z2"))
    # gap_fit keeps both orders (j, k) and (k, j) of every triplet, kernelpot one: twice gap_fit's delta.
    return GAPTerm(descriptor, GaussianCovariance(theta), delta=2.0 * float(params.get("delta", 1.0)),
                   n_sparse=int(params.get("n_sparse", 100)), sparse_method=_sparse(params, name, "random"))


_BUILDERS = {"distance_2b": lambda params, species, periodic: _distance_2b(params),
             "distance_nb": lambda params, species, periodic: _distance_nb(params), "soap": _soap,
             "angle_3b": lambda params, species, periodic: _angle_3b(params)}


def terms_from_gap_string(text: str, species, periodic: bool = True, *, add_species: bool = False) -> list[GAPTerm]:
    """Build GAP terms from a gap_fit ``--gap`` string.

    Parameters
    ----------
    text : str
        e.g. ``"{distance_2b cutoff=5.0 ... : soap l_max=6 ...}"``.
    species : sequence of int
        Atomic numbers present in the training data (SOAP's species unless
        the string gives ``species_Z``).
    periodic : bool, default=True
        Whether the structures have periodic cells (SOAP's ``periodic``).
    add_species : bool, default=False
        gap_fit's behaviour (its ``add_species=T`` default): a
        ``distance_2b`` term without ``Z1``/``Z2`` becomes one term per pair
        of species, a ``soap`` term without ``Z`` one term per centre
        species, each with the string's ``n_sparse`` and ``delta``, unless
        the term says ``add_species=F``. False (``kernelpot fit``): one term
        for all species.

    Returns
    -------
    list of GAPTerm
    """
    species = sorted({int(z) for z in species})
    terms = []
    for descriptor_name, params in parse_gap_string(text):
        if descriptor_name not in _BUILDERS:
            raise ValueError(f"descriptor {descriptor_name!r} is not available in kernelpot; "
                             f"available: {sorted(_BUILDERS)}")
        for one in _split_species(descriptor_name, params, species) if add_species else [params]:
            terms.append(_BUILDERS[descriptor_name](one, species, periodic))
    return terms


def _split_species(name: str, params: dict, species: list[int]) -> list[dict]:
    """gap_fit's ``add_species=T``: the parameters of one term per species pair (2b) or centre species (SOAP)."""
    params = dict(params)
    if params.pop("add_species", True) is False:
        return [params]
    if name == "distance_2b" and "z1" not in params and "z2" not in params:
        return [{**params, "z1": a, "z2": b} for i, a in enumerate(species) for b in species[i:]]
    if name == "distance_nb" and "z" not in params and params.get("order") == 2:
        return [{**params, "z": [a, b]} for i, a in enumerate(species) for b in species[i:]]
    if name == "soap" and "z" not in params:
        return [{**params, "z": z} for z in species]
    if name == "angle_3b" and not {"z", "z1", "z2"} <= set(params):
        raise ValueError("angle_3b: give Z, Z1 and Z2 (centre and neighbour species) or add_species=F; kernelpot "
                         "does not split an angle_3b term into species triplets")
    return [params]


def gap_fit_jitter(terms, sparse_jitter: float) -> list[float]:
    """kernelpot's relative ``jitter`` per term for gap_fit's absolute ``sparse_jitter``.

    gap_fit adds ``sparse_jitter`` (eV²) to the diagonal of the sparse
    covariance, whose scale is its ``delta²``; kernelpot adds ``jitter ×
    delta²``. A ``distance_2b`` term has twice gap_fit's delta in kernelpot
    (each pair counted once), and its coefficients are half gap_fit's, so
    the same regularised problem needs ``jitter = sparse_jitter /
    (delta_gap_fit)²`` for every term.

    Parameters
    ----------
    terms : list of GAPTerm
        Terms built by :func:`terms_from_gap_string`.
    sparse_jitter : float
        gap_fit's ``sparse_jitter``, eV², >= 0.

    Returns
    -------
    list of float
        One relative jitter per term, for ``SparseGPR(jitter=...)``.
    """
    if isinstance(sparse_jitter, bool) or not np.isfinite(sparse_jitter) or sparse_jitter < 0:
        raise ValueError(f"`sparse_jitter` must be a finite number >= 0 (eV²); got {sparse_jitter!r}")
    return [float(sparse_jitter) / (t.delta / 2 if _is_pair_term(t.descriptor) else t.delta) ** 2 for t in terms]


def _describe_descriptor(descriptor) -> str:
    if isinstance(descriptor, CentreSpecies):
        return f"{_describe_descriptor(descriptor.descriptor)}, centres Z={descriptor.species}"
    if isinstance(descriptor, Distance2B):
        pair = "" if descriptor.Z1 is None else f" Z={descriptor.Z1}-{descriptor.Z2}"
        return (f"distance_2b{pair}: cutoff {descriptor.cutoff:g} Å (cosine transition "
                f"{descriptor.cutoff_transition_width:g} Å)")
    if isinstance(descriptor, Angle3B):
        species = "" if descriptor.Z is None else f" Z={descriptor.Z}"
        species += "" if descriptor.Z1 is None else f" neighbours Z={descriptor.Z1},{descriptor.Z2}"
        return (f"angle_3b{species}: cutoff {descriptor.cutoff:g} Å (cosine transition "
                f"{descriptor.cutoff_transition_width:g} Å)")
    if isinstance(descriptor, SOAP):
        return (f"soap: cutoff {descriptor.r_cut:g} Å (cosine transition {descriptor.cutoff_transition_width:g} Å), "
                f"n_max {descriptor.n_max}, l_max {descriptor.l_max}, atom_sigma {descriptor.sigma:g} Å, "
                + ("GAP's radial basis" if descriptor.rbf == "gap" else f"{descriptor.rbf} radial basis"))
    return repr(descriptor)


def _describe_kernel(kernel, unit) -> str:
    if isinstance(kernel, GaussianCovariance):
        sigma = np.ravel(kernel.sigma)
        return "Gaussian (ard_se), length scale " + (f"{sigma[0]:g}" if sigma.size == 1 else str(sigma.tolist())) + unit
    if isinstance(kernel, NormalizedDotProductCovariance):
        return f"normalized dot product, zeta {kernel.zeta}"
    return repr(kernel)


def _root_descriptor(descriptor):
    return descriptor.descriptor if isinstance(descriptor, CentreSpecies) else descriptor


def _is_pair_term(descriptor) -> bool:
    """Whether gap_fit counts each row of the term twice (pairs, triplets), so its delta is half kernelpot's."""
    return isinstance(_root_descriptor(descriptor), (Distance2B, Angle3B))


def describe_terms(terms, default_sigma=None) -> str:
    """The recipe of GAP terms in words, one line per term (and one for the noise).

    Parameters
    ----------
    terms : list of GAPTerm or FittedTerm
        A recipe (:func:`terms_from_gap_string`) or a fitted model's
        ``terms_`` (then the sparse points are those actually used).
    default_sigma : sequence of 3 floats, optional
        Energy (eV/atom), force (eV/Å) and virial (eV/atom) noise, added as a
        last line.

    Returns
    -------
    str
    """
    lines = []
    for term in terms:
        method = getattr(term, "sparse_method", None)
        delta, pairs = f"delta {term.delta:g} eV", _is_pair_term(term.descriptor)
        triplets = isinstance(_root_descriptor(term.descriptor), Angle3B)
        if pairs:
            row = "triplet" if triplets else "pair"
            delta += f" (gap_fit's delta={term.delta / 2:g}: kernelpot counts each {row} once)"
        kernel = _describe_kernel(term.kernel, " (Å, Å², Å)" if triplets else " Å" if pairs else "")
        lines.append(f"{_describe_descriptor(term.descriptor)}; {kernel}; {delta}; "
                     f"{term.n_sparse} sparse points" + (f" ({method})" if method else ""))
    if default_sigma is not None:
        energy, force, virial = tuple(default_sigma)[:3]
        lines.append(f"noise sigma: energy {energy:g} eV/atom, force {force:g} eV/Å, virial {virial:g} eV/atom")
    return "\n".join(lines)


def describe_recipe(gap: str = DEFAULT_GAP, default_sigma=DEFAULT_SIGMA) -> str:
    """:func:`describe_terms` of a gap_fit string: what ``kernelpot fit --gap gap`` fits.

    ``soap`` terms describe every species of the training data unless the
    string gives ``species_Z``; the text does not depend on it.
    """
    return describe_terms(terms_from_gap_string(gap, species=[]), default_sigma)


# ------------------------------------------------------------------------------------ multi-species recipes
#: Two short, stiff pair terms for water's intramolecular geometry (O–H within 1.6 Å, θ 0.15 Å, δ 10 eV; H–H
#: within 2.2 Å, θ 0.2 Å, δ 5 eV): an all-pairs 2b with θ 1 Å and a SOAP density of 0.5 Å Gaussians are too
#: smooth for the O–H stretch (about 45 eV/Å²). On NaCl–water (revPBE0-D3) they cut the validation force RMSE
#: from 195 to 173 meV/Å (benchmarks/long_range.py, "NaCl recipe").
WATER_BOND_TERMS = (
    "distance_2b cutoff=1.6 cutoff_transition_width=0.3 covariance_type=ard_se delta=10.0 theta_uniform=0.15 "
    "n_sparse=20 sparse_method=uniform Z1=8 Z2=1",
    "distance_2b cutoff=2.2 cutoff_transition_width=0.4 covariance_type=ard_se delta=5.0 theta_uniform=0.2 "
    "n_sparse=20 sparse_method=uniform Z1=1 Z2=1",
)


def species_gap_string(n_sparse, *, pairs=None, r_cut=5.0, n_max=6, l_max=4, zeta=4, soap_delta=1.0,
                       atom_sigma=0.5, transition=1.0, two_body_cutoff=5.0, two_body_delta=1.0, two_body_theta=1.0,
                       two_body_sparse=20, extra_terms=()) -> str:
    """A gap_fit string with a ``distance_2b`` term per species pair and a SOAP term per centre species.

    The recipe of the electrolyte models (NaCl in water): every species pair has its own pair potential and every
    centre species its own SOAP term (gap_fit's ``Z=``), so each species gets its own sparse points.

    Parameters
    ----------
    n_sparse : dict
        ``{symbol: sparse points of that centre species' SOAP term}``, e.g.
        ``{"O": 1500, "H": 1500, "Na": 300, "Cl": 300}``; its keys are the species (in this order).
    pairs : list of (str, str), optional
        Species pairs with a ``distance_2b`` term (default: all pairs, like ones included).
    r_cut, n_max, l_max, zeta, soap_delta, atom_sigma : float or int
        SOAP cutoff (Å), radial and angular orders, kernel exponent, δ (eV) and density width (Å).
    transition : float
        Width (Å) of the cosine cutoff of the SOAP and pair terms.
    two_body_cutoff, two_body_delta, two_body_theta, two_body_sparse
        Pair terms: cutoff (Å), δ (eV), length scale θ (Å), sparse points (uniform in distance).
    extra_terms : sequence of str
        More terms placed between the pair and SOAP terms (e.g. :data:`WATER_BOND_TERMS`).

    Returns
    -------
    str
        ``"{term : term : ...}"`` for :func:`terms_from_gap_string` or ``kernelpot fit --gap``.
    """
    from ase.data import atomic_numbers

    species = list(n_sparse)
    unknown = [s for s in species if s not in atomic_numbers]
    if unknown:
        raise ValueError(f"`n_sparse` keys must be chemical symbols; got {unknown}")
    pairs = pairs or [(a, b) for i, a in enumerate(species) for b in species[i:]]
    parts = [f"distance_2b cutoff={two_body_cutoff} cutoff_transition_width={transition} covariance_type=ard_se "
             f"delta={two_body_delta} theta_uniform={two_body_theta} n_sparse={two_body_sparse} "
             f"sparse_method=uniform Z1={atomic_numbers[a]} Z2={atomic_numbers[b]}" for a, b in pairs]
    parts += list(extra_terms)
    parts += [f"soap l_max={l_max} n_max={n_max} atom_sigma={atom_sigma} cutoff={r_cut} "
              f"cutoff_transition_width={transition} delta={soap_delta} covariance_type=dot_product zeta={zeta} "
              f"n_sparse={n_sparse[s]} sparse_method=cur_points Z={atomic_numbers[s]}" for s in species]
    return "{" + " : ".join(parts) + "}"


def stable_baseline(structures, charges=None, *, widths=None, margin=0.1, stiffness=1000.0, barrier_pairs=(),
                    barrier_height=0.5, soft_walls=None, lennard_jones=None, hydrogen_bond_walls=None,
                    unbridged_pair_walls=None, bridge=None):
    """The baseline of an MD-ready GAP: fixed-charge Coulomb (if ``charges``) + a repulsive core from the data.

    The core (:class:`~kernelpot.potential.core_repulsion.CoreRepulsion`) starts ``margin`` Å below each species
    pair's closest distance in ``structures``: give the training set, or better every reference structure you have
    (the training set included). The core is then zero on the training data, so the GAP fitted over it is the one
    fitted without it, and it keeps MD out of the distances the reference never sampled, where point charges of
    opposite sign would otherwise pull atoms together. A core at the training set's own closest pairs is too
    tight: on NaCl–water (55 training frames) held-out frames of the same data came 0.45 Å closer (an H–Na pair)
    and met a wall of hundreds of eV/Å.

    Parameters
    ----------
    structures : list of ase.Atoms
        Reference structures whose closest pairs set the onsets (include the training structures).
    charges : dict or None
        ``{species: e}`` of the Coulomb baseline (e.g. ``{"Na": 1, "Cl": -1, "O": -0.834, "H": 0.417}``);
        None: the core alone.
    widths, margin, stiffness
        Gaussian charge widths (Å, None: point charges); Å subtracted from the core's onsets; its k (eV/Å³).
    barrier_pairs : sequence of str
        Species pairs (e.g. ``("H-O",)`` for water) that also get a
        :class:`~kernelpot.potential.core_repulsion.PairBarrier` of ``barrier_height`` eV over the widest distance
        band below 2 Å that ``structures`` never visit (for O–H: between the bond and the hydrogen bond). Keep
        it low: the band is narrow (0.2 Å for water), so the barrier is stiff; with 2 eV a velocity-Verlet step of
        0.5 fs gained 0.48 eV per 100 fs on a 194-atom NaCl–water box (NVE), with 0.5 eV 0.012 eV.
    soft_walls : dict, optional
        ``{pair: (onset Å, k eV/Å³)}``: a soft cubic wall ``k (onset - r)³`` *inside* the data's range, part of
        the baseline the GAP is fitted over (unlike the core, it is not zero on the data). Use it where the data
        are thin and the GAP falls back to a baseline that pulls atoms together: fixed charges alone attract
        hydrogen-bonded waters, and the data's mean DFT − Coulomb force between them grows as they approach; a
        wall matched to it (water O–O: onset 2.95 Å, k 1.85 eV/Å³ on revPBE0-D3 NaCl–water) makes the baseline
        repel where the data end, as the reference does.
    lennard_jones : dict, optional
        ``{species: (epsilon eV, sigma Å)}``, mixed by Lorentz–Berthelot into a
        :class:`~kernelpot.potential.core_repulsion.LennardJones` part (e.g.
        :data:`~kernelpot.potential.core_repulsion.TIP3P_JOUNG_CHEATHAM`): with the charges, a complete classical
        force field under the GAP, which falls back to it where its data end.
    hydrogen_bond_walls : dict, optional
        ``{pair: (r0 Å, k eV/Å³)}`` of a :class:`~kernelpot.potential.core_repulsion.HydrogenBondWall` (each pair
        a hydrogen and an acceptor, e.g. ``{"H-O": (1.65, 9.0)}``): k (r0 - r)³ between every H and the acceptors
        it is not bonded to. Below the shortest hydrogen bonds of the data it stops MD from closing hydrogen bonds
        up where the GAP extrapolates; at the tail of the data it adds the repulsion a GAP underestimates there
        (on revPBE0-D3 NaCl–water ``(1.65, 9.0)`` matches the mean DFT force pushing a hydrogen-bonded H back at
        H···O 1.50–1.70 Å, where a GAP fitted without it fell 0.4 eV/Å short at 1.50–1.55 Å).
    unbridged_pair_walls : dict, optional
        ``{pair: (r0 Å, k eV/Å³)}`` of a :class:`~kernelpot.potential.core_repulsion.UnbridgedPairWall` (pairs of
        non-hydrogen species, e.g. ``{"O-O": (2.6, 20.0)}``): k (r0 - r)³ on the pairs no hydrogen bridges, switched
        off smoothly by a hydrogen within ``bridge`` = (a, b) Å of both atoms. Two oxygens this close with no
        hydrogen between them are rare in liquid water, common in a GAP's MD that has drifted off its data.
    bridge : (float, float), optional
        The wall's ``(a, b)`` in Å; default: :class:`~kernelpot.potential.core_repulsion.UnbridgedPairWall`'s.

    Returns
    -------
    BaselineSum or CoreRepulsion
    """
    from .core_repulsion import (
        BaselineSum,
        CoreRepulsion,
        HydrogenBondWall,
        LennardJones,
        PairBarrier,
        UnbridgedPairWall,
        _parse_pair,
    )
    from .coulomb_baseline import CoulombBaseline

    parts = [] if charges is None else [CoulombBaseline(charges, widths=widths)]
    core = CoreRepulsion.from_structures(structures, margin=margin, stiffness=stiffness)
    parts.append(core)
    if barrier_pairs:
        parts.append(PairBarrier.from_structures(structures, barrier_pairs, height=barrier_height))
    for pair, (onset, k) in (soft_walls or {}).items():
        # a CoreRepulsion needs an onset for every species pair of the data: the others get one no pair reaches
        onsets = {key: _NEVER for key in core.onsets}
        onsets[_parse_pair(pair)] = float(onset)
        parts.append(CoreRepulsion(onsets, stiffness=float(k)))
    if lennard_jones:
        parts.append(LennardJones.from_species(lennard_jones))
    if hydrogen_bond_walls:
        parts.append(HydrogenBondWall(hydrogen_bond_walls))
    if unbridged_pair_walls:
        parts.append(UnbridgedPairWall(unbridged_pair_walls, **({} if bridge is None else {"bridge": bridge})))
    return parts[0] if len(parts) == 1 else BaselineSum(parts)
