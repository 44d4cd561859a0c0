"""SOAP with GAP's smooth cutoff (``cutoff_transition_width``) and ``central_weight``."""

from __future__ import annotations

import numpy as np
import pytest
from _finite_differences import strain_derivative
from ase import Atoms
from ase.build import bulk, molecule
from conftest import rmd17
from sklearn.base import clone
from test_soap import check_gradients, relative_error, water_box

from kernelpot.descriptors.soap import SOAP

SMALL = dict(r_cut=4.0, n_max=3, l_max=3, sigma=0.5)
WIDTH = "`cutoff_transition_width`"


def f_cut(r, r_cut, width):
    """GAP's coordination_function, written independently of the kernel."""
    if r <= r_cut - width:
        return 1.0
    if r >= r_cut:
        return 0.0
    return 0.5 * (1.0 + np.cos(np.pi * (r - r_cut + width) / width))


def dimer(distance, symbols="HO"):
    return Atoms(symbols, positions=[[0, 0, 0], [0.3 * distance, -0.4 * distance, np.sqrt(0.75) * distance]])


def species_pair_blocks(n_max, l_max):
    """Feature slices (HH, HO, OO) for species [H, O], dscribe's order."""
    tri, full = n_max * (n_max + 1) // 2 * (l_max + 1), n_max * n_max * (l_max + 1)
    return slice(0, tri), slice(tri, tri + full), slice(tri + full, 2 * tri + full)


# ---------------------------------------------------------------------------- weighting
@pytest.mark.parametrize("distance", [2.2, 2.9, 3.5, 3.95])
def test_neighbour_weight_is_the_gap_cosine_cutoff(distance):
    """Centre H, neighbour O: the H-O block scales with f_c(r), the O-O block with f_c(r)²."""
    r_cut, width = 4.0, 1.5
    gap = SOAP(["H", "O"], cutoff_transition_width=width, **SMALL).transform(dimer(distance))
    plain = SOAP(["H", "O"], **SMALL).transform(dimer(distance))
    weight = f_cut(distance, r_cut, width)
    hh, ho, oo = species_pair_blocks(SMALL["n_max"], SMALL["l_max"])
    np.testing.assert_allclose(gap[0, hh], plain[0, hh], rtol=1e-13, atol=0)  # the centre alone
    np.testing.assert_allclose(gap[0, ho], weight * plain[0, ho], rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(gap[0, oo], weight**2 * plain[0, oo], rtol=1e-12, atol=1e-16)


def test_atoms_beyond_r_cut_are_excluded():
    """A neighbour just beyond r_cut is invisible (dscribe's padded cutoff still sees it)."""
    isolated = SOAP(["H", "O"], **SMALL).transform(Atoms("H"))
    for distance in (4.0, 4.01, 4.5):
        gap = SOAP(["H", "O"], cutoff_transition_width=0.5, **SMALL).transform(dimer(distance))
        np.testing.assert_array_equal(gap[0], isolated[0])
    dscribe_like = SOAP(["H", "O"], **SMALL).transform(dimer(4.01))
    assert relative_error(dscribe_like[0], isolated[0]) > 1e-6


def test_features_and_gradients_vanish_smoothly_at_r_cut():
    """Approaching r_cut the neighbour's effect goes to zero like (r_cut - r)², its gradient like (r_cut - r)."""
    descriptor = SOAP(["H", "O"], cutoff_transition_width=1.0, **SMALL)
    isolated = descriptor.transform(Atoms("H"))[0]
    gaps = [1e-2, 1e-3]
    changes, slopes = [], []
    for gap in gaps:
        X, G = descriptor.transform(dimer(4.0 - gap), gradients=True)
        changes.append(np.abs(X[0] - isolated).max())
        slopes.append(np.abs(G.values[G.center == 0]).max())
    assert changes[1] / changes[0] == pytest.approx(1e-2, rel=0.05)
    assert slopes[1] / slopes[0] == pytest.approx(1e-1, rel=0.05)


def test_without_atoms_in_the_transition_region_features_equal_dscribes():
    water = molecule("H2O")  # every distance < 1.6 Å, far inside r_cut - w and without padding atoms
    gap = SOAP(["H", "O"], cutoff_transition_width=2.0, **SMALL).transform(water)
    np.testing.assert_array_equal(gap, SOAP(["H", "O"], **SMALL).transform(water))


@pytest.mark.parametrize("weight", [0.0, 0.5, 2.0])
def test_central_weight_scales_the_centre_gaussian(weight):
    """Isolated atom: features ∝ weight²; dimer: the H-O block of the H centre ∝ weight (l = 0 only)."""
    hh, ho, oo = species_pair_blocks(SMALL["n_max"], SMALL["l_max"])
    for width in (None, 1.0):
        one = SOAP(["H", "O"], cutoff_transition_width=width, **SMALL)
        weighted = SOAP(["H", "O"], cutoff_transition_width=width, central_weight=weight, **SMALL)
        np.testing.assert_allclose(
            weighted.transform(Atoms("H")), weight**2 * one.transform(Atoms("H")), rtol=1e-13, atol=0
        )
        X, X1 = weighted.transform(dimer(1.5)), one.transform(dimer(1.5))
        np.testing.assert_array_equal(X[0, oo], X1[0, oo])  # the O density has no centre Gaussian
        np.testing.assert_allclose(X[0, ho], weight * X1[0, ho], rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("rbf", ["gto", "polynomial"])
def test_gradients_match_finite_differences_for_a_molecule(rbf):
    data = rmd17("rmd17_aspirin_train_01")
    aspirin = Atoms(numbers=data["nuclear_charges"], positions=data["coords"][0])
    # r_cut 4 Å with a 2 Å taper: most pairs of aspirin lie in the transition region.
    descriptor = SOAP(["H", "C", "O"], rbf=rbf, cutoff_transition_width=2.0, central_weight=0.7, **SMALL)
    check_gradients(descriptor, aspirin)


def test_gradients_match_finite_differences_in_periodic_cells():
    silicon = bulk("Si", "diamond", a=5.43)
    silicon.rattle(0.05, seed=3)
    settings = dict(periodic=True, r_cut=4.5, n_max=4, l_max=4, sigma=0.6)
    check_gradients(SOAP(["Si"], cutoff_transition_width=1.0, **settings), silicon)
    water = water_box(8, seed=1)
    check_gradients(SOAP(["H", "O"], periodic=True, cutoff_transition_width=1.5, **SMALL), water, n_moved=4)


def test_gradient_vectors_give_the_strain_derivative():
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.rattle(0.05, seed=1)
    descriptor = SOAP(["Si"], periodic=True, cutoff_transition_width=1.2, r_cut=4.0, n_max=3, l_max=3, sigma=0.5)
    _, G = descriptor.transform(atoms, gradients=True)
    assert np.linalg.norm(G.vectors, axis=1).max() < 4.0  # no padding in GAP mode
    analytic = np.zeros((len(atoms), 3, 3, descriptor.n_features))
    np.add.at(analytic, G.center, np.einsum("pa,pbk->pabk", G.vectors, G.values))
    numerical = strain_derivative(descriptor.transform, atoms, 1e-5)
    assert relative_error(analytic.transpose(1, 2, 0, 3), numerical) <= 1e-6


# ---------------------------------------------------------------------------- parameters
def test_new_parameters_are_sklearn_parameters():
    descriptor = SOAP(["H", "O"], cutoff_transition_width=0.5, central_weight=0.0, **SMALL)
    copy = clone(descriptor)
    assert copy.get_params()["cutoff_transition_width"] == 0.5
    assert copy.get_params()["central_weight"] == 0.0
    assert SOAP(["H"], **SMALL).get_params()["cutoff_transition_width"] is None


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(cutoff_transition_width="1"), TypeError, rf"{WIDTH} must be None or a real number in Å; got '1'"),
        (dict(cutoff_transition_width=True), TypeError, rf"{WIDTH} must be None or a real number"),
        (dict(cutoff_transition_width=0.0), ValueError, rf"{WIDTH} must be > 0 Å and <= r_cut = 4.0 Å; got 0.0"),
        (dict(cutoff_transition_width=-0.5), ValueError, rf"{WIDTH} must be > 0 Å.*got -0.5"),
        (dict(cutoff_transition_width=4.5), ValueError, rf"{WIDTH} must be > 0 Å and <= r_cut = 4.0 Å; got 4.5"),
        (dict(cutoff_transition_width=float("nan")), ValueError, rf"{WIDTH} must be > 0 Å.*got nan"),
        (dict(central_weight="1"), TypeError, r"`central_weight` must be a real number; got '1'"),
        (dict(central_weight=-1.0), ValueError, r"`central_weight` must be finite and >= 0; got -1.0"),
        (dict(central_weight=float("inf")), ValueError, r"`central_weight` must be finite and >= 0; got inf"),
    ],
)
def test_invalid_gap_parameters_are_rejected(change, error, message):
    descriptor = SOAP(["H", "O"], **SMALL, **change)
    with pytest.raises(error, match=message):
        descriptor.transform(molecule("H2O"))


def test_full_width_taper_is_accepted():
    X = SOAP(["H", "O"], cutoff_transition_width=4.0, **SMALL).transform(molecule("H2O"))
    assert np.all(np.isfinite(X))
