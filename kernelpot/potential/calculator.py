"""An ASE calculator for kernelpot GAP potentials."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
from ase.calculators.calculator import BaseCalculator, PropertyNotImplementedError

from ..descriptors.centre_species import CentreSpecies
from ..descriptors.soap import SOAP
from ..exceptions import HardCutoffWarning
from ..models.gap import SparseGPR
from ..models.gap.predictor import GAPPredictor, supports_fast_path
from ..models.gap.subset_variance import CALIBRATION_FLOOR, SubsetForceVariance
from ..structures.neighbours import VerletNeighbours
from .gap_xml import load_potential

__all__ = ["GAPCalculator", "UNCERTAINTY_MODES"]

#: Values of ``GAPCalculator(uncertainty=...)``.
UNCERTAINTY_MODES = (True, False, "requested", "local_energy", "forces_subset")
# Atoms of displaced copies predicted per model call by the finite-difference helpers.
_FD_BATCH_ATOMS = 20000


def hard_cutoff_terms(model) -> list[tuple[int, float]]:
    """Terms of ``model`` whose SOAP uses dscribe's hard, padded cutoff, and where it lies.

    With ``cutoff_transition_width=None`` (dscribe's convention) a neighbour
    enters the density unweighted as soon as it is inside ``r_cut`` plus the
    Gaussian padding, so the features, and the energy of any potential built on
    them, jump when a neighbour crosses that sphere (by tens of µeV in a
    64-atom Si cell: enough to spoil energy conservation and a finite-difference
    stress). GAP's smooth cutoff (``cutoff_transition_width=w``) has no jump.

    Returns
    -------
    list of (int, float)
        Index into ``model.terms`` and the radius (Å) at which the energy jumps.
    """
    found = []
    for index, term in enumerate(getattr(model, "terms", ())):
        descriptor = term.descriptor
        if isinstance(descriptor, CentreSpecies):
            descriptor = descriptor.descriptor
        if isinstance(descriptor, SOAP) and descriptor.cutoff_transition_width is None:
            found.append((index, descriptor._search_cutoff()))
    return found


def warn_hard_cutoffs(model) -> None:
    """Warn (:class:`~kernelpot.exceptions.HardCutoffWarning`) once per model put to work with a hard SOAP cutoff."""
    terms = hard_cutoff_terms(model)
    if terms:
        where = ", ".join(f"terms[{index}] at {radius:.3f} Å" for index, radius in terms)
        warnings.warn(
            f"SOAP with cutoff_transition_width=None (dscribe's hard cutoff): the energy jumps when a neighbour "
            f"crosses the padded cutoff ({where}), so MD does not conserve energy exactly and forces are not "
            "-dE/dr there; fit with GAP's smooth cutoff, e.g. SOAP(..., cutoff_transition_width=0.5)",
            HardCutoffWarning, stacklevel=3)


class GAPCalculator(BaseCalculator):
    """ASE calculator evaluating a fitted :class:`~kernelpot.models.gap.SparseGPR`.

    Parameters
    ----------
    model : SparseGPR or str or Path
        A fitted model, or the path of a ``.kpot`` file written by
        :func:`kernelpot.potential.serialization.save_model` or of a QUIP/GAP
        ``.xml`` potential (:func:`kernelpot.potential.gap_xml.load_gap_xml`;
        it has no uncertainties: pass ``uncertainty=False``).
    uncertainty : bool or "requested", default=True
        True: with every call also compute ``results["energy_std"]`` (eV) and
        ``results["forces_std"]`` (eV/Å, shape (n_atoms, 3)): the DTC
        predictive standard deviations of the latent energy and forces,
        times the model's ``std_scale_`` and combined in quadrature with
        its ``std_floor_`` (eV, eV/Å) if it was recalibrated
        (:func:`kernelpot.uncertainty.calibration.recalibrate`). The
        variances are exact (DTC, :mod:`kernelpot.models.gap.variance`,
        ``σ² = prior - k*ᵀK_MM⁻¹k* + k*ᵀ(R^T R)⁻¹k*`` per force component):
        they need every force component's covariance with every sparse
        point, a product over all neighbour pairs, descriptor features and
        sparse points, so a call with them costs several times a call
        without (``benchmarks/RESULTS.md``; 1 thread, rattled 216-atom Si,
        1,000 sparse points: about 25x in CPU time). Switch off for speed.
        With stress, ``results["stress_std"]`` (eV/Å³, Voigt) is kept too.
        ``"requested"``: only the calls that ask for ``energy_std`` or
        ``forces_std`` (``atoms.calc.get_property("forces_std", atoms)``)
        compute them; the others take the fast path. MD that checks σ
        every N steps (``UncertaintyWatch(..., interval=N)``,
        ``kernelpot md --std-interval N``) then pays for σ on those steps
        only. ``"local_energy"``: every call also gives
        ``results["local_energy_std"]`` (eV, shape (n_atoms,)), the exact
        DTC σ of every atom's **local energy** (FLARE's on-the-fly trigger;
        :mod:`kernelpot.models.gap.local_variance`), on the fast path at
        about 1.5x the cost of the forces alone; ``energy_std`` and the
        exact ``forces_std`` are computed only for calls that ask for them,
        as with ``"requested"`` (screen every step with the local σ, confirm
        with the force σ: ``UncertaintyWatch(..., quantity="local_energy",
        force_threshold=...)``). ``"forces_subset"``: every call also gives
        an **approximate** ``results["forces_std"]`` (eV/Å, (n_atoms, 3))
        on the fast path: the posterior force variance of ``sigma_points``
        of the sparse points plus each atom's local-energy Nyström residual
        (``sigma_residual``), with two factors calibrated against the exact
        σ of the first structure this calculator sees with a σ above
        ``CALIBRATION_FLOOR`` (1e-5 eV/Å; the calls up to it compute the
        exact σ and return it;
        :class:`~kernelpot.models.gap.subset_variance.SubsetForceVariance`).
        Its cost and error against the exact σ are measured by
        ``benchmarks/predict.py --cases subsetsigma`` and ``kernelpot bench
        --only si_sigma,nacl_sigma`` (1 thread; the defaults, 16 points +
        residual: 1.85–1.95x the forces alone on the NaCl–water benchmark,
        3.1x on the Si cell, where ``sigma_points=7,
        sigma_residual_points=8`` costs 1.9x; per atom median / 95th
        percentile relative error 9 % / 26 % and Spearman 0.89 against the
        exact σ over 21 NaCl–water frames (Si, 7 + 8 nearest: 14 % / 51 %,
        0.60 over 29 frames); the largest σ per frame orders the frames
        with Spearman 0.91 (Si 0.96) and puts the outlier frame first on
        both, where the subset alone (up to 2x) gives 0.62–0.68 and ranks
        it 5th–11th on NaCl–water; the exact σ costs 66–80x and 31–39x;
        more in :mod:`kernelpot.models.gap.subset_variance`); ``energy_std`` is
        exact and only computed on request. False: never (asking for them raises
        ``PropertyNotImplementedError``).
    sigma_points : int, default=16
        With ``uncertainty="forces_subset"``: sparse points the force σ uses
        (rounded per term, at least one each; more: closer to the exact σ,
        each costs about one more reverse-mode adjoint).
    sigma_residual : bool, default=True
        With ``uncertainty="forces_subset"``: add each atom's local-energy
        Nyström residual (``SubsetForceVariance(..., residual=True)``: it
        grows for environments far from every sparse point, which the subset
        alone misses; about half a force call) with a second calibrated
        factor. False: the subset alone with one factor (cheaper by that
        half call, but the largest σ of a frame no longer finds the outlier
        frames: see above).
    sigma_residual_points : int or None, default=None
        With ``sigma_residual``: None takes each atom's residual against all
        sparse points (exact); an integer ``q`` against the atom's ``q`` most
        similar points of every term of more than 256 points
        (``SubsetForceVariance(..., residual_points=q)``: an upper bound,
        without the product over all points that costs 0.5–0.7 of the forces
        on a one-species model of 1,000 points). The Si benchmark cell meets
        2x with ``sigma_points=7, sigma_residual_points=8`` (measured in
        ``benchmarks/RESULTS.md``); on NaCl–water keep None (the nearest
        points lose the outlier frame there).
    skin : float, default=1.0
        Verlet skin in Å: each thread keeps its neighbour lists between
        calls while no atom has moved more than ``skin / 2``
        (:class:`~kernelpot.structures.neighbours.VerletNeighbours`), so MD
        steps skip most neighbour searches; 0 searches afresh every call.
        Results are the same either way (to round-off).

    Notes
    -----
    Energies, forces and stress come from the reverse-mode path
    (:class:`~kernelpot.models.gap.predictor.GAPPredictor`): no descriptor
    gradient rows are formed. Results: ``energy`` and ``free_energy`` (eV), ``energies`` (per-atom
    local energies including e0, eV, on request), ``forces`` (eV/Å,
    ``(n_atoms, 3)``) and, for cells periodic in all three directions,
    ``stress`` (eV/Å³, Voigt order xx yy zz yz xz xy, ASE sign). Asking a
    non-periodic structure for stress raises
    ``PropertyNotImplementedError`` instead of returning a meaningless
    number.

    Threads: one calculator may serve several threads at once. ASE keeps
    the last structure and its results on the calculator (``atoms``,
    ``results``); here each thread has its own, so a thread never receives
    another thread's results and the compiled kernels (which release the
    GIL) run in parallel. ``results`` read from a thread holds that
    thread's last calculation; a copy or a pickle of the calculator keeps
    the calling thread's.

    Examples
    --------
    >>> calc = GAPCalculator("si.kpot")          # doctest: +SKIP
    >>> atoms.calc = calc                        # doctest: +SKIP
    >>> atoms.get_forces()                       # doctest: +SKIP
    >>> calc.calculate_numerical_forces(atoms)   # doctest: +SKIP
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "energy_std",
                              "forces_std", "local_energy_std"]

    def __init__(self, model, *, uncertainty: bool | str = True, skin: float = 1.0, sigma_points: int = 16,
                 sigma_residual: bool = True, sigma_residual_points: int | None = None):
        self._per_thread = threading.local()
        super().__init__()
        if isinstance(model, (str, Path)):
            model = load_potential(model)
        if not isinstance(model, SparseGPR):
            raise TypeError(f"`model` must be a fitted SparseGPR or a .kpot path; got {type(model).__name__}")
        if not hasattr(model, "alpha_"):
            raise ValueError("`model` is not fitted; call fit first or load a .kpot file")
        if uncertainty not in UNCERTAINTY_MODES:
            raise ValueError(f"`uncertainty` must be True, False, 'requested', 'local_energy' or 'forces_subset'; "
                             f"got {uncertainty!r}")
        if uncertainty in (True, "local_energy", "forces_subset") and getattr(model, "posterior_factor_", None) is None:
            raise ValueError("this model stores no posterior covariance (imported from a GAP XML file), so it "
                             "has no uncertainties: use GAPCalculator(model, uncertainty=False)")
        if uncertainty == "forces_subset" and not supports_fast_path(model):
            raise ValueError("uncertainty='forces_subset' needs descriptors with a reverse-mode pass (transform_vjp)")
        if isinstance(sigma_points, bool) or not isinstance(sigma_points, (int, np.integer)) or sigma_points < 1:
            raise ValueError(f"`sigma_points` must be an integer >= 1; got {sigma_points!r}")
        if sigma_residual_points is not None and (isinstance(sigma_residual_points, bool) or not isinstance(
                sigma_residual_points, (int, np.integer)) or sigma_residual_points < 1):
            raise ValueError(f"`sigma_residual_points` must be an integer >= 1 or None; got {sigma_residual_points!r}")
        self.model = model
        self.uncertainty = uncertainty
        warn_hard_cutoffs(model)
        VerletNeighbours(skin)  # validates
        self.skin = skin
        self.sigma_points = sigma_points
        self.sigma_residual = bool(sigma_residual)
        self.sigma_residual_points = sigma_residual_points
        self._force_variance = None
        self._calibration_lock = threading.Lock()

    def _predictor(self, variance):
        """This thread's predictor with its own neighbour lists (None if a descriptor has no reverse mode).

        ``variance`` is :meth:`_subset_variance`'s result, passed in so that one call takes its lock once.
        """
        state = self._per_thread
        if getattr(state, "model", None) is not self.model or getattr(state, "skin", None) != self.skin or \
                getattr(state, "variance", None) is not variance:
            state.model, state.skin, state.variance = self.model, self.skin, variance
            state.predictor = (GAPPredictor(self.model, neighbours=VerletNeighbours(self.skin) if self.skin else None,
                                            force_variance=variance)
                               if supports_fast_path(self.model) else None)
        return state.predictor

    def _subset_variance(self):
        """The shared :class:`SubsetForceVariance` of ``uncertainty="forces_subset"`` (None otherwise)."""
        if self.uncertainty != "forces_subset":
            return None
        with self._calibration_lock:
            current = self._force_variance
            residual = getattr(self, "sigma_residual", False)               # (older pickles have none)
            residual_points = getattr(self, "sigma_residual_points", None)
            if current is None or current.model is not self.model or current.n_points != self.sigma_points or \
                    current.residual != residual or current.residual_points != residual_points:
                self._force_variance = SubsetForceVariance(self.model, self.sigma_points, residual=residual,
                                                           residual_points=residual_points)
            return self._force_variance

    # ASE's cache (last structure and results) is per thread: see Notes.
    def _thread_cache(self):
        cache = self._per_thread
        if not hasattr(cache, "results"):
            cache.atoms, cache.results = None, {}
        return cache

    @property
    def atoms(self):
        return self._thread_cache().atoms

    @atoms.setter
    def atoms(self, value):
        self._thread_cache().atoms = value

    @property
    def results(self):
        return self._thread_cache().results

    @results.setter
    def results(self, value):
        self._thread_cache().results = value

    def __getstate__(self):
        state = {key: value for key, value in self.__dict__.items() if key not in ("_per_thread", "_calibration_lock")}
        state["_cache"] = (self.atoms, self.results)
        return state

    def __setstate__(self, state):
        atoms, results = state.pop("_cache")
        self.__dict__.update(state)
        self._per_thread = threading.local()
        self._calibration_lock = threading.Lock()
        self.atoms, self.results = atoms, results

    def calculate(self, atoms, properties, system_changes):
        if "stress" in properties and not atoms.pbc.all():
            raise PropertyNotImplementedError(
                f"stress needs a cell periodic in all directions; this structure has pbc={atoms.pbc.tolist()}"
            )
        # Stress costs an extra contraction over all gradient pairs: only on request.
        wanted = ["energy", "forces"] + (["stress"] if "stress" in properties else [])
        if "energies" in properties:
            wanted.append("local_energy")
        subset = self._subset_variance()
        with_std = self.uncertainty is True or (
            self.uncertainty in ("requested", "local_energy")
            and any(p in properties for p in ("energy_std", "forces_std"))) or (
            subset is not None and ("energy_std" in properties or subset.kappa_ is None))
        local_std = self.uncertainty == "local_energy" or (
            bool(self.uncertainty) and "local_energy_std" in properties)
        predictor = self._predictor(subset)
        if predictor is not None and not with_std:
            prediction = predictor.predict([atoms], tuple(wanted) + (("local_energy_std",) if local_std else ())
                                           + (("forces_std",) if subset is not None else ()))
        else:   # the explicit path gives the local σ with the local energies
            if local_std and "local_energy" not in wanted:
                wanted.append("local_energy")
            prediction = self.model.predict([atoms], properties=tuple(wanted), return_std=with_std or local_std)
        energy = float(prediction["energy"][0])
        # Same structure (a σ request after the step's forces): keep what was computed, e.g. stress.
        kept = {} if system_changes else dict(self.results)
        results = {**kept, "energy": energy, "free_energy": energy, "forces": prediction["forces"]}
        if "stress" in prediction:
            results["stress"] = prediction["stress"][0]
        if "local_energy" in prediction:
            results["energies"] = prediction["local_energy"]
        if local_std:
            results["local_energy_std"] = prediction["local_energy_std"]
        if with_std:
            results["energy_std"] = float(prediction["energy_std"][0])
            results["forces_std"] = prediction["forces_std"]
            if "stress_std" in prediction:
                results["stress_std"] = prediction["stress_std"][0]
            # The first structure with a non-zero σ calibrates the subset σ (a perfect crystal's is zero by
            # symmetry: the next structure then computes the exact σ again).
            if subset is not None and subset.kappa_ is None and \
                    np.linalg.norm(prediction["forces_std"], axis=1).max() > CALIBRATION_FLOOR:
                with self._calibration_lock:
                    if subset.kappa_ is None:
                        subset.calibrate([atoms], exact_std=prediction["forces_std"], predictor=predictor)
        elif subset is not None:
            results["forces_std"] = prediction["forces_std"]
        elif not self.uncertainty:
            for name in ("energy_std", "forces_std", "local_energy_std"):
                if name in properties:
                    raise PropertyNotImplementedError(f"{name} was switched off (uncertainty=False)")
        if not np.isfinite(energy):
            raise FloatingPointError("the model predicted a non-finite energy; is the structure sensible?")
        self.results = results

    # ------------------------------------------------------ finite differences
    def calculate_numerical_forces(self, atoms, d=0.001):
        """Forces by central differences of the model's energy, eV/Å.

        ASE's ``Calculator.calculate_numerical_forces`` (deprecated in ASE
        3.24 in favour of ``ase.calculators.fd``) with the same arguments and
        result: every atom is moved by ``+d`` and ``-d`` Å along x, y and z.
        The ``6 n_atoms`` displaced energies are predicted in batches
        (energies only, no descriptor gradients), so the check costs about
        as much as a few force calls rather than ``6 n_atoms`` of them.

        Parameters
        ----------
        atoms : ase.Atoms
            Not modified.
        d : float, default=0.001
            Displacement, Å.

        Returns
        -------
        ndarray of shape (n_atoms, 3)
            ``-(E(r + d) - E(r - d)) / (2 d)``, eV/Å.
        """
        d = _positive_step(d, "d")
        n_atoms = len(atoms)

        def displaced(flat_index, sign):
            copy = atoms.copy()
            copy.positions[flat_index // 3, flat_index % 3] += sign * d
            return copy

        energies = self._energies(lambda k: displaced(k // 2, 1.0 - 2.0 * (k % 2)), 6 * n_atoms, n_atoms)
        plus, minus = energies[0::2], energies[1::2]
        return (-(plus - minus) / (2.0 * d)).reshape(n_atoms, 3)

    def calculate_numerical_stress(self, atoms, d=1e-6, voigt=True):
        """Stress by central differences of the model's energy in strain, eV/Å³ (ASE sign).

        ASE's ``Calculator.calculate_numerical_stress`` (now
        ``ase.calculators.fd.calculate_numerical_stress``) with the same
        arguments, strains and result: the cell (with the atoms scaled) is
        strained by ``±d`` along each Voigt component and
        ``stress = (E(+d) - E(-d)) / (2 d V)``.

        Parameters
        ----------
        atoms : ase.Atoms
            Periodic in all three directions; not modified.
        d : float, default=1e-6
            Strain. With this model's smooth energy, ``1e-4`` is often more
            accurate (less round-off in the difference of the energies).
        voigt : bool, default=True
            Return the 6 Voigt components (xx, yy, zz, yz, xz, xy), else the
            symmetric (3, 3) tensor.

        Returns
        -------
        ndarray of shape (6,) or (3, 3)
        """
        from ase.calculators.calculator import PropertyNotImplementedError

        d = _positive_step(d, "d")
        if not atoms.pbc.all():
            raise PropertyNotImplementedError(
                f"stress needs a cell periodic in all directions; this structure has pbc={atoms.pbc.tolist()}")
        cell = np.array(atoms.cell)

        def strained(i, j, sign):
            strain = np.eye(3)
            if i == j:
                strain[i, i] += sign * d
            else:
                strain[i, j] = strain[j, i] = 0.5 * sign * d
            copy = atoms.copy()
            copy.set_cell(cell @ strain, scale_atoms=True)
            return copy

        pairs = [(i, j) for i in range(3) for j in range(i, 3)]
        energies = self._energies(lambda k: strained(*pairs[k // 2], 1.0 - 2.0 * (k % 2)), 12, len(atoms))
        stress = np.zeros((3, 3))
        for k, (i, j) in enumerate(pairs):
            stress[i, j] = stress[j, i] = (energies[2 * k] - energies[2 * k + 1]) / (2.0 * d * atoms.get_volume())
        return stress.flat[[0, 4, 8, 5, 2, 1]] if voigt else stress

    def _energies(self, make, n_structures, n_atoms):
        """Model energies (eV) of ``make(k)``, ``k < n_structures``, predicted a batch at a time."""
        batch = max(1, _FD_BATCH_ATOMS // max(n_atoms, 1))  # bounds the displaced copies alive at once
        energies = [self.model.predict([make(k) for k in range(start, min(start + batch, n_structures))],
                                       properties=("energy",))["energy"]
                    for start in range(0, n_structures, batch)]
        return np.concatenate(energies).astype(np.float64)


def _positive_step(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
            np.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a finite number > 0; got {value!r}")
    return float(value)
