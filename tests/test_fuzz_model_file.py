"""Property-based tests of the ``.kpot`` loader: random bytes and mutated valid files.

Whatever the bytes, ``load_model`` returns a model that predicts finite numbers or raises ``ModelFileError``
(a ``ValueError``) with a message: never another exception, a hang (watchdog) or an allocation out of
proportion to the file (the loader's limits; peak traced memory is checked against them).
"""

import json
import tracemalloc
import zipfile

import numpy as np
import pytest
from _fuzz import assert_finite, watchdog
from ase.build import bulk
from hypothesis import given
from hypothesis import strategies as st
from test_model_file_hostile import model_path  # noqa: F401 (a fixture)

from kernelpot.potential.model_file import ModelFileError, load_model_file, save_model_file
from kernelpot.potential.serialization import load_model


@pytest.fixture(scope="module")
def valid(model_path):  # noqa: F811 (the imported fixture)
    """The bytes of a small valid SparseGPR file (test_model_file_hostile's model)."""
    return model_path.read_bytes()


def _load_and_predict(path):
    """The property: a working model or a ModelFileError with a message; little memory either way."""
    tracemalloc.start()
    try:
        with watchdog():
            try:
                model = load_model(path)
            except ModelFileError as error:
                assert str(error).strip()
                return None
            atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
            try:
                assert_finite(*model.predict([atoms], properties=("energy", "forces")).values())
            except (ValueError, TypeError) as error:  # a loaded model with odd but valid settings may refuse
                assert str(error).strip()
            return model
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 200e6, f"loading a {path.stat().st_size}-byte file took {peak / 1e6:.0f} MB"


@given(data=st.binary(min_size=0, max_size=4096))
def test_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("random") / "m.kpot"
    path.write_bytes(data)
    assert _load_and_predict(path) is None or data.startswith(b"PK")


@given(flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)), min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 10**9)))
def test_mutated_valid_files(tmp_path_factory, valid, flips, cut):
    data = bytearray(valid)
    for position, xor in flips:
        data[position % len(data)] ^= xor
    if cut is not None:
        data = data[: cut % len(data)]
    path = tmp_path_factory.mktemp("mutated") / "m.kpot"
    path.write_bytes(bytes(data))
    _load_and_predict(path)


def _containers(children):
    return st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**15, 10**15) | st.floats() | st.text(max_size=8),
                    _containers, max_leaves=20)


@given(key=st.sampled_from(["format_version", "terms", "e0", "parameters", "arrays", "model", "species",
                            "std_scale", "std_floor", "memory_estimate", "metadata"]),
       value=JSON)
def test_header_fields_replaced_by_any_json(tmp_path_factory, valid, key, value):
    folder = tmp_path_factory.mktemp("header")
    (folder / "valid.kpot").write_bytes(valid)
    header, arrays = load_model_file(folder / "valid.kpot")
    header[key] = value
    for field in ("format", "format_version", "kernelpot_version", "arrays") if key != "format_version" else ():
        header.pop(field, None)
    path = folder / "m.kpot"
    if key == "format_version":  # save_model_file would overwrite it: write the archive by hand
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("header.json", json.dumps({**header, "arrays": sorted(arrays)}))
            for name, array in arrays.items():
                with archive.open(f"arrays/{name}.npy", "w") as member:
                    np.lib.format.write_array(member, array)
    else:
        try:
            save_model_file(path, header, arrays)
        except (TypeError, ValueError):  # not JSON-serialisable (NaN is, as a JSON extension): nothing to load
            return
    _load_and_predict(path)
