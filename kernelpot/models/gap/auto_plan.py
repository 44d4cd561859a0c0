"""The cost plan of an auto fit (:mod:`kernelpot.models.gap.auto`): a probe, the stages' CPU time and memory.

The probe times the design rows of a few structures at the two smallest
counts and one QR update (best of 3 each, in CPU seconds of this process); the plan
scales them with each stage's sparse count, its rows and its noise
candidates. On rMD17 ethanol and benzene (1000 frames, SOAP n8 l6) a probe
at one count overestimated the stages 1.7-2.6x; the probe now times two
counts (a fixed and a per-point cost).
"""

from __future__ import annotations

import time

import numpy as np

from .accumulators import QRAccumulator

__all__ = ["plan_auto", "affordable_stages", "describe_plan"]


def _best_time(function, repeats=3):
    """The least CPU seconds of ``repeats`` calls (timeit's rule: the others were slowed by something else)."""
    best = np.inf
    for _ in range(repeats):
        start = time.process_time()
        function()
        best = min(best, time.process_time() - start)
    return max(best, 1e-6)


def _probe(problem):
    """Design-row CPU seconds per structure as ``(fixed, per sparse point)``, per flop of the QR update, and rows
    per structure.

    The rows of a few structures are timed at the two smallest ladder counts: the descriptors and their
    gradients cost the same at any count, so a cost proportional to the count alone overestimated the larger
    stages (2x on rMD17 ethanol).
    """
    n_probe = min(16, len(problem.fit_atoms))  # enough structures that the per-call overhead is small
    structures = list(range(n_probe))
    times = []
    for counts in problem.ladder[:2]:
        builder = problem.builder(problem.fitted_terms(counts), whitened=True)
        rows_per_structure = builder.rows(problem.fit_atoms, structures, problem.fit_labels)[0].shape[0] / n_probe
        seconds = _best_time(lambda rows=builder.rows: rows(problem.fit_atoms, structures, problem.fit_labels))
        times.append((sum(counts), seconds / n_probe))
    (m0, t0), (m1, t1) = times[0], times[-1]
    per_point = (t1 - t0) / (m1 - m0) if m1 > m0 and t1 > t0 else t0 / max(m0, 1)
    fixed = max(t0 - per_point * m0, 0.0)
    m = 512  # large enough for BLAS to run near the speed of the stages' updates
    rng = np.random.default_rng(0)
    triangle, block = np.triu(rng.random((m, m))) + m * np.eye(m), rng.random((2 * m, m))
    flop_seconds = _best_time(lambda: QRAccumulator(triangle).add(block, block[:, 0])) / (2.0 * 2 * m * m * m)
    return (fixed, per_point), flop_seconds, rows_per_structure


def plan_auto(problem, kernels_count=1):
    """The stages the choice may run, each with its estimated CPU seconds and memory (bytes).

    Returns
    -------
    dict
        ``"stages"``: list of dicts (``"n_sparse_total"``, ``"seconds"``,
        ``"bytes"``, ``"candidates"``), ``"n_fits"`` (candidate solutions),
        ``"seconds"`` and ``"bytes"`` (all stages: the most the choice can
        cost), ``"budget_seconds"``, ``"first_stage_seconds"``.
    """
    auto = problem.auto
    row_seconds, flop_seconds, rows_per_structure = _probe(problem)
    n_sigma = len(auto.force_sigma_factors) * len(auto.energy_sigma_factors)
    n_fit, n_val = len(problem.fit_atoms), len(problem.val_atoms)
    fit_rows, val_rows = rows_per_structure * n_fit, rows_per_structure * n_val
    stages, previous = [], 0
    for i, top in enumerate(problem.stage_tops()):
        m = sum(problem.ladder[top])
        n_steps = top + 1 - previous
        previous = top + 1
        seconds = ((row_seconds[0] + row_seconds[1] * m) * (n_fit + n_val)
                   + flop_seconds * (2.0 * (fit_rows + val_rows) * m * m
                                     + len(auto.force_sigma_factors) * 2.0 * m**3
                                     + n_sigma * (2.0 * n_fit * m * m + 2.0 * val_rows * m * n_steps)))
        if i == 0:
            seconds *= kernels_count
        square = 8.0 * (m + 1) ** 2
        block = 8.0 * m * min(fit_rows, max(1.0, problem.block_bytes / (8.0 * m)))
        # L, the fitting part's force factor, one combined factor and its copy in the QR, the validation
        # rows (as rows or a factor), the energy rows, one block, the coefficients
        val_bytes = min(8.0 * val_rows * (m + 1), square)
        nbytes = 4 * square + val_bytes + 8.0 * rows_per_structure * n_fit / 3 * (m + 1) / 10 + block \
            + 8.0 * m * n_sigma * n_steps
        stages.append({"n_sparse_total": int(m), "seconds": float(seconds), "bytes": float(nbytes),
                       "candidates": int(n_sigma * n_steps * (kernels_count if i == 0 else 1))})
    budget = None if auto.budget_minutes is None else 60.0 * float(auto.budget_minutes)
    return {"stages": stages, "n_fits": int(sum(s["candidates"] for s in stages)),
            "seconds": float(sum(s["seconds"] for s in stages)), "bytes": float(max(s["bytes"] for s in stages)),
            "budget_seconds": budget, "first_stage_seconds": stages[0]["seconds"]}


def affordable_stages(plan, memory_budget, in_use):
    """How many stages fit the time and memory budgets; raises if not even the first does."""
    spent, n = plan.get("setup_seconds", 0.0), 0
    for stage in plan["stages"]:
        over_time = plan["budget_seconds"] is not None and spent + stage["seconds"] > plan["budget_seconds"]
        over_memory = memory_budget is not None and in_use + stage["bytes"] > memory_budget
        if over_time or over_memory:
            if n == 0:
                first = plan["stages"][0]
                if over_time:
                    raise ValueError(
                        f"`budget_minutes` (--budget-minutes) = {plan['budget_seconds'] / 60:.3g} cannot be met: "
                        f"the first stage ({first['n_sparse_total']} sparse points, {first['candidates']} candidate "
                        f"fits) needs about {first['seconds'] / 60:.2f} CPU minutes after "
                        f"{plan.get('setup_seconds', 0.0) / 60:.2f} spent on the descriptors and sparse points; give "
                        f"a larger budget or a shorter `sparse_ladder`")
                raise ValueError(
                    f"`max_memory` cannot hold the first stage of the auto choice ({first['n_sparse_total']} sparse "
                    f"points): it needs about {(in_use + first['bytes']) / 2**30:.2f} GiB")
            break
        spent += stage["seconds"]
        n += 1
    return n


def describe_plan(plan, n_affordable):
    """The plan in words, printed before any fit."""
    lines = [f"auto: up to {len(plan['stages'])} stage(s), {plan['n_fits']} candidate fits, about "
             f"{plan['seconds'] / 60:.1f} CPU minutes and {plan['bytes'] / 2**30:.2f} GiB at most "
             f"(estimated from a probe; {plan.get('setup_seconds', 0.0) / 60:.1f} min spent on descriptors and "
             f"ordering the sparse points)" + ("" if plan["budget_seconds"] is None else
                                               f"; budget {plan['budget_seconds'] / 60:.1f} CPU minutes")]
    for i, stage in enumerate(plan["stages"]):
        note = "" if i < n_affordable else "  (over budget: not run)"
        lines.append(f"  stage {i + 1}: {stage['n_sparse_total']:>6} sparse points, {stage['candidates']:>3} "
                     f"candidates, ~{stage['seconds'] / 60:.1f} min, ~{stage['bytes'] / 2**30:.2f} GiB{note}")
    return "\n".join(lines)
