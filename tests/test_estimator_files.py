"""Every estimator saves to a .kpot file and loads back predicting exactly the same, without pickles.

The estimators and their small fits are those of tests/test_refit.py (CASES: every estimator of kernelpot,
GAP models with a FITC factor and a recalibration learned after the fit). Also: the loaded estimator is
still an estimator (get_params, clone, refit), the file holds no pickle, a file naming a class outside
kernelpot is refused before anything is built, and a value a file cannot hold is refused at save time.
"""

import json
import zipfile

import numpy as np
import pytest
from sklearn.base import clone
from test_refit import CASES, CU, VECTORS, WATER, _labels

from kernelpot.models import GaussianProcessRegressor, KernelRidge, SymmetryAdaptedGPR
from kernelpot.models.gap import SparseGPR
from kernelpot.potential import GAPCalculator, ModelFileError, load_model, save_model
from kernelpot.selection import FPS
from kernelpot.uncertainty import CommitteeSparseGPR


def _outputs(model, case_outputs):
    if isinstance(model, (SparseGPR, CommitteeSparseGPR)):
        out = model.predict(CU["test"], properties=("energy", "forces"), return_std=True)
        if getattr(model, "fitc_factor_", None) is not None:
            out = {**out, **{f"fitc_{k}": v for k, v in model.predict(
                CU["test"], properties=("energy",), return_std=True, variance="fitc").items()}}
        return out
    if hasattr(model, "selected_idx_"):
        return {"selected": np.asarray(model.selected_idx_)}
    return case_outputs(model)


@pytest.mark.parametrize("name", sorted(CASES))
def test_saved_estimator_predicts_exactly_as_the_original(name, tmp_path):
    make, fit, before, case_outputs = CASES[name]()
    model = make()
    fit(model, "A")
    if before is not None:
        before(model)
    path = tmp_path / "model.kpot"
    save_model(model, path, metadata={"note": name})
    loaded = load_model(path)
    # the GAP layout holds every SparseGPR; an IncrementalSparseGPR loads as the SparseGPR it predicts as
    # (IncrementalSparseGPR.from_model makes it incremental again)
    assert type(loaded) is (SparseGPR if isinstance(model, SparseGPR) else type(model))
    expected, got = _outputs(model, case_outputs), _outputs(loaded, case_outputs)
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    assert loaded.metadata_["note"] == name
    # still an estimator: the same parameters, clonable, and a refit learns as a fresh one does
    assert sorted(loaded.get_params(deep=False)) == sorted(model.get_params(deep=False))
    if not isinstance(model, SparseGPR):  # the GAP layout stores the parameters prediction needs
        assert repr(loaded.get_params(deep=False)) == repr(model.get_params(deep=False))
    clone(loaded)
    with zipfile.ZipFile(path) as archive:
        assert all(name == "header.json" or name.endswith(".npy") for name in archive.namelist())
        for member in archive.namelist():
            assert b"\x80\x04\x95" not in archive.read(member)  # no pickle protocol-4 frame anywhere


@pytest.mark.parametrize("name", ["KernelRidge", "SymmetryAdaptedGPR-sparse"])
def test_loaded_estimator_refits(name, tmp_path):
    make, fit, _, case_outputs = CASES[name]()
    model = make()
    fit(model, "A")
    save_model(model, tmp_path / "m.kpot")
    loaded = load_model(tmp_path / "m.kpot")
    fit(loaded, "B")
    fresh = make()
    fit(fresh, "B")
    for key, value in case_outputs(fresh).items():
        np.testing.assert_allclose(case_outputs(loaded)[key], value, rtol=1e-10, atol=1e-12)


def _edit_header(path, edit):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = json.loads(members["header.json"])
    edit(header)
    members["header.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_file_naming_a_foreign_class_is_refused(tmp_path):
    X, y = VECTORS["A"]
    path = tmp_path / "krr.kpot"
    save_model(KernelRidge(alpha=1e-3).fit(X, y), path)

    def swap(header):
        header["estimator"]["state"]["kernel_"] = {"object": "os:_wrap_close", "id": "x", "state": {}}

    _edit_header(path, swap)
    with pytest.raises(ModelFileError, match="os:_wrap_close.*only kernelpot classes"):
        load_model(path)


def test_gap_tools_refuse_another_estimator_by_name(tmp_path):
    X, y = VECTORS["A"]
    path = tmp_path / "gpr.kpot"
    save_model(GaussianProcessRegressor(alpha=1e-3).fit(X, y), path)
    with pytest.raises(ModelFileError, match="holds a GaussianProcessRegressor, not a SparseGPR"):
        GAPCalculator(path)
    from kernelpot.cli import main

    assert main(["evaluate", str(path), "data/mlearn_si/mlearn_Si_test.extxyz", "--quiet"]) == 2


def test_unfitted_and_unsavable_estimators_are_refused(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        save_model(KernelRidge(), tmp_path / "a.kpot")
    X, y = VECTORS["A"]
    model = KernelRidge(alpha=1e-3).fit(X, y)
    model.callback_ = print  # something a file cannot hold
    with pytest.raises(TypeError, match=r"KernelRidge\.callback_"):
        save_model(model, tmp_path / "b.kpot")
    assert not (tmp_path / "b.kpot").exists()


def test_sagpr_and_selector_files_keep_their_learned_attributes(tmp_path):
    frames, dipoles, _ = WATER["A"]
    model = SymmetryAdaptedGPR(1, r_cut=3.0, n_max=3, l_max=2, sigma=0.4, alpha=1e-6).fit(frames, dipoles)
    save_model(model, tmp_path / "s.kpot")
    loaded = load_model(tmp_path / "s.kpot")
    np.testing.assert_array_equal(loaded.alpha_, model.alpha_)
    assert loaded.prior_variance_ == model.prior_variance_
    np.testing.assert_array_equal(loaded.species_, model.species_)
    selector = FPS(n_to_select=5).fit(VECTORS["A"][0])
    save_model(selector, tmp_path / "f.kpot")
    np.testing.assert_array_equal(load_model(tmp_path / "f.kpot").transform(VECTORS["A"][0]),
                                  selector.transform(VECTORS["A"][0]))


def test_gap_layout_is_unchanged_for_sparse_gpr(tmp_path):
    model = SparseGPR(CASES["SparseGPR"]()[0]().terms, random_state=0).fit(CU["A"], **_labels(CU["A"]))
    save_model(model, tmp_path / "g.kpot")
    with zipfile.ZipFile(tmp_path / "g.kpot") as archive:
        header = json.loads(archive.read("header.json"))
    assert header["model"] == "SparseGPR" and header["format_version"] == 1


def test_an_object_shared_by_two_attributes_stays_one_object(tmp_path):
    X, y = VECTORS["A"]
    model = KernelRidge(alpha=1e-3).fit(X, y)
    model.a_view_ = model.kernel_  # read back before `kernel_` (the header's keys are sorted)
    save_model(model, tmp_path / "k.kpot")
    loaded = load_model(tmp_path / "k.kpot")
    assert loaded.a_view_ is loaded.kernel_
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
