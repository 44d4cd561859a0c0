"""Tests of kernelpot.structures: packing (validation) and the cell-list neighbour list.

The neighbour list is checked pair by pair against ``ase.neighborlist.neighbor_list``
(same (i, j, S) triples, same distances) on molecules, tiny and skewed periodic
cells, slabs, wires and unwrapped positions, plus its own contract: sort order,
pair offsets, symmetry (i, j, S) <-> (j, i, -S), vectors from raw positions.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111
from ase.neighborlist import neighbor_list as ase_neighbor_list
from conftest import rmd17

from kernelpot.structures.neighbours import NeighbourList, neighbour_list
from kernelpot.structures.packing import PackedStructures, as_atoms_list, pack


# --------------------------------------------------------------------------- structures
def _aspirin(frame: int = 0) -> Atoms:
    data = rmd17("rmd17_aspirin_train_01")
    return Atoms(numbers=data["nuclear_charges"], positions=data["coords"][frame])


def _water_box(n_side: int = 3, seed: int = 0) -> Atoms:
    """Periodic box of n_side**3 rigid waters at 1 g/cm³ (L = 9.3 Å for n_side=3)."""
    rng = np.random.default_rng(seed)
    length = (n_side**3 * 18.015 / 6.02214076e23 * 1e24) ** (1 / 3)
    angle = np.deg2rad(104.52)
    monomer = np.array([[0, 0, 0], [0.9572, 0, 0], [0.9572 * np.cos(angle), 0.9572 * np.sin(angle), 0]])
    grid = (np.indices((n_side,) * 3).reshape(3, -1).T + 0.5) * (length / n_side)
    positions = [monomer @ np.linalg.qr(rng.normal(size=(3, 3)))[0].T + c for c in grid]
    return Atoms("OH2" * n_side**3, positions=np.concatenate(positions), cell=[length] * 3, pbc=True)


def _slab() -> Atoms:
    slab = fcc111("Cu", size=(2, 3, 3), vacuum=7.0)
    slab.pbc = (True, True, False)
    slab.positions[0] += [0.3, -0.2, 0.1]  # break symmetry so no two pairs tie
    return slab


def _slab_without_c() -> Atoms:
    """Slab whose non-periodic lattice vector is zero: binned over the vacuum extent."""
    slab = _slab()
    slab.cell[2] = 0.0
    return slab


def _skewed_unwrapped(seed: int = 3) -> Atoms:
    """Strongly skewed triclinic cell, atoms up to two cells outside it."""
    rng = np.random.default_rng(seed)
    cell = np.array([[5.0, 0.0, 0.0], [4.6, 1.5, 0.0], [-3.9, 1.1, 2.2]])
    fractional = rng.uniform(-2.0, 3.0, size=(12, 3))
    return Atoms("C6O6", positions=fractional @ cell, cell=cell, pbc=True)


def _wire() -> Atoms:
    return Atoms("C3", positions=[[0, 0, 0], [0.7, 1.0, 1.2], [5.0, -1.0, 0.4]],
                 cell=[[0, 0, 0], [0, 0, 0], [0.6, 0.3, 2.4]], pbc=(False, False, True))


CASES = {
    "si_primitive_5A": (lambda: bulk("Si"), 5.0),
    "si_primitive_8A": (lambda: bulk("Si"), 8.0),
    "si_rattled_supercell": (lambda: _rattled(bulk("Si", cubic=True) * (2, 2, 2)), 4.5),
    "slab_vacuum_TTF": (lambda: _slab(), 6.0),
    "slab_zero_c_TTF": (lambda: _slab_without_c(), 6.0),
    "skewed_unwrapped": (lambda: _skewed_unwrapped(), 4.0),
    "water_box": (lambda: _water_box(), 5.0),
    "wire_FFT": (lambda: _wire(), 6.0),
    "aspirin": (lambda: _aspirin(), 3.5),
    # 8 well-separated aspirins: 168 atoms, past the all-pairs path into the cell list.
    "aspirin_cluster": (lambda: _aspirin_cluster(), 4.0),
}


def _rattled(atoms: Atoms) -> Atoms:
    atoms = atoms.copy()
    atoms.rattle(0.05, seed=1)
    return atoms


def _aspirin_cluster() -> Atoms:
    molecule = _aspirin()
    cluster = Atoms()
    for k, corner in enumerate(np.indices((2, 2, 2)).reshape(3, -1).T):
        copy = _aspirin(frame=k)
        copy.translate(corner * 7.5)
        cluster += copy
    assert len(cluster) == 8 * len(molecule)
    return cluster


@pytest.fixture(params=sorted(CASES))
def case(request):
    build, cutoff = CASES[request.param]
    return build(), cutoff


# --------------------------------------------------------------------------- helpers
def _as_dict(i, j, shifts, distances) -> dict:
    return {(int(a), int(b), *map(int, s)): float(d) for a, b, s, d in zip(i, j, shifts, distances)}


def _assert_same_as_ase(atoms: Atoms, cutoff: float, nl: NeighbourList, start: int = 0) -> None:
    i, j, shifts, d = ase_neighbor_list("ijSd", atoms, cutoff)
    expected = _as_dict(i + start, j + start, shifts, d)
    got = _as_dict(nl.center, nl.neighbour, nl.shifts, nl.distances)
    assert len(got) == nl.n_pairs, "duplicate (i, j, S) triples"
    assert set(got) == set(expected)
    keys = sorted(expected)
    np.testing.assert_allclose([got[k] for k in keys], [expected[k] for k in keys], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- neighbour list vs ASE
def test_neighbour_list_matches_ase(case):
    atoms, cutoff = case
    nl = neighbour_list(pack(atoms), cutoff)
    assert nl.n_pairs > 0
    _assert_same_as_ase(atoms, cutoff, nl)


def test_small_cell_has_periodic_self_images():
    nl = neighbour_list(pack(bulk("Si")), 8.0)
    self_pairs = nl.center == nl.neighbour
    assert self_pairs.any()
    assert np.all(np.any(nl.shifts[self_pairs] != 0, axis=1)), "zero-shift self pair"
    # Every image of the other atom within 8 Å: pairs come in (i, j, S) and (i, i, S) families.
    assert np.unique(nl.shifts[self_pairs], axis=0).shape[0] == self_pairs.sum() // 2


def test_random_cells_match_ase():
    """Random triclinic cells, pbc patterns, cutoffs and unwrapped positions."""
    rng = np.random.default_rng(7)
    checked = 0
    while checked < 40:
        cell = np.diag(rng.uniform(1.0, 6.0, 3)) + np.triu(rng.uniform(-3.0, 3.0, (3, 3)), 1)
        pbc = rng.random(3) < 0.6
        n = int(rng.integers(1, 15))
        atoms = Atoms(numbers=np.ones(n, int), positions=rng.uniform(-1.0, 2.0, (n, 3)) @ cell,
                      cell=cell[rng.permutation(3)], pbc=pbc)
        cutoff = float(rng.uniform(0.5, 6.0))
        _assert_same_as_ase(atoms, cutoff, neighbour_list(pack(atoms), cutoff))
        checked += 1


def test_packed_structures_are_offset_and_independent():
    structures = [_aspirin(), bulk("Si"), _slab(), Atoms("H", positions=[[0, 0, 0]]),
                  _skewed_unwrapped(), _water_box(n_side=2)]
    cutoff = 4.5
    packed = pack(structures)
    nl = neighbour_list(packed, cutoff)
    structure_of = packed.structure_index
    assert np.all(structure_of[nl.center] == structure_of[nl.neighbour]), "pair across structures"
    for s, atoms in enumerate(structures):
        start, stop = packed.offsets[s], packed.offsets[s + 1]
        lo, hi = nl.pair_offsets[start], nl.pair_offsets[stop]
        part = NeighbourList(nl.center[lo:hi], nl.neighbour[lo:hi], nl.shifts[lo:hi], nl.vectors[lo:hi],
                             nl.distances[lo:hi], nl.pair_offsets[start:stop + 1] - lo, nl.cutoff)
        _assert_same_as_ase(atoms, cutoff, part, start=start)


# --------------------------------------------------------------------------- contract
def test_contract_order_offsets_symmetry_vectors(case):
    atoms, cutoff = case
    packed = pack(atoms)
    nl = neighbour_list(packed, cutoff)
    n_pairs = nl.n_pairs
    for name in ("center", "neighbour", "shifts", "pair_offsets"):
        assert getattr(nl, name).dtype == np.int64, name
    assert nl.shifts.shape == (n_pairs, 3) and nl.vectors.shape == (n_pairs, 3)
    assert nl.cutoff == cutoff
    # Sorted by center, then neighbour, then shift, strictly (no duplicates).
    order = np.lexsort((nl.shifts[:, 2], nl.shifts[:, 1], nl.shifts[:, 0], nl.neighbour, nl.center))
    np.testing.assert_array_equal(order, np.arange(n_pairs))
    rows = np.column_stack([nl.center, nl.neighbour, nl.shifts])
    assert np.all(np.any(np.diff(rows, axis=0) != 0, axis=1))
    # pair_offsets delimit each center's pairs.
    assert nl.pair_offsets.shape == (len(atoms) + 1,) and nl.pair_offsets[-1] == n_pairs
    np.testing.assert_array_equal(np.diff(nl.pair_offsets), np.bincount(nl.center, minlength=len(atoms)))
    # Vectors from the raw (unwrapped) positions; distances are their norms, < cutoff.
    expected = atoms.positions[nl.neighbour] + nl.shifts @ atoms.cell.array - atoms.positions[nl.center]
    np.testing.assert_allclose(nl.vectors, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(nl.distances, np.linalg.norm(nl.vectors, axis=1), rtol=0, atol=1e-12)
    assert np.all(nl.distances < cutoff)
    assert not np.any((nl.center == nl.neighbour) & np.all(nl.shifts == 0, axis=1))
    # Symmetry: (i, j, S) present iff (j, i, -S), with the opposite vector.
    forward = {(i, j, *s): v for i, j, s, v in zip(nl.center, nl.neighbour, nl.shifts.tolist(), nl.vectors)}
    for (i, j, *s), v in forward.items():
        np.testing.assert_allclose(forward[(j, i, *(-x for x in s))], -v, rtol=0, atol=1e-12)


def test_translating_an_atom_by_a_lattice_vector_only_changes_its_shifts():
    atoms = _skewed_unwrapped()
    moved = atoms.copy()
    lattice_shift = np.array([2, -1, 3])
    moved.positions[4] += lattice_shift @ atoms.cell.array
    a = neighbour_list(pack(atoms), 4.0)
    b = neighbour_list(pack(moved), 4.0)
    expected = a.shifts.copy()
    expected[a.neighbour == 4] -= lattice_shift
    expected[a.center == 4] += lattice_shift  # self images of atom 4 get both: net zero
    # Same pairs, same order within each (i, j) group up to the uniform shift change.
    np.testing.assert_array_equal(a.center, b.center)
    np.testing.assert_array_equal(a.neighbour, b.neighbour)
    np.testing.assert_array_equal(expected, b.shifts)
    np.testing.assert_allclose(a.vectors, b.vectors, rtol=0, atol=1e-12)


def test_isolated_atom_and_empty_structure_have_no_pairs():
    structures = [Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), Atoms(),
                  Atoms("Ar", positions=[[0, 0, 0]], cell=[20, 20, 20], pbc=True),
                  Atoms("H2", positions=[[0, 0, 0], [0, 0, 9.0]])]
    nl = neighbour_list(pack(structures, allow_empty=True), 3.0)
    np.testing.assert_array_equal(nl.pair_offsets, [0, 1, 2, 2, 2, 2])
    np.testing.assert_array_equal(nl.center, [0, 1])
    np.testing.assert_array_equal(nl.neighbour, [1, 0])


def test_cutoff_below_and_above_a_bond():
    """Strict inequality: a pair exactly at the cutoff distance is excluded."""
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 1.5]])
    assert neighbour_list(pack(atoms), 1.5).n_pairs == 0
    assert neighbour_list(pack(atoms), np.nextafter(1.5, 2.0)).n_pairs == 2


@pytest.mark.parametrize("cutoff", [0.0, -1.0, np.nan, np.inf])
def test_neighbour_list_rejects_bad_cutoff_value(cutoff):
    with pytest.raises(ValueError, match=r"`cutoff` must be finite and > 0 Å; got"):
        neighbour_list(pack(bulk("Si")), cutoff)


def test_neighbour_list_rejects_non_numeric_cutoff():
    with pytest.raises(TypeError, match=r"`cutoff` must be a real number in Å; got '5'"):
        neighbour_list(pack(bulk("Si")), "5")


def test_neighbour_list_rejects_unpacked_input():
    with pytest.raises(TypeError, match=r"`packed` must be a PackedStructures .*got Atoms"):
        neighbour_list(bulk("Si"), 3.0)


# --------------------------------------------------------------------------- pack
def test_pack_concatenates_in_input_order():
    structures = [bulk("Si"), Atoms("H2O", positions=np.eye(3)), _slab()]
    packed = pack(structures)
    np.testing.assert_array_equal(packed.offsets, np.cumsum([0] + [len(a) for a in structures]))
    np.testing.assert_array_equal(packed.positions, np.concatenate([a.positions for a in structures]))
    np.testing.assert_array_equal(packed.numbers, np.concatenate([a.numbers for a in structures]))
    np.testing.assert_array_equal(packed.cells, [a.cell.array for a in structures])
    np.testing.assert_array_equal(packed.pbc, [a.pbc for a in structures])
    np.testing.assert_array_equal(packed.structure_index, np.repeat([0, 1, 2], [2, 3, len(structures[2])]))
    assert packed.n_structures == 3 and packed.n_atoms == packed.offsets[-1]
    assert pack(packed) is packed
    assert pack(structures[0]).n_structures == 1


def test_pack_does_not_alias_caller_positions():
    atoms = bulk("Si")
    packed = pack(atoms)
    packed.positions[0, 0] += 1.0
    assert atoms.positions[0, 0] == 0.0


def test_pack_rejects_empty_list():
    with pytest.raises(ValueError, match="no structures given"):
        pack([])


def test_pack_rejects_empty_structure():
    with pytest.raises(ValueError, match="structure 1 has no atoms"):
        pack([bulk("Si"), Atoms()])


def test_pack_rejects_nan_positions():
    atoms = Atoms("H3", positions=[[0, 0, 0], [np.nan, 0, 0], [1, 0, 0]])
    message = r"structure 0 has non-finite \(NaN or inf\) positions for atoms \[1\]"
    with pytest.raises(ValueError, match=message):
        pack(atoms)


def test_pack_rejects_inf_positions():
    atoms = Atoms("H3", positions=[[0, 0, 0], [1, 0, 0], [0, -np.inf, 0]])
    message = r"structure 1 has non-finite \(NaN or inf\) positions for atoms \[2\]"
    with pytest.raises(ValueError, match=message):
        pack([bulk("Si"), atoms])


def test_pack_rejects_non_finite_cell():
    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[[np.nan, 0, 0], [0, 3, 0], [0, 0, 3]], pbc=False)
    with pytest.raises(ValueError, match="structure 0 has a non-finite cell"):
        pack(atoms)


def test_pack_rejects_zero_lattice_vector_with_pbc():
    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[[3, 0, 0], [0, 3, 0], [0, 0, 0]], pbc=True)
    with pytest.raises(ValueError, match="periodic along lattice vector 2 but that vector is zero"):
        pack(atoms)


def test_pack_rejects_linearly_dependent_periodic_vectors():
    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[[3, 0, 0], [0, 3, 0], [3, 3, 0]], pbc=True)
    message = r"zero volume \(its periodic lattice vectors are linearly dependent\)"
    with pytest.raises(ValueError, match=message):
        pack(atoms)


def test_pack_rejects_non_atoms_item():
    with pytest.raises(TypeError, match="structure 1 is a str, not an ase.Atoms"):
        pack([bulk("Si"), "Si"])


def test_pack_rejects_non_iterable():
    with pytest.raises(TypeError, match="expected ASE Atoms or a list of Atoms, got int"):
        pack(3)


def test_as_atoms_list_rejects_packed_structures():
    with pytest.raises(TypeError, match="got PackedStructures"):
        as_atoms_list(pack(bulk("Si")))


def test_pack_allow_empty_keeps_empty_structure():
    packed = pack([Atoms(), bulk("Si")], allow_empty=True)
    assert isinstance(packed, PackedStructures)
    np.testing.assert_array_equal(packed.offsets, [0, 0, 2])


def test_single_pass_retries_when_the_density_estimate_is_exceeded():
    """A dense cluster in a large periodic box: the buffer sized from the mean density overflows once."""
    rng = np.random.default_rng(3)
    cluster = rng.uniform(0.0, 4.0, (120, 3)) + 20.0
    atoms = Atoms(numbers=np.ones(120, int), positions=cluster, cell=np.eye(3) * 60.0, pbc=True)
    nl = neighbour_list(pack(atoms), 3.0)
    _assert_same_as_ase(atoms, 3.0, nl)
    # the multi-structure (count, then fill) path gives the same list, in the same order
    both = neighbour_list(pack([atoms, atoms]), 3.0)
    first = both.center < len(atoms)
    np.testing.assert_array_equal(both.neighbour[first], nl.neighbour)
    np.testing.assert_array_equal(both.shifts[first], nl.shifts)
    np.testing.assert_allclose(both.vectors[first], nl.vectors, rtol=0, atol=0)


def test_verlet_neighbours_reuse_and_rebuild():
    from kernelpot.structures.neighbours import VerletNeighbours

    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    rng = np.random.default_rng(0)
    verlet = VerletNeighbours(skin=0.6)
    for _ in range(8):
        atoms.positions += rng.normal(0.0, 0.04, atoms.positions.shape)
        nl = verlet(pack(atoms), 4.0)
        _assert_same_as_ase(atoms, 4.0, nl)
        # a kept list and a fresh search agree bit for bit (a resumed MD run repeats an uninterrupted one)
        fresh = neighbour_list(pack(atoms), 4.0)
        for name in ("center", "neighbour", "shifts", "vectors", "distances"):
            np.testing.assert_array_equal(getattr(nl, name), getattr(fresh, name))
    assert verlet.n_calls == 8 and 1 <= verlet.n_builds < 8
    atoms.set_cell(atoms.cell.array * 1.01, scale_atoms=True)  # a new cell: searched again
    builds = verlet.n_builds
    _assert_same_as_ase(atoms, 4.0, verlet(pack(atoms), 4.0))
    assert verlet.n_builds == builds + 1
    with pytest.raises(ValueError, match="skin"):
        VerletNeighbours(skin=-1.0)
