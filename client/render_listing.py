"""Lists of refunds as the CLI prints them (`refundflow list`): staff's rows, or a
customer's own as `track` tells each one."""

from __future__ import annotations

from client.review_context import RECONCILIATION_CLOSES
from workflows.money import format_minor
from workflows.read_models import CustomerListedRefund, ListedRefund


def listing(rows: list[ListedRefund] | list[CustomerListedRefund]) -> str:
    if not rows:
        return "no refunds match"
    if isinstance(rows[0], CustomerListedRefund):
        return customer_listing(rows)  # all rows are of one kind
    lines = [f"{'REFUND':<28} {'ORDER':<22} {'STATE':<15} {'AMOUNT':>14} {'AWAITING':<17} ESC"]
    for r in rows:
        # Nothing in refundflow moves a refund Temporal ended: not "reviewer" (a trial); the
        # note below says what does (reconciliation, or a person it left it to).
        awaiting = "(ended)" if r.ended_in_temporal else r.awaiting.value
        lines.append(
            f"{r.refund_id:<28} {r.order_id:<22} {r.state.value:<15}"
            f" {format_minor(r.amount, r.currency):>14} {awaiting:<17}"
            f" {r.escalation_level}"
        )
    lines += [
        f"note: Temporal ended the workflow of {r.refund_id} ({r.ended_in_temporal}): its"
        f" state above is its last, and nothing will move it; {RECONCILIATION_CLOSES}"
        for r in rows
        if r.ended_in_temporal
    ]
    return "\n".join(lines)


def customer_listing(rows: list[CustomerListedRefund]) -> str:
    """A customer's own refunds, as `track` tells each one."""
    lines = [f"{'REFUND':<28} {'ORDER':<22} {'REQUESTED':<11} {'AMOUNT':>14}  STATUS"]
    lines += [
        f"{r.refund_id:<28} {r.order_id:<22} {r.requested_at:%Y-%m-%d}  "
        f"{format_minor(r.amount, r.currency):>14}  {r.status}"
        for r in rows
    ]
    return "\n".join(lines)
