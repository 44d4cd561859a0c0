"""Energy + force learning with KernelRidge(descriptor=FCHL19(...)) on rMD17 ethanol.

Physics checked: the predicted forces are minus the position derivative of the
predicted energy (central finite differences), for models fitted with and
without forces; adding force labels to training lowers the force and energy
errors on unseen frames; scikit-learn's GridSearchCV splits the `forces` fit
parameter with the structures. Units are rMD17's: kcal/mol and kcal/mol/Å.
"""

import numpy as np
import pytest
from ase import Atoms
from conftest import rmd17
from sklearn.model_selection import GridSearchCV, KFold

from kernelpot.descriptors.fchl19 import FCHL19
from kernelpot.kernels.local import LocalKernel
from kernelpot.kernels.vector import Gaussian
from kernelpot.models.krr import KernelRidge

ELEMENTS = [1, 6, 8]


@pytest.fixture(scope="module")
def ethanol():
    """Training and test frames of rMD17 ethanol split 01 (bundled): (atoms, energies, forces) each."""
    out = []
    for part in ("train", "test"):
        data = rmd17(f"rmd17_ethanol_{part}_01")
        atoms = [Atoms(numbers=data["nuclear_charges"], positions=p) for p in data["coords"][:40]]
        out.append((atoms, data["energies"][:40], data["forces"][:40]))
    return out


def model(alpha=1e-8, **kwargs):
    options = {"kernel": "local_gaussian", "sigma": 10.0, "descriptor": FCHL19(ELEMENTS)}
    options.update(kwargs)
    return KernelRidge(alpha, **options)


def displaced(atoms, h):
    """Copies of ``atoms`` with one coordinate moved by +h, then -h, for every coordinate (Å)."""
    out = []
    for index in range(3 * len(atoms)):
        for step in (h, -h):
            copy = atoms.copy()
            copy.positions[index // 3, index % 3] += step
            out.append(copy)
    return out


@pytest.mark.parametrize("with_forces", [True, False])
def test_predicted_forces_are_minus_energy_gradient(ethanol, with_forces):
    (atoms, energies, forces), (test_atoms, _, _) = ethanol
    n = 6
    # A larger alpha keeps the dual coefficients small, so the round-off of the
    # energy differences stays far below the O(h²) truncation error.
    labels = forces[:n] if with_forces else None
    fitted = model(alpha=1e-4).fit(atoms[:n], energies[:n] - energies[:n].mean(), forces=labels)
    assert (fitted.force_dual_coef_ is not None) == with_forces
    h = 1e-4
    target = test_atoms[0]
    energies_pm = fitted.predict(displaced(target, h)).reshape(-1, 2)
    numeric = -(energies_pm[:, 0] - energies_pm[:, 1]) / (2 * h)
    analytic = fitted.predict_forces(target)
    assert analytic.shape == (9, 3)
    np.testing.assert_allclose(analytic.ravel(), numeric, rtol=1e-5, atol=1e-6 * np.abs(numeric).max())


def test_force_labels_lower_the_errors(ethanol):
    (atoms, energies, forces), (test_atoms, test_energies, test_forces) = ethanol
    n, n_test = 10, 30
    offset = energies[:n].mean()
    errors = {}
    for name, labels in (("energy only", None), ("energy + forces", forces[:n])):
        fitted = model().fit(atoms[:n], energies[:n] - offset, forces=labels)
        e_mae = np.mean(np.abs(fitted.predict(test_atoms[:n_test]) + offset - test_energies[:n_test]))
        f_mae = np.mean(np.abs(fitted.predict_forces(test_atoms[:n_test]) - test_forces[:n_test].reshape(-1, 3)))
        errors[name] = (e_mae, f_mae)
    # With 10 frames: about 20 -> 3.4 kcal/mol/Å (forces) and 6 -> 0.7 kcal/mol (energies).
    assert errors["energy + forces"][1] < 0.3 * errors["energy only"][1]
    assert errors["energy + forces"][0] < 0.5 * errors["energy only"][0]


def test_fit_with_forces_solves_the_joint_system(ethanol):
    (atoms, energies, forces), _ = ethanol
    n = 4
    y = energies[:n] - energies[:n].mean()
    fitted = model(force_alpha=1e-6).fit(atoms[:n], y, forces=list(forces[:n]))
    X, G = FCHL19(ELEMENTS).transform(atoms[:n], gradients=True)
    kernel = LocalKernel(Gaussian(10.0))
    K = np.block(
        [
            [kernel(X) + 1e-8 * np.eye(n), kernel.energy_force(X, X, G)],
            [kernel.energy_force(X, X, G).T, kernel.force_force(X, G) + 1e-6 * np.eye(3 * 9 * n)],
        ]
    )
    labels = np.concatenate([y, forces[:n].ravel()])
    coef = np.concatenate([fitted.dual_coef_, fitted.force_dual_coef_.ravel()])
    np.testing.assert_allclose(K @ coef, labels, rtol=1e-6, atol=1e-6 * np.abs(labels).max())


def test_gridsearch_splits_forces_with_structures(ethanol):
    (atoms, energies, forces), _ = ethanol
    n = 6
    search = GridSearchCV(model(), {"sigma": [5.0, 20.0]}, cv=KFold(2), scoring="neg_mean_absolute_error")
    search.fit(atoms[:n], energies[:n] - energies[:n].mean(), forces=forces[:n])
    assert search.best_estimator_.force_dual_coef_.shape == (9 * n, 3)


def test_force_learning_bad_input(ethanol):
    (atoms, energies, forces), _ = ethanol
    y = energies[:3] - energies[:3].mean()
    features = FCHL19(ELEMENTS).transform(atoms[:3])
    with pytest.raises(ValueError, match="`forces` need position gradients of the features: set `descriptor`"):
        KernelRidge(kernel="local_gaussian").fit(features, y, forces=forces[:3])
    with pytest.raises(ValueError, match="`X` has 3 structures but `forces` has 2 entries"):
        model().fit(atoms[:3], y, forces=forces[:2])
    with pytest.raises(ValueError, match=r"`forces\[1\]` must have shape \(9, 3\) for structure 1; got \(8, 3\)"):
        model().fit(atoms[:3], y, forces=[forces[0], forces[1][:8], forces[2]])
    with pytest.raises(ValueError, match="one \\(n_atoms, 3\\) array per structure .* got a 2-D array"):
        model().fit(atoms[:3], y, forces=forces[:3].reshape(-1, 3))
    with pytest.raises(TypeError, match="`forces` must be a sequence"):
        model().fit(atoms[:3], y, forces=1.0)
    bad = forces[:3].copy()
    bad[2, 4, 1] = np.nan
    with pytest.raises(ValueError, match=r"`forces\[2\]` contains NaN or infinity"):
        model().fit(atoms[:3], y, forces=bad)
    with pytest.raises(ValueError, match="`y` must be 1-D .* with `forces`"):
        model().fit(atoms[:3], np.stack([y, y], axis=1), forces=forces[:3])
    with pytest.raises(TypeError, match="learning from forces needs `kernel` to be a LocalKernel"):
        model(kernel=LocalKernel(Gaussian(10.0)) * 2.0).fit(atoms[:3], y, forces=forces[:3])
    with pytest.raises(TypeError, match="a `descriptor` gives per-atom features, so `kernel` must be local"):
        model(kernel="gaussian").fit(atoms[:3], y)
    with pytest.raises(TypeError, match="`predict_forces` needs a model fitted with a `descriptor`"):
        KernelRidge(kernel="local_gaussian").fit(features, y).predict_forces(atoms[:1])
    with pytest.raises(ValueError, match="`predict_forces` needs a model fitted on 1-D `y`"):
        model().fit(atoms[:3], np.stack([y, y], axis=1)).predict_forces(atoms[:1])
    with pytest.raises(ValueError, match=r"species \[7\] in structure 0 are not in elements=\[1, 6, 8\]"):
        model().fit(atoms[:3], y).predict_forces([Atoms("NH", positions=[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])])
