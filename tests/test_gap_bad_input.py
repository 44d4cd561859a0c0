"""Bad input to a GAP fit: atoms closer than a minimum distance (a corrupt or duplicated-atom frame).

Missing label keys and NaN labels are tested in test_io.py and
test_sparse_gpr.py (test_label_validation); species unknown to a fitted
model in test_sparse_gpr.py and test_potential.py.
"""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.kernels import GaussianCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.models.gap.labels import MIN_DISTANCE, check_min_distance


def _cells():
    return [bulk("Cu", "fcc", a=3.6, cubic=True) for _ in range(3)]


def test_fit_rejects_atoms_closer_than_the_minimum_distance():
    structures = _cells()
    structures[1].positions[3] = structures[1].positions[0] + [0.2, 0.0, 0.0]
    term = GAPTerm(Distance2B(cutoff=4.0), GaussianCovariance(1.0), n_sparse=5, sparse_method="uniform")
    with pytest.raises(ValueError, match=r"structure 1 has atoms 0 and 3 0.2 Å apart, closer than the "
                                         r"minimum distance 0.5 Å .* 1 structure\(s\) affected"):
        SparseGPR([term], e0=0.0).fit(structures, energies=[-1.0, -2.0, -3.0])


def test_periodic_image_closer_than_the_minimum_distance():
    # One atom in a 0.3 Å cubic cell meets its own images.
    tiny = Atoms("H", cell=np.eye(3) * 0.3, pbc=True)
    with pytest.raises(ValueError, match=r"structure 1 has atoms 0 and 0 0.3 Å apart"):
        check_min_distance([_cells()[0], tiny, tiny])


def test_minimum_distance_counts_every_affected_structure():
    dimer = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.4]])
    with pytest.raises(ValueError, match=r"structure 0 .* 2 structure\(s\) affected"):
        check_min_distance([dimer, _cells()[0], dimer])


def test_minimum_distance_accepts_a_hydrogen_molecule():
    # Just above the limit must pass: the check may not reject real molecules.
    check_min_distance([Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])])
    assert MIN_DISTANCE < 0.74
