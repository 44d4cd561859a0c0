"""``kernelpot gap_fit``: gap_fit's own command line, run by kernelpot.

``kernelpot gap_fit at_file=train.xyz gap={soap ...} default_sigma={...} gp_file=model.kpot ...`` takes a
QUIP user's command unchanged (see :mod:`kernelpot.potential.gap_fit_command` for how each key is mapped,
ignored or refused) and fits the same kind of model as ``kernelpot fit``.
"""

from __future__ import annotations

import sys

from .options import add_quiet

__all__ = ["add_parser", "run"]


def _epilog() -> str:
    from ..potential.gap_fit_command import ALIASES, MAPPED, NO_EFFECT, REFUSED

    other_names = {}
    for alias, name in ALIASES.items():
        other_names.setdefault(name, []).append(alias)

    def listing(table):
        return "\n".join(f"  {key}" + (f" ({', '.join(other_names[key])})" if key in other_names else "")
                         + f": {why}" for key, why in table.items())

    return ("gap_fit keys kernelpot maps:\n" + listing(MAPPED)
            + "\n\naccepted, no effect in kernelpot:\n" + listing(NO_EFFECT)
            + "\n\nrefused (the command stops before reading any data):\n" + listing(REFUSED)
            + "\n\nDefaults are gap_fit's: force_parameter_name=force, e0_method=isolated, sparse_jitter=1e-10, "
              "gap_file=gap_new.kpot.")


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "gap_fit", help="fit a GAP from a gap_fit command line (key=value ...)", epilog=_epilog,
        description="Run a gap_fit command with kernelpot: the same key=value arguments, e.g.\n"
                    "  kernelpot gap_fit at_file=train.xyz gap={distance_2b cutoff=4.0 covariance_type=ard_se "
                    "delta=0.5 theta_uniform=1.0 n_sparse=10} default_sigma={0.008 0.04 0 0} e0={Si:-158.54} "
                    "gp_file=model.kpot\n"
                    "Keys kernelpot cannot honour are refused by name before anything is fitted.")
    parser.add_argument("arguments", nargs="*", metavar="key=value",
                        help="gap_fit's arguments, as for gap_fit (braced values may span several words)")
    add_quiet(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..io import read_labelled
    from ..models.gap import SparseGPR
    from ..potential.gap_fit_command import check_unsupported_labels, parse_gap_fit_command, resolve_zero_sigmas
    from ..potential.recipe import gap_fit_jitter, terms_from_gap_string
    from .fit import fit_and_save
    from .options import report_skips

    if not args.arguments:
        raise ValueError("no arguments: give gap_fit's key=value arguments, e.g. at_file=train.xyz gap={...} "
                         "default_sigma={...} (see kernelpot gap_fit --help)")
    command = parse_gap_fit_command(args.arguments)
    if not command.output.parent.is_dir():
        raise ValueError(f"gap_file: the folder of {str(command.output)!r} does not exist")
    if command.ignored and not args.quiet:
        print(f"kernelpot gap_fit: accepted without effect in kernelpot: {', '.join(command.ignored)}",
              file=sys.stderr)
    data = read_labelled(command.train, required=(), **command.label_keys)
    report_skips(data, args.quiet)
    check_unsupported_labels(data.atoms, command)
    config_types = [c or "default" for c in (data.config_types or [None] * len(data))]
    observed = {label: {c for c, value in zip(config_types, values) if value is not None}
                for label, values in (("energy", data.energies), ("forces", data.forces),
                                      ("virial", data.virials))}
    if not any(observed.values()):
        keys = command.label_keys
        raise ValueError(f"{str(command.train)!r} has no labels under energy_parameter_name={keys['energy_key']}, "
                         f"force_parameter_name={keys['forces_key']}, virial_parameter_name={keys['virial_key']} "
                         f"or stress_parameter_name={keys['stress_key']}")
    default_sigma, config_type_sigma = resolve_zero_sigmas(command.default_sigma, command.config_type_sigma,
                                                           observed)
    species = sorted({int(z) for a in data.atoms for z in a.numbers})
    terms = terms_from_gap_string(command.gap, species, periodic=bool(any(a.pbc.any() for a in data.atoms)),
                                  add_species=True)
    model = SparseGPR(terms, default_sigma=default_sigma, config_type_sigma=config_type_sigma,
                      sigma_per_atom=command.sigma_per_atom, e0=command.e0,
                      jitter=gap_fit_jitter(terms, command.sparse_jitter), random_state=command.random_state,
                      verbose=command.verbose and not args.quiet)
    fit_and_save(model, data, command.output,
                 {"training_file": str(command.train), "gap": command.gap, "gap_fit_arguments": command.arguments},
                 quiet=args.quiet)
    return 0

