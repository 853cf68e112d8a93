"""`refundflow` is put together from the client's commands and the stack's own: all of them
are listed, in their usual order, and each has exactly one handler."""

from __future__ import annotations

import argparse

from client.cli.commands import CLIENT_COMMANDS, build_parser
from client.cli.handlers import HANDLERS
from worker import cli as worker_cli

STACK_COMMANDS = [
    "dev", "worker", "webhooks", "migrate", "bench", "api", "token", "codec-server", "codec-key",
    "action-key",
]  # fmt: skip


def command_names(parser: argparse.ArgumentParser) -> list[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)


def test_refundflow_lists_every_command_in_the_usual_order() -> None:
    assert command_names(worker_cli.build_parser()) == [
        "dev", "worker", "webhooks", "migrate", "sandbox", "operator", "request",
        "eligibility", "policy", "track", "events", "subscribers", "status", "list",
        "approve", "reject", "cancel", "received", "reconcile", "anomalies", "bench",
        "audit", "report", "api", "token", "codec-server", "codec-key", "action-key",
    ]  # fmt: skip


def test_each_command_has_one_handler_on_its_own_side() -> None:
    client_side = command_names(build_parser(CLIENT_COMMANDS))
    assert sorted(client_side) == sorted(HANDLERS)
    assert sorted(worker_cli.STACK_HANDLERS) == sorted(STACK_COMMANDS)
    assert not set(client_side) & set(STACK_COMMANDS)
