"""Warnings kernelpot gives, importable for filtering (as ``sklearn.exceptions``).

A request the data cannot honour in full (more sparse points than distinct
environments, more initial structures than the pool holds, ...) is cut to
what is possible rather than refused, and always said: a
:class:`ReducedRequestWarning` names the parameter, the requested and the
granted value, and why. Silence one kind with, e.g.::

    warnings.filterwarnings("ignore", category=ReducedRequestWarning)

A potential whose energy is not a smooth function of the positions (a SOAP
term with dscribe's hard cutoff) is said when it is put to work as a
calculator: a :class:`HardCutoffWarning`.

A training label far outside the rest of the set's forces (a broken DFT
single point: one frame of 799 can double a model's test error) is said
before the fit: a :class:`ForceOutlierWarning` names the structure, the
atom and the force against the set's distribution.
"""

from __future__ import annotations

import warnings

__all__ = ["ForceOutlierWarning", "HardCutoffWarning", "ReducedRequestWarning", "warn_reduced"]


class ReducedRequestWarning(UserWarning):
    """A requested number was reduced to what the data allow; the message says which, how far and why."""


class ForceOutlierWarning(UserWarning):
    """A force label lies far outside the training set's force distribution: check the structure it names."""


class HardCutoffWarning(UserWarning):
    """A potential's energy jumps where a neighbour crosses a descriptor's cutoff: MD will not conserve energy."""


def warn_reduced(parameter: str, requested, granted, why: str, *, where: str = "", stacklevel: int = 3) -> None:
    """Warn that ``parameter=requested`` was cut to ``granted`` because ``why``.

    Parameters
    ----------
    parameter : str
        The parameter as the user wrote it (``"n_sparse"``).
    requested, granted : int
    why : str
        The reason, in words (``"the training set has only 242 distinct
        SOAP environments"``).
    where : str, default=""
        Which object or term the parameter belongs to (``"terms[1] (SOAP)"``).
    stacklevel : int, default=3
        As :func:`warnings.warn`; the default points at the caller's caller.
    """
    prefix = f"{where}: " if where else ""
    warnings.warn(f"{prefix}{parameter}={requested} requested, {granted} used: {why}", ReducedRequestWarning,
                  stacklevel=stacklevel)
