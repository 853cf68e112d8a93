"""A person's word that a finding reconciliation cannot heal is dealt with outside
refundflow (`refundflow acknowledge`): money recovered from a customer paid twice, a
provider's refund taken back in its dashboard. Without it, `reconcile --check` says "a
person must look" on every run for as long as the money stays as it is, and a cron job
alerts forever (a trial).

It holds for the finding's money details as they were acknowledged (`acknowledged_as`: not
the words a heal attempt adds): a run that finds them changed (another provider refund, a
new amount) is news again. It is no money fact: holds and statuses still read the finding as
open, with who acknowledged it and why."""

from __future__ import annotations

import json

from activities.pg_store import PostgresRefundStore
from activities.reconciliation_sql import acknowledged_as
from workflows.read_models import Finding
from workflows.vocabulary import DISPATCHER_RUN

_ACKNOWLEDGE_SQL = f"""
INSERT INTO refundflow.finding_acknowledgements (kind, subject, details, acknowledged_by, reason)
VALUES ($1, $2, {acknowledged_as("$3::jsonb")}, $4, $5)
ON CONFLICT (kind, subject, details) DO UPDATE SET acknowledged_by = EXCLUDED.acknowledged_by,
    reason = EXCLUDED.reason, acknowledged_at = now()
"""

NEEDS_ITS_WORKFLOW = {
    "workflow_closed_abnormally": "run it on as its finding says (a reset); acknowledged, a"
    " refund that still needs its workflow would drop out of what needs a person",
}
"""Kinds a person settles in refundflow, not outside it: not acknowledged (a review)."""


class NothingToAcknowledge(Exception):
    """No open finding of that kind on that refund or order (its words say where to look)."""


async def acknowledge(
    store: PostgresRefundStore,
    kind: str,
    *,
    refund_id: str | None,
    order_id: str | None,
    by: str,
    reason: str,
) -> tuple[list[Finding], list[Finding]]:
    """Every open finding of `kind` on the refund (or, without one, on the order as a
    whole; one per SKU for some kinds), acknowledged by `by` for `reason`: as they were (an
    earlier acknowledgement each replaces included), and as now listed."""
    subject = refund_id or order_id
    where = f"--refund {refund_id}" if refund_id else f"--order {order_id}"
    if kind in NEEDS_ITS_WORKFLOW:
        raise NothingToAcknowledge(f"{kind} is not acknowledged: {NEEDS_ITS_WORKFLOW[kind]}")
    found = await _open_findings(store, kind, refund_id, order_id)
    if not found:
        raise NothingToAcknowledge(
            f"nothing to acknowledge: no open {kind} finding for {subject}"
            + await _on_its_refunds(store, kind, refund_id, order_id)
            + f" (`refundflow anomalies {where} --open` lists what stands)"
        )
    if found[0].run_id == DISPATCHER_RUN:
        raise NothingToAcknowledge(
            f"a parked event is not acknowledged: queue it again (`refundflow subscribers"
            f" replay`) or leave it parked; {kind} for {subject} stays open while it is parked"
        )
    async with store.pool.acquire() as conn, conn.transaction():
        for finding in found:
            await conn.execute(
                _ACKNOWLEDGE_SQL, kind, subject, json.dumps(finding.details), by, reason
            )
    now = await _open_findings(store, kind, refund_id, order_id)
    if not all(f.acknowledged_by == by for f in now):
        # A reconciliation run finished between the read and the write, and found them
        # otherwise: what was acknowledged is no longer what stands.
        raise NothingToAcknowledge(
            f"the {kind} finding for {subject} changed while it was acknowledged: see"
            f" `refundflow anomalies {where} --open`, then acknowledge again"
        )
    return found, now


async def _on_its_refunds(
    store: PostgresRefundStore, kind: str, refund_id: str | None, order_id: str | None
) -> str:
    """For an order: the refunds of it that hold such a finding, as what to name instead
    (a trial: `--order` of a refund's finding said only "no open finding")."""
    if refund_id or not order_id:
        return ""
    found = await store.findings(kind=kind, order_id=order_id, open_only=True)
    held = sorted({f.refund_id for f in found if f.refund_id})
    if not held:
        return ""
    if len(held) == 1:
        return f" as a whole: it is on its refund {held[0]}; name it with --refund"
    return f" as a whole: it is on its refunds {', '.join(held)}; name one with --refund"


async def _open_findings(
    store: PostgresRefundStore, kind: str, refund_id: str | None, order_id: str | None
) -> list[Finding]:
    found = await store.findings(
        kind=kind, refund_id=refund_id, order_id=None if refund_id else order_id, open_only=True
    )
    # An order's finding that names the refund is listed with the refund's: not this one.
    return [f for f in found if f.refund_id == refund_id and (refund_id or f.order_id == order_id)]
