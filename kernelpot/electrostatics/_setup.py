"""Input validation and the pieces every method shares (private to the package).

Charge model, in units where the Coulomb constant is 1
------------------------------------------------------
Charges are points (``widths=None``) or spherical Gaussians
``ρ_i(r) = q_i (2π σ_i²)^(-3/2) exp(-|r - r_i|² / (2 σ_i²))``. Two Gaussians
interact through ``q_i q_j erf(r / γ_ij) / r`` with ``γ_ij = sqrt(2 (σ_i² + σ_j²))``,
and each carries its **self-energy** ``q_i² / (2 σ_i √π)`` (the limit r → 0 of
half the interaction of a Gaussian with itself, ``erf(r/(2σ))/r → 1/(σ√π)``),
which is included in the energy, the potential and the matrix diagonal, as in
charge equilibration with Gaussian charges (kQEq). Point charges have no
self-energy (it is infinite and constant).

Per-atom widths are handled in *width groups*: atoms with equal σ share a group,
so tables are ``(n_groups, n_groups)`` (``n_groups = 1`` for point charges).
"""

from __future__ import annotations

import contextlib
import math
import numbers

import numba
import numpy as np

# |Σq - total_charge| above this (e) is an error; below it a cell counts as neutral.
CHARGE_TOLERANCE = 1e-6
# Systems with fewer atoms run on one thread: a parallel region costs tens of µs to
# start and, on a busy machine, waits for descheduled workers (measured: 200 charges
# under load 6 on 2 cores, 2 threads 60-190 ms per call, 1 thread 6 ms).
SERIAL_BELOW_ATOMS = 1000


@contextlib.contextmanager
def kernel_threads(n_atoms: int):
    """Thread count for the kernels of a system of ``n_atoms``; restores Numba's setting."""
    current = numba.get_num_threads()
    if n_atoms >= SERIAL_BELOW_ATOMS or current == 1:
        yield current
        return
    numba.set_num_threads(1)
    try:
        yield 1
    finally:
        numba.set_num_threads(current)


def as_positions(positions) -> np.ndarray:
    array = np.asarray(positions, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"`positions` must have shape (n_atoms, 3) in Å; got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(array), axis=1))[0])
        raise ValueError(f"`positions` must be finite; atom {bad} has {array[bad].tolist()}")
    return np.ascontiguousarray(array)


def as_per_atom(values, n_atoms: int, name: str, unit: str) -> np.ndarray:
    """A finite float array of shape (n_atoms,) from a scalar or a sequence."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be numbers in {unit}; got {type(values).__name__}") from None
    if array.ndim == 0:
        array = np.full(n_atoms, float(array))
    if array.shape != (n_atoms,):
        raise ValueError(f"`{name}` must have shape ({n_atoms},) (one per atom); got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"`{name}` must be finite; atom {bad} has {array[bad]}")
    return np.ascontiguousarray(array)


def as_widths(widths, n_atoms: int) -> np.ndarray | None:
    if widths is None:
        return None
    array = as_per_atom(widths, n_atoms, "widths", "Å")
    if np.any(array <= 0):
        bad = int(np.flatnonzero(array <= 0)[0])
        raise ValueError(
            f"`widths` (Gaussian σ in Å) must be > 0; atom {bad} has {array[bad]} "
            "(use widths=None for point charges)"
        )
    return array


def as_pbc(pbc) -> bool:
    """True (3D periodic) or False (open); partial periodicity is refused."""
    flags = np.atleast_1d(np.asarray(pbc))
    if flags.dtype != np.bool_ or flags.shape not in ((1,), (3,)):
        raise TypeError(f"`pbc` must be a bool or three bools; got {pbc!r}")
    if flags.all():
        return True
    if not flags.any():
        return False
    raise ValueError(
        f"`pbc` must be periodic in all three directions or in none; got {flags.tolist()}. "
        "Slabs and wires are not supported: use a 3D cell with a vacuum gap "
        "(no dipole correction is applied)"
    )


def as_cell(cell) -> np.ndarray:
    if cell is None:
        raise ValueError("`cell` is required for periodic boundaries (pbc=True); got None")
    array = np.asarray(cell, dtype=np.float64)
    if array.shape == (3,):
        array = np.diag(array)
    if array.shape != (3, 3) or not np.all(np.isfinite(array)):
        raise ValueError(f"`cell` must be a finite (3, 3) array of lattice vectors (rows, Å); got {cell!r}")
    volume = abs(np.linalg.det(array))
    if volume <= 1e-9 * max(np.abs(array).max(), 1.0) ** 3:
        raise ValueError(f"`cell` has zero volume ({volume:.3g} Å³); lattice vectors {array.tolist()}")
    return np.ascontiguousarray(array)


def check_tolerance(tolerance) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real):
        raise TypeError(f"`tolerance` must be a real number; got {tolerance!r}")
    tolerance = float(tolerance)
    if not (1e-14 <= tolerance < 1.0):
        raise ValueError(
            f"`tolerance` (relative RMS force error) must be in [1e-14, 1); got {tolerance!r}. "
            "Below 1e-14 the sums' round-off (~1e-15 relative) cannot be beaten in double precision"
        )
    return tolerance


def check_total_charge(charges: np.ndarray, total_charge, periodic: bool) -> float:
    """Σq, checked against the declared total charge (the policy of :func:`coulomb`)."""
    net = float(np.sum(charges))
    if total_charge is not None:
        if isinstance(total_charge, bool) or not isinstance(total_charge, numbers.Real):
            raise TypeError(f"`total_charge` must be a number in e; got {total_charge!r}")
        if abs(net - float(total_charge)) > CHARGE_TOLERANCE:
            raise ValueError(
                f"charges sum to {net:.9g} e but `total_charge` is {float(total_charge):.9g} e "
                f"(difference {net - float(total_charge):.3g} e > {CHARGE_TOLERANCE:g} e)"
            )
    elif periodic and abs(net) > CHARGE_TOLERANCE:
        raise ValueError(
            f"the periodic cell carries a net charge of {net:.9g} e: declare it with "
            f"total_charge={round(net, 6):g} to accept the neutralising background "
            "(or correct the charges)"
        )
    return net


def cell_geometry(cell: np.ndarray):
    """``(volume Å³, inverse (3, 3) with frac = r @ inverse, heights (3,) Å, recip (3, 3) 1/Å)``.

    ``heights[k]`` is the distance between the lattice planes spanned by the other two
    vectors; ``recip`` holds 2π × the reciprocal basis as rows (``a_i · recip_j = 2π δ_ij``).
    """
    volume = abs(float(np.linalg.det(cell)))
    inverse = np.ascontiguousarray(np.linalg.inv(cell))
    recip = np.ascontiguousarray(2.0 * math.pi * inverse.T)
    heights = 2.0 * math.pi / np.linalg.norm(recip, axis=1)
    return volume, inverse, heights, recip


class WidthGroups:
    """Atoms grouped by equal Gaussian width.

    Attributes
    ----------
    groups : ndarray of shape (n_atoms,), int64
        Group of each atom.
    widths : ndarray of shape (n_groups,), float64
        σ of each group in Å; ``[0.0]`` for point charges.
    point : bool
        True for point charges.
    """

    def __init__(self, widths: np.ndarray | None, n_atoms: int):
        if widths is None:
            self.widths = np.zeros(1)
            self.groups = np.zeros(n_atoms, dtype=np.int64)
        else:
            self.widths, groups = np.unique(widths, return_inverse=True)
            self.groups = np.ascontiguousarray(groups.reshape(-1), dtype=np.int64)
        self.point = widths is None

    @property
    def n_groups(self) -> int:
        return len(self.widths)

    def pair_tables(self, alpha: float):
        """``(a_table, b_table)`` of :mod:`._pair_kernels`, (n_groups, n_groups) each.

        ``a = 1 / sqrt(1/α² + 2(σ_g² + σ_h²))`` (0 when ``alpha`` is 0, open
        boundaries) and ``b = 1/γ = 1 / sqrt(2(σ_g² + σ_h²))`` (0 for point charges).
        """
        pair_var = 2.0 * (self.widths[:, None] ** 2 + self.widths[None, :] ** 2)
        a_table = np.zeros_like(pair_var) if alpha == 0 else 1.0 / np.sqrt(1.0 / alpha**2 + pair_var)
        b_table = np.zeros_like(pair_var) if self.point else 1.0 / np.sqrt(pair_var)
        return np.ascontiguousarray(a_table), np.ascontiguousarray(b_table)

    def self_coefficients(self, alpha: float) -> np.ndarray:
        """Per-atom ``c_i`` with self energy ``c_i q_i²`` (k_e = 1).

        ``c_i = (b_ii - a_ii)/√π``: the Gaussian self-energy ``1/(2σ_i√π)`` minus the
        Ewald self-interaction of the screening ``α_ii/√π`` (either may be absent).
        """
        a_table, b_table = self.pair_tables(alpha)
        diagonal = (np.diag(b_table) - np.diag(a_table)) / math.sqrt(math.pi)
        return diagonal[self.groups]


def background_energy(net_charge: float, volume: float, alpha: float) -> float:
    """Energy of the uniform neutralising background, ``-π Q² / (2 V α²)`` (k_e = 1).

    With it the periodic energy is that of the charges plus a uniform charge
    density ``-Q/V`` (tin-foil boundary conditions), independent of α. For
    Gaussian charges the term is the same: the width parts of the k → 0 limits of
    the reciprocal and real-space sums cancel (:class:`~kernelpot.electrostatics.Ewald`).
    """
    return -math.pi * net_charge**2 / (2.0 * volume * alpha**2)


def coincident_error(pair) -> ValueError:
    i, j = int(pair[0]), int(pair[1])
    return ValueError(
        f"point charges {i} and {j} are at the same place (distance < 1e-10 Å): their "
        "Coulomb energy is infinite; remove the duplicate or give the charges Gaussian widths"
    )


def bin_counts(heights, cutoffs, n_atoms):
    """Cell-list bins along each lattice vector, shape (..., 3), for cutoffs of shape (...).

    About two bins per cutoff (``heights`` are the lattice-plane distances, Å), at
    most ``4 n_atoms + 64`` bins in all, so memory and empty-bin visits stay linear
    in the number of atoms for small or flat cells.
    """
    cutoffs = np.asarray(cutoffs, dtype=np.float64)[..., None]
    bins = np.maximum(1.0, np.floor(heights / (cutoffs / 2.0)))
    shrink = np.maximum(1.0, (np.prod(bins, axis=-1, keepdims=True) / (4.0 * n_atoms + 64.0)) ** (1.0 / 3.0))
    return np.maximum(1.0, np.floor(bins / shrink)).astype(np.int64)


def half_mesh_wavevectors(recip: np.ndarray, mesh):
    """Wave vectors of a real-FFT half mesh (last axis ``K_2//2 + 1``).

    Returns
    -------
    components : list of 3 ndarrays of shape (K_0, K_1, K_2//2 + 1)
        Cartesian components of ``k = Σ_d m_d recip_d`` (1/Å), ``m_d`` the signed
        FFT frequencies.
    k_squared : ndarray of the same shape
        ``|k|²`` with the ``k = 0`` entry set to 1 (callers zero its terms).
    multiplicity : ndarray of shape (K_2//2 + 1,)
        2 for coefficients that stand for themselves and their omitted conjugate,
        1 for the ``m_2 = 0`` and (even ``K_2``) Nyquist planes.
    """
    k0, k1, k2 = (int(k) for k in mesh)
    half = k2 // 2 + 1
    frequencies = (np.fft.fftfreq(k0, 1.0 / k0), np.fft.fftfreq(k1, 1.0 / k1), np.arange(half, dtype=np.float64))
    parts = [frequencies[d][:, None] * recip[d][None, :] for d in range(3)]
    components = [parts[0][:, None, None, x] + parts[1][None, :, None, x] + parts[2][None, None, :, x]
                  for x in range(3)]
    k_squared = components[0] ** 2 + components[1] ** 2 + components[2] ** 2
    k_squared[0, 0, 0] = 1.0
    multiplicity = np.full(half, 2.0)
    multiplicity[0] = 1.0
    if k2 % 2 == 0:
        multiplicity[-1] = 1.0
    return components, k_squared, multiplicity
