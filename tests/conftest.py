"""Shared test fixtures: locations of the bundled and the shared real datasets."""

import importlib.util
import os
from datetime import timedelta
from pathlib import Path

import ase
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_DATA = REPO_ROOT / "data"
# The published datasets beside the repository (../shared/data), or wherever KERNELPOT_SHARED_DATA points
# (e.g. from a git worktree).
SHARED_DATA = Path(os.environ.get("KERNELPOT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


# What the `analysis` extra adds over the runtime requirements (pyproject.toml): ASE's partial RDFs as LAMMPS
# normalises them (ase >= 3.27) and kinisi's diffusion. At the declared minimum versions these tests skip, saying why.
# ANALYSIS_EXTRA_MISSING: why not (the first missing part), or None when the extra is installed.
_ASE_VERSION = tuple(int(part) for part in ase.__version__.split(".")[:2])
_ASE_RDF_MISSING = (None if _ASE_VERSION >= (3, 27) else
                    f"needs ase >= 3.27 (the analysis extra) for partial RDFs; found {ase.__version__}")
_KINISI_MISSING = (None if importlib.util.find_spec("kinisi") else
                   "needs kinisi (the analysis extra: pip install 'kernelpot[analysis]')")
ANALYSIS_EXTRA_MISSING = _ASE_RDF_MISSING or _KINISI_MISSING
requires_ase_rdf = pytest.mark.skipif(_ASE_RDF_MISSING is not None, reason=str(_ASE_RDF_MISSING))
requires_kinisi = pytest.mark.skipif(_KINISI_MISSING is not None, reason=str(_KINISI_MISSING))
requires_ase_fd = pytest.mark.skipif(importlib.util.find_spec("ase.calculators.fd") is None, reason=(
    f"needs ase >= 3.24 for ase.calculators.fd; found {ase.__version__}"))


def ase_numerical_stress(atoms, eps):
    """ASE's own finite-difference stress of ``atoms.calc``: ``ase.calculators.fd`` (ase >= 3.24), else the
    ``Calculator`` method it replaced, bypassing any override by the calculator under test."""
    try:
        from ase.calculators.fd import calculate_numerical_stress
    except ImportError:
        from ase.calculators.calculator import Calculator

        return Calculator.calculate_numerical_stress(atoms.calc, atoms, d=eps)
    return calculate_numerical_stress(atoms, eps=eps)

# Property-based tests (tests/test_fuzz_*.py). "ci", the default: a fixed, bounded set of examples (derandomized, so
# every run draws the same ones), no timing limits (the watchdog of tests/_fuzz.py stops a hang). "long"
# (HYPOTHESIS_PROFILE=long): many more random examples and a 60 s deadline per example, for local runs.
_FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=25, derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=_FUZZ_HEALTH)
settings.register_profile("long", max_examples=400, deadline=timedelta(seconds=60), print_blob=True,
                          suppress_health_check=_FUZZ_HEALTH)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data (published datasets too large to bundle).

    When it is absent the test is skipped on a developer's machine, with the
    reason shown by ``pytest -rs``, and fails where the environment variable
    ``CI`` is set: a CI run must not pass by skipping.
    """
    if not SHARED_DATA.is_dir():
        message = (f"shared datasets not found at {SHARED_DATA} (set KERNELPOT_SHARED_DATA to their folder; "
                   "see ../shared/data/PROVENANCE.md)")
        if os.environ.get("CI"):
            pytest.fail(message + "; CI is set, so this is an error rather than a skip")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def bundled_data() -> Path:
    """Path of the small real datasets shipped in data/."""
    return BUNDLED_DATA


def rmd17(name: str) -> dict:
    """The bundled frames of an rMD17 split file (``data/rmd17_subset``), indexed by their original frame.

    ``name`` is the shared file's stem, e.g. ``"rmd17_aspirin_train_01"``. Per-frame arrays have the
    1000 frames of the original file; frames not bundled are NaN, so a test that reads one fails loudly.
    """
    data = np.load(BUNDLED_DATA / "rmd17_subset" / f"{name}.npz")
    frames = data["frames"]
    out = {}
    for key in data.files:
        value = data[key]
        if key != "frames" and value.ndim and len(value) == len(frames) and key != "nuclear_charges":
            full = np.full((1000,) + value.shape[1:], np.nan)
            full[frames] = value
            value = full
        out[key] = value
    return out


@pytest.fixture(scope="session")
def qm7_molecules() -> dict:
    """The bundled QM7 molecules (``data/qm7_subset``) by their index in the 7101-molecule file of qml."""
    import ase.io

    molecules = ase.io.read(BUNDLED_DATA / "qm7_subset" / "qm7_pbe0_subset.extxyz.gz", index=":")
    return {int(m.info["qm7_index"]): m for m in molecules}


def qm7(molecules: dict, indices) -> list:
    """``[molecules[i] for i in indices]`` with a clear error for a molecule that is not bundled."""
    missing = sorted(set(indices) - set(molecules))
    if missing:
        raise KeyError(f"QM7 molecules {missing[:10]} are not in data/qm7_subset (see data/make_test_subsets.py)")
    return [molecules[i].copy() for i in indices]
