"""The grammar of what reconciliation found and what the records hold: `reconcile`,
`anomalies`, `acknowledge`, `audit` and `report` (client/cli/commands.py lists them with the
others)."""

from __future__ import annotations

from functools import partial

from client.cli import arguments as types
from client.cli.arguments import EXIT_NEEDS_A_PERSON
from client.cli.grammar import Subcommands, command
from workflows.vocabulary import FINDING_KINDS


def add_reconciliation(sub: Subcommands) -> None:
    reconcile = command(sub, "reconcile", "compare ledgers now, heal what is safe, print findings")
    reconcile.add_argument(
        "--grace", type=types.seconds, default=60, help="skip refunds changed in the last N seconds"
    )
    reconcile.add_argument("--no-heal", action="store_true", help="only report")
    reconcile.add_argument(
        "--check",
        action="store_true",
        help=f"exit {EXIT_NEEDS_A_PERSON} when the run escalated anything (with --no-heal: found"
        " anything), for cron and monitoring; 0 when nothing needs a person",
    )
    anomalies = command(sub, "anomalies", "findings of reconciliation runs, newest first")
    anomalies.add_argument("--kind", choices=FINDING_KINDS, help="only this kind of finding")
    anomalies.add_argument(
        "--refund",
        type=partial(types.refund_id, by_order="findings"),
        help="only this refund's findings (and its order's that name it)",
    )
    anomalies.add_argument("--order", help="only this order's findings (its refunds' included)")
    anomalies.add_argument(
        "--open",
        action="store_true",
        help="only what still stands: found by the newest run and not healed, or still parked",
    )
    anomalies.add_argument(
        "--limit", type=types.positive, default=100, help="at most this many (default 100)"
    )


def add_acknowledge(sub: Subcommands) -> None:
    acknowledge = command(
        sub,
        "acknowledge",
        "say a finding reconciliation cannot heal is dealt with outside refundflow: `reconcile"
        " --check` leaves it while its details stay as they are",
    )
    acknowledge.add_argument("kind", choices=FINDING_KINDS, help="the finding's kind")
    subject = acknowledge.add_mutually_exclusive_group(required=True)
    subject.add_argument("--refund", type=types.refund_id, help="the refund it is about")
    subject.add_argument("--order", type=types.order_id, help="the order, for an order's finding")
    acknowledge.add_argument("--by", type=types.name, required=True, help="who says so (kept)")
    acknowledge.add_argument(
        "--reason", type=types.statement, required=True, help="what was done (kept)"
    )


def add_records(sub: Subcommands) -> None:
    audit = command(
        sub,
        "audit",
        "the append-only audit trail of a refund; --verify: recompute the hash chains (every"
        " refund's, or REFUND_ID's) and say which are broken",
    )
    audit.add_argument("refund_id", nargs="?", type=types.refund_id)
    audit.add_argument("--verify", action="store_true", help="check the trails, not list one")
    report = command(sub, "report", "refund metrics from Postgres, and a chart")
    report.add_argument(
        "--since", type=types.when, help="refunds requested from (YYYY-MM-DD or ISO, UTC)"
    )
    report.add_argument("--until", type=types.when, help="refunds requested before (exclusive)")
    report.add_argument(
        "--chart",
        type=types.file_to_write,
        help="also write the report as a chart, a self-contained HTML page",
    )
