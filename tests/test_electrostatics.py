"""Electrostatics: direct sum and Ewald for point and Gaussian charges (kernelpot.electrostatics).

Physics contracts: Madelung constants, finite-difference forces / stress / potentials,
agreement with a direct lattice sum, α independence (background term), invariances,
the QEq matrix, and every bad-input branch.
"""

import math

import numba
import numpy as np
import pytest
from _electrostatics_systems import (
    MADELUNG,
    TRICLINIC,
    central_difference,
    crystal,
    derivative_errors,
    random_box,
    random_rotation,
    shape_term,
    smooth_sphere_sum,
)
from ase import Atoms
from ase.units import Bohr, Hartree
from scipy.special import erf

import kernelpot.electrostatics._setup as electrostatics_setup
from kernelpot.electrostatics import (
    COULOMB_CONSTANT,
    Ewald,
    EwaldParameters,
    coulomb,
    coulomb_matrix,
    ewald_parameters,
)

K_E = COULOMB_CONSTANT


def test_coulomb_constant_is_ases_codata_2014():
    assert COULOMB_CONSTANT == pytest.approx(Hartree * Bohr, rel=1e-14)


# --- Madelung constants --------------------------------------------------------------


@pytest.mark.parametrize("name, primitive", [("rocksalt", True), ("rocksalt", False),
                                             ("cesium_chloride", True), ("zincblende", True)])
def test_madelung_constants_ewald(name, primitive):
    positions, charges, cell, r0, pairs = crystal(name, a=5.64, primitive=primitive)
    result = coulomb(positions, charges, cell=cell, pbc=True, method="ewald", tolerance=1e-12)
    madelung = -result.energy * r0 / (K_E * pairs)
    assert abs(madelung / MADELUNG[name] - 1) <= 1e-8
    # A perfect crystal: no forces; cubic symmetry: isotropic stress -E/(3V).
    assert np.abs(result.forces).max() < 1e-9
    volume = abs(np.linalg.det(cell))
    np.testing.assert_allclose(result.stress, -result.energy / (3 * volume) * np.eye(3),
                               atol=1e-9 * abs(result.energy) / volume)


def test_madelung_small_cell_needs_many_images():
    # a = 1 Å: the real-space cutoff spans many cells, so images beyond the first shell count.
    positions, charges, cell, r0, _ = crystal("cesium_chloride", a=1.0)
    ewald = Ewald.from_tolerance(cell, 2, tolerance=1e-12, charges=charges)
    assert ewald.parameters.real_cutoff > 1.5 * np.linalg.norm(cell, axis=1).max()
    result = ewald.compute(positions, charges)
    assert abs(-result.energy * r0 / K_E / MADELUNG["cesium_chloride"] - 1) <= 1e-8


# --- open boundaries -------------------------------------------------------------------


def test_direct_pair_energies_point_and_gaussian():
    positions = np.array([[0.0, 0, 0], [0.3, -1.2, 2.0], [1.5, 0.2, -0.7]])
    charges = np.array([0.7, -1.1, 0.4])
    widths = np.array([0.6, 0.9, 1.3])
    point, gaussian = 0.0, np.sum(charges**2 / (2 * widths * math.sqrt(math.pi)))
    for i in range(3):
        for j in range(i):
            r = np.linalg.norm(positions[i] - positions[j])
            point += charges[i] * charges[j] / r
            gamma = math.sqrt(2 * (widths[i] ** 2 + widths[j] ** 2))
            gaussian += charges[i] * charges[j] * erf(r / gamma) / r
    assert coulomb(positions, charges).energy == pytest.approx(K_E * point, rel=1e-14)
    assert coulomb(positions, charges, widths=widths).energy == pytest.approx(K_E * gaussian, rel=1e-14)


def test_direct_coincident_gaussians_are_finite():
    # Two Gaussians at one place: the r → 0 limit erf(r/γ)/r → 2/(γ√π), force zero.
    result = coulomb([[1.0, 2, 3], [1.0, 2, 3]], [0.5, -0.5], widths=[0.7, 0.7], compute_potential=True)
    gamma = math.sqrt(2 * 2 * 0.7**2)
    expected = -0.25 * 2 / (gamma * math.sqrt(math.pi)) + 2 * 0.25 / (2 * 0.7 * math.sqrt(math.pi))
    assert result.energy == pytest.approx(K_E * expected, rel=1e-12)
    np.testing.assert_allclose(result.forces, 0.0, atol=1e-12)


@pytest.mark.parametrize("widths", [None, "gaussian"])
def test_direct_forces_virial_potential_match_finite_differences(widths):
    rng = np.random.default_rng(0)
    positions = rng.uniform(-3, 3, (9, 3))
    charges = rng.normal(size=9)
    widths = None if widths is None else rng.uniform(0.4, 1.2, 9)
    result = coulomb(positions, charges, widths=widths, compute_potential=True)
    def energy(x):
        return coulomb(x, charges, widths=widths).energy
    forces = -central_difference(energy, positions, 1e-5)
    assert np.abs(forces - result.forces).max() <= 1e-6 * np.abs(result.forces).max()
    potential = central_difference(lambda q: coulomb(positions, q, widths=widths).energy, charges, 1e-5)
    np.testing.assert_allclose(result.potential, potential, rtol=1e-7, atol=1e-9)
    # Pair virial: -dE/dε with positions scaled about any origin.
    def strained(eps):
        return coulomb(positions @ (np.eye(3) + eps), charges, widths=widths).energy
    virial = -central_difference(strained, np.zeros((3, 3)), 1e-6)
    np.testing.assert_allclose(result.virial, virial, atol=1e-6 * np.abs(virial).max())
    assert result.stress is None
    np.testing.assert_allclose(result.forces.sum(axis=0), 0.0, atol=1e-11)


# --- periodic: Ewald --------------------------------------------------------------------


@pytest.mark.parametrize("gaussian", [False, True])
def test_ewald_forces_stress_potential_match_finite_differences(gaussian):
    rng = np.random.default_rng(1)
    positions, charges = random_box(rng, 14, TRICLINIC)
    widths = rng.choice([0.5, 0.8, 1.1], 14) if gaussian else None
    parameters = ewald_parameters(TRICLINIC, 14, 1e-10, widths=widths)  # fixed once for all differences
    errors = derivative_errors(lambda cell: Ewald(cell, parameters), positions, charges, widths, TRICLINIC)
    assert max(errors.values()) <= 1e-6, errors
    result = Ewald(TRICLINIC, parameters).compute(positions, charges, widths=widths)
    np.testing.assert_allclose(result.virial, -result.stress * abs(np.linalg.det(TRICLINIC)))


@pytest.mark.parametrize("gaussian", [False, True])
def test_ewald_equals_smooth_direct_lattice_sum(gaussian):
    rng = np.random.default_rng(2)
    cell = np.array([[5.0, 0.0, 0.0], [1.0, 4.5, 0.0], [0.5, -0.8, 5.5]])
    positions, charges = random_box(rng, 6, cell)
    widths = rng.uniform(0.4, 0.9, 6) if gaussian else None
    ewald = coulomb(positions, charges, cell=cell, pbc=True, widths=widths, method="ewald",
                    tolerance=1e-12).energy
    direct = smooth_sphere_sum(positions, charges, cell, widths) - shape_term(positions, charges, cell)
    assert abs(direct - ewald) <= 1e-6 * abs(ewald)


@pytest.mark.parametrize("gaussian", [False, True])
def test_charged_cell_energy_independent_of_alpha(gaussian):
    # The background term -πQ²/(2Vα²) is what makes a charged cell's energy α-independent.
    rng = np.random.default_rng(3)
    positions, charges = random_box(rng, 10, TRICLINIC, neutral=False)
    charges += (1.0 - charges.sum()) / 10  # net charge +1 e
    widths = rng.uniform(0.5, 1.0, 10) if gaussian else None
    energies = []
    for alpha in (0.3, 0.5, 0.8):
        rc = 7.0 / (1.0 / math.sqrt(1 / alpha**2 + 4 * (0 if widths is None else widths.max()) ** 2))
        ewald = Ewald(TRICLINIC, EwaldParameters(alpha, rc, 2 * alpha * 6.5))
        energies.append(ewald.compute(positions, charges, widths=widths, total_charge=1.0).energy)
    np.testing.assert_allclose(energies, energies[0], rtol=1e-10)


@pytest.mark.parametrize("method", ["ewald", "pme"])
def test_periodic_invariances(method):
    # PME too: its mesh follows the lattice vectors, so rigid rotations and lattice translations
    # leave it exactly invariant; only non-lattice translations move atoms against the mesh.
    rng = np.random.default_rng(4)
    positions, charges = random_box(rng, 12, TRICLINIC)
    widths = rng.uniform(0.5, 1.0, 12)
    reference = coulomb(positions, charges, cell=TRICLINIC, pbc=True, widths=widths, method=method,
                        tolerance=1e-10)
    rotation = random_rotation(rng)
    rotated = coulomb(positions @ rotation.T, charges, cell=TRICLINIC @ rotation.T, pbc=True,
                      widths=widths, method=method, tolerance=1e-10)
    assert rotated.energy == pytest.approx(reference.energy, rel=1e-9)
    np.testing.assert_allclose(rotated.forces, reference.forces @ rotation.T, atol=1e-8)
    np.testing.assert_allclose(rotated.stress, rotation @ reference.stress @ rotation.T, atol=1e-9)
    order = rng.permutation(12)
    permuted = coulomb(positions[order], charges[order], cell=TRICLINIC, pbc=True, widths=widths[order],
                       method=method, tolerance=1e-10)
    assert permuted.energy == pytest.approx(reference.energy, rel=1e-12)
    np.testing.assert_allclose(permuted.forces, reference.forces[order], atol=1e-10)
    # Translation and wrapping by lattice vectors change nothing.
    moved = positions + [0.37, -1.2, 2.4] + np.array([[2, -1, 0]]) @ TRICLINIC
    translated = coulomb(moved, charges, cell=TRICLINIC, pbc=True, widths=widths, method=method,
                         tolerance=1e-10)
    exact = method == "ewald"
    assert translated.energy == pytest.approx(reference.energy, rel=1e-12 if exact else 1e-9)
    np.testing.assert_allclose(translated.forces, reference.forces, atol=1e-10 if exact else 1e-7)
    np.testing.assert_allclose(reference.forces.sum(axis=0), 0.0, atol=1e-9 if exact else 1e-7)


def test_results_do_not_depend_on_thread_count(monkeypatch):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba was started with one thread (NUMBA_NUM_THREADS=1): nothing to compare")
    monkeypatch.setattr(electrostatics_setup, "SERIAL_BELOW_ATOMS", 0)  # also thread small systems
    rng = np.random.default_rng(5)
    positions, charges = random_box(rng, 40, TRICLINIC * 1.5)
    results = []
    previous = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            results.append([coulomb(positions, charges, cell=TRICLINIC * 1.5, pbc=True, method=method,
                                    compute_potential=True) for method in ("ewald", "pme")]
                           + [coulomb(positions, charges, compute_potential=True)])
    finally:
        numba.set_num_threads(previous)
    for one, two in zip(*results):
        assert two.energy == pytest.approx(one.energy, rel=1e-12)
        np.testing.assert_allclose(two.forces, one.forces, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(two.potential, one.potential, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(two.virial, one.virial, rtol=1e-10, atol=1e-10)


# --- the QEq matrix -----------------------------------------------------------------------


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("gaussian", [False, True])
def test_matrix_reproduces_potential_and_energy(periodic, gaussian):
    rng = np.random.default_rng(6)
    positions, charges = random_box(rng, 16, TRICLINIC)
    widths = rng.choice([0.6, 0.9], 16) if gaussian else None
    box = {"cell": TRICLINIC, "pbc": True} if periodic else {}
    matrix = coulomb_matrix(positions, widths=widths, tolerance=1e-10, **box)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    result = coulomb(positions, charges, widths=widths, compute_potential=True,
                     **({"method": "ewald", "tolerance": 1e-10} if periodic else {}), **box)
    np.testing.assert_allclose(matrix @ charges, result.potential, atol=1e-7 * np.abs(result.potential).max())
    assert 0.5 * charges @ matrix @ charges == pytest.approx(result.energy, rel=1e-8)
    if gaussian:
        self_terms = K_E / (widths * math.sqrt(math.pi))
        if not periodic:
            np.testing.assert_allclose(np.diag(matrix), self_terms, rtol=1e-14)


def test_periodic_matrix_handles_charged_vectors():
    # Every element carries the background constant, so ½ qᵀAq is the energy also for Σq ≠ 0.
    rng = np.random.default_rng(7)
    positions, charges = random_box(rng, 8, TRICLINIC, neutral=False)
    matrix = coulomb_matrix(positions, cell=TRICLINIC, pbc=True, widths=0.8, tolerance=1e-10)
    energy = coulomb(positions, charges, cell=TRICLINIC, pbc=True, widths=0.8, method="ewald",
                     tolerance=1e-10, total_charge=float(charges.sum())).energy
    assert 0.5 * charges @ matrix @ charges == pytest.approx(energy, rel=1e-8)


# --- ASE Atoms, results, engines ------------------------------------------------------------


def test_atoms_input_with_species_tables_and_declared_charge():
    atoms = Atoms("NaCl2", positions=[[0, 0, 0], [2.8, 0, 0], [0, 2.9, 0.4]], cell=[8.0, 8.5, 9.0], pbc=True)
    atoms.info["charge"] = -1
    result = coulomb(atoms, {"Na": 1.0, "Cl": -1.0}, widths={"Na": 0.8, "Cl": 1.1}, method="ewald")
    explicit = coulomb(atoms.positions, [1.0, -1.0, -1.0], cell=atoms.cell, pbc=True, widths=[0.8, 1.1, 1.1],
                       total_charge=-1, method="ewald")
    assert result.energy == pytest.approx(explicit.energy, rel=1e-14)
    atoms.set_initial_charges([1.0, -1.0, -1.0])
    assert coulomb(atoms, method="ewald", widths={"Na": 0.8, "Cl": 1.1}).energy == pytest.approx(explicit.energy)
    matrix = coulomb_matrix(atoms, widths={"Na": 0.8, "Cl": 1.1})
    assert matrix.shape == (3, 3)


def test_engine_reuse_and_reported_parameters():
    rng = np.random.default_rng(8)
    positions, charges = random_box(rng, 20, TRICLINIC)
    ewald = Ewald.from_tolerance(TRICLINIC, 20, tolerance=1e-7, charges=charges)
    first = ewald.compute(positions, charges)
    second = ewald.compute(positions + 0.01, charges)
    assert first.method == "ewald" and first.parameters["alpha"] == ewald.parameters.alpha
    assert first.parameters["estimated_error"] <= 1e-7 * (1 + 1e-9)
    assert second.energy != first.energy
    assert "Ewald(" in repr(ewald)
    lean = ewald.compute(positions, charges, compute_forces=False, compute_stress=False)
    assert lean.forces is None and lean.stress is None and lean.potential is None
    assert lean.energy == pytest.approx(first.energy, rel=1e-14)


def test_estimated_error_bounds_measured_ewald_error():
    rng = np.random.default_rng(9)
    positions, charges = random_box(rng, 60, TRICLINIC * 1.6)
    cell = TRICLINIC * 1.6
    reference = coulomb(positions, charges, cell=cell, pbc=True, method="ewald", tolerance=1e-12)
    for tolerance in (1e-4, 1e-6):
        result = coulomb(positions, charges, cell=cell, pbc=True, method="ewald", tolerance=tolerance)
        rms = np.sqrt(np.mean(np.sum((result.forces - reference.forces) ** 2, axis=1))) / K_E
        assert rms <= 2 * tolerance  # Kolafa–Perram is an estimate: a factor 2 of slack
        assert rms >= 1e-3 * tolerance  # ... and not absurdly pessimistic


def test_empty_system():
    assert coulomb(np.zeros((0, 3)), np.zeros(0)).energy == 0.0
    assert coulomb(np.zeros((0, 3)), np.zeros(0), cell=TRICLINIC, pbc=True).energy == 0.0


# --- bad input: every branch by itself ---------------------------------------------------------


GOOD = {"positions": np.array([[0.0, 0, 0], [1.0, 0, 0]]), "charges": np.array([1.0, -1.0])}


@pytest.mark.parametrize("kwargs, error, match", [
    ({"positions": np.zeros((2, 2))}, ValueError, r"`positions` must have shape \(n_atoms, 3\)"),
    ({"positions": np.array([[0.0, 0, 0], [np.nan, 0, 0]])}, ValueError, r"`positions` must be finite; atom 1"),
    ({"charges": np.array([1.0, -1.0, 0.0])}, ValueError, r"`charges` must have shape \(2,\)"),
    ({"charges": np.array([1.0, np.inf])}, ValueError, r"`charges` must be finite; atom 1"),
    ({"charges": "ab"}, TypeError, r"`charges` must be numbers in e"),
    ({"charges": None}, TypeError, r"`charges` \(e\) are required"),
    ({"widths": [0.5, 0.0]}, ValueError, r"`widths` \(Gaussian σ in Å\) must be > 0; atom 1 has 0.0"),
    ({"widths": [0.5, 0.5, 0.5]}, ValueError, r"`widths` must have shape \(2,\)"),
    ({"pbc": [True, True, False], "cell": TRICLINIC}, ValueError, r"periodic in all three directions or in none"),
    ({"pbc": "yes"}, TypeError, r"`pbc` must be a bool or three bools"),
    ({"pbc": True}, ValueError, r"`cell` is required for periodic boundaries"),
    ({"pbc": True, "cell": np.zeros((3, 3))}, ValueError, r"`cell` has zero volume"),
    ({"pbc": True, "cell": np.ones((2, 3))}, ValueError, r"`cell` must be a finite \(3, 3\) array"),
    ({"pbc": True, "cell": TRICLINIC, "tolerance": 1e-16}, ValueError, r"must be in \[1e-14, 1\); got 1e-16"),
    ({"pbc": True, "cell": TRICLINIC, "tolerance": True}, TypeError, r"`tolerance` must be a real number"),
    ({"method": "p3m"}, ValueError, r"`method` must be one of \['auto', 'direct', 'ewald', 'pme'\]; got 'p3m'"),
    ({"method": "direct", "pbc": True, "cell": TRICLINIC}, ValueError, r"method='direct' sums open boundaries only"),
    ({"method": "ewald"}, ValueError, r"method='ewald' needs a periodic cell"),
    ({"total_charge": 1.0}, ValueError, r"charges sum to 0 e but `total_charge` is 1 e"),
    ({"total_charge": "0"}, TypeError, r"`total_charge` must be a number in e"),
    ({"charges": np.array([1.0, -0.5]), "pbc": True, "cell": TRICLINIC}, ValueError,
     r"net charge of 0.5 e: declare it with total_charge=0.5"),
    ({"positions": np.array([[0.0, 0, 0], [0.0, 0, 0]])}, ValueError, r"point charges 0 and 1 are at the same place"),
    ({"positions": np.array([[0.0, 0, 0], [0.0, 0, 0]]), "pbc": True, "cell": TRICLINIC}, ValueError,
     r"point charges 0 and 1 are at the same place"),
    ({"charges": {"Na": 1.0}}, TypeError, r"per-species `charges`/`widths` tables need an ASE Atoms"),
])
def test_bad_input(kwargs, error, match):
    arguments = {**GOOD, **kwargs}
    positions, charges = arguments.pop("positions"), arguments.pop("charges")
    with pytest.raises(error, match=match):
        coulomb(positions, charges, **arguments)


def test_bad_atoms_input():
    atoms = Atoms("NaCl", positions=[[0, 0, 0], [2.8, 0, 0]], cell=[8.0, 8.0, 8.0], pbc=True)
    with pytest.raises(TypeError, match=r"pass either an ASE Atoms or `cell`/`pbc`, not both"):
        coulomb(atoms, [1.0, -1.0], cell=TRICLINIC)
    with pytest.raises(TypeError, match=r"pass either an ASE Atoms or `cell`/`pbc`, not both"):
        coulomb_matrix(atoms, pbc=True)
    with pytest.raises(ValueError, match=r"`charges` not given and the Atoms has no initial charges"):
        coulomb(atoms)
    with pytest.raises(ValueError, match=r"species \['Cl'\] are not in the `charges` table \['Na'\]"):
        coulomb(atoms, {"Na": 1.0})
    with pytest.raises(ValueError, match=r"species \['Na'\] are not in the `widths` table \['Cl'\]"):
        coulomb_matrix(atoms, widths={"Cl": 1.0})


def test_bad_engine_parameters():
    with pytest.raises(ValueError, match=r"`alpha` must be finite and > 0; got -1"):
        Ewald(TRICLINIC, EwaldParameters(-1.0, 5.0, 3.0))
    with pytest.raises(ValueError, match=r"`real_cutoff` must be finite and > 0; got nan"):
        Ewald(TRICLINIC, EwaldParameters(0.3, float("nan"), 3.0))
    with pytest.raises(ValueError, match=r"`k_cutoff` must be finite and > 0 \(1/Å\); got 0.0"):
        Ewald(TRICLINIC, EwaldParameters(0.3, 5.0, 0.0))


def test_unreachable_tolerance_names_the_cell():
    # 10⁸ unit charges in a 10 Å cube at 1e-14: even the cheapest Ewald would take hours.
    with pytest.raises(ValueError, match=r"tolerance 1e-14 cannot be reached with Ewald summation in the cell "
                                         r"\[\[10.0, 0.0, 0.0\], .* \(100000000 atoms\)"):
        Ewald.from_tolerance(10.0 * np.eye(3), 10**8, tolerance=1e-14)
