"""QM7 (PBE0 heats of formation, kcal/mol) with FCHL19 + local-Gaussian KRR.

Checked: the learning curve goes down (and the check itself fails on shuffled
labels, so it can fail), the same split and hyperparameters run through
qmllib give the same test MAE within 1 %, and bad input on the Atoms path is
rejected with errors that name the culprit.
"""

import numpy as np
import pytest
from ase import Atoms
from conftest import qm7 as qm7_subset
from sklearn.pipeline import make_pipeline

from kernelpot.descriptors.fchl19 import FCHL19
from kernelpot.kernels.local import LocalKernel
from kernelpot.kernels.vector import Gaussian
from kernelpot.models.krr import KernelRidge

ELEMENTS = [1, 6, 7, 8, 16]
# Fixed hyperparameters: what 5-fold CV picks for N = 100-400 in examples/qm7_learning_curve.py.
SIGMA, ALPHA = 8.0, 1e-6


@pytest.fixture(scope="module")
def qm7(qm7_molecules):
    """A fixed random subset of 600 QM7 molecules (of qml's 7101, bundled) and their heats of formation (kcal/mol)."""
    chosen = np.random.default_rng(0).permutation(7101)[:600]
    molecules = qm7_subset(qm7_molecules, chosen)
    return molecules, np.array([m.info["hof_pbe0_kcal_mol"] for m in molecules])


def learning_curve(K_train, K_test, y_train, y_test, sizes):
    """Test MAE of KRR on the first N training molecules for each N, from precomputed kernels."""
    maes = []
    for n in sizes:
        K = K_train[:n, :n] + ALPHA * np.eye(n)
        weights = np.linalg.solve(K, y_train[:n])
        maes.append(np.mean(np.abs(K_test[:, :n] @ weights - y_test)))
    return np.array(maes)


def goes_down(maes, factor=0.85):
    """Each doubling of N must cut the MAE to at most ``factor`` times the previous one."""
    return bool(np.all(maes[1:] <= factor * maes[:-1]))


def test_learning_curve_goes_down(qm7):
    molecules, energies = qm7
    descriptor = FCHL19(ELEMENTS)
    train, test = descriptor.transform(molecules[:400]), descriptor.transform(molecules[400:])
    kernel = LocalKernel(Gaussian(SIGMA))
    K_train, K_test = kernel(train), kernel(test, train)
    sizes = [100, 200, 400]
    maes = learning_curve(K_train, K_test, energies[:400], energies[400:], sizes)
    assert goes_down(maes), f"MAE (kcal/mol) at N={sizes}: {maes}"
    assert maes[-1] < 5.0  # about 2.5 kcal/mol at N = 400
    # The check can fail: with the labels shuffled among molecules nothing is learned.
    shuffled = np.random.default_rng(1).permutation(energies)
    maes_shuffled = learning_curve(K_train, K_test, shuffled[:400], shuffled[400:], sizes)
    assert not goes_down(maes_shuffled), f"shuffled labels: MAE {maes_shuffled}"


@pytest.mark.peers
def test_same_mae_as_qmllib(qm7):
    representations = pytest.importorskip("qmllib.representations")
    qk = pytest.importorskip("qmllib.kernels")
    molecules, energies = qm7
    train, test = np.arange(200), np.arange(200, 300)
    model = make_pipeline(FCHL19(ELEMENTS), KernelRidge(ALPHA, kernel="local_gaussian", sigma=SIGMA))
    model.fit([molecules[i] for i in train], energies[train])
    prediction = model.predict([molecules[i] for i in test])
    mae = np.mean(np.abs(prediction - energies[test]))

    pad = max(len(m) for m in molecules[:300])
    reps = np.array(
        [representations.generate_fchl19(m.numbers, m.positions, elements=ELEMENTS, pad=pad) for m in molecules[:300]]
    )
    charges = [m.numbers for m in molecules[:300]]
    K = qk.get_local_symmetric_kernel(reps[train], [charges[i] for i in train], SIGMA)
    K[np.diag_indices_from(K)] += ALPHA
    weights = np.linalg.solve(K, energies[train])
    q_train, q_test = [charges[i] for i in train], [charges[i] for i in test]
    K_test = qk.get_local_kernel(reps[train], reps[test], q_train, q_test, SIGMA)
    reference = K_test @ weights  # qmllib's kernel is (n_test, n_train)
    mae_qmllib = np.mean(np.abs(reference - energies[test]))
    assert abs(mae - mae_qmllib) <= 0.01 * mae_qmllib, (mae, mae_qmllib)
    np.testing.assert_allclose(prediction, reference, rtol=1e-6, atol=1e-6 * np.abs(reference).max())


def test_atoms_path_bad_input(qm7):
    molecules, energies = qm7
    model = KernelRidge(ALPHA, kernel="local_gaussian", sigma=SIGMA, descriptor=FCHL19([1, 6, 8]))
    with_n = next(i for i, m in enumerate(molecules[:50]) if 7 in m.numbers)
    with pytest.raises(ValueError, match=rf"species \[7\] in structure {with_n} are not in elements=\[1, 6, 8\]"):
        model.fit(molecules[:50], energies[:50])
    full = KernelRidge(ALPHA, kernel="local_gaussian", sigma=SIGMA, descriptor=FCHL19(ELEMENTS))
    with pytest.raises(ValueError, match="structure 2 has no atoms"):
        full.fit(molecules[:2] + [Atoms()], energies[:3])
    with pytest.raises(ValueError, match="no structures given"):
        full.fit([], [])
    with pytest.raises(ValueError, match="`X` has 5 structures but `y` has 4 rows; they must match"):
        full.fit(molecules[:5], energies[:4])
    y_nan = energies[:5].copy()
    y_nan[2] = np.nan
    with pytest.raises(ValueError, match=r"`y` contains NaN or infinity \(first at index \(2,\)\)"):
        full.fit(molecules[:5], y_nan)
    # The same checks through a Pipeline (descriptor outside the model).
    pipe = make_pipeline(FCHL19([1, 6, 8]), KernelRidge(ALPHA, kernel="local_gaussian", sigma=SIGMA))
    with pytest.raises(ValueError, match=r"species \[7\] in structure"):
        pipe.fit(molecules[:50], energies[:50])
    pipe = make_pipeline(FCHL19(ELEMENTS), KernelRidge(ALPHA, kernel="local_gaussian", sigma=SIGMA))
    with pytest.raises(ValueError, match="`X` has 5 structures but `y` has 4 rows"):
        pipe.fit(molecules[:5], energies[:4])
    with pytest.raises(ValueError, match=r"`y` contains NaN or infinity \(first at index \(2,\)\)"):
        pipe.fit(molecules[:5], y_nan)
    fitted = full.fit(molecules[:5], energies[:5])
    with pytest.raises(ValueError, match="structure 0 has no atoms"):
        fitted.predict([Atoms()])
