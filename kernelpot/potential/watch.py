"""Watching a model's force uncertainty during ASE molecular dynamics (the on-the-fly learning hook).

:class:`UncertaintyWatch` is an ASE dynamics observer. Every step it reads the ``forces_std`` that
:class:`~kernelpot.potential.calculator.GAPCalculator` (``uncertainty=True``) computed with that step's
forces — no extra model call — records the largest per-atom norm (eV/Å, the same score as
:class:`~kernelpot.active.strategies.PredictiveVariance` with ``quantity="forces"``), and flags the steps
above a threshold or stops the run at the first one (:class:`UncertaintyExceeded`). ``kernelpot md``
(``--std-threshold``) and :class:`~kernelpot.active.explorers.MDExplorer` (``every_step=True``) use it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["UncertaintyWatch", "UncertaintyExceeded", "max_force_std"]


class UncertaintyExceeded(RuntimeError):
    """Raised from inside the dynamics when a step's force σ passes the threshold (``stop=True``).

    Attributes
    ----------
    step : int
        The dynamics step (``nsteps``) whose structure passed it; the atoms are left at that step.
    sigma : float
        Its largest per-atom ``|forces_std|`` (eV/Å).
    """

    def __init__(self, step, sigma, threshold):
        super().__init__(f"step {step}: max |forces_std| {sigma:.4g} eV/Å > threshold {threshold:.4g} eV/Å")
        self.step, self.sigma = step, sigma


def max_force_std(forces_std) -> float:
    """Largest per-atom norm of ``forces_std`` (n_atoms, 3), eV/Å."""
    return float(np.linalg.norm(np.asarray(forces_std, dtype=np.float64), axis=1).max(initial=0.0))


class UncertaintyWatch:
    """Record the force σ of every MD step; flag or stop above a threshold.

    Parameters
    ----------
    dynamics : ase.md.md.MolecularDynamics
        The dynamics; the watch attaches itself to it (every ``interval`` steps). Its atoms'
        calculator must give ``"forces_std"`` (``GAPCalculator(model, uncertainty=True)``).
    threshold : float or None, default=None
        eV/Å. Steps whose largest per-atom ``|forces_std|`` exceeds it are flagged; None records only.
    stop : bool, default=False
        Raise :class:`UncertaintyExceeded` at the first flagged step, which ends ``dynamics.run``
        with the atoms at that step.
    interval : int, default=1
        Steps between checks.

    Attributes
    ----------
    steps, sigma : list
        Step numbers and their largest per-atom ``|forces_std|`` (eV/Å).
    flagged : list of int
        Steps above the threshold.

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

    def __init__(self, dynamics, *, threshold=None, stop=False, interval=1):
        if threshold is not None and not (isinstance(threshold, (int, float, np.number))
                                          and not isinstance(threshold, bool) and np.isfinite(threshold)
                                          and threshold > 0):
            raise ValueError(f"`threshold` must be None or a number > 0 eV/Å; got {threshold!r}")
        if stop and threshold is None:
            raise ValueError("`stop=True` needs a `threshold`")
        if isinstance(interval, bool) or not isinstance(interval, (int, np.integer)) or interval < 1:
            raise ValueError(f"`interval` must be an integer >= 1; got {interval!r}")
        if "forces_std" not in getattr(dynamics.atoms.calc, "implemented_properties", ()):
            raise ValueError("the dynamics' calculator gives no 'forces_std'; "
                             "use GAPCalculator(model, uncertainty=True)")
        self.dynamics = dynamics
        self.threshold = threshold
        self.stop = stop
        self.steps, self.sigma, self.flagged = [], [], []
        dynamics.attach(self, interval=int(interval))

    def __call__(self):
        atoms = self.dynamics.atoms
        sigma = max_force_std(atoms.calc.get_property("forces_std", atoms))
        step = int(self.dynamics.nsteps)
        self.steps.append(step)
        self.sigma.append(sigma)
        if self.threshold is not None and sigma > self.threshold:
            self.flagged.append(step)
            if self.stop:
                raise UncertaintyExceeded(step, sigma, self.threshold)
