"""One entry point for electrostatics: :func:`coulomb` and :func:`coulomb_matrix`.

Policy for charged periodic cells: the net charge must be declared
(``total_charge=``, or ``atoms.info["charge"]`` for an ASE ``Atoms``). The energy
is then that of the charges plus a uniform neutralising background (see
:mod:`kernelpot.electrostatics.ewald`). An undeclared net charge above 1e-6 e is
an error, because it usually means a wrong charge table, and the background
term it would silently add depends on the volume.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from ase import Atoms

from ._setup import (
    as_cell,
    as_pbc,
    as_per_atom,
    as_positions,
    as_widths,
    check_tolerance,
    check_total_charge,
)
from .direct import direct_coulomb, direct_coulomb_matrix
from .ewald import Ewald
from .parameters import ewald_parameters, ewald_seconds, pme_parameters, pme_seconds
from .pme import PME
from .result import CoulombResult

__all__ = ["coulomb", "coulomb_matrix"]

METHODS = ("auto", "direct", "ewald", "pme")


def _per_species(table, atoms: Atoms, name: str, unit: str) -> np.ndarray:
    """Expand a ``{symbol: value}`` table to the atoms of ``atoms``."""
    symbols = atoms.get_chemical_symbols()
    missing = sorted(set(symbols) - set(table))
    if missing:
        raise ValueError(f"species {missing} are not in the `{name}` table {sorted(table)} ({unit})")
    return np.array([float(table[s]) for s in symbols])


def _unpack(positions, charges, cell, pbc, widths, total_charge):
    """Arrays from either raw input or an ASE ``Atoms``."""
    if isinstance(positions, Atoms):
        atoms = positions
        if cell is not None or pbc is not False:
            raise TypeError("pass either an ASE Atoms or `cell`/`pbc`, not both: the Atoms carries its cell and pbc")
        if charges is None:
            if "initial_charges" not in atoms.arrays:
                raise ValueError("`charges` not given and the Atoms has no initial charges "
                                 "(atoms.set_initial_charges or charges=...)")
            charges = atoms.get_initial_charges()
        elif isinstance(charges, dict):
            charges = _per_species(charges, atoms, "charges", "e")
        if isinstance(widths, dict):
            widths = _per_species(widths, atoms, "widths", "Å")
        if total_charge is None and "charge" in atoms.info:
            total_charge = atoms.info["charge"]
        cell, pbc = atoms.cell.array, atoms.pbc
        positions = atoms.positions
    elif isinstance(charges, dict) or isinstance(widths, dict):
        raise TypeError("per-species `charges`/`widths` tables need an ASE Atoms (for its chemical symbols)")
    if charges is None:
        raise TypeError("`charges` (e) are required")
    positions = as_positions(positions)
    n = len(positions)
    periodic = as_pbc(pbc)
    return (positions, as_per_atom(charges, n, "charges", "e"), as_cell(cell) if periodic else None,
            periodic, as_widths(widths, n), total_charge)


def _check_method(method, periodic):
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {list(METHODS)}; got {method!r}")
    if periodic and method == "direct":
        raise ValueError("method='direct' sums open boundaries only; use 'ewald', 'pme' or 'auto' for pbc=True")
    if not periodic and method in ("ewald", "pme"):
        raise ValueError(f"method={method!r} needs a periodic cell (pbc=True); use 'direct' or 'auto'")


def _rounded_moments(charges):
    """(Σq², Σq⁴) each rounded up to n × 2^(j/4), or (None, None) for all-zero charges.

    Rounding keeps the parameters, and the cached Ewald/PME objects, fixed while
    charges change a little (e.g. charge equilibration along an MD run).
    """
    n = len(charges)
    moments = []
    for power in (2, 4):
        mean = float(np.mean(np.abs(charges) ** power)) if n else 0.0
        if mean <= 0:
            return None, None
        moments.append(n * 2.0 ** (math.ceil(4.0 * math.log2(mean) - 1e-9) / 4.0))
    return tuple(moments)


@functools.lru_cache(maxsize=8)
def _engine(method, cell_key, n_atoms, tolerance, moments, width_key):
    """An Ewald or PME object for one cell, cached so MD steps reuse k-vectors and meshes."""
    cell = np.array(cell_key).reshape(3, 3)
    sum_squared, sum_fourth = moments
    widths = None if width_key is None else np.array(width_key[:2])
    n_groups = 1 if width_key is None else width_key[2]
    if method in ("ewald", "auto"):
        ewald = ewald_parameters(cell, n_atoms, tolerance, sum_squared_charges=sum_squared, widths=widths)
    if method in ("pme", "auto"):
        pme = pme_parameters(cell, n_atoms, tolerance, sum_squared_charges=sum_squared,
                             sum_fourth_charges=sum_fourth, widths=widths, n_groups=n_groups)
    if method == "auto":
        use_pme = pme_seconds(pme, cell, n_atoms, n_groups) < ewald_seconds(ewald, cell, n_atoms)
        method = "pme" if use_pme else "ewald"
    return PME(cell, pme) if method == "pme" else Ewald(cell, ewald)


def coulomb(positions, charges=None, *, cell=None, pbc=False, widths=None, method="auto",
            tolerance=1e-6, total_charge=None, compute_forces=True, compute_stress=True,
            compute_potential=False) -> CoulombResult:
    r"""Electrostatic energy, forces, virial/stress and site potentials of charges.

    Units: Å, e, eV, with :data:`~kernelpot.electrostatics.COULOMB_CONSTANT`
    (CODATA 2014, ASE's value).

    Parameters
    ----------
    positions : array_like of shape (n_atoms, 3) or ase.Atoms
        Cartesian positions in Å. An ``Atoms`` also supplies the cell, pbc, the
        charges (``initial_charges``, unless ``charges`` is given) and the declared
        total charge (``info["charge"]``, unless ``total_charge`` is given).
    charges : array_like of shape (n_atoms,), or dict
        Charges in e; with an ``Atoms``, also a ``{symbol: charge}`` table.
    cell : array_like of shape (3, 3), optional
        Lattice vectors as rows, Å; required when ``pbc`` is True.
    pbc : bool or three bools
        True for a 3D-periodic cell, False for open boundaries (mixed periodicity is
        not supported).
    widths : float, array_like of shape (n_atoms,), or dict, optional
        Gaussian charge widths σ in Å (> 0); None for point charges. Pairs interact
        through ``erf(r/γ_ij)/r``, ``γ_ij = sqrt(2(σ_i² + σ_j²))``, and every Gaussian
        adds its self-energy ``q_i²/(2σ_i√π)``.
    method : {"auto", "direct", "ewald", "pme"}
        "direct" sums all pairs (open boundaries only); "ewald" and "pme" are for
        periodic cells; "auto" takes "direct" for open boundaries and, periodic,
        whichever of Ewald and PME has the lower modelled cost
        (:mod:`kernelpot.electrostatics.parameters`; PME wins from ~10³ charges on).
    tolerance : float
        Periodic only: target RMS force error relative to the force between two unit
        charges 1 Å apart (14.4 eV/Å), as in LAMMPS and torch-pme. Parameters are
        chosen for Σq² and Σq⁴ rounded up to the next ``n 2^(j/4)``, so that they (and
        the cached Ewald/PME objects) stay fixed when charges change a little.
    total_charge : float, optional
        Declared net charge in e. If given, Σq must match it within 1e-6 e. A
        periodic cell with a net charge must declare it (module docstring).
    compute_forces, compute_stress, compute_potential : bool
        Which derivatives to compute (the energy always is).

    Returns
    -------
    CoulombResult
        ``energy`` (eV), ``forces`` (n, 3) eV/Å, ``virial`` (3, 3) eV, ``stress``
        (3, 3) eV/Å³ (ASE sign; None for open boundaries), ``potential`` (n,) V.

    Raises
    ------
    ValueError
        Bad shapes or values, a net charge that disagrees with ``total_charge`` or is
        undeclared in a periodic cell, coincident point charges, or a tolerance that
        cannot be reached in the cell.

    Examples
    --------
    >>> from kernelpot.electrostatics import coulomb
    >>> result = coulomb([[0, 0, 0], [0, 0, 2.0]], [1.0, -1.0])
    >>> round(result.energy, 6)  # -k_e / 2 Å
    -7.199823
    """
    positions, charges, cell, periodic, widths, total_charge = _unpack(
        positions, charges, cell, pbc, widths, total_charge)
    _check_method(method, periodic)
    if not periodic:
        check_total_charge(charges, total_charge, periodic=False)
        return direct_coulomb(positions, charges, widths, compute_forces=compute_forces,
                              compute_stress=compute_stress, compute_potential=compute_potential)
    tolerance = check_tolerance(tolerance)
    width_key = None if widths is None else (float(widths.min()), float(widths.max()),
                                             len(np.unique(widths)))
    engine = _engine(method, tuple(cell.ravel().tolist()), max(len(positions), 1), tolerance,
                     _rounded_moments(charges), width_key)
    return engine.compute(positions, charges, widths=widths, total_charge=total_charge,
                          compute_forces=compute_forces, compute_stress=compute_stress,
                          compute_potential=compute_potential)


def coulomb_matrix(positions, *, cell=None, pbc=False, widths=None, tolerance=1e-6) -> np.ndarray:
    r"""Interaction matrix A (eV/e²) with ``E = ½ qᵀ A q`` for any charges q.

    (Not the Coulomb-matrix *descriptor* of Rupp et al., :class:`kernelpot.descriptors.CoulombMatrix`.)

    For charge equilibration: ``A q`` is the potential ``φ = dE/dq`` (V) and the
    QEq energy ``Σ χ_i q_i + ½ Σ J_i q_i² + ½ qᵀ A q`` is minimised by one linear
    solve with the constraint ``Σ q = Q``. Meant for up to a few thousand atoms
    (dense, O(n²) memory). The forces at the solved charges are those of
    :func:`coulomb` with the same charges and widths.

    Parameters
    ----------
    positions : array_like of shape (n_atoms, 3) or ase.Atoms
        Cartesian positions in Å (an ``Atoms`` supplies cell and pbc).
    cell, pbc, widths, tolerance
        As in :func:`coulomb`; periodic matrices use Ewald with parameters tuned for
        unit charges.

    Returns
    -------
    ndarray of shape (n_atoms, n_atoms)
        Symmetric. Off-diagonal: the pair interaction (periodic: summed over all images,
        with the background constant ``-π/(Vα²)`` in every element). Diagonal: the
        Gaussian self-energy term ``1/(σ_i√π)`` (0 for point charges with open
        boundaries; periodic, plus the interaction with the atom's own images).
    """
    if isinstance(positions, Atoms):
        if cell is not None or pbc is not False:
            raise TypeError("pass either an ASE Atoms or `cell`/`pbc`, not both: the Atoms carries its cell and pbc")
        if isinstance(widths, dict):
            widths = _per_species(widths, positions, "widths", "Å")
        positions, cell, pbc = positions.positions, positions.cell.array, positions.pbc
    positions = as_positions(positions)
    widths = as_widths(widths, len(positions))
    if not as_pbc(pbc):
        return direct_coulomb_matrix(positions, widths)
    cell = as_cell(cell)
    tolerance = check_tolerance(tolerance)
    parameters = ewald_parameters(cell, len(positions), tolerance, widths=widths, for_matrix=True)
    return Ewald(cell, parameters).matrix(positions, widths=widths)
