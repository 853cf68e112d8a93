"""`refundflow`: the command line for support staff, operators and developers.

Every command takes --json for scripts. Mistakes are reported as one line on stderr with a
non-zero exit status; no stack traces for user errors.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError

from client import render
from client.errors import RefundflowError
from client.refund_client import REFUND_ID_PATTERN
from worker.connections import TemporalUnavailable
from worker.processes import StackError
from worker.settings import ConfigurationError, Settings
from workflows.states import RefundState

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class UserError(Exception):
    """Bad input on the command line."""


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes as one line plus a pointer to --help, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see `{self.prog} --help`)\n")


def _line(value: str) -> tuple[str, int]:
    sku, sep, qty = value.rpartition(":")
    if not sep or not sku or not qty.isdigit() or int(qty) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected SKU:QTY with QTY a positive whole number, got {value!r}"
        )
    return sku, int(qty)


def _refund_id(value: str) -> str:
    if not re.match(REFUND_ID_PATTERN, value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a refund id (they look like rf_ and 24 hex digits)"
        )
    return value


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return int(value)


def _assignment(value: str) -> tuple[str, str]:
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key, raw


def _minor(value: str) -> int:
    try:
        amount = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"amount must be a whole number of minor units (cents), got {value!r}"
        ) from None
    return amount


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="refundflow", description="Durable refunds on Temporal: request, review, track."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    dev = command("dev", "run the embedded dev stack in the foreground (Ctrl-C stops it)")
    dev.add_argument("--home", type=Path, help="state folder (default: ./.refundflow)")
    dev.add_argument("--fresh", action="store_true", help="delete the stack's saved state first")
    dev.add_argument("--no-demo", action="store_true", help="do not create demo orders")
    dev.add_argument("--temporal-port", type=int, default=7233)
    dev.add_argument("--ui-port", type=int, default=8233)
    dev.add_argument("--pg-port", type=int, default=55432)
    dev.add_argument("--sandbox-port", type=int, default=8088)
    dev.add_argument("--webhook-port", type=int, default=8089)

    command("worker", "run a worker (configured from the environment); --json: JSON logs")
    hooks = command(
        "webhooks", "receive the payment provider's webhooks (REFUNDFLOW_WEBHOOK_SECRET)"
    )
    hooks.add_argument("--host", default=os.environ.get("WEBHOOK_HOST", "127.0.0.1"))
    hooks.add_argument("--port", type=int, default=int(os.environ.get("WEBHOOK_PORT", "8089")))

    sandbox = sub.add_parser("sandbox", help="the sandbox payment provider, inventory and orders")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="COMMAND")
    order = sandbox_sub.add_parser("order", help="create a paid, delivered order")
    order.add_argument("--amount", type=_minor, required=True, help="minor units, e.g. 12000")
    order.add_argument("--currency", default="USD")
    order.add_argument("--category", default="general")
    order.add_argument("--delivered-days-ago", type=int, default=3)
    order.add_argument("--json", action="store_true")
    refunds = sandbox_sub.add_parser("refunds", help="the provider's refund ledger")
    refunds.add_argument("--order", help="only this order")
    refunds.add_argument("--json", action="store_true")
    faults = sandbox_sub.add_parser("faults", help="inject faults into the sandbox systems")
    faults_sub = faults.add_subparsers(dest="faults_command", required=True, metavar="COMMAND")
    faults_set = faults_sub.add_parser("set", help="set SYSTEM.FIELD=VALUE ...")
    faults_set.add_argument("assignments", nargs="+", type=_assignment, metavar="KEY=VALUE")
    faults_set.add_argument("--json", action="store_true")
    for name, text in (("clear", "remove every fault"), ("show", "show the faults in force")):
        faults_sub.add_parser(name, help=text).add_argument("--json", action="store_true")

    operator = sub.add_parser("operator", help="operator actions after a payment failure")
    operator_sub = operator.add_subparsers(
        dest="operator_command", required=True, metavar="COMMAND"
    )
    retry = operator_sub.add_parser("retry", help="try the provider refund again")
    retry.add_argument("refund_id", type=_refund_id)
    retry.add_argument("--operator", required=True)
    retry.add_argument("--json", action="store_true")
    op_cancel = operator_sub.add_parser(
        "cancel", help="cancel the refund (only when provably no money moved)"
    )
    op_cancel.add_argument("refund_id", type=_refund_id)
    op_cancel.add_argument("--operator", required=True)
    op_cancel.add_argument("--reason", required=True)
    op_cancel.add_argument("--json", action="store_true")

    request = command("request", "request a refund (idempotent per --key)")
    request.add_argument("--order", required=True)
    what = request.add_mutually_exclusive_group(required=True)
    what.add_argument("--amount", type=_minor, help="minor units, e.g. 12000 for 120.00")
    what.add_argument("--line", type=_line, action="append", help="SKU:QTY, repeatable")
    request.add_argument("--reason", required=True, help="reason code, e.g. damaged")
    request.add_argument("--channel", required=True, help="web | app | support | api")
    request.add_argument("--key", help="refund key (default: derived from the request)")
    request.add_argument("--currency", help="must match the order's currency if given")
    request.add_argument("--requested-by", default="support-cli", help="customer or staff id")

    status = command("status", "show a refund's status, timeline and what happens next")
    status.add_argument("refund_id", type=_refund_id)

    listing = command("list", "list refunds")
    listing.add_argument("--state", choices=[s.value for s in RefundState])
    listing.add_argument("--order")
    listing.add_argument("--escalated", action="store_true")
    listing.add_argument("--limit", type=_positive, default=100, help="at most this many")

    approve = command("approve", "approve a refund waiting for review")
    approve.add_argument("refund_id", type=_refund_id)
    approve.add_argument("--reviewer", required=True)
    approve.add_argument("--amount", type=_minor, help="approve less than requested")

    reject = command("reject", "reject a refund waiting for review")
    reject.add_argument("refund_id", type=_refund_id)
    reject.add_argument("--reviewer", required=True)
    reject.add_argument("--reason", required=True)

    cancel = command("cancel", "withdraw a refund before money moves")
    cancel.add_argument("refund_id", type=_refund_id)
    cancel.add_argument("--actor", required=True)
    cancel.add_argument("--reason", required=True)

    received = command("received", "report the returned item received")
    received.add_argument("refund_id", type=_refund_id)
    received.add_argument("--actor", default="warehouse")

    reconcile = command("reconcile", "compare ledgers now, heal what is safe, print findings")
    reconcile.add_argument(
        "--grace", type=int, default=60, help="skip refunds changed in the last N seconds"
    )
    reconcile.add_argument("--no-heal", action="store_true", help="only report")
    anomalies = command("anomalies", "findings of reconciliation runs, newest first")
    anomalies.add_argument("--kind", help="only this kind of finding")
    anomalies.add_argument("--limit", type=_positive, default=100)

    bench = command("bench", "measure a refund's cost beside a naive baseline (own stack)")
    bench.add_argument("--refunds", type=_positive, default=200, help="N auto-approved refunds")
    bench.add_argument("--concurrency", type=_positive, default=20)
    bench.add_argument("--lookups", type=_positive, default=1000)
    bench.add_argument("--open", type=_positive, default=5000, help="refunds left open")
    bench.add_argument("--reconcile-rows", type=_positive, default=100_000)
    bench.add_argument("--json-out", type=Path, help="also write the figures as JSON")

    audit = command("audit", "the append-only audit trail of a refund")
    audit.add_argument("refund_id", type=_refund_id)
    return parser


# --- commands -------------------------------------------------------------------------


def _emit(args: argparse.Namespace, data: Any, human: Callable[[Any], str]) -> None:
    if args.json:
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        elif isinstance(data, list):
            data = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
        print(json.dumps(data, indent=2, default=str))
    else:
        print(human(data))


async def _with_store(action: Callable[[Any], Awaitable[Any]]) -> Any:
    """Commands that only read Postgres (list, audit) need no Temporal."""
    import asyncpg

    from activities.pg_store import PostgresRefundStore, create_pool

    url = Settings.from_env().require_database_url()
    try:
        pool = await create_pool(url)
    except (OSError, asyncpg.PostgresError) as err:
        raise RefundflowError(f"cannot reach the database: {err}") from None
    try:
        return await action(PostgresRefundStore(pool))
    finally:
        await pool.close()


async def _with_client(args: argparse.Namespace, action: Callable[[Any], Awaitable[Any]]) -> Any:
    from client.refund_client import RefundClient

    client = await RefundClient.connect(Settings.from_env())
    try:
        return await action(client)
    finally:
        await client.close()


async def _request(args: argparse.Namespace) -> int:
    from client.refund_client import default_refund_key
    from workflows.models import RefundRequest

    key = args.key or default_refund_key(args.order, args.amount, args.line, args.reason)
    try:
        request = RefundRequest(
            refund_key=key,
            order_id=args.order,
            amount=args.amount,
            lines=[{"sku": s, "quantity": q} for s, q in args.line] if args.line else None,
            currency=args.currency,
            reason_code=args.reason,
            channel=args.channel,
            requested_by=args.requested_by,
        )
    except ValidationError as err:
        raise UserError(render.validation_error(err)) from None
    status = await _with_client(args, lambda c: c.request(request))
    _emit(args, status, render.status)
    return EXIT_OK


async def _sandbox(args: argparse.Namespace) -> int:
    import aiohttp

    from activities.http_adapters import HttpOrderSystem, HttpPaymentProvider, HttpService
    from activities.ports import ExternalSystemRefused, ExternalSystemUnavailable
    from sandbox.admin_client import SandboxAdmin

    settings = Settings.from_env()
    async with aiohttp.ClientSession() as session:
        try:
            if args.sandbox_command == "faults":
                admin = SandboxAdmin(HttpService(session, settings.sandbox_url, "sandbox"))
                if args.faults_command == "set":
                    current = await admin.set_faults(dict(args.assignments))
                elif args.faults_command == "clear":
                    current = await admin.clear_faults()
                else:
                    current = await admin.faults()
                _emit(args, current, render.faults)
            elif args.sandbox_command == "order":
                orders = HttpOrderSystem(
                    HttpService(session, settings.orders_url, "sandbox orders")
                )
                order = await orders.create_order(
                    {
                        "amount": args.amount,
                        "currency": args.currency,
                        "category": args.category,
                        "delivered_days_ago": args.delivered_days_ago,
                    }
                )
                _emit(args, order, render.order)
            else:
                payments = HttpPaymentProvider(
                    HttpService(session, settings.payment_provider_url, "sandbox payments")
                )
                _emit(args, await payments.list_refunds(args.order), render.ledger)
        except ExternalSystemRefused as err:
            raise UserError(str(err)) from None
        except ExternalSystemUnavailable as err:
            raise RefundflowError(f"{err}; is `refundflow dev` running in this folder?") from None
    return EXIT_OK


async def _simple(args: argparse.Namespace) -> int:
    """status, list, approve, reject, cancel, received, audit."""
    cmd = args.command
    actions: dict[str, tuple[Callable[[Any], Awaitable[Any]], Callable[[Any], str]]] = {
        "status": (lambda c: c.status(args.refund_id), render.status),
        "list": (
            lambda store: store.list_status(
                state=args.state, order_id=args.order, escalated=args.escalated, limit=args.limit
            ),
            render.listing,
        ),
        "approve": (lambda c: c.approve(args.refund_id, args.reviewer, args.amount), render.status),
        "reject": (lambda c: c.reject(args.refund_id, args.reviewer, args.reason), render.status),
        "cancel": (lambda c: c.cancel(args.refund_id, args.actor, args.reason), render.status),
        "received": (lambda c: c.item_received(args.refund_id, args.actor), render.status),
        "audit": (lambda store: _audit(store, args.refund_id), render.audit),
        "anomalies": (
            lambda store: store.findings(kind=args.kind, limit=args.limit),
            render.findings,
        ),
        "retry": (lambda c: c.operator_retry(args.refund_id, args.operator), render.status),
        "op-cancel": (
            lambda c: c.operator_cancel(args.refund_id, args.operator, args.reason),
            render.status,
        ),
    }
    if cmd == "operator":
        cmd = "retry" if args.operator_command == "retry" else "op-cancel"
    action, human = actions[cmd]
    try:
        if cmd in ("list", "audit", "anomalies"):
            result = await _with_store(action)
        else:
            result = await _with_client(args, action)
    except ValidationError as err:
        raise UserError(render.validation_error(err)) from None
    _emit(args, result, human)
    return EXIT_OK


async def _reconcile(args: argparse.Namespace) -> int:
    from workflows.models import ReconcileInput

    async def run_now(client: Any) -> Any:
        report = await client.reconcile(
            ReconcileInput(heal=not args.no_heal, grace_seconds=max(args.grace, 0))
        )
        findings = await (await client.store()).findings(run_id=report.run_id, limit=10_000)
        return {**report.model_dump(), "details": findings}

    result = await _with_client(args, run_now)
    _emit(args, result, render.reconciliation)
    return EXIT_OK


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


async def _audit(store: Any, refund_id: str) -> Any:
    trail = await store.audit_trail(refund_id)
    if not trail:
        raise RefundflowError(f"no audit trail for refund {refund_id}")
    return trail


def _dev(args: argparse.Namespace) -> int:
    from worker.devstack import StackConfig, run_foreground, wipe_home

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
        policy=os.environ.get("REFUNDFLOW_POLICY", "standard-v1"),
        worker_output_to_terminal=True,
    )
    return run_foreground(config, demo_orders=not args.no_demo, as_json=args.json)


async def _worker(args: argparse.Namespace) -> int:
    from worker.main import serve

    settings = Settings.from_env()
    if args.json:
        settings = dataclasses.replace(settings, log_format="json")
    await serve(settings)
    return EXIT_OK


async def _webhooks(args: argparse.Namespace) -> int:
    from worker.webhook_receiver import serve

    settings = Settings.from_env()
    if args.json:
        settings = dataclasses.replace(settings, log_format="json")
    await serve(settings, args.host, args.port)
    return EXIT_OK


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "dev":
            return _dev(args)
        if args.command == "worker":
            return asyncio.run(_worker(args))
        if args.command == "webhooks":
            return asyncio.run(_webhooks(args))
        if args.command == "sandbox":
            return asyncio.run(_sandbox(args))
        if args.command == "request":
            return asyncio.run(_request(args))
        if args.command == "reconcile":
            return asyncio.run(_reconcile(args))
        if args.command == "bench":
            return asyncio.run(_bench(args))
        return asyncio.run(_simple(args))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (RefundflowError, ConfigurationError, StackError, TemporalUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:
        # Not a user mistake: a bug or an outage. One line here; the traceback on request.
        if os.environ.get("REFUNDFLOW_DEBUG"):
            raise
        print(
            f"error: unexpected {type(err).__name__}: {err} (set REFUNDFLOW_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point. Ends with os._exit: Temporal's runtime threads can crash CPython's
    finalisation after all work is done, which would turn a success into a core dump."""
    try:
        status = run(argv)
    except SystemExit as exit_:  # argparse: usage errors and --help
        status = exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
