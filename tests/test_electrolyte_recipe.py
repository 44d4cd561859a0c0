"""The electrolyte example's GAP recipe must learn NaCl-in-water forces from a few frames (issue 16).

Session 2's recipe (one SOAP term, 4.5 Å, alone) ended its learning curves *above* the error of predicting zero
forces: it cannot represent water's stiff short-range forces (training RMSE 282 meV/Å with every environment a
sparse point). No test fitted the recipe to real water, so the curves were the first to show it. Here: revPBE0-D3
frames bundled with the package, three to train, two held out.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "electrolyte"))

from common import force_errors, gap_template  # noqa: E402


@pytest.fixture(scope="module")
def frames(bundled_data):
    from kernelpot.structures import read_runner

    return read_runner(bundled_data / "nacl_water" / "revPBE0-D3_gen1_subset.data")


def test_recipe_learns_nacl_water_forces(frames):
    train, test = [frames[i] for i in (1, 5, 8)], [frames[i] for i in (0, 9)]
    model = gap_template(n_sparse=500).fit(train, energies=[a.get_potential_energy() for a in train],
                                           forces=[a.get_forces() for a in train])
    rms_force = float(np.sqrt(np.mean(np.concatenate([a.get_forces() for a in test]) ** 2)))
    errors = force_errors(model, test)
    # Measured: 0.2-0.25 of the RMS force with this recipe; the session-2 recipe gave 0.75 on revPBE0 labels
    # (0.78 on xTB labels): worse than F = 0 once the test set is larger. 0.4 separates them with room.
    assert errors["forces_rmse"] < 0.4 * rms_force, (errors, rms_force)
    for species in ("H", "O", "Na", "Cl"):
        assert errors[f"forces_rmse_{species}"] < 0.8 * rms_force, (species, errors)


def test_one_e0_for_mixed_compositions_warns(frames):
    from kernelpot.models.gap.labels import CompositionWarning, Labels, resolve_e0

    def labels(chosen):
        n = len(chosen)
        return Labels([a.get_potential_energy() for a in chosen], [None] * n, [None] * n, ["default"] * n)

    mixed = [frames[i] for i in (1, 5, 8)]  # 8, 3 and 1 NaCl
    with pytest.warns(CompositionWarning, match=r"e0='average' .* differ in composition.* e0='composition'"):
        resolve_e0("average", mixed, labels(mixed))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_e0("composition", mixed, labels(mixed))
        same = [frames[i] for i in (8, 9)]  # one composition: one e0 is as good as several
        resolve_e0("average", same, labels(same))
