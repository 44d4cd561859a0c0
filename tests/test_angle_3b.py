"""Physics, QUIP convention and GAP use of the angle_3b descriptor (GAP's 3-body term)."""

import numpy as np
import pytest
from _finite_differences import position_derivative, strain_derivative
from ase import Atoms

from kernelpot.descriptors.angle_3b import Angle3B
from kernelpot.descriptors.distance_2b import cosine_cutoff

#: quippy 0.9 ``Descriptor("angle_3b cutoff=3.0 [cutoff_transition_width=1.0] Z=8 Z1=1 Z2=1").calc`` of _bent()
#: (both of its rows are this one: QUIP keeps (j, k) and (k, j)).
QUIP_BENT = {"data": [4.92934968, 0.22151172, 3.3436507], "weight": {0.5: 0.6545085, 1.0: 0.18049447}}


def _bent():
    return Atoms("OH2", positions=[[0, 0, 0], [2.7, 0, 0], [0.2, 2.2, 0.3]])


def _water_box(seed=0, n=4, side=4.6):
    """O and H at random, a small periodic cell: images of one atom are neighbours of each other."""
    rng = np.random.default_rng(seed)
    atoms = Atoms(f"O{n}H{2 * n}", positions=rng.random((3 * n, 3)) * side, cell=[side, side + 0.1, side + 0.2],
                  pbc=True)
    # Keep every pair > 0.7 Å apart, so the finite differences stay away from coincident atoms.
    for _ in range(200):
        d = atoms.get_all_distances(mic=True) + 10 * np.eye(len(atoms))
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if d[i, j] > 0.7:
            break
        atoms.positions[j] += rng.normal(size=3) * 0.3
    return atoms


def _sorted_rows(M):
    M = np.asarray(M)
    return M[np.lexsort(np.round(M, 8).T[::-1])]


def test_features_and_weight_equal_quippys_reference():
    for width, weight in QUIP_BENT["weight"].items():
        d = Angle3B(cutoff=3.0, cutoff_transition_width=width, Z=8, Z1=1, Z2=1)
        X = d.transform(_bent())
        np.testing.assert_allclose(X, [QUIP_BENT["data"]], atol=1e-7)
        np.testing.assert_allclose(d.cutoff_weight(X)[0], [weight], atol=1e-7)


@pytest.mark.peers
@pytest.mark.parametrize("species", [(8, 1, 1), (8, 8, 1), (1, 8, 1), (None, None, None)])
def test_parity_with_quippy_angle_3b(species):
    descriptors = pytest.importorskip("quippy.descriptors")
    atoms = _water_box(1)
    z, z1, z2 = species
    text = "angle_3b cutoff=3.0 cutoff_transition_width=0.7" + (f" Z={z} Z1={z1} Z2={z2}" if z else "")
    gap = descriptors.Descriptor(text).calc(atoms)
    d = Angle3B(cutoff=3.0, cutoff_transition_width=0.7, Z=z, Z1=z1, Z2=z2)
    X = d.transform(atoms)
    ours = np.column_stack([X, d.cutoff_weight(X)[0]])
    assert len(X) > 20
    # GAP keeps both orders of the two neighbours: every row twice.
    np.testing.assert_allclose(_sorted_rows(np.vstack([ours, ours])),
                               _sorted_rows(np.column_stack([gap["data"], gap["covariance_cutoff"]])), atol=1e-10)


def test_parity_with_frozen_gap_fit_reference(bundled_data):
    """A gap_fit model with one angle_3b term (delta 0.3) is kernelpot's with delta 0.6 and the same sparse points:
    energies, forces and virials of 10 Si test cells (tests/reference/gap_angle_3b/make_reference.py)."""
    from test_sparse_gpr import check_frozen_gap_fit_reference

    from kernelpot.kernels import GaussianCovariance
    from kernelpot.models import GAPTerm

    check_frozen_gap_fit_reference(bundled_data, "gap_angle_3b", lambda points: GAPTerm(
        Angle3B(3.0, 0.5, Z=14, Z1=14, Z2=14), GaussianCovariance(0.3), delta=0.6, sparse_points=points))


def test_species_selections_partition_all_triplets():
    atoms = _water_box(2)
    total = len(Angle3B(cutoff=3.0).transform(atoms))
    parts = [len(Angle3B(cutoff=3.0, Z=z, Z1=a, Z2=b).transform(atoms))
             for z in (1, 8) for a, b in ((1, 1), (1, 8), (8, 8))]
    assert sum(parts) == total and min(parts) > 0
    assert len(Angle3B(cutoff=3.0, Z=8, Z1=8, Z2=1).transform(atoms)) == parts[4]


def test_two_images_of_one_atom_make_a_triplet():
    atoms = Atoms("Si", positions=[[0, 0, 0]], cell=np.eye(3) * 2.5, pbc=True)
    X = Angle3B(cutoff=3.0).transform(atoms)
    # 6 images at 2.5 Å: 15 pairs of them, 3 opposite (r_jk 5 Å) and 12 at right angles.
    assert X.shape == (15, 3)
    np.testing.assert_allclose(np.sort(X[:, 2]), [2.5 * np.sqrt(2)] * 12 + [5.0] * 3)


def test_offsets_group_rows_by_structure():
    a, b = _water_box(3), _bent()
    X = Angle3B(cutoff=3.0).transform([a, b, a])
    n_a, n_b = len(Angle3B(cutoff=3.0).transform(a)), len(Angle3B(cutoff=3.0).transform(b))
    assert X.offsets.tolist() == [0, n_a, n_a + n_b, 2 * n_a + n_b]


def test_invariant_under_rotation_translation_permutation():
    atoms = _water_box(4)
    reference = _sorted_rows(Angle3B(cutoff=3.0).transform(atoms))
    moved = atoms.copy()
    moved.rotate(37, "x", rotate_cell=True)
    moved.rotate(11, "z", rotate_cell=True)
    moved.translate([0.3, -1.2, 2.0])
    permuted = moved[np.random.default_rng(0).permutation(len(atoms))]
    for other in (moved, permuted):
        np.testing.assert_allclose(_sorted_rows(Angle3B(cutoff=3.0).transform(other)), reference, atol=1e-9)


def _energy(d, X):
    """A smooth made-up triplet energy, weighted as a GAP term weights its rows, and dE/dX."""
    w, dw = d.cutoff_weight(X)
    g = np.sin(X[:, 0]) + 0.3 * X[:, 1] * X[:, 2] + np.cos(X[:, 2])
    dg = np.column_stack([np.cos(X[:, 0]), 0.3 * X[:, 2], 0.3 * X[:, 1] - np.sin(X[:, 2])])
    return w * g, dw * g[:, None] + w[:, None] * dg


def test_gradients_match_finite_differences():
    atoms = _water_box(5)
    d = Angle3B(cutoff=3.0, cutoff_transition_width=1.0)
    X, G = d.transform(atoms, gradients=True)
    # Same rows in the same order for a small move (no pair crosses the cutoff here).
    fd = position_derivative(lambda moved: np.asarray(d.transform(moved)), atoms, 1e-6)
    np.testing.assert_allclose(G.to_dense(len(atoms)), fd.transpose(2, 0, 1, 3), atol=1e-6)


def test_vectors_give_the_strain_derivative_and_vjp_the_forces():
    atoms = _water_box(6)
    d = Angle3B(cutoff=3.0, cutoff_transition_width=1.0)
    X, G = d.transform(atoms, gradients=True)
    _, dE_dX = _energy(d, X)
    entry_dE = np.einsum("pak,pk->pa", G.values, dE_dX[G.center])
    virial = -np.einsum("pa,pb->ab", G.vectors, entry_dE)
    fd = -strain_derivative(lambda s: _energy(d, d.transform(s))[0].sum(), atoms, 1e-6)
    np.testing.assert_allclose(virial, fd, atol=1e-6)
    # The reverse-mode pass gives the same forces and virial.
    features, vjp = d.transform_vjp(atoms)
    np.testing.assert_allclose(features, X)
    dE_dr, vjp_virial = vjp(dE_dX, virial=True)
    np.testing.assert_allclose(dE_dr, np.asarray(
        [entry_dE[G.neighbour == i].sum(axis=0) for i in range(len(atoms))]), atol=1e-12)
    np.testing.assert_allclose(vjp_virial[0], virial, atol=1e-10)


def test_weight_derivative_is_smooth_where_the_two_bonds_are_equal():
    d = Angle3B(cutoff=3.0, cutoff_transition_width=1.0)
    r = 2.4   # both bonds in the transition
    X = np.array([[2 * r, t**2, 3.0] for t in (0.0, 1e-7, 1e-5, 1e-3, 2e-3)])
    w, dw = d.cutoff_weight(X)
    fc, _ = cosine_cutoff(np.array([r]), 3.0, 1.0)
    assert w[0] == pytest.approx(fc[0] ** 2)
    # The limit at t = 0 continues the quotient: dw/dx_1 changes by O(t²) only.
    np.testing.assert_allclose(dw[:, 1], dw[0, 1], rtol=1e-4)
    # And both derivatives equal finite differences of the weight in the features.
    h = 1e-6
    for k in (0, 1):
        step = np.zeros(3)
        step[k] = h
        X0 = np.array([[4.7, 0.04, 3.0]])
        fd = (d.cutoff_weight(X0 + step)[0] - d.cutoff_weight(X0 - step)[0]) / (2 * h)
        np.testing.assert_allclose(d.cutoff_weight(X0)[1][0, k], fd[0], rtol=1e-6)


def _fitted_model(terms, structures, seed=0):
    """A GAP of ``terms`` fitted to random labels (the derivative checks need any fitted model)."""
    from kernelpot.models import SparseGPR

    rng = np.random.default_rng(seed)
    energies = [float(rng.normal()) for _ in structures]
    forces = [rng.normal(size=(len(a), 3)) * 0.3 for a in structures]
    return SparseGPR(terms, default_sigma=(0.01, 0.1, 0.1), e0=0.0).fit(structures, energies=energies,
                                                                           forces=forces)


def _check_local_energy_std(model, atoms):
    """Local energies and their σ: the fast path, the explicit path and a dense DTC agree."""
    import scipy.linalg as sla

    from kernelpot.models.gap.predictor import GAPPredictor
    from kernelpot.models.gap.terms import row_weights

    fast = GAPPredictor(model).predict([atoms], ("energy", "local_energy", "local_energy_std"))
    explicit = model.predict([atoms], properties=("local_energy",), return_std=True)
    np.testing.assert_allclose(fast["local_energy"], explicit["local_energy"], atol=1e-10)
    np.testing.assert_allclose(fast["local_energy_std"], explicit["local_energy_std"], rtol=1e-6)
    n, k_star, prior = len(atoms), [], np.zeros(len(atoms))
    for term in model.terms_:
        X, G = term.descriptor.transform([atoms], gradients=True)
        share = np.zeros((n, X.shape[0]))
        share[term.descriptor.row_centres(G), np.arange(X.shape[0])] = 1.0
        X = np.asarray(X)
        w = row_weights(term.descriptor, X)[0]
        prior += np.einsum("ip,pq,iq->i", share, term.delta**2 * np.outer(w, w) * term.kernel(X, X), share)
        k_star.append(share @ (term.delta**2 * w[:, None] * term.sparse_weight[None, :]
                               * term.kernel(X, term.sparse_X)))
    k_star = np.hstack(k_star)
    L, R = model.kmm_cholesky_, model.posterior_factor_
    expected = (prior - (sla.solve_triangular(L, k_star.T, lower=True) ** 2).sum(0)
                + (sla.solve_triangular(R, k_star.T, trans="T") ** 2).sum(0))
    assert expected.max() > 0
    np.testing.assert_allclose(fast["local_energy_std"] ** 2, expected, rtol=1e-5, atol=1e-10 * expected.max())


def test_gap_term_forces_and_stress_are_the_energy_derivatives(tmp_path):
    from kernelpot.potential.recipe import describe_terms, terms_from_gap_string
    from kernelpot.potential.serialization import load_model, save_model

    gap = ("{angle_3b cutoff=3.0 cutoff_transition_width=0.8 covariance_type=ard_se delta=0.5 "
           "theta={1.0 2.0 0.7} n_sparse=30 sparse_method=fps Z=8 Z1=1 Z2=1 : "
           "angle_3b cutoff=3.0 covariance_type=ard_se delta=0.3 theta_uniform=1.0 n_sparse=30 Z=1 Z1=8 Z2=1}")
    terms = terms_from_gap_string(gap, [1, 8])
    assert [t.delta for t in terms] == [1.0, 0.6]   # twice gap_fit's: one row per triplet
    assert describe_terms(terms).splitlines()[0] == (
        "angle_3b Z=8 neighbours Z=1,1: cutoff 3 Å (cosine transition 0.8 Å); Gaussian (ard_se), length scale "
        "[1.0, 2.0, 0.7] (Å, Å², Å); delta 1 eV (gap_fit's delta=0.5: kernelpot counts each triplet once); "
        "30 sparse points (fps)")
    model = _fitted_model(terms, [_water_box(s) for s in (10, 11, 12)])
    test = _water_box(13)
    prediction = model.predict([test], properties=("energy", "forces", "stress"))
    moved = [0, 5, 9]
    fd = -position_derivative(lambda s: model.predict([s])["energy"][0], test, 1e-5, moved)
    np.testing.assert_allclose(prediction["forces"][moved], fd, atol=1e-6)
    fd_virial = -strain_derivative(lambda s: model.predict([s])["energy"][0], test, 1e-6)
    volume = test.get_volume()
    voigt = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    np.testing.assert_allclose(prediction["stress"][0], [-fd_virial[a, b] / volume for a, b in voigt], atol=1e-7)
    # A triplet's local energy is its centre's, on both prediction paths.
    local = model.predict([test], properties=("energy", "local_energy"))
    assert local["local_energy"].sum() == pytest.approx(prediction["energy"][0], abs=1e-10)
    assert np.count_nonzero(local["local_energy"]) > 0
    _check_local_energy_std(model, test)
    from kernelpot.models.gap.terms import rows_to_atoms

    X, G = terms[0].descriptor.transform(test, gradients=True)
    A = rows_to_atoms(terms[0].descriptor, X, G, test.numbers).toarray()
    assert np.all(A.sum(axis=0) == 1) and set(np.flatnonzero(A.sum(axis=1))) <= set(np.flatnonzero(test.numbers == 8))
    path = tmp_path / "angle.kpot"
    save_model(model, path)
    again = load_model(path).predict([test], properties=("energy", "forces"))
    np.testing.assert_allclose(again["energy"], prediction["energy"], rtol=1e-12)
    np.testing.assert_allclose(again["forces"], prediction["forces"], atol=1e-12)


def test_gap_string_errors():
    from kernelpot.potential.recipe import terms_from_gap_string

    with pytest.raises(ValueError, match="theta must give 3 length scales"):
        terms_from_gap_string("{angle_3b cutoff=3.0 covariance_type=ard_se theta={1.0 2.0}}", [1, 8])
    with pytest.raises(ValueError, match="give theta_uniform or theta, not both"):
        terms_from_gap_string("{angle_3b covariance_type=ard_se theta={1 1 1} theta_uniform=1.0}", [1, 8])
    with pytest.raises(ValueError, match=r"unsupported gap_fit key\(s\) \['theta_fac'\]"):
        terms_from_gap_string("{angle_3b covariance_type=ard_se theta_fac=0.5}", [1, 8])
    with pytest.raises(ValueError, match="angle_3b: give Z, Z1 and Z2"):
        terms_from_gap_string("{angle_3b covariance_type=ard_se}", [1, 8], add_species=True)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"cutoff": -1.0}, ValueError, r"`cutoff` must be a finite number > 0 Å; got -1.0"),
        ({"cutoff": "5"}, TypeError, r"`cutoff` must be a number"),
        ({"cutoff_transition_width": 4.0}, ValueError, r"`cutoff_transition_width` must be in"),
        ({"Z1": 1}, ValueError, r"`Z1` and `Z2` must be given together"),
        ({"Z": 0}, ValueError, r"`Z` must be an atomic number"),
    ],
)
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        Angle3B(**kwargs).transform(_bent())
