"""``kernelpot serve``: answer force requests of i-PI (or LAMMPS ``fix ipi``, CP2K) over its socket protocol."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    serve = sub.add_parser(
        "serve", help="serve a model to i-PI over a socket (i-PI client)",
        description="Run as an i-PI client: connect to a running i-PI server (ffsocket), answer its force "
                    "requests with the model (energies, forces and, for periodic cells, the virial) until it "
                    "sends EXIT or closes the connection, then print how many force calls were answered.",
        epilog="example: i-pi input.xml &  kernelpot serve si.kpot --ipi unix:kernelpot --structure init.xyz")
    serve.add_argument("model", type=Path, help="model: .kpot (kernelpot fit/convert) or GAP .xml")
    serve.add_argument("--ipi", required=True, metavar="ADDRESS",
                       help="i-PI server: HOST:PORT (ffsocket mode='inet') or unix:NAME (mode='unix', "
                            "/tmp/ipi_NAME)")
    serve.add_argument("--structure", type=Path, required=True,
                       help="structure file i-PI was started with (species and atom order; first frame)")
    serve.add_argument("--connect-timeout", type=float, default=60.0,
                       help="seconds to keep retrying while no i-PI server listens")
    serve.add_argument("--max-steps", type=int, default=None, help="stop after this many force calls")
    serve.add_argument("--log", type=Path, default=None,
                       help="append one line per force call (step, energy eV, max |force| eV/Å)")
    serve.add_argument("--quiet", action="store_true", help="print nothing but errors")
    serve.set_defaults(handler=run)


def run(args) -> int:
    from ase.io import read

    from ..potential.calculator import GAPCalculator
    from ..potential.gap_xml import load_potential
    from ..potential.ipi import parse_address, serve_ipi

    parse_address(args.ipi)  # a malformed address fails before the model loads
    if not args.structure.is_file():
        raise FileNotFoundError(f"structure file {str(args.structure)!r} does not exist")
    atoms = read(args.structure, 0)
    calculator = GAPCalculator(load_potential(args.model), uncertainty=False)
    log = open(args.log, "a") if args.log else None  # noqa: SIM115 - closed below
    try:
        def on_step(step, atoms, energy, forces, virial):
            print(f"{step} {energy:.10f} {abs(forces).max():.6f}", file=log, flush=True)

        if not args.quiet:
            print(f"kernelpot serve: {args.model} for {len(atoms)} atoms of {args.structure}; connecting to "
                  f"i-PI at {args.ipi}", file=sys.stderr, flush=True)
        try:
            result = serve_ipi(calculator, atoms, args.ipi, connect_timeout=args.connect_timeout,
                               max_steps=args.max_steps, on_step=on_step if log else None)
        except ConnectionError as error:  # no server to connect to: a one-line error, not a traceback
            raise ValueError(str(error)) from None
    finally:
        if log:
            log.close()
    if not args.quiet:
        print(f"kernelpot serve: {result}")
    return 0
