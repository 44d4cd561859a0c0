"""Reading labelled extxyz data: where ASE puts each key, units, signs, errors."""

import warnings

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from kernelpot.io import LabelWarning, read_labelled


def _labelled(seed, energy=-3.0, stress=True):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=seed)
    rng = np.random.default_rng(seed)
    results = {"energy": energy, "forces": rng.normal(size=(4, 3))}
    if stress:
        results["stress"] = rng.normal(size=6) * 0.01
    atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info["config_type"] = f"type{seed % 2}"
    return atoms


@pytest.fixture
def extxyz(tmp_path):
    frames = [_labelled(s, energy=-3.0 - s) for s in range(3)]
    path = tmp_path / "data.extxyz"
    write(path, frames, format="extxyz")
    return path, frames


def test_reads_calculator_results_and_info(extxyz):
    path, frames = extxyz
    data = read_labelled(path)
    assert len(data) == 3 and data.indices.tolist() == [0, 1, 2]
    assert data.energies == [-3.0, -4.0, -5.0]
    assert data.config_types == ["type0", "type1", "type0"]
    for atoms, forces, virial, frame in zip(data.atoms, data.forces, data.virials, frames):
        np.testing.assert_allclose(forces, frame.calc.results["forces"], atol=1e-7)
        # virial = -stress * volume (ASE sign), Voigt xx yy zz yz xz xy.
        xx, yy, zz, yz, xz, xy = frame.calc.results["stress"]
        stress = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
        np.testing.assert_allclose(virial, -stress * frame.get_volume(), atol=1e-7)
        assert atoms.calc is None
        np.testing.assert_allclose(atoms.positions, frame.positions, atol=1e-7)
    assert set(data.labels()) == {"energies", "forces", "virials", "config_types"}


def test_custom_keys_in_info_and_arrays():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.info["dft_energy"] = -7.5
    atoms.arrays["dft_force"] = np.ones((4, 3))
    atoms.info["dft_virial"] = np.arange(9.0)
    data = read_labelled([atoms], energy_key="dft_energy", forces_key="dft_force", virial_key="dft_virial")
    assert data.energies == [-7.5]
    np.testing.assert_allclose(data.forces[0], 1.0)
    np.testing.assert_allclose(data.virials[0], np.arange(9.0).reshape(3, 3))


def test_virial_key_takes_precedence_over_stress():
    atoms = _labelled(0)
    atoms.info["virial"] = np.eye(3).ravel()
    np.testing.assert_allclose(read_labelled([atoms]).virials[0], np.eye(3))


@pytest.mark.parametrize("units_name, factor", [("eV/A^3", 1.0), ("GPa", units.GPa), ("kbar", 0.1 * units.GPa)])
@pytest.mark.parametrize("sign_name, sign", [("ase", 1.0), ("pressure", -1.0)])
def test_stress_units_and_sign(units_name, factor, sign_name, sign):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.info["s"] = np.diag([1.0, 2.0, 3.0]).ravel()
    data = read_labelled([atoms], stress_key="s", stress_units=units_name, stress_sign=sign_name,
                         required=("virial",), forces_key=None)
    np.testing.assert_allclose(data.virials[0], -sign * factor * np.diag([1.0, 2.0, 3.0]) * atoms.get_volume())


def test_mlearn_virial_stress_kbar_is_converted(shared_data):
    # mlearn's own file (VASP's kbar, compressive positive); the bundled copy is already in ASE's convention
    path = shared_data / "gap_materials" / "mlearn" / "mlearn_Si_training.extxyz"
    data = read_labelled(path, stress_key="virial_stress_kbar", stress_units="kbar", stress_sign="pressure")
    assert len(data) == 214 and not data.skipped
    kbar = data.atoms[0].info["virial_stress_kbar"].reshape(3, 3)
    # VASP/mlearn stress is compressive-positive: virial = +p * V.
    np.testing.assert_allclose(data.virials[0], kbar * 0.1 * units.GPa * data.atoms[0].get_volume())
    assert set(data.config_types) == {"AIMD-NVT", "Vacancy", "Elastic", "Surface"}


def test_missing_required_key_names_key_index_and_present_keys():
    frames = [_labelled(0), Atoms("Cu", positions=[[0, 0, 0]])]
    with pytest.raises(ValueError, match=r"structure 1 has no 'energy' \(required energy\); present: calculator results \[\]"):
        read_labelled(frames)
    with pytest.raises(ValueError, match=r"structure 0 has no 'virial' or 'stress' \(required virial\)"):
        read_labelled([_labelled(0, stress=False)], required=("virial",))


def test_optional_labels_may_be_missing():
    data = read_labelled([_labelled(0, stress=False)])
    assert data.virials == [None]


def test_skips_are_explicit_and_counted():
    bad = _labelled(1, energy=np.nan)
    frames = [_labelled(0), bad, Atoms("Cu", positions=[[0, 0, 0]]), _labelled(3)]
    data = read_labelled(frames, on_missing="skip")
    assert data.indices.tolist() == [0, 3]
    assert sorted(data.skipped) == [1, 2]
    assert "non-finite 'energy'" in data.skipped[1]
    assert "has no 'energy'" in data.skipped[2]


def test_nan_labels_raise_by_default():
    with pytest.raises(ValueError, match=r"structure 0 has a non-finite 'energy': nan"):
        read_labelled([_labelled(0, energy=np.nan)])
    atoms = _labelled(0)
    atoms.calc.results["forces"][1, 2] = np.nan
    with pytest.raises(ValueError, match=r"structure 0 has non-finite 'forces'"):
        read_labelled([atoms])
    atoms = _labelled(0)
    atoms.calc.results["stress"][0] = np.inf
    with pytest.raises(ValueError, match=r"structure 0 has a non-finite virial"):
        read_labelled([atoms])


def test_all_skipped_raises():
    with pytest.raises(ValueError, match=r"no structure left: all 1 were skipped"):
        read_labelled([Atoms("Cu")], on_missing="skip", forces_key=None, required=("energy",))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"stress_units": "bar"}, ValueError, r"`stress_units` must be one of \['eV/A\^3', 'eV/Å\^3', 'GPa', 'kbar'\]; got 'bar'"),
        ({"stress_sign": "vasp"}, ValueError, r"`stress_sign` must be one of \['ase', 'pressure'\]; got 'vasp'"),
        ({"on_missing": "drop"}, ValueError, r"`on_missing` must be one of \['raise', 'skip'\]; got 'drop'"),
        ({"required": ("energy", "charges")}, ValueError, r"`required` entries must be among \['energy', 'forces', 'virial'\]; got \['charges'\]"),
    ],
)
def test_option_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        read_labelled([_labelled(0)], **kwargs)


def test_input_validation(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"structure file .*absent.extxyz. does not exist"):
        read_labelled(tmp_path / "absent.extxyz")
    with pytest.raises(TypeError, match=r"structure 1 is a str, not an ase.Atoms"):
        read_labelled([_labelled(0), "x"])
    atoms = _labelled(0)
    atoms.calc.results["forces"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"`forces` of structure 0 must have shape \(4, 3\); got \(3, 3\)"):
        read_labelled([atoms])
    atoms = _labelled(0)
    atoms.calc.results["energy"] = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match=r"`energy` of structure 0 must be a scalar"):
        read_labelled([atoms])
    molecule = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.5]])
    molecule.info["stress"] = np.zeros(6)
    with pytest.raises(ValueError, match=r"structure 0 has a `stress` but is not periodic"):
        read_labelled([molecule], required=(), forces_key=None)
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.info["virial"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"`virial` of structure 0 must have 6 \(Voigt\) or 9 values; got 4"):
        read_labelled([atoms], required=(), forces_key=None)


def test_output_feeds_sparse_gpr(extxyz):
    from kernelpot.descriptors.distance_2b import Distance2B
    from kernelpot.kernels import GaussianCovariance
    from kernelpot.models.gap import GAPTerm, SparseGPR

    data = read_labelled(extxyz[0])
    term = GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(1.0), n_sparse=4, sparse_method="uniform")
    model = SparseGPR([term]).fit(data.atoms, **data.labels())
    assert model.predict(data.atoms)["energy"].shape == (3,)


# ------------------------------------------- labels that exist but are not used (issue 18, item 7)
def _cgap17_style(n=3, forces_in=None):
    """Frames whose forces are stored under ``force`` (as in the C-GAP-17 files), energies under ``energy``."""
    frames = []
    for seed in range(n):
        atoms = bulk("C", "diamond", a=3.57)
        atoms.rattle(0.05, seed=seed)
        atoms.info["energy"] = -9.0 - seed
        if forces_in is None or seed in forces_in:
            atoms.arrays["force"] = np.full((2, 3), 0.1 * seed)
        frames.append(atoms)
    return frames


def test_forces_key_absent_from_every_structure_lists_per_atom_arrays(tmp_path):
    path = tmp_path / "cgap17.extxyz"
    write(path, _cgap17_style(), format="extxyz")
    with pytest.raises(ValueError, match=r"no structure has forces under `forces_key`='forces'; per-atom arrays "
                                         r"found: 'force' \(3 of 3\)\. Name the forces' key"):
        read_labelled(path, required=("energy",))
    data = read_labelled(path, forces_key="force", required=("energy",))
    np.testing.assert_allclose(data.forces[2], 0.2)


def test_named_forces_key_that_no_structure_has():
    with pytest.raises(ValueError, match=r"no structure has forces under `forces_key`='dft_forces'; per-atom arrays "
                                         r"found: 'force' \(3 of 3\)"):
        read_labelled(_cgap17_style(), forces_key="dft_forces", required=("energy",))


def test_fitting_without_forces_is_said_explicitly():
    for key in (None, "none", "None"):
        data = read_labelled(_cgap17_style(), forces_key=key, required=("energy",))
        assert data.forces == [None] * 3
    with pytest.raises(ValueError, match=r"`required` includes 'forces' but `forces_key` is None"):
        read_labelled(_cgap17_style(), forces_key=None, required=("energy", "forces"))


def test_forces_in_only_some_structures_are_counted():
    with pytest.warns(LabelWarning, match=r"forces `force` found in 2 of 3 structures; the other 1 are used "
                                          r"without forces"):
        data = read_labelled(_cgap17_style(forces_in={0, 2}), forces_key="force", required=("energy",))
    assert data.forces[1] is None


def test_unused_stress_data_is_named():
    """mlearn keeps its stresses as ``virial_stress_kbar``: the default keys do not find them, which is said."""
    frames = [_labelled(s, stress=False) for s in range(2)]
    for atoms in frames:
        atoms.info["virial_stress_kbar"] = np.arange(9.0)
    with pytest.warns(LabelWarning, match=r"stress/virial data found but not used: 'virial_stress_kbar' \(2 of 2\) "
                                          r"periodic structures have it, none has `virial_key`='virial' and "
                                          r"`stress_key`='stress'\. To fit it, name it"):
        data = read_labelled(frames)
    assert data.virials == [None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_labelled(frames, virial_key=None, stress_key=None)  # said explicitly: no warning
        read_labelled(frames, stress_key="virial_stress_kbar", stress_units="kbar", stress_sign="pressure")


def test_stress_in_only_some_periodic_structures_is_counted():
    frames = [_labelled(0), _labelled(1, stress=False), _labelled(2)]
    with pytest.warns(LabelWarning, match=r"virials/stresses .* found in 2 of 3 periodic structures; the other 1 "
                                          r"are used without them"):
        read_labelled(frames)


def test_molecules_without_stress_are_not_reported():
    molecule = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.5]])
    molecule.calc = SinglePointCalculator(molecule, energy=-1.0, forces=np.zeros((2, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_labelled([molecule])


def test_virial_required_but_not_read():
    with pytest.raises(ValueError, match=r"`required` includes 'virial' but `virial_key` and `stress_key` are None"):
        read_labelled([_labelled(0)], required=("virial",), virial_key=None, stress_key="none")
