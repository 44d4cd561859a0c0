"""Incremental refits of a sparse GPR whose sparse set does not change.

With the sparse points fixed, adding labelled structures only appends rows
``[A_new, b_new]`` (whitened design rows and targets, from
:class:`~kernelpot.models.gap.design.DesignBuilder`) to the least-squares
system that :meth:`SparseGPR.fit` solves. Its state is fully described by
the fitted model itself, and the update is the fit's own accumulator
(:meth:`~kernelpot.models.gap.accumulators.QRAccumulator.from_solution`):

* ``solver="qr"``: the upper-triangular ``R`` (``posterior_factor_``, with
  ``R^T R = K_MM + A^T A``) and ``z = R alpha``, the first ``m`` entries of
  the last column of the augmented ``R`` of ``[[L^T, 0], [A, b]]`` (TSQR).
  The residual entry of that column never feeds back into ``R`` or ``z``,
  so ``[[R, z], [A_new, b_new]]`` -> QR (LAPACK's dtpqrt) -> ``R' , z'`` is the update.
* ``solver="cholesky"``: ``H = R^T R`` and ``r = H alpha``; the update is
  ``H += A_new^T A_new``, ``r += A_new^T b_new``.

So a model loaded from a ``.kpot`` file (which stores ``R`` and ``alpha``)
can be updated as well as one just fitted, and the cost of adding ``n``
rows is ``O(n m^2)`` instead of a refit over all ``N`` rows.
The per-species reference energies ``e0_`` stay those of the first fit:
a refit with ``e0="average"`` on the union would move them, so
:meth:`IncrementalSparseGPR.partial_fit` equals a full refit on the union
done with ``e0=model.e0_`` and the same sparse points.
"""

from __future__ import annotations

import copy

from ...structures.packing import as_atoms_list, pack
from .accumulators import NormalAccumulator, QRAccumulator
from .design import DesignBuilder
from .labels import check_labels, residual_labels
from .model import SparseGPR
from .terms import GAPTerm

__all__ = ["IncrementalSparseGPR", "frozen_sparse_terms"]


class IncrementalSparseGPR(SparseGPR):
    """:class:`~kernelpot.models.gap.SparseGPR` with ``partial_fit``.

    Parameters are those of :class:`SparseGPR`. :meth:`fit` is the full fit
    (it chooses the sparse points and ``e0``); :meth:`partial_fit` adds
    labelled structures, keeping sparse points and ``e0_``.

    Attributes
    ----------
    n_structures_seen_ : int
        Structures given to :meth:`fit` and :meth:`partial_fit` so far.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from kernelpot.descriptors.distance_2b import Distance2B
    >>> from kernelpot.kernels import GaussianCovariance
    >>> from kernelpot.models.gap import GAPTerm
    >>> atoms = [bulk("Si", "diamond", a=a) for a in (5.3, 5.4, 5.5, 5.6)]
    >>> term = GAPTerm(Distance2B(cutoff=4.0), GaussianCovariance(0.5), n_sparse=10,
    ...                sparse_method="uniform")
    >>> model = IncrementalSparseGPR([term], e0=0.0).fit(atoms[:3], energies=[-10.5, -10.8, -10.7])
    >>> model = model.partial_fit(atoms[3:], energies=[-10.4])
    >>> model.n_structures_seen_
    4
    """

    @classmethod
    def from_model(cls, model: SparseGPR) -> IncrementalSparseGPR:
        """An incremental copy of a fitted ``SparseGPR`` (e.g. from ``load_model``).

        The fitted state is deep-copied; ``model`` is not modified.
        """
        if not isinstance(model, SparseGPR):
            raise TypeError(f"`model` must be a SparseGPR; got {type(model).__name__}")
        if not hasattr(model, "alpha_"):
            raise ValueError("`model` is not fitted; call fit first")
        new = cls(**model.get_params(deep=False))
        for key, value in vars(model).items():
            if key.endswith("_") and not key.startswith("__"):
                setattr(new, key, copy.deepcopy(value))
        new.n_structures_seen_ = int(getattr(model, "n_structures_seen_", 0))
        return new

    def fit(self, atoms_list, *, energies=None, forces=None, virials=None, config_types=None):
        """Full fit (sparse points, ``e0``, coefficients); see :meth:`SparseGPR.fit`."""
        super().fit(atoms_list, energies=energies, forces=forces, virials=virials, config_types=config_types)
        self.n_structures_seen_ = len(as_atoms_list(atoms_list))
        return self

    def partial_fit(self, atoms_list, *, energies=None, forces=None, virials=None, config_types=None):
        """Add labelled structures to the fit without choosing new sparse points.

        Parameters
        ----------
        atoms_list, energies, forces, virials, config_types
            As in :meth:`SparseGPR.fit` (eV, eV/Å, eV), for the new
            structures only.

        Returns
        -------
        self
        """
        if not hasattr(self, "alpha_"):
            raise ValueError("partial_fit needs a fitted model; call fit first")
        self._check_params()
        atoms_list = as_atoms_list(atoms_list)
        pack(atoms_list)  # validates positions and cells
        labels = residual_labels(check_labels(atoms_list, energies, forces, virials, config_types), atoms_list,
                                 self.baseline)
        unknown = sorted({int(z) for a in atoms_list for z in a.numbers} - set(self.e0_))
        if unknown:
            raise ValueError(f"species Z={unknown} have no e0 in this model; a full fit is needed "
                             "to add a new species")
        builder = DesignBuilder.from_model(self)
        want_gradients = any(f is not None for f in labels.forces) or any(v is not None for v in labels.virials)
        per_atom = builder.gradient_bytes_per_atom(atoms_list)[0] if want_gradients else 0.0
        blocks, _ = builder.plan_blocks(atoms_list, labels, per_atom)
        # The fitted factors are the state of the fit's own accumulator (module docstring): add the new rows to it.
        accumulator = QRAccumulator if self.solver == "qr" else NormalAccumulator
        accumulate = accumulator.from_solution(self.posterior_factor_, self.alpha_)
        for structures, _ in blocks:
            accumulate.add(*builder.rows(atoms_list, structures, labels))
        R, alpha = accumulate.solve()
        self.posterior_factor_, self.alpha_ = R, alpha
        start = 0
        for term in self.terms_:
            term.alpha = alpha[start : start + term.n_sparse]
            start += term.n_sparse
        self.n_structures_seen_ = int(getattr(self, "n_structures_seen_", 0)) + len(atoms_list)
        return self


def frozen_sparse_terms(model: SparseGPR) -> list[GAPTerm]:
    """GAP terms that reuse a fitted model's sparse points (for a refit on the same sparse set).

    Parameters
    ----------
    model : SparseGPR
        Fitted.

    Returns
    -------
    list of GAPTerm
        One per ``model.terms_``, with ``sparse_points`` set; descriptor
        and kernel are deep copies.
    """
    return [GAPTerm(copy.deepcopy(t.descriptor), copy.deepcopy(t.kernel), delta=t.delta, n_sparse=t.n_sparse,
                    sparse_points=t.sparse_X.copy()) for t in model.terms_]
