"""dscribe adapter: result types, gradient layout and self term, a fitted pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from kernelpot.descriptors.base import AtomicFeatures, SparseGradients

descriptors = pytest.importorskip("dscribe.descriptors")
from conftest import qm7

from kernelpot.descriptors.dscribe_adapter import DscribeDescriptor, from_dscribe  # noqa: E402

pytestmark = pytest.mark.peers


def _soap(**kwargs):
    return descriptors.SOAP(species=["H", "C", "O"], r_cut=4.0, n_max=3, l_max=2, **kwargs)


def _acsf():
    return descriptors.ACSF(species=["H", "C", "O"], r_cut=4.0, g2_params=[[1.0, 0.0], [4.0, 1.0]],
                            g4_params=[[0.01, 1.0, 1.0]])


def _rattled(name, seed=0):
    atoms = molecule(name)
    atoms.rattle(0.05, seed=seed)
    return atoms


def _finite_difference(wrapped, atoms, row, atom, h=1e-5):
    """Central difference of feature row ``row`` w.r.t. atom ``atom`` (3, n_features), per Å."""
    out = np.empty((3, wrapped.get_number_of_features()))
    for axis in range(3):
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        out[axis] = (np.asarray(wrapped.transform(plus))[row]
                     - np.asarray(wrapped.transform(minus))[row]) / (2 * h)
    return out


def test_local_descriptor_gives_atomic_features():
    structures = [molecule("H2O"), molecule("CH3OH")]
    wrapped = from_dscribe(_acsf())
    X = wrapped.transform(structures)
    assert isinstance(X, AtomicFeatures) and X.dtype == np.float64
    assert X.offsets.tolist() == [0, 3, 9]
    assert X.numbers.tolist() == [8, 1, 1, 6, 8, 1, 1, 1, 1]
    expected = np.concatenate([_acsf().create(a) for a in structures])
    assert np.array_equal(np.asarray(X), expected)
    assert wrapped.is_local and wrapped.get_number_of_features() == X.shape[1]


def test_global_and_averaged_descriptors_give_one_row_per_structure():
    structures = [molecule("CH4"), molecule("H2O")]
    X = from_dscribe(descriptors.CoulombMatrix(n_atoms_max=5)).transform(structures)
    assert type(X) is np.ndarray and X.shape == (2, 25)
    assert np.array_equal(X, descriptors.CoulombMatrix(n_atoms_max=5).create(structures))
    averaged = from_dscribe(_soap(average="inner"))
    assert not averaged.is_local
    assert averaged.transform(structures).shape == (2, averaged.get_number_of_features())


def test_soap_self_term_is_the_total_derivative():
    atoms = _rattled("CH3OH")
    wrapped = from_dscribe(_soap())
    X, G = wrapped.transform(atoms, gradients=True)
    assert isinstance(G, SparseGradients) and G.values.shape[1:] == (3, X.shape[1])
    dense = G.to_dense(len(atoms))
    # dscribe with centres attached to their atoms (numerical) gives total derivatives.
    attached, _ = _soap().derivatives(atoms, attach=True)
    assert np.allclose(dense, attached, rtol=1e-6, atol=1e-6 * np.abs(attached).max())
    # Translation invariance: each row's gradients sum to zero.
    assert np.abs(dense.sum(axis=1)).max() <= 1e-9 * np.abs(dense).max()
    # And a direct finite difference of the wrapped features for one centre's own atom.
    fd = _finite_difference(wrapped, atoms, row=2, atom=2)
    assert np.allclose(dense[2, 2], fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max())


def test_soap_periodic_self_term_by_finite_differences():
    # A cell wide enough that no atom has two images near one centre: there
    # dscribe's own periodic derivatives disagree with its create() (see the
    # adapter's module docstring), whatever the adapter does.
    atoms = bulk("C", "diamond", a=3.57, cubic=True) * (2, 2, 2)
    atoms.rattle(0.05, seed=2)
    wrapped = from_dscribe(descriptors.SOAP(species=["C"], r_cut=2.5, n_max=2, l_max=2, periodic=True))
    _, G = wrapped.transform(atoms, gradients=True)
    dense = G.to_dense(len(atoms))
    for atom in (0, 5):
        fd = _finite_difference(wrapped, atoms, row=atom, atom=atom)
        assert np.allclose(dense[atom, atom], fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max())


def test_acsf_gradients_and_sparse_pairs():
    structures = [_rattled("H2O", 1), _rattled("CH3CH2OH", 3)]
    wrapped = from_dscribe(_acsf())
    X, G = wrapped.transform(structures, gradients=True)
    assert set(G.center.tolist()) == set(range(X.shape[0]))
    # Pairs never cross structures and every row has its self pair.
    structure_of = np.repeat([0, 1], [3, 9])
    assert np.array_equal(structure_of[G.center], structure_of[G.neighbour])
    assert np.all(np.isin(np.arange(12), G.center[G.center == G.neighbour]))
    # The 4 Å cutoff drops distant pairs of ethanol.
    assert G.n_pairs < 3 * 3 + 9 * 9
    dense = G.to_dense(12)
    ethanol = structures[1]
    for row, atom in ((3, 3), (4, 7)):  # global rows 3.. are ethanol atoms 0..
        fd = _finite_difference(wrapped, ethanol, row=row - 3, atom=atom - 3)
        assert np.allclose(dense[row, atom], fd, rtol=1e-5, atol=1e-6 * np.abs(dense).max())


def test_global_gradients_use_the_structure_as_row():
    structures = [_rattled("CH4", 4), _rattled("H2O", 5)]
    wrapped = from_dscribe(descriptors.CoulombMatrix(n_atoms_max=5, permutation="eigenspectrum"))
    X, G = wrapped.transform(structures, gradients=True)
    assert X.shape == (2, 5)
    assert set(G.center.tolist()) == {0, 1}
    assert np.array_equal(G.center, np.repeat([0, 1], [5, 3]))
    dense = G.to_dense(8)
    fd = np.stack([_finite_difference(wrapped, structures[1], row=0, atom=a) for a in range(3)])
    assert np.allclose(dense[1, 5:8], fd, rtol=1e-4, atol=1e-6 * np.abs(fd).max())


def test_pipeline_fits_qm7_energies(qm7_molecules):
    from kernelpot.models.krr import KernelRidge

    molecules = qm7(qm7_molecules, range(400))
    energies = np.array([m.info["hof_pbe0_kcal_mol"] for m in molecules])
    acsf = descriptors.ACSF(species=["H", "C", "N", "O", "S"], r_cut=5.0,
                            g2_params=[[0.5, 0.0], [2.0, 0.0], [4.0, 1.5]],
                            g4_params=[[0.005, 1.0, 1.0], [0.005, 1.0, -1.0]])
    model = make_pipeline(from_dscribe(acsf), KernelRidge(alpha=1e-3, kernel="local_linear"))
    model.fit(molecules[:300], energies[:300])
    error = np.abs(model.predict(molecules[300:]) - energies[300:]).mean()
    # A sum of atomic terms on ACSF gets well below the spread of the energies.
    assert error < 0.25 * energies[300:].std()


def test_clone_keeps_the_wrapped_descriptor():
    wrapped = from_dscribe(_acsf())
    twin = clone(wrapped)
    assert isinstance(twin, DscribeDescriptor) and twin.descriptor is not wrapped.descriptor
    assert np.array_equal(np.asarray(twin.transform(molecule("H2O"))),
                          np.asarray(wrapped.transform(molecule("H2O"))))


def test_not_a_dscribe_descriptor_raises():
    with pytest.raises(TypeError, match="`descriptor` must be a dscribe descriptor instance.*got dict"):
        from_dscribe({"species": ["H"]})


def test_no_structures_raises():
    with pytest.raises(ValueError, match="`X` holds no structures"):
        from_dscribe(_acsf()).transform([])


def test_dscribe_input_errors_keep_their_type_and_name_the_descriptor():
    with pytest.raises(ValueError, match=r"dscribe's ACSF.create\(\) failed: .*atomic numbers"):
        from_dscribe(_acsf()).transform(molecule("NH3"))


def test_failures_inside_dscribe_become_runtime_errors(monkeypatch):
    acsf = _acsf()

    def broken(*args, **kwargs):
        raise KeyError("internal")

    monkeypatch.setattr(acsf, "create", broken)
    with pytest.raises(RuntimeError, match=r"dscribe's ACSF.create\(\) failed: 'internal' \(KeyError\)"):
        from_dscribe(acsf).transform(molecule("H2O"))
