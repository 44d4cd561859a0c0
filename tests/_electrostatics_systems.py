"""Structures and slow, obviously right references shared by the electrostatics tests."""

import math

import numpy as np
from scipy.special import erf, erfc

from kernelpot.electrostatics import COULOMB_CONSTANT

# Madelung constants per nearest-neighbour distance, to 12 digits (e.g. Zucker,
# J. Math. Phys. 16, 2189 (1975); Borwein et al., "Lattice Sums Then and Now" (2013)).
MADELUNG = {
    "rocksalt": 1.747564594633182,
    "cesium_chloride": 1.762674773070988,
    "zincblende": 1.638055053388790,
}


def crystal(name, a=1.0, primitive=True):
    """(positions, charges, cell, nearest-neighbour distance, ion pairs) of a binary ionic crystal."""
    fcc_primitive = 0.5 * a * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    if name == "rocksalt" and primitive:
        return np.array([[0.0, 0, 0], [0.5 * a, 0, 0]]), np.array([1.0, -1.0]), fcc_primitive, 0.5 * a, 1
    if name == "rocksalt":
        fcc = 0.5 * a * np.array([[0.0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]])
        positions = np.vstack([fcc, fcc + [0.5 * a, 0, 0]])
        return positions, np.repeat([1.0, -1.0], 4), a * np.eye(3), 0.5 * a, 4
    if name == "cesium_chloride":
        return (np.array([[0.0, 0, 0], [0.5 * a, 0.5 * a, 0.5 * a]]), np.array([1.0, -1.0]), a * np.eye(3),
                0.5 * math.sqrt(3) * a, 1)
    if name == "zincblende":
        return (np.array([[0.0, 0, 0], [0.25 * a, 0.25 * a, 0.25 * a]]), np.array([2.0, -2.0]), fcc_primitive,
                0.25 * math.sqrt(3) * a, 4)  # charges ±2: four "unit pairs"
    raise ValueError(name)


def random_box(rng, n_atoms, cell, *, neutral=True, min_distance=0.8):
    """Random positions (no two closer than ``min_distance`` Å, minimum image) and charges."""
    cell = np.asarray(cell, dtype=np.float64)
    inverse = np.linalg.inv(cell)
    positions = []
    while len(positions) < n_atoms:
        trial = rng.uniform(0, 1, 3) @ cell
        if positions:
            delta = (np.array(positions) - trial) @ inverse
            delta -= np.round(delta)
            if np.min(np.linalg.norm(delta @ cell, axis=1)) < min_distance:
                continue
        positions.append(trial)
    charges = rng.normal(size=n_atoms)
    if neutral:
        charges -= charges.mean()
    return np.array(positions), charges


TRICLINIC = np.array([[6.2, 0.0, 0.0], [1.4, 5.8, 0.0], [-0.9, 1.1, 6.6]])


def smooth_sphere_sum(positions, charges, cell, widths=None, radius=45.0, width=11.0):
    """Direct lattice sum over whole cells with a smooth spherical window (eV), k_e included.

    ``½ Σ_T w(|T|) Σ_ij' q_i q_j v_ij(|r_j + T - r_i|)`` with ``w = erfc((|T| - R)/width)/2``,
    a weighted average of sums over spheres of cells; for a large sphere it converges to the
    tin-foil Ewald energy plus the shape term ``2π |Σ q_i r_i|² / (3V)`` (de Leeuw, Perram &
    Smith 1980). The window removes the jagged-surface noise of a sharp sphere.
    Gaussians (``widths``) interact through ``erf(r/γ_ij)/r`` and add their self-energies.
    """
    limit = radius + 4.0 * width
    n_max = int(limit / min(np.linalg.norm(cell, axis=1))) + 2
    grid = np.arange(-n_max, n_max + 1)
    shifts = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3) @ cell
    lengths = np.linalg.norm(shifts, axis=1)
    keep = lengths <= limit
    shifts, weights = shifts[keep], 0.5 * erfc((lengths[keep] - radius) / width)
    pair_charges = charges[:, None] * charges[None, :]
    gamma = None if widths is None else np.sqrt(2 * (widths[:, None] ** 2 + widths[None, :] ** 2))
    energy = 0.0
    for block in range(0, len(shifts), 4096):
        vectors = (positions[None, :, None, :] - positions[:, None, None, :]
                   + shifts[None, None, block:block + 4096, :])
        r = np.linalg.norm(vectors, axis=-1)
        self_term = r < 1e-12
        r = np.where(self_term, 1.0, r)
        kernel = 1.0 / r if gamma is None else erf(r / gamma[:, :, None]) / r
        kernel = np.where(self_term, 0.0, kernel)
        energy += 0.5 * np.einsum("ij,ijt,t->", pair_charges, kernel, weights[block:block + 4096])
    if widths is not None:
        energy += np.sum(charges**2 / (2 * widths * math.sqrt(math.pi)))
    return COULOMB_CONSTANT * energy


def shape_term(positions, charges, cell):
    """Surface term of a spherical sum in vacuum, ``2π |M|² / (3V)`` (eV)."""
    dipole = charges @ positions
    return COULOMB_CONSTANT * 2 * math.pi * (dipole @ dipole) / (3 * abs(np.linalg.det(cell)))


def central_difference(function, x, step):
    """d function / dx for every element of the array ``x`` (function returns a float)."""
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        gradient[index] = (function(plus) - function(minus)) / (2 * step)
    return gradient


def derivative_errors(make_engine, positions, charges, widths, cell, step=1e-5):
    """Max |analytic - central difference| / max |analytic| of forces, site potentials and stress.

    ``make_engine(cell)`` builds an Ewald or PME object with *fixed* parameters, so the
    differences see one smooth energy function; the strain moves positions with the cell.
    """
    result = make_engine(cell).compute(positions, charges, widths=widths, compute_potential=True)

    def energy(x, box=cell, q=charges):
        return make_engine(box).compute(x, q, widths=widths, total_charge=float(q.sum()),
                                        compute_forces=False, compute_stress=False).energy

    forces = -central_difference(energy, positions, step)
    potential = central_difference(lambda q: energy(positions, q=q), charges, step)
    strain_derivative = central_difference(
        lambda eps: energy(positions @ (np.eye(3) + eps), cell @ (np.eye(3) + eps)), np.zeros((3, 3)), step)
    stress = strain_derivative / abs(np.linalg.det(cell))

    def relative(reference, analytic):
        return float(np.abs(reference - analytic).max() / np.abs(analytic).max())

    return {"forces": relative(forces, result.forces), "potential": relative(potential, result.potential),
            "stress": relative(stress, result.stress)}


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q
