"""Sphinx extension: ``.. kernelpot-cli::`` documents the command line from its argparse parser.

Each subcommand gets a section with its description and the exact text of
``kernelpot <command> --help`` (every option with its default, as the
terminal shows it), so the page is the parser and cannot drift from it.
"""

from docutils import nodes
from docutils.parsers.rst import Directive


class KernelpotCli(Directive):
    has_content = False

    def run(self):
        import argparse
        import os

        from kernelpot.cli.parser import build_parser

        width, os.environ["COLUMNS"] = os.environ.get("COLUMNS"), "100"  # argparse wraps to the terminal
        try:
            parser = build_parser()
        finally:
            if width is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = width
        sections = [nodes.literal_block(text=parser.format_help())]
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name, sub in commands.choices.items():
            section = nodes.section(ids=[f"kernelpot-{name}"])
            section += nodes.title(text=f"kernelpot {name}")
            summary = next((a.help for a in commands._choices_actions if a.dest == name), None)
            if summary:
                section += nodes.paragraph(text=summary)
            section += nodes.literal_block(text=sub.format_help())
            sections.append(section)
        return sections


def setup(app):
    app.add_directive("kernelpot-cli", KernelpotCli)
    return {"parallel_read_safe": True, "version": "1"}
