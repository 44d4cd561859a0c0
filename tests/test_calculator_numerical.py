"""ASE's finite-difference checks on GAPCalculator: its own helpers and ase.calculators.fd agree with the analytic results."""

import numpy as np
import pytest
from ase.build import bulk
from conftest import ase_numerical_stress, requires_ase_fd
from test_potential import model, si_train  # noqa: F401  (fixtures: a small fitted Si model)

from kernelpot.potential.calculator import GAPCalculator


def _strained_rattled_si():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.set_cell(atoms.cell @ np.array([[1.01, 0.004, 0.0], [0.004, 0.99, 0.0], [0.0, 0.0, 1.0]]),
                   scale_atoms=True)
    atoms.rattle(0.05, seed=7)
    return atoms


def _analytic_and_numerical(model, prop, **kwargs):  # noqa: F811
    """The calculator, its structure, the analytic ``prop`` and its finite-difference value (structure unchanged)."""
    atoms = _strained_rattled_si()
    calc = GAPCalculator(model, uncertainty=False)
    atoms.calc = calc
    analytic = atoms.calc.get_property(prop, atoms)
    before = atoms.copy()
    numerical = getattr(calc, f"calculate_numerical_{prop}")(atoms, **kwargs)
    assert atoms == before  # positions and cell of the caller's structure are left alone
    return calc, atoms, analytic, numerical


def test_numerical_forces_match_the_analytic_forces(model):  # noqa: F811
    calc, atoms, analytic, numerical = _analytic_and_numerical(model, "forces", d=1e-4)
    assert numerical.shape == analytic.shape == (len(atoms), 3)
    assert np.abs(analytic).max() > 0.1  # a real check: the rattled atoms feel forces
    np.testing.assert_allclose(numerical, analytic, rtol=0, atol=1e-6 * np.abs(analytic).max())
    # ASE's default step, as ASE users call it, still agrees to the O(d²) truncation error.
    np.testing.assert_allclose(calc.calculate_numerical_forces(atoms), analytic, atol=1e-4)


def test_numerical_stress_matches_the_analytic_stress_and_ase_fd(model):  # noqa: F811
    calc, atoms, analytic, numerical = _analytic_and_numerical(model, "stress", d=1e-4)
    assert np.abs(analytic).max() > 1e-3
    np.testing.assert_allclose(numerical, analytic, rtol=0, atol=2e-6 * np.abs(analytic).max())
    # The same strains as ASE's helper: the two agree to round-off.
    np.testing.assert_allclose(numerical, ase_numerical_stress(atoms, eps=1e-4), rtol=0, atol=1e-9)
    full = calc.calculate_numerical_stress(atoms, d=1e-4, voigt=False)
    np.testing.assert_allclose(full, full.T)
    np.testing.assert_allclose(full.flat[[0, 4, 8, 5, 2, 1]], numerical)


@requires_ase_fd
def test_ase_finite_difference_calculator_wraps_gap_calculator(model):  # noqa: F811
    from ase.calculators.fd import FiniteDifferenceCalculator

    atoms = _strained_rattled_si()
    atoms.calc = GAPCalculator(model, uncertainty=False)
    analytic_forces, analytic_stress = atoms.get_forces(), atoms.get_stress()
    atoms.calc = FiniteDifferenceCalculator(GAPCalculator(model, uncertainty=False), eps_disp=1e-4, eps_strain=1e-4)
    np.testing.assert_allclose(atoms.get_forces(), analytic_forces, atol=1e-6 * np.abs(analytic_forces).max())
    np.testing.assert_allclose(atoms.get_stress(), analytic_stress, atol=2e-6 * np.abs(analytic_stress).max())


def test_numerical_helpers_reject_bad_steps_and_open_cells(model):  # noqa: F811
    from ase.calculators.calculator import PropertyNotImplementedError

    calc = GAPCalculator(model, uncertainty=False)
    atoms = _strained_rattled_si()
    for bad in (0.0, -1e-3, float("nan"), True):
        with pytest.raises(ValueError, match="`d` must be"):
            calc.calculate_numerical_forces(atoms, d=bad)
    atoms.pbc = False
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        calc.calculate_numerical_stress(atoms)
