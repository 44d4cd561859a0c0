"""The ``kernelpot`` command: the parser of all subcommands and :func:`main`."""

from __future__ import annotations

import argparse
import re
import sys
import warnings

from . import bench, convert, evaluate, fit, gap_fit, learn, md, serve

__all__ = ["build_parser", "main", "HelpFormatter", "CommandParser"]

# one module per command, in the order ``kernelpot --help`` lists them
_COMMANDS = (fit, gap_fit, evaluate, md, bench, learn, convert, serve)


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


class CommandParser(argparse.ArgumentParser):
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
    parser = argparse.ArgumentParser(prog="kernelpot", description="Kernel-based atomistic machine learning.",
                                     formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run ``kernelpot`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    Bad input (a ``ValueError``, including unreadable model files, a missing
    file, a missing optional dependency) is one line on stderr and exit code
    2. Anything else, a ``TypeError`` included, is a bug and keeps its
    traceback. Warnings (a reduced request, an unused label) are one line
    each, ``kernelpot COMMAND: warning: ...``, without Python's source lines.
    """
    args = build_parser().parse_args(argv)

    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"kernelpot {args.command}: warning: {message}", file=sys.stderr if file is None else file)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            return args.handler(args)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"kernelpot {args.command}: error: {error}", file=sys.stderr)
        return 2
