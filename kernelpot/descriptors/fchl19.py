"""FCHL19 atom-centred descriptor (FCHL-ACSF).

A. S. Christensen, L. A. Bratholm, F. A. Faber, O. A. von Lilienfeld,
"FCHL revisited: Faster and more accurate quantum machine learning",
J. Chem. Phys. 152, 044107 (2020), doi:10.1063/1.5126701.

Numerically the same features as ``qmllib.representations.generate_fchl19``
(qmllib 1.2), with the same parameter names, defaults and feature order, for
molecules; periodic structures are supported as well, through the periodic
images of the neighbour list (qmllib has no periodic FCHL19).
"""

from __future__ import annotations

import numbers as _numbers

import numba
import numpy as np
from ase.data import atomic_numbers as _atomic_numbers

from ..structures.neighbours import MAX_NEIGHBOURS, check_distinct_positions, check_max_neighbours, neighbour_list
from ..structures.packing import pack
from ._fchl19_kernels import fchl19_features, fchl19_features_and_gradients
from .base import AtomicFeatures, Descriptor, SparseGradients

__all__ = ["FCHL19"]

# Centers handed to a Numba thread at a time: environments differ a lot in
# cost (molecule sizes, surfaces), so threads take small chunks dynamically
# instead of one equal share each.
_CHUNK_SIZE = 16

class FCHL19(Descriptor):
    r"""FCHL19 per-atom features, with analytic sparse position gradients.

    For an atom ``i`` the feature vector is the concatenation of

    * a two-body part, one block of ``nRs2`` functions per element ``Z`` of
      ``elements``: :math:`\sum_{j \in Z} \mathcal{N}_{\log}(R_s; r_{ij},
      \eta_2)\, f_c(r_{ij}; r_\mathrm{cut}) / r_{ij}^{d_2}` on the grid
      ``R_s = rcut * (1, ..., nRs2) / nRs2``, where :math:`\mathcal{N}_{\log}`
      is a log-normal density of mean :math:`r_{ij}` and
      :math:`\sigma^2 = \ln(1 + \eta_2 / r_{ij}^2)`, and
      :math:`f_c(r; r_c) = (\cos(\pi r / r_c) + 1) / 2`;
    * a three-body part, one block of ``nRs3 * 2 * nFourier`` functions per
      unordered element pair ``(Z_a <= Z_b)`` (index order of ``elements``):
      for each pair of neighbours j, k within ``acut``,
      :math:`w \sqrt{\eta_3/\pi}\, e^{-\eta_3 (\frac{r_{ij} + r_{ik}}{2}
      - R_s)^2} f_c(r_{ij}) f_c(r_{ik})\, \frac{1 + 3 \cos\theta_i
      \cos\theta_j \cos\theta_k}{(r_{ij} r_{ik} r_{jk})^{d_3}}
      \times 2 e^{-(\zeta o)^2/2} \{\cos o\theta_i, \sin o\theta_i\}` for
      odd orders ``o = 1, 3, ..., 2 nFourier - 1``, on the grid
      ``R_s = acut * (1, ..., nRs3) / nRs3``.

    Parameters
    ----------
    elements : sequence of int or str
        Atomic numbers (or chemical symbols) of every element the
        structures may contain. Their order sets the order of the feature
        blocks (as in qmllib, whose default is ``[1, 6, 7, 8, 16]``).
    nRs2 : int, default=24
        Number of radial grid points of the two-body part.
    nRs3 : int, default=20
        Number of radial grid points of the three-body part.
    nFourier : int, default=1
        Number of odd Fourier orders of the angular part.
    eta2 : float, default=0.32
        Width parameter of the two-body log-normal functions, in Å².
    eta3 : float, default=2.7
        Precision of the three-body Gaussians, in 1/Å².
    zeta : float, default=pi
        Damping of the higher Fourier orders (dimensionless).
    rcut : float, default=8.0
        Two-body cutoff radius, in Å.
    acut : float, default=8.0
        Three-body cutoff radius, in Å (applies to r_ij and r_ik).
    two_body_decay : float, default=1.8
        Power d_2 of the 1/r_ij**d_2 scaling of the two-body part.
    three_body_decay : float, default=0.57
        Power d_3 of the 1/(r_ij r_ik r_jk)**d_3 scaling of the three-body part.
    three_body_weight : float, default=13.4
        Weight w of the three-body part (multiplied by sqrt(eta3 / pi), as
        in qmllib).
    max_neighbours : int, default=10000
        Largest number of neighbours (periodic images included) of one atom
        within ``max(rcut, acut)``. A structure with more (a 0.1 Å periodic cell, a
        cell in Bohr read as Å) is refused with a ``ValueError`` naming the
        count and the cell instead of running for hours; see
        :data:`kernelpot.structures.neighbours.MAX_NEIGHBOURS`.

    Notes
    -----
    Periodic structures: neighbours are taken with all their periodic images
    within the cutoffs, and ``r_jk`` is the distance between those images,
    so a structure in a large enough box gives the same features as the
    isolated molecule, and a supercell the same features as its primitive
    cell.

    Gradients follow the layout of :mod:`kernelpot.descriptors.base`: for
    each atom, its self row first, then one row per neighbour-list pair
    (one per periodic image) within ``max(rcut, acut)``; ``vectors`` is
    filled, so the gradients also give the virial. For (nearly) linear
    triplets, 1/sin(theta) is regularised exactly as in qmllib.

    Examples
    --------
    >>> from ase.build import molecule
    >>> X = FCHL19([1, 6, 8]).transform([molecule("CH3OH")])
    >>> X.shape
    (6, 312)
    """

    def __init__(
        self,
        elements,
        *,
        nRs2=24,
        nRs3=20,
        nFourier=1,
        eta2=0.32,
        eta3=2.7,
        zeta=np.pi,
        rcut=8.0,
        acut=8.0,
        two_body_decay=1.8,
        three_body_decay=0.57,
        three_body_weight=13.4,
        max_neighbours=MAX_NEIGHBOURS,
    ):
        self.elements = elements
        self.nRs2 = nRs2
        self.nRs3 = nRs3
        self.nFourier = nFourier
        self.eta2 = eta2
        self.eta3 = eta3
        self.zeta = zeta
        self.rcut = rcut
        self.acut = acut
        self.two_body_decay = two_body_decay
        self.three_body_decay = three_body_decay
        self.three_body_weight = three_body_weight
        self.max_neighbours = max_neighbours

    @property
    def n_features(self) -> int:
        """Length of one atom's feature vector."""
        n = len(_check_elements(self.elements))
        return n * _check_int("nRs2", self.nRs2) + n * (n + 1) * _check_int(
            "nRs3", self.nRs3
        ) * _check_int("nFourier", self.nFourier)

    def transform(self, X, *, gradients: bool = False):
        """Compute the FCHL19 features of every atom.

        Parameters
        ----------
        X : ase.Atoms or sequence of ase.Atoms
            Structures, positions in Å. Periodic cells are allowed.
        gradients : bool, default=False
            Also return the analytic position gradients.

        Returns
        -------
        features : AtomicFeatures of shape (n_atoms_total, n_features)
            One row per atom, in input order (``offsets`` and ``numbers``
            set). Units as in qmllib: the two-body functions are in
            Å**-(1 + two_body_decay), the three-body ones in
            Å**-(3 three_body_decay + 1) (sqrt(eta3) included).
        gradients : SparseGradients
            Only if ``gradients=True``. ``values`` of shape
            (n_atoms_total + n_pairs, 3, n_features), feature units per Å,
            ``vectors`` of shape (n_atoms_total + n_pairs, 3) in Å; see
            :mod:`kernelpot.descriptors.base` for the layout. Memory:
            8 * 3 * n_features bytes per row (17 kB with the defaults and
            five elements), so batch large sets.

        Raises
        ------
        TypeError
            A parameter of the wrong type (e.g. a float for ``nRs2``), or
            ``X`` not made of ``ase.Atoms``.
        ValueError
            A parameter out of range; a structure with an element not in
            ``elements``; no structures or an empty structure; non-finite
            positions or a degenerate periodic cell (see
            :func:`kernelpot.structures.packing.pack`); two atoms closer
            than 1e-8 Å; an atom with more than ``max_neighbours`` neighbours.
        """
        if not isinstance(gradients, (bool, np.bool_)):
            raise TypeError(f"`gradients` must be a bool; got {gradients!r}")
        params = self._kernel_parameters()
        packed = pack(X)
        species = _species_index(packed, params.pop("elements"))
        nl = neighbour_list(packed, max(params["rcut"], params["acut"]), max_neighbours=self.max_neighbours)
        check_distinct_positions(packed, nl)
        args = (
            nl.pair_offsets, nl.neighbour, nl.vectors, nl.distances, species,
            params["block3"], params["log_rs2"], params["rs2"], params["rs3"],
            params["step3"], params["angular_weights"], params["eta2"], params["eta3"],
            params["rcut"], params["acut"], params["two_body_decay"],
            params["three_body_decay"], params["three_body_weight"],
        )
        out = np.zeros((packed.n_atoms, params["n_features"]))
        if not gradients:
            with numba.parallel_chunksize(_CHUNK_SIZE):
                fchl19_features(*args, out)
            return AtomicFeatures(out, packed.offsets, packed.numbers)
        grad = np.zeros((nl.n_pairs + packed.n_atoms, 3, params["n_features"]))
        with numba.parallel_chunksize(_CHUNK_SIZE):
            fchl19_features_and_gradients(*args, out, grad)
        center, neighbour, vectors = _gradient_rows(packed.n_atoms, nl)
        return (
            AtomicFeatures(out, packed.offsets, packed.numbers),
            SparseGradients(grad, center, neighbour, vectors),
        )

    def _kernel_parameters(self) -> dict:
        """Validate the hyperparameters and derive the kernels' arrays from them."""
        elements = _check_elements(self.elements)
        n_rs2 = _check_int("nRs2", self.nRs2)
        n_rs3 = _check_int("nRs3", self.nRs3)
        n_fourier = _check_int("nFourier", self.nFourier)
        p = {
            name: _check_float(name, getattr(self, name), positive=positive)
            for name, positive in [
                ("eta2", True), ("eta3", True), ("zeta", False), ("rcut", True),
                ("acut", True), ("two_body_decay", False), ("three_body_decay", False),
                ("three_body_weight", False),
            ]
        }
        check_max_neighbours(self.max_neighbours)
        n = len(elements)
        # Same grids as qmllib: linspace(0, cut, n + 1)[1:].
        rs2 = np.linspace(0.0, p["rcut"], n_rs2 + 1)[1:]
        rs3 = np.linspace(0.0, p["acut"], n_rs3 + 1)[1:]
        orders = 2 * np.arange(n_fourier) + 1
        block_size = 2 * n_fourier * n_rs3
        block3 = np.empty((n, n), dtype=np.int64)
        for a in range(n):
            for b in range(a, n):
                # Upper-triangle index of the unordered element pair (a <= b).
                block3[a, b] = block3[b, a] = n * n_rs2 + block_size * (
                    a * n - a * (a + 1) // 2 + b
                )
        p.update(
            elements=elements,
            rs2=rs2,
            log_rs2=np.log(rs2),
            rs3=rs3,
            step3=p["acut"] / n_rs3,
            angular_weights=2.0 * np.exp(-0.5 * (p["zeta"] * orders) ** 2),
            block3=block3,
            n_features=n * n_rs2 + n * (n + 1) // 2 * block_size,
        )
        p["three_body_weight"] = np.sqrt(p["eta3"] / np.pi) * p["three_body_weight"]
        return p


def _check_elements(elements) -> np.ndarray:
    if isinstance(elements, (str, bytes, _numbers.Number)) or not hasattr(elements, "__len__"):
        raise TypeError(
            f"`elements` must be a sequence of atomic numbers or symbols; got {elements!r}"
        )
    if len(elements) == 0:
        raise ValueError("`elements` must contain at least one element; got []")
    result = []
    for item in elements:
        if isinstance(item, str):
            if item not in _atomic_numbers:
                raise ValueError(f"`elements` contains an unknown chemical symbol {item!r}")
            result.append(_atomic_numbers[item])
        elif isinstance(item, _numbers.Integral) and not isinstance(item, (bool, np.bool_)):
            if not 1 <= item <= 118:
                raise ValueError(f"`elements` must hold atomic numbers in 1..118; got {item}")
            result.append(int(item))
        else:
            raise TypeError(f"`elements` must hold ints or chemical symbols; got {item!r}")
    if len(set(result)) != len(result):
        raise ValueError(f"`elements` must not repeat an element; got {list(elements)}")
    return np.array(result, dtype=np.int64)


def _check_int(name: str, value) -> int:
    if not isinstance(value, _numbers.Integral) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be an int; got {value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be >= 1; got {value}")
    return int(value)


def _check_float(name: str, value, *, positive: bool) -> float:
    if not isinstance(value, _numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a real number; got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value}")
    if positive and value <= 0:
        raise ValueError(f"`{name}` must be > 0; got {value}")
    return value


def _species_index(packed, elements: np.ndarray) -> np.ndarray:
    """Index in ``elements`` of every atom's element; an error names the missing ones."""
    lookup = np.full(max(int(packed.numbers.max()), int(elements.max())) + 1, -1, np.int64)
    lookup[elements] = np.arange(len(elements))
    species = lookup[packed.numbers]
    if (species < 0).any():
        bad_atom = int(np.argmax(species < 0))
        s = int(np.searchsorted(packed.offsets, bad_atom, side="right") - 1)
        atoms = packed.numbers[packed.offsets[s] : packed.offsets[s + 1]]
        missing = sorted(set(atoms.tolist()) - set(elements.tolist()))
        raise ValueError(
            f"species {missing} in structure {s} are not in elements={elements.tolist()}"
        )
    return species


def _gradient_rows(n_atoms: int, nl):
    """center, neighbour and image vectors (Å) of the gradient rows: self row, then pairs."""
    n_rows = nl.n_pairs + n_atoms
    self_rows = nl.pair_offsets[:-1] + np.arange(n_atoms)
    pair_rows = np.arange(nl.n_pairs) + nl.center + 1
    center = np.empty(n_rows, dtype=np.int64)
    neighbour = np.empty(n_rows, dtype=np.int64)
    vectors = np.zeros((n_rows, 3))
    center[self_rows] = np.arange(n_atoms)
    neighbour[self_rows] = np.arange(n_atoms)
    center[pair_rows] = nl.center
    neighbour[pair_rows] = nl.neighbour
    vectors[pair_rows] = nl.vectors
    return center, neighbour, vectors
