"""gap_fit strings -> kernelpot GAP terms (recipe.py), and per-centre-species terms."""

import warnings

import numpy as np
import pytest
from ase.build import molecule

from kernelpot.descriptors import CentreSpecies
from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.soap import SOAP
from kernelpot.potential.recipe import DEFAULT_GAP, terms_from_gap_string


def test_default_recipe_is_two_body_plus_smooth_soap():
    two_body, soap = terms_from_gap_string(DEFAULT_GAP, [14])
    assert isinstance(two_body.descriptor, Distance2B)
    # kernelpot counts each pair once, gap_fit twice: twice gap_fit's delta.
    assert two_body.delta == 4.0 and two_body.sparse_method == "uniform"
    assert isinstance(soap.descriptor, SOAP)
    assert soap.descriptor.cutoff_transition_width == 1.0
    assert (soap.kernel.zeta, soap.delta, soap.n_sparse, soap.sparse_method) == (4, 0.2, 1000, "cur")


def test_soap_cutoff_transition_width_defaults_to_gap_fits():
    (soap,) = terms_from_gap_string("{soap cutoff=4.0 n_max=4 l_max=3}", [1, 8], periodic=False)
    assert soap.descriptor.cutoff_transition_width == 0.5
    assert soap.descriptor.central_weight == 1.0
    assert soap.descriptor.get_params()["species"] == [1, 8]


def test_used_keys_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        terms_from_gap_string("{distance_2b cutoff=4.0 cutoff_transition_width=0.7 : soap cutoff=4.0 "
                              "cutoff_transition_width=0.7 central_weight=0.5}", [14])


def test_keys_without_effect_warn():
    with pytest.warns(UserWarning, match=r"soap: gap_fit key\(s\) \['n_species'\] have no effect"):
        terms_from_gap_string("{soap n_species=1}", [14])


def test_z_restricts_the_soap_term_to_one_centre_species():
    (term,) = terms_from_gap_string("{soap cutoff=3.0 n_max=3 l_max=2 Z=1 species_Z={1 8}}", [1, 8],
                                    periodic=False)
    assert isinstance(term.descriptor, CentreSpecies) and term.descriptor.species == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("{soap foo=1}", r"soap: unsupported gap_fit key\(s\) \['foo'\]"),
        ("{soap covariance_type=ard_se}", r"soap: covariance_type must be 'dot_product' in kernelpot; got 'ard_se'"),
        ("{distance_2b covariance_type=dot_product}", r"distance_2b: covariance_type must be 'ard_se'"),
        ("{soap sparse_method=kmeans}", r"soap: sparse_method must be one of .*; got 'kmeans'"),
        ("{bispectrum_so4 cutoff=3.0}", r"descriptor 'bispectrum_so4' is not available in kernelpot"),
        ("{angle_3b cutoff=3.0 covariance_type=ard_se theta_fac=0.5 Z=8 Z1=1 Z2=1}",
         r"angle_3b: unsupported gap_fit key\(s\) \['theta_fac'\]"),
    ],
)
def test_bad_recipes_are_rejected(text, message):
    with pytest.raises(ValueError, match=message):
        terms_from_gap_string(text, [14])


def _water_pair():
    first = molecule("H2O")
    second = molecule("H2O")
    second.positions += [0.3, 2.8, 0.1]
    both = first + second
    both.rattle(0.05, seed=1)
    return [first, both]


@pytest.mark.parametrize("z", [1, 8, "O"])
def test_centre_species_rows_and_gradients_are_those_of_the_full_descriptor(z):
    soap = SOAP(species=[1, 8], r_cut=3.5, n_max=3, l_max=2, sigma=0.4)
    structures = _water_pair()
    X, G = soap.transform(structures, gradients=True)
    Xc, Gc = CentreSpecies(soap, z).transform(structures, gradients=True)
    keep = X.numbers == (8 if z == "O" else z)
    np.testing.assert_array_equal(np.asarray(Xc), np.asarray(X)[keep])
    np.testing.assert_array_equal(Xc.offsets, np.concatenate([[0], np.cumsum(
        [keep[a:b].sum() for a, b in zip(X.offsets[:-1], X.offsets[1:])])]))
    np.testing.assert_allclose(Gc.to_dense(len(X)), G.to_dense(len(X))[keep])
    assert np.asarray(CentreSpecies(soap, z).transform(structures)).shape == Xc.shape


def test_centre_species_errors():
    with pytest.raises(ValueError, match=r"`species` contains an unknown chemical symbol 'Xx'"):
        CentreSpecies(SOAP([1], 3.0, 2, 1), "Xx").transform(_water_pair())
    with pytest.raises(TypeError, match=r"`descriptor` must have a transform method; got 3"):
        CentreSpecies(3, 1).transform(_water_pair())
    with pytest.raises(ValueError, match=r"`descriptor` must give one row per atom with `numbers`; "
                                         r"Distance2B does not"):
        CentreSpecies(Distance2B(cutoff=3.0), 1).transform(_water_pair())


def test_per_centre_species_model_forces_are_minus_energy_gradient():
    from kernelpot.kernels import NormalizedDotProductCovariance
    from kernelpot.models.gap import GAPTerm, SparseGPR

    soap = SOAP(species=[1, 8], r_cut=3.5, n_max=3, l_max=2, sigma=0.4, cutoff_transition_width=0.5)
    terms = [GAPTerm(CentreSpecies(soap, z), NormalizedDotProductCovariance(2), delta=delta, n_sparse=6, sparse_method="fps")
             for z, delta in ((1, 0.5), (8, 1.0))]
    rng = np.random.default_rng(0)
    structures = []
    for _ in range(4):
        pair = _water_pair()[1]
        pair.positions += rng.normal(scale=0.05, size=pair.positions.shape)
        structures.append(pair)
    energies = rng.normal(size=4)
    forces = [rng.normal(scale=0.1, size=(6, 3)) for _ in structures]
    model = SparseGPR(terms, e0=0.0, random_state=0).fit(structures, energies=energies, forces=forces)
    probe = _water_pair()[1]
    predicted = model.predict([probe], properties=("energy", "forces"))["forces"]
    step, numeric = 1e-5, np.zeros((6, 3))
    for i in range(6):
        for a in range(3):
            moved = []
            for sign in (1, -1):
                shifted = probe.copy()
                shifted.positions[i, a] += sign * step
                moved.append(model.predict([shifted])["energy"][0])
            numeric[i, a] = -(moved[0] - moved[1]) / (2 * step)
    np.testing.assert_allclose(predicted, numeric, atol=1e-6 * max(1.0, np.abs(numeric).max()))
    assert np.abs(predicted).max() > 1e-3  # the two terms contribute
