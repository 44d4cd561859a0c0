"""Validation of the labels and noise settings given to :class:`SparseGPR`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.data import atomic_numbers as _ATOMIC_NUMBERS

__all__ = ["Labels", "MIN_DISTANCE", "check_labels", "check_min_distance", "check_sigma", "structure_sigmas",
           "resolve_e0", "residual_labels", "CompositionWarning", "force_outliers", "warn_force_outliers",
           "FORCE_OUTLIER_FACTOR", "FORCE_OUTLIER_MIN_ATOMS"]

# Å. No DFT training structure has two nuclei this close (H2 is 0.74 Å): such
# a frame is a corrupt or duplicated-atom entry and would teach the model nonsense.
MIN_DISTANCE = 0.5


#: A force label is an outlier above this multiple of the 99th percentile of the training set's atomic force
#: magnitudes. Measured (/work/notes/nacl/s6/force_scale.log): the largest atomic force of ordinary sets is
#: 1.1-2.8 times that percentile (mlearn Si 2.8, Mo 2.3, GAP-17 carbon 1.1, rMD17 1.4-1.7, the revPBE0-D3
#: NaCl-water files 1.6-1.9); the broken gen1b frame 156 of the NaCl-water set is 10.1 times it.
FORCE_OUTLIER_FACTOR = 5.0
#: Fewer force-labelled atoms than this and the 99th percentile describes the outliers themselves: no check.
FORCE_OUTLIER_MIN_ATOMS = 500


@dataclass
class Labels:
    """Per-structure labels; ``None`` entries mean "not observed"."""

    energies: list   # float (eV) or None
    forces: list     # ndarray (n_atoms_s, 3) (eV/Å) or None
    virials: list    # ndarray (3, 3) (eV) or None
    config_types: list  # str


def _per_structure(name, value, n_structures):
    if value is None:
        return [None] * n_structures
    if isinstance(value, np.ndarray) and value.dtype != object:
        items = list(value) if value.ndim >= 1 else None
    else:
        try:
            items = list(value)
        except TypeError:
            items = None
    if items is None:
        raise TypeError(f"`{name}` must be a sequence with one entry per structure; got {type(value).__name__}")
    if len(items) != n_structures:
        raise ValueError(f"`{name}` has {len(items)} entries but {n_structures} structures were given")
    return items


def _check_finite(name, s, array):
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` of structure {s} contains NaN or inf: {np.asarray(array).tolist()}")


def check_min_distance(atoms_list, min_distance=MIN_DISTANCE):
    """Raise ``ValueError`` if two atoms (or periodic images) are closer than ``min_distance`` Å.

    The message names the first such structure, the two atoms, their
    distance and the structures affected
    (:func:`kernelpot.structures.neighbours.check_distinct_positions`).
    """
    from ...structures.neighbours import check_distinct_positions, neighbour_list
    from ...structures.packing import pack

    packed = pack(atoms_list)
    check_distinct_positions(packed, neighbour_list(packed, min_distance), min_distance,
                             reason="corrupt or duplicated atoms? remove them from the training set")


def check_labels(atoms_list, energies, forces, virials, config_types):
    """Validate and normalise the fit labels into a :class:`Labels`.

    ``forces`` may be a sequence of ``(n_atoms_s, 3)`` arrays (``None`` for
    structures without forces) or one ``(n_atoms_total, 3)`` array.
    Structures with atoms closer than :data:`MIN_DISTANCE` are rejected
    (:func:`check_min_distance`); force labels far outside the set's
    distribution are warned about (:func:`warn_force_outliers`).
    """
    check_min_distance(atoms_list)
    n = len(atoms_list)
    counts = [len(a) for a in atoms_list]
    if isinstance(forces, np.ndarray) and forces.dtype != object and forces.ndim == 2:
        if forces.shape != (sum(counts), 3):
            raise ValueError(
                f"`forces` given as one array must have shape (n_atoms_total, 3) = ({sum(counts)}, 3); "
                f"got {forces.shape}"
            )
        forces = np.split(forces, np.cumsum(counts)[:-1])
    e_items = _per_structure("energies", energies, n)
    f_items = _per_structure("forces", forces, n)
    v_items = _per_structure("virials", virials, n)
    c_items = _per_structure("config_types", config_types, n)
    out_e, out_f, out_v, out_c = [], [], [], []
    for s in range(n):
        e, f, v, c = e_items[s], f_items[s], v_items[s], c_items[s]
        if e is not None:
            if isinstance(e, (bool, np.bool_)) or np.ndim(e) != 0:
                raise ValueError(f"`energies` entry of structure {s} must be a scalar (eV); got {e!r}")
            e = float(e)
            _check_finite("energies", s, e)
        if f is not None:
            f = np.asarray(f, dtype=np.float64)
            if f.shape != (counts[s], 3):
                raise ValueError(
                    f"`forces` of structure {s} must have shape ({counts[s]}, 3) (eV/Å); got {f.shape}"
                )
            _check_finite("forces", s, f)
        if v is not None:
            v = np.asarray(v, dtype=np.float64)
            if v.shape != (3, 3):
                raise ValueError(f"`virials` of structure {s} must have shape (3, 3) (eV); got {v.shape}")
            _check_finite("virials", s, v)
        if c is None:
            c = "default"
        elif not isinstance(c, str):
            raise TypeError(f"`config_types` entry of structure {s} must be a str or None; got {c!r}")
        out_e.append(e), out_f.append(f), out_v.append(v), out_c.append(c)
    if all(e is None for e in out_e) and all(f is None for f in out_f) and all(v is None for v in out_v):
        raise ValueError("no observations: give at least one of `energies`, `forces`, `virials`")
    warn_force_outliers(out_f, atoms_list, stacklevel=4)
    return Labels(out_e, out_f, out_v, out_c)


@dataclass
class ForceOutlier:
    """A structure whose largest atomic force label is far outside the training set's distribution."""

    structure: int       # index in the list given
    atom: int            # the atom with the largest force
    force: float         # its |F| (eV/Å)
    ratio: float         # |F| / the set's 99th percentile of |F|
    n_atoms: int         # atoms of the structure above the threshold


def force_outliers(forces, factor=FORCE_OUTLIER_FACTOR, min_atoms=FORCE_OUTLIER_MIN_ATOMS):
    """Structures with an atomic force above ``factor`` × the 99th percentile of all atomic force magnitudes.

    Parameters
    ----------
    forces : list of ndarray of shape (n_atoms_s, 3) or None
        Force labels (eV/Å) per structure; ``None``: not labelled.
    factor : float
        Threshold as a multiple of the 99th percentile of ``|F|`` over every labelled atom.
    min_atoms : int
        With fewer labelled atoms no structure is flagged (the percentile would describe the outliers).

    Returns
    -------
    outliers : list of ForceOutlier
        Largest force first.
    percentile : float
        The 99th percentile of ``|F|`` (eV/Å), or nan when there were too few atoms.
    largest_other : float
        The largest ``|F|`` of any structure not flagged (eV/Å; 0 if none).
    """
    norms = {s: np.linalg.norm(f, axis=1) for s, f in enumerate(forces) if f is not None and len(f)}
    if sum(len(n) for n in norms.values()) < min_atoms:
        return [], float("nan"), 0.0
    percentile = float(np.percentile(np.concatenate(list(norms.values())), 99))
    threshold = factor * percentile
    outliers, largest_other = [], 0.0
    for s, n in norms.items():
        atom = int(np.argmax(n))
        if percentile > 0 and n[atom] > threshold:
            outliers.append(ForceOutlier(s, atom, float(n[atom]), float(n[atom] / percentile),
                                         int(np.count_nonzero(n > threshold))))
        else:
            largest_other = max(largest_other, float(n[atom]))
    outliers.sort(key=lambda o: -o.force)
    return outliers, percentile, largest_other


def warn_force_outliers(forces, atoms_list=None, names=None, stacklevel=3):
    """Warn (:class:`~kernelpot.exceptions.ForceOutlierWarning`) about each structure :func:`force_outliers`
    flags, naming it (``names[s]``, default ``"structure s"``), its atom (with its element if ``atoms_list`` is
    given) and its force against the set's distribution. Returns the outliers."""
    import warnings

    from ...exceptions import ForceOutlierWarning

    outliers, percentile, largest_other = force_outliers(forces)
    if not outliers:
        return outliers

    def describe(o):
        name = names[o.structure] if names is not None else f"structure {o.structure}"
        element = f" ({atoms_list[o.structure][o.atom].symbol})" if atoms_list is not None else ""
        above = f" ({o.n_atoms} atoms above)" if o.n_atoms > 1 else ""
        return f"{name}: atom {o.atom}{element} |F| = {o.force:.3g} eV/Å, {o.ratio:.1f}×{above}"

    listed = "; ".join(describe(o) for o in outliers[:10]) + ("; ..." if len(outliers) > 10 else "")
    warnings.warn(
        f"{len(outliers)} structure(s) have force labels above {FORCE_OUTLIER_FACTOR:g}× the 99th percentile of "
        f"the training set's atomic forces ({percentile:.3g} eV/Å; the largest force of any other structure is"
        f" {largest_other:.3g} eV/Å = {largest_other / percentile:.1f}×): {listed}. A label this far outside "
        f"its set is usually a broken reference calculation (e.g. an unconverged SCF), and at the force noise "
        f"every atom shares it can outweigh hundreds of ordinary structures: check it, and remove the structure "
        f"if it is wrong; if it is a close contact you mean to fit, silence this warning (category "
        f"kernelpot.exceptions.ForceOutlierWarning) or give the structure its own config_type sigma",
        ForceOutlierWarning, stacklevel=stacklevel)
    return outliers


def _sigma_tuple(name, value):
    try:
        array = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be 3 or 4 numbers (energy, force, virial[, hessian]); got {value!r}") from None
    if array.size not in (3, 4):
        raise ValueError(f"`{name}` must have 3 or 4 entries (energy, force, virial[, hessian]); got {value!r}")
    if not np.all(np.isfinite(array[:3])) or np.any(array[:3] <= 0):
        raise ValueError(f"`{name}` energy, force and virial sigmas must be finite and > 0; got {value!r}")
    return array[:3]


def check_sigma(default_sigma, config_type_sigma):
    """Return ``{config_type: (sigma_E, sigma_F, sigma_V)}`` with a ``"default"`` entry."""
    table = {"default": _sigma_tuple("default_sigma", default_sigma)}
    if config_type_sigma is None:
        return table
    if not isinstance(config_type_sigma, dict):
        raise TypeError(f"`config_type_sigma` must be a dict {{config_type: sigmas}}; got {config_type_sigma!r}")
    for key, value in config_type_sigma.items():
        table[str(key)] = _sigma_tuple(f"config_type_sigma[{key!r}]", value)
    return table


def structure_sigmas(table, config_type, n_atoms, per_atom):
    """(sigma_E eV, sigma_F eV/Å, sigma_V eV) of one structure, as gap_fit.

    With ``per_atom`` the energy and virial sigmas are per atom and scale
    with sqrt(n_atoms) (gap_fit's ``sigma_per_atom=T``).
    """
    e, f, v = table.get(config_type, table["default"])
    scale = np.sqrt(n_atoms) if per_atom else 1.0
    return e * scale, f, v * scale


def _species_key(key):
    if isinstance(key, str):
        if key not in _ATOMIC_NUMBERS:
            raise ValueError(f"`e0` key {key!r} is not a chemical symbol")
        return _ATOMIC_NUMBERS[key]
    return int(key)


class CompositionWarning(UserWarning):
    """``e0='average'`` on structures of different compositions: the forces will suffer."""


#: eV. Above this spread of per-structure energies that a per-species e0 explains and one shared e0 does not,
#: ``e0='average'`` warns (a DFT or xTB total energy per species differs by tens of eV: every real mixture trips it).
COMPOSITION_SPREAD_WARNING = 1.0


def _warn_mixed_compositions(value, species, atoms_list, labels, with_energy):
    """Warn when one e0 for all species leaves a large composition-dependent energy for the terms to learn.

    With structures of different compositions (e.g. NaCl solutions at several concentrations) and raw total
    energies, the part of each energy that per-species reference energies would take (tens of eV per ion pair
    with DFT or xTB) must otherwise be produced by the descriptor terms' local energies. With energy noise of
    meV per atom the fit bends the local energies to do so, at the cost of everything else: on revPBE0-D3
    NaCl-water frames with 1-4 NaCl, force errors grew from 0.2 to 26 times the RMS force.
    """
    import warnings

    counts = np.array([[np.count_nonzero(atoms_list[s].numbers == z) for z in species] for s in with_energy],
                      dtype=np.float64)
    energies = np.array([labels.energies[s] for s in with_energy], dtype=np.float64)
    per_species, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    # Energy each structure keeps with one e0 that per-species values would have removed.
    left = (counts @ per_species) - value * counts.sum(1)
    spread = float(left.max() - left.min()) if len(left) else 0.0
    if spread > COMPOSITION_SPREAD_WARNING:
        warnings.warn(
            f"e0='average' gives every species the same reference energy, but the training structures differ in "
            f"composition: per-species reference energies would account for {spread:.3g} eV more of the energy "
            f"spread between structures, which the model's terms must now learn at the expense of the forces. "
            f"Use e0='composition' (a least-squares fit per species), 'isolated' or a dict of per-species values",
            CompositionWarning, stacklevel=4)


def resolve_e0(e0, atoms_list, labels):
    """Per-species reference energies ``{Z: eV}`` according to ``e0``.

    ``"average"``: one value for all species, the mean energy per atom of
    the structures with energies. ``"composition"``: per species, the
    least-squares fit of the energies on the numbers of atoms of each
    species (the minimum-norm solution where compositions are collinear,
    e.g. water's O:H = 1:2 — only the combinations that occur matter).
    ``"isolated"``: the energy of a one-atom structure of each species. A
    number: that value for every species. A dict ``{Z or symbol: eV}``:
    must cover every species.
    """
    species = sorted({int(z) for a in atoms_list for z in a.numbers})
    with_energy = [s for s, e in enumerate(labels.energies) if e is not None]
    if isinstance(e0, str):
        if e0 == "average":
            if not with_energy:
                raise ValueError("`e0`='average' needs energies; none were given")
            total = sum(labels.energies[s] for s in with_energy)
            value = total / sum(len(atoms_list[s]) for s in with_energy)
            _warn_mixed_compositions(value, species, atoms_list, labels, with_energy)
            return {z: value for z in species}
        if e0 == "composition":
            if not with_energy:
                raise ValueError("`e0`='composition' needs energies; none were given")
            counts = np.array([[np.count_nonzero(atoms_list[s].numbers == z) for z in species] for s in with_energy],
                              dtype=np.float64)
            values, *_ = np.linalg.lstsq(counts, np.array([labels.energies[s] for s in with_energy]), rcond=None)
            return {z: float(v) for z, v in zip(species, values)}
        if e0 == "isolated":
            found = {}
            for s in with_energy:
                if len(atoms_list[s]) == 1:
                    found[int(atoms_list[s].numbers[0])] = labels.energies[s]
            missing = [z for z in species if z not in found]
            if missing:
                raise ValueError(
                    f"`e0`='isolated' needs a one-atom structure with an energy for every species; "
                    f"none for Z={missing}"
                )
            return {z: found[z] for z in species}
        raise ValueError(f"`e0` must be 'average', 'composition', 'isolated', a number or a dict; got {e0!r}")
    if isinstance(e0, dict):
        table = {_species_key(k): float(v) for k, v in e0.items()}
        missing = [z for z in species if z not in table]
        if missing:
            raise ValueError(f"`e0` dict has no value for species Z={missing}")
        return table
    if isinstance(e0, (int, float, np.number)) and not isinstance(e0, bool) and np.isfinite(e0):
        return {z: float(e0) for z in species}
    raise ValueError(f"`e0` must be 'average', 'isolated', a finite number or a dict; got {e0!r}")


def residual_labels(labels, atoms_list, baseline):
    """The labels minus a baseline's energies, forces and virials (new arrays; ``labels`` is unchanged).

    Only observed labels are shifted; ``baseline=None`` returns ``labels``
    itself. The baseline first checks every structure (a clear error names
    the first it cannot handle).
    """
    if baseline is None:
        return labels
    baseline.check(atoms_list)
    want_forces = any(f is not None for f in labels.forces)
    want_virial = any(v is not None for v in labels.virials)
    values = baseline.evaluate(atoms_list, forces=want_forces, virial=want_virial)
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in atoms_list])])
    energies = [None if e is None else e - values["energy"][s] for s, e in enumerate(labels.energies)]
    forces = [None if f is None else f - values["forces"][offsets[s]:offsets[s + 1]]
              for s, f in enumerate(labels.forces)]
    virials = [None if v is None else v - values["virial"][s] for s, v in enumerate(labels.virials)]
    return Labels(energies, forces, virials, labels.config_types)
