"""Error tables of a potential on labelled structures (``kernelpot evaluate``)."""

from __future__ import annotations

import numpy as np

from ..parallel.progress import progress
from ..structures.packing import atom_budget_groups

__all__ = ["UNITS", "error_table"]


def _stats(errors) -> tuple[float | None, float | None]:
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if errors.size == 0:
        return None, None
    return float(np.sqrt(np.mean(errors**2))), float(np.mean(np.abs(errors)))


# Units of the entries of an error table (``kernelpot evaluate --json`` prints them with it).
UNITS = {"energy_rmse": "eV/atom", "energy_mae": "eV/atom", "energy_per_structure_rmse": "eV",
         "energy_per_structure_mae": "eV", "forces_rmse": "eV/Å", "forces_mae": "eV/Å", "stress_rmse": "eV/Å³"}


def _table(energy_errors, structure_energy_errors, force_errors, stress_errors, n_structures) -> dict:
    energy_rmse, energy_mae = _stats(energy_errors)
    structure_rmse, structure_mae = _stats(structure_energy_errors)
    forces_rmse, forces_mae = _stats(force_errors)
    stress_rmse, _ = _stats(stress_errors)
    return {"n_structures": n_structures, "energy_rmse": energy_rmse, "energy_mae": energy_mae,
            "energy_per_structure_rmse": structure_rmse, "energy_per_structure_mae": structure_mae,
            "forces_rmse": forces_rmse, "forces_mae": forces_mae, "stress_rmse": stress_rmse}


# Atoms predicted per model call: bounds the per-pair gradient arrays of a
# large test set and gives the progress bar steps of a few seconds each.
_PREDICT_ATOMS = 2048


def _predict_chunk(model, atoms_chunk, indices, properties) -> dict:
    """``{structure index: {"energy", "forces", "virial"}}`` for one chunk of structures."""
    prediction = model.predict(atoms_chunk, properties=properties)
    offsets = np.cumsum([0] + [len(atoms) for atoms in atoms_chunk])
    return {s: {"energy": prediction["energy"][k],
                "forces": prediction["forces"][offsets[k]:offsets[k + 1]],
                "virial": prediction["virial"][k] if "virial" in prediction else None}
            for k, s in enumerate(indices)}


def error_table(model, data, *, verbose=False) -> dict:
    """Energy (eV/atom and eV/structure), force (eV/Å) and stress (eV/Å³) errors, overall and per config_type.

    Parameters
    ----------
    model : SparseGPR
        Fitted model.
    data : kernelpot.io.LabelledStructures
        Structures with reference labels.
    verbose : bool, default=False
        Show a progress bar over the prediction chunks (drawn only when the
        prediction takes longer than 2 s).

    Returns
    -------
    dict
        ``{"n_structures", "energy_rmse", "energy_mae",
        "energy_per_structure_rmse", "energy_per_structure_mae",
        "forces_rmse", "forces_mae", "stress_rmse", "by_config_type": {name:
        {...}}}`` in the units of :data:`UNITS`: energy errors per atom
        (eV/atom; what GAP papers quote for materials) and per structure (eV;
        what molecular tables quote), force errors over all Cartesian
        components, stress errors over all 9 components of each 3x3 tensor;
        an entry is ``None`` where no reference label exists.
    """
    atoms_list = data.atoms
    with_virial = [s for s, a in enumerate(atoms_list) if a.pbc.all() and data.virials[s] is not None]
    without_virial = sorted(set(range(len(atoms_list))) - set(with_virial))
    predictions = {}
    for group, properties in ((with_virial, ("energy", "forces", "virial")), (without_virial, ("energy", "forces"))):
        if not group:
            continue
        chunks = [[group[k] for k in chunk]
                  for chunk in atom_budget_groups([atoms_list[s] for s in group], _PREDICT_ATOMS)]
        for chunk in progress(chunks, desc="predicting test structures", enabled=verbose):
            predictions.update(_predict_chunk(model, [atoms_list[s] for s in chunk], chunk, properties))
    rows = []
    for s, atoms in enumerate(atoms_list):
        predicted, n = predictions[s], len(atoms)
        structure_err = [] if data.energies[s] is None else [predicted["energy"] - data.energies[s]]
        e_err = [error / n for error in structure_err]
        f_err = [] if data.forces[s] is None else (predicted["forces"] - data.forces[s]).ravel()
        s_err = []
        if predicted["virial"] is not None:
            s_err = ((np.asarray(data.virials[s]) - predicted["virial"]) / atoms.get_volume()).ravel()
        rows.append((data.config_types[s] or "default", e_err, structure_err, f_err, s_err))

    def gather(selected):
        columns = [np.concatenate([np.ravel(r[k]) for r in selected] or [[]]) for k in range(1, 5)]
        return _table(*columns, len(selected))

    table = gather(rows)
    table["by_config_type"] = {name: gather([r for r in rows if r[0] == name])
                               for name in sorted({r[0] for r in rows})}
    return table
