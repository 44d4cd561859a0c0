"""gap_fit's command line, as QUIP users write it, translated to a kernelpot fit.

``kernelpot gap_fit`` takes the arguments of ``gap_fit`` unchanged
(``at_file=train.xyz gap={soap ...} default_sigma={0.002 0.2 0.2 0.0}
e0={Si:-158.54} gp_file=model.kpot ...``); :func:`parse_gap_fit_command`
reads them as gap_fit does (all arguments joined by spaces, braces group a
value, keys case-insensitive, gap_fit's alternative key names and
defaults) into a :class:`GapFitCommand`. Every key is one of three kinds:

* mapped to what kernelpot does with the same meaning (:data:`MAPPED`);
* accepted because it changes nothing in a kernelpot model: it controls
  gap_fit's XML layout, MPI/OpenMP blocking or timing output
  (:data:`NO_EFFECT`);
* refused by name, with the reason (:data:`REFUSED`), before anything is
  read or fitted. A key gap_fit does not have either is refused.

The same options exist as kernelpot's own ``fit`` flags
(``--config-type-sigma``, ``--e0 "Si:-158.54"``), parsed by
:func:`parse_config_type_sigma` and :func:`parse_e0`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .gap_string import parse_assignments

__all__ = ["GapFitCommand", "MAPPED", "NO_EFFECT", "REFUSED", "check_unsupported_labels", "parse_config_type_sigma",
           "parse_e0", "parse_gap_fit_command", "parse_sigmas", "resolve_zero_sigmas"]

#: gap_fit's alternative key names (``altkey`` in gap_fit_module.F90) -> the name used here.
ALIASES = {
    "at_file": "atoms_filename",
    "default_sigma": "default_kernel_regularisation",
    "config_type_sigma": "config_type_kernel_regularisation",
    "sigma_per_atom": "kernel_regularisation_is_per_atom",
    "do_copy_at_file": "do_copy_atoms_file",
    "gp_file": "gap_file",
    "core_param_file": "baseline_param_filename",
    "core_ip_args": "baseline_ip_args",
    "sigma_parameter_name": "kernel_regularisation_parameter_name",
    "hessian_delta": "hessian_displacement",
    "default_local_property_sigma": "default_kernel_regularisation_local_property",
}

#: Keys kernelpot maps, and what they become.
MAPPED = {
    "atoms_filename": "the training file (extxyz, or any format ASE reads)",
    "gap": "the terms (descriptors, covariances, delta, sparse points): distance_2b and soap",
    "default_kernel_regularisation": "default_sigma (energy eV/atom, force eV/Å, virial eV/atom; hessian ignored)",
    "config_type_kernel_regularisation": "config_type_sigma",
    "kernel_regularisation_is_per_atom": "sigma_per_atom",
    "e0": "e0: one number (eV) for every species, or {Si:-158.5:O:-432.1}",
    "e0_method": "e0: isolated (gap_fit's default) or average",
    "sparse_jitter": "jitter, per term (gap_fit's absolute value divided by each term's delta²)",
    "energy_parameter_name": "energy key",
    "force_parameter_name": "forces key (gap_fit's default: force)",
    "virial_parameter_name": "virial key (eV)",
    "stress_parameter_name": "stress key (used where a structure has no virial; ASE's sign)",
    "config_type_parameter_name": "config_type key",
    "parameter_name_prefix": "prefix of every *_parameter_name",
    "gap_file": "the model file written (.kpot)",
    "rnd_seed": "random_state (-1: unseeded, as gap_fit)",
    "verbosity": "NORMAL: summaries only; VERBOSE, NERD, ANALYSIS: progress and memory estimate",
    "config_file": "a file holding the arguments (then nothing else on the command line, as gap_fit)",
    "sparsify_only_no_fit": "F only",
    "dryrun": "F only",
    "e0_offset": "0 only",
}

#: Keys that change nothing in a kernelpot model (XML layout, parallel blocking, timing): accepted, ignored.
NO_EFFECT = {
    "do_copy_atoms_file": "kernelpot never copies the training file into the model; it records its path",
    "sparse_separate_file": "a .kpot model is one file",
    "template_file": "only shapes gap_fit's XML",
    "openmp_chunk_size": "OpenMP scheduling of gap_fit",
    "mpi_blocksize_rows": "MPI blocking of gap_fit",
    "mpi_blocksize_cols": "MPI blocking of gap_fit",
    "mpi_print_all": "MPI output of gap_fit",
    "do_ip_timing": "timing output of gap_fit",
    "export_covariance": "a .kpot file always holds the posterior covariance factor",
    "hessian_displacement": "kernelpot fits no Hessians",
    "condition_number_norm": "a diagnostic of gap_fit's solver",
}

#: Keys kernelpot refuses, with the reason.
REFUSED = {
    "baseline_param_filename": "kernelpot cannot evaluate a QUIP XML potential as a baseline (for a fixed-charge "
                               "Coulomb baseline use `kernelpot fit --coulomb`)",
    "baseline_ip_args": "kernelpot cannot evaluate a QUIP potential as a baseline (for a fixed-charge Coulomb "
                        "baseline use `kernelpot fit --coulomb`)",
    "local_property0": "kernelpot's GAP does not fit local properties",
    "local_property_parameter_name": "kernelpot's GAP does not fit local properties",
    "local_property_mask_parameter_name": "kernelpot's GAP does not fit local properties",
    "default_kernel_regularisation_local_property": "kernelpot's GAP does not fit local properties",
    "hessian_parameter_name": "kernelpot does not fit Hessians",
    "kernel_regularisation_parameter_name": "kernelpot has no per-structure sigmas read from the file (use "
                                            "config_type_sigma)",
    "force_mask_parameter_name": "kernelpot fits the forces of every atom of a structure (no force mask)",
    "sparse_use_actual_gpcov": "kernelpot chooses sparse points on the descriptors (sparse_method in gap=)",
    "linear_system_dump_file": "kernelpot does not dump its linear system",
}

# gap_fit's label keys and their defaults (gap_fit_module.F90).
_LABEL_KEYS = {"energy_parameter_name": "energy", "force_parameter_name": "force",
               "virial_parameter_name": "virial", "stress_parameter_name": "stress",
               "config_type_parameter_name": "config_type"}
_VERBOSITY = ("normal", "verbose", "nerd", "analysis")
_TRUE, _FALSE = {"t", "true", ".true.", "1"}, {"f", "false", ".false.", "0"}


@dataclass
class GapFitCommand:
    """A gap_fit command line in kernelpot's terms.

    Attributes
    ----------
    train : Path
        ``atoms_filename``.
    gap : str
        The ``gap={...}`` descriptor string (for
        :func:`~kernelpot.potential.recipe.terms_from_gap_string`).
    default_sigma : list of float
        Energy (eV/atom), force (eV/Å), virial (eV/atom)[, Hessian]; a zero
        is allowed for labels the data do not have, as in gap_fit.
    config_type_sigma : dict or None
        ``{config_type: [energy, force, virial, hessian]}``.
    sigma_per_atom : bool
    e0 : float, dict or str
        A number (eV), ``{symbol: eV}``, ``"isolated"`` or ``"average"``.
    sparse_jitter : float
        gap_fit's absolute jitter (eV²).
    output : Path
        ``gap_file``: where the ``.kpot`` model goes.
    random_state : int or None
    verbose : bool
    label_keys : dict
        ``energy_key``, ``forces_key``, ``virial_key``, ``stress_key``,
        ``config_type_key`` for :func:`kernelpot.io.read_labelled`.
    ignored : list of str
        Keys accepted without effect (:data:`NO_EFFECT`).
    arguments : dict
        Every key as given (gap_fit's primary names), for the model's metadata.
    """

    train: Path
    gap: str
    default_sigma: list
    config_type_sigma: dict | None = None
    sigma_per_atom: bool = True
    e0: object = "isolated"
    sparse_jitter: float = 1e-10
    output: Path = Path("gap_new.xml")
    random_state: int | None = None
    verbose: bool = False
    label_keys: dict = field(default_factory=dict)
    ignored: list = field(default_factory=list)
    arguments: dict = field(default_factory=dict)


def parse_sigmas(text: str, name: str) -> list[float]:
    """gap_fit's ``{0.002 0.2 0.2 0.0}``: 3 or 4 numbers >= 0 (energy, force, virial[, Hessian])."""
    values = text.strip().removeprefix("{").removesuffix("}").replace(",", " ").replace(":", " ").split()
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        raise ValueError(f"{name}: expected 3 or 4 numbers (energy, force, virial[, hessian]); got {text!r}") from None
    if len(numbers) not in (3, 4) or any(not v >= 0 for v in numbers):
        raise ValueError(f"{name}: expected 3 or 4 numbers >= 0 (energy eV/atom, force eV/Å, virial eV/atom"
                         f"[, hessian]); got {text!r}")
    return numbers


def parse_config_type_sigma(text: str, name: str = "config_type_sigma") -> dict:
    """gap_fit's ``{type1:E:F:V:H:type2:E:F:V:H}`` as ``{type: [E, F, V, H]}``.

    Fields are separated by ``:`` (white space between groups is allowed);
    each group is a config type and four numbers (energy eV/atom, force
    eV/Å, virial eV/atom, Hessian).
    """
    fields = [f for f in text.strip().removeprefix("{").removesuffix("}").replace(":", " ").split()]
    if not fields or len(fields) % 5:
        raise ValueError(f"{name}: expected groups of a config type and 4 numbers, "
                         f"{{type1:energy:force:virial:hessian:type2:...}}; got {text!r} ({len(fields)} fields)")
    table = {}
    for start in range(0, len(fields), 5):
        config_type, *numbers = fields[start:start + 5]
        if config_type in table:
            raise ValueError(f"{name}: config type {config_type!r} is given twice")
        table[config_type] = parse_sigmas(" ".join(numbers), f"{name} of {config_type!r}")
    return table


def parse_e0(text: str, name: str = "e0"):
    """gap_fit's ``e0``: one number (eV) or ``{Si:-158.5:O:-432.1}`` (also ``Si:-158.5 O:-432.1``).

    Returns
    -------
    float or dict of str to float
    """
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    fields = text.removeprefix("{").removesuffix("}").replace(":", " ").replace("=", " ").replace(",", " ").split()
    if not fields or len(fields) % 2:
        raise ValueError(f"{name}: expected a number (eV) or species and energies, {{Si:-158.5:O:-432.1}}; "
                         f"got {text!r}")
    table = {}
    for symbol, value in zip(fields[::2], fields[1::2]):
        if symbol in table:
            raise ValueError(f"{name}: species {symbol!r} is given twice")
        try:
            table[symbol] = float(value)
        except ValueError:
            raise ValueError(f"{name}: the energy of {symbol!r} must be a number (eV); got {value!r}") from None
    return table


def _logical(value: str, key: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{key}: expected T or F; got {value!r}")


def _number(value: str, key: str, kind=float):
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{key}: expected {'an integer' if kind is int else 'a number'}; got {value!r}") from None


def _read_arguments(arguments) -> tuple[dict, str]:
    text = arguments if isinstance(arguments, str) else " ".join(arguments)
    given = parse_assignments(text)
    if "config_file" in given:
        others = sorted(set(given) - {"config_file"})
        if others:
            raise ValueError(f"config_file= holds all the arguments (gap_fit then ignores the command line); "
                             f"remove {others} from the command line or put them in the file")
        path = Path(given["config_file"])
        if not path.is_file():
            raise ValueError(f"config_file: {str(path)!r} does not exist")
        text = path.read_text().replace("\n", " ")
        given = parse_assignments(text, what=f"config_file {str(path)!r}")
    canonical, written = {}, {}
    for key, value in given.items():
        name = ALIASES.get(key, key)
        if name in canonical:
            raise ValueError(f"{written[name]}= and {key}= are the same gap_fit option, given twice")
        canonical[name], written[name] = value, key
    return canonical, written


def _check_keys(given: dict, written: dict) -> None:
    """Every problem of the command at once: refused and unknown keys, values kernelpot cannot honour."""
    from .recipe import terms_from_gap_string

    problems = [f"{written[key]}: {REFUSED[key]}" for key in given if key in REFUSED]
    problems += [f"{written[key]}: not a gap_fit option kernelpot knows" for key in given
                 if key not in MAPPED and key not in NO_EFFECT and key not in REFUSED]
    if given.get("sparsify_only_no_fit", "F").lower() not in _FALSE:
        problems.append("sparsify_only_no_fit=T: kernelpot always fits (it chooses sparse points as part of the fit)")
    if given.get("dryrun", "F").lower() not in _FALSE:
        problems.append("dryrun=T: not available (kernelpot's fit prints its memory estimate before the work "
                        "starts with verbosity=VERBOSE)")
    if "e0_offset" in given and _number(given["e0_offset"], "e0_offset") != 0:
        problems.append("e0_offset: kernelpot adds no offset to e0")
    if "gap_file" in given and given["gap_file"].lower().endswith(".xml"):
        problems.append(f"{written['gap_file']}={given['gap_file']}: kernelpot writes .kpot model files (e.g. "
                        f"{written['gap_file']}={Path(given['gap_file']).with_suffix('.kpot')}); exporting GAP XML "
                        "for QUIP/LAMMPS is a separate feature, not available yet")
    for required, name in (("atoms_filename", "at_file"), ("gap", "gap"), ("default_kernel_regularisation",
                                                                           "default_sigma")):
        if required not in given:
            problems.append(f"{name}= is missing (gap_fit requires it)")
    if "gap" in given:
        try:
            terms_from_gap_string(given["gap"], species=[1], add_species=True)  # builds (validates) every term
        except ValueError as error:
            problems.append(f"gap=: {error}")
    if problems:
        raise ValueError("this gap_fit command cannot run in kernelpot: " + "; ".join(problems))


def parse_gap_fit_command(arguments) -> GapFitCommand:
    """Read gap_fit's arguments; refuse, naming them, the keys kernelpot cannot honour.

    Parameters
    ----------
    arguments : str or sequence of str
        The arguments after ``gap_fit``, as the shell split them (a braced
        value may span several) or as one string.

    Returns
    -------
    GapFitCommand

    Raises
    ------
    ValueError
        A key of :data:`REFUSED`, an unknown key, ``gap_file`` ending in
        ``.xml``, a missing mandatory key (``atoms_filename``, ``gap``,
        ``default_sigma``) or a malformed value; every problem of the
        command is listed in one message.
    """
    given, written = _read_arguments(arguments)
    _check_keys(given, written)
    prefix = given.get("parameter_name_prefix", "")
    names = {key: prefix + given.get(key, default) for key, default in _LABEL_KEYS.items()}
    label_keys = {"energy_key": names["energy_parameter_name"], "forces_key": names["force_parameter_name"],
                  "virial_key": names["virial_parameter_name"], "stress_key": names["stress_parameter_name"],
                  "config_type_key": names["config_type_parameter_name"]}
    e0 = given.get("e0_method", "isolated").lower()
    if e0 not in ("isolated", "average"):
        raise ValueError(f"e0_method: expected isolated or average; got {given['e0_method']!r}")
    if "e0" in given:  # an explicit e0 wins over e0_method, as in gap_fit
        e0 = parse_e0(given["e0"])
    verbosity = given.get("verbosity", "NORMAL").lower()
    if verbosity not in _VERBOSITY:
        raise ValueError(f"verbosity: expected one of NORMAL, VERBOSE, NERD, ANALYSIS; got {given['verbosity']!r}")
    seed = _number(given.get("rnd_seed", "-1"), "rnd_seed", int)
    jitter = _number(given.get("sparse_jitter", "1.0e-10"), "sparse_jitter")
    if not jitter >= 0:
        raise ValueError(f"sparse_jitter: must be >= 0 (eV²); got {jitter}")
    return GapFitCommand(
        train=Path(given["atoms_filename"]),
        gap=given["gap"],
        default_sigma=parse_sigmas(given["default_kernel_regularisation"], "default_sigma"),
        config_type_sigma=(parse_config_type_sigma(given["config_type_kernel_regularisation"])
                           if given.get("config_type_kernel_regularisation", "").strip("{} ") else None),
        sigma_per_atom=_logical(given.get("kernel_regularisation_is_per_atom", "T"), "sigma_per_atom"),
        e0=e0,
        sparse_jitter=jitter,
        output=Path(given.get("gap_file", "gap_new.kpot")),
        random_state=None if seed < 0 else seed,
        verbose=verbosity != "normal",
        label_keys=label_keys,
        ignored=sorted(key for key in given if key in NO_EFFECT),
        arguments=given,
    )


def resolve_zero_sigmas(default_sigma, config_type_sigma, observed: dict) -> tuple[list, dict | None]:
    """gap_fit's rule for a zero sigma: fine if no structure has that label, an error otherwise.

    kernelpot's model needs every sigma > 0, so a zero sigma of a label
    nobody has becomes 1.0 (it weighs nothing).

    Parameters
    ----------
    default_sigma : list of float
    config_type_sigma : dict or None
    observed : dict
        ``{"energy": set of config types with energies, "forces": ...,
        "virial": ...}``.

    Returns
    -------
    default_sigma, config_type_sigma
    """
    labels = ("energy", "forces", "virial")
    units = ("eV/atom", "eV/Å", "eV/atom")

    def fix(sigmas, config_types, where):
        fixed = list(sigmas)
        for i, label in enumerate(labels):
            if fixed[i] > 0:
                continue
            users = sorted(observed[label] & config_types) if config_types is not None else sorted(observed[label])
            if users:
                raise ValueError(f"{where}: the {label} sigma is 0 {units[i]} but structures of config type(s) "
                                 f"{users} have {label} labels; gap_fit refuses this too (sigma must be > 0)")
            fixed[i] = 1.0
        return fixed

    table = config_type_sigma or {}
    specific = set(table)
    everything = set().union(*observed.values())
    default = fix(default_sigma, everything - specific, "default_sigma")
    return default, ({key: fix(value, {key}, f"config_type_sigma of {key!r}") for key, value in table.items()}
                     or None)


def check_unsupported_labels(atoms_list, command: GapFitCommand) -> None:
    """Refuse data gap_fit would use by default but kernelpot cannot.

    gap_fit reads, without being asked, per-structure sigmas
    (``energy_sigma``, ``force_sigma``, ``virial_sigma``, ...; the name
    after the label is ``kernel_regularisation_parameter_name``, default
    ``sigma``), per-atom force sigmas and masks (``force_atom_sigma``,
    ``force_component_sigma``, ``force_mask``) and Hessians (``hessian``).
    A kernelpot fit ignoring them would be a different model, so a file
    holding any of them is a ``ValueError`` naming the key and a structure.
    """
    prefix = command.arguments.get("parameter_name_prefix", "")
    per_structure = [prefix + name for name in ("energy_sigma", "force_sigma", "virial_sigma", "hessian_sigma",
                                                "virial_component_sigma", "local_property_sigma", "hessian")]
    per_atom = [prefix + name for name in ("force_atom_sigma", "force_component_sigma", "force_mask")]
    for index, atoms in enumerate(atoms_list):
        found = [key for key in per_structure if key in atoms.info] + [key for key in per_atom if key in atoms.arrays]
        if found:
            raise ValueError(f"structure {index} of {str(command.train)!r} has {found}: gap_fit would use them "
                             "(per-structure or per-atom sigmas, force masks, Hessians), kernelpot cannot; remove "
                             "them from the file to fit with the command's sigmas")
