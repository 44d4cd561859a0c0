"""Running independent blocks of work serially, in local processes (joblib) or on a Dask cluster.

A fit's block loop is a map (build the design rows of some structures and
factor them) followed by a reduction on the caller's side (add normal
equations, or stack R factors). :func:`map_ordered` does the map and hands
the results back one at a time, in task order, so the caller reduces in a
fixed order (results do not depend on which worker finished first) and
holds one partial result at a time.

Dask is optional (``pip install kernelpot[distributed]``: dask and
distributed); it is imported only when a scheduler is given.
"""

from __future__ import annotations

from contextlib import contextmanager

from .progress import progress

__all__ = ["map_ordered", "check_scheduler", "dask_client", "n_workers"]


def check_scheduler(scheduler, name="scheduler"):
    """Validate a scheduler: None, an address string ``"tcp://HOST:PORT"`` or a ``distributed.Client``."""
    if scheduler is None or isinstance(scheduler, str):
        if isinstance(scheduler, str) and "://" not in scheduler and ":" not in scheduler:
            raise ValueError(f"`{name}` must be an address like 'tcp://HOST:PORT' or a "
                             f"distributed.Client; got {scheduler!r}")
        return
    if type(scheduler).__name__ != "Client" or not hasattr(scheduler, "submit"):
        raise TypeError(f"`{name}` must be None, an address string or a distributed.Client; "
                        f"got {type(scheduler).__name__}")


@contextmanager
def dask_client(scheduler):
    """A ``distributed.Client`` for ``scheduler`` (connected here and closed after, if an address)."""
    if not isinstance(scheduler, str):
        yield scheduler
        return
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("a Dask scheduler needs the optional dependencies dask and distributed: "
                          "pip install 'kernelpot[distributed]'") from None
    client = Client(scheduler, set_as_default=False)
    try:
        yield client
    finally:
        client.close()


def n_workers(client):
    """Number of worker processes of a Dask client (at least 1)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def map_ordered(function, shared, tasks, *, n_jobs=None, client=None, desc="blocks", verbose=False):
    """Yield ``function(shared, *task)`` for every task, in task order.

    Parameters
    ----------
    function : callable
        Module-level function (it is pickled by reference for processes
        and Dask workers).
    shared : object
        Argument common to all tasks (sent once to each Dask worker).
    tasks : list of tuple
        Further arguments of each call.
    n_jobs : int or None
        Local processes (joblib, loky backend); None or 1 runs in this
        process, where Numba and BLAS use their own threads.
    client : distributed.Client or None
        Run the tasks on this Dask cluster instead (``n_jobs`` is then ignored).
    desc : str
        Label of the progress bar.
    verbose : bool
        Show a progress bar.

    Yields
    ------
    object
        The results, in task order.
    """
    bar = progress(range(len(tasks)), desc=desc, enabled=verbose)
    if client is not None:
        shared_future = client.scatter(shared, broadcast=True)
        futures = [client.submit(function, shared_future, *task, pure=False) for task in tasks]
        try:
            for index in bar:
                result = futures[index].result()
                futures[index] = None  # lets the cluster forget a result once reduced
                yield result
        finally:
            client.cancel([f for f in futures if f is not None])
        return
    if n_jobs is None or n_jobs == 1:
        for index in bar:
            yield function(shared, *tasks[index])
        return
    from joblib import Parallel, delayed

    results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(function)(shared, *task) for task in tasks)
    for _, result in zip(bar, results):
        yield result
