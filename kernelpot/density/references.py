"""Reference electron densities with PySCF, fitted on an auxiliary basis (optional: ``kernelpot[density]``).

:func:`compute_density_references` runs closed-shell Kohn–Sham calculations
and fits each density on an auxiliary Gaussian basis, giving a
:class:`~kernelpot.density.dataset.DensitySet` in kernelpot's function order
and real-harmonic convention.

Reference density fitting (robust Coulomb-metric fit, Whitten 1973;
Vahtras, Almlöf, Feyereisen, Chem. Phys. Lett. 213, 514 (1993),
doi:10.1016/0009-2614(93)89151-7)::

    c = J⁻¹ v,   J_PQ = (P|r₁₂⁻¹|Q),   v_P = (P|r₁₂⁻¹|ρ_SCF),

as in SALTED (Grisafi et al., J. Chem. Theory Comput. 19, 4451 (2023),
doi:10.1021/acs.jctc.2c00850) and the SA-GPR density model (Grisafi et al.,
ACS Cent. Sci. 5, 57 (2019), doi:10.1021/acscentsci.8b00551).
"""

from __future__ import annotations

import time

import numpy as np

from .basis import BOHR, AuxiliaryBasis
from .dataset import DensitySet, closed_shell_electrons

__all__ = ["compute_density_references"]


def compute_density_references(structures, *, xc: str = "pbe", basis: str = "cc-pvdz",
                               auxbasis: str = "cc-pvdz-jkfit", conv_tol: float = 1e-9,
                               grid_level: int = 2, constrain: bool = True, df_error: bool = True,
                               verbose: bool = False) -> DensitySet:
    """Closed-shell Kohn–Sham densities with PySCF, fitted on an auxiliary basis.

    Parameters
    ----------
    structures : list of ase.Atoms
        Neutral closed-shell molecules, positions in Å (cells and ``pbc`` are ignored).
    xc : str, default="pbe"
        PySCF exchange–correlation functional.
    basis : str, default="cc-pvdz"
        Orbital basis.
    auxbasis : str, default="cc-pvdz-jkfit"
        Auxiliary basis (also used for the density-fitted Coulomb term of the SCF).
    conv_tol : float, default=1e-9
        SCF energy convergence, Hartree.
    grid_level : int, default=2
        PySCF's exchange–correlation integration grid level (0–9).
    constrain : bool, default=True
        Fit under the constraints that the fitted density keeps the SCF
        density's electron count and dipole exactly (Lagrange multipliers on
        the Coulomb-metric fit); otherwise the plain fit.
    df_error : bool, default=True
        Also record, per structure, the L1 error of the fitted density against
        the SCF density on PySCF's integration grid (``metadata["df_l1_percent"]``).
    verbose : bool, default=False
        Print one line per structure.

    Returns
    -------
    DensitySet

    Raises
    ------
    ImportError
        PySCF is not installed (``pip install kernelpot[density]``).
    ValueError
        A structure with an odd electron count; an SCF that does not converge;
        an auxiliary basis with generally contracted shells.
    """
    try:
        import pyscf
        from pyscf import df, dft, gto
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("compute_density_references needs PySCF: pip install kernelpot[density]") from error
    import scipy.linalg

    counts = [closed_shell_electrons(atoms, i) for i, atoms in enumerate(structures)]
    aux_basis, transforms = None, {}
    coefficients, overlaps, dipoles, df_errors, timings = [], [], [], [], []
    for i, atoms in enumerate(structures):
        start = time.perf_counter()
        mol = gto.M(atom=[(int(z), tuple(p)) for z, p in zip(atoms.numbers, atoms.positions)],
                    basis=basis, unit="Angstrom", charge=0, spin=0, verbose=0)
        mf = dft.RKS(mol).density_fit(auxbasis=auxbasis)
        mf.xc = xc
        mf.conv_tol = conv_tol
        mf.grids.level = grid_level
        mf.kernel()
        if not mf.converged:
            raise ValueError(f"the SCF of structure {i} did not converge (conv_tol={conv_tol})")
        dm = mf.make_rdm1()
        auxmol = df.addons.make_auxmol(mol, auxbasis)
        if aux_basis is None:
            aux_basis = _basis_from_pyscf(auxmol, auxbasis)
        for z in set(atoms.numbers.tolist()) - set(transforms):
            transforms[z] = _shell_transforms(auxmol, aux_basis, int(np.flatnonzero(atoms.numbers == z)[0]))
        # φ_pyscf = φ_kernelpot M per shell, so c_kernelpot = M c_pyscf and S_kp = M⁻ᵀ S M⁻¹.
        m = scipy.linalg.block_diag(*[transforms[z] for z in atoms.numbers])
        m_inv = np.linalg.inv(m)
        v = m_inv.T @ np.einsum("ijP,ij->P", df.incore.aux_e2(mol, auxmol, "int3c2e"), dm)
        metric = m_inv.T @ auxmol.intor("int2c2e") @ m_inv
        dipole_au = np.asarray(mf.dip_moment(unit="AU", verbose=0))
        constraints = None
        if constrain:
            positions = atoms.positions / BOHR
            constraints = (np.vstack([aux_basis.integrals(atoms.numbers),
                                      aux_basis.dipole_integrals(positions, atoms.numbers).T]),
                           np.concatenate([[counts[i]], atoms.numbers @ positions - dipole_au]))
        c = _coulomb_fit(metric, v, constraints)
        coefficients.append(c)
        overlaps.append(m_inv.T @ auxmol.intor("int1e_ovlp") @ m_inv)
        dipoles.append(dipole_au * BOHR)
        c_pyscf = m_inv @ c
        if df_error:
            df_errors.append(_fit_l1_percent(mol, auxmol, mf, dm, c_pyscf, counts[i]))
        timings.append(time.perf_counter() - start)
        if verbose:
            print(f"structure {i}: {atoms.get_chemical_formula()} {timings[-1]:.1f} s"
                  + (f", DF L1 {df_errors[-1]:.3f}%" if df_error else ""), flush=True)
    metadata = {"xc": xc, "basis": basis, "auxbasis": auxbasis, "code": f"PySCF {pyscf.__version__}",
                "fit": "Coulomb metric" + (", electron count and dipole constrained" if constrain else ""),
                "grid_level": grid_level, "seconds": timings}
    if df_error:
        metadata["df_l1_percent"] = df_errors
    return DensitySet(list(structures), coefficients, overlaps, counts, np.array(dipoles), aux_basis, metadata)


def _coulomb_fit(metric, v, constraints=None):
    """Minimise ``(ρ_fit − ρ | ρ_fit − ρ)`` over c, optionally with ``A c = t`` (Lagrange multipliers)."""
    import scipy.linalg

    factor = scipy.linalg.cho_factor(metric)
    c = scipy.linalg.cho_solve(factor, v)
    if constraints is None:
        return c
    a, t = constraints
    j_inv_at = scipy.linalg.cho_solve(factor, a.T)
    multipliers = np.linalg.solve(a @ j_inv_at, a @ c - t)
    return c - j_inv_at @ multipliers


def _basis_from_pyscf(auxmol, name: str) -> AuxiliaryBasis:
    """The auxiliary shells of the first atom of each species, in PySCF's order."""
    shells = {}
    for atom in range(auxmol.natm):
        z = int(auxmol.atom_charge(atom))
        if z in shells:
            continue
        entries = []
        for shell in auxmol.atom_shell_ids(atom):
            if auxmol.bas_nctr(shell) != 1:
                raise ValueError(f"auxbasis {name!r} has generally contracted shells; not supported")
            entries.append((auxmol.bas_angular(shell), auxmol.bas_exp(shell),
                            auxmol.bas_ctr_coeff(shell)[:, 0]))
        shells[z] = entries
    return AuxiliaryBasis(name, shells)


def _shell_transforms(auxmol, basis: AuxiliaryBasis, atom: int) -> np.ndarray:
    """Block-diagonal M with PySCF's functions of ``atom`` = kernelpot's functions @ M."""
    rng = np.random.default_rng(0)
    centre = auxmol.atom_coord(atom)
    points = centre + rng.normal(scale=0.8, size=(400, 3))
    values = auxmol.eval_gto("GTOval_sph", points)
    first, last = auxmol.aoslice_by_atom()[atom, 2:4]
    z = int(auxmol.atom_charge(atom))
    blocks, start = [], 0
    for l, _, _ in basis.shells[z]:
        width = 2 * l + 1
        single = np.zeros(basis.functions_per_species(z))
        ours = np.empty((len(points), width))
        for k in range(width):
            single[:] = 0.0
            single[start + k] = 1.0
            ours[:, k] = basis.density(single, centre[None, :], [z], points)
        theirs = values[:, first + start:first + start + width]
        block, *_ = np.linalg.lstsq(ours, theirs, rcond=None)
        if not np.allclose(ours @ block, theirs, atol=1e-8 * np.abs(theirs).max()):
            raise ValueError(f"PySCF's l={l} functions are not a rotation of kernelpot's")
        blocks.append(block)
        start += width
    if start != last - first:
        raise ValueError("PySCF's auxiliary function count differs from the basis read from it")
    import scipy.linalg

    return scipy.linalg.block_diag(*blocks)


def _fit_l1_percent(mol, auxmol, mf, dm, c_pyscf, n_electrons, chunk=20000) -> float:
    """100 ∫|ρ_fit − ρ_SCF| / N on the SCF's own integration grid."""
    from pyscf.dft import numint

    coords, weights = mf.grids.coords, mf.grids.weights
    total = 0.0
    for a in range(0, len(weights), chunk):
        ao = numint.eval_ao(mol, coords[a:a + chunk])
        rho = numint.eval_rho(mol, ao, dm)
        fit = auxmol.eval_gto("GTOval_sph", coords[a:a + chunk]) @ c_pyscf
        total += np.sum(weights[a:a + chunk] * np.abs(fit - rho))
    return 100.0 * total / n_electrons
