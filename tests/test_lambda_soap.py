"""λ-SOAP: equivariance, invariances, parity, λ = 0 limit, gradients and validation."""

import numpy as np
import pytest
from ase import Atoms

from kernelpot.descriptors.lambda_soap import LambdaSOAP
from kernelpot.symmetry.wigner import random_rotation, wigner_d_real

PARAMS = dict(species=["H", "O"], r_cut=3.5, n_max=3, l_max=3, sigma=0.5)


def _molecule(seed=0, n=6):
    rng = np.random.default_rng(seed)
    positions = rng.uniform(-1.6, 1.6, size=(n, 3))
    symbols = ["O", "H", "H", "O", "H", "H", "O", "H"][:n]
    return Atoms(symbols, positions=positions)


def _crystal(seed=0):
    rng = np.random.default_rng(seed)
    cell = np.diag([3.1, 3.4, 3.7]) + rng.uniform(-0.3, 0.3, size=(3, 3))
    fractional = rng.uniform(size=(4, 3))
    return Atoms("OH2O", scaled_positions=fractional, cell=cell, pbc=True)


def _rotated(atoms, rotation):
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ rotation.T
    if atoms.pbc.any():
        rotated.cell = atoms.cell.array @ rotation.T
    return rotated


@pytest.mark.parametrize("lam", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("normalize", [False, True])
def test_rotation_equivariance_molecule(lam, normalize):
    atoms = [_molecule(0), _molecule(1, n=5)]
    descriptor = LambdaSOAP(**PARAMS, lambda_=lam, normalize=normalize)
    rotation = random_rotation(10 + lam)
    x = descriptor.transform(atoms)
    x_rot = descriptor.transform([_rotated(a, rotation) for a in atoms])
    expected = np.einsum("ab,ibk->iak", wigner_d_real(rotation, lam), x)
    scale = np.abs(x).max()
    assert scale > 1e-3
    np.testing.assert_allclose(x_rot, expected, atol=1e-10 * max(scale, 1.0))


@pytest.mark.parametrize("lam", [1, 2])
def test_rotation_equivariance_periodic(lam):
    atoms = _crystal(3)
    descriptor = LambdaSOAP(**PARAMS, lambda_=lam, periodic=True)
    rotation = random_rotation(4)
    x = descriptor.transform(atoms)
    x_rot = descriptor.transform(_rotated(atoms, rotation))
    expected = np.einsum("ab,ibk->iak", wigner_d_real(rotation, lam), x)
    np.testing.assert_allclose(x_rot, expected, atol=1e-10)


def test_translation_invariance_molecule_and_crystal():
    descriptor = LambdaSOAP(**PARAMS, lambda_=2, periodic=True)
    for atoms in (_molecule(2), _crystal(5)):
        moved = atoms.copy()
        moved.positions += np.array([0.37, -1.21, 2.05])
        if atoms.pbc.any():
            moved.wrap()
        np.testing.assert_allclose(
            descriptor.transform(moved), descriptor.transform(atoms), atol=1e-11
        )


def test_periodic_false_accepts_zero_cell_marked_periodic():
    # TENSOAP files carry Lattice="0 0 0 ..." which ASE reads as pbc=True with a zero cell.
    molecule = _molecule(1)
    marked = molecule.copy()
    marked.pbc = True
    descriptor = LambdaSOAP(**PARAMS, lambda_=1)
    np.testing.assert_array_equal(descriptor.transform(marked), descriptor.transform(molecule))
    assert marked.pbc.all()


def test_periodic_false_ignores_cell():
    crystal = _crystal(6)
    molecule = Atoms(crystal.numbers, positions=crystal.positions)
    descriptor = LambdaSOAP(**PARAMS, lambda_=1, periodic=False)
    np.testing.assert_array_equal(descriptor.transform(crystal), descriptor.transform(molecule))
    periodic = LambdaSOAP(**PARAMS, lambda_=1, periodic=True).transform(crystal)
    assert np.abs(periodic - descriptor.transform(molecule)).max() > 1e-3


def test_permutation_of_like_atoms_permutes_rows():
    atoms = _molecule(3)
    order = np.array([3, 4, 2, 0, 5, 1])  # O0<->O3, and the H atoms shuffled
    descriptor = LambdaSOAP(**PARAMS, lambda_=2)
    np.testing.assert_allclose(
        descriptor.transform(atoms[order]), descriptor.transform(atoms)[order], atol=1e-12
    )


@pytest.mark.parametrize("lam", [1, 2])
def test_inversion_gives_proper_tensor(lam):
    atoms = _molecule(4)
    inverted = atoms.copy()
    inverted.positions = -atoms.positions
    descriptor = LambdaSOAP(**PARAMS, lambda_=lam, normalize=False)
    np.testing.assert_allclose(
        descriptor.transform(inverted), (-1) ** lam * descriptor.transform(atoms), atol=1e-12
    )


def test_feature_labels_and_shape():
    descriptor = LambdaSOAP(**PARAMS, lambda_=1)
    labels = descriptor.feature_labels()
    assert labels.shape == (descriptor.n_features, 6)
    z1, n1, l1, z2, n2, l2 = labels.T
    assert np.all((l1 + l2 + 1) % 2 == 0) and np.all(np.abs(l1 - l2) <= 1)
    assert np.all(z1 <= z2)
    same = z1 == z2
    assert np.all(l1[same] < l2[same])  # for λ = 1 (odd) l1 != l2, each unordered pair once
    assert len({tuple(row) for row in labels}) == len(labels)
    # H–O blocks keep both orders of (l1, l2): 3 blocks (0,1),(1,0),(1,2),(2,1),(2,3),(3,2) * 9
    assert np.sum(~same) == 6 * 9 and np.sum(same) == 2 * 3 * 9
    x = descriptor.transform(_molecule(0))
    assert x.shape == (6, 3, descriptor.n_features) and x.dtype == np.float64
    np.testing.assert_array_equal(x.offsets, [0, 6])


def test_normalize_gives_unit_blocks():
    atoms = _molecule(5)
    raw = LambdaSOAP(**PARAMS, lambda_=2, normalize=False).transform(atoms)
    unit = LambdaSOAP(**PARAMS, lambda_=2, normalize=True).transform(atoms)
    norms = np.linalg.norm(raw.reshape(len(raw), -1), axis=1)
    np.testing.assert_allclose(np.linalg.norm(unit.reshape(len(unit), -1), axis=1), 1.0)
    np.testing.assert_allclose(unit, raw / norms[:, None, None], atol=1e-14)


def test_isolated_atom_has_zero_block_without_nan():
    atoms = Atoms("OH", positions=[[0, 0, 0], [10.0, 0, 0]])
    x, g = LambdaSOAP(**PARAMS, lambda_=1).transform(atoms, gradients=True)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(g.values))
    np.testing.assert_array_equal(x, 0.0)


# --- λ = 0 is the SOAP power spectrum -------------------------------------------------------


def _coefficients(descriptor, atoms):
    return descriptor._density_coefficients(atoms)


def test_lambda_zero_is_power_spectrum():
    atoms = [_molecule(6), _molecule(7, n=4)]
    descriptor = LambdaSOAP(**PARAMS, lambda_=0, normalize=False)
    x = descriptor.transform(atoms)[:, 0, :]
    c = _coefficients(descriptor, atoms)
    species = {1: 0, 8: 1}
    for k, (z1, n1, l1, z2, n2, l2) in enumerate(descriptor.feature_labels()):
        assert l1 == l2
        block = slice(l1 * l1, (l1 + 1) ** 2)
        power = np.sum(c[:, species[z1], n1, block] * c[:, species[z2], n2, block], axis=1)
        np.testing.assert_allclose(x[:, k], (-1) ** l1 / np.sqrt(2 * l1 + 1) * power, atol=1e-13)


def _as_power_spectrum(descriptor, x0):
    """λ = 0 features rearranged as dscribe's SOAP, ``π sqrt(8 / (2l + 1)) Σ_m c c``.

    dscribe (and kernelpot's SOAP) order: species pairs a <= b, then l, then
    (n1, n2) row-major, with n1 <= n2 when a == b.
    """
    n_max, l_max = descriptor.n_max, descriptor.l_max
    species = sorted({int(z) for z in descriptor.feature_labels()[:, 0]})
    same_pairs = [(a, b) for a in range(n_max) for b in range(a, n_max)]
    starts, start = {}, 0
    for a, za in enumerate(species):
        for zb in species[a:]:
            starts[za, zb] = start
            start += (len(same_pairs) if za == zb else n_max * n_max) * (l_max + 1)
    out = np.full((len(x0), start), np.nan)
    for k, (z1, n1, l1, z2, n2, _) in enumerate(descriptor.feature_labels()):
        if z1 == z2:
            column = starts[z1, z2] + l1 * len(same_pairs) + same_pairs.index((n1, n2))
        else:
            column = starts[z1, z2] + l1 * n_max * n_max + n1 * n_max + n2
        out[:, column] = x0[:, 0, k] * (-1) ** l1 * np.pi * np.sqrt(8)
    assert not np.isnan(out).any()  # same number of features, every column hit once
    return out


@pytest.mark.peers
def test_lambda_zero_matches_dscribe_power_spectrum():
    dscribe = pytest.importorskip("dscribe.descriptors")
    atoms = [_molecule(6), _molecule(7, n=4)]
    peer = dscribe.SOAP(species=PARAMS["species"], r_cut=PARAMS["r_cut"], n_max=PARAMS["n_max"],
                        l_max=PARAMS["l_max"], sigma=PARAMS["sigma"], rbf="gto", periodic=False)
    reference = np.concatenate(peer.create(atoms))
    descriptor = LambdaSOAP(**PARAMS, lambda_=0, normalize=False)
    predicted = _as_power_spectrum(descriptor, descriptor.transform(atoms))
    np.testing.assert_allclose(predicted, reference, atol=1e-9 * np.abs(reference).max())


def test_lambda_zero_matches_kernelpot_soap_periodic():
    from kernelpot.descriptors import soap

    atoms = [_crystal(15), _molecule(16)]
    reference = soap.SOAP(**PARAMS, periodic=True).transform(atoms)
    descriptor = LambdaSOAP(**PARAMS, lambda_=0, normalize=False, periodic=True)
    predicted = _as_power_spectrum(descriptor, descriptor.transform(atoms))
    np.testing.assert_allclose(predicted, reference, atol=1e-12 * np.abs(reference).max())


# --- gradients -----------------------------------------------------------------------------


def _finite_differences(descriptor, atoms, h=1e-5):
    n = len(atoms)
    base = descriptor.transform(atoms)
    dense = np.zeros((n, n, 3) + base.shape[1:])
    for j in range(n):
        for a in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[j, a] += h
            minus.positions[j, a] -= h
            dense[:, j, a] = (descriptor.transform(plus) - descriptor.transform(minus)) / (2 * h)
    return dense


def _dense(gradients, n_atoms, shape):
    dense = np.zeros((n_atoms, n_atoms, 3) + shape)
    np.add.at(dense, (gradients.center, gradients.neighbour), gradients.values)
    return dense


@pytest.mark.parametrize(
    "atoms_factory, lam, normalize, periodic",
    [
        (lambda: _molecule(8), 1, False, False),
        (lambda: _molecule(9), 2, True, False),
        (lambda: _crystal(10), 1, True, True),
        (lambda: _crystal(11), 2, False, True),
    ],
)
def test_gradients_match_finite_differences(atoms_factory, lam, normalize, periodic):
    atoms = atoms_factory()
    descriptor = LambdaSOAP(**PARAMS, lambda_=lam, normalize=normalize, periodic=periodic)
    x, g = descriptor.transform(atoms, gradients=True)
    np.testing.assert_array_equal(x, descriptor.transform(atoms))
    assert g.values.shape == (g.n_pairs, 3) + x.shape[1:]
    analytic = _dense(g, len(atoms), x.shape[1:])
    numeric = _finite_differences(descriptor, atoms)
    scale = np.abs(numeric).max()
    assert scale > 1e-3
    assert np.abs(analytic - numeric).max() <= 1e-6 * scale


def test_gradient_layout_sorted_with_total_derivative_self_term():
    atoms = _molecule(12)
    _, g = LambdaSOAP(**PARAMS, lambda_=1).transform(atoms, gradients=True)
    keys = g.center * len(atoms) + g.neighbour
    assert np.all(np.diff(keys) > 0)  # sorted by (center, neighbour), images summed
    for i in range(len(atoms)):
        rows = g.center == i
        is_self = rows & (g.neighbour == i)
        assert is_self.sum() == 1
        np.testing.assert_allclose(
            g.values[is_self][0], -g.values[rows & ~is_self].sum(axis=0), atol=1e-13
        )


def test_gradients_rotate_covariantly():
    atoms = _molecule(13)
    rotation = random_rotation(14)
    descriptor = LambdaSOAP(**PARAMS, lambda_=2)
    _, g = descriptor.transform(atoms, gradients=True)
    _, g_rot = descriptor.transform(_rotated(atoms, rotation), gradients=True)
    d = wigner_d_real(rotation, 2)
    expected = np.einsum("xy,ab,pybk->pxak", rotation, d, g.values)
    np.testing.assert_allclose(g_rot.values, expected, atol=1e-10)


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, error, message",
    [
        (dict(lambda_=-1), ValueError, "`lambda_` must be >= 0; got -1"),
        (dict(lambda_=7), ValueError, r"`lambda_` must be <= 2 \* l_max = 6 .*got 7"),
        (dict(lambda_=1.0), TypeError, "`lambda_` must be an integer; got 1.0"),
        (dict(r_cut=-1.0), ValueError, "`r_cut` must be a finite number > 0 Å; got -1.0"),
        (dict(r_cut="3"), TypeError, "`r_cut` must be a number"),
        (dict(sigma=0.0), ValueError, "`sigma` must be a finite number > 0 Å; got 0.0"),
        (dict(n_max=0), ValueError, "`n_max` must be >= 1; got 0"),
        (dict(l_max=-1), ValueError, "`l_max` must be >= 0; got -1"),
        (dict(l_max=2.5), TypeError, "`l_max` must be an integer; got 2.5"),
        (dict(rbf="bessel"), ValueError, "`rbf` must be one of 'gto', 'polynomial'; got 'bessel'"),
        (dict(periodic="yes"), TypeError, "`periodic` must be a bool; got 'yes'"),
        (dict(normalize=1), TypeError, "`normalize` must be a bool; got 1"),
        (dict(r_cut=0.9), ValueError, r"`r_cut` must be > 1 Å with rbf='gto'.*got 0.9"),
        (dict(species=[]), ValueError, r"`species` must name at least one chemical species; got \[\]"),
        (dict(species=["H", "Xx"]), ValueError, "unknown chemical symbol 'Xx'"),
        (dict(species=3.5), TypeError, "`species` must be a sequence"),
        (dict(species=[1, 0]), ValueError, "invalid atomic number 0"),
        (dict(species=[1.0]), TypeError, "`species` items must be chemical symbols or atomic numbers; got 1.0"),
    ],
)
def test_invalid_parameters(changes, error, message):
    descriptor = LambdaSOAP(**{**PARAMS, "lambda_": 1, **changes})
    with pytest.raises(error, match=message):
        descriptor.transform(_molecule(0))


def test_species_order_and_repeats_do_not_matter():
    atoms = _molecule(0)
    reference = LambdaSOAP(**PARAMS, lambda_=1).transform(atoms)
    shuffled = LambdaSOAP(**{**PARAMS, "species": [8, "H", "O"]}, lambda_=1).transform(atoms)
    np.testing.assert_array_equal(shuffled, reference)


def test_chunks_give_the_same_result(monkeypatch):
    from kernelpot.descriptors import lambda_soap

    atoms = [_molecule(20, n=5), _crystal(21), _molecule(22, n=4)]
    descriptor = LambdaSOAP(**PARAMS, lambda_=2, periodic=True)
    x, g = descriptor.transform(atoms, gradients=True)
    monkeypatch.setattr(lambda_soap, "_CHUNK_ATOMS", 5)
    x_chunked, g_chunked = descriptor.transform(atoms, gradients=True)
    np.testing.assert_array_equal(x_chunked, x)
    np.testing.assert_array_equal(g_chunked.center, g.center)
    np.testing.assert_array_equal(g_chunked.neighbour, g.neighbour)
    np.testing.assert_allclose(g_chunked.values, g.values, atol=1e-14)


def test_unknown_species_in_input():
    atoms = [_molecule(0), Atoms("CH4", positions=np.random.default_rng(0).normal(size=(5, 3)))]
    with pytest.raises(ValueError, match=r"species \[6\] in structure 1 are not in species=\[1, 8\]"):
        LambdaSOAP(**PARAMS, lambda_=1).transform(atoms)


def test_gradients_flag_must_be_bool():
    with pytest.raises(TypeError, match="`gradients` must be a bool; got 'no'"):
        LambdaSOAP(**PARAMS, lambda_=1).transform(_molecule(0), gradients="no")


def test_n_features_validates_parameters():
    with pytest.raises(ValueError, match="`lambda_` must be <= 2"):
        LambdaSOAP(**{**PARAMS, "lambda_": 9}).n_features


# ------------------------------------------- blocks that vanish by symmetry (issue 18, item 6)
def _diamond():
    from ase.build import bulk

    return bulk("Si", "diamond", a=5.43)


@pytest.mark.parametrize("lam, sigma", [(1, 0.5), (2, 0.5), (1, 0.05)])
def test_blocks_vanishing_by_symmetry_stay_zero_with_zero_gradients(lam, sigma):
    """Diamond has no λ = 1, 2 block: round-off (~1e-16) used to become unit vectors with gradients of 1e15."""
    descriptor = LambdaSOAP(["Si"], r_cut=4.0, n_max=4, l_max=4, sigma=sigma, periodic=True, lambda_=lam)
    X, G = descriptor.transform(_diamond(), gradients=True)
    assert np.all(X == 0.0) and np.all(G.values == 0.0)


def test_symmetric_block_is_stable_under_a_tiny_displacement():
    """Moving an atom 1e-7 Å used to change the normalised features by 0.64 (noise -> another direction)."""
    descriptor = LambdaSOAP(["Si"], r_cut=4.0, n_max=4, l_max=4, sigma=0.5, periodic=True, lambda_=1)
    atoms = _diamond()
    moved = atoms.copy()
    moved.positions[0] += [1e-7, -2e-7, 0.5e-7]
    assert np.abs(descriptor.transform(moved) - descriptor.transform(atoms)).max() == 0.0


def test_tolerance_is_relative_to_the_environment_scale():
    """With σ = 0.01 Å the water blocks are ~1e-9 in absolute size but not symmetric: they stay unit blocks."""
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    raw = LambdaSOAP(["H", "O"], r_cut=3.0, n_max=3, l_max=3, sigma=0.01, lambda_=1, normalize=False)
    assert np.linalg.norm(raw.transform(water).reshape(3, -1), axis=1).max() < 1e-8
    X = LambdaSOAP(["H", "O"], r_cut=3.0, n_max=3, l_max=3, sigma=0.01, lambda_=1).transform(water)
    np.testing.assert_allclose(np.linalg.norm(X.reshape(3, -1), axis=1), 1.0, rtol=1e-12)


def test_slightly_distorted_diamond_gives_the_distortion_direction_with_exact_gradients():
    """1e-3 Å off symmetry the block is well above the tolerance: unit norm, gradients equal finite differences."""
    atoms = _diamond()
    atoms.positions[0] += [1e-3, 0.0, 0.0]
    descriptor = LambdaSOAP(["Si"], r_cut=4.0, n_max=3, l_max=3, sigma=0.5, periodic=True, lambda_=1)
    x, g = descriptor.transform(atoms, gradients=True)
    np.testing.assert_allclose(np.linalg.norm(x.reshape(2, -1), axis=1), 1.0, rtol=1e-12)
    analytic = _dense(g, len(atoms), x.shape[1:])
    numeric = _finite_differences(descriptor, atoms, h=1e-6)
    assert np.abs(analytic - numeric).max() <= 1e-4 * np.abs(numeric).max()
