"""Shared test fixtures: locations of the bundled and the shared real datasets."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_DATA = REPO_ROOT / "data"
# The published datasets beside the repository (../shared/data), or wherever KERNELPOT_SHARED_DATA points
# (e.g. from a git worktree).
SHARED_DATA = Path(os.environ.get("KERNELPOT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data (published datasets); skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def bundled_data() -> Path:
    """Path of the small real datasets shipped in data/."""
    return BUNDLED_DATA
