"""CoreRepulsion (a cubic wall below the data's closest pairs) and BaselineSum: physics, files, bad input."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from kernelpot.potential.core_repulsion import BaselineSum, CoreRepulsion
from kernelpot.potential.coulomb_baseline import CoulombBaseline


def _water_box(seed=0):
    rng = np.random.default_rng(seed)
    atoms = Atoms(cell=np.diag([6.0, 6.5, 7.0]), pbc=True)
    for corner in [(0, 0, 0), (3, 3.2, 0), (0, 3.2, 3.5), (3, 0, 3.5)]:  # molecules ~3 Å apart
        w = molecule("H2O")
        w.rotate(rng.uniform(0, 360), rng.normal(size=3))
        w.positions += np.array(corner) + rng.uniform(-0.3, 0.3, 3)
        atoms += w
    return atoms


def _assert_derivatives(baseline, box, atoms_axes, strains, abs_tol=1e-8):
    """Forces = -dE/dx (central differences) at ``atoms_axes``; virial = -dE/dε (homogeneous strain of cell and
    positions) at ``strains``."""
    result = baseline.evaluate([box], virial=True)
    h = 1e-5
    for atom, axis in atoms_axes:
        plus, minus = box.copy(), box.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        numeric = -(baseline.evaluate([plus])["energy"][0] - baseline.evaluate([minus])["energy"][0]) / (2 * h)
        assert result["forces"][atom, axis] == pytest.approx(numeric, rel=1e-6, abs=abs_tol)
    for a, b in strains:
        def strained(e, a=a, b=b):
            strain = np.eye(3)
            strain[a, b] += e
            s = box.copy()
            s.set_cell(box.cell @ strain, scale_atoms=True)
            return baseline.evaluate([s])["energy"][0]
        numeric = -(strained(h) - strained(-h)) / (2 * h)
        sym = 0.5 * (result["virial"][0][a, b] + result["virial"][0][b, a])
        assert sym == pytest.approx(numeric, rel=1e-5, abs=abs_tol)


def test_onsets_are_the_closest_pairs_and_the_wall_vanishes_on_the_data():
    box = _water_box()
    core = CoreRepulsion.from_structures([box])
    d = box.get_all_distances(mic=True)
    symbols = np.array(box.get_chemical_symbols())
    oh = d[np.ix_(symbols == "H", symbols == "O")].min()
    assert core.onsets["H-O"] == pytest.approx(oh, abs=1e-6)
    result = core.evaluate([box], virial=True, local_energy=True)
    assert result["energy"][0] == 0.0 and not result["forces"].any() and not result["virial"].any()


def test_forces_and_virial_are_derivatives_of_the_energy():
    box = _water_box(1)
    core = CoreRepulsion.from_structures([box], margin=-0.4, stiffness=50.0)  # onsets 0.4 Å beyond the data
    result = core.evaluate([box], virial=True, local_energy=True)
    assert result["energy"][0] > 0
    assert result["local_energy"].sum() == pytest.approx(result["energy"][0])
    _assert_derivatives(core, box, [(0, 0), (1, 2), (5, 1)], [(0, 0), (1, 2)])
    assert np.abs(result["forces"].sum(axis=0)).max() < 1e-10

def test_wall_repels_below_the_onset_and_is_smooth_at_it():
    core = CoreRepulsion({"H-H": 1.0}, stiffness=1000.0)
    energies = [core.evaluate([Atoms("H2", positions=[[0, 0, 0], [r, 0, 0]])])["energy"][0] for r in (0.9, 0.99, 1.0)]
    assert energies[0] == pytest.approx(1.0) and energies[1] == pytest.approx(1e-3) and energies[2] == 0.0
    forces = core.evaluate([Atoms("H2", positions=[[0, 0, 0], [0.9, 0, 0]])])["forces"]
    assert forces[0, 0] < 0 < forces[1, 0]  # pushed apart


def test_sum_adds_parts_and_survives_a_model_file(tmp_path):
    from kernelpot.models.gap import SparseGPR
    from kernelpot.potential.recipe import terms_from_gap_string
    from kernelpot.potential.serialization import load_model, save_model

    boxes = [_water_box(s) for s in range(3)]
    coulomb = CoulombBaseline({"O": -0.8, "H": 0.4})
    core = CoreRepulsion.from_structures(boxes, margin=-0.3)
    total = BaselineSum([coulomb, core])
    parts = [coulomb.evaluate(boxes, virial=True), core.evaluate(boxes, virial=True)]
    summed = total.evaluate(boxes, virial=True)
    for key in ("energy", "forces", "virial"):
        np.testing.assert_allclose(summed[key], parts[0][key] + parts[1][key])
    gap = ("distance_2b cutoff=3.0 covariance_type=ard_se delta=1.0 theta_uniform=1.0 n_sparse=5 "
           "sparse_method=uniform")
    energies = [float(-14.0 * len(b) / 3) for b in boxes]
    model = SparseGPR(terms_from_gap_string(gap, [1, 8]), baseline=total, e0=0.0).fit(boxes, energies=energies)
    save_model(model, tmp_path / "m.kpot")
    loaded = load_model(tmp_path / "m.kpot")
    assert loaded.baseline == total
    np.testing.assert_allclose(loaded.predict(boxes, properties=("energy", "forces"))["forces"],
                               model.predict(boxes, properties=("energy", "forces"))["forces"], atol=1e-10)


@pytest.mark.parametrize("onsets, stiffness, match", [
    ({"H-Xx": 1.0}, 1.0, "species pairs"), ({"H-H": -1.0}, 1.0, "> 0"), ({"H-H": 1.0}, 0.0, "stiffness"),
    ({"H-H": 1.0, ("H", "H"): 2.0}, 1.0, "twice"),
])
def test_bad_tables_are_refused_by_name(onsets, stiffness, match):
    with pytest.raises((ValueError, TypeError), match=match):
        CoreRepulsion(onsets, stiffness=stiffness).to_dict()


def test_a_pair_without_onset_is_named():
    with pytest.raises(ValueError, match="O-O"):
        CoreRepulsion({"H-H": 1.0, "H-O": 0.9}).check([_water_box()])


def test_pair_barrier_sits_in_the_data_gap_and_its_forces_are_derivatives():
    from kernelpot.potential.core_repulsion import PairBarrier

    box = _water_box(2)
    barrier = PairBarrier.from_structures([box], ["H-O"], r_max=3.5, margin=0.02)
    (a, b), = barrier.bands.values()
    d = box.get_all_distances(mic=True)
    symbols = np.array(box.get_chemical_symbols())
    oh = np.sort(d[np.ix_(symbols == "O", symbols == "H")].ravel())
    assert not ((oh > a - 0.02) & (oh < b + 0.02)).any() and b - a > 0.5  # bond ... first intermolecular O–H
    assert not barrier.evaluate([box])["energy"].any()
    pair = PairBarrier({("O", "H"): (1.0, 1.4)}, height=2.0)
    middle = Atoms("OH", positions=[[0, 0, 0], [1.2, 0, 0]])
    assert pair.evaluate([middle])["energy"][0] == pytest.approx(2.0)
    probe = Atoms("OH", positions=[[0, 0, 0], [1.1, 0.05, 0.02]])
    forces = pair.evaluate([probe])["forces"]
    h = 1e-6
    for axis in range(3):
        plus, minus = probe.copy(), probe.copy()
        plus.positions[1, axis] += h
        minus.positions[1, axis] -= h
        numeric = -(pair.evaluate([plus])["energy"][0] - pair.evaluate([minus])["energy"][0]) / (2 * h)
        assert forces[1, axis] == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    assert PairBarrier.from_dict(pair.to_dict()) == pair


def test_foreign_or_newer_descriptions_are_refused():
    from kernelpot.potential.core_repulsion import PairBarrier

    core = CoreRepulsion({"O-H": 0.8})
    barrier = PairBarrier({"O-H": (1.2, 1.4)}, height=1.0)
    total = BaselineSum([CoulombBaseline({"O": -0.8, "H": 0.4}), core])
    for obj, read in ((core, CoreRepulsion.from_dict), (barrier, PairBarrier.from_dict),
                      (total, lambda spec: BaselineSum.from_dict(spec, CoreRepulsion.from_dict))):
        newer = {**obj.to_dict(), "version": 2}
        with pytest.raises(ValueError, match="version 2 is not supported .* upgrade kernelpot"):
            read(newer)
        with pytest.raises(ValueError, match="description: kind 'coulomb'"):
            read({"kind": "coulomb", "version": 1})
        with pytest.raises(ValueError, match="description: kind \\[1, 2\\]"):
            read([1, 2])


def test_stable_baseline_soft_wall_acts_on_its_pair_only_and_survives_a_file():
    from kernelpot.potential.recipe import stable_baseline
    box = _water_box(2)
    symbols = np.array(box.get_chemical_symbols())
    d = box.get_all_distances(mic=True)
    oo = d[np.ix_(symbols == "O", symbols == "O")][np.triu_indices(4, 1)]
    onset, k = float(oo.min()) + 0.5, 1.85  # inside the data's O-O range: not zero on the data, by design
    plain = stable_baseline([box], {"O": -0.834, "H": 0.417})
    walled = stable_baseline([box], {"O": -0.834, "H": 0.417}, soft_walls={("O", "O"): (onset, k)})
    extra = walled.evaluate([box])["energy"][0] - plain.evaluate([box])["energy"][0]
    from ase.neighborlist import neighbor_list

    i, j, r = neighbor_list("ijd", box, onset)  # every periodic image, each pair twice
    both_o = (symbols[i] == "O") & (symbols[j] == "O")
    assert extra == pytest.approx(k * np.sum((onset - r[both_o]) ** 3) / 2, rel=1e-9) and extra > 0
    wall = walled.parts[-1]
    assert wall.onsets["O-O"] == onset and max(v for key, v in wall.onsets.items() if key != "O-O") < 0.01
    assert CoreRepulsion.from_dict(wall.to_dict()) == wall
    with pytest.raises(ValueError, match="species pairs"):
        stable_baseline([box], soft_walls={"O+O": (2.9, 1.0)})


def _ions_in_water(seed=3):
    box = _water_box(seed)
    box += Atoms("NaCl", positions=[[1.5, 1.6, 1.7], [4.4, 4.9, 5.3]])
    return box


def test_lennard_jones_is_shifted_force_lj_and_its_forces_and_virial_are_derivatives():
    from kernelpot.potential.core_repulsion import LennardJones

    epsilon, sigma, cutoff = 0.0066, 3.15, 5.0
    lj = LennardJones({"O-O": (epsilon, sigma)}, cutoff=cutoff)

    def phi(r):
        return 4 * epsilon * ((sigma / r) ** 12 - (sigma / r) ** 6)

    def dphi(r):
        return 4 * epsilon * (6 * sigma**6 / r**7 - 12 * sigma**12 / r**13)

    for r in (2.4, 2.8, 3.5, 4.9):
        dimer = Atoms("O2", positions=[[0, 0, 0], [r, 0, 0]])
        expected = phi(r) - phi(cutoff) - (r - cutoff) * dphi(cutoff)
        assert lj.evaluate([dimer])["energy"][0] == pytest.approx(expected, rel=1e-12)
    # energy and force go to zero continuously at the cutoff (smooth MD), and H (no entry) does not interact
    near = lj.evaluate([Atoms("O2", positions=[[0, 0, 0], [cutoff - 1e-4, 0, 0]])])
    assert abs(near["energy"][0]) < 1e-9 and np.abs(near["forces"]).max() < 1e-5
    assert not lj.evaluate([Atoms("OH", positions=[[0, 0, 0], [1.0, 0, 0]])])["energy"].any()

    box = _ions_in_water()
    from kernelpot.potential.core_repulsion import TIP3P_JOUNG_CHEATHAM

    field = LennardJones.from_species(TIP3P_JOUNG_CHEATHAM, cutoff=4.0)
    result = field.evaluate([box], virial=True, local_energy=True)
    assert result["energy"][0] != 0 and result["local_energy"].sum() == pytest.approx(result["energy"][0])
    _assert_derivatives(field, box, [(atom, axis) for atom in (0, 3, 12, 13) for axis in range(3)],  # O, O, Na, Cl
                        [(0, 0), (0, 1), (2, 1)], abs_tol=1e-9)

def test_lennard_jones_mixes_by_lorentz_berthelot_and_refuses_bad_pairs():
    from kernelpot.potential.core_repulsion import TIP3P_JOUNG_CHEATHAM, LennardJones

    lj = LennardJones.from_species({"O": (0.0066, 3.15), "Na": (0.0038, 2.44)})
    assert set(lj.pairs) == {"O-O", "O-Na", "Na-Na"}
    assert lj.pairs["O-Na"] == pytest.approx((np.sqrt(0.0066 * 0.0038), 2.795))
    assert LennardJones.from_species(TIP3P_JOUNG_CHEATHAM).pairs["O-O"] == pytest.approx((0.1521 * 0.0433641, 3.15061))
    for pairs, cutoff, match in [({"O-O": (0.01, -1.0)}, 5.0, "sigma > 0"), ({"O-O": (-0.01, 3.0)}, 5.0, "epsilon"),
                                 ({"O-O": 3.0}, 5.0, "epsilon eV, sigma"), ({"O-O": (0.01, 3.0)}, 0.0, "cutoff"),
                                 ({"O-O": (0.01, 3.0), ("O", "O"): (0.01, 3.0)}, 5.0, "twice"),
                                 ({"O-Xx": (0.01, 3.0)}, 5.0, "species pairs")]:
        with pytest.raises((TypeError, ValueError), match=match):
            LennardJones(pairs, cutoff=cutoff).to_dict()
    with pytest.raises(ValueError, match="version 2 is not supported"):
        LennardJones.from_dict({**lj.to_dict(), "version": 2})


def test_stable_baseline_with_gaussian_charges_and_lennard_jones_survives_a_model_file(tmp_path):
    from kernelpot.models.gap import SparseGPR
    from kernelpot.potential.core_repulsion import TIP3P_JOUNG_CHEATHAM, LennardJones
    from kernelpot.potential.recipe import stable_baseline, terms_from_gap_string
    from kernelpot.potential.serialization import load_model, save_model

    boxes = [_ions_in_water(s) for s in range(3)]
    charges = {"O": -0.834, "H": 0.417, "Na": 1.0, "Cl": -1.0}
    baseline = stable_baseline(boxes, charges, widths={s: 0.7 for s in charges}, barrier_pairs=("H-O",),
                               lennard_jones=TIP3P_JOUNG_CHEATHAM)
    lj = baseline.parts[-1]
    assert isinstance(lj, LennardJones) and lj == LennardJones.from_species(TIP3P_JOUNG_CHEATHAM)
    gap = ("distance_2b cutoff=3.0 covariance_type=ard_se delta=1.0 theta_uniform=1.0 n_sparse=5 "
           "sparse_method=uniform")
    energies = [float(-14.0 * len(b) / 3) for b in boxes]
    model = SparseGPR(terms_from_gap_string(gap, [1, 8, 11, 17]), baseline=baseline, e0=0.0).fit(
        boxes, energies=energies)
    save_model(model, tmp_path / "m.kpot")
    loaded = load_model(tmp_path / "m.kpot")
    assert loaded.baseline == baseline
    expected = model.predict(boxes, properties=("energy", "forces"))
    got = loaded.predict(boxes, properties=("energy", "forces"))
    np.testing.assert_allclose(got["forces"], expected["forces"], atol=1e-10)
    np.testing.assert_allclose(got["energy"], expected["energy"], atol=1e-10)


def _hydrogen_bond_wall_by_hand(box, walls):
    """E = sum over H of [sum over acceptors a of k (r0 - r)^3 - the largest such term], every periodic image."""
    from ase.neighborlist import neighbor_list

    symbols = np.array(box.get_chemical_symbols())
    i, j, r = neighbor_list("ijd", box, max(r0 for r0, _ in walls.values()))
    total = 0.0
    for h in np.where(symbols == "H")[0]:
        terms = [walls[f"H-{symbols[b]}"][1] * max(walls[f"H-{symbols[b]}"][0] - d, 0.0) ** 3
                 for a, b, d in zip(i, j, r) if a == h and f"H-{symbols[b]}" in walls]
        total += sum(terms) - max(terms, default=0.0)
    return total


def test_hydrogen_bond_wall_leaves_out_the_own_atom_and_its_forces_and_virial_are_derivatives():
    from kernelpot.potential.core_repulsion import HydrogenBondWall

    # O-H...O in a line: the O-H bond (0.98 Å) is the hydrogen's own, only H...O (1.4 Å) pays k (r0 - r)^3
    chain = Atoms("OHO", positions=[[0, 0, 0], [0.98, 0, 0], [2.38, 0, 0]])
    wall = HydrogenBondWall({"H-O": (1.5, 100.0)})
    result = wall.evaluate([chain], local_energy=True)
    assert result["energy"][0] == pytest.approx(100.0 * 0.1**3, rel=1e-12)
    assert result["local_energy"][1] == pytest.approx(result["energy"][0]) and not result["local_energy"][[0, 2]].any()
    assert result["forces"][1, 0] < 0 < result["forces"][2, 0] and result["forces"][0, 0] == 0.0  # H pushed back
    assert not wall.evaluate([chain[:2]])["energy"].any()  # one water-like O-H: nothing, though 0.98 < r0

    box = _ions_in_water()
    walls = {"H-O": (2.3, 5.0), "H-Cl": (2.8, 3.0)}  # wide: most hydrogens have acceptors inside the onsets
    wall = HydrogenBondWall(walls)
    result = wall.evaluate([box], virial=True, local_energy=True)
    assert result["energy"][0] == pytest.approx(_hydrogen_bond_wall_by_hand(box, walls), rel=1e-10)
    assert result["energy"][0] > 0 and result["local_energy"].sum() == pytest.approx(result["energy"][0])
    assert np.abs(result["forces"].sum(axis=0)).max() < 1e-10
    _assert_derivatives(wall, box, [(atom, axis) for atom in (0, 1, 2, 4, 12, 13) for axis in range(3)],
                        [(0, 0), (0, 1), (2, 1)], abs_tol=1e-9)


def test_hydrogen_bond_wall_energy_is_continuous_when_the_proton_changes_owner():
    from kernelpot.potential.core_repulsion import HydrogenBondWall

    wall = HydrogenBondWall({"H-O": (1.6, 50.0)})

    def energy(x):  # H moved along O...O (2.4 Å apart): its own O is the nearer one
        return wall.evaluate([Atoms("OHO", positions=[[0, 0, 0], [x, 0.05, 0], [2.4, 0, 0]])])["energy"][0]

    assert energy(1.2 - 1e-7) == pytest.approx(energy(1.2 + 1e-7), abs=1e-8)
    assert energy(1.0) == pytest.approx(50.0 * (1.6 - np.hypot(1.4, 0.05)) ** 3)


def test_hydrogen_bond_wall_refuses_bad_tables_and_survives_stable_baseline_and_a_model_file(tmp_path):
    from kernelpot.potential.core_repulsion import HydrogenBondWall
    from kernelpot.potential.recipe import stable_baseline

    for walls, hydrogen, match in [({"O-O": (1.5, 10.0)}, "H", "hydrogen species"),
                                   ({"H-H": (1.5, 10.0)}, "H", "acceptor"),
                                   ({"H-O": (1.5, 0.0)}, "H", "k > 0"), ({"H-O": 1.5}, "H", "r0"),
                                   ({"H-O": (1.5, 10.0)}, "Hx", "chemical symbol"), ({}, "H", "non-empty")]:
        with pytest.raises((TypeError, ValueError), match=match):
            HydrogenBondWall(walls, hydrogen=hydrogen).to_dict()
    boxes = [_ions_in_water(s) for s in range(3)]
    charges = {"O": -0.834, "H": 0.417, "Na": 1.0, "Cl": -1.0}
    baseline = stable_baseline(boxes, charges, widths={s: 0.7 for s in charges}, barrier_pairs=("H-O",),
                               hydrogen_bond_walls={"H-O": (2.3, 5.0), "H-Cl": (2.8, 3.0)})
    wall = baseline.parts[-1]
    assert wall == HydrogenBondWall({"O-H": (2.3, 5.0), ("Cl", "H"): (2.8, 3.0)}) and HydrogenBondWall.from_dict(wall.to_dict()) == wall
    with pytest.raises(ValueError, match="version 2 is not supported"):
        HydrogenBondWall.from_dict({**wall.to_dict(), "version": 2})
    _assert_model_file_keeps(baseline, boxes, tmp_path)
    assert wall.evaluate(boxes)["energy"].min() > 0  # the wall is part of what the file predicts


def _smoothstep_off(r, inner, outer):
    """1 below ``inner``, 0 beyond ``outer``, 1 - (10 t^3 - 15 t^4 + 6 t^5) between (t from 0 to 1)."""
    t = min(max((r - inner) / (outer - inner), 0.0), 1.0)
    return 1.0 - (10 * t**3 - 15 * t**4 + 6 * t**5)


def _unbridged_wall_by_hand(box, walls, bridge):
    """E = sum over pairs (every periodic image) of k (r0 - r)^3 times the product over hydrogens (every image) of
    1 - s(r_ih) s(r_jh), from ASE's neighbour list."""
    from ase.neighborlist import neighbor_list

    symbols = np.array(box.get_chemical_symbols())
    reach = max(max(r0 for r0, _ in walls.values()), bridge[1]) + 1.0
    i, j, d, vectors = neighbor_list("ijdD", box, reach)
    total = 0.0
    for a, b, r, v in zip(i, j, d, vectors):
        key = "-".join(sorted((symbols[a], symbols[b])))
        if key not in walls or r >= walls[key][0] or a > b or (a == b and tuple(v) < tuple(-v)):
            continue  # each unordered pair (image) once
        r0, k = walls[key]
        weight = 1.0
        for v_ah in vectors[(i == a) & (symbols[j] == "H")]:
            weight *= 1.0 - _smoothstep_off(np.linalg.norm(v_ah), *bridge) * _smoothstep_off(
                np.linalg.norm(v_ah - v), *bridge)
        total += k * (r0 - r) ** 3 * weight
    return total


def test_unbridged_pair_wall_is_the_formula_by_hand_and_its_forces_and_virial_are_derivatives():
    from kernelpot.potential.core_repulsion import UnbridgedPairWall

    wall = UnbridgedPairWall({"O-O": (2.6, 20.0)}, bridge=(1.75, 2.05))
    pair = Atoms("O2", positions=[[0, 0, 0], [2.5, 0, 0]])
    assert wall.evaluate([pair])["energy"][0] == pytest.approx(20.0 * 0.1**3, rel=1e-12)
    # an H on its own O (0.97 Å) and 1.9 Å from the other: halfway through the switch, t = 0.5, s = 0.5
    half = pair + Atoms("H", positions=[[0.97 * np.cos(0.9), 0.97 * np.sin(0.9), 0]])
    r_jh = np.linalg.norm(half.positions[2] - half.positions[1])
    expected = 20.0 * 0.1**3 * (1.0 - _smoothstep_off(r_jh, 1.75, 2.05))
    assert 1.75 < r_jh < 2.05 and 0 < expected < 20.0 * 0.1**3
    assert wall.evaluate([half])["energy"][0] == pytest.approx(expected, rel=1e-12)
    # two such hydrogens: the factors multiply
    two = half + Atoms("H", positions=[[2.5 - 0.97 * np.cos(0.9), -0.97 * np.sin(0.9), 0]])
    assert wall.evaluate([two])["energy"][0] == pytest.approx(expected * (1.0 - _smoothstep_off(r_jh, 1.75, 2.05)),
                                                               rel=1e-12)

    box = _ions_in_water()
    walls, bridge = {"O-O": (4.5, 5.0), "Cl-O": (4.0, 3.0)}, (2.4, 3.0)  # wide: pairs and partial bridges here
    wall = UnbridgedPairWall(walls, bridge=bridge)
    result = wall.evaluate([box], virial=True, local_energy=True)
    unswitched = UnbridgedPairWall(walls, bridge=(0.1, 0.2)).evaluate([box])["energy"][0]
    assert 0 < result["energy"][0] < unswitched
    assert result["energy"][0] == pytest.approx(_unbridged_wall_by_hand(box, walls, bridge), rel=1e-10)
    assert result["local_energy"].sum() == pytest.approx(result["energy"][0])
    assert np.abs(result["forces"].sum(axis=0)).max() < 1e-10
    _assert_derivatives(wall, box, [(atom, axis) for atom in range(len(box)) for axis in range(3)],
                        [(0, 0), (0, 1), (1, 1), (2, 1), (2, 2)], abs_tol=1e-9)


def test_unbridged_pair_wall_leaves_a_bridged_pair_alone_and_is_smooth_as_the_hydrogen_leaves():
    from kernelpot.potential.core_repulsion import UnbridgedPairWall

    wall = UnbridgedPairWall({"O-O": (2.6, 20.0)}, bridge=(1.75, 2.05))
    # O-H...O, H...O 1.52 Å: the pair is a hydrogen bond; no energy, no force on any atom (bent too)
    for angle in (0.0, 0.3):
        bridged = Atoms("OHO", positions=[[0, 0, 0], [0.98 * np.cos(angle), 0.98 * np.sin(angle), 0], [2.5, 0, 0]])
        result = wall.evaluate([bridged], virial=True)
        assert result["energy"][0] == 0.0 and not result["forces"].any() and not result["virial"].any()

    def energy_forces(angle):  # the H swings about its own O, away from the other: the bridge breaks
        atoms = Atoms("OHO", positions=[[0, 0, 0], [0.98 * np.cos(angle), 0.98 * np.sin(angle), 0], [2.5, 0, 0]])
        result = wall.evaluate([atoms])
        return result["energy"][0], result["forces"], np.linalg.norm(atoms.positions[1] - atoms.positions[2])

    angles = np.linspace(0.0, np.pi, 2001)
    energies = np.array([energy_forces(a)[0] for a in angles])
    assert energies[0] == 0.0 and energies[-1] == pytest.approx(20.0 * 0.1**3)
    assert np.all(np.diff(energies) >= -1e-15) and np.abs(np.diff(energies)).max() < 1e-3  # no jumps (total 0.02)
    for r_edge in (1.75, 2.05):  # energy and forces continuous where the switch starts and ends
        edge = next(a for a in angles if energy_forces(a)[2] > r_edge)
        (e1, f1, _), (e2, f2, _) = energy_forces(edge - 1e-7), energy_forces(edge + 1e-7)
        assert e1 == pytest.approx(e2, abs=1e-9) and np.abs(f1 - f2).max() < 1e-5
    assert np.abs(energy_forces(angles[-1])[1][1]).max() == 0.0  # the unbridged wall does not push the H


def test_unbridged_pair_wall_refuses_bad_tables_and_survives_stable_baseline_and_a_model_file(tmp_path):
    from kernelpot.potential.core_repulsion import UnbridgedPairWall
    from kernelpot.potential.recipe import stable_baseline

    for walls, bridge, hydrogen, match in [({"H-O": (2.6, 10.0)}, (1.75, 2.05), "H", "non-hydrogen"),
                                           ({"O-O": (2.6, -1.0)}, (1.75, 2.05), "H", "k > 0"),
                                           ({"O-O": 2.6}, (1.75, 2.05), "H", "r0"), ({}, (1.75, 2.05), "H", "non-empty"),
                                           ({"O-O": (2.6, 10.0)}, (2.05, 1.75), "H", "0 < a < b"),
                                           ({"O-O": (2.6, 10.0)}, 1.9, "H", "bridge"),
                                           ({"O-O": (2.6, 10.0)}, (1.75, 2.05), "Q", "chemical symbol")]:
        with pytest.raises((TypeError, ValueError), match=match):
            UnbridgedPairWall(walls, bridge=bridge, hydrogen=hydrogen).to_dict()
    boxes = [_ions_in_water(s) for s in range(3)]
    charges = {"O": -0.834, "H": 0.417, "Na": 1.0, "Cl": -1.0}
    baseline = stable_baseline(boxes, charges, widths={s: 0.7 for s in charges}, barrier_pairs=("H-O",),
                               hydrogen_bond_walls={"H-O": (1.65, 9.0)},
                               unbridged_pair_walls={"O-O": (4.5, 5.0), "Cl-O": (4.0, 3.0)}, bridge=(2.4, 3.0))
    wall = baseline.parts[-1]
    assert wall == UnbridgedPairWall({"O-O": (4.5, 5.0), ("O", "Cl"): (4.0, 3.0)}, bridge=(2.4, 3.0))
    assert UnbridgedPairWall.from_dict(wall.to_dict()) == wall and wall != UnbridgedPairWall(wall.walls)
    with pytest.raises(ValueError, match="version 2 is not supported"):
        UnbridgedPairWall.from_dict({**wall.to_dict(), "version": 2})
    _assert_model_file_keeps(baseline, boxes, tmp_path)
    assert wall.evaluate(boxes)["energy"].min() > 0  # the wall is part of what the file predicts


def _assert_model_file_keeps(baseline, boxes, tmp_path):
    """A SparseGPR fitted over ``baseline`` predicts the same forces after a .kpot round trip, baseline included."""
    from kernelpot.models.gap import SparseGPR
    from kernelpot.potential.recipe import terms_from_gap_string
    from kernelpot.potential.serialization import load_model, save_model

    gap = "distance_2b cutoff=3.0 covariance_type=ard_se delta=1.0 theta_uniform=1.0 n_sparse=5 sparse_method=uniform"
    model = SparseGPR(terms_from_gap_string(gap, [1, 8, 11, 17]), baseline=baseline, e0=0.0).fit(
        boxes, energies=[float(-14.0 * len(b) / 3) for b in boxes])
    save_model(model, tmp_path / "m.kpot")
    loaded = load_model(tmp_path / "m.kpot")
    assert loaded.baseline == baseline
    expected = model.predict(boxes, properties=("energy", "forces"))
    got = loaded.predict(boxes, properties=("energy", "forces"))
    np.testing.assert_allclose(got["forces"], expected["forces"], rtol=1e-12, atol=1e-12)
