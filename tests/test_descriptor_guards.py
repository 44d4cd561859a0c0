"""Guards every descriptor shares (issue 18): coincident atoms (item 11) and neighbour counts (item 13).

Each case is one descriptor and one bad input; the message must name the structure and atoms, or the count, the
cutoff and the cell, and the descriptor must return (not run for hours) on a 0.1 Å periodic cell.
"""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from kernelpot.descriptors.angle_3b import Angle3B
from kernelpot.descriptors.coulomb_matrix import CoulombMatrix
from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.fchl19 import FCHL19
from kernelpot.descriptors.lambda_soap import LambdaSOAP
from kernelpot.descriptors.mbtr import MBTR
from kernelpot.descriptors.soap import SOAP

GRID = {"min": 0.0, "max": 1.5, "n": 10, "sigma": 0.1}
EXP = {"function": "exp", "scale": 0.5, "threshold": 1e-3}

NEIGHBOUR_DESCRIPTORS = {
    "SOAP": lambda **kw: SOAP(["H", "O", "Si"], r_cut=3.0, n_max=2, l_max=2, periodic=True, **kw),
    "LambdaSOAP": lambda **kw: LambdaSOAP(["H", "O", "Si"], r_cut=3.0, n_max=2, l_max=2, periodic=True, **kw),
    "FCHL19": lambda **kw: FCHL19([1, 8, 14], **kw),
    "MBTR": lambda **kw: MBTR(species=["H", "O", "Si"], geometry={"function": "inverse_distance"}, grid=GRID,
                              weighting=EXP, periodic=True, **kw),
    "Distance2B": lambda **kw: Distance2B(cutoff=3.0, **kw),
    "Angle3B": lambda **kw: Angle3B(cutoff=3.0, **kw),
}
ALL_DESCRIPTORS = {**NEIGHBOUR_DESCRIPTORS, "CoulombMatrix": lambda **kw: CoulombMatrix(n_atoms_max=4, **kw)}
GRADIENTS = {"SOAP", "LambdaSOAP", "FCHL19", "Distance2B", "Angle3B"}


def _two_structures_second_with_coincident_atoms():
    fine = molecule("H2O")
    bad = molecule("H2O")
    bad.positions[2] = bad.positions[0]
    return [fine, bad]


@pytest.mark.parametrize("name, gradients", [(name, False) for name in sorted(ALL_DESCRIPTORS)]
                         + [(name, True) for name in sorted(GRADIENTS)])
def test_coincident_atoms_are_named(name, gradients):
    descriptor = ALL_DESCRIPTORS[name]()
    with pytest.raises(ValueError, match=r"structure 1 has atoms 0 and 2 0 Å apart, closer than the minimum "
                                         r"distance 1e-08 Å \(two atoms at one position: duplicated atoms\?\); "
                                         r"1 structure\(s\) affected: \[1\]"):
        descriptor.transform(_two_structures_second_with_coincident_atoms(), gradients=gradients)


@pytest.mark.parametrize("name", sorted(NEIGHBOUR_DESCRIPTORS))
def test_atom_on_another_atoms_periodic_image(name):
    atoms = Atoms("SiO", positions=[[0, 0, 0], [4.0, 0, 0]], cell=np.eye(3) * 4.0, pbc=True)
    with pytest.raises(ValueError, match=r"structure 0 has atoms 0 and 1 .* Å apart, closer than the minimum "
                                         r"distance 1e-08 Å"):
        NEIGHBOUR_DESCRIPTORS[name]().transform(atoms)


def test_structure_numbers_count_across_chunks(monkeypatch):
    """SOAP works in chunks of structures; the message still numbers structures as the caller does."""
    from kernelpot.descriptors import soap

    monkeypatch.setattr(soap, "_CHUNK_ATOMS", 3)
    structures = [molecule("H2O") for _ in range(3)] + _two_structures_second_with_coincident_atoms()[1:]
    with pytest.raises(ValueError, match="structure 3 has atoms 0 and 2 0 Å apart"):
        NEIGHBOUR_DESCRIPTORS["SOAP"]().transform(structures)


@pytest.mark.parametrize("name", sorted(NEIGHBOUR_DESCRIPTORS))
def test_tiny_periodic_cell_is_refused_before_the_search(name):
    """A 0.1 Å cell: FCHL19 never returned. Refused by the lower bound on the reduced lattice (large stencils)
    or by the exact count (Distance2B's 3 Å cutoff), before any pair is stored."""
    atoms = Atoms("Si", positions=[[0, 0, 0]], cell=np.eye(3) * 0.1, pbc=True)
    with pytest.raises(ValueError, match=r"(each atom|atom 0) of structure 0 has (at least )?[\d,]+ neighbours within [\d.]+ Å "
                                         r"\(periodic images included\), more than `max_neighbours`=10,000: cell "
                                         r"\[\[0.1, 0.0, 0.0\].*lengths 0.1, 0.1, 0.1 Å"):
        NEIGHBOUR_DESCRIPTORS[name]().transform(atoms)


@pytest.mark.parametrize("name", sorted(NEIGHBOUR_DESCRIPTORS))
def test_count_above_the_limit_names_atom_count_and_cell(name):
    """A legitimate crystal with a low limit: the exact count of the first atom over it."""
    atoms = [molecule("H2O"), bulk("Si", "diamond", a=5.43)]
    with pytest.raises(ValueError, match=r"atom 0 of structure 1 has [\d,]+ neighbours within [\d.]+ Å .*more than "
                                         r"`max_neighbours`=3: cell"):
        NEIGHBOUR_DESCRIPTORS[name](max_neighbours=3).transform(atoms)


def test_flat_cell_caught_by_the_exact_count():
    """A slab with a 0.3 Å in-plane cell: the lower bound allows it, the count (about 1,100) does not."""
    atoms = Atoms("Si", positions=[[0, 0, 0]], cell=[0.3, 0.3, 10.0], pbc=[True, True, False])
    with pytest.raises(ValueError, match=r"atom 0 of structure 0 has 1,\d\d\d neighbours within 6 Å"):
        Distance2B(cutoff=6.0, max_neighbours=1000).transform(atoms)


@pytest.mark.parametrize("name", sorted(NEIGHBOUR_DESCRIPTORS))
@pytest.mark.parametrize("value, error, message", [
    (0, ValueError, r"`max_neighbours` must be >= 1; got 0"),
    (2.5, TypeError, r"`max_neighbours` must be an integer; got 2.5"),
    (True, TypeError, r"`max_neighbours` must be an integer; got True"),
])
def test_max_neighbours_is_validated(name, value, error, message):
    with pytest.raises(error, match=message):
        NEIGHBOUR_DESCRIPTORS[name](max_neighbours=value).transform(molecule("H2O"))


@pytest.mark.parametrize("name", sorted(NEIGHBOUR_DESCRIPTORS))
def test_default_limit_leaves_ordinary_structures_alone(name):
    features = NEIGHBOUR_DESCRIPTORS[name]().transform([molecule("H2O"), bulk("Si", "diamond", a=5.43) * (2, 2, 2)])
    assert np.all(np.isfinite(features))
