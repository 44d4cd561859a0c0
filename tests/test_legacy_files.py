"""Model files written by earlier kernelpot versions still load and predict the numbers they gave then."""

from pathlib import Path

import numpy as np
from ase.io import read

from kernelpot.descriptors import CentreSpecies
from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
from kernelpot.potential import load_model

HERE = Path(__file__).resolve().parent
LEGACY = HERE / "reference" / "legacy_kpot"


def test_kpot_from_before_the_layout_moves_predicts_the_same(bundled_data):
    # Written at commit 36aef01 by tests/reference/legacy_kpot/make_reference.py: its header names
    # SquaredExponential(theta=...) and NormalisedDotProduct, the classes' names before they moved to
    # kernelpot.kernels.covariance.
    model = load_model(LEGACY / "model_v0.1.kpot")
    kernels = [term.kernel for term in model.terms_]
    assert isinstance(kernels[0], GaussianCovariance) and kernels[0].sigma == 1.0
    assert isinstance(kernels[1], NormalizedDotProductCovariance) and kernels[1].zeta == 4
    assert isinstance(model.terms_[1].descriptor, CentreSpecies)
    test = read(bundled_data / "mlearn_si" / "mlearn_Si_training.extxyz", "20:24")
    expected = np.load(LEGACY / "predictions.npz")
    out = model.predict(test, properties=("energy", "forces", "stress"), return_std=True)
    # rtol 1e-7 (atol 1e-9): the frozen numbers carry the round-off of the 2-body Gaussian covariance as it was
    # computed then (|x|² + |z|² - 2 x·z, ~1e-8 relative with the pair term's large alternating weights); it now
    # takes the differences x - z directly (exact; quippy agrees to 1e-11, tests/test_gap_xml.py).
    for key in ("energy", "forces", "stress"):
        np.testing.assert_allclose(out[key], expected[key], rtol=1e-7, atol=1e-9, err_msg=key)
    # A DTC variance is a prior minus an explained part of nearly the same size (here up to 1e6 times the
    # variance for the pair term's energy, more for the virial), so the order of the sums behind them
    # (compiled since the reference was written) moves the last digits of σ by up to ~1e-7.
    for key in ("energy_std", "forces_std", "stress_std"):
        np.testing.assert_allclose(out[key], expected[key], rtol=1e-6, atol=1e-9, err_msg=key)
    fitc = model.predict(test, return_std=True, variance="fitc")
    np.testing.assert_allclose(fitc["energy_std"], expected["fitc_energy_std"], rtol=1e-7)
