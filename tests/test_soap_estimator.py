"""SOAP as a scikit-learn estimator without inheriting from sklearn.base (the import is deferred for start-up time)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from ase.build import molecule

from kernelpot.descriptors.soap import SOAP

SETTINGS = dict(species=["H", "C", "O"], r_cut=3.0, n_max=3, l_max=2, sigma=0.5)


def test_importing_soap_does_not_import_sklearn():
    code = "import sys; from kernelpot.descriptors import SOAP; print('sklearn' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"


def test_get_set_params_and_clone():
    from sklearn.base import clone

    soap = SOAP(**SETTINGS)
    params = soap.get_params()
    assert params == dict(SETTINGS, rbf="gto", periodic=False, cutoff_transition_width=None, central_weight=1.0,
                          max_neighbours=10_000)
    copy = clone(soap)
    assert copy is not soap and copy.get_params() == params
    assert copy.set_params(n_max=4, l_max=1) is copy
    assert (copy.n_max, copy.l_max, soap.n_max) == (4, 1, 3)
    assert repr(soap).startswith("SOAP(central_weight=1.0, cutoff_transition_width=None, l_max=2")


def test_set_params_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"invalid parameter 'nmax' for SOAP; valid parameters are \["):
        SOAP(**SETTINGS).set_params(nmax=4)


def test_pipeline_and_tags():
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils import get_tags

    soap = SOAP(**SETTINGS)
    tags = get_tags(soap)
    assert not tags.requires_fit and not tags.input_tags.two_d_array and tags.transformer_tags is not None
    structures = [molecule(name) for name in ("CH3OH", "CH3CH2OH", "H2O", "CH4", "HCOOH")]
    # Sum the atomic rows per structure (AtomicFeatures keeps the offsets), then a linear model.
    per_structure = FunctionTransformer(lambda X: np.add.reduceat(np.asarray(X), X.offsets[:-1], axis=0))
    pipeline = Pipeline([("soap", soap), ("sum", per_structure), ("ridge", Ridge(alpha=1e-3))])
    y = np.array([float(len(a)) for a in structures])
    prediction = pipeline.fit(structures, y).predict(structures)
    assert np.allclose(prediction, y, atol=0.5)
    expected = np.add.reduceat(np.asarray(soap.transform(structures)), soap.transform(structures).offsets[:-1], axis=0)
    assert np.array_equal(pipeline[:2].transform(structures), expected)
    fitted = pipeline.set_params(soap__n_max=2).fit(structures, y)
    assert fitted.named_steps["soap"].n_max == 2 and soap.n_max == 2
    features = make_pipeline(SOAP(**SETTINGS)).fit_transform(structures)
    assert np.array_equal(features, soap.set_params(n_max=3).transform(structures))
