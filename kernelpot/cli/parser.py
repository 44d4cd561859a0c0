"""The ``kernelpot`` command: the parser of all subcommands and :func:`main`."""

from __future__ import annotations

import argparse
import re
import sys
import traceback
import warnings

from . import bench, convert, evaluate, fit, gap_fit, learn, learning_curve, md, serve

__all__ = ["build_parser", "main", "HelpFormatter", "CommandParser"]

# one module per command, in the order ``kernelpot --help`` lists them
_COMMANDS = (fit, gap_fit, evaluate, learning_curve, md, bench, learn, convert, serve)

# Errors that come from the user's input or environment (a file that is not there or not readable, a full disk,
# a value out of range, an unreadable model file, a missing optional dependency, too little memory): one line.
# Anything else (a TypeError included) is a bug in kernelpot and keeps its traceback.
_USER_ERRORS = (ValueError, OSError, ImportError, MemoryError)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and a pointer to ``--help``), not the usage text."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# Help text that already states the default in words: "(default: ...)", "...; default: 512)".
_SAYS_DEFAULT = re.compile(r"default:|%\(default\)")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows every option's default, and keeps the line breaks of descriptions and epilogs.

    As :class:`argparse.ArgumentDefaultsHelpFormatter`, but an option whose
    help already says ``default: ...`` in words keeps its own wording, and
    flags and unset options read ``off`` / ``not set`` rather than Python's
    ``False`` / ``None``.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if _SAYS_DEFAULT.search(text) or not action.option_strings or action.default is argparse.SUPPRESS:
            return text
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            shown = "on" if action.default else "off"
        elif action.default is None:
            shown = "not set"
        elif isinstance(action.default, (list, tuple)):
            shown = ",".join(str(value) for value in action.default)
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})".lstrip()


class CommandParser(_Parser):
    """A subcommand's parser: :class:`HelpFormatter`, and an ``epilog`` that may be a function.

    A callable epilog is called when the help is shown, so the help can say
    what the code builds (``fit``'s default recipe) without importing the
    models every time the command line is parsed.
    """

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def format_help(self):
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kernelpot", description="Kernel-based atomistic machine learning.",
                     formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    for command in _COMMANDS:
        command.add_parser(sub)
    for command_parser in sub.choices.values():
        command_parser.add_argument("--debug", action="store_true",
                                    help="on an error, show the full traceback instead of one line")
    return parser


def _one_line(error: BaseException) -> str:
    if isinstance(error, MemoryError):
        return "out of memory" + (f" ({error})" if str(error) else "") + ": give less data or a --max-memory budget"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None and str(error.filename) not in text:
        text = f"{text}: {error.filename}"
    return text


def main(argv=None) -> int:
    """Run ``kernelpot`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    A user error (bad input, a missing or unreadable file, a full disk, an
    unreadable model file, a missing optional dependency, too little
    memory, Ctrl-C) is one line on stderr and exit code 2 (130 for Ctrl-C),
    never a traceback; ``--debug`` shows the traceback. Warnings are one
    line each (``kernelpot CMD: warning: ...``). Anything else, a
    ``TypeError`` included, is a bug and keeps its traceback.
    """
    args = build_parser().parse_args(argv)
    prefix = f"kernelpot {args.command}"

    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"{prefix}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        if not args.debug:
            warnings.showwarning = show_warning
        try:
            return args.handler(args)
        except (*_USER_ERRORS, KeyboardInterrupt) as error:
            if args.debug:
                traceback.print_exc()
            print(f"{prefix}: error: {_one_line(error)}", file=sys.stderr)
            return 130 if isinstance(error, KeyboardInterrupt) else 2
