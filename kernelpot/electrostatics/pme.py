r"""Smooth particle-mesh Ewald (SPME) for point and Gaussian charges, O(N log N).

Essmann, Perera, Berkowitz, Darden, Lee & Pedersen, J. Chem. Phys. 103, 8577
(1995), doi:10.1063/1.470117. The real-space, self and background terms are
those of :mod:`kernelpot.electrostatics.ewald`; only the reciprocal sum
``(2π/V) Σ_{k≠0} exp(-k²/(4α²))/k² |S(k)|²`` is approximated: the charges are
spread onto a mesh of ``K_0 × K_1 × K_2`` points along the lattice vectors with
cardinal B-splines of order p, ``S(k) ≈ b(m) F[Q](m)`` (eq. 4.4-4.7), and the
sum runs over the whole mesh through real FFTs (``scipy.fft``).

Gaussian charges: one mesh per distinct width σ_g; the reciprocal sum uses the
combined factor ``exp(-k² σ_g²/2)`` of each mesh, exactly as in Ewald.

Energy, forces (analytic B-spline derivatives, eq. 4.9), virial (eq. 2.3's strain
derivative; positions scale with the cell so the mesh coordinates do not change)
and potentials are the exact derivatives of the SPME energy, so they agree with
finite differences of that energy to round-off; the net force is zero only to
the PME accuracy (the spline interpolation breaks translation invariance at the
tolerance level).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from ._periodic import PeriodicSum, Reciprocal
from ._pme_kernels import gather, mesh_sums, spline_moduli, spread
from ._setup import check_tolerance, half_mesh_wavevectors
from .parameters import PMEParameters, pme_parameters

__all__ = ["PME"]


class PME(PeriodicSum):
    """Smooth particle-mesh Ewald in one periodic cell with fixed parameters.

    Build it once per cell (:meth:`from_tolerance`) and call :meth:`compute` for
    every configuration in that cell; the influence function and the mesh's wave
    vectors are computed once.

    Parameters
    ----------
    cell : array_like of shape (3, 3)
        Lattice vectors as rows, Å.
    parameters : PMEParameters
        α, real-space cutoff, mesh and B-spline order (even, 4 to 12).
    """

    method = "pme"

    def __init__(self, cell, parameters: PMEParameters):
        super().__init__(cell, parameters)
        order = parameters.order
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order % 2 or not 4 <= order <= 12:
            raise ValueError(f"`order` (B-spline order) must be an even integer from 4 to 12; got {order!r}")
        mesh = np.asarray(parameters.mesh)
        if mesh.shape != (3,) or mesh.dtype.kind not in "iu" or np.any(mesh < order):
            raise ValueError(f"`mesh` must be three integers ≥ order = {order}; got {parameters.mesh!r}")
        self._mesh = mesh.astype(np.int64)
        self._build_influence()
        self._width_factors = {}

    @classmethod
    def from_tolerance(cls, cell, n_atoms, *, tolerance=1e-6, charges=None, widths=None) -> PME:
        """PME with the cheapest parameters meeting ``tolerance`` (see :meth:`Ewald.from_tolerance`)."""
        tolerance = check_tolerance(tolerance)
        moments = {} if charges is None else {"sum_squared_charges": float(np.sum(np.square(charges))),
                                              "sum_fourth_charges": float(np.sum(np.power(charges, 4)))}
        n_groups = 1
        if widths is not None:
            widths = np.atleast_1d(np.asarray(widths, dtype=np.float64))
            n_groups = len(np.unique(widths))
        return cls(cell, pme_parameters(cell, int(n_atoms), tolerance, widths=widths, n_groups=n_groups,
                                        **moments))

    def _build_influence(self):
        """The influence ``(2π/V) B(m) exp(-k²/4α²)/k²`` on the real-FFT half mesh.

        The multiplicity (each rfft coefficient standing also for its omitted conjugate)
        is applied in :func:`._pme_kernels.mesh_sums`: energies and virials use it,
        ``dE/dQ`` through irfftn does not.
        """
        k0, k1, k2 = (int(k) for k in self._mesh)
        moduli = [spline_moduli(k, self.parameters.order) for k in (k0, k1, k2)]
        _, self._k2, _ = half_mesh_wavevectors(self.recip, self._mesh)
        influence = (2.0 * math.pi / self.volume) * np.exp(-self._k2 / (4.0 * self.parameters.alpha**2)) / self._k2
        influence *= moduli[0][:, None, None] * moduli[1][None, :, None] * moduli[2][None, None, : k2 // 2 + 1]
        influence[0, 0, 0] = 0.0
        self._influence = influence

    def _factors(self, widths):
        """``exp(-k² σ_g²/2)`` on the half mesh, (n_groups, K0, K1, K2//2+1), cached per widths."""
        key = widths.tobytes()
        if key not in self._width_factors:
            if len(self._width_factors) > 8:
                self._width_factors.clear()
            self._width_factors[key] = np.exp(-0.5 * widths[:, None, None, None] ** 2 * self._k2[None])
        return self._width_factors[key]

    def _reciprocal(self, positions, charges, groups, threads, want_forces, want_virial, want_potential):
        order = self.parameters.order
        n = len(positions)
        chunks = np.zeros((max(1, min(threads, n)), groups.n_groups, *(int(k) for k in self._mesh)))
        spread(positions, charges, groups.groups, self.inverse, self._mesh, order, chunks)
        meshes = chunks[0] if len(chunks) == 1 else chunks.sum(axis=0)
        transformed = scipy.fft.rfftn(meshes, axes=(1, 2, 3), workers=threads, overwrite_x=True)
        point = groups.point
        factors = None if point else self._factors(groups.widths)
        structure = transformed[0] if point else np.sum(factors * transformed, axis=0)
        cross = (np.empty((0, 0, 0), dtype=np.complex128) if point or not want_virial
                 else np.sum((groups.widths**2)[:, None, None, None] * factors * transformed, axis=0))
        field = np.empty_like(structure)
        energy, virial = mesh_sums(structure, cross, self._influence, self.recip, int(self._mesh[2]),
                                   self.parameters.alpha, want_virial, field)
        result = Reciprocal(energy, virial=virial if want_virial else None)
        if want_forces or want_potential:
            spectra = field[None] if point else factors * field[None]
            potential_meshes = scipy.fft.irfftn(spectra, s=tuple(int(k) for k in self._mesh),
                                                axes=(1, 2, 3), workers=threads, overwrite_x=True)
            potential_meshes *= 2.0 * float(np.prod(self._mesh))
            forces = np.zeros((n if want_forces else 0, 3))
            potential = np.zeros(n if want_potential else 0)
            gather(positions, groups.groups, self.inverse, self._mesh, order,
                   np.ascontiguousarray(potential_meshes), want_forces, want_potential, forces, potential)
            result.forces = charges[:, None] * forces if want_forces else None
            result.potential = potential if want_potential else None
        return result

