"""`refundflow audit --verify [REFUND_ID]`: every refund's hash chain (or one refund's)
recomputed from the rows as they are now (activities/audit_chain.py says how rows are
chained). One line per broken chain; exit status 1 if any is.

`refundflow audit REFUND_ID` without --verify lists the trail (handlers.py, one store call).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import asyncpg

from client.cli.arguments import EXIT_FAILURE, EXIT_OK
from client.cli.backends import with_store
from client.cli.output import emit
from client.errors import RefundflowError


async def verify(args: argparse.Namespace) -> int:
    from activities.audit_chain import ChainReport

    report: ChainReport = await with_store(lambda store: _verify(store.pool, args.refund_id))
    emit(args, report, render_report)
    if report.verified:
        return EXIT_OK
    message = (
        f"audit chains broken: {len(report.broken)} of {_count(report.refunds, 'refund')}"
        f" ({_count(report.entries, 'entry')} checked)"
    )
    if args.json:
        print(json.dumps({"error": message, "exit_status": EXIT_FAILURE}), file=sys.stderr)
    else:
        print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILURE


async def _verify(pool: asyncpg.Pool, refund_id: str | None) -> Any:
    from activities.audit_chain import verify_chains

    try:
        report = await verify_chains(pool, refund_id)
    except asyncpg.UndefinedColumnError:
        raise RefundflowError(
            "the audit has no hash chain yet: run `refundflow migrate` (a worker also"
            " migrates when it starts as the tables' owner)"
        ) from None
    except asyncpg.InsufficientPrivilegeError as err:
        raise RefundflowError(f"cannot read the audit: {err}") from None
    if refund_id is not None and report.refunds == 0:
        raise RefundflowError(f"no audit trail for refund {refund_id}")
    return report


def render_report(report: Any) -> str:
    if report.verified:
        return (
            f"audit verified: {_count(report.refunds, 'refund')},"
            f" {_count(report.entries, 'entry')}, chains intact"
        )
    return "\n".join(
        f"refund {b.refund_id}: seq {b.seq}: {b.problem} ({b.detail})" for b in report.broken
    )


def _count(n: int, noun: str) -> str:
    plural = "entries" if noun == "entry" else f"{noun}s"
    return f"{n} {noun if n == 1 else plural}"
