"""The reverse-mode prediction path (GAPPredictor) against the explicit-gradient path and finite differences.

Models are small GAPs fitted to EMT labels (a real many-body potential): periodic one- and two-species
metals, finite molecules, with and without ``distance_2b`` terms, per-centre-species SOAP terms sharing
one SOAP, dot-product exponents ζ = 1, 2 (both the matrix and the sum route) and 4, and a linear term.
"""

import numpy as np
import pytest
from _finite_differences import strain_derivative
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from kernelpot.descriptors import CentreSpecies
from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.soap import SOAP
from kernelpot.kernels import (
    GaussianCovariance,
    LinearCovariance,
    NormalizedDotProductCovariance,
)
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.models.gap.predictor import GAPPredictor
from kernelpot.structures.neighbours import VerletNeighbours
from kernelpot.structures.packing import pack


def _labelled(frames):
    for atoms in frames:
        atoms.calc = EMT()
    energies = [a.get_potential_energy() for a in frames]
    forces = [a.get_forces() for a in frames]
    for atoms in frames:
        atoms.calc = None
    return energies, forces


def _metal(seed, symbols="Cu", size=(1, 1, 1), amp=0.1):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * size
    if symbols != "Cu":
        atoms.numbers[::4] = 79  # Cu3Au-like
    atoms.rattle(amp, seed=seed)
    return atoms


def _molecules(seed):
    rng = np.random.default_rng(seed)
    out = []
    for name in ("CH4", "H2O", "NH3", "CH3OH"):
        atoms = molecule(name)
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        out.append(atoms)
    return out


def _soap(species, periodic=True, **kw):
    settings = {"r_cut": 3.5, "n_max": 3, "l_max": 2, "sigma": 0.5, "periodic": periodic}
    settings.update(kw)
    return SOAP(species, **settings)


def _model(case):
    """(fitted model, test structures) for one named case."""
    if case == "metal-2b-soap-gap-zeta4":
        train = [_metal(s) for s in range(4)]
        terms = [GAPTerm(Distance2B(cutoff=3.5, cutoff_transition_width=0.5), GaussianCovariance(0.5), delta=1.0,
                         n_sparse=10, sparse_method="uniform"),
                 GAPTerm(_soap([29], rbf="gap", cutoff_transition_width=1.0), NormalizedDotProductCovariance(4),
                         delta=0.2, n_sparse=30)]
        test = [_metal(11, size=(2, 1, 1), amp=0.15)]
    elif case == "alloy-per-species-zeta2-matrix":
        train = [_metal(s, "CuAu") for s in range(4)]
        soap = _soap([29, 79], rbf="gap", cutoff_transition_width=1.0)
        terms = [GAPTerm(Distance2B(cutoff=4.2, cutoff_transition_width=0.5, Z1=a, Z2=b), GaussianCovariance(0.5),
                         n_sparse=8, sparse_method="uniform") for a, b in ((29, 29), (29, 79), (79, 79))]
        terms += [GAPTerm(CentreSpecies(soap, z), NormalizedDotProductCovariance(2), delta=0.3, n_sparse=n)
                  for z, n in ((29, 40), (79, 12))]
        test = [_metal(12, "CuAu", size=(1, 2, 1)), _metal(13, "CuAu")]
    elif case == "molecules-zeta1-no-pairs":
        train = _molecules(0) + _molecules(1)
        terms = [GAPTerm(_soap([1, 6, 7, 8], periodic=False), NormalizedDotProductCovariance(1), delta=0.5,
                         n_sparse=20)]
        test = _molecules(5)
    elif case == "mixed-zeta2-sum-route":
        train = [_metal(0)] + _molecules(0)
        terms = [GAPTerm(Distance2B(cutoff=3.0, cutoff_transition_width=1.0), GaussianCovariance(0.7),
                         n_sparse=6, sparse_method="uniform"),
                 GAPTerm(_soap([1, 6, 7, 8, 29], n_max=4, l_max=3), NormalizedDotProductCovariance(2), n_sparse=12)]
        test = [_metal(7), *_molecules(3)[:2], _metal(8, size=(1, 1, 2))]
    elif case == "metal-linear-and-zeta2":
        train = [_metal(s) for s in range(4)]
        soap = _soap([29], rbf="gap", cutoff_transition_width=1.0)
        terms = [GAPTerm(soap, NormalizedDotProductCovariance(2), delta=0.2, n_sparse=20),
                 GAPTerm(_soap([29], n_max=2, l_max=1), LinearCovariance(), delta=0.05, n_sparse=10)]
        test = [_metal(14, size=(1, 2, 1), amp=0.15)]
    elif case == "molecules-per-species-zeta4-absent-blocks":
        # per-centre-species ζ = 4 terms on molecules: most centres lack some species, so the contraction
        # skips those feature blocks (SOAP.feature_blocks, _DotProductSum.blocked)
        train = _molecules(0) + _molecules(1) + _molecules(2)
        soap = _soap([1, 6, 7, 8], periodic=False, rbf="gap", cutoff_transition_width=1.0)
        terms = [GAPTerm(CentreSpecies(soap, z), NormalizedDotProductCovariance(4), delta=0.3, n_sparse=n)
                 for z, n in ((1, 20), (6, 8), (7, 4), (8, 6))]
        test = _molecules(6)
    else:  # pragma: no cover
        raise KeyError(case)
    energies, forces = _labelled(train)
    model = SparseGPR(terms, e0="average", random_state=0).fit(train, energies=energies, forces=forces)
    return model, test


CASES = ["metal-2b-soap-gap-zeta4", "alloy-per-species-zeta2-matrix", "molecules-zeta1-no-pairs",
         "mixed-zeta2-sum-route", "metal-linear-and-zeta2", "molecules-per-species-zeta4-absent-blocks"]


@pytest.fixture(scope="module", params=CASES)
def case(request):
    return request.param, *_model(request.param)


def _relative(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(np.asarray(b)).max(), 1e-300))


def test_fast_path_equals_explicit_gradients(case):
    name, model, test = case
    properties = ["energy", "forces", "virial"]
    if all(a.pbc.all() for a in test):
        properties.append("stress")
    properties.append("local_energy")   # pair rows split, per-centre-species rows to their centres
    fast = GAPPredictor(model).predict(test, properties)
    explicit = model._predict_explicit(test, pack(test), properties, False, "dtc", None)
    assert set(fast) == set(explicit)
    for key in properties:
        assert _relative(fast[key], explicit[key]) < 1e-10, (name, key)
    # SparseGPR.predict takes the fast path when no variance is asked for
    assert _relative(model.predict(test, properties=properties)["forces"], explicit["forces"]) < 1e-10


def test_fast_forces_are_minus_the_energy_gradient(case):
    name, model, test = case
    atoms = test[0]
    predictor = GAPPredictor(model)
    forces = predictor.predict([atoms], ("energy", "forces"))["forces"]
    step = 1e-5
    numerical = np.zeros_like(forces)
    for i in range(len(atoms)):
        for a in range(3):
            energies = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[i, a] += sign * step
                energies.append(predictor.predict([moved])["energy"][0])
            numerical[i, a] = -(energies[0] - energies[1]) / (2 * step)
    assert _relative(forces, numerical) < 1e-6, name


# Stress needs a periodic structure: the cases whose first test structure is a crystal (the molecules' are not).
@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("molecules")], indirect=True)
def test_fast_stress_is_the_strain_derivative(case):
    name, model, test = case
    atoms = test[0]
    assert atoms.pbc.all(), name
    predictor = GAPPredictor(model)
    virial = predictor.predict([atoms], ("virial",))["virial"][0]
    derivative = strain_derivative(lambda a: predictor.predict([a])["energy"][0], atoms, 1e-5)
    # virial = -dE/dε (symmetrised)
    reference = -0.5 * (derivative + derivative.T)
    assert _relative(0.5 * (virial + virial.T), reference) < 1e-6, name


def test_verlet_neighbours_give_the_same_predictions(case):
    name, model, test = case
    atoms = test[0]
    verlet = VerletNeighbours(skin=0.5)
    predictor = GAPPredictor(model, neighbours=verlet)
    rng = np.random.default_rng(0)
    moved = atoms.copy()
    for step in range(6):
        moved.positions += rng.normal(0.0, 0.03, moved.positions.shape)  # several steps, some past skin / 2
        reused = predictor.predict([moved], ("energy", "forces"))
        fresh = GAPPredictor(model).predict([moved], ("energy", "forces"))
        assert _relative(reused["forces"], fresh["forces"]) < 1e-10, (name, step)
        assert abs(reused["energy"][0] - fresh["energy"][0]) < 1e-10 * max(1.0, abs(fresh["energy"][0]))
    assert verlet.n_builds < verlet.n_calls  # some lists were reused


def test_per_species_terms_share_one_descriptor_evaluation(monkeypatch):
    model, test = _model("alloy-per-species-zeta2-matrix")
    calls = []
    original = SOAP.transform_vjp

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SOAP, "transform_vjp", counting)
    GAPPredictor(model).predict(test, ("energy", "forces"))
    assert len(calls) == 1


def test_predictor_needs_a_fitted_model_with_reverse_mode_descriptors():
    with pytest.raises(ValueError, match="not fitted"):
        GAPPredictor(SparseGPR([GAPTerm(Distance2B(), GaussianCovariance(1.0))]))


@pytest.mark.parametrize("case_name", ["metal-2b-soap-gap-zeta4", "molecules-zeta1-no-pairs", "metal-linear-and-zeta2"])
def test_compiled_gradient_priors_equal_the_pairwise_formula(case_name):
    """The per-atom force priors (one compiled pass, both covariances, cutoff weights) against
    ``second_derivative_pieces`` summed group by group in Python."""
    from kernelpot.models.gap.terms import row_weights
    from kernelpot.models.gap.variance import _force_groups, _group_prior

    model, test = _model(case_name)
    atoms = test[0]
    for term in model.terms_:
        X, G = term.descriptor.transform([atoms], gradients=True)
        Xa = np.asarray(X)
        order, offsets = _force_groups(G, len(atoms))
        w, dw = row_weights(term.descriptor, Xa)
        fast = term.kernel.grouped_gradient_prior(Xa, G.values, G.center, order, offsets,
                                                  None if dw is None else w, dw)
        slow = np.array([_group_prior(term, Xa, w, dw, G.values, G.center, order[offsets[g]:offsets[g + 1]], 3)
                         for g in range(len(offsets) - 1)]) / term.delta**2
        assert _relative(fast, slow) < 1e-12, type(term.kernel).__name__
        energy_prior = term.self_covariance(Xa, X.offsets)
        reference = [term.delta**2 * w[a:b] @ term.kernel(Xa[a:b], Xa[a:b]) @ w[a:b]
                     for a, b in zip(X.offsets[:-1], X.offsets[1:])]
        assert _relative(energy_prior, reference) < 1e-12


def test_fast_path_adds_the_baseline_like_the_explicit_path():
    from kernelpot.potential.coulomb_baseline import CoulombBaseline

    train = [_metal(s, "CuAu") for s in range(3)]
    energies, forces = _labelled(train)
    for atoms in train:
        atoms.info["charge"] = 0
    baseline = CoulombBaseline({29: 0.3, 79: -0.9})
    terms = [GAPTerm(Distance2B(cutoff=3.5, cutoff_transition_width=0.5), GaussianCovariance(0.5), n_sparse=8,
                     sparse_method="uniform")]
    model = SparseGPR(terms, e0="average", baseline=baseline, random_state=0).fit(train, energies=energies,
                                                                                   forces=forces)
    test = [_metal(21, "CuAu")]
    test[0].info["charge"] = 0
    properties = ["energy", "forces", "stress"]
    fast = GAPPredictor(model).predict(test, properties)
    explicit = model._predict_explicit(test, pack(test), properties, False, "dtc", None)
    for key in properties:
        assert _relative(fast[key], explicit[key]) < 1e-10, key


def test_row_chunks_in_threads_equal_one_call_and_blas_threads_are_restored():
    from threadpoolctl import threadpool_info

    from kernelpot.models.gap.predictor import _rows_in_parallel

    model, _ = _model("metal-2b-soap-gap-zeta4")
    big = _metal(3, size=(4, 4, 4), amp=0.1)   # 256 rows: several chunks
    for term in model.terms_:
        X = np.asarray(term.descriptor.transform([big]))
        one = term.local_energies(X)
        for n_threads in (2, 3):
            chunked = _rows_in_parallel(term.local_energies, X, n_threads)
            for a, b in zip(chunked, one):
                assert a.shape == b.shape and _relative(a, b) < 1e-10   # GEMM blocking: round-off
    before = [(p["filepath"], p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas"]
    GAPPredictor(model).predict([big], ("energy", "forces"))
    assert [(p["filepath"], p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas"] == before


def test_blocked_contraction_skips_only_all_zero_blocks():
    """``_DotProductSum.blocked`` equals the full contraction: values everywhere, gradients on active blocks."""
    from kernelpot.models.gap.predictor import _block_starts

    soap = _soap([1, 6, 7, 8], periodic=False)
    X = np.asarray(soap.transform(_molecules(0)))
    Z = np.asarray(soap.transform(_molecules(1)))
    contraction = NormalizedDotProductCovariance(4).contraction(Z, np.linspace(-1.0, 2.0, len(Z)))
    starts = _block_starts(soap)
    assert starts[0] == 0 and len(starts) == 10 and np.all(np.diff(starts) > 0)
    active = np.logical_or.reduceat(X != 0, starts, axis=1)
    assert not active.all() and active.any(axis=1).all()
    values, gradients = contraction(X)
    blocked_values, blocked_gradients = contraction.blocked(X, starts, active)
    assert _relative(blocked_values, values) < 1e-12
    columns = np.repeat(active, np.diff(np.append(starts, X.shape[1])), axis=1)
    assert _relative(blocked_gradients[columns], gradients[columns]) < 1e-12
    assert np.all(blocked_gradients[~columns] == 0.0)


def test_sparse_point_slices_in_threads_sum_to_one_call(monkeypatch):
    """Two threads each contracting half of the sparse points give the one-thread numbers (to round-off)."""
    from kernelpot.models.gap import predictor

    train = [_metal(s, size=(2, 2, 2)) for s in range(5)]
    energies, forces = _labelled(train)
    terms = [GAPTerm(_soap([29], rbf="gap", cutoff_transition_width=1.0), NormalizedDotProductCovariance(4),
                     delta=0.2, n_sparse=140),
             GAPTerm(Distance2B(cutoff=3.5, cutoff_transition_width=0.5), GaussianCovariance(0.5), n_sparse=10,
                     sparse_method="uniform")]
    model = SparseGPR(terms, e0="average", random_state=0).fit(train, energies=energies, forces=forces)
    test = [_metal(11, size=(2, 2, 1), amp=0.15)]
    soap_term, pair_term = model.terms_
    assert pair_term.energy_contraction_parts(2) is None     # too few sparse points to be worth a thread each
    parts = soap_term.energy_contraction_parts(2)
    assert len(parts) == 2
    X = np.asarray(soap_term.descriptor.transform(test))
    for a, b in zip(soap_term.local_energies(X, parts=parts), soap_term.local_energies(X)):
        assert _relative(a, b) < 1e-12
    one = GAPPredictor(model).predict(test, ("energy", "forces", "virial"))
    monkeypatch.setattr(predictor, "_thread_count", lambda: 2)
    two = GAPPredictor(model).predict(test, ("energy", "forces", "virial"))
    for key in one:
        assert _relative(two[key], one[key]) < 1e-12, key
