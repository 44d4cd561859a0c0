"""Held-out water clusters of examples/density/make_dataset.py never share liquid frames with training clusters.

The cluster dipole target is judged on held-out clusters; a training cluster
cut from the same (or a neighbouring) liquid frame would hold the same
molecules. These checks rebuild every batch from its seed (no PySCF needed).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "density" / "make_dataset.py"


@pytest.fixture(scope="module")
def make_dataset(shared_data):
    # the example reads the TENSOAP liquid-water frames of the shared data (3.5 MB, not bundled)
    assert (shared_data / "tensors" / "tensoap" / "water_bulk_coords_1000.xyz").is_file()
    spec = importlib.util.spec_from_file_location("make_dataset", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def held_out_frames(make_dataset):
    md = make_dataset
    frames = [a.info["frame"] for a in md.clusters((4, 5, 6, 7, 8), seed=2)]
    frames += [a.info["frame"] for a in md.extra_test_clusters((6, 7, 8, 6, 7, 8), 4)]
    frames += [a.info["frame"] for a in md.extra_test_clusters((8,) * 6, 13)]
    return frames


def test_test_frame_list_matches_the_held_out_batches(make_dataset, held_out_frames):
    assert tuple(held_out_frames) == make_dataset.TEST_CLUSTER_FRAMES


def test_training_batches_stay_away_from_held_out_frames(make_dataset, held_out_frames):
    md = make_dataset
    for seed, sizes in md.TRAIN_BATCHES.items():
        batch = md.clusters(sizes, seed, md.near_test_frames())
        assert [len(a) // 3 for a in batch] == list(sizes)
        closest = min(abs(a.info["frame"] - f) for a in batch for f in held_out_frames)
        assert closest > 5, f"training batch of seed {seed} is {closest} frames from a held-out cluster"
