"""Finite-difference references shared by the physics tests."""

import numpy as np


def strain_derivative(function, atoms, step):
    """Central differences of ``function(atoms)`` under homogeneous strain.

    The cell (and, scaled with it, the positions) is deformed as
    ``cell @ (1 + ε)`` with a single component ``ε[a, b] = ±step``.

    Returns
    -------
    ndarray of shape (3, 3) + shape of ``function(atoms)``
        ``d function / d ε[a, b]``.
    """
    rows = []
    for a in range(3):
        row = []
        for b in range(3):
            values = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[a, b] += sign * step
                deformed = atoms.copy()
                deformed.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                values.append(np.asarray(function(deformed), dtype=np.float64))
            row.append((values[0] - values[1]) / (2 * step))
        rows.append(row)
    return np.array(rows)


def position_derivative(function, atoms, step, atoms_moved=None):
    """Central differences of ``function(atoms)`` in every position component.

    Returns
    -------
    ndarray of shape (n_moved, 3) + shape of ``function(atoms)``
        ``d function / d r[i, a]`` for ``i`` in ``atoms_moved`` (default: every atom).
    """
    out = []
    for i in range(len(atoms)) if atoms_moved is None else atoms_moved:
        row = []
        for a in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, a] += step
            minus.positions[i, a] -= step
            row.append((np.asarray(function(plus), dtype=np.float64)
                        - np.asarray(function(minus), dtype=np.float64)) / (2 * step))
        out.append(row)
    return np.array(out)
