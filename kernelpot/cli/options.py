"""Options shared by the ``kernelpot`` commands, defined once with one set of defaults.

* :func:`add_label_keys` — which extxyz keys hold the labels, and what to do
  with a structure that lacks one (``fit``, ``evaluate``, ``learn``);
* :func:`add_model_options` — the GAP model and its fit: ``--gap``,
  ``--default-sigma``, ``--e0``, the memory and parallel options, the
  fixed-charge Coulomb baseline (``--coulomb``, ``--coulomb-widths``) and
  ``--seed`` (``fit``, ``learn``);
* :func:`add_auto_options` — ``--auto`` and its settings: sparse counts and
  noise chosen on a validation split of the training data (``fit``,
  ``learning_curve``);
* :func:`add_quiet` — ``--quiet`` (every command).

:func:`read_labels` and :func:`make_model` turn the parsed options into the
labelled structures and the unfitted :class:`~kernelpot.models.gap.SparseGPR`;
:func:`check_output` refuses an output path before any work is done
(:func:`check_script_outputs`: the same for a script's own parser);
:func:`positive_int`, :func:`positive_float` and :func:`non_negative_float`
are argparse types that name the rule and the value.
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from pathlib import Path

from ..potential.defaults import DEFAULT_SIGMA

__all__ = ["add_label_keys", "add_model_options", "add_auto_options", "auto_choice", "add_quiet", "add_seed",
           "read_labels", "report_skips", "make_model", "coulomb_baseline", "float_list", "e0_value",
           "config_type_sigma_value", "recipe_help",
           "check_output", "positive_int", "positive_float", "non_negative_float", "default_sigma",
           "min_distance_value"]



def float_list(text: str) -> list[float]:
    """``"0.002,0.1"``, ``"0.002 0.1"`` or gap_fit's ``"{0.002 0.1}"`` as a list of floats."""
    try:
        return [float(v) for v in text.replace("{", "").replace("}", "").replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas; got {text!r}") from None


def default_sigma(text: str) -> list[float]:
    """argparse type of ``--default-sigma``: at least 3 numbers >= 0 (energy, force, virial; a 4th is ignored)."""
    values = float_list(text)
    if len(values) < 3 or any(not v >= 0 for v in values):
        raise argparse.ArgumentTypeError(f"needs 3 numbers >= 0: energy (eV/atom), force (eV/Å), virial (eV/atom); "
                                         f"got {text!r}")
    return values


def _number(text: str, kind, rule: str, test):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not test(value):
        raise argparse.ArgumentTypeError(f"must be {rule}; got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(text, int, "an integer >= 1", lambda v: v >= 1)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _number(text, float, "a finite number > 0", lambda v: 0 < v < float("inf"))


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _number(text, float, "a finite number >= 0", lambda v: 0 <= v < float("inf"))


def min_distance_value(text: str):
    """``--min-distance``: a number (Å) or ``pair:Å`` entries, e.g. ``O-O:2.0,H-H:1.0,*:0.7``."""
    from ..potential.dynamics import pair_limits

    try:
        value = float(text)
    except ValueError:
        value = {}
        for item in text.split(","):
            pair, sep, number = item.rpartition(":")
            try:
                value[pair.strip()] = float(number)
            except ValueError:
                sep = ""
            if not sep or not pair.strip():
                raise argparse.ArgumentTypeError(
                    f"expected a number of Å or entries like 'O-O:2.0,H-H:1.0,*:0.7'; got {text!r}") from None
    else:
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be a number > 0 Å; got {text!r}")
    try:
        pair_limits(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).replace("`min_distance`: ", "")) from None
    return value


def _is_model_file(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "header.json" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def check_output(path, *, inputs=(), option="-o", model=False, folder=False) -> Path:
    """Refuse an output path before any work starts, with one line that says why.

    Parameters
    ----------
    path : str or Path
        Where the command will write.
    inputs : sequence of str or Path
        The command's input files: the output may not be one of them.
    option : str
        The option that gave ``path``, for the message.
    model : bool
        The output is a ``.kpot`` model: an existing file that is not a
        kernelpot model is not overwritten.
    folder : bool
        The output is a folder (created if missing): an existing file is refused.

    Raises
    ------
    ValueError
        ``path`` is an input, a folder (a file for ``folder=True``), in a
        folder that does not exist or cannot be written, or (``model``) an
        existing file that is not a kernelpot model.
    """
    path = Path(path)
    for source in inputs:
        if source is not None and Path(source).exists() and path.exists() and os.path.samefile(path, source):
            raise ValueError(f"{option} {str(path)!r} is the input file {str(source)!r}: it would be overwritten; "
                             "choose another output path")
    if folder:
        if path.exists() and not path.is_dir():
            raise ValueError(f"{option} {str(path)!r} is a file, not a folder")
    elif path.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a folder; give a file name, e.g. {str(path / 'model.kpot')!r}")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise ValueError(f"{option} {str(path)!r}: the folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {str(path)!r}: the folder {str(parent)!r} is not writable")
    if model and path.is_file() and not _is_model_file(path):
        raise ValueError(f"{option} {str(path)!r} exists and is not a kernelpot model file: not overwriting it; "
                         "remove it or choose another output path")
    return path


def check_script_outputs(parser: argparse.ArgumentParser, outputs: dict, *, models=(), folders=()) -> None:
    """:func:`check_output` for a script with its own parser (benchmarks, examples): every output, before any work.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The script's parser: a refusal ends the script through ``parser.error`` (one line, exit status 2).
    outputs : dict
        Option name (e.g. ``"--json"``) to the path it gave; ``None`` or ``""`` (not given) is skipped.
    models, folders : sequence of str
        The options whose output is a ``.kpot`` model, or a folder (see :func:`check_output`). A missing folder
        is created now, parents too, so the script's saves after hours of work cannot fail on it.
    """
    given = {option: path for option, path in outputs.items() if path is not None and str(path) != ""}
    for option in folders:
        if option in given:
            try:
                Path(given[option]).mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                pass  # a file of that name: check_output names it below
            except OSError as error:
                parser.error(f"{option} {str(given[option])!r}: {error.strerror}")
    try:
        for option, path in given.items():
            check_output(path, option=option, model=option in models, folder=option in folders)
    except ValueError as error:
        parser.error(str(error))


def e0_value(text: str):
    """``--e0``: a method name (``average``, ``composition``, ``isolated``), a number (eV, every species) or
    one energy per species, ``"Si:-158.54"``, ``"Na:-1.2 Cl:-3.4"`` or gap_fit's ``{Na:-1.2:Cl:-3.4}``."""
    from ..potential.gap_fit_command import parse_e0

    if text.strip() in ("average", "composition", "isolated"):
        return text.strip()
    try:
        return parse_e0(text, "--e0")
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error}; or one of average, composition, isolated") from None


def config_type_sigma_value(text: str) -> dict:
    """``--config-type-sigma``: gap_fit's ``{type1:E:F:V:H:type2:E:F:V:H}`` (braces optional)."""
    from ..potential.gap_fit_command import parse_config_type_sigma

    try:
        table = parse_config_type_sigma(text, "--config-type-sigma")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    bad = [key for key, sigmas in table.items() if min(sigmas[:3]) <= 0]
    if bad:
        raise argparse.ArgumentTypeError(f"--config-type-sigma: the energy, force and virial sigmas of {bad} must be "
                                         "> 0")
    return table


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """``--quiet``."""
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summaries")


def add_seed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def add_label_keys(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("label keys of the extxyz file")
    group.add_argument("--energy-key", default="energy", help="total energy, eV (default: energy)")
    group.add_argument("--forces-key", default="forces", help="forces, eV/Å (default: forces)")
    group.add_argument("--virial-key", default="virial", help="virial, eV (default: virial)")
    group.add_argument("--stress-key", default="stress",
                       help="stress, used when no virial; 'none' reads no stresses (default: stress)")
    group.add_argument("--stress-units", default="eV/A^3", choices=["eV/A^3", "GPa", "kbar"],
                       help="units of the stress labels")
    group.add_argument("--stress-sign", default="ase", choices=["ase", "pressure"],
                       help="ase: tensile positive; pressure: compressive positive (VASP 'in kB')")
    group.add_argument("--config-type-key", default="config_type",
                       help="per-structure key that groups the errors of evaluate")
    group.add_argument("--on-missing", choices=["raise", "skip"], default="raise",
                       help="structures lacking a label: stop with an error, or skip and count them")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model and fit")
    group.add_argument("--gap", help="gap_fit descriptor string, e.g. '{distance_2b cutoff=5.0 ... : soap ...}' "
                                     "(default: kernelpot's DEFAULT_GAP, the recipe below)")
    group.add_argument("--default-sigma", type=default_sigma, default=list(DEFAULT_SIGMA),
                       help="noise of energies (eV/atom), forces (eV/Å), virials (eV/atom)[, hessian: ignored], "
                            "gap_fit's default_sigma")
    group.add_argument("--config-type-sigma", type=config_type_sigma_value, default=None, metavar="TABLE",
                       help="noise per config type, gap_fit's config_type_sigma: '{bulk:0.001:0.05:0.05:0:"
                            "surface:0.005:0.1:0.1:0}' (energy eV/atom, force eV/Å, virial eV/atom, hessian: "
                            "ignored), overriding --default-sigma for structures of those types (default: not set)")
    group.add_argument("--e0", type=e0_value, default="average",
                       help="per-species reference energies: average (one per-atom mean for all species) | "
                            "composition (least squares on the atom counts of each species: for mixtures such as "
                            "salt in water) | isolated (one-atom structures of the data) | a number in eV | one "
                            "per species, 'Si:-158.54' or 'Na:-1.2 Cl:-3.4' or {Na:-1.2:Cl:-3.4} (default: average)")
    group.add_argument("--max-block-memory", type=positive_float, default=512.0,
                       help="MiB for one block of the fit (used without --max-memory)")
    group.add_argument("--max-memory", default=None,
                       help="memory budget of the whole fit, e.g. 4GB or 3500MiB: chooses the block size; "
                            "the estimated peak is printed before the fit")
    group.add_argument("--n-jobs", type=positive_int, default=None,
                       help="local processes building the fit's blocks (default: this process, with threads)")
    group.add_argument("--scheduler", default=None,
                       help="Dask scheduler address tcp://HOST:PORT: build the blocks on its workers "
                            "(pip install 'kernelpot[distributed]')")
    group.add_argument("--coulomb", default=None, metavar="TABLE",
                       help="fit the GAP on top of a fixed-charge Coulomb baseline with these charges (e), e.g. "
                            "'Na:+1 Cl:-1 O:-0.834 H:0.417' (every species of the data needed; Ewald for periodic "
                            "cells, all pairs; a structure whose charges do not sum to 0 must declare "
                            "info['charge']); 'initial_charges' takes each atom's initial charge. The model file "
                            "stores it: evaluate and md add it back by themselves (default: no baseline)")
    group.add_argument("--coulomb-widths", default=None, metavar="SIGMA",
                       help="Gaussian widths (Å) of the --coulomb charges, one number or a table like "
                            "'Na:0.6 Cl:1.0 O:0.7 H:0.3': finite at short range (default: point charges)")
    add_seed(group)


def add_auto_options(parser: argparse.ArgumentParser) -> None:
    """``--auto`` and its settings (:class:`kernelpot.models.gap.AutoChoice`)."""
    group = parser.add_argument_group("automatic choice (--auto), from the training file only")
    group.add_argument("--auto", action="store_true",
                       help="choose the sparse count of every fps/cur term (its n_sparse, or --max-sparse, is the "
                            "upper bound) and the energy/force noise (factors of --default-sigma) on a seeded "
                            "validation split of the training structures, then refit on all of them; prints the "
                            "plan first and the candidates' table after, and saves both in the model")
    group.add_argument("--budget-minutes", type=positive_float, default=None,
                       help="--auto: CPU minutes for the choice; stages beyond it are not run, and a budget below "
                            "the first stage is refused (default: no limit)")
    group.add_argument("--max-sparse", type=positive_int, default=None,
                       help="--auto: upper bound of the sparse points of every fps/cur term (default: its n_sparse)")
    group.add_argument("--validation-fraction", type=positive_float, default=0.2,
                       help="--auto: share of the training structures held out (seeded by --seed)")
    group.add_argument("--sparse-ladder", type=float_list, default=None,
                       help="--auto: total sparse points tried, increasing, comma-separated (default: "
                            "kernelpot.models.gap.auto.DEFAULT_LADDER, 250 to 16000)")
    group.add_argument("--auto-tolerance", type=non_negative_float, default=0.02,
                       help="--auto: a larger count must lower the validation force MAE by more than this fraction")
    group.add_argument("--auto-energy-weight", type=non_negative_float, default=1.0,
                       help="--auto: the noise of a count is the candidate with the lowest log(force MAE) + this x "
                            "log(energy MAE) on the validation structures; 0: forces alone")
    group.add_argument("--auto-balance-config-types", action=argparse.BooleanOptionalAction, default=True,
                       help="--auto: rank the noise on validation errors averaged over config types (each type "
                            "counts once), so rare types such as surfaces weigh as much as common ones")
    group.add_argument("--zetas", type=float_list, default=None,
                       help="--auto: dot-product kernel exponents compared at the first stage, e.g. 2,3,4 "
                            "(default: the --gap string's)")


def auto_choice(args):
    """The :class:`~kernelpot.models.gap.AutoChoice` of the ``--auto`` options of ``args`` (None without ``--auto``)."""
    if not getattr(args, "auto", False):
        for option in ("budget_minutes", "max_sparse", "zetas"):
            if getattr(args, option, None) is not None:
                raise ValueError(f"--{option.replace('_', '-')} needs --auto")
        return None
    from ..models.gap import AutoChoice

    if not 0 < args.validation_fraction < 1:
        raise ValueError(f"--validation-fraction must be between 0 and 1; got {args.validation_fraction}")
    ladder = {} if args.sparse_ladder is None else {"sparse_ladder": tuple(int(k) for k in args.sparse_ladder)}
    return AutoChoice(validation_fraction=args.validation_fraction, **ladder, tolerance=args.auto_tolerance,
                      energy_weight=args.auto_energy_weight,
                      balance_config_types=args.auto_balance_config_types,
                      zetas=None if args.zetas is None else tuple(int(z) for z in args.zetas),
                      budget_minutes=args.budget_minutes, random_state=args.seed)


def recipe_help() -> str:
    """The default recipe as the code builds it: the epilog of ``fit --help`` and ``learn --help``.

    A function, called only when the help is shown (it builds the descriptors).
    """
    from ..potential.recipe import DEFAULT_GAP, describe_recipe

    return f"default recipe (without --gap):\n  --gap \"{DEFAULT_GAP}\"\n\n" + "\n".join(
        f"  {line}" for line in describe_recipe().splitlines())


def read_labels(path, args, required):
    """The labelled structures of ``path`` read with the label-key options of ``args``."""
    from ..io import read_labelled

    return read_labelled(
        path, energy_key=args.energy_key, forces_key=args.forces_key, virial_key=args.virial_key,
        stress_key=args.stress_key, config_type_key=args.config_type_key, stress_units=args.stress_units,
        stress_sign=args.stress_sign, required=required, on_missing=args.on_missing,
    )


def report_skips(data, quiet: bool) -> None:
    """Say on stderr which structures were skipped for missing labels."""
    if data.skipped and not quiet:
        print(f"skipped {len(data.skipped)} structure(s): "
              + "; ".join(f"{i}: {why}" for i, why in list(data.skipped.items())[:10]), file=sys.stderr)


def make_model(args, structures):
    """The unfitted SparseGPR the model options of ``args`` describe, for the species of ``structures``."""
    from ..models.gap import SparseGPR
    from ..potential.recipe import DEFAULT_GAP, terms_from_gap_string

    sigma = args.default_sigma[:3]
    if len(sigma) != 3:
        raise ValueError(f"--default-sigma needs at least 3 numbers: energy (eV/atom), force (eV/Å), virial "
                         f"(eV/atom); got {args.default_sigma}")
    species = sorted({int(z) for a in structures for z in a.numbers})
    # SOAP honours a periodic direction only where a structure's pbc has it (a cluster stays a cluster),
    # so one periodic direction anywhere makes the descriptor periodic.
    periodic = bool(any(a.pbc.any() for a in structures))
    terms = terms_from_gap_string(args.gap or DEFAULT_GAP, species, periodic=periodic)
    auto = auto_choice(args)
    if auto is not None and args.max_sparse is not None:
        for term in terms:
            if term.sparse_points is None and term.sparse_method in ("fps", "cur"):
                term.n_sparse = args.max_sparse
    baseline = coulomb_baseline(args.coulomb, args.coulomb_widths)
    if baseline is not None:
        baseline.check(structures)  # before any fitting: a missing species or net charge fails now
    return SparseGPR(terms, default_sigma=tuple(sigma), config_type_sigma=args.config_type_sigma, e0=args.e0,
                     max_block_memory=args.max_block_memory,
                     max_memory=args.max_memory, n_jobs=args.n_jobs, scheduler=args.scheduler, baseline=baseline,
                     auto=auto, random_state=args.seed, verbose=not args.quiet)


def coulomb_baseline(charges, widths):
    """The :class:`~kernelpot.potential.coulomb_baseline.CoulombBaseline` of ``--coulomb`` and
    ``--coulomb-widths`` (None without ``--coulomb``)."""
    from ..potential.coulomb_baseline import CoulombBaseline, parse_charge_table

    if charges is None:
        if widths is not None:
            raise ValueError("--coulomb-widths needs --coulomb (the charges)")
        return None
    charges = charges.strip()
    table = charges if charges == "initial_charges" else parse_charge_table(charges, "--coulomb")
    if widths is not None:
        try:
            widths = float(widths)
        except ValueError:
            widths = parse_charge_table(widths, "--coulomb-widths")
    baseline = CoulombBaseline(table, widths=widths)
    baseline.to_dict()  # validates the widths
    return baseline
