"""The client's part of the `refundflow` command line, for support staff and operators.

Every command takes --json for scripts. Mistakes are reported as one line on stderr with a
non-zero exit status; no stack traces for user errors.

    arguments   exit statuses, the parser's error style, argument types
    grammar     a command, a group, a subcommand's --json: what the others are made of
    commands    each command's arguments and help (CLIENT_COMMANDS, build_parser);
                the sandbox's are in sandbox_commands
    handlers    what each command does (HANDLERS); operations: reconcile, anomalies, report
    backends    reaching Postgres and Temporal;  output: printing results
    app         parse, dispatch, report failures (run, main)

The dev stack's own commands (dev, worker, webhooks, migrate, bench) are the worker's, in
worker/cli.py, whose `main` is the `refundflow` entry point and delegates the rest here.
"""

from __future__ import annotations

from client.cli.app import main, run

__all__ = ["main", "run"]
