"""Bad input to a GAP fit: atoms closer than a minimum distance (a corrupt or duplicated-atom frame), and a
force label far outside the training set's distribution (a broken reference calculation), which is warned about.

Missing label keys and NaN labels are tested in test_io.py and
test_sparse_gpr.py (test_label_validation); species unknown to a fitted
model in test_sparse_gpr.py and test_potential.py.
"""

import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.exceptions import ForceOutlierWarning
from kernelpot.kernels import GaussianCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.models.gap.labels import (
    FORCE_OUTLIER_FACTOR,
    FORCE_OUTLIER_MIN_ATOMS,
    MIN_DISTANCE,
    check_labels,
    check_min_distance,
    force_outliers,
)
from kernelpot.structures.runner import read_runner


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


def _outlier_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, ForceOutlierWarning)]


def _nacl_frames(bundled_data):
    """The 10 bundled gen1 frames and gen1b frame 156, whose labels are broken (35 eV/Å on an H of an ordinary
    water, forces 10-20 times GFN2-xTB's on its four worst atoms, the lowest energy of the set by 5 σ)."""
    folder = bundled_data / "nacl_water"
    return read_runner(folder / "revPBE0-D3_gen1_subset.data"), read_runner(folder / "revPBE0-D3_gen1b_frame156.data")


def test_broken_nacl_label_is_named_and_ordinary_frames_pass(bundled_data):
    ordinary, broken = _nacl_frames(bundled_data)
    frames = ordinary + broken
    forces = [a.get_forces() for a in frames]
    assert not _outlier_warnings(lambda: check_labels(ordinary, None, forces[:10], None, None))
    caught = _outlier_warnings(lambda: check_labels(frames, None, forces, None, None))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "1 structure(s)" in message and "structure 10: atom 75 (H) |F| = 34.9 eV/Å, 9.4× (2 atoms above)" in message
    assert "the largest force of any other structure is 4.99 eV/Å = 1.3×" in message
    outliers, percentile, largest_other = force_outliers(forces)
    assert [o.structure for o in outliers] == [10] and outliers[0].force > FORCE_OUTLIER_FACTOR * percentile


def test_force_outlier_check_needs_enough_atoms_and_a_real_outlier():
    rng = np.random.default_rng(0)
    forces = [rng.normal(size=(100, 3)) for _ in range(6)]
    forces[3][7] = [0.0, 0.0, 30.0]
    assert [o.structure for o in force_outliers(forces)[0]] == [3]
    assert force_outliers(forces)[0][0].atom == 7
    # Too few atoms for a percentile that describes the set: no verdict, not a false alarm.
    few = forces[: (FORCE_OUTLIER_MIN_ATOMS - 1) // 100]
    assert force_outliers(few)[0] == []
    # A large force that the rest of the set shares is no outlier (heavy tails, hot or compressed frames).
    forces[3][7] = [0.0, 0.0, 2.0 * np.percentile(np.linalg.norm(np.concatenate(forces), axis=1), 99)]
    assert force_outliers(forces)[0] == []
    assert force_outliers([None, *forces])[0] == []


def test_fit_and_cli_warn_once_naming_the_frame_of_the_file(bundled_data, tmp_path, capsys):
    from kernelpot.cli import main

    ordinary, broken = _nacl_frames(bundled_data)
    folder = bundled_data / "nacl_water"
    train = tmp_path / "train.data"
    train.write_bytes((folder / "revPBE0-D3_gen1_subset.data").read_bytes()
                      + (folder / "revPBE0-D3_gen1b_frame156.data").read_bytes())
    gap = ("{distance_2b cutoff=3.0 covariance_type=ard_se delta=0.5 theta_uniform=1.0 sparse_method=uniform "
           "n_sparse=4 Z1=1 Z2=8}")
    assert main(["fit", str(train), "-o", str(tmp_path / "m.kpot"), "--gap", gap, "--e0", "composition",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("force labels above") == 1 and "warning: 1 structure(s) have force labels" in err
    assert f"{train} frame 10: atom 75 (H) |F| = 34.9 eV/Å" in err
    # SparseGPR.fit names the structure by its index in the list it was given.
    term = GAPTerm(Distance2B(cutoff=3.0, Z1=1, Z2=8), GaussianCovariance(0.5), n_sparse=4,
                   sparse_method="uniform")
    frames = [broken[0], *ordinary]
    caught = _outlier_warnings(lambda: SparseGPR([term], e0="composition").fit(
        frames, energies=[a.get_potential_energy() for a in frames], forces=[a.get_forces() for a in frames]))
    assert len(caught) == 1 and "structure 0: atom 75 (H)" in str(caught[0].message)
    assert caught[0].filename == __file__  # points at the caller's fit, not at kernelpot's internals
