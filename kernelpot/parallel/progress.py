"""Progress bars for the long steps (descriptor passes, sparse selection, fit blocks).

tqdm (a dependency of kernelpot) draws them on stderr; a bar appears only
once its step has run for ``delay`` seconds, so short steps stay silent.
"""

from __future__ import annotations

import sys

__all__ = ["progress", "progress_bar"]


def progress(iterable, *, desc, total=None, enabled=True, delay=2.0):
    """Wrap ``iterable`` in a tqdm bar when ``enabled``.

    Parameters
    ----------
    iterable : iterable
    desc : str
        Label of the bar.
    total : int or None
        Number of items, if ``iterable`` has no ``len``.
    enabled : bool, default=True
        ``False`` (``verbose=False``, ``--quiet``) returns ``iterable`` unchanged.
    delay : float, default=2.0
        Seconds before the bar is first drawn.

    Returns
    -------
    iterable
    """
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, delay=delay, file=sys.stderr, leave=False,
                dynamic_ncols=True)


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def progress_bar(total, *, desc, enabled=True, delay=2.0):
    """A bar updated by hand (``bar.update(n)``, ``bar.close()``), e.g. from an MD observer.

    Parameters
    ----------
    total : int
        Number of steps.
    desc : str
    enabled : bool, default=True
        ``False`` gives an object whose ``update``/``close`` do nothing.
    delay : float, default=2.0
        Seconds before the bar is first drawn.
    """
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, delay=delay, file=sys.stderr, leave=False, dynamic_ncols=True)
