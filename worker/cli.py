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
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from client.cli import arguments as types
from client.cli.app import call, execute, finish, guarded
from client.cli.arguments import EXIT_OK
from client.cli.commands import CLIENT_COMMANDS
from client.cli.commands import build_parser as build_any_parser
from client.cli.grammar import CommandAdder, Subcommands, command
from client.cli.handlers import Handler
from client.cli.output import emit
from client.cli.records_commands import add_records
from client.settings import DEFAULT_POLICY, Settings
from worker.api_commands import API_HANDLERS, add_api_commands, dev_credentials
from worker.codec_commands import CODEC_HANDLERS, add_codec_commands
from worker.processes import StackError

if TYPE_CHECKING:
    from activities.migrate import AppRole, AuditGuard, Prepared


def add_stack_commands(sub: Subcommands) -> None:
    dev = command(sub, "dev", "run the embedded dev stack in the foreground (Ctrl-C stops it)")
    dev.add_argument("--home", type=Path, help="state folder (default: ./.refundflow)")
    dev.add_argument("--fresh", action="store_true", help="delete the stack's saved state first")
    dev.add_argument("--no-demo", action="store_true", help="do not create demo orders")
    for flag, port, what in (
        ("--temporal-port", 7233, "Temporal's gRPC"),
        ("--ui-port", 8233, "Temporal's Web UI"),
        ("--pg-port", 55432, "the embedded PostgreSQL"),
        ("--sandbox-port", 8088, "the sandbox systems"),
        ("--webhook-port", 8089, "the webhook receiver"),
        ("--api-port", 8080, "the API, console and tracking pages"),
        ("--codec-port", 8081, "the codec server"),
        ("--metrics-port", 9464, "the worker's Prometheus metrics"),
        ("--api-metrics-port", 9465, "the API's Prometheus metrics"),
    ):
        dev.add_argument(
            flag, type=types.port, default=port, help=f"port of {what} (default {port})"
        )
    command(sub, "worker", "run a worker (configured from the environment); --json: JSON logs")
    hooks = command(
        sub, "webhooks", "receive the payment provider's webhooks (REFUNDFLOW_WEBHOOK_SECRET)"
    )
    hooks.add_argument(
        "--host",
        default=os.environ.get("WEBHOOK_HOST", "127.0.0.1"),
        help="listen address (default: WEBHOOK_HOST or 127.0.0.1)",
    )
    hooks.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("WEBHOOK_PORT", "8089")),
        help="listen port (default: WEBHOOK_PORT or 8089)",
    )
    migrate = command(
        sub,
        "migrate",
        "bring the database's tables up to date, as MIGRATION_DATABASE_URL's role if set (the"
        " owner), and grant DATABASE_URL's role what the app needs; print what was applied",
    )
    migrate.add_argument(
        "--app-role",
        type=_role_name,
        help="without MIGRATION_DATABASE_URL: create this role for the app (needs CREATEROLE)"
        " and print the DATABASE_URL it connects with",
    )
    migrate.add_argument(
        "--sandbox", action="store_true", help="the sandbox's tables too (dev and demo setups)"
    )


def add_bench(sub: Subcommands) -> None:
    bench = command(
        sub, "bench", "race refundflow against a naive refund and a ceiling (own stack)"
    )
    bench.add_argument(
        "--refunds", type=types.positive, default=200, help="auto-approved refunds of each shape"
    )
    bench.add_argument(
        "--concurrency", type=types.positive, default=20, help="refunds in flight at once"
    )
    bench.add_argument("--lookups", type=types.positive, default=1000, help="status reads to time")
    bench.add_argument("--open", type=types.positive, default=5000, help="refunds left open")
    bench.add_argument(
        "--reconcile-rows",
        type=types.positive,
        default=100_000,
        help="refunds in the table reconciliation scans",
    )
    bench.add_argument(
        "--rounds",
        type=types.positive,
        default=2,
        help="legs each shape's refunds are raced in, the shapes' order mirrored every other"
        " round (a machine whose speed drifts weighs on every shape alike)",
    )
    bench.add_argument(
        "--json-out", type=types.file_to_write, help="also write the figures as JSON"
    )


def all_commands() -> list[CommandAdder]:
    """Every command, in the order `refundflow --help` has always listed them: the stack's
    first, bench before the audit trail, the API's last; a new client command appears without
    a change here."""
    client_side = list(CLIENT_COMMANDS)
    at = client_side.index(add_records)
    return [
        add_stack_commands,
        *client_side[:at],
        add_bench,
        *client_side[at:],
        add_api_commands,
        add_codec_commands,
    ]


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
        api_port=args.api_port,
        codec_port=args.codec_port,
        metrics_port=args.metrics_port,
        api_metrics_port=args.api_metrics_port,
        database_url=os.environ.get("DATABASE_URL") or None,
        # Only with DATABASE_URL: the embedded server has its own owner.
        migration_database_url=(os.environ.get("DATABASE_URL") or None)
        and (os.environ.get("MIGRATION_DATABASE_URL") or None),
        policy=os.environ.get("REFUNDFLOW_POLICY", DEFAULT_POLICY),
        # With REFUNDFLOW_DEPLOYMENT_NAME set (versioning on), the stack's one worker makes
        # its own version current: nothing else would route new refunds to it.
        extra_env={"REFUNDFLOW_DEPLOYMENT_PROMOTE": "current"},
    )
    return run_foreground(config, demo_orders=not args.no_demo, as_json=args.json)


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment; --json asks the worker processes for JSON logs."""
    settings = Settings.from_env()
    return dataclasses.replace(settings, log_format="json") if args.json else settings


async def _worker(args: argparse.Namespace) -> int:
    from activities.migrate import MigrationRefused
    from worker.main import serve

    try:
        await serve(_settings(args))
    except MigrationRefused as err:  # the app's role may not migrate: say what to run
        raise StackError(str(err)) from None
    return EXIT_OK


async def _webhooks(args: argparse.Namespace) -> int:
    from activities.migrate import MigrationRefused
    from worker.webhook_receiver import serve

    try:
        await serve(_settings(args), args.host, args.port)
    except MigrationRefused as err:
        raise StackError(str(err)) from None
    return EXIT_OK


def _role_name(text: str) -> str:
    from activities.migrate import MigrationRefused, check_role_name

    try:
        return check_role_name(text)
    except MigrationRefused as err:
        raise argparse.ArgumentTypeError(str(err)) from None


async def _migrate(args: argparse.Namespace) -> int:
    """Migrate as the owner; the app's role, when it is another, created (if missing and
    allowed) and granted INSERT and SELECT on the audit, never UPDATE, DELETE or TRUNCATE."""
    from activities.migrate import MigrationRefused, Schema, prepare_database, url_as
    from activities.pg_store import MIGRATIONS
    from sandbox.store import MIGRATIONS as SANDBOX_MIGRATIONS

    settings = Settings.from_env()
    app_url = settings.require_database_url()
    owner_url = settings.migration_database_url or app_url
    schemas = [Schema("refundflow", MIGRATIONS)]
    if args.sandbox:
        schemas.append(Schema("sandbox", SANDBOX_MIGRATIONS))
    try:
        app = _app_role(args.app_role, settings.migration_database_url, app_url)
        done = await prepare_database(owner_url, schemas, app)
    except MigrationRefused as err:
        raise StackError(str(err)) from None
    result = _migration_result(done, owner_url, app_url, settings.migration_database_url)
    if args.app_role and app is not None:
        # Shown once: the generated password exists nowhere else (an existing role keeps its).
        password = app.password if done.created_role else None
        result["app_database_url"] = url_as(owner_url, app.name, password)
    emit(args, result, _migrated)
    for note in result["notes"]:
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


def _app_role(flag: str | None, migration_url: str | None, app_url: str) -> AppRole | None:
    """The app's own role: DATABASE_URL's when MIGRATION_DATABASE_URL is the owner's, or
    --app-role's (with a generated password) when DATABASE_URL is; else None (one role)."""
    from activities.migrate import (
        AppRole,
        MigrationRefused,
        app_role_from,
        check_same_database,
        new_password,
    )

    if migration_url:
        check_same_database(migration_url, app_url)
        app = app_role_from(app_url)
        if flag and flag != app.name:
            raise MigrationRefused(
                f"--app-role {flag} is not DATABASE_URL's role {app.name}: with"
                " MIGRATION_DATABASE_URL set, the app's role is the one DATABASE_URL names"
            )
        return app
    return AppRole(flag, new_password()) if flag else None


def _migration_result(
    done: Prepared, owner_url: str, app_url: str, migration_url: str | None
) -> dict[str, Any]:
    from worker.devstack import redact_url

    guard = done.guard
    result: dict[str, Any] = {
        "database_url": redact_url(app_url),
        "migration_database_url": redact_url(migration_url) if migration_url else None,
        "migrated_as": done.owner,
        "applied": done.applied["refundflow"],
        "app_role": {
            "name": guard.role,
            "separate_from_owner": done.app_role is not None,
            "created": done.created_role,
            "audit_protected": guard.protected,
            "may": list(guard.allowed),
            "owner_or_superuser": guard.owner,
        },
        "notes": list(done.notes),
    }
    if "sandbox" in done.applied:
        result["sandbox_applied"] = done.applied["sandbox"]
    result["where"] = redact_url(owner_url)
    if not guard.protected:
        result["notes"].append(_unprotected(guard, done.app_role is None))
    return result


def _unprotected(guard: AuditGuard, one_role: bool) -> str:
    what = ", ".join(guard.allowed) or "change"
    text = (
        f"role {guard.role} may {what} the audit"
        f"{' (it owns it or is a superuser)' if guard.owner else ''}: the triggers refuse,"
        " but an owner can disable them; `refundflow audit --verify` would still show it."
    )
    if one_role:
        text += (
            " For an app role that cannot: `refundflow migrate --app-role refundflow_app`"
            " (needs CREATEROLE), then use the DATABASE_URL it prints and set"
            " MIGRATION_DATABASE_URL to this one"
        )
    return text


def _migrated(result: dict[str, Any]) -> str:
    names = [*result["applied"], *(f"sandbox/{n}" for n in result.get("sandbox_applied", []))]
    lines = (
        [f"applied to {result['where']}:", *(f"  {name}" for name in names)]
        if names
        else [f"{result['where']} is up to date; nothing to apply"]
    )
    role = result["app_role"]
    if role["separate_from_owner"]:
        how = "created now" if role["created"] else "existing"
        lines.append(
            f"app role {role['name']} ({how}): may read and append to the audit"
            + ("; UPDATE, DELETE and TRUNCATE refused" if role["audit_protected"] else "")
        )
    if result.get("app_database_url"):
        lines.append(f"the app's DATABASE_URL (shown once): {result['app_database_url']}")
    return "\n".join(lines)


async def _bench(args: argparse.Namespace) -> int:
    from bench.run import BenchConfig
    from bench.stack_run import run_bench

    rounds = min(args.rounds, args.refunds)
    if rounds < args.rounds:  # each round races at least one refund of each shape
        print(f"note: {args.refunds} refunds of each shape make {rounds} round(s), not"
              f" {args.rounds}", file=sys.stderr)  # fmt: skip
    config = BenchConfig(
        refunds=args.refunds,
        concurrency=args.concurrency,
        lookups=args.lookups,
        open_refunds=args.open,
        reconcile_rows=args.reconcile_rows,
        rounds=rounds,
    )
    return await run_bench(config, args.json_out, as_json=args.json)


STACK_HANDLERS: dict[str, Handler] = {
    "dev": _dev,
    "worker": _worker,
    "webhooks": _webhooks,
    "migrate": _migrate,
    "bench": _bench,
    **API_HANDLERS,
    **CODEC_HANDLERS,
}


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = STACK_HANDLERS.get(args.command)
    if handler is None:
        return execute(args, dev_tokens=dev_credentials)
    as_json = bool(getattr(args, "json", False))
    return guarded(
        lambda: call(handler, args),
        failures=(StackError,),
        as_json=as_json,
        # The stack's own commands change no refund: the request advice does not apply.
        interrupted=f"interrupted: `refundflow {args.command}` stopped",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """The `refundflow` console script."""
    finish(run, argv)


if __name__ == "__main__":
    main()
