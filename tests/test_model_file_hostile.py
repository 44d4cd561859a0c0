"""Hostile and malformed ``.kpot`` files: every one is a ModelFileError naming the problem (issue 18, items 9-10).

Each test builds the bad file by hand, so it documents the attack it guards against.
"""

import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

from kernelpot.potential.model_file import FORMAT_VERSION, ModelFileError, load_model_file, save_model_file

GOOD_HEADER = {"format": "kernelpot-model", "format_version": FORMAT_VERSION, "arrays": ["a"]}


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _archive(path, header, members=(), compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("header.json", header if isinstance(header, (str, bytes)) else json.dumps(header))
        for name, data in members:
            archive.writestr(name, data)
    return path


def _zeros_member(archive, name, n_bytes, header_shape):
    """A deflated ``.npy`` member of ``n_bytes`` zeros streamed in chunks (a zip bomb costs the writer nothing)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": header_shape})
    with archive.open(name, "w", force_zip64=True) as member:
        member.write(header.getvalue())
        chunk = bytes(2**24)
        for start in range(0, n_bytes, len(chunk)):
            member.write(chunk[: min(len(chunk), n_bytes - start)])


def _peak_bytes(function):
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_zip_bomb_is_refused_before_inflating(tmp_path):
    """300 MB of zeros deflated to ~0.3 MB: refused from the declared sizes, without inflating."""
    path = tmp_path / "bomb.kpot"
    n_bytes = 300 * 2**20
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("header.json", json.dumps({**GOOD_HEADER, "arrays": ["bomb"]}))
        _zeros_member(archive, "arrays/bomb.npy", n_bytes, (n_bytes // 8,))
    assert path.stat().st_size < 2e6

    def load():
        with pytest.raises(ModelFileError, match=r"limit of max\(64 MiB, 100 x the file size\).*zip bomb"):
            load_model_file(path)

    assert _peak_bytes(load) < 5e6


def test_many_small_bombs_share_one_allowance(tmp_path):
    """The limit is on the arrays' total: 100 members of 1 MB zeros in a small file are refused too."""
    path = tmp_path / "bombs.kpot"
    names = [f"b{i}" for i in range(100)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("header.json", json.dumps({**GOOD_HEADER, "arrays": names}))
        for name in names:
            _zeros_member(archive, f"arrays/{name}.npy", 2**20, (2**17,))
    with pytest.raises(ModelFileError, match="zip bomb"):
        load_model_file(path)


def test_array_header_declaring_1e14_elements(tmp_path):
    """A .npy header may claim any shape; it must agree with the member's size before anything is allocated."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**7, 10**7)})
    path = _archive(tmp_path / "big.kpot", GOOD_HEADER, [("arrays/a.npy", header.getvalue() + bytes(64))])

    def load():
        with pytest.raises(ModelFileError, match=r"arrays/a.npy declares a float64 array of shape \(10000000, "
                                                 r"10000000\) \(800,000,000,000,000 bytes\) but the member holds 64"):
            load_model_file(path)

    assert _peak_bytes(load) < 1e6


def test_member_whose_data_is_shorter_than_declared(tmp_path):
    data = _npy(np.arange(100.0))
    path = _archive(tmp_path / "short.kpot", GOOD_HEADER, [("arrays/a.npy", data[:-80])])
    with pytest.raises(ModelFileError, match="arrays/a.npy declares a float64 array of shape \\(100,\\)"):
        load_model_file(path)


def test_corrupt_deflate_stream(tmp_path):
    path = _archive(tmp_path / "m.kpot", GOOD_HEADER, [("arrays/a.npy", _npy(np.random.default_rng(0).normal(size=5000)))])
    data = bytearray(path.read_bytes())
    start = data.find(b"arrays/a.npy") + 200  # inside the member's compressed data
    data[start : start + 100] = bytes(range(100))
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="arrays/a.npy is corrupt"):
        load_model_file(path)


@pytest.mark.parametrize("descr, message", [("|O", "dtype object"), ([("x", "<f8")], "dtype"),
                                            ("<U3", "dtype <U3")])
def test_non_numeric_arrays(tmp_path, descr, message):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": (2,)})
    path = _archive(tmp_path / "m.kpot", GOOD_HEADER, [("arrays/a.npy", header.getvalue() + bytes(24))])
    with pytest.raises(ModelFileError, match=f"arrays/a.npy has {message}"):
        load_model_file(path)


def test_not_an_npy_member(tmp_path):
    path = _archive(tmp_path / "m.kpot", GOOD_HEADER, [("arrays/a.npy", b"PK not numpy at all")])
    with pytest.raises(ModelFileError, match="arrays/a.npy is not a valid .npy array"):
        load_model_file(path)


def test_other_compression_methods_are_refused(tmp_path):
    path = _archive(tmp_path / "m.kpot", GOOD_HEADER, [("arrays/a.npy", _npy(np.ones(3)))],
                    compression=zipfile.ZIP_BZIP2)
    with pytest.raises(ModelFileError, match="header.json uses zip compression method 12"):
        load_model_file(path)


def test_header_declared_too_large(tmp_path):
    path = tmp_path / "m.kpot"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("header.json", "w", force_zip64=True) as member:
            member.write(b"{" + b" " * (17 * 2**20) + b"}")
    with pytest.raises(ModelFileError, match="header.json declares 17,825,794 bytes, more than the limit"):
        load_model_file(path)


@pytest.mark.parametrize("text, message", [
    ("[1, 2, 3]", "header.json holds a JSON list, not an object"),
    ('"kernelpot-model"', "header.json holds a JSON str, not an object"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"format": "kernelpot-model", "x": ' + "[" * 50 + "]" * 50 + "}", "nested more than 32 levels deep"),
    ("\xff\xfe not utf-8", "corrupt header"),
], ids=["list", "string", "recursion", "depth-51", "not-utf8"])
def test_malformed_header_json(tmp_path, text, message):
    path = _archive(tmp_path / "m.kpot", text.encode("latin-1"))
    with pytest.raises(ModelFileError, match=message):
        load_model_file(path)


@pytest.mark.parametrize("version", [-5, 0, True, 1.0, "1", None, [1]])
def test_invalid_format_version(tmp_path, version):
    path = _archive(tmp_path / "m.kpot", {**GOOD_HEADER, "format_version": version, "arrays": []})
    with pytest.raises(ModelFileError, match=r"`format_version` must be an integer >= 1; got"):
        load_model_file(path)


@pytest.mark.parametrize("arrays", ["a", [1], ["a/b"], [""], ["a", "a"], {"a": 1}])
def test_invalid_array_list(tmp_path, arrays):
    path = _archive(tmp_path / "m.kpot", {**GOOD_HEADER, "arrays": arrays})
    with pytest.raises(ModelFileError, match="`arrays` (must be a list of array names|lists a name twice)"):
        load_model_file(path)


def test_valid_fortran_and_empty_arrays_round_trip(tmp_path):
    arrays = {"f": np.asfortranarray(np.arange(12.0).reshape(3, 4)), "empty": np.zeros((0, 5)),
              "flags": np.array([True, False]), "scalar": np.float64(2.5)}
    _, loaded = load_model_file(save_model_file(tmp_path / "m.kpot", {}, arrays))
    for name, value in arrays.items():
        np.testing.assert_array_equal(loaded[name], value)
        assert loaded[name].shape == np.shape(value) and loaded[name].dtype == np.asarray(value).dtype


# ----------------------------------------------------------------- SparseGPR files (load_model)
@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from kernelpot.descriptors.distance_2b import Distance2B
    from kernelpot.descriptors.soap import SOAP
    from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
    from kernelpot.models.gap import GAPTerm, SparseGPR
    from kernelpot.potential.serialization import save_model

    frames = []
    for seed in range(3):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=seed)
        atoms.calc = EMT()
        frames.append(atoms)
    terms = [GAPTerm(Distance2B(cutoff=4.0), GaussianCovariance(0.5), delta=0.5, n_sparse=5,
                     sparse_method="uniform"),
             GAPTerm(SOAP(["Cu"], r_cut=3.5, n_max=2, l_max=2, periodic=True), NormalizedDotProductCovariance(zeta=2),
                     delta=0.2, n_sparse=4)]
    model = SparseGPR(terms).fit(frames, energies=[a.get_potential_energy() for a in frames],
                                 forces=[a.get_forces() for a in frames])
    return save_model(model, tmp_path_factory.mktemp("model") / "m.kpot")


def _edited(model_path, tmp_path, edit_header=None, edit_arrays=None):
    header, arrays = load_model_file(model_path)
    for key in ("format", "format_version", "kernelpot_version", "arrays"):
        header.pop(key)
    if edit_header:
        edit_header(header)
    if edit_arrays:
        edit_arrays(arrays)
    return save_model_file(tmp_path / "edited.kpot", header, arrays)


def test_valid_model_loads(model_path):
    from kernelpot.potential.serialization import load_model

    assert len(load_model(model_path).terms_) == 2


def _set(mapping, path, value):
    *parents, last = path
    for key in parents:
        mapping = mapping[key]
    mapping[last] = value


@pytest.mark.parametrize("path, value, message", [
    (("e0",), {"Cu": -0.1}, r"`e0` has the key 'Cu', which is not an atomic number"),
    (("e0",), {"29": "x"}, r"`e0` of Z=29 must be a finite energy \(eV\); got 'x'"),
    (("e0",), [1.0], r"`e0` must map atomic numbers to energies"),
    (("parameters", "e0"), {"999": 1.0}, r"`parameters.e0` has the key '999'"),
    (("terms", 0, "descriptor", "class"), "os.system", r"names an unknown class 'os.system'"),
    (("terms", 0, "descriptor", "params", "bogus"), 1, r"inconsistent SparseGPR file \(TypeError"),
    (("terms", 1, "descriptor", "params", "r_cut"), -1.0, r"term 1 has invalid hyperparameters \(`r_cut`"),
    (("terms", 0, "kernel", "params", "sigma"), 0.0, r"term 0 has invalid hyperparameters \(`sigma`"),
    (("terms",), "not a list", r"inconsistent SparseGPR file"),
    (("model",), "KRR", r"holds a 'KRR' model, not a SparseGPR"),
], ids=["e0-symbol", "e0-value", "e0-list", "param-e0", "class", "param", "r_cut", "sigma", "terms", "model"])
def test_malformed_model_header(model_path, tmp_path, path, value, message):
    from kernelpot.potential.serialization import load_model

    edited = _edited(model_path, tmp_path, edit_header=lambda header: _set(header, path, value))
    with pytest.raises(ModelFileError, match=message):
        load_model(edited)


@pytest.mark.parametrize("name, change, message", [
    ("term0_alpha", lambda a: a[:-1], r"term 0 has sparse points of shape \(5, 1\), weights \(5,\) and "
                                      r"coefficients \(4,\)"),
    ("term1_sparse_X", lambda a: a[:, :-1], r"term 1 has sparse points with 8 features but its SOAP gives 9"),
    ("factor_L", lambda a: a[:-1, :-1], r"the factor kmm_cholesky_ has shape \(8, 8\); .* must be \(9, 9\)"),
    ("factor_R", lambda a: np.full_like(a, np.nan), r"posterior_factor_ holds NaN or inf"),
    ("term1_sparse_X", lambda a: a * np.inf, r"term 1 sparse points holds NaN or inf"),
], ids=["alpha", "features", "factor-shape", "nan", "inf"])
def test_inconsistent_model_arrays(model_path, tmp_path, name, change, message):
    from kernelpot.potential.serialization import load_model

    edited = _edited(model_path, tmp_path, edit_arrays=lambda arrays: arrays.update({name: change(arrays[name])}))
    with pytest.raises(ModelFileError, match=message):
        load_model(edited)
