"""Watching a model's uncertainty during ASE molecular dynamics (the on-the-fly learning hook).

:class:`UncertaintyWatch` is an ASE dynamics observer. Every step it reads the σ that
:class:`~kernelpot.potential.calculator.GAPCalculator` computed with that step's forces — no extra model
call — records its largest per-atom value, and flags the steps above a threshold or stops the run at the
first one (:class:`UncertaintyExceeded`). Two kinds of σ:

* ``quantity="forces"`` (``uncertainty=True``): the exact DTC ``forces_std``, largest per-atom norm (eV/Å,
  the same score as :class:`~kernelpot.active.strategies.PredictiveVariance` with ``quantity="forces"``);
  it costs tens of mean-force calls per step.
* ``quantity="local_energy"`` (``uncertainty="local_energy"``): the exact DTC σ of every atom's local energy
  (eV), at about 1.5x a mean-force call — FLARE's trigger. It is a different quantity from the force σ (on
  NaCl–water and Si its per-atom ranking agrees only loosely with the force σ's:
  ``benchmarks/predict.py --cases localsigma``), so it serves as a screen: with ``force_threshold`` a step
  it flags is confirmed by the exact ``forces_std`` of that step, computed only then.

``kernelpot md`` (``--std-threshold``, ``--std-kind``) and :class:`~kernelpot.active.explorers.MDExplorer`
(``every_step=True``) use it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["UncertaintyWatch", "UncertaintyExceeded", "max_force_std", "max_local_energy_std"]


class UncertaintyExceeded(RuntimeError):
    """Raised from inside the dynamics when a step's force σ passes the threshold (``stop=True``).

    Attributes
    ----------
    step : int
        The dynamics step (``nsteps``) whose structure passed it; the atoms are left at that step.
    sigma : float
        Its score: the largest per-atom ``|forces_std|`` (eV/Å), or with ``quantity="local_energy"`` and no
        ``force_threshold`` the largest ``local_energy_std`` (eV).
    """

    def __init__(self, step, sigma, threshold, quantity="forces"):
        name, unit = _SCORES[quantity][1:]
        super().__init__(f"step {step}: {name} {sigma:.4g} {unit} > threshold {threshold:.4g} {unit}")
        self.step, self.sigma = step, sigma


def max_force_std(forces_std) -> float:
    """Largest per-atom norm of ``forces_std`` (n_atoms, 3), eV/Å."""
    return float(np.linalg.norm(np.asarray(forces_std, dtype=np.float64), axis=1).max(initial=0.0))


def max_local_energy_std(local_energy_std) -> float:
    """Largest per-atom ``local_energy_std`` (n_atoms,), eV."""
    return float(np.max(np.asarray(local_energy_std, dtype=np.float64), initial=0.0))


# quantity -> (calculator property, score name, unit)
_SCORES = {"forces": ("forces_std", "max |forces_std|", "eV/Å"),
           "local_energy": ("local_energy_std", "max local_energy_std", "eV")}


class UncertaintyWatch:
    """Record the σ of every MD step; flag or stop above a threshold.

    Parameters
    ----------
    dynamics : ase.md.md.MolecularDynamics
        The dynamics; the watch attaches itself to it (every ``interval`` steps). Its atoms'
        calculator must give the σ of ``quantity`` (``GAPCalculator(model, uncertainty=True)`` for forces,
        ``uncertainty="local_energy"`` for local energies).
    threshold : float or None, default=None
        In the unit of ``quantity`` (eV/Å for forces, eV for local energies). Steps whose largest per-atom
        σ exceeds it are flagged; None records only.
    stop : bool, default=False
        Raise :class:`UncertaintyExceeded` at the first flagged step, which ends ``dynamics.run``
        with the atoms at that step.
    interval : int, default=1
        Steps between checks.
    quantity : {"forces", "local_energy"}, default="forces"
        Which σ: the exact force σ (eV/Å) or the local-energy σ (eV, a screen: see the module docstring).
    force_threshold : float or None, default=None
        Only with ``quantity="local_energy"`` and a ``threshold``: a step above ``threshold`` is flagged only
        if its exact largest per-atom ``|forces_std|`` (computed for that step alone, eV/Å) also exceeds
        this — FLARE's use of the local σ as a cheap trigger for the expensive check.

    Attributes
    ----------
    steps, sigma : list
        Step numbers and their largest per-atom σ of ``quantity``.
    force_sigma : dict
        ``{step: largest |forces_std|}`` of the steps confirmed by ``force_threshold`` (eV/Å).
    flagged : list of int
        Steps above the threshold (and confirmed, with ``force_threshold``).

    Examples
    --------
    >>> atoms.calc = GAPCalculator("model.kpot", uncertainty=True)    # doctest: +SKIP
    >>> dynamics = VelocityVerlet(atoms, timestep=1 * units.fs)       # doctest: +SKIP
    >>> watch = UncertaintyWatch(dynamics, threshold=0.2, stop=True)  # doctest: +SKIP
    >>> try:                                                          # doctest: +SKIP
    ...     dynamics.run(10_000)
    ... except UncertaintyExceeded as stop:
    ...     print("label the structure of step", stop.step)
    """

    def __init__(self, dynamics, *, threshold=None, stop=False, interval=1, quantity="forces",
                 force_threshold=None):
        if quantity not in _SCORES:
            raise ValueError(f"`quantity` must be one of {list(_SCORES)}; got {quantity!r}")
        unit = _SCORES[quantity][2]
        for name, value, shown in (("threshold", threshold, unit), ("force_threshold", force_threshold, "eV/Å")):
            if value is not None and not (isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
                                          and np.isfinite(value) and value > 0):
                raise ValueError(f"`{name}` must be None or a number > 0 {shown}; got {value!r}")
        if stop and threshold is None:
            raise ValueError("`stop=True` needs a `threshold`")
        if force_threshold is not None and (quantity != "local_energy" or threshold is None):
            raise ValueError("`force_threshold` confirms the steps a local-energy σ flags: it needs "
                             "quantity='local_energy' and a `threshold`")
        if isinstance(interval, bool) or not isinstance(interval, (int, np.integer)) or interval < 1:
            raise ValueError(f"`interval` must be an integer >= 1; got {interval!r}")
        implemented = getattr(dynamics.atoms.calc, "implemented_properties", ())
        needed = [_SCORES[quantity][0]] + (["forces_std"] if force_threshold is not None else [])
        missing = [name for name in needed if name not in implemented]
        if missing:
            raise ValueError(f"the dynamics' calculator gives no {missing}; use GAPCalculator(model, "
                             f"uncertainty={'True' if quantity == 'forces' else repr('local_energy')})")
        self.dynamics = dynamics
        self.threshold = threshold
        self.stop = stop
        self.quantity = quantity
        self.force_threshold = force_threshold
        self.steps, self.sigma, self.flagged = [], [], []
        self.force_sigma = {}
        dynamics.attach(self, interval=int(interval))

    def __call__(self):
        atoms = self.dynamics.atoms
        std = atoms.calc.get_property(_SCORES[self.quantity][0], atoms)
        sigma = max_force_std(std) if self.quantity == "forces" else max_local_energy_std(std)
        step = int(self.dynamics.nsteps)
        self.steps.append(step)
        self.sigma.append(sigma)
        if self.threshold is None or sigma <= self.threshold:
            return
        score, threshold, quantity = sigma, self.threshold, self.quantity
        if self.force_threshold is not None:   # confirm with the exact force σ of this step only
            score = self.force_sigma[step] = max_force_std(atoms.calc.get_property("forces_std", atoms))
            threshold, quantity = self.force_threshold, "forces"
            if score <= threshold:
                return
        self.flagged.append(step)
        if self.stop:
            raise UncertaintyExceeded(step, score, threshold, quantity)
