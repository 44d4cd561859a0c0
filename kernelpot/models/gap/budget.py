"""Memory budget of a SparseGPR fit: the pre-fit estimate, the block plan, streamed sparse selection.

The fit holds, at its peak, the ``M x M`` factors of the sparse points
(``M`` = all sparse points), one block of whitened design rows
``B x M`` with the descriptor gradients of its atoms, and, during sparse
selection, the descriptor rows it selects from. :func:`fit_estimate` adds
these up from the same numbers the fit uses to allocate, so the block size
can be chosen from a total budget (``max_memory``); :func:`select_streamed`
bounds the selection by the same budget: it keeps all descriptor rows only
while they fit, and otherwise reduces them block by block (merge and reduce:
the picks of ``pool + block`` become the next pool), which is exact for
``"uniform"`` and an approximation of FPS/CUR over all rows.
"""

from __future__ import annotations

import os

import numpy as np

from ...parallel.progress import progress
from ...structures.packing import atom_budget_groups
from ...utils.memory import release_freed_memory, resident_bytes, return_large_frees_at_once
from .sparse import choose_sparse, count_distinct, no_rows_error

__all__ = ["fit_estimate", "plan_fit_blocks", "select_streamed", "warm_up", "budgeted_blocks",
           "SELECTION_COPIES"]

# Copies of the descriptor rows alive while selecting among them: the rows,
# the rounded copy and the sort buffers of the duplicate filter, and the
# selector's own working arrays (CUR: the centred rows and their SVD), 5 in
# NumPy arrays; and LAPACK's dgesdd workspace, about one more copy, which
# NumPy allocates outside its array allocator (measured on mlearn Si's SOAP
# rows, 13233 x 252: 5.0 copies traced by tracemalloc, 5.9 in resident memory).
SELECTION_COPIES = 6.0


def _huge_pages() -> bool:
    """Whether NumPy's large arrays get transparent huge pages (it asks for them where the kernel allows)."""
    try:
        from numpy._core.multiarray import _get_madvise_hugepage
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as handle:
            mode = handle.read()
    except (ImportError, OSError):
        return False
    return "[never]" not in mode and _get_madvise_hugepage()


# Resident bytes an array may take beyond its size: up to a page at its end, 2 MiB with huge pages.
PAGE_SLACK = 2 * 2**20 if _huge_pages() else 4096
# Large arrays alive at once at each peak (counted in the estimate below, each with PAGE_SLACK).
_BLOCK_ARRAYS, _ACCUMULATE_ARRAYS = 10, 4
# Share of the memory above the baseline kept free for what the estimate does not model: the allocator's
# fragmentation, small temporaries, library versions that copy once more (NumPy 1.24 peaked 0.4 % of the
# budget above the estimate where NumPy 2 stays under it). The blocks are planned within the rest.
UNMODELLED_HEADROOM = 0.03


def fit_estimate(*, n_sparse, max_term_sparse, block_rows, block_atoms, gradient_bytes_per_atom,
                 pair_chunk, selection_bytes, solver, workers=1):
    """Bytes of the arrays alive at the peaks of a fit, above the memory in use before it.

    Parameters
    ----------
    n_sparse : int
        All sparse points ``M`` (terms side by side).
    max_term_sparse : int
        Sparse points of the largest term (its design rows are built before
        they are copied into the block).
    block_rows, block_atoms : int
        Design rows and atoms of the largest block.
    gradient_bytes_per_atom : float
        Descriptor gradient bytes per atom (all terms).
    pair_chunk : int
        Gradient pairs per kernel-derivative chunk.
    selection_bytes : float
        Descriptor rows held at once during sparse selection.
    solver : {"qr", "cholesky"}
    workers : int, default=1
        Processes on this machine each building blocks (joblib; their
        interpreters are not counted); 0 when the blocks are built on Dask
        workers (only the merge is counted).

    Returns
    -------
    dict
        Bytes per component, ``"solve"`` (the blocks and the factors) and
        ``"fit_peak"``: the larger of the selection and the solve phases.
    """
    M, m, B = n_sparse, max_term_sparse, block_rows
    square = 8.0 * (M + 1) ** 2
    block = 8.0 * B * M
    # The largest term's rows (design_rows' output, its K and K weighted) and
    # the (pair_chunk, 3, m) kernel-derivative temporaries (4 alive at once:
    # the derivative, a product temporary, the (pair, m) cosines and the
    # scattered sparse-matrix product).
    term_rows = 8.0 * (B + 2 * block_atoms) * m + 4 * 8.0 * 3 * pair_chunk * m
    gradients = gradient_bytes_per_atom * block_atoms
    # Resident memory rounds each large array up to whole pages: 2 MiB with NumPy's transparent huge pages,
    # about 1 % of the 0.6 GB budget in which it was measured (the block, the term's rows, the descriptor
    # features and gradients, the kernel values and 4 derivative temporaries).
    building = block + term_rows + gradients + _BLOCK_ARRAYS * PAGE_SLACK
    if solver == "qr":
        # L, the running R; adding a block copies [A b] (Fortran order) while
        # the block is still referenced, and LAPACK's dtpqrt updates R in place.
        factor = square
        accumulate = block + 8.0 * B * (M + 1) + _ACCUMULATE_ARRAYS * PAGE_SLACK
    else:
        # L, H; adding a block forms A^T A next to H.
        factor = square
        accumulate = block + square + _ACCUMULATE_ARRAYS * PAGE_SLACK
    per_worker = factor + max(building, accumulate)
    if workers == 0:
        # Blocks are built on remote workers; here: L, R and the merge of one
        # partial factor (stacked [R; R_part] and the new R).
        solve = 2 * square + 3 * square if solver == "qr" else 2 * square + square
    elif workers == 1:
        solve = square + per_worker
    else:
        # Each local process builds blocks into its own partial factor; this
        # process holds L, its accumulator and one partial result.
        solve = 3 * square + workers * per_worker
    selection = SELECTION_COPIES * selection_bytes
    return {
        "sparse_factor_L": square,
        "accumulator": factor,
        "block": block,
        "block_build": building,
        "block_accumulate": accumulate,
        "selection": selection,
        "solve": solve,
        "fit_peak": max(selection, solve),
    }


def warm_up(terms, atoms_list) -> None:
    """Before the baseline of a budgeted fit: run what the fit runs on small inputs and free what it leaves.

    Numba's compiled descriptors (loaded from the cache), the stacks and
    malloc arenas of the descriptor threads, LAPACK's QR, SVD and Cholesky
    and the first work buffers of the two OpenBLAS libraries (NumPy's and
    SciPy's) then count in the baseline. The rest of what stays resident
    once used (OpenBLAS's per-thread buffers keep growing with the size of
    the products, to 20-30 MB per thread) is measured between the blocks
    (:func:`budgeted_blocks`). glibc is told to return large freed arrays
    at once (:func:`kernelpot.utils.memory.return_large_frees_at_once`).
    """
    import scipy.linalg as sla
    from scipy.linalg import lapack

    return_large_frees_at_once()
    # The largest structure: every Numba thread gets centres, so its stack and its malloc arena exist too.
    largest = max(atoms_list, key=len)
    for term in terms:
        term.descriptor.transform([largest], gradients=True)
    rng = np.random.default_rng(0)
    square = rng.random((256, 256)) + 256 * np.eye(256)  # large enough that every BLAS thread takes part
    narrow = rng.random((512, 256))
    spd = square @ square.T
    sla.blas.dgemm(1.0, narrow, square)
    np.linalg.svd(narrow, full_matrices=False)
    np.linalg.qr(narrow)
    np.linalg.cholesky(spd)
    factor = sla.cholesky(spd, lower=False)
    sla.solve_triangular(factor, narrow[:256, 0])
    sla.cho_solve((factor, False), narrow[:256, 0])
    lapack.dtpqrt(0, 64, np.triu(square), np.asfortranarray(narrow), overwrite_a=1, overwrite_b=1)
    del square, spd, narrow, factor
    release_freed_memory()


def budgeted_blocks(model, builder, atoms_list, labels, per_atom, budget, first_fraction=0.25):
    """The blocks of a serial fit under ``budget``, each planned from the memory resident just before it.

    The first plan (:func:`plan_fit_blocks`) starts from the memory resident
    after the sparse selection. What a process keeps once it has used it
    (OpenBLAS's per-thread buffers grow with the first large products, the
    allocator keeps fragments) shows up only while the blocks run, about
    60 MB on mlearn Si with 2 threads: 5-10 % of a 0.6-3 GB budget, by which
    the peak used to exceed it. So the first block is ``first_fraction`` of
    the planned size (the headroom covers what appears then), and before
    every block the resident memory is measured again (after freed memory
    is returned, :func:`kernelpot.utils.memory.release_freed_memory`); if it
    grew, the block size is planned again from it. The factors ``L`` and
    ``R`` the plan counts are subtracted from the measurement.

    Yields
    ------
    list of int
        The structures of each block, in order, each structure once.
    """
    estimate = model.memory_estimate_
    factors = estimate["sparse_factor_L"] + estimate["accumulator"]
    start, block_bytes, planned_from, fraction = 0, estimate["block_budget"], estimate["blocks_baseline"], \
        first_fraction
    while True:
        release_freed_memory()
        baseline = resident_bytes() - factors
        if baseline > planned_from + 0.01 * budget:  # the process kept more: smaller blocks from now on
            try:
                _, replanned, _ = plan_fit_blocks(model, builder, atoms_list, labels, per_atom, budget, baseline)
                block_bytes = replanned["block_budget"]
            except ValueError:  # not even the smallest block fits what is resident now
                block_bytes = 1.0
            planned_from = baseline
            estimate["blocks_baseline"] = max(estimate["blocks_baseline"], baseline)
            estimate["replans"] = estimate.get("replans", 0) + 1
        blocks, _ = builder.plan_blocks(atoms_list, labels, per_atom[0], block_bytes=block_bytes * fraction,
                                        start=start)
        if not blocks:
            return
        builder.block_bytes = block_bytes * fraction
        structures = blocks[0][0]
        yield structures
        start, fraction = structures[-1] + 1, 1.0


def _reduce(held, method, n_sparse, rng, keys):
    """``((picks, stop_reason), keys)`` among the held row blocks.

    ``keys`` are the random keys of "random" (None: not drawn yet).
    """
    rows = np.concatenate(held) if len(held) > 1 else held[0]
    if method != "random":
        return choose_sparse(rows, n_sparse, method, rng), None
    # Bottom-k sampling: the n distinct rows with the smallest uniform random
    # keys are a uniform sample without replacement of all distinct rows seen.
    keys = np.concatenate([rng.random(len(x)) if k is None else k for x, k in zip(held, keys)])
    order = np.argsort(keys, kind="stable")
    rows, keys = rows[order], keys[order]
    scale = max(float(np.abs(rows).max()), 1e-300)
    _, first = np.unique(np.round(rows / scale, 10), axis=0, return_index=True)
    first = np.sort(first)[:n_sparse]
    return (rows[first], None), keys[first]


def select_streamed(descriptor, atoms_list, n_sparse, method, rng, budget, *, verbose=False, label="descriptor"):
    """Sparse points of one term among its descriptor rows, holding at most ``budget`` bytes of rows.

    Parameters
    ----------
    descriptor : Descriptor
    atoms_list : list of ase.Atoms
    n_sparse : int
    method : {"cur", "fps", "uniform", "random"}
    rng : numpy.random.Generator
    budget : float
        Bytes of descriptor rows that may be held at once (selection
        temporaries come on top: ``SELECTION_COPIES`` times the rows).
    verbose : bool, default=False
        Progress bar.

    Returns
    -------
    Z : ndarray of shape (n_chosen, n_features)
        Sparse points; the same as :func:`select_sparse` on all rows when
        all rows fit in ``budget``.
    info : dict
        ``"n_rows"``, ``"n_features"``, ``"streamed"`` (rows were reduced
        block by block), ``"held_bytes"`` (the most row bytes held at once),
        ``"stop_reason"`` (why FPS/CUR stopped early, else None) and, when
        fewer than ``n_sparse`` points were chosen,
        ``"n_distinct"``: the distinct rows held at the end (all distinct
        rows seen, as no reduction dropped any while there were too few).
    """
    largest = max(atoms_list, key=len)
    probe = np.asarray(descriptor.transform([largest]))
    per_atom = 8.0 * probe.size / max(1, len(largest))
    # Blocks of about a quarter of the budget keep each transform small next to what is held.
    max_atoms = max(1, int(min(budget / 4 / max(per_atom, 1.0), 2**62)))
    groups = [[atoms_list[s] for s in group] for group in atom_budget_groups(atoms_list, max_atoms)]
    held, keys, held_bytes, peak, n_rows, streamed = [], [], 0, 0, 0, False
    for group in progress(groups, desc=f"{label}: descriptor rows for sparse selection", enabled=verbose):
        X = np.asarray(descriptor.transform(group), dtype=np.float64)
        n_rows += len(X)
        held.append(X)
        keys.append(None)
        held_bytes += X.nbytes
        peak = max(peak, held_bytes)
        if held_bytes > budget and len(held) > 1:
            streamed = True
            (pool, _), pool_keys = _reduce(held, method, n_sparse, rng, keys)
            held, keys, held_bytes = [pool], [pool_keys], pool.nbytes
    if n_rows == 0:
        raise no_rows_error(label)
    if streamed or method != "random":
        (Z, stop_reason), _ = _reduce(held, method, n_sparse, rng, keys)
    else:
        # Every row was held: the same draw as select_sparse on all rows.
        Z, stop_reason = choose_sparse(np.concatenate(held), n_sparse, method, rng)
    info = {"n_rows": n_rows, "n_features": probe.shape[1], "streamed": streamed, "held_bytes": peak,
            "stop_reason": stop_reason}
    if len(Z) < n_sparse:  # rare: the count that explains the shortfall costs one more pass
        info["n_distinct"] = count_distinct(np.concatenate(held))
    return Z, info


def plan_fit_blocks(model, builder, atoms_list, labels, per_atom, budget, baseline, selection_baseline=None):
    """Plan the blocks of ``model``'s fit: the largest within ``budget`` bytes, if given.

    Parameters
    ----------
    model : SparseGPR
        Being fitted (its parameters and ``selection_info_`` are read).
    builder : DesignBuilder
        Its design rows.
    atoms_list : list of ase.Atoms
    labels : Labels
    per_atom : (float, float)
        Descriptor gradient bytes and gradient pairs per atom.
    budget : float or None
        Bytes for the whole process (``max_memory``), or None for blocks of
        ``max_block_memory`` MiB.
    baseline : float
        Bytes in use when the blocks start (after the sparse selection:
        resident memory then, which includes whatever the selection left).
    selection_baseline : float or None
        Bytes in use before the selection (default: ``baseline``); the
        estimated peak is the larger of the selection's and the blocks'.

    Returns
    -------
    blocks : list of (list of int, int)
    memory_estimate : dict
        What ``memory_estimate_`` holds, ``"block_budget"`` included.
    message : str
        The estimate in words, for the user.
    """
    per_atom, pairs_per_atom = per_atom
    n_sparse = builder.n_sparse
    held = max(info["held_bytes"] for info in model.selection_info_)
    local = model.n_jobs if model.scheduler is None and model.n_jobs not in (None, 1) else 1
    workers = 0 if model.scheduler is not None else ((os.cpu_count() or 1) if local == -1 else local)

    def plan(block_bytes):
        blocks, n_obs = builder.plan_blocks(atoms_list, labels, per_atom, block_bytes=block_bytes)
        block_atoms = max(sum(len(atoms_list[s]) for s in b[0]) for b in blocks)
        estimate = fit_estimate(
            n_sparse=n_sparse, max_term_sparse=max(t.n_sparse for t in model.terms_),
            block_rows=max(b[1] for b in blocks), block_atoms=block_atoms, gradient_bytes_per_atom=per_atom,
            pair_chunk=min(builder.pair_chunk(block_bytes), int(np.ceil(pairs_per_atom * block_atoms))),
            selection_bytes=held, solver=model.solver, workers=workers)
        return blocks, n_obs, estimate

    block_bytes = model.max_block_memory * 2**20
    if budget is not None:
        # Largest block budget whose estimated peak fits (the estimate grows with the block).
        lo, hi = 0.0, np.log2(max(budget, 2.0))
        planned = budget - UNMODELLED_HEADROOM * max(budget - baseline, 0.0)  # what the blocks may use, with baseline
        smallest = plan(1.0)[2]["solve"]
        if baseline + smallest > planned:
            needed = baseline + smallest / (1.0 - UNMODELLED_HEADROOM)  # the budget whose planned share fits it
            raise ValueError(
                f"`max_memory` = {model.max_memory!r} is too small for {n_sparse} sparse points: "
                f"the fit needs at least {needed / 2**30:.2f} GiB "
                f"({baseline / 2**30:.2f} GiB already in use); give more memory or fewer sparse points")
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if baseline + plan(2.0**mid)[2]["solve"] <= planned else (lo, mid)
        block_bytes = 2.0**lo
    blocks, n_obs, estimate = plan(block_bytes)
    selection_baseline = baseline if selection_baseline is None else selection_baseline
    memory_estimate = dict(
        estimate, full_K_NM=8 * n_obs * n_sparse, descriptor_gradients_per_atom=int(per_atom),
        baseline=selection_baseline, blocks_baseline=baseline, block_budget=block_bytes,
        peak=max(selection_baseline + estimate["selection"], baseline + estimate["solve"]))
    where = "on the Dask workers" if workers == 0 else f"in {len(blocks)} blocks"
    message = (
        f"SparseGPR: {n_obs} observations x {n_sparse} sparse points (full K_NM would be "
        f"{8 * n_obs * n_sparse / 2**30:.2f} GiB), fitted {where} of <= {estimate['block'] / 2**20:.1f} MiB; "
        f"estimated peak memory {memory_estimate['peak'] / 2**30:.2f} GiB = "
        f"{baseline / 2**30:.2f} in use + {estimate['solve'] / 2**30:.2f} for the blocks "
        f"(sparse factors {2 * estimate['sparse_factor_L'] / 2**20:.0f} MiB, {model.solver})")
    return blocks, memory_estimate, message

