"""The ``kernelpot`` command: the parser of all subcommands and :func:`main`."""

from __future__ import annotations

import argparse
import sys

from . import bench, evaluate, fit, learn, md

__all__ = ["build_parser", "main"]

# one module per command, in the order ``kernelpot --help`` lists them
_COMMANDS = (fit, evaluate, md, bench, learn)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kernelpot", description="Kernel-based atomistic machine learning.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run ``kernelpot`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    Bad input (a ``ValueError``, including unreadable model files, a missing
    file, a missing optional dependency) is one line on stderr and exit code
    2. Anything else, a ``TypeError`` included, is a bug and keeps its
    traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"kernelpot {args.command}: error: {error}", file=sys.stderr)
        return 2
