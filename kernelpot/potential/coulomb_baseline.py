r"""A fixed-charge Coulomb baseline under a GAP: ``E = E_Coulomb + E_GAP``.

A short-ranged GAP cannot see beyond its cutoff, but ions in water feel each
other at all distances. The established remedy (Deringer et al., Chem. Rev.
121, 10073 (2021), §5; QUIP issue #620; the C-NNP of O'Neill et al.,
arXiv:2311.01527) is to fit the GAP to the *residual* after a fixed-charge
Coulomb model and add the Coulomb model back when predicting. The baseline
here is

.. math::

    E_C = \tfrac12 \sum_{i \ne j}{}' \, k_e\, q_i q_j\, \phi(r_{ij})

over all pairs (no intramolecular exclusions: the GAP absorbs whatever the
charges get wrong inside its cutoff) and, for cells periodic in all three
directions, over all periodic images (Ewald or smooth PME,
:func:`kernelpot.electrostatics.coulomb`). The charges ``q_i`` are fixed:
one per species (a table), or each atom's ``initial_charges`` (for charges
that depend on the molecule, e.g. a net ±1 spread over an ion's atoms).

The pair function is :math:`\phi(r) = 1/r` for point charges (what LAMMPS
``coul/long`` and CP2K FIST compute; the NaCl–water C-NNP uses it) or
:math:`\phi(r) = \operatorname{erf}(r/\gamma_{ij})/r` for Gaussian charges
of widths :math:`\sigma_i`, :math:`\gamma_{ij} = \sqrt{2(\sigma_i^2 +
\sigma_j^2)}`, which stays finite as :math:`r \to 0` (and adds a constant
self-energy per atom, absorbed by the GAP's reference energies). Point
charges of opposite sign attract without bound at short range: a GAP over
them must learn the short-range repulsion, and an MD that leaves the
training data's distances can collapse. Gaussian widths of about the
covalent radius (0.3–1 Å) remove that hazard at the price of departing from
the point-charge model at contact. Without exclusions the point charges also
put each water's own O–H pull (≈ 5 eV/Å at 1 Å) into what the GAP must
cancel: on held-out revPBE0-D3 NaCl–water frames the forces left for the GAP
(reference − baseline) have RMS 3.0 (O) and 2.2 eV/Å (H) over TIP3P's point
charges, 1.0 and 0.72 over the same charges with widths 0.7 Å, 1.05 and 0.74
with no baseline at all. (Fitted GAPs over either were equally accurate there,
110 meV/Å, and both let MD compress hydrogen bonds: issue 16.) A
:class:`~kernelpot.potential.core_repulsion.LennardJones` part completes the
charges into a classical force field.

The baseline carries no uncertainty: predicted variances are the GAP's.
"""

from __future__ import annotations

import numbers

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from ..utils.description import check_description

__all__ = ["CoulombBaseline", "parse_charge_table"]

#: Net charges (e) closer than this to the declared total charge count as equal.
CHARGE_TOLERANCE = 1e-6
_PER_ATOM = "initial_charges"


def parse_charge_table(text: str, name: str = "charges") -> dict[str, float]:
    """Parse ``"Na:+1 Cl:-1 O:-0.834 H:0.417"`` into ``{"Na": 1.0, ...}``.

    Entries are ``symbol:value`` separated by spaces or commas; symbols are
    chemical symbols (``Na``) or atomic numbers (``11``).
    """
    table = {}
    for entry in text.replace(",", " ").split():
        symbol, sep, value = entry.partition(":")
        if not sep:
            raise ValueError(f"`{name}` entries must look like 'Na:+1'; got {entry!r} in {text!r}")
        try:
            table[symbol] = float(value)
        except ValueError:
            raise ValueError(f"`{name}` value of {symbol!r} must be a number; got {value!r}") from None
    if not table:
        raise ValueError(f"`{name}` is empty; give entries like 'Na:+1 Cl:-1'")
    return _species_table(table, name)


def _species_table(table, name):
    """``{symbol: float}`` from symbols or atomic numbers; unknown species are an error."""
    if not isinstance(table, dict) or not table:
        raise TypeError(f"`{name}` must be a non-empty {{species: value}} dict; got {table!r}")
    out = {}
    for key, value in table.items():
        if isinstance(key, numbers.Integral) or (isinstance(key, str) and key.isdigit()):
            z = int(key)
            if not 0 < z < len(chemical_symbols):
                raise ValueError(f"`{name}` has an unknown atomic number {key!r}")
            symbol = chemical_symbols[z]
        elif isinstance(key, str) and key in atomic_numbers and key != "X":
            symbol = key
        else:
            raise ValueError(f"`{name}` has an unknown species {key!r} (use chemical symbols like 'Na' or "
                             "atomic numbers)")
        if symbol in out:
            raise ValueError(f"`{name}` gives species {symbol!r} twice")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
            raise ValueError(f"`{name}` value of {symbol!r} must be a finite number; got {value!r}")
        out[symbol] = float(value)
    return out


class CoulombBaseline:
    """Fixed-charge Coulomb energy, forces and virial of structures, added under a GAP.

    Parameters
    ----------
    charges : dict or "initial_charges"
        ``{species: charge in e}`` (symbols or atomic numbers), e.g.
        ``{"Na": 1, "Cl": -1, "O": -0.834, "H": 0.417}``; or
        ``"initial_charges"`` to use each structure's
        ``atoms.get_initial_charges()``.
    widths : None, float or dict, default=None
        Gaussian charge widths σ in Å: one for all species or
        ``{species: σ}``. None: point charges.
    tolerance : float, default=1e-6
        Accuracy of the periodic sums (relative RMS force error, see
        :func:`kernelpot.electrostatics.coulomb`).

    Notes
    -----
    Every structure's charges must sum to its declared total charge
    ``atoms.info["charge"]`` (e) within 1e-6 e, or to zero when it declares
    none; a charged periodic cell is computed with a neutralising
    background. Structures must be periodic in all three directions or in
    none.

    Examples
    --------
    >>> from ase.build import molecule
    >>> baseline = CoulombBaseline({"O": -0.834, "H": 0.417})
    >>> energy = baseline.evaluate([molecule("H2O")])["energy"]  # eV, shape (1,)
    """

    def __init__(self, charges, *, widths=None, tolerance=1e-6):
        self.charges = charges
        self.widths = widths
        self.tolerance = tolerance

    # ------------------------------------------------------------ validation
    def _tables(self):
        """Validated (charge table or None for per-atom charges, width table / float / None)."""
        if isinstance(self.charges, str):
            if self.charges != _PER_ATOM:
                raise ValueError(f"`charges` must be a {{species: e}} dict or {_PER_ATOM!r}; got {self.charges!r}")
            charges = None
        else:
            charges = _species_table(self.charges, "charges")
        widths = self.widths
        if isinstance(widths, dict):
            widths = _species_table(widths, "widths")
            bad = {s: w for s, w in widths.items() if not w > 0}
            if bad:
                raise ValueError(f"`widths` must be > 0 Å; got {bad}")
        elif widths is not None:
            if isinstance(widths, bool) or not isinstance(widths, numbers.Real) or not widths > 0:
                raise ValueError(f"`widths` must be None, a number > 0 (Å) or a {{species: Å}} dict; got {widths!r}")
            widths = float(widths)
        tolerance = self.tolerance
        if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not 0 < tolerance < 1:
            raise ValueError(f"`tolerance` must be a number in (0, 1); got {tolerance!r}")
        return charges, widths

    def atom_charges(self, atoms, index=0):
        """Charges (e) of the atoms of one structure, checked against its declared total charge.

        Parameters
        ----------
        atoms : ase.Atoms
        index : int
            Position of the structure in its list, for error messages.

        Returns
        -------
        ndarray of shape (n_atoms,)
        """
        table, _ = self._tables()
        if table is None:
            if "initial_charges" not in atoms.arrays:
                raise ValueError(f"structure {index} has no initial charges, but the Coulomb baseline takes its "
                                 "charges from atoms.get_initial_charges()")
            charges = np.asarray(atoms.get_initial_charges(), dtype=np.float64)
        else:
            symbols = atoms.get_chemical_symbols()
            missing = sorted(set(symbols) - set(table))
            if missing:
                raise ValueError(f"species {missing} in structure {index} are not in the Coulomb baseline's "
                                 f"charge table {table}")
            charges = np.array([table[s] for s in symbols])
        self._check_total(atoms, charges, index)
        if atoms.pbc.any() and not atoms.pbc.all():
            raise ValueError(f"structure {index} is periodic in some directions only (pbc={atoms.pbc.tolist()}); "
                             "the Coulomb baseline needs a cell periodic in all three or in none")
        return charges

    @staticmethod
    def _check_total(atoms, charges, index):
        net = float(charges.sum())
        declared = atoms.info.get("charge")
        if declared is None:
            if abs(net) > CHARGE_TOLERANCE:
                raise ValueError(f"structure {index} ({atoms.get_chemical_formula()}) gets a net charge of "
                                 f"{net:+.6g} e from the Coulomb baseline's charges but declares none; set "
                                 "atoms.info['charge'] (e) if it is an ion, else fix the charge table")
            return
        try:
            declared = float(declared)
        except (TypeError, ValueError):
            raise ValueError(f"structure {index} has a non-numeric info['charge'] = {declared!r}") from None
        if abs(net - declared) > CHARGE_TOLERANCE:
            raise ValueError(f"structure {index} ({atoms.get_chemical_formula()}) declares a total charge of "
                             f"{declared:+.6g} e but the Coulomb baseline's charges sum to {net:+.6g} e")

    def check(self, atoms_list):
        """Raise a ``ValueError`` naming the first structure the baseline cannot handle."""
        for index, atoms in enumerate(atoms_list):
            self.atom_charges(atoms, index)

    # ------------------------------------------------------------ evaluation
    def evaluate(self, atoms_list, *, forces=True, virial=False, local_energy=False):
        """Coulomb energies and, on request, forces, virials and per-atom energies.

        Parameters
        ----------
        atoms_list : list of ase.Atoms
        forces, virial, local_energy : bool
            Which quantities to compute besides the energy.

        Returns
        -------
        dict
            ``"energy"``: ndarray (n_structures,) eV;
            ``"forces"``: ndarray (n_atoms_total, 3) eV/Å, input order;
            ``"virial"``: ndarray (n_structures, 3, 3) eV
            (``-stress * volume``; for open boundaries the pair virial);
            ``"local_energy"``: ndarray (n_atoms_total,) eV,
            ``q_i φ_i / 2``, summing to the energy.
        """
        from ..electrostatics import coulomb

        _, widths = self._tables()
        atoms_list = list(atoms_list)
        out = {"energy": np.zeros(len(atoms_list))}
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in atoms_list])]).astype(np.int64)
        if forces:
            out["forces"] = np.zeros((offsets[-1], 3))
        if virial:
            out["virial"] = np.zeros((len(atoms_list), 3, 3))
        if local_energy:
            out["local_energy"] = np.zeros(offsets[-1])
        for index, atoms in enumerate(atoms_list):
            charges = self.atom_charges(atoms, index)
            result = coulomb(atoms, charges, widths=widths, tolerance=self.tolerance,
                             compute_forces=forces, compute_stress=virial, compute_potential=local_energy)
            atoms_slice = slice(offsets[index], offsets[index + 1])
            out["energy"][index] = result.energy
            if forces:
                out["forces"][atoms_slice] = result.forces
            if virial:
                out["virial"][index] = result.virial
            if local_energy:
                out["local_energy"][atoms_slice] = 0.5 * charges * result.potential
        return out

    # ---------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        """JSON-serialisable description, read back by :meth:`from_dict` (stored in ``.kpot`` headers)."""
        charges, widths = self._tables()
        return {"kind": "coulomb", "version": 1, "charges": _PER_ATOM if charges is None else charges,
                "widths": widths, "tolerance": float(self.tolerance)}

    @classmethod
    def from_dict(cls, spec: dict) -> CoulombBaseline:
        """Rebuild a baseline from :meth:`to_dict` output; a foreign or newer description is an error."""
        check_description(spec, "coulomb", "Coulomb baseline")
        baseline = cls(spec["charges"], widths=spec.get("widths"), tolerance=spec.get("tolerance", 1e-6))
        baseline._tables()  # validates
        return baseline

    def __repr__(self):
        return f"CoulombBaseline({self.charges!r}, widths={self.widths!r}, tolerance={self.tolerance!r})"

    def __eq__(self, other):
        return isinstance(other, CoulombBaseline) and self.to_dict() == other.to_dict()
