"""VarianceReduction(quantity="forces"): block Woodbury updates equal a model that really saw the labels."""

import numpy as np
import pytest
from ase.calculators.emt import EMT
from test_active import _cu, _fit_args, _labelled, _terms

from kernelpot.active.oracles import label
from kernelpot.active.strategies import VarianceReduction
from kernelpot.models.gap import IncrementalSparseGPR


@pytest.fixture(scope="module")
def setup():
    data = _labelled([_cu(s) for s in range(5)])
    model = IncrementalSparseGPR(_terms(), default_sigma=(0.002, 0.05, 0.05)).fit(data[:4], **_fit_args(data[:4]))
    candidates = [_cu(500 + s, amp=0.1) for s in range(4)]
    return data, model, candidates


def _summed_force_variance(model, candidates):
    return float((model.predict(candidates, properties=("forces",), return_std=True)["forces_std"] ** 2).sum())


def test_force_score_is_the_drop_of_the_summed_force_variance(setup):
    # All candidate force components are the integration set (max_rows large): the score of c must be
    # the drop of sum(forces_std²) (DTC; its label-independent part cancels) once c's energy and forces are fitted.
    data, model, candidates = setup
    strategy = VarianceReduction(quantity="forces", max_rows=10_000).prepare(model, data[:4])
    scores = strategy.score(candidates)
    before = _summed_force_variance(model, candidates)
    for chosen in (0, 3):
        refit = IncrementalSparseGPR.from_model(model)
        labelled = label(candidates[chosen], EMT())[0]
        refit.partial_fit([labelled], **_fit_args([labelled]))
        drop = before - _summed_force_variance(refit, candidates)
        assert scores[chosen] == pytest.approx(drop, rel=1e-6)
    assert "eV²/Å²" in strategy.score_units


def test_greedy_batch_equals_sequential_refits(setup):
    # The second pick of a batch must be the best candidate of a model refitted with the first pick.
    data, model, candidates = setup
    strategy = VarianceReduction(quantity="forces", max_rows=10_000).prepare(model, data[:4])
    picks = strategy.select(candidates, strategy.score(candidates), 2, min_distance=0.0)
    assert picks[0] == int(np.argmax(strategy.score(candidates)))
    refit = IncrementalSparseGPR.from_model(model)
    labelled = label(candidates[picks[0]], EMT())[0]
    refit.partial_fit([labelled], **_fit_args([labelled]))
    again = VarianceReduction(quantity="forces", max_rows=10_000).prepare(refit, data[:4]).score(candidates)
    again[picks[0]] = -np.inf
    assert picks[1] == int(np.argmax(again))


def test_integration_rows_are_subsampled(setup):
    data, model, candidates = setup
    strategy = VarianceReduction(quantity="forces", max_rows=5, random_state=0).prepare(model, data[:4])
    _, blocks, Vi, _ = strategy._force_system(candidates)
    assert Vi.shape[1] == 5 and len(blocks) == 4 and all(len(b) == 1 + 3 * len(candidates[0]) for b in blocks)


@pytest.mark.parametrize("kwargs, match", [
    ({"quantity": "stress"}, r"`quantity` must be one of \['energy', 'forces'\]; got 'stress'"),
    ({"quantity": "forces", "max_rows": 0}, r"`max_rows` must be an integer >= 1; got 0"),
    ({"quantity": "forces", "max_rows": 2.5}, r"`max_rows` must be an integer >= 1; got 2.5"),
])
def test_variance_reduction_validation(setup, kwargs, match):
    data, model, candidates = setup
    strategy = VarianceReduction(**kwargs).prepare(model, data[:4])
    with pytest.raises(ValueError, match=match):
        strategy.score(candidates)
