"""QUIP/GAP XML models in and out: parity with quippy's Potential, refusals by name, ``kernelpot convert``."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from kernelpot.cli import main
from kernelpot.descriptors import CentreSpecies
from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.descriptors.soap import SOAP
from kernelpot.kernels import (
    GaussianCovariance,
    LinearCovariance,
    NormalizedDotProductCovariance,
)
from kernelpot.models.gap import GAPTerm, SparseGPR
from kernelpot.potential import (
    CoulombBaseline,
    load_gap_xml,
    load_model,
    save_gap_xml,
    save_model,
)
from kernelpot.potential.gap_xml import GapXMLError, gap_soap_columns, load_potential

REFERENCE = Path(__file__).parent / "reference" / "gap_xml"
CASES = ("si", "mo", "ethanol")
# issue 20: energies to 1e-8 eV/atom, forces to 1e-6 eV/Å; stresses to 1e-8 eV/Å³ (~1.6 kPa)
E_TOL, F_TOL, S_TOL = 1e-8, 1e-6, 1e-8


def reference_frames(name):
    ref = np.load(REFERENCE / "reference.npz")
    split = np.cumsum(ref[f"{name}_n_atoms"])[:-1]
    frames = [Atoms(numbers=z, positions=r, cell=cell, pbc=pbc) for z, r, cell, pbc in zip(
        np.split(ref[f"{name}_numbers"], split), np.split(ref[f"{name}_positions"], split), ref[f"{name}_cell"],
        ref[f"{name}_pbc"])]
    expected = {key: ref[f"{name}_{key}"] for key in ("energy", "forces", "stress") if f"{name}_{key}" in ref}
    return frames, expected


def copy_case(name, folder):
    for source in REFERENCE.glob(f"{name}.xml*"):
        shutil.copy(source, folder / source.name)
    return folder / f"{name}.xml"


def check_parity(model, frames, expected):
    properties = ("energy", "forces") + (("stress",) if "stress" in expected else ())
    prediction = model.predict(frames, properties=properties)
    n_atoms = np.array([len(a) for a in frames])
    assert np.max(np.abs(prediction["energy"] - expected["energy"]) / n_atoms) < E_TOL
    assert np.max(np.abs(prediction["forces"] - expected["forces"])) < F_TOL
    if "stress" in expected:
        stress = expected["stress"]
        voigt = np.stack([stress[:, a, b] for a, b in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))], axis=1)
        assert np.max(np.abs(prediction["stress"] - voigt)) < S_TOL


# ------------------------------------------------------------------------------------ GAP XML in
@pytest.mark.parametrize("name", CASES)
def test_gap_fit_models_predict_as_frozen_quippy(name):
    """gap_fit-written Si, Mo (2b + soap Z=) and ethanol (wildcard 2b, O-H 2b, soap per centre species) models."""
    frames, expected = reference_frames(name)
    model = load_gap_xml(REFERENCE / f"{name}.xml")
    check_parity(model, frames, expected)


def test_imported_terms_are_kernelpot_terms():
    model = load_gap_xml(REFERENCE / "ethanol.xml")
    kinds = [type(t.descriptor).__name__ for t in model.terms_]
    assert kinds == ["Distance2B", "Distance2B", "CentreSpecies", "CentreSpecies", "CentreSpecies"]
    assert (model.terms_[0].descriptor.Z1, model.terms_[1].descriptor.Z1, model.terms_[1].descriptor.Z2) == (None, 1, 8)
    assert [t.descriptor.species for t in model.terms_[2:]] == [6, 8, 1]
    assert model.terms_[2].descriptor.descriptor.species == [1, 6, 8]
    assert model.terms_[2].descriptor.descriptor.central_weight == 0.7
    assert set(model.e0_) == {1, 6, 8}
    assert model.metadata_["source"] == "gap_xml" and "gap={distance_2b" in model.metadata_["gap_fit_command_line"]


def test_live_quippy_agrees_on_rattled_structures(tmp_path):
    """The frozen numbers come from quippy; here quippy itself, on structures it never saw."""
    potential_module = pytest.importorskip("quippy.potential")
    for name, atoms in (("si", bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 1, 1))),
                        ("ethanol", molecule("CH3CH2OH"))):
        atoms.rattle(0.1, seed=3)
        if not atoms.pbc.any():
            atoms.cell = [12.0] * 3
            atoms.center()
        xml = copy_case(name, tmp_path)
        reference = atoms.copy()
        reference.calc = potential_module.Potential(param_filename=str(xml))
        expected = {"energy": np.array([reference.get_potential_energy()]), "forces": reference.get_forces()}
        if atoms.pbc.all():
            expected["stress"] = reference.get_stress(voigt=False)[None]
        check_parity(load_gap_xml(xml), [atoms], expected)


def test_imported_model_saves_as_kpot_but_refuses_variances(tmp_path):
    frames, expected = reference_frames("si")
    model = load_gap_xml(REFERENCE / "si.xml")
    with pytest.raises(ValueError, match="no posterior covariance"):
        model.predict(frames[:1], return_std=True)
    save_model(model, tmp_path / "si.kpot", metadata=model.metadata_)
    loaded = load_model(tmp_path / "si.kpot")
    check_parity(loaded, frames, expected)
    assert loaded.metadata_["gap_version"] == model.metadata_["gap_version"]
    assert isinstance(load_potential(REFERENCE / "si.xml"), SparseGPR)
    assert isinstance(load_potential(tmp_path / "si.kpot"), SparseGPR)
    with pytest.raises(ValueError, match="no posterior covariance"):
        loaded.predict(frames[:1], return_std=True)


def test_gap_soap_columns_is_a_permutation_matching_sorted_species():
    sorted_order = gap_soap_columns([1, 6, 8], 3, 2)
    assert sorted(sorted_order) == list(range(sorted_order.size))
    shuffled = gap_soap_columns([6, 8, 1], 3, 2)
    assert sorted(shuffled) == list(range(shuffled.size))
    assert not np.array_equal(sorted_order, shuffled)
    with pytest.raises(GapXMLError, match="twice"):
        gap_soap_columns([1, 1], 2, 1)


# ------------------------------------------------------------------------------------ refusals
def edited(tmp_path, name, pattern, replacement, count=1):
    xml = copy_case(name, tmp_path)
    text, n = re.subn(pattern, replacement, xml.read_text(), count=count)
    assert n, pattern
    xml.write_text(text)
    return xml


@pytest.mark.parametrize("pattern, replacement, message", [
    (r"<descriptor>distance_2b", "<descriptor>angle_3b", "descriptor 'angle_3b' is not available"),
    (r'covariance_type="1"', 'covariance_type="4"', "covariance 'pp'"),
    (r'covariance_type="2"', 'covariance_type="1"', "soap with covariance 'ard_se'"),
    (r'do_core="F"', 'do_core="T"', "core potential"),
    (r'init_args="IP GAP', 'init_args="Sum init_args_pot1={IP Glue} init_args_pot2={IP GAP', "not a plain GAP"),
    (r"(<descriptor> ?soap )", r"\1normalise=F ", "normalise=F"),
    (r"(<descriptor> ?soap )", r"\1diagonal_radial=T ", "diagonal_radial"),
    (r"(<descriptor> ?soap )", r"\1radial_basis=GTO ", "radial_basis"),
    (r"(<descriptor> ?soap )", r"\1average=T ", "average"),
    (r"(<descriptor> ?distance_2b )", r"\1only_intra=T resid_name=mol ", "only_intra"),
    (r"(<descriptor> ?soap )", r"\1sparse_jitter_unknown=3 ", "sparse_jitter_unknown"),
    (r'signal_mean="[^"]*"', 'signal_mean="0.5"', "signal_mean"),
    (r'sparsified="T"', 'sparsified="F"', "non-sparse"),
    (r'n_permutations="1"', 'n_permutations="2"', "permutations"),
    (r'gap_version="\d+"', 'gap_version="1400000000"', "2l\\+1"),
    (r'sparseX_md5sum="\w+"', 'sparseX_md5sum="0123456789abcdef0123456789abcdef"', "MD5"),
    (r'(<sparseX i="2") alpha', r'\1 alphaX', "attribute 'alpha' is missing"),
])
def test_unsupported_xml_is_refused_by_name(tmp_path, pattern, replacement, message):
    xml = edited(tmp_path, "si", pattern, replacement)
    with pytest.raises(GapXMLError, match=message):
        load_gap_xml(xml)


def test_multi_species_soap_with_centre_in_every_density_is_refused(tmp_path):
    xml = edited(tmp_path, "ethanol", r"(<descriptor> ?soap )", r"\1central_reference_all_species=T ")
    with pytest.raises(GapXMLError, match="central_reference_all_species"):
        load_gap_xml(xml)


def test_sparse_points_inside_the_xml_read_as_from_files(tmp_path):
    """gap_fit's sparse_separate_file=F (and older GAP versions) keep each sparse point in its sparseX element."""
    import xml.etree.ElementTree as ET

    tree = ET.parse(REFERENCE / "ethanol.xml")
    for coordinates in tree.getroot().iter("gpCoordinates"):
        points = np.loadtxt(REFERENCE / coordinates.attrib.pop("sparseX_filename")).reshape(
            int(coordinates.get("n_sparseX")), -1)
        del coordinates.attrib["sparseX_md5sum"]
        for element in coordinates.findall("sparseX"):
            element.text = " ".join(repr(float(v)) for v in points[int(element.get("i")) - 1])
    tree.write(tmp_path / "inline.xml")
    frames, expected = reference_frames("ethanol")
    check_parity(load_gap_xml(tmp_path / "inline.xml"), frames, expected)


def test_missing_files_and_foreign_xml(tmp_path):
    xml = copy_case("si", tmp_path)
    next(tmp_path.glob("si.xml.sparseX.*2")).unlink()
    with pytest.raises(GapXMLError, match="sparse-point file .* is missing"):
        load_gap_xml(xml)
    (tmp_path / "other.xml").write_text("<root><something/></root>")
    with pytest.raises(GapXMLError, match="no GAP_params"):
        load_gap_xml(tmp_path / "other.xml")
    (tmp_path / "broken.xml").write_text("<root><unclosed></root>")
    with pytest.raises(GapXMLError, match="not a readable XML"):
        load_gap_xml(tmp_path / "broken.xml")
    with pytest.raises(FileNotFoundError):
        load_gap_xml(tmp_path / "absent.xml")


# ------------------------------------------------------------------------------------ GAP XML out
def small_fit(structures, terms):
    rng = np.random.default_rng(0)
    energies = [float(rng.normal()) - len(atoms) for atoms in structures]
    forces = [rng.normal(scale=0.3, size=(len(atoms), 3)) for atoms in structures]
    model = SparseGPR(terms, e0="average", random_state=0)
    return model.fit(structures, energies=energies, forces=forces)


def silicon_cells(n=4):
    cells = []
    for seed in range(n):
        atoms = bulk("Si", "diamond", a=5.43 + 0.03 * seed, cubic=True)
        atoms.rattle(0.1, seed=seed)
        cells.append(atoms)
    return cells


def ethanol_frames(n=4):
    frames = []
    for seed in range(n):
        atoms = molecule("CH3CH2OH")
        atoms.rattle(0.08, seed=seed)
        frames.append(atoms)
    return frames


def quippy_predictions(xml, structures):
    potential_module = pytest.importorskip("quippy.potential")
    potential = potential_module.Potential(param_filename=str(xml))
    energies, forces, stresses = [], [], []
    for atoms in structures:
        atoms = atoms.copy()
        if not atoms.pbc.any():
            atoms.cell = [15.0] * 3
        atoms.calc = potential
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
        if atoms.pbc.all():
            stresses.append(atoms.get_stress(voigt=False))
    out = {"energy": np.array(energies), "forces": np.concatenate(forces)}
    if stresses:
        out["stress"] = np.array(stresses)
    return out


def test_kernelpot_fit_written_as_gap_xml_runs_in_quippy(tmp_path):
    """Round trip kernelpot -> XML -> quippy, periodic Si (2b + per-centre SOAP) and ethanol (wildcard-centre SOAP)."""
    silicon = small_fit(silicon_cells(), [
        GAPTerm(Distance2B(cutoff=4.5, cutoff_transition_width=0.7, Z1=14, Z2=14), GaussianCovariance(0.8),
                delta=1.0, n_sparse=8, sparse_method="uniform"),
        GAPTerm(CentreSpecies(SOAP([14], r_cut=4.0, n_max=3, l_max=3, sigma=0.5, rbf="gap", periodic=True,
                                   cutoff_transition_width=1.0), 14),
                NormalizedDotProductCovariance(4), delta=0.3, n_sparse=10)])
    ethanol = small_fit(ethanol_frames(), [
        GAPTerm(Distance2B(cutoff=3.5), GaussianCovariance(1.0), delta=0.5, n_sparse=6, sparse_method="uniform"),
        GAPTerm(SOAP([1, 6, 8], r_cut=3.5, n_max=2, l_max=2, sigma=0.5, rbf="gap", periodic=True,
                     cutoff_transition_width=0.8, central_weight=0.5),
                NormalizedDotProductCovariance(2), delta=0.2, n_sparse=8)])
    soap = SOAP([1, 6, 8], r_cut=3.5, n_max=2, l_max=2, sigma=0.5, rbf="gap", periodic=True,
                cutoff_transition_width=0.8)
    centres = small_fit(ethanol_frames(), [  # GAP's n_Z=2 Z={1 6}, and Z=8
        GAPTerm(CentreSpecies(soap, [1, 6]), NormalizedDotProductCovariance(2), delta=0.2, n_sparse=8),
        GAPTerm(CentreSpecies(soap, 8), NormalizedDotProductCovariance(2), delta=0.3, n_sparse=4)])
    for name, model, structures in (("si", silicon, silicon_cells(6)[4:]), ("eth", ethanol, ethanol_frames(6)[4:]),
                                    ("centres", centres, ethanol_frames(6)[4:])):
        written = save_gap_xml(model, tmp_path / f"{name}.xml")
        assert [p.name for p in written][-1] == f"{name}.xml" and all(p.is_file() for p in written)
        check_parity(model, structures, quippy_predictions(tmp_path / f"{name}.xml", structures))
        # and back: the written XML reads as the same model
        check_parity(load_gap_xml(tmp_path / f"{name}.xml"), structures,
                     {k: v for k, v in quippy_predictions(tmp_path / f"{name}.xml", structures).items()})


def test_terms_quip_lacks_are_refused_on_writing(tmp_path):
    cells = silicon_cells(3)
    dscribe_soap = small_fit(cells, [GAPTerm(SOAP([14], r_cut=4.0, n_max=2, l_max=2, periodic=True),
                                             NormalizedDotProductCovariance(2), delta=0.3, n_sparse=4)])
    with pytest.raises(GapXMLError, match="rbf='gto'"):
        save_gap_xml(dscribe_soap, tmp_path / "a.xml")
    linear = small_fit(silicon_cells(3), [GAPTerm(SOAP([14], r_cut=4.0, n_max=2, l_max=2, rbf="gap", periodic=True,
                                                       cutoff_transition_width=0.5),
                                                  LinearCovariance(), delta=0.3, n_sparse=4)])
    with pytest.raises(GapXMLError, match="LinearCovariance"):
        save_gap_xml(linear, tmp_path / "b.xml")
    charged = load_gap_xml(REFERENCE / "si.xml")
    charged.baseline = CoulombBaseline({"Si": 0.0})
    with pytest.raises(GapXMLError, match="CoulombBaseline"):
        save_gap_xml(charged, tmp_path / "c.xml")
    assert not list(tmp_path.glob("*.xml*"))
    molecular = small_fit(ethanol_frames(2), [GAPTerm(SOAP([1, 6, 8], r_cut=3.0, n_max=2, l_max=1, rbf="gap",
                                                           cutoff_transition_width=0.5),
                                                      NormalizedDotProductCovariance(2), delta=0.3, n_sparse=3)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_gap_xml(molecular, tmp_path / "d.xml")
    assert any("periodic=False" in str(w.message) for w in caught)


# ------------------------------------------------------------------------------------ CLI
def test_convert_command_both_ways(tmp_path, capsys):
    xml = copy_case("mo", tmp_path)
    assert main(["convert", str(xml), "-o", str(tmp_path / "mo.kpot")]) == 0
    assert "2 terms" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "mo.kpot"), "-o", str(tmp_path / "back.xml"), "--quiet"]) == 0
    frames, expected = reference_frames("mo")
    check_parity(load_model(tmp_path / "mo.kpot"), frames, expected)
    check_parity(load_gap_xml(tmp_path / "back.xml"), frames, expected)
    assert main(["convert", str(xml), "-o", str(tmp_path / "same.xml")]) == 2
    assert "reads .xml and writes .kpot" in capsys.readouterr().err
    bad = edited(tmp_path, "si", r"<descriptor>distance_2b", "<descriptor>angle_3b")
    assert main(["convert", str(bad), "-o", str(tmp_path / "bad.kpot")]) == 2
    assert "angle_3b" in capsys.readouterr().err
    assert not (tmp_path / "bad.kpot").exists()


def test_calculator_runs_an_xml_file_without_uncertainties():
    from kernelpot.potential import GAPCalculator

    frames, expected = reference_frames("si")
    with pytest.raises(ValueError, match="uncertainty=False"):
        GAPCalculator(REFERENCE / "si.xml")
    atoms = frames[0].copy()
    atoms.calc = GAPCalculator(REFERENCE / "si.xml", uncertainty=False)
    np.testing.assert_allclose(atoms.get_forces(), expected["forces"][: len(atoms)], atol=F_TOL)


def test_evaluate_reads_a_gap_xml(tmp_path, capsys):
    import json

    from ase.io import read, write

    frames = read(Path(__file__).parents[1] / "data" / "mlearn_si" / "mlearn_Si_test.extxyz", ":3")
    write(tmp_path / "test.extxyz", frames)
    assert main(["evaluate", str(REFERENCE / "si.xml"), str(tmp_path / "test.extxyz"), "--json", "--quiet"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["n_structures"] == 3 and 0 < table["forces_rmse"] < 1.0
