"""Kill test of ``kernelpot md --output``: SIGKILLed at random moments, run again, compared (issue 18).

The resumable run (:class:`kernelpot.potential.dynamics.ResumableMD`) appends a frame every ``--interval``
steps and keeps the thermostat's random state beside the trajectory; the same command continues a killed run
from its last complete frame. Single-threaded, the resumed trajectory must equal an uninterrupted run's frame
for frame (positions, momenta, energies), with no torn frame and no temporary file left behind.
"""

import json
import random

import numpy as np
import pytest
from ase.io import read
from test_kill import _fit_args, _kill_repeatedly, _run, _temporaries, data  # noqa: F401 (data: a fixture)

from kernelpot.potential.dynamics import ResumableMD


def _md_args(model, output):
    return ["md", model, "train.extxyz", "--thermostat", "langevin", "--steps", "200", "--interval", "10",
            "--output", output, "--seed", "5", "--quiet"]


@pytest.mark.parametrize("seed, kills", [(0, 2), pytest.param(1, 5, marks=pytest.mark.slow)])
def test_md_killed_and_resumed(data, tmp_path, seed, kills):  # noqa: F811 (the imported fixture)
    model = tmp_path / "m.kpot"
    _run(_fit_args(model), data)
    reference = _run(_md_args(model, tmp_path / "a.extxyz"), data)
    output = tmp_path / "b.extxyz"
    rng = random.Random(seed)
    assert _kill_repeatedly(_md_args(model, output), data, lambda: output.exists, rng, reference.seconds / 2,
                            kills) >= 1
    _run(_md_args(model, output), data)
    a, b = read(tmp_path / "a.extxyz", ":"), read(output, ":")
    assert len(a) == len(b) == 21
    for x, y in zip(a, b):
        assert x.info["step"] == y.info["step"]
        np.testing.assert_array_equal(x.positions, y.positions)
        np.testing.assert_array_equal(x.get_momenta(), y.get_momenta())
        assert x.get_potential_energy() == y.get_potential_energy()
    # The frames keep 8 decimals; the states keep the last frame's exact floats: bit for bit.
    exact_a, exact_b = (json.loads(ResumableMD.state_path_of(path).read_text())["exact"]
                        for path in (tmp_path / "a.extxyz", output))
    for name in ("positions", "momenta", "cell"):
        np.testing.assert_array_equal(exact_b[name], exact_a[name])
    assert _temporaries(tmp_path) == []
