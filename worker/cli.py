"""`refundflow`: the whole command line, the console script's entry point.

The commands that run parts of the stack (dev, worker, webhooks, migrate, bench) live here,
in the composition root, because they import the worker; every other command is the
client's (client/cli), to which this delegates, with the client's way of reporting errors.
`python -m worker.cli ARGS` is the same as `refundflow ARGS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from client.cli import arguments as types
from client.cli.app import call, execute, finish, guarded
from client.cli.arguments import EXIT_OK
from client.cli.backends import with_store
from client.cli.commands import (
    CLIENT_COMMANDS,
    CommandAdder,
    Subcommands,
    add_records,
    command,
)
from client.cli.commands import build_parser as build_any_parser
from client.cli.handlers import Handler
from client.cli.output import emit
from client.settings import DEFAULT_POLICY, Settings
from worker.processes import StackError


def add_stack_commands(sub: Subcommands) -> None:
    dev = command(sub, "dev", "run the embedded dev stack in the foreground (Ctrl-C stops it)")
    dev.add_argument("--home", type=Path, help="state folder (default: ./.refundflow)")
    dev.add_argument("--fresh", action="store_true", help="delete the stack's saved state first")
    dev.add_argument("--no-demo", action="store_true", help="do not create demo orders")
    dev.add_argument("--temporal-port", type=int, default=7233)
    dev.add_argument("--ui-port", type=int, default=8233)
    dev.add_argument("--pg-port", type=int, default=55432)
    dev.add_argument("--sandbox-port", type=int, default=8088)
    dev.add_argument("--webhook-port", type=int, default=8089)
    command(sub, "worker", "run a worker (configured from the environment); --json: JSON logs")
    hooks = command(
        sub, "webhooks", "receive the payment provider's webhooks (REFUNDFLOW_WEBHOOK_SECRET)"
    )
    hooks.add_argument("--host", default=os.environ.get("WEBHOOK_HOST", "127.0.0.1"))
    hooks.add_argument("--port", type=int, default=int(os.environ.get("WEBHOOK_PORT", "8089")))
    command(sub, "migrate", "bring the database's tables up to date; print what was applied")


def add_bench(sub: Subcommands) -> None:
    bench = command(sub, "bench", "measure a refund's cost beside a naive baseline (own stack)")
    bench.add_argument(
        "--refunds", type=types.positive, default=200, help="N auto-approved refunds"
    )
    bench.add_argument("--concurrency", type=types.positive, default=20)
    bench.add_argument("--lookups", type=types.positive, default=1000)
    bench.add_argument("--open", type=types.positive, default=5000, help="refunds left open")
    bench.add_argument("--reconcile-rows", type=types.positive, default=100_000)
    bench.add_argument("--json-out", type=Path, help="also write the figures as JSON")


def all_commands() -> list[CommandAdder]:
    """Every command, in the order `refundflow --help` has always listed them: the stack's
    first, bench before the audit trail; a new client command appears without a change here."""
    client_side = list(CLIENT_COMMANDS)
    at = client_side.index(add_records)
    return [add_stack_commands, *client_side[:at], add_bench, *client_side[at:]]


def build_parser() -> argparse.ArgumentParser:
    return build_any_parser(all_commands())


def _dev(args: argparse.Namespace) -> int:
    from worker.dev_foreground import run_foreground
    from worker.devstack import StackConfig, wipe_home

    home = (args.home or Path(os.environ.get("REFUNDFLOW_HOME", ".refundflow"))).resolve()
    if args.fresh:
        wipe_home(home)
    config = StackConfig(
        home=home,
        temporal_port=args.temporal_port,
        ui_port=args.ui_port,
        pg_port=args.pg_port,
        sandbox_port=args.sandbox_port,
        webhook_port=args.webhook_port,
        database_url=os.environ.get("DATABASE_URL") or None,
        policy=os.environ.get("REFUNDFLOW_POLICY", DEFAULT_POLICY),
        worker_output_to_terminal=True,
    )
    return run_foreground(config, demo_orders=not args.no_demo, as_json=args.json)


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment; --json asks the worker processes for JSON logs."""
    settings = Settings.from_env()
    return dataclasses.replace(settings, log_format="json") if args.json else settings


async def _worker(args: argparse.Namespace) -> int:
    from worker.main import serve

    await serve(_settings(args))
    return EXIT_OK


async def _webhooks(args: argparse.Namespace) -> int:
    from worker.webhook_receiver import serve

    await serve(_settings(args), args.host, args.port)
    return EXIT_OK


async def _migrate(args: argparse.Namespace) -> int:
    from activities.pg_store import migrate_store
    from worker.devstack import redact_url

    url = Settings.from_env().require_database_url()
    applied = await with_store(lambda store: migrate_store(store.pool), url)
    emit(args, {"database_url": redact_url(url), "applied": applied}, _migrated)
    return EXIT_OK


def _migrated(result: dict[str, Any]) -> str:
    if not result["applied"]:
        return f"{result['database_url']} is up to date; nothing to apply"
    names = "\n".join(f"  {name}" for name in result["applied"])
    return f"applied to {result['database_url']}:\n{names}"


async def _bench(args: argparse.Namespace) -> int:
    from bench.run import BenchConfig, run_bench

    config = BenchConfig(
        refunds=args.refunds,
        concurrency=args.concurrency,
        lookups=args.lookups,
        open_refunds=args.open,
        reconcile_rows=args.reconcile_rows,
    )
    return await run_bench(config, args.json_out)


STACK_HANDLERS: dict[str, Handler] = {
    "dev": _dev,
    "worker": _worker,
    "webhooks": _webhooks,
    "migrate": _migrate,
    "bench": _bench,
}


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = STACK_HANDLERS.get(args.command)
    if handler is None:
        return execute(args)
    as_json = bool(getattr(args, "json", False))
    return guarded(lambda: call(handler, args), failures=(StackError,), as_json=as_json)


def main(argv: Sequence[str] | None = None) -> None:
    """The `refundflow` console script."""
    finish(run, argv)


if __name__ == "__main__":
    main()
