"""``max_memory`` is a promise: the measured peak resident memory (psutil) of a fit stays under it (issue 18).

Each fit runs in a fresh process whose resident set size the test samples every 5 ms. The budget is set a
given amount above what the process holds before the fit (imports and data), so the test means the same on
every machine; the small budget forces small blocks. The ``slow`` test is the case that used to exceed its
budget by 3-10 %: mlearn Si with the default recipe at 600 MB and 1 GB.
"""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}

SCRIPT = textwrap.dedent("""
    import json, sys
    from ase.io import read
    from kernelpot.descriptors.distance_2b import Distance2B
    from kernelpot.descriptors.soap import SOAP
    from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
    from kernelpot.models.gap import GAPTerm, SparseGPR
    from kernelpot.models.gap.budget import warm_up
    from kernelpot.potential.recipe import DEFAULT_GAP, terms_from_gap_string
    from kernelpot.utils.memory import resident_bytes

    path, n_structures, budget, recipe = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    frames = read(path, ":")[:n_structures]
    if recipe == "default":
        terms = terms_from_gap_string(DEFAULT_GAP, [14], periodic=True)
    else:
        terms = [GAPTerm(Distance2B(5.0, 1.0), GaussianCovariance(1.0), delta=2.0, n_sparse=20,
                         sparse_method="uniform"),
                 GAPTerm(SOAP([14], r_cut=4.5, n_max=6, l_max=4, sigma=0.5, periodic=True,
                              cutoff_transition_width=1.0, rbf="gap"),
                         NormalizedDotProductCovariance(4), delta=0.2, n_sparse=900)]
    # "+70": 70 MiB above what this process holds once the fit's libraries are loaded (the fit's own warm-up,
    # run here first, so that the margin means the same however lazily kernelpot imports them); else bytes
    if budget.startswith("+"):
        warm_up(terms, frames)
        budget = int(resident_bytes() + float(budget) * 2**20)
    else:
        budget = int(budget)
    print(json.dumps({"budget": budget}), flush=True)
    model = SparseGPR(terms, max_memory=f"{budget}b", random_state=0).fit(
        frames, energies=[a.get_potential_energy() for a in frames], forces=[a.get_forces() for a in frames])
    estimate = {k: float(v) for k, v in model.memory_estimate_.items() if not isinstance(v, dict)}
    print(json.dumps({"estimate": estimate}), flush=True)
""")


def _peak_rss(argv):
    """Run the fit script; return (budget, estimate, peak RSS in bytes)."""
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, *map(str, argv)], env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    watched, peak, done = psutil.Process(process.pid), [0], threading.Event()

    def sample():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], watched.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = process.communicate(timeout=3600)
    done.set()
    thread.join()
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return lines[0]["budget"], lines[1]["estimate"], peak[0]


@pytest.mark.parametrize("above_mib", [140, pytest.param(180, marks=pytest.mark.slow)])
def test_peak_resident_memory_stays_under_the_budget(bundled_data, above_mib):
    budget, estimate, peak = _peak_rss([bundled_data / "mlearn_si" / "mlearn_Si_training.extxyz", 160,
                                        f"+{above_mib}", "small"])
    print(f"budget {budget / 1e6:.0f} MB, peak RSS {peak / 1e6:.0f} MB, full K_NM {estimate['full_K_NM'] / 1e6:.0f} MB, "
          f"in use before the fit {estimate['baseline'] / 1e6:.0f} MB")
    assert estimate["full_K_NM"] > budget - estimate["baseline"]  # the whole design matrix would not fit
    assert peak <= budget, f"peak {peak / 1e6:.0f} MB over the budget of {budget / 1e6:.0f} MB"


@pytest.mark.slow
@pytest.mark.parametrize("budget_mb", [600, 1000])
def test_mlearn_si_default_recipe_within_budget(bundled_data, budget_mb):
    """The case reported over budget (600 MB -> 650 MB peak, 1 GB -> 1.10 GB): all 214 structures."""
    budget, _, peak = _peak_rss([bundled_data / "mlearn_si" / "mlearn_Si_training.extxyz", 1000,
                                 budget_mb * 10**6, "default"])
    assert peak <= budget, f"peak {peak / 1e6:.0f} MB over the budget of {budget / 1e6:.0f} MB"
