"""Property-based tests of every descriptor: random cells, species, defects and extreme hyperparameters.

For each draw: the features (and gradients) are finite, or the call raises a documented ``ValueError`` or
``TypeError`` with a message; nothing hangs (watchdog); on valid draws (no defect, atoms at least 0.5 Å
apart, no pair at a hard cutoff) the analytic gradients equal central finite differences.
Profiles: tests/conftest.py ("ci" by default, ``HYPOTHESIS_PROFILE=long`` for more).
"""

import numpy as np
import pytest
from _fuzz import assert_finite, assert_gradients_match, min_distance, outcome, pair_distances, structures
from hypothesis import assume, given
from hypothesis import strategies as st

from kernelpot.descriptors.coulomb_matrix import CoulombMatrix
from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.fchl19 import FCHL19
from kernelpot.descriptors.lambda_soap import LambdaSOAP
from kernelpot.descriptors.lode import LODE
from kernelpot.descriptors.mbtr import MBTR
from kernelpot.descriptors.soap import SOAP

SPECIES = [1, 8, 14]
# Extreme values mixed with ordinary ones; some are invalid on purpose (the error path is part of the property).
CUTOFFS = st.sampled_from([-1.0, 0.0, 1e-3, 0.8, 1.5, 3.0, 5.0, float("nan"), float("inf")])
WIDTHS = st.sampled_from([0.05, 0.5, 1.0, 3.0, 1e-6, 100.0, -0.5, float("nan")])


def _clean(atoms, defect, hard_cutoffs=()):
    """A draw on which finite differences are meaningful."""
    if defect != "none" or min_distance(atoms) < 0.5:
        return False
    distances = pair_distances(atoms, max(hard_cutoffs, default=0.0) + 0.1) if hard_cutoffs else []
    return all(np.all(np.abs(np.asarray(distances) - c) > 0.02) for c in hard_cutoffs)


def _features_and_gradients(descriptor, atoms, gradients):
    def call():
        result = descriptor.transform(atoms, gradients=gradients)
        if gradients:
            assert_finite(result[0], result[1].values)
        else:
            assert_finite(result)
        return result

    return outcome(call)


@given(structures(species=SPECIES), CUTOFFS, st.integers(1, 3), st.integers(0, 3), WIDTHS,
       st.sampled_from(["gto", "polynomial", "gap"]), st.booleans(), st.sampled_from([None, 0.5, 1.0]),
       st.booleans())
def test_soap(drawn, r_cut, n_max, l_max, sigma, rbf, periodic, transition, gradients):
    atoms, defect = drawn
    width = None if transition is None or not np.isfinite(r_cut) or r_cut <= 0 else transition * r_cut
    soap = SOAP(SPECIES, r_cut=r_cut, n_max=n_max, l_max=l_max, sigma=sigma, rbf=rbf, periodic=periodic,
                cutoff_transition_width=width)
    result = _features_and_gradients(soap, atoms, gradients)
    if result is not None and gradients and n_max * (l_max + 1) <= 8 and len(atoms) <= 3:
        hard = [] if width is not None else [soap._search_cutoff()]
        if _clean(atoms, defect, hard) and sigma >= 0.3:
            assert_gradients_match(soap, atoms)


@given(structures(species=SPECIES), CUTOFFS, st.integers(1, 2), st.integers(0, 2), WIDTHS, st.integers(0, 4),
       st.booleans(), st.booleans(), st.booleans())
def test_lambda_soap(drawn, r_cut, n_max, l_max, sigma, lam, normalize, periodic, gradients):
    atoms, defect = drawn
    descriptor = LambdaSOAP(SPECIES, r_cut=r_cut, n_max=n_max, l_max=l_max, sigma=sigma, lambda_=lam,
                            normalize=normalize, periodic=periodic)
    result = _features_and_gradients(descriptor, atoms, gradients)
    if result is not None and gradients and not normalize and len(atoms) <= 3 and sigma >= 0.3:
        from kernelpot.descriptors._expansion import cutoff_padding

        if _clean(atoms, defect, [r_cut + cutoff_padding(sigma)]):
            assert_gradients_match(descriptor, atoms)


@given(structures(species=SPECIES), st.sampled_from([0.5, 2.0, 4.0, -1.0]), st.sampled_from([0.5, 2.0, 4.0]),
       st.integers(1, 4), st.integers(1, 4), st.integers(1, 2), st.sampled_from([1e-3, 0.32, 10.0, -1.0]),
       st.sampled_from([0.1, 2.7, 50.0]), st.booleans())
def test_fchl19(drawn, rcut, acut, n_rs2, n_rs3, n_fourier, eta2, eta3, gradients):
    atoms, defect = drawn
    descriptor = FCHL19(SPECIES, nRs2=n_rs2, nRs3=n_rs3, nFourier=n_fourier, eta2=eta2, eta3=eta3, rcut=rcut,
                        acut=acut)
    result = _features_and_gradients(descriptor, atoms, gradients)
    if result is not None and gradients and len(atoms) <= 3 and eta2 >= 0.3 and eta3 <= 10.0:
        if _clean(atoms, defect):
            assert_gradients_match(descriptor, atoms, rtol=1e-3)


@given(structures(species=SPECIES), CUTOFFS, st.sampled_from([0.1, 0.5, 1.0]),
       st.sampled_from([None, (1, 8), (8, 14), (1, 1)]), st.booleans())
def test_distance_2b(drawn, cutoff, width_fraction, pair, gradients):
    atoms, defect = drawn
    width = width_fraction * cutoff if np.isfinite(cutoff) and cutoff > 0 else 0.5
    z1, z2 = pair if pair is not None else (None, None)
    descriptor = Distance2B(cutoff=cutoff, cutoff_transition_width=width, Z1=z1, Z2=z2)
    result = _features_and_gradients(descriptor, atoms, gradients)
    if result is not None and gradients and _clean(atoms, defect, [cutoff]):
        assert_gradients_match(descriptor, atoms)


@given(structures(species=SPECIES),
       st.sampled_from(["distance", "inverse_distance", "angle", "cosine", "atomic_number"]),
       st.sampled_from([{"function": "exp", "scale": 0.5, "threshold": 1e-3},
                        {"function": "exp", "r_cut": 3.0, "threshold": 1e-2},
                        {"function": "inverse_square", "r_cut": 3.0},
                        {"function": "smooth_cutoff", "r_cut": 3.0},
                        {"function": "unity"}, None, {"function": "exp", "scale": -1.0, "threshold": 1e-3}]),
       st.sampled_from(["none", "l2", "n_atoms", "valle_oganov"]), st.booleans(),
       st.sampled_from([0.01, 0.1, 1.0, 0.0]))
def test_mbtr(drawn, geometry, weighting, normalization, periodic, sigma):
    atoms, _ = drawn
    descriptor = MBTR(geometry={"function": geometry}, grid={"min": 0.0, "max": 3.0, "n": 20, "sigma": sigma},
                      weighting=weighting, normalization=normalization, species=SPECIES, periodic=periodic)
    _features_and_gradients(descriptor, atoms, False)


@given(structures(species=SPECIES, kinds=("molecule", "bulk", "huge")), st.integers(1, 6),
       st.sampled_from(["sorted_l2", "eigenspectrum", "none", "random"]))
def test_coulomb_matrix(drawn, n_atoms_max, permutation):
    atoms, _ = drawn
    _features_and_gradients(CoulombMatrix(n_atoms_max=n_atoms_max, permutation=permutation), atoms, False)


@given(structures(species=SPECIES), st.sampled_from([-1.0, 0.0, 1.0, 3.0, 5.0, float("nan")]), st.integers(1, 3),
       st.integers(0, 2), st.sampled_from([0.3, 1.0, 2.0, 1e-6, -1.0, float("inf")]), st.booleans(),
       st.sampled_from([1e-6, 1e-3, 0.0, 2.0]), st.booleans(), st.booleans())
def test_lode(drawn, r_cut, n_max, l_max, smearing, periodic, tolerance, with_density, gradients):
    atoms, defect = drawn
    density = SOAP(SPECIES, r_cut=3.0, n_max=2, l_max=l_max, sigma=0.5, periodic=periodic) if with_density else None
    descriptor = LODE(SPECIES, r_cut=r_cut, n_max=n_max, l_max=l_max, smearing=smearing, periodic=periodic,
                      density=density, tolerance=tolerance)
    result = _features_and_gradients(descriptor, atoms, gradients)
    if result is not None and gradients and not with_density and len(atoms) <= 3 and smearing >= 0.3 \
            and tolerance <= 1e-6:
        if _clean(atoms, defect):
            assert_gradients_match(descriptor, atoms, rtol=1e-4)


# ----------------------------------------------------------------------------------- gradients on valid draws
# The tests above mostly meet invalid draws (that is their point); here every draw is valid, so each example
# checks the analytic gradients against finite differences: random cells (molecule, bulk, skewed, slab, wire),
# species and positions with atoms at least 0.7 Å apart, and a few hyperparameters per descriptor.
VALID_KINDS = ("molecule", "bulk", "skewed", "slab", "wire")


def _soap(r_cut, sigma, periodic, choice):
    return SOAP(SPECIES, r_cut=r_cut, n_max=2, l_max=2, sigma=sigma, periodic=periodic,
                rbf=["gto", "polynomial", "gap"][choice % 3], cutoff_transition_width=1.0)


def _lambda_soap(r_cut, sigma, periodic, choice):
    return LambdaSOAP(SPECIES, r_cut=r_cut, n_max=2, l_max=2, sigma=sigma, lambda_=choice % 3, normalize=False,
                      periodic=periodic)


def _fchl19(r_cut, sigma, periodic, choice):
    return FCHL19(SPECIES, nRs2=4, nRs3=3, nFourier=1 + choice % 2, rcut=r_cut, acut=r_cut)


def _distance_2b(r_cut, sigma, periodic, choice):
    return Distance2B(cutoff=r_cut, cutoff_transition_width=1.0, Z1=[None, 1, 8][choice % 3],
                      Z2=[None, 8, 14][choice % 3])


def _lode(r_cut, sigma, periodic, choice):
    return LODE(SPECIES, r_cut=r_cut, n_max=2, l_max=choice % 2, smearing=1.0 + sigma, periodic=periodic)


def _hard_cutoffs(descriptor):
    """Cutoffs at which a descriptor's features have a kink (no smooth transition): FD must avoid them."""
    if isinstance(descriptor, LambdaSOAP):
        from kernelpot.descriptors._expansion import cutoff_padding

        return [descriptor.r_cut + cutoff_padding(descriptor.sigma)]
    return []


@given(structures(species=SPECIES, max_atoms=3, kinds=VALID_KINDS, defects=("none",)),
       st.sampled_from([2.5, 3.0, 4.0]), st.sampled_from([0.4, 0.6]), st.booleans(), st.integers(0, 5))
@pytest.mark.parametrize("make", [_soap, _lambda_soap, _fchl19, _distance_2b, _lode],
                         ids=["SOAP", "LambdaSOAP", "FCHL19", "Distance2B", "LODE"])
def test_gradients_equal_finite_differences(make, drawn, r_cut, sigma, periodic, choice):
    atoms, _ = drawn
    periodic = periodic and bool(atoms.pbc.all())
    assume(min_distance(atoms) >= 0.7 and _clean(atoms, "none", _hard_cutoffs(make(r_cut, sigma, periodic,
                                                                                  choice))))
    descriptor = make(r_cut, sigma, periodic, choice)
    if outcome(lambda: descriptor.transform(atoms, gradients=True)) is not None:
        assert_gradients_match(descriptor, atoms, rtol=1e-3 if isinstance(descriptor, FCHL19) else 1e-4)


@pytest.mark.parametrize("sigma", [1e-6, 1e-4])
def test_gap_basis_with_very_narrow_gaussians_is_finite(sigma):
    """Found by this suite: SOAP(rbf="gap") with sigma <= 1e-4 Å gave NaN features (SciPy's ive is NaN above
    ~1e10), and a radial function that underflows to zero everywhere refined its table to the finest spacing."""
    from ase.build import bulk

    X, G = SOAP([14], r_cut=5.0, n_max=4, l_max=2, sigma=sigma, rbf="gap", periodic=True).transform(
        bulk("Si", cubic=True), gradients=True)
    assert_finite(X, G.values)
