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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError

from client import render
from client.errors import RefundflowError
from client.refund_client import REFUND_ID_PATTERN
from worker.connections import TemporalUnavailable
from worker.processes import StackError
from worker.settings import ConfigurationError, Settings
from workflows.models import LOCALES
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


def _priced_line(value: str) -> dict[str, Any]:
    parts = value.split(":")
    if len(parts) != 4 or not all(parts) or not parts[1].isdigit() or not parts[2].isdigit():
        raise argparse.ArgumentTypeError(
            f"expected SKU:QTY:UNIT_PRICE:CATEGORY (price in minor units), got {value!r}"
        )
    return {
        "sku": parts[0],
        "quantity": int(parts[1]),
        "unit_price": int(parts[2]),
        "category": parts[3],
    }


def _subscriber_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", value):
        raise argparse.ArgumentTypeError(
            f"subscriber names are lowercase letters, digits and dashes, got {value!r}"
        )
    return value


def _url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise argparse.ArgumentTypeError(f"expected an http(s) URL, got {value!r}")
    return value


def _when(value: str) -> datetime:
    """YYYY-MM-DD (midnight UTC) or an ISO 8601 date-time (without an offset: UTC)."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date YYYY-MM-DD or an ISO date-time, got {value!r}"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _what_is_asked(parser: argparse.ArgumentParser) -> None:
    """--order, --amount or --line, --reason: a refund request's substance."""
    parser.add_argument("--order", required=True)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--amount", type=_minor, help="minor units, e.g. 12000 for 120.00")
    what.add_argument("--line", type=_line, action="append", help="SKU:QTY, repeatable")
    parser.add_argument("--reason", required=True, help="reason code, e.g. damaged")


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
    order.add_argument("--amount", type=_minor, help="minor units, e.g. 12000 (one line)")
    order.add_argument("--currency", default="USD")
    order.add_argument("--category", default="general")
    order.add_argument("--delivered-days-ago", type=int, default=3)
    order.add_argument("--rail", choices=["card", "wallet", "bank_transfer"], default="card")
    order.add_argument("--line", type=_priced_line, action="append", help="SKU:QTY:PRICE:CATEGORY")
    order.add_argument("--json", action="store_true")
    inbox = sandbox_sub.add_parser("inbox", help="what customers were notified of")
    inbox.add_argument("--refund", type=_refund_id, help="only this refund")
    inbox.add_argument("--json", action="store_true")
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
    _what_is_asked(request)
    request.add_argument("--channel", required=True, help="web | app | support | api")
    request.add_argument("--key", help="refund key (default: derived from the request)")
    request.add_argument("--currency", help="must match the order's currency if given")
    request.add_argument("--requested-by", default="support-cli", help="customer or staff id")
    request.add_argument(
        "--locale", choices=LOCALES, default="en", help="the customer's language for messages"
    )

    eligibility = command(
        "eligibility", "would this refund be granted, how much, and why (starts nothing)"
    )
    _what_is_asked(eligibility)
    eligibility.add_argument(
        "--key", help="refund key, as given to `request` (default: derived the same way)"
    )

    policy = sub.add_parser("policy", help="the refund policy: show, list, diff versions")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    show = policy_sub.add_parser("show", help="the policy in force (or NAME) with its version")
    show.add_argument("name", nargs="?", help="e.g. standard-v1 or standard@v1")
    show.add_argument("--json", action="store_true")
    policy_sub.add_parser("list", help="every policy version on file").add_argument(
        "--json", action="store_true"
    )
    policy_diff = policy_sub.add_parser("diff", help="what changed between two versions")
    policy_diff.add_argument("old", help="e.g. standard-v1")
    policy_diff.add_argument("new", help="e.g. standard-v2")
    policy_diff.add_argument("--json", action="store_true")

    track = command("track", "what the customer sees of a refund (their words and language)")
    track.add_argument("refund_id", type=_refund_id)

    events = command("events", "a refund's notification events and their deliveries")
    events.add_argument("refund_id", type=_refund_id)

    subscribers = sub.add_parser("subscribers", help="webhook subscribers to refund events")
    subscribers_sub = subscribers.add_subparsers(
        dest="subscribers_command", required=True, metavar="COMMAND"
    )
    add = subscribers_sub.add_parser(
        "add", help="send events from now on to URL (prints its secret; re-adding rotates it)"
    )
    add.add_argument("name", type=_subscriber_name)
    add.add_argument("url", type=_url)
    add.add_argument("--json", action="store_true")
    subscribers_sub.add_parser("list", help="subscribers and their backlog").add_argument(
        "--json", action="store_true"
    )
    remove = subscribers_sub.add_parser("remove", help="stop delivering to a subscriber")
    remove.add_argument("name", type=_subscriber_name)
    remove.add_argument("--json", action="store_true")

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
    approve.add_argument(
        "--role", default="support", help="your staff role; the policy limits what it approves"
    )

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

    report = command("report", "refund metrics from Postgres, and a chart")
    report.add_argument(
        "--since", type=_when, help="refunds requested from (YYYY-MM-DD or ISO, UTC)"
    )
    report.add_argument("--until", type=_when, help="refunds requested before (exclusive)")
    report.add_argument(
        "--chart", type=Path, default=Path("refundflow-report.html"), help="HTML chart to write"
    )
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


def _refund_request(args: argparse.Namespace, **fields: Any) -> Any:
    """The RefundRequest a command line describes (request and eligibility)."""
    from workflows.models import RefundRequest

    try:
        return RefundRequest(
            order_id=args.order,
            amount=args.amount,
            lines=[{"sku": s, "quantity": q} for s, q in args.line] if args.line else None,
            reason_code=args.reason,
            **fields,
        )
    except ValidationError as err:
        raise UserError(render.validation_error(err)) from None


async def _request(args: argparse.Namespace) -> int:
    from client.refund_client import default_refund_key

    request = _refund_request(
        args,
        refund_key=args.key or default_refund_key(args.order, args.amount, args.line, args.reason),
        currency=args.currency,
        channel=args.channel,
        requested_by=args.requested_by,
        locale=args.locale,
    )
    status = await _with_client(args, lambda c: c.request(request))
    _emit(args, status, render.status)
    return EXIT_OK


async def _eligibility(args: argparse.Namespace) -> int:
    # Channel and requester do not change the answer. The key (as `request` would derive
    # it, or --key) only excludes that request's own hold, if already made, from "still
    # refundable": asking again about a request already made gives the same answer.
    from client.refund_client import default_refund_key

    key = args.key or default_refund_key(args.order, args.amount, args.line, args.reason)
    request = _refund_request(args, refund_key=key, channel="web", requested_by="eligibility")
    answer = await _with_client(args, lambda c: c.eligibility(request))
    _emit(args, answer, render.eligibility)
    return EXIT_OK


def _policy(args: argparse.Namespace) -> int:
    from client import policy_view

    policy_dir = Settings.from_env().policy_dir
    if args.policy_command == "list":
        _emit(args, policy_view.available(policy_dir), render.policy_list)
    elif args.policy_command == "diff":
        old = policy_view.load_named(policy_dir, args.old)
        new = policy_view.load_named(policy_dir, args.new)
        _emit(args, policy_view.diff(old, new), render.policy_diff)
    else:
        name = args.name or Settings.from_env().policy
        _emit(args, policy_view.describe(policy_view.load_named(policy_dir, name)), render.policy)
    return EXIT_OK


async def _subscribers(args: argparse.Namespace) -> int:
    from activities import outbox

    async def act(store: Any) -> Any:
        if args.subscribers_command == "add":
            return await outbox.add_subscriber(store.pool, args.name, args.url)
        if args.subscribers_command == "remove":
            if not await outbox.deactivate_subscriber(store.pool, args.name):
                raise UserError(f"no subscriber named {args.name}")
            return {"name": args.name, "active": False}
        return await outbox.list_subscribers(store.pool)

    _emit(args, await _with_store(act), render.subscribers)
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
                if (args.amount is None) == (args.line is None):
                    raise UserError("give --amount or one or more --line, not both")
                spec: dict[str, Any] = {
                    "currency": args.currency,
                    "category": args.category,
                    "delivered_days_ago": args.delivered_days_ago,
                    "payment_rail": args.rail,
                }
                spec.update({"lines": args.line} if args.line else {"amount": args.amount})
                _emit(args, await orders.create_order(spec), render.order)
            elif args.sandbox_command == "inbox":
                admin = SandboxAdmin(HttpService(session, settings.sandbox_url, "sandbox"))
                _emit(args, await admin.inbox(args.refund), render.inbox)
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
        "approve": (
            lambda c: c.approve(args.refund_id, args.reviewer, args.amount, args.role),
            render.status,
        ),
        "track": (lambda c: c.track(args.refund_id), render.track),
        "events": (lambda store: _events(store, args.refund_id), render.events),
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
        if cmd in ("list", "audit", "anomalies", "events"):
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


async def _report(args: argparse.Namespace) -> int:
    from client.report import build_report, render_text
    from client.report_chart import write_chart

    if args.since and args.until and args.since >= args.until:
        raise UserError("--since must be before --until")
    report = await _with_store(lambda store: build_report(store.pool, args.since, args.until))
    chart = write_chart(report, args.chart)
    _emit(
        args,
        {**report, "chart": str(chart)},
        lambda data: f"{render_text(data)}\n\nchart written to {chart}",
    )
    return EXIT_OK


async def _events(store: Any, refund_id: str) -> Any:
    from activities.outbox import events_for

    events = await events_for(store.pool, refund_id)
    if not events:
        raise RefundflowError(f"no events for refund {refund_id}")
    return events


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
        policy=os.environ.get("REFUNDFLOW_POLICY", "standard-v2"),
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
        if args.command == "report":
            return asyncio.run(_report(args))
        if args.command == "eligibility":
            return asyncio.run(_eligibility(args))
        if args.command == "policy":
            return _policy(args)
        if args.command == "subscribers":
            return asyncio.run(_subscribers(args))
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
