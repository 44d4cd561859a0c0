"""Write ``model_v0.1.kpot`` and ``predictions.npz``: a model file from before the package layout changed.

Run at commit 36aef01 (kernelpot 0.1.0, before ``models/_gap_*`` moved to
``models/gap/`` and the GAP covariances to ``kernels/``), from the
repository root::

    python tests/reference/legacy_kpot/make_reference.py

The file names the classes ``SOAP``, ``Distance2B``, ``CentreSpecies``,
``SquaredExponential`` (parameter ``theta``) and ``NormalisedDotProduct``;
``tests/test_legacy_files.py`` checks that today's loader reads it and
predicts the stored numbers. Kept small (a few hundred kB at most).
"""

from pathlib import Path

import numpy as np
from ase.io import read

from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.soap import SOAP
from kernelpot.models._gap_centres import CentreSpecies
from kernelpot.models._gap_covariance import NormalisedDotProduct, SquaredExponential
from kernelpot.models._gap_terms import GAPTerm
from kernelpot.models._gap_variance import fitc_factor
from kernelpot.models.sparse_gpr import SparseGPR
from kernelpot.potential.serialization import save_model
from kernelpot.uncertainty.calibration import recalibrate

here = Path(__file__).resolve().parent
frames = read(here.parents[2] / "data" / "mlearn_si" / "mlearn_Si_training.extxyz", ":")
train, valid, test = frames[:12], frames[12:20], frames[20:24]
energies = [a.get_potential_energy() for a in train]
forces = [a.get_forces() for a in train]
terms = [
    GAPTerm(Distance2B(cutoff=5.0), SquaredExponential(theta=1.0), delta=2.0, n_sparse=10, sparse_method="uniform"),
    GAPTerm(CentreSpecies(SOAP(species=["Si"], r_cut=4.5, n_max=4, l_max=3, sigma=0.5, periodic=True), "Si"),
            NormalisedDotProduct(zeta=4), delta=0.2, n_sparse=30, sparse_method="cur"),
]
model = SparseGPR(terms, default_sigma=(0.002, 0.1, 0.05), random_state=0)
model.fit(train, energies=energies, forces=forces)
fitc_factor(model, train, energies=energies, forces=forces)
recalibrate(model, valid, energies=[a.get_potential_energy() for a in valid],
            forces=[a.get_forces() for a in valid], floor=True)
save_model(model, here / "model_v0.1.kpot")
properties = ("energy", "forces", "stress")
out = model.predict(test, properties=properties, return_std=True)
fitc = model.predict(test, properties=("energy",), return_std=True, variance="fitc")
np.savez(here / "predictions.npz", **out, fitc_energy_std=fitc["energy_std"])
print({k: v.shape for k, v in out.items()}, (here / "model_v0.1.kpot").stat().st_size)
