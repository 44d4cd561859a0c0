"""Predictive variances of SparseGPR (energies, forces, virials, local energies) against brute force.

The reference is built without any of the model's variance code: the
covariances of forces and virials with the sparse points and with
themselves are central finite differences (in positions, or in strain) of
the *energy* covariance ``δ² Σ w w' k``, and the DTC variance is evaluated
in its dense form ``K_** - Q_*N (Q_NN + Σ)^-1 Q_N*`` with
``Q = K_·M K_MM^-1 K_M·`` (Quiñonero-Candela & Rasmussen 2005, eq. 20b).
"""

import numpy as np
import pytest
import scipy.linalg as sla
from test_sparse_gpr import RadialGaussians, _cu, _emt_labels

from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.kernels import GaussianCovariance, LinearCovariance, NormalizedDotProductCovariance
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.models.gap.terms import VIRIAL_COMPONENTS, row_weights

H = 1e-4  # Å (and strain) for first derivatives of the sparse covariances
# The prior covariance sums O(n_pairs²) terms (~1e3), so its second difference
# loses ~1e-13/H2² to round-off: a larger step, Richardson-extrapolated (error ~1e-8 of the prior).
H2 = 5e-4


def _terms(kind):
    two_body = GAPTerm(Distance2B(4.0, 1.0), GaussianCovariance(0.7), delta=0.8, n_sparse=6, sparse_method="uniform")
    dot = GAPTerm(RadialGaussians(), NormalizedDotProductCovariance(4), delta=0.5, n_sparse=8, sparse_method="fps")
    ard = GAPTerm(RadialGaussians(), GaussianCovariance(np.array([0.5, 0.6, 0.7, 0.8, 0.9])), delta=0.5,
                  n_sparse=8, sparse_method="fps")
    zeta2 = GAPTerm(RadialGaussians(), NormalizedDotProductCovariance(2), delta=0.5, n_sparse=8, sparse_method="fps")
    linear = GAPTerm(RadialGaussians(), LinearCovariance(), delta=0.5, n_sparse=8, sparse_method="fps")
    return {"2b": [two_body], "dot": [dot], "ard": [ard], "2b+dot": [two_body, dot], "zeta2": [zeta2],
            "linear": [linear]}[kind]


@pytest.fixture(scope="module")
def train():
    structures = [_cu(s, a=3.55 + 0.03 * s) for s in range(3)]
    energies, forces, _ = _emt_labels(structures)
    return structures, energies, forces


def _fit(train, kind):
    structures, energies, forces = train
    model = SparseGPR(_terms(kind), e0=0.0, jitter=1e-8, default_sigma=(0.02, 0.1, 0.1), sigma_per_atom=False,
                      random_state=0)
    return model.fit(structures, energies=energies, forces=forces)


def _rows(term, atoms):
    X = np.asarray(term.descriptor.transform([atoms]))
    return X, row_weights(term.descriptor, X)[0]


def _energy_k(model, atoms):
    """(n_sparse_total,) covariance of E(atoms) with the sparse points."""
    out = []
    for t in model.terms_:
        X, _ = _rows(t, atoms)
        out.append(t.knm(X)[0].sum(0))
    return np.concatenate(out)


def _energy_cov(model, a, b):
    """Prior covariance of E(a) and E(b); ``a``, ``b`` are Atoms or their cached ``_all_rows``."""
    a = a if isinstance(a, list) else _all_rows(model, a)
    b = b if isinstance(b, list) else _all_rows(model, b)
    return sum(t.delta**2 * wa @ t.kernel(Xa, Xb) @ wb for t, (Xa, wa), (Xb, wb) in zip(model.terms_, a, b))


def _all_rows(model, atoms):
    return [_rows(t, atoms) for t in model.terms_]


def _moved(atoms, i, c, h):
    out = atoms.copy()
    out.positions[i, c] += h
    return out


def _strained(atoms, a, b, t):
    strain = np.eye(3)
    strain[a, b] += t / 2
    strain[b, a] += t / 2
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ strain, scale_atoms=True)
    return out


def _functionals(atoms, with_virial):
    """Displacement maps (atoms, ±h) -> perturbed atoms: 3 per atom, then 6 strains."""
    maps = [lambda x, h, i=i, c=c: _moved(x, i, c, h) for i in range(len(atoms)) for c in range(3)]
    if with_virial:
        maps += [lambda x, h, a=a, b=b: _strained(x, a, b, h) for a, b in VIRIAL_COMPONENTS]
    return maps


def _derivative_rows(model, atoms, maps):
    """Richardson-extrapolated central differences (error ~H⁴): the variance cancels ~1e2 of them."""
    def central(m, h):
        return (_energy_k(model, m(atoms, h)) - _energy_k(model, m(atoms, -h))) / (2 * h)

    return np.array([(4 * central(m, H / 2) - central(m, H)) / 3 for m in maps])


def _second_derivative(model, atoms, m):
    """Richardson-extrapolated central difference (error ~H2⁴) of the energy prior covariance."""
    def central(h):
        plus, minus = _all_rows(model, m(atoms, h)), _all_rows(model, m(atoms, -h))
        return (_energy_cov(model, plus, plus) - 2 * _energy_cov(model, plus, minus)
                + _energy_cov(model, minus, minus)) / (4 * h**2)

    return (4 * central(H2 / 2) - central(H2)) / 3


def _brute_force(model, train, test, with_virial):
    structures, _, _ = train
    kmm = sla.block_diag(*[t.kmm() + model.jitter * t.delta**2 * np.eye(t.n_sparse) for t in model.terms_])
    knm, sigma = [], []
    for atoms in structures:
        knm.append(_energy_k(model, atoms)[None])
        knm.append(_derivative_rows(model, atoms, _functionals(atoms, False)))
        sigma += [model.default_sigma[0]] + [model.default_sigma[1]] * 3 * len(atoms)
    knm = np.vstack(knm)
    kmm_inv_kmn = np.linalg.solve(kmm, knm.T)
    inner = knm @ kmm_inv_kmn + np.diag(np.square(sigma))
    out = []
    for atoms in test:
        maps = _functionals(atoms, with_virial)
        k_star = np.vstack([_energy_k(model, atoms)[None], _derivative_rows(model, atoms, maps)])
        prior = np.array([_energy_cov(model, atoms, atoms)] + [_second_derivative(model, atoms, m) for m in maps])
        q_sn = k_star @ kmm_inv_kmn
        out.append((prior - np.einsum("in,in->i", q_sn, np.linalg.solve(inner, q_sn.T).T), prior))
    return out


@pytest.mark.parametrize("kind", ["2b", "dot", "ard", "linear", pytest.param("2b+dot", marks=pytest.mark.slow),
                                  pytest.param("zeta2", marks=pytest.mark.slow)])
def test_force_and_virial_std_equal_dense_dtc_with_finite_difference_covariances(train, kind):
    model = _fit(train, kind)
    test = [_cu(61, a=3.5, amp=0.2)]
    got = model.predict(test, properties=("forces", "virial", "stress"), return_std=True)
    reference = _brute_force(model, train, test, with_virial=True)
    for s, (atoms, (ref, prior)) in enumerate(zip(test, reference)):
        n = len(atoms)
        # The variance is a difference of O(prior) numbers: compare at the
        # accuracy of the finite-difference prior (~1e-7 of it).
        atol_f, atol_v = 1e-6 * prior[1 : 1 + 3 * n].max(), 1e-6 * prior[1 + 3 * n :].max()
        forces_var = got["forces_std"][4 * s : 4 * s + n].ravel() ** 2
        virial_var = got["virial_std"][s][[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]] ** 2
        scale = ref[1 : 1 + 3 * n].max()
        assert scale > 1e-4  # the forces are genuinely uncertain, so the comparison means something
        np.testing.assert_allclose(got["energy_std"][s] ** 2, ref[0], rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(forces_var, ref[1 : 1 + 3 * n], rtol=1e-4, atol=atol_f)
        np.testing.assert_allclose(virial_var, ref[1 + 3 * n :], rtol=1e-4, atol=atol_v)
        np.testing.assert_allclose(got["stress_std"][s], np.sqrt(virial_var) / atoms.get_volume(), rtol=1e-12)


def test_local_energy_std_equals_dense_dtc(train):
    model = _fit(train, "ard")
    atoms = _cu(62)
    got = model.predict(atoms, properties=("local_energy",), return_std=True)["local_energy_std"]
    t = model.terms_[0]
    X, w = _rows(t, atoms)
    k_star = t.knm(X)[0]
    prior = t.delta**2 * w**2
    L, R = model.kmm_cholesky_, model.posterior_factor_
    post = np.linalg.inv(R.T @ R)
    expected = prior - np.einsum("im,mn,in->i", k_star, np.linalg.inv(L @ L.T), k_star) + np.einsum(
        "im,mn,in->i", k_star, post, k_star)
    np.testing.assert_allclose(got**2, expected, rtol=1e-8)
