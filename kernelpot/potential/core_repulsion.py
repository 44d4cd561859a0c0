r"""A repulsive core under a GAP where its training data end, and a sum of baselines.

A GAP knows the potential only where its training structures went. Closer
than the closest pair of a species pair in the data, its pair and SOAP terms
relax to their prior mean (zero), so nothing stops two atoms from falling
through each other, and a fixed-charge Coulomb baseline underneath
(:class:`~kernelpot.potential.coulomb_baseline.CoulombBaseline`) even pulls
oppositely charged atoms together without bound. An MD run that strays there
gains energy from nothing: it heats up and ends with atoms at unphysical
distances. QUIP's GAPs carry a "core" potential for this reason (a ZBL or
tabulated pair repulsion summed with the GAP).

:class:`CoreRepulsion` is that core, built from the data:

.. math::

    E = \sum_{i<j} k \, (r_{ab} - r_{ij})^3 \quad (r_{ij} < r_{ab}),

zero beyond the onset :math:`r_{ab}` of the species pair :math:`(a, b)`,
which :meth:`CoreRepulsion.from_structures` sets to the closest distance of
that pair in the training structures. The wall is then exactly zero on every
training structure, so fitting a GAP over it (or attaching it after the fit)
gives the same GAP, and it is continuous with its first and second
derivatives at the onset (smooth forces for MD). With the default stiffness
:math:`k = 1000` eV/Å³ an atom 0.1 Å inside the onset pays 1 eV.

:class:`LennardJones` completes fixed charges into a classical force field (for
water and ions: TIP3P with Joung–Cheatham ions, :data:`TIP3P_JOUNG_CHEATHAM`);
unlike the core it acts on the data, and the GAP learns the reference minus it.

:class:`HydrogenBondWall` is a cubic wall like the core, but between a hydrogen and the acceptors it is *not* bonded
to (no topology: its own atom is the one that it is closest to), so it can start above the bond length: below the
shortest hydrogen bonds of the data it stops hydrogen bonds from closing up where a GAP has no data.

:class:`UnbridgedPairWall` is the partner for the heavy atoms: a cubic wall on a pair (O–O) that is switched off
smoothly when a hydrogen bridges the pair. Two waters a hydrogen bond holds at 2.5 Å are liquid water; two oxygens
as close with no hydrogen between them are not, and a GAP may let them come there where it has no data.

:class:`BaselineSum` adds several fixed baselines (e.g. Coulomb + core), so a
``SparseGPR(baseline=...)`` and its ``.kpot`` file carry both.
"""

from __future__ import annotations

import numbers

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from ..utils.description import check_description

__all__ = ["BaselineSum", "CoreRepulsion", "HydrogenBondWall", "LennardJones", "PairBarrier", "UnbridgedPairWall"]

#: eV per kcal/mol.
_KCAL_PER_MOL = 0.0433641
#: Lennard-Jones (ε eV, σ Å) of TIP3P's oxygen (Jorgensen et al., J. Chem. Phys. 79, 926 (1983)) and the
#: Joung–Cheatham ions for TIP3P (J. Phys. Chem. B 112, 9020 (2008); σ = 2 R_min/2 / 2^(1/6)). With the TIP3P
#: charges (O −0.834, H +0.417) and ±1 ions this is a complete, stable classical model of NaCl in water.
TIP3P_JOUNG_CHEATHAM = {"O": (0.1521 * _KCAL_PER_MOL, 3.15061), "Na": (0.0874393 * _KCAL_PER_MOL, 2.439),
                        "Cl": (0.0355910 * _KCAL_PER_MOL, 4.478)}


def _pair_key(a, b) -> str:
    """``"Na-O"``-style key of an unordered species pair (symbols sorted by atomic number)."""
    za, zb = sorted((a, b), key=lambda s: atomic_numbers[s])
    return f"{za}-{zb}"


def _parse_pair(key) -> str:
    if isinstance(key, str):
        parts = key.split("-")
    elif isinstance(key, tuple):
        parts = list(key)
    else:
        parts = []
    symbols = []
    for part in parts:
        if isinstance(part, numbers.Integral) or (isinstance(part, str) and part.isdigit()):
            z = int(part)
            part = chemical_symbols[z] if 0 < z < len(chemical_symbols) else None
        if not isinstance(part, str) or part not in atomic_numbers or part == "X":
            symbols = []
            break
        symbols.append(part)
    if len(symbols) != 2:
        raise ValueError(f"`onsets` keys must be species pairs like 'Na-O' or ('Na', 'O'); got {key!r}")
    return _pair_key(*symbols)


class _Described:
    """Equality of fixed baselines: same class, same :meth:`to_dict` description."""

    def __eq__(self, other):
        return type(other) is type(self) and self.to_dict() == other.to_dict()


def _check_positive(value, name, unit):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a number > 0 ({unit}); got {value!r}")


def _pair_tuples(table, name, describe, valid, fails, *, empty=True):
    """``{pair key: (x, y)}`` of floats from a user's table; ``valid(x, y)`` false: a ValueError saying ``fails``."""
    if not isinstance(table, dict) or (not empty and not table):
        raise TypeError(f"`{name}` must be a {'' if empty else 'non-empty '}{{pair: {describe}}} dict; got {table!r}")
    out = {}
    for key, value in table.items():
        pair = _parse_pair(key)
        if pair in out:
            raise ValueError(f"`{name}` gives the pair {pair!r} twice")
        try:
            x, y = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"`{name}` value of {pair!r} must be {describe}; got {value!r}") from None
        if not (np.isfinite(x) and np.isfinite(y) and valid(x, y)):
            raise ValueError(f"`{name}` value of {pair!r} {fails}; got {value!r}")
        out[pair] = (x, y)
    return out


class _PairTable(_Described):
    """Files and repr of a baseline holding ``{pair: tuple}`` (attribute ``_TABLE``) and one number (``_SCALAR``)."""

    _KIND = _LABEL = _TABLE = _SCALAR = ""

    def to_dict(self) -> dict:
        """JSON-serialisable description, read back by :meth:`from_dict`."""
        return {"kind": self._KIND, "version": 1, self._TABLE: {k: list(v) for k, v in self._table().items()},
                self._SCALAR: float(getattr(self, self._SCALAR))}

    @classmethod
    def from_dict(cls, spec: dict):
        check_description(spec, cls._KIND, cls._LABEL)
        built = cls({k: tuple(v) for k, v in spec[cls._TABLE].items()}, **{cls._SCALAR: spec[cls._SCALAR]})
        built._table()
        return built

    def check(self, atoms_list):
        self._table()

    def __repr__(self):
        return f"{type(self).__name__}({getattr(self, self._TABLE)!r}, {self._SCALAR}={getattr(self, self._SCALAR)!r})"


class CoreRepulsion(_Described):
    """Cubic repulsive wall below a per-species-pair onset distance (a baseline for ``SparseGPR``).

    Parameters
    ----------
    onsets : dict
        ``{pair: r_ab in Å}``, pairs as ``"Na-O"`` or ``("Na", "O")`` (order free). Structures holding a species
        pair without an onset are refused (:meth:`check`); build the table with :meth:`from_structures`.
    stiffness : float, default=1000.0
        k in eV/Å³: the energy of a pair 0.1 Å inside its onset is ``k / 1000`` eV.

    Examples
    --------
    >>> from ase.build import molecule
    >>> core = CoreRepulsion.from_structures([molecule("H2O")])
    >>> core.onsets  # the closest pairs of the data (O-O: never closer than ``search``)
    {'H-H': 1.526478, 'H-O': 0.968565, 'O-O': 4.0}
    """

    def __init__(self, onsets, *, stiffness=1000.0):
        self.onsets = onsets
        self.stiffness = stiffness

    @classmethod
    def from_structures(cls, atoms_list, *, search=4.0, margin=0.0, stiffness=1000.0):
        """The wall that starts at each species pair's closest distance in ``atoms_list``.

        Parameters
        ----------
        atoms_list : ase.Atoms or list of ase.Atoms
            Training structures (minimum-image and periodic images counted).
        search : float, default=4.0
            Å. Pairs of species present in the data but never closer than this get the onset ``search``.
        margin : float, default=0.0
            Å subtracted from every onset (a wall farther inside the data's range).
        stiffness : float, default=1000.0
            eV/Å³.
        """
        from ..structures.neighbours import neighbour_list
        from ..structures.packing import pack

        packed = pack(atoms_list)
        pairs = neighbour_list(packed, float(search))
        symbols = np.array(chemical_symbols)[packed.numbers]
        onsets = {}
        present = sorted(set(symbols.tolist()), key=lambda s: atomic_numbers[s])
        for i, a in enumerate(present):
            for b in present[i:]:
                onsets[_pair_key(a, b)] = float(search)
        for key, distance in zip((_pair_key(a, b) for a, b in zip(symbols[pairs.center], symbols[pairs.neighbour])),
                                 pairs.distances):
            onsets[key] = min(onsets[key], float(distance))
        # rounded down to 1e-6 Å: short in a file header, and never above a training distance
        return cls({key: float(np.floor((value - margin) * 1e6) / 1e6) for key, value in onsets.items()},
                   stiffness=stiffness)

    # ------------------------------------------------------------ validation
    def _table(self) -> dict:
        if not isinstance(self.onsets, dict) or not self.onsets:
            raise TypeError(f"`onsets` must be a non-empty {{pair: Å}} dict; got {self.onsets!r}")
        table = {}
        for key, value in self.onsets.items():
            pair = _parse_pair(key)
            if pair in table:
                raise ValueError(f"`onsets` gives the pair {pair!r} twice")
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value > 0):
                raise ValueError(f"`onsets` value of {pair!r} must be a number > 0 (Å); got {value!r}")
            table[pair] = float(value)
        _check_positive(self.stiffness, "stiffness", "eV/Å³")
        return table

    def check(self, atoms_list):
        """Raise a ``ValueError`` naming the first structure with a species pair that has no onset."""
        table = self._table()
        for index, atoms in enumerate(atoms_list):
            present = sorted(set(atoms.get_chemical_symbols()), key=lambda s: atomic_numbers[s])
            missing = [_pair_key(a, b) for i, a in enumerate(present) for b in present[i:]
                       if _pair_key(a, b) not in table]
            if missing:
                raise ValueError(f"structure {index} ({atoms.get_chemical_formula()}) has species pairs {missing} "
                                 f"without a core-repulsion onset; the table covers {sorted(table)}")

    # ------------------------------------------------------------ evaluation
    def evaluate(self, atoms_list, *, forces=True, virial=False, local_energy=False):
        """Energies and, on request, forces, virials and per-atom energies of the wall.

        Returns
        -------
        dict
            As :meth:`kernelpot.potential.coulomb_baseline.CoulombBaseline.evaluate`: ``"energy"`` (n_structures,)
            eV, ``"forces"`` (n_atoms_total, 3) eV/Å, ``"virial"`` (n_structures, 3, 3) eV (``-stress * volume``),
            ``"local_energy"`` (n_atoms_total,) eV.
        """
        table = self._table()
        atoms_list = list(atoms_list)
        self.check(atoms_list)
        k = float(self.stiffness)

        def pair_energy(keys, r):
            depth = np.clip(_per_pair(keys, table, np.nan) - r, 0.0, None)
            return k * depth**3, -3.0 * k * depth**2

        return _pair_sum(atoms_list, max(table.values()), pair_energy, forces, virial, local_energy)

    # ---------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        """JSON-serialisable description, read back by :meth:`from_dict` (stored in ``.kpot`` headers)."""
        return {"kind": "core_repulsion", "version": 1, "onsets": self._table(), "stiffness": float(self.stiffness)}

    @classmethod
    def from_dict(cls, spec: dict) -> CoreRepulsion:
        check_description(spec, "core_repulsion", "core-repulsion")
        core = cls(dict(spec["onsets"]), stiffness=spec["stiffness"])
        core._table()
        return core

    def __repr__(self):
        return f"CoreRepulsion({self.onsets!r}, stiffness={self.stiffness!r})"


class PairBarrier(_PairTable):
    r"""Smooth energy barriers over pair-distance bands the reference data never visited (a baseline).

    .. math::

        E = \sum_{i<j} h \, u^3, \quad u = \frac{4 (r_{ij} - a)(b - r_{ij})}{(b - a)^2} \quad (a < r_{ij} < b),

    zero outside the band ``(a, b)`` of the species pair, ``h`` at its middle, continuous with two derivatives at
    both ends. Water is the example: over 949 NaCl–water frames (revPBE0-D3) no O–H distance lies between 1.136 Å
    (the longest bond) and 1.373 Å (the shortest hydrogen bond). A GAP knows nothing there; with a fixed-charge
    Coulomb baseline pulling O and H together, MD moved protons into that band, waters shared them and the box
    heated. The barrier keeps MD where the data are and, built by :meth:`from_structures` with a margin, is zero on
    every reference structure (so a GAP fitted without it is the GAP fitted with it).

    Parameters
    ----------
    bands : dict
        ``{pair: (a, b)}`` in Å, pairs as ``"H-O"`` or ``("O", "H")``; pairs without a band get none.
    height : float, default=0.5
        h in eV. The band is narrow, so the barrier is stiff: keep it low enough for the MD time step (on water,
        0.5 fs: 2 eV heated an NVE run by 0.48 eV per 100 fs, 0.5 eV by 0.012).
    """

    _KIND, _LABEL, _TABLE, _SCALAR = "pair_barrier", "pair-barrier", "bands", "height"

    def __init__(self, bands, *, height=0.5):
        self.bands = bands
        self.height = height

    @classmethod
    def from_structures(cls, atoms_list, pairs, *, r_max=2.0, min_width=0.1, margin=0.02, height=0.5):
        """Barriers over the widest empty distance band of each of ``pairs`` (below ``r_max`` Å) in the data.

        A band narrower than ``min_width`` Å once ``margin`` Å is taken off each side gets no barrier.
        """
        from ..structures.neighbours import neighbour_list
        from ..structures.packing import pack

        packed = pack(atoms_list)
        found = neighbour_list(packed, float(r_max))
        symbols = np.array(chemical_symbols)[packed.numbers]
        keys = np.array([_pair_key(a, b) for a, b in zip(symbols[found.center], symbols[found.neighbour])])
        bands = {}
        for pair in pairs:
            pair = _parse_pair(pair)
            distances = np.unique(found.distances[keys == pair])
            if len(distances) < 2:
                continue
            k = int(np.argmax(np.diff(distances)))  # the widest gap between two distances of the data
            a, b = distances[k] + margin, distances[k + 1] - margin
            if b - a >= min_width:
                bands[pair] = (float(np.ceil(a * 1e6) / 1e6), float(np.floor(b * 1e6) / 1e6))
        return cls(bands, height=height)

    def _table(self) -> dict:
        table = _pair_tuples(self.bands, "bands", "(a, b) in Å", lambda a, b: 0 <= a < b, "must satisfy 0 <= a < b")
        _check_positive(self.height, "height", "eV")
        return table

    def evaluate(self, atoms_list, *, forces=True, virial=False, local_energy=False):
        """As :meth:`CoreRepulsion.evaluate`."""
        table = self._table()
        atoms_list = list(atoms_list)

        def pair_energy(keys, r):
            lower = _per_pair(keys, {k: v[0] for k, v in table.items()}, 0.0)
            upper = _per_pair(keys, {k: v[1] for k, v in table.items()}, 0.0)
            inside = (r > lower) & (r < upper)
            width2 = np.where(inside, (upper - lower) ** 2, 1.0)
            u = np.where(inside, 4.0 * (r - lower) * (upper - r) / width2, 0.0)
            du = np.where(inside, 4.0 * (lower + upper - 2.0 * r) / width2, 0.0)
            h = float(self.height)
            return h * u**3, 3.0 * h * u**2 * du

        cutoff = max((b for _, b in table.values()), default=0.0)
        return _pair_sum(atoms_list, cutoff, pair_energy, forces, virial, local_energy)


class LennardJones(_PairTable):
    r"""Lennard-Jones pairs, shifted so that energy and force vanish at a cutoff (a baseline for ``SparseGPR``).

    .. math::

        E = \sum_{i<j} \big[\phi(r_{ij}) - \phi(r_c) - (r_{ij} - r_c)\,\phi'(r_c)\big], \quad
        \phi(r) = 4 \varepsilon_{ab} \big[(\sigma_{ab}/r)^{12} - (\sigma_{ab}/r)^6\big] \quad (r_{ij} < r_c),

    LAMMPS' ``lj/sf``. Fixed point charges alone pull hydrogen-bonded waters together without bound (the H···O
    Coulomb force at 1.4 Å is 2.5 eV/Å); a classical water model stops them with an O–O Lennard-Jones repulsion.
    Put under a GAP with those charges, it makes the baseline a complete, stable force field (TIP3P with
    Joung–Cheatham ions: :meth:`from_species` with :data:`TIP3P_JOUNG_CHEATHAM`), so that where the training data
    end the model falls back to a liquid, not to a collapse. Unlike :class:`CoreRepulsion` it is not zero on the
    data: the GAP learns the reference minus it.

    Parameters
    ----------
    pairs : dict
        ``{pair: (epsilon, sigma)}`` in eV and Å, pairs as ``"O-O"`` or ``("Na", "O")``; pairs not listed do not
        interact.
    cutoff : float, default=5.0
        r_c in Å. Inside a GAP's cutoff the shift is learned away, so r_c need not exceed it.
    """

    _KIND, _LABEL, _TABLE, _SCALAR = "lennard_jones", "Lennard-Jones", "pairs", "cutoff"

    def __init__(self, pairs, *, cutoff=5.0):
        self.pairs = pairs
        self.cutoff = cutoff

    @classmethod
    def from_species(cls, parameters, *, cutoff=5.0):
        """Pairs of every two species in ``{species: (epsilon eV, sigma Å)}`` by Lorentz–Berthelot mixing
        (ε_ab = √(ε_a ε_b), σ_ab = (σ_a + σ_b)/2), e.g. ``LennardJones.from_species(TIP3P_JOUNG_CHEATHAM)``."""
        species = list(parameters)
        pairs = {}
        for i, a in enumerate(species):
            for b in species[i:]:
                (ea, sa), (eb, sb) = parameters[a], parameters[b]
                pairs[_parse_pair((a, b))] = (float(np.sqrt(ea * eb)), 0.5 * (float(sa) + float(sb)))
        return cls(pairs, cutoff=cutoff)

    def _table(self) -> dict:
        table = _pair_tuples(self.pairs, "pairs", "(epsilon eV, sigma Å)", lambda e, s: e >= 0 and s > 0,
                             "needs epsilon >= 0 and sigma > 0", empty=False)
        _check_positive(self.cutoff, "cutoff", "Å")
        return table

    def evaluate(self, atoms_list, *, forces=True, virial=False, local_energy=False):
        """As :meth:`CoreRepulsion.evaluate`."""
        table = self._table()
        cutoff = float(self.cutoff)

        def pair_energy(keys, r):
            epsilon = _per_pair(keys, {k: v[0] for k, v in table.items()}, 0.0)
            sigma = _per_pair(keys, {k: v[1] for k, v in table.items()}, 1.0)

            def phi(x):
                s6 = (sigma / x) ** 6
                return 4.0 * epsilon * (s6 * s6 - s6), 4.0 * epsilon * (6.0 * s6 - 12.0 * s6 * s6) / x

            e, de = phi(r)
            e_c, de_c = phi(np.full_like(r, cutoff))
            inside = r < cutoff
            return np.where(inside, e - e_c - (r - cutoff) * de_c, 0.0), np.where(inside, de - de_c, 0.0)

        return _pair_sum(list(atoms_list), cutoff, pair_energy, forces, virial, local_energy)


class HydrogenBondWall(_Described):
    r"""A cubic wall between hydrogens and the acceptor atoms they are not bonded to (a baseline for ``SparseGPR``).

    .. math::

        E = \sum_{h} \Big[\sum_{a} w_{ha}(r_{ha}) - \max_a w_{ha}(r_{ha})\Big], \quad
        w_{ha}(r) = k_{ha} \, (r_{ha}^0 - r)^3 \quad (r < r_{ha}^0),

    summed over hydrogens ``h`` and the atoms ``a`` of the acceptor species named in ``walls``. Subtracting the
    largest term leaves out each hydrogen's own atom (its covalent partner is its closest acceptor, so it carries
    the largest term) without a bond topology, and keeps the energy continuous when a proton changes owner (the
    forces then jump; at that point, a proton halfway between two oxygens, the O–H ``PairBarrier`` of a water
    baseline keeps MD away). Unlike a plain pair wall (:class:`CoreRepulsion`) the onset ``r0`` can therefore lie
    above the bond length. Over 949 revPBE0-D3 NaCl–water frames 16 intermolecular H···O distances are below
    1.45 Å (0.017 per frame, none below 1.373 Å), while a GAP fitted to them ran MD with 1.4 per frame (it pulls
    hydrogen bonds shut where its data end): ``{"H-O": (1.45, 133.0)}`` is ~0 on the data (RMS force over all
    atoms 9 meV/Å) and 511 meV/Å on that MD's frames. Moved up to the tail of the data, ``(1.65, 9.0)`` adds the
    repulsion that GAP lacked there: the mean force pushing a hydrogen-bonded H back at H···O 1.50–1.55 Å was
    0.66 eV/Å with the GAP, 1.06 with the wall added, 1.07 in DFT (held-out frames; their force RMSE fell from
    110.9 to 109.7 meV/Å).

    Parameters
    ----------
    walls : dict
        ``{pair: (r0 Å, k eV/Å³)}``, each pair a hydrogen and an acceptor species: ``{"H-O": (1.45, 133.0)}``.
    hydrogen : str, default="H"
        The species of the hydrogens (the other species of each pair are the acceptors).

    Examples
    --------
    >>> from ase import Atoms
    >>> wall = HydrogenBondWall({"H-O": (1.5, 100.0)})
    >>> dimer = Atoms("OHO", positions=[[0, 0, 0], [0.98, 0, 0], [2.38, 0, 0]])  # H...O 1.4 Å
    >>> round(float(wall.evaluate([dimer])["energy"][0]), 6)  # 100 (1.5 - 1.4)^3; the O-H bond itself: nothing
    0.1
    """

    def __init__(self, walls, *, hydrogen="H"):
        self.walls = walls
        self.hydrogen = hydrogen

    def _table(self) -> dict:
        table = _wall_table(self.walls, self.hydrogen)
        for pair in table:
            if self.hydrogen not in pair.split("-") or pair == f"{self.hydrogen}-{self.hydrogen}":
                raise ValueError(f"`walls` pair {pair!r} must join the hydrogen species {self.hydrogen!r} to an "
                                 "acceptor species")
        return table

    def check(self, atoms_list):
        self._table()

    def evaluate(self, atoms_list, *, forces=True, virial=False, local_energy=False):
        """As :meth:`CoreRepulsion.evaluate` (per-atom energies are put on the hydrogens)."""
        from ..structures.neighbours import neighbour_list
        from ..structures.packing import pack

        table = self._table()
        atoms_list = list(atoms_list)
        z_h = atomic_numbers[self.hydrogen]
        acceptors = {atomic_numbers[next(s for s in pair.split("-") if s != self.hydrogen)]: value
                     for pair, value in table.items()}
        packed = pack(atoms_list)
        out = _zero_results(len(atoms_list), len(packed.numbers), forces, virial, local_energy)
        pairs = neighbour_list(packed, max(r0 for r0, _ in acceptors.values()))
        z_neighbour = packed.numbers[pairs.neighbour]
        keep = (packed.numbers[pairs.center] == z_h) & np.isin(z_neighbour, list(acceptors))
        center, neighbour, r = pairs.center[keep], pairs.neighbour[keep], pairs.distances[keep]
        vectors, z_neighbour = pairs.vectors[keep], z_neighbour[keep]
        onset = np.array([acceptors[z][0] for z in z_neighbour])
        k = np.array([acceptors[z][1] for z in z_neighbour])
        depth = np.clip(onset - r, 0.0, None)
        energy, d_energy = k * depth**3, -3.0 * k * depth**2
        # each hydrogen's largest term (its own atom) is left out: first of its pairs ordered by falling energy
        order = np.lexsort((-energy, center))
        first = order[np.r_[True, center[order][1:] != center[order][:-1]]] if len(order) else order
        energy[first], d_energy[first] = 0.0, 0.0
        active = energy > 0
        if not active.any():
            return out
        center, neighbour, r, vectors = center[active], neighbour[active], r[active], vectors[active]
        energy, d_energy = energy[active], d_energy[active]
        structure = np.searchsorted(packed.offsets, center, side="right") - 1
        out["energy"] += np.bincount(structure, energy, minlength=len(atoms_list))
        pull = (d_energy / r)[:, None] * vectors  # F_h = dE/dr (r_a - r_h) / r; the acceptor gets the opposite
        if forces:
            np.add.at(out["forces"], center, pull)
            np.add.at(out["forces"], neighbour, -pull)
        if virial:
            np.add.at(out["virial"], structure, -pull[:, :, None] * vectors[:, None, :])
        if local_energy:
            np.add.at(out["local_energy"], center, energy)
        return out

    def to_dict(self) -> dict:
        """JSON-serialisable description, read back by :meth:`from_dict` (stored in ``.kpot`` headers)."""
        return {"kind": "hydrogen_bond_wall", "version": 1, "walls": {k: list(v) for k, v in self._table().items()},
                "hydrogen": self.hydrogen}

    @classmethod
    def from_dict(cls, spec: dict) -> HydrogenBondWall:
        check_description(spec, "hydrogen_bond_wall", "hydrogen-bond wall")
        wall = cls({k: tuple(v) for k, v in spec["walls"].items()}, hydrogen=spec["hydrogen"])
        wall._table()
        return wall

    def __repr__(self):
        return f"HydrogenBondWall({self.walls!r}, hydrogen={self.hydrogen!r})"


class UnbridgedPairWall(_Described):
    r"""A cubic wall on heavy-atom pairs that no hydrogen bridges (a baseline for ``SparseGPR``).

    .. math::

        E = \sum_{i<j} k_{ab} \, (r_{ab}^0 - r_{ij})^3 \prod_h \big[1 - s(r_{ih}) \, s(r_{jh})\big]
        \quad (r_{ij} < r_{ab}^0),

    over the pairs of the species named in ``walls`` and every hydrogen ``h``; ``s`` is 1 below the bridge's
    inner distance ``a``, 0 beyond its outer one ``b``, and falls between them as a quintic smoothstep. A
    hydrogen close to both atoms (its own O at ~1 Å, the other within ``a``: a hydrogen bond) switches the pair's
    wall off; a pair with no hydrogen within ``b`` of both feels all of it. No topology is needed, and the
    energy is twice continuously differentiable in every coordinate (a hydrogen moving in or out of a bridge
    turns the wall on or off smoothly). Over 949 revPBE0-D3 NaCl–water frames O–O pairs closer than 2.55 Å with no
    hydrogen bond between them (no H within 1.7 Å of the other oxygen) occur 0.035 times per frame; a GAP's MD,
    kept from closing hydrogen bonds by a :class:`HydrogenBondWall`, made them 0.8 per frame after 8 ps (often two
    waters in the shell of a Cl⁻). ``{"O-O": (2.6, 50.0)}`` with ``bridge=(1.8, 2.2)`` is ~0 on those frames (RMS
    force over all atoms 7.8 meV/Å, 4.8 % of frames touched) and 33 meV/Å on that MD's frames (56 % touched).

    Parameters
    ----------
    walls : dict
        ``{pair: (r0 Å, k eV/Å³)}``, pairs of non-hydrogen species: ``{"O-O": (2.6, 20.0)}``.
    bridge : (float, float), default=(1.75, 2.05)
        ``(a, b)`` in Å: a hydrogen bridges a pair fully when it is within ``a`` of both atoms, not at all when it is
        farther than ``b`` from either.
    hydrogen : str, default="H"
        The species of the bridging hydrogens.

    Examples
    --------
    >>> from ase import Atoms
    >>> wall = UnbridgedPairWall({"O-O": (2.6, 20.0)})
    >>> pair = Atoms("O2", positions=[[0, 0, 0], [2.5, 0, 0]])
    >>> round(float(wall.evaluate([pair])["energy"][0]), 6)  # 20 (2.6 - 2.5)^3
    0.02
    >>> bridged = pair + Atoms("H", positions=[[0.98, 0, 0]])  # an O-H...O hydrogen bond: H...O 1.52 Å
    >>> float(wall.evaluate([bridged])["energy"][0])
    0.0
    """

    def __init__(self, walls, *, bridge=(1.75, 2.05), hydrogen="H"):
        self.walls = walls
        self.bridge = bridge
        self.hydrogen = hydrogen

    def _table(self) -> dict:
        table = _wall_table(self.walls, self.hydrogen)
        for pair in table:
            if self.hydrogen in pair.split("-"):
                raise ValueError(f"`walls` pair {pair!r} must join two non-hydrogen species (the hydrogens "
                                 f"{self.hydrogen!r} are the bridges)")
        try:
            inner, outer = (float(v) for v in self.bridge)
        except (TypeError, ValueError):
            raise ValueError(f"`bridge` must be (a, b) in Å; got {self.bridge!r}") from None
        if not (np.isfinite(inner) and np.isfinite(outer) and 0 < inner < outer):
            raise ValueError(f"`bridge` (a, b) needs 0 < a < b (Å); got {self.bridge!r}")
        return table

    def check(self, atoms_list):
        self._table()

    def bridge_weight(self, r):
        """``(s, ds/dr)`` of the bridge switch at distances ``r`` (Å): 1 below ``a``, 0 beyond ``b``."""
        inner, outer = (float(v) for v in self.bridge)
        t = np.clip((np.asarray(r, dtype=float) - inner) / (outer - inner), 0.0, 1.0)
        return 1.0 - t**3 * (10.0 - 15.0 * t + 6.0 * t**2), -30.0 * t**2 * (1.0 - t) ** 2 / (outer - inner)

    def evaluate(self, atoms_list, *, forces=True, virial=False, local_energy=False):
        """As :meth:`CoreRepulsion.evaluate` (per-atom energies split evenly between a pair's two atoms)."""
        from ..structures.neighbours import neighbour_list
        from ..structures.packing import pack

        table = self._table()
        atoms_list = list(atoms_list)
        packed = pack(atoms_list)
        out = _zero_results(len(atoms_list), len(packed.numbers), forces, virial, local_energy)
        outer = float(self.bridge[1])
        pairs = neighbour_list(packed, max(outer, max(r0 for r0, _ in table.values())))
        z_center, z_neighbour = packed.numbers[pairs.center], packed.numbers[pairs.neighbour]
        onset, k = np.zeros(len(pairs.center)), np.zeros(len(pairs.center))
        for pair, (r0, stiffness) in table.items():
            za, zb = (atomic_numbers[s] for s in pair.split("-"))
            match = ((z_center == za) & (z_neighbour == zb)) | ((z_center == zb) & (z_neighbour == za))
            onset[match], k[match] = r0, stiffness
        # every pair is listed from both ends: each direction carries half of it, bridges seen from its centre
        wall = np.flatnonzero(pairs.distances < onset)
        if not len(wall):
            return out
        center, neighbour, r, v_ij = (pairs.center[wall], pairs.neighbour[wall], pairs.distances[wall],
                                      pairs.vectors[wall])
        depth = onset[wall] - r
        g, dg = 0.5 * k[wall] * depth**3, -1.5 * k[wall] * depth**2
        # hydrogens within b of each wall pair's centre (the list is ordered by centre), then their distance to
        # the other atom from the two vectors (periodic images need no bookkeeping)
        near_h = np.flatnonzero((z_neighbour == atomic_numbers[self.hydrogen]) & (pairs.distances < outer))
        count = np.bincount(pairs.center[near_h], minlength=len(packed.numbers))
        reps = count[center]
        owner = np.repeat(np.arange(len(wall)), reps)
        rank = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)  # 0, 1, ... within each pair
        entry = near_h[np.repeat(np.cumsum(count)[center] - reps, reps) + rank]
        u_jh = pairs.vectors[entry] - v_ij[owner]
        r_jh = np.linalg.norm(u_jh, axis=1)
        s_i, ds_i = self.bridge_weight(pairs.distances[entry])
        s_j, ds_j = self.bridge_weight(r_jh)
        keep = s_i * s_j > 0  # elsewhere the factor is 1 and its derivatives 0 (s = 0 only where ds = 0)
        owner, entry, u_jh, r_jh = owner[keep], entry[keep], u_jh[keep], r_jh[keep]
        s_i, ds_i, s_j, ds_j = s_i[keep], ds_i[keep], s_j[keep], ds_j[keep]
        v_ih, r_ih = pairs.vectors[entry], pairs.distances[entry]
        factor = 1.0 - s_i * s_j
        # the product over a pair's bridges and, per bridge, the product of the others (factors may be exactly 0)
        is_zero = factor == 0.0
        zeros = np.bincount(owner, is_zero, minlength=len(wall))
        nonzero = np.ones(len(wall))
        np.multiply.at(nonzero, owner, np.where(is_zero, 1.0, factor))
        weight = np.where(zeros == 0, nonzero, 0.0)
        others = np.where(is_zero, np.where(zeros[owner] == 1, nonzero[owner], 0.0),
                          np.where(zeros[owner] == 0, nonzero[owner] / np.where(is_zero, 1.0, factor), 0.0))
        energy = g * weight
        # E = g(r_ij) w; dE/d(bridge factor) = g * others; factor = 1 - s(r_ih) s(r_jh), u_jh = v_ih - v_ij
        d_factor = -g[owner] * others
        grad_ih = d_factor[:, None] * ((ds_i * s_j / r_ih)[:, None] * v_ih + (s_i * ds_j / r_jh)[:, None] * u_jh)
        grad_ij = (dg * weight / r)[:, None] * v_ij
        np.add.at(grad_ij, owner, -d_factor[:, None] * (s_i * ds_j / r_jh)[:, None] * u_jh)
        structure = np.searchsorted(packed.offsets, center, side="right") - 1
        out["energy"] += np.bincount(structure, energy, minlength=len(atoms_list))
        if forces:  # F = -dE/dx with v = x_neighbour - x_centre
            np.add.at(out["forces"], center, grad_ij)
            np.add.at(out["forces"], neighbour, -grad_ij)
            np.add.at(out["forces"], pairs.center[entry], grad_ih)
            np.add.at(out["forces"], pairs.neighbour[entry], -grad_ih)
        if virial:
            np.add.at(out["virial"], structure, -grad_ij[:, :, None] * v_ij[:, None, :])
            np.add.at(out["virial"], structure[owner], -grad_ih[:, :, None] * v_ih[:, None, :])
        if local_energy:
            np.add.at(out["local_energy"], center, energy)
        return out

    def to_dict(self) -> dict:
        """JSON-serialisable description, read back by :meth:`from_dict` (stored in ``.kpot`` headers)."""
        return {"kind": "unbridged_pair_wall", "version": 1,
                "walls": {k: list(v) for k, v in self._table().items()},
                "bridge": [float(v) for v in self.bridge], "hydrogen": self.hydrogen}

    @classmethod
    def from_dict(cls, spec: dict) -> UnbridgedPairWall:
        check_description(spec, "unbridged_pair_wall", "unbridged-pair wall")
        wall = cls({k: tuple(v) for k, v in spec["walls"].items()}, bridge=tuple(spec["bridge"]),
                   hydrogen=spec["hydrogen"])
        wall._table()
        return wall

    def __repr__(self):
        return f"UnbridgedPairWall({self.walls!r}, bridge={self.bridge!r}, hydrogen={self.hydrogen!r})"


def _wall_table(walls, hydrogen) -> dict:
    """``{pair: (r0, k)}`` of a wall that knows its hydrogens (checked: a chemical symbol)."""
    if not isinstance(hydrogen, str) or hydrogen not in atomic_numbers or hydrogen == "X":
        raise ValueError(f"`hydrogen` must be a chemical symbol; got {hydrogen!r}")
    return _pair_tuples(walls, "walls", "(r0 Å, k eV/Å³)", lambda r0, k: r0 > 0 and k > 0, "needs r0 > 0 and k > 0",
                        empty=False)


def _per_pair(keys, values, default):
    """``values[key]`` (``default`` when absent) for every entry of the pair-key array ``keys`` (one dict look-up per
    distinct pair, not per pair: MD calls this on every step)."""
    distinct, index = np.unique(keys, return_inverse=True)
    return np.array([values.get(key, default) for key in distinct], dtype=float)[index]


def _zero_results(n_structures, n_atoms, forces, virial, local_energy):
    """The zeroed result dict of a baseline's ``evaluate`` (energy always; the requested derivatives)."""
    out = {"energy": np.zeros(n_structures)}
    if forces:
        out["forces"] = np.zeros((n_atoms, 3))
    if virial:
        out["virial"] = np.zeros((n_structures, 3, 3))
    if local_energy:
        out["local_energy"] = np.zeros(n_atoms)
    return out


def _pair_sum(atoms_list, cutoff, pair_energy, forces, virial, local_energy):
    """Energies and derivatives of a pair potential ``pair_energy(pair_keys, r) -> (e, de/dr)`` (per pair)."""
    from ..structures.neighbours import neighbour_list
    from ..structures.packing import pack

    packed = pack(atoms_list)
    out = _zero_results(len(atoms_list), len(packed.numbers), forces, virial, local_energy)
    if cutoff <= 0:
        return out
    pairs = neighbour_list(packed, cutoff)
    # one key per distinct species pair (sorted by atomic number), spread over the pairs
    codes = np.minimum(packed.numbers[pairs.center], packed.numbers[pairs.neighbour]) * 256 + np.maximum(
        packed.numbers[pairs.center], packed.numbers[pairs.neighbour])
    distinct, index = np.unique(codes, return_inverse=True)
    keys = np.array([_pair_key(chemical_symbols[c // 256], chemical_symbols[c % 256]) for c in distinct])[index]
    energy, d_energy = pair_energy(keys, pairs.distances)
    active = (energy != 0) | (d_energy != 0)
    if not active.any():
        return out
    center, r, vectors = pairs.center[active], pairs.distances[active], pairs.vectors[active]
    # Both directions of every pair are listed: each carries half the pair's energy and virial.
    half_energy, d_energy = 0.5 * energy[active], d_energy[active]
    structure = np.searchsorted(packed.offsets, center, side="right") - 1
    out["energy"] += np.bincount(structure, half_energy, minlength=len(atoms_list))
    if forces:
        # F_i = -dE/dr_i = dE/dr * (r_j - r_i) / r, from the pairs centred on i.
        np.add.at(out["forces"], center, (d_energy / r)[:, None] * vectors)
    if virial:
        np.add.at(out["virial"], structure,
                  -0.5 * (d_energy / r)[:, None, None] * vectors[:, :, None] * vectors[:, None, :])
    if local_energy:
        np.add.at(out["local_energy"], center, half_energy)
    return out


class BaselineSum(_Described):
    """Several fixed baselines added together, e.g. ``BaselineSum([CoulombBaseline(q), CoreRepulsion(...)])``.

    Parameters
    ----------
    parts : list
        Baselines with ``check``, ``evaluate`` and ``to_dict`` (fixed ones: a learned baseline such as kQEq,
        which stores arrays, is refused when the model is saved).
    """

    def __init__(self, parts):
        self.parts = parts

    def _parts(self):
        parts = list(self.parts) if isinstance(self.parts, (list, tuple)) else None
        if not parts:
            raise TypeError(f"`parts` must be a non-empty list of baselines; got {self.parts!r}")
        for part in parts:
            if not all(callable(getattr(part, name, None)) for name in ("check", "evaluate", "to_dict")):
                raise TypeError(f"every part must have check, evaluate and to_dict; got {type(part).__name__}")
        return parts

    def check(self, atoms_list):
        for part in self._parts():
            part.check(atoms_list)

    def evaluate(self, atoms_list, *, forces=True, virial=False, local_energy=False):
        """The parts' results added (same keys and shapes as each part's)."""
        total = None
        for part in self._parts():
            result = part.evaluate(atoms_list, forces=forces, virial=virial, local_energy=local_energy)
            total = result if total is None else {key: total[key] + result[key] for key in total}
        return total

    def to_dict(self) -> dict:
        parts = self._parts()
        learned = [type(p).__name__ for p in parts if callable(getattr(p, "arrays", None))]
        if learned:
            raise TypeError(f"a BaselineSum can only save fixed baselines; {learned} store learned arrays")
        return {"kind": "sum", "version": 1, "parts": [p.to_dict() for p in parts]}

    @classmethod
    def from_dict(cls, spec: dict, build_part) -> BaselineSum:
        """Rebuild from :meth:`to_dict` output; ``build_part(part_spec)`` builds each part (the file loader's)."""
        check_description(spec, "sum", "baseline sum")
        return cls([build_part(part) for part in spec["parts"]])

    def __repr__(self):
        return f"BaselineSum({self.parts!r})"

