"""Many-body tensor representation (MBTR), compatible with dscribe 2.1.

The MBTR [1]_ of a structure is a sum of Gaussians, one per k-body term
(atom, pair or triple), placed on a grid at the value of a geometry function
and scaled by a weighting function, in one block per species combination:

.. math::

    f_k^{(Z_1 \\ldots Z_k)}(x) = \\sum_{\\text{terms}} w_k \\,
    \\mathcal{N}(x \\mid g_k, \\sigma^2)

* k = 1: geometry ``atomic_number`` (Z); weighting ``unity``.
* k = 2: geometry ``distance`` r (Å) or ``inverse_distance`` 1/r (1/Å);
  weighting ``unity``, ``exp`` (:math:`e^{-s r}`) or ``inverse_square``
  (:math:`1/r^2`).
* k = 3: geometry ``angle`` (degrees) or ``cosine`` of the angle at the
  middle atom; weighting ``unity``, ``exp``
  (:math:`e^{-s (r_{ij} + r_{jk} + r_{ki})}`) or ``smooth_cutoff``.

It reproduces dscribe 2.1's ``MBTR`` (same parameters, grid, feature order
and periodic counting) to round-off; ``tests/test_mbtr.py`` checks it
against frozen dscribe outputs. Deliberate differences: the output is always
a dense float64 array (no ``sparse``/``dtype``); all periodic images within
the cutoff are found even for positions outside the cell (dscribe assumes
wrapped positions); a row of zeros stays zero under ``"l2"`` normalisation
(dscribe returns NaN).

References
----------
.. [1] H. Huo and M. Rupp, "Unified representation of molecules and crystals
   for machine learning", Mach. Learn.: Sci. Technol. 3, 045017 (2022),
   doi:10.1088/2632-2153/aca005.
"""

from __future__ import annotations

import math
import numbers as _numbers

import numpy as np
from ase.data import atomic_numbers as _ase_atomic_numbers

from kernelpot.descriptors import _mbtr_kernels as _kernels
from kernelpot.descriptors.base import Descriptor
from kernelpot.structures.neighbours import (
    MAX_NEIGHBOURS,
    check_distinct_positions,
    check_max_neighbours,
    neighbour_list,
)
from kernelpot.structures.packing import PackedStructures, pack

__all__ = ["MBTR", "species_to_numbers"]

_GEOMETRIES = {
    "atomic_number": (1, _kernels.GEOM_ATOMIC_NUMBER),
    "distance": (2, _kernels.GEOM_DISTANCE),
    "inverse_distance": (2, _kernels.GEOM_INVERSE_DISTANCE),
    "angle": (3, _kernels.GEOM_ANGLE),
    "cosine": (3, _kernels.GEOM_COSINE),
}
# Allowed weighting functions per degree, each with its allowed keys.
_WEIGHTINGS = {
    1: {"unity": set()},
    2: {"unity": set(), "exp": {"scale", "r_cut", "threshold"}, "inverse_square": {"r_cut"}},
    3: {"unity": set(), "exp": {"scale", "r_cut", "threshold"},
        "smooth_cutoff": {"r_cut", "sharpness"}},
}
_WEIGHT_CODES = {
    "unity": _kernels.WEIGHT_UNITY,
    "exp": _kernels.WEIGHT_EXP,
    "inverse_square": _kernels.WEIGHT_INVERSE_SQUARE,
    "smooth_cutoff": _kernels.WEIGHT_SMOOTH_CUTOFF,
}
_NORMALIZATIONS = ("none", "l2", "n_atoms", "valle_oganov")


def species_to_numbers(species) -> np.ndarray:
    """Sorted unique atomic numbers of ``species`` (symbols or atomic numbers).

    Raises
    ------
    ValueError
        ``species`` is empty, a bare string, or holds an unknown symbol or a
        number outside 1..118.
    """
    if species is None or isinstance(species, str) or not hasattr(species, "__iter__"):
        raise ValueError(
            f"`species` must be a list of chemical symbols or atomic numbers; got {species!r}"
        )
    result = set()
    for item in species:
        if isinstance(item, str):
            if item not in _ase_atomic_numbers or _ase_atomic_numbers[item] == 0:
                raise ValueError(f"`species` has an unknown chemical symbol {item!r}")
            result.add(_ase_atomic_numbers[item])
        elif isinstance(item, _numbers.Integral) and not isinstance(item, bool):
            if not 1 <= int(item) <= 118:
                raise ValueError(f"`species` atomic numbers must be in 1..118; got {item}")
            result.add(int(item))
        else:
            raise ValueError(f"`species` entries must be symbols or atomic numbers; got {item!r}")
    if not result:
        raise ValueError("`species` must name at least one element; got an empty list")
    return np.array(sorted(result), dtype=np.int64)


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, _numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0; got {value}")
    return float(value)


class MBTR(Descriptor):
    """Many-body tensor representation of whole structures (one k-term).

    A global descriptor: :meth:`transform` returns a plain float64 ndarray
    of shape ``(n_structures, n_features)``, one row per structure.

    Parameters
    ----------
    geometry : dict
        ``{"function": name}`` with name ``"atomic_number"`` (k = 1),
        ``"distance"`` (Å) or ``"inverse_distance"`` (1/Å) (k = 2),
        ``"angle"`` (degrees) or ``"cosine"`` (k = 3).
    grid : dict
        ``{"min": float, "max": float, "n": int, "sigma": float}``: ``n >= 2``
        grid points from ``min`` to ``max`` (units of the geometry function)
        and Gaussian standard deviation ``sigma > 0`` in the same units.
    weighting : dict or None, default=None
        ``{"function": "unity"}`` (or None);
        ``{"function": "exp", "threshold": t, "scale": s}`` or
        ``{..., "r_cut": r}`` (k = 2, 3): weight ``exp(-s x)`` with ``x`` the
        distance (k = 2) or the perimeter of the triangle (k = 3); terms with
        weight below ``t`` are dropped. Given ``r_cut`` (Å) instead of ``s``,
        ``s = -ln(t) / r_cut`` for k = 2 and ``s = -ln(t) / (2 r_cut)`` for
        k = 3, so pairs (or triangle sides) up to ``r_cut`` are kept;
        ``{"function": "inverse_square", "r_cut": r}`` (k = 2): ``1/r²`` for
        pairs closer than ``r``; ``{"function": "smooth_cutoff", "r_cut": r,
        "sharpness": y}`` (k = 3, ``y`` defaults to 2): ``f(r_ji) f(r_jk)``
        with ``f(r) = 1 + y (r/r_cut)^(y+1) - (y+1) (r/r_cut)^y`` for both
        arms of the angle at ``j`` closer than ``r_cut``. Periodic k = 2, 3
        terms need a weighting other than unity (it limits the images).
    normalize_gaussians : bool, default=True
        Whether each Gaussian has unit area; if False its peak is 1.
    normalization : {"none", "l2", "n_atoms", "valle_oganov"}, default="none"
        ``"l2"``: each row scaled to unit Euclidean norm; ``"n_atoms"``:
        divided by the number of atoms in the structure (cell);
        ``"valle_oganov"`` (periodic, k = 2, 3): each species block scaled
        by ``V / (4 pi N_a N_b)`` (pairs, with ``N_a N_a / 2`` for equal
        species) or ``V / (N_a N_b N_c)`` (triples), ``V`` the cell volume
        in Å³.
    species : sequence of str or int
        Every element that may occur; the feature blocks follow their
        atomic numbers in increasing order.
    periodic : bool, default=False
        Use periodic images along each structure's ``pbc`` directions.
    max_neighbours : int, default=10000
        Largest number of neighbours (periodic images included) of one atom
        within the range of ``weighting`` (k = 2, 3). A structure with more (a 0.1 Å periodic cell, a
        cell in Bohr read as Å) is refused with a ``ValueError`` naming the
        count and the cell instead of running for hours; see
        :data:`kernelpot.structures.neighbours.MAX_NEIGHBOURS`.

    Notes
    -----
    Feature order (dscribe's, see :meth:`get_location`): k = 1 one block per
    species; k = 2 the upper triangle ``a <= b`` of species pairs, row by
    row; k = 3 the vertex species first, then the upper triangle of the two
    end species. Each block has ``grid["n"]`` values.

    In a periodic structure each k-body term is counted once per orbit of
    lattice translations, so a supercell gives the primitive cell's MBTR
    times the number of cells (equal after ``"n_atoms"`` or ``"l2"``
    normalisation).

    Examples
    --------
    >>> from ase.build import molecule
    >>> mbtr = MBTR(species=["H", "O"], geometry={"function": "inverse_distance"},
    ...             grid={"min": 0.0, "max": 1.5, "n": 30, "sigma": 0.05},
    ...             weighting={"function": "exp", "scale": 0.5, "threshold": 1e-3})
    >>> mbtr.transform([molecule("H2O"), molecule("H2O2")]).shape
    (2, 90)
    """

    def __init__(
        self,
        geometry=None,
        grid=None,
        weighting=None,
        normalize_gaussians=True,
        normalization="none",
        species=None,
        periodic=False,
        max_neighbours=MAX_NEIGHBOURS,
    ):
        self.geometry = geometry
        self.grid = grid
        self.weighting = weighting
        self.normalize_gaussians = normalize_gaussians
        self.normalization = normalization
        self.species = species
        self.periodic = periodic
        self.max_neighbours = max_neighbours

    # ------------------------------------------------------------------ validation
    def _settings(self) -> dict:
        """Validate every parameter and return the kernel settings (never mutates them)."""
        if not isinstance(self.geometry, dict) or "function" not in self.geometry:
            raise ValueError(
                '`geometry` must be a dict like {"function": "distance"}; '
                f"got {self.geometry!r}"
            )
        name = self.geometry["function"]
        if name not in _GEOMETRIES or set(self.geometry) != {"function"}:
            raise ValueError(
                f"`geometry` function must be one of {sorted(_GEOMETRIES)} and the only "
                f"key; got {self.geometry!r}"
            )
        k, geometry_code = _GEOMETRIES[name]
        settings = {"k": k, "geometry": geometry_code, **self._grid_settings()}
        settings.update(self._weighting_settings(k))
        if self.normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"`normalization` must be one of {list(_NORMALIZATIONS)}; "
                f"got {self.normalization!r}"
            )
        if self.normalization == "valle_oganov" and (not self.periodic or k == 1):
            raise ValueError(
                "`normalization`='valle_oganov' needs periodic=True and a k=2 or k=3 "
                f"geometry; got periodic={self.periodic}, geometry={name!r}"
            )
        if not isinstance(self.normalize_gaussians, (bool, np.bool_)):
            raise TypeError(
                f"`normalize_gaussians` must be a bool; got {self.normalize_gaussians!r}"
            )
        settings["species"] = species_to_numbers(self.species)
        check_max_neighbours(self.max_neighbours)
        return settings

    def _grid_settings(self) -> dict:
        grid = self.grid
        if not isinstance(grid, dict) or set(grid) != {"min", "max", "n", "sigma"}:
            raise ValueError(
                '`grid` must be a dict with exactly the keys "min", "max", "n", "sigma"; '
                f"got {grid!r}"
            )
        low, high = float(grid["min"]), float(grid["max"])
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f'`grid` needs finite "min" < "max"; got {grid!r}')
        n = grid["n"]
        if isinstance(n, bool) or not isinstance(n, _numbers.Integral) or n < 2:
            raise ValueError(f'`grid` "n" must be an integer >= 2; got {n!r}')
        sigma = _positive('`grid` "sigma"', grid["sigma"])
        return {"min": low, "max": high, "n": int(n), "sigma": sigma}

    def _weighting_settings(self, k: int) -> dict:
        weighting = {"function": "unity"} if self.weighting is None else self.weighting
        if not isinstance(weighting, dict) or "function" not in weighting:
            raise ValueError(
                f'`weighting` must be None or a dict with a "function"; got {weighting!r}'
            )
        allowed = _WEIGHTINGS[k]
        name = weighting["function"]
        if name not in allowed:
            raise ValueError(
                f"`weighting` function for k={k} must be one of {sorted(allowed)}; "
                f"got {name!r}"
            )
        extra = set(weighting) - allowed[name] - {"function"}
        if extra:
            raise ValueError(
                f"`weighting` keys {sorted(extra)} are not used by {name!r} "
                f"(allowed: {sorted(allowed[name])})"
            )
        if self.periodic and k > 1 and name == "unity":
            raise ValueError(
                "`weighting` must limit the range (exp, inverse_square or smooth_cutoff) "
                f"when periodic=True and k={k}; got {weighting!r}"
            )
        out = {"weighting": _WEIGHT_CODES[name], "scale": 0.0, "threshold": 0.0,
               "cutoff": math.inf, "sharpness": 2.0}
        if name == "exp":
            if "threshold" not in weighting or ("scale" in weighting) == ("r_cut" in weighting):
                raise ValueError(
                    '`weighting` "exp" needs "threshold" and exactly one of "scale" or '
                    f'"r_cut"; got {weighting!r}'
                )
            threshold = _positive('`weighting` "threshold"', weighting["threshold"])
            if threshold >= 1:
                raise ValueError(f'`weighting` "threshold" must be < 1; got {threshold}')
            # Triples are cut on their perimeter, which is at most 2 r_cut.
            span = -math.log(threshold) / (1.0 if k == 2 else 2.0)
            if "scale" in weighting:
                scale = _positive('`weighting` "scale"', weighting["scale"])
                cutoff = span / scale
            else:
                cutoff = _positive('`weighting` "r_cut"', weighting["r_cut"])
                scale = span / cutoff
            out.update(scale=scale, threshold=threshold, cutoff=cutoff)
        elif name in ("inverse_square", "smooth_cutoff"):
            if "r_cut" not in weighting:
                raise ValueError(f'`weighting` {name!r} needs "r_cut" (Å); got {weighting!r}')
            out["cutoff"] = _positive('`weighting` "r_cut"', weighting["r_cut"])
            if name == "smooth_cutoff":
                out["sharpness"] = _positive(
                    '`weighting` "sharpness"', weighting.get("sharpness", 2.0)
                )
        return out

    # ------------------------------------------------------------------ public API
    def get_number_of_features(self) -> int:
        """Length of one output row: ``n_blocks * grid["n"]``."""
        settings = self._settings()
        n_species = len(settings["species"])
        blocks = {1: n_species, 2: n_species * (n_species + 1) // 2,
                  3: n_species * n_species * (n_species + 1) // 2}[settings["k"]]
        return blocks * settings["n"]

    def get_location(self, species) -> slice:
        """Columns of the block of a species combination, e.g. ``("H", "O", "H")``.

        For k = 2 the order of the two species does not matter; for k = 3
        the middle one is the vertex of the angle and the ends may swap.
        """
        settings = self._settings()
        known = settings["species"]
        if len(species) != settings["k"]:
            raise ValueError(
                f"`species` combination must have {settings['k']} elements for this "
                f"geometry; got {species!r}"
            )
        index = []
        for item in species:
            number = int(species_to_numbers([item])[0])  # validates the symbol
            if number not in known:
                raise ValueError(f"species {item!r} is not in species={known.tolist()}")
            index.append(int(np.searchsorted(known, number)))
        n_species, n = len(known), settings["n"]
        if len(index) == 1:
            m = index[0]
        elif len(index) == 2:
            a, b = sorted(index)
            m = b + a * n_species - a * (a + 1) // 2
        else:
            a, c = sorted((index[0], index[2]))
            m = index[1] * n_species * (n_species + 1) // 2 + c + a * n_species - a * (a + 1) // 2
        return slice(m * n, (m + 1) * n)

    def create(self, system) -> np.ndarray:
        """dscribe-style alias of :meth:`transform`."""
        return self.transform(system)

    def transform(self, X, *, gradients: bool = False) -> np.ndarray:
        """MBTR of each structure.

        Parameters
        ----------
        X : ase.Atoms or sequence of ase.Atoms or PackedStructures
            Structures (positions in Å).
        gradients : bool, default=False
            Not supported (MBTR position gradients are not implemented); True
            raises ``ValueError``.

        Returns
        -------
        ndarray of shape (n_structures, n_features), float64
            One row per structure, columns ordered as in :meth:`get_location`.
        """
        if gradients:
            raise ValueError(
                "`gradients`=True is not supported by MBTR (a global descriptor without "
                "position gradients in kernelpot); use gradients=False"
            )
        settings = self._settings()
        packed = pack(X)
        species_index = self._species_index(packed, settings["species"])
        if not self.periodic:
            packed = PackedStructures(packed.positions, packed.numbers, packed.cells,
                                      np.zeros_like(packed.pbc), packed.offsets)
        out = np.zeros((packed.n_structures, self.get_number_of_features()))
        self._fill(out, packed, species_index, settings)
        return self._normalise(out, packed, settings)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _species_index(packed: PackedStructures, species: np.ndarray) -> np.ndarray:
        index = np.searchsorted(species, packed.numbers)
        index = np.minimum(index, len(species) - 1)
        unknown = species[index] != packed.numbers
        if unknown.any():
            structure = int(packed.structure_index[np.argmax(unknown)])
            bad = sorted(set(packed.numbers[unknown].tolist()))
            raise ValueError(
                f"species {bad} in structure {structure} are not in species={species.tolist()}"
            )
        return index.astype(np.int64)

    def _fill(self, out, packed, species_index, settings) -> None:
        n, sigma = settings["n"], settings["sigma"]
        dx = (settings["max"] - settings["min"]) / (n - 1)
        start = settings["min"] - dx / 2
        offsets = packed.offsets
        if settings["k"] == 1:
            _kernels.k1_kernel(out, packed.numbers, species_index, offsets, start, dx, sigma, n)
            return
        cutoff = settings["cutoff"]
        if not math.isfinite(cutoff):
            # Unity weighting (molecules only): every pair, so a cutoff beyond
            # the largest extent of any structure.
            cutoff = _largest_extent(packed) + 1.0
        neighbours = neighbour_list(packed, cutoff, max_neighbours=self.max_neighbours)
        check_distinct_positions(packed, neighbours)
        n_species = len(settings["species"])
        if settings["k"] == 2:
            _kernels.k2_kernel(
                out, species_index, offsets, neighbours.pair_offsets, neighbours.neighbour,
                neighbours.shifts, neighbours.distances, n_species, settings["geometry"], settings["weighting"],
                settings["scale"], settings["threshold"], start, dx, sigma, n,
            )
        else:
            _kernels.k3_kernel(
                out, species_index, offsets, neighbours.pair_offsets, neighbours.neighbour,
                neighbours.vectors, neighbours.distances, n_species, settings["geometry"],
                settings["weighting"], settings["scale"], settings["threshold"],
                settings["cutoff"], settings["sharpness"], start, dx, sigma, n,
            )

    def _normalise(self, out, packed, settings) -> np.ndarray:
        if not self.normalize_gaussians:
            out *= settings["sigma"] * math.sqrt(2.0 * math.pi)
        if self.normalization == "l2":
            _kernels.l2_normalise_rows(out)
        elif self.normalization == "n_atoms":
            out /= np.diff(packed.offsets)[:, None]
        elif self.normalization == "valle_oganov":
            out *= _valle_oganov_factors(packed, settings)
        return out


def _largest_extent(packed: PackedStructures) -> float:
    """Largest bounding-box diagonal (Å) over all structures."""
    extent = 0.0
    for s in range(packed.n_structures):
        positions = packed.positions[packed.offsets[s] : packed.offsets[s + 1]]
        if len(positions):
            extent = max(extent, float(np.linalg.norm(np.ptp(positions, axis=0))))
    return extent


def _valle_oganov_factors(packed: PackedStructures, settings: dict) -> np.ndarray:
    """Per-structure, per-column factors of the Valle-Oganov normalisation.

    Blocks of species absent from a structure stay unscaled (they are zero).
    """
    species, n = settings["species"], settings["n"]
    n_species = len(species)
    n_blocks = n_species * (n_species + 1) // 2 * (n_species if settings["k"] == 3 else 1)
    factors = np.ones((packed.n_structures, n_blocks))
    for s in range(packed.n_structures):
        numbers = packed.numbers[packed.offsets[s] : packed.offsets[s + 1]]
        counts = np.array([np.count_nonzero(numbers == z) for z in species], dtype=float)
        volume = abs(np.linalg.det(packed.cells[s]))
        present = np.flatnonzero(counts)
        for a in present:
            for b in present:
                if b < a:
                    continue
                m = b + a * n_species - a * (a + 1) // 2
                if settings["k"] == 2:
                    product = counts[a] * counts[b] * (0.5 if a == b else 1.0)
                    factors[s, m] = volume / (product * 4.0 * math.pi)
                    continue
                for vertex in present:
                    column = vertex * n_species * (n_species + 1) // 2 + m
                    factors[s, column] = volume / (counts[a] * counts[b] * counts[vertex])
    return np.repeat(factors, n, axis=1)
