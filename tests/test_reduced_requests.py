"""Every place a request is cut to what the data allow says so: parameter, requested and granted value, why."""

import re
import warnings

import numpy as np
import pytest
from ase.build import bulk

from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.soap import SOAP
from kernelpot.exceptions import ReducedRequestWarning
from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.selection import CUR, FPS, SelectionWarning


def _crystals(n=6):
    """Perfect diamond cells, 2 atoms each: every atom of a cell has the same SOAP environment."""
    return [bulk("Si", "diamond", a=5.3 + 0.05 * k) for k in range(n)]


def _soap_term(n_sparse, method="cur"):
    return GAPTerm(SOAP(species=[14], r_cut=4.0, n_max=3, l_max=3, sigma=0.5, periodic=True),
                   NormalizedDotProductCovariance(2), delta=0.2, n_sparse=n_sparse, sparse_method=method)


def _fit(terms, structures):
    return SparseGPR(terms, e0=0.0).fit(structures, energies=[-10.0 - 0.1 * k for k in range(len(structures))])


@pytest.mark.parametrize("method", ["cur", "fps", "random"])
def test_sparse_gpr_says_when_there_are_fewer_distinct_environments_than_n_sparse(method):
    structures = _crystals(6)  # 12 atoms, 6 distinct environments (one per lattice constant)
    with pytest.warns(ReducedRequestWarning) as record:
        model = _fit([_soap_term(50, method)], structures)
    assert model.terms_[0].n_sparse == 6
    (message,) = [str(w.message) for w in record if issubclass(w.category, ReducedRequestWarning)]
    assert message.startswith("terms[0] (SOAP): n_sparse=50 requested, 6 used: ")
    assert "only 6 distinct descriptor rows among 12" in message


def test_a_request_the_data_can_honour_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReducedRequestWarning)
        model = _fit([_soap_term(6)], _crystals(6))
    assert model.terms_[0].n_sparse == 6


def test_uniform_grid_over_a_single_distance_says_why():
    # One pair distance in every structure: the 2-body "uniform" grid has one point.
    dimers = [bulk("Si", "sc", a=3.0) for _ in range(3)]  # simple cubic: all 6 neighbours at 3.0 Å
    term = GAPTerm(Distance2B(cutoff=3.5, cutoff_transition_width=0.5), GaussianCovariance(0.5), delta=1.0,
                   n_sparse=10, sparse_method="uniform")
    with pytest.warns(ReducedRequestWarning, match=r"terms\[0\] \(Distance2B\): n_sparse=10 requested, 1 used: "
                                                   r"all \d+ training rows have the same value"):
        _fit([term], dimers)


def test_selection_warnings_are_reduced_request_warnings():
    X = np.vstack([np.eye(3), np.eye(3)])  # 3 distinct rows, each twice
    for selector in (FPS(5), CUR(5)):
        with pytest.warns(SelectionWarning, match=r"n_to_select=5 requested, \d made"):
            selector.fit(X)
        assert selector.n_selected_ < 5 and selector.stop_reason_  # the reason stays on the fitted selector
        assert FPS(2).fit(X).stop_reason_ is None
    assert issubclass(SelectionWarning, ReducedRequestWarning)


def test_density_model_says_when_a_species_has_fewer_atoms_than_n_sparse():
    from kernelpot.datasets import load_water_density
    from kernelpot.models.density import DensityModel

    train = load_water_density()[0].subset(range(6))  # 6 water monomers: 6 O, 12 H
    with pytest.warns(ReducedRequestWarning) as record:
        DensityModel(n_sparse=8, alphas=[1e-6], validation_fraction=0.0).fit(train)
    messages = [str(w.message) for w in record if issubclass(w.category, ReducedRequestWarning)]
    assert messages == [("DensityModel: n_sparse=8 requested, 6 used: the training set has only 6 atoms of Z=8, "
                         "all of which are sparse environments")]


def test_pool_explorer_says_when_the_pool_is_smaller_than_n_initial():
    from kernelpot.active.explorers import PoolExplorer

    pool = PoolExplorer(_crystals(3))
    with pytest.warns(ReducedRequestWarning, match=re.escape("PoolExplorer: n_initial=5 requested, 3 used: "
                                                             "the pool has only 3 unlabelled structures")):
        keys, structures = pool.initial(5, np.random.default_rng(0))
    assert len(keys) == len(structures) == 3


def test_the_command_line_says_a_reduced_request_in_one_line(tmp_path, capsys):
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from kernelpot.cli import main

    structures = _crystals(6)
    for k, atoms in enumerate(structures):
        atoms.calc = SinglePointCalculator(atoms, energy=-10.0 - 0.1 * k)
    write(tmp_path / "crystals.extxyz", structures)
    gap = ("{soap l_max=3 n_max=3 atom_sigma=0.5 cutoff=4.0 delta=0.2 covariance_type=dot_product zeta=2 "
           "n_sparse=50 sparse_method=cur_points}")
    assert main(["fit", str(tmp_path / "crystals.extxyz"), "-o", str(tmp_path / "m.kpot"), "--gap", gap,
                 "--quiet", "--e0", "0", "--forces-key", "none"]) == 0  # energies only, said explicitly
    warned = [line for line in capsys.readouterr().err.splitlines() if "n_sparse" in line]
    assert warned == ["kernelpot fit: warning: terms[0] (SOAP): n_sparse=50 requested, 6 used: the training "
                      "structures have only 6 distinct descriptor rows among 12 (symmetry-equivalent environments "
                      "count once); add structures or lower n_sparse"]


def test_a_strategy_says_when_near_duplicates_shrink_the_batch():
    from kernelpot.active.strategies import make_strategy

    structures = _crystals(6)
    model = _fit([_soap_term(6)], structures)
    twins = [structures[0].copy() for _ in range(4)] + [structures[3].copy()]  # two distinct candidates
    strategy = make_strategy("variance").prepare(model, [])
    with pytest.warns(ReducedRequestWarning, match=r"variance strategy: batch_size=3 requested, 2 used: the other 3 "
                                                   r"candidates are near-duplicates of a pick"):
        picks = strategy.select(twins, strategy.score(twins), 3, min_distance=1e-6)
    assert sorted(picks)[-1] == 4 and len(picks) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReducedRequestWarning)
        assert len(strategy.select(twins, strategy.score(twins), 2, min_distance=1e-6)) == 2
