"""Smooth particle-mesh Ewald: agreement with Ewald and direct sums, exact derivatives,
the a-priori error estimate, parameter choice and bad input."""

import numpy as np
import pytest
from _electrostatics_systems import (
    MADELUNG,
    TRICLINIC,
    crystal,
    derivative_errors,
    random_box,
    shape_term,
    smooth_sphere_sum,
)

from kernelpot.electrostatics import (
    COULOMB_CONSTANT,
    PME,
    Ewald,
    PMEParameters,
    coulomb,
    ewald_parameters,
    pme_parameters,
)
from kernelpot.electrostatics.parameters import pme_reciprocal_error

K_E = COULOMB_CONSTANT


@pytest.mark.parametrize("name, primitive", [("rocksalt", True), ("rocksalt", False),
                                             ("cesium_chloride", True), ("zincblende", True)])
def test_madelung_constants_pme(name, primitive):
    positions, charges, cell, r0, pairs = crystal(name, a=5.64, primitive=primitive)
    result = coulomb(positions, charges, cell=cell, pbc=True, method="pme", tolerance=1e-12)
    assert result.method == "pme"
    assert abs(-result.energy * r0 / (K_E * pairs) / MADELUNG[name] - 1) <= 1e-8


@pytest.mark.parametrize("gaussian", [False, True])
def test_pme_derivatives_are_exact_derivatives_of_the_pme_energy(gaussian):
    rng = np.random.default_rng(11)
    positions, charges = random_box(rng, 14, TRICLINIC)
    widths = rng.choice([0.5, 0.8, 1.1], 14) if gaussian else None
    # A deliberately coarse mesh: the derivatives must match the PME energy itself, not Ewald.
    parameters = PMEParameters(alpha=0.45, real_cutoff=9.0, mesh=(10, 12, 14), order=6)
    errors = derivative_errors(lambda cell: PME(cell, parameters), positions, charges, widths, TRICLINIC)
    assert max(errors.values()) <= 1e-6, errors


@pytest.mark.parametrize("gaussian", [False, True])
def test_pme_equals_ewald_and_direct_lattice_sum(gaussian):
    rng = np.random.default_rng(12)
    cell = np.array([[5.0, 0.0, 0.0], [1.0, 4.5, 0.0], [0.5, -0.8, 5.5]])
    positions, charges = random_box(rng, 6, cell)
    widths = rng.uniform(0.4, 0.9, 6) if gaussian else None
    pme = coulomb(positions, charges, cell=cell, pbc=True, widths=widths, method="pme", tolerance=1e-12)
    ewald = coulomb(positions, charges, cell=cell, pbc=True, widths=widths, method="ewald", tolerance=1e-12)
    assert pme.energy == pytest.approx(ewald.energy, rel=1e-10)
    np.testing.assert_allclose(pme.forces, ewald.forces, atol=1e-9)
    np.testing.assert_allclose(pme.stress, ewald.stress, atol=1e-10)
    direct = smooth_sphere_sum(positions, charges, cell, widths) - shape_term(positions, charges, cell)
    assert abs(direct - pme.energy) <= 1e-6 * abs(pme.energy)


@pytest.mark.parametrize("cell_scale, gaussian", [(1.0, False), (1.7, False), (1.7, True)])
def test_pme_meets_the_tolerance_on_random_boxes(cell_scale, gaussian):
    rng = np.random.default_rng(13)
    cell = TRICLINIC * cell_scale * 1.6
    n = int(0.1 * abs(np.linalg.det(cell)))  # liquid-like density, 0.1 charges per Å³
    positions, charges = random_box(rng, n, cell)
    widths = rng.choice([0.6, 1.0], n) if gaussian else None
    reference = coulomb(positions, charges, cell=cell, pbc=True, widths=widths, method="ewald", tolerance=1e-11)
    for tolerance in (1e-4, 1e-6):
        for method in ("ewald", "pme"):
            result = coulomb(positions, charges, cell=cell, pbc=True, widths=widths, method=method,
                             tolerance=tolerance)
            rms = np.sqrt(np.mean(np.sum((result.forces - reference.forces) ** 2, axis=1))) / K_E
            assert rms <= 1.5 * tolerance, (method, tolerance, rms)
            # Energies agree to the tolerance expressed per atom (force tolerance × 1 Å).
            assert abs(result.energy - reference.energy) / n <= tolerance * K_E


def test_pme_error_estimate_bounds_measured_errors():
    # The estimate was calibrated (C = 1.3) on boxes like this one; check it still bounds the
    # measured RMS force error and is not loose by more than a factor 2.5.
    rng = np.random.default_rng(14)
    cell = np.array([[17.0, 0.0, 0.0], [5.0, 16.0, 0.0], [-3.0, 4.0, 18.0]])
    n = 300
    positions, charges = random_box(rng, n, cell)
    reference = Ewald(cell, ewald_parameters(cell, n, 1e-12, sum_squared_charges=charges @ charges))
    reference = reference.compute(positions, charges)
    for alpha, mesh, order in [(0.3, (16, 16, 16), 4), (0.3, (24, 20, 24), 6), (0.45, (32, 32, 32), 8)]:
        pme = PME(cell, PMEParameters(alpha, 7.5 / alpha, mesh, order)).compute(positions, charges)
        measured = np.sqrt(np.mean(np.sum((pme.forces - reference.forces) ** 2, axis=1))) / K_E
        estimate = pme_reciprocal_error(alpha, mesh, order, cell, charges @ charges, n, np.sum(charges**4))
        assert estimate / 2.5 <= measured <= estimate, (alpha, mesh, order, measured, estimate)


def test_auto_picks_ewald_for_small_and_pme_for_large_cells():
    small = coulomb(*random_box(np.random.default_rng(15), 20, TRICLINIC), cell=TRICLINIC, pbc=True)
    assert small.method == "ewald"
    cell = 60.0 * np.eye(3)
    parameters_pme = pme_parameters(cell, 20000, 1e-6)
    parameters_ewald = ewald_parameters(cell, 20000, 1e-6)
    from kernelpot.electrostatics.parameters import ewald_seconds, pme_seconds

    assert pme_seconds(parameters_pme, cell, 20000) < ewald_seconds(parameters_ewald, cell, 20000)


def test_bad_pme_parameters():
    with pytest.raises(ValueError, match=r"`order` \(B-spline order\) must be an even integer from 4 to 12; got 5"):
        PME(TRICLINIC, PMEParameters(0.4, 8.0, (16, 16, 16), 5))
    with pytest.raises(ValueError, match=r"`mesh` must be three integers ≥ order = 6; got \(16, 16, 4\)"):
        PME(TRICLINIC, PMEParameters(0.4, 8.0, (16, 16, 4), 6))
    with pytest.raises(ValueError, match=r"`alpha` must be finite and > 0; got 0.0"):
        PME(TRICLINIC, PMEParameters(0.0, 8.0, (16, 16, 16), 6))
    with pytest.raises(ValueError, match=r"tolerance 1e-14 cannot be reached with smooth PME in the cell"):
        PME.from_tolerance(10.0 * np.eye(3), 10**8, tolerance=1e-14)
