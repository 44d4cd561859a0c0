"""``kernelpot gap_fit key=value ...``: gap_fit's command line, mapped, ignored or refused by name.

Published command lines are copied verbatim from libAtoms' own documentation
(github.com/libAtoms/GAP at commit 25e734c83da9b2d52829e84a7b10704317fe8a1f):

* ``doc_src/gap_fitting_tutorial.ipynb`` — the GAP fitting tutorial (2-body,
  then 2-body + 3-body, on water);
* ``doc_src/gap_si_surface.ipynb`` — the silicon surface tutorial
  (``distance_Nb`` 2-body, + 3-body, + SOAP);
* ``doc_src/gap_fit.rst`` — the annotated ``gap_fit`` example of the manual
  (the phosphorus GAP of Deringer, Caro, Csányi, Nat. Commun. 11, 5461 (2020):
  its config types rss_rnd, liq_P4, ribbons, ... and a Glue baseline);
* ``hybrid_md_package/hybrid_md/refit.py`` + ``settings.py`` — the 2-body +
  SOAP refit command of libAtoms' hybrid MD package with its default settings.

The live comparison runs QUIP's ``gap_fit`` when it is installed (the
``peers`` extra); the same numbers are frozen in
``tests/reference/gap_fit_command/`` with the script that made them.
"""

import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from kernelpot.cli import main
from kernelpot.descriptors import CentreSpecies
from kernelpot.descriptors.distance_2b import Distance2B
from kernelpot.potential.gap_fit_command import (
    NO_EFFECT,
    check_unsupported_labels,
    parse_config_type_sigma,
    parse_e0,
    parse_gap_fit_command,
    resolve_zero_sigmas,
)
from kernelpot.potential.recipe import gap_fit_jitter, terms_from_gap_string
from kernelpot.potential.serialization import load_model

REFERENCE = Path(__file__).parent / "reference" / "gap_fit_command"

# doc_src/gap_fitting_tutorial.ipynb, cell "! gap_fit ..." (2-body fit)
TUTORIAL_2B = ("energy_parameter_name=energy force_parameter_name=forces do_copy_at_file=F sparse_separate_file=T "
               "gp_file=GAP.xml at_file=train.xyz default_sigma={0.008 0.04 0.01 0.01} gap={distance_2b cutoff=4.0 "
               "covariance_type=ard_se delta=0.5 theta_uniform=1.0 sparse_method=uniform add_species=T n_sparse=10}")
# doc_src/gap_fitting_tutorial.ipynb, the 2-body + 3-body fit
TUTORIAL_3B = ("energy_parameter_name=energy force_parameter_name=forces do_copy_at_file=F sparse_separate_file=T "
               "gp_file=GAP_3b.xml at_file=train.xyz default_sigma={0.008 0.04 0.01 0.01} gap={distance_2b "
               "cutoff=4.0 covariance_type=ard_se delta=0.5 theta_uniform=1.0 sparse_method=uniform add_species=T "
               "n_sparse=10 : angle_3b cutoff=3.5 covariance_type=ard_se delta=0.5 theta_fac=0.5 add_species=T "
               "n_sparse=30 sparse_method=uniform}")
# doc_src/gap_si_surface.ipynb, the 2-body fit (written over several lines with backslashes there)
SI_SURFACE_2B = ("at_file=/tmp/atoms_db.xyz gap={distance_Nb order=2 cutoff=5.0 covariance_type=ARD_SE "
                 "theta_uniform=1.0 n_sparse=15 delta=1.0} e0=-29.716948405885105 default_sigma={0.01 0.5 0.0 0.0} "
                 "do_copy_at_file=F sparse_separate_file=F gp_file=/tmp/gap_2b.xml")
# doc_src/gap_si_surface.ipynb, the 2-body + 3-body + SOAP fit
SI_SURFACE_SOAP = ("at_file=/tmp/atoms_db.xyz gap={distance_Nb order=2 cutoff=5.0 covariance_type=ARD_SE "
                   "theta_uniform=1.0 n_sparse=15 delta=1.0: distance_Nb order=3 cutoff=4.0 covariance_type=ARD_SE "
                   "theta_uniform=1.0 n_sparse=50 delta=0.004: soap cutoff=4.0 covariance_type=dot_product zeta=2 "
                   "delta=0.016 atom_sigma=0.7 l_max=6 n_max=6 n_sparse=200 sparse_method=cur_points} "
                   "e0=-29.716948405885105 default_sigma={0.001 0.5 0.0 0.0} do_copy_at_file=F "
                   "sparse_separate_file=F gp_file=/tmp/gap_2b3bsoap.xml")
# doc_src/gap_fit.rst, "Command line example" (comments removed, one line)
MANUAL_EXAMPLE = (
    "atoms_filename=database.xyz gap={distance_Nb order=2 cutoff=5.0 n_sparse=15 covariance_type=ard_se delta=2.0 "
    "theta_uniform=2.5 sparse_method=uniform compact_clusters=T : soap l_max=6 n_max=12 atom_sigma=0.5 cutoff=5.0 "
    "radial_scaling=-0.5 cutoff_transition_width=1.0 central_weight=1.0 n_sparse=8000 delta=0.2 "
    "covariance_type=dot_product zeta=4 sparse_method=cur_points} default_sigma={0.002 0.2 0.2 0.0} "
    "config_type_sigma={ isolated_atom:0.0001:0.01:1.0:0.0: rss_rnd:0.03:0.4:0.5:0.0: rss_005:0.02:0.3:0.4:0.0: "
    "rss_200:0.01:0.2:0.2:0.0: rss_3c:0.005:0.1:0.1:0.00: cryst_dist:0.0003:0.03:0.05:0.00: "
    "cryst_dist_hp:0.005:0.1:0.1:0.0: liq_P4:0.003:0.3:0.5:0.0: liq_network:0.003:0.3:0.5:0.0: "
    "2D:0.001:0.03:0.05:0.0: ribbons:0.01:0.5:0.2:0.0 } energy_parameter_name=energy force_parameter_name=forces "
    "virial_parameter_name=virial sparse_jitter=1.0e-8 do_copy_at_file=F sparse_separate_file=T gp_file=gap.xml "
    "core_param_file=P_r6_innercut.xml core_ip_args={IP Glue}")
# hybrid_md_package: refit.py's fit_str with settings.py's defaults (delta computed there; 0.25 eV here)
HYBRID_MD = ("at_file=train.xyz gp_file=GAP.xml energy_parameter_name=QM_energy force_parameter_name=QM_forces "
             "virial_parameter_name=QM_virial do_copy_at_file=F sparse_separate_file=T "
             "default_sigma={ 0.005 0.050 0.1 1.0 }  e0_method=average gap={ distance_Nb order=2 n_sparse=20 "
             "cutoff=5.0 cutoff_transition_width=1.0 compact_clusters covariance_type=ard_se theta_uniform=1.0 "
             "sparse_method=uniform f0=0.0 add_species=T delta=0.25 : soap n_sparse=500 n_max=6 l_max=3 cutoff=5.0 "
             "cutoff_transition_width=1.0 atom_sigma=0.5 add_species=True covariance_type=dot_product zeta=4 "
             "sparse_method=cur_points delta=0.25 }  sparse_jitter=1.0e-8")


def _as_kpot(command: str, new: str) -> str:
    """The command with its gp_file replaced (kernelpot writes .kpot)."""
    words = [w for w in shlex.split(command) if not w.startswith("gp_file=")]
    return " ".join(words + [f"gp_file={new}"])


# ----------------------------------------------------------------- published command lines
def test_the_tutorials_two_body_command_is_read_as_gap_fit_reads_it():
    command = parse_gap_fit_command(_as_kpot(TUTORIAL_2B, "GAP.kpot"))
    assert command.train == Path("train.xyz") and command.output == Path("GAP.kpot")
    assert command.default_sigma == [0.008, 0.04, 0.01, 0.01]
    assert command.label_keys == {"energy_key": "energy", "forces_key": "forces", "virial_key": "virial",
                                  "stress_key": "stress", "config_type_key": "config_type"}
    assert command.e0 == "isolated"  # gap_fit's default e0_method: the tutorial adds isolated H and O
    assert command.ignored == ["do_copy_atoms_file", "sparse_separate_file"]
    (pair,) = terms_from_gap_string(command.gap, [1], add_species=True)
    assert isinstance(pair.descriptor, Distance2B) and pair.delta == 1.0  # twice gap_fit's delta


def test_the_tutorials_commands_as_published_are_refused_for_xml_and_species_split_three_body_terms():
    with pytest.raises(ValueError, match=r"gp_file=GAP.xml: kernelpot writes .kpot model files \(e.g. "
                                         r"gp_file=GAP.kpot\); exporting GAP XML .* not available yet"):
        parse_gap_fit_command(TUTORIAL_2B)
    # kernelpot has angle_3b, but not gap_fit's split of one term into every species triplet (add_species=T)
    with pytest.raises(ValueError, match=r"gp_file=GAP_3b.xml.*gap=: angle_3b: give Z, Z1 and Z2"):
        parse_gap_fit_command(TUTORIAL_3B)


def test_the_si_surface_tutorial_two_body_fit_maps_distance_nb_and_a_numeric_e0():
    command = parse_gap_fit_command(_as_kpot(SI_SURFACE_2B, "/tmp/gap_2b.kpot"))
    assert command.e0 == pytest.approx(-29.716948405885105)
    assert command.default_sigma == [0.01, 0.5, 0.0, 0.0]
    (pair,) = terms_from_gap_string(command.gap, [14], add_species=True)
    assert isinstance(pair.descriptor, Distance2B) and pair.n_sparse == 15 and pair.delta == 2.0
    with pytest.raises(ValueError, match=r"distance_nb: only order=2 .* got order=3"):
        parse_gap_fit_command(_as_kpot(SI_SURFACE_SOAP, "x.kpot"))


def test_the_manuals_example_is_refused_naming_every_key_kernelpot_cannot_honour():
    with pytest.raises(ValueError) as caught:
        parse_gap_fit_command(MANUAL_EXAMPLE)
    message = str(caught.value)
    for part in (r"core_param_file: kernelpot cannot evaluate a QUIP XML potential as a baseline",
                 r"core_ip_args: kernelpot cannot evaluate a QUIP potential",
                 r"gp_file=gap.xml: kernelpot writes .kpot", r"unsupported gap_fit key(s) ['radial_scaling']"):
        assert part in message
    # Without what kernelpot lacks, the rest of the command (11 config types) is read.
    shorter = _as_kpot(MANUAL_EXAMPLE.replace("radial_scaling=-0.5 ", "").split(" core_param_file")[0], "gap.kpot")
    command = parse_gap_fit_command(shorter)
    assert len(command.config_type_sigma) == 11
    assert command.config_type_sigma["liq_P4"] == [0.003, 0.3, 0.5, 0.0]
    assert command.config_type_sigma["2D"] == [0.001, 0.03, 0.05, 0.0]
    assert command.sparse_jitter == 1e-8


def test_the_hybrid_md_refit_command_is_supported_apart_from_its_xml_file():
    command = parse_gap_fit_command(_as_kpot(HYBRID_MD, "GAP.kpot"))
    assert command.e0 == "average" and command.default_sigma == [0.005, 0.05, 0.1, 1.0]
    assert command.label_keys["energy_key"] == "QM_energy" and command.label_keys["virial_key"] == "QM_virial"
    terms = terms_from_gap_string(command.gap, [1, 8], add_species=True)
    pairs = [(t.descriptor.Z1, t.descriptor.Z2) for t in terms if isinstance(t.descriptor, Distance2B)]
    centres = [t.descriptor.species for t in terms if isinstance(t.descriptor, CentreSpecies)]
    assert pairs == [(1, 1), (1, 8), (8, 8)] and centres == [1, 8]  # gap_fit's add_species split
    assert gap_fit_jitter(terms, command.sparse_jitter)[0] == pytest.approx(1e-8 / 0.25**2)


# ----------------------------------------------------------------- the same fit as gap_fit
def _kernelpot_gap_fit(tmp_path, name, command):
    (tmp_path / "train.xyz").write_bytes((REFERENCE / "train.xyz").read_bytes())
    import os

    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["gap_fit", *shlex.split(command), f"gp_file={name}.kpot", "--quiet"]) == 0
    finally:
        os.chdir(here)
    model = load_model(tmp_path / f"{name}.kpot")
    out = model.predict(read(REFERENCE / "test.xyz", ":"), properties=("forces",))
    return model, out["energy"], out["forces"]


def _commands():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_reference", REFERENCE / "make_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.COMMANDS


@pytest.mark.parametrize("name, energy_tol, force_tol", [("pairs", 2e-3, 2e-3), ("soap", 1e-8, 1e-8)])
def test_kernelpot_gap_fit_gives_gap_fits_model(tmp_path, name, energy_tol, force_tol):
    reference = np.load(REFERENCE / "reference.npz")
    model, energies, forces = _kernelpot_gap_fit(tmp_path, name, _commands()[name])
    # gap_fit's defaults: isolated-atom e0 and add_species=T (one term per pair / centre species)
    assert model.e0_ == {29: pytest.approx(3.51), 47: pytest.approx(2.96)}
    assert len(model.terms_) == (3 if name == "pairs" else 2)
    assert model.config_type_sigma["bulk"] == [0.002, 0.05, 0.1, 0.0]
    # pairs: gap_fit's 'uniform' sparse points are data points from a histogram's bins, kernelpot's a grid;
    # soap: every environment is a sparse point, so the models are the same.
    np.testing.assert_allclose(energies, reference[f"{name}_energies"], atol=energy_tol * 8)
    np.testing.assert_allclose(forces, reference[f"{name}_forces"], atol=force_tol)


@pytest.mark.peers
@pytest.mark.skipif(shutil.which("gap_fit") is None, reason="QUIP's gap_fit is not installed (peers extra)")
def test_frozen_reference_is_what_gap_fit_gives_today(tmp_path):
    # the gap_fit on PATH may belong to another environment than this Python's quippy (peers extra)
    Potential = pytest.importorskip("quippy.potential").Potential

    reference = np.load(REFERENCE / "reference.npz")
    (tmp_path / "train.xyz").write_bytes((REFERENCE / "train.xyz").read_bytes())
    command = _commands()["pairs"]
    subprocess.run(["gap_fit", *shlex.split(command), "gp_file=pairs.xml"], cwd=tmp_path, check=True,
                   capture_output=True)
    potential = Potential(param_filename=str(tmp_path / "pairs.xml"))
    energies = []
    for atoms in read(REFERENCE / "test.xyz", ":"):
        atoms.calc = potential
        energies.append(atoms.get_potential_energy())
    np.testing.assert_allclose(energies, reference["pairs_energies"], atol=1e-8)


# ----------------------------------------------------------------- keys, values, refusals
def test_aliases_defaults_and_prefix():
    command = parse_gap_fit_command("atoms_filename=a.xyz gap={soap cutoff=3} default_kernel_regularisation={1 2 3} "
                                    "gap_file=m.kpot parameter_name_prefix=DFT_ rnd_seed=7 verbosity=VERBOSE "
                                    "kernel_regularisation_is_per_atom=F")
    assert command.label_keys == {"energy_key": "DFT_energy", "forces_key": "DFT_force", "virial_key": "DFT_virial",
                                  "stress_key": "DFT_stress", "config_type_key": "DFT_config_type"}
    assert command.random_state == 7 and command.verbose and command.sigma_per_atom is False
    assert parse_gap_fit_command("at_file=a gap={soap} default_sigma={1 2 3}").random_state is None
    assert parse_gap_fit_command("at_file=a gap={soap} default_sigma={1 2 3}").output == Path("gap_new.kpot")


def test_shell_words_are_joined_as_gap_fit_joins_them():
    words = ["at_file=a.xyz", "gap={distance_2b", "cutoff=4.0", "n_sparse=10}", "default_sigma={0.1", "0.2",
             "0.3", "0}", "gp_file=x.kpot"]
    command = parse_gap_fit_command(words)
    assert command.gap == "{distance_2b cutoff=4.0 n_sparse=10}" and command.default_sigma == [0.1, 0.2, 0.3, 0.0]


def test_config_file_holds_the_arguments(tmp_path):
    (tmp_path / "gap.cfg").write_text("at_file=a.xyz\ngap={soap cutoff=3\n  n_max=4}\ndefault_sigma={1 2 3 0}\n")
    command = parse_gap_fit_command([f"config_file={tmp_path / 'gap.cfg'}"])
    assert command.gap == "{soap cutoff=3   n_max=4}"
    with pytest.raises(ValueError, match=r"config_file= holds all the arguments .* remove \['e0'\]"):
        parse_gap_fit_command([f"config_file={tmp_path / 'gap.cfg'}", "e0=0"])
    with pytest.raises(ValueError, match=r"config_file: '.*missing.cfg' does not exist"):
        parse_gap_fit_command([f"config_file={tmp_path / 'missing.cfg'}"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("gap={soap} default_sigma={1 2 3}", r"at_file= is missing"),
        ("at_file=a default_sigma={1 2 3}", r"gap= is missing"),
        ("at_file=a gap={soap}", r"default_sigma= is missing"),
        ("at_file=a gap={soap} default_sigma={1 2 3} at_file=b", r"'at_file' is given twice"),
        ("at_file=a atoms_filename=b gap={soap} default_sigma={1 2 3}", r"at_file= and atoms_filename= are the same gap_fit option"),
        ("at_file=a gap={soap} default_sigma={1 2 3} foo=1", r"foo: not a gap_fit option kernelpot knows"),
        ("at_file=a gap={soap} default_sigma={1 2 3} hessian_parameter_name=h", r"hessian_parameter_name: kernelpot "
         r"does not fit Hessians"),
        ("at_file=a gap={soap} default_sigma={1 2 3} sigma_parameter_name=s", r"sigma_parameter_name: kernelpot has no "
         r"per-structure sigmas"),
        ("at_file=a gap={soap} default_sigma={1 2 3} force_mask_parameter_name=m", r"no force mask"),
        ("at_file=a gap={soap} default_sigma={1 2 3} local_property0=1", r"does not fit local properties"),
        ("at_file=a gap={soap} default_sigma={1 2 3} sparsify_only_no_fit=T", r"sparsify_only_no_fit=T: kernelpot "
         r"always fits"),
        ("at_file=a gap={soap} default_sigma={1 2 3} dryrun=T", r"dryrun=T: not available"),
        ("at_file=a gap={soap} default_sigma={1 2 3} e0_offset=1.5", r"e0_offset: kernelpot adds no offset"),
        ("at_file=a gap={soap} default_sigma={1 2}", r"default_sigma: expected 3 or 4 numbers"),
        ("at_file=a gap={soap} default_sigma={1 2 -3}", r"default_sigma: expected 3 or 4 numbers >= 0"),
        ("at_file=a gap={soap} default_sigma={1 2 3} e0_method=lowest", r"e0_method: expected isolated or average"),
        ("at_file=a gap={soap} default_sigma={1 2 3} verbosity=LOUD", r"verbosity: expected one of NORMAL"),
        ("at_file=a gap={soap} default_sigma={1 2 3} rnd_seed=x", r"rnd_seed: expected an integer"),
        ("at_file=a gap={soap} default_sigma={1 2 3} sparse_jitter=-1", r"sparse_jitter: must be >= 0"),
        ("at_file=a gap={soap} default_sigma={1 2 3} sigma_per_atom=maybe", r"sigma_per_atom: expected T or F"),
        ("at_file=a gap={soap foo=1} default_sigma={1 2 3}", r"gap=: soap: unsupported gap_fit key\(s\) \['foo'\]"),
        ("at_file=a gap={distance_Nb order=2 f0=1.0} default_sigma={1 2 3}", r"f0 .* must be 0"),
    ],
)
def test_bad_commands_are_refused_by_name(text, message):
    with pytest.raises(ValueError, match=message):
        parse_gap_fit_command(text)


def test_keys_without_effect_are_accepted_and_reported():
    extra = " ".join(f"{key}=1" for key in sorted(NO_EFFECT))
    command = parse_gap_fit_command(f"at_file=a gap={{soap}} default_sigma={{1 2 3}} {extra}")
    assert command.ignored == sorted(NO_EFFECT)


def test_e0_and_config_type_sigma_syntax():
    assert parse_e0("-158.54") == -158.54
    assert parse_e0("{Si:-158.5:O:-432.1}") == {"Si": -158.5, "O": -432.1}
    assert parse_e0("Na:-1 Cl:-2") == {"Na": -1.0, "Cl": -2.0}
    for bad, message in (("{Si}", "expected a number"), ("{Si:x}", "energy of 'Si' must be a number"),
                         ("{Si:1:Si:2}", "'Si' is given twice")):
        with pytest.raises(ValueError, match=message):
            parse_e0(bad)
    assert parse_config_type_sigma("{a:1:2:3:4:b:5:6:7:8}") == {"a": [1, 2, 3, 4], "b": [5, 6, 7, 8]}
    for bad, message in (("{a:1:2:3}", "groups of a config type and 4 numbers"), ("{a:1:2:3:x}", "of 'a'"),
                         ("{a:1:2:3:4:a:1:2:3:4}", "'a' is given twice")):
        with pytest.raises(ValueError, match=message):
            parse_config_type_sigma(bad)


def test_a_zero_sigma_is_fine_without_those_labels_and_an_error_with_them():
    observed = {"energy": {"default", "md"}, "forces": {"md"}, "virial": set()}
    default, table = resolve_zero_sigmas([0.01, 0.1, 0.0, 0.0], {"md": [0.01, 0.1, 0.0, 0.0]}, observed)
    assert default == [0.01, 0.1, 1.0, 0.0] and table == {"md": [0.01, 0.1, 1.0, 0.0]}
    assert resolve_zero_sigmas([0.01, 0.0, 0.1], {"md": [0.01, 0.1, 0.1]}, observed)[0][1] == 1.0
    with pytest.raises(ValueError, match=r"default_sigma: the forces sigma is 0 eV/Å but structures of config "
                                         r"type\(s\) \['md'\] have forces labels"):
        resolve_zero_sigmas([0.01, 0.0, 0.1], None, observed)


def test_data_gap_fit_would_use_silently_are_refused():
    frames = read(REFERENCE / "train.xyz", ":3")
    command = parse_gap_fit_command("at_file=t.xyz gap={soap} default_sigma={1 2 3}")
    check_unsupported_labels(frames, command)
    frames[2].info["energy_sigma"] = 0.01
    with pytest.raises(ValueError, match=r"structure 2 of 't.xyz' has \['energy_sigma'\]: gap_fit would use them"):
        check_unsupported_labels(frames, command)
    frames[2].info.pop("energy_sigma")
    frames[1].arrays["force_mask"] = np.zeros(len(frames[1]), bool)
    with pytest.raises(ValueError, match=r"structure 1 .* \['force_mask'\]"):
        check_unsupported_labels(frames, command)


def test_cli_errors_are_one_line_before_any_work(tmp_path, capsys):
    assert main(["gap_fit", *shlex.split(TUTORIAL_2B)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kernelpot gap_fit: error: this gap_fit command cannot run in kernelpot: gp_file=GAP.xml")
    assert main(["gap_fit"]) == 2
    assert "no arguments" in capsys.readouterr().err
    assert main(["gap_fit", "at_file=a", "gap={soap}", "default_sigma={1 2 3}", f"gp_file={tmp_path}/no/m.kpot"]) == 2
    assert "the folder of" in capsys.readouterr().err


def test_help_lists_the_mapped_ignored_and_refused_keys(capsys):
    with pytest.raises(SystemExit):
        main(["gap_fit", "--help"])
    out = capsys.readouterr().out
    for key in ("atoms_filename (at_file)", "gap_file (gp_file)", "sparse_separate_file", "baseline_ip_args"):
        assert key in out


def test_kernelpot_fit_takes_the_same_options_as_flags(tmp_path):
    output = tmp_path / "m.kpot"
    assert main(["fit", str(REFERENCE / "train.xyz"), "-o", str(output), "--quiet", "--stress-key", "none",
                 "--gap", "{distance_2b cutoff=4.5 delta=0.5 n_sparse=8}", "--default-sigma", "0.005,0.05,0.1",
                 "--config-type-sigma", "{isolated_atom:0.0001:0.01:1.0:0.0:bulk:0.002:0.05:0.1:0.0}",
                 "--e0", "Cu:3.51 Ag:2.96"]) == 0
    model = load_model(output)
    assert model.e0_ == {29: 3.51, 47: 2.96}
    assert model.config_type_sigma == {"isolated_atom": [0.0001, 0.01, 1.0, 0.0], "bulk": [0.002, 0.05, 0.1, 0.0]}
    gap_fit_style = tmp_path / "g.kpot"
    assert main(["fit", str(REFERENCE / "train.xyz"), "-o", str(gap_fit_style), "--quiet", "--stress-key", "none",
                 "--gap", "{distance_2b cutoff=4.5 delta=0.5 n_sparse=8}", "--default-sigma", "0.005,0.05,0.1",
                 "--config-type-sigma", "isolated_atom:0.0001:0.01:1.0:0.0 bulk:0.002:0.05:0.1:0.0",
                 "--e0", "{Cu:3.51:Ag:2.96}"]) == 0
    test = read(REFERENCE / "test.xyz", ":")
    np.testing.assert_array_equal(load_model(gap_fit_style).predict(test)["energy"], model.predict(test)["energy"])


@pytest.mark.parametrize("flags, message", [
    (["--e0", "Cu:x"], r"--e0: the energy of 'Cu' must be a number"),
    (["--e0", "mean"], r"--e0: expected a number .* or one of average, composition, isolated"),
    (["--config-type-sigma", "bulk:1:2:3"], r"--config-type-sigma: expected groups of a config type and 4 numbers"),
    (["--config-type-sigma", "bulk:0:2:3:0"], r"the energy, force and virial sigmas of \['bulk'\] must be > 0"),
])
def test_kernelpot_fit_flags_refuse_bad_values(flags, message, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "x.xyz", *flags])
    assert __import__("re").search(message, capsys.readouterr().err)
