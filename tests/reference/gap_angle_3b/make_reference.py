"""Frozen gap_fit reference for kernelpot's SparseGPR with an angle_3b term.

The same fit and evaluation as ../gap_distance_2b/make_reference.py (every 10th mlearn Si training structure,
energies and forces; the first 10 test structures), with one 3-body term: GAP's sparse points and predictions
go to ``reference.npz``; the test refits kernelpot with the same sparse points and ``delta = 2 * delta_GAP``
(GAP keeps both orders of a triplet's two neighbours, kernelpot one). The length scale (0.3) and 15 sparse
points keep the sparse covariance well conditioned, so that the comparison tests the model, not the jitter.

Run from this directory: ``python make_reference.py`` (needs quippy-ase and gap_fit on PATH, and
../../../../shared/data).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gap_distance_2b"))
from make_reference import main  # noqa: E402

GAP = ("angle_3b cutoff=3.0 cutoff_transition_width=0.5 covariance_type=ard_se delta=0.3 theta_uniform=0.3 "
       "sparse_method=random n_sparse=15 Z=14 Z1=14 Z2=14")

if __name__ == "__main__":
    main(GAP, n_features=3, out=Path(__file__).with_name("reference.npz"))
