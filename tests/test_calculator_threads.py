"""A GAPCalculator shared by threads returns each thread its own results (issue 18, item 5)."""

import copy
import pickle
import threading

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from kernelpot.descriptors.soap import SOAP
from kernelpot.kernels import NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.potential.calculator import GAPCalculator


@pytest.fixture(scope="module")
def model():
    frames = []
    for seed in range(4):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.1, seed=seed)
        atoms.calc = EMT()
        frames.append(atoms)
    term = GAPTerm(SOAP(["Cu"], r_cut=3.5, n_max=3, l_max=2, periodic=True), NormalizedDotProductCovariance(zeta=2),
                   delta=0.3, n_sparse=8)
    return SparseGPR([term]).fit(frames, energies=[a.get_potential_energy() for a in frames],
                                 forces=[a.get_forces() for a in frames])


def _structures(n):
    out = []
    for seed in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 1, 1 + seed % 2))
        atoms.rattle(0.05 + 0.02 * seed, seed=100 + seed)
        out.append(atoms)
    return out


def _reference(model, structures, n_steps):
    """Energy and forces of every structure at every step of ``_walk``, computed serially."""
    calc = GAPCalculator(model)
    out = []
    for atoms in structures:
        rows = []
        for work in _walk(atoms, n_steps):
            work.calc = calc
            rows.append((work.get_potential_energy(), work.get_forces()))
        out.append(rows)
    return out


def _walk(atoms, n_steps):
    for step in range(n_steps):
        work = atoms.copy()
        work.positions[0, 0] += 1e-3 * step  # a new structure at each call: no cached result
        yield work


def test_threads_computing_at_once_each_get_their_own_results(model):
    structures, n_steps = _structures(4), 6
    expected = _reference(model, structures, n_steps)
    shared = GAPCalculator(model)
    wrong, barrier = [], threading.Barrier(len(structures))

    def work(index):
        barrier.wait()
        for step, atoms in enumerate(_walk(structures[index], n_steps)):
            atoms.calc = shared
            try:
                energy, forces = atoms.get_potential_energy(), atoms.get_forces()
            except Exception as error:  # e.g. a KeyError when another thread reset the results
                wrong.append((index, step, repr(error)))
                continue
            want_energy, want_forces = expected[index][step]
            if forces.shape != want_forces.shape or not (
                    np.isclose(energy, want_energy, rtol=0, atol=1e-9) and np.allclose(forces, want_forces, atol=1e-9)):
                wrong.append((index, step, "another structure's results"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(structures))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == [], f"{len(wrong)} of {len(structures) * n_steps} calls wrong: {wrong[:5]}"


def test_results_of_a_thread_finishing_later_do_not_reach_another(model):
    """The interleaving that went wrong, forced with events (no timing involved).

    Thread "slow" starts a calculation on a 4-atom cell and is held inside
    it; the main thread computes the energy of an 8-atom cell; then "slow"
    finishes and stores its results. ASE's cache (``atoms`` = the main
    thread's cell, ``results`` = slow's) then served the main thread slow's
    forces for its own unchanged cell.
    """
    small, large = _structures(2)
    gated = copy.deepcopy(model)
    entered, release = threading.Event(), threading.Event()

    def predict(*args, **kwargs):
        if threading.current_thread().name == "slow":
            entered.set()
            release.wait(timeout=60)
        return model.predict(*args, **kwargs)

    gated.predict = predict
    shared = GAPCalculator(gated)
    slow_atoms = small.copy()
    slow_atoms.calc = shared
    slow = threading.Thread(target=slow_atoms.get_potential_energy, name="slow")
    slow.start()
    assert entered.wait(timeout=60)
    main_atoms = large.copy()
    main_atoms.calc = shared
    energy = main_atoms.get_potential_energy()
    release.set()
    slow.join()
    forces = main_atoms.get_forces()
    reference = large.copy()
    reference.calc = GAPCalculator(model)
    assert forces.shape == (len(large), 3)
    np.testing.assert_allclose(forces, reference.get_forces(), atol=1e-12)
    assert energy == pytest.approx(reference.get_potential_energy(), abs=1e-12)
    assert slow_atoms.get_potential_energy() == pytest.approx(
        GAPCalculator(model).get_potential_energy(small.copy()), abs=1e-12)


def test_calculator_copies_and_pickles(model):
    atoms = _structures(1)[0]
    calc = GAPCalculator(model, uncertainty=False)
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    for clone in (copy.deepcopy(calc), pickle.loads(pickle.dumps(calc))):
        other = atoms.copy()
        other.calc = clone
        assert other.get_potential_energy() == pytest.approx(energy, abs=1e-12)
