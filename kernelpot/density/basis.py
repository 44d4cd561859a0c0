"""Atom-centred auxiliary Gaussian basis for electron densities (no quantum-chemistry code needed).

Convention
----------
Every basis function is a real solid-harmonic Gaussian centred on atom ``A``::

    φ_{A, s, m}(r) = S_{l m}(r - R_A) Σ_k d_{s k} exp(-α_{s k} |r - R_A|²)

with ``S_lm = |r|^l Y_lm(r̂)`` kernelpot's real solid harmonics
(:mod:`kernelpot.symmetry.harmonics`: orthonormal ``Y_lm``, no
Condon–Shortley phase, ``m = -l..l``, so the l = 1 block is (y, z, x)), and
the contraction coefficients ``d`` scaled so that ``∫ φ² dr = 1``. Lengths
are in Bohr inside this module (exponents in Bohr⁻², as basis-set libraries
give them); functions have units Bohr^(-3/2) and density coefficients
e·Bohr^(-3/2), so ``ρ = Σ_P c_P φ_P`` is in e/Bohr³.

Function order in a structure: atoms in input order; on each atom the shells
of its species in the order stored (shells sorted by l, as in PySCF), each
shell's ``2l + 1`` components ``m = -l..l``. The *radial index* ``n`` of a
shell counts the earlier shells of the same species and the same ``l``; the
density model learns one channel per (species, n, l).
"""

from __future__ import annotations

import math

import numpy as np

from ..symmetry.harmonics import real_solid_harmonics

__all__ = ["AuxiliaryBasis", "BOHR"]

#: One Bohr in Å (CODATA 2018, the value ASE uses).
BOHR = 0.52917721067

# Functions are evaluated only where the most diffuse primitive of the shell
# exceeds exp(-_EXTENT) of its peak: beyond that they are below double precision
# relative to the density near the nuclei.
_EXTENT = 36.0


class AuxiliaryBasis:
    """A per-species set of contracted real solid-harmonic Gaussian shells.

    Parameters
    ----------
    name : str
        Label of the basis (e.g. ``"cc-pvdz-jkfit"``), compared on mismatch checks.
    shells : dict of int to list of (int, array_like, array_like)
        For each atomic number, its shells ``(l, exponents, coefficients)``
        in order: exponents α in Bohr⁻² (k,), raw contraction coefficients
        (k,) (rescaled here so that every function is normalised).

    Examples
    --------
    >>> basis = AuxiliaryBasis("toy", {1: [(0, [1.0], [1.0]), (1, [0.5], [1.0])]})
    >>> basis.n_functions([1, 1])
    8
    """

    def __init__(self, name, shells):
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a str; got {name!r}")
        self.name = name
        self.shells = {}
        for z, shell_list in sorted(shells.items()):
            entries = []
            for l, exponents, coefficients in shell_list:
                exponents = np.asarray(exponents, dtype=np.float64).ravel()
                coefficients = np.asarray(coefficients, dtype=np.float64).ravel()
                if int(l) < 0 or len(exponents) == 0 or exponents.shape != coefficients.shape \
                        or np.any(exponents <= 0):
                    raise ValueError(
                        f"`shells` of Z={z} must be (l >= 0, exponents > 0, coefficients of the "
                        f"same length); got l={l}, exponents={exponents}, coefficients={coefficients}"
                    )
                entries.append((int(l), exponents, _normalised(int(l), exponents, coefficients)))
            self.shells[int(z)] = entries

    # ----------------------------------------------------------------- layout
    @property
    def species(self) -> list[int]:
        """Atomic numbers the basis covers, increasing."""
        return sorted(self.shells)

    @property
    def l_max(self) -> int:
        """Largest angular momentum of any shell."""
        return max(l for entries in self.shells.values() for l, _, _ in entries)

    def radial_counts(self, z: int) -> dict[int, int]:
        """Number of shells (radial functions ``n``) of each ``l`` for species ``z``."""
        counts: dict[int, int] = {}
        for l, _, _ in self.shells[int(z)]:
            counts[l] = counts.get(l, 0) + 1
        return counts

    def functions_per_species(self, z: int) -> int:
        """Number of basis functions on one atom of species ``z``."""
        return sum(2 * l + 1 for l, _, _ in self.shells[int(z)])

    def check_species(self, numbers, where: str = "the structure") -> None:
        """Raise ``ValueError`` if an atomic number of ``numbers`` has no shells."""
        missing = sorted(set(np.asarray(numbers, dtype=int).tolist()) - set(self.shells))
        if missing:
            raise ValueError(
                f"species {missing} in {where} are not in the auxiliary basis "
                f"{self.name!r} (species={self.species})"
            )

    def n_functions(self, numbers) -> int:
        """Number of basis functions of a structure with atomic numbers ``numbers``."""
        self.check_species(numbers)
        return int(sum(self.functions_per_species(z) for z in np.asarray(numbers)))

    def layout(self, numbers) -> dict[str, np.ndarray]:
        """Labels of every function of a structure (see the module docstring for the order).

        Returns
        -------
        dict of str to ndarray of shape (n_functions,), int64
            ``atom`` (index in the structure), ``species``, ``l``, ``n`` (radial
            index), ``m`` (-l..l) and ``shell`` (index in the species' list).
        """
        self.check_species(numbers)
        rows = []
        for atom, z in enumerate(np.asarray(numbers, dtype=int)):
            seen: dict[int, int] = {}
            for shell, (l, _, _) in enumerate(self.shells[z]):
                n = seen.get(l, 0)
                seen[l] = n + 1
                rows.extend((atom, z, l, n, m, shell) for m in range(-l, l + 1))
        table = np.array(rows, dtype=np.int64).reshape(-1, 6)
        return {key: table[:, k].copy() for k, key in enumerate(("atom", "species", "l", "n", "m", "shell"))}

    # ------------------------------------------------------------- integrals
    def integrals(self, numbers) -> np.ndarray:
        """``∫ φ_P dr`` of every function (only l = 0 ones are non-zero).

        Returns
        -------
        ndarray of shape (n_functions,)
            In Bohr^(3/2); the electron count of ``ρ = Σ c_P φ_P`` is ``c @ integrals``.
        """
        out = []
        for z in np.asarray(numbers, dtype=int):
            for l, alpha, d in self.shells[z]:
                if l == 0:
                    # S_00 = 1/sqrt(4π); ∫ r² e^{-αr²} dr = sqrt(π) / (4 α^{3/2})
                    out.append([math.sqrt(4 * math.pi) * np.sum(d * math.sqrt(math.pi) / (4 * alpha ** 1.5))])
                else:
                    out.append(np.zeros(2 * l + 1))
        return np.concatenate(out) if out else np.zeros(0)

    def dipole_integrals(self, positions, numbers) -> np.ndarray:
        """``∫ r φ_P dr`` of every function, in Bohr^(5/2) (positions in Bohr).

        Parameters
        ----------
        positions : ndarray of shape (n_atoms, 3)
            Atom positions in Bohr.
        numbers : ndarray of shape (n_atoms,)

        Returns
        -------
        ndarray of shape (n_functions, 3)
        """
        positions = np.asarray(positions, dtype=np.float64)
        charge = self.integrals(numbers)
        layout = self.layout(numbers)
        out = charge[:, None] * positions[layout["atom"]]
        p_rows = np.flatnonzero(layout["l"] == 1)
        for row in p_rows:
            z, shell, m = layout["species"][row], layout["shell"][row], layout["m"][row]
            _, alpha, d = self.shells[z][shell]
            # (x, y, z) = sqrt(4π/3) (S_11, S_1-1, S_10); ∫ r⁴ e^{-αr²} dr = 3 sqrt(π) / (8 α^{5/2})
            radial = np.sum(d * 3 * math.sqrt(math.pi) / (8 * alpha ** 2.5))
            axis = {1: 0, -1: 1, 0: 2}[int(m)]
            out[row, axis] += math.sqrt(4 * math.pi / 3) * radial
        return out

    # ------------------------------------------------------------ evaluation
    def density(self, coefficients, positions, numbers, points, *, chunk: int = 65536) -> np.ndarray:
        """``ρ(r) = Σ_P c_P φ_P(r)`` at ``points``.

        Parameters
        ----------
        coefficients : ndarray of shape (n_functions,)
            Expansion coefficients in this basis, e·Bohr^(-3/2).
        positions : ndarray of shape (n_atoms, 3)
            Atom positions in Bohr.
        numbers : ndarray of shape (n_atoms,)
        points : ndarray of shape (n_points, 3)
            Where to evaluate, in Bohr.

        Returns
        -------
        ndarray of shape (n_points,)
            Density in e/Bohr³.
        """
        coefficients = np.asarray(coefficients, dtype=np.float64)
        numbers = np.asarray(numbers, dtype=int)
        if coefficients.shape != (self.n_functions(numbers),):
            raise ValueError(
                f"`coefficients` must have shape ({self.n_functions(numbers)},) for this structure "
                f"in basis {self.name!r}; got {coefficients.shape}"
            )
        points = np.asarray(points, dtype=np.float64)
        out = np.zeros(len(points))
        for start in range(0, len(points), chunk):
            block = points[start:start + chunk]
            out[start:start + chunk] = self._density_block(coefficients, positions, numbers, block)
        return out

    def _density_block(self, coefficients, positions, numbers, points):
        out = np.zeros(len(points))
        offset = 0
        for atom, z in enumerate(numbers):
            shells = self.shells[z]
            n_atom = self.functions_per_species(z)
            c_atom = coefficients[offset:offset + n_atom]
            offset += n_atom
            alpha_min = min(alpha.min() for _, alpha, _ in shells)
            vectors = points - positions[atom]
            r2 = np.einsum("ij,ij->i", vectors, vectors)
            near = np.flatnonzero(r2 < _EXTENT / alpha_min)
            if len(near) == 0:
                continue
            vectors, r2 = np.ascontiguousarray(vectors[near]), r2[near]
            solid = real_solid_harmonics(vectors, self.l_max)
            values = np.zeros(len(near))
            start = 0
            for l, alpha, d in shells:
                radial = np.exp(-np.outer(r2, alpha)) @ d
                values += radial * (solid[:, l * l:(l + 1) ** 2] @ c_atom[start:start + 2 * l + 1])
                start += 2 * l + 1
            out[near] += values
        return out

    # ------------------------------------------------------------ comparison
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays (for ``.npz`` files); :meth:`from_arrays` inverts it."""
        z, l, counts, alpha, d = [], [], [], [], []
        for species, entries in self.shells.items():
            for ll, a, c in entries:
                z.append(species)
                l.append(ll)
                counts.append(len(a))
                alpha.append(a)
                d.append(c)
        return {"basis_name": np.array(self.name), "basis_shell_z": np.array(z, dtype=np.int64),
                "basis_shell_l": np.array(l, dtype=np.int64),
                "basis_shell_n_primitives": np.array(counts, dtype=np.int64),
                "basis_exponents": np.concatenate(alpha), "basis_coefficients": np.concatenate(d)}

    @classmethod
    def from_arrays(cls, arrays) -> AuxiliaryBasis:
        """Basis from the arrays of :meth:`to_arrays` (coefficients already normalised)."""
        shells: dict[int, list] = {}
        bounds = np.concatenate([[0], np.cumsum(arrays["basis_shell_n_primitives"])])
        for k, (z, l) in enumerate(zip(arrays["basis_shell_z"], arrays["basis_shell_l"])):
            part = slice(bounds[k], bounds[k + 1])
            shells.setdefault(int(z), []).append(
                (int(l), arrays["basis_exponents"][part], arrays["basis_coefficients"][part]))
        return cls(str(arrays["basis_name"]), shells)

    def __eq__(self, other) -> bool:
        if not isinstance(other, AuxiliaryBasis) or self.name != other.name or self.species != other.species:
            return False
        for z in self.species:
            if len(self.shells[z]) != len(other.shells[z]):
                return False
            for (l1, a1, d1), (l2, a2, d2) in zip(self.shells[z], other.shells[z]):
                if l1 != l2 or a1.shape != a2.shape or not (np.allclose(a1, a2, rtol=1e-10)
                                                            and np.allclose(d1, d2, rtol=1e-8)):
                    return False
        return True

    def __hash__(self):
        return hash((self.name, tuple(self.species)))

    def __repr__(self) -> str:
        sizes = {z: self.functions_per_species(z) for z in self.species}
        return f"AuxiliaryBasis({self.name!r}, functions per species={sizes})"


def _normalised(l: int, exponents: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Contraction coefficients scaled so that ``∫ |S_lm R|² dr = 1``."""
    # ∫ r^{2l+2} e^{-(a+b) r²} dr = Γ(l + 3/2) / (2 (a+b)^{l+3/2}); the Y_lm are orthonormal.
    total = exponents[:, None] + exponents[None, :]
    norm2 = coefficients @ (math.gamma(l + 1.5) / (2 * total ** (l + 1.5))) @ coefficients
    if not norm2 > 0:
        raise ValueError(f"shell with l={l} has zero norm (coefficients={coefficients})")
    return coefficients / math.sqrt(norm2)
