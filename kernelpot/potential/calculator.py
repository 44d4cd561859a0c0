"""An ASE calculator for kernelpot GAP potentials."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.calculators.calculator import BaseCalculator, PropertyNotImplementedError

from ..models.gap import SparseGPR
from .serialization import load_model

__all__ = ["GAPCalculator"]


class GAPCalculator(BaseCalculator):
    """ASE calculator evaluating a fitted :class:`~kernelpot.models.gap.SparseGPR`.

    Parameters
    ----------
    model : SparseGPR or str or Path
        A fitted model, or the path of a ``.kpot`` file written by
        :func:`kernelpot.potential.serialization.save_model`.
    uncertainty : bool, default=True
        Also compute ``results["energy_std"]`` (eV) and
        ``results["forces_std"]`` (eV/Å, shape (n_atoms, 3)): the DTC
        predictive standard deviations of the latent energy and forces,
        times the model's ``std_scale_`` and combined in quadrature with
        its ``std_floor_`` (eV, eV/Å) if it was recalibrated
        (:func:`kernelpot.uncertainty.calibration.recalibrate`). The force
        variance costs a second pass over the descriptor gradients; switch
        off for speed in MD. With stress, ``results["stress_std"]``
        (eV/Å³, Voigt) is kept too.

    Notes
    -----
    Results: ``energy`` and ``free_energy`` (eV), ``energies`` (per-atom
    local energies including e0, eV, on request), ``forces`` (eV/Å,
    ``(n_atoms, 3)``) and, for cells periodic in all three directions,
    ``stress`` (eV/Å³, Voigt order xx yy zz yz xz xy, ASE sign). Asking a
    non-periodic structure for stress raises
    ``PropertyNotImplementedError`` instead of returning a meaningless
    number.

    Examples
    --------
    >>> calc = GAPCalculator("si.kpot")          # doctest: +SKIP
    >>> atoms.calc = calc                        # doctest: +SKIP
    >>> atoms.get_forces()                       # doctest: +SKIP
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "energy_std",
                              "forces_std"]

    def __init__(self, model, *, uncertainty: bool = True):
        super().__init__()
        if isinstance(model, (str, Path)):
            model = load_model(model)
        if not isinstance(model, SparseGPR):
            raise TypeError(f"`model` must be a fitted SparseGPR or a .kpot path; got {type(model).__name__}")
        if not hasattr(model, "alpha_"):
            raise ValueError("`model` is not fitted; call fit first or load a .kpot file")
        self.model = model
        self.uncertainty = uncertainty

    def calculate(self, atoms, properties, system_changes):
        if "stress" in properties and not atoms.pbc.all():
            raise PropertyNotImplementedError(
                f"stress needs a cell periodic in all directions; this structure has pbc={atoms.pbc.tolist()}"
            )
        # Stress costs an extra contraction over all gradient pairs: only on request.
        wanted = ["energy", "forces"] + (["stress"] if "stress" in properties else [])
        if "energies" in properties:
            wanted.append("local_energy")
        prediction = self.model.predict([atoms], properties=tuple(wanted), return_std=self.uncertainty)
        energy = float(prediction["energy"][0])
        self.results = {"energy": energy, "free_energy": energy, "forces": prediction["forces"]}
        if "stress" in prediction:
            self.results["stress"] = prediction["stress"][0]
        if "local_energy" in prediction:
            self.results["energies"] = prediction["local_energy"]
        if self.uncertainty:
            self.results["energy_std"] = float(prediction["energy_std"][0])
            self.results["forces_std"] = prediction["forces_std"]
            if "stress_std" in prediction:
                self.results["stress_std"] = prediction["stress_std"][0]
        else:
            for name in ("energy_std", "forces_std"):
                if name in properties:
                    raise PropertyNotImplementedError(f"{name} was switched off (uncertainty=False)")
        if not np.isfinite(energy):
            raise FloatingPointError("the model predicted a non-finite energy; is the structure sensible?")
