"""Strategies and checks shared by the property-based tests (tests/test_fuzz_*.py).

The properties every fuzz test asserts:

* an outcome is either a finite result or one of the documented exception
  types, with a message (:func:`outcome`);
* nothing hangs: each example runs under a watchdog (:func:`watchdog`) that
  dumps every thread's traceback and ends the run if an example takes longer
  than ``WATCHDOG_SECONDS`` (a hang in compiled code cannot be interrupted
  any other way);
* on valid draws, analytic gradients equal central finite differences
  (:func:`assert_gradients_match`).

The examples are drawn by the hypothesis profile of tests/conftest.py:
"ci" by default (fixed, bounded), "long" with ``HYPOTHESIS_PROFILE=long``.
"""

from __future__ import annotations

import faulthandler
import os
from contextlib import contextmanager

import numpy as np
from ase import Atoms
from hypothesis import strategies as st

WATCHDOG_SECONDS = 600 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 180


@contextmanager
def watchdog(seconds=WATCHDOG_SECONDS):
    """End the test run with a traceback of every thread if the block runs longer than ``seconds``."""
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def outcome(call, documented=(ValueError, TypeError)):
    """``call()``'s result, or None if it raised a documented exception; that exception must have a message."""
    with watchdog():
        try:
            return call()
        except documented as error:
            assert str(error).strip(), f"{type(error).__name__} raised without a message"
            return None


def assert_finite(*arrays):
    for array in arrays:
        assert np.all(np.isfinite(np.asarray(array, dtype=float))), "non-finite values in a result"


# ---------------------------------------------------------------------------------------------- structures
KINDS = ("molecule", "bulk", "tiny", "skewed", "slab", "wire", "zero_vector", "huge")
DEFECTS = ("none", "none", "none", "coincident", "near", "nan", "inf")


@st.composite
def structures(draw, species=(1, 8, 14), max_atoms=4, kinds=KINDS, defects=DEFECTS):
    """One ASE structure: random cell kind, species, positions and (maybe) a defect.

    Returns ``(atoms, defect)``. Cells: a molecule without cell, a bulk cell of 2-6 Å, a tiny periodic cell
    (0.05-0.5 Å: refused by the neighbour guard), a strongly skewed cell, a slab and a wire (partial
    periodicity), a periodic lattice vector of length zero (refused by pack), a 1000 Å cell. Defects: two
    atoms at one position, two atoms 1e-9-1e-3 Å apart, a NaN or an infinite coordinate.
    """
    kind = draw(st.sampled_from(kinds))
    n_atoms = draw(st.integers(1, max_atoms))
    numbers = draw(st.lists(st.sampled_from(species), min_size=n_atoms, max_size=n_atoms))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pbc = True
    if kind == "molecule":
        cell, pbc = np.zeros((3, 3)), False
        positions = rng.uniform(-2.0, 2.0, (n_atoms, 3))
    else:
        if kind == "bulk":
            cell = np.diag(rng.uniform(2.0, 6.0, 3)) + rng.uniform(-0.5, 0.5, (3, 3))
        elif kind == "tiny":
            cell = np.diag(rng.uniform(0.05, 0.5, 3))
        elif kind == "skewed":
            a = rng.uniform(2.0, 5.0)
            cell = np.array([[a, 0, 0], [a * rng.uniform(0.9, 3.0), rng.uniform(0.05, 0.5), 0],
                             [0, 0, rng.uniform(2.0, 5.0)]])
        elif kind == "slab":
            cell, pbc = np.diag([*rng.uniform(2.0, 5.0, 2), 12.0]), [True, True, False]
        elif kind == "wire":
            cell, pbc = np.diag([rng.uniform(1.0, 4.0), 10.0, 10.0]), [True, False, False]
        elif kind == "zero_vector":
            cell = np.diag([3.0, 3.0, 0.0])
        else:  # huge
            cell = np.eye(3) * 1000.0
        positions = rng.uniform(0.0, 1.0, (n_atoms, 3)) @ np.where(np.abs(cell) > 0, cell, 3.0 * np.eye(3))
    defect = draw(st.sampled_from(defects)) if n_atoms > 1 or defects == ("none",) else "none"
    if defect in ("nan", "inf"):
        positions[draw(st.integers(0, n_atoms - 1)), draw(st.integers(0, 2))] = np.nan if defect == "nan" else np.inf
    elif defect in ("coincident", "near") and n_atoms > 1:
        offset = 0.0 if defect == "coincident" else 10.0 ** draw(st.integers(-9, -3))
        positions[1] = positions[0] + [offset, 0.0, 0.0]
    return Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc), defect


def min_distance(atoms):
    """Smallest distance between two atoms or periodic images (Å); inf for one atom in no cell."""
    from ase.neighborlist import neighbor_list

    if len(atoms) < 2 and not atoms.pbc.any():
        return np.inf
    d = neighbor_list("d", atoms, 3.0)
    return float(d.min()) if d.size else np.inf


def pair_distances(atoms, cutoff):
    from ase.neighborlist import neighbor_list

    return neighbor_list("d", atoms, cutoff)


# -------------------------------------------------------------------------------------------- gradients
def finite_differences(function, atoms, h=1e-5):
    """Central differences of ``function(atoms)`` (an array) with respect to every coordinate.

    Returns ndarray of shape ``function(atoms).shape[:1] + (n_atoms, 3) + function(atoms).shape[1:]``.
    """
    base = np.asarray(function(atoms))
    out = np.zeros((base.shape[0], len(atoms), 3) + base.shape[1:])
    for j in range(len(atoms)):
        for a in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[j, a] += h
            minus.positions[j, a] -= h
            out[:, j, a] = (np.asarray(function(plus)) - np.asarray(function(minus))) / (2 * h)
    return out


def assert_gradients_match(descriptor, atoms, h=1e-5, rtol=1e-4):
    """Analytic sparse gradients of ``descriptor`` on ``atoms`` equal central finite differences."""
    X, G = descriptor.transform(atoms, gradients=True)
    if X.size == 0:  # no rows (e.g. no pair within a Distance2B cutoff): nothing to differentiate
        return
    dense = np.zeros((X.shape[0], len(atoms), 3) + X.shape[1:])
    np.add.at(dense, (G.center, G.neighbour), G.values)
    numeric = finite_differences(lambda a: descriptor.transform(a), atoms, h)
    scale = max(np.abs(numeric).max(), np.abs(X).max())
    # Central differences carry round-off of about eps |terms| / h besides their O(h^2) error, where the
    # terms (products of expansion coefficients, of order one) may cancel to features far smaller than they.
    round_off = 100 * np.finfo(float).eps * max(np.abs(X).max(), 1.0) / h
    np.testing.assert_allclose(dense, numeric, rtol=0, atol=rtol * scale + round_off)
