"""The grammar of the client's commands: their names, arguments and help texts.

Each `add_*` function adds one group of commands to the table of subcommands; the order of
CLIENT_COMMANDS is the order `--help` lists them in. The worker's CLI (worker/cli.py) builds
`refundflow` from the same functions plus the stack's own commands.
"""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Iterable

from client.cli import arguments as types
from client.cli import subscribers as subscriber_args
from client.cli.arguments import OneLineParser
from client.cli.grammar import CommandAdder, Subcommands, command, group, with_json
from client.cli.records_commands import add_acknowledge, add_reconciliation, add_records
from client.cli.sandbox_commands import add_sandbox
from workflows.states import RefundState
from workflows.vocabulary import CHANNELS, LOCALES


def build_parser(adders: Iterable[CommandAdder]) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="refundflow", description="Durable refunds on Temporal: request, review, track."
    )
    parser.add_argument(
        "--as",
        dest="acting_as",
        metavar="NAME",
        type=types.name,
        action=types.GivenOnce,
        help="dev stack: act as NAME of its staff directory (alice, bob: support; li: lead;"
        " fang, mei: finance; omar: operator; warehouse; checkout, reporting: services), or as a"
        " customer by id (cust_42). Default: the directory's default member, or"
        " REFUNDFLOW_TOKEN's principal",
    )
    parser.add_argument(
        "--json",
        dest="json_first",
        action="store_true",
        help="machine-readable output, and errors as JSON (also after the command)",
    )
    parser.add_argument("--version", action="version", version=f"refundflow {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in adders:
        add(sub)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("refundflow")
    except importlib.metadata.PackageNotFoundError:  # run from a folder, not installed
        return "(not installed)"


def add_operator(sub: Subcommands) -> None:
    operator = group(
        sub, "operator", "operator actions after a payment failure", "operator_command"
    )
    retry = operator.add_parser("retry", help="try the provider refund again")
    retry.add_argument("refund_id", type=types.refund_id)
    retry.add_argument(
        "--operator", type=types.name, help="dev stack: act as this operator (the same as --as)"
    )
    with_json(retry)
    cancel = operator.add_parser(
        "cancel", help="cancel the refund (only when provably no money moved)"
    )
    cancel.add_argument("refund_id", type=types.refund_id)
    cancel.add_argument(
        "--operator", type=types.name, help="dev stack: act as this operator (the same as --as)"
    )
    cancel.add_argument(
        "--reason", type=types.statement, required=True, help="free text the audit keeps"
    )
    with_json(cancel)
    paid = operator.add_parser(
        "paid-elsewhere",
        help="the customer was paid outside the provider (a transfer, store credit): complete"
        " the refund with the proof (only when the provider holds no live refund for it)",
    )
    paid.add_argument("refund_id", type=types.refund_id)
    paid.add_argument(
        "--operator", type=types.name, help="dev stack: act as this operator (the same as --as)"
    )
    paid.add_argument(
        "--proof",
        type=types.statement,
        required=True,
        help="what shows it was paid: a transfer reference, a note",
    )
    paid.add_argument(
        "--despite-findings",
        action="store_true",
        help="record it although reconciliation's open finding of money the provider paid"
        " around refundflow says the order's payouts would exceed its capture (only when that"
        " finding is stale; the audit says so). A refund on this release or later still"
        " counts the order's payouts itself and refuses above the capture; one still on an"
        " older worker build does not",
    )
    with_json(paid)


def _what_is_asked(parser: argparse.ArgumentParser) -> None:
    """--order, --amount or --line, --reason: a refund request's substance."""
    parser.add_argument("--order", required=True, type=types.order_id, help="the order's id")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--amount", type=types.minor, help="minor units, e.g. 12000 for 120.00")
    what.add_argument("--line", type=types.line, action="append", help="SKU:QTY, repeatable")
    parser.add_argument(
        "--reason", required=True, type=types.reason_code, help="reason code, e.g. damaged"
    )


def add_request_and_eligibility(sub: Subcommands) -> None:
    request = command(sub, "request", "request a refund (idempotent per --key)")
    _what_is_asked(request)
    request.add_argument(
        "--channel",
        choices=CHANNELS,
        help="where the request came from (default: support for staff, api for services,"
        " web for a customer)",
    )
    request.add_argument(
        "--key",
        type=types.refund_key,
        help="refund key: your own business key, asking twice is one refund (default: derived"
        " from the request)",
    )
    request.add_argument("--currency", help="must match the order's currency if given")
    request.add_argument(
        "--requested-by",
        type=types.name,
        help="the customer this refund is for: the order's (staff and services act for"
        " them; default: the order's customer; a customer asks for themselves)",
    )
    request.add_argument(
        "--locale", choices=LOCALES, default="en", help="the customer's language for messages"
    )
    request.add_argument(
        "--no-wait",
        action="store_true",
        help="answer as soon as the refund is started (requested), not once it has decided"
        " who acts next; `status` shows what follows",
    )
    eligibility = command(
        sub,
        "eligibility",
        "would this refund be granted, how much, and why (starts nothing; exit 1: no)",
    )
    _what_is_asked(eligibility)
    eligibility.add_argument(
        "--key",
        type=types.refund_key,
        help="refund key, as given to `request` (default: derived the same way)",
    )
    eligibility.add_argument(
        "--requested-by",
        type=types.name,
        help="the customer asking: their auto-approval budget counts (default: the order's"
        " customer; a customer asks for themselves)",
    )


def add_policy(sub: Subcommands) -> None:
    policy = group(sub, "policy", "the refund policy: show, list, diff versions", "policy_command")
    show = policy.add_parser("show", help="the policy in force (or NAME) with its version")
    show.add_argument("name", nargs="?", help="e.g. standard-v1 or standard@v1")
    with_json(show)
    with_json(policy.add_parser("list", help="every policy version on file"))
    diff = policy.add_parser("diff", help="what changed between two versions")
    diff.add_argument("old", help="e.g. standard-v1")
    diff.add_argument("new", help="e.g. standard-v2")
    with_json(diff)


def add_customer_views(sub: Subcommands) -> None:
    track = command(sub, "track", "what the customer sees of a refund (their words and language)")
    track.add_argument("refund_id", type=types.refund_id)
    events = command(sub, "events", "a refund's notification events and their deliveries")
    events.add_argument("refund_id", type=types.refund_id)


def add_subscribers(sub: Subcommands) -> None:
    subscribers = group(
        sub, "subscribers", "webhook subscribers to refund events", "subscribers_command"
    )
    add = subscribers.add_parser(
        "add",
        help="send events from now on to URL, https (plain http only to this machine); prints"
        " its secret; re-adding rotates it",
    )
    add.add_argument("name", type=types.subscriber_name)
    add.add_argument("url", type=subscriber_args.subscriber_url)
    add.add_argument(
        "--max-attempts",
        type=subscriber_args.attempts_budget,
        help="park an event after this many failed attempts (default 300; re-adding keeps the"
        " current one)",
    )
    add.add_argument(
        "--max-age",
        type=subscriber_args.age_budget,
        help="... or once this long has passed since its first attempt (default 24h; re-adding"
        " keeps the current one)",
    )
    add.add_argument(
        "--overlap",
        type=subscriber_args.duration,
        default="24h",
        help="re-adding: how long the old secret stays valid beside the new one (default 24h,"
        " at most 7d; 0: the old one stops now)",
    )
    with_json(add)
    with_json(subscribers.add_parser("list", help="subscribers, their backlog and parked events"))
    remove = subscribers.add_parser("remove", help="stop delivering to a subscriber")
    remove.add_argument("name", type=types.subscriber_name)
    with_json(remove)
    rotate = subscribers.add_parser(
        "rotate-secret", help="a new signing secret; the old one also signs for --overlap"
    )
    rotate.add_argument("name", type=types.subscriber_name)
    rotate.add_argument(
        "--overlap",
        type=subscriber_args.duration,
        default="24h",
        help="how long the old secret stays valid beside the new one (default 24h, at most 7d;"
        " 0: the old one stops now)",
    )
    with_json(rotate)
    replay = subscribers.add_parser("replay", help="queue parked events again")
    replay.add_argument("name", type=types.subscriber_name)
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--event", type=subscriber_args.event_id, help="one parked event, by id")
    which.add_argument("--all-parked", action="store_true", help="every parked event")
    with_json(replay)


def add_refund_reads(sub: Subcommands) -> None:
    status = command(sub, "status", "show a refund's status, timeline and what happens next")
    status.add_argument("refund_id", type=types.refund_id)
    status.add_argument(
        "--live",
        action="store_true",
        help="ask the refund's workflow itself, not the status recorded with its last step",
    )
    listing = command(sub, "list", "list refunds")
    listing.add_argument(
        "--state", choices=[s.value for s in RefundState], help="only refunds in this state"
    )
    listing.add_argument("--order", type=types.order_id, help="only this order's refunds")
    listing.add_argument(
        "--escalated", action="store_true", help="only refunds escalated now (level above 0)"
    )
    listing.add_argument(
        "--customer", type=types.name, help="only refunds this customer asked for (cust_…)"
    )
    listing.add_argument(
        "--limit",
        type=types.positive,
        default=100,
        help="at most this many, newest first (default 100; a note says when more match)",
    )


def add_refund_actions(sub: Subcommands) -> None:
    approve = command(sub, "approve", "approve a refund waiting for review")
    approve.add_argument("refund_id", type=types.refund_id)
    approve.add_argument(
        "--reviewer",
        type=types.name,
        help="dev stack: act as this reviewer (the same as --as; the role is the directory's)",
    )
    approve.add_argument(
        "--amount", type=types.minor, help="approve less than requested (minor units: 4200)"
    )
    approve.add_argument(
        "--evidence",
        type=types.statement,
        help="what you checked (photos in ticket 123): needed above the policy's evidence"
        " threshold, unless the first of two approvers recorded it; the audit keeps it",
    )
    approve.add_argument(
        "--role",
        type=types.role,
        help="ignored, with a warning: the role comes from the staff directory (or your"
        " token), and the refund's pinned policy limits what each role approves",
    )
    reject = command(sub, "reject", "reject a refund waiting for review")
    reject.add_argument("refund_id", type=types.refund_id)
    reject.add_argument(
        "--reviewer",
        type=types.name,
        help="dev stack: act as this reviewer (the same as --as; the role is the directory's)",
    )
    reject.add_argument(
        "--reason", type=types.statement, required=True, help="free text the audit keeps"
    )
    cancel = command(sub, "cancel", "withdraw a refund before money moves")
    cancel.add_argument("refund_id", type=types.refund_id)
    cancel.add_argument(
        "--actor",
        type=types.name,
        help="dev stack: who withdraws it, the customer or staff (the same as --as)",
    )
    cancel.add_argument(
        "--reason", type=types.statement, required=True, help="free text the audit keeps"
    )
    received = command(sub, "received", "report the returned item received")
    received.add_argument("refund_id", type=types.refund_id)
    received.add_argument(
        "--actor",
        type=types.name,
        help="dev stack: who received it (the same as --as; default: warehouse)",
    )


CLIENT_COMMANDS: tuple[CommandAdder, ...] = (
    add_sandbox,
    add_operator,
    add_request_and_eligibility,
    add_policy,
    add_customer_views,
    add_subscribers,
    add_refund_reads,
    add_refund_actions,
    add_reconciliation,
    add_acknowledge,
    add_records,
)
