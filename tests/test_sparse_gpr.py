"""Physics of the GAP-style SparseGPR: gradients, virials, exact recovery, solvers, data.

The data for most tests are small periodic Cu cells labelled by ASE's EMT
potential (a real many-body potential), fitted with a distance_2b term and
a small test descriptor with analytic gradients defined here.
"""

import numpy as np
import pytest
from _finite_differences import strain_derivative
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from kernelpot.descriptors.base import AtomicFeatures, Descriptor, SparseGradients
from kernelpot.descriptors.distance_2b import Distance2B, cosine_cutoff
from kernelpot.io import read_labelled
from kernelpot.kernels import GaussianCovariance, NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.structures.neighbours import neighbour_list
from kernelpot.structures.packing import pack


class RadialGaussians(Descriptor):
    """x_ik = sum_j [exp(-(r_ij - mu_k)^2 / 2 s^2) + 0.1] fc(r_ij), fc = (1 + cos(pi r / rc)) / 2."""

    def __init__(self, cutoff=4.0, centers=(2.0, 2.4, 2.8, 3.2, 3.6), width=0.3, vectors=True):
        self.cutoff = cutoff
        self.centers = centers
        self.width = width
        self.vectors = vectors

    def transform(self, X, *, gradients=False):
        packed = pack(X)
        nl = neighbour_list(packed, self.cutoff)
        mu = np.asarray(self.centers, dtype=float)
        r = nl.distances[:, None]
        fc = 0.5 * (1 + np.cos(np.pi * r / self.cutoff))
        dfc = -0.5 * np.pi / self.cutoff * np.sin(np.pi * r / self.cutoff)
        g = np.exp(-((r - mu) ** 2) / (2 * self.width**2)) + 0.1
        dg = -(r - mu) / self.width**2 * (g - 0.1)
        features = np.zeros((packed.n_atoms, len(mu)))
        np.add.at(features, nl.center, g * fc)
        out = AtomicFeatures(features, packed.offsets, packed.numbers)
        if not gradients:
            return out
        pair = (nl.vectors / nl.distances[:, None])[:, :, None] * (dg * fc + g * dfc)[:, None, :]
        self_values = np.zeros((packed.n_atoms, 3, len(mu)))
        np.add.at(self_values, nl.center, -pair)
        n = packed.n_atoms
        vectors = np.concatenate([np.zeros((n, 3)), nl.vectors]) if self.vectors else None
        return out, SparseGradients(np.concatenate([self_values, pair]), np.concatenate([np.arange(n), nl.center]),
                                    np.concatenate([np.arange(n), nl.neighbour]), vectors)


def _cu(seed, a=3.6, amp=0.1, size=(1, 1, 1)):
    atoms = bulk("Cu", "fcc", a=a, cubic=True) * size
    atoms.rattle(amp, seed=seed)
    return atoms


def _emt_labels(structures):
    energies, forces, virials = [], [], []
    for atoms in structures:
        labelled = atoms.copy()
        labelled.calc = EMT()
        energies.append(labelled.get_potential_energy())
        forces.append(labelled.get_forces())
        virials.append(-labelled.get_stress(voigt=False) * labelled.get_volume())
    return energies, forces, virials


@pytest.fixture(scope="module")
def cu_data():
    structures = [_cu(s, a=3.5 + 0.03 * s) for s in range(8)]
    return structures, *_emt_labels(structures)


def _terms(kind):
    two_body = GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(1.0), delta=1.0, n_sparse=8, sparse_method="uniform")
    if kind == "2b":
        return [two_body]
    if kind == "dot":
        return [GAPTerm(RadialGaussians(), NormalizedDotProductCovariance(4), delta=0.5, n_sparse=20, sparse_method="fps")]
    if kind == "ard":
        kernel = GaussianCovariance(np.array([0.5, 0.6, 0.7, 0.8, 0.9]))
        return [GAPTerm(RadialGaussians(), kernel, delta=0.5, n_sparse=12, sparse_method="cur")]
    return [two_body, GAPTerm(RadialGaussians(), NormalizedDotProductCovariance(4), delta=0.5, n_sparse=20,
                              sparse_method="random")]


def _fitted(cu_data, kind, **kwargs):
    structures, energies, forces, virials = cu_data
    params = dict(e0=0.0, jitter=1e-6, random_state=0)
    params.update(kwargs)
    return SparseGPR(_terms(kind), **params).fit(structures, energies=energies, forces=forces, virials=virials)


def _energy(model, atoms):
    return model.predict(atoms)["energy"][0]



def _finite_difference_forces(model, atoms, h=1e-5):
    """-dE/dr of every atom by central differences (eV/Å)."""
    fd = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for a in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, a] += h
            minus.positions[i, a] -= h
            fd[i, a] = -(_energy(model, plus) - _energy(model, minus)) / (2 * h)
    return fd

@pytest.mark.parametrize("kind", ["2b", "dot", "ard", "2b+dot"])
def test_forces_are_minus_energy_gradient(cu_data, kind):
    model = _fitted(cu_data, kind)
    atoms = _cu(99, a=3.61)
    forces = model.predict(atoms, properties=("forces",))["forces"]
    fd = _finite_difference_forces(model, atoms)
    assert np.abs(forces).max() > 0.1
    assert np.abs(fd - forces).max() <= 1e-6 * np.abs(forces).max()
    np.testing.assert_allclose(forces.sum(0), 0.0, atol=1e-10)


@pytest.mark.parametrize("kind", ["2b", "2b+dot"])
def test_virial_and_stress_are_the_strain_derivative(cu_data, kind):
    model = _fitted(cu_data, kind)
    atoms = _cu(98, a=3.58)
    out = model.predict(atoms, properties=("virial", "stress"))
    fd = -strain_derivative(lambda strained: _energy(model, strained), atoms, 1e-5)
    virial = out["virial"][0]
    assert np.abs(virial - fd).max() <= 1e-6 * np.abs(virial).max()
    voigt = -virial / atoms.get_volume()
    np.testing.assert_allclose(out["stress"][0], voigt[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]], rtol=1e-12)


def test_noise_free_data_of_a_known_model_are_reproduced(cu_data):
    structures = cu_data[0]
    rows = np.asarray(RadialGaussians().transform(structures))
    terms = [GAPTerm(RadialGaussians(), GaussianCovariance(1.5), delta=0.7, sparse_points=rows[::2])]
    truth = SparseGPR(terms, e0=0.0).fit(structures, energies=np.zeros(len(structures)))
    alpha = np.random.default_rng(1).normal(size=truth.alpha_.shape)
    truth.alpha_, truth.terms_[0].alpha = alpha, alpha
    labels = truth.predict(structures, properties=("forces", "virial"))
    forces = np.split(labels["forces"], np.cumsum([len(a) for a in structures])[:-1])
    model = SparseGPR(terms, e0=0.0, default_sigma=(1e-7, 1e-7, 1e-7)).fit(
        structures, energies=labels["energy"], forces=forces, virials=labels["virial"])
    test = [_cu(50 + s, a=3.5 + 0.02 * s) for s in range(3)]
    expected = truth.predict(test, properties=("forces",))
    got = model.predict(test, properties=("forces",))
    np.testing.assert_allclose(got["energy"], expected["energy"], rtol=1e-6)
    np.testing.assert_allclose(got["forces"], expected["forces"], atol=1e-6 * np.abs(expected["forces"]).max())


def test_qr_and_cholesky_solvers_agree(cu_data):
    # Cholesky squares the condition number (here cond(R) ~ 1e6), so compare
    # on a moderately regularised problem.
    structures, energies, forces, virials = cu_data
    terms = [GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(0.4), delta=1.0, n_sparse=6, sparse_method="uniform"),
             GAPTerm(RadialGaussians(), NormalizedDotProductCovariance(4), delta=0.5, n_sparse=10, sparse_method="random")]
    fits = [SparseGPR(terms, e0=0.0, jitter=1e-3, random_state=0, solver=solver).fit(
        structures, energies=energies, forces=forces, virials=virials) for solver in ("qr", "cholesky")]
    qr, chol = fits
    np.testing.assert_allclose(chol.alpha_, qr.alpha_, atol=1e-5 * np.abs(qr.alpha_).max())
    test = [_cu(70), _cu(71, a=3.55)]
    a = qr.predict(test, properties=("forces",), return_std=True)
    b = chol.predict(test, properties=("forces",), return_std=True)
    for key in ("energy", "forces", "energy_std"):
        np.testing.assert_allclose(b[key], a[key], rtol=1e-6, atol=1e-6 * np.abs(a[key]).max())


def test_blockwise_assembly_equals_one_block(cu_data):
    from kernelpot.models.gap.design import DesignBuilder
    from kernelpot.models.gap.labels import check_labels

    structures, energies, forces, virials = cu_data
    model = _fitted(cu_data, "2b+dot", jitter=1e-4)
    labels = check_labels(structures, energies, [None] + forces[1:], virials, None)
    builder = DesignBuilder.from_model(model)
    A, y = builder.rows(structures, list(range(len(structures))), labels)
    blocks = [builder.rows(structures, [s], labels) for s in range(len(structures))]
    A_blocks = np.vstack([b[0] for b in blocks])
    y_blocks = np.concatenate([b[1] for b in blocks])
    assert A.shape == A_blocks.shape == (8 + 7 * 12 + 8 * 6, model.alpha_.size)
    normal, normal_blocks = A.T @ A, A_blocks.T @ A_blocks
    np.testing.assert_allclose(normal_blocks, normal, rtol=0, atol=1e-10 * np.abs(normal).max())
    np.testing.assert_allclose(A_blocks.T @ y_blocks, A.T @ y, rtol=0, atol=1e-10 * np.abs(A.T @ y).max())


def test_blockwise_fit_equals_one_block_fit(cu_data):
    one = _fitted(cu_data, "2b+dot", jitter=1e-4, max_block_memory=1e3)
    many = _fitted(cu_data, "2b+dot", jitter=1e-4, max_block_memory=1e-4)
    assert many.memory_estimate_["block"] < one.memory_estimate_["block"]
    # round-off of a different sequence of Householder updates, amplified by cond(K_MM + A^T A)
    np.testing.assert_allclose(many.alpha_, one.alpha_, rtol=1e-9, atol=1e-9 * np.abs(one.alpha_).max())


def test_energy_only_fit_and_variance_match_dense_dtc():
    structures = [_cu(s, a=3.5 + 0.02 * s) for s in range(6)]
    energies = np.array(_emt_labels(structures)[0])
    test = [_cu(40), _cu(41, a=3.7)]
    cutoff, width, theta, delta, sigma = 4.0, 1.0, 0.3, 1.3, 0.05
    grid = np.linspace(2.3, 3.8, 5)[:, None]
    term = GAPTerm(Distance2B(cutoff, width), GaussianCovariance(theta), delta=delta, sparse_points=grid)
    model = SparseGPR([term], e0=-0.1, default_sigma=(sigma, 1.0, 1.0), sigma_per_atom=False, jitter=0.0)
    out = model.fit(structures, energies=energies).predict(test, return_std=True)

    def k(r, s):
        w_r, w_s = cosine_cutoff(r, cutoff, width)[0], cosine_cutoff(s, cutoff, width)[0]
        return delta**2 * w_r[:, None] * w_s[None, :] * np.exp(-((r[:, None] - s[None, :]) ** 2) / (2 * theta**2))

    def rows(atoms):
        return Distance2B(cutoff, width).transform(atoms)[:, 0]

    z = grid[:, 0]
    knm = np.array([k(rows(a), z).sum(0) for a in structures])
    kmm = k(z, z)
    y = energies + 0.1 * 4
    post = np.linalg.inv(kmm + knm.T @ knm / sigma**2)
    alpha = post @ knm.T @ y / sigma**2
    np.testing.assert_allclose(model.alpha_, alpha, rtol=1e-6)
    kstar = np.array([k(rows(a), z).sum(0) for a in test])
    kss = np.array([k(rows(a), rows(a)).sum() for a in test])
    var = kss - np.einsum("sm,mn,sn->s", kstar, np.linalg.inv(kmm), kstar) + np.einsum("sm,mn,sn->s", kstar, post, kstar)
    np.testing.assert_allclose(out["energy"], kstar @ alpha - 0.4, rtol=1e-9)
    np.testing.assert_allclose(out["energy_std"], np.sqrt(var), rtol=1e-5)


def test_config_type_sigma_downweights_a_group(cu_data):
    structures, energies, forces, _ = cu_data
    corrupted = list(energies)
    corrupted[0] += 5.0
    types = ["bad"] + ["default"] * (len(structures) - 1)
    params = dict(e0=0.0, jitter=1e-6, default_sigma=(0.001, 0.05, 0.05))
    robust = SparseGPR(_terms("2b"), config_type_sigma={"bad": (1e4, 0.05, 0.05)}, **params).fit(
        structures, energies=corrupted, forces=forces, config_types=types)
    without = SparseGPR(_terms("2b"), **params).fit(
        structures, energies=[None] + list(energies[1:]), forces=forces)
    naive = SparseGPR(_terms("2b"), **params).fit(structures, energies=corrupted, forces=forces)
    test = [_cu(60)]
    assert robust.predict(test)["energy"] == pytest.approx(without.predict(test)["energy"], abs=1e-5)
    assert abs(naive.predict(test)["energy"][0] - without.predict(test)["energy"][0]) > 0.01


def test_sigma_per_atom_scales_energy_sigma_by_sqrt_n_atoms(cu_data):
    structures, energies, forces, virials = cu_data
    per_atom = SparseGPR(_terms("2b"), e0=0.0, default_sigma=(0.01, 0.1, 0.05)).fit(
        structures, energies=energies, forces=forces, virials=virials)
    absolute = SparseGPR(_terms("2b"), e0=0.0, sigma_per_atom=False, default_sigma=(0.02, 0.1, 0.1)).fit(
        structures, energies=energies, forces=forces, virials=virials)
    np.testing.assert_allclose(per_atom.alpha_, absolute.alpha_, rtol=1e-8)


def test_e0_methods():
    dimer = Atoms("CuAg", positions=[[0, 0, 0], [0, 0, 2.6]])
    cu, ag = Atoms("Cu"), Atoms("Ag")
    term = [GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(1.0), n_sparse=3, sparse_method="uniform")]
    data = [dimer, cu, ag]
    energies = [-7.0, -3.0, -2.5]
    isolated = SparseGPR(term, e0="isolated").fit(data, energies=energies)
    assert isolated.e0_ == {29: -3.0, 47: -2.5}
    # An isolated atom has no pair, so its energy is exactly e0.
    np.testing.assert_allclose(isolated.predict([cu, ag])["energy"], [-3.0, -2.5])
    average = SparseGPR(term, e0="average").fit(data, energies=energies)
    assert average.e0_ == {29: pytest.approx(-12.5 / 4), 47: pytest.approx(-12.5 / 4)}
    given = SparseGPR(term, e0={"Cu": -1.0, 47: -2.0}).fit(data, energies=energies)
    assert given.e0_ == {29: -1.0, 47: -2.0}


def test_e0_composition_fits_energies_on_atom_counts():
    term = [GAPTerm(Distance2B(3.0, 1.0), GaussianCovariance(1.0), n_sparse=3, sparse_method="uniform")]
    # Far-apart atoms (no pairs within the cutoff): the energies are exactly the per-species references.
    def spread(formula):
        atoms = Atoms(formula)
        atoms.positions = [[5.0 * i, 0, 0] for i in range(len(atoms))]
        return atoms
    close = Atoms("CuAg", positions=[[0, 0, 0], [0, 0, 2.5]])  # gives the 2b term its rows
    data = [spread("Cu"), spread("Cu2"), spread("CuAg2"), spread("Ag3"), close]
    energies = [-3.0, -6.0, -8.0, -7.5, -5.5]
    model = SparseGPR(term, e0="composition").fit(data, energies=energies)
    assert model.e0_ == {29: pytest.approx(-3.0), 47: pytest.approx(-2.5)}
    # Collinear compositions (always 1 Ag per 2 Cu): the minimum-norm split, which reproduces every total.
    pairs = [spread("Cu2Ag"), spread("Cu4Ag2"), close + Atoms("Cu", positions=[[9.0, 0, 0]])]
    collinear = SparseGPR(term, e0="composition").fit(pairs, energies=[-9.0, -18.0, -9.0])
    assert 2 * collinear.e0_[29] + collinear.e0_[47] == pytest.approx(-9.0)
    assert collinear.e0_[29] == pytest.approx(2 * collinear.e0_[47])  # minimum norm: along (2, 1)
    with pytest.raises(ValueError, match="'composition' needs energies"):
        SparseGPR(term, e0="composition").fit(data, forces=[np.zeros((len(a), 3)) for a in data])


def _mlearn(bundled_data):
    # the bundled copy holds the stresses in ASE's convention (data/mlearn_si/to_ase_stress.py)
    root = bundled_data / "mlearn_si"
    return read_labelled(root / "mlearn_Si_training.extxyz"), read_labelled(root / "mlearn_Si_test.extxyz")


def _si_model(**kwargs):
    term = GAPTerm(Distance2B(5.0, 1.0), GaussianCovariance(0.5), delta=2.0, n_sparse=20, sparse_method="uniform")
    return SparseGPR([term], default_sigma=(0.005, 0.1, 0.5), jitter=1e-8, **kwargs)


def test_learning_from_forces_improves_energies(bundled_data):
    train, test = _mlearn(bundled_data)
    n_atoms = np.array([len(a) for a in test.atoms])
    rng = np.random.default_rng(0)
    order = rng.permutation(len(train))

    def energy_rmse(n, with_forces):
        idx = order[:n]
        model = _si_model().fit([train.atoms[i] for i in idx], energies=[train.energies[i] for i in idx],
                                forces=[train.forces[i] for i in idx] if with_forces else None)
        error = (model.predict(test.atoms)["energy"] - np.array(test.energies)) / n_atoms
        return np.sqrt(np.mean(error**2))

    # A pair potential cannot fit Si exactly: beyond ~10 structures the test
    # error saturates near 40 meV/atom, so the curve is checked below that.
    curve = [energy_rmse(n, True) for n in (1, 3, 10)]
    assert curve[0] > curve[1] > curve[2]
    assert energy_rmse(3, False) > curve[1]
    assert energy_rmse(10, False) > curve[2]


def check_frozen_gap_fit_reference(bundled_data, name, make_term, atol=1e-5):
    """Refit the frozen gap_fit reference ``tests/reference/<name>`` with ``make_term(sparse_points)`` and
    compare the predictions (energies, forces and virials of the mlearn Si test structures)."""
    from pathlib import Path

    ref = np.load(Path(__file__).parent / "reference" / name / "reference.npz")
    train, test = _mlearn(bundled_data)
    idx = ref["train_indices"]
    model = SparseGPR([make_term(ref["sparse_points"])], default_sigma=tuple(ref["default_sigma"]),
                      e0={"Si": float(ref["e0"])}, jitter=1e-10).fit(
        [train.atoms[i] for i in idx], energies=[train.energies[i] for i in idx],
        forces=[train.forces[i] for i in idx])
    out = model.predict(test.atoms[: int(ref["n_test"])], properties=("forces", "virial"))
    np.testing.assert_allclose(out["energy"], ref["energies"], atol=atol)
    np.testing.assert_allclose(out["forces"], ref["forces"], atol=atol)
    np.testing.assert_allclose(out["virial"], ref["virials"], atol=100 * atol)


def test_parity_with_frozen_gap_fit_reference(bundled_data):
    # GAP's distance_2b counts each pair twice: delta_kernelpot = 2 * delta_GAP (= 1.0).
    check_frozen_gap_fit_reference(bundled_data, "gap_distance_2b", lambda points: GAPTerm(
        Distance2B(5.0, 1.0), GaussianCovariance(0.5), delta=2.0, sparse_points=points))


def test_mlearn_virial_sign_is_learnt_consistently(bundled_data):
    # A model fitted without virials predicts virials correlated with the
    # stored ones only if the kbar -> eV conversion has the right sign.
    train, test = _mlearn(bundled_data)
    idx = np.arange(0, len(train), 4)
    model = _si_model().fit([train.atoms[i] for i in idx], energies=[train.energies[i] for i in idx],
                            forces=[train.forces[i] for i in idx])
    predicted = model.predict(test.atoms, properties=("virial",))["virial"]
    assert np.corrcoef(predicted.ravel(), np.array(test.virials).ravel())[0, 1] > 0.3


# ----------------------------------------------------------------- validation
def _small():
    return [_cu(1), _cu(2, a=3.55)]


def _two_body(**kwargs):
    params = dict(delta=1.0, n_sparse=4, sparse_method="uniform")
    params.update(kwargs)
    return GAPTerm(Distance2B(4.0, 1.0), params.pop("kernel", GaussianCovariance(1.0)), **params)


@pytest.mark.parametrize(
    "terms, kwargs, error, match",
    [
        (None, {}, ValueError, r"`terms` must be a non-empty list of GAPTerm"),
        ([], {}, ValueError, r"`terms` must be a non-empty list"),
        ("single", {}, TypeError, r"got a single GAPTerm \(wrap it in a list\)"),
        (["x"], {}, TypeError, r"`terms\[0\]` must be a GAPTerm; got str"),
        ([GAPTerm(object(), GaussianCovariance())], {}, TypeError, r"terms\[0\].descriptor must have a transform"),
        ([GAPTerm(Distance2B(), "se")], {}, TypeError, r"terms\[0\].kernel must be GaussianCovariance"),
        ([_two_body(delta=0.0)], {}, ValueError, r"terms\[0\].delta must be a finite number > 0 eV; got 0.0"),
        ([_two_body(n_sparse=0)], {}, ValueError, r"terms\[0\].n_sparse must be an integer >= 1; got 0"),
        ([_two_body(sparse_method="kmeans")], {}, ValueError, r"sparse_method must be one of \['cur', 'fps'"),
        ([_two_body(sparse_points=np.ones(3))], {}, ValueError, r"sparse_points must be a finite 2-D array"),
        ([_two_body(sparse_points=np.ones((3, 2)))], {}, ValueError, r"sparse_points have 2 features but the descriptor gives 1"),
        ("ok", {"solver": "lu"}, ValueError, r"`solver` must be one of \['qr', 'cholesky'\]; got 'lu'"),
        ("ok", {"jitter": -1.0}, ValueError, r"`jitter` must be a finite number >= 0 or one such number per term; "
                                             r"got -1.0"),
        ("ok", {"jitter": [1e-8, 1e-8]}, ValueError, r"`jitter` has 2 values but the model has 1 terms"),
        ("ok", {"jitter": "small"}, ValueError, r"`jitter` must be a finite number >= 0"),
        ("ok", {"max_block_memory": 0}, ValueError, r"`max_block_memory` must be a number > 0 \(MiB\); got 0"),
        ("ok", {"sigma_per_atom": "yes"}, TypeError, r"`sigma_per_atom` must be a bool; got 'yes'"),
        ("ok", {"default_sigma": (0.1, 0.1)}, ValueError, r"`default_sigma` must have 3 or 4 entries"),
        ("ok", {"default_sigma": (0.1, 0.0, 0.1)}, ValueError, r"`default_sigma` energy, force and virial sigmas must be finite and > 0"),
        ("ok", {"default_sigma": "abc"}, TypeError, r"`default_sigma` must be 3 or 4 numbers"),
        ("ok", {"config_type_sigma": [1, 2, 3]}, TypeError, r"`config_type_sigma` must be a dict"),
        ("ok", {"config_type_sigma": {"md": (1.0, -1.0, 1.0)}}, ValueError, r"`config_type_sigma\['md'\]` energy, force"),
        ("ok", {"e0": "mean"}, ValueError, r"`e0` must be 'average', 'composition', 'isolated', a number or a dict; got 'mean'"),
        ("ok", {"e0": "isolated"}, ValueError, r"`e0`='isolated' needs a one-atom structure .* none for Z=\[29\]"),
        ("ok", {"e0": {"Ag": 1.0}}, ValueError, r"`e0` dict has no value for species Z=\[29\]"),
        ("ok", {"e0": {"Qq": 1.0}}, ValueError, r"`e0` key 'Qq' is not a chemical symbol"),
        ("ok", {"e0": float("nan")}, ValueError, r"`e0` must be 'average', 'isolated', a finite number or a dict"),
        ([_two_body(sparse_points=np.array([[4.5]]))], {}, ValueError, r"terms\[0\]: every sparse point has zero cutoff weight"),
        # a pair term whose species pair no structure has: the error names the term (was anonymous)
        ([_two_body(), GAPTerm(Distance2B(4.0, 1.0, Z1=29, Z2=79), GaussianCovariance(1.0), delta=1.0, n_sparse=4)],
         {}, ValueError, r"terms\[1\] \(Distance2B\): no descriptor rows in the training structures"),
        ([_two_body(kernel=GaussianCovariance(-1.0))], {}, ValueError, r"`sigma` must be a finite number > 0"),
        ([_two_body(kernel=GaussianCovariance([1.0, 2.0]))], {}, ValueError, r"`sigma` has 2 length scales but the descriptor has 1 features"),
        ([_two_body(kernel=NormalizedDotProductCovariance([1, 2]))], {}, ValueError, r"`zeta` must be a scalar > 0"),
        ([_two_body(kernel=NormalizedDotProductCovariance(True))], {}, TypeError, r"`zeta` must be a number"),
        ([_two_body(sparse_method="fps", sparse_points=np.array([[2.0], [2.0]]))], {"jitter": 0.0},
         np.linalg.LinAlgError, r"K_MM .* is not positive definite; increase `jitter`"),
    ],
)
def test_fit_parameter_validation(terms, kwargs, error, match):
    if terms == "ok":
        terms = [_two_body()]
    elif terms == "single":
        terms = _two_body()
    structures = _small()
    with pytest.raises(error, match=match):
        SparseGPR(terms, **kwargs).fit(structures, energies=[-1.0, -2.0])


def test_uniform_sparse_points_need_one_feature():
    term = GAPTerm(RadialGaussians(), GaussianCovariance(1.0), n_sparse=4, sparse_method="uniform")
    with pytest.raises(ValueError, match=r"sparse_method='uniform' needs a 1-feature descriptor .* got 5 features"):
        SparseGPR([term]).fit(_small(), energies=[-1.0, -2.0])


def test_dot_product_rejects_zero_features():
    with pytest.raises(ValueError, match=r"NormalizedDotProductCovariance needs non-zero feature vectors; rows \[1\]"):
        NormalizedDotProductCovariance(2)(np.array([[1.0, 0.0], [0.0, 0.0]]), np.ones((1, 2)))


def test_virials_need_descriptor_vectors():
    term = GAPTerm(RadialGaussians(vectors=False), GaussianCovariance(1.0), n_sparse=4, sparse_method="fps")
    with pytest.raises(ValueError, match=r"virials were given but RadialGaussians returns no gradient `vectors`"):
        SparseGPR([term], e0=0.0).fit(_small(), energies=[-1.0, -2.0], virials=np.zeros((2, 3, 3)))


def test_cholesky_failure_names_the_fix():
    # Without jitter, duplicated sparse points make the normal matrix singular.
    term = _two_body(sparse_points=np.array([[2.5], [2.5], [3.0]]))
    with pytest.raises(np.linalg.LinAlgError, match=r"increase `jitter`"):
        SparseGPR([term], solver="cholesky", jitter=0.0, e0=0.0).fit(_small(), energies=[-1.0, -2.0])


@pytest.mark.parametrize(
    "labels, error, match",
    [
        ({"energies": [-1.0]}, ValueError, r"`energies` has 1 entries but 2 structures were given"),
        ({"energies": 3.0}, TypeError, r"`energies` must be a sequence with one entry per structure; got float"),
        ({"energies": [-1.0, np.nan]}, ValueError, r"`energies` of structure 1 contains NaN or inf"),
        ({"energies": [[1.0], -2.0]}, ValueError, r"`energies` entry of structure 0 must be a scalar"),
        ({"forces": [np.zeros((4, 3)), np.zeros((3, 3))]}, ValueError, r"`forces` of structure 1 must have shape \(4, 3\)"),
        ({"forces": [np.zeros((4, 3)), np.full((4, 3), np.inf)]}, ValueError, r"`forces` of structure 1 contains NaN or inf"),
        ({"forces": np.zeros((7, 3))}, ValueError, r"`forces` given as one array must have shape \(n_atoms_total, 3\) = \(8, 3\)"),
        ({"virials": np.zeros((2, 9))}, ValueError, r"`virials` of structure 0 must have shape \(3, 3\)"),
        ({"virials": [None, np.full((3, 3), np.nan)]}, ValueError, r"`virials` of structure 1 contains NaN"),
        ({"config_types": [1, "a"]}, TypeError, r"`config_types` entry of structure 0 must be a str or None"),
        ({}, ValueError, r"no observations: give at least one of `energies`, `forces`, `virials`"),
        ({"energies": [None, None]}, ValueError, r"no observations"),
    ],
)
def test_label_validation(labels, error, match):
    with pytest.raises(error, match=match):
        SparseGPR([_two_body()], e0=0.0).fit(_small(), **labels)


def test_e0_average_needs_energies():
    with pytest.raises(ValueError, match=r"`e0`='average' needs energies; none were given"):
        SparseGPR([_two_body()]).fit(_small(), forces=[np.zeros((4, 3))] * 2)


def test_concatenated_forces_equal_list_of_forces(cu_data):
    structures, energies, forces, _ = cu_data
    a = SparseGPR(_terms("2b"), e0=0.0).fit(structures, energies=energies, forces=forces)
    b = SparseGPR(_terms("2b"), e0=0.0).fit(structures, energies=energies, forces=np.concatenate(forces))
    np.testing.assert_array_equal(a.alpha_, b.alpha_)


def test_predict_validation(cu_data):
    model = SparseGPR([_two_body()], e0=0.0)
    with pytest.raises(ValueError, match=r"this SparseGPR is not fitted yet; call fit first"):
        model.predict(_small())
    model.fit(cu_data[0], energies=cu_data[1])
    with pytest.raises(ValueError, match=r"`properties` must be among \['energy', 'forces', 'virial', 'stress', 'local_energy'\]; got \['hessian'\]"):
        model.predict(_small(), properties=("energy", "hessian"))
    with pytest.raises(ValueError, match=r"species Z=\[47\] were not in the training set"):
        model.predict(Atoms("Ag2", positions=[[0, 0, 0], [0, 0, 2.5]]))
    with pytest.raises(ValueError, match=r"stress needs a periodic cell; structure 0 has pbc=\[False, False, False\]"):
        model.predict(Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.5]]), properties="stress")
    with pytest.raises(TypeError, match=r"structure 0 is a str, not an ase.Atoms"):
        model.predict(["Cu"])


def test_predict_virial_needs_vectors(cu_data):
    structures, energies = cu_data[:2]
    term = GAPTerm(RadialGaussians(vectors=False), GaussianCovariance(1.0), n_sparse=4, sparse_method="fps")
    model = SparseGPR([term], e0=0.0).fit(structures, energies=energies)
    with pytest.raises(ValueError, match=r"RadialGaussians gives no gradient `vectors`; virial and stress"):
        model.predict(structures[:1], properties=("virial",))


def test_parameters_are_not_changed_by_fit(cu_data):
    terms = _terms("2b+dot")
    sigma = (0.002, 0.1, 0.05)
    model = SparseGPR(terms, default_sigma=sigma, e0=0.0)
    before = repr(model.get_params(deep=False))
    model.fit(cu_data[0], energies=cu_data[1])
    assert repr(model.get_params(deep=False)) == before
    assert model.terms is terms and model.default_sigma is sigma


# ----------------------------------------------------------------------- SOAP
def _soap_term(**kwargs):
    from kernelpot.descriptors import soap

    descriptor = soap.SOAP(["Cu"], r_cut=4.0, n_max=3, l_max=3, sigma=0.5, periodic=True)
    return GAPTerm(descriptor, NormalizedDotProductCovariance(4), delta=0.3, n_sparse=16, sparse_method="cur", **kwargs)


def test_soap_term_forces_are_minus_energy_gradient(cu_data):
    structures, energies, forces, _ = cu_data
    model = SparseGPR([_terms("2b")[0], _soap_term()], e0=0.0, jitter=1e-6).fit(
        structures, energies=energies, forces=forces)
    atoms = _cu(97, a=3.59)
    predicted = model.predict(atoms, properties=("forces",))["forces"]
    fd = _finite_difference_forces(model, atoms)
    assert np.abs(fd - predicted).max() <= 1e-6 * np.abs(predicted).max()
    # The fit with SOAP beats the pair term alone on held-out EMT forces.
    test = [_cu(80 + s, a=3.55 + 0.02 * s) for s in range(3)]
    reference = np.concatenate(_emt_labels(test)[1])
    pair_only = SparseGPR(_terms("2b"), e0=0.0, jitter=1e-6).fit(structures, energies=energies, forces=forces)
    error = [np.sqrt(np.mean((m.predict(test, properties=("forces",))["forces"] - reference) ** 2))
             for m in (model, pair_only)]
    assert error[0] < error[1]


def test_a_descriptor_without_vectors_cannot_fit_virials(cu_data):
    from kernelpot.descriptors.soap import SOAP

    class SOAPWithoutVectors(SOAP):  # a descriptor that cannot give the strain derivative
        def transform(self, X, *, gradients=False):
            out = super().transform(X, gradients=gradients)
            if not gradients:
                return out
            features, G = out
            return features, SparseGradients(G.values, G.center, G.neighbour)

    structures, energies, _, virials = cu_data
    descriptor = SOAPWithoutVectors(["Cu"], r_cut=4.0, n_max=3, l_max=3, sigma=0.5, periodic=True)
    term = GAPTerm(descriptor, NormalizedDotProductCovariance(4), delta=0.3, n_sparse=16, sparse_method="cur")
    with pytest.raises(ValueError, match=r"virials were given but SOAPWithoutVectors returns no gradient `vectors`"):
        SparseGPR([term], e0=0.0).fit(structures, energies=energies, virials=virials)


def test_local_energies_sum_to_the_total(cu_data):
    model = _fitted(cu_data, "2b+dot")
    test = [_cu(90), _cu(91, a=3.55, size=(2, 1, 1))]
    out = model.predict(test, properties=("local_energy",))
    assert out["local_energy"].shape == (12,)
    np.testing.assert_allclose([out["local_energy"][:4].sum(), out["local_energy"][4:].sum()], out["energy"],
                               rtol=1e-12)
    # A pair-only model of a perfect crystal gives every atom the same energy.
    pair = _fitted(cu_data, "2b")
    perfect = pair.predict(bulk("Cu", "fcc", a=3.6, cubic=True), properties="local_energy")["local_energy"]
    np.testing.assert_allclose(perfect, perfect[0], atol=1e-10)


def test_local_energies_need_rows_per_atom(cu_data):
    class PerStructure(RadialGaussians):
        def transform(self, X, *, gradients=False):
            out = super().transform(X, gradients=gradients)
            features = out[0] if gradients else out
            summed = AtomicFeatures(np.add.reduceat(np.asarray(features), features.offsets[:-1], axis=0),
                                    np.arange(len(features.offsets)), features.numbers[features.offsets[:-1]])
            return (summed, out[1]) if gradients else summed

    term = GAPTerm(PerStructure(), GaussianCovariance(1.0), n_sparse=4, sparse_method="fps")
    model = SparseGPR([term], e0=0.0).fit(cu_data[0], energies=cu_data[1])
    with pytest.raises(ValueError, match=r"local energies need one descriptor row per atom; PerStructure gives 1 rows for 4 atoms"):
        model.predict(cu_data[0][:1], properties="local_energy")


def test_cur_sparse_points_beyond_the_feature_rank_are_distinct():
    from kernelpot.models.gap.sparse import select_sparse

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2)) @ rng.normal(size=(2, 5))  # rank 2
    Z = select_sparse(X, 10, "cur", rng)
    assert Z.shape == (10, 5)
    assert len(np.unique(Z, axis=0)) == 10


@pytest.mark.parametrize("method", ["fps", "cur"])
def test_one_feature_descriptor_with_fps_or_cur(method):
    """distance_2b rows have one feature; FPS and CUR pick among them as among any rows (found by the fuzz suite:
    the selectors wanted 2 features)."""
    structures = [_cu(s, a=3.5 + 0.03 * s) for s in range(3)]
    energies, forces, _ = _emt_labels(structures)
    term = GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(0.5), delta=1.0, n_sparse=6, sparse_method=method)
    model = SparseGPR([term], random_state=0).fit(structures, energies=energies, forces=forces)
    points = np.sort(model.terms_[0].sparse_X[:, 0])
    assert len(points) == 6 and len(np.unique(points)) == 6
    rows = np.asarray(Distance2B(4.0, 1.0).transform(structures))[:, 0]
    assert np.all(np.isin(points, rows))  # training rows, not a grid


# ------------------------------------------------------- the K_MM factor
def test_kmm_factor_is_the_cholesky_factor_of_the_block_diagonal_kmm():
    """Factored term by term (each block in place), L equals the Cholesky factor of the whole K_MM."""
    import scipy.linalg as sla

    from kernelpot.models.gap.terms import factor_kmm

    structures = [_cu(seed, size=(2, 1, 1)) for seed in range(3)]
    terms = [_two_body(n_sparse=6), _soap_term()]
    model = SparseGPR(terms, random_state=0).fit(structures, energies=[-1.0, -1.1, -0.9])
    jitter = [1e-6, 1e-4]
    whole = sla.block_diag(*[t.kmm() for t in model.terms_])
    whole[np.diag_indices_from(whole)] += np.concatenate([np.full(t.n_sparse, j * t.delta**2)
                                                          for t, j in zip(model.terms_, jitter)])
    kmm, L = factor_kmm(model.terms_, jitter)
    np.testing.assert_array_equal(kmm, whole)
    np.testing.assert_allclose(L, np.linalg.cholesky(whole), rtol=0, atol=1e-12 * np.abs(whole).max())
    assert np.array_equal(L, np.tril(L))
    kept, L_only = factor_kmm(model.terms_, jitter, keep_kmm=False)
    assert kept is None and np.array_equal(L_only, L)
    single_kmm, single_L = factor_kmm(model.terms_[1:], jitter[1])
    np.testing.assert_allclose(single_L @ single_L.T, single_kmm, rtol=0, atol=1e-12 * np.abs(single_kmm).max())
    assert np.array_equal(single_L, np.tril(single_L))


def test_kmm_factor_names_the_term_that_is_not_positive_definite():
    from kernelpot.models.gap.terms import factor_kmm

    structures = [_cu(seed) for seed in range(2)]
    terms = [_two_body(n_sparse=4), _two_body(sparse_method="fps", sparse_points=np.array([[2.0], [2.0]]))]
    model = SparseGPR(terms, random_state=0, jitter=[1e-8, 1e-6]).fit(structures, energies=[-1.0, -2.0])
    with pytest.raises(np.linalg.LinAlgError, match=r"terms\[1\]: K_MM .* not positive definite; increase `jitter` "
                                                    r"\(now \[1e-08, 0.0\]\)"):
        factor_kmm(model.terms_, [1e-8, 0.0])
