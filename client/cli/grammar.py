"""The pieces every group of commands is built from: a command, a group of subcommands, and
a subcommand's --json. The groups themselves are in commands.py, sandbox_commands.py and
the worker's own (worker/cli.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from client.cli.arguments import OneLineParser

# A string: argparse's action class is generic only to type checkers, not at run time. Its
# parsers are OneLineParsers, like the parser that made it (argparse uses type(self)).
Subcommands: TypeAlias = "argparse._SubParsersAction[OneLineParser]"
CommandAdder: TypeAlias = Callable[[Subcommands], None]


def command(sub: Subcommands, name: str, help_text: str) -> argparse.ArgumentParser:
    """A command of its own: its help is also its description, and it takes --json."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def group(sub: Subcommands, name: str, help_text: str, dest: str) -> Subcommands:
    """A command made of subcommands (`sandbox faults set`); `dest` names the one chosen."""
    parser = sub.add_parser(name, help=help_text)
    return parser.add_subparsers(dest=dest, required=True, metavar="COMMAND")


def with_json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A subcommand's --json, added after its other arguments (so listed last)."""
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser
