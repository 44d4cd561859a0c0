"""Two-parameter recalibration σ² = s² σ_model² + f² (``recalibrate(..., floor=True)``)."""

import numpy as np
import pytest
from test_uncertainty import _model, data  # noqa: F401  (data: the shared Cu fixture)

from kernelpot.potential.serialization import load_model, save_model
from kernelpot.uncertainty.calibration import (
    coverage,
    fit_std_scale,
    fit_std_scale_floor,
    recalibrate,
)
from kernelpot.uncertainty.committee import CommitteeSparseGPR


def test_scale_and_floor_are_recovered_by_maximum_likelihood():
    rng = np.random.default_rng(0)
    std = rng.uniform(0.0, 2.0, 40_000)
    errors = rng.normal(size=std.size) * np.sqrt(9.0 * std**2 + 0.5**2)
    scale, floor = fit_std_scale_floor(errors, std)
    assert scale == pytest.approx(3.0, rel=0.03) and floor == pytest.approx(0.5, rel=0.1)
    # No floor in the data: f goes to (near) zero and s to the one-factor answer.
    errors = rng.normal(size=std.size) * 2.0 * std
    scale, floor = fit_std_scale_floor(errors, std)
    assert floor < 0.05 and scale == pytest.approx(fit_std_scale(errors, std), rel=0.02)


def test_floor_tames_near_zero_sigmas_that_ruin_one_factor():
    # As mlearn Si "Elastic": a few values with σ ~ 1e-6 but errors ~ 1e-4 (label noise).
    rng = np.random.default_rng(1)
    std = np.concatenate([rng.uniform(0.5, 1.5, 5000), np.full(50, 1e-6)])
    errors = rng.normal(size=std.size) * np.concatenate([std[:5000], np.full(50, 1e-4)])
    one = fit_std_scale(errors, std)
    assert coverage(errors[:5000], one * std[:5000])[2.0] > 0.999  # far too wide for the bulk
    scale, floor = fit_std_scale_floor(errors, std)
    assert abs(coverage(errors, np.hypot(scale * std, floor))[2.0] - 0.9545) < 0.01


@pytest.mark.parametrize("errors, std, match", [
    ([1.0, 2.0], [1.0], r"same number of values; got 2 and 1"),
    ([], [], r"`errors` must not be empty"),
    ([np.inf, 1.0], [1.0, 1.0], r"must be finite"),
    ([1.0, 1.0], [1.0, -2.0], r"`std` must be >= 0 everywhere; got min -2.0"),
    ([0.0, 0.0], [1.0, 1.0], r"`errors` are zero everywhere; nothing to calibrate"),
])
def test_fit_std_scale_floor_validation(errors, std, match):
    with pytest.raises(ValueError, match=match):
        fit_std_scale_floor(errors, std)


def test_recalibrate_with_floor_is_stored_applied_and_reset(data):
    structures, energies, forces = data
    model = _model().fit(structures[:4], energies=energies[:4], forces=forces[:4])
    val = structures[4:]
    raw = model.predict(val, properties=("forces",), return_std=True)
    recalibrate(model, val, energies=energies[4:], forces=forces[4:], floor=True)
    assert set(model.std_floor_) == {"energy", "forces"}
    out = model.predict(val, properties=("forces",), return_std=True)
    np.testing.assert_allclose(out["forces_std"], np.hypot(model.std_scale_ * raw["forces_std"],
                                                           model.std_floor_["forces"]), rtol=1e-12)
    np.testing.assert_allclose(out["energy_std"], np.hypot(model.std_scale_ * raw["energy_std"],
                                                           model.std_floor_["energy"]), rtol=1e-12)
    first = (model.std_scale_, dict(model.std_floor_))
    recalibrate(model, val, energies=energies[4:], forces=forces[4:], floor=True)  # starts from raw σ
    assert model.std_scale_ == pytest.approx(first[0], rel=1e-8)
    assert model.std_floor_["forces"] == pytest.approx(first[1]["forces"], rel=1e-6)
    recalibrate(model, val, forces=forces[4:])  # one factor again: the floor goes
    assert not hasattr(model, "std_floor_")
    np.testing.assert_allclose(model.predict(val, properties=("forces",), return_std=True)["forces_std"],
                               model.std_scale_ * raw["forces_std"], rtol=1e-12)


def test_committee_applies_the_floor(data):
    structures, energies, forces = data
    committee = CommitteeSparseGPR(_model(), n_members=2, subsample=0.7, random_state=0)
    committee.fit(structures[:4], energies=energies[:4], forces=forces[:4])
    raw = committee.predict(structures[4:], properties=("forces",), return_std=True)
    recalibrate(committee, structures[4:], forces=forces[4:], floor=True)
    out = committee.predict(structures[4:], properties=("forces",), return_std=True)
    np.testing.assert_allclose(out["forces_std"], np.hypot(committee.std_scale_ * raw["forces_std"],
                                                           committee.std_floor_["forces"]), rtol=1e-12)
    np.testing.assert_allclose(out["energy_std"], committee.std_scale_ * raw["energy_std"], rtol=1e-12)


def test_floor_is_saved_in_the_model_file(data, tmp_path):
    from kernelpot.descriptors.distance_2b import Distance2B
    from kernelpot.kernels import GaussianCovariance
    from kernelpot.models.gap import GAPTerm, SparseGPR

    structures, energies, forces = data
    term = GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(0.7), delta=0.5, n_sparse=6, sparse_method="uniform")
    model = SparseGPR([term], e0=0.0, default_sigma=(0.005, 0.05, 0.05)).fit(
        structures[:4], energies=energies[:4], forces=forces[:4])
    recalibrate(model, structures[4:], forces=forces[4:], floor=True)
    save_model(model, tmp_path / "m.kpot")
    loaded = load_model(tmp_path / "m.kpot")
    np.testing.assert_allclose(loaded.predict(structures[4:], properties=("forces",), return_std=True)["forces_std"],
                               model.predict(structures[4:], properties=("forces",), return_std=True)["forces_std"],
                               rtol=1e-10)
