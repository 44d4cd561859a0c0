"""Frozen quippy reference for kernelpot's ``SOAP(rbf="gap")`` (GAP's own soap descriptor).

Computes QUIP/GAP's ``soap`` descriptor (quippy-ase 0.10.3 wheel, ``normalise=F``
so the raw power spectrum is kept) with analytic gradients for two small
systems and writes ``reference.npz``:

* ``mo_*``: a rattled 2x2x2 bcc Mo supercell (16 atoms, periodic), one species;
* ``ethanol_*``: a rattled ethanol molecule, species H, C, O, ``central_weight=0.5``.

For each: ``*_positions``, ``*_numbers``, ``*_cell``, ``*_features`` (n_atoms,
n_features) in GAP's order (channel pairs ``(ia, jb <= ia)``, l fastest; GAP's
trailing constant column dropped), ``*_moved`` (3 or 4 atom indices) and
``*_gradients`` (n_atoms [centre], n_moved, 3, n_features): derivatives with
respect to the moved atoms, periodic images summed.

Run from this directory: ``python make_reference.py`` (needs quippy-ase).
"""

import numpy as np
from ase.build import bulk, molecule
from quippy.descriptors import Descriptor

CASES = {
    "mo": ("soap l_max=3 n_max=4 atom_sigma=0.5 cutoff=4.5 cutoff_transition_width=1.0 normalise=F", "mo"),
    "ethanol": ("soap l_max=3 n_max=3 atom_sigma=0.5 cutoff=4.0 cutoff_transition_width=1.0 normalise=F "
                "central_weight=0.5 n_species=3 species_Z={1 6 8}", "ethanol"),
}


def structure(name):
    if name == "mo":
        atoms = bulk("Mo", "bcc", a=3.16, cubic=True).repeat(2)
    else:
        atoms = molecule("CH3CH2OH")
    atoms.rattle(0.08, seed=7)
    return atoms


def main():
    arrays = {}
    for name, (args, system) in CASES.items():
        atoms = structure(system)
        result = Descriptor(args).calc(atoms, grad=True)
        n = len(atoms)
        index = np.asarray(result["grad_index_0based"])
        grad = np.asarray(result["grad_data"])[:, :, :-1]
        dense = np.zeros((n, n, 3, grad.shape[-1]))
        np.add.at(dense, (index[:, 0], index[:, 1]), grad)
        moved = np.linspace(0, n - 1, 4 if name == "mo" else 3).astype(int)
        arrays.update({f"{name}_moved": moved, f"{name}_positions": atoms.positions, f"{name}_numbers": atoms.numbers,
                       f"{name}_cell": atoms.cell.array, f"{name}_features": np.asarray(result["data"])[:, :-1],
                       f"{name}_gradients": dense[:, moved]})
    np.savez_compressed("reference.npz", **arrays)


if __name__ == "__main__":
    main()
