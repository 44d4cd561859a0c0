"""Query-by-committee uncertainty from sparse GPRs fitted on random subsets of the training set.

Each member is a clone of one :class:`~kernelpot.models.gap.SparseGPR`
fitted on its own random subsample of the training structures (without
replacement, as in Musil et al., J. Chem. Theory Comput. 15, 906 (2019),
doi:10.1021/acs.jctc.8b00959). The prediction is the members' mean and
the uncertainty their sample standard deviation, times ``std_scale_``
after :func:`kernelpot.uncertainty.calibration.recalibrate` (Musil et
al. recalibrate the spread the same way).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone

from ..models.gap import SparseGPR
from ..structures.packing import as_atoms_list
from ..utils.estimators import reset_fitted

__all__ = ["CommitteeSparseGPR"]

_STD_OF = {"energy": "energy_std", "forces": "forces_std", "virial": "virial_std", "stress": "stress_std",
           "local_energy": "local_energy_std"}


def _subset(values, index):
    if values is None:
        return None
    if isinstance(values, np.ndarray) and values.ndim == 2 and values.shape[1] == 3:
        raise ValueError("`forces` must be a list of (n_atoms_s, 3) arrays for a committee (one per structure)")
    return [values[i] for i in index]


class CommitteeSparseGPR(BaseEstimator):
    """A committee of SparseGPR models fitted on random subsamples of the structures.

    Parameters
    ----------
    estimator : SparseGPR
        Unfitted template; each member is ``clone(estimator)`` with its own
        ``random_state``.
    n_members : int, default=4
        Number of models, >= 2.
    subsample : float, default=0.5
        Fraction of the training structures each member sees, in (0, 1].
    random_state : int or None, default=None
        Seeds the subsamples and the members' sparse-point choice.

    Attributes
    ----------
    members_ : list of SparseGPR
    subsets_ : list of ndarray
        Training-structure indices of each member.

    Examples
    --------
    >>> committee = CommitteeSparseGPR(SparseGPR(terms), n_members=4)   # doctest: +SKIP
    >>> committee.fit(atoms, energies=e, forces=f)                      # doctest: +SKIP
    >>> committee.predict(test, properties=("forces",), return_std=True)  # doctest: +SKIP
    """

    def __init__(self, estimator, *, n_members=4, subsample=0.5, random_state=None):
        self.estimator = estimator
        self.n_members = n_members
        self.subsample = subsample
        self.random_state = random_state

    def _check_params(self):
        if not isinstance(self.estimator, SparseGPR):
            raise TypeError(f"`estimator` must be a SparseGPR; got {type(self.estimator).__name__}")
        n = self.n_members
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"`n_members` must be an integer >= 2; got {n!r}")
        f = self.subsample
        if isinstance(f, bool) or not isinstance(f, (int, float, np.number)) or not 0 < f <= 1:
            raise ValueError(f"`subsample` must be a fraction in (0, 1]; got {f!r}")

    def fit(self, atoms_list, *, energies=None, forces=None, virials=None, config_types=None):
        """Fit every member on its subsample (arguments as :meth:`SparseGPR.fit`; forces as a list).

        Returns
        -------
        self
        """
        self._check_params()
        reset_fitted(self)  # no recalibration (std_scale_, std_floor_) of earlier members survives
        atoms_list = as_atoms_list(atoms_list)
        n = len(atoms_list)
        size = max(1, round(self.subsample * n))
        rng = np.random.default_rng(self.random_state)
        self.members_, self.subsets_ = [], []
        for _ in range(self.n_members):
            index = np.sort(rng.choice(n, size=size, replace=False))
            member = clone(self.estimator).set_params(random_state=int(rng.integers(2**31)))
            member.fit([atoms_list[i] for i in index], energies=_subset(energies, index),
                       forces=_subset(forces, index), virials=_subset(virials, index),
                       config_types=_subset(config_types, index))
            self.members_.append(member)
            self.subsets_.append(index)
        return self

    def predict(self, atoms_list, *, properties=("energy",), return_std=False):
        """Committee mean and, with ``return_std``, spread of every requested property.

        Returns
        -------
        dict
            The keys of :meth:`SparseGPR.predict` (means), plus
            ``"<property>_std"`` (sample standard deviation over members,
            times ``std_scale_``, and in quadrature with ``std_floor_`` for
            energy and forces if recalibrated with a floor) for ``energy``
            and each requested property.
        """
        if not hasattr(self, "members_"):
            raise ValueError("this CommitteeSparseGPR is not fitted yet; call fit first")
        outputs = [m.predict(atoms_list, properties=properties) for m in self.members_]
        out = {key: np.mean([o[key] for o in outputs], axis=0) for key in outputs[0]}
        if return_std:
            scale = float(getattr(self, "std_scale_", 1.0))
            floor = getattr(self, "std_floor_", None) or {}
            for key in outputs[0]:
                spread = scale * np.std([o[key] for o in outputs], axis=0, ddof=1)
                out[_STD_OF[key]] = np.hypot(spread, floor[key]) if key in floor else spread
        return out
