import json
import zipfile

import numpy as np
import pytest

from kernelpot.potential.model_file import (
    FORMAT_VERSION,
    ModelFileError,
    load_model_file,
    save_model_file,
)


def test_round_trip_is_exact(tmp_path):
    arrays = {"alpha": np.random.default_rng(0).normal(size=(7, 3)), "species": np.array([1, 8])}
    path = save_model_file(tmp_path / "m.kpot", {"e0": {"1": -13.6}}, arrays)
    header, loaded = load_model_file(path)
    assert header["format_version"] == FORMAT_VERSION and header["e0"] == {"1": -13.6}
    for name, value in arrays.items():
        np.testing.assert_array_equal(loaded[name], value)
        assert loaded[name].dtype == value.dtype


def test_failed_save_leaves_previous_file_intact(tmp_path):
    path = save_model_file(tmp_path / "m.kpot", {}, {"a": np.ones(3)})
    with pytest.raises(TypeError, match="JSON"):
        save_model_file(path, {"bad": object()}, {"a": np.zeros(3)})
    with pytest.raises(ValueError, match="must not contain"):
        save_model_file(path, {}, {"a/b": np.zeros(3)})
    np.testing.assert_array_equal(load_model_file(path)[1]["a"], np.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["m.kpot"]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model_file(tmp_path / "nope.kpot")


def test_not_a_zip(tmp_path):
    path = tmp_path / "m.kpot"
    path.write_bytes(b"definitely not a zip")
    with pytest.raises(ModelFileError, match="not a zip archive"):
        load_model_file(path)


def test_truncated_file(tmp_path):
    path = save_model_file(tmp_path / "m.kpot", {}, {"a": np.ones(1000)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        load_model_file(path)


def _write_raw(path, header, members=()):
    with zipfile.ZipFile(path, "w") as archive:
        if header is not None:
            archive.writestr("header.json", header if isinstance(header, str) else json.dumps(header))
        for name, data in members:
            archive.writestr(name, data)


def test_foreign_and_headerless_archives(tmp_path):
    _write_raw(tmp_path / "a.kpot", None)
    with pytest.raises(ModelFileError, match="no header.json"):
        load_model_file(tmp_path / "a.kpot")
    _write_raw(tmp_path / "b.kpot", {"format": "something-else"})
    with pytest.raises(ModelFileError, match="format='something-else'"):
        load_model_file(tmp_path / "b.kpot")
    _write_raw(tmp_path / "c.kpot", "{not json")
    with pytest.raises(ModelFileError, match="corrupt header"):
        load_model_file(tmp_path / "c.kpot")


def test_future_version_is_refused(tmp_path):
    header = {"format": "kernelpot-model", "format_version": FORMAT_VERSION + 1, "kernelpot_version": "9.9", "arrays": []}
    _write_raw(tmp_path / "f.kpot", header)
    with pytest.raises(ModelFileError, match="upgrade kernelpot"):
        load_model_file(tmp_path / "f.kpot")


def test_missing_array(tmp_path):
    header = {"format": "kernelpot-model", "format_version": FORMAT_VERSION, "arrays": ["alpha"]}
    _write_raw(tmp_path / "g.kpot", header)
    with pytest.raises(ModelFileError, match="arrays/alpha.npy is missing"):
        load_model_file(tmp_path / "g.kpot")


def test_per_centre_species_terms_round_trip(tmp_path):
    """A model whose terms wrap SOAP in CentreSpecies (gap string ``Z=``) saves and predicts identically."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from kernelpot.descriptors import CentreSpecies
    from kernelpot.descriptors.soap import SOAP
    from kernelpot.kernels import NormalizedDotProductCovariance
    from kernelpot.models.gap import GAPTerm, SparseGPR
    from kernelpot.potential.serialization import load_model, save_model

    frames = []
    for seed in range(4):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms[0].symbol = "Au"
        atoms.rattle(0.05, seed=seed)
        atoms.calc = EMT()
        frames.append(atoms)
    soap = SOAP(["Cu", "Au"], r_cut=4.0, n_max=3, l_max=2, periodic=True)
    terms = [GAPTerm(CentreSpecies(soap, [z]), NormalizedDotProductCovariance(zeta=2), delta=0.2, n_sparse=n)
             for z, n in ((29, 8), (79, 3))]
    model = SparseGPR(terms).fit(frames, energies=[a.get_potential_energy() for a in frames],
                                 forces=[a.get_forces() for a in frames])
    save_model(model, tmp_path / "m.kpot")
    loaded = load_model(tmp_path / "m.kpot")
    assert isinstance(loaded.terms_[1].descriptor, CentreSpecies)
    assert loaded.terms_[1].descriptor.species == [79]
    before = model.predict(frames, properties=("energy", "forces"))
    after = loaded.predict(frames, properties=("energy", "forces"))
    np.testing.assert_array_equal(before["energy"], after["energy"])
    np.testing.assert_array_equal(before["forces"], after["forces"])
